#include "broker/auth/acl.h"

#include "broker/codec/topic_rules.h"

namespace meshmq::auth {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string_view next_word(std::string_view& s) {
  s = trim(s);
  std::size_t end = 0;
  while (end < s.size() && s[end] != ' ' && s[end] != '\t') ++end;
  std::string_view word = s.substr(0, end);
  s.remove_prefix(end);
  return word;
}

bool safe_to_substitute(std::string_view value) {
  return !value.empty() && value.find_first_of("/+#") == std::string_view::npos;
}

// `pattern` with %u and %c replaced, into `out` (reused, so a check allocates only when it grows).
bool substitute(std::string_view pattern, const core::Principal& who, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() &&
        (pattern[i + 1] == 'u' || pattern[i + 1] == 'c')) {
      const std::string_view value = pattern[i + 1] == 'u' ? who.username : who.client_id;
      if (!safe_to_substitute(value)) return false;
      out += value;
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return true;
}

bool applies_to(const AclRule& rule, const core::Principal& who) {
  switch (rule.who) {
    case AclRule::Who::kAll:
      return true;
    case AclRule::Who::kAnonymous:
      return who.username.empty();
    case AclRule::Who::kUser:
      return !who.username.empty() && who.username == rule.name;
    case AclRule::Who::kClient:
      return who.client_id == rule.name;
  }
  return false;
}

}  // namespace

std::optional<Acl> Acl::parse(std::string_view text, std::string_view name, bool default_allow,
                              std::vector<std::string>& errors) {
  Acl acl(default_allow);
  const std::size_t errors_before = errors.size();
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line.front() == '#') continue;
    auto fail = [&](const std::string& problem) {
      errors.push_back(std::string(name) + ":" + std::to_string(line_no) + ": " + problem);
    };
    AclRule rule;
    rule.line = line_no;
    const std::string_view verdict = next_word(line);
    if (verdict == "allow" || verdict == "deny") {
      rule.allow = verdict == "allow";
    } else {
      fail("expected allow or deny, got \"" + std::string(verdict) + "\"");
      continue;
    }
    const std::string_view action = next_word(line);
    rule.publish = action == "publish" || action == "both";
    rule.subscribe = action == "subscribe" || action == "both";
    if (!rule.publish && !rule.subscribe) {
      fail("expected publish, subscribe or both, got \"" + std::string(action) + "\"");
      continue;
    }
    const std::string_view who = next_word(line);
    if (who == "all") {
      rule.who = AclRule::Who::kAll;
    } else if (who == "anonymous") {
      rule.who = AclRule::Who::kAnonymous;
    } else if (who.starts_with("user:") && who.size() > 5) {
      rule.who = AclRule::Who::kUser;
      rule.name = who.substr(5);
    } else if (who.starts_with("client:") && who.size() > 7) {
      rule.who = AclRule::Who::kClient;
      rule.name = who.substr(7);
    } else {
      fail("expected all, anonymous, user:NAME or client:ID, got \"" + std::string(who) + "\"");
      continue;
    }
    const std::string_view filter = trim(line);
    if (filter.empty()) {
      fail("missing topic filter");
      continue;
    }
    rule.filter = filter;
    rule.substitutes =
        rule.filter.find("%u") != std::string::npos || rule.filter.find("%c") != std::string::npos;
    std::string check;
    substitute(rule.filter, core::Principal{"c", "u"}, check);
    if (!codec::valid_topic_filter(check)) {
      fail("\"" + rule.filter + "\" is not a valid topic filter");
      continue;
    }
    acl.rules_.push_back(std::move(rule));
  }
  if (errors.size() != errors_before) return std::nullopt;
  return acl;
}

// Calls fn(rule, filter) for each rule of the action that applies to `who`, in order, with %u/%c
// substituted, until fn returns true; returns whether one did.
template <class Fn>
bool Acl::first_rule(const core::Principal& who, bool publish, Fn&& fn) const {
  thread_local std::string scratch;
  for (const AclRule& rule : rules_) {
    if (publish ? !rule.publish : !rule.subscribe) continue;
    if (!applies_to(rule, who)) continue;
    std::string_view filter = rule.filter;
    if (rule.substitutes) {
      if (!substitute(rule.filter, who, scratch)) continue;
      filter = scratch;
    }
    if (fn(rule, filter)) return true;
  }
  return false;
}

template <class Matches>
bool Acl::decide(const core::Principal& who, bool publish, Matches&& matches) const {
  bool allow = default_allow_;
  first_rule(who, publish, [&](const AclRule& rule, std::string_view filter) {
    if (!matches(filter)) return false;
    allow = rule.allow;
    return true;
  });
  return allow;
}

bool Acl::may_publish(const core::Principal& who, std::string_view topic) const {
  return decide(who, true, [&](std::string_view f) { return codec::topic_matches(f, topic); });
}

bool Acl::may_subscribe(const core::Principal& who, std::string_view filter) const {
  return decide(who, false, [&](std::string_view f) { return codec::filter_covers(f, filter); });
}

bool Acl::delivery_filtered(const core::Principal& who, std::string_view filter) const {
  bool filtered = false;
  first_rule(who, false, [&](const AclRule& rule, std::string_view f) {
    if (codec::filter_covers(f, filter)) return true;  // the rule that decided the SUBSCRIBE
    filtered = !rule.allow && codec::filters_overlap(f, filter);
    return filtered;
  });
  return filtered;
}

bool Acl::allows_every_subscription() const {
  if (!default_allow_) return false;
  for (const AclRule& rule : rules_) {
    if (rule.subscribe && !rule.allow) return false;
  }
  return true;
}

bool Acl::may_receive(const core::Principal& who, std::string_view topic) const {
  return decide(who, false, [&](std::string_view f) { return codec::topic_matches(f, topic); });
}

}  // namespace meshmq::auth
