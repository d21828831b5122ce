#pragma once
// Test-only GGUF writer: builds small v2/v3 images in memory with any metadata and tensors, so
// the reader can be checked against files whose every byte we know.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace deltainfer::test {

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t version = 3, uint64_t alignment = 32) : version_(version), alignment_(alignment) {}

  template <typename T>
  GgufWriter& scalar(const std::string& key, io::GgufType type, T value) {
    Bytes& out = begin_kv(key, type);
    put(out, value);
    return *this;
  }
  GgufWriter& u32(const std::string& key, uint32_t value) { return scalar(key, io::GgufType::UInt32, value); }
  GgufWriter& f32(const std::string& key, float value) { return scalar(key, io::GgufType::Float32, value); }
  GgufWriter& str(const std::string& key, const std::string& value) {
    put_string(begin_kv(key, io::GgufType::String), value);
    return *this;
  }
  template <typename T>
  GgufWriter& array(const std::string& key, io::GgufType element_type, const std::vector<T>& values) {
    Bytes& out = begin_kv(key, io::GgufType::Array);
    put(out, static_cast<uint32_t>(element_type));
    put(out, static_cast<uint64_t>(values.size()));
    for (const T& v : values) put(out, v);
    return *this;
  }
  GgufWriter& string_array(const std::string& key, const std::vector<std::string>& values) {
    Bytes& out = begin_kv(key, io::GgufType::Array);
    put(out, static_cast<uint32_t>(io::GgufType::String));
    put(out, static_cast<uint64_t>(values.size()));
    for (const std::string& v : values) put_string(out, v);
    return *this;
  }
  // A key whose value bytes (after the type) are given verbatim: nested arrays, corrupt values.
  GgufWriter& raw_kv(const std::string& key, io::GgufType type, const std::vector<uint8_t>& value_bytes) {
    Bytes& out = begin_kv(key, type);
    out.insert(out.end(), value_bytes.begin(), value_bytes.end());
    return *this;
  }

  // dims in GGML order (innermost first); data must hold the tensor's exact byte size.
  GgufWriter& tensor(const std::string& name, const std::vector<uint64_t>& dims, io::GgmlType type,
                     const std::vector<uint8_t>& data) {
    tensors_.push_back({name, dims, type, data});
    return *this;
  }
  GgufWriter& f32_tensor(const std::string& name, const std::vector<uint64_t>& dims, const std::vector<float>& values) {
    std::vector<uint8_t> data(values.size() * sizeof(float));
    std::memcpy(data.data(), values.data(), data.size());
    return tensor(name, dims, io::GgmlType::F32, data);
  }

  std::vector<uint8_t> bytes() const {
    Bytes out;
    put(out, uint32_t{0x46554747});
    put(out, version_);
    put(out, static_cast<uint64_t>(tensors_.size()));
    put(out, static_cast<uint64_t>(n_kv_));
    out.insert(out.end(), kv_.begin(), kv_.end());
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      put_string(out, t.name);
      put(out, static_cast<uint32_t>(t.dims.size()));
      for (uint64_t d : t.dims) put(out, d);
      put(out, static_cast<uint32_t>(t.type));
      put(out, offset);
      offset = align(offset + t.data.size());
    }
    out.resize(align(out.size()), 0);
    for (const Tensor& t : tensors_) {
      out.insert(out.end(), t.data.begin(), t.data.end());
      out.resize(align(out.size()), 0);
    }
    return out;
  }

  void write(const std::string& path) const {
    const std::vector<uint8_t> image = bytes();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(image.data()),
                                                static_cast<std::streamsize>(image.size()));
  }

  using Bytes = std::vector<uint8_t>;
  template <typename T>
  static void put(Bytes& out, T value) {
    uint8_t buffer[sizeof(T)];
    std::memcpy(buffer, &value, sizeof(T));
    out.insert(out.end(), buffer, buffer + sizeof(T));
  }
  static void put_string(Bytes& out, const std::string& s) {
    put(out, static_cast<uint64_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    io::GgmlType type;
    std::vector<uint8_t> data;
  };

  Bytes& begin_kv(const std::string& key, io::GgufType type) {
    ++n_kv_;
    put_string(kv_, key);
    put(kv_, static_cast<uint32_t>(type));
    return kv_;
  }
  uint64_t align(uint64_t n) const { return (n + alignment_ - 1) / alignment_ * alignment_; }

  uint32_t version_;
  uint64_t alignment_;
  size_t n_kv_ = 0;
  Bytes kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace deltainfer::test
