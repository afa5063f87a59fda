#include "broker/auth/passwd_command.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "broker/auth/password.h"

namespace meshmq::auth {
namespace {

// Reads one line from `fd` without echo when it is a terminal.
std::optional<std::string> prompt(int fd, const char* text) {
  termios saved{};
  const bool tty = tcgetattr(fd, &saved) == 0;
  if (tty) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  if (::write(fd, text, std::strlen(text)) < 0) return std::nullopt;
  std::string line;
  char c;
  bool got_line = false;
  while (::read(fd, &c, 1) == 1) {
    if (c == '\n') {
      got_line = true;
      break;
    }
    line += c;
  }
  if (tty) {
    tcsetattr(fd, TCSAFLUSH, &saved);
    if (::write(fd, "\n", 1) < 0) return std::nullopt;
  }
  if (!got_line && line.empty()) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::optional<std::string> read_password(bool from_stdin) {
  if (from_stdin) {
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  const int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    std::cerr << "meshmq passwd: no terminal to ask for the password; use --password-stdin\n";
    return std::nullopt;
  }
  auto first = prompt(fd, "Password: ");
  auto second = first ? prompt(fd, "Reenter password: ") : std::nullopt;
  ::close(fd);
  if (!first || !second) return std::nullopt;
  if (*first != *second) {
    std::cerr << "meshmq passwd: passwords do not match\n";
    return std::nullopt;
  }
  return first;
}

std::string_view user_of(std::string_view line) {
  if (line.empty() || line.front() == '#') return {};
  const std::size_t colon = line.find(':');
  return colon == std::string_view::npos ? std::string_view{} : line.substr(0, colon);
}

// Writes via a temporary file and rename, so a crash never leaves a half-written password file;
// the file is readable by its owner only.
bool write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(("meshmq passwd: " + tmp).c_str());
    return false;
  }
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::perror(("meshmq passwd: " + path).c_str());
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

int passwd_command(int argc, const char* const* argv) {
  CLI::App app{
      "Add, change or delete a user in a meshmq password file (auth.password_file).\n"
      "Without -D the user is added, or its password changed. The password is asked twice on\n"
      "the terminal without echo, or read as one line from stdin with --password-stdin.\n"
      "The broker re-reads the file on SIGHUP.",
      "meshmq passwd"};
  std::string file;
  std::string user;
  bool create = false;
  bool remove = false;
  bool from_stdin = false;
  std::uint32_t iterations = kDefaultIterations;
  app.add_option("-f,--file", file, "Password file")->required();
  app.add_flag("-c,--create", create, "Create the file (replacing an existing one)");
  app.add_flag("-D,--delete", remove, "Delete the user");
  app.add_flag("--password-stdin", from_stdin, "Read the password from stdin (for scripts)");
  app.add_option("--iterations", iterations, "PBKDF2 iterations")
      ->check(CLI::Range(std::uint32_t{1}, kMaxIterations));
  app.add_option("user", user, "User name")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (create && remove) {
    std::cerr << "meshmq passwd: -c and -D exclude each other\n";
    return 2;
  }
  if (user.empty() || user.find_first_of(":\n\r") != std::string::npos || user.front() == '#') {
    std::cerr << "meshmq passwd: a user name must be non-empty, without ':' or line breaks, and "
                 "not start with '#'\n";
    return 2;
  }

  std::vector<std::string> lines;
  if (!create) {
    std::string error;
    auto text = read_file(file, error);
    if (!text) {
      std::cerr << "meshmq passwd: " << error << (remove ? "" : " (use -c to create it)") << "\n";
      return 1;
    }
    std::vector<std::string> errors;
    if (!PasswordFile::parse(*text, file, errors)) {
      for (const auto& e : errors) std::cerr << "meshmq passwd: " << e << "\n";
      std::cerr << "meshmq passwd: not changing a file with errors\n";
      return 1;
    }
    std::string_view rest = *text;
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      lines.emplace_back(rest.substr(0, nl));
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    }
  }

  auto it = std::find_if(lines.begin(), lines.end(),
                         [&](const std::string& l) { return user_of(l) == user; });
  const bool existed = it != lines.end();
  if (remove) {
    if (!existed) {
      std::cerr << "meshmq passwd: no user " << user << " in " << file << "\n";
      return 1;
    }
    lines.erase(it);
  } else {
    auto password = read_password(from_stdin);
    if (!password) {
      std::cerr << "meshmq passwd: no password given\n";
      return 1;
    }
    std::string line = user + ":" + hash_password(*password, iterations);
    if (!existed) {
      lines.push_back(std::move(line));
    } else {
      *it = std::move(line);
    }
  }
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  if (!write_atomically(file, out)) return 1;
  std::cout << (remove    ? "deleted"
                : existed ? "updated"
                          : "added")
            << " user " << user << " in " << file << "\n";
  return 0;
}

}  // namespace meshmq::auth
