#include "io/safetensors.h"

// GCC's -Wnull-dereference misfires on nlohmann's inlined iterators (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <nlohmann/json.hpp>
#pragma GCC diagnostic pop

#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "core/error.h"
#include "io/half.h"
#include "io/mapped_file.h"

namespace deltainfer::io {
namespace {

constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;  // the format's own limit is 100 MB

using Json = nlohmann::json;

int64_t json_to_int64(const Json& value, const std::string& path, const std::string& what) {
  if (value.is_number_unsigned()) {
    const auto u = value.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return static_cast<int64_t>(u);
  } else if (value.is_number_integer()) {
    return value.get<int64_t>();
  }
  throw_input_error("{}: {} must be a non-negative integer (got {})", path, what, value.dump());
}

SafetensorsTensor parse_tensor_entry(const std::string& path, const std::string& name, const Json& entry,
                                     uint64_t data_size) {
  if (!entry.is_object()) throw_input_error("{}: header entry '{}' is not an object", path, name);
  SafetensorsTensor tensor;
  tensor.name = name;
  const auto dtype = entry.find("dtype");
  const auto shape = entry.find("shape");
  const auto offsets = entry.find("data_offsets");
  if (dtype == entry.end() || !dtype->is_string()) throw_input_error("{}: tensor '{}' has no string dtype", path, name);
  if (shape == entry.end() || !shape->is_array()) throw_input_error("{}: tensor '{}' has no shape array", path, name);
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
    throw_input_error("{}: tensor '{}' needs data_offsets [begin, end]", path, name);
  }
  tensor.dtype = dtype->get<std::string>();
  const size_t element_size = safetensors_dtype_size(tensor.dtype);
  if (element_size == 0) throw_input_error("{}: tensor '{}' has unknown dtype '{}'", path, name, tensor.dtype);
  uint64_t n_elements = 1;
  for (const Json& dim_json : *shape) {
    const int64_t dim = json_to_int64(dim_json, path, fmt::format("tensor '{}' dimension", name));
    if (dim < 0) throw_input_error("{}: tensor '{}' has negative dimension {}", path, name, dim);
    if (dim != 0 && n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / static_cast<uint64_t>(dim)) {
      throw_input_error("{}: tensor '{}' has too many elements", path, name);
    }
    n_elements *= static_cast<uint64_t>(dim);
    tensor.shape.push_back(dim);
  }
  tensor.n_elements = n_elements;
  const int64_t begin = json_to_int64((*offsets)[0], path, fmt::format("tensor '{}' data_offsets[0]", name));
  const int64_t end = json_to_int64((*offsets)[1], path, fmt::format("tensor '{}' data_offsets[1]", name));
  if (begin < 0 || end < begin || static_cast<uint64_t>(end) > data_size) {
    throw_input_error("{}: tensor '{}' data_offsets [{}, {}] lie outside the data section of {} bytes", path, name,
                      begin, end, data_size);
  }
  tensor.begin = static_cast<uint64_t>(begin);
  tensor.end = static_cast<uint64_t>(end);
  if (n_elements > std::numeric_limits<uint64_t>::max() / element_size ||
      tensor.end - tensor.begin != n_elements * element_size) {
    throw_input_error("{}: tensor '{}' has {} bytes but its shape and dtype {} need {}", path, name,
                      tensor.end - tensor.begin, tensor.dtype, n_elements * element_size);
  }
  return tensor;
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

}  // namespace

std::string checkpoint_file(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

size_t safetensors_dtype_size(std::string_view dtype) {
  static const std::map<std::string_view, size_t> kSizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1}, {"U64", 8},
      {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
  };
  const auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto mapping = std::make_shared<const MappedFile>(path);
  SafetensorsFile file = parse(mapping->data(), mapping->size(), path);
  file.mapping_ = std::move(mapping);
  return file;
}

SafetensorsFile SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& label) {
  SafetensorsFile file;
  file.data_ = data;
  file.size_ = size;
  file.path_ = label;
  file.parse_header();
  return file;
}

