#include "io/gguf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "core/error.h"
#include "unit/io/gguf_writer.h"

namespace deltainfer::io {
namespace {

using test::GgufWriter;
using ::testing::HasSubstr;

GgufFile parse(const std::vector<uint8_t>& image) { return GgufFile::parse(image.data(), image.size(), "mem.gguf"); }

std::string parse_error(const std::vector<uint8_t>& image) {
  try {
    parse(image);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

std::vector<uint8_t> u64_bytes(uint64_t v) {
  std::vector<uint8_t> out;
  GgufWriter::put(out, v);
  return out;
}

GgufWriter every_type_writer(uint32_t version) {
  GgufWriter w(version);
  w.scalar("u8", GgufType::UInt8, uint8_t{200})
      .scalar("i8", GgufType::Int8, int8_t{-100})
      .scalar("u16", GgufType::UInt16, uint16_t{60000})
      .scalar("i16", GgufType::Int16, int16_t{-30000})
      .u32("u32", 4000000000u)
      .scalar("i32", GgufType::Int32, int32_t{-2000000000})
      .f32("f32", 0.25f)
      .scalar("bool", GgufType::Bool, uint8_t{1})
      .str("string", "héllo")
      .scalar("u64", GgufType::UInt64, uint64_t{1} << 40)
      .scalar("i64", GgufType::Int64, int64_t{-(int64_t{1} << 40)})
      .scalar("f64", GgufType::Float64, 1e300)
      .array("arr_i32", GgufType::Int32, std::vector<int32_t>{1, -2, 3})
      .array("arr_f32", GgufType::Float32, std::vector<float>{0.5f, -1.5f})
      .array("arr_u8", GgufType::UInt8, std::vector<uint8_t>{})
      .string_array("arr_str", {"a", "", "ccc"});
  // array[array[u16; 2]; 2]
  std::vector<uint8_t> nested;
  GgufWriter::put(nested, static_cast<uint32_t>(GgufType::Array));
  GgufWriter::put(nested, uint64_t{2});
  for (uint16_t base : {uint16_t{10}, uint16_t{20}}) {
    GgufWriter::put(nested, static_cast<uint32_t>(GgufType::UInt16));
    GgufWriter::put(nested, uint64_t{2});
    GgufWriter::put(nested, base);
    GgufWriter::put(nested, static_cast<uint16_t>(base + 1));
  }
  w.raw_kv("nested", GgufType::Array, nested);
  w.f32_tensor("t.weight", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  return w;
}

class GgufVersions : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufVersions, ReadsEveryMetadataType) {
  const std::vector<uint8_t> image = every_type_writer(GetParam()).bytes();
  const GgufFile file = parse(image);
  EXPECT_EQ(file.version(), GetParam());
  EXPECT_EQ(file.keys().size(), 17u);
  EXPECT_EQ(file.keys().front(), "u8");
  EXPECT_EQ(file.get_int("u8"), 200);
  EXPECT_EQ(file.get_int("i8"), -100);
  EXPECT_EQ(file.get_int("u16"), 60000);
  EXPECT_EQ(file.get_int("i16"), -30000);
  EXPECT_EQ(file.get_int("u32"), 4000000000LL);
  EXPECT_EQ(file.get_int("i32"), -2000000000);
  EXPECT_EQ(file.get_float("f32"), 0.25);
  EXPECT_EQ(file.get_bool("bool"), true);
  EXPECT_EQ(file.get_string("string"), "héllo");
  EXPECT_EQ(file.get_int("u64"), int64_t{1} << 40);
  EXPECT_EQ(file.get_int("i64"), -(int64_t{1} << 40));
  EXPECT_EQ(file.get_float("f64"), 1e300);
  EXPECT_EQ(file.get_float("u32"), 4e9);  // integers read as numbers too
  EXPECT_EQ(file.get_int_array("arr_i32"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(file.get_float_array("arr_f32"), (std::vector<double>{0.5, -1.5}));
  EXPECT_TRUE(file.get_int_array("arr_u8").empty());
  EXPECT_EQ(file.array_size("arr_u8"), 0u);
  EXPECT_EQ(file.get_string_array("arr_str"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(file.type_description("arr_str"), "array[string; 3]");
  EXPECT_EQ(file.type_description("nested"), "array[array[u16; 2]; 2]");
  EXPECT_EQ(file.type_description("u32"), "u32");
  EXPECT_EQ(file.value_summary("string"), "\"héllo\"");
  EXPECT_EQ(file.value_summary("i8"), "-100");
  const GgufValue* nested = file.find_value("nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->array->arrays.size(), 2u);
  uint16_t last = 0;
  std::memcpy(&last, nested->array->arrays[1].raw + 2, 2);
  EXPECT_EQ(last, 21);
  EXPECT_FALSE(file.has("missing"));
  EXPECT_EQ(file.get_int("missing"), std::nullopt);
  EXPECT_TRUE(file.get_string_array("missing").empty());
}

INSTANTIATE_TEST_SUITE_P(V2AndV3, GgufVersions, ::testing::Values(2u, 3u));

TEST(Gguf, WrongTypeGetterNamesKey) {
  const std::vector<uint8_t> image = every_type_writer(3).bytes();
  const GgufFile file = parse(image);
  EXPECT_THROW(file.get_int("string"), InputError);
  EXPECT_THROW(file.get_float("bool"), InputError);
  EXPECT_THROW(file.get_bool("u8"), InputError);
  EXPECT_THROW(file.get_string_array("arr_i32"), InputError);
  EXPECT_THROW(file.get_int_array("arr_f32"), InputError);
  EXPECT_THROW(file.get_float_array("nested"), InputError);
  try {
    file.get_string("u32");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'u32' has type u32, expected string"));
  }
}

TEST(Gguf, LargeU64DoesNotFitInt64) {
  const std::vector<uint8_t> image =
      GgufWriter().scalar("big", GgufType::UInt64, std::numeric_limits<uint64_t>::max()).bytes();
  EXPECT_THROW(parse(image).get_int("big"), InputError);
}

TEST(Gguf, TensorInfosAndData) {
  const std::vector<uint8_t> image = every_type_writer(3).bytes();
  const GgufFile file = parse(image);
  ASSERT_EQ(file.tensors().size(), 1u);
  const GgufTensorInfo* t = file.find_tensor("t.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dims, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(t->shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(t->n_elements, 8u);
  EXPECT_EQ(t->n_bytes, 32u);
  EXPECT_EQ(file.data_offset() % 32, 0u);
  float values[8];
  std::memcpy(values, file.tensor_data(*t), sizeof values);
  EXPECT_EQ(values[5], 6.0f);
  EXPECT_EQ(file.find_tensor("nope"), nullptr);
}

TEST(Gguf, CustomAlignment) {
  GgufWriter w(3, 64);
  w.u32("general.alignment", 64).f32_tensor("a", {3}, {1, 2, 3}).f32_tensor("b", {2}, {4, 5});
  const std::vector<uint8_t> image = w.bytes();
  const GgufFile file = parse(image);
  EXPECT_EQ(file.alignment(), 64u);
  EXPECT_EQ(file.data_offset() % 64, 0u);
  EXPECT_EQ(file.find_tensor("b")->offset, 64u);
  float b0 = 0;
  std::memcpy(&b0, file.tensor_data(*file.find_tensor("b")), sizeof b0);
  EXPECT_EQ(b0, 4.0f);
}

TEST(Gguf, MisalignedTensorOffsetIsRejected) {
  // Written with 32-byte padding but declaring 64: tensor b's offset 32 is not 64-aligned.
  GgufWriter w(3, 32);
  w.u32("general.alignment", 64).f32_tensor("a", {3}, {1, 2, 3}).f32_tensor("b", {2}, {4, 5});
  EXPECT_THAT(parse_error(w.bytes()), HasSubstr("not a multiple of the alignment 64"));
}

TEST(Gguf, BadAlignmentValues) {
  EXPECT_THAT(parse_error(GgufWriter().u32("general.alignment", 0).bytes()), HasSubstr("general.alignment"));
  EXPECT_THAT(parse_error(GgufWriter().u32("general.alignment", 48).bytes()), HasSubstr("power of two"));
  EXPECT_THAT(parse_error(GgufWriter().str("general.alignment", "32").bytes()), HasSubstr("general.alignment"));
}

TEST(Gguf, HeaderErrors) {
  std::vector<uint8_t> image = GgufWriter().bytes();
  image[0] = 'X';
  EXPECT_THAT(parse_error(image), HasSubstr("not a GGUF file"));
  EXPECT_THAT(parse_error(GgufWriter(1).bytes()), HasSubstr("version 1 is not supported"));
  EXPECT_THAT(parse_error(GgufWriter(4).bytes()), HasSubstr("unsupported GGUF version 4"));
  EXPECT_THAT(parse_error({'G', 'G'}), HasSubstr("too small"));
  EXPECT_THAT(parse_error({}), HasSubstr("mem.gguf: file too small"));
}

TEST(Gguf, HugeCountsAreRejectedBeforeAllocation) {
  std::vector<uint8_t> image = GgufWriter().bytes();
  std::memset(image.data() + 8, 0xff, 8);  // tensor count
  EXPECT_THAT(parse_error(image), HasSubstr("tensor count"));
  image = GgufWriter().bytes();
  std::memset(image.data() + 16, 0xff, 8);  // metadata count
  EXPECT_THAT(parse_error(image), HasSubstr("metadata count"));
  std::vector<uint8_t> array_value;
  GgufWriter::put(array_value, static_cast<uint32_t>(GgufType::String));
  GgufWriter::put(array_value, uint64_t{1} << 60);
  EXPECT_THAT(parse_error(GgufWriter().raw_kv("k", GgufType::Array, array_value).bytes()), HasSubstr("does not fit"));
  std::vector<uint8_t> string_value = u64_bytes(uint64_t{1} << 62);
  EXPECT_THAT(parse_error(GgufWriter().raw_kv("k", GgufType::String, string_value).bytes()),
              HasSubstr("string has length 4611686018427387904"));
}

TEST(Gguf, DeeplyNestedArraysAreRejected) {
  std::vector<uint8_t> nested;
  for (int i = 0; i < 20; ++i) {
    GgufWriter::put(nested, static_cast<uint32_t>(GgufType::Array));
    GgufWriter::put(nested, uint64_t{1});
  }
  GgufWriter::put(nested, static_cast<uint32_t>(GgufType::UInt8));
  GgufWriter::put(nested, uint64_t{0});
  EXPECT_THAT(parse_error(GgufWriter().raw_kv("deep", GgufType::Array, nested).bytes()), HasSubstr("nests arrays"));
}

TEST(Gguf, MetadataErrors) {
  EXPECT_THAT(parse_error(GgufWriter().u32("a", 1).u32("a", 2).bytes()), HasSubstr("duplicate metadata key 'a'"));
  EXPECT_THAT(parse_error(GgufWriter().raw_kv("k", static_cast<GgufType>(13), {}).bytes()),
              HasSubstr("unknown value type 13"));
}

TEST(Gguf, TensorInfoErrors) {
  auto f32 = [](size_t n) { return std::vector<uint8_t>(n * 4); };
  EXPECT_THAT(parse_error(GgufWriter().tensor("a", {2}, GgmlType::F32, f32(2)).tensor("a", {2}, GgmlType::F32, f32(2)).bytes()),
              HasSubstr("duplicate tensor name 'a'"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("a", {1, 1, 1, 1, 1}, GgmlType::F32, f32(1)).bytes()),
              HasSubstr("has 5 dimensions"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("a", {}, GgmlType::F32, f32(1)).bytes()), HasSubstr("has 0 dimensions"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("a", {2, 0}, GgmlType::F32, f32(0)).bytes()),
              HasSubstr("invalid dimension 1 = 0"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("a", {uint64_t{1} << 32, uint64_t{1} << 32}, GgmlType::F32, {}).bytes()),
              HasSubstr("overflow"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("a", {uint64_t{1} << 62}, GgmlType::F32, {}).bytes()),
              HasSubstr("too large"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("a", {2}, static_cast<GgmlType>(4), f32(2)).bytes()),
              HasSubstr("unknown ggml type id 4"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("a", {2}, static_cast<GgmlType>(1000), f32(2)).bytes()),
              HasSubstr("unknown ggml type id 1000"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("q", {48}, GgmlType::Q4_0, std::vector<uint8_t>(36)).bytes()),
              HasSubstr("not a multiple of the block size 32"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("big", {1024}, GgmlType::F32, f32(2)).bytes()),
              HasSubstr("extends past the end of the file"));
  EXPECT_THAT(parse_error(GgufWriter().tensor("", {2}, GgmlType::F32, f32(2)).bytes()), HasSubstr("empty name"));
}

TEST(Gguf, OverlappingTensorsAreRejected) {
  // Tensor b's recorded offset is patched to 0, the start of a.
  GgufWriter w;
  w.f32_tensor("a", {8}, std::vector<float>(8)).f32_tensor("b", {8}, std::vector<float>(8));
  std::vector<uint8_t> image = w.bytes();
  const GgufFile ok = parse(image);
  const std::vector<uint8_t> needle = u64_bytes(32);
  for (size_t i = 24; i + 8 <= ok.data_offset(); ++i) {
    if (std::memcmp(image.data() + i, needle.data(), 8) == 0) std::memset(image.data() + i, 0, 8);
  }
  EXPECT_THAT(parse_error(image), HasSubstr("overlaps"));
}

TEST(Gguf, EveryTruncationIsAnInputError) {
  const std::vector<uint8_t> image = every_type_writer(3).bytes();
  for (size_t n = 0; n < image.size(); ++n) {
    const std::vector<uint8_t> prefix(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(n));
    // Copy into an exactly-sized heap buffer so ASan catches any read past the end.
    EXPECT_THROW(parse(prefix), InputError) << "prefix of " << n << " bytes";
  }
}

TEST(Gguf, ErrorsCarryPathAndOffset) {
  const std::vector<uint8_t> image = every_type_writer(3).bytes();
  const std::vector<uint8_t> prefix(image.begin(), image.begin() + 30);
  EXPECT_THAT(parse_error(prefix), ::testing::MatchesRegex("mem\\.gguf: .*\\(at byte offset [0-9]+\\)"));
}

TEST(Gguf, EverySingleByteCorruptionIsHandled) {
  // Flipping any byte of a valid file must give a valid file or an InputError, never a crash.
  const std::vector<uint8_t> image = every_type_writer(3).bytes();
  for (size_t i = 0; i < image.size(); ++i) {
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::vector<uint8_t> corrupt = image;
      corrupt[i] ^= flip;
      try {
        parse(corrupt);
      } catch (const InputError&) {
      }
    }
  }
}

TEST(Gguf, OpenReportsMissingFile) {
  try {
    GgufFile::open("/nonexistent/model.gguf");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/model.gguf: cannot open file"));
  }
}

TEST(Gguf, OpenMapsAFile) {
  const std::string path = ::testing::TempDir() + "/gguf_open_test.gguf";
  every_type_writer(2).write(path);
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.path(), path);
  EXPECT_EQ(file.version(), 2u);
  float first = 0;
  std::memcpy(&first, file.tensor_data(file.tensors()[0]), sizeof first);
  EXPECT_EQ(first, 1.0f);
}

}  // namespace
}  // namespace deltainfer::io
