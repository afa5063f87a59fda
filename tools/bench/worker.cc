#include "tools/bench/worker.h"

#include <atomic>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <string>

#include "tools/bench/client.h"
#include "tools/bench/payload.h"

namespace meshmq::bench {
namespace asio = boost::asio;

namespace {
constexpr std::size_t kScratchBytes = 64 * 1024;
constexpr auto kSweepPeriod = std::chrono::milliseconds(250);
constexpr int kMaxLoggedErrors = 10;
std::atomic<int> logged_errors{0};
}  // namespace

void log_client_error(std::string_view client_id, std::string_view what) {
  const int n = logged_errors.fetch_add(1, std::memory_order_relaxed);
  if (n < kMaxLoggedErrors) {
    std::fprintf(stderr, "\rclient %.*s: %.*s\n", static_cast<int>(client_id.size()),
                 client_id.data(), static_cast<int>(what.size()), what.data());
  } else if (n == kMaxLoggedErrors) {
    std::fprintf(stderr, "\rfurther client errors are only counted\n");
  }
}

Worker::Worker(std::size_t /*index*/, const RunContext& ctx)
    : ctx_(ctx), guard_(io_.get_executor()), sweep_(io_), scratch_(kScratchBytes) {}

Worker::~Worker() {
  stop();
  // Clients (and their sockets) go before the io_context they were created on.
  clients_.clear();
}

void Worker::add_client(std::size_t global_index, const ClientSpec& spec) {
  clients_.push_back(std::make_unique<Client>(*this, global_index, spec));
}

void Worker::start() {
  arm_sweep();
  thread_ = std::thread([this] { io_.run(); });
}

void Worker::arm_sweep() {
  sweep_.expires_after(kSweepPeriod);
  sweep_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    const std::uint64_t now = now_ns();
    for (std::size_t i = 0; i < next_start_; ++i) clients_[i]->tick(now);
    arm_sweep();
  });
}

void Worker::start_clients(std::size_t n) {
  asio::post(io_, [this, n] {
    for (std::size_t i = 0; i < n && next_start_ < clients_.size(); ++i) {
      clients_[next_start_++]->start();
    }
  });
}

void Worker::start_publishing(std::uint64_t t0_ns) {
  asio::post(io_, [this, t0_ns] {
    for (auto& c : clients_) c->start_publishing(t0_ns);
    stats_->start_acks.add();
  });
}

void Worker::stop_publishing() {
  asio::post(io_, [this] {
    for (auto& c : clients_) c->stop_publishing();
  });
}

void Worker::disconnect_all() {
  asio::post(io_, [this] {
    sweep_.cancel();
    for (std::size_t i = 0; i < next_start_; ++i) clients_[i]->disconnect();
  });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  guard_.reset();
  io_.stop();
  thread_.join();
}

}  // namespace meshmq::bench
