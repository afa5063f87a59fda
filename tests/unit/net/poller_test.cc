// The poller's contract (broker/net/poller.h) on real sockets: one edge-triggered registration per
// descriptor, read and write readiness, hangups, removal even within a fetched batch, deferred
// work after the batch, more ready descriptors than one epoll_wait returns, and stop().
#include "broker/net/poller.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace meshmq::net {
namespace {

using namespace std::chrono_literals;

class Probe final : public Poller::Client {
 public:
  std::vector<std::uint32_t> events;
  int deferred = 0;
  std::function<void(std::uint32_t)> on_events;
  std::function<void()> on_defer;

  void on_poll_events(std::uint32_t e) override {
    events.push_back(e);
    if (on_events) on_events(e);
  }
  void on_deferred() override {
    ++deferred;
    if (on_defer) on_defer();
  }
  bool saw(std::uint32_t bits) const {
    for (std::uint32_t e : events) {
      if ((e & bits) == bits) return true;
    }
    return false;
  }
};

void set_nonblocking(int fd) {
  ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

// A connected pair of stream sockets: `ours` goes on the poller, `peer` plays the client.
struct Pair {
  int ours = -1;
  int peer = -1;
  Pair() = default;
  Pair(Pair&& o) noexcept : ours(std::exchange(o.ours, -1)), peer(std::exchange(o.peer, -1)) {}
  ~Pair() {
    if (ours >= 0) ::close(ours);
    if (peer >= 0) ::close(peer);
  }
  void close_peer() {
    ::close(peer);
    peer = -1;
  }
};

Pair unix_pair() {
  Pair p;
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0) << std::strerror(errno);
  p.ours = fds[0];
  p.peer = fds[1];
  set_nonblocking(p.ours);
  return p;
}

// Loopback TCP, as the broker's connections are.
Pair tcp_pair() {
  Pair p;
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(listener, 1), 0);
  EXPECT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  p.peer = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(::connect(p.peer, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  p.ours = ::accept(listener, nullptr, nullptr);
  ::close(listener);
  EXPECT_GE(p.ours, 0);
  set_nonblocking(p.ours);
  return p;
}

class PollerTest : public ::testing::Test {
 protected:
  PollerTest() { poller.start(); }
  ~PollerTest() override { poller.stop(); }

  // Runs the loop until `done` holds, at most 5 s; false on time-out.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      poller.run_once(10ms);
    }
    return true;
  }
  // Runs whatever is ready now and what it leads to within `span` (to see that nothing more
  // comes: an upper bound on waiting, not a timing assertion).
  void run_for(std::chrono::milliseconds span) {
    const auto deadline = std::chrono::steady_clock::now() + span;
    while (std::chrono::steady_clock::now() < deadline) poller.run_once(10ms);
  }

  boost::asio::io_context ctx{1};
  // A worker holds its io_context the same way until shutdown: without work it stops.
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
      ctx.get_executor()};
  Poller poller{ctx};
};

void send_bytes(int fd, std::size_t n) {
  const std::string bytes(n, 'x');
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(n));
}

std::size_t drain(int fd) {
  char buf[65536];
  std::size_t total = 0;
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return total;
    total += static_cast<std::size_t>(n);
  }
}

TEST_F(PollerTest, RegistersADescriptorOnceAndRefusesBadOnes) {
  Pair p = unix_pair();
  Probe probe;
  EXPECT_EQ(poller.add(p.ours, probe), 0);
  EXPECT_EQ(poller.add(p.ours, probe), EEXIST);
  EXPECT_EQ(poller.add(-1, probe), EBADF);
  poller.remove(p.ours, probe);
}

// What the peer does, and the readiness bits that must reach the client for it, over both kinds
// of stream socket.
struct PeerActionCase {
  const char* name;
  Pair (*make)();
  void (*act)(Pair&);
  std::uint32_t expected;  // all of these bits, in some event
};

class PeerAction : public PollerTest, public ::testing::WithParamInterface<PeerActionCase> {};

