// AccessControl: the authenticator chain, allow_anonymous, CONNACK codes, reload.
#include "broker/auth/access_control.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/auth/password.h"

namespace meshmq::auth {
namespace {

namespace fs = std::filesystem;
using core::AuthStatus;

class AccessControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("meshmq-auth-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  AuthStatus status(AccessControl& ac, std::optional<std::string> user,
                    std::optional<std::string> password, std::string* username = nullptr) {
    core::Credentials c{"client", &user, &password, "test:1", {}};
    core::AuthResult r = ac.authenticate(0, c);
    if (username) *username = r.username;
    if (password) {
      EXPECT_EQ(r.reason.find(*password), std::string::npos) << "password in " << r.reason;
    }
    return r.status;
  }

  fs::path dir_;
};

TEST_F(AccessControlTest, ConnackCodesTable) {
  const std::string pw = write("pw", "alice:" + hash_password("wonderland", 10) + "\n");
  struct Case {
    bool allow_anonymous;
    bool with_file;
    std::optional<std::string> user;
    std::optional<std::string> password;
    AuthStatus expected;
  };
  const Case cases[] = {
      {true, true, "alice", "wonderland", AuthStatus::kAccepted},
      {false, true, "alice", "wonderland", AuthStatus::kAccepted},
      {false, true, "alice", "wrong-secret", AuthStatus::kBadCredentials},
      {false, true, "alice", std::nullopt, AuthStatus::kBadCredentials},
      {false, true, "nobody", "x-secret", AuthStatus::kBadCredentials},
      {true, true, "nobody", "x-secret", AuthStatus::kBadCredentials},
      {false, true, std::nullopt, std::nullopt, AuthStatus::kNotAuthorized},
      {true, true, std::nullopt, std::nullopt, AuthStatus::kAccepted},
      {true, false, "anyone", "any-secret", AuthStatus::kAccepted},  // no file: names unverified
      {false, false, "anyone", "any-secret", AuthStatus::kNotAuthorized},
  };
  for (const Case& c : cases) {
    AuthSettings s;
    s.allow_anonymous = c.allow_anonymous;
    if (c.with_file) s.password_file = pw;
    AccessControl ac(s, 1);
    ac.load();
    std::string username;
    EXPECT_EQ(status(ac, c.user, c.password, &username), c.expected)
        << c.allow_anonymous << c.with_file << c.user.value_or("-") << "/"
        << c.password.value_or("-");
    if (c.expected == AuthStatus::kAccepted) {
      EXPECT_EQ(username, c.user.value_or(""));
    }
  }
}

TEST_F(AccessControlTest, CertificateCnIsTheUserWhenConfigured) {
  AuthSettings s;
  s.allow_anonymous = false;
  AccessControl ac(s, 1);
  ac.load();
  std::optional<std::string> none;
  core::Credentials c{"client", &none, &none, "test:1", "device-42"};
  core::AuthResult r = ac.authenticate(0, c);
  EXPECT_EQ(r.status, AuthStatus::kAccepted);
  EXPECT_EQ(r.username, "device-42");
}

TEST_F(AccessControlTest, LoadFailsWithEveryProblem) {
  AuthSettings s;
  s.password_file = write("pw", "broken\n");
  s.acl_file = (dir_ / "missing.acl").string();
  AccessControl ac(s, 1);
  try {
    ac.load();
    FAIL() << "load() accepted broken files";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("pw:1: expected user:"), std::string::npos) << what;
    EXPECT_NE(what.find("missing.acl: cannot open"), std::string::npos) << what;
  }
}

TEST_F(AccessControlTest, ReloadSwapsRulesPerWorkerAndKeepsOldOnError) {
  AuthSettings s;
  s.acl_file = write("acl", "deny publish all a\n");
  s.disconnect_on_denied_publish = true;
  AccessControl ac(s, 2);
  ac.load();
  const core::Principal who{"c", ""};
  EXPECT_EQ(ac.may_publish(0, who, "a"), core::PublishVerdict::kDenyAndDisconnect);
  EXPECT_EQ(ac.may_publish(1, who, "b"), core::PublishVerdict::kAllow);

  write("acl", "deny publish all b\n");
  EXPECT_TRUE(ac.reload());
  for (std::size_t w = 0; w < 2; ++w) {
    EXPECT_EQ(ac.may_publish(w, who, "a"), core::PublishVerdict::kAllow) << w;
    EXPECT_NE(ac.may_publish(w, who, "b"), core::PublishVerdict::kAllow) << w;
  }

  write("acl", "nonsense\n");
  EXPECT_FALSE(ac.reload());
  EXPECT_NE(ac.may_publish(0, who, "b"), core::PublishVerdict::kAllow);  // still the old rules
  EXPECT_TRUE(ac.may_subscribe(1, who, "b"));
}

// Workers keep checking while SIGHUP reloads swap the rules under them: under TSan and ASan (CI)
// this shows that no check reads a rule set being replaced or freed.
TEST_F(AccessControlTest, ConcurrentChecksDuringReloads) {
  AuthSettings s;
  s.acl_file = write("acl", "deny publish all a\n");
  AccessControl ac(s, 2);
  ac.load();
  std::atomic<bool> done{false};
  std::atomic<int> checks{0};
  std::vector<std::thread> workers;
  for (std::size_t w = 0; w < 2; ++w) {
    workers.emplace_back([&, w] {
      const core::Principal who{"c", ""};
      while (!done.load()) {
        // Every rule set denies exactly one of a and b, and allows subscribing to both.
        ac.may_publish(w, who, "a");
        if (!ac.may_subscribe(w, who, "b")) ADD_FAILURE() << "subscription refused";
        checks.fetch_add(1);
      }
    });
  }
  while (checks.load() < 2) std::this_thread::yield();  // both are checking
  for (int i = 0; i < 50; ++i) {
    write("acl", i % 2 == 0 ? "deny publish all b\n" : "deny publish all a\n");
    EXPECT_TRUE(ac.reload());
  }
  done = true;
  for (auto& t : workers) t.join();
}

TEST_F(AccessControlTest, ChainAsksTheNextAuthenticatorForUnknownUsers) {
  struct Fixed final : Authenticator {
    std::string_view name() const override { return "fixed"; }
    Verdict check(const core::Credentials& c, std::string&) override {
      return **c.username == "token-user" ? Verdict::kAccept : Verdict::kUnknownUser;
    }
    bool reload(std::vector<std::string>&) override { return true; }
  };
  AuthSettings s;
  s.allow_anonymous = false;
  s.password_file = write("pw", "alice:" + hash_password("pw-a", 10) + "\n");
  AccessControl ac(s, 1);
  ac.add_authenticator(std::make_unique<Fixed>());
  ac.load();
  EXPECT_EQ(status(ac, "token-user", "whatever"), AuthStatus::kAccepted);
  EXPECT_EQ(status(ac, "alice", "pw-a"), AuthStatus::kAccepted);
  EXPECT_EQ(status(ac, "alice", "pw-b"), AuthStatus::kBadCredentials);
  EXPECT_EQ(status(ac, "eve", "pw-e"), AuthStatus::kBadCredentials);
}

}  // namespace
}  // namespace meshmq::auth
