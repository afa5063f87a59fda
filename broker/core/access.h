// What the core asks before it lets a client in, publish or subscribe. The core owns this
// interface; broker/auth implements it (password file, ACL file) and more authenticators (JWT,
// HTTP) can be chained there without the core changing.
//
// Threading: every call but authenticate() runs on the worker that owns the connection, with that
// worker's index, so an implementation can keep per-worker state (e.g. a cached rules snapshot)
// and needs no lock shared between threads on the publish path. authenticate() may be slow
// (password hashing); it runs once per CONNECT, off the workers when slow_authentication().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meshmq::core {

// What a client presented in CONNECT, plus what the transport knows about it.
struct Credentials {
  std::string_view client_id;
  const std::optional<std::string>* username = nullptr;  // as sent in CONNECT
  const std::optional<std::string>* password = nullptr;  // binary; never log it
  std::string_view peer;                                 // "address:port"
  // Common name of a verified TLS client certificate, set only with tls.cn_as_username: it is
  // then the client's user name and the password is not checked.
  std::string_view certificate_cn;
};

// Who a connected client is for access rules.
struct Principal {
  std::string_view client_id;
  std::string_view username;  // empty for anonymous clients
};

enum class AuthStatus {
  kAccepted,
  kBadCredentials,  // CONNACK 0x04: unknown user or wrong password
  kNotAuthorized,   // CONNACK 0x05: e.g. anonymous while auth.allow_anonymous is false
};

struct AuthResult {
  AuthStatus status = AuthStatus::kAccepted;
  std::string username;  // the identity to use in access rules (%u); empty = anonymous
  std::string reason;    // for the log; never contains the password
};

enum class PublishVerdict { kAllow, kDeny, kDenyAndDisconnect };

class AccessPolicy {
 public:
  virtual ~AccessPolicy() = default;
  // May run on any thread, concurrently: when slow_authentication() says so, the core calls it
  // off the workers (Executor::post_blocking), so hashing a password or asking a remote service
  // never stalls the other clients of a worker.
  virtual AuthResult authenticate(std::size_t worker, const Credentials& credentials) = 0;
  virtual bool slow_authentication(const Credentials&) { return false; }
  virtual PublishVerdict may_publish(std::size_t worker, const Principal& who,
                                     std::string_view topic) = 0;
  virtual bool may_subscribe(std::size_t worker, const Principal& who, std::string_view filter) = 0;

  // Checks at delivery, for granted filters that still match some denied topics (a `#`
  // subscription under a `deny subscribe ... secret/#` rule): delivery_filtered() marks such a
  // subscription at SUBSCRIBE, and may_receive() is asked for each message it matches.
  // generation() changes when the rules are reloaded; a subscription granted under another
  // generation (or restored from storage, generation 0) is checked at every delivery.
  virtual bool delivery_filtered(std::size_t, const Principal&, std::string_view) { return false; }
  virtual bool may_receive(std::size_t, const Principal&, std::string_view) { return true; }
  virtual std::uint32_t generation(std::size_t) { return 0; }
};

// Everyone may connect (with any user name), publish and subscribe: the policy of a broker built
// without broker/auth, and of unit tests.
class AllowAll final : public AccessPolicy {
 public:
  AuthResult authenticate(std::size_t, const Credentials& c) override {
    AuthResult r;
    if (c.username && c.username->has_value()) r.username = **c.username;
    return r;
  }
  PublishVerdict may_publish(std::size_t, const Principal&, std::string_view) override {
    return PublishVerdict::kAllow;
  }
  bool may_subscribe(std::size_t, const Principal&, std::string_view) override { return true; }
};

}  // namespace meshmq::core
