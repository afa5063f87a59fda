"""Malformed and hostile input over raw sockets. Each case: the broker closes the offending
connection (at most with a refusing CONNACK first), stays alive, and keeps serving other clients.

MQTT 3.1.1 sections 1.5.3, 2.2, 2.3.1, 3.1, 3.3, 3.8, 3.10, 4.8.
"""

import random
import struct
import time

import pytest

from harness import (CONNACK, PINGREQ_PKT, SUBACK, Closed, Timeout, connect_pkt, mstr, packet,
                     publish_pkt, subscribe_pkt, unsubscribe_pkt, uid)


def _rejected(broker, raw, data, connect_first=True, timeout=5.0, connack_rc=None):
    """Send `data` (after a successful CONNECT if connect_first) and expect the connection to be
    closed. Before CONNECT only a refusing CONNACK may come back (its rc is returned)."""
    r = raw()
    if connect_first:
        assert r.connect(uid("bad")).rc == 0
    r.try_send(data)
    _, got = r.wait_closed(timeout, allow=(CONNACK,) if not connect_first else ())
    rc = None
    if got:
        assert len(got) == 1 and got[0].type == CONNACK
        rc = got[0].rc
        assert rc != 0, "a CONNACK accepting the bad CONNECT"
    if connack_rc is not None:
        assert rc == connack_rc, f"expected CONNACK {connack_rc:#x} before the close, got {rc}"
    broker.assert_serves()
    return rc


# ---- after a valid CONNECT ----------------------------------------------------------------

def _sub_body(pid, flt, qos_byte):
    return struct.pack("!H", pid) + mstr(flt) + bytes([qos_byte])


AFTER_CONNECT = {
    "remaining-length-5-bytes": b"\x30\xff\xff\xff\xff\x01",
    "second-connect": connect_pkt("again"),
    "reserved-type-0": b"\x00\x00",
    "reserved-type-15": b"\xf0\x00",
    "publish-qos3": publish_pkt("t", b"x", qos=3, pid=1),
    "publish-qos1-pid0": publish_pkt("t", b"x", qos=1, pid=0),
    "publish-qos2-pid0": publish_pkt("t", b"x", qos=2, pid=0),
    "publish-topic-invalid-utf8": publish_pkt(b"bad/\xff\xfe", b"x"),
    "publish-topic-utf16-surrogate": publish_pkt(b"bad/\xed\xa0\x80", b"x"),
    "publish-topic-nul": publish_pkt(b"bad/\x00/x", b"x"),
    "publish-topic-empty": publish_pkt(b"", b"x"),
    "publish-topic-longer-than-packet": packet(3, 0, struct.pack("!H", 50) + b"abc"),
    "subscribe-empty": subscribe_pkt(1, []),
    "subscribe-flags-0": subscribe_pkt(1, [("a", 0)], header_flags=0),
    "subscribe-pid0": subscribe_pkt(0, [("a", 0)]),
    "subscribe-qos3": subscribe_pkt(1, [("a", 3)]),
    "subscribe-reserved-bits": packet(8, 2, _sub_body(1, "a", 0x41)),
    "subscribe-filter-invalid-utf8": subscribe_pkt(1, [(b"\xc0\xaf", 0)]),
    "subscribe-filter-empty": subscribe_pkt(1, [("", 0)]),
    "unsubscribe-empty": unsubscribe_pkt(1, []),
    "unsubscribe-flags-0": unsubscribe_pkt(1, ["a"], header_flags=0),
    "pubrel-flags-0": packet(6, 0, struct.pack("!H", 1)),
    "pingreq-with-body": packet(12, 0, b"\x00"),
    "connack-from-client": packet(2, 0, b"\x00\x00"),
    "suback-from-client": packet(9, 0, b"\x00\x01\x00"),
    "pubcomp-length-1": packet(7, 0, b"\x00"),
}
MOSQUITTO_TOLERATES = {
    "pingreq-with-body": "mosquitto 2.0.11 answers a PINGREQ with remaining length 1",
    "suback-from-client": "mosquitto 2.0.11 ignores a SUBACK sent by a client",
}


