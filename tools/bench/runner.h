// Runs one benchmark: connects the clients at the requested rate, lets the publishers go for the
// duration, drains, disconnects, and prints the progress line and the summary.
#pragma once

#include "tools/bench/options.h"

namespace meshmq::bench {

// Returns the process exit status: 0, or 1 when connections failed or were lost.
int run(const Options& options);

}  // namespace meshmq::bench
