#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "io/mapped_file.h"

namespace deltainfer::io {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 8;      // bounds recursion on hostile input
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;

// Fixed size in bytes of a scalar value type; 0 for strings and arrays.
uint64_t scalar_size(GgufType type) {
  switch (type) {
    case GgufType::UInt8: case GgufType::Int8: case GgufType::Bool: return 1;
    case GgufType::UInt16: case GgufType::Int16: return 2;
    case GgufType::UInt32: case GgufType::Int32: case GgufType::Float32: return 4;
    case GgufType::UInt64: case GgufType::Int64: case GgufType::Float64: return 8;
    case GgufType::String: case GgufType::Array: return 0;
  }
  return 0;
}

bool is_integer(GgufType type) {
  switch (type) {
    case GgufType::UInt8: case GgufType::Int8: case GgufType::UInt16: case GgufType::Int16:
    case GgufType::UInt32: case GgufType::Int32: case GgufType::UInt64: case GgufType::Int64:
      return true;
    default:
      return false;
  }
}

bool is_float(GgufType type) { return type == GgufType::Float32 || type == GgufType::Float64; }

template <typename T>
T load(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof value);  // GGUF is little-endian, as are the hosts we target
  return value;
}

// Reads an integer scalar widened to int64; u64 values beyond int64 are reported by the caller.
bool load_integer(GgufType type, const uint8_t* p, int64_t* out) {
  switch (type) {
    case GgufType::UInt8: *out = load<uint8_t>(p); return true;
    case GgufType::Int8: *out = load<int8_t>(p); return true;
    case GgufType::UInt16: *out = load<uint16_t>(p); return true;
    case GgufType::Int16: *out = load<int16_t>(p); return true;
    case GgufType::UInt32: *out = load<uint32_t>(p); return true;
    case GgufType::Int32: *out = load<int32_t>(p); return true;
    case GgufType::Int64: *out = load<int64_t>(p); return true;
    case GgufType::UInt64: {
      const uint64_t value = load<uint64_t>(p);
      if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      *out = static_cast<int64_t>(value);
      return true;
    }
    default: return false;
  }
}

double load_number(GgufType type, const uint8_t* p) {
  if (type == GgufType::Float32) return static_cast<double>(load<float>(p));
  if (type == GgufType::Float64) return load<double>(p);
  if (type == GgufType::UInt64) return static_cast<double>(load<uint64_t>(p));
  int64_t value = 0;
  load_integer(type, p, &value);
  return static_cast<double>(value);
}

std::string describe_array(const GgufArray& array) {
  std::string element = array.element_type == GgufType::Array && !array.arrays.empty()
                            ? describe_array(array.arrays.front())
                            : gguf_type_name(array.element_type);
  return fmt::format("array[{}; {}]", element, array.count);
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::UInt8: return "u8";
    case GgufType::Int8: return "i8";
    case GgufType::UInt16: return "u16";
    case GgufType::Int16: return "i16";
    case GgufType::UInt32: return "u32";
    case GgufType::Int32: return "i32";
    case GgufType::Float32: return "f32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::UInt64: return "u64";
    case GgufType::Int64: return "i64";
    case GgufType::Float64: return "f64";
  }
  return "unknown";
}

// Walks the header once, bounds-checking every read against the image size.
class GgufFile::Parser {
 public:
  explicit Parser(GgufFile& file) : file_(file) {}

  void run() {
    read_header();
    for (uint64_t i = 0; i < kv_count_; ++i) read_key_value();
    read_alignment();
    for (uint64_t i = 0; i < tensor_count_; ++i) read_tensor_info();
    place_data_section();
    check_tensor_ranges();
  }

 private:
  [[noreturn]] void fail(uint64_t at, const std::string& what) const {
    throw_input_error("{}: {} (at byte offset {})", file_.path_, what, at);
  }

