#include "server/method_object.h"

#include <fmt/format.h>

#include <string>

#include "core/error.h"
#include "eval/method_config.h"
#include "eval/method_spec.h"
#include "server/api_error.h"

namespace deltainfer::server {
namespace {

constexpr const char* kParam = "deltainfer";

// A value as eval's key=value text: numbers and strings as written, arrays of layers as "2/8/15".
std::string spec_value(const std::string& key, const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return value.dump();
  if (key == "delta_layers" && value.is_array()) {
    std::string joined;
    for (const nlohmann::json& layer : value) {
      if (!layer.is_number_integer()) break;
      joined += (joined.empty() ? "" : "/") + layer.dump();
      if (&layer == &value.back()) return joined;
    }
  }
  throw bad_request(fmt::format("deltainfer.{} must be {}", key,
                                key == "delta_layers" ? "an array of layer indices" : "an integer or a string"),
                    kParam, "invalid_type");
}

}  // namespace

attention::AttentionConfig method_from_json(const nlohmann::json& object, int64_t context_tokens, int n_layers) {
  if (!object.is_object()) throw bad_request("'deltainfer' must be an object", kParam, "invalid_type");
  eval::MethodSpec spec;
  spec.label = object.dump();
  spec.name = "dense";
  for (const auto& [key, value] : object.items()) {
    if (key == "prefill") {
      if (!value.is_string()) throw bad_request("deltainfer.prefill must be a string", kParam, "invalid_type");
      spec.name = value.get<std::string>();
      attention::PrefillConfig unused;
      if (!attention::parse_prefill_method(spec.name, unused)) {
        throw bad_request(fmt::format("deltainfer.prefill '{}': expected dense, sliding or vslash, optionally "
                                      "followed by +delta", spec.name), kParam, "invalid_value");
      }
    } else {
      spec.params.emplace_back(key, spec_value(key, value));
    }
  }
  try {
    attention::AttentionConfig config = eval::method_config(spec, context_tokens);
    config.validate(n_layers);
    return config;
  } catch (const InputError& e) {
    throw bad_request(fmt::format("deltainfer: {}", e.what()), kParam, "invalid_value");
  }
}

}  // namespace deltainfer::server
