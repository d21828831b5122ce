#pragma once
// Byte-level BPE over one pre-tokenized piece, as HF `tokenizers`' BPE model does it: start from
// one symbol per byte (a byte whose symbol is not in the vocabulary is dropped, as HF does with no
// unk token), then repeatedly apply the lowest-ranked merge, leftmost first. A priority queue
// keeps long pieces O(n log n).
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace deltainfer::tokenizer {

class BytePairEncoder {
 public:
  // vocab: id -> token text as the vocabulary spells it (byte-level alphabet); merges in rank
  // order. Throws InputError (naming `source`) for a merge whose parts or result are not tokens.
  BytePairEncoder(const std::vector<std::string>& vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                  bool ignore_merges, const std::string& source);

  // Appends the ids of one piece (raw bytes) to `out`.
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const Merge* find_merge(int32_t left, int32_t right) const;

  std::unordered_map<std::string, int32_t> ids_;  // byte-level spelling -> id
  std::vector<int32_t> byte_ids_;                 // byte -> id of its one-byte token, -1 if absent
  std::unordered_map<uint64_t, Merge> merges_;
  bool ignore_merges_;                            // a whole piece found in the vocabulary is one token
};

}  // namespace deltainfer::tokenizer
