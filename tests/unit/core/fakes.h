// Test doubles for the core: a manual multi-worker executor and a connection whose transport is a
// byte buffer, so broker behaviour is tested without sockets, threads or sleeps.
#pragma once

#include <spdlog/spdlog.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "broker/codec/decoder.h"
#include "broker/codec/encoder.h"
#include "broker/core/broker.h"
#include "broker/core/connection.h"
#include "broker/core/executor.h"
#include "broker/core/memory_retained_store.h"

namespace meshmq::testing {

// Packets as a client would send them (QoS 0 publishes carry no packet id).
inline codec::Publish publish(std::string topic, std::string payload, codec::QoS qos,
                              std::uint16_t id = 0, bool retain = false) {
  codec::Publish p;
  p.topic = std::move(topic);
  p.payload = std::move(payload);
  p.qos = qos;
  p.packet_id = qos == codec::QoS::kAtMostOnce ? 0 : id;
  p.retain = retain;
  return p;
}

inline codec::Subscribe subscribe(std::uint16_t id,
                                  std::vector<std::pair<std::string, codec::QoS>> filters) {
  codec::Subscribe s;
  s.packet_id = id;
  for (auto& [f, q] : filters) s.topics.push_back({f, q});
  return s;
}

class ManualExecutor final : public core::Executor {
 public:
  explicit ManualExecutor(std::size_t n) : queues_(n) {}
  std::size_t size() const override { return queues_.size(); }
  std::size_t current() const override { return current_; }
  void post(std::size_t worker, std::function<void()> fn) override {
    queues_[worker].push_back(std::move(fn));
  }
  // Runs `fn` as if on `worker`.
  void on(std::size_t worker, const std::function<void()>& fn) {
    std::size_t saved = current_;
    current_ = worker;
    fn();
    current_ = saved;
  }
  // Runs queued handlers, round robin over workers, until none is left.
  void drain() {
    for (bool any = true; any;) {
      any = false;
      for (std::size_t w = 0; w < queues_.size(); ++w) {
        if (queues_[w].empty()) continue;
        auto fn = std::move(queues_[w].front());
        queues_[w].pop_front();
        on(w, fn);
        any = true;
      }
    }
  }

 private:
  std::vector<std::deque<std::function<void()>>> queues_;
  std::size_t current_ = 0;
};

class FakeConnection final : public core::Connection {
 public:
  FakeConnection(core::Broker& broker, ManualExecutor& ex, std::size_t worker)
      : core::Connection(broker, worker, "test:" + std::to_string(worker)), ex_(ex) {}

  // Feeds encoded packets as if they arrived from the socket.
  void receive(const codec::Packet& p) {
    std::string bytes;
    codec::encode(p, bytes);
    ex_.on(worker(), [&] {
      on_bytes(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    });
    ex_.drain();
  }
  // Feeds raw bytes as one read; the call itself allocates nothing (allocation tests rely on it).
  void feed(std::span<const std::uint8_t> bytes) {
    struct Args {
      FakeConnection* self;
      std::span<const std::uint8_t> bytes;
    } args{this, bytes};
    ex_.on(worker(), [&args] { args.self->on_bytes(args.bytes); });
  }
  // Everything the broker wrote since the last call, decoded.
  std::vector<codec::Packet> sent() {
    std::vector<codec::Packet> packets;
    std::span<const std::uint8_t> in(reinterpret_cast<const std::uint8_t*>(out_.data()),
                                     out_.size());
    while (true) {
      auto r = decoder_.next(in);
      if (auto* p = std::get_if<codec::Packet>(&r)) {
        packets.push_back(std::move(*p));
        continue;
      }
      break;
    }
    out_.clear();
    return packets;
  }
  template <class T>
  std::vector<T> sent_of() {
    std::vector<T> r;
    for (auto& p : sent()) {
      if (auto* t = std::get_if<T>(&p)) r.push_back(std::move(*t));
    }
    return r;
  }
  bool transport_closed = false;
  bool paused = false;
  std::size_t timer_arms = 0;

 protected:
  void transport_flush() override {}
  void transport_close() override { transport_closed = true; }
  void transport_pause_reading(bool p) override { paused = p; }
  void transport_arm_timer(std::chrono::milliseconds) override { ++timer_arms; }

 private:
  ManualExecutor& ex_;
  codec::Decoder decoder_;
};

struct BrokerFixture {
  explicit BrokerFixture(std::size_t workers = 2, core::MqttOptions o = {},
                         core::SessionStore* store = nullptr)
      : options(o),
        executor(workers),
        retained(options),
        broker(options, executor, retained, store ? *store : memory_store) {
    spdlog::set_level(spdlog::level::warn);  // connect/disconnect lines would drown test output
  }

  std::shared_ptr<FakeConnection> connect(const std::string& id, bool clean, std::size_t worker,
                                          std::optional<codec::Will> will = std::nullopt) {
    auto c = std::make_shared<FakeConnection>(broker, executor, worker);
    executor.on(worker, [&] { c->start(); });
    codec::Connect connect;
    connect.client_id = id;
    connect.clean_session = clean;
    connect.keepalive = 60;
    connect.will = std::move(will);
    c->receive(connect);
    return c;
  }

  core::MqttOptions options;
  core::MemorySessionStore memory_store;
  ManualExecutor executor;
  core::MemoryRetainedStore retained;
  core::Broker broker;
};

}  // namespace meshmq::testing
