#include "broker/net/stream_connection.h"

#include <boost/asio/post.hpp>

namespace meshmq::net {

namespace asio = boost::asio;

namespace {
// TLS records are up to 16 KiB, but the TLS layer buffers a whole record itself; this only sets
// how much of it is handed over per read.
constexpr std::size_t kReadBufferSize = 4096;
constexpr auto kCloseLinger = std::chrono::seconds(2);
}  // namespace

StreamConnection::StreamConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker,
                                   std::string peer)
    : core::Connection(broker, worker, std::move(peer)), pool_(pool) {
  pool_.connections(worker).insert(this);
}

StreamConnection::~StreamConnection() {
  pool_.connections(worker()).erase(this);
}

void StreamConnection::begin() {
  error_code ec;
  socket().set_option(asio::ip::tcp::no_delay(true), ec);
  start();
  open();
}

void StreamConnection::opened() {
  if (closing_) return;
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
  if (!open_ || read_in_flight_ || read_paused_ || closing_) return;
  read_in_flight_ = true;
  async_read(asio::buffer(read_buffer_.get(), kReadBufferSize),
             [self = self_as<StreamConnection>()](const error_code& ec, std::size_t n) {
               self->on_read(ec, n);
             });
}

void StreamConnection::on_read(const error_code& ec, std::size_t n) {
  read_in_flight_ = false;
  if (closing_) return;
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
  if (!open_ || write_in_flight_ || flush_posted_ || finished_) return;
  // One write per event-loop pass, as in TcpConnection (for WebSocket: one message).
  flush_posted_ = true;
  asio::post(socket().get_executor(), [self = self_as<StreamConnection>()] {
    self->flush_posted_ = false;
    self->do_write();
  });
}

void StreamConnection::do_write() {
  if (write_in_flight_ || finished_) return;
  if (out_.empty()) {
    if (closing_) say_goodbye();
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
                } else if (self->closing_) {
                  self->say_goodbye();
                } else {
                  self->on_output_drained();
                }
              });
}

void StreamConnection::transport_close() {
  if (closing_) return;
  closing_ = true;
  read_paused_ = true;
  if (!open_) {
    // Mid-handshake: nothing of ours was sent in the protocol, so there is nothing to say.
    finish_close();
    return;
  }
  pool_.wheel(worker()).schedule(*this, std::chrono::steady_clock::now() + kCloseLinger);
  if (write_in_flight_ || !out_.empty()) {
    do_write();  // let the last packets (a refusing CONNACK, say) leave first
    return;
  }
  say_goodbye();
}

void StreamConnection::say_goodbye() {
  if (goodbye_started_ || finished_) return;
  goodbye_started_ = true;
  async_goodbye([self = self_as<StreamConnection>()] { self->finish_close(); });
}

void StreamConnection::finish_close() {
  if (finished_) return;
  finished_ = true;
  pool_.wheel(worker()).cancel(*this);
  // Closing the socket also ends every operation of the layers above it.
  error_code ec;
  socket().shutdown(Socket::shutdown_both, ec);
  socket().close(ec);
}

void StreamConnection::transport_arm_timer(std::chrono::milliseconds delay) {
  if (closing_) return;
  pool_.wheel(worker()).schedule(*this, std::chrono::steady_clock::now() + delay);
}

void StreamConnection::on_deadline() {
  auto keep_alive = shared_from_this();  // firing may drop the last other reference
  if (closing_) {
    finish_close();  // the close linger ran out
  } else {
    on_timer();
  }
}

}  // namespace meshmq::net
