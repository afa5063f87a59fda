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

  tools/cluster/forward_bench.py [--duration 10] [--bin build/broker/meshmq]
                                 [--bench build/tools/bench/meshmq-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from cluster_harness import ClusterNode, wait_formed  # noqa: E402


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
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--total-rate", type=int, default=5000)
    ap.add_argument("--publishers", type=int, default=8)
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
        print(f"{'load':11} {'placement':11} {'sent/s':>9} {'acked/s':>9} {'recv/s':>9} "
              f"{'p50 us':>8} {'p99 us':>8} {'received':>9} {'lost':>8} {'dup':>4}")
        for load, pub_args in loads.items():
            for placement, sub_node in (("same node", nodes[0]), ("cross node", nodes[1])):
                run_id = f"{load}-{placement.replace(' ', '-')}"
                r = run(args.bench, work, run_id, nodes[0], sub_node, pub_args, args.duration)
                print(f"{load:11} {placement:11} {r['sent/s']:9.0f} {r['acked/s']:9.0f} "
                      f"{r['recv/s']:9.0f} {r['p50']:8.0f} {r['p99']:8.0f} {r['received']:9} "
                      f"{r['lost']:8} {r['dup']:4}", flush=True)
                time.sleep(2)  # let the nodes settle between runs
    finally:
        for n in nodes:
            if n.alive():
                n.stop(timeout=30)


if __name__ == "__main__":
    main()
