"""Will messages: published when the connection ends without DISCONNECT (socket drop, killed
client, keepalive timeout, protocol error, takeover), not after a clean DISCONNECT; will QoS and
retain honoured.

MQTT 3.1.1 sections 3.1.2.5-3.1.2.7, 3.14.4.
"""

import os
import signal
import time

import pytest

from harness import DISCONNECT_PKT, QUIET, MosquittoSub, connect_pkt, uid


def _watcher(client, topic, qos=2):
    w = client(uid("watch"))
    w.connect()
    w.subscribe(topic, qos)
    return w


def _assert_no_will(client, watcher, will_topic):
    """After the will's connection is gone: a sentinel from another client arrives, and no will
    came before it nor within a short quiet period after it."""
    sentinel = will_topic + "/sentinel"
    watcher.subscribe(sentinel, 1)
    p = client(uid("sent"))
    p.connect()
    p.publish(sentinel, b"", qos=1)
    assert watcher.messages_until(sentinel) == []
    watcher.expect_no_message(QUIET)


def test_will_on_raw_socket_close(broker, client, raw):
    t = f"will/{uid()}"
    w = _watcher(client, t)
    r = raw()
    assert r.connect(uid("dies"), will=(t, b"gone", 1, False)).rc == 0
    r.close()  # FIN without DISCONNECT
    m = w.expect_message()
    assert (m.topic, m.payload, m.qos, m.retain) == (t, b"gone", 1, False)
    w.expect_no_message()


def test_will_on_connection_reset(broker, client, raw):
    t = f"will/{uid()}"
    w = _watcher(client, t)
    r = raw()
    assert r.connect(uid("rst"), will=(t, b"reset", 0, False)).rc == 0
    r.abort()  # RST
    m = w.expect_message()
    assert (m.payload, m.qos) == (b"reset", 0)


def test_will_on_killed_client_process(broker, client):
    """mosquitto_sub with a will, killed with SIGKILL: the kernel closes its socket."""
    t = f"will/{uid()}"
    w = _watcher(client, t)
    victim = MosquittoSub(broker.port, f"unused/{uid()}", extra=[
        "--will-topic", t, "--will-payload", "killed", "--will-qos", "2"])
    victim.start()
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(5)
    m = w.expect_message()
    assert (m.topic, m.payload, m.qos) == (t, b"killed", 2)


def test_will_on_paho_socket_drop(broker, client):
    t = f"will/{uid()}"
    w = _watcher(client, t, qos=1)
    v = client(uid("victim"))
    v.will(t, b"paho dropped", qos=2)
    v.connect()
    v.abort()
    m = w.expect_message()
    assert (m.payload, m.qos) == (b"paho dropped", 1)  # min(will QoS 2, subscription QoS 1)


@pytest.mark.timeout(20)
def test_will_on_keepalive_timeout(broker, client, raw):
    """Keepalive 1 s and silence: cut after 1.5 s, will published [MQTT-3.1.2-24]. (The exact cut
    window is checked in test_keepalive.py; the bound here is loose: mosquitto takes up to ~5.5 s.)"""
    t = f"will/{uid()}"
    w = _watcher(client, t)
    r = raw()
    t0 = time.monotonic()
    assert r.connect(uid("silent"), keepalive=1, will=(t, b"timed out", 1, False)).rc == 0
    m = w.expect_message(timeout=9)
    elapsed = time.monotonic() - t0
    assert m.payload == b"timed out"
    assert elapsed >= 1.4, f"will after {elapsed:.2f}s, before 1.5 x keepalive"
    r.wait_closed(timeout=2)


