#include "model/model_source.h"

#include <sys/stat.h>

#include <fmt/ranges.h>

#include <climits>

#include "core/error.h"
#include "model/architecture.h"
#include "model/model_source_impl.h"

namespace deltainfer::model {
namespace {

std::string shape_string(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int checked_int(int64_t value, const std::string& source, const char* field) {
  if (value < 0 || value > INT_MAX) throw_input_error("{}: {} = {} is out of range", source, field, value);
  return static_cast<int>(value);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensor_shapes(const ModelConfig& config) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  for (ModelTensor& tensor : model_tensors(config)) shapes.emplace_back(std::move(tensor.name), std::move(tensor.shape));
  return shapes;
}

void check_tensor_shapes(const ModelSource& source) {
  for (const auto& [name, expected] : expected_tensor_shapes(source.config())) {
    if (!source.has_tensor(name)) throw_input_error("{}: missing tensor '{}'", source.path(), name);
    const std::vector<int64_t> actual = source.tensor_shape(name);
    if (actual != expected) {
      throw_input_error("{}: tensor '{}' has shape {}, expected {} from the model config", source.path(), name,
                        shape_string(actual), shape_string(expected));
    }
  }
}

std::unique_ptr<ModelSource> open_model_source(const std::string& path) {
  if (is_synthetic_spec(path)) return open_synthetic_model_source(path);
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) throw_input_error("{}: no such file or directory", path);
  if (S_ISDIR(info.st_mode)) return open_hf_model_source(path);
  // A config.json or .safetensors file stands for the HF directory that holds it.
  if (ends_with(path, "/config.json") || path == "config.json" || ends_with(path, ".safetensors") ||
      ends_with(path, ".safetensors.index.json")) {
    return open_hf_model_source(parent_dir(path));
  }
  return open_gguf_model_source(path);
}

}  // namespace deltainfer::model
