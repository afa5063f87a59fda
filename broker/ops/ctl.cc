#include "broker/ops/ctl.h"

#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace meshmq::ops {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Url {
  std::string host;
  std::string port;
  std::string base_path;
};

// http://host[:port][/base] only: the admin API is plain HTTP behind the node or a port-forward.
std::optional<Url> parse_url(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (!std::string_view(url).starts_with(kScheme)) return std::nullopt;
  std::string rest = url.substr(kScheme.size());
  Url u;
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    u.base_path = rest.substr(slash);
    while (!u.base_path.empty() && u.base_path.back() == '/') u.base_path.pop_back();
    rest.resize(slash);
  }
  const auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    u.host = rest.substr(0, colon);
    u.port = rest.substr(colon + 1);
  } else {
    u.host = rest;
    u.port = "80";
  }
  if (u.host.size() > 2 && u.host.front() == '[' && u.host.back() == ']') {
    u.host = u.host.substr(1, u.host.size() - 2);
  }
  if (u.host.empty() || u.port.empty()) return std::nullopt;
  return u;
}

std::string encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct Reply {
  unsigned status;
  std::string body;
};

Reply request(const Url& url, http::verb verb, const std::string& target, const std::string& token,
              int timeout_s) {
  asio::io_context ctx;
  beast::tcp_stream stream(ctx);
  stream.expires_after(std::chrono::seconds(timeout_s));
  tcp::resolver resolver(ctx);
  stream.connect(resolver.resolve(url.host, url.port));
  http::request<http::empty_body> req{verb, url.base_path + target, 11};
  req.set(http::field::host, url.host);
  req.set(http::field::user_agent, "meshmq-ctl");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return {res.result_int(), res.body()};
}

}  // namespace

int ctl_main(int argc, const char* const* argv) {
  CLI::App app{"meshmq ctl: the node's admin API (see README, Observability)", "meshmq ctl"};
  std::string url = "http://127.0.0.1:8080";
  std::string token;
  int timeout_s = 10;
  if (const char* env = std::getenv("MESHMQ_ADMIN_URL")) url = env;
  if (const char* env = std::getenv("MESHMQ_ADMIN_TOKEN")) token = env;
  app.add_option("--url", url, "Node's HTTP endpoint (env MESHMQ_ADMIN_URL)")
      ->capture_default_str();
  app.add_option("--token", token, "admin.token of the node (env MESHMQ_ADMIN_TOKEN)");
  app.add_option("--timeout", timeout_s, "Seconds to wait for the node")->capture_default_str();
  app.require_subcommand(1);

  std::string client_id, filter = "#";
  std::size_t limit = 1000;
  auto* clients = app.add_subcommand("clients", "List sessions (connected and offline)");
  auto* client = app.add_subcommand("client", "Show one session with its subscriptions");
  client->add_option("client_id", client_id)->required();
  auto* kick = app.add_subcommand("kick", "Close a client's connection");
  kick->add_option("client_id", client_id)->required();
  auto* subs = app.add_subcommand("subscriptions", "List subscriptions, of one client if given");
  subs->add_option("client_id", client_id);
  auto* retained = app.add_subcommand("retained", "List retained messages matching a filter");
  retained->add_option("filter", filter, "Topic filter")->capture_default_str();
  retained->add_option("--limit", limit, "At most this many")->capture_default_str();
  auto* cluster = app.add_subcommand("cluster", "Cluster status");
  auto* ready = app.add_subcommand("ready", "Readiness (/readyz)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto u = parse_url(url);
  if (!u) {
    std::cerr << "meshmq ctl: --url must look like http://host:port, not " << url << "\n";
    return 2;
  }
  http::verb verb = http::verb::get;
  std::string target;
  if (*clients) target = "/api/v1/clients";
  if (*client) target = "/api/v1/clients/" + encode(client_id);
  if (*kick) {
    verb = http::verb::delete_;
    target = "/api/v1/clients/" + encode(client_id);
  }
  if (*subs) {
    target = "/api/v1/subscriptions";
    if (!client_id.empty()) target += "?client_id=" + encode(client_id);
  }
  if (*retained)
    target = "/api/v1/retained?filter=" + encode(filter) + "&limit=" + std::to_string(limit);
  if (*cluster) target = "/api/v1/cluster";
  if (*ready) target = "/readyz";
  if (token.empty() && target.starts_with("/api/")) {
    std::cerr << "meshmq ctl: no token: pass --token or set MESHMQ_ADMIN_TOKEN\n";
    return 2;
  }

  Reply reply;
  try {
    reply = request(*u, verb, target, token, timeout_s);
  } catch (const std::exception& e) {
    std::cerr << "meshmq ctl: " << url << ": " << e.what() << "\n";
    return 2;
  }
  // Pretty-print JSON; anything else as it came.
  std::string text = reply.body;
  try {
    text = nlohmann::json::parse(reply.body).dump(2) + "\n";
  } catch (const std::exception&) {
  }
  if (reply.status >= 200 && reply.status < 300) {
    std::cout << text;
    return 0;
  }
  std::cerr << "meshmq ctl: HTTP " << reply.status << ": " << text;
  return 1;
}

}  // namespace meshmq::ops
