#pragma once
// Test support shared by the model and GPU tests.
#include <cstdlib>
#include <optional>
#include <string>

namespace deltainfer::testing {

// Pins the CPU backend's weight storage (DELTAINFER_CPU_WEIGHTS, read when a CpuTransformer is
// built) while in scope, then restores what was there. The default is native (GGUF blocks, 8-bit
// activations); tests whose bounds come from the f32 reference path pin "f32" and say why.
class ScopedCpuWeights {
 public:
  explicit ScopedCpuWeights(const char* storage) {
    if (const char* value = std::getenv(kVariable)) previous_ = value;
    ::setenv(kVariable, storage, 1);
  }
  ~ScopedCpuWeights() {
    if (previous_) {
      ::setenv(kVariable, previous_->c_str(), 1);
    } else {
      ::unsetenv(kVariable);
    }
  }
  ScopedCpuWeights(const ScopedCpuWeights&) = delete;
  ScopedCpuWeights& operator=(const ScopedCpuWeights&) = delete;

 private:
  static constexpr const char* kVariable = "DELTAINFER_CPU_WEIGHTS";
  std::optional<std::string> previous_;
};

}  // namespace deltainfer::testing
