#include "broker/cluster/durable_routes.h"

#include <rocksdb/iterator.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "broker/storage/db.h"

namespace meshmq::cluster {

namespace {
std::string key_of(const std::string& peer, const std::string& filter) {
  std::string k = peer;
  k.push_back('\0');
  k.append(filter);
  return k;
}
}  // namespace

std::map<std::string, std::vector<std::string>> DurableRouteStore::load() {
  std::map<std::string, std::vector<std::string>> out;
  if (!db_) return out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->raw().NewIterator(rocksdb::ReadOptions(), db_->cf(storage::Cf::kRoutes)));
  std::size_t count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view k(it->key().data(), it->key().size());
    const auto nul = k.find('\0');
    if (nul == 0 || nul == std::string_view::npos || nul + 1 == k.size()) {
      spdlog::warn("cluster: dropping a malformed durable route ({} bytes of key)", k.size());
      batch_.Delete(db_->cf(storage::Cf::kRoutes), it->key());
      continue;
    }
    out[std::string(k.substr(0, nul))].emplace_back(k.substr(nul + 1));
    ++count;
  }
  commit();
  if (count > 0) {
    spdlog::info("cluster: {} routes of persistent sessions on {} other node(s) loaded", count,
                 out.size());
  }
  return out;
}

void DurableRouteStore::record(const std::string& peer, const std::string& filter, bool durable) {
  if (!db_) return;
  if (durable) {
    batch_.Put(db_->cf(storage::Cf::kRoutes), key_of(peer, filter), rocksdb::Slice());
  } else {
    batch_.Delete(db_->cf(storage::Cf::kRoutes), key_of(peer, filter));
  }
}

void DurableRouteStore::commit() {
  if (!db_ || batch_.Count() == 0) return;
  if (db_->healthy()) {
    const rocksdb::Status st = db_->raw().Write(rocksdb::WriteOptions(), &batch_);
    if (!st.ok()) {
      spdlog::warn("cluster: cannot store {} durable route changes: {}", batch_.Count(),
                   st.ToString());
    }
  }
  batch_.Clear();
}

}  // namespace meshmq::cluster
