#include "broker/net/poller.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "broker/core/counters.h"

namespace meshmq::net {

namespace {
// Marks the reactor's descriptor among the clients in the epoll set.
char reactor_tag;
}  // namespace

Poller::Poller(boost::asio::io_context& ctx) : ctx_(ctx), asio_(ctx) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: reported until a poll() has run the reactor
  ev.data.ptr = &reactor_tag;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, asio_.reactor_fd(), &ev) != 0) {
    const int err = errno;
    ::close(epfd_);
    throw std::runtime_error(std::string("watching Asio's reactor: ") + std::strerror(err));
  }
}

Poller::~Poller() {
  ::close(epfd_);
}

void Poller::run() {
  while (turn(-1)) {
  }
}

bool Poller::run_once(std::chrono::milliseconds timeout) {
  return turn(static_cast<int>(timeout.count()));
}

void Poller::start() {
  stopped_ = false;
}

void Poller::stop() {
  stopped_ = true;
}

int Poller::add(int fd, Client& client) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &client;
  return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

void Poller::remove(int fd, Client& client) {
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  // The client may be gone before the rest of the fetched batch is dispatched.
  for (int i = dispatching_ ? batch_next_ + 1 : 0; i < batch_size_; ++i) {
    if (events_[i].data.ptr == &client) events_[i].data.ptr = nullptr;
  }
}

bool Poller::turn(int timeout_ms) {
  if (ctx_.stopped()) return false;
  // Wait only when nothing is left to do: no deferred work, no ready descriptors left over from a
  // full batch, no Asio handler ready to run.
  const bool may_block = timeout_ms != 0 && deferred_.empty() && !more_ready_;
  const bool asio_idle = asio_.idle(may_block);
  const int timeout = may_block && asio_idle ? timeout_ms : 0;
  bool poll_asio = !asio_idle;
  int n = 0;
  if (stopped_) {
    // Watch the reactor only: the sockets' edges stay queued in the set for start().
    pollfd pfd{asio_.reactor_fd(), POLLIN, 0};
    n = ::poll(&pfd, 1, timeout);
    poll_asio = poll_asio || n > 0;
    n = 0;
  } else {
    n = ::epoll_wait(epfd_, events_.data(), kBatch, timeout);
  }
  if (timeout != 0) asio_.unblocked();
  if (n < 0) {
    if (errno != EINTR) spdlog::error("epoll_wait: {}", std::strerror(errno));
    n = 0;
  }
  more_ready_ = n == kBatch;
  batch_size_ = 0;
  for (int i = 0; i < n; ++i) {
    if (events_[i].data.ptr == &reactor_tag) {
      poll_asio = true;
    } else {
      events_[batch_size_++] = events_[i];
    }
  }
  const bool dispatched = batch_size_ > 0;
  if (dispatched) {
    dispatch();
    run_deferred();  // the replies to what was read leave before Asio's handlers run
  }
  if (poll_asio) {
    // Bounded, so a stream of posts from other workers cannot hold off this worker's sockets
    // (what is left keeps the next turn from waiting). And stopped as soon as no handler is
    // left: a poll_one() that finds the reactor first in the queue runs it, an epoll_wait, just
    // to find that out.
    for (int i = 0; i < kHandlersPerTurn; ++i) {
      if (ctx_.poll_one() == 0 || asio_.idle(false)) break;
    }
  }
  run_deferred();  // what the handlers deferred, or what an earlier turn left for this one
  if (dispatched) pace();
  return true;
}

void Poller::dispatch() {
  if (counters_ != nullptr) {
    pacer_.pass_started(Pacer::Clock::now(), counters_->packets_received.total());
  }
  dispatching_ = true;
  for (batch_next_ = 0; batch_next_ < batch_size_; ++batch_next_) {
    if (auto* client = static_cast<Client*>(events_[batch_next_].data.ptr)) {
      client->on_poll_events(events_[batch_next_].events);
    }
  }
  batch_size_ = batch_next_ = 0;
  dispatching_ = false;
}

void Poller::set_pacing(std::chrono::microseconds window, core::WorkerCounters* counters) {
  pacer_ = Pacer(window);
  counters_ = window.count() > 0 ? counters : nullptr;
}

void Poller::pace() {
  if (counters_ == nullptr) return;
  const auto now = Pacer::Clock::now();
  const auto pause =
      pacer_.pause_after(now, counters_->packets_received.total(), counters_->backlog_waits.get());
  if (pause <= Pacer::Clock::duration::zero()) return;
  // The whole worker waits, Asio handlers too: at most one window, and only while busy.
  counters_->worker_pauses.add();
  const auto until = std::chrono::duration_cast<std::chrono::nanoseconds>(
      (now + pause).time_since_epoch());  // steady_clock is CLOCK_MONOTONIC
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(until.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(until.count() % 1'000'000'000);
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void Poller::defer(std::shared_ptr<Client> client) {
  // The loop does not wait while this is not empty.
  deferred_.push_back(std::move(client));
}

void Poller::run_deferred() {
  // What the clients defer while this runs waits for the next run.
  running_.swap(deferred_);
  for (auto& client : running_) client->on_deferred();
  running_.clear();
}

}  // namespace meshmq::net
