#include "broker/net/server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "broker/auth/access_control.h"
#include "broker/cluster/node.h"
#include "broker/core/broker.h"
#include "broker/core/connection.h"
#include "broker/core/metrics.h"
#include "broker/net/admission.h"
#include "broker/net/cluster_ops.h"
#include "broker/net/tcp_connection.h"
#include "broker/net/tcp_listener.h"
#include "broker/net/tls.h"
#include "broker/net/tls_connection.h"
#include "broker/net/worker_pool.h"
#include "broker/net/ws_connection.h"
#include "broker/ops/admin_api.h"
#include "broker/ops/health.h"
#include "broker/ops/http_server.h"
#include "broker/ops/process_metrics.h"
#include "broker/ops/sys_topics.h"
#include "broker/storage/backend.h"
#include "broker/storage/db.h"
#include "broker/storage/metrics.h"

namespace meshmq::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
std::size_t thread_count(std::uint32_t configured) {
  if (configured != 0) return configured;
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}
std::size_t auth_thread_count(std::uint32_t configured) {
  if (configured != 0) return configured;
  return std::max<std::size_t>(1, thread_count(0) / 2);
}
constexpr auto kTickInterval = std::chrono::seconds(1);

auth::AuthSettings auth_settings(const config::Config& c) {
  auth::AuthSettings s;
  s.allow_anonymous = c.auth.allow_anonymous;
  s.password_file = c.auth.password_file;
  s.acl_file = c.auth.acl_file;
  s.acl_default_allow = c.auth.acl_default == "allow";
  s.disconnect_on_denied_publish = c.auth.acl_deny_action == "disconnect";
  return s;
}

const config::Config& with_data_dir(const config::Config& cfg) {
  std::error_code error;
  std::filesystem::create_directories(cfg.node.data_dir, error);
  if (error) {
    throw std::runtime_error("node.data_dir: cannot create \"" + cfg.node.data_dir +
                             "\": " + error.message());
  }
  return cfg;
}
// Ends the process if a graceful stop takes longer than node.shutdown_grace: a stuck flush or peer
// must not keep a terminating pod (or an operator) waiting forever.
class StopDeadline {
 public:
  ~StopDeadline() { disarm(); }
  void arm(std::chrono::seconds grace) {
    thread_ = std::thread([this, grace] {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, grace, [this] { return done_; })) return;
      spdlog::error("graceful stop took longer than node.shutdown_grace ({} s): exiting now",
                    grace.count());
      spdlog::default_logger()->flush();
      std::_Exit(1);
    });
  }
  void disarm() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};
}  // namespace

struct Server::Impl {
  explicit Impl(config::Config c)
      : cfg(std::move(c)),
        admission(effective_max_connections(cfg.limits.max_connections)),
        pool(thread_count(cfg.broker.threads), auth_thread_count(cfg.auth.threads)),
        storage(cfg.storage, with_data_dir(cfg).node.data_dir, cfg.mqtt, pool),
        broker(cfg.mqtt, pool, storage.retained(), storage.sessions()),
        access(auth_settings(cfg), pool.size()),
        signals(pool.context(0), SIGINT, SIGTERM),
        reload_signal(pool.context(0), SIGHUP),
        admin{broker,          storage.retained(), metrics, health,
              cfg.admin.token, cfg.node.name,      nullptr} {
    for (std::size_t i = 0; i < pool.size(); ++i) {
      ticks.push_back(std::make_unique<asio::steady_timer>(pool.context(i)));
    }
    broker.set_access(access);
    pool.set_batch_window(std::chrono::microseconds(cfg.broker.batch_window_us),
                          [this](std::size_t w) { return &broker.counters(w); });
    core::add_broker_metrics(metrics, broker);
    ops::add_process_metrics(metrics);
    storage::add_storage_metrics(metrics, storage.db());
    // Extension points for the cluster and storage: their metrics (metrics.add_collector), their
    // readiness (health.add_check("cluster"/"storage", ...)), their status in the admin API
    // (admin.cluster_status) and the leave step of a graceful stop (leave_cluster).
    health.add_check("listeners", [this] { return listeners_up.load(); });
    if (storage::Db* db = storage.db()) {
      health.add_check("storage", [db] { return db->healthy(); });
    }
    if (cfg.sys.interval_s != 0) {
      broker.set_event_prefix("$SYS/brokers/" + cfg.node.name + "/");
      sys = std::make_unique<ops::SysPublisher>(pool.context(0), broker, metrics, cfg.node.name,
                                                std::chrono::seconds(cfg.sys.interval_s));
    }
  }

