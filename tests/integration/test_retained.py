"""Retained messages: stored, delivered to new subscribers with RETAIN=1 at min QoS, replaced,
cleared by an empty payload, RETAIN=0 on normal forwarding; meshmq's retained_max_age/count.

MQTT 3.1.1 section 3.3.1.3.
"""

import time

import pytest

from harness import PUBLISH, MosquittoSub, mosquitto_pub, uid


def _new_subscriber_gets(client, flt, qos=1, sentinel_topic=None):
    """Subscribe `flt` with a fresh client; return the retained messages it gets. A non-retained
    sentinel published by the subscriber itself after the SUBACK ends the collection (the broker
    sends the retained messages when it handles the SUBSCRIBE, before that later PUBLISH).
    The sentinel goes at QoS 2: paho reports a QoS 2 message only at its PUBREL, so a QoS 0/1
    sentinel could overtake a retained QoS 2 message."""
    sub = client(uid("sub"))
    sub.connect()
    sentinel = sentinel_topic or f"sentinel/{uid()}"
    sub.subscribe([(flt, qos), (sentinel, 2)])
    sub.publish(sentinel, b"", qos=2)
    got = sub.messages_until(sentinel)
    sub.disconnect()
    return got


def test_retained_delivered_to_new_subscriber(broker, client):
    t = f"ret/{uid()}"
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"kept", qos=1, retain=True)
    got = _new_subscriber_gets(client, t, qos=1)
    assert [(m.topic, m.payload, m.retain, m.qos) for m in got] == [(t, b"kept", True, 1)]


@pytest.mark.parametrize("pub_qos,sub_qos", [(2, 1), (0, 2), (1, 0), (2, 2)])
def test_retained_to_wildcard_subscription_at_min_qos(broker, client, pub_qos, sub_qos):
    b = uid("ret")
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(f"{b}/x/1", b"r", qos=pub_qos, retain=True)
    if pub_qos == 0:  # no ack for QoS 0: a QoS 1 publish after it proves it was processed
        pub.publish(f"{b}/fence", b"", qos=1)
    got = _new_subscriber_gets(client, f"{b}/+/1", qos=sub_qos)
    assert [(m.topic, m.payload, m.retain, m.qos) for m in got] == \
        [(f"{b}/x/1", b"r", True, min(pub_qos, sub_qos))]


def test_all_matching_retained_delivered(broker, client):
    b = uid("ret")
    pub = client(uid("pub"))
    pub.connect()
    topics = [f"{b}/a", f"{b}/b/c", f"{b}/d/e/f", b]
    for t in topics:
        pub.publish(t, t.encode(), qos=1, retain=True)
    pub.publish(f"{b}/notretained", b"x", qos=1)
    got = _new_subscriber_gets(client, f"{b}/#", qos=1)
    assert sorted(m.topic for m in got) == sorted(topics)
    assert all(m.retain and m.payload == m.topic.encode() for m in got)


def test_retained_replaced_by_newer(broker, client):
    t = f"ret/{uid()}"
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"old", qos=1, retain=True)
    pub.publish(t, b"new", qos=1, retain=True)
    got = _new_subscriber_gets(client, t)
    assert [m.payload for m in got] == [b"new"]


def test_qos0_retained_is_stored(broker, client):
    """A QoS 0 retained message replaces the previous one and SHOULD be stored [MQTT-3.3.1-7]."""
    t = f"ret/{uid()}"
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"q1", qos=1, retain=True)
    pub.publish(t, b"q0", qos=0, retain=True)
    pub.publish(f"{t}/fence", b"", qos=1)
    got = _new_subscriber_gets(client, t, qos=2)
    assert [(m.payload, m.qos) for m in got] == [(b"q0", 0)]


