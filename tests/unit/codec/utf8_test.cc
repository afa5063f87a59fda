// valid_mqtt_utf8: RFC 3629 well-formedness plus the MQTT ban on U+0000 (1.5.3).
#include "broker/codec/utf8.h"

#include <gtest/gtest.h>

#include "tests/unit/codec/codec_test_util.h"

namespace meshmq::codec::test {
namespace {

struct Utf8Case {
  const char* what;
  const char* hex;
  bool valid;
};

void PrintTo(const Utf8Case& c, std::ostream* os) {
  *os << c.what << " [" << c.hex << "]";
}

// clang-format off
const Utf8Case kUtf8Cases[] = {
  {"empty", "", true},
  {"ASCII", "61 2f 62", true},
  {"ASCII longer than a word", "61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70 71", true},
  {"2-byte U+00E9", "c3 a9", true},
  {"smallest 2-byte U+0080", "c2 80", true},
  {"3-byte U+20AC", "e2 82 ac", true},
  {"smallest 3-byte U+0800", "e0 a0 80", true},
  {"last before surrogates U+D7FF", "ed 9f bf", true},
  {"first after surrogates U+E000", "ee 80 80", true},
  {"noncharacter U+FFFF is allowed (MQTT SHOULD NOT, not MUST NOT)", "ef bf bf", true},
  {"BOM U+FEFF kept (MQTT-1.5.3-3)", "ef bb bf", true},
  {"4-byte U+1D11E", "f0 9d 84 9e", true},
  {"smallest 4-byte U+10000", "f0 90 80 80", true},
  {"largest U+10FFFF", "f4 8f bf bf", true},
  {"control U+0001 allowed", "01", true},
  {"mixed after an ASCII run", "61 61 61 61 61 61 61 61 61 c3 a9 61 61 61 61 61 61 61 61 e2 82 ac", true},
  {"U+0000 (MQTT-1.5.3-2)", "00", false},
  {"U+0000 inside", "61 00 62", false},
  {"U+0000 in the 1st word", "00 61 61 61 61 61 61 61 61 61", false},
  {"U+0000 at the end of a word", "61 61 61 61 61 61 61 00 61 61", false},
  {"U+0000 in the 2nd word", "61 61 61 61 61 61 61 61 61 61 61 61 00 61 61 61", false},
  {"overlong U+0000 C0 80", "c0 80", false},
  {"overlong C1 BF", "c1 bf", false},
  {"overlong 3-byte E0 80 80", "e0 80 80", false},
  {"overlong 3-byte U+07FF", "e0 9f bf", false},
  {"overlong 4-byte F0 80 80 80", "f0 80 80 80", false},
  {"overlong 4-byte U+FFFF", "f0 8f bf bf", false},
  {"surrogate U+D800 (MQTT-1.5.3-1)", "ed a0 80", false},
  {"surrogate U+DBFF", "ed af bf", false},
  {"surrogate U+DC00", "ed b0 80", false},
  {"surrogate U+DFFF", "ed bf bf", false},
  {"surrogate pair as CESU-8", "ed a0 bd ed b2 a9", false},
  {"above U+10FFFF: U+110000", "f4 90 80 80", false},
  {"above U+10FFFF: F5 lead", "f5 80 80 80", false},
  {"5-byte form", "f8 88 80 80 80", false},
  {"6-byte form", "fc 84 80 80 80 80", false},
  {"FE", "fe", false},
  {"FF", "ff", false},
  {"lone continuation 80", "80", false},
  {"lone continuation BF after ASCII", "61 bf", false},
  {"truncated 2-byte", "c3", false},
  {"truncated 3-byte", "e2 82", false},
  {"truncated 4-byte", "f0 9d 84", false},
  {"truncated at the end of a long string", "61 61 61 61 61 61 61 61 e2", false},
  {"bad 2nd byte", "c3 28", false},
  {"bad 3rd byte", "e2 82 28", false},
  {"bad 4th byte", "f0 9d 84 28", false},
  {"ASCII where a continuation belongs", "e2 28 a1", false},
};
// clang-format on

class Utf8 : public testing::TestWithParam<Utf8Case> {};

TEST_P(Utf8, Validity) {
  const Bytes bytes = hex(GetParam().hex);
  const std::string_view s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  EXPECT_EQ(valid_mqtt_utf8(s), GetParam().valid);
}

TEST_P(Utf8, SameVerdictInsidePublishTopic) {
  // The decoder applies the same rule to the topic field (MQTT-3.3.2-1).
  const Bytes text = hex(GetParam().hex);
  if (text.empty()) return;
  std::string topic(text.begin(), text.end());
  Bytes packet = {0x30, static_cast<std::uint8_t>(2 + topic.size()), 0,
                  static_cast<std::uint8_t>(topic.size())};
  packet.insert(packet.end(), topic.begin(), topic.end());
  const Outcome outcome = decode_all(packet);
  if (GetParam().valid) {
    EXPECT_EQ(outcome.packets.size(), 1u);
  } else {
    EXPECT_EQ(outcome.error, DecodeError::kInvalidUtf8);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, Utf8, testing::ValuesIn(kUtf8Cases),
                         [](const testing::TestParamInfo<Utf8Case>& info) {
                           return "row" + std::to_string(info.index);
                         });

TEST(Utf8Exhaustive, EveryTwoByteSequence) {
  // Cross-check the fast validator against the definition for all 2-byte inputs.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const char s[2] = {static_cast<char>(a), static_cast<char>(b)};
      bool expected;
      if (a < 0x80) {
        expected = a != 0 && b != 0 && b < 0x80;
      } else {
        expected = a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF;
      }
      ASSERT_EQ(valid_mqtt_utf8(std::string_view(s, 2)), expected) << a << " " << b;
    }
  }
}

TEST(Utf8Exhaustive, EveryCodePointEncodedProperly) {
  // Encode each scalar value the standard way; all but U+0000 and surrogates must be accepted.
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    const bool expected = cp != 0 && (cp < 0xD800 || cp > 0xDFFF);
    ASSERT_EQ(valid_mqtt_utf8(s), expected) << std::hex << cp;
  }
}

}  // namespace
}  // namespace meshmq::codec::test
