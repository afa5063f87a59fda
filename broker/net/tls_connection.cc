#include "broker/net/tls_connection.h"

#include <boost/asio/write.hpp>

namespace meshmq::net {

namespace asio = boost::asio;

TlsConnection::TlsConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker,
                             Socket socket, std::string peer, std::shared_ptr<TlsServer> tls)
    : StreamConnection(broker, pool, worker, std::move(peer)),
      tls_(std::move(tls)),
      stream_(std::move(socket), tls_->context) {}

void TlsConnection::open() {
  stream_.async_handshake(
      asio::ssl::stream_base::server, [self = self_as<TlsConnection>()](const error_code& ec) {
        if (ec) {
          self->close(tls_handshake_failed(self->peer(), ec));
          return;
        }
        self->set_cert_common_name(verified_client_cn(self->stream_.native_handle()),
                                   self->tls_->cn_as_username);
        self->opened();
      });
}

void TlsConnection::async_read(asio::mutable_buffer buffer, IoDone done) {
  stream_.async_read_some(buffer, std::move(done));
}

void TlsConnection::async_write(asio::const_buffer buffer, IoDone done) {
  asio::async_write(stream_, buffer, std::move(done));
}

void TlsConnection::async_goodbye(std::function<void()> done) {
  // Sends close_notify; completes when the client answers or the socket fails. The close linger
  // ends it for clients that never answer.
  stream_.async_shutdown([done = std::move(done)](const error_code&) { done(); });
}

std::string TlsConnection::describe_read_error(const error_code& ec) {
  if (tls_closed_by_peer(ec)) return "connection closed by the client";
  return "TLS error: " + ec.message();
}

}  // namespace meshmq::net
