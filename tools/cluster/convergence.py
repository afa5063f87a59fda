#!/usr/bin/python3
"""Route convergence time of a meshmq cluster, measured with real nodes and clients.

A SUBACK on a clustered node is sent once every node that is up has the new route in all its
workers' tries (README "Cluster"), so SUBSCRIBE -> SUBACK time is the convergence time. This starts
three nodes on 127.0.0.1-3 plus one lone node, subscribes --count new filters one at a time on node
2 and on the lone node, and prints the SUBACK latency percentiles of both; after each clustered
SUBACK it publishes on node 1 and node 3 and checks both messages arrive (the guarantee itself).

  tools/cluster/convergence.py [--count 200] [--bin build/broker/meshmq]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import harness  # noqa: E402
from cluster_harness import ClusterNode, wait_formed  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def suback_latencies(sub, count, prefix, after=None):
    out = []
    for i in range(count):
        topic = f"{prefix}/{i}"
        t0 = time.perf_counter()
        sub.subscribe(topic, 1)
        out.append((time.perf_counter() - t0) * 1e6)
        if after:
            after(topic)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--bin", default=str(ROOT / "build" / "broker" / "meshmq"))
    args = ap.parse_args()
    os.environ["MESHMQ_BIN"] = args.bin
    os.environ.setdefault("MESHMQ_TEST_LOG_LEVEL", "warn")
    work = Path(tempfile.mkdtemp(prefix="meshmq-convergence-"))
    nodes = [ClusterNode(work / f"node{i}", i) for i in (1, 2, 3)]
    lone = ClusterNode(work / "lone", 4)
    for n in nodes:
        n.configure([m.address for m in nodes])
    lone.configure([])
    lone.opts.pop("cluster.seeds")
    try:
        for n in nodes + [lone]:
            n.spawn()
        for n in nodes + [lone]:
            n.wait_ready()
        os.environ["MESHMQ_TEST_LOG_LEVEL"] = "info"
        wait_formed(nodes)
        sub = nodes[1].client(harness.uid("conv"))
        sub.connect()
        pubs = [nodes[0].client(harness.uid("p")), nodes[2].client(harness.uid("p"))]
        for p in pubs:
            p.connect()
        missed = [0]

        def check(topic):
            for p in pubs:
                p.publish(topic, b"x", qos=0)
            try:
                sub.expect_messages(2, timeout=2)
            except harness.Timeout:
                missed[0] += 1

        clustered = suback_latencies(sub, args.count, "conv", check)
        alone_sub = lone.client(harness.uid("lone"))
        alone_sub.connect()
        alone = suback_latencies(alone_sub, args.count, "lone")
        for name, xs in (("3-node cluster", clustered), ("lone node", alone)):
            print(f"{name:15} SUBACK latency over {len(xs)} new filters: "
                  f"p50 {statistics.median(xs):.0f} us, p99 {pct(xs, 0.99):.0f} us, "
                  f"max {max(xs):.0f} us")
        print(f"publishes right after SUBACK not delivered: {missed[0]} of {2 * args.count}")
        for c in [sub, alone_sub] + pubs:
            c.close()
    finally:
        for n in nodes + [lone]:
            if n.alive():
                n.stop()


if __name__ == "__main__":
    main()
