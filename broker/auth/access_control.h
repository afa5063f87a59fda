// core::AccessPolicy for a node: authenticators in a chain (the password file now; JWT or HTTP can
// be added), auth.allow_anonymous, TLS certificate CN as user name, and the ACL.
//
// Reload (SIGHUP) swaps in new state without dropping connections. The ACL is read on every
// PUBLISH, so it is published as an immutable snapshot plus a generation number: each worker keeps
// its own reference to the snapshot and re-fetches it (under a mutex) only when the generation it
// saw changes. The publish path thus reads one shared atomic and takes no lock.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/auth/acl.h"
#include "broker/auth/authenticator.h"
#include "broker/core/access.h"

namespace meshmq::auth {

struct AuthSettings {
  bool allow_anonymous = true;
  std::string password_file;  // empty = none
  std::string acl_file;       // empty = no rules: acl_default decides everything
  bool acl_default_allow = true;
  bool disconnect_on_denied_publish = false;
};

class AccessControl final : public core::AccessPolicy {
 public:
  AccessControl(AuthSettings settings, std::size_t workers);
  ~AccessControl() override;

  // Reads the files; throws std::runtime_error listing every problem (startup).
  void load();
  // Re-reads the files (SIGHUP). Anything that fails to load keeps its previous state; the
  // problems are logged. Returns false if anything failed.
  bool reload();
  // For authenticators beyond the password file (JWT, HTTP, tests). Before the first connection.
  void add_authenticator(std::unique_ptr<Authenticator> authenticator);

  core::AuthResult authenticate(std::size_t worker, const core::Credentials& c) override;
  // A user name for the authenticators (a password hash) and no verified certificate.
  bool slow_authentication(const core::Credentials& c) override;
  core::PublishVerdict may_publish(std::size_t worker, const core::Principal& who,
                                   std::string_view topic) override;
  bool may_subscribe(std::size_t worker, const core::Principal& who,
                     std::string_view filter) override;
  bool delivery_filtered(std::size_t worker, const core::Principal& who,
                         std::string_view filter) override;
  bool may_receive(std::size_t worker, const core::Principal& who, std::string_view topic) override;
  // 0 while the rules deny no subscription at all (nothing to check at delivery), else the
  // reload generation.
  std::uint32_t generation(std::size_t worker) override;

 private:
  struct alignas(64) WorkerView {
    std::uint64_t generation = 0;
    std::shared_ptr<const Acl> acl;
  };
  const Acl& acl(std::size_t worker);
  bool load_acl(std::vector<std::string>& errors);

  const AuthSettings settings_;
  std::vector<std::unique_ptr<Authenticator>> authenticators_;
  std::vector<WorkerView> views_;  // one per worker, touched only by it
  std::mutex acl_mu_;
  std::shared_ptr<const Acl> acl_;
  std::atomic<std::uint64_t> generation_{1};
};

}  // namespace meshmq::auth
