#include "broker/net/worker_pool.h"

#include <sys/prctl.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cassert>

namespace meshmq::net {

namespace {
thread_local std::size_t t_worker = SIZE_MAX;
constexpr std::size_t kScratchBytes = 64 * 1024;
}  // namespace

WorkerPool::WorkerPool(std::size_t threads, std::size_t blocking_threads)
    : blocking_(std::max<std::size_t>(1, blocking_threads)) {
  for (std::size_t i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>();
    w->guard.emplace(w->ctx.get_executor());
    w->tick.emplace(w->ctx);
    w->poller.emplace(w->ctx);
    w->scratch.resize(kScratchBytes);
    workers_.push_back(std::move(w));
  }
}

WorkerPool::~WorkerPool() {
  blocking_.stop();
  blocking_.join();
  release_work();
  for (auto& w : workers_) w->ctx.stop();
  join();
}

std::size_t WorkerPool::current() const {
  assert(t_worker != SIZE_MAX && "Executor::current() called off a worker thread");
  return t_worker;
}

void WorkerPool::post(std::size_t worker, std::function<void()> fn) {
  boost::asio::post(workers_[worker]->ctx, std::move(fn));
}

void WorkerPool::post_blocking(std::function<void()> fn) {
  boost::asio::post(blocking_, std::move(fn));
}

void WorkerPool::schedule_tick(Worker& w) {
  w.tick->expires_after(DeadlineWheel::kTick);
  w.tick->async_wait([this, &w](const boost::system::error_code& ec) {
    // While stopping, keep ticking until the last connection is gone: close lingers need it.
    if (ec) return;
    if (stopping_ && w.connections.empty()) {
      w.poller->stop();
      return;
    }
    w.wheel.advance(DeadlineWheel::Clock::now());
    schedule_tick(w);
  });
}

void WorkerPool::set_batch_window(
    std::chrono::microseconds window,
    const std::function<core::WorkerCounters*(std::size_t)>& counters) {
  paced_ = window.count() > 0;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->poller->set_pacing(window, counters(i));
  }
}

void WorkerPool::start() {
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    Worker& w = *workers_[i];
    schedule_tick(w);
    w.poller->start();
    w.thread = std::thread([&w, i, paced = paced_] {
      t_worker = i;
      // A pause of 200 us would otherwise end up to 50 us late (the default timer slack).
      if (paced) ::prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
      w.poller->run();
    });
  }
}

void WorkerPool::release_work() {
  // The tick stops itself at its next expiry; with the guards gone each loop then ends once its
  // connections have closed.
  stopping_ = true;
  for (auto& w : workers_) w->guard.reset();
}

void WorkerPool::join() {
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  // The workers are done: hashes still queued have no connection left to answer.
  blocking_.stop();
  blocking_.join();
}

}  // namespace meshmq::net
