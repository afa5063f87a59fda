#include "tools/bench/runner.h"

#include <sys/resource.h>

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

#include "tools/bench/client.h"
#include "tools/bench/payload.h"
#include "tools/bench/report.h"
#include "tools/bench/worker.h"

namespace meshmq::bench {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr auto kControlTick = std::chrono::milliseconds(5);
constexpr std::uint64_t kProgressPeriodNs = 1'000'000'000;

// The machines this runs on cap open files per process well below what a connection test wants by
// default (soft 1024), so take everything the hard limit allows.
std::uint64_t raise_nofile() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

tcp::endpoint resolve(const std::string& host, std::uint16_t port) {
  asio::io_context io;
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(host, std::to_string(port));
  for (const auto& r : results) {
    if (r.endpoint().address().is_v4()) return r.endpoint();
  }
  if (results.empty()) throw std::runtime_error("cannot resolve " + host);
  return results.begin()->endpoint();
}

double seconds(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

LatencySummary summarize(const Histogram& h) {
  LatencySummary s;
  s.count = h.count();
  s.p50_us = static_cast<double>(h.percentile(50)) / 1e3;
  s.p99_us = static_cast<double>(h.percentile(99)) / 1e3;
  s.p999_us = static_cast<double>(h.percentile(99.9)) / 1e3;
  s.max_us = static_cast<double>(h.max()) / 1e3;
  s.mean_us = h.mean() / 1e3;
  return s;
}

std::string format_us(double us) {
  char buf[32];
  if (us >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fs", us / 1e6);
  } else if (us >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fms", us / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0fus", us);
  }
  return buf;
}

// Sums of every worker's counters at one moment.
struct Totals {
  std::uint64_t started = 0, ready = 0, connect_errors = 0, subscribe_errors = 0, lost = 0,
                closed = 0, publishers_started = 0, publishers_done = 0, start_acks = 0;
  std::uint64_t sent = 0, sent_qos = 0, acked = 0, expected = 0;
  std::uint64_t received = 0, foreign = 0, duplicated = 0, late = 0, gaps = 0;
  std::uint64_t unique() const { return received - duplicated; }
  std::uint64_t settled() const { return ready + connect_errors; }
};

class Control {
 public:
  explicit Control(RunContext& ctx) : ctx_(ctx), plan_(ctx.plan) {}

  int run();

 private:
  Totals totals() const;
  void merge_latency(Histogram& into) const;
  void write_latency_log(const std::string& path) const;
  void progress(const char* phase, std::uint64_t now);
  void connect_phase();
  void measure_phase();
  void drain_phase();
  void disconnect_phase();
  Summary summarize_run();

  RunContext& ctx_;
  const Plan& plan_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::uint64_t run_start_ns_ = 0;
  std::uint64_t connected_ns_ = 0;
  std::uint64_t t0_ns_ = 0;
  std::uint64_t stop_ns_ = 0;
  Totals at_stop_;
  std::uint64_t last_progress_ns_ = 0;
  Totals last_progress_;
  std::unique_ptr<Histogram> scratch_histogram_ = std::make_unique<Histogram>();
};

Totals Control::totals() const {
  Totals t;
  for (const auto& w : workers_) {
    WorkerStats& s = w->stats();
    t.started += s.started.get();
    t.ready += s.ready.get();
    t.connect_errors += s.connect_errors.get();
    t.subscribe_errors += s.subscribe_errors.get();
    t.lost += s.connections_lost.get();
    t.closed += s.closed.get();
    t.publishers_started += s.publishers_started.get();
    t.publishers_done += s.publishers_done.get();
    t.start_acks += s.start_acks.get();
    t.sent += s.sent.get();
    t.sent_qos += s.sent_qos.get();
    t.acked += s.acked.get();
    t.expected += s.expected.get();
    t.received += s.received.get();
    t.foreign += s.foreign.get();
    t.duplicated += s.duplicated.get();
    t.late += s.late.get();
    t.gaps += s.gaps.get();
  }
  return t;
}

void Control::merge_latency(Histogram& into) const {
  into.reset();
  for (const auto& w : workers_) into.add(w->stats().latency);
}

// After the workers are stopped. The samples go out as they are in memory (x86-64 and aarch64 are
// little-endian, as the format says), one worker after the other: not sorted by time.
void Control::write_latency_log(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& w : workers_) {
    const auto& log = w->stats().latency_log;
    out.write(reinterpret_cast<const char*>(log.data()),
              static_cast<std::streamsize>(log.size() * sizeof(WorkerStats::Sample)));
  }
  if (!out) std::fprintf(stderr, "meshmq-bench: could not write --latency-log %s\n", path.c_str());
}

