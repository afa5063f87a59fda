"""Topic names and filters: wildcards, $-topics, overlapping subscriptions, unsubscribe,
publishing to a wildcard topic.

MQTT 3.1.1 sections 4.7, 3.3.2, 3.3.5, 3.8, 3.10.
"""

import pytest

from harness import PUBLISH, publish_pkt, uid


def _matches(broker, client, flt, topics):
    """Subscribe `flt`, publish each topic (QoS 1, one publisher), return the topics received,
    in order. A sentinel on an exact topic ends the collection."""
    sub = client(uid("sub"))
    sub.connect()
    sentinel = f"sentinel/{uid()}"
    sub.subscribe([(flt, 1), (sentinel, 1)])
    pub = client(uid("pub"))
    pub.connect()
    for t in topics:
        pub.publish(t, t.encode(), qos=1)
    pub.publish(sentinel, b"", qos=1)
    got = sub.messages_until(sentinel)
    for m in got:
        assert m.payload == m.topic.encode()
    return [m.topic for m in got]


def test_plus_matches_exactly_one_level(broker, client):
    b = uid("t")
    topics = [f"{b}/a/x/c", f"{b}/a//c", f"{b}/a/c", f"{b}/a/x/y/c", f"{b}/a/x/c/d", f"{b}/A/x/c"]
    assert _matches(broker, client, f"{b}/a/+/c", topics) == [f"{b}/a/x/c", f"{b}/a//c"]


def test_plus_at_end_and_empty_levels(broker, client):
    b = uid("t")
    topics = [f"{b}/x", f"{b}/", f"{b}", f"{b}/x/y"]
    assert _matches(broker, client, f"{b}/+", topics) == [f"{b}/x", f"{b}/"]


def test_plus_matches_empty_first_level(broker, client):
    b = uid("t")
    topics = [f"/{b}", f"x/{b}", f"{b}", f"x/y/{b}"]
    assert _matches(broker, client, f"+/{b}", topics) == [f"/{b}", f"x/{b}"]


def test_hash_matches_parent_and_all_children(broker, client):
    """`sport/#` matches `sport` itself [MQTT-4.7.1-2 non-normative example] and everything below."""
    b = uid("sport")
    topics = [b, f"{b}/tennis", f"{b}/tennis/player1", f"{b}/", f"{b}s", f"x/{b}"]
    assert _matches(broker, client, f"{b}/#", topics) == [b, f"{b}/tennis", f"{b}/tennis/player1",
                                                           f"{b}/"]


def test_hash_alone_matches_everything_but_dollar(broker, client):
    b = uid("t")
    topics = [f"{b}", f"{b}/x", f"/{b}", f"$test/{b}"]
    got = _matches(broker, client, "#", topics)
    assert [t for t in got if b in t] == [f"{b}", f"{b}/x", f"/{b}"]


def test_plus_hash_combination(broker, client):
    b = uid("t")
    topics = [f"{b}/x/y/z", f"{b}/x", f"{b}/x/y", f"q/{b}/x"]
    assert _matches(broker, client, f"{b}/+/y/#", topics) == [f"{b}/x/y/z", f"{b}/x/y"]


def test_dollar_topics_not_matched_by_leading_wildcards(broker, client):
    """Topic filters starting with a wildcard do not match topics starting with `$` [MQTT-4.7.2-1],
    but explicit `$test/...` filters do."""
    b = uid("d")
    dollar = f"$test/{b}"
    sub = client(uid("sub"))
    sub.connect()
    sentinel = f"sentinel/{uid()}"
    sub.subscribe([("#", 1), ("+/" + b, 1), ("+/+", 1)])
    sub.subscribe(sentinel, 1)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(dollar, b"x", qos=1)
    pub.publish(sentinel, b"", qos=1)
    got = [m for m in sub.messages_until(sentinel) if m.topic == dollar]
    assert got == [], "a leading-wildcard filter matched a $-topic"

    exact = client(uid("sub2"))
    exact.connect()
    exact.subscribe([(dollar, 1), ("$test/#", 1), ("$test/+", 1)])
    pub.publish(dollar, b"y", qos=1)
    m = exact.expect_message()
    assert (m.topic, m.payload) == (dollar, b"y")


def test_topics_are_case_sensitive_and_utf8(broker, client):
    b = uid("t")
    topics = [f"{b}/Ünïcødé/✓", f"{b}/ünïcødé/✓", f"{b}/with space/x"]
    assert _matches(broker, client, f"{b}/Ünïcødé/+", topics) == [f"{b}/Ünïcødé/✓"]
    assert _matches(broker, client, f"{b}/with space/#", topics) == [f"{b}/with space/x"]


@pytest.mark.mosquitto_differs("mosquitto 2.0.11 sends one copy but at the QoS of one of the "
                               "matching subscriptions, not the highest")
