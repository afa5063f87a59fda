// meshmq-bench: an MQTT load generator. See tools/bench/README.md.
#include <cstdio>
#include <exception>

#include "tools/bench/cli.h"
#include "tools/bench/runner.h"

int main(int argc, char** argv) {
  meshmq::bench::Options options;
  if (auto status = meshmq::bench::parse_command_line(argc, argv, options)) return *status;
  try {
    return meshmq::bench::run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "meshmq-bench: %s\n", e.what());
    return 2;
  }
}
