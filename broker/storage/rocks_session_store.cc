#include "broker/storage/rocks_session_store.h"

#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "broker/storage/encoding.h"

namespace meshmq::storage {

using core::Session;

namespace {
const Cf kPerClient[] = {Cf::kSubs, Cf::kQueue, Cf::kInflight, Cf::kQos2In};
}

void RocksSessionStore::session_created(const Session& s) {
  db_.batch().Put(db_.cf(Cf::kSessions), client_prefix(s.client_id()),
                  encode_session({true, 0, std::string(s.username())}));
}

void RocksSessionStore::session_offline(const Session& s) {
  db_.batch().Put(db_.cf(Cf::kSessions), client_prefix(s.client_id()),
                  encode_session({false, to_unix_ms(s.expires_at()), std::string(s.username())}));
}

void RocksSessionStore::session_online(const Session& s) {
  db_.batch().Put(db_.cf(Cf::kSessions), client_prefix(s.client_id()),
                  encode_session({true, 0, std::string(s.username())}));
}

void RocksSessionStore::erase_client(rocksdb::WriteBatch& b, const std::string& prefix) {
  b.Delete(db_.cf(Cf::kSessions), prefix);
  const std::string end = prefix_end(prefix);
  for (Cf cf : kPerClient) b.DeleteRange(db_.cf(cf), prefix, end);
}

void RocksSessionStore::session_ended(const Session& s) {
  erase_client(db_.batch(), client_prefix(s.client_id()));
  // Submitted before the broker unregisters the id, so a new session for the same client id
  // (whose writes may come from another worker) is always written after this deletion.
  db_.submit_now();
}

void RocksSessionStore::subscription_set(const Session& s, std::string_view filter, core::QoS qos) {
  const char v = static_cast<char>(qos);
  db_.batch().Put(db_.cf(Cf::kSubs), client_prefix(s.client_id()).append(filter),
                  rocksdb::Slice(&v, 1));
}

void RocksSessionStore::subscription_removed(const Session& s, std::string_view filter) {
  db_.batch().Delete(db_.cf(Cf::kSubs), client_prefix(s.client_id()).append(filter));
}

void RocksSessionStore::message_queued(const Session& s, std::uint64_t seq,
                                       const Session::Outbound& m) {
  db_.batch().Put(db_.cf(Cf::kQueue), seq_key(client_prefix(s.client_id()), seq), encode_entry(m));
}

void RocksSessionStore::message_dequeued(const Session& s, std::uint64_t seq) {
  db_.batch().Delete(db_.cf(Cf::kQueue), seq_key(client_prefix(s.client_id()), seq));
}

void RocksSessionStore::inflight_sent(const Session& s, std::uint64_t seq, std::uint16_t packet_id,
                                      const Session::Outbound& m) {
  db_.batch().Put(db_.cf(Cf::kInflight), seq_key(client_prefix(s.client_id()), seq),
                  encode_entry(m, packet_id));
}

void RocksSessionStore::inflight_pubrec(const Session& s, std::uint64_t seq,
                                        std::uint16_t packet_id) {
  // The payload is no longer needed (only PUBREL is resent): the entry shrinks to the id.
  db_.batch().Put(db_.cf(Cf::kInflight), seq_key(client_prefix(s.client_id()), seq),
                  encode_pubrec(packet_id));
}

void RocksSessionStore::inflight_done(const Session& s, std::uint64_t seq, std::uint16_t) {
  db_.batch().Delete(db_.cf(Cf::kInflight), seq_key(client_prefix(s.client_id()), seq));
}

void RocksSessionStore::inbound_qos2_held(const Session& s, std::uint16_t packet_id) {
  db_.batch().Put(db_.cf(Cf::kQos2In), packet_id_key(client_prefix(s.client_id()), packet_id),
                  rocksdb::Slice());
  // The message is routed next, and other workers queue their copies in their own batches. The
  // writer writes submissions in order, so submitting the held id now means no crash can leave a
  // copy on disk without it (the publisher's resend would be routed again: a QoS 2 duplicate).
  db_.submit_now();
}

void RocksSessionStore::inbound_qos2_released(const Session& s, std::uint16_t packet_id) {
  db_.batch().Delete(db_.cf(Cf::kQos2In), packet_id_key(client_prefix(s.client_id()), packet_id));
}

std::vector<Session::Snapshot> RocksSessionStore::load(core::Clock::time_point now) {
  std::map<std::string, Session::Snapshot, std::less<>> sessions;
  rocksdb::WriteBatch purge;
  std::set<std::string, std::less<>> expired_ids;  // their entries are purged, not loaded
  std::size_t bad = 0;
  const auto fresh_expiry = now + std::chrono::seconds(options_.session_expiry_s);
  auto session_for = [&](std::string_view client_id) -> Session::Snapshot* {
    auto it = sessions.find(client_id);
    if (it != sessions.end()) return &it->second;
    return nullptr;
  };
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_.raw().NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::kSessions)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view id, rest;
      auto rec = decode_session(std::string_view(it->value().data(), it->value().size()));
      if (!split_client_key(std::string_view(it->key().data(), it->key().size()), id, rest) ||
          !rec) {
        ++bad;
        continue;
      }
      const auto expires = rec->online ? fresh_expiry : from_unix_ms(rec->expires_at_ms);
      if (expires <= now) {
        erase_client(purge, client_prefix(id));
        expired_ids.emplace(id);
        continue;
      }
      Session::Snapshot snap;
      snap.client_id = std::string(id);
      snap.username = std::move(rec->username);
      snap.expires_at = expires;
      sessions.emplace(snap.client_id, std::move(snap));
    }
  }
  // Entries of a client without a session record (its creation was not yet written when the
  // process died) still belong to a live session: keep them rather than lose messages.
  auto owner = [&](std::string_view id) {
    if (Session::Snapshot* s = session_for(id)) return s;
    Session::Snapshot snap;
    snap.client_id = std::string(id);
    snap.expires_at = fresh_expiry;
    return &sessions.emplace(snap.client_id, std::move(snap)).first->second;
  };
  for (Cf cf : kPerClient) {
    std::unique_ptr<rocksdb::Iterator> it(
        db_.raw().NewIterator(rocksdb::ReadOptions(), db_.cf(cf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view key(it->key().data(), it->key().size());
      std::string_view value(it->value().data(), it->value().size());
      std::string_view id, rest;
      if (!split_client_key(key, id, rest)) {
        ++bad;
        continue;
      }
      if (expired_ids.contains(id)) continue;
      Session::Snapshot* s = owner(id);
      switch (cf) {
        case Cf::kSubs:
          if (value.size() != 1 || rest.empty()) {
            ++bad;
            break;
          }
          s->subscriptions[std::string(rest)] = static_cast<core::QoS>(value[0] & 0x03);
          break;
        case Cf::kQueue:
        case Cf::kInflight: {
          auto e = decode_entry(value);
          if (rest.size() != 8 || !e) {
            ++bad;
            break;
          }
          const std::uint64_t seq = read_u64(rest);
          if (cf == Cf::kQueue) {
            s->queue.push_back(Session::Queued{seq, std::move(e->out)});
          } else {
            s->inflight.push_back(
                Session::Inflight{e->packet_id, std::move(e->out), e->awaiting_pubcomp, seq});
          }
          break;
        }
        case Cf::kQos2In:
          if (rest.size() != 2) {
            ++bad;
            break;
          }
          s->inbound_qos2.push_back(read_u16(rest));
          break;
        default:
          break;
      }
    }
  }
  if (purge.Count() > 0) db_.write_now(purge);
  if (bad > 0) spdlog::warn("storage: {} malformed session entries skipped", bad);
  std::vector<Session::Snapshot> out;
  out.reserve(sessions.size());
  for (auto& [id, snap] : sessions) out.push_back(std::move(snap));
  spdlog::info("storage: loaded {} persistent sessions, purged {} expired", out.size(),
               expired_ids.size());
  return out;
}

}  // namespace meshmq::storage
