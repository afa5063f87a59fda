// A worker's own epoll set for plain TCP connections, watched by the worker's io_context through
// its one descriptor. Asio gives every socket a reactor entry (~170 bytes) and each outstanding
// wait an operation object (~100 bytes), which a million idle connections pay for doing nothing;
// a socket here costs the kernel's epoll item and nothing in the broker beyond the connection
// itself. Sockets are registered once, edge-triggered for input and output, and never modified:
// no epoll_ctl per read or write. Nor per pass: the io_context's reactor watches the epoll
// descriptor through an operation of our own that stays armed without an epoll_ctl (Asio's
// async_wait costs an EPOLL_CTL_MOD each time it is started, one per event-loop pass), and
// that fetches the ready sockets when the reactor reports the descriptor.
//
// Threading: one poller per worker; every method runs on that worker.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

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

  void start();
  void stop();  // stops watching: the io_context may then run out of work

  // Registers a non-blocking socket; returns 0 or the errno of the failure.
  int add(int fd, Client& client);
  // Call before closing `fd`: no event reaches `client` any more, not even one already fetched.
  void remove(int fd, Client& client);
  // Calls client->on_deferred() once the current pass is over: after the batch of events being
  // dispatched, or else from one handler posted for every client deferred meanwhile. Writes go
  // out this way, so all output a pass produces for a client leaves in one send(). The pointer
  // keeps the client alive until then.
  void defer(std::shared_ptr<Client> client);
  // Pauses busy passes (see pacer.h), reading and counting in the worker's `counters`. Before
  // start(); a zero window never pauses.
  void set_pacing(std::chrono::microseconds window, core::WorkerCounters* counters);

 private:
  struct Watch;  // the reactor registration and its operation (poller.cc)
  static constexpr int kBatch = 256;

  void wait();
  int fetch();  // epoll_wait without blocking into events_: the count, or -1
  void dispatch();
  void run_deferred();
  void pace();

  boost::asio::io_context& ctx_;
  int epfd_ = -1;
  std::unique_ptr<Watch> watch_;
  std::array<epoll_event, kBatch> events_{};
  int batch_size_ = 0;  // events_ fetched for dispatch, and the index of the current one
  int batch_next_ = 0;
  bool dispatching_ = false;
  bool deferred_posted_ = false;
  bool stopped_ = false;
  std::vector<std::shared_ptr<Client>> deferred_;
  std::vector<std::shared_ptr<Client>> running_;  // deferred_ of the pass being run
  Pacer pacer_;
  core::WorkerCounters* counters_ = nullptr;
};

}  // namespace meshmq::net
