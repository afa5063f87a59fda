"""Cluster: three real nodes on 127.0.0.1/2/3 behave as one broker for real clients.

Most tests share one three-node cluster started with every node at once (as Kubernetes'
podManagementPolicy: Parallel does); the kill -9 and join tests start their own.
"""

from __future__ import annotations

import itertools
import time

import pytest

import harness
from cluster_harness import ClusterNode, wait_formed

pytestmark = pytest.mark.meshmq_only("cluster")


def start_cluster(workdir, count=3, opts=None, seeds_of=None, spawn_together=True):
    nodes = [ClusterNode(workdir / f"node{i}", i, opts) for i in range(1, count + 1)]
    every = [n.address for n in nodes]
    for n in nodes:
        n.configure(seeds_of(n, nodes) if seeds_of else every)
    for n in nodes:
        n.spawn()
        if not spawn_together:
            n.wait_ready()
    for n in nodes:
        n.wait_ready()
    return nodes


def stop_all(nodes):
    errors = []
    for n in nodes:
        if not n.alive():
            continue
        code = n.stop(timeout=10.0)
        if code != 0:
            errors.append(f"{n.name} exited with {code} after SIGTERM")
    assert not errors, "; ".join(errors)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        wait_formed(nodes)
        yield nodes
    finally:
        stop_all(nodes)


@pytest.fixture
def clients():
    made = []

    def make(node, client_id=None, **kw):
        c = node.client(client_id or harness.uid("cl"), **kw)
        c.connect()
        made.append(c)
        return c

    yield make
    harness.close_quietly(made)


@pytest.fixture(autouse=True)
def _log_tails(request):
    # conftest prints these brokers' log tails when a test fails.
    request.node._brokers = []
    yield


def attach(request, nodes):
    request.node._brokers = list(nodes)


def test_all_nodes_starting_at_once_form_one_cluster(cluster, request):
    attach(request, cluster)
    for n in cluster:
        assert n.count_log(r"link to node\d at \S+ up") >= 2


@pytest.mark.parametrize("pub_qos,sub_qos", list(itertools.product([0, 1, 2], repeat=2)))
def test_cross_node_delivery_follows_the_qos_table(cluster, clients, request, pub_qos, sub_qos):
    attach(request, cluster)
    topic = f"qos/{pub_qos}{sub_qos}/{harness.uid('t')}"
    sub = clients(cluster[1])
    assert sub.subscribe(topic, sub_qos) == sub_qos
    pub = clients(cluster[0])
    pub.publish(topic, b"across", qos=pub_qos)  # waits for PUBACK / PUBCOMP at QoS 1/2
    m = sub.expect_message()
    assert (m.topic, m.payload, m.qos) == (topic, b"across", min(pub_qos, sub_qos))
    assert not m.retain


def test_wildcards_match_across_nodes_with_one_copy_per_client(cluster, clients, request):
    attach(request, cluster)
    base = harness.uid("w")
    sub = clients(cluster[2])
    sub.subscribe([(f"{base}/+/x", 0), (f"{base}/#", 2)])
    pub = clients(cluster[0])
    pub.publish(f"{base}/a/x", b"1", qos=2)
    pub.publish(f"{base}/b", b"2", qos=1)
    pub.publish(f"other/{base}", b"no", qos=1)
    pub.publish(f"{base}/end", b"sentinel", qos=1)
    # paho reports a QoS 2 message only after PUBREL, so arrival order is not checked.
    got = sub.expect_messages(3)
    assert sorted((m.topic, m.payload, m.qos) for m in got) == sorted([
        (f"{base}/a/x", b"1", 2), (f"{base}/b", b"2", 1), (f"{base}/end", b"sentinel", 1)])
    with pytest.raises(harness.Timeout):
        sub.expect_message(timeout=harness.QUIET)


def test_subscribers_on_several_nodes_each_get_every_message_once(cluster, clients, request):
    attach(request, cluster)
    topic = harness.uid("fan")
    subs = [clients(cluster[0]), clients(cluster[1]), clients(cluster[1]), clients(cluster[2])]
    for s in subs:
        s.subscribe(topic, 1)
    # The same filter from another client on node 2 adds no second route: still one copy each.
    pub = clients(cluster[2])
    mids = [pub.publish(topic, str(i).encode(), qos=1, wait=False) for i in range(30)]
    pub.wait_published(mids)
    pub.publish(topic, b"end", qos=1)
    for s in subs:
        got = [m.payload for m in s.expect_messages(31)]
        assert got == [str(i).encode() for i in range(30)] + [b"end"]
        with pytest.raises(harness.Timeout):
            s.expect_message(timeout=harness.QUIET)


