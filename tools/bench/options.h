// Everything the command line can set, and the plan built from it: which clients to run, with
// which topics and filters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace meshmq::bench {

enum class Mode { kConn, kPub, kSub, kScenario };

struct Options {
  Mode mode = Mode::kConn;
  std::string scenario;  // for Mode::kScenario

  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  bool websocket = false;
  std::string ws_path = "/mqtt";
  std::vector<std::string> ifaddrs;  // source addresses, used round robin

  // Unset values take the mode's or scenario's default (see plan.cc).
  std::optional<std::uint32_t> clients;
  std::optional<int> qos;
  std::optional<std::size_t> payload_size;
  std::optional<double> interval_ms;  // per publisher; 0 = as fast as possible
  std::optional<double> rate;         // per publisher, msg/s; 0 = as fast as possible
  std::optional<double> total_rate;   // all publishers together, msg/s
  std::optional<std::string> topic;   // publish topic or subscription filter; %i = client index
  std::uint64_t count = 0;            // messages per publisher; 0 = until the duration ends
  std::optional<double> duration_s;

  double conn_rate = 1000;          // new connections per second; 0 = no limit
  std::uint32_t max_pending = 500;  // connections between TCP SYN and CONNACK (SUBACK) at once
  std::uint32_t inflight = 64;      // unacknowledged QoS 1/2 publishes per publisher
  std::uint16_t keepalive = 60;
  bool clean_session = true;
  std::string client_id_prefix;  // default "bench-<pid>-"
  std::uint32_t start_index = 0;
  std::optional<std::string> username;
  std::optional<std::string> password;

  unsigned threads = 1;
  double connect_timeout_s = 10;
  double drain_s = 5;
  bool quiet = false;
  std::string json_file;
  std::string latency_log;  // every measured delivery, see --latency-log
};

enum class Role : std::uint8_t { kIdle, kPublisher, kSubscriber };

struct ClientSpec {
  Role role = Role::kIdle;
  std::string client_id;
  std::string topic;  // publish topic (publisher) or topic filter (subscriber)
  std::uint32_t publisher_id = 0;
  std::uint64_t start_offset_ns = 0;  // spreads paced publishers over one interval
};

struct Plan {
  std::string name;                 // scenario name, or conn/pub/sub
  std::vector<ClientSpec> clients;  // subscribers first, so they are ready before anyone publishes
  std::uint32_t publishers = 0;
  std::uint32_t subscribers = 0;
  int qos = 0;
  std::size_t payload_size = 64;
  std::uint64_t interval_ns = 0;  // per publisher; 0 = as fast as possible
  double duration_s = 10;
  std::uint64_t count = 0;
  std::string topic_pattern;
  std::string filter_pattern;
  // Expected deliveries are known only when the publishers and subscribers run in this process.
  bool expect_from_publishers = false;
};

// Checks the options against the mode or scenario and fills in its defaults. Throws
// std::invalid_argument with a message for the user.
Plan make_plan(const Options& options);

// "dev/%i/temp" with index 7 -> "dev/7/temp".
std::string expand(const std::string& pattern, std::uint32_t index);

// How many of the given subscriptions match each publisher's topic: one entry per publisher, in
// the order of `publish_topics`. Exact filters are looked up by hash and only the (usually few)
// wildcard filters are matched one by one, so 10,000 pairs do not cost 10^8 comparisons.
std::vector<std::uint32_t> fanout(const std::vector<std::string>& publish_topics,
                                  const std::vector<std::string>& filters);

}  // namespace meshmq::bench
