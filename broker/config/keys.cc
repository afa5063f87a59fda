// The key table: the single source of truth for every configuration key. File, environment,
// flags, --help and describe() are all generated from it, so adding a key here is all it takes
// to make it configurable everywhere.
#include "broker/config/keys.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

namespace meshmq::config::detail {
namespace {

constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();

template <class T>
struct Parsed {
  std::optional<T> value;
  std::string problem;
};

template <class T>
Parsed<T> ok(T v) {
  return {std::move(v), {}};
}
template <class T>
Parsed<T> fail(std::string problem) {
  return {std::nullopt, std::move(problem)};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Leading decimal digits of `s`, consumed from it. nullopt if there are none or they overflow;
// `overflow` tells the two apart so the message can say "out of range" rather than "not a number".
std::optional<std::uint64_t> take_number(std::string_view& s, bool& overflow) {
  std::size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  if (n == 0) return std::nullopt;
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + n, v);
  s.remove_prefix(n);
  if (ec == std::errc::result_out_of_range) {
    overflow = true;
    return std::nullopt;
  }
  return v;
}

bool mul_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return __builtin_mul_overflow(a, b, &out);
}

// "got ..." part of a type mismatch, e.g. `the string "80"`, `an array`.
std::string got(const RawValue& raw) {
  switch (raw.kind) {
    case RawValue::Kind::text:
    case RawValue::Kind::string:
      return "the string " + raw.display();
    case RawValue::Kind::integer:
      return "the integer " + raw.display();
    case RawValue::Kind::boolean:
      return "the boolean " + raw.display();
    case RawValue::Kind::other:
      return raw.text;
  }
  return raw.text;
}

std::string mismatch(std::string_view noun, const RawValue& raw) {
  return "expected " + std::string(noun) + ", got " + got(raw);
}

// Numeric types share range checking: parse to uint64, then check [min, max] and report the
// bounds in the type's own notation ("between 1s and 1h").
template <class Derived>
struct Ranged {
  std::uint64_t min = 0;
  std::uint64_t max = kU32Max;

  Parsed<std::uint64_t> in_range(std::uint64_t v, const RawValue& raw) const {
    if (v < min || v > max) return fail<std::uint64_t>(out_of_range(raw));
    return ok(v);
  }
  std::string out_of_range(const RawValue& raw) const {
    const auto& self = static_cast<const Derived&>(*this);
    return raw.display() + " is out of range: must be between " + self.show(min) + " and " +
           self.show(max);
  }
};

struct UnsignedType : Ranged<UnsignedType> {
  std::string_view type_name = "UINT";
  std::string_view noun = "an integer";

  Parsed<std::uint64_t> parse(const RawValue& raw) const {
    if (raw.kind == RawValue::Kind::integer) {
      if (raw.integer < 0) return fail<std::uint64_t>(out_of_range(raw));
      return in_range(static_cast<std::uint64_t>(raw.integer), raw);
    }
    if (raw.kind != RawValue::Kind::text) return fail<std::uint64_t>(mismatch(noun, raw));
    std::string_view s = trim(raw.text);
    bool negative = !s.empty() && s.front() == '-';
    if (negative) s.remove_prefix(1);
    bool overflow = false;
    auto v = take_number(s, overflow);
    if ((v || overflow) && s.empty() && (negative || overflow)) {
      return fail<std::uint64_t>(out_of_range(raw));
    }
    if (!v || !s.empty()) {
      return fail<std::uint64_t>(raw.display() + " is not " + std::string(noun));
    }
    return in_range(*v, raw);
  }
  std::string show(std::uint64_t v) const { return std::to_string(v); }
};

UnsignedType port_type() {
  UnsignedType t;
  t.min = 0;
  t.max = 65535;
  t.type_name = "PORT";
  t.noun = "a port number";
  return t;
}

UnsignedType unsigned_type(std::uint64_t min, std::uint64_t max) {
  UnsignedType t;
  t.min = min;
  t.max = max;
  return t;
}

struct Unit {
  std::string_view name;
  std::uint64_t factor;
};

constexpr std::array<Unit, 4> kDurationUnits{{{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}}};

// Seconds. Text is a plain number of seconds or one or more number+unit parts ("1h30m"), so the
// value that describe() prints can be pasted back.
struct DurationType : Ranged<DurationType> {
  std::string_view type_name = "DURATION";

