// MQTT over plain TCP: moves bytes between a socket and core::Connection, nothing more.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "broker/core/connection.h"
#include "broker/net/worker_pool.h"

namespace meshmq::net {

class TcpConnection final : public core::Connection, private DeadlineWheel::Entry {
 public:
  // Bound to the concrete io_context executor rather than any_io_executor: 40 bytes less per
  // socket and per timer, which counts at a million connections.
  using Executor = boost::asio::io_context::executor_type;
  using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
  using Timer = boost::asio::basic_waitable_timer<
      std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>, Executor>;

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
