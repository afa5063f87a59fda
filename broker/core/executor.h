// The core's view of the threads it runs on: N workers, each an event loop that owns the
// connections and sessions assigned to it. The core never locks another worker's state; it posts a
// function to the owner instead (see README "Architecture").
#pragma once

#include <cstddef>
#include <functional>

namespace meshmq::core {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::size_t size() const = 0;
  // Index of the worker the caller runs on. Only valid on a worker thread.
  virtual std::size_t current() const = 0;
  // Runs fn on the given worker, after the handlers already queued there (FIFO per poster).
  virtual void post(std::size_t worker, std::function<void()> fn) = 0;
};

}  // namespace meshmq::core
