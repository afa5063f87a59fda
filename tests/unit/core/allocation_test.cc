// The routing path's allocation budget (issue 3): routing a message costs one heap allocation, the
// message itself (header, topic and payload in one block shared by every receiver), whatever the
// QoS and the number of receivers on the worker; deliveries to other workers add a few per batch,
// none per message. Counted with a replaced global operator new, hence a binary of its own.
#include <gtest/gtest.h>

#include "broker/core/output_buffers.h"
#include "tests/unit/core/fakes.h"
#include "tests/unit/counting_new.h"

namespace meshmq::testing {
namespace {

using codec::QoS;

using Bytes = std::vector<std::uint8_t>;

void append(Bytes& out, const codec::Packet& p) {
  std::string s;
  codec::encode(p, s);
  out.insert(out.end(), s.begin(), s.end());
}

// `count` PUBLISH packets with ids first_id.., as they would arrive in one read.
Bytes publishes(int count, QoS qos, std::uint16_t first_id = 1) {
  Bytes out;
  for (int i = 0; i < count; ++i) {
    codec::Publish p{.topic = "sensors/room-42/temperature",
                     .payload = std::string(64, static_cast<char>('a' + i % 26)),
                     .qos = qos,
                     .packet_id = qos == QoS::kAtMostOnce
                                      ? std::uint16_t{0}
                                      : static_cast<std::uint16_t>(first_id + i)};
    append(out, p);
  }
  return out;
}

template <class Ack>
Bytes acks(int count, std::uint16_t first_id) {
  Bytes out;
  for (int i = 0; i < count; ++i) append(out, Ack{static_cast<std::uint16_t>(first_id + i)});
  return out;
}

struct Routing {
  explicit Routing(QoS qos, int subscribers, std::size_t subscriber_worker = 0) : f(2) {
    pub = f.connect("publisher", true, 0);
    for (int i = 0; i < subscribers; ++i) {
      auto s = f.connect("subscriber-" + std::to_string(i), true, subscriber_worker);
      codec::Subscribe sub{.packet_id = 1, .topics = {{"sensors/+/temperature", qos}}};
      if (i % 2 == 1) sub.topics.push_back({"sensors/#", qos});  // overlapping: one copy
      s->receive(sub);
      subs.push_back(s);
    }
    pub->sent();
    for (auto& s : subs) s->sent();
  }
  BrokerFixture f;
  std::shared_ptr<FakeConnection> pub;
  std::vector<std::shared_ptr<FakeConnection>> subs;
};

// Publishes `n` messages in one read and lets every receiver acknowledge them; returns the
// allocations the broker made for it. Run twice with the same ids: the first run sizes the output
// buffers and small vectors that the second reuses.
long route_round(Routing& s, int n, QoS qos) {
  const Bytes in = publishes(n, qos);
  const Bytes pubrels = acks<codec::Pubrel>(n, 1);
  const Bytes sub_acks = qos == QoS::kAtLeastOnce   ? acks<codec::Puback>(n, 1)
                         : qos == QoS::kExactlyOnce ? acks<codec::Pubrec>(n, 1)
                                                    : Bytes{};
  const Bytes pubcomps = acks<codec::Pubcomp>(n, 1);
  long allocations;
  {
    Counting counting;
    s.pub->feed(in);
    if (qos == QoS::kExactlyOnce) s.pub->feed(pubrels);
    s.f.executor.drain();
    for (auto& sub : s.subs) {
      if (!sub_acks.empty()) sub->feed(sub_acks);
      if (qos == QoS::kExactlyOnce) sub->feed(pubcomps);
    }
    s.f.executor.drain();
    allocations = counting.allocations();
  }
  // Every receiver got all n messages, once each.
  for (auto& sub : s.subs) {
    auto got = sub->sent_of<codec::Publish>();
    EXPECT_EQ(got.size(), static_cast<std::size_t>(n));
  }
  s.pub->sent();
  return allocations;
}

TEST(RoutingAllocations, OneAllocationPerMessageOnTheSameWorker) {
  constexpr int kMessages = 24;  // within the inflight window, so nothing waits in a queue
  for (QoS qos : {QoS::kAtMostOnce, QoS::kAtLeastOnce, QoS::kExactlyOnce}) {
    SCOPED_TRACE(static_cast<int>(qos));
    Routing s(qos, 4);
    route_round(s, kMessages, qos);
    EXPECT_EQ(route_round(s, kMessages, qos), kMessages);
  }
}

TEST(RoutingAllocations, OtherWorkersCostPerBatchNotPerMessage) {
  constexpr int kMessages = 24;
  for (QoS qos : {QoS::kAtMostOnce, QoS::kAtLeastOnce, QoS::kExactlyOnce}) {
    SCOPED_TRACE(static_cast<int>(qos));
    Routing s(qos, 4, /*subscriber_worker=*/1);
    route_round(s, kMessages, qos);
    const long allocations = route_round(s, kMessages, qos);
    // The batch of deliveries for worker 1: its vector, the posted function, the executor's queue.
    EXPECT_GE(allocations, kMessages);
    EXPECT_LE(allocations, kMessages + 4);
  }
}

// The transport gives a drained write buffer back; the next output on the worker reuses it
// instead of allocating (a write per event-loop pass would otherwise be an allocation each).
TEST(OutputBuffers, DrainedBufferIsReusedWithoutAllocating) {
  namespace ob = core::output_buffers;
  std::string written(1000, 'x');
  ob::give_back(std::move(written));
  long allocations;
  std::size_t capacity;
  {
    Counting counting;
    std::string out = ob::take();
    out.append(900, 'y');
    capacity = out.capacity();
    allocations = counting.allocations();
    ob::give_back(std::move(out));
  }
  EXPECT_EQ(allocations, 0);
  EXPECT_GE(capacity, 1000u);
}

TEST(OutputBuffers, CacheIsBounded) {
  namespace ob = core::output_buffers;
  while (ob::take().capacity() > std::string().capacity()) {
  }
  ob::give_back(std::string(ob::kMaxCachedCapacity + 1, 'x'));  // too large: freed
  EXPECT_EQ(ob::take().capacity(), std::string().capacity());
  for (std::size_t i = 0; i < ob::kMaxCached + 5; ++i) ob::give_back(std::string(100, 'x'));
  std::size_t kept = 0;
  while (ob::take().capacity() > std::string().capacity()) ++kept;
  EXPECT_EQ(kept, ob::kMaxCached);
}

}  // namespace
}  // namespace meshmq::testing
