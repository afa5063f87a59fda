"""Real clients: MQTT 3.1 (MQIsdp, level 3) next to 3.1.1, the mosquitto command-line clients,
payload sizes and long topics.
"""

import subprocess

import paho.mqtt.client as mqtt
import pytest

from harness import (CONNACK, HOST, PUB_BIN, PUBLISH, MosquittoSub, connect_pkt, mosquitto_pub,
                     uid)


# ---- MQTT 3.1 --------------------------------------------------------------------------

@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mqtt31_paho_pub_sub(broker, client, qos):
    t = f"v31/{uid()}"
    sub = client(uid("s31"), protocol=mqtt.MQTTv31)
    assert sub.connect()[0] == 0
    assert sub.subscribe(t, qos) == qos
    pub = client(uid("p31"), protocol=mqtt.MQTTv31)
    pub.connect()
    pub.publish(t, b"hello 3.1", qos=qos)
    m = sub.expect_message()
    assert (m.topic, m.payload, m.qos) == (t, b"hello 3.1", qos)


def test_mqtt31_and_311_interoperate(broker, client):
    t = f"mix/{uid()}"
    old = client(uid("old"), protocol=mqtt.MQTTv31)
    old.connect()
    new = client(uid("new"), protocol=mqtt.MQTTv311)
    new.connect()
    old.subscribe(t + "/to-old", 2)
    new.subscribe(t + "/to-new", 2)
    new.publish(t + "/to-old", b"from 3.1.1", qos=2)
    old.publish(t + "/to-new", b"from 3.1", qos=2)
    assert old.expect_message().payload == b"from 3.1.1"
    assert new.expect_message().payload == b"from 3.1"


def test_mqtt31_raw_connect(broker, raw):
    r = raw()
    ack = r.connect(uid("mqisdp"), proto_name=b"MQIsdp", proto_level=3)
    assert ack.rc == 0
    t = f"v31/{uid()}"
    assert r.subscribe(1, [(t, 1)]).granted == [1]
    r.publish(t, b"raw 3.1", qos=1, pid=2)
    assert r.expect(PUBLISH).payload == b"raw 3.1"


def test_mqtt31_persistent_session_and_will(broker, client, raw):
    t = f"v31/{uid()}"
    cid = uid("p31")
    c = client(cid, clean_session=False, protocol=mqtt.MQTTv31)
    c.connect()
    c.subscribe(t, 1)
    c.disconnect()
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"queued for 3.1", qos=1)
    c = client(cid, clean_session=False, protocol=mqtt.MQTTv31)
    c.connect()
    assert c.expect_message().payload == b"queued for 3.1"
    # will of a 3.1 client
    w = client(uid("watch"))
    w.connect()
    w.subscribe(t + "/will", 1)
    r = raw()
    assert r.connect(uid("w31"), proto_name=b"MQIsdp", proto_level=3,
                     will=(t + "/will", b"3.1 will", 1, False)).rc == 0
    r.close()
    assert w.expect_message().payload == b"3.1 will"


def test_mosquitto_pub_mqttv31(broker, client):
    t = f"v31/cli/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(t, 2)
    r = mosquitto_pub(broker.port, t, "via mosquitto_pub 3.1", qos=1, extra=["-V", "mqttv31"])
    assert "received CONNACK (0)" in r.stdout + r.stderr
    m = sub.expect_message()
    assert (m.payload, m.qos) == (b"via mosquitto_pub 3.1", 1)


def test_mosquitto_sub_mqttv31(broker):
    t = f"v31/cli/{uid()}"
    with MosquittoSub(broker.port, t, qos=2, count=1, extra=["-V", "mqttv31"]) as sub:
        sub.start()
        mosquitto_pub(broker.port, t, "to a 3.1 subscriber", qos=2)
        got = sub.finish()
    assert [(g.payload, g.qos) for g in got] == [("to a 3.1 subscriber", 2)]


# ---- mosquitto command-line clients ---------------------------------------------------------

def test_mosquitto_sub_receives_many_in_order(broker):
    t = f"cli/{uid()}"
    with MosquittoSub(broker.port, t, qos=1, count=100) as sub:
        sub.start()
        lines = "\n".join(f"line {i}" for i in range(100)) + "\n"
        cmd = [PUB_BIN, "-h", HOST, "-p", str(broker.port), "-t", t, "-q", "1", "-l"]
        r = subprocess.run(cmd, input=lines, capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        got = sub.finish()
    assert [g.payload for g in got] == [f"line {i}" for i in range(100)]


def test_mosquitto_sub_several_filters(broker):
    b = f"cli/{uid()}"
    with MosquittoSub(broker.port, [f"{b}/+/x", f"{b}/#"], qos=2, count=2) as sub:
        sub.start()
        mosquitto_pub(broker.port, f"{b}/a/x", "one", qos=2)
        mosquitto_pub(broker.port, f"{b}/b", "two", qos=0)
        got = sub.finish()
    assert sorted((g.topic, g.payload) for g in got) == [(f"{b}/a/x", "one"), (f"{b}/b", "two")]


# ---- payloads and topics --------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 65536, 512 * 1024])
def test_payload_sizes(broker, client, size):
    """Remaining-length encodings of 1..3 bytes and payloads up to half the default limit."""
    t = f"size/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(t, 1)
    pub = client(uid("pub"))
    pub.connect()
    payload = bytes((i * 7) & 0xFF for i in range(size))
    pub.publish(t, payload, qos=1)
    m = sub.expect_message()
    assert m.payload == payload


def test_binary_payload_all_byte_values(broker, client):
    t = f"bin/{uid()}"
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe(t, 2)
    pub = client(uid("pub"))
    pub.connect()
    payload = bytes(range(256)) * 4
    pub.publish(t, payload, qos=2)
    assert sub.expect_message().payload == payload


def test_long_topic_many_levels(broker, client):
    """150 levels (mosquitto refuses more than 200)."""
    levels = [f"l{i}" for i in range(150)]
    t = "/".join(levels)
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe([(levels[0] + "/#", 1), ("/".join(levels[:-1]) + "/+", 1)])
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"deep", qos=1)
    m = sub.expect_message()
    assert (m.topic, m.payload) == (t, b"deep")
    sub.expect_no_message()


def test_max_length_topic(broker, client):
    t = "x/" + "y" * 65533  # 65535 bytes, the largest an MQTT string holds
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe("x/+", 1)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(t, b"long", qos=1)
    m = sub.expect_message()
    assert m.topic == t and m.payload == b"long"
