// ModelSource over synthetic GGUF files and HF directories of a tiny Llama-family model.
#include "model/model_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <map>

#include "core/error.h"
#include "io/gguf.h"
#include "model/host_memory_plan.h"
#include "unit/io/gguf_writer.h"
#include "unit/io/safetensors_writer.h"

namespace deltainfer::model {
namespace {

using ::testing::HasSubstr;

constexpr int kLayers = 2, kDModel = 32, kHeads = 4, kKvHeads = 2, kHeadDim = 8, kFfn = 64, kVocab = 16;

struct TinyTensor {
  std::string name;
  std::vector<int64_t> shape;  // outermost first
};

std::vector<TinyTensor> tiny_tensors(bool tied, bool bias, bool qk_norm) {
  const int64_t q = kHeads * kHeadDim, kv = kKvHeads * kHeadDim;
  std::vector<TinyTensor> t = {{"token_embd.weight", {kVocab, kDModel}}, {"output_norm.weight", {kDModel}}};
  if (!tied) t.push_back({"output.weight", {kVocab, kDModel}});
  for (int i = 0; i < kLayers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    t.push_back({b + "attn_norm.weight", {kDModel}});
    t.push_back({b + "ffn_norm.weight", {kDModel}});
    t.push_back({b + "attn_q.weight", {q, kDModel}});
    t.push_back({b + "attn_k.weight", {kv, kDModel}});
    t.push_back({b + "attn_v.weight", {kv, kDModel}});
    t.push_back({b + "attn_output.weight", {kDModel, q}});
    if (bias) {
      t.push_back({b + "attn_q.bias", {q}});
      t.push_back({b + "attn_k.bias", {kv}});
      t.push_back({b + "attn_v.bias", {kv}});
    }
    if (qk_norm) {
      t.push_back({b + "attn_q_norm.weight", {kHeadDim}});
      t.push_back({b + "attn_k_norm.weight", {kHeadDim}});
    }
    t.push_back({b + "ffn_gate.weight", {kFfn, kDModel}});
    t.push_back({b + "ffn_up.weight", {kFfn, kDModel}});
    t.push_back({b + "ffn_down.weight", {kDModel, kFfn}});
  }
  return t;
}

// Element i of tensor number k is k + i / 1000: every value tells where it came from.
std::vector<float> tensor_values(size_t k, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(k) + static_cast<float>(i) / 1000.0f;
  return v;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

struct GgufSpec {
  std::string arch = "llama";
  bool tied = true, bias = false, qk_norm = false;
  std::string skip_tensor;
  std::string bad_shape_tensor;
};

test::GgufWriter tiny_gguf(const GgufSpec& spec) {
  test::GgufWriter w;
  const std::string a = spec.arch + ".";
  w.str("general.architecture", spec.arch).str("general.name", "tiny");
  w.u32(a + "block_count", kLayers).u32(a + "embedding_length", kDModel).u32(a + "feed_forward_length", kFfn);
  w.u32(a + "attention.head_count", kHeads).u32(a + "attention.head_count_kv", kKvHeads);
  w.u32(a + "context_length", 256).f32(a + "attention.layer_norm_rms_epsilon", 1e-6f).f32(a + "rope.freq_base", 5e5f);
  std::vector<std::string> tokens;
  for (int i = 0; i < kVocab; ++i) tokens.push_back("t" + std::to_string(i));
  w.string_array("tokenizer.ggml.tokens", tokens);
  const std::vector<TinyTensor> tensors = tiny_tensors(spec.tied, spec.bias, spec.qk_norm);
  for (size_t k = 0; k < tensors.size(); ++k) {
    if (tensors[k].name == spec.skip_tensor) continue;
    std::vector<uint64_t> dims(tensors[k].shape.rbegin(), tensors[k].shape.rend());
    if (tensors[k].name == spec.bad_shape_tensor) dims[0] += 1;
    int64_t n = 1;
    for (uint64_t d : dims) n *= static_cast<int64_t>(d);
    w.f32_tensor(tensors[k].name, dims, tensor_values(k, n));
  }
  return w;
}

std::string write_gguf(const GgufSpec& spec, const std::string& file) {
  const std::string path = ::testing::TempDir() + "/" + file;
  tiny_gguf(spec).write(path);
  return path;
}

std::string open_error(const std::string& path) {
  try {
    open_model_source(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(GgufModelSource, TinyLlama) {
  const auto source = open_model_source(write_gguf({}, "tiny_llama.gguf"));
  const ModelConfig& c = source->config();
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.name, "tiny");
  EXPECT_EQ(c.n_layers, kLayers);
  EXPECT_EQ(c.d_model, kDModel);
  EXPECT_EQ(c.n_heads, kHeads);
  EXPECT_EQ(c.n_kv_heads, kKvHeads);
  EXPECT_EQ(c.head_dim, kHeadDim);
  EXPECT_EQ(c.ffn_dim, kFfn);
  EXPECT_EQ(c.vocab_size, kVocab);
  EXPECT_EQ(c.context_length, 256);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-6f);
  EXPECT_EQ(c.rope_theta, 5e5f);
  EXPECT_EQ(c.rope_style, RopeStyle::Interleaved);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(source->format(), "GGUF v3");
  ASSERT_NE(source->gguf(), nullptr);
  EXPECT_FALSE(source->has_tensor("output.weight"));
  EXPECT_EQ(source->tensor_shape("blk.1.attn_k.weight"), (std::vector<int64_t>{kKvHeads * kHeadDim, kDModel}));
  EXPECT_EQ(source->tensor_type_counts(), (std::map<std::string, int64_t>{{"F32", 2 + 9 * kLayers}}));
  // blk.0.attn_q.weight is tensor number 4 in tiny_tensors (tied): element [1][2] is row-major index 34.
  std::vector<float> q(static_cast<size_t>(kHeads * kHeadDim * kDModel));
  source->read_f32("blk.0.attn_q.weight", q.data(), static_cast<int64_t>(q.size()));
  EXPECT_FLOAT_EQ(q[1 * kDModel + 2], 4.034f);
  EXPECT_THROW(source->read_f32("blk.0.attn_q.weight", q.data(), 5), InputError);
  EXPECT_THROW(source->tensor_shape("nope"), InputError);
}

TEST(GgufModelSource, Qwen2AndQwen3Flags) {
  GgufSpec qwen2;
  qwen2.arch = "qwen2";
  qwen2.bias = true;
  qwen2.tied = false;
  const auto a = open_model_source(write_gguf(qwen2, "tiny_qwen2.gguf"));
  EXPECT_EQ(a->config().arch, Architecture::Qwen2);
  EXPECT_TRUE(a->config().qkv_bias);
  EXPECT_FALSE(a->config().tied_embeddings);
  EXPECT_EQ(a->config().rope_style, RopeStyle::HalfSplit);
  GgufSpec qwen3;
  qwen3.arch = "qwen3";
  qwen3.qk_norm = true;
  const auto b = open_model_source(write_gguf(qwen3, "tiny_qwen3.gguf"));
  EXPECT_TRUE(b->config().qk_norm);
  EXPECT_EQ(b->config().rope_style, RopeStyle::HalfSplit);
}

TEST(GgufModelSource, Errors) {
  GgufSpec spec;
  spec.arch = "gpt2";
  EXPECT_THAT(open_error(write_gguf(spec, "gpt2.gguf")),
              HasSubstr("unsupported architecture 'gpt2' (supported: llama, qwen2, qwen3)"));
  spec = {};
  spec.skip_tensor = "blk.1.ffn_up.weight";
  EXPECT_THAT(open_error(write_gguf(spec, "missing.gguf")), HasSubstr("missing tensor 'blk.1.ffn_up.weight'"));
  spec = {};
  spec.bad_shape_tensor = "blk.0.attn_v.weight";
  EXPECT_THAT(open_error(write_gguf(spec, "shape.gguf")),
              HasSubstr("tensor 'blk.0.attn_v.weight' has shape [16, 33], expected [16, 32]"));
  EXPECT_THAT(open_error("/nonexistent.gguf"), HasSubstr("no such file"));
  const std::string missing_key = ::testing::TempDir() + "/nokey.gguf";
  test::GgufWriter().str("general.architecture", "llama").write(missing_key);
  EXPECT_THAT(open_error(missing_key), HasSubstr("missing metadata key 'llama.block_count'"));
}

std::string read_error(const ModelSource& source, const std::string& name, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  try {
    source.read_f32(name, out.data(), n);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

// Opening reads only the metadata and the tensor table (what `inspect` needs): a tensor of a type
// we cannot dequantize is refused when it is read, with the tensor and the type named.
TEST(GgufModelSource, UnsupportedTensorTypeFailsOnlyWhenRead) {
  GgufSpec spec;
  spec.skip_tensor = "output_norm.weight";
  test::GgufWriter w = tiny_gguf(spec);
  w.tensor("output_norm.weight", {kDModel}, io::GgmlType::MXFP4, std::vector<uint8_t>(17));
  w.tensor("extra.weight", {256, 2}, io::GgmlType::IQ2_XXS, std::vector<uint8_t>(2 * 66));
  const std::string path = ::testing::TempDir() + "/unsupported_types.gguf";
  w.write(path);

  const auto source = open_model_source(path);
  const std::map<std::string, int64_t> counts = source->tensor_type_counts();
  EXPECT_EQ(counts.at("MXFP4"), 1);
  EXPECT_EQ(counts.at("IQ2_XXS"), 1);
  EXPECT_THAT(read_error(*source, "output_norm.weight", kDModel),
              HasSubstr("tensor 'output_norm.weight' has type MXFP4, which cannot be dequantized"));
  EXPECT_THAT(read_error(*source, "extra.weight", 512),
              HasSubstr("tensor 'extra.weight' has type IQ2_XXS, which cannot be dequantized"));
  EXPECT_EQ(read_error(*source, "blk.0.attn_norm.weight", kDModel), "no error");

  // The stored size counts every tensor in its own type; the f32 size only the canonical ones.
  int64_t canonical_elements = 0;
  for (const TinyTensor& t : tiny_tensors(true, false, false)) canonical_elements += numel(t.shape);
  const ModelMemory memory = model_memory(*source);
  ASSERT_TRUE(memory.stored_weight_bytes.has_value());
  EXPECT_EQ(*memory.stored_weight_bytes, static_cast<uint64_t>((canonical_elements - kDModel) * 4 + 17 + 2 * 66));
  EXPECT_EQ(memory.f32_weight_bytes, static_cast<uint64_t>(canonical_elements * 4));
  EXPECT_EQ(memory.kv_bytes_per_token, static_cast<uint64_t>(2 * kLayers * kKvHeads * kHeadDim * 4));
}

TEST(GgufModelSource, Llama3RopeFreqs) {
  // rope_freqs.weight as llama.cpp's converter writes it for factor 8, low 1, high 4, context 8192.
  const float theta = 5e5f;
  std::vector<float> factors;
  for (int i = 0; i < kHeadDim / 2; ++i) {
    const double freq = std::pow(theta, -2.0 * i / kHeadDim);
    const double wavelen = 2 * 3.14159265358979323846 / freq;
    if (wavelen < 8192.0 / 4) {
      factors.push_back(1.0f);
    } else if (wavelen > 8192.0) {
      factors.push_back(8.0f);
    } else {
      const double smooth = (8192.0 / wavelen - 1) / 3;
      factors.push_back(static_cast<float>(1 / ((1 - smooth) / 8 + smooth)));
    }
  }
  test::GgufWriter w = tiny_gguf({});
  w.f32_tensor("rope_freqs.weight", {kHeadDim / 2}, factors);
  const std::string path = ::testing::TempDir() + "/rope_freqs.gguf";
  w.write(path);
  EXPECT_EQ(open_model_source(path)->config().rope_scaling.factor, 8.0f);
  factors[0] = 3.0f;
  test::GgufWriter bad = tiny_gguf({});
  bad.f32_tensor("rope_freqs.weight", {kHeadDim / 2}, factors);
  bad.write(path);
  EXPECT_THAT(open_error(path), HasSubstr("rope_freqs.weight[0]"));
}

std::string hf_name(const std::string& canonical) {
  if (canonical == "token_embd.weight") return "model.embed_tokens.weight";
  if (canonical == "output_norm.weight") return "model.norm.weight";
  if (canonical == "output.weight") return "lm_head.weight";
  const size_t dot = canonical.find('.', 4);
  const std::string layer = canonical.substr(4, dot - 4);
  const std::string rest = canonical.substr(dot + 1);
  const std::map<std::string, std::string> names = {
      {"attn_norm.weight", "input_layernorm.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},   {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},   {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},    {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"}};
  return "model.layers." + layer + "." + names.at(rest);
}

std::string write_hf_dir(const std::string& name, const std::string& config_json, bool tied) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  ::mkdir(dir.c_str(), 0755);
  std::ofstream(dir + "/config.json") << config_json;
  test::SafetensorsWriter st;
  const std::vector<TinyTensor> tensors = tiny_tensors(tied, false, false);
  for (size_t k = 0; k < tensors.size(); ++k) {
    st.add_f32(hf_name(tensors[k].name), tensors[k].shape, tensor_values(k, numel(tensors[k].shape)));
  }
  st.write(dir + "/model.safetensors");
  return dir;
}

const char* kHfConfig = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0, "max_position_embeddings": 131072, "vocab_size": 16, "tie_word_embeddings": false,
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192}
})";

TEST(HfModelSource, TinyLlamaDirectory) {
  const std::string dir = write_hf_dir("hf_tiny_llama", kHfConfig, false);
  const auto source = open_model_source(dir);
  const ModelConfig& c = source->config();
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.head_dim, kHeadDim);
  EXPECT_EQ(c.n_kv_heads, kKvHeads);
  EXPECT_EQ(c.context_length, 131072);
  EXPECT_EQ(c.rope_style, RopeStyle::HalfSplit);
  EXPECT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_EQ(c.rope_scaling.original_context, 8192);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(source->format(), "safetensors");
  EXPECT_EQ(source->tensor_shape("output.weight"), (std::vector<int64_t>{kVocab, kDModel}));
  std::vector<float> up(static_cast<size_t>(kFfn * kDModel));
  source->read_f32("blk.1.ffn_up.weight", up.data(), static_cast<int64_t>(up.size()));
  // Tensor number of blk.1.ffn_up.weight in tiny_tensors(untied): 3 + 9 + 7 = 19.
  EXPECT_FLOAT_EQ(up[5], 19.005f);
  // Opening the config.json path means its directory.
  EXPECT_EQ(open_model_source(dir + "/config.json")->config().n_layers, kLayers);
}

TEST(HfModelSource, Errors) {
  std::string config = kHfConfig;
  config.replace(config.find("\"llama\""), 7, "\"mistral\"");
  EXPECT_THAT(open_error(write_hf_dir("hf_mistral", config, false)), HasSubstr("unsupported architecture 'mistral'"));
  config = kHfConfig;
  config.replace(config.find("\"intermediate_size\": 64"), 23, "\"intermediate_size\": 65");
  EXPECT_THAT(open_error(write_hf_dir("hf_bad_ffn", config, false)), HasSubstr("expected [65, 32]"));
  config = kHfConfig;
  config.replace(config.find("\"llama3\""), 8, "\"yarn\"");
  EXPECT_THAT(open_error(write_hf_dir("hf_yarn", config, false)), HasSubstr("rope scaling type 'yarn'"));
  config = kHfConfig;
  config.replace(config.find("\"hidden_size\": 32"), 17, "\"hidden_size\": \"x\"");
  EXPECT_THAT(open_error(write_hf_dir("hf_bad_type", config, false)), HasSubstr("'hidden_size' must be an integer"));
  EXPECT_THAT(open_error(write_hf_dir("hf_tied_missing_head", kHfConfig, true)), HasSubstr("missing tensor 'output.weight'"));
}

}  // namespace
}  // namespace deltainfer::model
