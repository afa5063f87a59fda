#include "broker/cluster/outbox.h"

#include <rocksdb/iterator.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "broker/storage/db.h"
#include "broker/storage/encoding.h"

namespace meshmq::cluster {

namespace {
void put_u16(std::string& v, std::size_t n) {
  v.push_back(static_cast<char>(n >> 8));
  v.push_back(static_cast<char>(n & 0xff));
}

// Reads a u16 length and that many bytes from the front of `v`; false if `v` is too short.
bool take(std::string_view& v, std::string_view& out) {
  if (v.size() < 2) return false;
  const std::size_t len = storage::read_u16(v);
  if (v.size() < 2 + len) return false;
  out = v.substr(2, len);
  v.remove_prefix(2 + len);
  return true;
}

std::string encode(const core::Message& m, const SharedFor& shared) {
  std::string v;
  put_u16(v, 0);
  v.push_back(1);
  put_u16(v, m.topic.size());
  v.append(m.topic);
  v.push_back(shared.only ? 1 : 0);
  put_u16(v, shared.groups.size());
  for (const std::string& g : shared.groups) {
    put_u16(v, g.size());
    v.append(g);
  }
  v.append(storage::encode_retained(m));
  return v;
}

core::MessagePtr decode(std::string_view v, SharedFor& shared) {
  const bool versioned = v.size() >= 3 && v[0] == 0 && v[1] == 0;
  if (versioned) {
    if (v[2] != 1) return nullptr;
    v.remove_prefix(3);
  }
  std::string_view topic;
  if (!take(v, topic)) return nullptr;
  if (versioned) {
    if (v.size() < 3) return nullptr;
    shared.only = v[0] != 0;
    std::size_t n = storage::read_u16(v.substr(1));
    v.remove_prefix(3);
    for (; n > 0; --n) {
      std::string_view g;
      if (!take(v, g)) return nullptr;
      shared.groups.emplace_back(g);
    }
  }
  auto m = storage::decode_retained(topic, v);
  if (!m) return nullptr;
  return core::make_message(m->topic, m->payload, m->qos, false, m->received_at);
}
}  // namespace

Outbox::Outbox(storage::Db* db, std::size_t max_per_peer)
    : db_(db), max_per_peer_(max_per_peer), writer_([this] { run(); }) {}

Outbox::~Outbox() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

std::string Outbox::key_of(const std::string& peer, std::uint64_t key) const {
  std::string k = peer;
  k.push_back('\0');
  for (int shift = 56; shift >= 0; shift -= 8) k.push_back(static_cast<char>(key >> shift));
  return k;
}

std::vector<Outbox::Stored> Outbox::load() {
  std::vector<Stored> out;
  if (!db_) return out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->raw().NewIterator(rocksdb::ReadOptions(), db_->cf(storage::Cf::kOutbox)));
  rocksdb::WriteBatch bad;
  std::lock_guard lock(mu_);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view k(it->key().data(), it->key().size());
    const auto nul = k.find('\0');
    SharedFor shared;
    core::MessagePtr m = decode(std::string_view(it->value().data(), it->value().size()), shared);
    if (nul == std::string_view::npos || k.size() != nul + 9 || !m) {
      spdlog::warn("cluster: dropping a malformed outbox entry ({} bytes of key)", k.size());
      bad.Delete(db_->cf(storage::Cf::kOutbox), it->key());
      continue;
    }
    Stored s{std::string(k.substr(0, nul)), storage::read_u64(k.substr(nul + 1)), std::move(m),
             std::move(shared)};
    next_key_ = std::max(next_key_, s.key + 1);
    ++sizes_[s.peer];
    ++stored_;
    out.push_back(std::move(s));
  }
  if (bad.Count() > 0) db_->write_now(bad);
  if (!out.empty()) {
    spdlog::info("cluster: {} forwards for nodes that were down are still queued in the outbox",
                 out.size());
  }
  return out;
}

std::uint64_t Outbox::add(const std::string& peer, const core::MessagePtr& message,
                          const SharedFor& shared, std::function<void()> durable) {
  std::lock_guard lock(mu_);
  std::size_t& size = sizes_[peer];
  if (size >= max_per_peer_) {
    if (dropped_++ % 1000 == 0) {
      spdlog::warn(
          "cluster: outbox for down node {} is full ({} messages, cluster.outbox_max_messages); "
          "dropped {} so far",
          peer, size, dropped_);
    }
    return 0;
  }
  ++size;
  ++stored_;
  const std::uint64_t key = next_key_++;
  ops_.push_back(
      {key_of(peer, key), db_ ? encode(*message, shared) : std::string("x"), std::move(durable)});
  cv_.notify_one();
  return key;
}

void Outbox::remove(const std::string& peer, std::uint64_t key) {
  std::lock_guard lock(mu_);
  auto it = sizes_.find(peer);
  if (it != sizes_.end() && it->second > 0) {
    --it->second;
    --stored_;
  }
  if (db_) {
    ops_.push_back({key_of(peer, key), {}, nullptr});
    cv_.notify_one();
  }
}

std::size_t Outbox::size(const std::string& peer) const {
  std::lock_guard lock(mu_);
  auto it = sizes_.find(peer);
  return it == sizes_.end() ? 0 : it->second;
}

std::uint64_t Outbox::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

std::uint64_t Outbox::stored() const {
  std::lock_guard lock(mu_);
  return stored_;
}

void Outbox::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !ops_.empty(); });
    if (ops_.empty()) return;  // stopping with nothing left
    std::deque<Op> group = std::move(ops_);
    ops_.clear();
    lock.unlock();
    if (db_) {
      rocksdb::WriteBatch batch;
      for (const Op& op : group) {
        if (op.value.empty()) {
          batch.Delete(db_->cf(storage::Cf::kOutbox), op.key);
        } else {
          batch.Put(db_->cf(storage::Cf::kOutbox), op.key, op.value);
        }
      }
      // A failed write is logged by Db (and the database marked failed); the messages stay in
      // the node's memory queue, so they still reach the peer unless this node restarts too.
      if (!db_->healthy() || !db_->write_now(batch)) {
        spdlog::error(
            "cluster: outbox write failed: {} forwards for down nodes kept in memory only",
            group.size());
      }
    }
    for (Op& op : group) {
      if (op.durable) op.durable();
    }
    lock.lock();
  }
}

}  // namespace meshmq::cluster
