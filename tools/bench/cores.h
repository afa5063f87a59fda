// Pinning the calling thread, shared by the small benchmark helpers (loopback-echo, stall-watch).
#pragma once

#include <sched.h>

namespace meshmq::bench {

// -1 leaves the thread where the scheduler puts it.
inline void pin_to_core(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

}  // namespace meshmq::bench
