"""Shared subscriptions across a three-node cluster: each message reaches exactly one member of
the group wherever the members and the publisher are; local_first keeps messages on the
publisher's node when it has a member. See README "Shared subscriptions"."""

from __future__ import annotations

import time

import pytest

import harness
from cluster_harness import wait_formed
from test_cluster import attach, clients, start_cluster, stop_all  # noqa: F401 (fixture)

pytestmark = [pytest.mark.meshmq_only("cluster"), pytest.mark.timeout(90)]

N = 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = start_cluster(tmp_path_factory.mktemp("shared"))
    try:
        wait_formed(nodes)
        yield nodes
    finally:
        stop_all(nodes)


@pytest.fixture(scope="module")
def local_first(tmp_path_factory):
    nodes = start_cluster(tmp_path_factory.mktemp("local"), opts={"shared.strategy": "local_first"})
    try:
        wait_formed(nodes)
        yield nodes
    finally:
        stop_all(nodes)


@pytest.fixture(autouse=True)
def _log_tails(request):
    request.node._brokers = []  # conftest prints these brokers' log tails when a test fails
    yield


def members(clients, nodes, flt, qos=1):
    out = []
    for n in nodes:
        c = clients(n)
        assert c.subscribe(flt, qos) == qos  # SUBACK: the other nodes have the route
        out.append(c)
    return out


def publish(clients, node, topic, payloads, qos=1):
    pub = clients(node)
    mids = [pub.publish(topic, p, qos=qos, wait=False) for p in payloads]
    pub.wait_published(mids)  # PUBACK: every target node accepted its messages


def collect(subs, total, timeout=15.0):
    got = [[] for _ in subs]
    deadline = time.monotonic() + timeout
    while sum(map(len, got)) < total:
        assert time.monotonic() < deadline, (
            f"only {sum(map(len, got))} of {total} delivered: {[len(g) for g in got]}")
        for i, s in enumerate(subs):
            got[i] += [m.payload for m in s.drain()]
        time.sleep(0.02)
    time.sleep(harness.QUIET)  # a duplicate would arrive now
    for i, s in enumerate(subs):
        got[i] += [m.payload for m in s.drain()]
    return got


def payloads(tag, n=N):
    return [f"{tag}-{i}".encode() for i in range(n)]


def assert_exactly_once(got, sent):
    every = [p for g in got for p in g]
    assert len(every) == len(set(every)), "a message reached two members"
    assert sorted(every) == sorted(sent), "a message was lost"


def test_members_on_three_nodes_split_messages_without_duplicates(cluster, clients, request):
    attach(request, cluster)
    topic = harness.uid("split")
    subs = members(clients, cluster, f"$share/g/{topic}")
    sent = payloads("a")
    publish(clients, cluster[0], topic, sent)
    got = collect(subs, N)
    assert_exactly_once(got, sent)
    # Round robin over the nodes with members, from one publisher: an exact rotation.
    assert [len(g) for g in got] == [N // 3] * 3


def test_publishers_on_every_node_and_several_members_per_node(cluster, clients, request):
    attach(request, cluster)
    topic = harness.uid("many")
    subs = members(clients, cluster + cluster[1:], f"$share/g/{topic}/+")
    sent = []
    for i, node in enumerate(cluster):
        batch = payloads(f"n{i}", 30)
        publish(clients, node, f"{topic}/x", batch)
        sent += batch
    got = collect(subs, len(sent))
    assert_exactly_once(got, sent)
    assert all(got), "a member got nothing"


def test_plain_subscribers_and_two_groups_next_to_each_other(cluster, clients, request):
    attach(request, cluster)
    topic = harness.uid("mix")
    plain = members(clients, cluster[1:], topic)  # nodes 2 and 3 also have ordinary routes
    g1 = members(clients, cluster, f"$share/g1/{topic}")
    g2 = members(clients, cluster[:2], f"$queue/{topic}")
    sent = payloads("m", 30)
    publish(clients, cluster[0], topic, sent)
    for p in plain:
        assert sorted(m.payload for m in p.expect_messages(len(sent))) == sorted(sent)
    assert_exactly_once(collect(g1, len(sent)), sent)
    assert_exactly_once(collect(g2, len(sent)), sent)
    for p in plain:
        p.expect_no_message(0.2)


def test_a_member_that_leaves_gets_no_more(cluster, clients, request):
    attach(request, cluster)
    topic = harness.uid("leave")
    a, b, c = members(clients, cluster, f"$share/g/{topic}")
    b.unsubscribe(f"$share/g/{topic}")
    # Route withdrawals reach other nodes asynchronously (the UNSUBACK does not wait for them):
    # probe until node 1 stops picking node 2.
    deadline = time.monotonic() + harness.WAIT
    while True:
        publish(clients, cluster[0], topic, [b"probe"] * 6)
        got = collect([a, b, c], 6)
        if not got[1]:
            break
        assert time.monotonic() < deadline, "node 2 still picked after its member left"
    sent = payloads("after", 20)
    publish(clients, cluster[0], topic, sent)
    got = collect([a, b, c], len(sent))
    assert got[1] == []
    assert_exactly_once(got, sent)


def test_local_first_keeps_messages_on_the_publishers_node(local_first, clients, request):
    attach(request, local_first)
    topic = harness.uid("lf")
    subs = members(clients, local_first, f"$share/g/{topic}")
    for i, node in enumerate(local_first):
        sent = payloads(f"from{i}", 20)
        publish(clients, node, topic, sent)
        got = collect(subs, len(sent))
        assert got[i] == sent  # all to the publisher's node's member, in order
        assert_exactly_once(got, sent)


def test_local_first_without_a_local_member_goes_to_other_nodes(local_first, clients, request):
    attach(request, local_first)
    topic = harness.uid("lf2")
    subs = members(clients, [local_first[0], local_first[2]], f"$share/g/{topic}")
    sent = payloads("x", 40)
    publish(clients, local_first[1], topic, sent)
    got = collect(subs, len(sent))
    assert_exactly_once(got, sent)
    assert [len(g) for g in got] == [20, 20]


@pytest.mark.parametrize("other", [0, 1], ids=["same-node", "other-node"])
def test_messages_a_leaving_member_did_not_acknowledge_go_to_another_member(
        cluster, clients, request, other):
    """A clean-session member on node 1 takes messages without acknowledging them (inflight, then
    queued), then disconnects: its session ends and every one of them goes to the other member
    (on node 1 or node 2), as MQTT 5 (4.8.2) and EMQX do. The other member gets every message."""
    attach(request, cluster)
    topic = harness.uid("redispatch")
    flt = f"$share/g/{topic}"
    n1 = cluster[0]
    silent = harness.RawClient(n1.port, host=n1.host)
    silent.connect(harness.uid("silent"), clean=True)
    silent.subscribe(1, [(flt, 1)])
    (member,) = members(clients, [cluster[other]], flt)
    sent = payloads("r", 80)  # more than the silent member's inflight window (32)
    publish(clients, n1, topic, sent)
    # The silent member got its share (round robin from node 1), acknowledged none of it.
    got_silent = []
    deadline = time.monotonic() + harness.WAIT
    while len(got_silent) < 32:
        assert time.monotonic() < deadline, f"the silent member got only {len(got_silent)}"
        p = silent.recv_packet()
        if p.type == harness.PUBLISH:
            got_silent.append(p.payload)
    silent.close()
    got = collect([member], len(sent))[0]
    assert len(got) == len(set(got)), "the other member got a message twice"
    assert sorted(got) == sorted(sent), "a message the silent member left was lost"
