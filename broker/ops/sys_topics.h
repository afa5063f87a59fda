// The $SYS tree. Every sys.interval one worker publishes, retained, through the broker's normal
// publish path:
//   $SYS/brokers/<node>/<leaf>   for this node (in a cluster every node's tree reaches everyone)
//   $SYS/broker/<leaf>           the same leaves, node-local: the node the client is connected to
// Leaves: version, uptime, datetime, stats/{connections,sessions,subscriptions,retained,routes}/
// count, metrics/messages/{received,sent,dropped}, metrics/packets/{received,sent}[/<type>],
// metrics/bytes/{received,sent}. Values come from the metrics registry, as /metrics does.
// Client events (non-retained) are published by the broker itself: see Broker::set_event_prefix.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "broker/core/broker.h"
#include "broker/core/metrics.h"

namespace meshmq::ops {

// (leaf, value) pairs for one snapshot, e.g. ("metrics/messages/received", "42").
std::vector<std::pair<std::string, std::string>> sys_leaves(
    const core::Snapshot& snapshot, std::chrono::seconds uptime,
    std::chrono::system_clock::time_point now);

class SysPublisher {
 public:
  // `worker` is the io_context of the worker that publishes (Broker::publish runs on a worker).
  SysPublisher(boost::asio::io_context& worker, core::Broker& broker,
               const core::MetricsRegistry& metrics, std::string node,
               std::chrono::seconds interval);
  void start();  // publishes now, then every interval
  void stop();   // on the worker: cancels the timer

 private:
  void publish_all();
  void schedule(std::chrono::seconds delay);

  boost::asio::steady_timer timer_;
  core::Broker& broker_;
  const core::MetricsRegistry& metrics_;
  const std::string node_;
  const std::chrono::seconds interval_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool stopped_ = false;
};

}  // namespace meshmq::ops