void Control::progress(const char* phase, std::uint64_t now) {
  if (now - last_progress_ns_ < kProgressPeriodNs) return;
  const Totals t = totals();
  const double dt = seconds(now - last_progress_ns_);
  if (!ctx_.options.quiet) {
    merge_latency(*scratch_histogram_);
    const Histogram& h = *scratch_histogram_;
    std::fprintf(stderr,
                 "%6.1fs %-7s conn %llu/%zu err %llu  sent %.0f/s  recv %.0f/s  p50 %s  p99 %s"
                 "  gaps %llu  dup %llu\n",
                 seconds(now - run_start_ns_), phase,
                 static_cast<unsigned long long>(t.ready - t.lost), plan_.clients.size(),
                 static_cast<unsigned long long>(t.connect_errors + t.lost),
                 static_cast<double>(t.sent - last_progress_.sent) / dt,
                 static_cast<double>(t.received - last_progress_.received) / dt,
                 format_us(static_cast<double>(h.percentile(50)) / 1e3).c_str(),
                 format_us(static_cast<double>(h.percentile(99)) / 1e3).c_str(),
                 static_cast<unsigned long long>(t.gaps > t.late ? t.gaps - t.late : 0),
                 static_cast<unsigned long long>(t.duplicated));
  }
  last_progress_ns_ = now;
  last_progress_ = t;
}

void Control::connect_phase() {
  const std::size_t n = plan_.clients.size();
  const double rate = ctx_.options.conn_rate;
  const std::uint64_t max_pending = std::max<std::uint32_t>(1, ctx_.options.max_pending);
  std::size_t issued = 0;
  std::vector<std::size_t> batch(workers_.size());
  for (;;) {
    const std::uint64_t now = now_ns();
    const Totals t = totals();
    if (issued == n && t.settled() >= n) break;
    std::size_t allowed = n;
    if (rate > 0) {
      allowed = std::min<std::size_t>(
          n, 1 + static_cast<std::size_t>(seconds(now - run_start_ns_) * rate));
    }
    const std::uint64_t pending = issued - std::min<std::uint64_t>(issued, t.settled());
    std::size_t k = allowed > issued ? allowed - issued : 0;
    k = std::min<std::size_t>(k, max_pending > pending ? max_pending - pending : 0);
    if (k > 0) {
      std::fill(batch.begin(), batch.end(), 0);
      for (std::size_t g = issued; g < issued + k; ++g) ++batch[g % workers_.size()];
      for (std::size_t w = 0; w < workers_.size(); ++w) {
        if (batch[w] != 0) workers_[w]->start_clients(batch[w]);
      }
      issued += k;
    }
    progress("connect", now);
    std::this_thread::sleep_for(kControlTick);
  }
  connected_ns_ = now_ns();
  const Totals t = totals();
  // On its own line so that a script can wait for it (e.g. to measure the broker's memory with
  // every connection up).
  std::fprintf(stderr, "ready: %llu/%zu connected, %llu failed, in %.2fs\n",
               static_cast<unsigned long long>(t.ready), n,
               static_cast<unsigned long long>(t.connect_errors),
               seconds(connected_ns_ - run_start_ns_));
  std::fflush(stderr);
}

void Control::measure_phase() {
  t0_ns_ = now_ns();
  if (plan_.publishers > 0) {
    for (auto& w : workers_) w->start_publishing(t0_ns_);
  }
  const std::uint64_t duration_ns = static_cast<std::uint64_t>(plan_.duration_s * 1e9);
  for (;;) {
    std::this_thread::sleep_for(kControlTick);
    const std::uint64_t now = now_ns();
    if (duration_ns > 0 && now - t0_ns_ >= duration_ns) break;
    const Totals t = totals();
    if (plan_.count > 0) {
      // Every publisher that started has sent its -n messages (or died trying).
      if (plan_.publishers > 0 && t.start_acks == workers_.size() &&
          t.publishers_done >= t.publishers_started) {
        break;
      }
      if (plan_.publishers == 0 && plan_.subscribers > 0 &&
          t.received >= plan_.count * plan_.subscribers) {
        break;
      }
    }
    if (t.ready > 0 && t.lost == t.ready) break;  // every connection is gone
    progress("run", now);
  }
  stop_ns_ = now_ns();
  for (auto& w : workers_) w->stop_publishing();
  at_stop_ = totals();
}

