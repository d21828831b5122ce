#pragma once
// FillerCorpus: real English prose cut into sentences, the haystack of the long-context tasks.
// The shipped texts live in data/filler/ (see data/README.md for their source and licence).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deltainfer::eval {

class FillerCorpus {
 public:
  // Every *.txt file of `directory`, in name order. Throws InputError when there is none.
  static FillerCorpus load(const std::string& directory);
  // One text, for tests.
  static FillerCorpus from_text(std::string_view text);

  // Sentences in reading order, each ending in its separator: " " inside a paragraph, "\n\n" at
  // the end of one, so that concatenating a run of them gives readable text.
  const std::vector<std::string>& sentences() const { return sentences_; }
  // `count` consecutive sentences from `first`, wrapping around the end of the corpus.
  std::vector<std::string_view> run(size_t first, size_t count) const;

 private:
  void append_text(std::string_view text);

  std::vector<std::string> sentences_;
};

// Where the shipped filler texts are: $DELTAINFER_FILLER_DIR, else data/filler under the current
// directory or under any parent of the running executable. Throws InputError when not found.
std::string find_filler_dir();

// The whole text of one file of the filler directory (e.g. "lcet10.txt"), for perplexity.
std::string read_filler_text(const std::string& directory, const std::string& name);

}  // namespace deltainfer::eval
