// MQTT over WebSocket (MQTT 3.1.1 section 6): binary frames, subprotocol "mqtt". Packets need not
// be aligned with frames, so every batch of packets goes out as one binary message and received
// frame data is handed on as a byte stream.
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>
#include <vector>

#include "tools/bench/transport.h"

namespace meshmq::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::ip::tcp;
using boost::system::error_code;

// Beast reads frame payload into a buffer the caller owns for the whole read, so unlike the TCP
// transport a WebSocket client cannot share the worker's scratch buffer.
constexpr std::size_t kReadBuffer = 16 * 1024;

class WsTransport final : public Transport {
 public:
  WsTransport(asio::io_context& io, TransportOwner& owner) : ws_(io), owner_(owner) {}

  void open(const Endpoints& endpoints) override {
    if (error_code ec = prepare_socket(ws_.next_layer(), endpoints)) {
      asio::post(ws_.get_executor(), [this, ec] { owner_.on_open(ec); });
      return;
    }
    host_ = endpoints.host_header;
    path_ = endpoints.ws_path;
    ws_.next_layer().async_connect(endpoints.broker, [this](const error_code& ec) {
      if (closed_) return;
      if (ec) {
        owner_.on_open(ec);
        return;
      }
      error_code ignored;
      ws_.next_layer().set_option(tcp::no_delay(true), ignored);
      ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
        req.set(beast::http::field::sec_websocket_protocol, "mqtt");
      }));
      ws_.binary(true);
      ws_.auto_fragment(false);
      ws_.async_handshake(response_, host_, path_, [this](const error_code& ec) {
        if (closed_) return;
        // A server that ignores the subprotocol may not speak MQTT on this path at all.
        if (!ec && response_[beast::http::field::sec_websocket_protocol] != "mqtt") {
          owner_.on_open(make_error_code(boost::system::errc::protocol_error));
          return;
        }
        owner_.on_open(ec);
      });
    });
  }

  void start_reading() override {
    if (buffer_.empty()) buffer_.resize(kReadBuffer);
    ws_.async_read_some(asio::buffer(buffer_), [this](const error_code& ec, std::size_t n) {
      if (closed_) return;
      if (ec) {
        owner_.on_read_error(ec);
        return;
      }
      owner_.on_data(std::span<const std::uint8_t>(buffer_.data(), n));
      if (!closed_) start_reading();
    });
  }

  void write(std::string_view bytes) override {
    ws_.async_write(asio::buffer(bytes.data(), bytes.size()),
                    [this](const error_code& ec, std::size_t) {
                      if (!closed_) owner_.on_written(ec);
                    });
  }

  void close() override {
    closed_ = true;
    error_code ignored;
    ws_.next_layer().close(ignored);
  }

 private:
  websocket::stream<tcp::socket> ws_;
  TransportOwner& owner_;
  websocket::response_type response_;
  std::string host_;
  std::string path_;
  std::vector<std::uint8_t> buffer_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<Transport> make_ws_transport(asio::io_context& io, TransportOwner& owner) {
  return std::make_unique<WsTransport>(io, owner);
}

}  // namespace meshmq::bench
