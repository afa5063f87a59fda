// Membership state of the remote nodes, driven by a clock the caller passes in (unit tests use a
// fake one). A node is up while frames keep arriving from it; silent for `down_after` it is down
// (its streams are dropped and redialled, forwards to it are queued); still down after `grace`
// its routes are withdrawn. Hearing from it again brings it back up, and the caller then does a
// full sync (route snapshot, retained messages, queued forwards) on the new stream.
// A node that announced a graceful stop (a Leave frame) is `left`: never marked down, and its last
// frames while it finishes do not bring it back; only a new process (new incarnation) does.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace meshmq::cluster {

enum class PeerState { kUp, kDown, kWithdrawn, kLeft };

class FailureDetector {
 public:
  using Clock = std::chrono::steady_clock;

  FailureDetector(Clock::duration down_after, Clock::duration grace)
      : down_after_(down_after), grace_(grace) {}

  // A frame arrived from the node. Returns true when this brings it (back) up.
  bool heard(const std::string& node, Clock::time_point now);
  // The node said it is leaving (graceful stop): it is neither up nor failed any more.
  void left(const std::string& node, Clock::time_point now);
  // A left node is back as a new process (new incarnation): up again. True if it had left.
  bool rejoined(const std::string& node, Clock::time_point now);

  struct Changes {
    std::vector<std::string> down;       // just marked down
    std::vector<std::string> withdrawn;  // down for longer than the grace time
  };
  Changes tick(Clock::time_point now);

  // Unknown nodes are reported as withdrawn (nothing is known of them).
  PeerState state(const std::string& node) const;
  void forget(const std::string& node) { peers_.erase(node); }

  struct Counts {
    std::size_t up = 0;
    std::size_t down = 0;  // down, routes kept or withdrawn
    std::size_t left = 0;  // stopped gracefully
  };
  Counts counts() const {
    Counts c;
    for (const auto& [name, peer] : peers_) {
      ++(peer.state == PeerState::kUp ? c.up : peer.state == PeerState::kLeft ? c.left : c.down);
    }
    return c;
  }

 private:
  struct Peer {
    PeerState state = PeerState::kUp;
    Clock::time_point last_heard;
    Clock::time_point down_since;
  };
  Clock::duration down_after_;
  Clock::duration grace_;
  std::unordered_map<std::string, Peer> peers_;
};

// Deduplication of forwarded publishes. Each origin numbers its forwards to one node from 1 per
// process start (incarnation) and resends the unacknowledged ones, in order, after a reconnect, so
// the highest id delivered per origin is the whole window: anything at or below it is a retry.
class DedupWindow {
 public:
  // True when (origin, incarnation, id) is new and must be delivered.
  bool accept(const std::string& origin, std::uint64_t incarnation, std::uint64_t id) {
    Origin& o = origins_[origin];
    if (o.incarnation != incarnation) o = {incarnation, 0};  // it restarted: a fresh sequence
    if (id <= o.high) return false;
    o.high = id;
    return true;
  }
  std::uint64_t high(const std::string& origin) const {
    auto it = origins_.find(origin);
    return it == origins_.end() ? 0 : it->second.high;
  }

 private:
  struct Origin {
    std::uint64_t incarnation = 0;
    std::uint64_t high = 0;
  };
  std::unordered_map<std::string, Origin> origins_;
};

}  // namespace meshmq::cluster
