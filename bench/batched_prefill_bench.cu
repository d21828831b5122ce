// Batched prefill benchmark: one step's prefill chunks of B sequences (C rows each, after P cached
// positions, the last chunk of their prompts) through CudaAttention::prefill_batch (the engine's
// path: varlen launches, Δ's strided rows of every chunk in one) against CudaAttention::prefill
// once per sequence (the path before), for dense, sliding, sliding+Δ and vslash+Δ on a
// Llama-3-8B attention shape (32 heads, 8 KV heads, dim 128). Median of repeats timed with CUDA
// events; many short chunks are where one launch per sequence costs the most.
// Prints "RESULT batched_prefill <method> B=<b> C=<c> P=<p> <per-sequence ms> <batched ms> <speedup>".
//   batched_prefill_bench [--shapes 16x256x0,32x64x8192,16x200x1024,8x1024x4096,4x2048x0] [--repeats 20]
#include <CLI/CLI.hpp>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cuda/cuda_attention.h"
#include "bench_support.cuh"
#include "core/error.h"
#include "model/model_config.h"
#include "model/model_source.h"

namespace {

namespace dc = deltainfer::cuda;
namespace da = deltainfer::attention;
using bench_support::check;
using bench_support::DeviceArray;
using bench_support::fill_random;
using bench_support::median_ms;
using bf16 = __nv_bfloat16;

struct Shape {
  int batch, chunk, cached;
};

struct Method {
  const char* name;
  const char* prefill;
  int gamma;
};

// The synthetic Llama-3.1-8B's shape (deltainfer bench -m synthetic:llama3-8b).
deltainfer::model::ModelConfig llama3_8b() {
  return deltainfer::model::open_synthetic_model_source("synthetic:llama3-8b")->config();
}

da::AttentionConfig config_of(const Method& method) {
  da::AttentionConfig config;
  if (!da::parse_prefill_method(method.prefill, config.prefill)) {
    std::fprintf(stderr, "unknown prefill method %s\n", method.prefill);
    std::exit(1);
  }
  config.prefill.gamma = method.gamma;
  config.prefill.block = 64;
  return config;  // window 2048, sink 64, dense tail 128, vslash knobs: the defaults
}

std::vector<Shape> parse_shapes(const std::vector<std::string>& texts) {
  std::vector<Shape> shapes;
  for (const std::string& text : texts) {
    Shape s{};
    char x1 = 0, x2 = 0;
    std::istringstream in(text);
    if (!(in >> s.batch >> x1 >> s.chunk >> x2 >> s.cached) || x1 != 'x' || x2 != 'x' || s.batch < 1 ||
        s.chunk < 1 || s.cached < 0 || s.cached % 64 != 0) {
      std::fprintf(stderr, "--shapes: %s is not BxCxP (P a multiple of 64, Δ's γ)\n", text.c_str());
      std::exit(2);
    }
    shapes.push_back(s);
  }
  return shapes;
}

void run(const Method& method, const Shape& s, int repeats) {
  const deltainfer::model::ModelConfig model = llama3_8b();
  const int kv_len = s.cached + s.chunk;
  const int pages = (kv_len + dc::kKvPageSize - 1) / dc::kKvPageSize;
  const size_t row_elems = static_cast<size_t>(model.n_heads) * model.head_dim;
  const size_t rows = static_cast<size_t>(s.batch) * s.chunk;
  const size_t pool_elems = static_cast<size_t>(s.batch) * pages * model.n_kv_heads * dc::kKvPageSize * model.head_dim;
  DeviceArray q(rows * row_elems * sizeof(bf16)), out(rows * row_elems * sizeof(bf16));
  DeviceArray k(pool_elems * sizeof(bf16)), v(pool_elems * sizeof(bf16));
  fill_random(q.as<bf16>(), rows * row_elems, 1);
  fill_random(k.as<bf16>(), pool_elems, 2);
  fill_random(v.as<bf16>(), pool_elems, 3);
  std::vector<int32_t> tables(static_cast<size_t>(s.batch) * pages);
  for (size_t i = 0; i < tables.size(); ++i) tables[i] = static_cast<int32_t>(i);  // sequence b: pages b*pages..
  DeviceArray d_tables(tables.size() * sizeof(int32_t));
  check(cudaMemcpy(d_tables.ptr, tables.data(), tables.size() * sizeof(int32_t), cudaMemcpyHostToDevice), "tables");

  // Workspaces for a step of B * C rows (CudaAttention plans max_chunk + max_batch - 1). Its
  // capacity at least that chunk: vertical-slash's estimator plans chunks within the cache, and
  // refused every shape whose step outgrew one sequence's kv_len.
  const int64_t step_chunk = int64_t{s.batch} * s.chunk - s.batch + 1;
  dc::CudaAttention attention(config_of(method), model, std::max<int64_t>(kv_len, step_chunk), step_chunk, s.batch);
  std::vector<dc::VarlenChunk> chunks;
  std::vector<int64_t> prompt_ends;
  for (int b = 0; b < s.batch; ++b) {
    chunks.push_back({b * s.chunk, s.chunk, s.cached, kv_len, b, 0});
    prompt_ends.push_back(kv_len);
  }
  dc::VarlenPrefillArgs batch;
  batch.q = q.as<bf16>();
  batch.out = out.as<bf16>();
  batch.kv = dc::bf16_batch_kv(k.as<bf16>(), v.as<bf16>(), s.batch * pages, model.n_kv_heads, model.head_dim,
                               d_tables.as<int32_t>(), pages, s.batch);

  const float per_sequence = median_ms(
      [&] {
        for (int b = 0; b < s.batch; ++b) {
          const dc::PagedKv kv = dc::sequence_kv(batch.kv, b, kv_len);
          attention.prefill(0, q.as<bf16>() + static_cast<size_t>(b) * s.chunk * row_elems, s.chunk, s.cached, kv_len, kv,
                            out.as<bf16>() + static_cast<size_t>(b) * s.chunk * row_elems, nullptr);
        }
      },
      repeats);
  const float batched = median_ms([&] { attention.prefill_batch(0, batch, chunks, prompt_ends, nullptr); }, repeats);
  std::printf("RESULT batched_prefill %s B=%d C=%d P=%d %.4f %.4f %.2f\n", method.name, s.batch, s.chunk, s.cached,
              per_sequence, batched, per_sequence / batched);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Batched prefill: one varlen step against one call per sequence"};
  std::vector<std::string> shape_texts = {"16x256x0", "32x64x8192", "16x200x1024", "8x1024x4096", "4x2048x0"};
  int repeats = 20;
  app.add_option("--shapes", shape_texts, "BxCxP: B sequences, C-row chunks after P cached positions")
      ->delimiter(',');
  app.add_option("--repeats", repeats, "Timed runs per measurement (median)");
  CLI11_PARSE(app, argc, argv);
  const std::vector<Shape> shapes = parse_shapes(shape_texts);
  const std::vector<Method> methods = {{"dense", "dense", 64},
                                       {"sliding", "sliding", 64},
                                       {"sliding+delta", "sliding+delta", 64},
                                       {"sliding+delta-g16", "sliding+delta", 16},
                                       {"vslash+delta", "vslash+delta", 64}};
  // A shape a method's kernels refuse is reported and skipped; the exit status says that one was.
  int refused = 0;
  for (const Shape& s : shapes) {
    for (const Method& m : methods) {
      try {
        run(m, s, repeats);
      } catch (const deltainfer::InputError& e) {
        std::printf("REFUSED batched_prefill %s B=%d C=%d P=%d: %s\n", m.name, s.batch, s.chunk, s.cached, e.what());
        ++refused;
      }
    }
  }
  return refused == 0 ? 0 : 1;
}
