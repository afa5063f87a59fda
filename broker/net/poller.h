// A worker's event loop: its own epoll set for plain TCP connections, with the io_context (Asio's
// timers, TLS and WebSocket streams, handlers posted to the worker) run from the same loop.
//
// Asio gives every socket a reactor entry (~170 bytes) and each outstanding wait an operation
// object (~100 bytes), which a million idle connections pay for doing nothing; a socket here costs
// the kernel's epoll item and nothing in the broker beyond the connection itself. Sockets are
// registered once, edge-triggered for input and output, and never modified: no epoll_ctl per read
// or write.
//
// The loop blocks in one epoll_wait on that set, which also holds the descriptor of the
// io_context's reactor. Watching the set from inside the io_context instead (its reactor waiting
// on the set's descriptor) costs every wakeup a second epoll_wait, Asio's and then ours to fetch
// the sockets: at moderate rates one wakeup per message, and on the benchmark VM a system call
// costs about as much as a message's protocol work. The io_context is polled only when its
// reactor's descriptor is readable or a handler is waiting (asio_hooks.h: a handler queued while
// the loop blocks interrupts the reactor, as it does when one of Asio's own threads blocks).
//
// Threading: one poller per worker; run() and every method run on that worker's thread.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "broker/net/asio_hooks.h"
#include "broker/net/pacer.h"

namespace meshmq::core {
struct WorkerCounters;
}

namespace meshmq::net {

class Poller {
 public:
  class Client {
   public:
    // Readiness (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR bits) of the descriptor.
    virtual void on_poll_events(std::uint32_t events) = 0;
    // Work the client asked for with defer().
    virtual void on_deferred() = 0;

   protected:
    ~Client() = default;
  };

  explicit Poller(boost::asio::io_context& ctx);
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  ~Poller();  // before the io_context's destruction

  // The worker's loop: returns once the io_context has stopped, because it ran out of work
  // (nothing pending in Asio, no work guard) or was stop()ped.
  void run();
  // One turn of that loop, waiting at most `timeout` for something to happen; false once the
  // io_context has stopped. For tests, which bound their waits.
  bool run_once(std::chrono::milliseconds timeout);

  void start();
  void stop();  // no socket events are dispatched after this (until start())

  // Registers a non-blocking socket; returns 0 or the errno of the failure.
  int add(int fd, Client& client);
  // Call before closing `fd`: no event reaches `client` any more, not even one already fetched.
  void remove(int fd, Client& client);
  // Calls client->on_deferred() once the current turn's events and handlers have run, before the
  // loop waits again. Writes go out this way, so all output a turn produces for a client leaves
  // in one send(). What is deferred from deferred work waits for the next turn. The pointer keeps
  // the client alive until then.
  void defer(std::shared_ptr<Client> client);
  // Pauses busy passes (see pacer.h), reading and counting in the worker's `counters`. Before
  // start(); a zero window never pauses.
  void set_pacing(std::chrono::microseconds window, core::WorkerCounters* counters);

 private:
  static constexpr int kBatch = 256;
  static constexpr int kHandlersPerTurn = 256;

  bool turn(int timeout_ms);
  void dispatch();
  void run_deferred();
  void pace();

  boost::asio::io_context& ctx_;
  AsioHooks asio_;
  int epfd_ = -1;
  std::array<epoll_event, kBatch> events_{};
  int batch_size_ = 0;  // events_ fetched for dispatch, and the index of the current one
  int batch_next_ = 0;
  bool dispatching_ = false;
  bool more_ready_ = false;  // the last fetch filled events_: more may be waiting
  bool stopped_ = false;
  std::vector<std::shared_ptr<Client>> deferred_;
  std::vector<std::shared_ptr<Client>> running_;  // deferred_ of the pass being run
  Pacer pacer_;
  core::WorkerCounters* counters_ = nullptr;
};

}  // namespace meshmq::net