TEST_P(PeerAction, ReportsTheReadiness) {
  const PeerActionCase& c = GetParam();
  Pair p = c.make();
  Probe probe;
  ASSERT_EQ(poller.add(p.ours, probe), 0);
  // A fresh connected socket is writable, and says so once.
  ASSERT_TRUE(run_until([&] { return probe.saw(EPOLLOUT); }));
  probe.events.clear();
  c.act(p);
  EXPECT_TRUE(run_until([&] { return probe.saw(c.expected); }))
      << c.name << ": events seen " << probe.events.size();
  poller.remove(p.ours, probe);
}

INSTANTIATE_TEST_SUITE_P(
    Sockets, PeerAction,
    ::testing::Values(
        PeerActionCase{"unix_data", unix_pair, [](Pair& p) { send_bytes(p.peer, 10); }, EPOLLIN},
        PeerActionCase{"tcp_data", tcp_pair, [](Pair& p) { send_bytes(p.peer, 10); }, EPOLLIN},
        PeerActionCase{"unix_shutdown", unix_pair, [](Pair& p) { ::shutdown(p.peer, SHUT_WR); },
                       EPOLLIN | EPOLLRDHUP},
        PeerActionCase{"tcp_shutdown", tcp_pair, [](Pair& p) { ::shutdown(p.peer, SHUT_WR); },
                       EPOLLIN | EPOLLRDHUP},
        PeerActionCase{"unix_close", unix_pair, [](Pair& p) { p.close_peer(); },
                       EPOLLIN | EPOLLRDHUP | EPOLLHUP},
        PeerActionCase{"tcp_close", tcp_pair, [](Pair& p) { p.close_peer(); },
                       EPOLLIN | EPOLLRDHUP}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(PollerTest, InputIsReportedOncePerArrivalNotUntilRead) {
  // Edge-triggered: unread bytes are not reported again (the connection must read to a short
  // read), even when the poller fetches again for another socket; new bytes are.
  Pair p = tcp_pair();
  Pair other = tcp_pair();
  Probe probe;
  Probe other_probe;
  ASSERT_EQ(poller.add(p.ours, probe), 0);
  ASSERT_EQ(poller.add(other.ours, other_probe), 0);
  ASSERT_TRUE(run_until([&] { return probe.saw(EPOLLOUT) && other_probe.saw(EPOLLOUT); }));
  probe.events.clear();
  send_bytes(p.peer, 100);
  ASSERT_TRUE(run_until([&] { return probe.saw(EPOLLIN); }));
  send_bytes(other.peer, 1);
  ASSERT_TRUE(run_until([&] { return other_probe.saw(EPOLLIN); }));
  run_for(50ms);
  EXPECT_EQ(probe.events.size(), 1u) << "level-triggered: unread input reported again";
  send_bytes(p.peer, 100);
  ASSERT_TRUE(run_until([&] { return probe.events.size() >= 2; }));
  EXPECT_TRUE(probe.events[1] & EPOLLIN);
  EXPECT_EQ(drain(p.ours), 200u);
  poller.remove(p.ours, probe);
  poller.remove(other.ours, other_probe);
}

TEST_F(PollerTest, WritableAgainOnceAFullSocketBufferDrains) {
  Pair p = unix_pair();
  Probe probe;
  ASSERT_EQ(poller.add(p.ours, probe), 0);
  ASSERT_TRUE(run_until([&] { return probe.saw(EPOLLOUT); }));
  // Fill our send buffer until the kernel refuses more.
  const std::string chunk(65536, 'y');
  while (::send(p.ours, chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  probe.events.clear();
  run_for(50ms);
  EXPECT_FALSE(probe.saw(EPOLLOUT)) << "writable reported while the buffer is full";
  set_nonblocking(p.peer);
  drain(p.peer);
  EXPECT_TRUE(run_until([&] { return probe.saw(EPOLLOUT); }));
  poller.remove(p.ours, probe);
}

TEST_F(PollerTest, NoEventsAfterRemove) {
  Pair p = unix_pair();
  Probe probe;
  ASSERT_EQ(poller.add(p.ours, probe), 0);
  ASSERT_TRUE(run_until([&] { return probe.saw(EPOLLOUT); }));
  poller.remove(p.ours, probe);
  probe.events.clear();
  send_bytes(p.peer, 10);
  run_for(100ms);
  EXPECT_TRUE(probe.events.empty());
  // Registered again, it is reported again.
  ASSERT_EQ(poller.add(p.ours, probe), 0);
  EXPECT_TRUE(run_until([&] { return probe.saw(EPOLLIN); }));
  poller.remove(p.ours, probe);
}

TEST_F(PollerTest, RemoveInsideABatchDropsTheOtherClientsFetchedEvent) {
  // Both become ready before the loop runs, so one epoll_wait fetches both; whichever is
  // dispatched first closes the other, whose fetched event must then not be delivered (its
  // object may be gone).
  std::vector<Pair> pairs;
  pairs.push_back(unix_pair());
  pairs.push_back(unix_pair());
  Probe probes[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(poller.add(pairs[i].ours, probes[i]), 0);
  }
  ASSERT_TRUE(run_until([&] { return probes[0].saw(EPOLLOUT) && probes[1].saw(EPOLLOUT); }));
  for (int i = 0; i < 2; ++i) probes[i].events.clear();
  int first = -1;
  for (int i = 0; i < 2; ++i) {
    probes[i].on_events = [&, i](std::uint32_t) {
      if (first >= 0) return;
      first = i;
      poller.remove(pairs[1 - i].ours, probes[1 - i]);
    };
  }
  for (int i = 0; i < 2; ++i) send_bytes(pairs[i].peer, 1);
  ASSERT_TRUE(run_until([&] { return first >= 0; }));
  run_for(50ms);
  EXPECT_EQ(probes[first].events.size(), 1u);
  EXPECT_TRUE(probes[1 - first].events.empty()) << "event delivered after remove()";
  poller.remove(pairs[first].ours, probes[first]);
}

TEST_F(PollerTest, DeferredWorkRunsOnceAfterTheWholeBatch) {
  std::vector<Pair> pairs;
  std::vector<std::shared_ptr<Probe>> probes;
  std::vector<std::string> log;
  for (int i = 0; i < 3; ++i) {
    pairs.push_back(unix_pair());
    probes.push_back(std::make_shared<Probe>());
    ASSERT_EQ(poller.add(pairs[i].ours, *probes[i]), 0);
  }
  ASSERT_TRUE(run_until([&] {
    for (auto& p : probes) {
      if (!p->saw(EPOLLOUT)) return false;
    }
    return true;
  }));
  for (int i = 0; i < 3; ++i) {
    probes[i]->on_events = [&, i](std::uint32_t) {
      log.push_back("event");
      poller.defer(probes[i]);
    };
    probes[i]->on_defer = [&] { log.push_back("deferred"); };
  }
  for (auto& p : pairs) send_bytes(p.peer, 1);
  ASSERT_TRUE(run_until([&] { return log.size() >= 6; }));
  run_for(50ms);
  EXPECT_EQ(log, (std::vector<std::string>{"event", "event", "event", "deferred", "deferred",
                                           "deferred"}));
  for (int i = 0; i < 3; ++i) poller.remove(pairs[i].ours, *probes[i]);
}

TEST_F(PollerTest, DeferOutsideAPassRunsBeforeTheLoopWaitsAndKeepsTheClientAlive) {
  auto probe = std::make_shared<Probe>();
  std::weak_ptr<Probe> weak = probe;
  int runs = 0;
  probe->on_defer = [&] {
    ++runs;
    // Deferring again from deferred work waits for the next pass: no endless loop in this one.
    if (runs < 3) poller.defer(weak.lock());
  };
  poller.defer(std::move(probe));
  EXPECT_FALSE(weak.expired()) << "the poller holds the deferred client";
  ASSERT_TRUE(run_until([&] { return runs == 3; }));
  run_for(50ms);
  EXPECT_EQ(runs, 3);
  EXPECT_TRUE(weak.expired()) << "released once its deferred work ran";
}

TEST_F(PollerTest, MoreReadyDescriptorsThanOneFetchAreAllReported) {
  // Above the 256 events one epoll_wait takes: the rest must not wait for a new edge that never
  // comes.
  constexpr int kPairs = 300;
  std::vector<Pair> pairs;
  std::vector<Probe> probes(kPairs);
  for (int i = 0; i < kPairs; ++i) {
    pairs.push_back(unix_pair());
    ASSERT_EQ(poller.add(pairs[i].ours, probes[i]), 0);
  }
  auto all = [&](std::uint32_t bit, std::size_t count) {
    for (const Probe& p : probes) {
      std::size_t n = 0;
      for (std::uint32_t e : p.events) n += (e & bit) ? 1 : 0;
      if (n < count) return false;
    }
    return true;
  };
  ASSERT_TRUE(run_until([&] { return all(EPOLLOUT, 1); }));
  for (auto& p : pairs) send_bytes(p.peer, 1);
  EXPECT_TRUE(run_until([&] { return all(EPOLLIN, 1); }));
  for (int i = 0; i < kPairs; ++i) poller.remove(pairs[i].ours, probes[i]);
}

TEST_F(PollerTest, StoppedItDispatchesNothingAndReportsTheInputOnceStartedAgain) {
  Pair p = unix_pair();
  Probe probe;
  ASSERT_EQ(poller.add(p.ours, probe), 0);
  ASSERT_TRUE(run_until([&] { return probe.saw(EPOLLOUT); }));
  probe.events.clear();
  poller.stop();
  send_bytes(p.peer, 10);
  run_for(50ms);
  EXPECT_TRUE(probe.events.empty()) << "an event after stop()";
  // Started again, it reports the input that came meanwhile: edge-triggered, it is not reported
  // a second time, so the stopped loop must have left it in the set.
  poller.start();
  EXPECT_TRUE(run_until([&] { return probe.saw(EPOLLIN); }));
  poller.remove(p.ours, probe);
}

TEST_F(PollerTest, RunReturnsOnceTheIoContextHasNoWorkLeft) {
  Pair p = unix_pair();
  Probe probe;
  ASSERT_EQ(poller.add(p.ours, probe), 0);
  guard.reset();
  // The registered socket is no work of the io_context's: with the guard gone, the loop ends.
  bool ended = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!ended && std::chrono::steady_clock::now() < deadline) ended = !poller.run_once(10ms);
  EXPECT_TRUE(ended) << "the loop still runs with nothing left to wait for";
  EXPECT_TRUE(ctx.stopped());
  poller.remove(p.ours, probe);
}

// A poller destroyed while it watches (without stop(), as at a worker's teardown) leaves the
// io_context clean, whether that runs once more or is destroyed at once: nothing of the poller's
// stays queued there. Leaks and use after free show under ASan.
class PollerLifetime : public ::testing::TestWithParam<bool> {};

TEST_P(PollerLifetime, DestroyedWhileWatchingLeavesTheLoopClean) {
  const bool run_after = GetParam();
  boost::asio::io_context ctx{1};
  Pair p = unix_pair();
  {
    Poller poller(ctx);
    Probe probe;
    poller.start();
    ASSERT_EQ(poller.add(p.ours, probe), 0);
    auto guard = boost::asio::make_work_guard(ctx);
    for (int i = 0; i < 50 && !probe.saw(EPOLLOUT); ++i) poller.run_once(10ms);
    EXPECT_TRUE(probe.saw(EPOLLOUT));
    poller.remove(p.ours, probe);
  }
  send_bytes(p.peer, 1);
  if (run_after) ctx.run_for(20ms);
}

INSTANTIATE_TEST_SUITE_P(Teardown, PollerLifetime, ::testing::Bool(), [](const auto& info) {
  return info.param ? "LoopRunsAgain" : "LoopDestroyed";
});

}  // namespace
}  // namespace meshmq::net
