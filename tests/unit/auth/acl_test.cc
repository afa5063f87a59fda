// ACL file parsing and rule evaluation.
#include "broker/auth/acl.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshmq::auth {
namespace {

Acl parse_ok(std::string_view text, bool default_allow = false) {
  std::vector<std::string> errors;
  auto acl = Acl::parse(text, "acl", default_allow, errors);
  EXPECT_TRUE(acl) << (errors.empty() ? "" : errors[0]);
  return acl ? std::move(*acl) : Acl(default_allow);
}

TEST(AclParse, RulesFields) {
  Acl acl = parse_ok(
      "# comment\n"
      "\n"
      "allow publish user:alice sensors/%u/#\n"
      "  deny subscribe client:dev-1   a b/c d  \n"
      "allow both all #\n"
      "deny both anonymous private/#\n");
  ASSERT_EQ(acl.rules().size(), 4u);
  const AclRule& r0 = acl.rules()[0];
  EXPECT_TRUE(r0.allow);
  EXPECT_TRUE(r0.publish);
  EXPECT_FALSE(r0.subscribe);
  EXPECT_EQ(r0.who, AclRule::Who::kUser);
  EXPECT_EQ(r0.name, "alice");
  EXPECT_EQ(r0.filter, "sensors/%u/#");
  EXPECT_TRUE(r0.substitutes);
  EXPECT_EQ(r0.line, 3u);
  const AclRule& r1 = acl.rules()[1];
  EXPECT_FALSE(r1.allow);
  EXPECT_EQ(r1.who, AclRule::Who::kClient);
  EXPECT_EQ(r1.name, "dev-1");
  EXPECT_EQ(r1.filter, "a b/c d");  // the rest of the line: topics may contain spaces
  EXPECT_FALSE(r1.substitutes);
  EXPECT_TRUE(acl.rules()[2].publish && acl.rules()[2].subscribe);
  EXPECT_EQ(acl.rules()[3].who, AclRule::Who::kAnonymous);
}

TEST(AclParse, ErrorsNameTheLine) {
  struct Case {
    std::string_view text;
    std::string_view error;
  };
  const Case cases[] = {
      {"permit publish all a\n", "acl:1: expected allow or deny, got \"permit\""},
      {"\nallow pub all a\n", "acl:2: expected publish, subscribe or both, got \"pub\""},
      {"allow publish everyone a\n",
       "acl:1: expected all, anonymous, user:NAME or client:ID, got \"everyone\""},
      {"allow publish user: a\n",
       "acl:1: expected all, anonymous, user:NAME or client:ID, got \"user:\""},
      {"allow publish all\n", "acl:1: missing topic filter"},
      {"allow publish all a/#/b\n", "acl:1: \"a/#/b\" is not a valid topic filter"},
      {"allow publish all a/%u+\n", "acl:1: \"a/%u+\" is not a valid topic filter"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> errors;
    EXPECT_FALSE(Acl::parse(c.text, "acl", true, errors)) << c.text;
    ASSERT_EQ(errors.size(), 1u) << c.text;
    EXPECT_EQ(errors[0], c.error);
  }
  std::vector<std::string> errors;
  EXPECT_FALSE(Acl::parse("bad\nallow publish all ok\nworse x y z\n", "f", true, errors));
  ASSERT_EQ(errors.size(), 2u);  // every problem, not only the first
  EXPECT_TRUE(errors[1].starts_with("f:3: "));
}

struct Check {
  bool publish;  // else subscribe
  std::string_view client_id;
  std::string_view username;
  std::string_view topic;
  bool allowed;
};

constexpr std::string_view kRules =
    "deny  both      user:mallory #\n"
    "allow publish   user:alice   sensors/%u/#\n"
    "allow subscribe all          sensors/+/temp\n"
    "allow both      all          clients/%c/#\n"
    "deny  subscribe all          test/nosubscribe\n"
    "allow subscribe all          test/#\n"
    "allow both      anonymous    public/#\n"
    "allow publish   client:gw-1  $SYS/gw/#\n";

TEST(AclEval, FirstMatchWinsWithSubstitution) {
  const Acl acl = parse_ok(kRules, /*default_allow=*/false);
  const Check checks[] = {
      // %u: alice may publish under her own name only
      {true, "c1", "alice", "sensors/alice/temp", true},
      {true, "c1", "alice", "sensors/bob/temp", false},
      {true, "c1", "bob", "sensors/bob/temp", false},  // the rule is for user alice
      {true, "c1", "", "sensors//temp", false},        // %u never matches anonymous
      // %c
      {true, "dev-7", "", "clients/dev-7/up", true},
      {false, "dev-7", "", "clients/dev-7/#", true},
      {true, "dev-7", "", "clients/dev-8/up", false},
      {true, "a/b", "", "clients/a/b/up", false},  // ids with '/', '+', '#' never substitute
      {false, "+", "", "clients/+/#", false},
      // first match wins: mallory's deny comes before every allow
      {false, "m", "mallory", "sensors/x/temp", false},
      {false, "m", "mallory", "test/a", false},
      // subscribe: the rule's filter must cover the requested one
      {false, "c", "", "sensors/+/temp", true},
      {false, "c", "", "sensors/kitchen/temp", true},
      {false, "c", "", "sensors/#", false},
      {false, "c", "", "test/nosubscribe", false},
      {false, "c", "", "test/other", true},
      {false, "c", "", "test/#", true},  // the deny covers only test/nosubscribe itself
      // subscribe rules do not allow publishing
      {true, "c", "", "test/other", false},
      // anonymous
      {true, "c", "", "public/x", true},
      {true, "c", "bob", "public/x", false},
      // client: and $ topics
      {true, "gw-1", "", "$SYS/gw/up", true},
      {true, "gw-2", "", "$SYS/gw/up", false},
      // nothing matches: the default
      {true, "c", "bob", "elsewhere", false},
      {false, "c", "bob", "#", false},
  };
  for (const Check& c : checks) {
    const core::Principal who{c.client_id, c.username};
    const bool got = c.publish ? acl.may_publish(who, c.topic) : acl.may_subscribe(who, c.topic);
    EXPECT_EQ(got, c.allowed) << (c.publish ? "publish " : "subscribe ") << c.topic << " as "
                              << c.client_id << "/" << c.username;
  }
}

TEST(AclEval, DefaultDecidesWhenNoRuleMatches) {
  const Acl allow = parse_ok("deny publish all secret/#\n", true);
  EXPECT_TRUE(allow.may_publish({"c", ""}, "open"));
  EXPECT_FALSE(allow.may_publish({"c", ""}, "secret/x"));
  EXPECT_TRUE(allow.may_subscribe({"c", ""}, "secret/x"));  // a publish-only rule
  const Acl deny = parse_ok("", false);
  EXPECT_FALSE(deny.may_publish({"c", ""}, "open"));
  EXPECT_FALSE(deny.may_subscribe({"c", ""}, "open"));
}

// A granted filter wider than a deny rule is filtered at delivery: delivery_filtered() says so at
// SUBSCRIBE, may_receive() decides per topic with the same rules.
TEST(AclEval, WideSubscriptionsAreFilteredAtDelivery) {
  const Acl acl = parse_ok(
      "deny subscribe all secret/#\n"
      "deny subscribe all private/%u/x\n"  // never applies to anonymous clients
      "allow subscribe all sensors/#\n"
      "deny subscribe all sensors/hidden\n"  // after the allow that covers it: never decides
      "deny subscribe client:c2 #\n",
      true);
  struct Case {
    std::string_view client_id, username, filter;
    bool filtered;
  };
  const Case cases[] = {
      {"c", "", "#", true},             // overlaps secret/#
      {"c", "", "+/a", true},           // secret/a
      {"c", "", "public/#", false},     // no deny rule reaches it
      {"c", "", "sensors/#", false},    // granted by the allow before the later deny
      {"c", "", "sensors/+", false},    // covered by that allow too
      {"c", "", "private/#", false},    // %u rules never apply to anonymous clients
      {"c", "bob", "private/#", true},  // private/bob/x
      {"c2", "", "sensors/a", false},   // the allow before the client:c2 deny covers it
  };
  for (const Case& c : cases) {
    EXPECT_EQ(acl.delivery_filtered({c.client_id, c.username}, c.filter), c.filtered)
        << c.filter << " as " << c.client_id << "/" << c.username;
  }
  struct Topic {
    std::string_view client_id, username, topic;
    bool received;
  };
  const Topic topics[] = {
      {"c", "", "secret/a", false},         {"c", "", "secret", false},
      {"c", "", "public/a", true},          {"c", "", "sensors/hidden", true},
      {"c", "bob", "private/bob/x", false}, {"c", "", "private/bob/x", true},
      {"c2", "", "public/a", false},        {"c2", "", "sensors/a", true},
  };
  for (const Topic& t : topics) {
    EXPECT_EQ(acl.may_receive({t.client_id, t.username}, t.topic), t.received)
        << t.topic << " as " << t.client_id << "/" << t.username;
  }
}

TEST(AclEval, AllowsEverySubscription) {
  EXPECT_TRUE(parse_ok("", true).allows_every_subscription());
  EXPECT_TRUE(
      parse_ok("deny publish all a\nallow subscribe all b\n", true).allows_every_subscription());
  EXPECT_FALSE(parse_ok("deny both all a\n", true).allows_every_subscription());
  EXPECT_FALSE(parse_ok("", false).allows_every_subscription());
}

}  // namespace
}  // namespace meshmq::auth
