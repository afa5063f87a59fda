// Salted PBKDF2-SHA512 password hashes and the password file that holds them.
//
// File format (`auth.password_file`, written by `meshmq passwd`): one user per line,
//   user:$pbkdf2-sha512$<iterations>$<salt, base64>$<hash, base64>
// Blank lines and lines starting with '#' are ignored. The user name is everything before the
// first ':' (so it cannot contain ':'); salt is at least 8 bytes, hash is 64 bytes (SHA-512
// output). Passwords themselves are never stored, logged or kept after checking.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshmq::auth {

// Each CONNECT with a user name costs one hash on a worker thread (about 7 ms at 10,000
// iterations on a 2026 server core), so the default trades brute-force cost against reconnect
// storms.
inline constexpr std::uint32_t kDefaultIterations = 10000;
inline constexpr std::uint32_t kMaxIterations = 10000000;

struct PasswordHash {
  std::uint32_t iterations = kDefaultIterations;
  std::string salt;  // raw bytes
  std::string hash;  // raw bytes, 64
};

// A fresh hash of `password` with a random 16-byte salt, in the file's text form.
std::string hash_password(std::string_view password, std::uint32_t iterations = kDefaultIterations);

// The text form "$pbkdf2-sha512$..." -> PasswordHash; nullopt and `error` set if malformed.
std::optional<PasswordHash> parse_hash(std::string_view text, std::string& error);
std::string format_hash(const PasswordHash& hash);

// Recomputes the hash and compares in constant time.
bool verify_password(const PasswordHash& hash, std::string_view password);

class PasswordFile {
 public:
  // Parses file contents; `name` prefixes error messages ("name:line: problem"). On any error
  // returns nullopt with every problem appended to `errors`.
  static std::optional<PasswordFile> parse(std::string_view text, std::string_view name,
                                           std::vector<std::string>& errors);
  // Reads and parses a file; an unreadable file is an error too.
  static std::optional<PasswordFile> load(const std::string& path,
                                          std::vector<std::string>& errors);

  const PasswordHash* find(std::string_view user) const;
  std::size_t size() const { return users_.size(); }

 private:
  std::map<std::string, PasswordHash, std::less<>> users_;
};

// Reads a whole file; nullopt and `error` set if it cannot be read.
std::optional<std::string> read_file(const std::string& path, std::string& error);

}  // namespace meshmq::auth
