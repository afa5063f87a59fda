// The metrics registry: per-worker cells summed on read, histogram buckets, and the broker's
// counters and gauges moving with real traffic over fake connections.
#include "broker/core/metrics.h"

#include <gtest/gtest.h>

#include <thread>

#include "broker/core/counters.h"
#include "tests/unit/core/fakes.h"

namespace meshmq::testing {
namespace {

using codec::QoS;

double value(const core::Snapshot& s, std::string_view name, std::string_view key = {},
             std::string_view label = {}) {
  const core::Family* f = core::find(s, name);
  if (f == nullptr) {
    ADD_FAILURE() << "no family " << name;
    return -1;
  }
  return key.empty() ? f->total() : f->value(key, label);
}

struct HistogramCase {
  std::uint64_t ns;
  std::size_t bucket;  // index into buckets (kBoundsNs.size() = +Inf)
};

class HistogramBuckets : public ::testing::TestWithParam<HistogramCase> {};

TEST_P(HistogramBuckets, ObservationLandsInFirstBucketAtOrAboveIt) {
  core::LatencyHistogram h;
  h.observe(GetParam().ns);
  for (std::size_t i = 0; i < h.buckets.size(); ++i) {
    EXPECT_EQ(h.buckets[i].get(), i == GetParam().bucket ? 1u : 0u) << "bucket " << i;
  }
  EXPECT_EQ(h.sum_ns.get(), GetParam().ns);
}

INSTANTIATE_TEST_SUITE_P(Bounds, HistogramBuckets,
                         ::testing::Values(HistogramCase{0, 0}, HistogramCase{100'000, 0},
                                           HistogramCase{100'001, 1}, HistogramCase{999'999, 3},
                                           HistogramCase{1'000'000, 3},
                                           HistogramCase{10'000'000'000, 15},
                                           HistogramCase{10'000'000'001, 16},
                                           HistogramCase{~0ull >> 1, 16}));

TEST(MetricsRegistry, CollectorsRunInOrderOnEverySnapshot) {
  core::MetricsRegistry r;
  int calls = 0;
  r.add_collector([&](core::Snapshot& s) {
    ++calls;
    s.push_back(core::Family::gauge("a", "first", 1));
  });
  r.add_collector([&](core::Snapshot& s) { s.push_back(core::Family::gauge("b", "second", 2)); });
  auto s1 = r.collect();
  auto s2 = r.collect();
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(s2.size(), 2u);
  EXPECT_EQ(s2[0].name, "a");
  EXPECT_EQ(s2[1].total(), 2);
}

TEST(BrokerMetrics, PerWorkerCellsAreSummedOnRead) {
  BrokerFixture f(3);
  core::MetricsRegistry r;
  core::add_broker_metrics(r, f.broker);
  // Each worker writes its own cells from its own thread, as on the publish path.
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      for (std::size_t i = 0; i < 1000 * (w + 1); ++i) {
        f.broker.counters(w).messages_received.add(QoS::kAtLeastOnce);
        f.broker.counters(w).packets_sent.add(codec::PacketType::kPuback);
      }
      f.broker.counters(w).deliver_latency.observe(2'000'000);
    });
  }
  for (auto& t : threads) t.join();
  const auto s = r.collect();
  EXPECT_EQ(value(s, "meshmq_messages_received_total", "qos", "1"), 6000);
  EXPECT_EQ(value(s, "meshmq_messages_received_total", "qos", "0"), 0);
  EXPECT_EQ(value(s, "meshmq_packets_sent_total", "type", "puback"), 6000);
  const core::Family* h = core::find(s, "meshmq_publish_deliver_latency_seconds");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->type, core::MetricType::kHistogram);
  ASSERT_EQ(h->histogram.cumulative.size(), h->histogram.bounds.size() + 1);
  EXPECT_EQ(h->histogram.cumulative[3], 0u);  // <= 1 ms
  EXPECT_EQ(h->histogram.cumulative[4], 3u);  // <= 2.5 ms
  EXPECT_EQ(h->histogram.cumulative.back(), 3u);
  EXPECT_DOUBLE_EQ(h->histogram.sum, 0.006);
}

TEST(BrokerMetrics, TrafficMovesCountersAndGauges) {
  BrokerFixture f(2);
  core::MetricsRegistry r;
  core::add_broker_metrics(r, f.broker);
  auto sub = f.connect("sub", false, 1);
  codec::Subscribe s;
  s.packet_id = 1;
  s.topics = {{"a/+", QoS::kAtLeastOnce}, {"b", QoS::kAtMostOnce}};
  sub->receive(s);
  auto pub = f.connect("pub", true, 0);
  codec::Publish p;
  p.topic = "a/1";
  p.payload = "12345";
  p.qos = QoS::kAtLeastOnce;
  p.packet_id = 7;
  pub->receive(p);
  p.topic = "$SYS/forbidden";
  pub->receive(p);

  auto snap = r.collect();
  EXPECT_EQ(value(snap, "meshmq_connections"), 2);
  EXPECT_EQ(value(snap, "meshmq_sessions"), 2);
  EXPECT_EQ(value(snap, "meshmq_subscriptions"), 2);
  EXPECT_EQ(value(snap, "meshmq_routes"), 2);
  EXPECT_EQ(value(snap, "meshmq_messages_received_total", "qos", "1"), 2);
  EXPECT_EQ(value(snap, "meshmq_messages_received_bytes_total", "qos", "1"), 10);
  EXPECT_EQ(value(snap, "meshmq_messages_sent_total", "qos", "1"), 1);
  EXPECT_EQ(value(snap, "meshmq_messages_dropped_total", "reason", "sys_topic"), 1);
  EXPECT_EQ(value(snap, "meshmq_packets_received_total", "type", "connect"), 2);
  EXPECT_EQ(value(snap, "meshmq_packets_received_total", "type", "publish"), 2);
  EXPECT_EQ(value(snap, "meshmq_packets_sent_total", "type", "connack"), 2);
  EXPECT_EQ(value(snap, "meshmq_packets_sent_total", "type", "puback"), 2);
  EXPECT_EQ(value(snap, "meshmq_inflight_messages"), 1);  // not acknowledged by "sub" yet
  EXPECT_EQ(value(snap, "meshmq_publish_deliver_latency_seconds"), 1);

  // Offline: further QoS 1 messages queue; ending the session releases the gauges.
  sub->receive(codec::Disconnect{});
  p.topic = "a/2";
  pub->receive(p);
  snap = r.collect();
  EXPECT_EQ(value(snap, "meshmq_connections"), 1);
  EXPECT_EQ(value(snap, "meshmq_queued_messages"), 1);
  auto clean = f.connect("sub", true, 0);
  f.executor.drain();
  snap = r.collect();
  EXPECT_EQ(value(snap, "meshmq_queued_messages"), 0);
  EXPECT_EQ(value(snap, "meshmq_inflight_messages"), 0);
  EXPECT_EQ(value(snap, "meshmq_routes"), 0);
}

// The pacer (net/pacer.h) reads acknowledgements at once while this moves: it must count messages
// held back by a connected client's full window, and not those queued for an offline session.
TEST(BrokerMetrics, WindowWaitsCountMessagesHeldBackForConnectedClientsOnly) {
  core::MqttOptions o;
  o.max_inflight = 2;
  BrokerFixture f(1, o);
  core::MetricsRegistry r;
  core::add_broker_metrics(r, f.broker);
  auto sub = f.connect("sub", false, 0);
  sub->receive(subscribe(1, {{"a", QoS::kAtLeastOnce}}));
  auto pub = f.connect("pub", true, 0);
  for (std::uint16_t id = 1; id <= 5; ++id) pub->receive(publish("a", "x", QoS::kAtLeastOnce, id));
  auto snap = r.collect();
  EXPECT_EQ(value(snap, "meshmq_inflight_messages"), 2);
  EXPECT_EQ(value(snap, "meshmq_window_waits_total"), 3);
  // Only the fifth found a queue one window (2) deep in front of it.
  EXPECT_EQ(value(snap, "meshmq_backlog_waits_total"), 1);

  sub->receive(codec::Disconnect{});
  pub->receive(publish("a", "x", QoS::kAtLeastOnce, 6));
  snap = r.collect();
  EXPECT_EQ(value(snap, "meshmq_queued_messages"), 4);
  EXPECT_EQ(value(snap, "meshmq_window_waits_total"), 3);  // offline: queued, not held back
  EXPECT_EQ(value(snap, "meshmq_backlog_waits_total"), 1);
}

}  // namespace
}  // namespace meshmq::testing
