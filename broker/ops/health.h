// Liveness and readiness. /healthz answers while the process serves HTTP at all; /readyz only
// while every readiness check passes and the node is not stopping, so a load balancer or
// Kubernetes stops sending clients here the moment SIGTERM arrives.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace meshmq::ops {

class Health {
 public:
  // A named readiness condition ("listeners", "storage", "cluster"), evaluated on every /readyz
  // from the HTTP thread: it must only read atomics or take its component's own lock.
  void add_check(std::string name, std::function<bool()> ok) {
    std::lock_guard lock(mu_);
    checks_.push_back({std::move(name), std::move(ok)});
  }
  void set_stopping() { stopping_ = true; }
  bool stopping() const { return stopping_; }

  // Names of the checks that fail now ("stopping" first while stopping); empty when ready.
  std::vector<std::string> failing() const {
    std::vector<std::string> out;
    if (stopping_) out.push_back("stopping");
    std::lock_guard lock(mu_);
    for (const Check& c : checks_) {
      if (!c.ok()) out.push_back(c.name);
    }
    return out;
  }

 private:
  struct Check {
    std::string name;
    std::function<bool()> ok;
  };
  mutable std::mutex mu_;
  std::vector<Check> checks_;
  std::atomic<bool> stopping_{false};
};

}  // namespace meshmq::ops
