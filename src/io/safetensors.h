#pragma once
// safetensors reader: u64 header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then the data. Memory-mapped and validated on open. SafetensorsCheckpoint gathers a directory's
// model.safetensors, or the shards listed in model.safetensors.index.json.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace deltainfer::io {

class MappedFile;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as in the file: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;  // outermost first
  uint64_t n_elements = 0;
  uint64_t begin = 0;          // byte range relative to the start of the data section
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Throws InputError "<path>: <problem>" for a missing, truncated or malformed file.
  static SafetensorsFile open(const std::string& path);
  // Validates an image in memory, which must outlive the returned object.
  static SafetensorsFile parse(const uint8_t* data, size_t size, const std::string& label);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  const uint8_t* tensor_data(const SafetensorsTensor& tensor) const { return data_ + data_offset_ + tensor.begin; }
  // Converts an F32, F16 or BF16 tensor to float; n must equal its element count.
  void read_f32(const SafetensorsTensor& tensor, float* dst, int64_t n) const;

 private:
  SafetensorsFile() = default;
  void parse_header();

  std::shared_ptr<const MappedFile> mapping_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint64_t data_offset_ = 0;
  std::string path_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

class SafetensorsCheckpoint {
 public:
  // `dir` holds model.safetensors, or model.safetensors.index.json and the shards it names.
  static SafetensorsCheckpoint open_dir(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::vector<SafetensorsFile>& files() const { return files_; }
  // The tensor and the file that holds it; nullptr when absent.
  const SafetensorsTensor* find(std::string_view name, const SafetensorsFile** file = nullptr) const;

 private:
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t, std::less<>> file_of_tensor_;
};

// Bytes per element of a safetensors dtype, 0 when unknown.
size_t safetensors_dtype_size(std::string_view dtype);

// The path of `name` inside the checkpoint directory `dir`. Plain concatenation on purpose: a
// name read from an index file never replaces the directory, even when it starts with '/'.
std::string checkpoint_file(const std::string& dir, const std::string& name);

}  // namespace deltainfer::io