def _params(table, differs):
    out = []
    for name, data in table.items():
        marks = [pytest.mark.mosquitto_differs(differs[name])] if name in differs else []
        out.append(pytest.param(data, id=name, marks=marks))
    return out


@pytest.mark.parametrize("data", _params(AFTER_CONNECT, MOSQUITTO_TOLERATES))
def test_bad_packet_after_connect_closes(broker, raw, data):
    _rejected(broker, raw, data)


@pytest.mark.parametrize("data", [
    pytest.param(packet(4, 0x07, b"\x00\x01"), id="puback-reserved-flags"),
    pytest.param(packet(4, 0, b"\x00\x01\x00"), id="puback-length-3"),
])
@pytest.mark.mosquitto_differs("mosquitto 2.0.11 ignores reserved flags and wrong lengths of acks")
def test_bad_ack_after_connect_closes(broker, raw, data):
    """Reserved flags must be as specified [MQTT-2.2.2-2]; ack packets have remaining length 2."""
    r = raw()
    assert r.connect(uid("bad")).rc == 0
    r.try_send(data)
    r.wait_closed(timeout=3)
    broker.assert_serves()


@pytest.mark.parametrize("flt", ["a/#/b", "a/b#", "a+/b", "#/a", "a/+b", "++"])
def test_invalid_topic_filter(broker, client, raw, flt):
    """An invalid filter is refused: the connection is closed, or SUBACK 0x80 (failure). Either
    way no subscription exists and other clients are unaffected."""
    r = raw()
    assert r.connect(uid("badflt")).rc == 0
    r.send(subscribe_pkt(1, [(flt, 1)]))
    try:
        p = r.recv_packet(5)
    except Closed:
        pass
    else:
        assert p.type == SUBACK and p.granted == [0x80], p
    broker.assert_serves()


# ---- before / instead of CONNECT --------------------------------------------------------

BEFORE_CONNECT = {
    "pingreq-first": PINGREQ_PKT,
    "publish-first": publish_pkt("t", b"x"),
    "subscribe-first": subscribe_pkt(1, [("a", 0)]),
    "remaining-length-5-bytes-first": b"\x10\xff\xff\xff\xff\x01",
    "reserved-type-0-first": b"\x00\x00",
    "connect-reserved-flag": connect_pkt("x", flags=0x03),               # [MQTT-3.1.2-3]
    "connect-header-flags": connect_pkt("x", header_flags=0x01),          # [MQTT-2.2.2-2]
    "connect-will-qos-without-will": connect_pkt("x", flags=0x0A),        # [MQTT-3.1.2-13]
    "connect-will-retain-without-will": connect_pkt("x", flags=0x22),     # [MQTT-3.1.2-15]
    "connect-will-qos3": connect_pkt("x", will=("w", b"", 3, False)),     # [MQTT-3.1.2-14]
    "connect-password-without-username": connect_pkt("x", password="pw"),  # [MQTT-3.1.2-22]
    "connect-truncated-payload": packet(1, 0, mstr("MQTT") + b"\x04\x02\x00\x3c"),
    "connect-bad-protocol-name": connect_pkt("x", proto_name=b"MQTX"),    # [MQTT-3.1.2-1]
    "connect-protocol-name-wrong-case": connect_pkt("x", proto_name=b"mqtt"),
    "connect-client-id-invalid-utf8": connect_pkt(b"\xff\xfe"),
    "http-request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 64,
}


@pytest.mark.parametrize("data", _params(BEFORE_CONNECT, {}))
def test_bad_first_packet_closes(broker, raw, data):
    _rejected(broker, raw, data, connect_first=False)


@pytest.mark.parametrize("level", [0, 2, 6, 7, 255])
def test_unsupported_protocol_level_connack_1_then_close(broker, raw, level):
    """[MQTT-3.1.2-2]: CONNACK 0x01 (unacceptable protocol level), then disconnect."""
    _rejected(broker, raw, connect_pkt(uid("lvl"), proto_level=level), connect_first=False,
              connack_rc=0x01)


