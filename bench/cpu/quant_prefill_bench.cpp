// Prefill-sized products against a quantized weight, both ways: panel_matmul (dequantized f32
// panels + OpenBLAS sgemm) and quant_matmul (8-bit activations, the tile kernels of the best
// instruction set). Random valid blocks, Qwen2.5-0.5B's shapes by default. Prints the median wall
// time of each over the repeats, alternating the two so that machine load hits both alike.
//   quant_prefill_bench [--threads T] [--rows N] [--repeats R] [--types q5_0,q8_0,...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/quant/panel_matmul.h"
#include "backend/cpu/quant/quant_matmul.h"
#include "random_blocks.h"

namespace {

using deltainfer::backend::cpu::quant::QuantizedMatrix;
using deltainfer::io::GgmlType;

struct Shape {
  int64_t out, in;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename F>
double seconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

GgmlType parse_type(const std::string& name) {
  if (name == "q4_0") return GgmlType::Q4_0;
  if (name == "q4_1") return GgmlType::Q4_1;
  if (name == "q5_0") return GgmlType::Q5_0;
  if (name == "q5_1") return GgmlType::Q5_1;
  if (name == "q8_0") return GgmlType::Q8_0;
  std::fprintf(stderr, "unknown type %s (q4_0, q4_1, q5_0, q5_1, q8_0)\n", name.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, repeats = 5;
  int64_t n = 512;
  std::vector<GgmlType> types = {GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_1};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--threads") {
      threads = std::atoi(value.c_str());
    } else if (flag == "--rows") {
      n = std::atoll(value.c_str());
    } else if (flag == "--repeats") {
      repeats = std::atoi(value.c_str());
    } else if (flag == "--types") {
      types.clear();
      for (size_t at = 0; at <= value.size();) {
        const size_t comma = std::min(value.find(',', at), value.size());
        types.push_back(parse_type(value.substr(at, comma - at)));
        at = comma + 1;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  // Qwen2.5-0.5B: q/o (896 x 896), k/v (128 x 896), gate/up (4864 x 896), down (896 x 4864).
  const Shape shapes[] = {{896, 896}, {128, 896}, {4864, 896}, {896, 4864}};
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::printf("rows %lld, threads %d, %d repeats (median ms; GMAC/s)\n", static_cast<long long>(n), threads, repeats);
  std::printf("%-5s %11s %9s %9s %8s %8s %6s\n", "type", "shape", "panel_ms", "tile_ms", "panel_G", "tile_G",
              "ratio");
  for (GgmlType type : types) {
    for (const Shape& shape : shapes) {
      const QuantizedMatrix w = deltainfer::testing::random_matrix(type, shape.out, shape.in, rng);
      std::vector<float> x(static_cast<size_t>(n * shape.in));
      for (float& v : x) v = normal(rng);
      std::vector<float> y(static_cast<size_t>(n * shape.out));
      std::vector<double> panel, tile;
      for (int r = 0; r <= repeats; ++r) {  // the first round warms caches and the pool, not counted
        const double p = seconds([&] {
          deltainfer::backend::cpu::quant::panel_matmul(x.data(), w, nullptr, y.data(), n, threads);
        });
        const double t = seconds([&] {
          deltainfer::backend::cpu::quant::quant_matmul(x.data(), w, nullptr, y.data(), n, threads);
        });
        if (r > 0) {
          panel.push_back(p);
          tile.push_back(t);
        }
      }
      const double macs = static_cast<double>(n) * static_cast<double>(shape.out * shape.in);
      const double p = median(panel), t = median(tile);
      char name[32];
      std::snprintf(name, sizeof name, "%lldx%lld", static_cast<long long>(shape.out), static_cast<long long>(shape.in));
      std::printf("%-5s %11s %9.2f %9.2f %8.1f %8.1f %6.2f\n", deltainfer::io::ggml_type_name(type), name, p * 1e3,
                  t * 1e3, macs / p * 1e-9, macs / t * 1e-9, p / t);
    }
  }
  return 0;
}
