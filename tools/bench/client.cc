#include "tools/bench/client.h"

#include <boost/system/error_code.hpp>
#include <chrono>
#include <limits>

#include "broker/codec/encoder.h"
#include "tools/bench/payload.h"
#include "tools/bench/worker.h"

namespace meshmq::bench {
namespace {

using boost::system::error_code;

// A write carries up to this much; a fast publisher refills as soon as the kernel takes a batch.
constexpr std::size_t kBatchBytes = 64 * 1024;

}  // namespace

Client::Client(Worker& worker, std::size_t global_index, const ClientSpec& spec)
    : worker_(worker),
      ctx_(worker.context()),
      spec_(spec),
      stats_(worker.stats()),
      index_(global_index) {}

Client::~Client() = default;

void Client::start() {
  state_ = State::kConnecting;
  started_ns_ = now_ns();
  stats_.started.add();
  const Options& o = ctx_.options;
  if (o.websocket) {
    transport_ = make_ws_transport(worker_.io(), *this);
  } else {
    transport_ = make_tcp_transport(worker_.io(), *this, worker_.scratch());
  }
  Endpoints ep;
  ep.broker = ctx_.broker;
  if (!ctx_.sources.empty()) ep.source = ctx_.sources[index_ % ctx_.sources.size()];
  ep.host_header = ctx_.host_header;
  ep.ws_path = o.ws_path;
  transport_->open(ep);
}

void Client::on_open(const error_code& ec) {
  if (state_ != State::kConnecting) return;
  if (ec) {
    finish("connect", ec.message());
    return;
  }
  const Options& o = ctx_.options;
  codec::Connect connect;
  connect.client_id = spec_.client_id;
  connect.clean_session = o.clean_session;
  connect.keepalive = o.keepalive;
  connect.username = o.username;
  if (o.username) connect.password = o.password;
  codec::encode(connect, out_);
  state_ = State::kConnack;
  transport_->start_reading();
  flush();
}

void Client::on_data(std::span<const std::uint8_t> bytes) {
  // One clock read per read: every message in it arrived at the same moment.
  const std::uint64_t now = now_ns();
  auto error = framer_.feed(
      bytes, [&](const PublishView& p) { handle_publish(p, now); },
      [&](codec::Packet&& packet) { handle_packet(std::move(packet)); });
  if (state_ == State::kClosed) return;
  if (error) {
    finish("protocol", codec::describe(*error));
    return;
  }
  flush();
}

void Client::handle_publish(const PublishView& p, std::uint64_t now) {
  if (state_ != State::kReady && state_ != State::kClosing && state_ != State::kSubscribing) return;
  if (p.qos == codec::QoS::kAtLeastOnce) {
    codec::encode(codec::Puback{p.packet_id}, out_);
  } else if (p.qos == codec::QoS::kExactlyOnce) {
    // The broker routes QoS 2 on PUBLISH and holds the id until PUBREL (method B); we count the
    // message now and answer PUBREL with PUBCOMP.
    codec::encode(codec::Pubrec{p.packet_id}, out_);
  }
  // A scenario counts only its own run's messages; a `sub` counts everything it is sent and
  // measures what carries a header, from any run.
  const auto header = read_header(p.payload);
  const bool ours = header && (!ctx_.plan.expect_from_publishers || header->run == ctx_.run_id);
  if (!ours) {
    stats_.foreign.add();
    if (ctx_.plan.expect_from_publishers) return;
  }
  stats_.received.add();
  if (!header) return;
  const std::uint64_t latency = now > header->sent_ns ? now - header->sent_ns : 0;
  stats_.latency.record(latency);
  if (!ctx_.options.latency_log.empty()) stats_.latency_log.push_back({header->sent_ns, latency});
  const SeqOutcome outcome =
      tracker_.record((std::uint64_t{header->run} << 32) | header->publisher, header->sequence);
  switch (outcome.kind) {
    case SeqOutcome::Kind::kNew:
      if (outcome.gap != 0) stats_.gaps.add(outcome.gap);
      break;
    case SeqOutcome::Kind::kLate:
      stats_.late.add();
      break;
    case SeqOutcome::Kind::kDuplicate:
      stats_.duplicated.add();
      break;
  }
}

void Client::handle_packet(codec::Packet&& packet) {
  if (state_ == State::kClosed) return;
  if (auto* connack = std::get_if<codec::Connack>(&packet)) {
    if (state_ != State::kConnack) return;
    if (connack->code != codec::ConnectReturnCode::kAccepted) {
      finish("CONNACK refused", "return code " + std::to_string(static_cast<int>(connack->code)));
      return;
    }
    if (spec_.role == Role::kSubscriber) {
      codec::Subscribe subscribe;
      subscribe.packet_id = 1;
      subscribe.topics.push_back({spec_.topic, static_cast<codec::QoS>(ctx_.plan.qos)});
      codec::encode(subscribe, out_);
      state_ = State::kSubscribing;
    } else {
      become_ready();
    }
  } else if (auto* suback = std::get_if<codec::Suback>(&packet)) {
    if (state_ != State::kSubscribing) return;
    if (suback->return_codes.empty() || suback->return_codes[0] == codec::kSubackFailure) {
      stats_.subscribe_errors.add();
      finish("SUBSCRIBE refused", spec_.topic);
      return;
    }
    become_ready();
  } else if (auto* ack = std::get_if<codec::Puback>(&packet)) {
    release(ack->packet_id, 1);
  } else if (auto* rec = std::get_if<codec::Pubrec>(&packet)) {
    const std::uint16_t id = rec->packet_id;
    if (id >= 1 && id <= slots_.size() && slots_[id - 1] == 1) {
      slots_[id - 1] = 2;
      codec::encode(codec::Pubrel{id}, out_);
    }
  } else if (auto* comp = std::get_if<codec::Pubcomp>(&packet)) {
    release(comp->packet_id, 2);
  } else if (auto* rel = std::get_if<codec::Pubrel>(&packet)) {
    codec::encode(codec::Pubcomp{rel->packet_id}, out_);
  }
  // PINGRESP needs nothing; anything else from a broker would be a protocol error, but judging
  // the broker is the integration tests' job.
}

void Client::become_ready() {
  state_ = State::kReady;
  became_ready_ = true;
  stats_.connect_time.record(now_ns() - started_ns_);
  stats_.ready.add();
}

void Client::release(std::uint16_t packet_id, std::uint8_t expected_state) {
  if (packet_id < 1 || packet_id > slots_.size() || slots_[packet_id - 1] != expected_state) return;
  slots_[packet_id - 1] = 0;
  free_ids_.push_back(packet_id);
  stats_.acked.add();
  pump();
}

void Client::start_publishing(std::uint64_t t0_ns) {
  if (spec_.role != Role::kPublisher || state_ != State::kReady) return;
  const Plan& plan = ctx_.plan;
  payload_ = make_payload(plan.payload_size, ctx_.run_id, spec_.publisher_id);
  if (plan.qos > 0) {
    const std::size_t window = std::clamp<std::size_t>(ctx_.options.inflight, 1, 65535);
    slots_.assign(window, 0);
    free_ids_.clear();
    for (std::size_t id = window; id >= 1; --id)
      free_ids_.push_back(static_cast<std::uint16_t>(id));
  }
  out_.reserve(kBatchBytes + plan.payload_size + spec_.topic.size() + 16);
  writing_.reserve(out_.capacity());
  pub_start_ns_ = t0_ns + spec_.start_offset_ns;
  publishing_ = true;
  stats_.publishers_started.add();
  if (plan.interval_ns > 0) timer_.emplace(worker_.io());
  pump();
}

void Client::stop_publishing() {
  publishing_ = false;
  if (timer_) timer_->cancel();
}

bool Client::window_open() const {
  return ctx_.plan.qos == 0 || !free_ids_.empty();
}

void Client::pump() {
  if (!publishing_ || state_ != State::kReady) return;
  const Plan& plan = ctx_.plan;
  const std::uint64_t limit =
      plan.count > 0 ? plan.count : std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t now = now_ns();
  std::uint64_t allowed = limit;
  if (plan.interval_ns > 0) {
    allowed =
        now < pub_start_ns_ ? 0 : std::min(limit, (now - pub_start_ns_) / plan.interval_ns + 1);
  }
  while (seq_ < allowed && out_.size() < kBatchBytes && window_open()) append_publish(now);
  flush();
  if (seq_ >= limit) {
    if (!done_) {
      done_ = true;
      stats_.publishers_done.add();
    }
    publishing_ = false;
    return;
  }
  // Behind schedule only because the window or the batch is full: an acknowledgement or the
  // write's completion pumps again. Caught up: sleep until the next message is due.
  if (plan.interval_ns > 0 && seq_ >= allowed) arm_timer(pub_start_ns_ + seq_ * plan.interval_ns);
}

void Client::arm_timer(std::uint64_t due_ns) {
  if (timer_armed_) return;
  timer_armed_ = true;
  timer_->expires_at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(due_ns)));
  timer_->async_wait([this](const error_code& ec) {
    timer_armed_ = false;
    if (!ec) pump();
  });
}

