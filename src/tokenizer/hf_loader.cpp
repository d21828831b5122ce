// Tokenizer::from_hf_dir: a HF tokenizer.json (+ tokenizer_config.json) -> TokenizerSpec.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::tokenizer {
namespace {

using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("{}: cannot open", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw_input_error("{}: not valid JSON: {}", path, e.what());
  }
}

// PCRE2 pattern matching the string literally.
std::string quote_regex(const std::string& text) { return "\\Q" + text + "\\E"; }

// One HF pre-tokenizer (possibly a Sequence) -> the regex chain that reproduces it.
void add_pre_tokenizer_regexes(const std::string& path, const json& node, std::vector<std::string>& out) {
  if (node.is_null()) return;
  const std::string type = node.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const json& child : node.at("pretokenizers")) add_pre_tokenizer_regexes(path, child, out);
  } else if (type == "ByteLevel") {
    if (node.value("add_prefix_space", false)) {
      throw_input_error("{}: ByteLevel pre-tokenizer with add_prefix_space is not supported", path);
    }
    if (node.value("use_regex", true)) out.emplace_back(kGpt2Regex);
  } else if (type == "Digits") {
    out.emplace_back(node.value("individual_digits", false) ? kDigitRegex : R"(\p{N}+)");
  } else if (type == "Split") {
    const json& pattern = node.at("pattern");
    const std::string behavior = node.value("behavior", "");
    if (behavior != "Isolated" || node.value("invert", false)) {
      throw_input_error("{}: Split pre-tokenizer with behavior '{}'{} is not supported (only Isolated)", path, behavior,
                        node.value("invert", false) ? " inverted" : "");
    }
    out.push_back(pattern.contains("Regex") ? pattern.at("Regex").get<std::string>()
                                            : quote_regex(pattern.at("String").get<std::string>()));
  } else {
    throw_input_error("{}: pre-tokenizer type '{}' is not supported", path, type);
  }
}

void check_model_and_normalizer(const std::string& path, const json& root) {
  const json& model = root.at("model");
  if (model.value("type", "") != "BPE") {
    throw_input_error("{}: tokenizer model '{}' is not supported (only byte-level BPE)", path, model.value("type", "?"));
  }
  if (model.value("byte_fallback", false)) throw_input_error("{}: BPE with byte_fallback is not supported", path);
  const auto has_text = [&](const char* key) { return model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty(); };
  if (has_text("continuing_subword_prefix") || has_text("end_of_word_suffix")) {
    throw_input_error("{}: BPE with subword prefixes/suffixes is not supported", path);
  }
  // Qwen2's NFC normalizer is accepted but not applied: text that is already NFC (nearly all
  // text) tokenizes identically.
  const json normalizer = root.value("normalizer", json());
  if (!normalizer.is_null() && normalizer.value("type", "") != "NFC") {
    throw_input_error("{}: normalizer '{}' is not supported", path, normalizer.value("type", "?"));
  }
}

std::vector<std::pair<std::string, std::string>> read_merges(const std::string& path, const json& list) {
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(list.size());
  for (const json& merge : list) {
    if (merge.is_array() && merge.size() == 2) {
      merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      continue;
    }
    const std::string line = merge.get<std::string>();
    const size_t space = line.find(' ', 1);
    if (space == std::string::npos) throw_input_error("{}: merge '{}' is not two tokens separated by a space", path, line);
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return merges;
}

void read_vocab(const std::string& path, const json& root, TokenizerSpec& spec) {
  size_t size = 0;
  const json& vocab = root.at("model").at("vocab");
  const auto grow = [&](int64_t id) {
    if (id < 0 || id >= INT32_MAX) throw_input_error("{}: token id {} is out of range", path, id);
    size = std::max(size, static_cast<size_t>(id) + 1);
  };
  for (const auto& [text, id] : vocab.items()) grow(id.get<int64_t>());
  for (const json& token : root.value("added_tokens", json::array())) grow(token.at("id").get<int64_t>());
  spec.vocab.assign(size, std::string());
  for (const auto& [text, id] : vocab.items()) spec.vocab[id.get<size_t>()] = text;
  for (const json& token : root.value("added_tokens", json::array())) {
    AddedToken added;
    added.id = token.at("id").get<int32_t>();
    added.content = token.at("content").get<std::string>();
    added.special = token.value("special", false);
    added.lstrip = token.value("lstrip", false);
    added.rstrip = token.value("rstrip", false);
    if (spec.vocab[static_cast<size_t>(added.id)].empty()) spec.vocab[static_cast<size_t>(added.id)] = added.content;
    spec.added_tokens.push_back(std::move(added));
  }
}

// "bos_token": "<s>" or {"content": "<s>", ...} or null.
std::optional<std::string> token_text(const json& config, const char* key) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const json& value = config[key];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content")) return value["content"].get<std::string>();
  return std::nullopt;
}

