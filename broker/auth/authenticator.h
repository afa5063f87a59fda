// One way of checking credentials. AccessControl asks its authenticators in order; the first that
// knows the user decides. JWT or HTTP authentication is one more implementation of this.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "broker/core/access.h"

namespace meshmq::auth {

enum class Verdict {
  kAccept,       // credentials are right
  kReject,       // this authenticator knows the user and the credentials are wrong
  kUnknownUser,  // not this authenticator's user: ask the next one
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual std::string_view name() const = 0;
  // Called on worker threads, concurrently; may be slow (it runs once per CONNECT). `reason` is
  // for the log and must never contain the password.
  virtual Verdict check(const core::Credentials& credentials, std::string& reason) = 0;
  // Re-reads its configuration (SIGHUP). On failure keeps the old state and appends the problems.
  virtual bool reload(std::vector<std::string>& errors) = 0;
};

}  // namespace meshmq::auth