  Parsed<std::uint64_t> parse(const RawValue& raw) const {
    if (raw.kind == RawValue::Kind::integer) {
      if (raw.integer < 0) return fail<std::uint64_t>(out_of_range(raw));
      return in_range(static_cast<std::uint64_t>(raw.integer), raw);
    }
    if (raw.kind != RawValue::Kind::text && raw.kind != RawValue::Kind::string) {
      return fail<std::uint64_t>(mismatch("a duration", raw));
    }
    const std::string bad = raw.display() +
                            " is not a duration (seconds, or numbers with unit s, m, h, d, "
                            "e.g. \"90s\", \"15m\", \"1h30m\", \"7d\")";
    std::string_view s = trim(raw.text);
    std::uint64_t total = 0;
    bool first = true;
    while (first || !s.empty()) {
      bool overflow = false;
      auto n = take_number(s, overflow);
      if (overflow) return fail<std::uint64_t>(out_of_range(raw));
      if (!n) return fail<std::uint64_t>(bad);
      std::uint64_t factor = 0;
      if (s.empty() && first) {
        factor = 1;  // bare number: seconds
      } else {
        for (const Unit& u : kDurationUnits) {
          if (!s.empty() && s.front() == u.name.front()) factor = u.factor;
        }
        if (factor == 0) return fail<std::uint64_t>(bad);
        s.remove_prefix(1);
      }
      std::uint64_t part = 0;
      if (mul_overflows(*n, factor, part) || __builtin_add_overflow(total, part, &total)) {
        return fail<std::uint64_t>(out_of_range(raw));
      }
      first = false;
    }
    return in_range(total, raw);
  }

  std::string show(std::uint64_t seconds) const {
    for (const Unit& u : kDurationUnits) {
      if (seconds != 0 && seconds % u.factor == 0) {
        return std::to_string(seconds / u.factor) + std::string(u.name);
      }
    }
    return std::to_string(seconds) + "s";
  }
};

DurationType duration_type(std::uint64_t min, std::uint64_t max) {
  DurationType t;
  t.min = min;
  t.max = max;
  return t;
}

// Milliseconds, for short windows: "2ms", "1s", or a bare number of milliseconds.
struct MillisType : Ranged<MillisType> {
  std::string_view type_name = "MILLIS";

  Parsed<std::uint64_t> parse(const RawValue& raw) const {
    if (raw.kind == RawValue::Kind::integer) {
      if (raw.integer < 0) return fail<std::uint64_t>(out_of_range(raw));
      return in_range(static_cast<std::uint64_t>(raw.integer), raw);
    }
    if (raw.kind != RawValue::Kind::text && raw.kind != RawValue::Kind::string) {
      return fail<std::uint64_t>(mismatch("a duration", raw));
    }
    std::string_view s = trim(raw.text);
    bool overflow = false;
    auto n = take_number(s, overflow);
    if (overflow) return fail<std::uint64_t>(out_of_range(raw));
    const std::string unit = lower(trim(s));
    std::uint64_t factor = unit.empty() || unit == "ms" ? 1 : unit == "s" ? 1000 : 0;
    std::uint64_t ms = 0;
    if (!n || factor == 0) {
      return fail<std::uint64_t>(raw.display() +
                                 " is not a duration in milliseconds (e.g. \"2ms\", \"1s\")");
    }
    if (mul_overflows(*n, factor, ms)) return fail<std::uint64_t>(out_of_range(raw));
    return in_range(ms, raw);
  }
  std::string show(std::uint64_t ms) const { return std::to_string(ms) + "ms"; }
};

// Binary units first so show() prefers them; decimal ones are accepted because people write them.
constexpr std::array<Unit, 9> kSizeUnits{{{"TiB", 1ULL << 40},
                                          {"GiB", 1ULL << 30},
                                          {"MiB", 1ULL << 20},
                                          {"KiB", 1ULL << 10},
                                          {"TB", 1000ULL * 1000 * 1000 * 1000},
                                          {"GB", 1000ULL * 1000 * 1000},
                                          {"MB", 1000ULL * 1000},
                                          {"KB", 1000ULL},
                                          {"B", 1}}};

struct SizeType : Ranged<SizeType> {
  std::string_view type_name = "SIZE";

