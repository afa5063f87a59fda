// A small HTTP/1.1 server (Boost.Beast) on its own thread and io_context, so a slow scrape or
// admin call never stalls a broker worker. It serves /metrics, /healthz, /readyz and the admin
// API through one handler function; see admin_api.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace meshmq::ops {

struct HttpRequest {
  std::string method;  // "GET", "DELETE", ...
  std::string target;  // path and query, still percent-encoded
  std::string authorization;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  explicit HttpServer(HttpHandler handler);
  ~HttpServer();  // stops
  // Binds and listens; throws std::runtime_error naming the address on failure (startup only).
  void listen(const std::string& bind, std::uint16_t port);
  std::uint16_t port() const;
  void start();  // serves on a thread of its own
  void stop();   // closes the listener and every connection, joins the thread; idempotent

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshmq::ops
