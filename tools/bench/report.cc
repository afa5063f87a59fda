#include "tools/bench/report.h"

#include <cmath>
#include <cstdio>

namespace meshmq::bench {
namespace {

// A JSON writer just big enough for the summary: objects, strings, numbers.
class Json {
 public:
  Json& open(const char* key = nullptr) {
    this->key(key);
    out_ += '{';
    first_ = true;
    return *this;
  }
  Json& close() {
    out_ += '}';
    first_ = false;
    return *this;
  }
  Json& str(const char* key, const std::string& value) {
    this->key(key);
    out_ += '"';
    for (const char c : value) {
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out_ += buf;
      } else {
        out_ += c;
      }
    }
    out_ += '"';
    return *this;
  }
  Json& num(const char* key, std::uint64_t value) {
    this->key(key);
    out_ += std::to_string(value);
    return *this;
  }
  Json& num(const char* key, double value) {
    this->key(key);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", std::isfinite(value) ? value : 0.0);
    out_ += buf;
    return *this;
  }
  Json& boolean(const char* key, bool value) {
    this->key(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  Json& null(const char* key) {
    this->key(key);
    out_ += "null";
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  void key(const char* key) {
    if (!first_) out_ += ',';
    first_ = false;
    if (key == nullptr) return;
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  std::string out_;
  bool first_ = true;
};

void latency(Json& j, const char* key, const LatencySummary& l) {
  j.open(key)
      .num("count", l.count)
      .num("p50", l.p50_us)
      .num("p99", l.p99_us)
      .num("p99_9", l.p999_us)
      .num("max", l.max_us)
      .num("mean", l.mean_us)
      .close();
}

}  // namespace

std::string to_json(const Options& o, const Plan& plan, const Summary& s) {
  Json j;
  j.open().str("scenario", plan.name);
  j.open("parameters")
      .str("host", o.host)
      .num("port", std::uint64_t{o.port})
      .str("transport", s.transport)
      .num("clients", std::uint64_t{plan.clients.size()})
      .num("publishers", std::uint64_t{plan.publishers})
      .num("subscribers", std::uint64_t{plan.subscribers})
      .num("qos", std::uint64_t(plan.qos))
      .num("payload_size", std::uint64_t{plan.payload_size})
      .num("interval_ms", static_cast<double>(plan.interval_ns) / 1e6)
      .str("topic", plan.topic_pattern)
      .str("filter", plan.filter_pattern)
      .num("duration_s", plan.duration_s)
      .num("count", plan.count)
      .num("inflight", std::uint64_t{o.inflight})
      .num("keepalive", std::uint64_t{o.keepalive})
      .boolean("clean_session", o.clean_session)
      .num("threads", std::uint64_t{o.threads})
      .num("conn_rate", o.conn_rate)
      .num("source_addresses", std::uint64_t{o.ifaddrs.size()})
      .close();
  j.num("duration_s", s.duration_s);
  j.open("connections")
      .num("target", s.connections_target)
      .num("connected", s.connections_ready)
      .num("connect_errors", s.connect_errors)
      .num("subscribe_errors", s.subscribe_errors)
      .num("lost", s.connections_lost)
      .num("connect_phase_s", s.connect_phase_s);
  latency(j, "connect_time_us", s.connect_time);
  j.close();
  j.num("sent", s.sent).num("acked", s.acked).num("received", s.received);
  if (plan.expect_from_publishers) {
    j.num("expected", s.expected);
  } else {
    j.null("expected");
  }
  j.open("rates").num("sent_per_s", s.sent_rate).num("received_per_s", s.received_rate).close();
  latency(j, "latency_us", s.latency);
  j.num("lost", s.lost)
      .str("lost_basis", s.lost_basis)
      .num("duplicated", s.duplicated)
      .num("out_of_order", s.out_of_order)
      .num("foreign", s.foreign)
      .num("connect_errors", s.connect_errors);
  j.close();
  return j.take() + "\n";
}

}  // namespace meshmq::bench
