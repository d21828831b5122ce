#pragma once
// The pieces behind open_model_source: one opener per format, and the checks they share.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/model_source.h"

namespace deltainfer::model {

std::unique_ptr<ModelSource> open_gguf_model_source(const std::string& path);
std::unique_ptr<ModelSource> open_hf_model_source(const std::string& dir);

// Throws InputError naming source.path() for a missing or mis-shaped tensor.
void check_tensor_shapes(const ModelSource& source);

// Narrows a file-provided count to int, rejecting values outside [0, INT_MAX].
int checked_int(int64_t value, const std::string& source, const char* field);

}  // namespace deltainfer::model
