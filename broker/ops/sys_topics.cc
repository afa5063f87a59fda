#include "broker/ops/sys_topics.h"

#include <ctime>

#include "broker/ops/prometheus.h"

#ifndef MESHMQ_VERSION
#define MESHMQ_VERSION "unknown"
#endif

namespace meshmq::ops {

namespace {

double total(const core::Snapshot& s, std::string_view name) {
  const core::Family* f = core::find(s, name);
  return f ? f->total() : 0;
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> sys_leaves(
    const core::Snapshot& s, std::chrono::seconds uptime,
    std::chrono::system_clock::time_point now) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](std::string leaf, double v) {
    out.emplace_back(std::move(leaf), format_value(v));
  };
  out.emplace_back("version", std::string("meshmq ") + MESHMQ_VERSION);
  out.emplace_back("uptime", std::to_string(uptime.count()));
  out.emplace_back("datetime", iso8601(now));
  add("stats/connections/count", total(s, "meshmq_connections"));
  add("stats/sessions/count", total(s, "meshmq_sessions"));
  add("stats/subscriptions/count", total(s, "meshmq_subscriptions"));
  add("stats/retained/count", total(s, "meshmq_retained_messages"));
  add("stats/routes/count", total(s, "meshmq_routes"));
  add("metrics/messages/received", total(s, "meshmq_messages_received_total"));
  add("metrics/messages/sent", total(s, "meshmq_messages_sent_total"));
  add("metrics/messages/dropped", total(s, "meshmq_messages_dropped_total"));
  for (const char* dir : {"received", "sent"}) {
    const std::string name = std::string("meshmq_packets_") + dir + "_total";
    add(std::string("metrics/packets/") + dir, total(s, name));
    if (const core::Family* f = core::find(s, name)) {
      for (const core::Sample& sample : f->samples) {
        for (const auto& [k, v] : sample.labels) {
          if (k == "type") add(std::string("metrics/packets/") + dir + "/" + v, sample.value);
        }
      }
    }
  }
  add("metrics/bytes/received", total(s, "meshmq_network_received_bytes_total"));
  add("metrics/bytes/sent", total(s, "meshmq_network_sent_bytes_total"));
  return out;
}

SysPublisher::SysPublisher(boost::asio::io_context& worker, core::Broker& broker,
                           const core::MetricsRegistry& metrics, std::string node,
                           std::chrono::seconds interval)
    : timer_(worker),
      broker_(broker),
      metrics_(metrics),
      node_(std::move(node)),
      interval_(interval) {}

void SysPublisher::start() {
  schedule(std::chrono::seconds(0));  // on the worker's thread once it runs
}

void SysPublisher::schedule(std::chrono::seconds delay) {
  timer_.expires_after(delay);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    publish_all();
    schedule(interval_);
  });
}

void SysPublisher::stop() {
  stopped_ = true;
  timer_.cancel();
}

void SysPublisher::publish_all() {
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  const std::string node_prefix = "$SYS/brokers/" + node_ + "/";
  for (auto& [leaf, value] :
       sys_leaves(metrics_.collect(), uptime, std::chrono::system_clock::now())) {
    for (bool local : {false, true}) {
      const std::string topic = (local ? std::string("$SYS/broker/") : node_prefix) + leaf;
      // Still only ours: setting the flag before anyone else sees the message is safe.
      auto m = std::const_pointer_cast<core::Message>(
          core::make_message(topic, value, core::QoS::kAtMostOnce, true));
      m->node_local = local;
      broker_.publish(std::move(m));
    }
  }
}

}  // namespace meshmq::ops
