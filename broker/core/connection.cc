#include "broker/core/connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "broker/codec/encoder.h"
#include "broker/core/broker.h"
#include "broker/core/counters.h"
#include "broker/core/limits.h"
#include "broker/core/log_limiter.h"
#include "broker/core/output_buffers.h"
#include "broker/core/token_bucket.h"

namespace meshmq::core {

namespace {
// Capacity of an empty std::string (its inline buffer): out_ holds no heap buffer yet.
const std::size_t kSmallString = std::string().capacity();
using codec::ConnectReturnCode;
using codec::DecodeError;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;  // clang 14 lacks C++20 aggregate deduction

// One per kind of event a client can cause at will (see log_limiter.h).
LogLimiter packet_size_log;
LogLimiter connect_timeout_log;
LogLimiter publish_topic_log;
LogLimiter publish_acl_log;
LogLimiter publish_rate_log;
}  // namespace

struct Connection::Throttle {
  TokenBucket bucket;
  // Set while reading is paused: nothing else keeps a connection alive while it neither reads
  // nor waits for the broker.
  std::shared_ptr<Connection> hold;
};

struct Connection::Extras {
  std::string username;
  std::string cert_common_name;
  bool cn_as_username = false;
  std::optional<codec::Will> will;
  std::optional<Throttle> throttle;
};

Connection::Extras& Connection::extras() {
  if (!extras_) extras_ = std::make_unique<Extras>();
  return *extras_;
}

codec::Will* Connection::will() const {
  return extras_ && extras_->will ? &*extras_->will : nullptr;
}

void Connection::drop_will() {
  if (extras_) extras_->will.reset();
}

Connection::Throttle* Connection::throttle() const {
  return extras_ && extras_->throttle ? &*extras_->throttle : nullptr;
}

const std::string& Connection::username() const {
  static const std::string kNone;
  return extras_ ? extras_->username : kNone;
}

const std::string& Connection::cert_common_name() const {
  static const std::string kNone;
  return extras_ ? extras_->cert_common_name : kNone;
}

void Connection::set_cert_common_name(std::string cn, bool as_username) {
  if (cn.empty() && !extras_) return;
  Extras& e = extras();
  e.cert_common_name = std::move(cn);
  e.cn_as_username = as_username && !e.cert_common_name.empty();
}

Connection::Connection(Broker& broker, std::size_t worker, std::string peer)
    : broker_(broker),
      worker_(worker),
      peer_(std::move(peer)),
      decoder_(codec::DecoderLimits{broker.options().max_packet_size}) {}

Connection::~Connection() = default;

WorkerCounters& Connection::counters() {
  return broker_.counters(worker_);
}

void Connection::start() {
  counters().connections_opened.add();
  last_rx_ = Clock::now();
  transport_arm_timer(std::chrono::seconds(broker_.options().connect_timeout_s));
}

void Connection::on_bytes(std::span<const std::uint8_t> data) {
  if (closed_) return;
  counters().bytes_received.add(data.size());
  last_rx_ = Clock::now();
  if (blocked_) {
    hold_input(data);
    return;
  }
  process(data);
}

void Connection::process(std::span<const std::uint8_t> in) {
  while (!closed_ && !blocked_) {
    codec::DecodeViewResult result = decoder_.next_view(in);
    if (std::holds_alternative<codec::NeedMore>(result)) break;
    if (auto* error = std::get_if<DecodeError>(&result)) {
      handle_decode_error(*error);
      return;
    }
    if (auto* publish = std::get_if<codec::PublishView>(&result)) {
      counters().packets_received.add(codec::PacketType::kPublish);
      if (state_ == State::kAwaitConnect) {
        close("first packet was PUBLISH, not CONNECT");  // MQTT-3.1.0-1
      } else {
        handle_publish(*publish);
      }
      continue;
    }
    codec::Packet& packet = std::get<codec::Packet>(result);
    counters().packets_received.add(codec::packet_type(packet));
    handle(std::move(packet));
  }
  if (blocked_ && !closed_ && !in.empty()) hold_input(in);
}

void Connection::hold_input(std::span<const std::uint8_t> data) {
  if (!held_) held_ = std::make_unique<std::string>();
  held_->append(reinterpret_cast<const char*>(data.data()), data.size());
}

void Connection::block() {
  blocked_ = true;
  transport_pause_reading(true);
}

void Connection::unblock() {
  if (closed_) return;
  blocked_ = false;
  if (held_) {
    std::unique_ptr<std::string> held = std::move(held_);
    process(std::span(reinterpret_cast<const std::uint8_t*>(held->data()), held->size()));
  }
  if (!blocked_ && !closed_) transport_pause_reading(false);
}

void Connection::handle_decode_error(DecodeError error) {
  counters().protocol_errors.add();
  if (error == DecodeError::kPacketTooLarge) {
    counters().limit_packet_too_large.add();
    warn_limited(packet_size_log, "client {} ({}): packet above mqtt.max_packet_size ({} bytes)",
                 client_id().empty() ? "(not connected)" : client_id(), peer_,
                 broker_.options().max_packet_size);
  }
  if (state_ == State::kAwaitConnect && error == DecodeError::kUnsupportedProtocolLevel) {
    // MQTT-3.1.2-2: answer an unsupported protocol level with CONNACK 0x01, then close.
    reject_connect(ConnectReturnCode::kUnacceptableProtocolVersion, codec::describe(error));
    return;
  }
  close(std::string("protocol error: ") + codec::describe(error));
}

void Connection::handle(codec::Packet&& packet) {
  if (state_ == State::kAwaitConnect) {
    if (auto* connect = std::get_if<codec::Connect>(&packet)) {
      handle_connect(std::move(*connect));
    } else {
      // MQTT-3.1.0-1: the first packet from the client must be CONNECT.
      close(std::string("first packet was ") + codec::packet_type_name(codec::packet_type(packet)) +
            ", not CONNECT");
    }
    return;
  }
  std::visit(Overloaded{
                 [&](codec::Connect&) { close("second CONNECT on one connection (MQTT-3.1.0-2)"); },
                 [&](codec::Puback& p) { session_->on_puback(p.packet_id, counters()); },
                 [&](codec::Pubrec& p) {
                   session_->on_pubrec(p.packet_id);
                   // Answered even for an unknown id so a client resuming an old exchange can
                   // finish it.
                   send(codec::Pubrel{p.packet_id});
                 },
                 [&](codec::Pubrel& p) {
                   session_->release_inbound_qos2(p.packet_id);
                   send(codec::Pubcomp{p.packet_id});
                 },
                 [&](codec::Pubcomp& p) { session_->on_pubcomp(p.packet_id, counters()); },
                 [&](codec::Subscribe& p) {
                   block();
                   broker_.subscribe(shared_from_this(), std::move(p));
                 },
                 [&](codec::Unsubscribe& p) {
                   block();
                   broker_.unsubscribe(shared_from_this(), std::move(p));
                 },
                 [&](codec::Pingreq&) { send(codec::Pingresp{}); },
                 [&](codec::Disconnect&) {
                   // MQTT-3.14.4-3: a clean DISCONNECT discards the will.
                   drop_will();
                   close("client sent DISCONNECT", false);
                 },
                 [&](auto& other) {
                   close(std::string("unexpected ") +
                         codec::packet_type_name(codec::packet_type(other)) + " from a client");
                 },
             },
             packet);
}

void Connection::handle_connect(codec::Connect&& connect) {
  decoder_.set_protocol_version(connect.version);
  keepalive_s_ = connect.keepalive;
  if (connect.will) extras().will.emplace(std::move(*connect.will));
  client_id_ = connect.client_id;
  const auto& opts = broker_.options();
  if (connect.client_id.empty()) {
    if (!connect.clean_session || connect.version == codec::ProtocolVersion::kV31) {
      // MQTT-3.1.3-8: an empty id needs clean session 1; MQTT 3.1 requires 1-23 characters.
      reject_connect(ConnectReturnCode::kIdentifierRejected, "empty client id");
      return;
    }
    client_id_ = broker_.assign_client_id();
  } else if (connect.version == codec::ProtocolVersion::kV31 && connect.client_id.size() > 23) {
    reject_connect(ConnectReturnCode::kIdentifierRejected, "MQTT 3.1 client id longer than 23");
    return;
  }
  if (opts.max_keepalive_s != 0 && (keepalive_s_ == 0 || keepalive_s_ > opts.max_keepalive_s)) {
    // 3.1.1 has no way to tell the client a shorter keepalive; refuse like Mosquitto does.
    reject_connect(ConnectReturnCode::kIdentifierRejected, "keepalive above mqtt.max_keepalive");
    return;
  }
  if (codec::Will* w = will()) {
    if (std::string_view broken = topic_limit_broken(w->topic, opts.limits); !broken.empty()) {
      counters().limit_topic.add();
      reject_connect(ConnectReturnCode::kNotAuthorized,
                     "will topic exceeds " + std::string(broken));
      return;
    }
  }
  block();  // until authenticated and the session is ready
  authenticate(std::move(connect));
}

void Connection::authenticate(codec::Connect&& connect) {
  AccessPolicy& access = broker_.access();
  const std::string_view cn = extras_ && extras_->cn_as_username
                                  ? std::string_view(extras_->cert_common_name)
                                  : std::string_view();
  const bool clean = connect.clean_session;
  const Credentials credentials{client_id_, &connect.username, &connect.password, peer_, cn};
  if (!access.slow_authentication(credentials)) {
    AuthResult auth = access.authenticate(worker_, credentials);
    // Not kept: nothing after this point needs the password, and it must never reach a log.
    connect.password.reset();
    finish_authentication(std::move(auth), clean);
    return;
  }
  // Off the worker: a hash takes milliseconds, and a reconnect storm would otherwise stall every
  // client of this worker. The copies outlive the packet; the password dies with them.
  struct Copy {
    std::string client_id, peer, cn;
    std::optional<std::string> username, password;
  };
  auto copy =
      std::make_shared<Copy>(Copy{client_id_, peer_, std::string(cn), std::move(connect.username),
                                  std::move(connect.password)});
  connect.password.reset();
  broker_.executor().post_blocking(
      [self = shared_from_this(), copy, &access, worker = worker_, clean]() mutable {
        AuthResult auth = access.authenticate(
            worker,
            Credentials{copy->client_id, &copy->username, &copy->password, copy->peer, copy->cn});
        copy.reset();
        Broker& broker = self->broker_;
        broker.executor().post(worker,
                               [self = std::move(self), auth = std::move(auth), clean]() mutable {
                                 self->finish_authentication(std::move(auth), clean);
                               });
      });
}

void Connection::finish_authentication(AuthResult auth, bool clean_session) {
  if (closed_) return;  // gone (or timed out) while its password was checked
  AccessPolicy& access = broker_.access();
  switch (auth.status) {
    case AuthStatus::kAccepted:
      break;
    case AuthStatus::kBadCredentials:
      counters().auth_bad_credentials.add();
      reject_connect(ConnectReturnCode::kBadUsernameOrPassword, auth.reason);
      return;
    case AuthStatus::kNotAuthorized:
      counters().auth_not_authorized.add();
      reject_connect(ConnectReturnCode::kNotAuthorized, auth.reason);
      return;
  }
  if (!auth.username.empty()) extras().username = std::move(auth.username);
  // A will is a publish made later on the client's behalf: it needs the same permission now.
  if (will() && access.may_publish(worker_, principal(), will()->topic) != PublishVerdict::kAllow) {
    counters().acl_publish_denied.add();
    counters().auth_not_authorized.add();
    reject_connect(ConnectReturnCode::kNotAuthorized,
                   "will topic " + will()->topic + " denied by the ACL");
    return;
  }
  state_ = State::kConnecting;
  broker_.connect(shared_from_this(), client_id_, clean_session);
}

void Connection::finish_connect(SessionPtr session, bool session_present) {
  if (closed_) {
    // The client went away while its session was being taken over.
    broker_.connection_closed(*this, session);
    return;
  }
  session_ = std::move(session);
  session_->attach(this);
  std::string().swap(client_id_);  // the session has it: one copy per client
  state_ = State::kConnected;
  counters().clients_connected.add();
  send(codec::Connack{session_present, ConnectReturnCode::kAccepted});
  spdlog::info(
      "client {} connected from {} (user '{}', clean session {}, keepalive {}s, session present "
      "{})",
      client_id(), peer_, username(), !session_->persistent(), keepalive_s_, session_present);
  arm_keepalive();
  broker_.client_event(*this, true);
  session_->resume(counters());
  unblock();
}

void Connection::reject_connect(ConnectReturnCode code, std::string_view reason) {
  send(codec::Connack{false, code});
  drop_will();  // MQTT-3.1.4-5 family: a refused connection has no will to publish
  close(std::string("CONNECT refused (code ") + std::to_string(static_cast<int>(code)) +
            "): " + std::string(reason),
        false);
}

void Connection::finish_subscribe(const codec::Suback& suback) {
  if (closed_) return;
  send(suback);
  unblock();
}

void Connection::finish_unsubscribe(std::uint16_t packet_id) {
  if (closed_) return;
  send(codec::Unsuback{packet_id});
  unblock();
}

void Connection::handle_publish(const codec::PublishView& p) {
  WorkerCounters& c = counters();
  const QoS qos = p.qos;
  c.messages_received.add(qos);
  c.message_bytes_received.add(qos, p.payload.size());
  const std::uint16_t id = p.packet_id;
  // $SYS belongs to the broker: client publishes there are acknowledged (3.1.1 has no negative
  // acknowledgement) but not routed, and counted as dropped. So are publishes the limits or the
  // ACL drop (Mosquitto does the same), so that the client does not resend them forever.
  bool routable = !p.topic.starts_with("$SYS");
  if (!routable) c.dropped_sys_topic.add();
  if (!admit_publish(p)) {
    if (closed_) return;
    routable = false;
  }
  throttle_publishes();
  // True when the acknowledgement must also wait for other nodes to accept the message.
  auto route = [&]() -> bool {
    if (!routable) return false;
    return broker_.publish(make_message(p.topic, p.payload, qos, p.retain),
                           qos == QoS::kAtMostOnce ? nullptr : remote_ack_callback());
  };
  if (qos != QoS::kAtMostOnce && !broker_.session_store().healthy()) {
    // MQTT 3.1.1 has no negative PUBACK: closing without one makes the client keep the message
    // and resend it later, rather than believe a message we cannot store was stored.
    counters().refused_storage_failed.add();
    close("storage failed: QoS " + std::to_string(static_cast<int>(qos)) +
          " publish refused (not acknowledged)");
    return;
  }
  switch (qos) {
    case QoS::kAtMostOnce:
      route();
      return;
    case QoS::kAtLeastOnce: {
      const bool remote = route();
      acknowledge(codec::Puback{id}, remote);
      return;
    }
    case QoS::kExactlyOnce: {
      const bool remote = session_->begin_inbound_qos2(id) && route();
      acknowledge(codec::Pubrec{id}, remote);
      return;
    }
  }
}

bool Connection::admit_publish(const codec::PublishView& p) {
  if (std::string_view broken = topic_limit_broken(p.topic, broker_.options().limits);
      !broken.empty()) {
    counters().limit_topic.add();
    warn_limited(publish_topic_log, "client {} ({}): PUBLISH dropped: {} exceeded ({} bytes)",
                 client_id(), peer_, broken, p.topic.size());
    return false;
  }
  const PublishVerdict verdict = broker_.access().may_publish(worker_, principal(), p.topic);
  if (verdict == PublishVerdict::kAllow) return true;
  counters().acl_publish_denied.add();
  warn_limited(publish_acl_log, "client {} ({}, user '{}'): PUBLISH to {} denied by ACL{}",
               client_id(), peer_, username(), p.topic,
               verdict == PublishVerdict::kDenyAndDisconnect ? ", disconnecting" : ", dropped");
  if (verdict == PublishVerdict::kDenyAndDisconnect) {
    close("PUBLISH to " + std::string(p.topic) +
          " denied by ACL (auth.acl_deny_action = disconnect)");
  }
  return false;
}

bool Connection::throttle_publishes() {
  const LimitOptions& limits = broker_.options().limits;
  if (limits.publish_rate == 0) return false;
  const auto now = Clock::now();
  if (!throttle()) {
    const std::uint32_t burst =
        limits.publish_burst != 0 ? limits.publish_burst : limits.publish_rate;
    extras().throttle.emplace(Throttle{TokenBucket(limits.publish_rate, burst, now), nullptr});
  }
  Throttle& t = *throttle();
  // This publish is already here and is served; reading stops until the next one is allowed, so
  // the client is slowed down by TCP backpressure and nothing it sent is lost.
  t.bucket.take(now);
  const auto wait = t.bucket.wait(now);
  if (wait == Clock::duration::zero()) return false;
  counters().limit_publish_throttled.add();
  warn_limited(publish_rate_log,
               "client {} ({}): publishing faster than limits.publish_rate ({}/s): "
               "reading paused",
               client_id(), peer_, limits.publish_rate);
  t.hold = shared_from_this();
  block();
  transport_arm_timer(std::chrono::ceil<std::chrono::milliseconds>(wait));
  return true;
}

std::function<void()> Connection::remote_ack_callback() {
  if (!broker_.clustered()) return nullptr;
  // The ack about to be queued gets this sequence number (acknowledge() runs right after).
  const std::uint64_t seq = held_base_ + held_acks_.size();
  return [self = shared_from_this(), seq] { self->release_ack(seq); };
}

void Connection::acknowledge(codec::Packet ack, bool remote_pending) {
  // Acknowledged only once what this publish changed is durable on every worker it reached and
  // every other node it was forwarded to accepted it; acknowledgements keep the order of the
  // publishes (MQTT-4.6.0-2, -3) even when those answer out of order.
  const bool durable = broker_.durable_now();
  if (durable && !remote_pending && held_acks_.empty()) {
    send(ack);
    return;
  }
  const std::uint64_t seq = held_base_ + held_acks_.size();
  const bool pubrec = std::holds_alternative<codec::Pubrec>(ack);
  held_acks_.push_back(
      {pubrec ? std::get<codec::Pubrec>(ack).packet_id : std::get<codec::Puback>(ack).packet_id,
       pubrec, static_cast<std::int8_t>(int{!durable} + int{remote_pending})});
  if (durable) return;
  broker_.after_durable([self = shared_from_this(), seq](bool ok) {
    if (ok) {
      self->release_ack(seq);
    } else {
      self->counters().refused_storage_failed.add();
      self->close("storage failed: publish could not be stored, not acknowledged");
    }
  });
}

void Connection::release_ack(std::uint64_t seq) {
  if (seq < held_base_ || seq - held_base_ >= held_acks_.size()) return;
  held_acks_[seq - held_base_].waits -= 1;
  while (!held_acks_.empty() && held_acks_.front().waits <= 0) {
    const HeldAck ack = held_acks_.front();
    held_acks_.pop_front();
    if (ack.pubrec) {
      send(codec::Pubrec{ack.packet_id});
    } else {
      send(codec::Puback{ack.packet_id});
    }
    ++held_base_;
  }
}

bool Connection::can_write() const {
  return out_.size() + transport_backlog() < broker_.options().max_outgoing_bytes;
}

void Connection::count_sent(std::size_t bytes_before, codec::PacketType type) {
  WorkerCounters& c = counters();
  c.packets_sent.add(type);
  c.bytes_sent.add(out_.size() - bytes_before);
  transport_flush();
}

void Connection::send_publish(const Message& m, QoS qos, bool retain, bool dup, std::uint16_t id) {
  if (closed_) return;
  if (out_.empty() && out_.capacity() <= kSmallString) out_ = output_buffers::take();
  const std::size_t before = out_.size();
  codec::encode_publish(out_, m.topic, m.payload, qos, retain, dup, id);
  WorkerCounters& c = counters();
  c.messages_sent.add(qos);
  c.message_bytes_sent.add(qos, m.payload.size());
  // Retained messages sent for a new subscription are old by design: not delivery latency.
  if (!retain) {
    const auto age = Clock::now() - m.received_at;
    c.deliver_latency.observe(static_cast<std::uint64_t>(
        std::max<std::int64_t>(0, std::chrono::nanoseconds(age).count())));
  }
  count_sent(before, codec::PacketType::kPublish);
}

void Connection::send(const codec::Packet& packet) {
  if (closed_) return;
  if (out_.empty() && out_.capacity() <= kSmallString) out_ = output_buffers::take();
  const std::size_t before = out_.size();
  codec::encode(packet, out_);
  count_sent(before, codec::packet_type(packet));
}

void Connection::close(std::string_view reason, bool publish_will) {
  if (closed_) return;
  closed_ = true;
  // Released when this returns.
  auto self = throttle() ? std::move(throttle()->hold) : nullptr;
  const bool was_connected = state_ == State::kConnected;
  state_ = State::kClosed;
  counters().connections_closed.add();
  if (was_connected) counters().clients_connected.sub();
  if (was_connected) {
    spdlog::info("client {} ({}) disconnected: {}", client_id(), peer_, reason);
  } else {
    spdlog::info("connection from {} closed before CONNECT completed: {}", peer_, reason);
  }
  if (codec::Will* w = will(); publish_will && w && was_connected) {
    auto message = make_message(w->topic, w->payload, w->qos, w->retain);
    drop_will();
    broker_.publish(std::move(message));
  }
  if (was_connected) broker_.client_event(*this, false);
  if (session_) {
    broker_.connection_closed(*this, session_);
    client_id_ = session_->client_id();  // still named in logs of what finishes late
    session_.reset();
  }
  held_.reset();
  transport_close();
}

void Connection::on_transport_closed(std::string_view reason) {
  close(reason);
}

void Connection::on_output_drained() {
  if (session_ && !closed_) session_->pump(counters());
}

void Connection::arm_keepalive() {
  if (keepalive_s_ == 0) return;
  // MQTT-3.1.2-24: one and a half keepalive periods of silence end the connection.
  transport_arm_timer(std::chrono::milliseconds(keepalive_s_) * 1500);
}

void Connection::on_timer() {
  if (closed_) return;
  const auto now = Clock::now();
  switch (state_) {
    case State::kAwaitConnect:
      // The only timer armed before CONNECT is the connect timeout (start()), and transports
      // never fire a timer early.
      counters().limit_connect_timeout.add();
      warn_limited(connect_timeout_log,
                   "connection from {}: no CONNECT within "
                   "mqtt.connect_timeout ({} s)",
                   peer_, broker_.options().connect_timeout_s);
      close("no CONNECT within mqtt.connect_timeout");
      break;
    case State::kConnected: {
      if (throttle() && throttle()->hold) {
        auto self = std::move(throttle()->hold);
        last_rx_ = now;  // the client was not silent; the broker was not reading
        arm_keepalive();
        unblock();
        return;
      }
      if (keepalive_s_ == 0) return;
      const auto deadline = last_rx_ + std::chrono::milliseconds(keepalive_s_) * 1500;
      if (now >= deadline) {
        close("keepalive timeout (no packet for 1.5 x " + std::to_string(keepalive_s_) + " s)");
      } else {
        // Re-armed once per period rather than on every packet: the timer is cheap this way.
        transport_arm_timer(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                            std::chrono::milliseconds(1));
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace meshmq::core
