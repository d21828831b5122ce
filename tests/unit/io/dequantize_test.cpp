#include "io/dequantize.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "io/half.h"
#include "unit/io/dequant_fixture.h"

namespace deltainfer::io {
namespace {

using test::load_dequant_fixture;
using test::same_float;

void put_f16(uint8_t* p, uint16_t bits) { std::memcpy(p, &bits, 2); }

class DequantFixtures : public ::testing::TestWithParam<const char*> {};

// The fixtures hold bytes and the `gguf` package's dequantization of them (scripts/gen-dequant-fixtures).
TEST_P(DequantFixtures, MatchesGgufPythonBitExactly) {
  const test::DequantFixture fixture = load_dequant_fixture(GetParam());
  const auto n = static_cast<int64_t>(fixture.expected.size());
  ASSERT_EQ(ggml_nbytes(fixture.type, static_cast<uint64_t>(n)), fixture.raw.size());
  std::vector<float> out(fixture.expected.size(), -1.0f);
  dequantize(fixture.type, fixture.raw.data(), out.data(), n);
  int mismatches = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!same_float(out[i], fixture.expected[i]) && ++mismatches <= 5) {
      ADD_FAILURE() << ggml_type_name(fixture.type) << " element " << i << ": got " << out[i] << ", gguf says "
                    << fixture.expected[i];
    }
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DequantFixtures,
                         ::testing::Values("dequant_f32", "dequant_f16", "dequant_bf16", "dequant_q4_0", "dequant_q4_1",
                                           "dequant_q5_0", "dequant_q5_1", "dequant_q8_0", "dequant_q2_k", "dequant_q3_k",
                                           "dequant_q4_k", "dequant_q5_k", "dequant_q6_k", "dequant_q8_k",
                                           "dequant_iq4_nl", "dequant_iq4_xs"));

TEST(Dequantize, RowsMatchWholeTensor) {
  const test::DequantFixture fixture = load_dequant_fixture("dequant_q4_k");
  std::vector<float> rows(512);
  dequantize_rows(fixture.type, fixture.raw.data(), 256, 2, 2, rows.data());  // rows 2 and 3 of a 4 x 256 matrix
  for (size_t i = 0; i < rows.size(); ++i) ASSERT_TRUE(same_float(rows[i], fixture.expected[512 + i])) << i;
}

TEST(Dequantize, Q4_0BlockLayout) {
  // d = 2.0 (f16 0x4000); byte j holds element j (low nibble) and element j + 16 (high nibble).
  uint8_t block[18] = {};
  put_f16(block, 0x4000);
  block[2] = 0x9F;   // element 0: 0xF - 8 = 7 -> 14; element 16: 0x9 - 8 = 1 -> 2
  block[17] = 0x08;  // element 15: 0 -> 0; element 31: 0 - 8 = -8 -> -16
  float y[32];
  dequantize(GgmlType::Q4_0, block, y, 32);
  EXPECT_EQ(y[0], 14.0f);
  EXPECT_EQ(y[16], 2.0f);
  EXPECT_EQ(y[15], 0.0f);
  EXPECT_EQ(y[31], -16.0f);
  EXPECT_EQ(y[1], -16.0f);  // zero byte -> both nibbles 0 - 8
}

TEST(Dequantize, Q4_1BlockLayout) {
  uint8_t block[20] = {};
  put_f16(block, 0x3800);      // d = 0.5
  put_f16(block + 2, 0xBC00);  // m = -1
  block[4] = 0xA3;             // element 0: 3 * 0.5 - 1; element 16: 10 * 0.5 - 1
  float y[32];
  dequantize(GgmlType::Q4_1, block, y, 32);
  EXPECT_EQ(y[0], 0.5f);
  EXPECT_EQ(y[16], 4.0f);
  EXPECT_EQ(y[1], -1.0f);
}

TEST(Dequantize, Q8_0BlockLayout) {
  uint8_t block[34] = {};
  put_f16(block, 0x3400);  // d = 0.25
  block[2] = 0x80;         // -128
  block[33] = 0x7f;        // 127
  float y[32];
  dequantize(GgmlType::Q8_0, block, y, 32);
  EXPECT_EQ(y[0], -32.0f);
  EXPECT_EQ(y[31], 31.75f);
}

TEST(Dequantize, Q4_KScalesAndMins) {
  // Sub-block 0 uses scale q[0] & 63 and min q[4] & 63; sub-block 4 packs its 6 bits as
  // low nibble of q[8] plus the top two bits of q[0] (scale), high nibble of q[8] plus q[4]'s (min).
  uint8_t block[144] = {};
  put_f16(block, 0x3C00);      // d = 1
  put_f16(block + 2, 0x4000);  // dmin = 2
  uint8_t* scales = block + 4;
  scales[0] = 0x40 | 3;  // sub-block 0 scale 3, bits 4..5 of sub-block 4's scale = 01
  scales[4] = 0x80 | 5;  // sub-block 0 min 5, bits 4..5 of sub-block 4's min = 10
  scales[8] = 0x72;      // sub-block 4: scale 0x2 | 0x10 = 18, min 0x7 | 0x20 = 39
  uint8_t* qs = block + 16;
  qs[0] = 0x0F;        // element 0 (sub-block 0) nibble 15
  qs[64] = 0x01;       // element 128 (sub-block 4) low nibble 1
  float y[256];
  dequantize(GgmlType::Q4_K, block, y, 256);
  EXPECT_EQ(y[0], 3.0f * 15 - 2.0f * 5);
  EXPECT_EQ(y[1], -10.0f);
  EXPECT_EQ(y[128], 18.0f * 1 - 2.0f * 39);
}

TEST(Dequantize, Q6_KLayout) {
  uint8_t block[210] = {};
  uint8_t* ql = block;
  uint8_t* qh = block + 128;
  auto* sc = reinterpret_cast<int8_t*>(block + 192);
  put_f16(block + 208, 0x3C00);  // d = 1
  sc[0] = 2;
  sc[2] = -1;
  ql[0] = 0x05;   // element 0 low 4 bits 5, element 64 low 4 bits 0
  qh[0] = 0x03;   // element 0 high 2 bits 3 -> q = 5 | 48 = 53 - 32 = 21
  ql[32] = 0x00;  // element 32: q = 0 - 32 with scale sc[2] = -1 -> 32
  float y[256];
  dequantize(GgmlType::Q6_K, block, y, 256);
  EXPECT_EQ(y[0], 42.0f);
  EXPECT_EQ(y[32], 32.0f);
}

TEST(Dequantize, Q5_0FifthBitComesFromQh) {
  // d = 1.0 (f16 0x3C00); bit j of the u32 qh is the fifth bit of element j (0..31).
  uint8_t block[22] = {};
  put_f16(block, 0x3C00);
  const uint32_t qh = (1u << 0) | (1u << 17);  // elements 0 and 17
  std::memcpy(block + 2, &qh, 4);
  block[6] = 0x21;  // element 0: low nibble 1 | 16 -> 17 - 16 = 1; element 16: 2 - 16 = -14
  block[7] = 0x30;  // element 1: 0 - 16 = -16; element 17: 3 | 16 -> 19 - 16 = 3
  float y[32];
  dequantize(GgmlType::Q5_0, block, y, 32);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[16], -14.0f);
  EXPECT_EQ(y[1], -16.0f);
  EXPECT_EQ(y[17], 3.0f);
}