void Client::append_publish(std::uint64_t now) {
  const auto qos = static_cast<codec::QoS>(ctx_.plan.qos);
  std::uint16_t id = 0;
  if (qos != codec::QoS::kAtMostOnce) {
    id = free_ids_.back();
    free_ids_.pop_back();
    slots_[id - 1] = 1;
    stats_.sent_qos.add();
  }
  stamp(payload_, seq_, now);
  codec::encode_publish(out_, spec_.topic, payload_, qos, false, false, id);
  ++seq_;
  stats_.sent.add();
  const std::uint32_t fanout = ctx_.fanout[index_];
  if (fanout != 0) stats_.expected.add(fanout);
}

void Client::flush() {
  if (write_in_flight_ || out_.empty() || state_ == State::kClosed) return;
  writing_.swap(out_);
  write_in_flight_ = true;
  last_send_ns_ = now_ns();
  transport_->write(writing_);
}

void Client::on_written(const error_code& ec) {
  write_in_flight_ = false;
  writing_.clear();  // keeps its capacity for the next batch
  if (state_ == State::kClosed) return;
  if (ec) {
    finish("write", ec.message());
    return;
  }
  if (state_ == State::kClosing && out_.empty()) {
    finish();
    return;
  }
  flush();
  pump();
}

void Client::on_read_error(const error_code& ec) {
  if (state_ == State::kClosing) {
    finish();  // the broker closed after our DISCONNECT
    return;
  }
  finish("connection closed", ec.message());
}