  // SIGHUP: re-read the password file and the ACL; connections stay up.
  void wait_for_reload() {
    reload_signal.async_wait([this](const error_code& ec, int) {
      if (ec || stopping) return;
      spdlog::info("SIGHUP received: reloading auth.password_file and auth.acl_file");
      access.reload();
      wait_for_reload();
    });
  }

  void schedule_tick(std::size_t worker) {
    asio::steady_timer& t = *ticks[worker];
    t.expires_after(kTickInterval);
    t.async_wait([this, worker](const error_code& ec) {
      if (ec || stopping) return;
      broker.tick(worker, core::Clock::now());
      schedule_tick(worker);
    });
  }

  // Runs on worker 0 (the signal set's context). Order: stop being ready and stop accepting, tell
  // the cluster, then close the clients (they reconnect through the load balancer to other nodes);
  // storage is flushed in run() once every worker has finished.
  void stop(int signal_number) {
    spdlog::info("signal {} received: stopping within {} s (node.shutdown_grace)", signal_number,
                 cfg.node.shutdown_grace_s);
    deadline.arm(std::chrono::seconds(cfg.node.shutdown_grace_s));
    health.set_stopping();
    stopping = true;
    error_code ignored;
    reload_signal.cancel(ignored);
    for (auto& listener : listeners) listener->stop();
    if (sys) sys->stop();
    leave_cluster([this] { pool.post(0, [this] { close_clients(); }); });
  }

  void close_clients() {
    if (cluster) cluster->hold_forwards();
    for (std::size_t i = 0; i < pool.size(); ++i) {
      pool.post(i, [this, i] {
        error_code ec;
        ticks[i]->cancel(ec);
        // Copy first: closing a connection removes it from the set.
        std::vector<std::shared_ptr<core::Connection>> live;
        for (PooledConnection& c : pool.connections(i)) {
          live.push_back(WorkerConnection::of(c).shared_from_this());
        }
        // A shutdown is not the client's fault: no will (clients reconnect elsewhere).
        for (auto& c : live) c->close("server shutting down", false);
      });
    }
    pool.release_work();
  }

  // Every listener shares the accept path (TcpListener); they differ only in the connection type
  // the factory makes.
  // `kind` names the listener's keys (listeners.<kind>.*) in admission logs.
  void add_listener(std::string name, const char* kind, const config::ListenerLimits& limits,
                    const std::string& bind, std::uint16_t port, TcpListener::Factory factory,
                    std::string_view suffix = "") {
    auto listener =
        std::make_unique<TcpListener>(std::move(name), broker, pool, 0, std::move(factory));
    admissions.push_back(std::make_unique<ListenerAdmission>(admission, kind, limits));
    listener->set_admission(admissions.back().get());
    listener->listen(bind, port);
    listener->start();
    spdlog::info("{} listening on {}:{}{}", listener->name(), bind, listener->port(), suffix);
    listeners.push_back(std::move(listener));
  }

  template <class Conn, class... Extra>
  TcpListener::Factory factory_of(Extra... extra) {
    return [this, extra...](std::size_t worker, Socket socket, std::string peer,
                            core::TicketHold ticket) {
      auto conn = std::make_shared<Conn>(broker, pool, worker, std::move(socket), std::move(peer),
                                         extra...);
      conn->hold(std::move(ticket));
      conn->begin();
    };
  }

  void open_listeners() {
    if (cfg.tcp.port != 0) {
      add_listener("MQTT/TCP", "tcp", cfg.tcp.limits, cfg.tcp.bind, cfg.tcp.port,
                   factory_of<TcpConnection>());
    }
    // The largest WebSocket message worth reading is one maximal packet with its fixed header;
    // clients that put several packets in a message stay far below it.
    auto ws =
        std::make_shared<const WsSettings>(WsSettings{cfg.ws.path, cfg.mqtt.max_packet_size + 5});
    if (cfg.ws.port != 0) {
      add_listener("MQTT/WebSocket", "ws", cfg.ws.limits, cfg.ws.bind, cfg.ws.port,
                   factory_of<PlainWsConnection>(ws), cfg.ws.path);
    }
    const bool wants_tls = cfg.tls_listener.port != 0 || cfg.wss.port != 0;
    if (wants_tls && !cfg.tls.enabled()) {
      spdlog::info(
          "MQTT/TLS and MQTT/WSS are off: set tls.cert_file and tls.key_file to turn them on");
      return;
    }
    if (!wants_tls) return;
    std::shared_ptr<TlsServer> tls = make_tls_server(cfg.tls);
    if (cfg.tls_listener.port != 0) {
      add_listener("MQTT/TLS", "tls", cfg.tls_listener.limits, cfg.tls_listener.bind,
                   cfg.tls_listener.port, factory_of<TlsConnection>(tls));
    }
    if (cfg.wss.port != 0) {
      add_listener("MQTT/WSS", "wss", cfg.wss.limits, cfg.wss.bind, cfg.wss.port,
                   factory_of<SecureWsConnection>(ws, tls), cfg.ws.path);
    }
  }

