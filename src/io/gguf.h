#pragma once
// GGUF (v2, v3) reader: the file is memory-mapped read-only and fully validated when opened, so
// every later accessor is safe. Layout (little-endian): magic "GGUF", version u32, tensor count u64,
// metadata count u64, metadata (key string, type u32, value), tensor infos (name, n_dims u32,
// dims u64[n_dims] innermost first, type u32, offset u64), padding to `general.alignment`
// (default 32), then the tensor data. Strings are a u64 byte length followed by the bytes.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/ggml_type.h"

namespace deltainfer::io {

class MappedFile;

enum class GgufType : uint32_t {
  UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
  String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
};

const char* gguf_type_name(GgufType type);  // "u8", ..., "f64", "bool", "string", "array"

struct GgufArray {
  GgufType element_type = GgufType::UInt8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;            // numeric and bool elements, packed, in the file
  std::vector<std::string_view> strings;   // element_type == String
  std::vector<GgufArray> arrays;           // element_type == Array (nested)
};

struct GgufValue {
  GgufType type = GgufType::UInt8;
  const uint8_t* raw = nullptr;            // numeric and bool scalars: the value's bytes
  std::string_view string;                 // type == String
  std::shared_ptr<const GgufArray> array;  // type == Array
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGML order: dims[0] is the innermost (contiguous) dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;        // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;

  // Outermost-first (row-major) shape, the order the rest of the engine uses.
  std::vector<int64_t> shape() const { return {dims.rbegin(), dims.rend()}; }
};

class GgufFile {
 public:
  // Maps and validates the file; throws InputError "<path>: <problem> (at byte offset N)".
  static GgufFile open(const std::string& path);
  // Validates a GGUF image in memory, which must outlive the returned object; `label` stands in
  // for the path in messages.
  static GgufFile parse(const uint8_t* data, size_t size, const std::string& label);

  uint32_t version() const { return version_; }
  const std::string& path() const { return path_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  size_t file_size() const { return size_; }

  // Metadata. Absent keys give nullopt (or an empty vector); a key of another type throws
  // InputError naming the key and both types.
  bool has(std::string_view key) const;
  const std::vector<std::string>& keys() const { return key_order_; }  // in file order
  const GgufValue* find_value(std::string_view key) const;
  std::string type_description(std::string_view key) const;  // e.g. "u32", "array[string; 49152]"
  std::string value_summary(std::string_view key, size_t max_chars = 60) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;  // any integer type
  std::optional<double> get_float(std::string_view key) const;  // f32, f64 or any integer type
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<uint64_t> array_size(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<double> get_float_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // The tensor's n_bytes bytes, validated to lie inside the file at open time.
  const uint8_t* tensor_data(const GgufTensorInfo& tensor) const;

 private:
  class Parser;
  GgufFile() = default;
  [[noreturn]] void wrong_type(std::string_view key, const char* wanted) const;
  const GgufArray* find_array(std::string_view key, const char* wanted) const;

  std::shared_ptr<const MappedFile> mapping_;  // null when parsed from memory
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::string> key_order_;
  std::map<std::string, GgufValue, std::less<>> values_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace deltainfer::io
