// One io_context per worker thread: a connection and its session live on exactly one of them, so
// the publish path takes no lock shared between threads (see README "Architecture").
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/intrusive/list.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "broker/core/executor.h"
#include "broker/net/deadline_wheel.h"
#include "broker/net/poller.h"

namespace meshmq::net {

// The link of a connection in its worker's list: two pointers in the connection rather than a
// hash-set node per connection; it unlinks itself when the connection is destroyed.
class PooledConnection : public boost::intrusive::list_base_hook<
                             boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {};
using ConnectionList =
    boost::intrusive::list<PooledConnection, boost::intrusive::constant_time_size<false>>;

class WorkerPool final : public core::Executor {
 public:
  // `blocking_threads` run post_blocking() work (auth.threads).
  WorkerPool(std::size_t threads, std::size_t blocking_threads = 1);
  ~WorkerPool() override;

  std::size_t size() const override { return workers_.size(); }
  std::size_t current() const override;
  void post(std::size_t worker, std::function<void()> fn) override;
  void post_blocking(std::function<void()> fn) override;

  boost::asio::io_context& context(std::size_t worker) { return workers_[worker]->ctx; }
  // A read buffer shared by all connections of a worker: a connection owns no buffer while idle.
  std::span<std::uint8_t> scratch(std::size_t worker) { return workers_[worker]->scratch; }
  // Live connections per worker, for shutdown. Touched only on that worker.
  ConnectionList& connections(std::size_t worker) { return workers_[worker]->connections; }
  // The epoll set of a worker's plain TCP connections. Touched only on that worker.
  Poller& poller(std::size_t worker) { return *workers_[worker]->poller; }
  // Connection deadlines of a worker. Touched only on that worker.
  DeadlineWheel& wheel(std::size_t worker) { return workers_[worker]->wheel; }

  // Pauses of busy workers (pacer.h), counting in `counters(worker)`. Before start().
  void set_batch_window(std::chrono::microseconds window,
                        const std::function<core::WorkerCounters*(std::size_t)>& counters);

  void start();         // spawns one thread per worker
  void release_work();  // lets each loop return once it has nothing left to do
  void join();

 private:
  struct Worker {
    DeadlineWheel wheel;  // declared first: outlives the handlers the io_context destroys
    boost::asio::io_context ctx{1};
    std::optional<Poller> poller;  // after ctx: destroyed before it
    std::optional<boost::asio::steady_timer> tick;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
    std::vector<std::uint8_t> scratch;
    ConnectionList connections;
    std::thread thread;
  };
  void schedule_tick(Worker& w);

  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stopping_{false};
  bool paced_ = false;
  // Declared last, so destroyed first: its work posts to the workers' io_contexts.
  boost::asio::thread_pool blocking_;
};

}  // namespace meshmq::net
