#include "eval/method_spec.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace deltainfer::eval {
namespace {

TEST(MethodSpec, ParsesTheIssueExample) {
  const std::vector<MethodSpec> methods =
      parse_method_specs("dense;sliding+delta:window=512,gamma=32; delta:budget=512 ;streaming;quest");
  ASSERT_EQ(methods.size(), 5u);
  EXPECT_EQ(methods[0].name, "dense");
  EXPECT_TRUE(methods[0].params.empty());
  EXPECT_EQ(methods[1].label, "sliding+delta:window=512,gamma=32");
  EXPECT_EQ(methods[1].name, "sliding+delta");
  const std::vector<std::pair<std::string, std::string>> params = {{"window", "512"}, {"gamma", "32"}};
  EXPECT_EQ(methods[1].params, params);
  EXPECT_EQ(methods[2].label, "delta:budget=512");
  EXPECT_EQ(methods[4].name, "quest");
}

TEST(MethodSpec, RejectsMalformedSpecs) {
  for (const char* bad : {"", ";", ":window=3", "sliding:window", "sliding:=3", "sliding:window=",
                          "sliding:window=1,window=2", "dense;dense"}) {
    EXPECT_THROW(parse_method_specs(bad), InputError) << bad;
  }
}

}  // namespace
}  // namespace deltainfer::eval
