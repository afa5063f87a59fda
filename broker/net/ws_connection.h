// MQTT over WebSocket (and, with Next = an SSL stream, over secure WebSocket), MQTT 3.1.1 section
// 6: an HTTP upgrade on the configured path that must offer an MQTT subprotocol (echoed back),
// then binary messages whose payloads form one byte stream: a packet may span messages and a
// message may hold several packets. A text message closes the connection (code 1003).
#pragma once

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <type_traits>

#include "broker/net/stream_connection.h"
#include "broker/net/tls.h"

namespace meshmq::net {

struct WsSettings {
  std::string path;         // upgrade requests elsewhere get 404
  std::size_t max_message;  // larger messages close the connection (code 1009)
};

template <class Next>
class WsConnection final : public StreamConnection {
 public:
  static constexpr bool kSecure = !std::is_same_v<Next, Socket>;

  WsConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker, Socket socket,
               std::string peer, std::shared_ptr<const WsSettings> settings) requires(!kSecure);
  WsConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker, Socket socket,
               std::string peer, std::shared_ptr<const WsSettings> settings,
               std::shared_ptr<TlsServer> tls) requires(kSecure);

 private:
  // Alive only during the upgrade: an open connection keeps no HTTP state.
  struct Upgrade {
    boost::beast::flat_buffer buffer{8192};
    boost::beast::http::request_parser<boost::beast::http::empty_body> parser;
  };

  void open() override;
  void async_read(boost::asio::mutable_buffer buffer, IoDone done) override;
  void async_write(boost::asio::const_buffer buffer, IoDone done) override;
  void async_goodbye(std::function<void()> done) override;
  Socket& socket() override { return boost::beast::get_lowest_layer(ws_); }
  std::string describe_read_error(const error_code& ec) override;

  void read_upgrade_request();
  void on_upgrade_request(const error_code& ec);
  void refuse(boost::beast::http::status status, std::string reason);

  std::shared_ptr<const WsSettings> settings_;
  std::shared_ptr<TlsServer> tls_;  // WSS only; declared before the stream that uses it
  boost::beast::websocket::stream<Next> ws_;
  std::unique_ptr<Upgrade> upgrade_;
  bool text_frame_ = false;
};

using PlainWsConnection = WsConnection<Socket>;
using SecureWsConnection = WsConnection<boost::asio::ssl::stream<Socket>>;

// The subprotocol to echo: the first MQTT one in a Sec-WebSocket-Protocol header value (a comma
// separated list), or empty if it offers none.
std::string choose_mqtt_subprotocol(std::string_view offered);

}  // namespace meshmq::net