def test_empty_retained_payload_clears(broker, client):
    """A retained PUBLISH with an empty payload removes the retained message [MQTT-3.3.1-10/11]
    and is forwarded as a normal (empty) message to current subscribers."""
    t = f"ret/{uid()}"
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"kept", qos=1, retain=True)
    current = client(uid("cur"))
    current.connect()
    current.subscribe(t, 1)
    first = current.expect_message()
    assert (first.payload, first.retain) == (b"kept", True)
    pub.publish(t, b"", qos=1, retain=True)
    cleared = current.expect_message()
    assert (cleared.topic, cleared.payload, cleared.retain) == (t, b"", False)
    assert _new_subscriber_gets(client, t) == []
    assert _new_subscriber_gets(client, "ret/#") == []


def test_retain_flag_zero_when_forwarded_to_existing_subscriber(broker, client):
    """A retained PUBLISH forwarded because of an existing subscription has RETAIN=0 [MQTT-3.3.1-9]."""
    t = f"ret/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(t, 2)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"live", qos=2, retain=True)
    m = sub.expect_message()
    assert (m.payload, m.retain, m.qos) == (b"live", False, 2)
    # ... but it was stored: a new subscriber gets it with RETAIN=1
    assert [(m.payload, m.retain) for m in _new_subscriber_gets(client, t)] == [(b"live", True)]


def test_resubscribe_resends_retained(broker, client):
    """Re-subscribing with the same filter re-sends the matching retained messages [MQTT-3.8.4-3]."""
    t = f"ret/{uid()}"
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"again", qos=1, retain=True)
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(t, 1)
    assert sub.expect_message().payload == b"again"
    sub.subscribe(t, 1)
    m = sub.expect_message()
    assert (m.payload, m.retain) == (b"again", True)


def test_retained_not_matched_by_hash_on_dollar_topic(broker, client):
    d = f"$test/{uid()}"
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(d, b"dollar", qos=1, retain=True)
    assert [m for m in _new_subscriber_gets(client, "#") if m.topic == d] == []
    assert [m.payload for m in _new_subscriber_gets(client, "$test/#") if m.topic == d] == [b"dollar"]


def test_retained_with_mosquitto_clients(broker):
    t = f"ret/cli/{uid()}"
    mosquitto_pub(broker.port, t, "cli-kept", qos=1, retain=True)
    with MosquittoSub(broker.port, t, qos=2, count=1) as sub:
        sub.start()
        got = sub.finish()
    assert len(got) == 1 and (got[0].payload, got[0].retain, got[0].qos) == ("cli-kept", True, 1)
    mosquitto_pub(broker.port, t, None, qos=1, retain=True)  # -n: empty payload clears


@pytest.mark.meshmq_only("--mqtt.retained_max_age is a meshmq flag")
@pytest.mark.broker_opts(**{"mqtt.retained_max_age": 1})
def test_retained_max_age_expires(broker, client):
    t = f"ret/age/{uid()}"
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"fresh", qos=1, retain=True)
    t_published = time.monotonic()
    got = _new_subscriber_gets(client, t)
    if time.monotonic() - t_published < 0.9:
        assert [m.payload for m in got] == [b"fresh"]
    # the age limit is inherently a matter of time: wait past it (bounded) and look again
    time.sleep(max(0.0, t_published + 2.2 - time.monotonic()))
    assert _new_subscriber_gets(client, t) == []
    # a newer retained message is stored again
    pub.publish(t, b"newer", qos=1, retain=True)
    assert [m.payload for m in _new_subscriber_gets(client, t)] == [b"newer"]


@pytest.mark.meshmq_only("--mqtt.retained_max_count is a meshmq flag")
@pytest.mark.broker_opts(**{"mqtt.retained_max_count": 3})
def test_retained_max_count_bounds_store(broker, client):
    b = uid("cnt")
    pub = client(uid("pub"))
    pub.connect()
    for i in range(6):
        pub.publish(f"{b}/{i}", str(i).encode(), qos=1, retain=True)
    got = _new_subscriber_gets(client, f"{b}/#")
    assert 1 <= len(got) <= 3, [m.topic for m in got]
    broker.assert_serves()
