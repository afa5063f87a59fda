#include "broker/auth/password_authenticator.h"

namespace meshmq::auth {

bool PasswordFileAuthenticator::reload(std::vector<std::string>& errors) {
  auto file = PasswordFile::load(path_, errors);
  if (!file) return false;
  auto fresh = std::make_shared<const PasswordFile>(std::move(*file));
  std::lock_guard lock(mu_);
  file_ = std::move(fresh);
  return true;
}

std::size_t PasswordFileAuthenticator::users() const {
  std::lock_guard lock(mu_);
  return file_ ? file_->size() : 0;
}

Verdict PasswordFileAuthenticator::check(const core::Credentials& c, std::string& reason) {
  if (c.username == nullptr || !c.username->has_value()) return Verdict::kUnknownUser;
  std::shared_ptr<const PasswordFile> file;
  {
    std::lock_guard lock(mu_);
    file = file_;
  }
  const std::string& user = **c.username;
  const PasswordHash* hash = file ? file->find(user) : nullptr;
  const std::string_view password =
      c.password != nullptr && c.password->has_value() ? std::string_view(**c.password) : "";
  if (hash == nullptr) {
    // Spend the same time as for a known user, so response times do not reveal which user
    // names exist.
    static const PasswordHash dummy = [] {
      std::string ignored;
      return *parse_hash(hash_password("", kDefaultIterations), ignored);
    }();
    verify_password(dummy, password);
    reason = "unknown user '" + user + "'";
    return Verdict::kUnknownUser;
  }
  if (c.password == nullptr || !c.password->has_value()) {
    verify_password(*hash, password);
    reason = "no password for user '" + user + "'";
    return Verdict::kReject;
  }
  if (!verify_password(*hash, password)) {
    reason = "wrong password for user '" + user + "'";
    return Verdict::kReject;
  }
  return Verdict::kAccept;
}

}  // namespace meshmq::auth
