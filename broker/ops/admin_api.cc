#include "broker/ops/admin_api.h"

#include <chrono>
#include <future>
#include <map>
#include <optional>

#include "broker/ops/prometheus.h"

namespace meshmq::ops {

using nlohmann::json;

namespace {

// A worker-side operation answers through a callback; the HTTP thread waits for it, bounded so a
// stopping node (workers gone) still answers.
constexpr auto kWorkerTimeout = std::chrono::seconds(5);

template <class T>
std::optional<T> await(const std::function<void(std::function<void(T)>)>& start) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  start([promise](T value) { promise->set_value(std::move(value)); });
  if (future.wait_for(kWorkerTimeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

HttpResponse json_response(unsigned status, const json& body) {
  // Payloads and client ids are bytes: invalid UTF-8 is replaced rather than failing the dump.
  return HttpResponse{status,
                      "application/json",
                      body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                      {}};
}

HttpResponse error(unsigned status, std::string message) {
  return json_response(status, json{{"error", std::move(message)}});
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  }
  return diff == 0 && !b.empty();
}

json session_json(const core::SessionInfo& s, bool with_subscriptions) {
  json j{{"client_id", s.client_id},   {"connected", s.connected},
         {"persistent", s.persistent}, {"queued", s.queued},
         {"inflight", s.inflight},     {"subscriptions", s.subscriptions.size()}};
  if (s.connected) j["peer"] = s.peer;
  if (with_subscriptions) {
    json subs = json::array();
    for (const auto& [filter, qos] : s.subscriptions) {
      subs.push_back({{"filter", filter}, {"qos", static_cast<int>(qos)}});
    }
    j["subscriptions"] = std::move(subs);
  }
  return j;
}

std::optional<std::vector<core::SessionInfo>> sessions(core::Broker& broker) {
  return await<std::vector<core::SessionInfo>>(
      [&](std::function<void(std::vector<core::SessionInfo>)> done) {
        broker.inspect_sessions(std::move(done));
      });
}

struct Target {
  std::string path;  // decoded
  std::map<std::string, std::string> query;
};

std::optional<Target> parse_target(std::string_view target) {
  Target t;
  const auto q = target.find('?');
  auto path = percent_decode(target.substr(0, q), false);
  if (!path) return std::nullopt;
  t.path = std::move(*path);
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest.remove_prefix(amp == std::string_view::npos ? rest.size() : amp + 1);
    const auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    t.query[*key] = *value;
  }
  return t;
}

HttpResponse admin(AdminContext& ctx, const HttpRequest& req, const Target& t) {
  if (ctx.token.empty()) return error(403, "admin API disabled: set admin.token");
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view auth = req.authorization;
  if (!auth.starts_with(kBearer) || !equal_constant_time(auth.substr(kBearer.size()), ctx.token)) {
    HttpResponse r = error(401, "missing or wrong bearer token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"meshmq\"");
    return r;
  }
  const std::string_view path = std::string_view(t.path).substr(std::string_view("/api/v1").size());
  const bool get = req.method == "GET";
  constexpr std::string_view kClients = "/clients/";
  if (path == "/clients" || path == "/subscriptions") {
    if (!get) return error(405, "use GET");
    auto all = sessions(ctx.broker);
    if (!all) return error(503, "workers did not answer (node stopping?)");
    json list = json::array();
    if (path == "/clients") {
      for (const auto& s : *all) list.push_back(session_json(s, false));
      return json_response(200, json{{"clients", std::move(list)}});
    }
    auto only = t.query.find("client_id");
    for (const auto& s : *all) {
      if (only != t.query.end() && s.client_id != only->second) continue;
      for (const auto& [filter, qos] : s.subscriptions) {
        list.push_back(
            {{"client_id", s.client_id}, {"filter", filter}, {"qos", static_cast<int>(qos)}});
      }
    }
    return json_response(200, json{{"subscriptions", std::move(list)}});
  }
  if (path.starts_with(kClients) && path.size() > kClients.size()) {
    const std::string id(path.substr(kClients.size()));
    if (req.method == "DELETE") {
      auto kicked = await<bool>(
          [&](std::function<void(bool)> done) { ctx.broker.kick(id, std::move(done)); });
      if (!kicked) return error(503, "workers did not answer (node stopping?)");
      if (!*kicked) return error(404, "no client connected with id " + id);
      return json_response(200, json{{"kicked", id}});
    }
    if (!get) return error(405, "use GET or DELETE");
    auto all = sessions(ctx.broker);
    if (!all) return error(503, "workers did not answer (node stopping?)");
    for (const auto& s : *all) {
      if (s.client_id == id) return json_response(200, session_json(s, true));
    }
    return error(404, "no session with client id " + id);
  }
  if (path == "/retained") {
    if (!get) return error(405, "use GET");
    auto filter = t.query.count("filter") ? t.query.at("filter") : std::string("#");
    std::size_t limit = 1000;
    if (auto it = t.query.find("limit"); it != t.query.end()) {
      try {
        limit = std::stoul(it->second);
      } catch (const std::exception&) {
        return error(400, "limit must be a number");
      }
    }
    json list = json::array();
    bool truncated = false;
    ctx.retained.match(filter, [&](const core::MessagePtr& m) {
      if (list.size() >= limit) {
        truncated = true;
        return;
      }
      list.push_back({{"topic", std::string(m->topic)},
                      {"qos", static_cast<int>(m->qos)},
                      {"payload", std::string(m->payload)},
                      {"payload_bytes", m->payload.size()}});
    });
    return json_response(200, json{{"retained", std::move(list)}, {"truncated", truncated}});
  }
  if (path == "/cluster") {
    if (!get) return error(405, "use GET");
    if (ctx.cluster_status) return json_response(200, ctx.cluster_status());
    return json_response(200,
                         json{{"node", ctx.node}, {"clustered", false}, {"peers", json::array()}});
  }
  return error(404, "no such endpoint: " + t.path);
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

HttpResponse handle_http(AdminContext& ctx, const HttpRequest& req) {
  auto t = parse_target(req.target);
  if (!t) return error(400, "malformed percent-encoding in the URL");
  if (t->path == "/metrics" || t->path == "/healthz" || t->path == "/readyz") {
    if (req.method != "GET" && req.method != "HEAD") return error(405, "use GET");
    if (t->path == "/metrics") {
      return HttpResponse{
          200, kPrometheusContentType, render_prometheus(ctx.metrics.collect()), {}};
    }
    if (t->path == "/healthz") return HttpResponse{200, "text/plain", "ok\n", {}};
    const auto failing = ctx.health.failing();
    if (failing.empty()) return json_response(200, json{{"ready", true}});
    return json_response(503, json{{"ready", false}, {"failing", failing}});
  }
  if (t->path == "/api/v1" || t->path.starts_with("/api/v1/")) return admin(ctx, req, *t);
  return error(404, "no such endpoint: " + t->path);
}

}  // namespace meshmq::ops
