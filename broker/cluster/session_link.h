// Sessions across nodes on the wire (proto/cluster.proto SessionClaim, SessionAnswer,
// SessionList): runs SessionClaims' arbitration for the node and moves sessions between the core
// and the peer streams. Included only by node.cc and session_link.cc (gRPC types).
//
// Threading: everything runs under the node's mutex (`mu`), except what it queues on `deferred`
// (calls into the core, which may call back), which the node runs once it released the mutex.
// claim() and the core's callbacks take the mutex themselves.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/cluster/sessions.h"
#include "broker/cluster/streams.h"
#include "broker/core/cluster_link.h"

namespace meshmq::core {
class Broker;
}

namespace meshmq::cluster {

class SessionLink {
 public:
  using Deferred = std::vector<std::function<void()>>;
  struct Host {  // the node; called under mu
    virtual ~Host() = default;
    virtual std::vector<std::string> ready_peers() = 0;  // peers our own streams reach now
    virtual void send(const std::string& peer, pb::Frame frame) = 0;
  };

  SessionLink(std::string self, core::Broker& broker, std::mutex& mu, Deferred& deferred,
              Host& host, std::chrono::seconds timeout);

  // ClusterLink::claim_session (a worker; takes mu).
  void claim(const std::string& client_id, bool clean,
             std::function<void(core::SessionClaim)> done);

  // --- mu held ---
  void on_claim(const std::string& peer, const pb::SessionClaim& claim,
                std::shared_ptr<InStream> stream);
  void on_answer(const std::string& peer, const pb::SessionAnswer& answer);
  void on_list(const std::string& peer, const pb::SessionList& list);
  pb::Frame list_frame();  // our sessions, sent on every new stream
  void peer_gone(const std::string& peer);
  void tick(SessionClaims::Clock::time_point now);
  // At stop, after the workers: drops pending claims and the streams and connections they hold.
  void clear();

  static pb::SessionState encode(const core::Session::Snapshot& s);
  static core::Session::Snapshot decode(const pb::SessionState& s);

 private:
  struct Waiting {  // another node's claim, deferred until our own claims for the id finish
    std::string peer;
    pb::SessionClaim claim;
    std::shared_ptr<InStream> stream;
  };
  struct Carried {  // a session a lost claim of ours got: it goes on to the winner
    core::Session::Snapshot session;
    SessionClaims::Clock::time_point at;
  };

  void finish_ready(SessionClaims::Clock::time_point now);
  void retry_waiting(const std::string& client_id);
  template <class F>
  void locked(F&& fn);

  const std::string self_;
  core::Broker& broker_;
  std::mutex& mu_;
  Deferred& deferred_;
  Host& host_;
  const std::chrono::seconds timeout_;
  SessionClaims claims_;
  std::unordered_map<std::uint64_t, std::function<void(core::SessionClaim)>> dones_;
  std::unordered_map<std::string, std::vector<Waiting>> waiting_;
  std::unordered_map<std::string, Carried> carried_;
  SessionClaims::Clock::time_point next_prune_{};
};

}  // namespace meshmq::cluster
