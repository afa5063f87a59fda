#!/usr/bin/python3
"""Route convergence of a meshmq cluster, measured with real nodes and clients (issue 6 point 10).

A SUBACK on a clustered node is sent once every node that is up has the new route in all its
workers' tries (README "Cluster"), so SUBSCRIBE -> SUBACK time is the convergence time. This starts
three nodes on 127.0.0.1-3 plus one lone node and measures:

1. bulk: one client on node 2 subscribes --routes distinct filters (SUBSCRIBE packets of --batch
   filters, one after the other); the time to the last SUBACK is the time until every node has
   every route, against the same on the lone node;
2. single: with those routes in place, --count new filters one at a time on node 2 and on the lone
   node, SUBACK latency percentiles; after each clustered SUBACK it publishes on node 1 and node 3
   and checks both messages arrive (the guarantee itself);
3. rejoin: node 3 is killed (SIGKILL) and restarted; time from its start to its MQTT port, to its
   links, and until a publish on it reaches the subscriber on node 2 through the last bulk filter
   (its full sync of --routes routes is applied).

  tools/cluster/convergence.py [--routes 100000] [--count 200] [--bin build/broker/meshmq]
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


def bulk_subscribe(sub, routes, batch, prefix):
    t0 = time.perf_counter()
    for start in range(0, routes, batch):
        granted = sub.subscribe(
            [(f"{prefix}/{i}", 0) for i in range(start, min(routes, start + batch))], timeout=120)
        assert 128 not in (granted if isinstance(granted, list) else [granted]), "refused"
    return time.perf_counter() - t0


def connected(node, prefix):
    c = node.client(harness.uid(prefix))
    c.connect(timeout=30)
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--bin", default=str(ROOT / "build" / "broker" / "meshmq"))
    args = ap.parse_args()
    os.environ["MESHMQ_BIN"] = args.bin
    # info: wait_formed reads the "link to X up" lines; debug would log every subscription.
    os.environ["MESHMQ_TEST_LOG_LEVEL"] = "info"
    work = Path(tempfile.mkdtemp(prefix="meshmq-convergence-"))
    nodes = [ClusterNode(work / f"node{i}", i) for i in (1, 2, 3)]
    lone = ClusterNode(work / "lone", 4)
    for n in nodes:
        n.configure([m.address for m in nodes])
    lone.configure([])
    lone.opts.pop("cluster.seeds")
    for n in nodes + [lone]:
        n.opts["limits.max_subscriptions_per_client"] = 0  # one client holds all the filters
    clients = []
    try:
        for n in nodes + [lone]:
            n.spawn()
        for n in nodes + [lone]:
            n.wait_ready()
        wait_formed(nodes)
        sub = connected(nodes[1], "conv")
        alone_sub = connected(lone, "lone")
        pubs = [connected(nodes[0], "p"), connected(nodes[2], "p")]
        clients += [sub, alone_sub] + pubs

        bulk_c = bulk_subscribe(sub, args.routes, args.batch, "bulk")
        bulk_l = bulk_subscribe(alone_sub, args.routes, args.batch, "bulk")
        print(f"bulk: {args.routes} filters in SUBSCRIBEs of {args.batch}, to the last SUBACK: "
              f"3-node cluster {bulk_c:.2f} s ({args.routes / bulk_c:,.0f} routes/s), "
              f"lone node {bulk_l:.2f} s ({args.routes / bulk_l:,.0f} routes/s)")

        missed = [0]

        def check(topic):
            for p in pubs:
                p.publish(topic, b"x", qos=0)
            try:
                sub.expect_messages(2, timeout=2)
            except harness.Timeout:
                missed[0] += 1

        clustered = suback_latencies(sub, args.count, "conv", check)
        alone = suback_latencies(alone_sub, args.count, "lone")
        for name, xs in (("3-node cluster", clustered), ("lone node", alone)):
            print(f"single: {name:15} SUBACK latency over {len(xs)} new filters "
                  f"({args.routes} routes present): p50 {statistics.median(xs):.0f} us, "
                  f"p99 {pct(xs, 0.99):.0f} us, max {max(xs):.0f} us")
        print(f"single: publishes right after SUBACK not delivered: {missed[0]} of "
              f"{2 * args.count}")

        n3 = nodes[2]
        for c in pubs:
            c.close()
        clients = [sub, alone_sub]
        since = {n.name: n.log_size() for n in nodes}
        n3.kill9()
        t0 = time.perf_counter()
        n3.restart(timeout=60)
        t_mqtt = time.perf_counter() - t0
        wait_formed(nodes, since=since, fresh=n3, timeout=120)
        t_links = time.perf_counter() - t0
        probe = connected(n3, "probe")
        clients.append(probe)
        last = f"bulk/{args.routes - 1}"
        while True:
            probe.publish(last, b"probe", qos=0)
            try:
                sub.expect_message(timeout=0.05)
                break
            except harness.Timeout:
                assert time.perf_counter() - t0 < 120, "routes never reached the restarted node"
        t_routes = time.perf_counter() - t0
        print(f"rejoin: node 3 restarted after SIGKILL: MQTT port open after {t_mqtt:.2f} s, "
              f"links up after {t_links:.2f} s, all {args.routes + args.count} routes of node 2 "
              f"in its tries after {t_routes:.2f} s")
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        for n in nodes + [lone]:
            if n.alive():
                n.stop(timeout=30)


if __name__ == "__main__":
    main()
