// The broker's configuration: one typed struct, filled in order of increasing precedence from
// embedded defaults, a TOML file, MESHMQ_* environment variables and --key=value flags.
//
// Every key has one name used by all three sources: the key `listeners.tcp.port` is
//   file:  [listeners.tcp] port = 1883          (nested tables are dotted keys)
//   env:   MESHMQ_LISTENERS__TCP__PORT=1883     (upper case, '.' -> "__")
//   flag:  --listeners.tcp.port=1883 or --listeners.tcp.port 1883
// The key table in keys.cc is the single source of truth for names, types, validation and --help.
// MESHMQ_CONFIG selects the file. Other MESHMQ_* variables shaped like keys (with "__", or starting
// with a section name as in MESHMQ_LOG_LEVEL) must be keys; the rest (MESHMQ_BIN, MESHMQ_TEST_*)
// belong to the scripts and test harness and are ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/options.h"
#include "broker/storage/options.h"

namespace meshmq::config {

struct NodeConfig {
  std::string name;  // default: the host name
  std::string data_dir = "./data";
  std::uint32_t shutdown_grace_s = 10;  // SIGTERM -> exit, at most
};

// Per-listener admission limits, keys listeners.<name>.max_connections / connect_rate; every
// listener kind (tcp, ws, tls, wss) carries one.
struct ListenerLimits {
  std::uint32_t max_connections = 0;  // 0 = only limits.max_connections applies
  std::uint32_t connect_rate = 0;     // new connections per second (burst: one second's worth)
};

struct TcpListenerConfig {  // keys listeners.tcp.*
  std::string bind = "0.0.0.0";
  std::uint16_t port = 1883;  // 0 = listener off
  ListenerLimits limits;
};

struct AuthConfig {             // keys auth.*
  bool allow_anonymous = true;  // true only so a bare `meshmq` is usable; turn off in production
  std::string password_file;    // empty = no password file
  std::string acl_file;         // empty = no rules (acl_default decides)
  std::string acl_default = "allow";       // allow|deny
  std::string acl_deny_action = "ignore";  // ignore|disconnect: for a denied PUBLISH
  std::uint32_t threads = 0;  // password checks off the workers; 0 = half the cores, at least 1
};

struct LimitsConfig {  // keys limits.* that belong to the node (the core's are in mqtt.limits)
  std::uint32_t max_connections = 0;  // all listeners together; 0 = open-file limit minus 256
};

struct HttpConfig {  // keys http.*: /metrics, /healthz, /readyz, /api/v1/
  std::string bind = "0.0.0.0";
  std::uint16_t port = 8080;  // 0 = off
};

struct AdminConfig {
  std::string token;  // bearer token for /api/v1/; empty = admin API refused
};

struct SysConfig {
  std::uint32_t interval_s = 10;  // $SYS republish period; 0 = no $SYS topics
};

struct WsListenerConfig {  // keys listeners.ws.*
  std::string bind = "0.0.0.0";
  std::uint16_t port = 8083;   // 0 = listener off
  std::string path = "/mqtt";  // HTTP path of the WebSocket upgrade
  ListenerLimits limits;
};

// listeners.tls and listeners.wss only start when tls.cert_file and tls.key_file are set.
struct TlsListenerConfig {  // keys listeners.tls.* and listeners.wss.*
  std::string bind = "0.0.0.0";
  std::uint16_t port = 0;  // 0 = listener off
  ListenerLimits limits;
};

struct TlsConfig {                     // keys tls.*, shared by the TLS and WSS listeners
  std::string cert_file;               // PEM certificate chain; empty = TLS listeners off
  std::string key_file;                // PEM private key
  std::string ca_file;                 // PEM CAs that client certificates must chain to
  std::string min_version = "1.2";     // 1.2 or 1.3
  std::string verify_client = "none";  // none | optional | required
  bool cn_as_username = false;         // a verified client certificate's CN is the user name