def test_overlapping_subscriptions_one_copy_at_highest_qos(broker, client):
    """One client, several filters matching one topic: one copy, at the highest granted QoS
    [MQTT-3.3.5-1]."""
    b = uid("ov")
    sub = client(uid("sub"))
    sub.connect()
    assert sub.subscribe([(f"{b}/#", 0), (f"{b}/+", 2), (f"{b}/x", 1), ("#", 0)]) == [0, 2, 1, 0]
    sentinel = f"{b}/end"
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(f"{b}/x", b"once", qos=2)
    pub.publish(sentinel, b"", qos=2)
    got = sub.messages_until(sentinel)
    assert [(m.payload, m.qos) for m in got] == [(b"once", 2)]


def test_overlapping_subscriptions_qos_capped_by_publish(broker, client):
    b = uid("ov")
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe([(f"{b}/#", 2), (f"{b}/+", 1)])
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(f"{b}/x", b"q1", qos=1)
    pub.publish(f"{b}/end", b"", qos=1)
    got = sub.messages_until(f"{b}/end")
    assert [(m.payload, m.qos) for m in got] == [(b"q1", 1)]


def test_resubscribe_replaces_qos(broker, client):
    """Subscribing to the same filter again replaces the subscription (new QoS) [MQTT-3.8.4-3]."""
    t = f"re/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    assert sub.subscribe(t, 2) == 2
    assert sub.subscribe(t, 0) == 0
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"a", qos=2)
    m = sub.expect_message()
    assert (m.payload, m.qos) == (b"a", 0)
    sub.expect_no_message()


def test_multiple_filters_in_one_subscribe(broker, client):
    """SUBACK carries one return code per filter, in order [MQTT-3.8.4-5, 3.9.3-1]."""
    b = uid("m")
    sub = client(uid("sub"))
    sub.connect()
    assert sub.subscribe([(f"{b}/a", 2), (f"{b}/b", 0), (f"{b}/c", 1)]) == [2, 0, 1]


def test_unsubscribe_stops_delivery(broker, client):
    b = uid("u")
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe([(f"{b}/a", 1), (f"{b}/b", 1)])
    sub.unsubscribe(f"{b}/a")
    sub.unsubscribe(f"{b}/never-subscribed")  # UNSUBACK even if nothing matched [MQTT-3.10.4-5]
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(f"{b}/a", b"a", qos=1)
    pub.publish(f"{b}/b", b"b", qos=1)
    m = sub.expect_message()
    assert (m.topic, m.payload) == (f"{b}/b", b"b")
    sub.expect_no_message()


def test_unsubscribe_is_exact_filter_not_matching(broker, client):
    """UNSUBSCRIBE `a/+` does not remove the subscription `a/b` (filters compared literally)."""
    b = uid("u")
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(f"{b}/x", 1)
    sub.unsubscribe(f"{b}/+")
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(f"{b}/x", b"still", qos=1)
    assert sub.expect_message().payload == b"still"


@pytest.mark.parametrize("topic", ["a/+", "a/#", "#", "+", "a/b+", "a/#/b"])
def test_publish_to_wildcard_topic_closes_connection(broker, client, raw, topic):
    """A PUBLISH whose topic name contains a wildcard is a protocol violation: the broker closes
    that connection [MQTT-3.3.2-2, MQTT-4.8.0-1] and delivers nothing; other clients keep working."""
    b = uid("w")
    topic = f"{b}/{topic}"
    watcher = client(uid("watch"))
    watcher.connect()
    watcher.subscribe([(f"{b}/#", 1)])
    r = raw()
    assert r.connect(uid("bad")).rc == 0
    r.send(publish_pkt(topic, b"wild", qos=1, pid=1))
    r.wait_closed(timeout=5)
    # the broker keeps serving the others
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(f"{b}/ok", b"fine", qos=1)
    m = watcher.expect_message()
    assert (m.topic, m.payload) == (f"{b}/ok", b"fine")
    broker.assert_serves()


def test_many_subscribers_fan_out(broker, client):
    t = f"fan/{uid()}"
    subs = []
    for i in range(30):
        s = client(uid("fs"))
        s.connect()
        s.subscribe(t, 1)
        subs.append(s)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"all", qos=1)
    for s in subs:
        assert s.expect_message().payload == b"all"


def test_fan_in_from_many_publishers(broker, client):
    t = f"fanin/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(t + "/#", 1)
    pubs = []
    for i in range(10):
        p = client(uid("fp"))
        p.connect()
        pubs.append(p)
    mids = {}
    for j in range(20):
        for i, p in enumerate(pubs):
            mids.setdefault(i, []).append(p.publish(f"{t}/{i}", f"{i}:{j}".encode(), qos=1, wait=False))
    for i, p in enumerate(pubs):
        p.wait_published(mids[i])
    got = sub.expect_messages(200)
    per = {}
    for m in got:
        i, j = m.payload.decode().split(":")
        per.setdefault(i, []).append(int(j))
    assert len(per) == 10
    for i, js in per.items():
        assert js == list(range(20)), f"publisher {i} out of order or incomplete"
