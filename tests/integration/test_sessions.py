"""Sessions: client ids, session-present, clean session, offline queueing and its bounds, session
expiry, takeover, redelivery of unacknowledged messages with DUP=1.

MQTT 3.1.1 sections 3.1.2.4, 3.1.3.1, 3.1.4, 3.2.2.2, 4.1, 4.4.
"""

import re
import time

import pytest

from harness import (DISCONNECT_PKT, PUBLISH, PUBREL, is_mosquitto, puback, pubcomp, pubrec, uid,
                     wait_for_log)


def _persistent_subscriber(broker, cid, flt, qos=2):
    """Create a persistent session subscribed to `flt`, then disconnect cleanly.

    Returns once the broker has processed the DISCONNECT: paho closes its socket without waiting,
    and a publish routed before the broker reads the DISCONNECT is legitimately sent to the live
    connection (and then kept inflight), which tests counting the offline queue must not see."""
    pattern = rf"client {re.escape(cid)} \(.*\) disconnected"
    before = 0
    if not is_mosquitto():
        before = len(re.findall(pattern, broker.log_path.read_text("utf-8", "replace")))
    c = broker.client(cid, clean_session=False)
    rc, sp = c.connect()
    c.subscribe(flt, qos)
    c.disconnect()
    if not is_mosquitto():
        wait_for_log(broker, pattern, count=before + 1)
    return sp


def _publish_all(pub, items):
    """items: (topic, payload, qos). Waits for every QoS>0 ack; QoS 0 ones are fenced by a final
    QoS 1 publish on an unrelated topic (same connection, so processed in order)."""
    mids = []
    for topic, payload, qos in items:
        mid = pub.publish(topic, payload, qos=qos, wait=False)
        if qos:
            mids.append(mid)
    pub.wait_published(mids)
    pub.publish(f"fence/{uid()}", b"", qos=1)


# ---- client ids and session-present ---------------------------------------------------------

def test_empty_client_id_with_clean_session_gets_assigned_id(broker, raw, client):
    r = raw()
    ack = r.connect("", clean=True)
    assert (ack.rc, ack.session_present) == (0, False)
    t = f"anon/{uid()}"
    assert r.subscribe(1, [(t, 1)]).granted == [1]
    r.publish(t, b"works", qos=1, pid=2)
    p = r.expect(PUBLISH)
    assert (p.topic, p.payload) == (t, b"works")
    # two anonymous clients at once: distinct ids, no takeover between them
    a = client("")
    a.connect()
    b = client("")
    b.connect()
    a.subscribe(t, 1)
    b.publish(t, b"both alive", qos=1)
    assert a.expect_message().payload == b"both alive"
    assert not a.disconnected.is_set() and not b.disconnected.is_set()


def test_empty_client_id_with_persistent_session_refused(broker, raw):
    """[MQTT-3.1.3-8]: CONNACK 0x02 (identifier rejected), session present 0, then close."""
    r = raw()
    ack = r.connect("", clean=False)
    assert (ack.rc, ack.session_present) == (0x02, False)
    r.wait_closed(timeout=5)
    broker.assert_serves()


def test_session_present_flag(broker, client):
    cid = uid("sp")
    c = client(cid, clean_session=False)
    assert c.connect() == (0, False)          # first connect: no session [MQTT-3.2.2-3]
    c.disconnect()
    c = client(cid, clean_session=False)
    assert c.connect() == (0, True)           # persistent session resumed [MQTT-3.2.2-2]
    c.disconnect()
    c = client(cid, clean_session=True)
    assert c.connect() == (0, False)          # clean session: always 0 [MQTT-3.2.2-1]
    c.disconnect()
    c = client(cid, clean_session=False)
    assert c.connect() == (0, False)          # the clean session discarded the old one
    c.disconnect()


# ---- offline queueing --------------------------------------------------------------------

def _collect(c, sentinel, n, timeout=10.0):
    """Messages until the sentinel has arrived and at least `n` others have; then a quiet period
    must pass without anything more. Returns the others, in arrival order."""
    deadline = time.monotonic() + timeout
    got, seen = [], False
    while not (seen and len(got) >= n):
        m = c.expect_message(timeout=max(0.01, deadline - time.monotonic()))
        if m.topic == sentinel:
            seen = True
        else:
            got.append(m)
    c.expect_no_message()
    return got


def _by(msgs, key):
    out = {}
    for m in msgs:
        out.setdefault(key(m), []).append(m)
    return out


