// ClusterNode: the public face over ClusterNode::Impl, and the node's start, stop and status.
#include "broker/cluster/node.h"

#include <absl/synchronization/mutex.h>
#include <spdlog/spdlog.h>

#include <random>
#include <sstream>
#include <stdexcept>

#include "broker/cluster/node_impl.h"

namespace meshmq::cluster {

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front())))
      item.erase(0, 1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

ClusterNode::Impl::Impl(const config::Config& config, core::Broker& b, core::RetainedStore& r,
                        storage::Db* db)
    : cfg(config.cluster),
      handover_budget(std::chrono::seconds(config.node.shutdown_grace_s) / 2),
      name(config.node.name),
      broker(b),
      retained(r),
      detector(std::chrono::seconds(cfg.down_after_s), std::chrono::seconds(cfg.route_grace_s)),
      sessions(name, b, mu, deferred, *this, std::chrono::seconds(cfg.takeover_timeout_s),
               std::chrono::seconds(cfg.takeover_timeout_s + cfg.route_ack_timeout_s + 1)) {
  outbox = std::make_unique<Outbox>(db, cfg.outbox_max_messages);
  durable_routes = std::make_unique<DurableRouteStore>(db);
  versions =
      std::make_unique<RetainedVersions>(db, std::int64_t{cfg.retained_tombstone_ttl_s} * 1000);
  std::random_device rd;
  incarnation = (std::uint64_t{rd()} << 32 | rd()) ^ static_cast<std::uint64_t>(wall_ms());
  advertise = cfg.advertise;
  if (advertise.empty()) {
    const bool any = cfg.bind == "0.0.0.0" || cfg.bind == "::";
    advertise = (any ? name : cfg.bind) + ":" + std::to_string(cfg.port);
  }
}

void ClusterNode::Impl::start() {
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!cfg.tls.cert_file.empty()) {
    grpc::SslServerCredentialsOptions opts(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    opts.pem_root_certs = read_file(cfg.tls.ca_file, "cluster.tls.ca_file");
    opts.pem_key_cert_pairs.push_back({read_file(cfg.tls.key_file, "cluster.tls.key_file"),
                                       read_file(cfg.tls.cert_file, "cluster.tls.cert_file")});
    creds = grpc::SslServerCredentials(opts);
  }
  grpc::ServerBuilder builder;
  int bound = 0;
  const std::string listen =
      (cfg.bind.find(':') != std::string::npos ? "[" + cfg.bind + "]" : cfg.bind) + ":" +
      std::to_string(cfg.port);
  builder.AddListeningPort(listen, creds, &bound);
  builder.SetMaxReceiveMessageSize(-1);
  builder.RegisterService(this);
  server = builder.BuildAndStart();
  if (!server || bound == 0) {
    throw std::runtime_error("cluster.port: cannot listen on " + listen);
  }
  {
    std::lock_guard lock(mu);
    for (const std::string& s : split_list(cfg.seeds)) add_target(s);
    versions->load(wall_ms());
    load_durable_routes();
    for (Outbox::Stored& o : outbox->load()) {
      Peer& p = peer(o.peer);
      p.pending.push_back(
          {p.next_forward_id++, std::move(o.message), nullptr, o.key, std::move(o.shared)});
    }
  }
  spdlog::info("cluster: node {} listening on {} (advertised as {}), seeds [{}]{}", name, listen,
               advertise, cfg.seeds, cfg.dns_name.empty() ? "" : ", dns " + cfg.dns_name);
  ticker = std::thread([this] { run_ticker(); });
}

void ClusterNode::Impl::stop() {
  {
    std::lock_guard lock(mu);
    if (stopping) return;
    stopping = true;
  }
  wake.notify_all();
  if (ticker.joinable()) ticker.join();
  std::vector<std::shared_ptr<OutStream>> outs;
  std::vector<std::shared_ptr<InStream>> ins;
  {
    std::lock_guard lock(mu);
    for (auto& [addr, t] : targets) {
      if (t.stream) outs.push_back(t.stream);
    }
    for (auto& [n, p] : peers) {
      if (p.in) ins.push_back(p.in);
    }
  }
  for (auto& s : outs) s->cancel();
  for (auto& s : ins) s->close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "node stopping"));
  if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  while (live_streams.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard lock(mu);
  waiters.clear();  // the workers are gone: nobody waits for these SUBACKs any more
  sessions.clear();
  deferred.clear();
  targets.clear();
  peers.clear();
}

