#include "attention/method_registry.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace deltainfer::attention {
namespace {

TEST(MethodRegistry, EveryKindHasOneRowAndItsNameFindsIt) {
  std::set<std::string> names;
  for (const PrefillMethodInfo& m : prefill_methods()) {
    EXPECT_TRUE(names.insert(std::string("prefill:") + m.name).second) << m.name;
    EXPECT_EQ(find_prefill_method(m.name), m.kind);
    EXPECT_STREQ(prefill_kind_name(m.kind), m.name);
  }
  for (const DecodeMethodInfo& m : decode_methods()) {
    EXPECT_TRUE(names.insert(std::string("decode:") + m.name).second) << m.name;
    EXPECT_EQ(find_decode_method(m.name), m.kind);
    EXPECT_STREQ(decode_kind_name(m.kind), m.name);
  }
  EXPECT_FALSE(find_decode_method("Quest").has_value()) << "names are exact (the CLI folds case itself)";
  EXPECT_FALSE(find_prefill_method("sliding+delta").has_value()) << "+delta is parse_prefill_method's suffix";
  PrefillConfig prefill;
  ASSERT_TRUE(parse_prefill_method("vslash+delta", prefill));
  EXPECT_EQ(prefill.kind, PrefillKind::VerticalSlash);
  EXPECT_TRUE(prefill.delta);
  EXPECT_FALSE(parse_prefill_method("window", prefill));
}

// The docs table is the registry's: docs/METHODS.md carries exactly what `deltainfer methods`
// prints, between its markers.
TEST(MethodRegistry, DocsTableIsTheRegistrys) {
  std::ifstream in(std::string(DELTAINFER_SOURCE_DIR) + "/docs/METHODS.md");
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::string begin = "<!-- methods-table-begin -->\n", end = "<!-- methods-table-end -->";
  const size_t from = doc.find(begin), to = doc.find(end);
  ASSERT_NE(from, std::string::npos);
  ASSERT_NE(to, std::string::npos);
  EXPECT_EQ(doc.substr(from + begin.size(), to - from - begin.size()), methods_markdown_table())
      << "regenerate the table with `deltainfer methods`";
}

}  // namespace
}  // namespace deltainfer::attention
