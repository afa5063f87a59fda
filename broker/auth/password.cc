#include "broker/auth/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace meshmq::auth {
namespace {

constexpr std::string_view kScheme = "$pbkdf2-sha512$";
constexpr std::size_t kHashBytes = 64;
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kMinSaltBytes = 8;

std::string base64_encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the bytes the '=' padding stands for; drop them.
  std::size_t len = static_cast<std::size_t>(n);
  if (text.ends_with("==")) {
    len -= 2;
  } else if (text.ends_with("=")) {
    len -= 1;
  }
  out.resize(len);
  return out;
}

std::string pbkdf2(std::string_view password, std::string_view salt, std::uint32_t iterations) {
  std::string out(kHashBytes, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha512(),
                        static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    throw std::runtime_error("PBKDF2 failed (OpenSSL)");
  }
  return out;
}

}  // namespace

std::string format_hash(const PasswordHash& h) {
  return std::string(kScheme) + std::to_string(h.iterations) + "$" + base64_encode(h.salt) + "$" +
         base64_encode(h.hash);
}

std::string hash_password(std::string_view password, std::uint32_t iterations) {
  PasswordHash h;
  h.iterations = iterations;
  h.salt.resize(kSaltBytes);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(h.salt.data()), kSaltBytes) != 1) {
    throw std::runtime_error("no random bytes for a salt (OpenSSL RAND_bytes)");
  }
  h.hash = pbkdf2(password, h.salt, iterations);
  return format_hash(h);
}

std::optional<PasswordHash> parse_hash(std::string_view text, std::string& error) {
  if (!text.starts_with(kScheme)) {
    error = "hash does not start with " + std::string(kScheme);
    return std::nullopt;
  }
  text.remove_prefix(kScheme.size());
  const std::size_t d1 = text.find('$');
  const std::size_t d2 = d1 == std::string_view::npos ? d1 : text.find('$', d1 + 1);
  if (d2 == std::string_view::npos || text.find('$', d2 + 1) != std::string_view::npos) {
    error = "hash is not $pbkdf2-sha512$<iterations>$<salt>$<hash>";
    return std::nullopt;
  }
  PasswordHash h;
  const std::string_view iterations = text.substr(0, d1);
  auto [ptr, ec] =
      std::from_chars(iterations.data(), iterations.data() + iterations.size(), h.iterations);
  if (ec != std::errc() || ptr != iterations.data() + iterations.size() || h.iterations == 0 ||
      h.iterations > kMaxIterations) {
    error = "iterations \"" + std::string(iterations) + "\" is not a number from 1 to " +
            std::to_string(kMaxIterations);
    return std::nullopt;
  }
  auto salt = base64_decode(text.substr(d1 + 1, d2 - d1 - 1));
  if (!salt || salt->size() < kMinSaltBytes) {
    error = "salt is not base64 of at least " + std::to_string(kMinSaltBytes) + " bytes";
    return std::nullopt;
  }
  auto hash = base64_decode(text.substr(d2 + 1));
  if (!hash || hash->size() != kHashBytes) {
    error = "hash is not base64 of " + std::to_string(kHashBytes) + " bytes";
    return std::nullopt;
  }
  h.salt = std::move(*salt);
  h.hash = std::move(*hash);
  return h;
}

bool verify_password(const PasswordHash& h, std::string_view password) {
  const std::string computed = pbkdf2(password, h.salt, h.iterations);
  return computed.size() == h.hash.size() &&
         CRYPTO_memcmp(computed.data(), h.hash.data(), computed.size()) == 0;
}

std::optional<PasswordFile> PasswordFile::parse(std::string_view text, std::string_view name,
                                                std::vector<std::string>& errors) {
  PasswordFile file;
  const std::size_t errors_before = errors.size();
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto fail = [&](const std::string& problem) {
      errors.push_back(std::string(name) + ":" + std::to_string(line_no) + ": " + problem);
    };
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      fail("expected user:$pbkdf2-sha512$...");
      continue;
    }
    const std::string_view user = line.substr(0, colon);
    if (user.empty()) {
      fail("empty user name");
      continue;
    }
    std::string problem;
    auto hash = parse_hash(line.substr(colon + 1), problem);
    if (!hash) {
      fail("user " + std::string(user) + ": " + problem);
      continue;
    }
    if (!file.users_.emplace(std::string(user), std::move(*hash)).second) {
      fail("user " + std::string(user) + " appears twice");
    }
  }
  if (errors.size() != errors_before) return std::nullopt;
  return file;
}

std::optional<std::string> read_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open: " + std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    error = path + ": read error";
    return std::nullopt;
  }
  return buf.str();
}

std::optional<PasswordFile> PasswordFile::load(const std::string& path,
                                               std::vector<std::string>& errors) {
  std::string error;
  auto text = read_file(path, error);
  if (!text) {
    errors.push_back(error);
    return std::nullopt;
  }
  return parse(*text, path, errors);
}

const PasswordHash* PasswordFile::find(std::string_view user) const {
  auto it = users_.find(user);
  return it == users_.end() ? nullptr : &it->second;
}

}  // namespace meshmq::auth
