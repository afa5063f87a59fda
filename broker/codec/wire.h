// Internal to the codec: bounds-checked reads of the MQTT data representations (1.5) from a packet
// body, and the matching appends for the encoder. Not part of the public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "broker/codec/decoder.h"

namespace meshmq::codec::detail {

// Largest value of the variable-length Remaining Length field (2.2.3, four 7-bit digits).
inline constexpr std::size_t kMaxRemainingLength = 268'435'455;

// Every read either succeeds and advances or fails and leaves the reader where it was; a failed
// read means the body ended early, which the parsers report as kMalformedPacket.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data) : data_(data) {}

  std::size_t remaining() const { return data_.size() - pos_; }
  bool empty() const { return pos_ == data_.size(); }

  bool u8(std::uint8_t& out) {
    if (remaining() < 1) return false;
    out = data_[pos_++];
    return true;
  }

  bool u16(std::uint16_t& out) {
    if (remaining() < 2) return false;
    out = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return true;
  }

  // Two-byte length followed by that many bytes (1.5.3 strings and the binary will message and
  // password). The view points into the body; callers copy what they keep.
  bool prefixed(std::string_view& out) {
    if (remaining() < 2) return false;
    const std::size_t len = (std::size_t{data_[pos_]} << 8) | data_[pos_ + 1];
    if (remaining() - 2 < len) return false;
    out = view(pos_ + 2, len);
    pos_ += 2 + len;
    return true;
  }

  // Everything left, e.g. the PUBLISH payload.
  std::string_view rest() {
    std::string_view out = view(pos_, remaining());
    pos_ = data_.size();
    return out;
  }

 private:
  std::string_view view(std::size_t pos, std::size_t len) const {
    return {reinterpret_cast<const char*>(data_.data()) + pos, len};
  }

  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
};

// A UTF-8 string field: truncation is kMalformedPacket, bad content kInvalidUtf8 (MQTT-1.5.3-1/2).
std::optional<DecodeError> read_utf8(Reader& reader, std::string_view& out);

inline std::size_t varint_size(std::size_t value) {
  return value < 128 ? 1 : value < 16'384 ? 2 : value < 2'097'152 ? 3 : 4;
}

inline void put_u8(std::string& out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}

inline void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

inline void put_varint(std::string& out, std::size_t value) {
  do {
    std::uint8_t digit = value % 128;
    value /= 128;
    if (value > 0) digit |= 0x80;
    put_u8(out, digit);
  } while (value > 0);
}

inline void put_prefixed(std::string& out, std::string_view s) {
  put_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

}  // namespace meshmq::codec::detail
