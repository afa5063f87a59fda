// Accepts MQTT/TCP connections and spreads them over the workers round robin.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string>

#include "broker/core/broker.h"
#include "broker/net/admission.h"
#include "broker/net/worker_pool.h"

namespace meshmq::net {

class TcpListener {
 public:
  TcpListener(core::Broker& broker, WorkerPool& pool, std::size_t home_worker);
  // Binds and listens; throws std::runtime_error naming the address on failure (startup only).
  void listen(const std::string& bind, std::uint16_t port);
  std::uint16_t port() const { return port_; }
  // Connection limits for this listener (see admission.h); without it every socket is taken.
  void set_admission(ListenerAdmission* admission) { admission_ = admission; }
  void start();
  void stop();  // call on the home worker

 private:
  void accept_next();

  core::Broker& broker_;
  WorkerPool& pool_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  const std::size_t home_worker_;
  ListenerAdmission* admission_ = nullptr;
  std::size_t next_worker_ = 0;
  std::uint16_t port_ = 0;
};

}  // namespace meshmq::net
