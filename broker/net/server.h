// One meshmq node: the worker threads, the broker core and its listeners, from start to a clean
// stop on SIGINT/SIGTERM.
#pragma once

#include <memory>

#include "broker/config/config.h"

namespace meshmq::net {

class Server {
 public:
  explicit Server(config::Config config);
  ~Server();
  // Binds the listeners (throws std::runtime_error on failure), runs until a stop signal, then
  // closes every connection and returns.
  void run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshmq::net
