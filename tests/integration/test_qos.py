"""QoS: delivered QoS = min(publish QoS, subscription QoS); QoS 2 exactly once; ordering.

MQTT 3.1.1 sections 3.3.5, 3.8.4, 4.3, 4.6.
"""

import itertools

import pytest

from harness import (PUBCOMP, PUBLISH, PUBREC, MosquittoSub, mosquitto_pub, publish_pkt, pubrel,
                     puback, pubrec, pubcomp, uid)

COMBOS = list(itertools.product((0, 1, 2), (0, 1, 2)))


@pytest.mark.parametrize("pub_qos,sub_qos", COMBOS, ids=[f"pub{p}-sub{s}" for p, s in COMBOS])
def test_delivered_qos_is_min_paho(broker, client, pub_qos, sub_qos):
    topic = f"qos/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    assert sub.subscribe(topic, sub_qos) == sub_qos  # [MQTT-3.9.3-?] broker grants what was asked
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(topic, b"payload", qos=pub_qos)
    m = sub.expect_message()
    assert (m.topic, m.payload) == (topic, b"payload")
    assert m.qos == min(pub_qos, sub_qos)
    assert not m.retain and not m.dup
    sub.expect_no_message()


@pytest.mark.parametrize("pub_qos,sub_qos", COMBOS, ids=[f"pub{p}-sub{s}" for p, s in COMBOS])
def test_delivered_qos_is_min_mosquitto_clients(broker, pub_qos, sub_qos):
    topic = f"qos/cli/{uid()}"
    with MosquittoSub(broker.port, topic, qos=sub_qos, count=1, wait_s=10) as sub:
        sub.start()
        r = mosquitto_pub(broker.port, topic, "hello", qos=pub_qos)
        assert f"sending PUBLISH (d0, q{pub_qos}" in r.stdout + r.stderr
        got = sub.finish()
    assert len(got) == 1, sub.all_lines
    assert (got[0].topic, got[0].payload) == (topic, "hello")
    assert got[0].qos == min(pub_qos, sub_qos), sub.all_lines
    assert not got[0].retain


def test_qos2_exactly_once_500(broker, client):
    """500 QoS 2 messages: each delivered exactly once, in order, and nothing after them."""
    n = 500
    topic = f"eo/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(topic, 2)
    pub = client(uid("pub"))
    pub.connect()
    mids = [pub.publish(topic, str(i).encode(), qos=2, wait=False) for i in range(n)]
    pub.wait_published(mids, timeout=30)
    got = sub.expect_messages(n, timeout=30)
    payloads = [int(m.payload) for m in got]
    assert sorted(payloads) == list(range(n)), "missing or duplicated messages"
    assert payloads == list(range(n)), "QoS 2 messages of one publisher out of order"
    assert all(m.qos == 2 for m in got)
    # nothing extra: a sentinel after the 500 arrives next
    sub.subscribe(topic + "/end", 2)
    pub.publish(topic + "/end", b"", qos=2)
    assert sub.messages_until(topic + "/end") == []


@pytest.mark.parametrize("qos", [1, 2])
def test_ordering_from_one_publisher(broker, client, qos):
    """Messages of one publisher on one topic arrive in publish order [MQTT-4.6.0-5/6]."""
    n = 300
    topic = f"order/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(topic, qos)
    pub = client(uid("pub"))
    pub.connect()
    mids = [pub.publish(topic, str(i).encode(), qos=qos, wait=False) for i in range(n)]
    pub.wait_published(mids, timeout=30)
    got = sub.expect_messages(n, timeout=30)
    assert [int(m.payload) for m in got] == list(range(n))


def test_ordering_across_topics_of_one_publisher(broker, client):
    """QoS 1 messages of one publisher on two topics, one subscriber of both: publish order kept."""
    n = 100
    base = f"order2/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(base + "/#", 1)
    pub = client(uid("pub"))
    pub.connect()
    mids = [pub.publish(f"{base}/{i % 2}", str(i).encode(), qos=1, wait=False) for i in range(n)]
    pub.wait_published(mids, timeout=30)
    got = sub.expect_messages(n, timeout=30)
    assert [int(m.payload) for m in got] == list(range(n))


