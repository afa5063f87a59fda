#include "broker/net/tcp_listener.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace meshmq::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

TcpListener::TcpListener(std::string name, core::Broker& broker, WorkerPool& pool,
                         std::size_t home_worker, Factory factory)
    : name_(std::move(name)),
      broker_(broker),
      pool_(pool),
      factory_(std::move(factory)),
      acceptor_(pool.context(home_worker)),
      retry_timer_(pool.context(home_worker)),
      home_worker_(home_worker) {}

void TcpListener::listen(const std::string& bind, std::uint16_t port) {
  error_code ec;
  auto address = asio::ip::make_address(bind, ec);
  if (ec) throw std::runtime_error(name_ + " bind address \"" + bind + "\" is not an IP address");
  tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error(name_ + ": cannot listen on " + bind + ":" + std::to_string(port) +
                             ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
}

void TcpListener::start() {
  accept_next();
}

void TcpListener::stop() {
  error_code ec;
  acceptor_.close(ec);
  retry_timer_.cancel(ec);
}

void TcpListener::accept_next() {
  const std::size_t worker = next_worker_;
  next_worker_ = (next_worker_ + 1) % pool_.size();
  // Accepted straight into a socket of the target worker's io_context, typed with its concrete
  // executor (see net::Socket).
  auto socket = std::make_unique<Socket>(pool_.context(worker));
  Socket& peer_socket = *socket;
  acceptor_.async_accept(
      peer_socket, [this, worker, socket = std::move(socket)](const error_code& ec) mutable {
        if (ec == asio::error::operation_aborted) return;
        if (ec) {
          // Out of descriptors and the like: say so and back off instead of spinning.
          spdlog::error("{} accept on port {} failed: {}; retrying in 100 ms", name_, port_,
                        ec.message());
          retry_timer_.expires_after(std::chrono::milliseconds(100));
          retry_timer_.async_wait([this](const error_code& ec) {
            if (!ec) accept_next();
          });
          return;
        }
        error_code pec;
        auto remote = socket->remote_endpoint(pec);
        std::string peer = pec ? std::string("unknown")
                               : remote.address().to_string() + ":" + std::to_string(remote.port());
        core::TicketHold ticket;
        if (admission_) {
          ticket = admission_->admit(broker_.counters(home_worker_), peer);
          if (!ticket) {
            error_code ignored;
            socket->close(ignored);
            accept_next();
            return;
          }
        }
        asio::post(pool_.context(worker),
                   [this, worker, socket = std::move(socket), peer = std::move(peer),
                    ticket = std::move(ticket)]() mutable {
                     factory_(worker, std::move(*socket), std::move(peer), std::move(ticket));
                   });
        accept_next();
      });
}

}  // namespace meshmq::net