  uint64_t remaining() const { return file_.size_ - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > remaining()) {
      fail(pos_, fmt::format("file truncated: {} needs {} bytes but only {} remain", what, n, remaining()));
    }
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    const T value = load<T>(file_.data_ + pos_);
    pos_ += sizeof(T);
    return value;
  }

  std::string_view read_string(const char* what) {
    const uint64_t at = pos_;
    const uint64_t length = read<uint64_t>(what);
    if (length > remaining()) {
      fail(at, fmt::format("{} has length {} but only {} bytes remain", what, length, remaining()));
    }
    std::string_view text(reinterpret_cast<const char*>(file_.data_ + pos_), static_cast<size_t>(length));
    pos_ += length;
    return text;
  }

  GgufType read_value_type(const std::string& key) {
    const uint64_t at = pos_;
    const uint32_t raw = read<uint32_t>("metadata value type");
    if (raw > static_cast<uint32_t>(GgufType::Float64)) {
      fail(at, fmt::format("metadata key '{}' has unknown value type {}", key, raw));
    }
    return static_cast<GgufType>(raw);
  }

  void read_header() {
    if (file_.size_ < 4) fail(0, fmt::format("file too small to be GGUF ({} bytes)", file_.size_));
    const uint32_t magic = read<uint32_t>("magic");
    if (magic != kMagic) fail(0, fmt::format("not a GGUF file (magic 0x{:08x}, expected 0x{:08x})", magic, kMagic));
    const uint32_t version = read<uint32_t>("version");
    if (version == 1) fail(4, "GGUF version 1 is not supported (only versions 2 and 3)");
    if (version != 2 && version != 3) {
      fail(4, fmt::format("unsupported GGUF version {} (only 2 and 3; a big-endian file?)", version));
    }
    file_.version_ = version;
    const uint64_t counts_at = pos_;
    tensor_count_ = read<uint64_t>("tensor count");
    kv_count_ = read<uint64_t>("metadata count");
    // Each entry takes at least this many bytes, which bounds the counts by the file size.
    constexpr uint64_t kMinKeyValue = 8 + 4 + 1;
    constexpr uint64_t kMinTensorInfo = 8 + 4 + 8 + 4 + 8;
    if (kv_count_ > remaining() / kMinKeyValue) {
      fail(counts_at + 8, fmt::format("metadata count {} cannot fit in the file", kv_count_));
    }
    if (tensor_count_ > remaining() / kMinTensorInfo) {
      fail(counts_at, fmt::format("tensor count {} cannot fit in the file", tensor_count_));
    }
  }

  void read_key_value() {
    const uint64_t at = pos_;
    std::string key(read_string("metadata key"));
    if (file_.values_.count(key) != 0) fail(at, fmt::format("duplicate metadata key '{}'", key));
    GgufValue value;
    value.type = read_value_type(key);
    if (value.type == GgufType::String) {
      value.string = read_string("metadata string");
    } else if (value.type == GgufType::Array) {
      auto array = std::make_shared<GgufArray>();
      read_array(key, *array, 1);
      value.array = std::move(array);
    } else {
      need(scalar_size(value.type), "metadata value");
      value.raw = file_.data_ + pos_;
      pos_ += scalar_size(value.type);
    }
    file_.key_order_.push_back(key);
    file_.values_.emplace(std::move(key), std::move(value));
  }

  void read_array(const std::string& key, GgufArray& array, int depth) {
    const uint64_t at = pos_;
    if (depth > kMaxArrayNesting) fail(at, fmt::format("metadata key '{}' nests arrays deeper than {}", key, kMaxArrayNesting));
    array.element_type = read_value_type(key);
    const uint64_t count_at = pos_;
    array.count = read<uint64_t>("array length");
    const uint64_t element_size = scalar_size(array.element_type);
    // Strings take at least 8 bytes and arrays 12, so every count is bounded by what remains.
    const uint64_t min_size = element_size != 0 ? element_size : (array.element_type == GgufType::String ? 8 : 12);
    if (array.count > remaining() / min_size) {
      fail(count_at, fmt::format("metadata key '{}': array of {} {} elements does not fit in the file", key, array.count,
                                 gguf_type_name(array.element_type)));
    }
    if (element_size != 0) {
      array.raw = file_.data_ + pos_;
      pos_ += array.count * element_size;
    } else if (array.element_type == GgufType::String) {
      array.strings.reserve(static_cast<size_t>(array.count));
      for (uint64_t i = 0; i < array.count; ++i) array.strings.push_back(read_string("array string"));
    } else {
      array.arrays.resize(static_cast<size_t>(array.count));
      for (GgufArray& nested : array.arrays) read_array(key, nested, depth + 1);
    }
  }

  void read_alignment() {
    const GgufValue* value = file_.find_value("general.alignment");
    if (value == nullptr) return;
    int64_t alignment = 0;
    if (!is_integer(value->type) || !load_integer(value->type, value->raw, &alignment) || alignment <= 0 ||
        static_cast<uint64_t>(alignment) > kMaxAlignment || (alignment & (alignment - 1)) != 0) {
      fail(0, fmt::format("general.alignment must be a power of two integer up to {} (got {} {})", kMaxAlignment,
                          gguf_type_name(value->type), file_.value_summary("general.alignment")));
    }
    file_.alignment_ = static_cast<uint64_t>(alignment);
  }

  void read_tensor_info() {
    const uint64_t at = pos_;
    GgufTensorInfo info;
    info.name = std::string(read_string("tensor name"));
    if (info.name.empty()) fail(at, "tensor with an empty name");
    if (file_.tensor_index_.count(info.name) != 0) fail(at, fmt::format("duplicate tensor name '{}'", info.name));
    const uint64_t dims_at = pos_;
    const uint32_t n_dims = read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      fail(dims_at, fmt::format("tensor '{}' has {} dimensions (must be 1 to {})", info.name, n_dims, kMaxDims));
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim_at = pos_;
      const uint64_t dim = read<uint64_t>("tensor dimension");
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(dim_at, fmt::format("tensor '{}' has invalid dimension {} = {}", info.name, d, dim));
      }
      if (n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim) {
        fail(dim_at, fmt::format("tensor '{}' has too many elements (dimensions overflow)", info.name));
      }
      n_elements *= dim;
      info.dims.push_back(static_cast<int64_t>(dim));
    }
    info.n_elements = n_elements;
    const uint64_t type_at = pos_;
    const uint32_t type_id = read<uint32_t>("tensor type");
    const std::optional<GgmlTypeTraits> traits = ggml_type_traits(type_id);
    if (!traits) fail(type_at, fmt::format("tensor '{}' has unknown ggml type id {}", info.name, type_id));
    info.type = static_cast<GgmlType>(type_id);
    const auto block_size = static_cast<uint64_t>(traits->block_size);
    if (info.dims[0] % traits->block_size != 0) {
      fail(dims_at, fmt::format("tensor '{}' of type {}: row length {} is not a multiple of the block size {}", info.name,
                                traits->name, info.dims[0], block_size));
    }
    const uint64_t n_blocks = n_elements / block_size;
    if (n_blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(traits->type_size)) {
      fail(dims_at, fmt::format("tensor '{}' is too large", info.name));
    }
    info.n_bytes = n_blocks * static_cast<uint64_t>(traits->type_size);
    const uint64_t offset_at = pos_;
    info.offset = read<uint64_t>("tensor data offset");
    if (info.offset % file_.alignment_ != 0) {
      fail(offset_at, fmt::format("tensor '{}' data offset {} is not a multiple of the alignment {}", info.name,
                                  info.offset, file_.alignment_));
    }
    file_.tensor_index_.emplace(info.name, file_.tensors_.size());
    file_.tensors_.push_back(std::move(info));
  }

  void place_data_section() {
    const uint64_t padding = (file_.alignment_ - pos_ % file_.alignment_) % file_.alignment_;
    file_.data_offset_ = pos_ + padding;  // pos_ <= size_ and padding < 2^30: no overflow
    if (!file_.tensors_.empty() && file_.data_offset_ > file_.size_) {
      fail(pos_, fmt::format("file truncated: data section would start at byte {} but the file has {} bytes",
                             file_.data_offset_, file_.size_));
    }
  }

  void check_tensor_ranges() const {
    const uint64_t data_size = file_.tensors_.empty() ? 0 : file_.size_ - file_.data_offset_;
    std::vector<const GgufTensorInfo*> by_offset;
    for (const GgufTensorInfo& info : file_.tensors_) {
      if (info.offset > data_size || info.n_bytes > data_size - info.offset) {
        fail(file_.data_offset_ + std::min(info.offset, data_size),
             fmt::format("tensor '{}' data [{}, +{}) extends past the end of the file (data section has {} bytes)",
                         info.name, info.offset, info.n_bytes, data_size));
      }
      by_offset.push_back(&info);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const GgufTensorInfo& prev = *by_offset[i - 1];
      const GgufTensorInfo& next = *by_offset[i];
      if (prev.offset + prev.n_bytes > next.offset) {
        fail(file_.data_offset_ + next.offset, fmt::format("tensor '{}' overlaps tensor '{}'", next.name, prev.name));
      }
    }
  }

  GgufFile& file_;
  uint64_t pos_ = 0;
  uint64_t tensor_count_ = 0;
  uint64_t kv_count_ = 0;
};

