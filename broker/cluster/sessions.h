// Arbitration of sessions across nodes (README "Sessions across nodes"): which of several CONNECTs
// with one client id on different nodes keeps the session. Pure bookkeeping, no I/O and no locks
// (the node calls it under its mutex), so that the rules are unit-tested on their own.
//
// Every claim (a local CONNECT asking the other nodes for the client id) carries a version: a
// Lamport counter (raised past every version seen, and at least the wall clock in ms, so that a
// restarted node does not start from zero), then the node name. The higher version wins:
// - a node answers a claim lower than its own pending claim, or than the newest claim it owns or
//   served for the id, with CONFLICT; the claimer refuses its client;
// - a node whose own pending claim is lower than an incoming one marks its claim lost and answers
//   the incoming one only once its own claim has finished (deferred), handing over whatever
//   session it got meanwhile: claims wait only for higher ones, so waiting never forms a cycle.
// Two nodes that both learned of each other's claim therefore agree on the winner, and a node
// that hands a session over remembers the version it served, so a lower claim cannot get it back.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/core/session.h"

namespace meshmq::cluster {

struct ClaimVersion {
  std::uint64_t counter = 0;
  std::string node;
  auto operator<=>(const ClaimVersion&) const = default;
  bool operator==(const ClaimVersion&) const = default;
};

class SessionClaims {
 public:
  using Clock = std::chrono::steady_clock;
  using Snapshot = core::Session::Snapshot;

  enum class Verdict {
    kConflict,  // answer CONFLICT with `ours`
    kDefer,     // answer once our own claim(s) for the id finished (then ask again)
    kHandOver,  // close and hand over (or discard) the local session, if any
  };
  struct RemoteVerdict {
    Verdict verdict;
    ClaimVersion ours;
  };

  struct Finished {
    std::uint64_t id = 0;
    std::string client_id;
    bool clean = false;
    ClaimVersion version;
    bool lost = false;
    std::optional<Snapshot> session;  // handed over by `from`
    std::string from;
    std::vector<std::string> silent;  // peers that did not answer before the deadline
  };

  explicit SessionClaims(std::string self) : self_(std::move(self)) {}
  const std::string& self() const { return self_; }

  // Raises the clock past a version seen from another node.
  void observe(const ClaimVersion& v);

  // A local CONNECT: a claim waiting for an answer from each of `peers` until `deadline`.
  std::uint64_t begin(const std::string& client_id, bool clean, std::vector<std::string> peers,
                      Clock::time_point deadline, std::uint64_t wall_ms);
  const ClaimVersion& version(std::uint64_t id) const { return pending_.at(id).version; }

  // Another node's claim for client_id.
  RemoteVerdict on_remote_claim(const std::string& client_id, const ClaimVersion& v);

  // A peer's answer to our claim `id` (unknown ids — late answers — are ignored: false).
  bool on_answer(std::uint64_t id, const std::string& peer, bool conflict,
                 const ClaimVersion& theirs, std::optional<Snapshot> session);
  // True when the pending claim `id` already got a session (a second one only comes after a
  // partition or a race; the caller keeps it apart).
  bool has_session(std::uint64_t id) const;
  // A peer whose stream ended answers nothing: no claim waits for it any more.
  void peer_gone(const std::string& peer);

  // Claims every peer answered (or whose deadline passed). They stay "finishing", deferring
  // incoming claims for their id, until settle(id): the node settles once the core has the
  // session in its registry.
  std::vector<Finished> take_finished(Clock::time_point now);
  void settle(std::uint64_t id);

  bool busy(const std::string& client_id) const;  // a claim for the id is pending or finishing
  // The version of the session this node holds for client_id: that of the claim that put it here,
  // or (0, self) for a session from before (restored from disk, or created while alone).
  ClaimVersion held_version(const std::string& client_id) const;
  // True when a session we hold with `ours` must give way to another node's copy with `theirs`.
  static bool loses(const ClaimVersion& ours, const ClaimVersion& theirs) { return ours < theirs; }

  // Forgets versions older than `age` of ids this node holds no session for.
  void prune(Clock::time_point now, std::chrono::seconds age,
             const std::unordered_set<std::string>& held);
  std::size_t pending_count() const { return pending_.size(); }

 private:
  struct Pending {
    std::string client_id;
    bool clean = false;
    ClaimVersion version;
    std::unordered_set<std::string> waiting;
    Clock::time_point deadline;
    bool lost = false;
    bool finishing = false;
    std::optional<Snapshot> session;
    std::string from;
  };
  struct Served {
    ClaimVersion version;
    Clock::time_point at;
  };

  std::string self_;
  std::uint64_t clock_ = 0;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Pending> pending_;
  std::unordered_multimap<std::string, std::uint64_t> by_client_;
  // Newest claim per client id that this node won or handed its session to.
  std::unordered_map<std::string, Served> latest_;
};

}  // namespace meshmq::cluster