void Control::drain_phase() {
  if (plan_.publishers == 0) return;
  // Wait for what is still in flight: acknowledgements of QoS 1/2 publishes, and deliveries to
  // our subscribers. QoS 0 deliveries the broker dropped never come, so a quiet second ends the
  // wait too. At QoS 1/2 it does not: a broker acknowledges a publish before it reaches a
  // subscriber on another of its threads, and a starved thread (a loaded machine, a sanitizer
  // build) can hold that delivery for over a second; only the drain deadline ends that wait.
  const bool quiet_ends_wait = plan_.qos == 0;
  const std::uint64_t deadline = now_ns() + static_cast<std::uint64_t>(ctx_.options.drain_s * 1e9);
  std::uint64_t last_received = 0;
  std::uint64_t last_change = now_ns();
  for (;;) {
    const std::uint64_t now = now_ns();
    const Totals t = totals();
    const bool acked = t.acked >= t.sent_qos;
    const bool delivered = !plan_.expect_from_publishers || t.unique() >= t.expected;
    if ((acked && delivered) || now >= deadline) break;
    if (t.received != last_received) {
      last_received = t.received;
      last_change = now;
    } else if (acked && quiet_ends_wait && now - last_change > 1'000'000'000) {
      break;
    }
    // A lost publisher's unacknowledged messages are never acknowledged.
    if (t.lost > 0 && now - last_change > 1'000'000'000) break;
    progress("drain", now);
    std::this_thread::sleep_for(kControlTick);
  }
}

void Control::disconnect_phase() {
  for (auto& w : workers_) w->disconnect_all();
  const std::uint64_t deadline = now_ns() + 3'000'000'000ULL;
  while (now_ns() < deadline) {
    const Totals t = totals();
    if (t.closed >= t.started) break;
    std::this_thread::sleep_for(kControlTick);
  }
  for (auto& w : workers_) w->stop();
}

Summary Control::summarize_run() {
  const Totals t = totals();
  Summary s;
  s.transport = ctx_.options.websocket ? "websocket" : "tcp";
  s.duration_s = seconds(stop_ns_ - t0_ns_);
  s.connections_target = plan_.clients.size();
  s.connections_ready = t.ready;
  s.connect_errors = t.connect_errors;
  s.subscribe_errors = t.subscribe_errors;
  s.connections_lost = t.lost;
  s.connect_phase_s = seconds(connected_ns_ - run_start_ns_);
  Histogram& h = *scratch_histogram_;
  h.reset();
  for (const auto& w : workers_) h.add(w->stats().connect_time);
  s.connect_time = summarize(h);
  merge_latency(h);
  s.latency = summarize(h);
  s.sent = t.sent;
  s.sent_qos = t.sent_qos;
  s.acked = t.acked;
  s.received = t.received;
  s.sent_rate = s.duration_s > 0 ? static_cast<double>(at_stop_.sent) / s.duration_s : 0;
  s.received_rate = s.duration_s > 0 ? static_cast<double>(at_stop_.received) / s.duration_s : 0;
  s.duplicated = t.duplicated;
  s.out_of_order = t.late;
  s.foreign = t.foreign;

  if (plan_.expect_from_publishers) {
    // Only subscribers that really subscribed can be expected to receive: recount the fan-out
    // with them, now that the workers are stopped and their clients can be read.
    std::vector<std::string> topics, filters;
    std::vector<std::uint64_t> sent;
    for (const auto& w : workers_) {
      for (const auto& c : w->clients()) {
        if (c->spec().role == Role::kPublisher) {
          topics.push_back(c->spec().topic);
          sent.push_back(c->sent());
        } else if (c->spec().role == Role::kSubscriber && c->became_ready()) {
          filters.push_back(c->spec().topic);
        }
      }
    }
    const std::vector<std::uint32_t> fan = fanout(topics, filters);
    for (std::size_t i = 0; i < topics.size(); ++i) s.expected += sent[i] * fan[i];
    s.lost = s.expected > t.unique() ? s.expected - t.unique() : 0;
    s.lost_basis = "expected";
  } else if (plan_.subscribers > 0) {
    s.lost = t.gaps > t.late ? t.gaps - t.late : 0;
    s.lost_basis = "gaps";
  } else {
    s.lost_basis = "none";
  }
  return s;
}

int Control::run() {
  const std::size_t threads = std::max(1u, ctx_.options.threads);
  for (std::size_t i = 0; i < threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, ctx_));
  }
  for (std::size_t g = 0; g < plan_.clients.size(); ++g) {
    workers_[g % threads]->add_client(g, plan_.clients[g]);
  }
  run_start_ns_ = now_ns();
  last_progress_ns_ = run_start_ns_;
  for (auto& w : workers_) w->start();

  connect_phase();
  measure_phase();
  drain_phase();
  disconnect_phase();

  const Summary s = summarize_run();
  if (!ctx_.options.latency_log.empty()) write_latency_log(ctx_.options.latency_log);
  const std::string json = to_json(ctx_.options, plan_, s);
  if (ctx_.options.json_file.empty()) {
    std::fwrite(json.data(), 1, json.size(), stdout);
    std::fflush(stdout);
  } else {
    std::ofstream(ctx_.options.json_file) << json;
  }
  if (!ctx_.options.quiet) {
    std::fprintf(stderr,
                 "%s: %llu connected, %llu errors, sent %llu (%.0f/s), received %llu (%.0f/s), "
                 "latency p50 %s p99 %s max %s, lost %llu, dup %llu, ooo %llu\n",
                 plan_.name.c_str(), static_cast<unsigned long long>(s.connections_ready),
                 static_cast<unsigned long long>(s.connect_errors + s.connections_lost),
                 static_cast<unsigned long long>(s.sent), s.sent_rate,
                 static_cast<unsigned long long>(s.received), s.received_rate,
                 format_us(s.latency.p50_us).c_str(), format_us(s.latency.p99_us).c_str(),
                 format_us(s.latency.max_us).c_str(), static_cast<unsigned long long>(s.lost),
                 static_cast<unsigned long long>(s.duplicated),
                 static_cast<unsigned long long>(s.out_of_order));
  }
  return s.connect_errors + s.connections_lost > 0 ? 1 : 0;
}

}  // namespace

