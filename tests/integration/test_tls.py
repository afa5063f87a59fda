"""MQTT over TLS and over secure WebSocket: a throwaway CA made with the openssl CLI, mosquitto's
clients with --cafile (and --cert/--key for mutual TLS), the certificate's CN as the user name,
refused certificates with a log line, TLS versions, plain bytes on the TLS port, WSS with paho.
"""

import socket
import ssl
import subprocess

import pytest

from harness import (FREE_PORT, HOST, Client, MosquittoSub, connect_pkt, free_port, meshmq_args,
                     mosquitto_pub, port_accepts, uid)

pytestmark = pytest.mark.meshmq_only("TLS listeners configured with meshmq keys")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _ca(d, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _leaf(d, name, ca, cn, ext):
    (d / f"{name}.ext").write_text(ext + "\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
             cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """ca (trusted), server (CN localhost, SAN 127.0.0.1), alice (client of ca), and mallory, a
    client certificate from an untrusted CA. pki[name] -> (cert path, key path)."""
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "rogue")
    _leaf(d, "server", "ca", "localhost",
          "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    _leaf(d, "alice", "ca", "alice", "extendedKeyUsage=clientAuth")
    _leaf(d, "mallory", "rogue", "mallory", "extendedKeyUsage=clientAuth")
    return {n: (str(d / f"{n}.pem"), str(d / f"{n}.key"))
            for n in ("ca", "rogue", "server", "alice", "mallory")}


def tls_opts(pki, **extra):
    return {"listeners.tls.port": FREE_PORT, "tls.cert_file": pki["server"][0],
            "tls.key_file": pki["server"][1], **extra}


def mtls_opts(pki, **extra):
    return tls_opts(pki, **{"tls.ca_file": pki["ca"][0], "tls.verify_client": "required", **extra})


def cafile(pki, client=None):
    args = ["--cafile", pki["ca"][0]]
    if client:
        args += ["--cert", pki[client][0], "--key", pki[client][1]]
    return args


def tls_client(port, pki, client_cert=None, **kw):
    tls = {"ca_certs": pki["ca"][0]}
    if client_cert:
        tls.update(certfile=pki[client_cert][0], keyfile=pki[client_cert][1])
    return Client(port, uid("tls"), tls=tls, **kw)


def test_mosquitto_clients_over_tls(broker_factory, pki):
    b = broker_factory(tls_opts(pki))
    port = b.ports["listeners.tls.port"]
    topic = f"tls/{uid('t')}"
    with MosquittoSub(port, topic, qos=1, count=1, extra=cafile(pki)) as sub:
        sub.start()
        mosquitto_pub(port, topic, "over tls", qos=1, extra=cafile(pki))
        got = sub.finish()
    assert [(m.topic, m.payload) for m in got] == [(topic, "over tls")]
    # The TLS and TCP listeners feed the same broker.
    with Client(b.port, uid("tcp")) as tcp:
        tcp.connect()
        tcp.subscribe(topic, 1)
        mosquitto_pub(port, topic, "to tcp", qos=1, extra=cafile(pki))
        assert tcp.expect_message().payload == b"to tcp"


def test_mutual_tls(broker_factory, pki):
    b = broker_factory(mtls_opts(pki))
    port = b.ports["listeners.tls.port"]
    mosquitto_pub(port, "mtls/ok", "with cert", qos=1, extra=cafile(pki, "alice"))

    r = mosquitto_pub(port, "mtls/no", "no cert", qos=1, extra=cafile(pki), check=False)
    assert r.returncode != 0
    b.wait_log("TLS handshake failed")

    r = mosquitto_pub(port, "mtls/rogue", "bad cert", qos=1, extra=cafile(pki, "mallory"),
                      check=False)
    assert r.returncode != 0
    line = b.wait_log("TLS client certificate rejected")
    assert "CN = mallory" in line or "CN=mallory" in line, line
    b.assert_serves()


def test_optional_client_certificate(broker_factory, pki):
    b = broker_factory(mtls_opts(pki, **{"tls.verify_client": "optional"}))
    port = b.ports["listeners.tls.port"]
    mosquitto_pub(port, "opt/a", "with cert", extra=cafile(pki, "alice"))
    mosquitto_pub(port, "opt/b", "without", extra=cafile(pki))
    r = mosquitto_pub(port, "opt/c", "rogue", extra=cafile(pki, "mallory"), check=False)
    assert r.returncode != 0  # a certificate that is sent must verify


@pytest.mark.parametrize("cn_as_username,user", [(True, "alice"), (False, "bob")])
def test_certificate_cn_as_username(broker_factory, pki, cn_as_username, user):
    b = broker_factory(mtls_opts(pki, **{"tls.cn_as_username": cn_as_username}))
    c = tls_client(b.ports["listeners.tls.port"], pki, "alice")
    c.c.username_pw_set("bob", "secret")
    with c:
        c.connect()
        line = b.wait_log(f"client {c.client_id} connected")
    assert f"(user '{user}'," in line, line


def test_server_certificate_from_unknown_ca_is_refused_by_the_client(broker_factory, pki):
    b = broker_factory(tls_opts(pki))
    r = mosquitto_pub(b.ports["listeners.tls.port"], "x", "y", check=False,
                      extra=["--cafile", pki["rogue"][0]])
    assert r.returncode != 0
    b.wait_log("TLS handshake failed")
    b.assert_serves()


def test_plain_mqtt_to_the_tls_port(broker_factory, pki):
    b = broker_factory(tls_opts(pki))
    port = b.ports["listeners.tls.port"]
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(connect_pkt(uid("plain")))
        got = b""
        while True:  # at most a TLS alert, then the end of the connection
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        assert not got or got[0] == 0x15, got  # 0x15: TLS alert record
    b.wait_log("TLS handshake failed")
    b.assert_serves()
    mosquitto_pub(port, "after/plain", "tls still fine", extra=cafile(pki))


def _tls_handshake(port, pki, **ctx_settings):
    ctx = ssl.create_default_context(cafile=pki["ca"][0])
    for k, v in ctx_settings.items():
        setattr(ctx, k, v)
    with socket.create_connection((HOST, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            return s.version()


def test_min_version(broker_factory, pki):
    b = broker_factory(tls_opts(pki))
    port = b.ports["listeners.tls.port"]
    assert _tls_handshake(port, pki, maximum_version=ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    b13 = broker_factory(tls_opts(pki, **{"tls.min_version": "1.3"}))
    port13 = b13.ports["listeners.tls.port"]
    assert _tls_handshake(port13, pki) == "TLSv1.3"
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _tls_handshake(port13, pki, maximum_version=ssl.TLSVersion.TLSv1_2)
    b13.wait_log("TLS handshake failed")


def test_wss_with_paho(broker_factory, pki):
    b = broker_factory(tls_opts(pki, **{"listeners.wss.port": FREE_PORT}))
    topic = f"wss/{uid('t')}"
    with tls_client(b.ports["listeners.wss.port"], pki, transport="websockets") as wss, \
            Client(b.port, uid("tcp")) as tcp:
        wss.connect()
        assert wss.subscribe(topic, 2) == 2
        tcp.connect()
        tcp.subscribe(topic, 1)
        tcp.publish(topic, b"tcp to wss", qos=2)
        wss.publish(topic, b"wss to all", qos=1)
        assert sorted(m.payload for m in wss.expect_messages(2)) == [b"tcp to wss", b"wss to all"]
        assert sorted(m.payload for m in tcp.expect_messages(2)) == [b"tcp to wss", b"wss to all"]


def test_wss_with_client_certificate(broker_factory, pki):
    b = broker_factory(mtls_opts(pki, **{"listeners.wss.port": FREE_PORT,
                                         "tls.cn_as_username": True}))
    c = tls_client(b.ports["listeners.wss.port"], pki, "alice", transport="websockets")
    with c:
        c.connect()
        assert "(user 'alice'," in b.wait_log(f"client {c.client_id} connected")


def test_tls_listeners_off_without_certificate(broker_factory):
    tls_port, wss_port = free_port(), free_port()
    b = broker_factory({"listeners.tls.port": tls_port, "listeners.wss.port": wss_port})
    b.wait_log("MQTT/TLS and MQTT/WSS are off: set tls.cert_file and tls.key_file")
    assert not port_accepts(tls_port) and not port_accepts(wss_port)


@pytest.mark.parametrize("opts,message", [
    ({"tls.cert_file": "/nonexistent/cert.pem"}, "tls.cert_file: cannot load"),
    ({"tls.key_file": "WRONGKEY"}, "key values mismatch"),
    ({"tls.verify_client": "required"}, "tls.verify_client = required needs tls.ca_file"),
    ({"tls.ca_file": "/nonexistent/ca.pem", "tls.verify_client": "optional"},
     "tls.ca_file: cannot load"),
])
def test_bad_tls_configuration_stops_startup(tmp_path, pki, opts, message):
    o = {**tls_opts(pki), "listeners.tls.port": free_port()}
    o.update({k: (pki["alice"][1] if v == "WRONGKEY" else v) for k, v in opts.items()})
    args = meshmq_args(0, tmp_path / "data", "badtls", o)
    r = subprocess.run(args, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
