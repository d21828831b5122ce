#include "backend/cuda/gemm.h"

#include "backend/cuda/cuda_check.h"
#include <memory>
#include <utility>

#include "core/error.h"

namespace deltainfer::cuda {

// Column-major view used by cuBLASLt: y^T[n][m] = W (k×n, transposed) · x^T (k×m).
struct Gemm::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

Gemm::Gemm(size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  if (workspace_bytes_ > 0) CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

Gemm::~Gemm() {
  for (auto& [key, plan] : plans_) {
    cublasLtMatrixLayoutDestroy(plan->a);
    cublasLtMatrixLayoutDestroy(plan->b);
    cublasLtMatrixLayoutDestroy(plan->c);
    cublasLtMatmulDescDestroy(plan->op);
  }
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

const Gemm::Plan& Gemm::plan_for(int m, int n, int k, cudaDataType_t out_type, bool accumulate) {
  const Key key{m, n, k, static_cast<int>(out_type), accumulate};
  if (auto found = plans_.find(key); found != plans_.end()) return *found->second;
  auto plan = std::make_unique<Plan>();
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose)));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->a, CUDA_R_16BF, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->b, CUDA_R_16BF, static_cast<uint64_t>(k), static_cast<uint64_t>(m), k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->c, out_type, static_cast<uint64_t>(n), static_cast<uint64_t>(m), n));
  cublasLtMatmulPreference_t preference = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes_, sizeof(workspace_bytes_)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_, plan->op, plan->a, plan->b, plan->c, plan->c,
                                                               preference, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  CUBLAS_CHECK(status);
  if (found == 0) throw_error("Gemm: cuBLASLt has no algorithm for m={} n={} k={}", m, n, k);
  plan->algo = result.algo;
  return *plans_.emplace(key, std::move(plan)).first->second;
}

void Gemm::launch(const void* x, const void* weight, void* y, int m, int n, int k, cudaDataType_t out_type,
                  bool accumulate, cudaStream_t stream) {
  if (m <= 0 || n <= 0 || k <= 0) throw_input_error("Gemm: shape m={} n={} k={} must be positive", m, n, k);
  const Plan& plan = plan_for(m, n, k, out_type, accumulate);
  const float alpha = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, plan.op, &alpha, weight, plan.a, x, plan.b, &beta, y, plan.c, y, plan.c,
                              &plan.algo, workspace_, workspace_bytes_, stream));
}

void Gemm::run(const __nv_bfloat16* x, const __nv_bfloat16* weight, __nv_bfloat16* y, int m, int n, int k,
               cudaStream_t stream) {
  launch(x, weight, y, m, n, k, CUDA_R_16BF, false, stream);
}

void Gemm::run(const __nv_bfloat16* x, const __nv_bfloat16* weight, float* y, int m, int n, int k, bool accumulate,
               cudaStream_t stream) {
  launch(x, weight, y, m, n, k, CUDA_R_32F, accumulate, stream);
}

}  // namespace deltainfer::cuda
