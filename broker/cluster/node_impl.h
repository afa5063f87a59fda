// Internal to broker/cluster: the shared state of ClusterNode::Impl and the types it keeps per
// peer, dial target and waiting SUBACK. The node_*.cc files each define one part of its methods.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "broker/cluster/durable_routes.h"
#include "broker/cluster/failure_detector.h"
#include "broker/cluster/node.h"
#include "broker/cluster/outbox.h"
#include "broker/cluster/retained_versions.h"
#include "broker/cluster/routes.h"
#include "broker/cluster/session_link.h"
#include "broker/cluster/shared_forward.h"
#include "broker/cluster/streams.h"
#include "broker/core/broker.h"
#include "broker/core/retained_store.h"

namespace meshmq::cluster {

inline std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string read_file(const std::string& path, const char* key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(key) + ": cannot read \"" + path + "\"");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using Clock = std::chrono::steady_clock;
using core::NodeId;

// Completion of one forward that went to several nodes: the publisher's ack waits for all.
struct Join {
  std::size_t left;
  std::function<void()> done;
};

struct PendingForward {
  std::uint64_t id;
  core::MessagePtr message;
  std::shared_ptr<Join> join;    // reset once counted
  std::uint64_t outbox_key = 0;  // also stored in the durable outbox (0: memory only)
  SharedFor shared;              // shared groups the peer serves this message for
};

struct Peer {
  NodeId id = 0;
  std::string name;
  std::string address;
  std::uint64_t incarnation = 0;
  std::shared_ptr<OutStream> out;
  bool out_ready = false;  // Welcome received and the full sync sent
  std::shared_ptr<InStream> in;
  std::uint64_t route_acked = 0;
  std::uint64_t next_forward_id = 1;
  std::deque<PendingForward> pending;  // forwards not yet acknowledged, in id order
  std::uint64_t dropped = 0;
};

struct Target {      // an address to dial: a seed, a DNS result or a member's advertised address
  std::string name;  // once known
  bool self = false;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Cluster::Stub> stub;
  std::shared_ptr<OutStream> stream;
  Clock::time_point next_try{};
  std::chrono::milliseconds backoff{100};
};

struct Waiter {  // a SUBACK waiting for peers to acknowledge route changes up to seq
  std::uint64_t seq;
  std::vector<std::string> peers;
  std::function<void()> done;
  Clock::time_point deadline;
  const char* on_timeout = "SUBACK sent";
};

struct ClusterNode::Impl final : FrameSink, pb::Cluster::CallbackService, SessionLink::Host {
  Impl(const config::Config& config, core::Broker& b, core::RetainedStore& r, storage::Db* db);

  // ---------------------------------------------------------------- lifecycle
  void start();
  void stop();

  // ---------------------------------------------------------------- helpers (mu held)
  void load_durable_routes();
  void store_durable_changes();
  std::vector<pb::NodeInfo> members_info();
  void add_target(const std::string& address);
  void learn_members(const google::protobuf::RepeatedPtrField<pb::NodeInfo>& members);
  Peer& peer(const std::string& n);
  pb::Frame snapshot_frame();
  pb::Frame retained_snapshot_frame();
  RetainedVersion stored_version(const core::Message& m);

  // Runs after the lock is released: callbacks into the core must not run under mu.
  std::vector<std::function<void()>> deferred;
  void later_close(const std::shared_ptr<InStream>& s, grpc::StatusCode code, std::string why);
  void later_cancel(const std::shared_ptr<OutStream>& s);
  void count_accept(PendingForward& p);
  bool queue_durably(Peer& p, PendingForward& f);
  void check_waiters(Clock::time_point now);
  void run_deferred(std::unique_lock<std::mutex>& lock);
  void write_to_peers(const pb::Frame& f);  // every peer whose outgoing stream is ready
  void send_forwards(Peer& p, std::deque<PendingForward>::iterator from);
  void mark_down(const std::string& n);
  void withdraw(const std::string& n);

  // ---------------------------------------------------------------- ticker thread
  void run_ticker();
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials();
  std::vector<std::string> resolve(const std::string& dns_name);
  pb::Frame hello_frame();

  // ---------------------------------------------------------------- gRPC service
  grpc::ServerBidiReactor<pb::Frame, pb::Frame>* Link(grpc::CallbackServerContext* ctx) override;

  // ---------------------------------------------------------------- frames from a dialled node
  void on_frame(InStream& s, const pb::Frame& f) override;
  void apply_routes(const std::shared_ptr<InStream>& s, std::vector<core::RemoteRoute> diff,
                    std::uint64_t seq);
  void apply_retained(const pb::RetainedMessage& m);
  void accept_hello(InStream& s, const pb::Hello& h);
  void on_done(InStream& s) override;

  // ---------------------------------------------------------------- frames on our own streams
  void on_frame(OutStream& s, const pb::Frame& f) override;
  void on_welcome(OutStream& s, const pb::Welcome& w);
  void on_done(OutStream& s, const grpc::Status& status) override;

  // ---------------------------------------------------------------- ClusterLink (workers)
  void local_route_added(const std::string& filter, bool durable, std::function<void()> done);
  void local_route_removed(const std::string& filter, bool durable);
  void forward(std::vector<core::RemoteForward>&& batch);
  void retained_changed(const core::MessagePtr& m);

  // ---------------------------------------------------------------- graceful stop, readiness
  void leave(std::function<void()> done);
  void send_leave(std::function<void()> done);
  void on_leave(Peer& p, const std::shared_ptr<InStream>& s, std::uint64_t seq);
  void check_joined(Clock::time_point now);
  ClusterNode::Status status();

  // ---------------------------------------------------------------- SessionLink::Host (mu held)
  std::vector<std::string> ready_peers() override;
  std::vector<std::string> handover_peers() override;
  void send(const std::string& peer, pb::Frame frame) override;

  // ---------------------------------------------------------------- state
  const config::ClusterConfig cfg;
  const std::chrono::seconds handover_budget;  // of node.shutdown_grace
  const std::string name;
  std::string advertise;
  std::uint64_t incarnation = 0;
  core::Broker& broker;
  core::RetainedStore& retained;
  std::unique_ptr<grpc::Server> server;
  std::thread ticker;
  std::condition_variable wake;
  std::mutex mu;  // everything below
  bool stopping = false;
  bool departing = false;      // leave() ran: sessions are being handed over
  bool leaving = false;        // Leave sent: local route changes are no longer announced
  bool forwards_held = false;  // hold_forwards() ran
  std::atomic<bool> joined{false};
  bool dns_resolved = false;
  const Clock::time_point started = Clock::now();
  ClusterNode::Traffic traffic;
  FailureDetector detector;
  LocalRoutes local;
  RemoteRoutes remote;
  DedupWindow dedup;
  std::uint64_t route_seq = 0;
  std::uint64_t duplicates = 0;
  NodeId next_node_id = 1;
  std::map<std::string, Peer> peers;
  std::map<NodeId, std::string> by_id;
  std::map<std::string, Target> targets;
  std::vector<Waiter> waiters;
  SessionLink sessions;  // takes references to the members above
  std::unique_ptr<RetainedVersions> versions;
  std::unique_ptr<DurableRouteStore> durable_routes;
  std::unique_ptr<Outbox> outbox;  // last: its writer thread's callbacks use the state above
};

}  // namespace meshmq::cluster
