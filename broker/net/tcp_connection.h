// MQTT over plain TCP: moves bytes between a socket and core::Connection, nothing more.
//
// The socket is a raw non-blocking descriptor on the worker's Poller, not an Asio socket: an idle
// connection costs this object and its session, nothing else in the broker. Input is read into
// the worker's scratch buffer (the codec keeps only a partial packet); output waits in out_ until
// the end of the event-loop pass and leaves in one send().
#pragma once

#include "broker/net/poller.h"
#include "broker/net/socket.h"
#include "broker/net/worker_connection.h"

namespace meshmq::net {

class TcpConnection final : public WorkerConnection, private Poller::Client {
 public:
  // Takes the accepted socket's descriptor out of Asio.
  TcpConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker, Socket socket,
                std::string peer);
  ~TcpConnection() override;

  void begin();

 protected:
  void transport_flush() override;
  void transport_close() override;
  void transport_pause_reading(bool paused) override;

 private:
  void on_poll_events(std::uint32_t events) override;
  void on_deferred() override;
  void close_socket() override;
  void defer();
  void read();
  void write();

  // Owns this connection while its descriptor is registered: nothing else does while it idles.
  std::shared_ptr<TcpConnection> self_;
  int fd_ = -1;
  bool read_paused_ = false;
  bool hangup_ = false;        // the peer closed or reset: read to the end, not to a short read
  bool send_blocked_ = false;  // the socket buffer is full: write again on EPOLLOUT
  bool read_wanted_ = false;   // on the deferred pass: read (bytes may be left unreported)
  bool write_wanted_ = false;  // on the deferred pass: write out_
  bool deferred_ = false;      // queued on the poller's deferred pass
};

}  // namespace meshmq::net
