// What the transports of a worker share, whatever moves their bytes (TcpConnection: raw socket on
// the worker's poller; StreamConnection: TLS and WebSocket on Asio streams): a place in the
// worker's connection list (for shutdown), the connection deadline on the worker's timing wheel,
// and the close linger that bounds the last writes of a closing connection.
#pragma once

#include <chrono>

#include "broker/core/connection.h"
#include "broker/net/worker_pool.h"

namespace meshmq::net {

class WorkerConnection : public core::Connection,
                         public PooledConnection,
                         private DeadlineWheel::Entry {
 public:
  WorkerConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker, std::string peer);

  static WorkerConnection& of(PooledConnection& listed) {
    return static_cast<WorkerConnection&>(listed);
  }

 protected:
  WorkerPool& pool() const { return pool_; }
  bool closing() const { return closing_; }
  bool finished() const { return finished_; }
  // Marks the connection as closing; false if it already was (transport_close runs once).
  bool begin_close();
  // From now on the rest of the close (last writes, goodbyes) has kCloseLinger, then the socket
  // is closed anyway.
  void linger();
  // Cancels the deadline and closes the socket (close_socket()), once.
  void finish_close();
  virtual void close_socket() = 0;

 private:
  void transport_arm_timer(std::chrono::milliseconds delay) final;
  void on_deadline() final;

  WorkerPool& pool_;
  bool closing_ = false;
  bool finished_ = false;
};

}  // namespace meshmq::net
