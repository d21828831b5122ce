// Token choice on the device (CudaTransformer::forward_and_sample) on SmolLM2: greedy must pick
// exactly what the host's argmax picks from the same backend's logits (same kernels, so the same
// bits), and seeded sampling must be reproducible, vary with the seed, and stay in the kept set.
// The model is found at $DELTAINFER_MODEL or models/; the test skips when it is absent.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "backend/cuda/cuda_transformer.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "model/model_source.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer {
namespace {

std::string model_path() {
  if (const char* path = std::getenv("DELTAINFER_MODEL")) return path;
  return std::string(DELTAINFER_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

const char* const kPrompts[] = {
    "The capital of France is",
    "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n",
};

struct Gpu {
  explicit Gpu(const std::string& path) : source(model::open_model_source(path)), tok(tokenizer::Tokenizer::load(path)) {
    runtime::BackendOptions options;
    options.capacity = 512;
    options.prefill_chunk = 16;  // several chunks: the last chunk's rows give the first token
    model = cuda::make_cuda_transformer(*source, options);
  }
  std::unique_ptr<model::ModelSource> source;
  tokenizer::Tokenizer tok;
  std::unique_ptr<runtime::Transformer> model;
};

std::vector<int32_t> host_greedy(runtime::Transformer& m, const std::vector<int32_t>& prompt, int count) {
  std::vector<float> logits(static_cast<size_t>(m.config().vocab_size));
  m.truncate(0);
  m.forward(prompt.data(), static_cast<int64_t>(prompt.size()), runtime::LogitsFor::LastToken, logits.data());
  std::vector<int32_t> tokens;
  for (int i = 0; i < count; ++i) {
    tokens.push_back(engine::argmax(logits.data(), m.config().vocab_size));
    m.forward(&tokens.back(), 1, runtime::LogitsFor::LastToken, logits.data());
  }
  return tokens;
}

std::vector<int32_t> device_tokens(runtime::Transformer& m, const std::vector<int32_t>& prompt, int count,
                                   const runtime::DeviceSampling& sampling) {
  m.truncate(0);
  std::vector<int32_t> tokens{m.forward_and_sample(prompt.data(), static_cast<int64_t>(prompt.size()), sampling)};
  while (static_cast<int>(tokens.size()) < count) tokens.push_back(m.forward_and_sample(&tokens.back(), 1, sampling));
  return tokens;
}

TEST(DeviceSampling, GreedyOnTheDeviceEqualsHostArgmaxOfTheSameLogits) {
  const std::string path = model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  Gpu gpu(path);
  ASSERT_TRUE(gpu.model->samples_on_device());
  for (const char* prompt : kPrompts) {
    const std::vector<int32_t> ids = gpu.tok.encode(prompt, /*parse_special=*/true);
    EXPECT_EQ(device_tokens(*gpu.model, ids, 32, runtime::DeviceSampling{}), host_greedy(*gpu.model, ids, 32))
        << "prompt: " << prompt;
  }
}

TEST(DeviceSampling, SeededSamplingIsReproducibleAndFollowsTheSeed) {
  const std::string path = model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  Gpu gpu(path);
  const std::vector<int32_t> ids = gpu.tok.encode(kPrompts[1], /*parse_special=*/true);
  const runtime::DeviceSampling a{1.0f, 40, 0.95f, 7};
  const runtime::DeviceSampling b{1.0f, 40, 0.95f, 8};
  const std::vector<int32_t> first = device_tokens(*gpu.model, ids, 48, a);
  EXPECT_EQ(device_tokens(*gpu.model, ids, 48, a), first);  // same seed, same tokens (graphs replayed)
  EXPECT_NE(device_tokens(*gpu.model, ids, 48, b), first);  // another seed draws differently
  // Greedy after sampling: the sampled graphs are recaptured for the new settings.
  EXPECT_EQ(device_tokens(*gpu.model, ids, 16, runtime::DeviceSampling{}), host_greedy(*gpu.model, ids, 16));
  // Every sampled token is one of the top 40 of its step's logits (host check on the same path).
  std::vector<float> logits(static_cast<size_t>(gpu.model->config().vocab_size));
  gpu.model->truncate(0);
  gpu.model->forward(ids.data(), static_cast<int64_t>(ids.size()), runtime::LogitsFor::LastToken, logits.data());
  for (int32_t token : first) {
    int larger = 0;
    for (float v : logits) larger += v > logits[static_cast<size_t>(token)];
    ASSERT_LT(larger, 40) << "token " << token << " is outside the top-k set";
    gpu.model->forward(&token, 1, runtime::LogitsFor::LastToken, logits.data());
  }
}

}  // namespace
}  // namespace deltainfer
