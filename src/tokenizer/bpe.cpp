#include "tokenizer/bpe.h"

#include <queue>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace deltainfer::tokenizer {

BytePairEncoder::BytePairEncoder(const std::vector<std::string>& vocab,
                                 const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
                                 const std::string& source)
    : byte_ids_(256, -1), ignore_merges_(ignore_merges) {
  ids_.reserve(vocab.size());
  for (size_t id = 0; id < vocab.size(); ++id) ids_.emplace(vocab[id], static_cast<int32_t>(id));
  for (uint32_t b = 0; b < 256; ++b) {
    std::string spelling;
    append_utf8(spelling, byte_to_codepoint(static_cast<uint8_t>(b)));
    if (const auto it = ids_.find(spelling); it != ids_.end()) byte_ids_[b] = it->second;
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto l = ids_.find(left);
    const auto r = ids_.find(right);
    const auto m = ids_.find(left + right);
    if (l == ids_.end() || r == ids_.end() || m == ids_.end()) {
      throw_input_error("{}: merge {} ('{} {}') names a token that is not in the vocabulary", source, rank, left, right);
    }
    // A repeated pair keeps its first (lowest) rank, as HF's merge map does.
    merges_.emplace(pair_key(l->second, r->second), Merge{static_cast<int32_t>(rank), m->second});
  }
}

const BytePairEncoder::Merge* BytePairEncoder::find_merge(int32_t left, int32_t right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BytePairEncoder::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    if (const auto it = ids_.find(byte_level_spelling(piece)); it != ids_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  for (char c : piece) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id < 0) continue;
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // Candidates ordered by (rank, position of the left symbol); stale ones are skipped on pop.
  struct Candidate {
    int32_t rank;
    int32_t left;
    int32_t left_id;
    int32_t right_id;
    int32_t result;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto consider = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const Merge* merge = find_merge(symbols[left].id, symbols[right].id)) {
      queue.push({merge->rank, left, symbols[left].id, symbols[right].id, merge->result});
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    if (left.id != top.left_id || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (right.id != top.right_id) continue;
    left.id = top.result;
    right.id = -1;  // dead
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    consider(left.prev);
    consider(top.left);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace deltainfer::tokenizer
