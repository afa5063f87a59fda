// One thread, one io_context, and the clients it owns. Only that thread touches its clients; the
// control thread talks to it by posting functions and reads its WorkerStats.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "tools/bench/options.h"
#include "tools/bench/stats.h"

namespace meshmq::bench {

class Client;

// What every client needs to know about the run; read-only once the workers start.
struct RunContext {
  Options options;
  Plan plan;
  boost::asio::ip::tcp::endpoint broker;
  std::vector<boost::asio::ip::address> sources;
  std::string host_header;
  std::vector<std::uint32_t> fanout;  // per client: matching subscribers (publishers only)
  std::uint32_t run_id = 0;           // in every payload, see PayloadHeader
};

class Worker {
 public:
  Worker(std::size_t index, const RunContext& ctx);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Before start(): clients are numbered in the order they are added.
  void add_client(std::size_t global_index, const ClientSpec& spec);
  void start();

  // From the control thread; each is carried out on the worker's thread.
  void start_clients(std::size_t n);  // the next n clients of this worker begin connecting
  void start_publishing(std::uint64_t t0_ns);
  void stop_publishing();
  void disconnect_all();
  // Stops the event loop and joins the thread; the clients can then be read from any thread.
  void stop();

  std::size_t client_count() const { return clients_.size(); }
  const std::vector<std::unique_ptr<Client>>& clients() const { return clients_; }
  WorkerStats& stats() { return *stats_; }
  boost::asio::io_context& io() { return io_; }
  std::span<std::uint8_t> scratch() { return scratch_; }
  const RunContext& context() const { return ctx_; }

 private:
  void arm_sweep();

  const RunContext& ctx_;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  boost::asio::steady_timer sweep_;
  std::unique_ptr<WorkerStats> stats_ = std::make_unique<WorkerStats>();
  std::vector<std::uint8_t> scratch_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::size_t next_start_ = 0;
  std::thread thread_;
};

}  // namespace meshmq::bench
