// Internal to the codec: checks on the fixed header (2.2) that can be made before the body arrives,
// shared by the incremental Decoder and parse_packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "broker/codec/decoder.h"

namespace meshmq::codec::detail {

// Packet type (2.2.1) and flag bits (2.2.2) of the first byte.
std::optional<DecodeError> check_first_byte(std::uint8_t first_byte, ProtocolVersion version);

// Rejects a remaining length that cannot be right for the type, e.g. PINGREQ with a body, so a peer
// cannot make us wait for (or buffer) bytes we would refuse anyway.
std::optional<DecodeError> check_remaining_length(std::uint8_t first_byte, std::size_t length,
                                                  ProtocolVersion version);

struct FixedHeader {
  enum class Status : std::uint8_t { kIncomplete, kComplete, kError };
  Status status = Status::kIncomplete;
  std::size_t size = 0;              // bytes of the fixed header, 2..5, when complete
  std::size_t remaining_length = 0;  // when complete
  DecodeError error = DecodeError::kMalformedPacket;  // when kError
};

// Reads the first byte and the Remaining Length (2.2.3) from the front of `bytes`.
FixedHeader scan_fixed_header(std::span<const std::uint8_t> bytes);

}  // namespace meshmq::codec::detail
