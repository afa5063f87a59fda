// The worker's loop (Poller::run, broker/net/poller.h) runs the io_context itself and blocks in
// its own epoll_wait: every way a handler can become ready must end that wait (another thread
// posting, a stop(), an Asio timer or socket) and a handler queued by the loop's own thread must
// run before it waits. Each case watches the blocked loop from a watchdog that ends it through the
// poller's own epoll set after a few seconds, so a missed wakeup fails the case instead of hanging.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <thread>

#include "broker/net/poller.h"
#include "gtest/gtest.h"

namespace meshmq::net {
namespace {

using namespace std::chrono_literals;

// A socket pair on the poller: writing to `poke` makes the loop dispatch to `on_input`.
class Line final : public Poller::Client {
 public:
  explicit Line(Poller& poller) : poller_(poller) {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_), 0);
    EXPECT_EQ(poller_.add(fds_[0], *this), 0);
  }
  ~Line() {
    poller_.remove(fds_[0], *this);
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  void poke() { EXPECT_EQ(::write(fds_[1], "x", 1), 1); }

  std::function<void()> on_input;

 private:
  void on_poll_events(std::uint32_t events) override {
    if (!(events & EPOLLIN)) return;
    char buf[64];
    while (::read(fds_[0], buf, sizeof buf) > 0) {
    }
    if (on_input) on_input();
  }
  void on_deferred() override {}

  Poller& poller_;
  int fds_[2] = {-1, -1};
};

class PollerLoop : public ::testing::Test {
 protected:
  PollerLoop() {
    poller.start();
    // Drain the pair's first writable event, so later turns are quiet.
    poller.run_once(0ms);
    watchdog_line.on_input = [this] {
      watchdog_fired = true;
      ctx.stop();
    };
  }
  ~PollerLoop() override {
    done = true;
    if (watchdog.joinable()) watchdog.join();
  }

  // Runs the loop on this thread; after `limit` the watchdog ends it through the poller's own
  // set. True when the loop ended by itself first.
  bool run_bounded(std::chrono::milliseconds limit = 5s) {
    watchdog = std::thread([this, limit] {
      const auto deadline = std::chrono::steady_clock::now() + limit;
      while (!done && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
      }
      if (!done) watchdog_line.poke();
    });
    poller.run();
    done = true;
    watchdog.join();
    return !watchdog_fired;
  }

  boost::asio::io_context ctx{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
      ctx.get_executor()};
  Poller poller{ctx};
  Line watchdog_line{poller};
  std::thread watchdog;
  std::atomic<bool> done{false};
  bool watchdog_fired = false;
};

TEST_F(PollerLoop, APostFromAnotherThreadWakesTheBlockedLoop) {
  bool ran = false;
  std::thread poster([this, &ran] {
    std::this_thread::sleep_for(50ms);  // the loop is blocked by then
    boost::asio::post(ctx, [this, &ran] {
      ran = true;
      guard.reset();  // nothing else holds the loop: it ends
    });
  });
  EXPECT_TRUE(run_bounded()) << "the post did not end the loop's wait";
  EXPECT_TRUE(ran);
  poster.join();
}

TEST_F(PollerLoop, StopFromAnotherThreadEndsTheBlockedLoop) {
  std::thread stopper([this] {
    std::this_thread::sleep_for(50ms);
    ctx.stop();
  });
  EXPECT_TRUE(run_bounded()) << "stop() did not end the loop's wait";
  stopper.join();
}

TEST_F(PollerLoop, AnAsioTimerWakesTheBlockedLoop) {
  boost::asio::steady_timer timer(ctx, 30ms);
  bool fired = false;
  timer.async_wait([this, &fired](const boost::system::error_code& ec) {
    fired = !ec;
    guard.reset();
  });
  EXPECT_TRUE(run_bounded()) << "the timer's expiry did not end the loop's wait";
  EXPECT_TRUE(fired);
}

TEST_F(PollerLoop, AHandlerQueuedWhileDispatchingRunsBeforeTheLoopWaits) {
  // Posted by the loop's own thread outside the io_context (from a socket's event): nothing
  // interrupts anything, so the loop must see the handler before it blocks.
  Line line(poller);
  poller.run_once(0ms);
  bool ran = false;
  line.on_input = [this, &ran] {
    boost::asio::post(ctx, [this, &ran] {
      ran = true;
      guard.reset();
    });
  };
  line.poke();
  EXPECT_TRUE(run_bounded()) << "the loop waited with a handler ready";
  EXPECT_TRUE(ran);
}

TEST_F(PollerLoop, MoreHandlersThanOneTurnRunsAllRunWithoutANewEvent) {
  int ran = 0;
  constexpr int kHandlers = 1000;  // several turns' worth
  for (int i = 0; i < kHandlers; ++i) {
    boost::asio::post(ctx, [this, &ran] {
      if (++ran == kHandlers) guard.reset();
    });
  }
  EXPECT_TRUE(run_bounded()) << "handlers left waiting for an event";
  EXPECT_EQ(ran, kHandlers);
}

TEST_F(PollerLoop, DeferredWorkOfAHandlerRunsInTheSameTurn) {
  struct Deferred final : Poller::Client {
    int runs = 0;
    void on_poll_events(std::uint32_t) override {}
    void on_deferred() override { ++runs; }
  };
  auto client = std::make_shared<Deferred>();
  boost::asio::post(ctx, [this, client] { poller.defer(client); });
  // One turn runs the handler (a delivery posted by another worker, say) and then the write it
  // deferred, without waiting for another event.
  for (int i = 0; i < 3 && client->runs == 0; ++i) poller.run_once(2s);
  EXPECT_EQ(client->runs, 1);
}

}  // namespace
}  // namespace meshmq::net
