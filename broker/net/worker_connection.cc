#include "broker/net/worker_connection.h"

namespace meshmq::net {

namespace {
constexpr auto kCloseLinger = std::chrono::seconds(2);
}  // namespace

WorkerConnection::WorkerConnection(core::Broker& broker, WorkerPool& pool, std::size_t worker,
                                   std::string peer)
    : core::Connection(broker, worker, std::move(peer)), pool_(pool) {
  pool_.connections(worker).push_back(*this);
}

bool WorkerConnection::begin_close() {
  if (closing_) return false;
  closing_ = true;
  return true;
}

void WorkerConnection::linger() {
  pool_.wheel(worker()).schedule(*this, DeadlineWheel::Clock::now() + kCloseLinger);
}

void WorkerConnection::finish_close() {
  if (finished_) return;
  finished_ = true;
  pool_.wheel(worker()).cancel(*this);
  close_socket();
}

void WorkerConnection::transport_arm_timer(std::chrono::milliseconds delay) {
  if (closing_) return;
  pool_.wheel(worker()).schedule(*this, DeadlineWheel::Clock::now() + delay);
}

void WorkerConnection::on_deadline() {
  auto keep_alive = shared_from_this();  // firing may drop the last other reference
  if (closing_) {
    finish_close();  // the close linger ran out
  } else {
    on_timer();
  }
}

}  // namespace meshmq::net
