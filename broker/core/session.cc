#include "broker/core/session.h"

#include <algorithm>

#include "broker/core/connection.h"
#include "broker/core/counters.h"
#include "broker/core/session_store.h"

namespace meshmq::core {

Session::Session(std::string client_id, bool persistent, std::size_t owner,
                 const MqttOptions& options, SessionStore& store)
    : client_id_(std::move(client_id)),
      options_(options),
      store_(store),
      owner_(owner),
      persistent_(persistent) {}

void Session::attach(Connection* connection) {
  connection_ = connection;
  set_username(connection->username());
  online_.store(connection != nullptr, std::memory_order_relaxed);
  if (SessionStore* st = store()) st->session_online(*this);
}

void Session::set_username(std::string_view name) {
  if (name == username()) return;
  username_ = name.empty() ? nullptr : std::make_unique<const std::string>(name);
}

void Session::detach(Clock::time_point now) {
  connection_ = nullptr;
  online_.store(false, std::memory_order_relaxed);
  expires_at_ = now + std::chrono::seconds(options_.session_expiry_s);
  if (SessionStore* st = store()) st->session_offline(*this);
}

void Session::deliver(const MessagePtr& message, QoS qos, bool retain, WorkerCounters& counters,
                      std::uint32_t share) {
  if (discarded_) return;
  Outbound out{message, qos, retain, share};
  if (connection_ == nullptr) {
    // MQTT-3.1.2-5: QoS 1/2 are kept for an offline persistent session; QoS 0 only if configured.
    if (persistent_ && (qos != QoS::kAtMostOnce || options_.queue_qos0))
      enqueue(std::move(out), counters);
    return;
  }
  if (qos == QoS::kAtMostOnce) {
    if (!queue_.empty()) {
      enqueue(std::move(out), counters);  // keep order behind queued QoS 1/2 messages
    } else if (connection_->can_write()) {
      connection_->send_publish(*message, qos, retain, false, 0);
    } else {
      counters.dropped_qos0_slow.add();
    }
    return;
  }
  if (!queue_.empty() || inflight_.size() >= options_.max_inflight || !connection_->can_write()) {
    enqueue(std::move(out), counters);
    return;
  }
  send_new(std::move(out), ++last_seq_, counters);
}

void Session::enqueue(Outbound out, WorkerCounters& counters) {
  if (connection_ != nullptr) {
    counters.window_waits.add();
    // More is waiting than one round trip of acknowledgements can carry: they now bound this
    // client's throughput, so the worker should read them at once (net/pacer.h).
    if (queue_.size() >= options_.max_inflight) counters.backlog_waits.add();
  }
  if (queue_.size() >= options_.max_queued_messages) {
    // Newest dropped: the client keeps a contiguous prefix of the stream it missed.
    counters.dropped_queue_full.add();
    return;
  }
  SessionStore* st = store();
  if (st != nullptr && st->full()) {
    // storage.max_disk reached: the same policy as a full queue (see README "Persistence").
    counters.dropped_storage_full.add();
    return;
  }
  const std::uint64_t seq = ++last_seq_;
  if (st != nullptr) st->message_queued(*this, seq, out);
  queue_.push_back(Queued{seq, std::move(out)});
  counters.queued_messages.add();
}

void Session::send_new(Outbound out, std::uint64_t seq, WorkerCounters& counters) {
  if (out.qos == QoS::kAtMostOnce) {
    connection_->send_publish(*out.message, out.qos, out.retain, false, 0);
  } else {
    std::uint16_t id = next_packet_id();
    // Recorded before the bytes can leave: a crash after the send must still resend it.
    if (SessionStore* st = store()) st->inflight_sent(*this, seq, id, out);
    connection_->send_publish(*out.message, out.qos, out.retain, false, id);
    inflight_.push_back(Inflight{id, std::move(out), false, seq});
    counters.inflight_messages.add();
  }
}

std::uint16_t Session::next_packet_id() {
  // The window is small (default 32), so a linear probe over it is cheaper than an id bitmap per
  // session.
  for (;;) {
    if (++last_packet_id_ == 0) last_packet_id_ = 1;
    bool used = std::any_of(inflight_.begin(), inflight_.end(),
                            [&](const Inflight& f) { return f.packet_id == last_packet_id_; });
    if (!used) return last_packet_id_;
  }
}

void Session::resume(WorkerCounters& counters) {
  // MQTT-4.4.0-1: on reconnect with clean session 0, resend unacknowledged PUBLISH and PUBREL in
  // their original order.
  for (const Inflight& f : inflight_) {
    if (f.awaiting_pubcomp) {
      connection_->send(codec::Pubrel{f.packet_id});
    } else {
      connection_->send_publish(*f.out.message, f.out.qos, f.out.retain, true, f.packet_id);
    }
  }
  pump(counters);
}

std::vector<Session::Outbound> Session::shared_unacknowledged() const {
  std::vector<Outbound> out;
  for (const Inflight& f : inflight_) {
    if (f.out.share != 0 && !f.awaiting_pubcomp) out.push_back(f.out);
  }
  queue_.for_each([&](const Queued& q) {
    if (q.out.share != 0 && q.out.qos != QoS::kAtMostOnce) out.push_back(q.out);
  });
  return out;
}

void Session::pump(WorkerCounters& counters) {
  while (connection_ != nullptr && !queue_.empty() && connection_->can_write()) {
    if (queue_.front().out.qos != QoS::kAtMostOnce && inflight_.size() >= options_.max_inflight) {
      break;
    }
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    counters.queued_messages.sub();
    if (SessionStore* st = store()) st->message_dequeued(*this, q.seq);
    send_new(std::move(q.out), q.seq, counters);
  }
}

bool Session::on_puback(std::uint16_t packet_id, WorkerCounters& counters) {
  auto it = std::find_if(inflight_.begin(), inflight_.end(), [&](const Inflight& f) {
    return f.packet_id == packet_id && f.out.qos == QoS::kAtLeastOnce;
  });
  if (it == inflight_.end()) return false;
  if (SessionStore* st = store()) st->inflight_done(*this, it->seq, packet_id);
  inflight_.erase(it);
  counters.inflight_messages.sub();
  pump(counters);
  return true;
}

bool Session::on_pubrec(std::uint16_t packet_id) {
  auto it = std::find_if(inflight_.begin(), inflight_.end(), [&](const Inflight& f) {
    return f.packet_id == packet_id && f.out.qos == QoS::kExactlyOnce;
  });
  if (it == inflight_.end()) return false;
  it->awaiting_pubcomp = true;
  if (SessionStore* st = store()) st->inflight_pubrec(*this, it->seq, packet_id);
  it->out.message.reset();  // MQTT-4.3.3: after PUBREC only the id matters; free the payload
  return true;
}

bool Session::on_pubcomp(std::uint16_t packet_id, WorkerCounters& counters) {
  auto it = std::find_if(inflight_.begin(), inflight_.end(), [&](const Inflight& f) {
    return f.packet_id == packet_id && f.awaiting_pubcomp;
  });
  if (it == inflight_.end()) return false;
  if (SessionStore* st = store()) st->inflight_done(*this, it->seq, packet_id);
  inflight_.erase(it);
  counters.inflight_messages.sub();
  pump(counters);
  return true;
}

bool Session::begin_inbound_qos2(std::uint16_t packet_id) {
  if (std::find(inbound_qos2_.begin(), inbound_qos2_.end(), packet_id) != inbound_qos2_.end()) {
    return false;
  }
  inbound_qos2_.push_back(packet_id);
  if (SessionStore* st = store()) st->inbound_qos2_held(*this, packet_id);
  return true;
}

void Session::release_inbound_qos2(std::uint16_t packet_id) {
  auto it = std::find(inbound_qos2_.begin(), inbound_qos2_.end(), packet_id);
  if (it != inbound_qos2_.end()) {
    *it = inbound_qos2_.back();
    inbound_qos2_.pop_back();
    if (SessionStore* st = store()) st->inbound_qos2_released(*this, packet_id);
  }
}

Session::Snapshot Session::snapshot() const {
  Snapshot s;
  s.client_id = client_id_;
  s.username = username();
  s.expires_at = expires_at_;
  for (const auto& [filter, qos] : subscriptions_) s.subscriptions.emplace(filter, qos);
  s.inflight = inflight_;
  s.queue.reserve(queue_.size());
  queue_.for_each([&](const Queued& q) { s.queue.push_back(q); });
  s.inbound_qos2 = inbound_qos2_;
  return s;
}

void Session::restore(Snapshot s) {
  set_username(s.username);
  expires_at_ = s.expires_at;
  subscriptions_.clear();
  for (auto& [filter, qos] : s.subscriptions) {
    subscriptions_.insert_or_assign(std::string(filter), QoS(qos));
  }
  inflight_ = std::move(s.inflight);
  inbound_qos2_ = std::move(s.inbound_qos2);
  queue_.clear();
  last_seq_ = 0;
  last_packet_id_ = 0;
  for (const Inflight& f : inflight_) {
    last_seq_ = std::max(last_seq_, f.seq);
    last_packet_id_ = f.packet_id;  // continue after the newest id, as a live session would
  }
  for (Queued& q : s.queue) {
    last_seq_ = std::max(last_seq_, q.seq);
    queue_.push_back(std::move(q));
  }
}

}  // namespace meshmq::core
