"""Persistence (storage.backend=rocksdb, the default): what the broker acknowledged survives a
restart, both a clean one (SIGTERM) and kill -9. Persistent sessions come back with
session-present=1, their queued messages in order, unacknowledged messages resent with DUP=1,
inbound QoS 2 packet ids still held; retained messages are intact; expired sessions are purged.

The bounded kill -9 loop is test_crash_loop.py.
"""

import time

import pytest

from harness import PUBCOMP, PUBLISH, PUBREC, PUBREL, publish_pkt, pubrec, pubrel, uid

pytestmark = pytest.mark.meshmq_only("meshmq's storage keys and restarts on the same data dir")

RESTARTS = [pytest.param(False, id="sigterm"), pytest.param(True, id="kill9")]


def _offline_subscriber(broker, cid, flt, qos):
    c = broker.client(cid, clean_session=False)
    c.connect()
    c.subscribe(flt, qos)
    c.disconnect()


@pytest.mark.parametrize("crash", RESTARTS)
def test_queued_messages_and_retained_survive_restart(broker, crash):
    topic = f"persist/{uid()}"
    s2, s1 = uid("q2"), uid("q1")
    _offline_subscriber(broker, s2, f"{topic}/#", 2)
    _offline_subscriber(broker, s1, f"{topic}/#", 1)
    with broker.client(uid("pub")) as pub:
        pub.connect()
        mids = [pub.publish(f"{topic}/{i}", f"m{i}".encode(), qos=1 + i % 2, wait=False)
                for i in range(30)]
        pub.wait_published(mids)
        pub.publish(f"{topic}/keep", b"retained!", qos=1, retain=True)
        pub.disconnect()

    broker.restart(crash=crash)

    for cid, sub_qos in ((s2, 2), (s1, 1)):
        with broker.client(cid, clean_session=False) as c:
            assert c.connect() == (0, True), "session-present must be 1 after the restart"
            got = c.expect_messages(31)
            c.expect_no_message()
            c.disconnect()
        # paho hands a QoS 2 message to the application only at PUBREL, later than the QoS 1
        # messages sent after it, so order is checked per delivered QoS.
        expected = {f"m{i}".encode(): min(1 + i % 2, sub_qos) for i in range(30)}
        expected[b"retained!"] = 1
        assert sorted(m.payload for m in got) == sorted(expected)
        assert all(m.qos == expected[m.payload] for m in got)
        for q in (1, 2):
            assert [m.payload for m in got if m.qos == q] == [p for p in expected
                                                              if expected[p] == q]
    with broker.client(uid("late")) as late:
        late.connect()
        late.subscribe(f"{topic}/#", 1)
        m = late.expect_message()
        assert (m.topic, m.payload, m.retain) == (f"{topic}/keep", b"retained!", True)
    broker.assert_serves()


@pytest.mark.parametrize("crash", RESTARTS)
def test_unacknowledged_messages_are_resent_with_dup(broker, raw, crash):
    cid, topic = uid("dup"), f"dup/{uid()}"
    r = raw()
    assert r.connect(cid, clean=False).rc == 0
    assert r.subscribe(1, [(topic, 2)]).granted == [2]
    with broker.client(uid("pub")) as pub:
        pub.connect()
        pub.publish(topic, b"one", qos=1)
        pub.publish(topic, b"two", qos=2)
    first = r.expect(PUBLISH)
    second = r.expect(PUBLISH)
    assert (first.payload, second.payload) == (b"one", b"two")
    r.send(pubrec(second.pid))
    r.expect(PUBREL)
    time.sleep(0.1)  # the PUBREC reaches the store's next commit window (2 ms by default)
    r.abort()

    broker.restart(crash=crash)

    r = broker.raw()
    ack = r.connect(cid, clean=False)
    assert (ack.rc, ack.session_present) == (0, True)
    again = r.expect(PUBLISH)
    assert (again.payload, again.dup, again.pid) == (b"one", True, first.pid)
    rel = r.expect(PUBREL)
    assert rel.pid == second.pid
    r.close()


@pytest.mark.parametrize("crash", RESTARTS)
def test_inbound_qos2_id_held_across_restart(broker, raw, crash):
    cid, topic = uid("in2"), f"in2/{uid()}"
    with broker.client(uid("sub"), clean_session=False) as sub:
        sub.connect()
        sub.subscribe(topic, 2)
        sub.disconnect()
    sub_id = sub.client_id
    r = raw()
    r.connect(cid, clean=False)
    r.send(publish_pkt(topic, b"exactly once", qos=2, pid=5))
    assert r.wait_for(PUBREC, 5).pid == 5
    r.abort()

    broker.restart(crash=crash)

    r = broker.raw()
    assert r.connect(cid, clean=False).session_present
    r.send(publish_pkt(topic, b"exactly once", qos=2, pid=5, dup=True))  # the sender's resend
    assert r.wait_for(PUBREC, 5).pid == 5
    r.send(pubrel(5))
    assert r.wait_for(PUBCOMP, 5).pid == 5
    r.close()
    with broker.client(sub_id, clean_session=False) as sub:
        assert sub.connect() == (0, True)
        assert sub.expect_message().payload == b"exactly once"
        sub.expect_no_message()


@pytest.mark.broker_opts(**{"mqtt.session_expiry": 2})
def test_expired_sessions_are_purged_at_start(broker):
    keep, gone = uid("keep"), uid("gone")
    _offline_subscriber(broker, gone, "exp/#", 1)
    broker.stop()
    time.sleep(2.5)  # offline longer than mqtt.session_expiry while the broker was down
    broker.opts["mqtt.session_expiry"] = "1h"
    broker.start()
    with broker.client(gone, clean_session=False) as c:
        assert c.connect() == (0, False)
    log = broker.log_path.read_text(errors="replace")
    assert "purged 1 expired" in log
    _offline_subscriber(broker, keep, "exp/#", 1)
    broker.restart(crash=True)
    with broker.client(keep, clean_session=False) as c:
        assert c.connect() == (0, True)


@pytest.mark.broker_opts(**{"mqtt.retained_max_age": 1})
def test_expired_retained_messages_are_purged_at_start(broker):
    with broker.client(uid("pub")) as pub:
        pub.connect()
        pub.publish("ret/old", b"stale", qos=1, retain=True)
    broker.stop()
    time.sleep(1.2)
    broker.start()
    assert "loaded 0 retained messages, purged 1 expired" in broker.log_path.read_text(
        errors="replace")


@pytest.mark.broker_opts(**{"storage.backend": "memory"})
def test_memory_backend_keeps_nothing(broker):
    cid = uid("mem")
    _offline_subscriber(broker, cid, "mem/#", 1)
    broker.restart()
    with broker.client(cid, clean_session=False) as c:
        assert c.connect() == (0, False)
    assert not (broker.data_dir / "rocksdb").exists()


@pytest.mark.parametrize("sync", ["always", "none"])
def test_other_sync_modes_survive_kill9(broker_factory, sync):
    """none still survives kill -9 (the WAL is in the page cache); only power loss differs."""
    b = broker_factory({"storage.sync": sync})
    cid, topic = uid("sync"), f"sync/{uid()}"
    _offline_subscriber(b, cid, topic, 1)
    with b.client(uid("pub")) as pub:
        pub.connect()
        for i in range(5):
            pub.publish(topic, f"s{i}".encode(), qos=1)
    b.restart(crash=True)
    with b.client(cid, clean_session=False) as c:
        assert c.connect() == (0, True)
        assert [m.payload for m in c.expect_messages(5)] == [f"s{i}".encode() for i in range(5)]
