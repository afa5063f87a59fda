#include "broker/net/tcp_connection.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "broker/core/output_buffers.h"

namespace meshmq::net {

namespace {
// Reads per readiness event before yielding to the other connections of the worker.
constexpr int kReadsPerWakeup = 4;

std::string describe_errno(int err) {
  if (err == ECONNRESET) return "connection reset by the client";
  return std::string("socket error: ") + std::strerror(err);
}
}  // namespace

TcpConnection::TcpConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker,
                             Socket socket, std::string peer)
    : WorkerConnection(broker, pool, worker, std::move(peer)) {
  boost::system::error_code ec;
  fd_ = socket.release(ec);  // leaves Asio's reactor: from now on the poller watches it
  if (ec) fd_ = -1;
}

TcpConnection::~TcpConnection() {
  if (fd_ >= 0) ::close(fd_);  // only when torn down with its worker, never closed
}

void TcpConnection::begin() {
  start();
  int err = fd_ < 0 ? EBADF : 0;
  if (err == 0) {
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0) err = errno;
  }
  if (err == 0) {
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    err = pool().poller(worker()).add(fd_, *this);
  }
  if (err != 0) {
    close(describe_errno(err));
    return;
  }
  self_ = std::static_pointer_cast<TcpConnection>(shared_from_this());
}

void TcpConnection::defer() {
  if (deferred_) return;
  deferred_ = true;
  // Aliased: Poller::Client is a private base, out of reach of the converting constructor.
  pool().poller(worker()).defer(
      std::shared_ptr<Poller::Client>(shared_from_this(), static_cast<Poller::Client*>(this)));
}

void TcpConnection::on_poll_events(std::uint32_t events) {
  auto keep_alive = self_;  // a handler may close, which releases self_
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) hangup_ = true;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read();
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && send_blocked_) {
    send_blocked_ = false;
    write();
  }
}

void TcpConnection::on_deferred() {
  deferred_ = false;
  if (read_wanted_) {
    read_wanted_ = false;
    read();
  }
  if (write_wanted_) {
    write_wanted_ = false;
    write();
  }
}

void TcpConnection::read() {
  // Edge-triggered: what is not read now is not reported again. So read until a short read (the
  // socket had no more), or to the end after a hangup; when paused or out of budget, come back on
  // the deferred pass instead.
  if (read_paused_ || closing() || fd_ < 0) return;
  std::span<std::uint8_t> buf = pool().scratch(worker());
  for (int i = 0; i < kReadsPerWakeup; ++i) {
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      on_transport_closed(describe_errno(errno));
      return;
    }
    if (n == 0) {
      on_transport_closed("connection closed by the client");
      return;
    }
    on_bytes(buf.first(static_cast<std::size_t>(n)));
    if (read_paused_ || closing()) return;
    if (static_cast<std::size_t>(n) < buf.size() && !hangup_) return;
  }
  read_wanted_ = true;
  defer();
}

void TcpConnection::transport_pause_reading(bool paused) {
  read_paused_ = paused;
  if (paused || closing()) return;
  // Input that arrived while paused was reported then and will not be again.
  read_wanted_ = true;
  defer();
}

void TcpConnection::transport_flush() {
  if (finished() || write_wanted_) return;
  write_wanted_ = true;
  defer();
}

void TcpConnection::write() {
  if (finished() || send_blocked_) return;
  if (out_.empty()) {
    if (closing()) finish_close();
    return;
  }
  for (;;) {
    const ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        send_blocked_ = true;
        return;
      }
      const int err = errno;
      out_.clear();
      on_transport_closed("write failed: " + std::string(std::strerror(err)));
      finish_close();
      return;
    }
    if (static_cast<std::size_t>(n) < out_.size()) {
      // The socket buffer is full: keep the rest for EPOLLOUT.
      out_.erase(0, static_cast<std::size_t>(n));
      send_blocked_ = true;
      return;
    }
    break;
  }
  // Give the buffer back to the worker's cache: a connection that is not sending holds none.
  core::output_buffers::give_back(std::move(out_));
  out_ = std::string();
  if (closing()) {
    finish_close();
  } else {
    on_output_drained();
  }
}

void TcpConnection::transport_close() {
  if (!begin_close()) return;
  read_paused_ = true;
  if (!out_.empty()) {
    // Let the last packets (a CONNACK with an error code, say) leave, but not forever.
    linger();
    write();
    return;
  }
  finish_close();
}

void TcpConnection::close_socket() {
  if (fd_ >= 0) {
    pool().poller(worker()).remove(fd_, *this);
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    fd_ = -1;
  }
  out_.clear();
  // Dropped at the end of this pass, not now: the caller may still be in a member function.
  if (self_) {
    if (!deferred_) defer();
    self_.reset();
  }
}

}  // namespace meshmq::net
