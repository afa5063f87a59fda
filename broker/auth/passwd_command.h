// `meshmq passwd`: add, change and delete users of a password file (format in password.h).
#pragma once

namespace meshmq::auth {

// argv[0] is "passwd". Returns the process exit status; prints to stdout/stderr.
int passwd_command(int argc, const char* const* argv);

}  // namespace meshmq::auth
