#include "broker/net/ws_connection.h"

#include <array>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace meshmq::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

std::string choose_mqtt_subprotocol(std::string_view offered) {
  static constexpr std::array<std::string_view, 3> kMqtt{"mqtt", "mqttv3.1", "mqttv3.1.1"};
  while (!offered.empty()) {
    std::size_t comma = offered.find(',');
    std::string_view token = offered.substr(0, comma);
    offered = comma == std::string_view::npos ? std::string_view() : offered.substr(comma + 1);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
      token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    for (std::string_view p : kMqtt) {
      if (token == p) return std::string(p);
    }
  }
  return {};
}

template <class Next>
WsConnection<Next>::WsConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker,
                                 Socket socket, std::string peer,
                                 std::shared_ptr<const WsSettings> settings) requires(!kSecure)
    : StreamConnection(broker, pool, worker, std::move(peer)),
      settings_(std::move(settings)),
      ws_(std::move(socket)) {}

template <class Next>
WsConnection<Next>::WsConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker,
                                 Socket socket, std::string peer,
                                 std::shared_ptr<const WsSettings> settings,
                                 std::shared_ptr<TlsServer> tls) requires(kSecure)
    : StreamConnection(broker, pool, worker, std::move(peer)),
      settings_(std::move(settings)),
      tls_(std::move(tls)),
      ws_(std::move(socket), tls_->context) {}

template <class Next>
void WsConnection<Next>::open() {
  if constexpr (kSecure) {
    ws_.next_layer().async_handshake(
        asio::ssl::stream_base::server, [self = self_as<WsConnection>()](const error_code& ec) {
          if (ec) {
            self->close(tls_handshake_failed(self->peer(), ec));
            return;
          }
          self->set_cert_common_name(verified_client_cn(self->ws_.next_layer().native_handle()),
                                     self->tls_->cn_as_username);
          self->read_upgrade_request();
        });
  } else {
    read_upgrade_request();
  }
}

template <class Next>
void WsConnection<Next>::read_upgrade_request() {
  upgrade_ = std::make_unique<Upgrade>();
  upgrade_->parser.header_limit(8192);
  http::async_read(ws_.next_layer(), upgrade_->buffer, upgrade_->parser,
                   [self = self_as<WsConnection>()](const error_code& ec, std::size_t) {
                     self->on_upgrade_request(ec);
                   });
}

template <class Next>
void WsConnection<Next>::on_upgrade_request(const error_code& ec) {
  if (closed()) return;  // the CONNECT timeout struck first
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      (kSecure && tls_closed_by_peer(ec))) {
    close("connection closed by the client before the WebSocket upgrade");
    return;
  }
  if (ec) {
    refuse(http::status::bad_request, "malformed HTTP upgrade request: " + ec.message());
    return;
  }
  const auto& request = upgrade_->parser.get();
  std::string_view target(request.target().data(), request.target().size());
  target = target.substr(0, target.find('?'));
  if (target != settings_->path) {
    refuse(http::status::not_found,
           "path " + std::string(target) + " is not the MQTT path " + settings_->path);
    return;
  }
  if (!websocket::is_upgrade(request)) {
    refuse(http::status::upgrade_required, "not a WebSocket upgrade request");
    return;
  }
  auto offered = request[http::field::sec_websocket_protocol];
  std::string protocol = choose_mqtt_subprotocol(std::string_view(offered.data(), offered.size()));
  if (protocol.empty()) {
    refuse(http::status::bad_request,
           "no MQTT subprotocol offered (Sec-WebSocket-Protocol must list mqtt, mqttv3.1 or "
           "mqttv3.1.1)");
    return;
  }
  ws_.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& response) {
    response.set(http::field::sec_websocket_protocol, protocol);
    response.set(http::field::server, "meshmq");
  }));
  // Bounds the closing handshake (Beast waits for the client's close frame and then for its TCP
  // close); an open connection's idleness is the MQTT keepalive's business.
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = std::chrono::seconds(5);
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.read_message_max(settings_->max_message);
  ws_.binary(true);
  ws_.auto_fragment(false);
  ws_.async_accept(request, [self = self_as<WsConnection>()](const error_code& ec) {
    self->upgrade_.reset();
    if (self->closed()) return;
    if (ec) {
      // Beast has answered the client with 400 already (bad key, version, ...).
      self->close("WebSocket handshake failed: " + ec.message());
      return;
    }
    self->opened();
  });
}

template <class Next>
void WsConnection<Next>::refuse(http::status status, std::string reason) {
  auto response = std::make_shared<http::response<http::string_body>>(status, 11);
  response->set(http::field::server, "meshmq");
  response->set(http::field::content_type, "text/plain");
  response->set(http::field::connection, "close");
  response->body() = reason + "\n";
  response->prepare_payload();
  http::async_write(ws_.next_layer(), *response,
                    [self = self_as<WsConnection>(), response, reason = std::move(reason)](
                        const error_code&, std::size_t) {
                      self->upgrade_.reset();
                      self->close("WebSocket upgrade refused (" +
                                  std::to_string(response->result_int()) + "): " + reason);
                    });
}

template <class Next>
void WsConnection<Next>::async_read(asio::mutable_buffer buffer, IoDone done) {
  ws_.async_read_some(buffer, [self = self_as<WsConnection>(), done = std::move(done)](
                                  const error_code& ec, std::size_t n) {
    if (!ec && self->ws_.got_text()) {
      // MQTT-6.0.0-1: data in anything but binary frames ends the connection.
      self->text_frame_ = true;
      done(make_error_code(boost::system::errc::protocol_error), 0);
      return;
    }
    done(ec, n);
  });
}

template <class Next>
void WsConnection<Next>::async_write(asio::const_buffer buffer, IoDone done) {
  ws_.async_write(buffer, std::move(done));
}

template <class Next>
void WsConnection<Next>::async_goodbye(std::function<void()> done) {
  if (!ws_.is_open()) {
    done();  // Beast already ended the stream (the client's close frame, a protocol error)
    return;
  }
  websocket::close_reason reason =
      text_frame_ ? websocket::close_code::unknown_data : websocket::close_code::normal;
  // Also ends TLS politely for WSS. Waits for the client's close frame; the linger bounds that.
  ws_.async_close(reason, [done = std::move(done)](const error_code&) { done(); });
}

template <class Next>
std::string WsConnection<Next>::describe_read_error(const error_code& ec) {
  if (text_frame_) return "text frame over WebSocket (MQTT travels in binary frames only)";
  if (ec == websocket::error::closed) return "WebSocket closed by the client";
  if (ec == websocket::error::message_too_big) {
    return "WebSocket message larger than " + std::to_string(settings_->max_message) +
           " bytes (mqtt.max_packet_size plus the fixed header)";
  }
  if (ec.category() == make_error_code(websocket::error::closed).category()) {
    return "WebSocket protocol error: " + ec.message();
  }
  if (kSecure && tls_closed_by_peer(ec)) return "connection closed by the client";
  return StreamConnection::describe_read_error(ec);
}

template class WsConnection<Socket>;
template class WsConnection<asio::ssl::stream<Socket>>;

}  // namespace meshmq::net
