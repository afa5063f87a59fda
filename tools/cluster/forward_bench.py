#!/usr/bin/python3
"""Cross-node publish latency and throughput of a meshmq cluster against same-node delivery
(issue 6 point 10), with tools/bench/meshmq-bench.

Starts two nodes on 127.0.0.1 and 127.0.0.2. For each placement (subscriber on the publishers'
node, or on the other node) it runs one `meshmq-bench sub` process (one subscriber on
fwd/<run>/#) and one `meshmq-bench pub` process (publishers on node 1), twice:
  latency     10 publishers, --total-rate (default 5,000 msg/s), QoS 1: end-to-end latency
  throughput  --publishers (default 8) as fast as their --inflight 64 allows, QoS 1
and prints publish, acknowledgement (PUBACK) and delivery rates (delivery: messages the
subscriber got, drained ones included, over the publishing time), latency percentiles and losses
(gaps the subscriber saw: a subscriber that cannot keep up with as-fast-as-possible publishers
has its queue overflow, by design).

  tools/cluster/forward_bench.py [--duration 10] [--loads latency,throughput]
                                 [--placements same,cross] [--bin build/broker/meshmq]
                                 [--bench build/tools/bench/meshmq-bench]

After each run it reads /metrics of both nodes and prints, next to the gaps the subscriber saw
(`lost`), the messages the nodes dropped by design during the run (`dropped`, by reason: the
subscriber's queue full at mqtt.max_queued_messages, cluster.max_pending, a full outbox). Every
gap is one of those unless `lost` exceeds `dropped` (drops at the end of the stream leave no
gap, so `dropped` may be the larger).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from cluster_harness import ClusterNode, wait_formed  # noqa: E402


#: Counted, by-design drops (README "Cluster", "Limits"): a gap the subscriber saw that is not
#: one of these is a lost message.
DROPS = (
    ("queue_full", r'meshmq_messages_dropped_total\{reason="queue_full"\} (\S+)'),
    ("slow_consumer", r'meshmq_messages_dropped_total\{reason="slow_consumer"\} (\S+)'),
    ("max_pending", r'meshmq_cluster_forward_dropped_total\{reason="max_pending"\} (\S+)'),
    ("no_peer", r'meshmq_cluster_forward_dropped_total\{reason="no_peer"\} (\S+)'),
    ("outbox_full", r'meshmq_cluster_forward_dropped_total\{reason="outbox_full"\} (\S+)'),
)


def drops(nodes):
    """Every node's drop counters, summed, by reason."""
    total = dict.fromkeys((name for name, _ in DROPS), 0)
    for n in nodes:
        status, _, body = n.http("/metrics")
        assert status == 200, f"/metrics of {n.name}: HTTP {status}"
        text = body.decode()
        for name, pattern in DROPS:
            total[name] += sum(int(float(v)) for v in re.findall(pattern, text))
    return total


def run(bench, work, run_id, pub_node, sub_node, pub_args, duration):
    sub_json, pub_json = work / f"{run_id}-sub.json", work / f"{run_id}-pub.json"
    sub_err = open(work / f"{run_id}-sub.err", "w+")
    sub = subprocess.Popen(
        [bench, "sub", "-h", sub_node.host, "-p", str(sub_node.port), "-t", f"fwd/{run_id}/#",
         "-q", "1", "-c", "1", "-d", str(duration + 8), "--quiet", "--json", str(sub_json)],
        stdout=subprocess.DEVNULL, stderr=sub_err)
    deadline = time.monotonic() + 20
    while "ready:" not in (work / f"{run_id}-sub.err").read_text():
        assert sub.poll() is None and time.monotonic() < deadline, "subscriber did not start"
        time.sleep(0.05)
    subprocess.run(
        [bench, "pub", "-h", pub_node.host, "-p", str(pub_node.port), "-t", f"fwd/{run_id}/%i",
         "-q", "1", "-d", str(duration), "--quiet", "--json", str(pub_json), *pub_args],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=duration + 60)
    sub.wait(timeout=duration + 60)
    p, s = json.loads(pub_json.read_text()), json.loads(sub_json.read_text())
    return {
        "sent/s": p["sent"] / p["duration_s"],
        "acked/s": p["acked"] / p["duration_s"],
        "received": s["received"],
        "recv/s": s["received"] / p["duration_s"],
        "sent": p["sent"],
        "p50": s["latency_us"]["p50"],
        "p99": s["latency_us"]["p99"],
        "lost": s["lost"],
        "dup": s["duplicated"],
        "late": s.get("out_of_order", 0),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--total-rate", type=int, default=5000)
    ap.add_argument("--publishers", type=int, default=8)
    ap.add_argument("--loads", default="latency,throughput",
                    help="comma-separated: latency (paced), throughput (as fast as possible)")
    ap.add_argument("--placements", default="same,cross",
                    help="comma-separated: same (subscriber on node 1), cross (on node 2)")
    ap.add_argument("--bin", default=str(ROOT / "build" / "broker" / "meshmq"))
    ap.add_argument("--bench", default=str(ROOT / "build" / "tools" / "bench" / "meshmq-bench"))
    args = ap.parse_args()
    os.environ["MESHMQ_BIN"] = args.bin
    os.environ["MESHMQ_TEST_LOG_LEVEL"] = "info"
    work = Path(tempfile.mkdtemp(prefix="meshmq-forward-bench-"))
    nodes = [ClusterNode(work / f"node{i}", i) for i in (1, 2)]
    for n in nodes:
        n.configure([m.address for m in nodes])
        n.opts["broker.threads"] = 1
    try:
        for n in nodes:
            n.spawn()
        for n in nodes:
            n.wait_ready()
        wait_formed(nodes)
        loads = {
            "latency": ["-c", "10", "--total-rate", str(args.total_rate)],
            "throughput": ["-c", str(args.publishers), "-I", "0", "--inflight", "64"],
        }
        # lost: gaps the subscriber saw; dropped: what both nodes counted as dropped by design
        # during the run (subscriber queue full at mqtt.max_queued_messages, cluster.max_pending,
        # outbox full), by reason. lost > dropped would be a lost acknowledged message.
        print(f"{'load':11} {'placement':11} {'sent/s':>9} {'acked/s':>9} {'recv/s':>9} "
              f"{'p50 us':>8} {'p99 us':>8} {'sent':>9} {'received':>9} {'lost':>8} "
              f"{'dropped':>8} {'dup':>4}  dropped by reason")
        placements = [(p, n) for p, n in (("same node", nodes[0]), ("cross node", nodes[1]))
                      if p.split()[0] in args.placements.split(",")]
        for load, pub_args in loads.items():
            if load not in args.loads.split(","):
                continue
            for placement, sub_node in placements:
                run_id = f"{load}-{placement.replace(' ', '-')}"
                before = drops(nodes)
                r = run(args.bench, work, run_id, nodes[0], sub_node, pub_args, args.duration)
                after = drops(nodes)
                by_reason = {k: after[k] - before[k] for k in after if after[k] != before[k]}
                dropped = sum(by_reason.values())
                print(f"{load:11} {placement:11} {r['sent/s']:9.0f} {r['acked/s']:9.0f} "
                      f"{r['recv/s']:9.0f} {r['p50']:8.0f} {r['p99']:8.0f} {r['sent']:9} "
                      f"{r['received']:9} {r['lost']:8} {dropped:8} {r['dup']:4}  "
                      f"{by_reason or ''}", flush=True)
                time.sleep(2)  # let the nodes settle between runs
    finally:
        for n in nodes:
            if n.alive():
                n.stop(timeout=30)


if __name__ == "__main__":
    main()
