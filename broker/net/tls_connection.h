// MQTT over TLS: a TLS handshake (with optional client certificate), then the same byte pipe as
// every other transport.
#pragma once

#include <boost/asio/ssl/stream.hpp>

#include "broker/net/stream_connection.h"
#include "broker/net/tls.h"

namespace meshmq::net {

class TlsConnection final : public StreamConnection {
 public:
  TlsConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker, Socket socket,
                std::string peer, std::shared_ptr<TlsServer> tls);

 private:
  void open() override;
  void async_read(boost::asio::mutable_buffer buffer, IoDone done) override;
  void async_write(boost::asio::const_buffer buffer, IoDone done) override;
  void async_goodbye(std::function<void()> done) override;
  Socket& socket() override { return stream_.next_layer(); }
  std::string describe_read_error(const error_code& ec) override;

  std::shared_ptr<TlsServer> tls_;  // declared first: the stream uses its context
  boost::asio::ssl::stream<Socket> stream_;
};

}  // namespace meshmq::net