def test_offline_qos1_qos2_queued_in_order_qos0_not(broker, client):
    """Offline QoS 1/2 messages are queued and delivered on reconnect, each topic/QoS stream in
    publish order [MQTT-4.6.0-6]; QoS 0 ones are not queued by default."""
    cid = uid("off")
    b = uid("q")
    _persistent_subscriber(broker, cid, f"{b}/#", qos=2)
    pub = client(uid("pub"))
    pub.connect()
    items = [(f"{b}/{i % 3}", str(i).encode(), i % 3) for i in range(12)]  # qos 0,1,2,0,1,2...
    _publish_all(pub, items)

    c = client(cid, clean_session=False)
    assert c.connect() == (0, True)
    pub.publish(f"{b}/end", b"", qos=1)  # a live message after the queued ones
    got = _collect(c, f"{b}/end", 8)
    assert sorted((m.topic, m.payload, m.qos) for m in got) == \
        sorted((t, p, q) for t, p, q in items if q > 0), "QoS 0 queued or QoS 1/2 lost"
    for topic, ms in _by(got, lambda m: m.topic).items():
        assert [m.payload for m in ms] == [p for t, p, q in items if t == topic]
    assert not any(m.retain or m.dup for m in got)


@pytest.mark.mosquitto_differs("mosquitto 2.0.11 sends a session's queued QoS 2 messages after "
                               "its QoS 1 ones (and after newer live messages)")
def test_offline_queue_keeps_publish_order_across_qos(broker, client, raw):
    """One topic, QoS 1 and 2 interleaved: delivered in publish order, before newer messages.
    (The spec only requires order per topic and QoS; meshmq keeps one FIFO per session.) A raw
    subscriber sees the wire order (paho would report QoS 2 messages only at their PUBREL)."""
    cid = uid("off")
    t = f"q/{uid()}"
    r = raw()
    assert r.connect(cid, clean=False).rc == 0
    r.subscribe(1, [(t + "/#", 2)])
    r.send(DISCONNECT_PKT)
    r.wait_closed()
    pub = client(uid("pub"))
    pub.connect()
    items = [(t, str(i).encode(), 1 + i % 2) for i in range(10)]
    _publish_all(pub, items)
    r2 = raw()
    assert r2.connect(cid, clean=False).session_present
    pub.publish(t + "/end", b"", qos=1)
    got = []
    while True:
        p = r2.wait_for(PUBLISH)  # PUBRELs for the QoS 2 ones are set aside
        if p.topic == t + "/end":
            break
        got.append((p.payload, p.qos))
        r2.send(puback(p.pid) if p.qos == 1 else pubrec(p.pid))
    assert got == [(p, q) for _, p, q in items]


def test_offline_queue_respects_subscription_qos(broker, client):
    cid = uid("off")
    t = f"q/{uid()}"
    _persistent_subscriber(broker, cid, t, qos=1)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"two", qos=2)
    c = client(cid, clean_session=False)
    c.connect()
    m = c.expect_message()
    assert (m.payload, m.qos) == (b"two", 1)


@pytest.mark.broker_opts(**{"mqtt.queue_qos0": True})
def test_offline_qos0_queued_when_enabled(broker, client):
    cid = uid("off")
    b = uid("q")
    _persistent_subscriber(broker, cid, f"{b}/#", qos=2)
    pub = client(uid("pub"))
    pub.connect()
    items = [(f"{b}/x", str(i).encode(), i % 3) for i in range(6)]
    _publish_all(pub, items)
    c = client(cid, clean_session=False)
    assert c.connect() == (0, True)
    pub.publish(f"{b}/end", b"", qos=1)
    got = _collect(c, f"{b}/end", 6)
    assert sorted((m.payload, m.qos) for m in got) == sorted((p, q) for _, p, q in items)
    for q, ms in _by(got, lambda m: m.qos).items():
        assert [m.payload for m in ms] == [p for _, p, qq in items if qq == q]


@pytest.mark.broker_opts(**{"mqtt.max_queued_messages": 10})
def test_offline_queue_bound(broker, client):
    """With max_queued_messages=10, at most 10 of 25 offline messages are delivered."""
    cid = uid("off")
    b = uid("q")
    _persistent_subscriber(broker, cid, f"{b}/#", qos=1)
    pub = client(uid("pub"))
    pub.connect()
    _publish_all(pub, [(f"{b}/x", str(i).encode(), 1) for i in range(25)])
    c = client(cid, clean_session=False)
    assert c.connect() == (0, True)
    pub.publish(f"{b}/end", b"", qos=1)
    got = c.messages_until(f"{b}/end")
    n = [int(m.payload) for m in got]
    assert 1 <= len(n) <= 10, n
    assert n == sorted(n) and len(set(n)) == len(n), n


