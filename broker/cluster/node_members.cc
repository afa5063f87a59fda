// Membership: the peer table, dial targets and DNS discovery, failure detection (down and
// withdrawn nodes), readiness, and the ticker thread that drives them.
#include <arpa/inet.h>
#include <netdb.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/cluster/node_impl.h"

namespace meshmq::cluster {

std::vector<pb::NodeInfo> ClusterNode::Impl::members_info() {
  std::vector<pb::NodeInfo> out;
  pb::NodeInfo me;
  me.set_name(name);
  me.set_address(advertise);
  me.set_incarnation(incarnation);
  out.push_back(me);
  for (auto& [n, p] : peers) {
    const PeerState st = detector.state(n);
    if (p.address.empty() || st == PeerState::kWithdrawn || st == PeerState::kLeft) continue;
    pb::NodeInfo i;
    i.set_name(n);
    i.set_address(p.address);
    i.set_incarnation(p.incarnation);
    out.push_back(i);
  }
  return out;
}

void ClusterNode::Impl::add_target(const std::string& address) {
  if (address.empty() || address == advertise) return;
  targets.try_emplace(address);
}

void ClusterNode::Impl::learn_members(
    const google::protobuf::RepeatedPtrField<pb::NodeInfo>& members) {
  for (const pb::NodeInfo& m : members) {
    if (m.name() == name) continue;
    add_target(m.address());
  }
}

Peer& ClusterNode::Impl::peer(const std::string& n) {
  auto [it, inserted] = peers.try_emplace(n);
  if (inserted) {
    it->second.name = n;
    it->second.id = next_node_id++;
    by_id[it->second.id] = n;
  }
  return it->second;
}

void ClusterNode::Impl::mark_down(const std::string& n) {
  auto it = peers.find(n);
  if (it == peers.end()) return;
  Peer& p = it->second;
  broker.set_node_up(p.id, false);  // shared subscriptions pick live nodes meanwhile
  spdlog::warn("cluster: node {} marked down (silent for {}s); its routes go in {}s", n,
               cfg.down_after_s, cfg.route_grace_s);
  if (p.out) later_cancel(p.out);
  if (p.in) later_close(p.in, grpc::StatusCode::UNAVAILABLE, "marked down");
  p.out_ready = false;
  sessions.peer_gone(n);
  // Queued for a down node: the publishers' acks need not wait for it to return, only for QoS
  // 1/2 messages to be in the durable outbox.
  for (PendingForward& f : p.pending) queue_durably(p, f);
}

void ClusterNode::Impl::withdraw(const std::string& n) {
  auto it = peers.find(n);
  if (it == peers.end()) return;
  auto diff = remote.withdraw_transient(it->second.id);
  spdlog::warn("cluster: node {} still down after cluster.route_grace: {} routes withdrawn", n,
               diff.size());
  if (!diff.empty()) broker.apply_remote_routes(std::move(diff), nullptr);
}

void ClusterNode::Impl::run_ticker() {
  auto next_heartbeat = Clock::now();
  auto next_digest = Clock::now() + std::chrono::seconds(cfg.anti_entropy_s);
  auto next_dns = Clock::now();
  std::unique_lock lock(mu);
  while (!stopping) {
    const auto now = Clock::now();
    if (!cfg.dns_name.empty() && now >= next_dns) {
      next_dns = now + std::chrono::seconds(cfg.dns_interval_s);
      lock.unlock();
      auto found = resolve(cfg.dns_name);
      lock.lock();
      for (const std::string& a : found) add_target(a);
      dns_resolved = dns_resolved || !found.empty();
    }
    auto changes = detector.tick(now);
    for (const std::string& n : changes.down) mark_down(n);
    for (const std::string& n : changes.withdrawn) withdraw(n);
    if (now >= next_heartbeat) {
      next_heartbeat = now + std::chrono::seconds(cfg.heartbeat_s);
      pb::Frame hb;
      hb.mutable_heartbeat()->set_sent_ms(static_cast<std::uint64_t>(wall_ms()));
      for (auto& [n, p] : peers) {
        if (p.out_ready) p.out->write(hb);
        if (p.in) p.in->write(hb);
      }
    }
    if (now >= next_digest) {
      next_digest = now + std::chrono::seconds(cfg.anti_entropy_s);
      versions->purge(wall_ms());
      pb::Frame d;
      const RouteDigest digest = local.digest();
      d.mutable_digest()->set_hash(digest.hash);
      d.mutable_digest()->set_count(digest.count);
      write_to_peers(d);
    }
    check_waiters(now);
    check_joined(now);
    sessions.tick(now);
    std::vector<std::pair<std::shared_ptr<OutStream>, Target*>> dials;
    for (auto& [addr, t] : targets) {
      if (t.self || t.stream || now < t.next_try) continue;
      if (!t.name.empty()) {
        auto p = peers.find(t.name);
        if (p != peers.end() && p->second.out && p->second.out->address() != addr) continue;
      }
      t.next_try = now + t.backoff;
      t.backoff = std::min(t.backoff * 2, std::chrono::milliseconds(1000));
      if (!t.stub) {
        grpc::ChannelArguments args;
        args.SetMaxReceiveMessageSize(-1);
        args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
        // Every node certificate carries one shared name, whatever address it is dialled at.
        if (!cfg.tls.cert_file.empty()) args.SetSslTargetNameOverride(cfg.tls.server_name);
        t.channel = grpc::CreateCustomChannel(addr, channel_credentials(), args);
        t.stub = pb::Cluster::NewStub(t.channel);
      }
      t.stream = std::make_shared<OutStream>(*this, addr);
      dials.emplace_back(t.stream, &t);
    }
    pb::Frame hello = hello_frame();
    // StartCall may run reactions inline; they take mu.
    std::vector<std::pair<std::shared_ptr<OutStream>, pb::Cluster::Stub*>> starts;
    for (auto& [s, t] : dials) starts.emplace_back(s, t->stub.get());
    run_deferred(lock);
    for (auto& [s, stub] : starts) s->start(*stub, hello);
    lock.lock();
    wake.wait_for(lock, std::chrono::milliseconds(100));
  }
}

std::shared_ptr<grpc::ChannelCredentials> ClusterNode::Impl::channel_credentials() {
  if (cfg.tls.cert_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = read_file(cfg.tls.ca_file, "cluster.tls.ca_file");
  opts.pem_private_key = read_file(cfg.tls.key_file, "cluster.tls.key_file");
  opts.pem_cert_chain = read_file(cfg.tls.cert_file, "cluster.tls.cert_file");
  return grpc::SslCredentials(opts);
}

// cluster.dns_name is a name (port: cluster.port, which every node shares) or name:port.
std::vector<std::string> ClusterNode::Impl::resolve(const std::string& dns_name) {
  std::string host = dns_name;
  std::string port = std::to_string(cfg.port);
  const auto colon = dns_name.rfind(':');
  if (colon != std::string::npos && dns_name.find(':') == colon) {
    host = dns_name.substr(0, colon);
    port = dns_name.substr(colon + 1);
  }
  std::vector<std::string> out;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) {
    spdlog::debug("cluster: cannot resolve {}", host);
    return out;
  }
  for (addrinfo* a = res; a; a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, buf, sizeof buf);
      out.push_back(std::string(buf) + ":" + port);
    } else if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, buf, sizeof buf);
      out.push_back("[" + std::string(buf) + "]:" + port);
    }
  }
  freeaddrinfo(res);
  return out;
}

