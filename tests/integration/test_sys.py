"""$SYS topics: the retained statistics tree under $SYS/broker/ (this node) and
$SYS/brokers/<node>/, republished every sys.interval; client connected/disconnected events; clients
cannot publish into $SYS; filters starting with a wildcard do not match it (MQTT-4.7.2-1).
meshmq only: mosquitto's $SYS tree has other leaves.
"""

import json
import time

import pytest

from harness import MosquittoSub, mosquitto_pub, uid

pytestmark = [pytest.mark.meshmq_only("meshmq's $SYS tree"), pytest.mark.timeout(60)]

FAST = {"sys.interval": 1}

LEAVES = [
    "version", "uptime", "datetime",
    "stats/connections/count", "stats/sessions/count", "stats/subscriptions/count",
    "stats/retained/count", "stats/routes/count",
    "metrics/messages/received", "metrics/messages/sent", "metrics/messages/dropped",
    "metrics/packets/received", "metrics/packets/sent",
    "metrics/packets/received/publish", "metrics/packets/received/connect",
    "metrics/packets/sent/connack", "metrics/packets/sent/publish",
    "metrics/bytes/received", "metrics/bytes/sent",
]


def _retained(client, flt):
    """Every retained message a fresh subscriber to `flt` gets, as {topic: payload}: they come
    right after the SUBACK, before the subscriber's own later sentinel publish."""
    sub = client(uid("sys"))
    sub.connect()
    sentinel = f"sentinel/{uid()}"
    sub.subscribe([(flt, 0), (sentinel, 2)])
    sub.publish(sentinel, b"", qos=2)
    got = {}
    for m in sub.messages_until(sentinel):
        if m.topic != sentinel:
            assert m.retain, m.topic
            got[m.topic] = m.payload.decode()
    sub.disconnect()
    return got


def _next_value(client, topic, pred, timeout=20.0):
    """Waits (bounded) for a publication of `topic` whose integer payload satisfies pred."""
    sub = client(uid("sysw"))
    sub.connect()
    sub.subscribe(topic, 0)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        m = sub.expect_message(timeout=max(0.1, deadline - time.monotonic()))
        last = int(m.payload)
        if pred(last):
            sub.disconnect()
            return last
    raise AssertionError(f"{topic}: last value {last} never satisfied the condition")


def test_seed_examples_with_mosquitto_sub(broker):
    sub = MosquittoSub(broker.port, "$SYS/broker/metrics/packets/received", count=1, wait_s=5)
    got = sub.start().finish()
    assert len(got) == 1 and got[0].retain and got[0].payload.isdigit()
    sub = MosquittoSub(broker.port, "$SYS/broker/metrics/#", count=10, wait_s=5)
    got = sub.start().finish()
    assert len(got) == 10
    assert all(m.topic.startswith("$SYS/broker/metrics/") for m in got)
    assert all(m.payload.isdigit() for m in got)


@pytest.mark.broker_opts(**{"node.name": "sysnode-1"})
def test_every_leaf_under_broker_and_brokers_node(broker, client):
    local = _retained(client, "$SYS/broker/#")
    node = _retained(client, "$SYS/brokers/sysnode-1/#")
    for leaf in LEAVES:
        assert f"$SYS/broker/{leaf}" in local, leaf
        assert f"$SYS/brokers/sysnode-1/{leaf}" in node, leaf
    assert local["$SYS/broker/version"].startswith("meshmq ")
    assert time.strptime(local["$SYS/broker/datetime"], "%Y-%m-%dT%H:%M:%SZ")
    for leaf in LEAVES[3:]:
        assert local[f"$SYS/broker/{leaf}"].isdigit(), leaf


@pytest.mark.broker_opts(**FAST)
def test_values_follow_traffic(broker, client):
    base = _next_value(client, "$SYS/broker/metrics/messages/received", lambda v: v >= 0)
    pub = client(uid("pub"))
    pub.connect()
    holder = client(uid("hold"))
    holder.connect()
    holder.subscribe("traffic/#", 1)
    for i in range(5):
        pub.publish(f"traffic/{i}", b"x" * 100, qos=1)
    holder.expect_messages(5)
    _next_value(client, "$SYS/broker/metrics/messages/received", lambda v: v >= base + 5)
    _next_value(client, "$SYS/broker/metrics/messages/sent", lambda v: v >= 5)
    _next_value(client, "$SYS/broker/metrics/bytes/received", lambda v: v >= 500)
    # Two clients connected right now (plus the watcher itself).
    _next_value(client, "$SYS/broker/stats/connections/count", lambda v: v >= 3)
    _next_value(client, "$SYS/broker/stats/subscriptions/count", lambda v: v >= 1)
    uptime = _next_value(client, "$SYS/broker/uptime", lambda v: v >= 1)
    assert _next_value(client, "$SYS/broker/uptime", lambda v: v > uptime) > uptime


@pytest.mark.broker_opts(**FAST)
def test_clients_cannot_publish_to_sys(broker, client):
    topic = "$SYS/broker/metrics/messages/received"
    watcher = client(uid("w"))
    watcher.connect()
    watcher.subscribe("$SYS/broker/#", 0)
    watcher.drain()
    bad = client(uid("bad"))
    bad.connect()
    # QoS 1/2 are acknowledged (3.1.1 has no negative PUBACK) but nothing is routed or stored.
    bad.publish(topic, b"999999", qos=1, retain=True)
    bad.publish("$SYS/forged", b"x", qos=2)
    bad.publish("$SYS/forged", b"x", qos=0)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for m in watcher.drain():
            assert m.payload != b"999999" and m.topic != "$SYS/forged", m
        time.sleep(0.1)
    got = _retained(client, topic)
    assert got[topic] != "999999"
    _next_value(client, "$SYS/broker/metrics/messages/dropped", lambda v: v >= 3)
    bad.disconnect()


@pytest.mark.broker_opts(**FAST)
def test_root_wildcards_do_not_match_sys(broker, client):
    everything = client(uid("all"))
    everything.connect()
    everything.subscribe([("#", 0), ("+/broker/uptime", 0)])
    # Wait for a $SYS round to happen, then a sentinel: nothing from $SYS may come before it.
    _next_value(client, "$SYS/broker/uptime", lambda v: v >= 2)
    sentinel = f"sentinel/{uid()}"
    mosquitto_pub(broker.port, sentinel, "end")
    got = everything.messages_until(sentinel)
    assert not [m.topic for m in got if m.topic.startswith("$")]


@pytest.mark.broker_opts(**{"node.name": "evnode"})
def test_client_connected_and_disconnected_events(broker, client):
    events = client(uid("ev"))
    events.connect()
    events.subscribe([("$SYS/brokers/evnode/clients/+/connected", 0),
                      ("$SYS/brokers/evnode/clients/+/disconnected", 0)])
    who = uid("who")
    c = client(who)
    c.connect()
    m = events.expect_message()
    assert m.topic == f"$SYS/brokers/evnode/clients/{who}/connected" and not m.retain
    info = json.loads(m.payload)
    assert info["client_id"] == who and info["peer"].startswith("127.0.0.1:")
    c.disconnect()
    m = events.expect_message()
    assert m.topic == f"$SYS/brokers/evnode/clients/{who}/disconnected"
    assert json.loads(m.payload)["client_id"] == who


@pytest.mark.broker_opts(**{"sys.interval": 0})
def test_interval_zero_turns_sys_off(broker, client):
    sub = client(uid("off"))
    sub.connect()
    sub.subscribe("$SYS/#", 0)
    sub.expect_no_message(within=1.0)
