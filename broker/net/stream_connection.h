// Base of the transports whose stream frames and buffers on its own (TLS, WebSocket, WebSocket
// over TLS): handshakes first, then plain asynchronous reads and writes moving bytes between the
// stream and core::Connection. Derived classes supply the stream operations only.
//
// Unlike TcpConnection, which reads into the worker's scratch buffer when its poller reports input,
// a read here is outstanding while the connection idles, so each connection owns a small read
// buffer (the TLS and WebSocket layers keep their own buffers anyway).
#pragma once

#include <boost/asio/buffer.hpp>
#include <functional>
#include <memory>
#include <string>

#include "broker/net/socket.h"
#include "broker/net/worker_connection.h"

namespace meshmq::net {

class StreamConnection : public WorkerConnection {
 public:
  using error_code = boost::system::error_code;
  using IoDone = std::function<void(const error_code&, std::size_t)>;

  StreamConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker, std::string peer);

  // Arms the CONNECT timeout, which also bounds the handshakes, and starts them.
  void begin();

 protected:
  // Handshakes (TLS, HTTP upgrade). Call opened() once they succeed; on failure call close().
  virtual void open() = 0;
  // At most one read and one write are outstanding at a time.
  virtual void async_read(boost::asio::mutable_buffer buffer, IoDone done) = 0;
  virtual void async_write(boost::asio::const_buffer buffer, IoDone done) = 0;
  // Polite end of an opened stream (TLS close_notify, WebSocket close frame); `done` runs after
  // it. Bounded by the close linger: the socket is closed when that runs out.
  virtual void async_goodbye(std::function<void()> done) { done(); }
  virtual Socket& socket() = 0;  // the TCP socket under everything

  void opened();
  // A read failed: the message for the log. Derived classes name their protocol's errors.
  virtual std::string describe_read_error(const error_code& ec);

  template <class Derived>
  std::shared_ptr<Derived> self_as() {
    return std::static_pointer_cast<Derived>(shared_from_this());
  }

 private:
  void transport_flush() override;
  void transport_close() override;
  void transport_pause_reading(bool paused) override;
  std::size_t transport_backlog() const override { return writing_.size(); }
  void close_socket() override;

  void read_next();
  void on_read(const error_code& ec, std::size_t n);
  void do_write();
  void say_goodbye();

  std::unique_ptr<std::uint8_t[]> read_buffer_;
  std::string writing_;         // the output being written
  std::string certificate_cn_;  // allocated once the handshakes succeed
  bool open_ = false;
  bool read_in_flight_ = false;
  bool read_paused_ = false;
  bool write_in_flight_ = false;
  bool flush_posted_ = false;
  bool goodbye_started_ = false;
};

}  // namespace meshmq::net
