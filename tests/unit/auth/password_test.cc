// PBKDF2-SHA512 hashes and the password file format.
#include "broker/auth/password.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshmq::auth {
namespace {

// Few iterations: the tests check the format and the comparison, not the cost.
constexpr std::uint32_t kFast = 10;

TEST(Password, HashThenVerifyTable) {
  struct Case {
    std::string stored;
    std::string tried;
    bool ok;
  };
  const Case cases[] = {
      {"secret", "secret", true},
      {"secret", "Secret", false},
      {"secret", "secret ", false},
      {"secret", "", false},
      {"", "", true},
      {"", "x", false},
      {std::string("bin\0ary", 7), std::string("bin\0ary", 7), true},
      {std::string("bin\0ary", 7), "bin", false},
      {"päss wörd", "päss wörd", true},
  };
  for (const Case& c : cases) {
    std::string error;
    auto h = parse_hash(hash_password(c.stored, kFast), error);
    ASSERT_TRUE(h) << error;
    EXPECT_EQ(verify_password(*h, c.tried), c.ok) << c.stored << " vs " << c.tried;
  }
}

TEST(Password, SaltMakesEveryHashDifferent) {
  EXPECT_NE(hash_password("same", kFast), hash_password("same", kFast));
}

TEST(Password, FormatRoundTrips) {
  const std::string text = hash_password("pw", 1234);
  EXPECT_TRUE(text.starts_with("$pbkdf2-sha512$1234$")) << text;
  std::string error;
  auto h = parse_hash(text, error);
  ASSERT_TRUE(h) << error;
  EXPECT_EQ(h->iterations, 1234u);
  EXPECT_EQ(h->salt.size(), 16u);
  EXPECT_EQ(h->hash.size(), 64u);
  EXPECT_EQ(format_hash(*h), text);
}

// A known answer, so a change of algorithm or encoding cannot go unnoticed: PBKDF2-HMAC-SHA512,
// password "password", salt "saltsaltsaltsalt", 1 iteration (computed with Python's hashlib).
TEST(Password, KnownAnswer) {
  const std::string text =
      "$pbkdf2-sha512$1$c2FsdHNhbHRzYWx0c2FsdA==$"
      "zMa9LL9XW9NEyc9UKHf8bpNyy/Hx4d85LGz19gOLtXQ4NK7qbwImxKJXu7q+fBhdF5majSti2Ju4PSQnO4oyKQ==";
  std::string error;
  auto h = parse_hash(text, error);
  ASSERT_TRUE(h) << error;
  EXPECT_TRUE(verify_password(*h, "password"));
  EXPECT_FALSE(verify_password(*h, "passwore"));
}

TEST(PasswordFile, ParsesUsersCommentsAndBlankLines) {
  const std::string text = "# users\n\nalice:" + hash_password("a", kFast) +
                           "\r\nbob:" + hash_password("b", kFast) + "\n";
  std::vector<std::string> errors;
  auto f = PasswordFile::parse(text, "pw", errors);
  ASSERT_TRUE(f) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(f->size(), 2u);
  ASSERT_NE(f->find("alice"), nullptr);
  EXPECT_TRUE(verify_password(*f->find("alice"), "a"));
  EXPECT_FALSE(verify_password(*f->find("bob"), "a"));
  EXPECT_EQ(f->find("carol"), nullptr);
}

TEST(PasswordFile, ErrorsNameTheLine) {
  const std::string good = hash_password("x", kFast);
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"alice\n", "pw:1: expected user:$pbkdf2-sha512$..."},
      {"# c\n:" + good + "\n", "pw:2: empty user name"},
      {"a:" + good + "\n\na:" + good + "\n", "pw:3: user a appears twice"},
      {"a:$sha1$x\n", "pw:1: user a: hash does not start with $pbkdf2-sha512$"},
      {"a:$pbkdf2-sha512$0$c2FsdHNhbHRzYWx0$c2FsdA==\n",
       "pw:1: user a: iterations \"0\" is not a number from 1 to 10000000"},
      {"a:$pbkdf2-sha512$10$c2FsdA==$c2FsdA==\n",
       "pw:1: user a: salt is not base64 of at least 8 bytes"},
      {"a:$pbkdf2-sha512$10$c2FsdHNhbHRzYWx0$c2FsdA==\n",
       "pw:1: user a: hash is not base64 of 64 bytes"},
      {"a:$pbkdf2-sha512$10$c2FsdHNhbHRzYWx0\n",
       "pw:1: user a: hash is not $pbkdf2-sha512$<iterations>$<salt>$<hash>"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> errors;
    EXPECT_FALSE(PasswordFile::parse(c.text, "pw", errors)) << c.text;
    ASSERT_EQ(errors.size(), 1u) << c.text;
    EXPECT_EQ(errors[0], c.error);
  }
}

TEST(PasswordFile, MissingFileIsAnError) {
  std::vector<std::string> errors;
  EXPECT_FALSE(PasswordFile::load("/nonexistent/meshmq-pw", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("/nonexistent/meshmq-pw: cannot open"), std::string::npos) << errors[0];
}

}  // namespace
}  // namespace meshmq::auth
