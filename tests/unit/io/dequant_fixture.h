#pragma once
// Reads a fixture written by scripts/gen-dequant-fixtures: stored bytes of a ggml type and the
// floats the `gguf` Python package dequantizes them to.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/ggml_type.h"

namespace deltainfer::test {

struct DequantFixture {
  io::GgmlType type = io::GgmlType::F32;
  std::vector<uint8_t> raw;
  std::vector<float> expected;
};

inline DequantFixture load_dequant_fixture(const std::string& name) {
  const std::string path = std::string(DELTAINFER_SOURCE_DIR) + "/tests/fixtures/io/" + name + ".bin";
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint32_t header[4] = {};
  if (bytes.size() < sizeof header) throw std::runtime_error(path + ": missing or truncated fixture");
  std::memcpy(header, bytes.data(), sizeof header);
  const size_t n = header[2];
  const size_t n_raw = header[3];
  if (header[0] != 0x51444644 || bytes.size() != sizeof header + n_raw + n * sizeof(float)) {
    throw std::runtime_error(path + ": malformed fixture");
  }
  DequantFixture fixture;
  fixture.type = static_cast<io::GgmlType>(header[1]);
  fixture.raw.assign(bytes.begin() + sizeof header, bytes.begin() + static_cast<std::ptrdiff_t>(sizeof header + n_raw));
  fixture.expected.resize(n);
  std::memcpy(fixture.expected.data(), bytes.data() + sizeof header + n_raw, n * sizeof(float));
  return fixture;
}

// Bit-for-bit equality, except that any NaN matches any NaN (payloads are not part of the contract).
inline bool same_float(float a, float b) {
  if (a != a && b != b) return true;
  uint32_t x;
  uint32_t y;
  std::memcpy(&x, &a, sizeof x);
  std::memcpy(&y, &b, sizeof y);
  return x == y;
}

}  // namespace deltainfer::test
