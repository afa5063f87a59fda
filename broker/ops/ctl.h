// `meshmq ctl`: the admin API from the command line.
#pragma once

namespace meshmq::ops {

// argv[0] is "ctl". Returns the process exit status: 0 on success, 1 when the node answered with
// an error, 2 on a usage or connection problem.
int ctl_main(int argc, const char* const* argv);

}  // namespace meshmq::ops
