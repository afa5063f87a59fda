#include "broker/auth/access_control.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "broker/auth/password.h"
#include "broker/auth/password_authenticator.h"

namespace meshmq::auth {

AccessControl::AccessControl(AuthSettings settings, std::size_t workers)
    : settings_(std::move(settings)),
      views_(workers),
      acl_(std::make_shared<const Acl>(settings_.acl_default_allow)) {
  if (!settings_.password_file.empty()) {
    authenticators_.push_back(std::make_unique<PasswordFileAuthenticator>(settings_.password_file));
  }
}

AccessControl::~AccessControl() = default;

void AccessControl::add_authenticator(std::unique_ptr<Authenticator> authenticator) {
  authenticators_.push_back(std::move(authenticator));
}

bool AccessControl::load_acl(std::vector<std::string>& errors) {
  if (settings_.acl_file.empty()) return true;
  std::string error;
  auto text = read_file(settings_.acl_file, error);
  if (!text) {
    errors.push_back("auth.acl_file: " + error);
    return false;
  }
  auto acl = Acl::parse(*text, settings_.acl_file, settings_.acl_default_allow, errors);
  if (!acl) return false;
  auto fresh = std::make_shared<const Acl>(std::move(*acl));
  spdlog::info("ACL {}: {} rules, default {}", settings_.acl_file, fresh->rules().size(),
               fresh->default_allow() ? "allow" : "deny");
  {
    std::lock_guard lock(acl_mu_);
    acl_ = std::move(fresh);
  }
  generation_.fetch_add(1, std::memory_order_release);
  return true;
}

void AccessControl::load() {
  std::vector<std::string> errors;
  for (auto& a : authenticators_) a->reload(errors);
  load_acl(errors);
  if (!errors.empty()) {
    std::string message = "cannot load the access configuration:";
    for (const std::string& e : errors) message += "\n  " + e;
    throw std::runtime_error(message);
  }
  for (auto& a : authenticators_) {
    if (auto* p = dynamic_cast<PasswordFileAuthenticator*>(a.get())) {
      spdlog::info("password file {}: {} users", settings_.password_file, p->users());
    }
  }
  if (settings_.allow_anonymous) {
    spdlog::warn(
        "auth.allow_anonymous is true: clients without a user name are let in (set it to false "
        "in production)");
  }
}

bool AccessControl::reload() {
  std::vector<std::string> errors;
  for (auto& a : authenticators_) a->reload(errors);
  load_acl(errors);
  for (const std::string& e : errors) spdlog::error("reload: {} (keeping the previous rules)", e);
  if (errors.empty()) spdlog::info("reload: password file and ACL reloaded");
  return errors.empty();
}

const Acl& AccessControl::acl(std::size_t worker) {
  WorkerView& view = views_[worker];
  const std::uint64_t generation = generation_.load(std::memory_order_acquire);
  if (view.generation != generation) {
    std::lock_guard lock(acl_mu_);
    view.acl = acl_;
    view.generation = generation;
  }
  return *view.acl;
}

bool AccessControl::slow_authentication(const core::Credentials& c) {
  return c.certificate_cn.empty() && c.username != nullptr && c.username->has_value() &&
         !authenticators_.empty();
}

core::AuthResult AccessControl::authenticate(std::size_t, const core::Credentials& c) {
  core::AuthResult result;
  const bool has_username = c.username != nullptr && c.username->has_value();
  if (!c.certificate_cn.empty()) {
    // The certificate was verified by the TLS layer: it is the credential.
    result.username = std::string(c.certificate_cn);
    return result;
  }
  if (has_username) {
    for (auto& a : authenticators_) {
      std::string reason;
      switch (a->check(c, reason)) {
        case Verdict::kAccept:
          result.username = **c.username;
          return result;
        case Verdict::kReject:
          result.status = core::AuthStatus::kBadCredentials;
          result.reason = std::string(a->name()) + ": " + reason;
          return result;
        case Verdict::kUnknownUser:
          result.reason = std::string(a->name()) + ": " + reason;
          break;
      }
    }
    if (!authenticators_.empty()) {
      result.status = core::AuthStatus::kBadCredentials;
      if (result.reason.empty()) result.reason = "unknown user '" + **c.username + "'";
      return result;
    }
    // No authenticator configured: the user name is taken as given, like an anonymous client.
  }
  if (!settings_.allow_anonymous) {
    result.status = core::AuthStatus::kNotAuthorized;
    result.reason = has_username ? "no authenticator configured and auth.allow_anonymous is false"
                                 : "no user name and auth.allow_anonymous is false";
    return result;
  }
  if (has_username) result.username = **c.username;
  return result;
}

core::PublishVerdict AccessControl::may_publish(std::size_t worker, const core::Principal& who,
                                                std::string_view topic) {
  if (acl(worker).may_publish(who, topic)) return core::PublishVerdict::kAllow;
  return settings_.disconnect_on_denied_publish ? core::PublishVerdict::kDenyAndDisconnect
                                                : core::PublishVerdict::kDeny;
}

bool AccessControl::may_subscribe(std::size_t worker, const core::Principal& who,
                                  std::string_view filter) {
  return acl(worker).may_subscribe(who, filter);
}

bool AccessControl::delivery_filtered(std::size_t worker, const core::Principal& who,
                                      std::string_view filter) {
  return acl(worker).delivery_filtered(who, filter);
}

bool AccessControl::may_receive(std::size_t worker, const core::Principal& who,
                                std::string_view topic) {
  return acl(worker).may_receive(who, topic);
}

std::uint32_t AccessControl::generation(std::size_t worker) {
  const Acl& rules = acl(worker);
  if (rules.allows_every_subscription()) return 0;
  return static_cast<std::uint32_t>(views_[worker].generation);
}

}  // namespace meshmq::auth
