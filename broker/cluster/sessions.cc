#include "broker/cluster/sessions.h"

#include <algorithm>

namespace meshmq::cluster {

void SessionClaims::observe(const ClaimVersion& v) {
  clock_ = std::max(clock_, v.counter);
}

std::uint64_t SessionClaims::begin(const std::string& client_id, bool clean,
                                   std::vector<std::string> peers, Clock::time_point deadline,
                                   std::uint64_t wall_ms) {
  clock_ = std::max(clock_ + 1, wall_ms);
  const std::uint64_t id = next_id_++;
  Pending& p = pending_[id];
  p.client_id = client_id;
  p.clean = clean;
  p.version = {clock_, self_};
  p.waiting.insert(peers.begin(), peers.end());
  p.deadline = deadline;
  by_client_.emplace(client_id, id);
  return id;
}

SessionClaims::RemoteVerdict SessionClaims::on_remote_claim(const std::string& client_id,
                                                            const ClaimVersion& v) {
  observe(v);
  // Our own claims for the id: a higher one wins outright; lower ones lose, and the incoming
  // claim waits for them to finish (one of them may be getting the session from a third node).
  std::optional<ClaimVersion> higher;
  bool lower = false;
  auto [b, e] = by_client_.equal_range(client_id);
  for (auto it = b; it != e; ++it) {
    const Pending& p = pending_.at(it->second);
    if (v < p.version) {
      if (!higher || *higher < p.version) higher = p.version;
    } else {
      lower = true;
    }
  }
  if (higher) return {Verdict::kConflict, *higher};
  if (lower) {
    for (auto it = b; it != e; ++it) {
      Pending& p = pending_.at(it->second);
      if (!p.finishing) p.lost = true;  // a finishing claim won already: it hands over after
    }
    return {Verdict::kDefer, {}};
  }
  auto l = latest_.find(client_id);
  if (l != latest_.end() && v < l->second.version) return {Verdict::kConflict, l->second.version};
  latest_[client_id] = {v, Clock::now()};
  return {Verdict::kHandOver, v};
}

bool SessionClaims::on_answer(std::uint64_t id, const std::string& peer, bool conflict,
                              const ClaimVersion& theirs, std::optional<Snapshot> session) {
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second.finishing) return false;
  Pending& p = it->second;
  if (p.waiting.erase(peer) == 0) return false;
  observe(theirs);
  if (conflict && p.version < theirs) p.lost = true;
  if (session) {
    // Two nodes holding one id only happens after a partition; the first copy wins here and the
    // session lists exchanged on the new streams settle the rest.
    if (!p.session) {
      p.session = std::move(session);
      p.from = peer;
    }
  }
  return true;
}

bool SessionClaims::has_session(std::uint64_t id) const {
  auto it = pending_.find(id);
  return it != pending_.end() && it->second.session.has_value();
}

void SessionClaims::peer_gone(const std::string& peer) {
  for (auto& [id, p] : pending_) {
    if (!p.finishing) p.waiting.erase(peer);
  }
}

std::vector<SessionClaims::Finished> SessionClaims::take_finished(Clock::time_point now) {
  std::vector<Finished> out;
  for (auto& [id, p] : pending_) {
    if (p.finishing || (!p.waiting.empty() && now < p.deadline)) continue;
    p.finishing = true;
    Finished f;
    f.id = id;
    f.client_id = p.client_id;
    f.clean = p.clean;
    f.version = p.version;
    f.lost = p.lost;
    f.session = std::move(p.session);
    f.from = std::move(p.from);
    f.silent.assign(p.waiting.begin(), p.waiting.end());
    std::sort(f.silent.begin(), f.silent.end());
    p.waiting.clear();
    if (!p.lost) {
      Served& s = latest_[p.client_id];
      if (s.version < p.version) s = {p.version, Clock::now()};
    }
    out.push_back(std::move(f));
  }
  return out;
}

void SessionClaims::settle(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  auto [b, e] = by_client_.equal_range(it->second.client_id);
  for (auto c = b; c != e; ++c) {
    if (c->second == id) {
      by_client_.erase(c);
      break;
    }
  }
  pending_.erase(it);
}

bool SessionClaims::busy(const std::string& client_id) const {
  return by_client_.contains(client_id);
}

ClaimVersion SessionClaims::held_version(const std::string& client_id) const {
  auto it = latest_.find(client_id);
  if (it == latest_.end() || it->second.version.node != self_) return {0, self_};
  return it->second.version;
}

void SessionClaims::prune(Clock::time_point now, std::chrono::seconds age,
                          const std::unordered_set<std::string>& held) {
  std::erase_if(latest_, [&](const auto& e) {
    return now - e.second.at >= age && !held.contains(e.first) && !by_client_.contains(e.first);
  });
}

}  // namespace meshmq::cluster
