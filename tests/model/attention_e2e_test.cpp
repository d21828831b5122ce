// Every attention policy end to end on SmolLM2-135M with a short passkey prompt (~640 tokens):
// the policies that keep the passkey's tokens reachable must retrieve it, and the fidelity report
// must show each policy attending what it promises. Greedy decoding, CPU backend.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cpu/cpu_transformer.h"
#include "engine/engine.h"
#include "model_test_support.h"

namespace deltainfer {
namespace {

using attention::AttentionConfig;
using attention::DecodeKind;
using attention::Phase;
using attention::PrefillKind;

// The usual passkey task: a key hidden between repetitions of filler, then the question.
struct Passkey {
  std::string prompt;
  std::string key;
};

Passkey make_passkey(const std::string& key, int filler_before, int filler_after) {
  const std::string filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
  Passkey passkey{"There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
                  "I will quiz you about the important information there.\n",
                  key};
  for (int i = 0; i < filler_before; ++i) passkey.prompt += filler;
  passkey.prompt += "The pass key is " + key + ". Remember it. " + key + " is the pass key. ";
  for (int i = 0; i < filler_after; ++i) passkey.prompt += filler;
  passkey.prompt += "\nWhat is the pass key? The pass key is";
  return passkey;
}

struct PolicyRun {
  std::string text;
  std::vector<int32_t> tokens;
  int64_t prompt_tokens = 0;
  attention::FidelityReport fidelity{0, ""};
};

PolicyRun run_policy(AttentionConfig attention, const Passkey& passkey) {
  attention.instrument = true;
  engine::EngineConfig config;
  config.model_path = testing::smollm2_path();
  config.context = 1024;
  config.prefill_chunk = 256;
  config.threads = 2;
  config.attention = attention;
  engine::Engine engine = engine::Engine::open(config);
  const tokenizer::Tokenizer& tok = engine.tokenizer();
  engine::GenerationRequest request;
  if (tok.add_bos() && tok.bos_id()) request.prompt.push_back(*tok.bos_id());
  const std::vector<int32_t> body = tok.encode(passkey.prompt, /*parse_special=*/false);
  request.prompt.insert(request.prompt.end(), body.begin(), body.end());
  request.max_tokens = 6;
  request.sampling.temperature = 0;
  const engine::GenerationResult result = engine.generate(request);
  auto& cpu = dynamic_cast<backend::cpu::CpuTransformer&>(engine.transformer());
  return {result.text, result.tokens, static_cast<int64_t>(request.prompt.size()), cpu.attention().fidelity()};
}

const Passkey& passkey() {
  static const Passkey value = make_passkey("71432", 12, 12);
  return value;
}

AttentionConfig decode_policy(DecodeKind kind, int64_t budget) {
  AttentionConfig config;
  config.decode.kind = kind;
  config.decode.budget = budget;
  config.decode.recency = 32;
  return config;
}

double mean_decode_attended(const attention::FidelityReport& report, int layer) {
  const attention::LayerFidelity& f = report.at(Phase::Decode, layer);
  return static_cast<double>(f.attended) / static_cast<double>(f.query_heads);
}

TEST(AttentionEndToEnd, DenseRetrievesThePasskey) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const PolicyRun run = run_policy(AttentionConfig{}, passkey());
  EXPECT_NE(run.text.find(passkey().key), std::string::npos) << run.text;
  EXPECT_GT(run.prompt_tokens, 600);
  EXPECT_NEAR(run.fidelity.at(Phase::Decode, 20).recall_min, 1.0, 1e-5);
}

TEST(AttentionEndToEnd, DeltaDecodeRetrievesWithAFifthOfTheTokens) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const PolicyRun run = run_policy(decode_policy(DecodeKind::Delta, 128), passkey());
  EXPECT_NE(run.text.find(passkey().key), std::string::npos) << run.text;
  EXPECT_GT(mean_decode_attended(run.fidelity, 0), 600);   // full layer
  EXPECT_LE(mean_decode_attended(run.fidelity, 5), 128);   // sparse layer
  EXPECT_GT(run.fidelity.at(Phase::Decode, 5).recall_sum / static_cast<double>(run.fidelity.at(Phase::Decode, 5).recall_count), 0.5);
}

TEST(AttentionEndToEnd, DeltaDecodeWithTheWholeContextEqualsDense) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const PolicyRun dense = run_policy(AttentionConfig{}, passkey());
  const PolicyRun delta = run_policy(decode_policy(DecodeKind::Delta, 1024), passkey());
  EXPECT_EQ(delta.tokens, dense.tokens);
}

TEST(AttentionEndToEnd, TidalRetrievesThePasskey) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const PolicyRun run = run_policy(decode_policy(DecodeKind::Tidal, 128), passkey());
  EXPECT_NE(run.text.find(passkey().key), std::string::npos) << run.text;
  EXPECT_LE(mean_decode_attended(run.fidelity, 10), 128);
}

TEST(AttentionEndToEnd, QuestRetrievesThePasskey) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const PolicyRun run = run_policy(decode_policy(DecodeKind::Quest, 128), passkey());
  EXPECT_NE(run.text.find(passkey().key), std::string::npos) << run.text;
  EXPECT_GT(mean_decode_attended(run.fidelity, 1), 600);  // first two layers dense
  EXPECT_LE(mean_decode_attended(run.fidelity, 2), 128);
}

TEST(AttentionEndToEnd, StreamingAttendsOnlySinkAndWindow) {
  DELTAINFER_REQUIRE_SMOLLM2();
  AttentionConfig config;
  config.prefill.kind = PrefillKind::Sliding;
  config.decode.kind = DecodeKind::Streaming;
  config.window = 64;
  config.sink = 4;
  const PolicyRun run = run_policy(config, passkey());
  for (int layer : {0, 15, 29}) {
    EXPECT_DOUBLE_EQ(mean_decode_attended(run.fidelity, layer), 68.0);
    EXPECT_LT(run.fidelity.at(Phase::Prefill, layer).attended, run.fidelity.at(Phase::Prefill, layer).dense_attended / 4);
  }
  // The key sits hundreds of tokens before the question: the window cannot see it.
  EXPECT_EQ(run.text.find(passkey().key), std::string::npos) << run.text;
}

TEST(AttentionEndToEnd, SlidingPrefillWithDeltaCorrectionRetrievesAtSmallGamma) {
  DELTAINFER_REQUIRE_SMOLLM2();
  AttentionConfig config;
  config.prefill.kind = PrefillKind::Sliding;
  config.prefill.delta = true;
  config.prefill.gamma = 2;
  config.window = 128;
  config.sink = 64;
  const PolicyRun run = run_policy(config, passkey());
  EXPECT_NE(run.text.find(passkey().key), std::string::npos) << run.text;
  const attention::LayerFidelity& f = run.fidelity.at(Phase::Prefill, 10);
  EXPECT_GT(f.cosine_sum / static_cast<double>(f.query_heads), 0.9);
}

TEST(AttentionEndToEnd, VerticalSlashPrefillRetrievesThePasskey) {
  DELTAINFER_REQUIRE_SMOLLM2();
  AttentionConfig config;
  config.prefill.kind = PrefillKind::VerticalSlash;
  config.prefill.vertical = 32;
  config.prefill.slash = 32;
  const PolicyRun run = run_policy(config, passkey());
  EXPECT_NE(run.text.find(passkey().key), std::string::npos) << run.text;
  const attention::LayerFidelity& f = run.fidelity.at(Phase::Prefill, 10);
  EXPECT_LT(f.attended, f.dense_attended);
}

}  // namespace
}  // namespace deltainfer
