// The modes and ready-made scenarios, as lists of clients. Defaults live here, in one place, so
// the README's table can be checked against it.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <unordered_map>

#include "broker/codec/topic_rules.h"
#include "tools/bench/options.h"
#include "tools/bench/payload.h"

namespace meshmq::bench {
namespace {

struct Defaults {
  std::uint32_t clients;
  std::string topic;
  double interval_ms;  // per publisher
  std::size_t payload_size = 64;
};

std::string wildcard_of(const std::string& pattern) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.compare(i, 2, "%i") == 0) {
      out += '+';
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

void check_topic(const std::string& topic, bool filter) {
  const bool ok = filter ? codec::valid_topic_filter(topic) : codec::valid_topic_name(topic);
  if (!ok) {
    throw std::invalid_argument("invalid topic " + std::string(filter ? "filter" : "name") + ": '" +
                                topic + "'");
  }
}

}  // namespace

std::string expand(const std::string& pattern, std::uint32_t index) {
  std::string out;
  out.reserve(pattern.size() + 8);
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'i') {
      out += std::to_string(index);
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

std::vector<std::uint32_t> fanout(const std::vector<std::string>& publish_topics,
                                  const std::vector<std::string>& filters) {
  std::unordered_map<std::string, std::uint32_t> exact;
  std::unordered_map<std::string, std::uint32_t> wildcards;
  for (const auto& f : filters) ++(codec::has_wildcard(f) ? wildcards : exact)[f];
  std::vector<std::uint32_t> out;
  out.reserve(publish_topics.size());
  for (const auto& topic : publish_topics) {
    std::uint32_t n = 0;
    if (auto it = exact.find(topic); it != exact.end()) n += it->second;
    for (const auto& [filter, count] : wildcards) {
      if (codec::topic_matches(filter, topic)) n += count;
    }
    out.push_back(n);
  }
  return out;
}

Plan make_plan(const Options& o) {
  Plan plan;
  Defaults d{};
  switch (o.mode) {
    case Mode::kConn:
      plan.name = "conn";
      d = {100, "", 0};
      break;
    case Mode::kPub:
      plan.name = "pub";
      d = {10, "bench/%i", 1000};
      break;
    case Mode::kSub:
      plan.name = "sub";
      d = {10, "bench/#", 0};
      break;
    case Mode::kScenario:
      plan.name = o.scenario;
      if (o.scenario == "fanin") {
        d = {16, "bench/fanin/%i", 0};
      } else if (o.scenario == "fanout") {
        d = {1000, "bench/fanout", 10};
      } else if (o.scenario == "pairs") {
        d = {100, "dev/%i/temp", 10};
      } else if (o.scenario == "latency") {
        d = {10, "bench/latency/%i", 0};
      } else if (o.scenario == "idle") {
        d = {1000, "", 0};
      } else {
        throw std::invalid_argument("unknown scenario '" + o.scenario +
                                    "' (fanin, fanout, pairs, latency, idle)");
      }
      break;
  }

  const std::uint32_t n = o.clients.value_or(d.clients);
  plan.qos = o.qos.value_or(0);
  if (plan.qos < 0 || plan.qos > 2) throw std::invalid_argument("QoS must be 0, 1 or 2");
  plan.payload_size = o.payload_size.value_or(d.payload_size);
  if (plan.payload_size < kPayloadHeaderSize) {
    std::fprintf(stderr, "payload size raised to %zu bytes: the header needs them\n",
                 kPayloadHeaderSize);
    plan.payload_size = kPayloadHeaderSize;
  }
  plan.duration_s = o.duration_s.value_or(10);
  plan.count = o.count;
  if (plan.duration_s <= 0 && plan.count == 0) {
    throw std::invalid_argument("give a duration (-d) or a message count (-n)");
  }
  const std::string topic = o.topic.value_or(d.topic);
  const std::string prefix =
      o.client_id_prefix.empty() ? "bench-" + std::to_string(::getpid()) + "-" : o.client_id_prefix;

  auto add = [&](Role role, const std::string& pattern, std::uint32_t index) {
    ClientSpec c;
    c.role = role;
    const char tag = role == Role::kPublisher ? 'p' : role == Role::kSubscriber ? 's' : 'c';
    c.client_id = prefix + tag + std::to_string(index);
    c.topic = expand(pattern, index);
    c.publisher_id = index;
    if (!c.topic.empty()) check_topic(c.topic, role == Role::kSubscriber);
    plan.clients.push_back(std::move(c));
  };
  const std::uint32_t base = o.start_index;
  std::uint32_t pubs = 0;
  std::string filter;
  if (o.mode == Mode::kConn || o.scenario == "idle") {
    for (std::uint32_t i = 0; i < n; ++i) add(Role::kIdle, "", base + i);
  } else if (o.mode == Mode::kPub) {
    pubs = n;
  } else if (o.mode == Mode::kSub) {
    filter = topic;
    for (std::uint32_t i = 0; i < n; ++i) add(Role::kSubscriber, topic, base + i);
  } else if (o.scenario == "fanin") {
    filter = wildcard_of(topic);
    add(Role::kSubscriber, filter, base);
    pubs = n;
  } else if (o.scenario == "fanout") {
    filter = topic;
    for (std::uint32_t i = 0; i < n; ++i) add(Role::kSubscriber, topic, base + i);
    pubs = 1;
  } else if (o.scenario == "pairs" || o.scenario == "latency") {
    filter = topic;
    for (std::uint32_t i = 0; i < n; ++i) add(Role::kSubscriber, topic, base + i);
    if (o.scenario == "pairs") {
      filter += " + " + wildcard_of(topic);
      add(Role::kSubscriber, wildcard_of(topic), base + n);
    }
    pubs = n;
  }
  for (std::uint32_t i = 0; i < pubs; ++i) add(Role::kPublisher, topic, base + i);
  plan.publishers = pubs;
  for (const auto& c : plan.clients) plan.subscribers += c.role == Role::kSubscriber;
  plan.topic_pattern = pubs > 0 ? topic : "";
  plan.filter_pattern = filter;
  plan.expect_from_publishers = o.mode == Mode::kScenario && pubs > 0;

  // Pacing: --total-rate beats --rate beats -I beats the default; "latency" defaults to 5,000
  // msg/s in total, well below what either broker saturates at.
  std::optional<double> total = o.total_rate;
  if (!total && o.scenario == "latency" && !o.rate && !o.interval_ms) total = 5000;
  double interval_ms = d.interval_ms;
  if (total) {
    if (*total <= 0) throw std::invalid_argument("--total-rate must be positive");
    interval_ms = pubs > 0 ? 1000.0 * pubs / *total : 0;
  } else if (o.rate) {
    interval_ms = *o.rate > 0 ? 1000.0 / *o.rate : 0;
  } else if (o.interval_ms) {
    interval_ms = *o.interval_ms;
  }
  if (interval_ms < 0) throw std::invalid_argument("the publish interval cannot be negative");
  plan.interval_ns = static_cast<std::uint64_t>(std::llround(interval_ms * 1e6));

  // Paced publishers start spread over one interval rather than all at once, so a fixed total rate
  // arrives as a steady stream instead of bursts of `publishers` messages.
  std::uint32_t k = 0;
  for (auto& c : plan.clients) {
    if (c.role != Role::kPublisher) continue;
    c.start_offset_ns = pubs > 0 ? plan.interval_ns * k / pubs : 0;
    ++k;
  }
  return plan;
}

}  // namespace meshmq::bench
