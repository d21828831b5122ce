// libFuzzer entry point for the GGUF reader: any input must parse or throw InputError, and a file
// that parses must be safe to use: every metadata accessor, every tensor's whole data range, and
// dequantization of the first blocks of every tensor.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "io/dequantize.h"
#include "io/gguf.h"

namespace {

using deltainfer::io::GgufFile;
using deltainfer::io::GgufType;

void touch_metadata(const GgufFile& file) {
  for (const std::string& key : file.keys()) {
    (void)file.type_description(key);
    (void)file.value_summary(key);
    // Every getter either returns or throws InputError for a value of another type.
    try { (void)file.get_string(key); } catch (const deltainfer::InputError&) {}
    try { (void)file.get_int(key); } catch (const deltainfer::InputError&) {}
    try { (void)file.get_float(key); } catch (const deltainfer::InputError&) {}
    try { (void)file.get_bool(key); } catch (const deltainfer::InputError&) {}
    try { (void)file.get_string_array(key); } catch (const deltainfer::InputError&) {}
    try { (void)file.get_int_array(key); } catch (const deltainfer::InputError&) {}
    try { (void)file.get_float_array(key); } catch (const deltainfer::InputError&) {}
  }
}

unsigned touch_tensors(const GgufFile& file) {
  unsigned checksum = 0;
  std::vector<float> out;
  for (const auto& tensor : file.tensors()) {
    const uint8_t* data = file.tensor_data(tensor);
    for (uint64_t i = 0; i < tensor.n_bytes; ++i) checksum += data[i];
    if (!deltainfer::io::can_dequantize(tensor.type)) continue;
    const int64_t block = deltainfer::io::ggml_type_traits(tensor.type).block_size;
    const auto n = static_cast<int64_t>(std::min<uint64_t>(tensor.n_elements, static_cast<uint64_t>(4 * block)));
    out.resize(static_cast<size_t>(n));
    deltainfer::io::dequantize(tensor.type, data, out.data(), n);
    (void)tensor.shape();
  }
  return checksum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const GgufFile file = GgufFile::parse(data, size, "fuzz.gguf");
    touch_metadata(file);
    volatile unsigned sink = touch_tensors(file);
    (void)sink;
  } catch (const deltainfer::InputError&) {
  }
  return 0;
}
