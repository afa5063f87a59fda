"""Graceful stop of one node on SIGTERM: /readyz turns 503 and the MQTT port stops accepting at
once, clients are disconnected without their wills, the process exits 0; and a stop that takes
longer than node.shutdown_grace ends the process anyway (exit 1). meshmq only.

The 3-node part (peers told, routes withdrawn at once, the rest keep serving) is in
test_cluster_ops.py.
"""

import signal
import socket
import time

import pytest

from harness import HOST, WAIT, connect_pkt, port_accepts, subscribe_pkt, uid

pytestmark = [pytest.mark.meshmq_only("meshmq's shutdown"), pytest.mark.timeout(60)]


def _stuck_subscriber(port: int, topic: str) -> socket.socket:
    """A subscriber that never reads, with a tiny receive window, so that the broker holds unsent
    output for it: closing it at shutdown then lingers (up to 2 s) instead of being instant."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(WAIT)
    s.connect((HOST, port))
    s.sendall(connect_pkt(uid("stuck")) + subscribe_pkt(1, [(topic, 0)]))
    # CONNACK (4 bytes) and SUBACK (5): the subscription is in place before the flood starts,
    # rather than after a fixed sleep, which left to timing whether the broker had anything to
    # flush when it was stopped.
    got = b""
    while len(got) < 9:
        chunk = s.recv(9 - len(got))
        assert chunk, f"broker closed the stuck subscriber after {got.hex()}"
        got += chunk
    assert got[0] == 0x20 and got[3] == 0 and got[4] == 0x90, got.hex()
    return s


def _flood(client, topic: str, nbytes: int):
    pub = client(uid("flood"))
    pub.connect()
    chunk = b"x" * 65536
    for _ in range(nbytes // len(chunk)):
        pub.publish(topic, chunk, qos=0)
    # A QoS 1 round trip after the flood: the broker has handled every publish before it.
    pub.publish("flood/done", b"", qos=1)
    return pub


def test_sigterm_stops_accepting_turns_unready_and_exits_cleanly(broker, client):
    will_watch = client(uid("ww"))
    will_watch.connect()
    will_watch.subscribe("wills/#", 1)
    victim = client(uid("victim")).will("wills/victim", b"gone", qos=1)
    victim.connect()
    topic = f"stuck/{uid()}"
    stuck = _stuck_subscriber(broker.port, topic)
    _flood(client, topic, 16 * 1024 * 1024)
    assert broker.http("/readyz")[0] == 200

    started = time.monotonic()
    broker.proc.send_signal(signal.SIGTERM)
    # While the stuck connection lingers: not ready, and no new MQTT connections.
    status, _, body = broker.http("/readyz")
    while status == 200 and time.monotonic() - started < 1:  # the signal is handled
        status, _, body = broker.http("/readyz")
    assert status == 503 and b"stopping" in body
    assert not port_accepts(broker.port)
    assert broker.http("/healthz")[0] == 200
    victim.wait_disconnected()
    assert broker.proc.wait(10) == 0
    assert time.monotonic() - started < 5
    will_watch.expect_no_message(within=0.3)  # shutdown is not the client's fault: no will
    stuck.close()
    log = broker.log_path.read_text()
    assert "stopping within" in log and "stopped" in log


@pytest.mark.broker_opts(**{"node.shutdown_grace": 1})
def test_stop_longer_than_the_grace_period_exits_anyway(broker, client):
    topic = f"stuck/{uid()}"
    stuck = _stuck_subscriber(broker.port, topic)
    _flood(client, topic, 16 * 1024 * 1024)
    started = time.monotonic()
    broker.proc.send_signal(signal.SIGTERM)
    code = broker.proc.wait(10)
    elapsed = time.monotonic() - started
    stuck.close()
    assert code == 1 and 0.9 < elapsed < 1.9, (code, elapsed)
    assert "longer than node.shutdown_grace" in broker.log_path.read_text()
    broker.started = False  # the fixture's own stop check expects exit code 0
