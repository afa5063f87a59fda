#include "broker/net/stream_connection.h"

#include <boost/asio/post.hpp>

namespace meshmq::net {

namespace asio = boost::asio;

namespace {
// TLS records are up to 16 KiB, but the TLS layer buffers a whole record itself; this only sets
// how much of it is handed over per read.
constexpr std::size_t kReadBufferSize = 4096;
}  // namespace

StreamConnection::StreamConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker,
                                   std::string peer)
    : WorkerConnection(broker, pool, worker, std::move(peer)) {}

void StreamConnection::begin() {
  error_code ec;
  socket().set_option(asio::ip::tcp::no_delay(true), ec);
  start();
  open();
}

void StreamConnection::opened() {
  if (closing()) return;
  open_ = true;
  read_buffer_ = std::make_unique<std::uint8_t[]>(kReadBufferSize);
  read_next();
  // Output produced before the stream was ready (none today, but cheap to honour).
  if (!out_.empty()) transport_flush();
}

std::string StreamConnection::describe_read_error(const error_code& ec) {
  if (ec == asio::error::eof) return "connection closed by the client";
  return "socket error: " + ec.message();
}

void StreamConnection::read_next() {
  if (!open_ || read_in_flight_ || read_paused_ || closing()) return;
  read_in_flight_ = true;
  async_read(asio::buffer(read_buffer_.get(), kReadBufferSize),
             [self = self_as<StreamConnection>()](const error_code& ec, std::size_t n) {
               self->on_read(ec, n);
             });
}

void StreamConnection::on_read(const error_code& ec, std::size_t n) {
  read_in_flight_ = false;
  if (closing()) return;
  if (ec) {
    on_transport_closed(describe_read_error(ec));
    return;
  }
  // Delivered even if reading was paused meanwhile: the core holds input while it is blocked.
  if (n != 0) on_bytes(std::span<const std::uint8_t>(read_buffer_.get(), n));
  read_next();
}

void StreamConnection::transport_pause_reading(bool paused) {
  read_paused_ = paused;
  if (!paused) read_next();
}

void StreamConnection::transport_flush() {
  if (!open_ || write_in_flight_ || flush_posted_ || finished()) return;
  // One write per event-loop pass, as in TcpConnection (for WebSocket: one message).
  flush_posted_ = true;
  asio::post(socket().get_executor(), [self = self_as<StreamConnection>()] {
    self->flush_posted_ = false;
    self->do_write();
  });
}

void StreamConnection::do_write() {
  if (write_in_flight_ || finished()) return;
  if (out_.empty()) {
    if (closing()) say_goodbye();
    return;
  }
  writing_.swap(out_);
  write_in_flight_ = true;
  async_write(asio::buffer(writing_),
              [self = self_as<StreamConnection>()](const error_code& ec, std::size_t) {
                self->write_in_flight_ = false;
                if (ec) {
                  self->writing_.clear();
                  self->on_transport_closed("write failed: " + ec.message());
                  self->finish_close();
                  return;
                }
                std::string().swap(self->writing_);
                if (!self->out_.empty()) {
                  self->do_write();
                } else if (self->closing()) {
                  self->say_goodbye();
                } else {
                  self->on_output_drained();
                }
              });
}

void StreamConnection::transport_close() {
  if (!begin_close()) return;
  read_paused_ = true;
  if (!open_) {
    // Mid-handshake: nothing of ours was sent in the protocol, so there is nothing to say.
    finish_close();
    return;
  }
  linger();
  if (write_in_flight_ || !out_.empty()) {
    do_write();  // let the last packets (a refusing CONNACK, say) leave first
    return;
  }
  say_goodbye();
}

void StreamConnection::say_goodbye() {
  if (goodbye_started_ || finished()) return;
  goodbye_started_ = true;
  async_goodbye([self = self_as<StreamConnection>()] { self->finish_close(); });
}

void StreamConnection::close_socket() {
  // Closing the socket also ends every operation of the layers above it.
  error_code ec;
  socket().shutdown(Socket::shutdown_both, ec);
  socket().close(ec);
}

}  // namespace meshmq::net
