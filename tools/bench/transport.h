// A client's byte stream to the broker: plain TCP, or MQTT over WebSocket (binary frames,
// subprotocol "mqtt"). The client sees one interface and calls back through TransportOwner, so the
// MQTT logic is written once and the per-message path has no virtual call (reads and writes are
// per batch).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace meshmq::bench {

class TransportOwner {
 public:
  // TCP connected (and, for WebSocket, the upgrade accepted), or why not.
  virtual void on_open(const boost::system::error_code& ec) = 0;
  // Received bytes, valid only during the call.
  virtual void on_data(std::span<const std::uint8_t> bytes) = 0;
  // End of stream or a socket error; no more on_data follows.
  virtual void on_read_error(const boost::system::error_code& ec) = 0;
  virtual void on_written(const boost::system::error_code& ec) = 0;

 protected:
  ~TransportOwner() = default;
};

struct Endpoints {
  boost::asio::ip::tcp::endpoint broker;
  std::optional<boost::asio::ip::address> source;
  std::string host_header;  // "host:port", for the WebSocket upgrade
  std::string ws_path;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void open(const Endpoints& endpoints) = 0;
  virtual void start_reading() = 0;
  // One write at a time; `bytes` must stay valid until on_written.
  virtual void write(std::string_view bytes) = 0;
  // Abortive close; nothing more is delivered to the owner.
  virtual void close() = 0;
};

// `scratch` is the worker's shared read buffer: a TCP client waits for readability and reads into
// it, so an idle connection holds no read buffer.
std::unique_ptr<Transport> make_tcp_transport(boost::asio::io_context& io, TransportOwner& owner,
                                              std::span<std::uint8_t> scratch);
std::unique_ptr<Transport> make_ws_transport(boost::asio::io_context& io, TransportOwner& owner);

// Opens `socket` and binds it to the source address, if one is given.
boost::system::error_code prepare_socket(boost::asio::ip::tcp::socket& socket,
                                         const Endpoints& endpoints);

}  // namespace meshmq::bench