TEST(Dequantize, Iq4NlIndexesTheCodebook) {
  // d = 0.5 (f16 0x3800); nibble 0 -> -127, 15 -> 113, 8 -> 1.
  uint8_t block[18] = {};
  put_f16(block, 0x3800);
  block[2] = 0xF0;
  block[3] = 0x08;
  float y[32];
  dequantize(GgmlType::IQ4_NL, block, y, 32);
  EXPECT_EQ(y[0], -63.5f);
  EXPECT_EQ(y[16], 56.5f);
  EXPECT_EQ(y[1], 0.5f);
  EXPECT_EQ(y[17], -63.5f);
}

TEST(Dequantize, EveryListedTypeIsSupported) {
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                        GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                        GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
    EXPECT_TRUE(can_dequantize(type)) << ggml_type_name(type);
    EXPECT_THAT(dequantizable_type_names(), ::testing::HasSubstr(ggml_type_name(type)));
  }
}

TEST(Dequantize, UnsupportedTypeIsNamed) {
  uint8_t block[66] = {};
  float y[256];
  try {
    dequantize(GgmlType::IQ2_XXS, block, y, 256);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("IQ2_XXS"));
  }
  EXPECT_FALSE(can_dequantize(GgmlType::IQ2_XXS));
  EXPECT_FALSE(can_dequantize(GgmlType::Q8_1));
  EXPECT_THROW(dequantize(GgmlType::Q4_0, block, y, 31), InputError);
}

TEST(Half, F16SpecialValues) {
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
}

TEST(Half, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3f818000)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3f808001)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
}

}  // namespace
}  // namespace deltainfer::io
