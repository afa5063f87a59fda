// What a forwarded message tells its receiving node about shared subscriptions (see
// broker/core/shared_groups.h): the groups the publishing node picked that node for, and whether
// the node serves only those groups. Kept with each pending forward so that a resend after a
// reconnect carries the same instructions, and the choice is never made twice.
#pragma once

#include <string>
#include <vector>

#include "broker/core/cluster_link.h"

namespace meshmq::cluster {

struct SharedFor {
  std::vector<std::string> groups;
  bool only = false;

  static SharedFor of(const core::RemoteForward& f, core::NodeId node) {
    SharedFor s;
    for (const core::SharedPick& p : f.shared) {
      if (p.node != node) continue;
      s.groups.push_back(p.group);
      s.only = p.only;
    }
    return s;
  }

  // Publish is pb::Publish; a template keeps generated headers out of this one.
  template <class Publish>
  void to_proto(Publish& m) const {
    for (const std::string& g : groups) m.add_shared(g);
    if (only) m.set_shared_only(true);
  }
};

}  // namespace meshmq::cluster