  config::Config cfg;
  // Before the pool: connections destroyed with it still give their admission tickets back.
  NodeAdmission admission;
  std::vector<std::unique_ptr<ListenerAdmission>> admissions;  // one per listener
  WorkerPool pool;
  storage::Backend storage;
  core::Broker broker;
  auth::AccessControl access;
  asio::signal_set signals;
  asio::signal_set reload_signal;
  std::vector<std::unique_ptr<asio::steady_timer>> ticks;
  std::vector<std::unique_ptr<TcpListener>> listeners;
  std::atomic<bool> stopping{false};  // read by every worker's tick
  core::MetricsRegistry metrics;
  ops::Health health;
  ops::AdminContext admin;
  std::unique_ptr<ops::HttpServer> http;
  std::unique_ptr<ops::SysPublisher> sys;
  std::atomic<bool> listeners_up{false};
  StopDeadline deadline;
  // Graceful stop, cluster step: tell the peers this node leaves and withdraw its routes, then call
  // done (on any thread). Single node: nothing to tell.
  std::function<void(std::function<void()> done)> leave_cluster = [](auto done) { done(); };
  std::unique_ptr<cluster::ClusterNode> cluster;  // declared after broker: stopped first
};

Server::Server(config::Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Server::~Server() = default;

void Server::run() {
  Impl& s = *impl_;
  s.access.load();
  spdlog::info("accepting at most {} connections (limits.max_connections)", s.admission.max());
  if (s.cfg.cluster.enabled()) {
    // Attached before the restore so that restored sessions' filters become cluster routes.
    s.cluster = std::make_unique<cluster::ClusterNode>(s.cfg, s.broker, s.storage.retained(),
                                                       s.storage.db());
    s.broker.set_cluster(s.cluster.get());
  }
  attach_cluster_ops(s.metrics, s.health, s.admin, s.cluster.get());
  if (s.cluster) {
    s.leave_cluster = [&s](std::function<void()> done) { s.cluster->leave(std::move(done)); };
  }
  s.storage.restore(s.broker);  // sessions and routes in place before any client can connect
  if (s.cfg.http.port != 0) {
    s.http = std::make_unique<ops::HttpServer>(
        [&s](const ops::HttpRequest& r) { return ops::handle_http(s.admin, r); });
    s.http->listen(s.cfg.http.bind, s.cfg.http.port);
    s.http->start();
    spdlog::info("HTTP (/metrics, /healthz, /readyz, /api/v1/) listening on {}:{}", s.cfg.http.bind,
                 s.http->port());
  }
  s.open_listeners();
  if (s.cluster) {
    s.cluster->start();
  } else {
    spdlog::info("cluster: no cluster.seeds and no cluster.dns_name: running alone");
  }
  s.listeners_up = true;
  s.signals.async_wait([&s](const error_code& ec, int signal_number) {
    if (!ec) s.stop(signal_number);
  });
  s.wait_for_reload();
  for (std::size_t i = 0; i < s.pool.size(); ++i) s.schedule_tick(i);
  if (s.sys) s.sys->start();
  spdlog::info("meshmq node {} running with {} worker threads", s.cfg.node.name, s.pool.size());
  s.pool.start();
  s.pool.join();
  // Every worker is done: nothing changes the stores any more.
  s.storage.sessions().flush();
  s.storage.retained().flush();
  if (s.http) s.http->stop();
  s.deadline.disarm();
  if (s.cluster) s.cluster->stop();
  spdlog::info("meshmq node {} stopped", s.cfg.node.name);
}

}  // namespace meshmq::net
