#include "broker/net/poller.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace meshmq::net {

Poller::Poller(boost::asio::io_context& ctx) : ctx_(ctx), watch_(ctx.get_executor()) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  watch_.assign(epfd_);  // closes it when destroyed
}

Poller::~Poller() = default;

void Poller::start() {
  stopped_ = false;
  wait();
}

void Poller::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  watch_.cancel(ignored);
}

int Poller::add(int fd, Client& client) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &client;
  return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

void Poller::remove(int fd, Client& client) {
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  // The client may be gone before the rest of this batch is dispatched.
  for (int i = batch_next_ + 1; i < batch_size_; ++i) {
    if (events_[i].data.ptr == &client) events_[i].data.ptr = nullptr;
  }
}

void Poller::wait() {
  if (stopped_) return;
  // Asio watches the epoll descriptor edge-triggered too: wait() is only called once a
  // dispatch() found fewer ready sockets than it asked for, so none is left unreported. Nothing
  // can become ready unseen in between: the worker runs this and the reactor on one thread.
  watch_.async_wait(Descriptor::wait_read, [this](const boost::system::error_code& ec) {
    if (!ec) dispatch();
  });
}

void Poller::dispatch() {
  if (stopped_) return;
  const int n = ::epoll_wait(epfd_, events_.data(), kBatch, 0);
  if (n < 0) {
    if (errno != EINTR) spdlog::error("epoll_wait: {}", std::strerror(errno));
    wait();
    return;
  }
  dispatching_ = true;
  batch_size_ = n;
  for (batch_next_ = 0; batch_next_ < n; ++batch_next_) {
    if (auto* client = static_cast<Client*>(events_[batch_next_].data.ptr)) {
      client->on_poll_events(events_[batch_next_].events);
    }
  }
  batch_size_ = batch_next_ = 0;
  dispatching_ = false;
  run_deferred();
  if (n == kBatch) {
    // More may be ready: look again, after the handlers queued meanwhile.
    boost::asio::post(ctx_, [this] { dispatch(); });
  } else {
    wait();
  }
}

void Poller::defer(std::shared_ptr<Client> client) {
  deferred_.push_back(std::move(client));
  if (dispatching_ || deferred_posted_) return;
  deferred_posted_ = true;
  boost::asio::post(ctx_, [this] {
    deferred_posted_ = false;
    run_deferred();
  });
}

void Poller::run_deferred() {
  // What the clients defer while this runs waits for the next pass (defer() posts it).
  running_.swap(deferred_);
  for (auto& client : running_) client->on_deferred();
  running_.clear();
}

}  // namespace meshmq::net
