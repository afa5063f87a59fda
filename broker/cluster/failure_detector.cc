#include "broker/cluster/failure_detector.h"

namespace meshmq::cluster {

bool FailureDetector::heard(const std::string& node, Clock::time_point now) {
  auto [it, inserted] = peers_.try_emplace(node);
  Peer& p = it->second;
  p.last_heard = now;
  if (inserted) return true;
  if (p.state == PeerState::kUp || p.state == PeerState::kLeft) return false;
  p.state = PeerState::kUp;
  return true;
}

void FailureDetector::left(const std::string& node, Clock::time_point now) {
  Peer& p = peers_[node];
  p.state = PeerState::kLeft;
  p.last_heard = now;
}

bool FailureDetector::rejoined(const std::string& node, Clock::time_point now) {
  auto it = peers_.find(node);
  if (it == peers_.end() || it->second.state != PeerState::kLeft) return false;
  it->second.state = PeerState::kUp;
  it->second.last_heard = now;
  return true;
}

FailureDetector::Changes FailureDetector::tick(Clock::time_point now) {
  Changes c;
  for (auto& [name, p] : peers_) {
    if (p.state == PeerState::kUp && now - p.last_heard >= down_after_) {
      p.state = PeerState::kDown;
      p.down_since = now;
      c.down.push_back(name);
    }
    if (p.state == PeerState::kDown && now - p.down_since >= grace_) {
      p.state = PeerState::kWithdrawn;
      c.withdrawn.push_back(name);
    }
  }
  return c;
}

PeerState FailureDetector::state(const std::string& node) const {
  auto it = peers_.find(node);
  return it == peers_.end() ? PeerState::kWithdrawn : it->second.state;
}

}  // namespace meshmq::cluster
