// libFuzzer entry point for the safetensors reader: any input must parse or throw InputError, and
// every tensor of a file that parses must be readable.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = deltainfer::io::SafetensorsFile::parse(data, size, "fuzz.safetensors");
    std::vector<float> out;
    for (const auto& tensor : file.tensors()) {
      if (tensor.dtype != "F32" && tensor.dtype != "F16" && tensor.dtype != "BF16") continue;
      if (tensor.n_elements > (uint64_t{1} << 24)) continue;
      out.resize(tensor.n_elements);
      file.read_f32(tensor, out.data(), static_cast<int64_t>(tensor.n_elements));
    }
  } catch (const deltainfer::InputError&) {
  }
  return 0;
}
