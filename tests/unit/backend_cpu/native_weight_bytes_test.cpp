// The host memory plan counts CpuWeights' native storage before loading: blocks of the types a
// CPU kernel reads as stored, every other tensor (F16, types without a kernel) as f32.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/cpu/cpu_weights.h"
#include "io/gguf.h"
#include "unit/io/gguf_writer.h"

namespace deltainfer::backend::cpu {
namespace {

TEST(NativeWeightBytes, KernelTypesAsStoredOthersAsF32) {
  test::GgufWriter w;
  w.str("general.architecture", "llama");
  w.tensor("q8.weight", {64, 3}, io::GgmlType::Q8_0, std::vector<uint8_t>(3 * 2 * 34));   // 2 blocks a row
  w.tensor("f16.weight", {32, 5}, io::GgmlType::F16, std::vector<uint8_t>(32 * 5 * 2));
  w.f32_tensor("norm.weight", {32}, std::vector<float>(32, 1.0f));
  const std::string path = ::testing::TempDir() + "/native_weight_bytes.gguf";
  w.write(path);
  const io::GgufFile file = io::GgufFile::open(path);
  EXPECT_EQ(native_weight_bytes(file), uint64_t{3 * 2 * 34} + 32 * 5 * 4 + 32 * 4);
}

}  // namespace
}  // namespace deltainfer::backend::cpu
