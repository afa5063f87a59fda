#include "broker/net/worker_pool.h"

#include <boost/asio/post.hpp>
#include <cassert>

namespace meshmq::net {

namespace {
thread_local std::size_t t_worker = SIZE_MAX;
constexpr std::size_t kScratchBytes = 64 * 1024;
}  // namespace

WorkerPool::WorkerPool(std::size_t threads) {
  for (std::size_t i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>();
    w->guard.emplace(w->ctx.get_executor());
    w->scratch.resize(kScratchBytes);
    workers_.push_back(std::move(w));
  }
}

WorkerPool::~WorkerPool() {
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

void WorkerPool::start() {
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    Worker& w = *workers_[i];
    w.thread = std::thread([&w, i] {
      t_worker = i;
      w.ctx.run();
    });
  }
}

void WorkerPool::release_work() {
  for (auto& w : workers_) w->guard.reset();
}

void WorkerPool::join() {
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace meshmq::net
