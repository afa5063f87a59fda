#include "broker/net/asio_hooks.h"

#include <boost/asio/detail/op_queue.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/version.hpp>
#include <type_traits>

static_assert(BOOST_VERSION == 107400,
              "asio_hooks.cc reads private members of Boost 1.74's scheduler and epoll_reactor: "
              "check them against this Boost version before changing this line");

namespace meshmq::net {

namespace {

namespace ad = boost::asio::detail;
static_assert(std::is_same_v<ad::reactor, ad::epoll_reactor>, "the poller needs the epoll reactor");

// Access is not checked in the template arguments of an explicit instantiation: the usual way to
// name a private member. Each tag's friend returns the member pointer its instantiation captured.
template <typename Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type member(Tag) { return Member; }
};

#define MESHMQ_EXPOSE(Tag, Class, Type, Field) \
  struct Tag {                                 \
    using type = Type Class::*;                \
    friend type member(Tag);                   \
  };                                           \
  template struct Expose<Tag, &Class::Field>

MESHMQ_EXPOSE(ReactorFd, ad::epoll_reactor, int, epoll_fd_);
MESHMQ_EXPOSE(Mutex, ad::scheduler, ad::conditionally_enabled_mutex, mutex_);
MESHMQ_EXPOSE(TaskInterrupted, ad::scheduler, bool, task_interrupted_);
MESHMQ_EXPOSE(OutstandingWork, ad::scheduler, ad::atomic_count, outstanding_work_);
MESHMQ_EXPOSE(Queue, ad::scheduler, ad::op_queue<ad::scheduler_operation>, op_queue_);
MESHMQ_EXPOSE(Stopped, ad::scheduler, bool, stopped_);

#undef MESHMQ_EXPOSE

}  // namespace

AsioHooks::AsioHooks(boost::asio::io_context& ctx)
    : scheduler_(boost::asio::use_service<ad::scheduler>(ctx)),
      reactor_(boost::asio::use_service<ad::reactor>(
          static_cast<boost::asio::execution_context&>(ctx))) {
  reactor_.init_task();  // the reactor gets its place in the scheduler's queue
}

int AsioHooks::reactor_fd() const {
  return reactor_.*member(ReactorFd{});
}

bool AsioHooks::idle(bool arm) {
  ad::scheduler& s = scheduler_;
  ad::conditionally_enabled_mutex::scoped_lock lock(s.*member(Mutex{}));
  if (s.*member(Stopped{}) || (s.*member(OutstandingWork{})) == 0) return false;
  ad::scheduler_operation* front = (s.*member(Queue{})).front();
  if (front != nullptr) {
    // While no thread runs the reactor, its task operation waits in the queue, and it is the
    // only operation that lives inside the scheduler object: anything else is a ready handler.
    const auto* at = reinterpret_cast<const char*>(front);
    const auto* self = reinterpret_cast<const char*>(&s);
    const bool is_task = at >= self && at < self + sizeof(ad::scheduler);
    if (!is_task || ad::op_queue_access::next(front) != nullptr) return false;
  }
  if (arm) s.*member(TaskInterrupted{}) = false;
  return true;
}

void AsioHooks::unblocked() {
  ad::scheduler& s = scheduler_;
  ad::conditionally_enabled_mutex::scoped_lock lock(s.*member(Mutex{}));
  s.*member(TaskInterrupted{}) = true;
}

}  // namespace meshmq::net
