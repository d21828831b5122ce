#pragma once
// Dense GEMM through cuBLASLt for the linear layers: y[m][n] = x[m][k] · W[n][k]^T, bf16 inputs,
// f32 accumulation, bf16 or f32 output (the f32 form can add into y: residual += x · W^T).
// Row-major, weights as stored by the model ([out][in]). The algorithm for each shape is chosen
// by cuBLASLt's heuristic on first use and cached; warm every shape once before capturing a CUDA
// graph (the first call queries the heuristic on the host). Not thread-safe: one Gemm per stream.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <map>
#include <memory>
#include <tuple>

namespace deltainfer::cuda {

class Gemm {
 public:
  // Allocates the cuBLASLt workspace once (32 MiB suits Hopper's larger kernels).
  explicit Gemm(size_t workspace_bytes = size_t{32} << 20);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  void run(const __nv_bfloat16* x, const __nv_bfloat16* weight, __nv_bfloat16* y, int m, int n, int k,
           cudaStream_t stream);
  // accumulate: y += x · W^T instead of y = x · W^T.
  void run(const __nv_bfloat16* x, const __nv_bfloat16* weight, float* y, int m, int n, int k, bool accumulate,
           cudaStream_t stream);

 private:
  struct Plan;
  using Key = std::tuple<int, int, int, int, bool>;  // m, n, k, output type, accumulate
  const Plan& plan_for(int m, int n, int k, cudaDataType_t out_type, bool accumulate);
  void launch(const void* x, const void* weight, void* y, int m, int n, int k, cudaDataType_t out_type,
              bool accumulate, cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace deltainfer::cuda
