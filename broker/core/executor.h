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
  // Runs fn off the workers, for work that may take long (password hashing, later a network
  // call): a worker must keep serving its other clients meanwhile. fn posts its result back.
  // The default runs it at once, which suits tests and single-threaded tools.
  virtual void post_blocking(std::function<void()> fn) { fn(); }
};

}  // namespace meshmq::core