@pytest.mark.broker_opts(**{"mqtt.max_queued_messages": 10})
def test_offline_queue_bound_keeps_oldest(broker, client):
    """When the queue is full, new messages are dropped (meshmq's MqttOptions contract; mosquitto
    does the same): the first 10 arrive."""
    cid = uid("off")
    b = uid("q")
    _persistent_subscriber(broker, cid, f"{b}/#", qos=1)
    pub = client(uid("pub"))
    pub.connect()
    _publish_all(pub, [(f"{b}/x", str(i).encode(), 1) for i in range(25)])
    c = client(cid, clean_session=False)
    c.connect()
    pub.publish(f"{b}/end", b"", qos=1)
    assert [int(m.payload) for m in c.messages_until(f"{b}/end")] == list(range(10))


# ---- expiry and clean session -------------------------------------------------------------

@pytest.mark.timeout(30)
@pytest.mark.broker_opts(**{"mqtt.session_expiry": 2})
def test_session_expiry(broker, client):
    """--mqtt.session_expiry=2: a session offline for 3.5 s is gone (session present 0, no
    subscription, no queued message); one offline for a moment survives."""
    b = uid("exp")
    gone, kept = uid("gone"), uid("kept")
    _persistent_subscriber(broker, gone, f"{b}/gone", qos=1)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(f"{b}/gone", b"queued then expired", qos=1)
    t_off = time.monotonic()
    # session expiry is inherently about elapsed time: wait it out (bounded)
    time.sleep(max(0.0, t_off + 3.5 - time.monotonic()))
    _persistent_subscriber(broker, kept, f"{b}/kept", qos=1)
    pub.publish(f"{b}/kept", b"queued", qos=1)

    c = client(gone, clean_session=False)
    assert c.connect() == (0, False), "expired session was resumed"
    c.subscribe(f"{b}/sentinel", 1)
    pub.publish(f"{b}/gone", b"no subscription any more", qos=1)
    pub.publish(f"{b}/sentinel", b"", qos=1)
    assert c.messages_until(f"{b}/sentinel") == []

    k = client(kept, clean_session=False)
    assert k.connect() == (0, True)
    assert k.expect_message().payload == b"queued"


@pytest.mark.meshmq_only("session_expiry with a unit suffix is meshmq syntax")
@pytest.mark.broker_opts(**{"mqtt.session_expiry": "2h"})
def test_session_expiry_in_hours_keeps_session(broker, client):
    cid = uid("h")
    _persistent_subscriber(broker, cid, "h/x", qos=1)
    c = client(cid, clean_session=False)
    assert c.connect() == (0, True)


def test_clean_session_state_discarded_on_disconnect(broker, client):
    cid = uid("clean")
    t = f"cs/{uid()}"
    c = client(cid, clean_session=True)
    c.connect()
    c.subscribe(t, 1)
    c.disconnect()
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"nobody home", qos=1)
    c = client(cid, clean_session=False)
    assert c.connect() == (0, False)
    c.subscribe(t + "/sentinel", 1)
    pub.publish(t, b"no subscription", qos=1)
    pub.publish(t + "/sentinel", b"", qos=1)
    assert c.messages_until(t + "/sentinel") == []


def test_clean_session_discards_existing_persistent_session(broker, client):
    cid = uid("clean")
    t = f"cs/{uid()}"
    _persistent_subscriber(broker, cid, t, qos=1)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"queued for the old session", qos=1)
    c = client(cid, clean_session=True)
    assert c.connect() == (0, False)
    c.subscribe(t + "/sentinel", 1)
    pub.publish(t + "/sentinel", b"", qos=1)
    assert c.messages_until(t + "/sentinel") == []
    c.disconnect()
    c = client(cid, clean_session=False)
    assert c.connect() == (0, False)


def test_persistent_session_keeps_subscriptions(broker, client):
    cid = uid("keep")
    t = f"ps/{uid()}"
    _persistent_subscriber(broker, cid, t, qos=1)
    c = client(cid, clean_session=False)
    assert c.connect() == (0, True)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"live", qos=1)
    m = c.expect_message()
    assert (m.payload, m.qos) == (b"live", 1)


# ---- takeover ---------------------------------------------------------------------------

def test_takeover_closes_first_and_inherits_session(broker, client):
    cid = uid("take")
    t = f"tk/{uid()}"
    first = client(cid, clean_session=False)
    first.connect()
    first.subscribe(t, 1)
    second = client(cid, clean_session=False)
    assert second.connect() == (0, True)       # [MQTT-3.1.4-2], session inherited
    first.wait_disconnected(timeout=5)
    assert first.disconnect_rc != 0             # closed by the broker, not by us
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"to the new connection", qos=1)
    m = second.expect_message()
    assert (m.payload, m.qos) == (b"to the new connection", 1)
    assert first.drain() == []


def test_takeover_with_clean_session_starts_fresh(broker, client, raw):
    cid = uid("take")
    t = f"tk/{uid()}"
    first = raw()
    assert first.connect(cid, clean=False).rc == 0
    first.subscribe(1, [(t, 1)])
    second = raw()
    ack = second.connect(cid, clean=True)
    assert (ack.rc, ack.session_present) == (0, False)
    first.wait_closed(timeout=5)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"x", qos=1)
    second.expect_no_packet()


