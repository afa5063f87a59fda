// Key and value layouts of the RocksDB column families. Every per-client key starts with the same
// prefix (16-bit big-endian length, then the client id), so one client's entries are one
// contiguous range: a prefix scan reads them, one DeleteRange drops them. Numbers in keys are
// big-endian so byte order is numeric order (queue and inflight entries come back in seq order).
//
//   sessions  prefix                     -> u8 version, u8 online, u64 expires_at (unix ms)
//   subs      prefix + filter            -> u8 qos
//   queue     prefix + u64 seq           -> message entry
//   inflight  prefix + u64 seq           -> message entry (+ packet id, awaiting-PUBCOMP flag)
//   qos2in    prefix + u16 packet id     -> (empty)
//   retained  topic                      -> u64 received (unix ms), u8 qos, payload
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/core/session.h"

namespace meshmq::storage {

std::string client_prefix(std::string_view client_id);
// The smallest key greater than every key starting with `prefix` (for DeleteRange).
std::string prefix_end(std::string_view prefix);
std::string seq_key(std::string_view prefix, std::uint64_t seq);
std::string packet_id_key(std::string_view prefix, std::uint16_t id);
// Splits a per-client key into the client id and the rest; false if malformed.
bool split_client_key(std::string_view key, std::string_view& client_id, std::string_view& rest);
std::uint64_t read_u64(std::string_view s);
std::uint16_t read_u16(std::string_view s);

// Wall-clock milliseconds <-> the core's steady clock (only wall time survives a restart).
std::int64_t to_unix_ms(core::Clock::time_point t);
core::Clock::time_point from_unix_ms(std::int64_t ms);

struct SessionRecord {
  bool online = false;
  std::int64_t expires_at_ms = 0;
  std::string username;  // of the last connection (access rules at delivery); since version 2
};
std::string encode_session(const SessionRecord& r);
std::optional<SessionRecord> decode_session(std::string_view v);

// A queued or inflight message. For an inflight QoS 2 message past PUBREC only the id remains.
struct Entry {
  core::Session::Outbound out;
  std::uint16_t packet_id = 0;
  bool awaiting_pubcomp = false;
};
std::string encode_entry(const core::Session::Outbound& out, std::uint16_t packet_id = 0);
std::string encode_pubrec(std::uint16_t packet_id);
std::optional<Entry> decode_entry(std::string_view v);

std::string encode_retained(const core::Message& m);
core::MessagePtr decode_retained(std::string_view topic, std::string_view v);

}  // namespace meshmq::storage
