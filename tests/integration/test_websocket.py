"""MQTT over WebSocket (MQTT 3.1.1 section 6): paho's websocket transport against TCP clients,
the upgrade (path, subprotocol echo, refusals), binary-only data, packets spanning frames or
sharing one, and hostile frames. After every bad input the broker keeps serving.
"""

import struct

import pytest

from harness import (CONNACK, FREE_PORT, PINGREQ_PKT, PINGRESP, PUBACK, PUBLISH, SUBACK, Client,
                     connect_pkt, publish_pkt, subscribe_pkt, uid)
from wsclient import BINARY, CLOSE, CONT, TEXT, RawWsClient, WsConn, open_socket, upgrade

pytestmark = [pytest.mark.meshmq_only("MQTT over WebSocket listener"),
              pytest.mark.broker_opts(**{"listeners.ws.port": FREE_PORT,
                                         "mqtt.max_packet_size": 4096})]


def ws_port(broker):
    return broker.ports["listeners.ws.port"]


@pytest.fixture
def ws(broker):
    """ws(client_id) -> harness.Client over WebSocket, closed at teardown."""
    made = []

    def make(client_id=None, **kw):
        c = Client(ws_port(broker), client_id or uid("ws"), transport="websockets", **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def raw_ws(broker):
    made = []

    def make(**kw):
        r = RawWsClient(ws_port(broker), **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


# ---- the same broker over WebSocket ---------------------------------------------------------

@pytest.mark.parametrize("qos", [0, 1, 2])
def test_websocket_and_tcp_clients_exchange_messages(broker, ws, client, qos):
    topic = f"ws/{uid('t')}"
    ws_sub, tcp_sub = ws(), client(uid("tcp"))
    ws_sub.connect()
    tcp_sub.connect()
    assert ws_sub.subscribe(topic, qos) == qos
    tcp_sub.subscribe(topic, qos)
    ws_pub, tcp_pub = ws(), client(uid("tcp"))
    ws_pub.connect()
    tcp_pub.connect()
    ws_pub.publish(topic, b"from websocket", qos=qos)
    tcp_pub.publish(topic, b"from tcp", qos=qos)
    for sub in (ws_sub, tcp_sub):
        got = sorted(m.payload for m in sub.expect_messages(2))
        assert got == [b"from tcp", b"from websocket"]


def test_websocket_session_retained_and_will(broker, ws, client):
    topic = f"ws/{uid('r')}"
    pub = client(uid("tcp"))
    pub.connect()
    pub.publish(topic + "/retained", b"kept", qos=1, retain=True)
    # A persistent session over WebSocket, resumed after a drop, with a will on the drop.
    watcher = client(uid("watch"))
    watcher.connect()
    watcher.subscribe(topic + "/will", 1)
    cid = uid("wsp")
    first = ws(cid, clean_session=False).will(topic + "/will", b"ws client gone", 1)
    first.connect()
    assert first.subscribe(topic + "/#", 1) == 1
    assert first.expect_message().payload == b"kept"
    first.abort()
    assert watcher.expect_message().payload == b"ws client gone"
    pub.publish(topic + "/queued", b"while offline", qos=1)
    again = ws(cid, clean_session=False)
    assert again.connect() == (0, True)
    # Its own will (it matches topic/#) and, if the drop beat paho's PUBACK, "kept" again.
    assert {m.payload for m in again.messages_until(topic + "/queued")} <= {b"kept", b"ws client gone"}


def test_handshake_echoes_the_offered_mqtt_subprotocol(broker):
    for offered, echoed in [("mqtt", "mqtt"), ("mqttv3.1", "mqttv3.1"),
                            ("mqttv3.1.1", "mqttv3.1.1"), ("chat, mqttv3.1 ,mqtt", "mqttv3.1")]:
        sock = open_socket(ws_port(broker))
        try:
            status, headers, _, _ = upgrade(sock, protocols=offered)
            assert status == 101, offered
            assert headers.get("sec-websocket-protocol") == echoed, (offered, headers)
        finally:
            sock.close()


# ---- refused upgrades -----------------------------------------------------------------------

@pytest.mark.parametrize("case,path,protocols,raw_request,status", [
    ("no-subprotocol", "/mqtt", None, None, 400),
    ("wrong-subprotocol", "/mqtt", "chat, mqttv5", None, 400),
    ("wrong-path", "/chat", "mqtt", None, 404),
    ("plain-get", None, None, b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", 426),
    ("not-http", None, None, b"\x10\x0c\x00\x04MQTT\x04\x02\x00<\x00\x00\r\n\r\n", 400),
    ("bad-websocket-key", None, None,
     b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n", 400),
])
def test_bad_handshake_is_refused(broker, case, path, protocols, raw_request, status):
    sock = open_socket(ws_port(broker))
    try:
        got, _, body, _ = upgrade(sock, path or "/mqtt", protocols, request=raw_request)
        assert got == status, (case, got, body)
        assert WsConn(sock).wait_closed(5) is None  # the connection ends after the refusal
    finally:
        sock.close()
    broker.assert_serves(case)


def test_refusal_is_logged_with_its_reason(broker):
    sock = open_socket(ws_port(broker))
    try:
        assert upgrade(sock, "/mqtt", "chat")[0] == 400
    finally:
        sock.close()
    broker.assert_serves()
    broker.wait_log("no MQTT subprotocol offered")


def test_silent_client_is_cut_by_the_connect_timeout(broker_factory):
    b = broker_factory({"listeners.ws.port": FREE_PORT, "mqtt.connect_timeout": 1})
    sock = open_socket(ws_port(b))  # never sends the upgrade request
    try:
        assert WsConn(sock).wait_closed(5) is None
    finally:
        sock.close()
    b.assert_serves()


# ---- framing --------------------------------------------------------------------------------

def test_packet_spanning_frames_and_fragments(broker, raw_ws):
    r = raw_ws()
    pkt = connect_pkt(uid("span"))
    # Three separate binary messages, then a fragmented message (binary + continuation).
    for piece in (pkt[:1], pkt[1:3], pkt[3:]):
        r.ws.send_frame(BINARY, piece)
    assert r.expect(CONNACK).rc == 0
    sub = subscribe_pkt(1, [("span/t", 1)])
    r.ws.send_frame(BINARY, sub[:4], fin=False)
    r.ws.send_frame(CONT, sub[4:7], fin=False)
    r.ws.send_frame(CONT, sub[7:], fin=True)
    assert r.expect(SUBACK).pid == 1


def test_several_packets_in_one_frame(broker, raw_ws):
    r = raw_ws()
    cid = uid("pack")
    r.send(connect_pkt(cid) + subscribe_pkt(1, [("pack/t", 1)]) +
           publish_pkt("pack/t", b"one frame", qos=1, pid=7) + PINGREQ_PKT)
    assert r.expect(CONNACK).rc == 0
    assert r.wait_for(SUBACK, 1)
    assert r.wait_for(PUBACK, 7)
    assert r.wait_for(PUBLISH).payload == b"one frame"
    assert r.wait_for(PINGRESP)


def test_broker_sends_binary_frames(broker, raw_ws):
    r = raw_ws()
    r.send(connect_pkt(uid("bin")))
    opcode, fin, payload = r.ws.recv_frame()
    assert (opcode, fin) == (BINARY, True)
    assert payload[0] >> 4 == CONNACK


# ---- hostile frames -------------------------------------------------------------------------

def _closed_with(r, code, broker, tag, log_text=None):
    assert r.ws.wait_closed(5) == code
    r.close()  # as real clients do once the close handshake is over
    broker.assert_serves(tag)
    if log_text:
        broker.wait_log(log_text)


def test_text_frame_closes_the_connection(broker, raw_ws):
    r = raw_ws()
    assert r.connect(uid("txt")).rc == 0
    r.ws.send_frame(TEXT, b"\xc0\x00".decode("latin-1").encode())  # PINGREQ bytes as UTF-8 text
    _closed_with(r, 1003, broker, "text", "text frame over WebSocket")


def test_text_frame_before_connect(broker, raw_ws):
    r = raw_ws()
    r.ws.send_frame(TEXT, b"hello")
    _closed_with(r, 1003, broker, "text-first")


def test_oversized_frame_closes_the_connection(broker, raw_ws):
    r = raw_ws()
    assert r.connect(uid("big")).rc == 0
    # Announces 1 MiB (limit: max_packet_size 4096 + 5); only the header is sent.
    r.ws.send_frame(BINARY, b"", length=1 << 20)
    _closed_with(r, 1009, broker, "big", "WebSocket message larger than")


def test_oversized_fragmented_message_closes_the_connection(broker, raw_ws):
    r = raw_ws()
    assert r.connect(uid("frag")).rc == 0
    start = publish_pkt("frag/t", b"x" * 4000)  # a valid packet; with the next frame the
    r.ws.send_frame(BINARY, start, fin=False)  # message grows to > 4101 bytes
    r.ws.send_frame(CONT, b"x" * 3000, fin=False)
    _closed_with(r, 1009, broker, "frag")


def test_unmasked_client_frame_is_a_protocol_error(broker, raw_ws):
    r = raw_ws()
    r.ws.send_frame(BINARY, connect_pkt(uid("nomask")), mask=False)
    _closed_with(r, 1002, broker, "unmasked")


def test_malformed_mqtt_over_websocket(broker, raw_ws):
    r = raw_ws()
    assert r.connect(uid("badmqtt")).rc == 0
    r.send(b"\x30\xff\xff\xff\xff\x01")  # remaining length of five bytes
    assert r.ws.wait_closed(5) in (1000, None)
    broker.assert_serves("badmqtt")


def test_client_close_frame_ends_the_session_like_a_drop(broker, raw_ws, client):
    watcher = client(uid("w"))
    watcher.connect()
    watcher.subscribe("wsclose/will", 1)
    r = raw_ws()
    assert r.connect(uid("cls"), will=("wsclose/will", b"gone", 1, False)).rc == 0
    r.ws.send_frame(CLOSE, struct.pack("!H", 1000))
    assert r.ws.wait_closed(5) == 1000  # echoed
    r.close()
    assert watcher.expect_message().payload == b"gone"
