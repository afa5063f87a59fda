"""Cluster membership security and discovery (issue 6 point 2): a node with the wrong
cluster.secret is refused with a clear log line, mTLS between nodes admits only certificates of
the cluster's CA, and cluster.dns_name alone (no seeds) forms a cluster."""

from __future__ import annotations

import re
import socket
import time

import pytest

import harness
from cluster_harness import ClusterNode, free_ports, wait_formed
from test_cluster import _log_tails, attach, clients, start_cluster, stop_all  # noqa: F401
from test_tls import _ca, _leaf

pytestmark = pytest.mark.meshmq_only("cluster")


def assert_delivered(pub_node, sub_node, clients):
    topic = harness.uid("sec")
    s = clients(sub_node)
    s.subscribe(topic, 1)
    clients(pub_node).publish(topic, b"across", qos=1)
    assert s.expect_message().payload == b"across"


def assert_not_linked(node, others, seconds=3.0, since=0):
    """No stream from `node` to any of `others` comes up within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for o in others:
            assert not re.search(rf"link to {o.name} at \S+ up", node.log_text()[since:]), \
                f"{node.name} linked to {o.name}"
        time.sleep(0.1)


def test_a_node_with_the_wrong_secret_is_refused(tmp_path, clients, request):
    secrets = {1: "s3cret", 2: "s3cret", 3: "wrong"}
    nodes = start_cluster(tmp_path, seeds_of=lambda n, all_: (
        n.opts.update({"cluster.secret": secrets[n.index]}) or [m.address for m in all_]))
    n1, n2, n3 = nodes
    attach(request, nodes)
    try:
        wait_formed([n1, n2])
        for n in (n1, n2):
            n.wait_log(r"refusing link from \S+ \(node3\): wrong cluster.secret")
        assert_not_linked(n3, [n1, n2], seconds=2)
        assert_delivered(n1, n2, clients)
    finally:
        stop_all(nodes)


@pytest.fixture(scope="module")
def node_pki(tmp_path_factory):
    """ca signs node certificates for the shared name "meshmq" (cluster.tls.server_name);
    rogue signs one with the same name that the cluster must refuse."""
    d = tmp_path_factory.mktemp("cluster-pki")
    _ca(d, "ca")
    _ca(d, "rogue")
    ext = "subjectAltName=DNS:meshmq\nextendedKeyUsage=serverAuth,clientAuth"
    _leaf(d, "node", "ca", "meshmq", ext)
    _leaf(d, "intruder", "rogue", "meshmq", ext)
    return {n: (str(d / f"{n}.pem"), str(d / f"{n}.key")) for n in ("ca", "rogue", "node",
                                                                     "intruder")}


def tls_node_opts(pki, cert="node", ca="ca"):
    return {"cluster.tls.cert_file": pki[cert][0], "cluster.tls.key_file": pki[cert][1],
            "cluster.tls.ca_file": pki[ca][0]}


def test_mtls_between_nodes_admits_only_the_cluster_ca(tmp_path, clients, request, node_pki):
    nodes = start_cluster(tmp_path, opts=tls_node_opts(node_pki))
    n1, n2, n3 = nodes
    attach(request, nodes)
    try:
        wait_formed(nodes)
        assert_delivered(n1, n3, clients)
        # A node whose certificate another CA signed (trusting that CA itself) gets no link, nor
        # does one dialling without TLS.
        for bad in (tls_node_opts(node_pki, "intruder", "rogue"), {}):
            n3.stop(timeout=10)
            for k in ("cluster.tls.cert_file", "cluster.tls.key_file", "cluster.tls.ca_file"):
                n3.opts.pop(k, None)
            n3.opts.update(bad)
            since = n3.log_size()
            n3.restart()
            assert_not_linked(n3, [n1, n2], since=since)
            assert_delivered(n1, n2, clients)
    finally:
        stop_all(nodes)


def test_dns_name_alone_forms_the_cluster(tmp_path, clients, request):
    """The nodes have no seeds: cluster.dns_name=localhost:<port> resolves (getaddrinfo) to node
    1's address, the others dial it and learn each other from its member list."""
    try:
        socket.getaddrinfo("localhost", None, socket.AF_INET)
    except OSError:
        pytest.skip("localhost does not resolve here")
    nodes = [ClusterNode(tmp_path / f"node{i}", i) for i in (1, 2, 3)]
    n1 = nodes[0]
    # Three distinct candidates: at most two can be node 1's own MQTT and HTTP ports.
    n1.cluster_port = next(p for p in free_ports("127.0.0.1", 3) if p not in (n1.port, n1.http_port))
    n1.address = f"127.0.0.1:{n1.cluster_port}"
    attach(request, nodes)
    try:
        for n in nodes:
            n.configure([])
            n.opts.pop("cluster.seeds")
            n.opts["cluster.dns_name"] = f"localhost:{n1.cluster_port}"
            n.opts["cluster.dns_interval"] = "1s"
        for n in reversed(nodes):  # node 1, the only address the name has, starts last
            n.spawn()
        for n in nodes:
            n.wait_ready()
        wait_formed(nodes)
        assert_delivered(nodes[1], nodes[2], clients)
    finally:
        stop_all(nodes)