// Readiness: joined once a link to a peer is up, or when there is no one else to join (every
// target turned out to be this node), or after cluster.join_timeout without reaching anyone
// (the seeds are all gone: serving alone beats never serving). Latched: peers failing later do
// not take the survivors out of the load balancer.
void ClusterNode::Impl::check_joined(Clock::time_point now) {
  if (joined) return;
  const bool alone =
      (cfg.dns_name.empty() || dns_resolved) &&
      std::all_of(targets.begin(), targets.end(), [](const auto& t) { return t.second.self; });
  const bool timed_out = now - started >= std::chrono::seconds(cfg.join_timeout_s);
  if (!alone && !timed_out) return;
  joined = true;
  if (timed_out && !alone) {
    spdlog::warn("cluster: no peer reached within cluster.join_timeout ({}s): ready alone",
                 cfg.join_timeout_s);
  } else {
    spdlog::info("cluster: no other node to join: ready alone");
  }
}

std::vector<std::string> ClusterNode::Impl::ready_peers() {
  std::vector<std::string> out;
  if (stopping) return out;
  for (auto& [n, p] : peers) {
    if (p.out_ready) out.push_back(n);
  }
  return out;
}

std::vector<std::string> ClusterNode::Impl::handover_peers() {
  std::vector<std::string> out;
  for (const std::string& n : ready_peers()) {
    if (detector.state(n) == PeerState::kUp) out.push_back(n);
  }
  return out;
}

void ClusterNode::Impl::send(const std::string& peer, pb::Frame frame) {
  auto it = peers.find(peer);
  if (it != peers.end() && it->second.out_ready) it->second.out->write(std::move(frame));
}

}  // namespace meshmq::cluster
