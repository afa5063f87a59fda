#include "broker/storage/encoding.h"

#include <chrono>

namespace meshmq::storage {

namespace {
void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
std::uint32_t read_u32(std::string_view s) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

constexpr std::uint8_t kEntryVersion = 1;
constexpr std::uint8_t kFlagRetain = 0x04;     // sent with retain=1 (new subscription)
constexpr std::uint8_t kFlagMsgRetain = 0x08;  // the message was published with retain
constexpr std::uint8_t kFlagPubrec = 0x10;     // QoS 2 past PUBREC: no message
}  // namespace

std::uint64_t read_u64(std::string_view s) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::uint16_t read_u16(std::string_view s) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(s[0]) << 8) |
                                    static_cast<unsigned char>(s[1]));
}

std::string client_prefix(std::string_view client_id) {
  std::string out;
  out.reserve(client_id.size() + 2);
  put_u16(out, static_cast<std::uint16_t>(client_id.size()));
  out.append(client_id);
  return out;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c != 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(prefix) + std::string(8, '\xff');  // never reached: the length byte < 0xff
}

std::string seq_key(std::string_view prefix, std::uint64_t seq) {
  std::string out(prefix);
  put_u64(out, seq);
  return out;
}

std::string packet_id_key(std::string_view prefix, std::uint16_t id) {
  std::string out(prefix);
  put_u16(out, id);
  return out;
}

bool split_client_key(std::string_view key, std::string_view& client_id, std::string_view& rest) {
  if (key.size() < 2) return false;
  const std::size_t n = read_u16(key);
  if (key.size() < 2 + n) return false;
  client_id = key.substr(2, n);
  rest = key.substr(2 + n);
  return true;
}

std::int64_t to_unix_ms(core::Clock::time_point t) {
  using namespace std::chrono;
  const auto wall =
      system_clock::now() + duration_cast<system_clock::duration>(t - core::Clock::now());
  return duration_cast<milliseconds>(wall.time_since_epoch()).count();
}

core::Clock::time_point from_unix_ms(std::int64_t ms) {
  using namespace std::chrono;
  const auto wall = system_clock::time_point(milliseconds(ms));
  return core::Clock::now() + duration_cast<core::Clock::duration>(wall - system_clock::now());
}

std::string encode_session(const SessionRecord& r) {
  std::string out;
  out.push_back(2);
  out.push_back(r.online ? 1 : 0);
  put_u64(out, static_cast<std::uint64_t>(r.expires_at_ms));
  out += r.username;
  return out;
}

std::optional<SessionRecord> decode_session(std::string_view v) {
  // Version 1 (no user name) is exactly 10 bytes; version 2 appends the user name.
  if (v.size() < 10 || (v[0] != 1 && v[0] != 2) || (v[0] == 1 && v.size() != 10)) {
    return std::nullopt;
  }
  return SessionRecord{v[1] != 0, static_cast<std::int64_t>(read_u64(v.substr(2))),
                       std::string(v.substr(10))};
}

std::string encode_entry(const core::Session::Outbound& out, std::uint16_t packet_id) {
  const core::Message& m = *out.message;
  std::string v;
  v.reserve(24 + m.topic.size() + m.payload.size());
  v.push_back(static_cast<char>(kEntryVersion));
  std::uint8_t flags = static_cast<std::uint8_t>(out.qos) | (out.retain ? kFlagRetain : 0) |
                       (m.retain ? kFlagMsgRetain : 0) |
                       static_cast<std::uint8_t>(static_cast<std::uint8_t>(m.qos) << 5);
  v.push_back(static_cast<char>(flags));
  put_u16(v, packet_id);
  put_u64(v, static_cast<std::uint64_t>(to_unix_ms(m.received_at)));
  put_u32(v, static_cast<std::uint32_t>(m.topic.size()));
  v.append(m.topic);
  v.append(m.payload);
  return v;
}

std::string encode_pubrec(std::uint16_t packet_id) {
  std::string v;
  v.push_back(static_cast<char>(kEntryVersion));
  v.push_back(static_cast<char>(kFlagPubrec | static_cast<std::uint8_t>(codec::QoS::kExactlyOnce)));
  put_u16(v, packet_id);
  return v;
}

std::optional<Entry> decode_entry(std::string_view v) {
  if (v.size() < 4 || static_cast<std::uint8_t>(v[0]) != kEntryVersion) return std::nullopt;
  const auto flags = static_cast<std::uint8_t>(v[1]);
  Entry e;
  e.packet_id = read_u16(v.substr(2));
  e.out.qos = static_cast<core::QoS>(flags & 0x03);
  e.out.retain = (flags & kFlagRetain) != 0;
  if (flags & kFlagPubrec) {
    e.awaiting_pubcomp = true;
    return e;
  }
  if (v.size() < 16) return std::nullopt;
  const std::int64_t received = static_cast<std::int64_t>(read_u64(v.substr(4)));
  const std::uint32_t topic_len = read_u32(v.substr(12));
  if (v.size() < 16 + std::size_t{topic_len}) return std::nullopt;
  e.out.message = core::make_message(v.substr(16, topic_len), v.substr(16 + topic_len),
                                     static_cast<core::QoS>((flags >> 5) & 0x03),
                                     (flags & kFlagMsgRetain) != 0, from_unix_ms(received));
  return e;
}

std::string encode_retained(const core::Message& m) {
  std::string v;
  v.reserve(9 + m.payload.size());
  put_u64(v, static_cast<std::uint64_t>(to_unix_ms(m.received_at)));
  v.push_back(static_cast<char>(m.qos));
  v.append(m.payload);
  return v;
}

core::MessagePtr decode_retained(std::string_view topic, std::string_view v) {
  if (v.size() < 9) return nullptr;
  return core::make_message(topic, v.substr(9),
                            static_cast<core::QoS>(static_cast<std::uint8_t>(v[8]) & 0x03), true,
                            from_unix_ms(static_cast<std::int64_t>(read_u64(v))));
}

}  // namespace meshmq::storage
