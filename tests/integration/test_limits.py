"""Abuse limits (limits.*, listeners.tcp.max_connections / connect_rate, mqtt.max_packet_size,
mqtt.connect_timeout): each bites with a log line while other clients keep being served."""

import time

import pytest

from harness import CONNACK, Closed, Timeout, connect_pkt, publish_pkt, uid, wait_for_log

pytestmark = [pytest.mark.meshmq_only("meshmq limits keys"), pytest.mark.timeout(60)]


def refused_at_once(broker) -> bool:
    """A new TCP connection that the broker closes without answering CONNECT."""
    raw = broker.raw()
    try:
        raw.send(connect_pkt(uid("r")))
        raw.expect(CONNACK, timeout=2)
        return False
    except (Closed, ConnectionError):
        return True
    except Timeout:
        return False
    finally:
        raw.close()


@pytest.mark.broker_opts(**{"limits.max_topic_length": 40, "limits.max_topic_levels": 3})
def test_topic_length_and_levels(broker, client):
    c = client(uid("t"))
    c.connect()
    assert c.subscribe([("a/b/c", 1), ("a/b/c/d", 1), ("x" * 41, 1), ("a/+", 1)]) \
        == [1, 0x80, 0x80, 1]
    wait_for_log(broker, r"subscription refused: limits.max_topic_levels exceeded")
    wait_for_log(broker, r"subscription refused: limits.max_topic_length exceeded")
    c.publish("a/" + "y" * 50, b"too long", qos=1)  # acknowledged, dropped
    c.publish("a/b/c/d", b"too deep", qos=1)
    c.publish("a/b/c", b"fine", qos=1)
    m = c.expect_message()
    assert (m.topic, m.payload) == ("a/b/c", b"fine")
    c.expect_no_message()
    wait_for_log(broker, r"PUBLISH dropped: limits.max_topic_length exceeded")
    wait_for_log(broker, r"PUBLISH dropped: limits.max_topic_levels exceeded")
    broker.assert_serves("topic limits")


@pytest.mark.broker_opts(**{"limits.max_subscriptions_per_client": 2})
def test_subscriptions_per_client(broker, client):
    c = client(uid("s"))
    c.connect()
    assert c.subscribe([("s/1", 0), ("s/2", 0), ("s/3", 0)]) == [0, 0, 0x80]
    assert c.subscribe("s/2", 1) == 1  # replacing an existing one is not a new one
    wait_for_log(broker, r"limits.max_subscriptions_per_client \(2\) reached")
    c.unsubscribe("s/1")
    assert c.subscribe("s/3", 0) == 0
    broker.assert_serves("subscription limit")


@pytest.mark.parametrize("key", ["listeners.tcp.max_connections", "limits.max_connections"])
def test_connection_limits(broker_factory, key):
    b = broker_factory({key: 2})
    # The harness's readiness probe holds a slot until the broker has seen it close.
    wait_for_log(b, r"closed before CONNECT completed: connection closed by the client")
    held = [b.client(uid("h")) for _ in range(2)]
    for h in held:
        h.connect()
    assert refused_at_once(b)
    wait_for_log(b, key.replace(".", r"\.") + r" \(2\) reached")
    held[0].subscribe("held/t", 1)
    held[1].publish("held/t", b"still", qos=1)  # the connected ones are unaffected
    assert held[0].expect_message().payload == b"still"
    held[1].close()
    deadline = time.monotonic() + 5
    while refused_at_once(b):  # the slot comes back once the broker has closed the socket
        assert time.monotonic() < deadline, "slot not given back"
        time.sleep(0.05)
    b.assert_alive()
    held[0].close()


@pytest.mark.broker_opts(**{"listeners.tcp.connect_rate": 3})
def test_connect_rate(broker):
    refused = sum(refused_at_once(broker) for _ in range(8))
    assert refused >= 1, "8 connections at once with connect_rate 3 were all accepted"
    wait_for_log(broker, r"listeners\.tcp\.connect_rate \(3/s\) exceeded")
    time.sleep(1.1)  # the bucket refills: one second's worth
    broker.assert_serves("connect rate")


@pytest.mark.broker_opts(**{"limits.publish_rate": 20, "limits.publish_burst": 5})
def test_publish_rate_throttles_without_loss(broker, client):
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe("rate/#", 1)
    raw = broker.raw()
    assert raw.connect(uid("flood")).rc == 0
    n = 25
    t0 = time.monotonic()
    raw.send(b"".join(publish_pkt("rate/t", str(i).encode()) for i in range(n)))
    # Another client is served while the flooder is held back.
    broker.assert_serves("while throttled")
    got = sub.expect_messages(n, timeout=15)
    elapsed = time.monotonic() - t0
    assert [m.payload for m in got] == [str(i).encode() for i in range(n)]  # nothing lost
    # 5 at once, then 20/s: the last one cannot arrive before (25 - 5) / 20 = 1 s.
    assert elapsed >= 0.9, f"25 publishes at 20/s (burst 5) all delivered after {elapsed:.2f}s"
    wait_for_log(broker, r"publishing faster than limits.publish_rate \(20/s\)")
    raw.close()


@pytest.mark.broker_opts(**{"mqtt.max_packet_size": 1024})
def test_max_packet_size_logged(broker):
    raw = broker.raw()
    assert raw.connect(uid("big")).rc == 0
    raw.send(publish_pkt("big", b"x" * 2000))
    raw.wait_closed()
    wait_for_log(broker, r"packet above mqtt.max_packet_size \(1024 bytes\)")
    broker.assert_serves("packet size")


@pytest.mark.broker_opts(**{"mqtt.connect_timeout": 1})
def test_connect_timeout_logged(broker):
    raw = broker.raw()
    raw.wait_closed(timeout=5)
    wait_for_log(broker, r"no CONNECT within mqtt.connect_timeout \(1 s\)")
    broker.assert_serves("connect timeout")
