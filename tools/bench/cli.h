// Command line: `meshmq-bench conn|pub|sub [options]` and `meshmq-bench scenario NAME [options]`.
#pragma once

#include <optional>

#include "tools/bench/options.h"

namespace meshmq::bench {

// Parses argv into Options. On --help or a usage error it prints and returns the exit status to
// leave with; otherwise std::nullopt and `out` is filled.
std::optional<int> parse_command_line(int argc, char** argv, Options& out);

}  // namespace meshmq::bench
