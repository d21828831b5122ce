#include "eval/filler_corpus.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace deltainfer::eval {
namespace {

namespace fs = std::filesystem;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Paragraphs are separated by blank lines; inside one, every run of whitespace becomes one space
// (the texts are hard-wrapped, and plays indent with tabs).
std::vector<std::string> normalized_paragraphs(std::string_view text) {
  std::vector<std::string> paragraphs;
  std::string current;
  bool pending_space = false;
  int newlines = 0;
  for (char c : text) {
    if (is_space(c)) {
      if (c == '\n') ++newlines;
      pending_space = true;
      continue;
    }
    if (newlines >= 2 && !current.empty()) {
      paragraphs.push_back(std::move(current));
      current.clear();
    } else if (pending_space && !current.empty()) {
      current.push_back(' ');
    }
    pending_space = false;
    newlines = 0;
    current.push_back(c);
  }
  if (!current.empty()) paragraphs.push_back(std::move(current));
  return paragraphs;
}

bool ends_sentence(char c) { return c == '.' || c == '!' || c == '?'; }
// Verse runs a sentence over twenty lines; such a sentence also ends at a clause, so that the
// haystack can fit its target to within a short sentence.
constexpr size_t kLongSentence = 240;
bool ends_clause(char c) { return c == ';' || c == ':' || c == ',' || c == '*'; }
bool closes_quote(char c) { return c == '"' || c == '\'' || c == ')'; }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("{}: cannot open filler text", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

FillerCorpus FillerCorpus::load(const std::string& directory) {
  std::vector<fs::path> files;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(directory, error)) {
    if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  if (error) throw_input_error("{}: cannot list the filler directory ({})", directory, error.message());
  if (files.empty()) throw_input_error("{}: no *.txt filler texts there", directory);
  std::sort(files.begin(), files.end());
  FillerCorpus corpus;
  for (const fs::path& file : files) corpus.append_text(read_file(file));
  if (corpus.sentences_.empty()) throw_input_error("{}: the filler texts hold no sentences", directory);
  return corpus;
}

FillerCorpus FillerCorpus::from_text(std::string_view text) {
  FillerCorpus corpus;
  corpus.append_text(text);
  if (corpus.sentences_.empty()) throw_input_error("filler text holds no sentences");
  return corpus;
}

// A sentence ends at . ! or ? (plus closing quotes) followed by a space; "3.5" does not end one.
// Past kLongSentence characters, ; : , and * (list bullets) end one too.
void FillerCorpus::append_text(std::string_view text) {
  for (const std::string& paragraph : normalized_paragraphs(text)) {
    size_t start = 0;
    for (size_t i = 0; i < paragraph.size(); ++i) {
      const bool long_clause = ends_clause(paragraph[i]) && i - start >= kLongSentence;
      if (!ends_sentence(paragraph[i]) && !long_clause) continue;
      size_t end = i + 1;
      while (end < paragraph.size() && closes_quote(paragraph[end])) ++end;
      if (end < paragraph.size() && paragraph[end] != ' ') continue;
      sentences_.push_back(paragraph.substr(start, end - start) + " ");
      start = end + 1;
      i = end;
    }
    if (start < paragraph.size()) sentences_.push_back(paragraph.substr(start) + " ");
    std::string& last = sentences_.back();  // a non-empty paragraph gives at least one sentence
    last.back() = '\n';
    last.push_back('\n');
  }
}

std::vector<std::string_view> FillerCorpus::run(size_t first, size_t count) const {
  std::vector<std::string_view> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) out.emplace_back(sentences_[(first + i) % sentences_.size()]);
  return out;
}

std::string find_filler_dir() {
  if (const char* env = std::getenv("DELTAINFER_FILLER_DIR"); env && *env) {
    if (!fs::is_directory(env)) throw_input_error("DELTAINFER_FILLER_DIR={}: not a directory", env);
    return env;
  }
  std::vector<fs::path> roots = {fs::current_path()};
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      roots.push_back(dir);
    }
  }
  for (const fs::path& root : roots) {
    const fs::path candidate = root / "data" / "filler";
    if (fs::is_directory(candidate)) return candidate.string();
  }
  throw_input_error("cannot find data/filler (the filler texts); pass --filler DIR or set DELTAINFER_FILLER_DIR");
}

std::string read_filler_text(const std::string& directory, const std::string& name) {
  return read_file(fs::path(directory) / name);
}

}  // namespace deltainfer::eval