def test_qos2_duplicate_publish_before_pubrel_delivered_once(broker, client, raw):
    """A QoS 2 PUBLISH re-sent with DUP=1 (PUBREC lost) must not be delivered twice [MQTT-4.3.3]."""
    topic = f"eo/dup/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(topic, 2)
    r = raw()
    assert r.connect(uid("rawpub")).rc == 0
    r.send(publish_pkt(topic, b"once", qos=2, pid=7))
    assert r.expect(PUBREC).pid == 7
    r.send(publish_pkt(topic, b"once", qos=2, pid=7, dup=True))
    assert r.expect(PUBREC).pid == 7
    r.send(pubrel(7))
    assert r.expect(PUBCOMP).pid == 7
    # the sentinel at QoS 2 too: paho reports a QoS 2 message only at its PUBREL
    sub.subscribe(topic + "/end", 2)
    r.publish(topic + "/end", b"", qos=2, pid=8)
    before = sub.messages_until(topic + "/end")
    assert [m.payload for m in before] == [b"once"]


def test_qos2_pubrel_after_publisher_reconnect(broker, client, raw):
    """Publisher sends QoS 2 PUBLISH, gets PUBREC, drops; on reconnect (clean=0) it sends PUBREL:
    the broker answers PUBCOMP and the message is delivered exactly once."""
    topic = f"eo/recon/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(topic, 2)
    cid = uid("rawpub")
    r = raw()
    assert r.connect(cid, clean=False).rc == 0
    r.send(publish_pkt(topic, b"m", qos=2, pid=42))
    assert r.expect(PUBREC).pid == 42
    r.close()
    r2 = raw()
    ack = r2.connect(cid, clean=False)
    assert ack.rc == 0 and ack.session_present
    r2.send(pubrel(42))
    assert r2.expect(PUBCOMP).pid == 42
    r2.send(publish_pkt(topic, b"end", qos=1, pid=43))
    assert r2.expect(4).pid == 43  # PUBACK
    got = sub.expect_messages(2)
    assert sorted(m.payload for m in got) == [b"end", b"m"]
    sub.expect_no_message()


def test_raw_subscriber_qos2_handshake(broker, client, raw):
    """The broker as QoS 2 sender: PUBLISH -> PUBREC -> PUBREL -> PUBCOMP, one delivery."""
    topic = f"eo/rawsub/{uid()}"
    r = raw()
    assert r.connect(uid("rawsub")).rc == 0
    assert r.subscribe(1, [(topic, 2)]).granted == [2]
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(topic, b"x", qos=2)
    p = r.expect(PUBLISH)
    assert (p.topic, p.payload, p.qos, p.dup) == (topic, b"x", 2, False)
    assert p.pid != 0
    r.send(pubrec(p.pid))
    rel = r.expect(6)  # PUBREL
    assert rel.pid == p.pid and rel.flags == 0x02  # [MQTT-3.6.1-1]
    r.send(pubcomp(p.pid))
    r.expect_no_packet()


def test_raw_subscriber_qos1_packet_ids_distinct(broker, client, raw):
    """Unacknowledged in-flight QoS 1 messages carry distinct non-zero packet ids [MQTT-2.3.1-2]."""
    topic = f"ids/{uid()}"
    r = raw()
    assert r.connect(uid("rawsub")).rc == 0
    r.subscribe(1, [(topic, 1)])
    pub = client(uid("pub"))
    pub.connect()
    for i in range(5):
        pub.publish(topic, str(i).encode(), qos=1)
    pkts = [r.expect(PUBLISH) for _ in range(5)]
    assert [p.payload for p in pkts] == [b"0", b"1", b"2", b"3", b"4"]
    ids = [p.pid for p in pkts]
    assert 0 not in ids and len(set(ids)) == 5
    for p in pkts:
        r.send(puback(p.pid))
    r.expect_no_packet()


@pytest.mark.mosquitto_differs("mosquitto 2.0 silently drops incoming QoS 2 PUBLISHes beyond its "
                               "max_inflight_messages from a 3.1.1 client (no receive maximum in 3.1.1)")
def test_publisher_with_wide_window_loses_nothing(broker, client):
    """A publisher with 100 QoS 2 messages in flight (more than the broker's outbound max_inflight
    of 32): all are delivered exactly once and in order."""
    n = 300
    topic = f"wide/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(topic, 2)
    pub = client(uid("pub"))
    pub.c.max_inflight_messages_set(100)
    pub.connect()
    mids = [pub.publish(topic, str(i).encode(), qos=2, wait=False) for i in range(n)]
    pub.wait_published(mids, timeout=30)
    sub.subscribe(topic + "/end", 2)
    pub.publish(topic + "/end", b"", qos=2)
    got = sub.messages_until(topic + "/end", timeout=30)
    assert [int(m.payload) for m in got] == list(range(n))
