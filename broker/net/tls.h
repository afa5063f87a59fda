// TLS for the TLS and WSS listeners: one OpenSSL context shared by every worker (an SSL_CTX may be
// used from several threads once set up), plus the handshake's loose ends: the client
// certificate's common name and a log line that says why a handshake failed.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>

#include "broker/config/config.h"

namespace meshmq::net {

struct TlsServer {
  boost::asio::ssl::context context{boost::asio::ssl::context::tls_server};
  bool cn_as_username = false;  // tls.cn_as_username
};

// Loads certificate, key and CAs as tls.* says. Throws std::runtime_error naming the key and the
// file on any problem (startup only).
std::shared_ptr<TlsServer> make_tls_server(const config::TlsConfig& config);

// After a successful handshake: the common name of the client certificate if one was presented
// and verified, else empty. Whether it becomes the user name (tls.cn_as_username) is for
// authentication to decide (core::Credentials::certificate_cn).
std::string verified_client_cn(SSL* ssl);

// Logs a failed handshake at warning level and returns the reason for the close.
std::string tls_handshake_failed(const std::string& peer, const boost::system::error_code& ec);

// True for the ways a peer ends a TLS stream without close_notify or after it.
bool tls_closed_by_peer(const boost::system::error_code& ec);

}  // namespace meshmq::net
