// The incremental framing around parse_packet. Two paths:
//  - fast: nothing is pending and `input` holds a whole packet, which is parsed where it lies;
//  - buffered: the fixed header is collected in header_ (at most 5 bytes), then the body in
//    partial_, which is freed as soon as the packet is complete.
// The fixed header is validated as soon as it is known (type, flags, size limit, fixed lengths), so
// a bad or oversized packet is refused before any of its body is buffered.
#include "broker/codec/decoder.h"

#include <algorithm>

#include "broker/codec/fixed_header.h"
#include "broker/codec/packet.h"
#include "broker/codec/parsers.h"

namespace meshmq::codec {
namespace {

// First reservation for a partial body: enough for typical packets in one go, but a peer announcing
// a large packet and then trickling bytes only costs memory in proportion to what it has sent.
constexpr std::size_t kInitialBodyReserve = 4096;

}  // namespace

const char* describe(DecodeError error) {
  switch (error) {
    case DecodeError::kMalformedRemainingLength:
      return "remaining length longer than 4 bytes";
    case DecodeError::kPacketTooLarge:
      return "packet larger than the configured maximum";
    case DecodeError::kInvalidPacketType:
      return "reserved packet type";
    case DecodeError::kInvalidFixedHeaderFlags:
      return "invalid fixed header flags";
    case DecodeError::kMalformedPacket:
      return "malformed packet";
    case DecodeError::kInvalidUtf8:
      return "ill-formed UTF-8 or U+0000 in a string";
    case DecodeError::kUnsupportedProtocolName:
      return "unsupported protocol name";
    case DecodeError::kUnsupportedProtocolLevel:
      return "unsupported protocol level";
    case DecodeError::kReservedConnectFlag:
      return "reserved CONNECT flag set";
    case DecodeError::kInvalidWillFlags:
      return "will QoS or retain set without the will flag";
    case DecodeError::kPasswordWithoutUsername:
      return "password without user name";
    case DecodeError::kInvalidQoS:
      return "QoS 3";
    case DecodeError::kZeroPacketId:
      return "packet identifier 0";
    case DecodeError::kEmptySubscribe:
      return "SUBSCRIBE without topic filters";
    case DecodeError::kEmptyUnsubscribe:
      return "UNSUBSCRIBE without topic filters";
    case DecodeError::kInvalidTopicFilter:
      return "invalid topic filter";
    case DecodeError::kInvalidTopicName:
      return "invalid topic name";
    case DecodeError::kInvalidSubscribeReservedBits:
      return "reserved bits set in requested QoS";
  }
  return "unknown decode error";
}

Decoder::Decoder(DecoderLimits limits) : limits_(limits) {}

void Decoder::Partial::reserve(std::size_t capacity) {
  if (capacity <= capacity_) return;
  auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
  if (size_ > 0) std::copy_n(data_.get(), size_, fresh.get());
  data_ = std::move(fresh);
  capacity_ = static_cast<std::uint32_t>(capacity);
}

void Decoder::Partial::append(const std::uint8_t* bytes, std::size_t n) {
  reserve(size_ + n);
  std::copy_n(bytes, n, data_.get() + size_);
  size_ += static_cast<std::uint32_t>(n);
}

DecodeResult Decoder::next(std::span<const std::uint8_t>& input) {
  return decode<DecodeResult>(input, [this](std::uint8_t first_byte, detail::Body body) {
    return parse_packet(first_byte, body, version_);
  });
}

DecodeViewResult Decoder::next_view(std::span<const std::uint8_t>& input) {
  return decode<DecodeViewResult>(input, [this](std::uint8_t first_byte, detail::Body body) {
    DecodeViewResult out;
    if (static_cast<PacketType>(first_byte >> 4) == PacketType::kPublish) {
      auto r = detail::parse_publish_view(first_byte & 0x0F, body);
      if (auto* view = std::get_if<PublishView>(&r)) {
        out = *view;
        // The view may point into partial_: free it on the next call instead of now.
        stale_partial_ = !partial_.empty();
      } else {
        out = std::get<DecodeError>(r);
      }
      return out;
    }
    std::visit([&](auto&& v) { out = std::move(v); }, parse_packet(first_byte, body, version_));
    return out;
  });
}

template <class Result, class Parse>
Result Decoder::decode(std::span<const std::uint8_t>& input, Parse parse) {
  if (stale_partial_) {
    stale_partial_ = false;
    partial_.release();
  }
  if (failed_) return error_;

  // Header state lives in header_/header_len_; the header is complete once its last byte has no
  // continuation bit (the size is at least 2 then).
  const auto header_complete = [this] {
    return header_len_ >= 2 && (header_[header_len_ - 1] & 0x80) == 0;
  };
  const auto fail = [this](DecodeError error) -> Result {
    failed_ = true;
    error_ = error;
    partial_.release();
    return error;
  };
  const auto finish = [&](Result result) -> Result {
    if (auto* error = std::get_if<DecodeError>(&result)) return fail(*error);
    // The client's CONNECT fixes how the rest of the connection is parsed.
    if (auto* packet = std::get_if<Packet>(&result)) {
      if (auto* connect = std::get_if<Connect>(packet)) version_ = connect->version;
    }
    return result;
  };
  // Checks in the same order on both paths, so that how the bytes were chunked never changes which
  // error is reported: first byte, then length digits, then the length itself.
  const auto check_length = [&](std::uint8_t first_byte,
                                std::size_t length) -> std::optional<DecodeError> {
    if (length > limits_.max_packet_size) return DecodeError::kPacketTooLarge;
    return detail::check_remaining_length(first_byte, length, version_);
  };

  if (header_len_ == 0 && !input.empty()) {
    if (auto error = detail::check_first_byte(input[0], version_)) return fail(*error);
    const detail::FixedHeader header = detail::scan_fixed_header(input);
    if (header.status == detail::FixedHeader::Status::kError) return fail(header.error);
    if (header.status == detail::FixedHeader::Status::kComplete) {
      if (auto error = check_length(input[0], header.remaining_length)) return fail(*error);
      if (input.size() - header.size >= header.remaining_length) {
        const std::uint8_t first_byte = input[0];
        const auto body = input.subspan(header.size, header.remaining_length);
        input = input.subspan(header.size + header.remaining_length);
        return finish(parse(first_byte, body));
      }
      // Complete header, partial body: keep the header and go on buffering below.
      std::copy_n(input.begin(), header.size, header_);
      header_len_ = static_cast<std::uint8_t>(header.size);
      body_len_ = static_cast<std::uint32_t>(header.remaining_length);
      input = input.subspan(header.size);
    }
  }

  while (!header_complete()) {
    if (input.empty()) return NeedMore{};
    const std::uint8_t byte = input.front();
    input = input.subspan(1);
    header_[header_len_++] = byte;
    if (header_len_ == 1) {
      // Refuse a bad type or flags on the first byte rather than after the length.
      if (auto error = detail::check_first_byte(byte, version_)) return fail(*error);
      continue;
    }
    if (byte & 0x80) {
      if (header_len_ == 5) return fail(DecodeError::kMalformedRemainingLength);  // 2.2.3
      continue;
    }
    const detail::FixedHeader header =
        detail::scan_fixed_header(std::span<const std::uint8_t>(header_, header_len_));
    if (auto error = check_length(header_[0], header.remaining_length)) return fail(*error);
    body_len_ = static_cast<std::uint32_t>(header.remaining_length);
  }

  const auto reset = [this] {
    // An idle connection keeps no read buffer (unless a PublishView still points into it, and
    // then only until the next call).
    if (!stale_partial_) partial_.release();
    header_len_ = 0;
    body_len_ = 0;
  };

  const std::size_t missing = body_len_ - partial_.size();
  if (partial_.empty() && input.size() >= missing) {
    // Only the header was split off; the body can still be parsed in place.
    const auto body = input.first(body_len_);
    input = input.subspan(body_len_);
    const std::uint8_t first_byte = header_[0];
    reset();
    return finish(parse(first_byte, body));
  }

  const std::size_t take = std::min(missing, input.size());
  const std::size_t wanted = partial_.size() + take;
  if (wanted > partial_.capacity()) {
    // Grow geometrically, but never past the announced body length.
    partial_.reserve(std::min<std::size_t>(
        body_len_, std::max({wanted, 2 * partial_.capacity(), kInitialBodyReserve})));
  }
  partial_.append(input.data(), take);
  input = input.subspan(take);
  if (partial_.size() < body_len_) return NeedMore{};

  const std::uint8_t first_byte = header_[0];
  Result result = parse(first_byte, detail::Body(partial_.data(), partial_.size()));
  reset();
  return finish(std::move(result));
}

}  // namespace meshmq::codec