def test_repeated_takeovers(broker, client, raw):
    """Five connections in a row with one id: each closes the previous; the last one works."""
    cid = uid("many")
    conns = []
    for i in range(5):
        r = raw()
        assert r.connect(cid, clean=False).rc == 0
        if conns:
            conns[-1].wait_closed(timeout=5)
        conns.append(r)
    t = f"tk/{uid()}"
    assert conns[-1].subscribe(1, [(t, 1)]).granted == [1]
    conns[-1].publish(t, b"last", qos=1, pid=2)
    assert conns[-1].expect(PUBLISH).payload == b"last"


# ---- redelivery of unacknowledged messages ------------------------------------------------

def _raw_persistent_sub(raw, cid, t, qos):
    r = raw()
    ack = r.connect(cid, clean=False)
    assert ack.rc == 0
    assert r.subscribe(1, [(t, qos)]).granted == [qos]
    return r


def test_unacked_qos1_resent_with_dup_after_reconnect(broker, client, raw):
    """[MQTT-4.4.0-1]: unacknowledged PUBLISH re-sent on reconnect, same packet id, DUP=1
    [MQTT-3.3.1-1]."""
    cid = uid("dup")
    t = f"dup/{uid()}"
    r = _raw_persistent_sub(raw, cid, t, 1)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"ack me", qos=1)
    first = r.expect(PUBLISH)
    assert (first.payload, first.qos, first.dup) == (b"ack me", 1, False)
    r.close()  # no PUBACK

    r2 = raw()
    ack = r2.connect(cid, clean=False)
    assert (ack.rc, ack.session_present) == (0, True)
    again = r2.expect(PUBLISH)
    assert (again.topic, again.payload, again.qos) == (t, b"ack me", 1)
    assert again.dup, "redelivered PUBLISH must have DUP=1"
    assert again.pid == first.pid
    r2.send(puback(again.pid))
    r2.expect_no_packet()
    r2.close()
    # acknowledged now: a third connection gets nothing
    r3 = raw()
    assert r3.connect(cid, clean=False).session_present
    r3.expect_no_packet()


def test_unacked_qos2_publish_resent_with_dup(broker, client, raw):
    cid = uid("dup")
    t = f"dup/{uid()}"
    r = _raw_persistent_sub(raw, cid, t, 2)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"q2", qos=2)
    first = r.expect(PUBLISH)
    assert (first.qos, first.dup) == (2, False)
    r.close()  # no PUBREC
    r2 = raw()
    assert r2.connect(cid, clean=False).session_present
    again = r2.expect(PUBLISH)
    assert (again.payload, again.qos, again.dup, again.pid) == (b"q2", 2, True, first.pid)
    r2.send(pubrec(again.pid))
    rel = r2.expect(PUBREL)
    assert rel.pid == first.pid
    r2.send(pubcomp(rel.pid))
    r2.expect_no_packet()


def test_pubrel_resent_after_reconnect(broker, client, raw):
    """QoS 2 to a subscriber that sent PUBREC but never got to PUBCOMP: on reconnect the broker
    re-sends PUBREL (not the PUBLISH) [MQTT-4.4.0-1]."""
    cid = uid("rel")
    t = f"rel/{uid()}"
    r = _raw_persistent_sub(raw, cid, t, 2)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"half done", qos=2)
    p = r.expect(PUBLISH)
    r.send(pubrec(p.pid))
    assert r.expect(PUBREL).pid == p.pid
    r.close()  # no PUBCOMP
    r2 = raw()
    assert r2.connect(cid, clean=False).session_present
    rel = r2.expect(PUBREL)
    assert rel.pid == p.pid and rel.flags == 0x02
    r2.send(pubcomp(rel.pid))
    r2.expect_no_packet()


def test_unacked_messages_resent_in_order(broker, client, raw):
    cid = uid("ord")
    t = f"ord/{uid()}"
    r = _raw_persistent_sub(raw, cid, t, 1)
    pub = client(uid("pub"))
    pub.connect()
    for i in range(5):
        pub.publish(t, str(i).encode(), qos=1)
    first = [r.expect(PUBLISH) for _ in range(5)]
    assert [p.payload for p in first] == [b"0", b"1", b"2", b"3", b"4"]
    r.send(puback(first[0].pid))
    r.send(puback(first[2].pid))
    r.close()
    r2 = raw()
    assert r2.connect(cid, clean=False).session_present
    again = [r2.expect(PUBLISH) for _ in range(3)]
    assert [(p.payload, p.dup) for p in again] == [(b"1", True), (b"3", True), (b"4", True)]
    for p in again:
        r2.send(puback(p.pid))
    r2.expect_no_packet()
