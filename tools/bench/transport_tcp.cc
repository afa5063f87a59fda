#include <netinet/in.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "tools/bench/transport.h"

namespace meshmq::bench {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

error_code prepare_socket(tcp::socket& socket, const Endpoints& endpoints) {
  error_code ec;
  socket.open(endpoints.broker.protocol(), ec);
  if (ec || !endpoints.source) return ec;
#ifdef IP_BIND_ADDRESS_NO_PORT
  // Without this, bind() picks the ephemeral port before the destination is known, so every
  // connection from one source address needs a distinct port; with it the kernel picks at connect
  // time and only the 4-tuple must be unique.
  const int one = 1;
  ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
  socket.bind(tcp::endpoint(*endpoints.source, 0), ec);
  return ec;
}

namespace {

// Bytes read per readiness event before letting the worker's other connections run.
constexpr int kReadsPerWakeup = 4;

class TcpTransport final : public Transport {
 public:
  TcpTransport(asio::io_context& io, TransportOwner& owner, std::span<std::uint8_t> scratch)
      : socket_(io), owner_(owner), scratch_(scratch) {}

  void open(const Endpoints& endpoints) override {
    if (error_code ec = prepare_socket(socket_, endpoints)) {
      asio::post(socket_.get_executor(), [this, ec] { owner_.on_open(ec); });
      return;
    }
    socket_.async_connect(endpoints.broker, [this](const error_code& ec) {
      if (closed_) return;
      if (!ec) {
        error_code ignored;
        socket_.set_option(tcp::no_delay(true), ignored);
        socket_.non_blocking(true, ignored);
      }
      owner_.on_open(ec);
    });
  }

  void start_reading() override { wait_readable(); }

  void write(std::string_view bytes) override {
    asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                      [this](const error_code& ec, std::size_t) {
                        if (!closed_) owner_.on_written(ec);
                      });
  }

  void close() override {
    closed_ = true;
    error_code ignored;
    socket_.close(ignored);
  }

 private:
  void wait_readable() {
    socket_.async_wait(tcp::socket::wait_read, [this](const error_code& ec) {
      if (closed_) return;
      if (ec) {
        owner_.on_read_error(ec);
        return;
      }
      read_available();
    });
  }

  // Asio's epoll reactor is edge-triggered and a wait is never satisfied speculatively, so a wait
  // may only be armed once the socket has been drained (a short read); otherwise the bytes left
  // behind would sit there until the next segment arrives.
  void read_available() {
    for (int i = 0; i < kReadsPerWakeup; ++i) {
      error_code ec;
      const std::size_t n = socket_.read_some(asio::buffer(scratch_.data(), scratch_.size()), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        wait_readable();
        return;
      }
      if (ec) {
        owner_.on_read_error(ec);
        return;
      }
      owner_.on_data(scratch_.first(n));
      if (closed_) return;
      if (n < scratch_.size()) {
        wait_readable();
        return;
      }
    }
    // Still more to read: yield to the other connections, then carry on without waiting.
    asio::post(socket_.get_executor(), [this] {
      if (!closed_) read_available();
    });
  }

  tcp::socket socket_;
  TransportOwner& owner_;
  std::span<std::uint8_t> scratch_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<Transport> make_tcp_transport(asio::io_context& io, TransportOwner& owner,
                                              std::span<std::uint8_t> scratch) {
  return std::make_unique<TcpTransport>(io, owner, scratch);
}

}  // namespace meshmq::bench
