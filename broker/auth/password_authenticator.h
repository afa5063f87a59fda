// Authenticator backed by auth.password_file (format in password.h).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "broker/auth/authenticator.h"
#include "broker/auth/password.h"

namespace meshmq::auth {

class PasswordFileAuthenticator final : public Authenticator {
 public:
  explicit PasswordFileAuthenticator(std::string path) : path_(std::move(path)) {}
  std::string_view name() const override { return "password file"; }
  Verdict check(const core::Credentials& credentials, std::string& reason) override;
  bool reload(std::vector<std::string>& errors) override;
  std::size_t users() const;

 private:
  std::string path_;
  mutable std::mutex mu_;  // guards the pointer only; taken once per CONNECT
  std::shared_ptr<const PasswordFile> file_;
};

}  // namespace meshmq::auth
