#include "tools/bench/cli.h"

#include <CLI/CLI.hpp>

namespace meshmq::bench {
namespace {

// -h is the broker host, as in emqtt-bench and mosquitto_pub, so help is --help only.
void common(CLI::App& app, Options& o, bool publishes, bool subscribes) {
  app.set_help_flag("--help", "Print this help and exit");
  app.add_option("-h,--host", o.host, "Broker host")->capture_default_str();
  app.add_option("-p,--port", o.port, "Broker port")->capture_default_str();
  app.add_option("-c,--clients", o.clients,
                 "Number of clients (in a scenario: its main count, see README)");
  app.add_option("-R,--connrate", o.conn_rate, "New connections per second, 0 = no limit")
      ->capture_default_str();
  app.add_option("--max-pending", o.max_pending,
                 "Connections being set up at once (TCP connect to CONNACK)")
      ->capture_default_str();
  app.add_option("-k,--keepalive", o.keepalive, "Keepalive, seconds (0 = none)")
      ->capture_default_str();
  app.add_option("-C,--clean", o.clean_session, "Clean session (true/false)")
      ->capture_default_str();
  app.add_option("--prefix", o.client_id_prefix, "Client id prefix (default bench-<pid>-)");
  app.add_option("--start-index", o.start_index,
                 "First client index (%i, client ids, publisher ids): lets several processes share "
                 "one load")
      ->capture_default_str();
  app.add_option("-u,--username", o.username, "User name");
  app.add_option("-P,--password", o.password, "Password");
  app.add_flag("--ws", o.websocket, "MQTT over WebSocket (binary frames, subprotocol mqtt)");
  app.add_option("--ws-path", o.ws_path, "WebSocket path")->capture_default_str();
  app.add_option("--ifaddr", o.ifaddrs,
                 "Source addresses to spread connections over, e.g. 127.0.0.2,127.0.0.3")
      ->delimiter(',');
  app.add_option("-d,--duration", o.duration_s,
                 "Seconds to publish (or hold the connections), 0 = until -n is reached "
                 "(default 10)");
  app.add_option("--connect-timeout", o.connect_timeout_s, "Seconds from TCP connect to ready")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "Worker threads, one event loop each")
      ->capture_default_str();
  app.add_option("--json", o.json_file, "Write the JSON summary to FILE instead of stdout");
  app.add_flag("--quiet", o.quiet, "No progress line");
  if (subscribes) {
    app.add_option("--latency-log", o.latency_log,
                   "Also write every measured delivery to FILE: pairs of little-endian uint64, "
                   "send time (CLOCK_MONOTONIC ns) and latency (ns)");
  }
  if (publishes || subscribes) {
    app.add_option("-q,--qos", o.qos, "QoS 0, 1 or 2")->check(CLI::Range(0, 2));
    app.add_option("-t,--topic", o.topic,
                   publishes && !subscribes   ? "Topic, %i = client index (e.g. dev/%i/temp)"
                   : subscribes && !publishes ? "Topic filter, wildcards and %i allowed"
                                              : "Publish topic pattern (%i = publisher index)");
    app.add_option("-n,--count", o.count,
                   publishes ? "Messages per publisher, 0 = no limit"
                             : "Messages per subscriber to wait for, 0 = no limit")
        ->capture_default_str();
  }
  if (publishes) {
    app.add_option("-s,--size", o.payload_size, "Payload bytes (at least 28: header)");
    app.add_option("-I,--interval", o.interval_ms,
                   "Milliseconds between publishes of one client, 0 = as fast as possible");
    app.add_option("--rate", o.rate, "Messages per second per publisher (instead of -I)");
    app.add_option("--total-rate", o.total_rate,
                   "Messages per second over all publishers (instead of -I)");
    app.add_option("--inflight", o.inflight, "Unacknowledged QoS 1/2 messages per publisher")
        ->capture_default_str();
    app.add_option("--drain", o.drain_s,
                   "Seconds to wait after publishing for acknowledgements and deliveries")
        ->capture_default_str();
  }
}

}  // namespace

std::optional<int> parse_command_line(int argc, char** argv, Options& o) {
  CLI::App app{"meshmq-bench: MQTT 3.1.1 load generator"};
  app.set_help_flag("--help", "Print this help and exit");
  app.require_subcommand(1);
  auto* conn = app.add_subcommand("conn", "Open connections and hold them");
  auto* pub = app.add_subcommand("pub", "Publishers");
  auto* sub = app.add_subcommand("sub", "Subscribers");
  auto* scenario = app.add_subcommand(
      "scenario", "Publishers and subscribers in one process: fanin, fanout, pairs, latency, idle");
  common(*conn, o, false, false);
  common(*pub, o, true, false);
  common(*sub, o, false, true);
  scenario->add_option("name", o.scenario, "fanin, fanout, pairs, latency or idle")->required();
  common(*scenario, o, true, true);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (conn->parsed()) o.mode = Mode::kConn;
  if (pub->parsed()) o.mode = Mode::kPub;
  if (sub->parsed()) o.mode = Mode::kSub;
  if (scenario->parsed()) o.mode = Mode::kScenario;
  return std::nullopt;
}

}  // namespace meshmq::bench