std::optional<int32_t> id_of(const TokenizerSpec& spec, const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  for (const AddedToken& token : spec.added_tokens) {
    if (token.content == *text) return token.id;
  }
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    if (spec.vocab[id] == *text) return static_cast<int32_t>(id);
  }
  return std::nullopt;
}

// The first special token of a TemplateProcessing post-processor's "single" template: the BOS it
// prepends (Llama 3 states add_bos this way rather than in tokenizer_config.json).
std::optional<std::string> template_bos(const json& processor) {
  if (processor.is_null()) return std::nullopt;
  const std::string type = processor.value("type", "");
  if (type == "Sequence") {
    for (const json& child : processor.value("processors", json::array())) {
      if (auto bos = template_bos(child)) return bos;
    }
  } else if (type == "TemplateProcessing" && processor.contains("single") && !processor["single"].empty()) {
    const json& first = processor["single"][0];
    if (first.contains("SpecialToken")) return first["SpecialToken"].at("id").get<std::string>();
  }
  return std::nullopt;
}

void read_config(const std::string& path, const json& root, const json& config, TokenizerSpec& spec) {
  const std::optional<std::string> processor_bos = template_bos(root.value("post_processor", json()));
  spec.bos_id = id_of(spec, token_text(config, "bos_token"));
  if (!spec.bos_id) spec.bos_id = id_of(spec, processor_bos);
  spec.eos_id = id_of(spec, token_text(config, "eos_token"));
  spec.unk_id = id_of(spec, token_text(config, "unk_token"));
  spec.pad_id = id_of(spec, token_text(config, "pad_token"));
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    spec.add_bos = config["add_bos_token"].get<bool>();
  } else {
    spec.add_bos = processor_bos.has_value();
  }
  if (!config.contains("chat_template")) return;
  const json& chat = config["chat_template"];
  if (chat.is_string()) {
    spec.chat_template = chat.get<std::string>();
  } else if (chat.is_array()) {  // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
    for (const json& entry : chat) {
      if (entry.value("name", "") == "default") spec.chat_template = entry.at("template").get<std::string>();
    }
  } else if (!chat.is_null()) {
    throw_input_error("{}: chat_template is neither a string nor a list of named templates", path);
  }
}

}  // namespace

Tokenizer Tokenizer::from_hf_dir(const std::string& dir) {
  const std::string tokenizer_path = (std::filesystem::path(dir) / "tokenizer.json").string();
  const std::string config_path = (std::filesystem::path(dir) / "tokenizer_config.json").string();
  const json root = read_json(tokenizer_path);
  std::error_code error;
  const json config = std::filesystem::exists(config_path, error) ? read_json(config_path) : json::object();
  TokenizerSpec spec;
  spec.source = tokenizer_path;
  try {
    check_model_and_normalizer(tokenizer_path, root);
    read_vocab(tokenizer_path, root, spec);
    spec.merges = read_merges(tokenizer_path, root.at("model").value("merges", json::array()));
    spec.ignore_merges = root.at("model").value("ignore_merges", false);
    add_pre_tokenizer_regexes(tokenizer_path, root.value("pre_tokenizer", json()), spec.pre_tokenizer_regexes);
    read_config(config_path, root, config, spec);
  } catch (const json::exception& e) {
    throw_input_error("{}: unexpected structure: {}", tokenizer_path, e.what());
  }
  return Tokenizer(std::move(spec));
}

}  // namespace deltainfer::tokenizer