  Parsed<std::uint64_t> parse(const RawValue& raw) const {
    if (raw.kind == RawValue::Kind::integer) {
      if (raw.integer < 0) return fail<std::uint64_t>(out_of_range(raw));
      return in_range(static_cast<std::uint64_t>(raw.integer), raw);
    }
    if (raw.kind != RawValue::Kind::text && raw.kind != RawValue::Kind::string) {
      return fail<std::uint64_t>(mismatch("a size", raw));
    }
    const std::string bad = raw.display() +
                            " is not a size (bytes, or a number with unit B, KB, MB, GB, TB, "
                            "KiB, MiB, GiB, TiB, e.g. \"64KiB\")";
    std::string_view s = trim(raw.text);
    bool overflow = false;
    auto n = take_number(s, overflow);
    if (overflow) return fail<std::uint64_t>(out_of_range(raw));
    if (!n) return fail<std::uint64_t>(bad);
    const std::string unit = lower(trim(s));
    std::uint64_t factor = unit.empty() ? 1 : 0;
    for (const Unit& u : kSizeUnits) {
      if (unit == lower(u.name)) factor = u.factor;
    }
    if (factor == 0) return fail<std::uint64_t>(bad);
    std::uint64_t bytes = 0;
    if (mul_overflows(*n, factor, bytes)) return fail<std::uint64_t>(out_of_range(raw));
    return in_range(bytes, raw);
  }

  std::string show(std::uint64_t bytes) const {
    for (const Unit& u : kSizeUnits) {
      if (u.factor >= 1024 && u.name.ends_with("iB") && bytes != 0 && bytes % u.factor == 0) {
        return std::to_string(bytes / u.factor) + std::string(u.name);
      }
    }
    return std::to_string(bytes);
  }
};

SizeType size_type(std::uint64_t min, std::uint64_t max) {
  SizeType t;
  t.min = min;
  t.max = max;
  return t;
}

struct BoolType {
  std::string_view type_name = "BOOL";

  // The file has real booleans; the other spellings exist because env and flags are only text.
  Parsed<bool> parse(const RawValue& raw) const {
    if (raw.kind == RawValue::Kind::boolean) return ok(raw.boolean);
    if (raw.kind != RawValue::Kind::text) return fail<bool>(mismatch("a boolean", raw));
    const std::string s = lower(trim(raw.text));
    if (s == "true" || s == "yes" || s == "on" || s == "1") return ok(true);
    if (s == "false" || s == "no" || s == "off" || s == "0") return ok(false);
    return fail<bool>(raw.display() + " is not a boolean (true/false, yes/no, on/off, 1/0)");
  }
  std::string show(bool v) const { return v ? "true" : "false"; }
};

// Strings with a validity check that returns what is wrong (empty if fine).
struct StringType {
  std::string_view type_name = "TEXT";
  std::function<std::string(const std::string&)> check;

