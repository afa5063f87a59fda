// What a worker's own event loop (Poller::run) needs from the io_context it drives: the reactor's
// epoll descriptor, to watch it in the worker's epoll set, and the hand-off a thread makes before
// it blocks outside the io_context. Asio does that hand-off itself when one of its threads blocks
// in its reactor: under the scheduler's lock it checks that no handler is ready and clears
// `task_interrupted_`, so whoever queues a handler meanwhile (another thread posting, a stop())
// interrupts the reactor, which makes its epoll descriptor readable. The worker blocks in its
// own epoll_wait instead, with the reactor's descriptor in its set, and gets woken the same way.
//
// Nothing of this is public Asio: it reads private members of Boost 1.74's scheduler and
// epoll_reactor (the version Debian 12 ships; the static_assert stops any other), the way the
// poller already uses Asio's reactor operations.
#pragma once

#include <boost/asio/io_context.hpp>

namespace boost::asio::detail {
class scheduler;
class epoll_reactor;
}  // namespace boost::asio::detail

namespace meshmq::net {

class AsioHooks {
 public:
  explicit AsioHooks(boost::asio::io_context& ctx);

  // The reactor's epoll descriptor: readable while the reactor has events for Asio's own sockets
  // and timers, or was interrupted because a handler was queued during block().
  int reactor_fd() const;

  // Under the scheduler's lock: true when the io_context has nothing to run now, false when a
  // handler is ready or it is stopped or out of work (its next poll() stops it). When it is idle
  // and `arm`, queueing a handler from now until unblocked() interrupts the reactor: the caller
  // may block with reactor_fd() in its epoll set.
  bool idle(bool arm);
  // After the wait that idle(true) armed.
  void unblocked();

 private:
  boost::asio::detail::scheduler& scheduler_;
  boost::asio::detail::epoll_reactor& reactor_;
};

}  // namespace meshmq::net
