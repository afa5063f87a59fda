"""Outbound in-flight window (--mqtt.max_inflight): a subscriber that does not acknowledge gets at
most max_inflight QoS 1/2 messages; the rest follow, in order, as it acknowledges.
"""

import pytest

from harness import PUBLISH, PUBREL, puback, pubcomp, pubrec, uid

WINDOW = 4


def _setup(raw, client, qos):
    t = f"win/{uid()}"
    r = raw()
    assert r.connect(uid("slow")).rc == 0
    assert r.subscribe(1, [(t, qos)]).granted == [qos]
    pub = client(uid("pub"))
    pub.connect()
    return t, r, pub


@pytest.mark.broker_opts(**{"mqtt.max_inflight": WINDOW})
def test_window_holds_until_acked_then_rest_in_order(broker, client, raw):
    t, r, pub = _setup(raw, client, 1)
    for i in range(10):
        pub.publish(t, str(i).encode(), qos=1)  # the broker acks the publisher regardless
    first = [r.expect(PUBLISH) for _ in range(WINDOW)]
    assert [p.payload for p in first] == [b"0", b"1", b"2", b"3"]
    r.expect_no_packet(1.0)  # window full: exactly 4 until we ack
    for p in first:
        r.send(puback(p.pid))
    rest = []
    while len(rest) < 6:
        p = r.expect(PUBLISH)
        rest.append(p)
        r.send(puback(p.pid))
    assert [p.payload for p in rest] == [str(i).encode() for i in range(4, 10)]
    assert not any(p.dup for p in first + rest)
    r.expect_no_packet()


@pytest.mark.mosquitto_differs("after one PUBACK mosquitto 2.0.11 releases a whole window of queued "
                               "messages (8 unacknowledged with max_inflight_messages 4)")
@pytest.mark.broker_opts(**{"mqtt.max_inflight": WINDOW})
def test_window_slides_by_one_per_ack(broker, client, raw):
    t, r, pub = _setup(raw, client, 1)
    for i in range(8):
        pub.publish(t, str(i).encode(), qos=1)
    inflight = [r.expect(PUBLISH) for _ in range(WINDOW)]
    r.expect_no_packet(0.5)
    r.send(puback(inflight[0].pid))
    nxt = r.expect(PUBLISH)
    assert nxt.payload == b"4"
    r.expect_no_packet(0.5)  # still 4 in flight
    for p in inflight[1:] + [nxt]:
        r.send(puback(p.pid))
    tail = [r.expect(PUBLISH) for _ in range(3)]
    assert [p.payload for p in tail] == [b"5", b"6", b"7"]


@pytest.mark.broker_opts(**{"mqtt.max_inflight": WINDOW})
def test_window_qos2(broker, client, raw):
    """QoS 2: a message leaves the window only when its flow completes; all arrive once, in order."""
    t, r, pub = _setup(raw, client, 2)
    for i in range(8):
        pub.publish(t, str(i).encode(), qos=2)
    first = [r.expect(PUBLISH) for _ in range(WINDOW)]
    r.expect_no_packet(0.5)
    got = list(first)
    pending = list(first)
    while pending:
        p = pending.pop(0)
        r.send(pubrec(p.pid))
        rel = r.wait_for(PUBREL, p.pid)
        r.send(pubcomp(rel.pid))
        while len(got) < 8:
            try:
                q = r.wait_for(PUBLISH, timeout=0.3)
            except AssertionError:
                break
            got.append(q)
            pending.append(q)
    assert [p.payload for p in got] == [str(i).encode() for i in range(8)]
    r.expect_no_packet()


@pytest.mark.broker_opts(**{"mqtt.max_inflight": WINDOW})
def test_window_full_does_not_block_other_subscribers(broker, client, raw):
    t, r, pub = _setup(raw, client, 1)
    fast = client(uid("fast"))
    fast.connect()
    fast.subscribe(t, 1)
    for i in range(10):
        pub.publish(t, str(i).encode(), qos=1)
    got = fast.expect_messages(10)
    assert [m.payload for m in got] == [str(i).encode() for i in range(10)]
    assert len([r.expect(PUBLISH) for _ in range(WINDOW)]) == WINDOW
    r.expect_no_packet(0.5)
