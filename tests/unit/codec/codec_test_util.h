// Helpers shared by the codec tests: hex literals, one-shot and chunked decoding, and printers so
// that gtest failures show error names instead of numbers.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/codec/decoder.h"
#include "broker/codec/encoder.h"
#include "broker/codec/packet.h"

namespace meshmq::codec {

inline void PrintTo(DecodeError error, std::ostream* os) {
  *os << describe(error);
}
inline void PrintTo(ProtocolVersion v, std::ostream* os) {
  *os << "level " << static_cast<int>(v);
}
inline void PrintTo(const Packet& packet, std::ostream* os) {
  std::string bytes;
  encode(packet, bytes);
  *os << packet_type_name(packet_type(packet)) << " (" << bytes.size() << " bytes encoded)";
}

}  // namespace meshmq::codec

namespace meshmq::codec::test {

using Bytes = std::vector<std::uint8_t>;

// "30 05 00 03 61" -> bytes; whitespace is ignored so tables can group fields.
inline Bytes hex(std::string_view text) {
  Bytes out;
  int high = -1;
  for (const char c : text) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      continue;
    }
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(high * 16 + v));
      high = -1;
    }
  }
  return out;
}

inline Bytes to_bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

inline Bytes encoded(const Packet& packet) {
  std::string out;
  encode(packet, out);
  return to_bytes(out);
}

// What decoding a byte stream yields: the packets in order, then the error or NeedMore that ended
// it.
struct Outcome {
  std::vector<Packet> packets;
  std::optional<DecodeError> error;  // nullopt: the stream ended cleanly or mid-packet
  bool partial = false;              // has_partial() at the end
  bool operator==(const Outcome&) const = default;
};

inline void PrintTo(const Outcome& o, std::ostream* os) {
  *os << o.packets.size() << " packets, ";
  if (o.error) {
    *os << "error: " << describe(*o.error);
  } else {
    *os << (o.partial ? "partial tail" : "clean end");
  }
}

// Feeds `chunks` one after another, draining each with next() (or next_view(), with each
// PublishView copied into a Publish at once) until NeedMore or an error.
inline Outcome decode_chunks(const std::vector<std::span<const std::uint8_t>>& chunks,
                             DecoderLimits limits = {},
                             ProtocolVersion version = ProtocolVersion::kV311, bool views = false) {
  Decoder decoder(limits);
  decoder.set_protocol_version(version);
  Outcome outcome;
  for (auto chunk : chunks) {
    while (true) {
      DecodeViewResult result;
      if (views) {
        result = decoder.next_view(chunk);
      } else {
        std::visit([&](auto&& v) { result = std::move(v); }, decoder.next(chunk));
      }
      if (auto* packet = std::get_if<Packet>(&result)) {
        outcome.packets.push_back(std::move(*packet));
        continue;
      }
      if (auto* v = std::get_if<PublishView>(&result)) {
        outcome.packets.push_back(Publish{.topic = std::string(v->topic),
                                          .payload = std::string(v->payload),
                                          .qos = v->qos,
                                          .retain = v->retain,
                                          .dup = v->dup,
                                          .packet_id = v->packet_id});
        continue;
      }
      if (auto* error = std::get_if<DecodeError>(&result)) {
        outcome.error = *error;
        return outcome;
      }
      break;  // NeedMore: the chunk is used up
    }
  }
  outcome.partial = decoder.has_partial();
  return outcome;
}

inline Outcome decode_all(std::span<const std::uint8_t> bytes, DecoderLimits limits = {},
                          ProtocolVersion version = ProtocolVersion::kV311) {
  return decode_chunks({bytes}, limits, version);
}

inline Outcome decode_bytewise(std::span<const std::uint8_t> bytes, DecoderLimits limits = {},
                               ProtocolVersion version = ProtocolVersion::kV311) {
  std::vector<std::span<const std::uint8_t>> chunks;
  for (std::size_t i = 0; i < bytes.size(); ++i) chunks.push_back(bytes.subspan(i, 1));
  return decode_chunks(chunks, limits, version);
}

}  // namespace meshmq::codec::test