ClusterNode::Status ClusterNode::Impl::status() {
  std::lock_guard lock(mu);
  ClusterNode::Status st;
  st.name = name;
  st.address = advertise;
  st.joined = joined;
  st.leaving = leaving;
  st.local_routes = local.size();
  st.traffic = traffic;
  for (auto& [n, p] : peers) {
    ClusterNode::MemberStatus m;
    m.name = n;
    m.address = p.address;
    switch (detector.state(n)) {
      case PeerState::kUp:
        m.state = "up";
        break;
      case PeerState::kLeft:
        m.state = p.in || p.out ? "leaving" : "left";
        break;
      default:
        m.state = "down";
        break;
    }
    m.routes = remote.size(p.id);
    m.forward_queue = p.pending.size();
    m.forward_dropped = p.dropped;
    m.link_out = p.out_ready;
    m.link_in = p.in != nullptr;
    st.traffic.pending += p.pending.size();
    st.members.push_back(std::move(m));
  }
  st.traffic.duplicates = duplicates;
  st.traffic.outbox = outbox->stored();
  st.traffic.dropped_outbox_full = outbox->dropped();
  return st;
}

ClusterNode::ClusterNode(const config::Config& config, core::Broker& broker,
                         core::RetainedStore& retained, storage::Db* db)
    : impl_(std::make_unique<Impl>(config, broker, retained, db)) {}

ClusterNode::~ClusterNode() {
  stop();
}

void ClusterNode::start() {
  // Debian builds abseil without NDEBUG, so every gRPC mutex would feed abseil's lock-order graph
  // (one global lock, on every acquisition) and abort the process on a suspected cycle.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  impl_->start();
}
ClusterNode::PeerCounts ClusterNode::peer_counts() const {
  std::lock_guard lock(impl_->mu);
  const auto c = impl_->detector.counts();
  return {c.up, c.down, c.left};
}
void ClusterNode::leave(std::function<void()> done) {
  impl_->leave(std::move(done));
}
void ClusterNode::hold_forwards() {
  std::lock_guard lock(impl_->mu);
  impl_->forwards_held = true;
}
bool ClusterNode::joined() const {
  return impl_->joined.load();
}
ClusterNode::Status ClusterNode::status() const {
  return impl_->status();
}

void ClusterNode::stop() {
  impl_->stop();
}
void ClusterNode::local_route_added(const std::string& filter, std::function<void()> done) {
  impl_->local_route_added(filter, false, std::move(done));
}
void ClusterNode::local_route_removed(const std::string& filter) {
  impl_->local_route_removed(filter, false);
}
void ClusterNode::local_durable_route_added(const std::string& filter, std::function<void()> done) {
  impl_->local_route_added(filter, true, std::move(done));
}
void ClusterNode::local_durable_route_removed(const std::string& filter) {
  impl_->local_route_removed(filter, true);
}
void ClusterNode::forward(std::vector<core::RemoteForward>&& batch) {
  impl_->forward(std::move(batch));
}
void ClusterNode::retained_changed(const core::MessagePtr& message) {
  impl_->retained_changed(message);
}
void ClusterNode::claim_session(const std::string& client_id, bool clean_session,
                                std::function<void(core::SessionClaim)> done) {
  impl_->sessions.claim(client_id, clean_session, std::move(done));
}

}  // namespace meshmq::cluster
