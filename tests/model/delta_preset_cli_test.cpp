// `--delta-preset` on the CLI: the authors' window mode (sink 1024) and ours (sink 64) as named
// sliding+Δ settings, explicit flags winning over the preset, an unknown name refused. Read from
// the method line `deltainfer bench --batch` prints (attention::describe of the built config).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

#include "model_test_support.h"

namespace deltainfer {
namespace {

// stdout and stderr of a bench run of 128 tokens with the given attention flags; its exit code.
std::string bench_output(const std::string& flags, int& exit_code) {
  const std::string command = std::string(DELTAINFER_BINARY) + " bench --model " + testing::smollm2_path() +
                              " --batch 1 --lengths 128 --decode-tokens 1 " + flags + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::string output;
  std::array<char, 512> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) output += buffer.data();
  exit_code = pclose(pipe.release());
  return output;
}

TEST(DeltaPresetCli, AuthorsWindowModeIsSlidingDeltaWithSink1024) {
  DELTAINFER_REQUIRE_SMOLLM2();
  int code = -1;
  const std::string out = bench_output("--delta-preset authors", code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("prefill sliding+delta(γ=64, delta, dense tail 128) window=2048 sink=1024"), std::string::npos)
      << out;
  const std::string ours = bench_output("--delta-preset ours", code);
  EXPECT_NE(ours.find("prefill sliding+delta(γ=64, delta, dense tail 128) window=2048 sink=64"), std::string::npos)
      << ours;
}

TEST(DeltaPresetCli, ExplicitFlagsWinAndUnknownNamesAreRefused) {
  DELTAINFER_REQUIRE_SMOLLM2();
  int code = -1;
  const std::string out = bench_output("--delta-preset authors --sink 32 --gamma 16", code);
  EXPECT_NE(out.find("sliding+delta(γ=16, delta, dense tail 128) window=2048 sink=32"), std::string::npos) << out;
  const std::string bad = bench_output("--delta-preset theirs", code);
  EXPECT_NE(code, 0);
  EXPECT_NE(bad.find("--delta-preset theirs"), std::string::npos) << bad;
}

}  // namespace
}  // namespace deltainfer
