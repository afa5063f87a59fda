"""Cluster operations on three real nodes: a graceful stop (SIGTERM) tells the peers, which
withdraw the node's routes at once instead of waiting for the failure detector; the node exits 0
within node.shutdown_grace without losing a persistent session's queue; the admin API and
`meshmq ctl cluster` show the members; /readyz waits for the join; /metrics counts forward
traffic. meshmq only.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import pytest

import harness
from cluster_harness import ClusterNode, wait_formed
from test_cluster import attach, clients, start_cluster, stop_all  # noqa: F401 (fixture)
from test_http import TOKEN, ctl, metric, promtool

pytestmark = [pytest.mark.meshmq_only("cluster operations"), pytest.mark.timeout(120)]

# A slow failure detector: anything the peers notice within seconds came from the Leave frame.
SLOW_DETECTOR = {
    "cluster.down_after": "20s",
    "cluster.route_grace": "60s",
    "node.shutdown_grace": "8s",
    "admin.token": TOKEN,
}


def metrics(node) -> str:
    status, _, body = node.http("/metrics")
    assert status == 200
    return body.decode()


def forwarded_out(node) -> float:
    return metric(metrics(node), "meshmq_cluster_forwarded_messages_total", '{direction="out"}')


def cluster_status(node) -> dict:
    status, _, body = node.http("/api/v1/cluster", token=TOKEN)
    assert status == 200, body
    return json.loads(body)


def member(status: dict, name: str) -> dict:
    return next(p for p in status["peers"] if p["name"] == name)


def wait_until(pred, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise harness.Timeout(what)


def test_sigterm_leaves_the_cluster_before_failure_detection(tmp_path, clients, request):
    nodes = start_cluster(tmp_path, opts=SLOW_DETECTOR)
    attach(request, nodes)
    try:
        wait_formed(nodes)
        n1, n2, n3 = nodes
        topic = harness.uid("leave")
        s1 = clients(n1)
        s1.subscribe(topic, 1)
        s3 = clients(n3)
        s3.subscribe(topic, 1)
        # A persistent session on node 3, offline, with a message queued for it from node 2.
        durable_id = harness.uid("durable")
        durable = clients(n3, durable_id, clean_session=False)
        durable.subscribe(topic + "/durable", 1)
        durable.disconnect()
        clients(n2).publish(topic + "/durable", b"queued before the stop", qos=1)
        pub = clients(n2)
        pub.publish(topic, b"before", qos=1)
        assert s1.expect_message().payload == b"before"
        assert s3.expect_message().payload == b"before"
        before = member(cluster_status(n2), "node3")
        assert before["state"] == "up" and before["routes"] == 2

        since = {n.name: n.log_size() for n in (n1, n2)}
        started = time.monotonic()
        n3.proc.send_signal(signal.SIGTERM)
        for n in (n1, n2):
            # The persistent session moved to node 1 or 2 before the Leave, its route with it.
            n.wait_log(r"node node3 is leaving: 1 routes withdrawn", timeout=5,
                       since=since[n.name])
        # Well before cluster.down_after (20 s) could have said anything.
        assert time.monotonic() - started < 5
        s3.wait_disconnected()
        assert n3.proc.wait(8) == 0
        assert time.monotonic() - started < 8  # node.shutdown_grace
        log3 = n3.log_text()
        assert "cluster: leaving: told 2 peer(s)" in log3 and "cluster: leave done" in log3
        assert "leaving anyway" not in log3  # both peers acknowledged in time

        # The others no longer route to node 3, and do not treat it as failed.
        out_before = forwarded_out(n2)
        pub.publish(topic, b"after", qos=1, timeout=5)
        assert s1.expect_message().payload == b"after"
        assert forwarded_out(n2) == out_before + 1  # to node 1 only
        pub.publish(topic + "/durable", b"published while it was stopped", qos=1, timeout=5)
        for n in (n1, n2):
            gone = member(cluster_status(n), "node3")
            assert gone["state"] in ("left", "leaving") and gone["routes"] == 0, gone
            text = metrics(n)
            assert metric(text, "meshmq_cluster_peers", '{state="left"}') == 1
            assert metric(text, "meshmq_cluster_peers", '{state="up"}') == 1
            assert metric(text, "meshmq_cluster_peers", '{state="down"}') == 0
            assert n.count_log(r"node node3 marked down", since[n.name]) == 0
            assert n.http("/readyz")[0] == 200
        # Cross-node delivery between the remaining nodes still works both ways.
        s2 = clients(n2)
        s2.subscribe(topic + "/b", 1)
        clients(n1).publish(topic + "/b", b"n1 to n2", qos=1)
        assert s2.expect_message().payload == b"n1 to n2"

        # Node 3 comes back as a new process: a member again; the persistent session, which
        # node 3 handed to a peer when it stopped, comes back to it with what was queued.
        since = {n.name: n.log_size() for n in nodes}
        n3.restart()
        wait_formed(nodes, since=since, fresh=n3)
        wait_until(lambda: member(cluster_status(n1), "node3")["state"] == "up",
                   "node3 not up again on node1")
        back = n3.client(durable_id, clean_session=False)
        back.connect()
        try:
            assert back.session_present
            assert [m.payload for m in back.expect_messages(2)] == [
                b"queued before the stop", b"published while it was stopped"]
        finally:
            back.close()
        s3 = clients(n3)
        s3.subscribe(topic, 1)
        pub.publish(topic, b"again", qos=1)
        assert s3.expect_message().payload == b"again"
    finally:
        stop_all(nodes)


def test_cluster_status_readiness_and_forward_metrics(tmp_path, clients, request):
    opts = {"admin.token": TOKEN, "cluster.join_timeout": "60s"}
    nodes = [ClusterNode(tmp_path / f"node{i}", i, opts) for i in (1, 2)]
    attach(request, nodes)
    n1, n2 = nodes
    for n in nodes:
        n.configure([n1.address, n2.address])
    try:
        # Alone, with its peer not started yet: not ready (the join timeout is long).
        n1.spawn()
        n1.wait_ready()
        time.sleep(0.5)
        status, _, body = n1.http("/readyz")
        assert status == 503 and "cluster" in json.loads(body)["failing"], body
        assert cluster_status(n1)["joined"] is False
        n2.spawn()
        n2.wait_ready()
        wait_formed(nodes)
        wait_until(lambda: n1.http("/readyz")[0] == 200 and n2.http("/readyz")[0] == 200,
                   "not ready after the join")

        topic = harness.uid("ops")
        s2 = clients(n2)
        s2.subscribe(topic, 1)
        pub = clients(n1)
        for i in range(3):
            pub.publish(topic, b"12345", qos=1)
        s2.expect_messages(3)
        text1, text2 = metrics(n1), metrics(n2)
        size = 3 * (len(topic) + 5)
        assert metric(text1, "meshmq_cluster_forwarded_messages_total", '{direction="out"}') == 3
        assert metric(text1, "meshmq_cluster_forwarded_bytes_total", '{direction="out"}') == size
        assert metric(text2, "meshmq_cluster_forwarded_messages_total", '{direction="in"}') == 3
        assert metric(text2, "meshmq_cluster_forwarded_bytes_total", '{direction="in"}') == size
        for reason in ("max_pending", "no_peer", "duplicate"):
            assert metric(text1, "meshmq_cluster_forward_dropped_total",
                          f'{{reason="{reason}"}}') == 0
        wait_until(lambda: metric(metrics(n1), "meshmq_cluster_forward_pending_messages") == 0,
                   "forwards not acknowledged")
        check = subprocess.run([promtool(), "check", "metrics"], input=text1.encode(),
                               capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()

        r = ctl(n1, "cluster")
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        assert st["node"] == "node1" and st["clustered"] and st["joined"] and not st["leaving"]
        peer = member(st, "node2")
        assert peer["address"] == n2.address and peer["state"] == "up"
        assert peer["routes"] == 1 and peer["forward_queue"] == 0
        assert peer["link_out"] and peer["link_in"]
    finally:
        stop_all(nodes)


def test_a_node_with_no_one_else_to_join_is_ready(tmp_path, request):
    # Its only seed is itself (a one-replica StatefulSet): ready at once, not after the timeout.
    n = ClusterNode(tmp_path / "node1", 1, {"cluster.join_timeout": "60s"})
    attach(request, [n])
    n.configure([])
    n.opts["cluster.seeds"] = n.address
    try:
        n.spawn()
        n.wait_ready()
        wait_until(lambda: n.http("/readyz")[0] == 200, "lone node not ready", timeout=10)
        n.wait_log(r"no other node to join: ready alone")
    finally:
        stop_all([n])
