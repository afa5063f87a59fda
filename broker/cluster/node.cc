#include "broker/cluster/node.h"

#include <absl/synchronization/mutex.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "broker/cluster/durable_routes.h"
#include "broker/cluster/failure_detector.h"
#include "broker/cluster/outbox.h"
#include "broker/cluster/retained_versions.h"
#include "broker/cluster/routes.h"
#include "broker/cluster/session_link.h"
#include "broker/cluster/shared_forward.h"
#include "broker/cluster/streams.h"
#include "broker/core/broker.h"
#include "broker/core/retained_store.h"
#include "broker/storage/encoding.h"

namespace meshmq::cluster {

namespace {

constexpr std::uint32_t kProtocolVersion = 1;
using Clock = std::chrono::steady_clock;
using core::NodeId;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

std::string proof(const std::string& secret, const std::string& nonce) {
  if (secret.empty()) return {};
  std::string data = secret + nonce;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string read_file(const std::string& path, const char* key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(key) + ": cannot read \"" + path + "\"");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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

}  // namespace

struct ClusterNode::Impl final : FrameSink, pb::Cluster::CallbackService, SessionLink::Host {
  Impl(const config::Config& config, core::Broker& b, core::RetainedStore& r, storage::Db* db)
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

  // ---------------------------------------------------------------- lifecycle

