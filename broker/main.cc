// meshmq: a clustered MQTT broker. Configuration: `meshmq --help`.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "broker/auth/passwd_command.h"
#include "broker/config/config.h"
#include "broker/config/logging.h"
#include "broker/net/server.h"

int main(int argc, char** argv) {
  // Subcommands come before configuration loading: they do not run a broker.
  if (argc >= 2 && std::string_view(argv[1]) == "passwd") {
    return meshmq::auth::passwd_command(argc - 1, argv + 1);
  }
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
