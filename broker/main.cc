// meshmq: a clustered MQTT broker. Configuration: `meshmq --help`.
//
//   meshmq [--key=value ...]     run a node
//   meshmq ctl ...               the admin API from the command line (`meshmq ctl --help`)
//   meshmq passwd ...            manage the password file (`meshmq passwd --help`)
//
// Subcommands are dispatched before configuration loading: they do not run a broker.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "broker/auth/passwd_command.h"
#include "broker/config/config.h"
#include "broker/config/logging.h"
#include "broker/net/server.h"
#include "broker/ops/ctl.h"

namespace {

int run_node(int argc, char** argv) {
  auto result =
      meshmq::config::load(argc, argv, [](const char* name) { return std::getenv(name); });
  if (!result.error.empty()) {
    std::fprintf(stderr, "%s\n", result.error.c_str());
    return 2;
  }
  if (!result.config) {
    std::fputs(result.help.c_str(), stdout);
    return 0;
  }
  meshmq::config::setup_logging(result.config->log.level);
  spdlog::debug("effective configuration:\n{}", meshmq::config::describe(*result.config));
  try {
    meshmq::net::Server server(std::move(*result.config));
    server.run();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  return 0;
}

// Subcommands get argv from their own name on (argv[0] = "ctl", "passwd").
struct Subcommand {
  const char* name;
  int (*main)(int argc, const char* const* argv);
};

constexpr Subcommand kSubcommands[] = {
    {"ctl", meshmq::ops::ctl_main},
    {"passwd", meshmq::auth::passwd_command},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    for (const Subcommand& sub : kSubcommands) {
      if (std::strcmp(argv[1], sub.name) == 0) return sub.main(argc - 1, argv + 1);
    }
  }
  return run_node(argc, argv);
}
