// Access rules (`auth.acl_file`): who may publish to and subscribe to which topics.
//
// File format, one rule per line ('#' starts a comment line, blank lines are ignored):
//   <allow|deny> <publish|subscribe|both> <who> <topic filter>
// who: `all`, `anonymous` (clients without a user name), `user:NAME` or `client:ID`.
// The filter is the rest of the line and may use + and #; `%u` and `%c` in it stand for the
// client's user name and client id. A rule with %u never applies to anonymous clients, and a
// rule with %u / %c never applies when the name or id contains '/', '+' or '#' (it could
// otherwise reach other clients' topics).
//
// Evaluation: the first rule whose action, who and filter match decides; if none does, the
// default (`auth.acl_default`) decides. A PUBLISH matches a rule when the rule's filter matches the
// topic. A SUBSCRIBE matches a rule when the rule's filter covers the requested filter (every
// topic the requested filter can match is matched by the rule's filter): `allow subscribe all
// sensors/#` grants `sensors/+/temp` but not `#`, and `deny subscribe all secret/#` refuses
// `secret/a` but not the wider `#`.
//
// A granted filter can still match topics that a rule denies (`#` under `deny subscribe all
// secret/#`): such a subscription is marked at SUBSCRIBE (delivery_filtered) and each message it
// matches is checked at delivery (may_receive, the same rules applied to the topic), so the client
// never receives a topic it could not have subscribed to by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/access.h"

namespace meshmq::auth {

struct AclRule {
  enum class Who : std::uint8_t { kAll, kAnonymous, kUser, kClient };
  bool allow = false;
  bool publish = false;
  bool subscribe = false;
  Who who = Who::kAll;
  std::string name;    // user name or client id for kUser / kClient
  std::string filter;  // with %u / %c placeholders
  bool substitutes = false;
  std::size_t line = 0;
};

class Acl {
 public:
  explicit Acl(bool default_allow = true) : default_allow_(default_allow) {}

  // Parses file contents; errors are "name:line: problem". nullopt when there is any error.
  static std::optional<Acl> parse(std::string_view text, std::string_view name, bool default_allow,
                                  std::vector<std::string>& errors);

  bool may_publish(const core::Principal& who, std::string_view topic) const;
  bool may_subscribe(const core::Principal& who, std::string_view filter) const;
  // For a filter may_subscribe grants: true when a deny rule that takes precedence over the
  // granting rule (or the default) matches some of the filter's topics.
  bool delivery_filtered(const core::Principal& who, std::string_view filter) const;
  bool may_receive(const core::Principal& who, std::string_view topic) const;
  // No deny rule for subscriptions and an allowing default.
  bool allows_every_subscription() const;

  const std::vector<AclRule>& rules() const { return rules_; }
  bool default_allow() const { return default_allow_; }

 private:
  template <class Fn>
  bool first_rule(const core::Principal& who, bool publish, Fn&& fn) const;
  template <class Matches>
  bool decide(const core::Principal& who, bool publish, Matches&& matches) const;

  std::vector<AclRule> rules_;
  bool default_allow_;
};

}  // namespace meshmq::auth
