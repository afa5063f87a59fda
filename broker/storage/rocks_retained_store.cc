#include "broker/storage/rocks_retained_store.h"

#include <spdlog/spdlog.h>

#include <memory>

#include "broker/storage/encoding.h"

namespace meshmq::storage {

bool RocksRetainedStore::set(const core::MessagePtr& message) {
  if (!message->payload.empty() && db_.full()) return false;  // storage.max_disk: see README
  if (!memory_.set(message)) return false;
  if (message->payload.empty()) {
    db_.batch().Delete(db_.cf(Cf::kRetained), message->topic);
  } else {
    db_.batch().Put(db_.cf(Cf::kRetained), message->topic, encode_retained(*message));
  }
  return true;
}

void RocksRetainedStore::purge_expired(core::Clock::time_point now) {
  memory_.purge_expired(
      now, [&](const std::string& topic) { db_.batch().Delete(db_.cf(Cf::kRetained), topic); });
}

std::size_t RocksRetainedStore::load(core::Clock::time_point now) {
  rocksdb::WriteBatch purge;
  std::size_t loaded = 0, expired = 0;
  std::unique_ptr<rocksdb::Iterator> it(
      db_.raw().NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::kRetained)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view topic(it->key().data(), it->key().size());
    core::MessagePtr m =
        decode_retained(topic, std::string_view(it->value().data(), it->value().size()));
    if (m && options_.retained_max_age_s != 0 &&
        now - m->received_at >= std::chrono::seconds(options_.retained_max_age_s)) {
      m = nullptr;
      ++expired;
    }
    if (!m || !memory_.set(m)) {
      purge.Delete(db_.cf(Cf::kRetained), it->key());
      continue;
    }
    ++loaded;
  }
  if (purge.Count() > 0) db_.write_now(purge);
  spdlog::info("storage: loaded {} retained messages, purged {} expired", loaded, expired);
  return loaded;
}

}  // namespace meshmq::storage
