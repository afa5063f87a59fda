"""Cluster: messages for a down node's persistent sessions are kept durably and handed over when
it returns (issue 6 point 4); retained clears survive restarts as tombstones (point 6)."""

from __future__ import annotations

import time

import pytest

import harness
from cluster_harness import wait_formed
from test_cluster import _log_tails, attach, clients, start_cluster, stop_all  # noqa: F401

pytestmark = pytest.mark.meshmq_only("cluster")


def kill_and_wait_withdrawn(victim, others, routes=0):
    victim.kill9()
    for n in others:
        n.wait_log(rf"node {victim.name} still down after cluster.route_grace: {routes} routes "
                   r"withdrawn", timeout=10)


def restart_and_rejoin(node, nodes):
    since = {n.name: n.log_size() for n in nodes}
    node.restart()
    wait_formed(nodes, since=since, fresh=node)


def park_subscriber(node, client_id, topic_filter):
    """A persistent session on `node` subscribes at QoS 1 (SUBACK: every node that is up has the
    route), then disconnects, leaving the session parked there."""
    s = node.client(client_id, clean_session=False)
    s.connect()
    assert s.subscribe(topic_filter, 1) == 1
    s.disconnect()


def expect_queued(node, client_id, sent):
    """The persistent session reconnects on `node` and gets exactly `sent`, in order."""
    s = node.client(client_id, clean_session=False)
    s.connect()
    assert s.session_present
    assert [m.payload for m in s.expect_messages(len(sent), timeout=15)] == sent
    s.expect_no_message()
    s.close()


def test_persistent_session_on_a_killed_node_gets_every_message_after_restart(
        tmp_path, clients, request):
    nodes = start_cluster(tmp_path)
    attach(request, nodes)
    try:
        wait_formed(nodes)
        n1, n2, n3 = nodes
        topic = harness.uid("durable")
        sub_id = harness.uid("persub")
        park_subscriber(n3, sub_id, topic)
        # A clean session on node 3 too: its route is withdrawn, the persistent one's is kept.
        clients(n3).subscribe(topic + "/clean", 1)

        kill_and_wait_withdrawn(n3, [n1, n2], routes=1)
        # Every PUBACK arrives while node 3 is down: the messages are on disk on nodes 1 and 2.
        p1 = clients(n1)
        for i in range(20):
            p1.publish(topic, f"a{i}".encode(), qos=1, timeout=5)
        p2 = clients(n2)
        for i in range(5):
            p2.publish(topic, f"b{i}".encode(), qos=2, timeout=5)
        # The outbox survives a restart of the sending node as well.
        n1.kill9()
        n2.wait_log(r"node node1 marked down", timeout=10)
        n1.restart()
        n1.wait_log(r"25 forwards for nodes that were down are still queued|"
                    r"20 forwards for nodes that were down are still queued")

        restart_and_rejoin(n3, nodes)
        s = n3.client(sub_id, clean_session=False)
        s.connect()
        assert s.session_present
        got = sorted(m.payload for m in s.expect_messages(25, timeout=15))
        assert got == sorted([f"a{i}".encode() for i in range(20)] +
                             [f"b{i}".encode() for i in range(5)])
        s.expect_no_message()
        s.close()
    finally:
        stop_all(nodes)


def test_a_sender_restarted_while_the_node_is_down_still_queues_for_its_sessions(
        tmp_path, clients, request):
    """Node 1 learns node 3's durable route, then restarts while node 3 is down: it must still
    know the route (from disk) and queue node 1's publishes for node 3's persistent session."""
    nodes = start_cluster(tmp_path)
    attach(request, nodes)
    try:
        wait_formed(nodes)
        n1, n2, n3 = nodes
        topic = harness.uid("restarted")
        sub_id = harness.uid("persub")
        park_subscriber(n3, sub_id, topic)  # SUBACK: nodes 1 and 2 have the route

        kill_and_wait_withdrawn(n3, [n1, n2])
        since = {n.name: n.log_size() for n in (n1, n2)}
        n1.kill9()
        n1.restart()
        wait_formed([n1, n2], since=since, fresh=n1)
        n1.wait_log(r"1 routes of persistent sessions on 1 other node\(s\) loaded",
                    since=since["node1"])
        pub = clients(n1)
        sent = [f"m{i}".encode() for i in range(10)]
        for p in sent:  # each PUBACK comes once the message is in node 1's outbox for node 3
            pub.publish(topic, p, qos=1, timeout=5)

        restart_and_rejoin(n3, nodes)
        expect_queued(n3, sub_id, sent)
    finally:
        stop_all(nodes)


