// Sessions across nodes on the wire (proto/cluster.proto SessionClaim, SessionAnswer,
// SessionList): runs SessionClaims' arbitration for the node and moves sessions between the core
// and the peer streams. Included only by node_impl.h and session_link.cc (gRPC types).
//
// Threading: everything runs under the node's mutex (`mu`), except what it queues on `deferred`
// (calls into the core, which may call back), which the node runs once it released the mutex.
// claim() and the core's callbacks take the mutex themselves.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
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
    // Of those, the ones that are members in good standing (not down, not leaving): where a
    // stopping node parks its sessions.
    virtual std::vector<std::string> handover_peers() = 0;
    virtual void send(const std::string& peer, pb::Frame frame) = 0;
  };

  // `timeout`: cluster.takeover_timeout; `confirm`: how long a handed-over session's ghost waits
  // for its new node's SessionInstalled before the session stays here after all.
  SessionLink(std::string self, core::Broker& broker, std::mutex& mu, Deferred& deferred,
              Host& host, std::chrono::seconds timeout, std::chrono::seconds confirm);

  // ClusterLink::claim_session (a worker; takes mu). `only`: ask that peer alone.
  void claim(const std::string& client_id, bool clean, std::function<void(core::SessionClaim)> done,
             const std::string& only = {});

  // --- mu held ---
  void on_claim(const std::string& peer, const pb::SessionClaim& claim,
                std::shared_ptr<InStream> stream);
  void on_answer(const std::string& peer, const pb::SessionAnswer& answer);
  // `stream`: the one the list came on (ours to the peer may not be up yet after a partition).
  void on_list(const std::string& peer, const pb::SessionList& list,
               std::shared_ptr<InStream> stream);
  void on_park(const std::string& peer, const pb::SessionPark& park);
  void on_installed(const std::string& peer, const pb::SessionInstalled& installed);
  void on_merge(const std::string& peer, const pb::SessionMerge& merge);
  // Graceful stop (README "Graceful stop"): asks the peers that are up to claim and park every
  // persistent session of this node, each on one peer (rendezvous hash of the client id), and
  // runs `done` (via deferred) once all are confirmed there or at `deadline`; the rest stay on
  // disk here. From now on sessions handed over close their connection without a will.
  void depart(SessionClaims::Clock::time_point deadline, std::function<void()> done);
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
    std::string from;  // it came from this node, answering our claim `claim_id`
    std::uint64_t claim_id = 0;
  };
  // A session we handed over, kept as a ghost (Broker::hand_over) until the node that took it
  // confirms. Keyed by (that node, its claim id).
  struct Moving {
    std::string client_id;
    std::uint64_t ghost;
    SessionClaims::Clock::time_point deadline;
  };
  using MoveKey = std::pair<std::string, std::uint64_t>;
  struct Relay {  // a carried session went on: its confirmation goes back to where it came from
    std::string to;
    std::uint64_t claim_id;
    SessionClaims::Clock::time_point at;
  };

  void finish_ready(SessionClaims::Clock::time_point now);
  // Sends SessionInstalled{claim_id} to `peer` (takes mu: runs on a worker).
  std::function<void()> confirm_to(const std::string& peer, std::uint64_t claim_id);
  // The ghost of a session we handed over (mu held): confirmed, its tail goes to `to`.
  void finish_ghost(std::uint64_t ghost, const std::string& client_id, bool installed,
                    const std::string& to);
  void check_departed(SessionClaims::Clock::time_point now);
  // A duplicate that lost after a partition: its messages go to the winner (takes mu).
  void send_messages(const std::string& peer, core::Session::Snapshot state,
                     const std::shared_ptr<InStream>& stream);
  static pb::Frame merge_frame(const core::Session::Snapshot& state);
  void retry_waiting(const std::string& client_id);
  template <class F>
  void locked(F&& fn);

  const std::string self_;
  core::Broker& broker_;
  std::mutex& mu_;
  Deferred& deferred_;
  Host& host_;
  const std::chrono::seconds timeout_;
  const std::chrono::seconds confirm_;
  SessionClaims claims_;
  std::unordered_map<std::uint64_t, std::function<void(core::SessionClaim)>> dones_;
  std::unordered_map<std::string, std::vector<Waiting>> waiting_;
  std::unordered_map<std::string, Carried> carried_;
  std::map<MoveKey, Moving> moving_;
  std::map<MoveKey, Relay> relays_;
  // Graceful stop: the sessions not yet confirmed by the peer they went to.
  bool leaving_ = false;
  std::unordered_set<std::string> departing_;
  std::function<void()> departed_;
  SessionClaims::Clock::time_point depart_deadline_{};
  std::size_t departed_count_ = 0;
  std::size_t kept_count_ = 0;
  SessionClaims::Clock::time_point next_prune_{};
};

}  // namespace meshmq::cluster