void Client::disconnect() {
  stop_publishing();
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  if (state_ != State::kReady) {
    finish("not connected at the end of the run");
    return;
  }
  state_ = State::kClosing;
  codec::encode(codec::Disconnect{}, out_);
  flush();
}

void Client::tick(std::uint64_t now) {
  switch (state_) {
    case State::kConnecting:
    case State::kConnack:
    case State::kSubscribing:
      if (now - started_ns_ > static_cast<std::uint64_t>(ctx_.options.connect_timeout_s * 1e9)) {
        finish("timeout", state_ == State::kConnecting ? "connecting"
                          : state_ == State::kConnack  ? "waiting for CONNACK"
                                                       : "waiting for SUBACK");
      }
      break;
    case State::kReady: {
      const std::uint64_t keepalive = std::uint64_t{ctx_.options.keepalive} * 1'000'000'000;
      if (keepalive != 0 && now - last_send_ns_ >= keepalive / 2) {
        // Half the keepalive leaves room for a busy worker or a slow write.
        codec::encode(codec::Pingreq{}, out_);
        flush();
      }
      break;
    }
    default:
      break;
  }
}

void Client::finish(const char* error, const std::string& detail) {
  if (state_ == State::kClosed) return;
  if (error != nullptr) {
    if (became_ready_) {
      stats_.connections_lost.add();
    } else {
      stats_.connect_errors.add();
    }
    log_client_error(spec_.client_id,
                     detail.empty() ? std::string(error) : std::string(error) + ": " + detail);
  }
  state_ = State::kClosed;
  if (publishing_ && !done_) {
    done_ = true;
    stats_.publishers_done.add();
  }
  publishing_ = false;
  if (timer_) timer_->cancel();
  if (transport_) transport_->close();
  stats_.closed.add();
}

}  // namespace meshmq::bench
