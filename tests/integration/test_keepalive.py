"""Keepalive: a silent client is cut after 1.5 x keepalive [MQTT-3.1.2-24]; keepalive 0 disables
the cut; PINGREQ (or any other packet) keeps the connection [MQTT-3.12.4-1].

Timing window asserted: 1.5*K <= cut <= 1.5*K + 1 s, measured with time.monotonic() from just
before the CONNECT is sent (so the measurement can only be longer than the broker's own timer).
"""

import time

import pytest

from harness import PINGREQ_PKT, PINGRESP, PUBACK, publish_pkt, uid


@pytest.mark.timeout(20)
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.mosquitto_differs("mosquitto 2.0.11 checks keepalives coarsely: K=1 is cut after "
                               "~4.5-5.5 s, K=2 after 3.5-4.4 s, K=3 after ~9 s")
def test_silent_client_cut_within_window(broker, raw, k):
    r = raw()
    t0 = time.monotonic()
    ack = r.connect(uid("silent"), keepalive=k)
    assert ack.rc == 0
    elapsed, got = r.wait_closed(timeout=1.5 * k + 5)
    elapsed = time.monotonic() - t0
    assert got == []
    assert 1.5 * k <= elapsed <= 1.5 * k + 1.0, f"cut after {elapsed:.2f}s with keepalive {k}"
    broker.assert_serves()


@pytest.mark.timeout(20)
def test_silent_client_is_cut_eventually(broker, raw):
    """Loose version of the window test that holds for the mosquitto stand-in too."""
    r = raw()
    t0 = time.monotonic()
    assert r.connect(uid("silent"), keepalive=2).rc == 0
    r.wait_closed(timeout=10)
    assert time.monotonic() - t0 >= 3.0


@pytest.mark.timeout(20)
def test_keepalive_zero_never_cut(broker, raw):
    r = raw()
    assert r.connect(uid("forever"), keepalive=0).rc == 0
    r.expect_no_packet(5.0)  # raises Closed if the broker cut the connection
    r.send(PINGREQ_PKT)
    assert r.expect(PINGRESP, timeout=2).body == b""


@pytest.mark.timeout(20)
def test_pingreq_keeps_connection(broker, raw):
    """K=2: a PINGREQ every second for 5 s (well past 1.5*K); each answered with PINGRESP."""
    r = raw()
    assert r.connect(uid("pinger"), keepalive=2).rc == 0
    end = time.monotonic() + 5.0
    n = 0
    while time.monotonic() < end:
        t_send = time.monotonic()
        r.send(PINGREQ_PKT)
        r.expect(PINGRESP, timeout=1.0)
        n += 1
        r.expect_no_packet(max(0.0, 1.0 - (time.monotonic() - t_send)))
    assert n >= 5
    r.send(PINGREQ_PKT)
    r.expect(PINGRESP, timeout=1.0)


@pytest.mark.timeout(20)
def test_other_packets_keep_connection(broker, raw):
    """K=2: a QoS 1 PUBLISH every second (no PINGREQ) also counts as activity."""
    r = raw()
    assert r.connect(uid("busy"), keepalive=2).rc == 0
    t = f"ka/{uid()}"
    end = time.monotonic() + 5.0
    pid = 0
    while time.monotonic() < end:
        pid += 1
        t_send = time.monotonic()
        r.send(publish_pkt(t, b"tick", qos=1, pid=pid))
        assert r.expect(PUBACK, timeout=1.0).pid == pid
        r.expect_no_packet(max(0.0, 1.0 - (time.monotonic() - t_send)))
    r.send(PINGREQ_PKT)
    r.expect(PINGRESP, timeout=1.0)


@pytest.mark.timeout(20)
def test_paho_client_keeps_connection_with_pings(broker, client):
    """paho with keepalive 1 pings by itself and stays connected for 3.5 s."""
    c = client(uid("paho"))
    c.connect(keepalive=1)
    assert not c.disconnected.wait(3.5)
    t = f"ka/{uid()}"
    c.subscribe(t, 1)
    c.publish(t, b"alive", qos=1)
    assert c.expect_message().payload == b"alive"
