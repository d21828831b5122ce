// The real SmolLM2-135M-Instruct GGUF: config from its metadata, and dequantization identical to
// the `gguf` Python package (fixtures from scripts/gen-dequant-fixtures).
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "io/dequantize.h"
#include "io/gguf.h"
#include "model/model_source.h"
#include "unit/io/dequant_fixture.h"

namespace deltainfer::model {
namespace {

const std::string kModel = DELTAINFER_SOURCE_DIR "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

class SmolLM2Gguf : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::ifstream(kModel).good()) GTEST_SKIP() << kModel << " is absent (scripts/fetch-model fetches it)";
  }
};

TEST_F(SmolLM2Gguf, Config) {
  const auto source = open_model_source(kModel);
  const ModelConfig& c = source->config();
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.d_model, 576);
  EXPECT_EQ(c.ffn_dim, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.context_length, 8192);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.rope_style, RopeStyle::Interleaved);
  EXPECT_EQ(c.rope_theta, 100000.0f);
  EXPECT_EQ(source->format(), "GGUF v3");
  EXPECT_EQ(source->tensor_type_counts(), (std::map<std::string, int64_t>{{"F32", 61}, {"Q4_1", 210}, {"Q8_0", 1}}));
  EXPECT_EQ(source->tensor_shape("token_embd.weight"), (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(source->tensor_shape("blk.0.ffn_down.weight"), (std::vector<int64_t>{576, 1536}));
  EXPECT_EQ(source->gguf()->get_string("tokenizer.ggml.model"), "gpt2");
}

void expect_prefix_matches(const ModelSource& source, const std::string& tensor, const std::string& fixture_name) {
  const test::DequantFixture fixture = test::load_dequant_fixture(fixture_name);
  const io::GgufTensorInfo* info = source.gguf()->find_tensor(tensor);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->type, fixture.type);
  std::vector<float> all(info->n_elements);
  source.read_f32(tensor, all.data(), static_cast<int64_t>(all.size()));
  for (size_t i = 0; i < fixture.expected.size(); ++i) {
    ASSERT_TRUE(test::same_float(all[i], fixture.expected[i])) << tensor << " element " << i;
  }
}

TEST_F(SmolLM2Gguf, Q4_1AttnQMatchesGgufPython) {
  expect_prefix_matches(*open_model_source(kModel), "blk.0.attn_q.weight", "smollm2_blk0_attn_q");
}

TEST_F(SmolLM2Gguf, Q8_0EmbeddingRowsMatchGgufPython) {
  const auto source = open_model_source(kModel);
  expect_prefix_matches(*source, "token_embd.weight", "smollm2_token_embd_rows0to2");
  // Row-wise entry point: row 2 alone.
  const test::DequantFixture fixture = test::load_dequant_fixture("smollm2_token_embd_rows0to2");
  const io::GgufTensorInfo* info = source->gguf()->find_tensor("token_embd.weight");
  std::vector<float> row(576);
  io::dequantize_rows(info->type, source->gguf()->tensor_data(*info), 576, 2, 1, row.data());
  for (size_t i = 0; i < row.size(); ++i) ASSERT_TRUE(test::same_float(row[i], fixture.expected[2 * 576 + i])) << i;
}

TEST_F(SmolLM2Gguf, TruncatedCopyIsAnInputError) {
  std::ifstream in(kModel, std::ios::binary);
  std::vector<char> head(4 << 20);
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  const std::string path = ::testing::TempDir() + "/smollm2_truncated.gguf";
  std::ofstream(path, std::ios::binary).write(head.data(), static_cast<std::streamsize>(head.size()));
  try {
    open_model_source(path);
    FAIL() << "a 4 MiB prefix opened";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("extends past the end of the file"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace deltainfer::model
