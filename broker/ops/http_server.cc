#include "broker/ops/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <stdexcept>
#include <thread>

namespace meshmq::ops {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr std::size_t kMaxRequestBody = 64 * 1024;  // the API takes no bodies; bound it anyway

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpHandler& handler)
      : stream_(std::move(socket)), handler_(handler) {}

  void start() { read(); }
  void close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBody);
    stream_.expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(error_code ec) {
    if (ec) {
      if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
          ec != asio::error::operation_aborted) {
        spdlog::debug("http: {} from {}", ec.message(), peer());
      }
      close();
      return;
    }
    const auto& req = parser_->get();
    HttpRequest r{std::string(req.method_string()), std::string(req.target()),
                  std::string(req[http::field::authorization])};
    HttpResponse out;
    try {
      out = handler_(r);
    } catch (const std::exception& e) {
      spdlog::error("http: {} {} failed: {}", r.method, r.target, e.what());
      out = HttpResponse{500,
                         "application/json",
                         R"({"error":"internal error"})"
                         "\n",
                         {}};
    }
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(out.status), req.version());
    res->set(http::field::server, "meshmq");
    res->set(http::field::content_type, out.content_type);
    for (const auto& [k, v] : out.headers) res->set(k, v);
    res->keep_alive(req.keep_alive());
    res->body() = std::move(out.body);
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res](error_code ec, std::size_t) {
      if (ec || !res->keep_alive()) {
        self->close();
        return;
      }
      self->read();
    });
  }

  std::string peer() const {
    error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    return ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const HttpHandler& handler_;
};

}  // namespace

struct HttpServer::Impl {
  explicit Impl(HttpHandler h) : handler(std::move(h)), acceptor(ctx) {}

  void accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) {
        auto s = std::make_shared<Session>(std::move(socket), handler);
        sessions.push_back(s);
        s->start();
        // Forget sessions that ended, so the list does not grow with every scrape.
        std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
      }
      accept();
    });
  }

  HttpHandler handler;
  asio::io_context ctx{1};
  tcp::acceptor acceptor;
  std::vector<std::weak_ptr<Session>> sessions;
  std::thread thread;
  std::uint16_t port = 0;
  bool stopped = false;
};

HttpServer::HttpServer(HttpHandler handler) : impl_(std::make_unique<Impl>(std::move(handler))) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::listen(const std::string& bind, std::uint16_t port) {
  error_code ec;
  const auto address = asio::ip::make_address(bind, ec);
  tcp::endpoint ep(address, port);
  auto fail = [&](const char* what) {
    throw std::runtime_error("http: cannot " + std::string(what) + " " + bind + ":" +
                             std::to_string(port) + " (http.bind/http.port): " + ec.message());
  };
  if (ec) fail("parse");
  impl_->acceptor.open(ep.protocol(), ec);
  if (ec) fail("open");
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  impl_->acceptor.bind(ep, ec);
  if (ec) fail("bind");
  impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen on");
  impl_->port = impl_->acceptor.local_endpoint().port();
}

std::uint16_t HttpServer::port() const {
  return impl_->port;
}

void HttpServer::start() {
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->ctx.run(); });
}

void HttpServer::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  asio::post(s.ctx, [&s] {
    error_code ec;
    s.acceptor.close(ec);
    for (auto& w : s.sessions) {
      if (auto session = w.lock()) session->close();
    }
  });
  if (s.thread.joinable()) {
    s.thread.join();  // returns once the closed sessions' handlers have run
  } else {
    s.ctx.run();  // never started: let the posted close run
  }
}

}  // namespace meshmq::ops
