#include "broker/net/poller.h"

#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "broker/core/counters.h"

namespace meshmq::net {

namespace asio_detail = boost::asio::detail;

// Asio's reactor operations for sockets (read_some, write_some) first try their system call and,
// while it would block, wait in the reactor's queue without touching the epoll set; async_wait
// never tries, so every start re-registers interest with an EPOLL_CTL_MOD. This operation's try
// is the fetch of the ready sockets, so arming it again after a pass costs no system call.
// (Asio internals: Boost 1.74's epoll_reactor, as Debian ships it.)
struct Poller::Watch {
  struct Op final : asio_detail::reactor_op {
    explicit Op(Poller* p)
        : reactor_op(boost::system::error_code(), &Op::perform, &Op::complete), poller(p) {}

    static status perform(reactor_op* base) {
      Poller* p = static_cast<Op*>(base)->poller;
      if (p == nullptr) return done;
      const int n = p->fetch();
      if (n <= 0) return not_done;  // stays armed: the reactor calls again on the next edge
      // A full batch may leave sockets unreported: the next arming tries again at once.
      return n == kBatch ? done : done_and_exhausted;
    }

    static void complete(void* owner, asio_detail::scheduler_operation* base,
                         const boost::system::error_code& ec, std::size_t) {
      auto* op = static_cast<Op*>(base);
      Poller* p = op->poller;
      if (p == nullptr) {
        delete op;  // the poller went first and left it to the reactor
        return;
      }
      p->watch_->armed = false;
      if (owner == nullptr) return;  // the io_context is being destroyed
      if (ec) {
        // Cancelled by stop(); armed again if start() came meanwhile.
        p->wait();
        return;
      }
      p->dispatch();
    }

    Poller* poller;
  };

  Watch(asio_detail::reactor& r, Poller* p) : reactor(r), op(new Op(p)) {}

  asio_detail::reactor& reactor;
  asio_detail::reactor::per_descriptor_data data = nullptr;
  Op* op;  // the reactor's while armed, ours otherwise
  bool armed = false;
};

Poller::Poller(boost::asio::io_context& ctx) : ctx_(ctx) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  auto& reactor = boost::asio::use_service<asio_detail::reactor>(
      static_cast<boost::asio::execution_context&>(ctx));
  reactor.init_task();
  watch_ = std::make_unique<Watch>(reactor, this);
  if (const int err = reactor.register_descriptor(epfd_, watch_->data); err != 0) {
    reactor.cleanup_descriptor_data(watch_->data);
    delete watch_->op;
    ::close(epfd_);
    throw std::runtime_error(std::string("watching the epoll set: ") + std::strerror(err));
  }
}

Poller::~Poller() {
  Watch& w = *watch_;
  if (w.armed) {
    w.op->poller = nullptr;  // queued in the reactor or the scheduler, which frees it
  } else {
    delete w.op;
  }
  w.reactor.deregister_descriptor(epfd_, w.data, true);
  w.reactor.cleanup_descriptor_data(w.data);
  ::close(epfd_);
}

void Poller::start() {
  stopped_ = false;
  wait();
}

void Poller::stop() {
  stopped_ = true;
  watch_->reactor.cancel_ops(epfd_, watch_->data);
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

void Poller::wait() {
  Watch& w = *watch_;
  if (stopped_ || w.armed) return;
  w.armed = true;
  // Speculative: fetches at once what became ready during the pass, and otherwise waits in the
  // reactor's queue. The reactor, this and dispatch() run on one thread: an edge of the epoll
  // descriptor while the operation is out of the queue is seen at the next arming.
  w.reactor.start_op(asio_detail::reactor::read_op, epfd_, w.data, w.op, false, true);
}

int Poller::fetch() {
  const int n = ::epoll_wait(epfd_, events_.data(), kBatch, 0);
  if (n < 0) {
    if (errno != EINTR) spdlog::error("epoll_wait: {}", std::strerror(errno));
    return -1;
  }
  batch_size_ = n;
  return n;
}

void Poller::dispatch() {
  if (stopped_) {
    batch_size_ = 0;
    return;
  }
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
  run_deferred();
  pace();
  wait();
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
  deferred_.push_back(std::move(client));
  if (dispatching_ || deferred_posted_) return;
  deferred_posted_ = true;
  boost::asio::post(ctx_, [this] {
    deferred_posted_ = false;
    run_deferred();
  });
}

void Poller::run_deferred() {
  // What the clients defer while this runs waits for the next pass (defer() posts it).
  running_.swap(deferred_);
  for (auto& client : running_) client->on_deferred();
  running_.clear();
}

}  // namespace meshmq::net
