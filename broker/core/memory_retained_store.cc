#include "broker/core/memory_retained_store.h"

#include <vector>

namespace meshmq::core {

bool MemoryRetainedStore::expired(const Message& m, Clock::time_point now) const {
  return options_.retained_max_age_s != 0 &&
         now - m.received_at >= std::chrono::seconds(options_.retained_max_age_s);
}

bool MemoryRetainedStore::set(const MessagePtr& message) {
  std::lock_guard lock(mu_);
  if (message->payload.empty()) {
    tree_.erase(message->topic);
    return true;
  }
  if (MessagePtr* existing = tree_.find(message->topic)) {
    *existing = message;
    return true;
  }
  if (options_.retained_max_count != 0 && tree_.size() >= options_.retained_max_count) return false;
  tree_.set(message->topic, message);
  return true;
}

void MemoryRetainedStore::match(std::string_view filter,
                                const std::function<void(const MessagePtr&)>& fn) {
  std::vector<MessagePtr> found;
  {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    tree_.match(filter, [&](std::string_view, MessagePtr& m) {
      if (!expired(*m, now)) found.push_back(m);
    });
  }
  // Delivered outside the lock: fn writes to connections.
  for (const MessagePtr& m : found) fn(m);
}

void MemoryRetainedStore::purge_expired(Clock::time_point now) {
  purge_expired(now, [](const std::string&) {});
}

void MemoryRetainedStore::purge_expired(Clock::time_point now,
                                        const std::function<void(const std::string&)>& removed) {
  if (options_.retained_max_age_s == 0) return;
  std::vector<std::string> dead;
  {
    std::lock_guard lock(mu_);
    tree_.for_each([&](std::string_view topic, MessagePtr& m) {
      if (expired(*m, now)) dead.emplace_back(topic);
    });
    for (const std::string& t : dead) tree_.erase(t);
  }
  for (const std::string& t : dead) removed(t);
}

std::size_t MemoryRetainedStore::size() const {
  std::lock_guard lock(mu_);
  return tree_.size();
}

}  // namespace meshmq::core
