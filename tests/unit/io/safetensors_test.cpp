#include "io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/half.h"
#include "unit/io/safetensors_writer.h"

namespace deltainfer::io {
namespace {

using test::SafetensorsWriter;
using ::testing::HasSubstr;

std::string parse_error(const std::vector<uint8_t>& image) {
  try {
    SafetensorsFile::parse(image.data(), image.size(), "mem.safetensors");
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

std::string make_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

TEST(Safetensors, ReadsF32F16Bf16) {
  SafetensorsWriter w;
  w.add_f32("a", {2, 2}, {1, 2, 3, 4});
  w.add("h", "F16", {2}, {0x00, 0x3c, 0x00, 0xc0});  // 1, -2
  w.add("b", "BF16", {1}, {0x40, 0xc0});             // -3
  w.add("i", "I64", {1}, std::vector<uint8_t>(8));
  w.header()["__metadata__"] = {{"format", "pt"}};
  const std::vector<uint8_t> image = w.bytes();
  const SafetensorsFile file = SafetensorsFile::parse(image.data(), image.size(), "mem");
  EXPECT_EQ(file.tensors().size(), 4u);
  const SafetensorsTensor* a = file.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  std::vector<float> out(4);
  file.read_f32(*a, out.data(), 4);
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 4}));
  file.read_f32(*file.find("h"), out.data(), 2);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  file.read_f32(*file.find("b"), out.data(), 1);
  EXPECT_EQ(out[0], -3.0f);
  EXPECT_THROW(file.read_f32(*file.find("i"), out.data(), 1), InputError);
  EXPECT_THROW(file.read_f32(*a, out.data(), 3), InputError);
}

TEST(Safetensors, MalformedFiles) {
  SafetensorsWriter w;
  w.add_f32("a", {2}, {1, 2});
  std::vector<uint8_t> image = w.bytes();
  EXPECT_THAT(parse_error({1, 2, 3}), HasSubstr("too small"));
  std::vector<uint8_t> huge = image;
  huge[7] = 0x7f;
  EXPECT_THAT(parse_error(huge), HasSubstr("header length"));
  EXPECT_THAT(parse_error(w.bytes_with_header("{not json")), HasSubstr("not valid JSON"));
  EXPECT_THAT(parse_error(w.bytes_with_header("[1]")), HasSubstr("not a JSON object"));
  EXPECT_THAT(parse_error(w.bytes_with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})")),
              HasSubstr("need 12"));
  EXPECT_THAT(parse_error(w.bytes_with_header(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})")),
              HasSubstr("outside the data section"));
  EXPECT_THAT(parse_error(w.bytes_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})")),
              HasSubstr("outside"));
  EXPECT_THAT(parse_error(w.bytes_with_header(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})")),
              HasSubstr("unknown dtype 'Q4'"));
  EXPECT_THAT(parse_error(w.bytes_with_header(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})")),
              HasSubstr("negative dimension -2"));
  EXPECT_THAT(parse_error(w.bytes_with_header(R"({"a":{"dtype":"F32","shape":[2]}})")), HasSubstr("data_offsets"));
  EXPECT_THAT(parse_error(w.bytes_with_header(
                  R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})")),
              HasSubstr("too many elements"));
  for (size_t n = 0; n < image.size(); ++n) {
    const std::vector<uint8_t> prefix(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(SafetensorsFile::parse(prefix.data(), prefix.size(), "p"), InputError) << n;
  }
}

TEST(Safetensors, ShardedCheckpoint) {
  const std::string dir = make_dir("st_sharded");
  SafetensorsWriter().add_f32("x", {1}, {1}).write(dir + "/model-00001-of-00002.safetensors");
  SafetensorsWriter().add_f32("y", {1}, {2}).write(dir + "/model-00002-of-00002.safetensors");
  std::ofstream(dir + "/model.safetensors.index.json")
      << R"({"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}})";
  const SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open_dir(dir);
  EXPECT_EQ(checkpoint.files().size(), 2u);
  const SafetensorsFile* file = nullptr;
  const SafetensorsTensor* y = checkpoint.find("y", &file);
  ASSERT_NE(y, nullptr);
  float value = 0;
  file->read_f32(*y, &value, 1);
  EXPECT_EQ(value, 2.0f);
  EXPECT_EQ(checkpoint.find("z"), nullptr);
}

TEST(Safetensors, ShardedCheckpointErrors) {
  const std::string dir = make_dir("st_sharded_bad");
  SafetensorsWriter().add_f32("x", {1}, {1}).write(dir + "/a.safetensors");
  std::ofstream(dir + "/model.safetensors.index.json") << R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors"}})";
  EXPECT_THROW(SafetensorsCheckpoint::open_dir(dir), InputError);
  std::ofstream(dir + "/model.safetensors.index.json") << R"({"weight_map": {"x": "../a.safetensors"}})";
  EXPECT_THROW(SafetensorsCheckpoint::open_dir(dir), InputError);
  std::ofstream(dir + "/model.safetensors.index.json") << R"({"weight_map": {"x": "missing.safetensors"}})";
  EXPECT_THROW(SafetensorsCheckpoint::open_dir(dir), InputError);
  EXPECT_THROW(SafetensorsCheckpoint::open_dir(make_dir("st_empty")), InputError);
}

}  // namespace
}  // namespace deltainfer::io