  bool enabled() const { return !cert_file.empty() && !key_file.empty(); }
};

struct LogConfig {
  std::string level = "info";  // trace|debug|info|warn|error|off
};

struct BrokerConfig {
  std::uint32_t threads = 0;  // 0 = one per core
  // Longest pause of a busy worker before it reads again (net/pacer.h); 0 = never pause.
  std::uint32_t batch_window_us = 200;
};

struct ClusterTlsConfig {  // keys cluster.tls.*: mTLS between nodes when cert_file is set
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  std::string server_name = "meshmq";  // name every node certificate carries (SAN)
};

struct ClusterConfig {  // keys cluster.*; the cluster is on when seeds or dns_name is set
  std::uint16_t port = 7370;
  std::string bind = "0.0.0.0";
  std::string advertise;  // host:port other nodes dial; default bind (or host name) + port
  std::string seeds;      // comma-separated host:port
  std::string dns_name;   // resolved every dns_interval; every address found is dialled
  std::uint32_t dns_interval_s = 10;
  std::string secret;
  std::uint32_t heartbeat_s = 1;
  std::uint32_t down_after_s = 5;
  std::uint32_t route_grace_s = 30;
  std::uint32_t route_ack_timeout_s = 2;
  std::uint32_t takeover_timeout_s = 3;  // a CONNECT waits this long for the other nodes' answers
  std::uint32_t anti_entropy_s = 10;
  std::uint32_t max_pending = 100000;          // forwards per peer not yet acknowledged
  std::uint32_t join_timeout_s = 10;           // /readyz: longest wait for a first peer link
  std::uint32_t outbox_max_messages = 100000;  // durable forwards per down node
  std::uint32_t retained_tombstone_ttl_s = 86400;
  ClusterTlsConfig tls;

  bool enabled() const { return !seeds.empty() || !dns_name.empty(); }
};

struct Config {
  NodeConfig node;
  TcpListenerConfig tcp;                         // key prefix listeners.tcp
  WsListenerConfig ws;                           // key prefix listeners.ws
  TlsListenerConfig tls_listener{.port = 8883};  // key prefix listeners.tls
  TlsListenerConfig wss{.port = 8084};           // key prefix listeners.wss
  TlsConfig tls;
  BrokerConfig broker;
  core::MqttOptions mqtt;           // keys mqtt.* (and limits.* in mqtt.limits)
  storage::StorageOptions storage;  // keys storage.*
  LogConfig log;
  AuthConfig auth;
  LimitsConfig limits;
  HttpConfig http;
  AdminConfig admin;
  SysConfig sys;
  ClusterConfig cluster;
};

// Outcome of load(). Exactly one of the three cases holds:
//   config set                -> run with it;
//   error set                 -> print it to stderr and exit with a failure status;
//   help set (--help/--version) -> print it to stdout and exit successfully.
struct LoadResult {
  std::optional<Config> config;
  std::string error;  // one line per problem, each starting "config: "
  std::string help;

  bool exit_requested() const { return !config.has_value(); }
};

using GetEnv = std::function<const char*(const char*)>;

// Typical use in main():
//   auto r = config::load(argc, argv, [](const char* n) { return std::getenv(n); });
//   if (!r.error.empty()) { std::cerr << r.error << '\n'; return 2; }
//   if (r.exit_requested()) { std::cout << r.help; return 0; }
//   config::setup_logging(r.config->log.level);  // logging.h
//   spdlog::debug("effective config:\n{}", config::describe(*r.config));
//
// Loads defaults <- file (--config PATH, else MESHMQ_CONFIG) <- MESHMQ_* env <- flags.
// Unknown keys and bad values anywhere are errors naming the key and where the value came from.
// Never throws and never exits. The names of MESHMQ_* variables (needed to report unknown ones)
// are taken from the process environment, but a variable counts only if `getenv` returns it, so a
// fake getenv fully decides what the environment holds.
LoadResult load(int argc, const char* const* argv, const GetEnv& getenv);

// Same, with the environment's variable names given explicitly instead of read from the process.
LoadResult load(int argc, const char* const* argv, const GetEnv& getenv,
                std::span<const std::string> env_names);

// The embedded defaults (node.name = host name).
Config defaults();

// Effective configuration, one "key = value" line per key in table order (no trailing newline),
// for the startup log. Values are in the notation the parsers accept ("2h", "1MiB").
std::string describe(const Config& config);

// "listeners.tcp.port" -> "MESHMQ_LISTENERS__TCP__PORT".
std::string env_name(std::string_view key);

struct KeyInfo {
  std::string_view name;         // dotted key, e.g. "mqtt.max_inflight"
  std::string_view type;         // as shown in --help: PORT, DURATION, SIZE, BOOL, ...
  std::string_view description;  // one line
};

// Every key, in the order --help and describe() list them.
std::vector<KeyInfo> keys();

}  // namespace meshmq::config