void SafetensorsFile::parse_header() {
  if (size_ < 8) throw_input_error("{}: file too small to be safetensors ({} bytes)", path_, size_);
  uint64_t header_size = 0;
  std::memcpy(&header_size, data_, sizeof header_size);
  if (header_size > kMaxHeaderBytes || header_size > size_ - 8) {
    throw_input_error("{}: header length {} exceeds the file ({} bytes) or the 100 MB limit", path_, header_size,
                      size_);
  }
  data_offset_ = 8 + header_size;
  const char* text = reinterpret_cast<const char*>(data_ + 8);
  Json header = Json::parse(text, text + header_size, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) throw_input_error("{}: header is not valid JSON", path_);
  if (!header.is_object()) throw_input_error("{}: header is not a JSON object", path_);
  const uint64_t data_size = size_ - data_offset_;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    index_.emplace(name, tensors_.size());
    tensors_.push_back(parse_tensor_entry(path_, name, entry, data_size));
  }
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::read_f32(const SafetensorsTensor& tensor, float* dst, int64_t n) const {
  if (n < 0 || static_cast<uint64_t>(n) != tensor.n_elements) {
    throw_input_error("{}: tensor '{}' has {} elements, caller expected {}", path_, tensor.name, tensor.n_elements, n);
  }
  const uint8_t* src = tensor_data(tensor);
  if (tensor.dtype == "F32") {
    std::memcpy(dst, src, tensor.n_elements * sizeof(float));
  } else if (tensor.dtype == "F16" || tensor.dtype == "BF16") {
    const bool is_bf16 = tensor.dtype == "BF16";
    for (uint64_t i = 0; i < tensor.n_elements; ++i) {
      uint16_t bits;
      std::memcpy(&bits, src + 2 * i, sizeof bits);
      dst[i] = is_bf16 ? bf16_to_f32(bits) : f16_to_f32(bits);
    }
  } else {
    throw_input_error("{}: tensor '{}' has dtype {}; only F32, F16 and BF16 can be read", path_, tensor.name,
                      tensor.dtype);
  }
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_dir(const std::string& dir) {
  SafetensorsCheckpoint checkpoint;
  checkpoint.dir_ = dir;
  const std::string index_path = checkpoint_file(dir, "model.safetensors.index.json");
  std::vector<std::string> shard_names;
  std::map<std::string, std::string> weight_map;
  if (file_exists(index_path)) {
    std::ifstream in(index_path);
    Json index = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded() || !index.is_object()) throw_input_error("{}: not a valid JSON object", index_path);
    const auto map = index.find("weight_map");
    if (map == index.end() || !map->is_object()) throw_input_error("{}: missing object 'weight_map'", index_path);
    std::set<std::string> seen;
    for (const auto& [name, shard] : map->items()) {
      if (!shard.is_string()) throw_input_error("{}: weight_map entry '{}' is not a file name", index_path, name);
      const auto shard_name = shard.get<std::string>();
      if (shard_name.empty() || shard_name.find('/') != std::string::npos || shard_name == "..") {
        throw_input_error("{}: weight_map entry '{}' names '{}', which is not a file in the directory", index_path,
                          name, shard_name);
      }
      weight_map[name] = shard_name;
      if (seen.insert(shard_name).second) shard_names.push_back(shard_name);
    }
  } else if (file_exists(checkpoint_file(dir, "model.safetensors"))) {
    shard_names.push_back("model.safetensors");
  } else {
    throw_input_error("{}: no model.safetensors or model.safetensors.index.json in the directory", dir);
  }
  for (const std::string& shard : shard_names) {
    const size_t file_index = checkpoint.files_.size();
    checkpoint.files_.push_back(SafetensorsFile::open(checkpoint_file(dir, shard)));
    for (const SafetensorsTensor& tensor : checkpoint.files_.back().tensors()) {
      if (!checkpoint.file_of_tensor_.emplace(tensor.name, file_index).second) {
        throw_input_error("{}: tensor '{}' appears in more than one shard", checkpoint.files_.back().path(),
                          tensor.name);
      }
    }
  }
  for (const auto& [name, shard] : weight_map) {
    const SafetensorsFile* holder = nullptr;
    if (checkpoint.find(name, &holder) == nullptr || holder->path() != checkpoint_file(dir, shard)) {
      throw_input_error("{}: index lists tensor '{}' in '{}' but that shard does not hold it", index_path, name, shard);
    }
  }
  return checkpoint;
}

const SafetensorsTensor* SafetensorsCheckpoint::find(std::string_view name, const SafetensorsFile** file) const {
  const auto it = file_of_tensor_.find(name);
  if (it == file_of_tensor_.end()) return nullptr;
  const SafetensorsFile& holder = files_[it->second];
  if (file != nullptr) *file = &holder;
  return holder.find(name);
}

}  // namespace deltainfer::io
