#include "broker/net/tls.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <stdexcept>

namespace meshmq::net {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

namespace {

std::string subject_of(X509* cert) {
  if (cert == nullptr) return "no certificate";
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

// Logs each certificate that fails verification with OpenSSL's reason, so "bad certificate" in
// the handshake error can be traced to the certificate and the cause (expired, unknown CA, ...).
bool log_verify_failure(bool preverified, ssl::verify_context& ctx) {
  if (!preverified) {
    X509_STORE_CTX* store = ctx.native_handle();
    const int error = X509_STORE_CTX_get_error(store);
    spdlog::warn("TLS client certificate rejected: {} (subject {}, chain depth {})",
                 X509_verify_cert_error_string(error),
                 subject_of(X509_STORE_CTX_get_current_cert(store)),
                 X509_STORE_CTX_get_error_depth(store));
  }
  return preverified;
}

void load(const char* key, const std::string& path, const std::function<void(error_code&)>& fn) {
  error_code ec;
  fn(ec);
  if (ec) {
    throw std::runtime_error(std::string(key) + ": cannot load \"" + path + "\": " + ec.message());
  }
}

}  // namespace

std::shared_ptr<TlsServer> make_tls_server(const config::TlsConfig& c) {
  auto tls = std::make_shared<TlsServer>();
  ssl::context& ctx = tls->context;
  tls->cn_as_username = c.cn_as_username;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx.native_handle(),
                                c.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  load("tls.cert_file", c.cert_file,
       [&](error_code& ec) { ctx.use_certificate_chain_file(c.cert_file, ec); });
  load("tls.key_file", c.key_file,
       [&](error_code& ec) { ctx.use_private_key_file(c.key_file, ssl::context::pem, ec); });
  if (!c.ca_file.empty()) {
    load("tls.ca_file", c.ca_file, [&](error_code& ec) { ctx.load_verify_file(c.ca_file, ec); });
  }
  if (c.verify_client == "none") {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    if (c.ca_file.empty()) {
      throw std::runtime_error("tls.verify_client = " + c.verify_client +
                               " needs tls.ca_file (the CAs client certificates must chain to)");
    }
    ssl::verify_mode mode = ssl::verify_peer;
    if (c.verify_client == "required") mode |= ssl::verify_fail_if_no_peer_cert;
    ctx.set_verify_mode(mode);
    ctx.set_verify_callback(log_verify_failure);
    // Tell clients which CAs are accepted, so they pick the right certificate.
    SSL_CTX_set_client_CA_list(ctx.native_handle(), SSL_load_client_CA_file(c.ca_file.c_str()));
  }
  if (c.cn_as_username && c.verify_client == "none") {
    spdlog::warn("tls.cn_as_username has no effect with tls.verify_client = none");
  }
  return tls;
}

std::string verified_client_cn(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return {};
  std::string cn;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    X509_NAME* name = X509_get_subject_name(cert);
    int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (index >= 0) {
      ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
      unsigned char* utf8 = nullptr;
      int len = ASN1_STRING_to_UTF8(&utf8, data);
      if (len > 0) cn.assign(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
      OPENSSL_free(utf8);
    }
  }
  X509_free(cert);
  return cn;
}

std::string tls_handshake_failed(const std::string& peer, const error_code& ec) {
  std::string reason = "TLS handshake failed: ";
  if (tls_closed_by_peer(ec)) {
    reason += "connection closed by the client";
  } else {
    reason += ec.message();
  }
  spdlog::warn("{} from {}", reason, peer);
  return reason;
}

bool tls_closed_by_peer(const error_code& ec) {
  return ec == boost::asio::error::eof || ec == ssl::error::stream_truncated ||
         ec == boost::asio::error::connection_reset;
}

}  // namespace meshmq::net
