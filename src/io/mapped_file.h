#pragma once
// A whole file mapped read-only into memory; model files are far larger than we want to copy.
#include <cstddef>
#include <cstdint>
#include <string>

namespace deltainfer::io {

class MappedFile {
 public:
  // Throws InputError naming the path when it cannot be opened, is a directory, or cannot be mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace deltainfer::io