  void start() {
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

  void stop() {
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

  // ---------------------------------------------------------------- helpers (mu held)

  // The routes of other nodes' persistent sessions as this node last knew them: until such a node
  // is heard again (it is unknown to the failure detector, so "down"), QoS 1/2 messages for its
  // sessions go to the outbox as before this node restarted.
  void load_durable_routes() {
    std::vector<core::RemoteRoute> diff;
    for (auto& [n, filters] : durable_routes->load()) {
      Peer& p = peer(n);
      auto d = remote.replace(p.id, filters);
      remote.set_durable(p.id, filters);
      diff.insert(diff.end(), d.begin(), d.end());
    }
    remote.take_durable_changes();  // already on disk
    if (!diff.empty()) broker.apply_remote_routes(std::move(diff), nullptr);
  }

  // Mirrors on disk what the last frame changed in other nodes' durable sets.
  void store_durable_changes() {
    auto changes = remote.take_durable_changes();
    if (changes.empty()) return;
    for (const RemoteRoutes::DurableChange& c : changes) {
      durable_routes->record(by_id[c.node], c.filter, c.durable);
    }
    durable_routes->commit();
  }

  std::vector<pb::NodeInfo> members_info() {
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

  void add_target(const std::string& address) {
    if (address.empty() || address == advertise) return;
    targets.try_emplace(address);
  }

  void learn_members(const google::protobuf::RepeatedPtrField<pb::NodeInfo>& members) {
    for (const pb::NodeInfo& m : members) {
      if (m.name() == name) continue;
      add_target(m.address());
    }
  }

  Peer& peer(const std::string& n) {
    auto [it, inserted] = peers.try_emplace(n);
    if (inserted) {
      it->second.name = n;
      it->second.id = next_node_id++;
      by_id[it->second.id] = n;
    }
    return it->second;
  }

  pb::Frame snapshot_frame() {
    pb::Frame f;
    auto* s = f.mutable_snapshot();
    s->set_seq(route_seq);
    for (std::string& filter : local.filters()) s->add_filters(std::move(filter));
    for (std::string& filter : local.durable_filters()) s->add_durable(std::move(filter));
    return f;
  }

  pb::Frame retained_snapshot_frame() {
    pb::Frame f;
    auto* batch = f.mutable_retained();
    retained.match("#", [&](const core::MessagePtr& m) {
      auto* r = batch->add_messages();
      r->set_topic(std::string(m->topic));
      r->set_payload(std::string(m->payload));
      r->set_qos(static_cast<std::uint32_t>(m->qos));
      const RetainedVersion v = stored_version(*m);
      r->set_timestamp_ms(v.ts);
      r->set_origin(v.origin);
    });
    versions->for_each_tombstone([&](const std::string& topic, const RetainedVersion& v) {
      auto* r = batch->add_messages();
      r->set_topic(topic);
      r->set_timestamp_ms(v.ts);
      r->set_origin(v.origin);
    });
    return f;
  }

  // A stored message's version; one loaded from disk counts with its received time (a replicated
  // message is stored with its origin's time).
  RetainedVersion stored_version(const core::Message& m) {
    const RetainedVersion* v = versions->find(std::string(m.topic));
    return v ? *v : RetainedVersion{storage::to_unix_ms(m.received_at), ""};
  }

  // Runs after the lock is released: callbacks into the core must not run under mu.
  std::vector<std::function<void()>> deferred;

  // Closing or cancelling a stream may run its reactions (and so on_done, which takes mu) inline.
  void later_close(const std::shared_ptr<InStream>& s, grpc::StatusCode code, std::string why) {
    deferred.push_back([s, code, why = std::move(why)] { s->close(grpc::Status(code, why)); });
  }
  void later_cancel(const std::shared_ptr<OutStream>& s) {
    deferred.push_back([s] { s->cancel(); });
  }

  void count_accept(PendingForward& p) {
    if (!p.join) return;
    if (--p.join->left == 0 && p.join->done) deferred.push_back(std::move(p.join->done));
    p.join.reset();
  }

  // A forward for a node that is down: a QoS 1/2 one is also written to the durable outbox and
  // counts as accepted once it is on disk; anything else counts at once. False when the outbox
  // is full (the forward is dropped and counted; the publisher is not held up by it).
  bool queue_durably(Peer& p, PendingForward& f) {
    if (f.outbox_key != 0 || f.message->qos == core::QoS::kAtMostOnce) {
      count_accept(f);
      return true;
    }
    auto join = std::exchange(f.join, nullptr);
    f.outbox_key = outbox->add(p.name, f.message, f.shared, [this, join] {
      std::unique_lock lock(mu);
      if (stopping) return;  // the workers that would send the PUBACK are gone
      if (join && --join->left == 0 && join->done) deferred.push_back(std::move(join->done));
      run_deferred(lock);
    });
    if (f.outbox_key != 0) return true;
    f.join = join;
    count_accept(f);
    return false;
  }

  void check_waiters(Clock::time_point now) {
    for (auto it = waiters.begin(); it != waiters.end();) {
      std::erase_if(it->peers, [&](const std::string& n) {
        auto p = peers.find(n);
        return p == peers.end() || !p->second.out_ready || p->second.route_acked >= it->seq ||
               detector.state(n) == PeerState::kLeft;
      });
      if (it->peers.empty() || now >= it->deadline) {
        if (!it->peers.empty()) {
          spdlog::warn("cluster: route change {} not acknowledged by {} within {}s; {}", it->seq,
                       it->peers.front(), cfg.route_ack_timeout_s, it->on_timeout);
        }
        deferred.push_back(std::move(it->done));
        it = waiters.erase(it);
      } else {
        ++it;
      }
    }
  }

  void run_deferred(std::unique_lock<std::mutex>& lock) {
    auto todo = std::move(deferred);
    deferred.clear();
    lock.unlock();
    for (auto& fn : todo) fn();
  }

  void send_forwards(Peer& p, std::deque<PendingForward>::iterator from) {
    pb::Frame f;
    auto* batch = f.mutable_publish();
    for (auto it = from; it != p.pending.end(); ++it) {
      auto* m = batch->add_messages();
      m->set_id(it->id);
      m->set_topic(std::string(it->message->topic));
      m->set_payload(std::string(it->message->payload));
      m->set_qos(static_cast<std::uint32_t>(it->message->qos));
      it->shared.to_proto(*m);
    }
    if (batch->messages_size() > 0) p.out->write(std::move(f));
  }

  void mark_down(const std::string& n) {
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

  void withdraw(const std::string& n) {
    auto it = peers.find(n);
    if (it == peers.end()) return;
    auto diff = remote.withdraw_transient(it->second.id);
    spdlog::warn("cluster: node {} still down after cluster.route_grace: {} routes withdrawn", n,
                 diff.size());
    if (!diff.empty()) broker.apply_remote_routes(std::move(diff), nullptr);
  }

  // ---------------------------------------------------------------- ticker thread

  void run_ticker() {
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
        for (auto& [n, p] : peers) {
          if (p.out_ready) p.out->write(d);
        }
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

  std::shared_ptr<grpc::ChannelCredentials> channel_credentials() {
    if (cfg.tls.cert_file.empty()) return grpc::InsecureChannelCredentials();
    grpc::SslCredentialsOptions opts;
    opts.pem_root_certs = read_file(cfg.tls.ca_file, "cluster.tls.ca_file");
    opts.pem_private_key = read_file(cfg.tls.key_file, "cluster.tls.key_file");
    opts.pem_cert_chain = read_file(cfg.tls.cert_file, "cluster.tls.cert_file");
    return grpc::SslCredentials(opts);
  }

  // cluster.dns_name is a name (port: cluster.port, which every node shares) or name:port.
  std::vector<std::string> resolve(const std::string& dns_name) {
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
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, buf,
                  sizeof buf);
        out.push_back("[" + std::string(buf) + "]:" + port);
      }
    }
    freeaddrinfo(res);
    return out;
  }

  pb::Frame hello_frame() {
    pb::Frame f;
    auto* h = f.mutable_hello();
    h->set_protocol_version(kProtocolVersion);
    h->mutable_node()->set_name(name);
    h->mutable_node()->set_address(advertise);
    h->mutable_node()->set_incarnation(incarnation);
    std::string nonce(16, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size()));
    h->set_nonce(nonce);
    h->set_secret_proof(proof(cfg.secret, nonce));
    for (auto& m : members_info()) *h->add_members() = std::move(m);
    return f;
  }

  // ---------------------------------------------------------------- gRPC service

  grpc::ServerBidiReactor<pb::Frame, pb::Frame>* Link(grpc::CallbackServerContext* ctx) override {
    auto s = std::make_shared<InStream>(*this, ctx->peer());
    s->start();
    return s.get();
  }

  // ---------------------------------------------------------------- frames from a dialled node

  void on_frame(InStream& s, const pb::Frame& f) override {
    std::unique_lock lock(mu);
    if (stopping) return;
    if (f.has_hello()) {
      accept_hello(s, f.hello());
      run_deferred(lock);
      return;
    }
    if (s.node.empty()) {
      later_close(s.shared_from_this(), grpc::StatusCode::FAILED_PRECONDITION,
                  "first frame must be Hello");
      run_deferred(lock);
      return;
    }
    Peer& p = peer(s.node);
    if (p.in.get() != &s) return;  // superseded by a newer stream from the same node
    detector.heard(p.name, Clock::now());
    auto self = s.shared_from_this();
    // A leaving node's routes stay withdrawn whatever it still sends.
    if (detector.state(p.name) == PeerState::kLeft && (f.has_snapshot() || f.has_delta())) return;
    switch (f.body_case()) {
      case pb::Frame::kLeave:
        on_leave(p, self, f.leave().seq());
        run_deferred(lock);
        return;
      case pb::Frame::kSnapshot: {
        std::vector<std::string> filters(f.snapshot().filters().begin(),
                                         f.snapshot().filters().end());
        auto diff = remote.replace(p.id, filters);
        remote.set_durable(p.id, {f.snapshot().durable().begin(), f.snapshot().durable().end()});
        store_durable_changes();
        apply_routes(self, std::move(diff), f.snapshot().seq());
        break;
      }
      case pb::Frame::kDelta: {
        std::vector<std::string> added(f.delta().added().begin(), f.delta().added().end());
        std::vector<std::string> removed(f.delta().removed().begin(), f.delta().removed().end());
        auto diff = remote.apply(p.id, added, removed);
        remote.change_durable(
            p.id, {f.delta().durable_added().begin(), f.delta().durable_added().end()},
            {f.delta().durable_removed().begin(), f.delta().durable_removed().end()});
        store_durable_changes();
        apply_routes(self, std::move(diff), f.delta().seq());
        break;
      }
      case pb::Frame::kDigest:
        if (remote.digest(p.id) != RouteDigest{f.digest().hash(), f.digest().count()}) {
          spdlog::info("cluster: route digest of {} differs; asking for a snapshot", p.name);
          pb::Frame r;
          r.mutable_resync();
          s.write(std::move(r));
        }
        break;
      case pb::Frame::kPublish: {
        // Workers about to stop: not delivered, not acknowledged; the sender keeps them queued
        // for this node's next process (same name).
        if (forwards_held) break;
        std::uint64_t last = 0;
        for (const pb::Publish& m : f.publish().messages()) {
          last = m.id();
          if (!dedup.accept(p.name, p.incarnation, m.id())) {
            ++duplicates;
            continue;
          }
          ++traffic.received;
          traffic.received_bytes += m.topic().size() + m.payload().size();
          broker.deliver_remote(
              core::make_message(m.topic(), m.payload(),
                                 static_cast<core::QoS>(std::min<std::uint32_t>(m.qos(), 2)),
                                 false),
              p.id, {m.shared().begin(), m.shared().end()}, m.shared_only());
        }
        pb::Frame ack;
        ack.mutable_publish_ack()->set_up_to(last);
        s.write(std::move(ack));
        break;
      }
      case pb::Frame::kRetained:
        for (const pb::RetainedMessage& m : f.retained().messages()) apply_retained(m);
        break;
      case pb::Frame::kMembers:
        learn_members(f.members().members());
        break;
      case pb::Frame::kSessionClaim:
        sessions.on_claim(p.name, f.session_claim(), self);
        break;
      case pb::Frame::kSessionList:
        sessions.on_list(p.name, f.session_list(), self);
        break;
      case pb::Frame::kSessionPark:
        sessions.on_park(p.name, f.session_park());
        break;
      case pb::Frame::kSessionInstalled:
        sessions.on_installed(p.name, f.session_installed());
        break;
      case pb::Frame::kSessionMerge:
        sessions.on_merge(p.name, f.session_merge());
        break;
      default:
        break;
    }
    run_deferred(lock);
  }

  void apply_routes(const std::shared_ptr<InStream>& s, std::vector<core::RemoteRoute> diff,
                    std::uint64_t seq) {
    // Acknowledged once every worker's route trie has the change: a publish made after the
    // origin's SUBACK then finds the route on any worker here.
    broker.apply_remote_routes(std::move(diff), [s, seq] {
      pb::Frame ack;
      ack.mutable_route_ack()->set_seq(seq);
      s->write(std::move(ack));
    });
  }

  void apply_retained(const pb::RetainedMessage& m) {
    RetainedVersion incoming{m.timestamp_ms(), m.origin()};
    RetainedVersion current;
    if (const RetainedVersion* v = versions->find(m.topic())) {
      current = *v;
    } else {
      retained.match(m.topic(),
                     [&](const core::MessagePtr& old) { current = stored_version(*old); });
    }
    if (!(current < incoming)) return;
    broker.set_remote_retained(core::make_message(
        m.topic(), m.payload(), static_cast<core::QoS>(std::min<std::uint32_t>(m.qos(), 2)), true,
        storage::from_unix_ms(incoming.ts)));
    versions->record(m.topic(), incoming, m.payload().empty());
  }

  void accept_hello(InStream& s, const pb::Hello& h) {
    auto reject = [&](const std::string& why) {
      spdlog::warn("cluster: refusing link from {} ({}): {}", s.peer(), h.node().name(), why);
      later_close(s.shared_from_this(), grpc::StatusCode::PERMISSION_DENIED, why);
    };
    if (h.protocol_version() != kProtocolVersion) {
      return reject("protocol version " + std::to_string(h.protocol_version()) + ", expected " +
                    std::to_string(kProtocolVersion));
    }
    const std::string expected = proof(cfg.secret, h.nonce());
    if (expected.size() != h.secret_proof().size() ||
        CRYPTO_memcmp(expected.data(), h.secret_proof().data(), expected.size()) != 0) {
      return reject("wrong cluster.secret");
    }
    const pb::NodeInfo& who = h.node();
    pb::Frame welcome;
    welcome.mutable_welcome()->mutable_node()->set_name(name);
    welcome.mutable_welcome()->mutable_node()->set_address(advertise);
    welcome.mutable_welcome()->mutable_node()->set_incarnation(incarnation);
    for (auto& m : members_info()) *welcome.mutable_welcome()->add_members() = std::move(m);
    if (who.name() == name) {
      if (who.incarnation() != incarnation) {
        return reject("another node already uses the name " + name + " (set node.name)");
      }
      s.write(std::move(welcome));  // our own seed: the dialer sees its own name and stops
      return;
    }
    Peer& p = peer(who.name());
    const bool restarted = p.incarnation != 0 && p.incarnation != who.incarnation();
    p.incarnation = who.incarnation();
    p.address = who.address();
    add_target(who.address());
    auto t = targets.find(who.address());
    if (t != targets.end()) t->second.name = who.name();
    if (p.in && p.in.get() != &s) {
      later_close(p.in, grpc::StatusCode::ABORTED, "superseded by a newer link");
    }
    p.in = s.shared_from_this();
    s.node = who.name();
    if (restarted) detector.rejoined(p.name, Clock::now());
    broker.set_node_up(p.id, true);
    if (detector.heard(p.name, Clock::now()) || restarted) {
      spdlog::info("cluster: node {} ({}) joined{}", p.name, p.address,
                   restarted ? " after a restart" : "");
      if (p.out && restarted) later_cancel(p.out);  // redial: its sync state is gone
      pb::Frame news;
      for (auto& m : members_info()) *news.mutable_members()->add_members() = std::move(m);
      for (auto& [n, other] : peers) {
        if (n != p.name && other.out_ready) other.out->write(news);
      }
    }
    learn_members(h.members());
    s.write(std::move(welcome));
    wake.notify_all();  // dial it back now
  }

  void on_done(InStream& s) override {
    std::lock_guard lock(mu);
    if (s.node.empty()) return;
    auto it = peers.find(s.node);
    if (it != peers.end() && it->second.in.get() == &s) it->second.in.reset();
  }

  // ---------------------------------------------------------------- frames on our own streams

  void on_frame(OutStream& s, const pb::Frame& f) override {
    std::unique_lock lock(mu);
    if (stopping) return;
    if (f.has_welcome()) {
      on_welcome(s, f.welcome());
      run_deferred(lock);
      return;
    }
    auto t = targets.find(s.address());
    if (t == targets.end() || t->second.name.empty()) return;
    auto pit = peers.find(t->second.name);
    if (pit == peers.end() || pit->second.out.get() != &s) return;
    Peer& p = pit->second;
    detector.heard(p.name, Clock::now());
    switch (f.body_case()) {
      case pb::Frame::kRouteAck:
        p.route_acked = std::max(p.route_acked, f.route_ack().seq());
        check_waiters(Clock::now());
        break;
      case pb::Frame::kPublishAck: {
        const std::uint64_t up_to = f.publish_ack().up_to();
        while (!p.pending.empty() && p.pending.front().id <= up_to) {
          count_accept(p.pending.front());
          if (p.pending.front().outbox_key) outbox->remove(p.name, p.pending.front().outbox_key);
          p.pending.pop_front();
        }
        break;
      }
      case pb::Frame::kResync:
        s.write(snapshot_frame());
        break;
      case pb::Frame::kSessionAnswer:
        sessions.on_answer(p.name, f.session_answer());
        break;
      case pb::Frame::kSessionMerge:  // a partition's losing copy, answering our SessionList
        sessions.on_merge(p.name, f.session_merge());
        break;
      default:
        break;
    }
    run_deferred(lock);
  }

  void on_welcome(OutStream& s, const pb::Welcome& w) {
    auto t = targets.find(s.address());
    if (t == targets.end()) return;
    Target& target = t->second;
    const std::string& n = w.node().name();
    target.name = n;
    if (n == name) {
      target.self = true;  // one of our seeds is this node
      later_cancel(s.shared_from_this());
      return;
    }
    Peer& p = peer(n);
    if (p.out && p.out.get() != &s && p.out_ready) {
      later_cancel(s.shared_from_this());  // another address of a node we already reach
      return;
    }
    target.backoff = std::chrono::milliseconds(100);
    p.out = s.shared_from_this();
    p.out_ready = true;
    p.route_acked = 0;
    if (p.address.empty()) p.address = w.node().address();
    const bool back = w.node().incarnation() != p.incarnation && detector.rejoined(n, Clock::now());
    joined = true;
    broker.set_node_up(p.id, true);
    if (detector.heard(n, Clock::now()) || back) {
      spdlog::info("cluster: node {} ({}) joined", n, p.address);
    }
    learn_members(w.members());
    // Full sync on every new stream: routes, retained messages, then the forwards it has not
    // acknowledged (it drops those it already delivered).
    s.write(snapshot_frame());
    s.write(retained_snapshot_frame());
    send_forwards(p, p.pending.begin());
    s.write(sessions.list_frame());  // duplicates from a partition resolve (README)
    spdlog::info("cluster: link to {} at {} up ({} routes, {} queued forwards)", n, s.address(),
                 local.size(), p.pending.size());
  }

  void on_done(OutStream& s, const grpc::Status& status) override {
    std::unique_lock lock(mu);
    auto t = targets.find(s.address());
    if (t != targets.end() && t->second.stream.get() == &s) t->second.stream.reset();
    if (t != targets.end() && !t->second.name.empty()) {
      auto p = peers.find(t->second.name);
      if (p != peers.end() && p->second.out.get() == &s) {
        p->second.out.reset();
        p->second.out_ready = false;
        sessions.peer_gone(p->first);
        if (!stopping) {
          spdlog::info("cluster: link to {} at {} closed: {}", p->first, s.address(),
                       status.error_message());
        }
        check_waiters(Clock::now());
      }
    }
    run_deferred(lock);
  }

  // ---------------------------------------------------------------- ClusterLink (workers)

  void local_route_added(const std::string& filter, bool durable, std::function<void()> done) {
    std::unique_lock lock(mu);
    const LocalRoutes::Change c = local.add(filter, durable);
    if ((c.route || c.durable) && !leaving) {
      pb::Frame f;
      f.mutable_delta()->set_seq(++route_seq);
      if (c.route) f.mutable_delta()->add_added(filter);
      if (c.durable) f.mutable_delta()->add_durable_added(filter);
      for (auto& [n, p] : peers) {
        if (p.out_ready) p.out->write(f);
      }
    }
    Waiter w{route_seq,
             {},
             std::move(done),
             Clock::now() + std::chrono::seconds(cfg.route_ack_timeout_s)};
    for (auto& [n, p] : peers) {
      if (p.out_ready && p.route_acked < route_seq) w.peers.push_back(n);
    }
    if (w.peers.empty() || stopping || leaving) {
      deferred.push_back(std::move(w.done));
    } else {
      waiters.push_back(std::move(w));
    }
    run_deferred(lock);
  }

  void local_route_removed(const std::string& filter, bool durable) {
    std::lock_guard lock(mu);
    const LocalRoutes::Change c = local.remove(filter, durable);
    if ((!c.route && !c.durable) || leaving) return;  // a left node's routes are gone already
    pb::Frame f;
    f.mutable_delta()->set_seq(++route_seq);
    if (c.durable) f.mutable_delta()->add_durable_removed(filter);
    if (c.route) f.mutable_delta()->add_removed(filter);
    for (auto& [n, p] : peers) {
      if (p.out_ready) p.out->write(f);
    }
  }

  void forward(std::vector<core::RemoteForward>&& batch) {
    std::unique_lock lock(mu);
    std::map<NodeId, std::size_t> first_new;  // per peer: index of its first new pending entry
    for (core::RemoteForward& f : batch) {
      std::shared_ptr<Join> join;
      if (f.done) join = std::make_shared<Join>(Join{f.nodes.size(), std::move(f.done)});
      for (NodeId id : f.nodes) {
        auto n = by_id.find(id);
        Peer* p = n == by_id.end() || stopping ? nullptr : &peers[n->second];
        PendingForward pf{0, f.message, join, 0, SharedFor::of(f, id)};
        if (p == nullptr || p->pending.size() >= cfg.max_pending) {
          ++(p == nullptr ? traffic.dropped_no_peer : traffic.dropped_max_pending);
          if (p && p->dropped++ % 1000 == 0) {
            spdlog::warn(
                "cluster: {} forwards to {} unacknowledged (cluster.max_pending); "
                "dropped {} so far",
                p->pending.size(), p->name, p->dropped);
          }
          count_accept(pf);
          continue;
        }
        const bool down = detector.state(p->name) != PeerState::kUp;
        if (down && !queue_durably(*p, pf)) continue;  // outbox full: dropped (counted)
        pf.id = p->next_forward_id++;
        ++traffic.sent;
        traffic.sent_bytes += f.message->topic.size() + f.message->payload.size();
        first_new.try_emplace(id, p->pending.size());
        p->pending.push_back(std::move(pf));
      }
    }
    for (auto& [id, index] : first_new) {
      Peer& p = peers[by_id[id]];
      if (p.out_ready) send_forwards(p, p.pending.begin() + static_cast<std::ptrdiff_t>(index));
    }
    run_deferred(lock);
  }

  void retained_changed(const core::MessagePtr& m) {
    std::lock_guard lock(mu);
    const std::string topic(m->topic);
    const RetainedVersion v = versions->next(topic, wall_ms(), name);
    versions->record(topic, v, m->payload.empty());
    pb::Frame f;
    auto* r = f.mutable_retained()->add_messages();
    r->set_topic(std::string(m->topic));
    r->set_payload(std::string(m->payload));
    r->set_qos(static_cast<std::uint32_t>(m->qos));
    r->set_timestamp_ms(v.ts);
    r->set_origin(v.origin);
    for (auto& [n, p] : peers) {
      if (p.out_ready) p.out->write(f);
    }
  }

  // ---------------------------------------------------------------- graceful stop, readiness

  // This node stops: its persistent sessions move to peers first (their routes with them), then
  // every peer that has our routes withdraws them and acknowledges (RouteAck).
  void leave(std::function<void()> done) {
    std::unique_lock lock(mu);
    if (stopping || leaving || departing) {
      deferred.push_back(std::move(done));
      run_deferred(lock);
      return;
    }
    departing = true;
    sessions.depart(Clock::now() + handover_budget,
                    [this, done = std::move(done)]() mutable { send_leave(std::move(done)); });
    run_deferred(lock);
  }

  void send_leave(std::function<void()> done) {
    std::unique_lock lock(mu);
    if (stopping) {
      deferred.push_back(std::move(done));
      run_deferred(lock);
      return;
    }
    leaving = true;
    pb::Frame f;
    f.mutable_leave()->set_seq(++route_seq);
    Waiter w{route_seq,
             {},
             {},
             Clock::now() + std::chrono::seconds(cfg.route_ack_timeout_s),
             "leaving anyway"};
    for (auto& [n, p] : peers) {
      if (!p.out_ready) continue;
      p.out->write(f);
      w.peers.push_back(n);
    }
    spdlog::info("cluster: leaving: told {} peer(s) to withdraw this node's {} routes",
                 w.peers.size(), local.size());
    w.done = [done = std::move(done)] {
      spdlog::info("cluster: leave done");
      done();
    };
    if (w.peers.empty()) {
      deferred.push_back(std::move(w.done));
    } else {
      waiters.push_back(std::move(w));
    }
    run_deferred(lock);
  }

  void on_leave(Peer& p, const std::shared_ptr<InStream>& s, std::uint64_t seq) {
    detector.left(p.name, Clock::now());
    // As for a node that is down: publishers stop waiting for it once QoS 1/2 forwards are in
    // the durable outbox, and the routes of its persistent sessions stay so that messages for
    // them are queued until it returns (a rolling restart loses none).
    for (PendingForward& f : p.pending) queue_durably(p, f);
    auto diff = remote.withdraw_transient(p.id);
    spdlog::info("cluster: node {} is leaving: {} routes withdrawn", p.name, diff.size());
    apply_routes(s, std::move(diff), seq);
    check_waiters(Clock::now());
  }

  // Readiness: joined once a link to a peer is up, or when there is no one else to join (every
  // target turned out to be this node), or after cluster.join_timeout without reaching anyone
  // (the seeds are all gone: serving alone beats never serving). Latched: peers failing later do
  // not take the survivors out of the load balancer.
  void check_joined(Clock::time_point now) {
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

  ClusterNode::Status status() {
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

  // ---------------------------------------------------------------- SessionLink::Host (mu held)

  std::vector<std::string> ready_peers() override {
    std::vector<std::string> out;
    if (stopping) return out;
    for (auto& [n, p] : peers) {
      if (p.out_ready) out.push_back(n);
    }
    return out;
  }
  std::vector<std::string> handover_peers() override {
    std::vector<std::string> out;
    for (const std::string& n : ready_peers()) {
      if (detector.state(n) == PeerState::kUp) out.push_back(n);
    }
    return out;
  }
  void send(const std::string& peer, pb::Frame frame) override {
    auto it = peers.find(peer);
    if (it != peers.end() && it->second.out_ready) it->second.out->write(std::move(frame));
  }

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