GgufFile GgufFile::open(const std::string& path) {
  auto mapping = std::make_shared<const MappedFile>(path);
  GgufFile file = parse(mapping->data(), mapping->size(), path);
  file.mapping_ = std::move(mapping);
  return file;
}

GgufFile GgufFile::parse(const uint8_t* data, size_t size, const std::string& label) {
  GgufFile file;
  file.data_ = data;
  file.size_ = size;
  file.path_ = label;
  file.alignment_ = kDefaultAlignment;
  Parser(file).run();
  return file;
}

bool GgufFile::has(std::string_view key) const { return values_.find(key) != values_.end(); }

const GgufValue* GgufFile::find_value(std::string_view key) const {
  const auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

std::string GgufFile::type_description(std::string_view key) const {
  const GgufValue* value = find_value(key);
  if (value == nullptr) return "absent";
  if (value->type == GgufType::Array) return describe_array(*value->array);
  return gguf_type_name(value->type);
}

std::string GgufFile::value_summary(std::string_view key, size_t max_chars) const {
  const GgufValue* value = find_value(key);
  std::string text;
  if (value == nullptr) {
    text = "absent";
  } else if (value->type == GgufType::String) {
    text = fmt::format("\"{}\"", value->string);
  } else if (value->type == GgufType::Bool) {
    text = value->raw[0] != 0 ? "true" : "false";
  } else if (is_float(value->type)) {
    text = fmt::format("{}", load_number(value->type, value->raw));
  } else if (value->type == GgufType::UInt64) {
    text = fmt::format("{}", load<uint64_t>(value->raw));
  } else if (is_integer(value->type)) {
    text = fmt::format("{}", static_cast<int64_t>(load_number(value->type, value->raw)));
  } else {
    text = describe_array(*value->array);
  }
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';  // keep one line per key in `inspect`
  }
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

void GgufFile::wrong_type(std::string_view key, const char* wanted) const {
  throw_input_error("{}: metadata key '{}' has type {}, expected {}", path_, key, type_description(key), wanted);
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* value = find_value(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufType::String) wrong_type(key, "string");
  return std::string(value->string);
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* value = find_value(key);
  if (value == nullptr) return std::nullopt;
  if (!is_integer(value->type)) wrong_type(key, "an integer");
  int64_t result = 0;
  if (!load_integer(value->type, value->raw, &result)) {
    throw_input_error("{}: metadata key '{}' value {} does not fit in int64", path_, key, load<uint64_t>(value->raw));
  }
  return result;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* value = find_value(key);
  if (value == nullptr) return std::nullopt;
  if (!is_float(value->type) && !is_integer(value->type)) wrong_type(key, "a number");
  return load_number(value->type, value->raw);
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* value = find_value(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufType::Bool) wrong_type(key, "bool");
  return value->raw[0] != 0;
}

const GgufArray* GgufFile::find_array(std::string_view key, const char* wanted) const {
  const GgufValue* value = find_value(key);
  if (value == nullptr) return nullptr;
  if (value->type != GgufType::Array) wrong_type(key, wanted);
  return value->array.get();
}

std::optional<uint64_t> GgufFile::array_size(std::string_view key) const {
  const GgufArray* array = find_array(key, "an array");
  if (array == nullptr) return std::nullopt;
  return array->count;
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufArray* array = find_array(key, "array[string]");
  if (array == nullptr) return {};
  if (array->element_type != GgufType::String) wrong_type(key, "array[string]");
  return {array->strings.begin(), array->strings.end()};
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufArray* array = find_array(key, "an integer array");
  if (array == nullptr) return {};
  if (!is_integer(array->element_type)) wrong_type(key, "an integer array");
  const uint64_t element_size = scalar_size(array->element_type);
  std::vector<int64_t> result(static_cast<size_t>(array->count));
  for (uint64_t i = 0; i < array->count; ++i) {
    if (!load_integer(array->element_type, array->raw + i * element_size, &result[i])) {
      throw_input_error("{}: metadata key '{}' element {} does not fit in int64", path_, key, i);
    }
  }
  return result;
}

std::vector<double> GgufFile::get_float_array(std::string_view key) const {
  const GgufArray* array = find_array(key, "a numeric array");
  if (array == nullptr) return {};
  if (!is_float(array->element_type) && !is_integer(array->element_type)) {
    wrong_type(key, "a numeric array");
  }
  const uint64_t element_size = scalar_size(array->element_type);
  std::vector<double> result(static_cast<size_t>(array->count));
  for (uint64_t i = 0; i < array->count; ++i) result[i] = load_number(array->element_type, array->raw + i * element_size);
  return result;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& tensor) const {
  return data_ + data_offset_ + tensor.offset;
}

}  // namespace deltainfer::io