def test_suback_means_publishes_on_any_node_reach_the_subscriber(cluster, clients, request):
    """The SUBACK is sent only after the nodes that are up have the route in every worker's
    trie, so a publish made on any node right after it is delivered."""
    attach(request, cluster)
    sub = clients(cluster[1])
    pubs = [clients(cluster[0]), clients(cluster[2])]
    for i in range(20):
        topic = f"order/{harness.uid('s')}/{i}"
        sub.subscribe(topic, 1)
        for p in pubs:
            p.publish(topic, b"right after", qos=0)
        got = sub.expect_messages(2)
        assert [m.topic for m in got] == [topic, topic]


def test_retained_messages_are_seen_on_every_node(cluster, clients, request):
    attach(request, cluster)
    topic = harness.uid("ret")
    clients(cluster[0]).publish(topic, b"kept", qos=1, retain=True)
    for node in cluster:
        deadline = time.monotonic() + harness.WAIT
        while True:  # replication is asynchronous: a new subscriber may briefly miss it
            s = clients(node)
            s.subscribe(topic, 1)
            try:
                m = s.expect_message(timeout=0.5)
                break
            except harness.Timeout:
                assert time.monotonic() < deadline, f"retained message never seen on {node.name}"
        assert (m.payload, m.retain) == (b"kept", True)
    clients(cluster[2]).publish(topic, b"", qos=1, retain=True)  # cleared on another node
    deadline = time.monotonic() + harness.WAIT
    while True:
        s = clients(cluster[0])
        s.subscribe(topic, 1)
        try:
            s.expect_message(timeout=0.5)
        except harness.Timeout:
            break
        assert time.monotonic() < deadline, "cleared retained message still delivered"


def test_killed_node_routes_are_withdrawn_and_restored_on_restart(tmp_path, clients, request):
    nodes = start_cluster(tmp_path)
    attach(request, nodes)
    try:
        wait_formed(nodes)
        n1, n2, n3 = nodes
        topic = harness.uid("kill")
        s3 = clients(n3)
        s3.subscribe(topic, 1)
        s1 = clients(n1)
        s1.subscribe(topic, 1)
        pub = clients(n2)
        pub.publish(topic, b"before", qos=1)
        assert s3.expect_message().payload == b"before"
        assert s1.expect_message().payload == b"before"

        n3.kill9()
        for n in (n1, n2):
            n.wait_log(r"node node3 marked down", timeout=10)
            n.wait_log(r"node node3 still down after cluster.route_grace: 1 routes withdrawn",
                       timeout=10)
        # Publishes keep being acknowledged and delivered on the surviving nodes.
        pub.publish(topic, b"while down", qos=1, timeout=5)
        assert s1.expect_message().payload == b"while down"

        since = {n.name: n.log_size() for n in nodes}
        n3.restart()
        wait_formed(nodes, since=since, fresh=n3)
        s3 = clients(n3)
        s3.subscribe(topic, 1)
        pub.publish(topic, b"after", qos=1)
        assert s3.expect_message().payload == b"after"
        assert s1.expect_message().payload == b"after"
        # node 3 got node 1's routes back in the full sync.
        clients(n3).publish(topic, b"from restarted", qos=1)
        assert s1.expect_message().payload == b"from restarted"
    finally:
        stop_all(nodes)


def test_new_node_joins_a_running_cluster_through_one_seed(tmp_path, clients, request):
    nodes = [ClusterNode(tmp_path / f"node{i}", i) for i in (1, 2, 3)]
    attach(request, nodes)
    n1, n2, n3 = nodes
    n1.configure([n1.address, n2.address])
    n2.configure([n1.address, n2.address])
    n3.configure([n1.address])  # knows only node 1; learns node 2 from it
    try:
        n1.spawn()
        n2.spawn()
        n1.wait_ready()
        n2.wait_ready()
        wait_formed([n1, n2])
        topic = harness.uid("join")
        s1 = clients(n1)
        s1.subscribe(topic, 1)
        s2 = clients(n2)
        s2.subscribe(topic, 2)
        clients(n1).publish(topic + "/r", b"old retained", qos=1, retain=True)

        n3.spawn()
        n3.wait_ready()
        wait_formed(nodes)
        s3 = clients(n3)
        s3.subscribe(topic, 1)
        clients(n3).publish(topic, b"from the new node", qos=2)
        for s in (s1, s2):
            assert s.expect_message().payload == b"from the new node"
        assert s3.expect_message().payload == b"from the new node"
        clients(n2).publish(topic, b"to the new node", qos=1)
        for s in (s1, s2, s3):
            assert s.expect_message().payload == b"to the new node"
        r = clients(n3)
        r.subscribe(topic + "/r", 1)
        assert r.expect_message().payload == b"old retained"
    finally:
        stop_all(nodes)