int run(const Options& options) {
  auto ctx = std::make_unique<RunContext>();
  ctx->options = options;
  ctx->plan = make_plan(options);
  ctx->run_id = std::random_device{}();
  const std::uint64_t nofile = raise_nofile();
  // A few descriptors for stdio, epoll and the resolver, and one per connection.
  if (nofile != 0 && ctx->plan.clients.size() + 32 > nofile) {
    throw std::invalid_argument("RLIMIT_NOFILE allows " + std::to_string(nofile) + " open files; " +
                                std::to_string(ctx->plan.clients.size()) +
                                " connections need more: run several processes, each with a "
                                "share (--start-index) and its own --ifaddr");
  }
  ctx->broker = resolve(options.host, options.port);
  ctx->host_header = options.host + ":" + std::to_string(options.port);
  for (const auto& a : options.ifaddrs) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(a, ec);
    if (ec) throw std::invalid_argument("--ifaddr: not an IP address: " + a);
    ctx->sources.push_back(address);
  }
  std::vector<std::string> topics, filters;
  for (const auto& c : ctx->plan.clients) {
    if (c.role == Role::kPublisher) topics.push_back(c.topic);
    if (c.role == Role::kSubscriber) filters.push_back(c.topic);
  }
  const std::vector<std::uint32_t> fan = fanout(topics, filters);
  ctx->fanout.assign(ctx->plan.clients.size(), 0);
  for (std::size_t g = 0, p = 0; g < ctx->plan.clients.size(); ++g) {
    if (ctx->plan.clients[g].role == Role::kPublisher) ctx->fanout[g] = fan[p++];
  }
  Control control(*ctx);
  return control.run();
}

}  // namespace meshmq::bench