def test_outbox_entries_for_a_shared_member_keep_their_group_across_a_sender_restart(
        tmp_path, clients, request):
    """The only member of a shared group is a persistent session on node 2, which is down: node 1
    queues the group's messages for it, restarts, and must resend them for that group (node 2
    has no ordinary subscriber: without the group they would reach no one)."""
    nodes = start_cluster(tmp_path, count=2)
    attach(request, nodes)
    try:
        wait_formed(nodes)
        n1, n2 = nodes
        topic = harness.uid("sharedbox")
        member_id = harness.uid("member")
        park_subscriber(n2, member_id, f"$share/g/{topic}")
        kill_and_wait_withdrawn(n2, [n1])
        pub = clients(n1)
        sent = [f"s{i}".encode() for i in range(10)]
        for p in sent:
            pub.publish(topic, p, qos=1, timeout=5)
        n1.kill9()
        n1.restart()
        n1.wait_log(r"10 forwards for nodes that were down are still queued")
        restart_and_rejoin(n2, nodes)
        expect_queued(n2, member_id, sent)
    finally:
        stop_all(nodes)


def test_outbox_for_a_down_node_is_bounded_and_drops_are_logged(tmp_path, clients, request):
    nodes = start_cluster(tmp_path, count=2, opts={"cluster.outbox_max_messages": 5})
    attach(request, nodes)
    try:
        wait_formed(nodes)
        n1, n2 = nodes
        topic = harness.uid("bound")
        sub_id = harness.uid("persub")
        s = n2.client(sub_id, clean_session=False)
        s.connect()
        s.subscribe(topic, 1)
        s.disconnect()
        kill_and_wait_withdrawn(n2, [n1])
        pub = clients(n1)
        for i in range(8):  # the publisher is never held up by the full outbox
            pub.publish(topic, str(i).encode(), qos=1, timeout=5)
        n1.wait_log(r"outbox for down node node2 is full \(5 messages, "
                    r"cluster.outbox_max_messages\); dropped 1 so far")
        restart_and_rejoin(n2, nodes)
        s = n2.client(sub_id, clean_session=False)
        s.connect()
        assert [m.payload for m in s.expect_messages(5, timeout=15)] == [
            str(i).encode() for i in range(5)]
        s.expect_no_message()
        s.close()
    finally:
        stop_all(nodes)


def retained_on(node, topic, timeout=harness.WAIT):
    """The retained payload a new subscriber on `node` gets once replication settled (None: none).
    Polls until the answer stays the same twice in a row."""
    deadline = time.monotonic() + timeout
    last = object()
    while True:
        s = node.client(harness.uid("r"))
        s.connect()
        s.subscribe(topic, 1)
        try:
            got = s.expect_message(timeout=0.5).payload
        except harness.Timeout:
            got = None
        s.close()
        if got == last:
            return got
        last = got
        assert time.monotonic() < deadline, f"retained message on {node.name} kept changing"


def wait_retained(node, topic, payload, timeout=harness.WAIT):
    deadline = time.monotonic() + timeout
    while retained_on(node, topic) != payload:
        assert time.monotonic() < deadline, f"{node.name} never had {payload!r} retained"


def test_retained_clear_made_while_a_node_was_down_is_not_resurrected(tmp_path, clients, request):
    nodes = start_cluster(tmp_path)
    attach(request, nodes)
    try:
        wait_formed(nodes)
        n1, n2, n3 = nodes
        topic = harness.uid("tomb")
        clients(n1).publish(topic, b"old", qos=1, retain=True)
        wait_retained(n2, topic, b"old")
        assert n2.stop(timeout=10) == 0  # node 2 keeps "old" on disk
        clients(n1).publish(topic, b"", qos=1, retain=True)
        # Every node that saw the clear restarts too: the tombstone must come from disk.
        since = {n.name: n.log_size() for n in (n1, n3)}
        for n in (n1, n3):
            n.kill9()
            n.restart()
        wait_formed([n1, n3], since=since)
        restart_and_rejoin(n2, nodes)
        for n in nodes:
            assert retained_on(n, topic) is None, f"cleared message came back on {n.name}"

        # A set after the clear wins over the tombstone, and reaches the others after restarts.
        clients(n1).publish(topic, b"new", qos=1, retain=True)
        wait_retained(n3, topic, b"new")
        for n in (n3, n1):
            n.kill9()
            restart_and_rejoin(n, nodes)
        for n in nodes:
            assert retained_on(n, topic) == b"new"
    finally:
        stop_all(nodes)