@pytest.mark.parametrize("garbage", [
    bytes([0x00, 0x00]),                     # reserved packet type 0
    bytes([0xF0, 0x00]),                     # reserved packet type 15
    pytest.param(connect_pkt("second"), marks=pytest.mark.mosquitto_differs(
        "mosquitto 2.0.11 closes on a second CONNECT but drops the will")),  # [MQTT-3.1.0-2]
    bytes([0x82, 0x02, 0x00, 0x01]),         # SUBSCRIBE without any filter
    # not MQTT: 'G' = PUBACK with reserved flags 0x7 and remaining length 69 [MQTT-2.2.2-2]
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 200, marks=pytest.mark.mosquitto_differs(
        "mosquitto 2.0.11 ignores reserved flags and extra bytes in PUBACK/PUBCOMP")),
], ids=["type0", "type15", "second-connect", "empty-subscribe", "http"])
def test_will_on_protocol_error(broker, client, raw, garbage):
    t = f"will/{uid()}"
    w = _watcher(client, t)
    r = raw()
    assert r.connect(uid("garbage"), will=(t, b"protocol error", 1, False)).rc == 0
    r.send(garbage)
    r.wait_closed(timeout=5)
    m = w.expect_message()
    assert m.payload == b"protocol error"
    broker.assert_serves()


def test_will_on_takeover(broker, client, raw):
    """A second CONNECT with the same client id closes the first connection [MQTT-3.1.4-2]; that
    connection ended without DISCONNECT, so its will is published."""
    t = f"will/{uid()}"
    cid = uid("dup")
    w = _watcher(client, t)
    first = raw()
    assert first.connect(cid, will=(t, b"taken over", 1, False)).rc == 0
    second = raw()
    assert second.connect(cid).rc == 0
    first.wait_closed(timeout=5)
    m = w.expect_message()
    assert m.payload == b"taken over"
    # the new connection has no will: dropping it publishes nothing
    second.close()
    _assert_no_will(client, w, t)


def test_no_will_after_clean_disconnect_raw(broker, client, raw):
    """DISCONNECT discards the will [MQTT-3.1.2-10, MQTT-3.14.4-3]."""
    t = f"will/{uid()}"
    w = _watcher(client, t)
    r = raw()
    assert r.connect(uid("polite"), will=(t, b"must not appear", 1, True)).rc == 0
    r.send(DISCONNECT_PKT)
    r.wait_closed(timeout=5)  # the broker closes after DISCONNECT: it has processed it
    _assert_no_will(client, w, t)
    # nor was it retained
    late = client(uid("late"))
    late.connect()
    late.subscribe([(t, 1), (t + "/sentinel2", 1)])
    late.publish(t + "/sentinel2", b"", qos=1)
    assert late.messages_until(t + "/sentinel2") == []


def test_no_will_after_clean_disconnect_paho(broker, client):
    t = f"will/{uid()}"
    w = _watcher(client, t)
    v = client(uid("polite"))
    v.will(t, b"must not appear", qos=1)
    v.connect()
    v.disconnect()
    _assert_no_will(client, w, t)


def test_will_retain_honoured(broker, client, raw):
    """A will with RETAIN=1 is stored as a retained message; live subscribers get RETAIN=0."""
    t = f"will/{uid()}"
    w = _watcher(client, t)
    r = raw()
    assert r.connect(uid("retwill"), will=(t, b"last words", 1, True)).rc == 0
    r.close()
    live = w.expect_message()
    assert (live.payload, live.retain) == (b"last words", False)
    late = client(uid("late"))
    late.connect()
    late.subscribe(t, 2)
    m = late.expect_message()
    assert (m.topic, m.payload, m.retain, m.qos) == (t, b"last words", True, 1)


def test_will_not_retained_without_flag(broker, client, raw):
    t = f"will/{uid()}"
    w = _watcher(client, t)
    r = raw()
    assert r.connect(uid("noret"), will=(t, b"not kept", 1, False)).rc == 0
    r.close()
    assert w.expect_message().payload == b"not kept"
    late = client(uid("late"))
    late.connect()
    late.subscribe([(t, 1), (t + "/s", 1)])
    late.publish(t + "/s", b"", qos=1)
    assert late.messages_until(t + "/s") == []


def test_will_with_empty_payload_and_qos2(broker, client, raw):
    t = f"will/{uid()}"
    w = _watcher(client, t, qos=2)
    r = raw()
    assert r.connect(uid("empty"), will=(t, b"", 2, False)).rc == 0
    r.close()
    m = w.expect_message()
    assert (m.topic, m.payload, m.qos) == (t, b"", 2)
