// The metrics registry: one place that knows every metric's name, help text, type and labels, and
// reads the current values on demand. $SYS topics and the Prometheus endpoint both render a
// Snapshot from here, so they never disagree.
//
// Values are not stored here. The publish path writes per-worker cells (counters.h) without locks;
// a collector reads and sums them when a snapshot is taken. Components outside the core (storage,
// cluster, process statistics) add their own collectors, e.g.
//
//   registry.add_collector([&](Snapshot& s) {
//     s.push_back(Family::gauge("meshmq_cluster_peers", "Cluster peers by state",
//                               {{{{"state", "up"}}, up}, {{{"state", "down"}}, down}}));
//   });
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshmq::core {

class Broker;

enum class MetricType { kCounter, kGauge, kHistogram };

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
  Labels labels;
  double value = 0;
};

struct Histogram {
  std::vector<double> bounds;             // upper bounds, ascending, without +Inf
  std::vector<std::uint64_t> cumulative;  // bounds.size() + 1 entries; the last is the count
  double sum = 0;
};

struct Family {
  std::string name;  // Prometheus name: counters end in _total, base units (seconds, bytes)
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<Sample> samples;  // counter and gauge
  Histogram histogram;          // histogram (unlabelled)

  static Family counter(std::string name, std::string help, std::vector<Sample> samples);
  static Family gauge(std::string name, std::string help, std::vector<Sample> samples);
  static Family gauge(std::string name, std::string help, double value);

  // Sum over all samples (all label values).
  double total() const;
  // The sample with label key=value, or 0.
  double value(std::string_view key, std::string_view label_value) const;
};

using Snapshot = std::vector<Family>;

const Family* find(const Snapshot& snapshot, std::string_view name);

class MetricsRegistry {
 public:
  using Collector = std::function<void(Snapshot&)>;

  // Collectors run on the thread taking the snapshot (the HTTP thread, the $SYS worker): they read
  // atomics or take their component's own lock, never touch worker-owned state.
  void add_collector(Collector collector);
  Snapshot collect() const;

 private:
  mutable std::mutex mu_;
  std::vector<Collector> collectors_;
};

// The core's metrics: the WorkerCounters table summed over workers, plus sessions, subscriptions,
// routes and retained messages.
void add_broker_metrics(MetricsRegistry& registry, Broker& broker);

}  // namespace meshmq::core