  Parsed<std::string> parse(const RawValue& raw) const {
    if (raw.kind != RawValue::Kind::text && raw.kind != RawValue::Kind::string) {
      return fail<std::string>(mismatch("a string", raw));
    }
    if (check) {
      std::string problem = check(raw.text);
      if (!problem.empty()) return fail<std::string>(raw.display() + " " + problem);
    }
    return ok(raw.text);
  }
  std::string show(const std::string& v) const { return v; }
};

// Tokens and passwords: parsed like text, never shown (describe() goes to the startup log).
struct SecretType : StringType {
  SecretType() : StringType{"SECRET", nullptr} {}
  std::string show(const std::string& v) const { return v.empty() ? "" : "(set)"; }
};

StringType node_name_type() {
  // The name ends up in cluster membership, file names and $SYS topics, so it is kept to
  // characters that are safe in all of them; every ordinary host name qualifies.
  return {"NAME", [](const std::string& s) -> std::string {
            bool good = !s.empty() && s.size() <= 253 &&
                        std::all_of(s.begin(), s.end(), [](unsigned char c) {
                          return std::isalnum(c) || c == '.' || c == '-' || c == '_';
                        });
            if (good) return {};
            return "is not a valid node name (1 to 253 letters, digits, '.', '-' or '_')";
          }};
}

StringType path_type() {
  return {"PATH", [](const std::string& s) -> std::string {
            return s.empty() ? "is not a path (empty)" : "";
          }};
}

// A path that may be empty, meaning "none".
StringType optional_path_type() {
  return {"PATH", nullptr};
}

StringType http_path_type() {
  return {"PATH", [](const std::string& s) -> std::string {
            bool good = s.size() > 0 && s.front() == '/' &&
                        std::none_of(s.begin(), s.end(), [](unsigned char c) {
                          return c <= 0x20 || c >= 0x7f || c == '?' || c == '#';
                        });
            return good ? "" : "is not an HTTP path (starts with '/', no spaces, '?' or '#')";
          }};
}

StringType address_type() {
  // Only literals: the listener binds exactly one address, and resolving a name here would make
  // the bound interface depend on DNS at startup.
  return {
      "ADDRESS", [](const std::string& s) -> std::string {
        unsigned char buf[16];
        if (inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1) {
          return {};
        }
        return "is not an IP address (e.g. 0.0.0.0, 127.0.0.1, ::)";
      }};
}

StringType one_of_type(std::string_view type_name, std::vector<std::string> choices) {
  return {type_name, [choices](const std::string& s) -> std::string {
            if (std::find(choices.begin(), choices.end(), s) != choices.end()) return {};
            std::string list;
            for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
            return "is not one of " + list;
          }};
}

// `access` is a generic lambda returning a reference to the field, so the same accessor serves
// show() on a const Config and set() on a mutable one.
template <class Type, class Access>
Key make_key(std::string_view name, std::string_view description, Type type, Access access) {
  using Field = std::remove_cvref_t<decltype(access(std::declval<Config&>()))>;
  Key key;
  key.name = name;
  key.type = type.type_name;
  key.description = description;
  key.is_boolean = std::is_same_v<Field, bool>;
  key.show = [type, access](const Config& c) { return type.show(access(c)); };
  key.set = [type, access](Config& c, const RawValue& raw) -> std::string {
    auto parsed = type.parse(raw);
    if (!parsed.value) return parsed.problem;
    access(c) = static_cast<Field>(*parsed.value);
    return {};
  };
  if constexpr (std::is_integral_v<Field> && !std::is_same_v<Field, bool>) {
    // A range wider than the field would silently truncate; catch it when the table is built.
    if (type.max > std::numeric_limits<Field>::max()) std::abort();
  }
  return key;
}

// The admission limits every listener has; `listener` returns its ListenerLimits.
template <class Access>
void add_listener_limits(std::vector<Key>& t, std::string_view max_connections_key,
                         std::string_view connect_rate_key, Access listener) {
  t.push_back(make_key(
      max_connections_key, "Connections on this listener; 0 = only limits.max_connections",
      unsigned_type(0, kU32Max), [listener](auto& c) -> auto& {
        return listener(c).max_connections;
      }));
  t.push_back(make_key(
      connect_rate_key, "New connections per second on this listener; 0 = unlimited",
      unsigned_type(0, kU32Max), [listener](auto& c) -> auto& {
        return listener(c).connect_rate;
      }));
}

StringType host_port_list_type() {
  return {"HOST:PORT,...", [](const std::string& s) -> std::string {
            std::size_t start = 0;
            while (start <= s.size()) {
              std::size_t end = s.find(',', start);
              if (end == std::string::npos) end = s.size();
              std::string_view item = trim(std::string_view(s).substr(start, end - start));
              const std::size_t colon = item.rfind(':');
              if (!item.empty() &&
                  (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size())) {
                return "is not a comma-separated list of host:port";
              }
              start = end + 1;
            }
            return {};
          }};
}

StringType text_type(std::string_view type_name) {
  return {type_name, nullptr};
}

void add_cluster_keys(std::vector<Key>& t) {
  t.push_back(make_key(
      "cluster.port", "Inter-node (gRPC) port", port_type(),
      [](auto& c) -> auto& { return c.cluster.port; }));
  t.push_back(make_key(
      "cluster.bind", "IP address the inter-node listener binds to", address_type(),
      [](auto& c) -> auto& { return c.cluster.bind; }));
  t.push_back(make_key(
      "cluster.advertise", "host:port other nodes use to reach this one; empty = derived",
      text_type("HOST:PORT"), [](auto& c) -> auto& { return c.cluster.advertise; }));
  t.push_back(make_key(
      "cluster.seeds", "Nodes to join (comma-separated host:port); empty with no dns_name = alone",
      host_port_list_type(), [](auto& c) -> auto& { return c.cluster.seeds; }));
  t.push_back(make_key(
      "cluster.dns_name", "DNS name resolved periodically; every address found is joined",
      text_type("NAME"), [](auto& c) -> auto& { return c.cluster.dns_name; }));
  t.push_back(make_key(
      "cluster.dns_interval", "How often cluster.dns_name is resolved", duration_type(1, 3600),
      [](auto& c) -> auto& { return c.cluster.dns_interval_s; }));
  t.push_back(make_key(
      "cluster.secret", "Shared secret every node must prove; empty = none", text_type("SECRET"),
      [](auto& c) -> auto& { return c.cluster.secret; }));
  t.push_back(make_key(
      "cluster.heartbeat", "Interval of heartbeats between nodes", duration_type(1, 60),
      [](auto& c) -> auto& { return c.cluster.heartbeat_s; }));
  t.push_back(make_key(
      "cluster.down_after", "Silence after which a node is marked down", duration_type(1, 3600),
      [](auto& c) -> auto& { return c.cluster.down_after_s; }));
  t.push_back(make_key(
      "cluster.route_grace", "Time a down node's routes are kept before they are withdrawn",
      duration_type(0, 86400), [](auto& c) -> auto& { return c.cluster.route_grace_s; }));
  t.push_back(make_key(
      "cluster.route_ack_timeout",
      "Longest a SUBACK waits for the peers to acknowledge the new route", duration_type(0, 60),
      [](auto& c) -> auto& { return c.cluster.route_ack_timeout_s; }));
  t.push_back(make_key(
      "cluster.takeover_timeout",
      "Longest a CONNECT waits for the other nodes to hand over or release the client's session",
      duration_type(1, 60), [](auto& c) -> auto& { return c.cluster.takeover_timeout_s; }));
  t.push_back(make_key(
      "cluster.anti_entropy", "Interval of route digest comparisons between nodes",
      duration_type(1, 3600), [](auto& c) -> auto& { return c.cluster.anti_entropy_s; }));
  t.push_back(make_key(
      "cluster.max_pending",
      "Forwarded messages per peer awaiting its acknowledgement; beyond "
      "it new forwards to that peer are dropped",
      unsigned_type(1, kU32Max), [](auto& c) -> auto& { return c.cluster.max_pending; }));
  t.push_back(make_key(
      "cluster.join_timeout",
      "Longest /readyz waits for a first link to another node before the node is ready alone",
      duration_type(0, 3600), [](auto& c) -> auto& { return c.cluster.join_timeout_s; }));
  t.push_back(make_key(
      "cluster.outbox_max_messages",
      "QoS 1/2 messages per down node kept on disk for its persistent sessions; beyond it new "
      "ones are dropped (counted)",
      unsigned_type(1, kU32Max), [](auto& c) -> auto& { return c.cluster.outbox_max_messages; }));
  t.push_back(make_key(
      "cluster.retained_tombstone_ttl",
      "How long a cleared retained message is remembered so that a node that missed the clear "
      "does not bring it back",
      duration_type(1, 365 * 86400),
      [](auto& c) -> auto& { return c.cluster.retained_tombstone_ttl_s; }));
  t.push_back(make_key(
      "cluster.tls.cert_file", "Node certificate (PEM); set to use mTLS between nodes",
      text_type("PATH"), [](auto& c) -> auto& { return c.cluster.tls.cert_file; }));
  t.push_back(make_key(
      "cluster.tls.key_file", "Node private key (PEM)", text_type("PATH"),
      [](auto& c) -> auto& { return c.cluster.tls.key_file; }));
  t.push_back(make_key(
      "cluster.tls.ca_file", "CA that signs every node certificate (PEM)", text_type("PATH"),
      [](auto& c) -> auto& { return c.cluster.tls.ca_file; }));
  t.push_back(make_key(
      "cluster.tls.server_name", "Name (SAN) every node certificate carries", text_type("NAME"),
      [](auto& c) -> auto& { return c.cluster.tls.server_name; }));
}

std::vector<Key> build_table() {
  constexpr std::uint64_t kMaxPacket = 268435455;  // largest MQTT remaining length
  std::vector<Key> t;
  t.push_back(make_key(
      "node.name", "Name of this node; unique within the cluster", node_name_type(),
      [](auto& c) -> auto& { return c.node.name; }));
  t.push_back(make_key(
      "node.data_dir", "Directory for persistent state (sessions, retained messages, cluster)",
      path_type(), [](auto& c) -> auto& { return c.node.data_dir; }));
  t.push_back(make_key(
      "listeners.tcp.bind", "IP address the MQTT TCP listener binds to", address_type(),
      [](auto& c) -> auto& { return c.tcp.bind; }));
  t.push_back(make_key(
      "listeners.tcp.port", "MQTT TCP port; 0 turns the listener off", port_type(),
      [](auto& c) -> auto& { return c.tcp.port; }));
  add_listener_limits(
      t, "listeners.tcp.max_connections", "listeners.tcp.connect_rate",
      [](auto& c) -> auto& { return c.tcp.limits; });
  t.push_back(make_key(
      "listeners.ws.bind", "IP address the MQTT over WebSocket listener binds to", address_type(),
      [](auto& c) -> auto& { return c.ws.bind; }));
  t.push_back(make_key(
      "listeners.ws.port", "MQTT over WebSocket port; 0 turns the listener off", port_type(),
      [](auto& c) -> auto& { return c.ws.port; }));
  t.push_back(make_key(
      "listeners.ws.path", "HTTP path of the WebSocket listeners (ws and wss)", http_path_type(),
      [](auto& c) -> auto& { return c.ws.path; }));
  add_listener_limits(
      t, "listeners.ws.max_connections", "listeners.ws.connect_rate",
      [](auto& c) -> auto& { return c.ws.limits; });
  t.push_back(make_key(
      "listeners.tls.bind", "IP address the MQTT over TLS listener binds to", address_type(),
      [](auto& c) -> auto& { return c.tls_listener.bind; }));
  t.push_back(make_key(
      "listeners.tls.port",
      "MQTT over TLS port; 0 turns it off; starts only with tls.cert_file and tls.key_file",
      port_type(), [](auto& c) -> auto& { return c.tls_listener.port; }));
  add_listener_limits(
      t, "listeners.tls.max_connections", "listeners.tls.connect_rate",
      [](auto& c) -> auto& { return c.tls_listener.limits; });
  t.push_back(make_key(
      "listeners.wss.bind", "IP address the MQTT over secure WebSocket listener binds to",
      address_type(), [](auto& c) -> auto& { return c.wss.bind; }));
  t.push_back(make_key(
      "listeners.wss.port",
      "MQTT over secure WebSocket port; 0 turns it off; starts only with tls.cert_file and "
      "tls.key_file",
      port_type(), [](auto& c) -> auto& { return c.wss.port; }));
  add_listener_limits(
      t, "listeners.wss.max_connections", "listeners.wss.connect_rate",
      [](auto& c) -> auto& { return c.wss.limits; });
  t.push_back(make_key(
      "tls.cert_file", "PEM server certificate (chain) for the TLS and WSS listeners",
      optional_path_type(), [](auto& c) -> auto& { return c.tls.cert_file; }));
  t.push_back(make_key(
      "tls.key_file", "PEM private key of tls.cert_file", optional_path_type(),
      [](auto& c) -> auto& { return c.tls.key_file; }));
  t.push_back(make_key(
      "tls.ca_file", "PEM CA certificates that client certificates are verified against",
      optional_path_type(), [](auto& c) -> auto& { return c.tls.ca_file; }));
  t.push_back(make_key(
      "tls.min_version", "Oldest TLS version accepted: 1.2 or 1.3",
      one_of_type("VERSION", {"1.2", "1.3"}), [](auto& c) -> auto& { return c.tls.min_version; }));
  t.push_back(make_key(
      "tls.verify_client", "Client certificates: none, optional (verified if sent) or required",
      one_of_type("MODE", {"none", "optional", "required"}),
      [](auto& c) -> auto& { return c.tls.verify_client; }));
  t.push_back(make_key(
      "tls.cn_as_username", "Use a verified client certificate's common name as the user name",
      BoolType{}, [](auto& c) -> auto& { return c.tls.cn_as_username; }));
  t.push_back(make_key(
      "broker.threads", "Worker threads; 0 = one per CPU core", unsigned_type(0, 1024),
      [](auto& c) -> auto& { return c.broker.threads; }));
  t.push_back(make_key(
      "broker.batch_window_us",
      "While busy, a worker reads at most once per this many microseconds, so one wakeup takes "
      "many packets; adds at most this much latency; 0 = read at once",
      unsigned_type(0, 100000), [](auto& c) -> auto& { return c.broker.batch_window_us; }));
  t.push_back(make_key(
      "log.level", "Log level: trace, debug, info, warn, error or off",
      one_of_type("LEVEL", {"trace", "debug", "info", "warn", "error", "off"}),
      [](auto& c) -> auto& { return c.log.level; }));
  t.push_back(make_key(
      "mqtt.max_packet_size", "Largest packet accepted from a client (remaining length)",
      size_type(2, kMaxPacket), [](auto& c) -> auto& { return c.mqtt.max_packet_size; }));
  t.push_back(make_key(
      "mqtt.max_inflight", "Outbound QoS 1/2 messages awaiting acknowledgement, per session",
      unsigned_type(1, 65535), [](auto& c) -> auto& { return c.mqtt.max_inflight; }));
  t.push_back(make_key(
      "mqtt.max_queued_messages",
      "Messages queued per offline or slow session; beyond it new ones drop",
      unsigned_type(0, kU32Max), [](auto& c) -> auto& { return c.mqtt.max_queued_messages; }));
  t.push_back(make_key(
      "mqtt.queue_qos0", "Queue QoS 0 messages for offline persistent sessions", BoolType{},
      [](auto& c) -> auto& { return c.mqtt.queue_qos0; }));
  t.push_back(make_key(
      "mqtt.session_expiry", "How long an offline persistent session is kept",
      duration_type(0, kU32Max), [](auto& c) -> auto& { return c.mqtt.session_expiry_s; }));
  t.push_back(make_key(
      "mqtt.connect_timeout", "Time allowed from TCP accept to CONNECT before disconnecting",
      duration_type(1, 3600), [](auto& c) -> auto& { return c.mqtt.connect_timeout_s; }));
  t.push_back(make_key(
      "mqtt.max_outgoing_bytes",
      "Unsent bytes per connection beyond which QoS 0 messages are dropped",
      size_type(1, std::numeric_limits<std::size_t>::max()),
      [](auto& c) -> auto& { return c.mqtt.max_outgoing_bytes; }));
  t.push_back(make_key(
      "mqtt.retained_max_count", "Retained messages kept; 0 = unlimited", unsigned_type(0, kU32Max),
      [](auto& c) -> auto& { return c.mqtt.retained_max_count; }));
  t.push_back(make_key(
      "mqtt.retained_max_age", "Retained messages expire after this; 0 = never",
      duration_type(0, kU32Max), [](auto& c) -> auto& { return c.mqtt.retained_max_age_s; }));
  // MQTT carries keepalive in 16 bits, so a larger cap could never be sent to a client.
  t.push_back(make_key(
      "mqtt.max_keepalive", "Largest keepalive granted to clients; 0 = grant what the client asks",
      duration_type(0, 65535), [](auto& c) -> auto& { return c.mqtt.max_keepalive_s; }));
  t.push_back(make_key(
      "shared.strategy",
      "Which member of a shared subscription group ($share/<group>/<filter>, $queue/<filter>) "
      "gets a message: random, round_robin, sticky or local_first",
      one_of_type("STRATEGY", {"random", "round_robin", "sticky", "local_first"}),
      [](auto& c) -> auto& { return c.mqtt.shared_strategy; }));
  t.push_back(make_key(
      "auth.allow_anonymous", "Let clients in without a user name (turn off in production)",
      BoolType{}, [](auto& c) -> auto& { return c.auth.allow_anonymous; }));
  t.push_back(make_key(
      "auth.password_file", "Password file (meshmq passwd); empty = none; reloaded on SIGHUP",
      optional_path_type(), [](auto& c) -> auto& { return c.auth.password_file; }));
  t.push_back(make_key(
      "auth.threads",
      "Threads that check passwords (off the workers, which keep serving); 0 = half the cores",
      unsigned_type(0, 256), [](auto& c) -> auto& { return c.auth.threads; }));
  t.push_back(make_key(
      "auth.acl_file", "ACL rules file; empty = none; reloaded on SIGHUP", optional_path_type(),
      [](auto& c) -> auto& { return c.auth.acl_file; }));
  t.push_back(make_key(
      "auth.acl_default", "Decision when no ACL rule matches: allow or deny",
      one_of_type("ACL_DEFAULT", {"allow", "deny"}),
      [](auto& c) -> auto& { return c.auth.acl_default; }));
  t.push_back(make_key(
      "auth.acl_deny_action", "On a PUBLISH the ACL denies: ignore (drop it) or disconnect",
      one_of_type("ACL_ACTION", {"ignore", "disconnect"}),
      [](auto& c) -> auto& { return c.auth.acl_deny_action; }));
  t.push_back(make_key(
      "limits.max_connections", "Connections over all listeners; 0 = the open-file limit minus 256",
      unsigned_type(0, kU32Max), [](auto& c) -> auto& { return c.limits.max_connections; }));
  t.push_back(make_key(
      "limits.max_topic_length", "Longest topic name or filter in bytes", unsigned_type(1, 65535),
      [](auto& c) -> auto& { return c.mqtt.limits.max_topic_length; }));
  t.push_back(make_key(
      "limits.max_topic_levels", "Most levels in a topic name or filter", unsigned_type(1, 65535),
      [](auto& c) -> auto& { return c.mqtt.limits.max_topic_levels; }));
  t.push_back(make_key(
      "limits.max_subscriptions_per_client", "Subscriptions per client; 0 = unlimited",
      unsigned_type(0, kU32Max),
      [](auto& c) -> auto& { return c.mqtt.limits.max_subscriptions_per_client; }));
  t.push_back(make_key(
      "limits.publish_rate",
      "PUBLISH packets per second per client before reading pauses; 0 = unlimited",
      unsigned_type(0, kU32Max), [](auto& c) -> auto& { return c.mqtt.limits.publish_rate; }));
  t.push_back(make_key(
      "limits.publish_burst", "PUBLISH packets a client may send at once; 0 = limits.publish_rate",
      unsigned_type(0, kU32Max), [](auto& c) -> auto& { return c.mqtt.limits.publish_burst; }));
  t.push_back(make_key(
      "storage.backend",
      "rocksdb (sessions and retained messages survive restarts, under node.data_dir) or memory",
      one_of_type("BACKEND", {"rocksdb", "memory"}),
      [](auto& c) -> auto& { return c.storage.backend; }));
  t.push_back(make_key(
      "storage.sync",
      "When a QoS 1/2 publish is acknowledged: always (fsync each write), batch (one fsync per "
      "sync_window), none (written, not synced)",
      one_of_type("SYNC", {"always", "batch", "none"}),
      [](auto& c) -> auto& { return c.storage.sync; }));
  MillisType window;
  window.min = 0;
  window.max = 1000;
  t.push_back(make_key(
      "storage.sync_window", "storage.sync=batch: how long writes are gathered before one fsync",
      window, [](auto& c) -> auto& { return c.storage.sync_window_ms; }));
  t.push_back(make_key(
      "storage.max_disk",
      "Disk use of the RocksDB directory beyond which new queued and retained messages are "
      "dropped (counted); 0 = unlimited",
      size_type(0, std::numeric_limits<std::uint64_t>::max()),
      [](auto& c) -> auto& { return c.storage.max_disk; }));
  t.push_back(make_key(
      "node.shutdown_grace",
      "On SIGTERM: longest time to stop listeners, leave the cluster, flush storage and exit",
      duration_type(1, 3600), [](auto& c) -> auto& { return c.node.shutdown_grace_s; }));
  t.push_back(make_key(
      "http.bind", "IP address of the HTTP endpoint (/metrics, /healthz, /readyz, /api/v1/)",
      address_type(), [](auto& c) -> auto& { return c.http.bind; }));
  t.push_back(make_key(
      "http.port", "HTTP port for metrics, health and the admin API; 0 turns it off", port_type(),
      [](auto& c) -> auto& { return c.http.port; }));
  t.push_back(make_key(
      "admin.token", "Bearer token for the admin API (/api/v1/); empty refuses every request",
      SecretType{}, [](auto& c) -> auto& { return c.admin.token; }));
  t.push_back(make_key(
      "sys.interval", "Period of the retained $SYS/broker(s)/... statistics; 0 = no $SYS topics",
      duration_type(0, 86400), [](auto& c) -> auto& { return c.sys.interval_s; }));
  add_cluster_keys(t);
  return t;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string RawValue::display() const {
  switch (kind) {
    case Kind::integer:
      return std::to_string(integer);
    case Kind::boolean:
      return boolean ? "true" : "false";
    case Kind::other:
      return text;
    case Kind::text:
    case Kind::string:
      break;
  }
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const std::vector<Key>& key_table() {
  static const std::vector<Key> table = build_table();
  return table;
}

const Key* find_key(std::string_view name) {
  for (const Key& k : key_table()) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string_view closest_key(std::string_view name) {
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(2, name.size() / 3) + 1;
  for (const Key& k : key_table()) {
    std::size_t d = edit_distance(name, k.name);
    if (d < best_distance) {
      best = k.name;
      best_distance = d;
    }
  }
  return best;
}

}  // namespace meshmq::config::detail