@pytest.mark.meshmq_only("meshmq is an MQTT 3.1/3.1.1 broker; mosquitto also speaks MQTT 5")
def test_mqtt5_level_refused(broker, raw):
    _rejected(broker, raw, connect_pkt(uid("v5"), proto_level=5), connect_first=False,
              connack_rc=0x01)


# ---- limits ----------------------------------------------------------------------------

@pytest.mark.broker_opts(**{"mqtt.max_packet_size": 1024})
def test_oversized_publish_closes(broker, client, raw):
    t = f"big/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(t, 1)
    r = raw()
    assert r.connect(uid("big")).rc == 0
    r.publish(t, b"s" * 900, qos=1, pid=1)           # within the limit: accepted and delivered
    assert sub.expect_message().payload == b"s" * 900
    r.try_send(publish_pkt(t, b"L" * 2000, qos=1, pid=2))
    r.wait_closed(timeout=5)
    sub.expect_no_message()
    broker.assert_serves()


@pytest.mark.broker_opts(**{"mqtt.max_packet_size": 1024})
def test_oversized_length_rejected_before_body(broker, raw):
    """A header announcing more than max_packet_size is refused at once, without waiting for (or
    buffering) the body."""
    r = raw()
    assert r.connect(uid("big")).rc == 0
    r.send(b"\x30" + b"\xff\xff\x3f")  # PUBLISH, remaining length 1 MiB - 1, no body
    elapsed, _ = r.wait_closed(timeout=3)
    assert elapsed < 2.5
    broker.assert_serves()


@pytest.mark.broker_opts(**{"mqtt.max_packet_size": 1024})
def test_oversized_connect_closes(broker, raw):
    _rejected(broker, raw, connect_pkt("x" * 2000), connect_first=False)


@pytest.mark.meshmq_only("--mqtt.connect_timeout is a meshmq flag (mosquitto has no equivalent)")
@pytest.mark.broker_opts(**{"mqtt.connect_timeout": 2})
@pytest.mark.parametrize("sent", [b"", b"\x10\x20\x00\x04MQ"], ids=["nothing", "partial-connect"])
def test_connect_never_arrives(broker, raw, sent):
    r = raw()
    t0 = time.monotonic()
    if sent:
        r.send(sent)
    r.wait_closed(timeout=6)
    elapsed = time.monotonic() - t0
    assert 1.9 <= elapsed <= 3.5, f"closed after {elapsed:.2f}s with connect_timeout=2"
    broker.assert_serves()


# ---- abuse that is not a protocol error of a live connection ------------------------------

def test_garbage_flood(broker, raw):
    rnd = random.Random(1234)
    data = b"\x00" + bytes(rnd.getrandbits(8) for _ in range(64 * 1024))
    r = raw()
    r.try_send(data)
    r.wait_closed(timeout=5)
    broker.assert_serves()


def test_truncated_packet_then_client_closes(broker, raw):
    r = raw()
    assert r.connect(uid("trunc")).rc == 0
    r.send(publish_pkt("t", b"x" * 100, qos=1, pid=1)[:50])
    r.close()
    broker.assert_serves()


def test_connection_churn(broker, raw):
    """300 connections opened and dropped in every way; the broker stays up."""
    for i in range(100):
        raw().close()                                   # no data
    for i in range(100):
        r = raw()
        r.try_send(connect_pkt(uid("churn"))[:7])       # half a CONNECT, then RST
        r.abort()
    for i in range(100):
        r = raw()
        r.send(connect_pkt(uid("churn")))               # full CONNECT, close without reading
        r.close()
    broker.assert_serves()


def test_many_concurrent_bad_connections(broker, raw, client):
    """50 idle sockets that never send CONNECT do not stop others from being served."""
    idle = [raw() for _ in range(50)]
    broker.assert_serves()
    for r in idle:
        r.close()
    broker.assert_serves()
