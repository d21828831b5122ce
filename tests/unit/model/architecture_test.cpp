// The architecture tables against the loaders and the CPU backend's weight loading: a tiny model of
// every architecture, with every combination of its flags, written as a GGUF file (matrices in
// Q8_0) and as an HF directory, opens with the flags it was written with and loads every tensor into
// the CPU slot of its role, through f32 and native weight storage.
#include "model/architecture.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "backend/cpu/cpu_weights.h"
#include "core/error.h"
#include "io/dequantize.h"
#include "model/model_source.h"
#include "unit/io/gguf_writer.h"
#include "unit/io/safetensors_writer.h"

namespace deltainfer::model {
namespace {

using backend::cpu::CpuWeights;
using backend::cpu::LayerWeights;
using backend::cpu::Weight;
using backend::cpu::WeightStorage;

ModelConfig tiny_config(Architecture arch) {
  ModelConfig c;
  c.arch = arch;
  c.name = "tiny";
  c.n_layers = 2;
  c.d_model = 32;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.ffn_dim = 64;  // every matrix row is a whole number of Q8_0 blocks (32 values)
  c.vocab_size = 16;
  c.context_length = 256;
  return c;
}

// Every flag some row of the table depends on.
std::vector<bool ModelConfig::*> table_flags(const ArchitectureTable& table) {
  std::vector<bool ModelConfig::*> flags;
  for (const auto* specs : {&table.global_tensors, &table.layer_tensors}) {
    for (const TensorSpec& spec : *specs) {
      if (spec.flag != nullptr && std::find(flags.begin(), flags.end(), spec.flag) == flags.end()) {
        flags.push_back(spec.flag);
      }
    }
  }
  return flags;
}

// Every setting of the table's flags on the tiny config.
std::vector<ModelConfig> flag_combinations(const ArchitectureTable& table) {
  const std::vector<bool ModelConfig::*> flags = table_flags(table);
  std::vector<ModelConfig> configs;
  for (unsigned bits = 0; bits < (1u << flags.size()); ++bits) {
    ModelConfig c = tiny_config(table.id);
    for (size_t f = 0; f < flags.size(); ++f) c.*flags[f] = ((bits >> f) & 1u) != 0;
    configs.push_back(c);
  }
  return configs;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

// Tensor number k holds the value k + 1 in every element: a slot's first value names its tensor.
float tensor_value(size_t k) { return static_cast<float>(k + 1); }

// The f16 bits of a small positive integer (exact).
uint16_t f16_of_integer(unsigned n) {
  int exponent = 0;
  while ((n >> (exponent + 1)) != 0) ++exponent;
  return static_cast<uint16_t>(((exponent + 15) << 10) | ((n - (1u << exponent)) << (10 - exponent)));
}

// Q8_0 blocks of a [rows, cols] matrix whose every element is `value` (scale value, quants 1).
std::vector<uint8_t> q8_0_constant(int64_t rows, int64_t cols, unsigned value) {
  const uint16_t scale = f16_of_integer(value);
  std::vector<uint8_t> bytes;
  for (int64_t block = 0; block < rows * cols / 32; ++block) {
    bytes.push_back(static_cast<uint8_t>(scale & 0xFF));
    bytes.push_back(static_cast<uint8_t>(scale >> 8));
    bytes.insert(bytes.end(), 32, uint8_t{1});
  }
  return bytes;
}

std::string write_gguf(const ModelConfig& c, const std::string& file) {
  const ArchitectureTable& table = architecture_table(c.arch);
  test::GgufWriter w;
  w.str("general.architecture", table.name).str("general.name", "tiny");
  w.u32(table.gguf_key("block_count"), static_cast<uint32_t>(c.n_layers));
  w.u32(table.gguf_key("embedding_length"), static_cast<uint32_t>(c.d_model));
  w.u32(table.gguf_key("feed_forward_length"), static_cast<uint32_t>(c.ffn_dim));
  w.u32(table.gguf_key("attention.head_count"), static_cast<uint32_t>(c.n_heads));
  w.u32(table.gguf_key("attention.head_count_kv"), static_cast<uint32_t>(c.n_kv_heads));
  w.u32(table.gguf_key("context_length"), static_cast<uint32_t>(c.context_length));
  std::vector<std::string> tokens;
  for (int i = 0; i < c.vocab_size; ++i) tokens.push_back("t" + std::to_string(i));
  w.string_array("tokenizer.ggml.tokens", tokens);
  const std::vector<ModelTensor> tensors = model_tensors(c);
  for (size_t k = 0; k < tensors.size(); ++k) {
    const std::vector<int64_t>& shape = tensors[k].shape;
    const std::vector<uint64_t> dims(shape.rbegin(), shape.rend());
    if (shape.size() == 2) {
      w.tensor(tensors[k].name, dims, io::GgmlType::Q8_0,
               q8_0_constant(shape[0], shape[1], static_cast<unsigned>(tensor_value(k))));
    } else {
      w.f32_tensor(tensors[k].name, dims, std::vector<float>(static_cast<size_t>(numel(shape)), tensor_value(k)));
    }
  }
  const std::string path = ::testing::TempDir() + "/" + file + ".gguf";
  w.write(path);
  return path;
}

std::string write_hf_dir(const ModelConfig& c, const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  ::mkdir(dir.c_str(), 0755);
  std::ofstream(dir + "/config.json") << "{\"model_type\": \"" << architecture_table(c.arch).name
                                      << "\", \"hidden_size\": " << c.d_model
                                      << ", \"intermediate_size\": " << c.ffn_dim
                                      << ", \"num_hidden_layers\": " << c.n_layers
                                      << ", \"num_attention_heads\": " << c.n_heads
                                      << ", \"num_key_value_heads\": " << c.n_kv_heads
                                      << ", \"vocab_size\": " << c.vocab_size
                                      << ", \"max_position_embeddings\": " << c.context_length
                                      << ", \"tie_word_embeddings\": " << (c.tied_embeddings ? "true" : "false") << "}";
  test::SafetensorsWriter st;
  const std::vector<ModelTensor> tensors = model_tensors(c);
  for (size_t k = 0; k < tensors.size(); ++k) {
    const std::vector<int64_t>& shape = tensors[k].shape;
    st.add_f32(tensors[k].hf_name(), shape, std::vector<float>(static_cast<size_t>(numel(shape)), tensor_value(k)));
  }
  st.write(dir + "/model.safetensors");
  return dir;
}

float first_value(const Weight& weight) {
  if (!weight.is_quantized()) return weight.f32()[0];
  float values[32];
  io::dequantize(weight.quantized->type, weight.quantized->blocks.data(), values, 32);
  return values[0];
}

template <typename Owner>
float first_value(const Owner& owner, TensorRole role) {
  const backend::cpu::WeightSlot<Owner> slot = Owner::slot(role);
  if (slot.vector != nullptr) return (owner.*slot.vector).at(0);
  if (slot.matrix != nullptr) return first_value(owner.*slot.matrix);
  ADD_FAILURE() << "the CPU backend has no slot for role " << static_cast<int>(role);
  return -1.0f;
}

std::string label(const ModelConfig& c) {
  return fmt::format("{}{}{}{}", architecture_table(c.arch).name, c.qkv_bias ? "_bias" : "",
                     c.qk_norm ? "_qknorm" : "", c.tied_embeddings ? "_tied" : "");
}

// Every tensor of the table sits in its role's slot, and the slots say what they hold.
void expect_weights_match(const CpuWeights& w, const ModelConfig& c, WeightStorage storage, bool gguf) {
  const std::vector<ModelTensor> tensors = model_tensors(c);
  for (size_t k = 0; k < tensors.size(); ++k) {
    const ModelTensor& t = tensors[k];
    const float got = t.layer < 0 ? first_value(w, t.spec->role)
                                  : first_value(w.layers.at(static_cast<size_t>(t.layer)), t.spec->role);
    EXPECT_EQ(got, tensor_value(k)) << t.name;
  }
  auto index_of = [&](TensorRole role, int layer) {
    const std::string name = model_tensor(c, role, layer).name;
    for (size_t k = 0; k < tensors.size(); ++k) {
      if (tensors[k].name == name) return tensor_value(k);
    }
    return -1.0f;
  };
  // The slots hold what their names say (written out here, apart from LayerWeights::slot).
  const LayerWeights& l1 = w.layers.at(1);
  const std::vector<std::pair<const Weight*, TensorRole>> matrices = {
      {&l1.wq, TensorRole::AttnQ},        {&l1.wk, TensorRole::AttnK},     {&l1.wv, TensorRole::AttnV},
      {&l1.wo, TensorRole::AttnOutput},   {&l1.w_gate, TensorRole::FfnGate}, {&l1.w_up, TensorRole::FfnUp},
      {&l1.w_down, TensorRole::FfnDown}};
  for (const auto& [matrix, role] : matrices) EXPECT_EQ(first_value(*matrix), index_of(role, 1)) << int(role);
  const std::vector<std::tuple<const std::vector<float>*, TensorRole, bool>> vectors = {
      {&l1.attn_norm, TensorRole::AttnNorm, true},  {&l1.ffn_norm, TensorRole::FfnNorm, true},
      {&l1.bq, TensorRole::AttnQBias, c.qkv_bias},  {&l1.bk, TensorRole::AttnKBias, c.qkv_bias},
      {&l1.bv, TensorRole::AttnVBias, c.qkv_bias},  {&l1.q_norm, TensorRole::AttnQNorm, c.qk_norm},
      {&l1.k_norm, TensorRole::AttnKNorm, c.qk_norm}};
  for (const auto& [vector, role, present] : vectors) {
    ASSERT_EQ(vector->empty(), !present) << int(role);
    if (present) {
      EXPECT_EQ(vector->front(), index_of(role, 1)) << int(role);
    }
  }
  EXPECT_EQ(first_value(w.token_embd), index_of(TensorRole::TokenEmbedding, -1));
  EXPECT_EQ(w.output_norm.at(0), index_of(TensorRole::OutputNorm, -1));
  const TensorRole output_role = c.tied_embeddings ? TensorRole::TokenEmbedding : TensorRole::Output;
  EXPECT_EQ(first_value(w.output_weight()), index_of(output_role, -1));
  const bool native_blocks = gguf && storage == WeightStorage::Native;
  EXPECT_EQ(l1.wv.is_quantized(), native_blocks);
  if (c.tied_embeddings) {
    EXPECT_EQ(&w.output_weight(), &w.token_embd);  // one copy of the table
  }
}

TEST(Architecture, EveryTableLoadsThroughGgufAndHfIntoTheCpuSlots) {
  for (const ArchitectureTable* table : all_architectures()) {
    for (const ModelConfig& c : flag_combinations(*table)) {
      SCOPED_TRACE(label(c));
      const auto gguf = open_model_source(write_gguf(c, label(c)));
      const auto hf = open_model_source(write_hf_dir(c, "hf_" + label(c)));
      for (const ModelSource* source : {gguf.get(), hf.get()}) {
        const ModelConfig& read = source->config();
        EXPECT_EQ(read.arch, c.arch);
        EXPECT_EQ(read.qkv_bias, c.qkv_bias);
        EXPECT_EQ(read.qk_norm, c.qk_norm);
        EXPECT_EQ(read.tied_embeddings, c.tied_embeddings);
        EXPECT_EQ(expected_tensor_shapes(read), expected_tensor_shapes(c));
      }
      for (WeightStorage storage : {WeightStorage::F32, WeightStorage::Native}) {
        expect_weights_match(CpuWeights::load(*gguf, storage), c, storage, true);
        expect_weights_match(CpuWeights::load(*hf, storage), c, storage, false);
      }
    }
  }
}

TEST(Architecture, TablesNameEachTensorOnce) {
  for (const ArchitectureTable* table : all_architectures()) {
    SCOPED_TRACE(table->name);
    EXPECT_EQ(&architecture_named(table->name, "test"), table);
    EXPECT_EQ(&architecture_table(table->id), table);
    EXPECT_STREQ(architecture_name(table->id), table->name);
    std::set<TensorRole> roles;
    std::set<std::string> gguf_names, hf_names;
    for (const auto* specs : {&table->global_tensors, &table->layer_tensors}) {
      for (const TensorSpec& spec : *specs) {
        EXPECT_TRUE(roles.insert(spec.role).second) << spec.gguf_name;
        EXPECT_TRUE(gguf_names.insert(spec.gguf_name).second) << spec.gguf_name;
        EXPECT_TRUE(hf_names.insert(spec.hf_name).second) << spec.hf_name;
      }
    }
  }
  try {
    architecture_named("gpt2", "x.gguf");
    ADD_FAILURE() << "gpt2 was accepted";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("x.gguf: unsupported architecture 'gpt2' (supported: llama, qwen2, qwen3)"));
  }
}

// The shapes the config implies, written out by hand for one layer of each flag.
TEST(Architecture, ExpectedShapesFollowTheFlags) {
  ModelConfig qwen3 = tiny_config(Architecture::Qwen3);
  qwen3.qk_norm = true;
  qwen3.tied_embeddings = true;
  const auto shapes = expected_tensor_shapes(qwen3);
  const std::map<std::string, std::vector<int64_t>> by_name(shapes.begin(), shapes.end());
  EXPECT_EQ(shapes.size(), size_t{2 + 2 * 11});
  EXPECT_EQ(by_name.count("output.weight"), 0u);
  EXPECT_EQ(by_name.count("blk.0.attn_q.bias"), 0u);
  EXPECT_EQ(by_name.at("blk.1.attn_k_norm.weight"), (std::vector<int64_t>{8}));
  EXPECT_EQ(by_name.at("blk.1.attn_output.weight"), (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(by_name.at("blk.0.ffn_down.weight"), (std::vector<int64_t>{32, 64}));
  ModelConfig qwen2 = tiny_config(Architecture::Qwen2);
  qwen2.qkv_bias = true;
  const auto qwen2_shapes = expected_tensor_shapes(qwen2);
  const std::map<std::string, std::vector<int64_t>> qwen2_by_name(qwen2_shapes.begin(), qwen2_shapes.end());
  EXPECT_EQ(qwen2_shapes.size(), size_t{3 + 2 * 12});
  EXPECT_EQ(qwen2_by_name.at("output.weight"), (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(qwen2_by_name.at("blk.1.attn_v.bias"), (std::vector<int64_t>{16}));
  EXPECT_EQ(qwen2_by_name.count("blk.0.attn_q_norm.weight"), 0u);
  EXPECT_EQ(model_tensor(qwen2, TensorRole::AttnKBias, 1).hf_name(), "model.layers.1.self_attn.k_proj.bias");
}

}  // namespace
}  // namespace deltainfer::model
