#include "eval/prefill_groups.h"

#include "runtime/prefill_identity.h"

namespace deltainfer::eval {

std::vector<std::vector<size_t>> prefill_groups(const std::vector<attention::AttentionConfig>& methods, bool share) {
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < methods.size(); ++i) {
    std::vector<size_t>* home = nullptr;
    for (std::vector<size_t>& group : groups) {
      if (share && runtime::same_prefill(methods[group.front()], methods[i])) {
        home = &group;
        break;
      }
    }
    if (home == nullptr) {
      groups.push_back({i});
    } else {
      home->push_back(i);
    }
  }
  return groups;
}

}  // namespace deltainfer::eval
