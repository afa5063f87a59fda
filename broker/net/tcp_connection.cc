#include "broker/net/tcp_connection.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "broker/core/output_buffers.h"

namespace meshmq::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// Bytes read per readiness event before yielding to other connections of the worker.
constexpr int kReadsPerWakeup = 4;
constexpr auto kCloseLinger = std::chrono::seconds(2);
}  // namespace

TcpConnection::TcpConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker,
                             Socket socket, std::string peer)
    : core::Connection(broker, worker, std::move(peer)), pool_(pool), socket_(std::move(socket)) {
  pool_.connections(worker).insert(this);
}

TcpConnection::~TcpConnection() {
  pool_.connections(worker()).erase(this);
}

std::shared_ptr<TcpConnection> TcpConnection::self() {
  return std::static_pointer_cast<TcpConnection>(shared_from_this());
}

void TcpConnection::begin() {
  error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  start();
  wait_readable();
}

void TcpConnection::wait_readable() {
  if (read_waiting_ || read_paused_ || closing_) return;
  read_waiting_ = true;
  // Wait for readiness, then read into the worker's scratch buffer: an idle connection holds no
  // read buffer of its own (the codec keeps only a partial packet).
  socket_.async_wait(Socket::wait_read,
                     [self = self()](const error_code& ec) { self->on_readable(ec); });
}

void TcpConnection::on_readable(const error_code& wait_ec) {
  read_waiting_ = false;
  if (closing_) return;
  if (wait_ec) {
    on_transport_closed("socket error: " + wait_ec.message());
    return;
  }
  std::span<std::uint8_t> buf = pool_.scratch(worker());
  for (int i = 0; i < kReadsPerWakeup && !read_paused_ && !closing_; ++i) {
    error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(buf.data(), buf.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec == asio::error::eof) {
      on_transport_closed("connection closed by the client");
      return;
    }
    if (ec) {
      on_transport_closed("socket error: " + ec.message());
      return;
    }
    on_bytes(buf.first(n));
    if (n < buf.size()) break;
    if (i + 1 == kReadsPerWakeup) {
      // Out of budget with bytes possibly left: Asio's epoll reactor is edge-triggered, so a new
      // wait would not fire for them. Come back after the other handlers instead.
      read_waiting_ = true;
      asio::post(socket_.get_executor(), [self = self()] { self->on_readable({}); });
      return;
    }
  }
  wait_readable();
}

void TcpConnection::transport_pause_reading(bool paused) {
  read_paused_ = paused;
  if (paused || read_waiting_ || closing_) return;
  // Bytes may have arrived while paused, and the edge-triggered reactor will not report them
  // again: try a read first, which falls back to waiting when there is nothing.
  read_waiting_ = true;
  asio::post(socket_.get_executor(), [self = self()] { self->on_readable({}); });
}

void TcpConnection::transport_flush() {
  if (write_in_flight_ || flush_posted_ || finished_) return;
  // Deferred to the end of this event-loop pass so every packet produced meanwhile (a burst of
  // deliveries, PUBACKs for a batch of publishes) leaves in one write.
  flush_posted_ = true;
  asio::post(socket_.get_executor(), [self = self()] {
    self->flush_posted_ = false;
    self->do_write();
  });
}

void TcpConnection::do_write() {
  if (write_in_flight_ || finished_) return;
  if (out_.empty()) {
    if (closing_) finish_close();
    return;
  }
  writing_.swap(out_);
  write_in_flight_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = self()](const error_code& ec, std::size_t) {
                      self->write_in_flight_ = false;
                      if (ec) {
                        self->writing_.clear();
                        self->on_transport_closed("write failed: " + ec.message());
                        self->finish_close();
                        return;
                      }
                      // Give the buffer back to the worker's cache: a connection that is not
                      // sending holds no write buffer.
                      core::output_buffers::give_back(std::move(self->writing_));
                      self->writing_ = std::string();
                      if (!self->out_.empty()) {
                        self->do_write();
                      } else if (self->closing_) {
                        self->finish_close();
                      } else {
                        self->on_output_drained();
                      }
                    });
}

void TcpConnection::transport_close() {
  if (closing_) return;
  closing_ = true;
  read_paused_ = true;
  if (write_in_flight_ || !out_.empty()) {
    // Let the last packets (a CONNACK with an error code, say) leave, but not forever.
    pool_.wheel(worker()).schedule(*this, std::chrono::steady_clock::now() + kCloseLinger);
    do_write();
    return;
  }
  finish_close();
}

void TcpConnection::finish_close() {
  if (finished_) return;
  finished_ = true;
  pool_.wheel(worker()).cancel(*this);
  error_code ec;
  socket_.shutdown(Socket::shutdown_both, ec);
  socket_.close(ec);
}

void TcpConnection::transport_arm_timer(std::chrono::milliseconds delay) {
  if (closing_) return;
  pool_.wheel(worker()).schedule(*this, std::chrono::steady_clock::now() + delay);
}

void TcpConnection::on_deadline() {
  auto keep_alive = self();  // firing may drop the last other reference
  if (closing_) {
    finish_close();  // the close linger ran out
  } else {
    on_timer();
  }
}

}  // namespace meshmq::net
