// MQTT over plain TCP: moves bytes between a socket and core::Connection, nothing more.
#pragma once

#include "broker/core/connection.h"
#include "broker/net/socket.h"
#include "broker/net/worker_pool.h"

namespace meshmq::net {

class TcpConnection final : public core::Connection, private DeadlineWheel::Entry {
 public:
  using Socket = net::Socket;

  TcpConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker, Socket socket,
                std::string peer);
  ~TcpConnection() override;

  void begin();

 protected:
  void transport_flush() override;
  void transport_close() override;
  void transport_pause_reading(bool paused) override;
  void transport_arm_timer(std::chrono::milliseconds delay) override;

 private:
  std::shared_ptr<TcpConnection> self();
  void wait_readable();
  void on_readable(const boost::system::error_code& ec);
  void do_write();
  void finish_close();
  void on_deadline() override;

  WorkerPool& pool_;
  Socket socket_;
  bool read_waiting_ = false;
  bool read_paused_ = false;
  bool write_in_flight_ = false;
  bool flush_posted_ = false;
  bool closing_ = false;
  bool finished_ = false;
};

}  // namespace meshmq::net
