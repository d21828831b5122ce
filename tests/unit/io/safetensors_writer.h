#pragma once
// Test-only safetensors writer: F32/F16/BF16 tensors with a JSON header, as the format specifies.
// GCC's -Wnull-dereference misfires on nlohmann's inlined iterators (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace deltainfer::test {

class SafetensorsWriter {
 public:
  SafetensorsWriter& add(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
                         const std::vector<uint8_t>& bytes) {
    header_[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {data_.size(), data_.size() + bytes.size()}}};
    data_.insert(data_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  SafetensorsWriter& add_f32(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& v) {
    std::vector<uint8_t> bytes(v.size() * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
    return add(name, "F32", shape, bytes);
  }
  nlohmann::json& header() { return header_; }

  std::vector<uint8_t> bytes() const { return bytes_with_header(header_.dump()); }
  std::vector<uint8_t> bytes_with_header(std::string text) const {
    while (text.size() % 8 != 0) text += ' ';
    const uint64_t n = text.size();
    std::vector<uint8_t> out(8 + text.size() + data_.size());
    std::memcpy(out.data(), &n, 8);
    std::memcpy(out.data() + 8, text.data(), text.size());
    if (!data_.empty()) std::memcpy(out.data() + 8 + text.size(), data_.data(), data_.size());
    return out;
  }
  void write(const std::string& path) const { write_bytes(path, bytes()); }
  static void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                static_cast<std::streamsize>(bytes.size()));
  }

 private:
  nlohmann::json header_ = nlohmann::json::object();
  std::vector<uint8_t> data_;
};

}  // namespace deltainfer::test

#pragma GCC diagnostic pop
