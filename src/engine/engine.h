#pragma once
// Engine: a loaded model (weights on a backend + its tokenizer) ready to generate. Built once from
// an EngineConfig that the edge (CLI, server) has parsed and validated.
#include <functional>
#include <memory>
#include <string>

#include "attention/attention_config.h"
#include "engine/generator.h"
#include "model/model_source.h"
#include "runtime/transformer.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::engine {

enum class BackendKind { Cpu, Cuda };

struct EngineConfig {
  std::string model_path;
  BackendKind backend = BackendKind::Cpu;
  int64_t context = 0;        // KV positions; 0: the model's trained context, capped at 8192
  int64_t prefill_chunk = 512;
  int threads = 0;            // CPU threads; 0: all
  int64_t kv_pages = 0;       // KV pages shared by all sequences; 0: max_batch sequences of `context`
  int max_batch = 1;          // most sequences in one forward pass
  KvDtype kv_dtype = KvDtype::Bf16;  // the CUDA KV pools' element type (--kv-dtype)
  attention::AttentionConfig attention;
};

// Builds the transformer of a non-CPU backend; set by the CLI when it is built with that backend.
using TransformerFactory =
    std::function<std::unique_ptr<runtime::Transformer>(const model::ModelSource&, const runtime::BackendOptions&)>;

class Engine {
 public:
  static Engine open(const EngineConfig& config, const TransformerFactory& cuda_factory = {});

  const model::ModelConfig& model_config() const { return source_->config(); }
  const model::ModelSource& source() const { return *source_; }
  // Throws InputError for synthetic models, which have no vocabulary.
  const tokenizer::Tokenizer& tokenizer() const;
  runtime::Transformer& transformer() { return *transformer_; }

  // Starts a new sequence (clears the KV cache) and generates.
  GenerationResult generate(const GenerationRequest& request, const TextCallback& on_text = {});

 private:
  Engine() = default;

  std::unique_ptr<model::ModelSource> source_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<runtime::Transformer> transformer_;
};

}  // namespace deltainfer::engine
