// Accepts TCP connections for one listener (MQTT over TCP, TLS, WebSocket or secure WebSocket)
// and spreads them over the workers round robin. The protocol is the factory's business, so
// whatever the accept path checks applies to every listener alike.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <string>

#include "broker/core/broker.h"
#include "broker/net/admission.h"
#include "broker/net/socket.h"
#include "broker/net/worker_pool.h"

namespace meshmq::net {

class TcpListener {
 public:
  // Runs on `worker` and turns the accepted socket into a connection living there, which holds
  // the admission ticket (if any) for its lifetime.
  using Factory = std::function<void(std::size_t worker, Socket socket, std::string peer,
                                     core::TicketHold ticket)>;

  // `name` ("MQTT/TCP", "MQTT/TLS", ...) labels the listener in log lines.
  TcpListener(std::string name, core::Broker& broker, WorkerPool& pool, std::size_t home_worker,
              Factory factory);
  // Binds and listens; throws std::runtime_error naming the address on failure (startup only).
  void listen(const std::string& bind, std::uint16_t port);
  const std::string& name() const { return name_; }
  std::uint16_t port() const { return port_; }
  // Connection limits for this listener (see admission.h); without it every socket is taken.
  void set_admission(ListenerAdmission* admission) { admission_ = admission; }
  void start();
  void stop();  // call on the home worker

 private:
  void accept_next();

  const std::string name_;
  core::Broker& broker_;
  WorkerPool& pool_;
  const Factory factory_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  const std::size_t home_worker_;
  ListenerAdmission* admission_ = nullptr;
  std::size_t next_worker_ = 0;
  std::uint16_t port_ = 0;
};

}  // namespace meshmq::net
