// Retained message replication: last-writer-wins versions, the full retained snapshot sent on
// every new link, and applying a peer's retained messages.
#include <algorithm>

#include "broker/cluster/node_impl.h"
#include "broker/storage/encoding.h"

namespace meshmq::cluster {

pb::Frame ClusterNode::Impl::retained_snapshot_frame() {
  pb::Frame f;
  auto* batch = f.mutable_retained();
  retained.match("#", [&](const core::MessagePtr& m) {
    auto* r = batch->add_messages();
    r->set_topic(std::string(m->topic));
    r->set_payload(std::string(m->payload));
    r->set_qos(static_cast<std::uint32_t>(m->qos));
    const RetainedVersion v = stored_version(*m);
    r->set_timestamp_ms(v.ts);
    r->set_origin(v.origin);
  });
  versions->for_each_tombstone([&](const std::string& topic, const RetainedVersion& v) {
    auto* r = batch->add_messages();
    r->set_topic(topic);
    r->set_timestamp_ms(v.ts);
    r->set_origin(v.origin);
  });
  return f;
}

// A stored message's version; one loaded from disk counts with its received time (a replicated
// message is stored with its origin's time).
RetainedVersion ClusterNode::Impl::stored_version(const core::Message& m) {
  const RetainedVersion* v = versions->find(std::string(m.topic));
  return v ? *v : RetainedVersion{storage::to_unix_ms(m.received_at), ""};
}

void ClusterNode::Impl::apply_retained(const pb::RetainedMessage& m) {
  RetainedVersion incoming{m.timestamp_ms(), m.origin()};
  RetainedVersion current;
  if (const RetainedVersion* v = versions->find(m.topic())) {
    current = *v;
  } else {
    retained.match(m.topic(), [&](const core::MessagePtr& old) { current = stored_version(*old); });
  }
  if (!(current < incoming)) return;
  broker.set_remote_retained(core::make_message(
      m.topic(), m.payload(), static_cast<core::QoS>(std::min<std::uint32_t>(m.qos(), 2)), true,
      storage::from_unix_ms(incoming.ts)));
  versions->record(m.topic(), incoming, m.payload().empty());
}

void ClusterNode::Impl::retained_changed(const core::MessagePtr& m) {
  std::lock_guard lock(mu);
  const std::string topic(m->topic);
  const RetainedVersion v = versions->next(topic, wall_ms(), name);
  versions->record(topic, v, m->payload.empty());
  pb::Frame f;
  auto* r = f.mutable_retained()->add_messages();
  r->set_topic(std::string(m->topic));
  r->set_payload(std::string(m->payload));
  r->set_qos(static_cast<std::uint32_t>(m->qos));
  r->set_timestamp_ms(v.ts);
  r->set_origin(v.origin);
  write_to_peers(f);
}

}  // namespace meshmq::cluster
