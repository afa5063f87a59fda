"""meshmq's command line and environment: unknown keys and bad values are refused naming the key,
MESHMQ_* environment variables, --help, signals. meshmq only (skipped under mosquitto).
"""

import os
import signal
import socket
import subprocess
import time

import pytest

import harness
from harness import HOST, Client, RawClient, free_port, meshmq_bin, uid

pytestmark = pytest.mark.meshmq_only("meshmq's own command line")

ALL_KEYS = [
    "listeners.tcp.port", "listeners.tcp.bind", "node.data_dir", "node.name", "log.level",
    "broker.threads", "broker.batch_window_us", "mqtt.max_inflight", "mqtt.max_queued_messages",
    "mqtt.queue_qos0",
    "mqtt.session_expiry", "mqtt.connect_timeout", "mqtt.max_packet_size",
    "mqtt.max_outgoing_bytes", "mqtt.retained_max_count", "mqtt.retained_max_age",
    "http.port", "http.bind", "admin.token", "sys.interval", "node.shutdown_grace",
]


def _base_args(tmp_path, port=None):
    """Loopback-only flags, so that nothing ever listens on 0.0.0.0 or the default port."""
    return [str(meshmq_bin()), f"--listeners.tcp.port={port or free_port()}",
            f"--listeners.tcp.bind={HOST}", f"--node.data_dir={tmp_path / 'data'}",
            "--http.port=0", "--listeners.ws.port=0", "--listeners.tls.port=0",
            "--listeners.wss.port=0"]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHMQ_")}
    env.update(extra)
    return env


def _run(args, env=None, timeout=10):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              env=env or _env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"meshmq {args[1:]} still running after {timeout}s "
                             f"(expected it to exit): {e.stderr}") from None


class _Proc:
    """meshmq started with explicit args/env; waits for its port; SIGTERM on exit."""

    def __init__(self, args, port, env, log):
        self.port = port
        self.log = open(log, "wb")
        self.p = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not harness.port_accepts(port):
            assert self.p.poll() is None, f"meshmq exited {self.p.returncode}: {open(log).read()}"
            assert time.monotonic() < deadline, "meshmq not accepting after 10 s"
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
                raise AssertionError(f"meshmq did not exit within {timeout}s of {sig!r}")
        self.log.close()
        return self.p.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        self.log.close()


def _roundtrip(port):
    t = f"cfg/{uid()}"
    with Client(port, uid("s")) as s, Client(port, uid("p")) as p:
        s.connect()
        s.subscribe(t, 1)
        p.connect()
        p.publish(t, b"ok", qos=1)
        assert s.expect_message().payload == b"ok"


@pytest.mark.parametrize("flag", ["--no.such_key=1", "--mqtt.max_inflightt=3",
                                  "--listeners.tcp.prot=1884", "--bogus=1"])
def test_unknown_flag_refused_naming_key(tmp_path, flag):
    r = _run(_base_args(tmp_path) + [flag])
    assert r.returncode != 0
    key = flag[2:].split("=")[0]
    assert key in r.stdout + r.stderr, f"message does not name {key!r}: {r.stderr!r}"


@pytest.mark.parametrize("flag", [
    "--mqtt.max_inflight=abc", "--listeners.tcp.port=70000", "--listeners.tcp.port=-1",
    "--listeners.tcp.port=http", "--mqtt.queue_qos0=maybe", "--mqtt.session_expiry=forever",
    "--mqtt.max_packet_size=lots", "--mqtt.connect_timeout=soon", "--broker.threads=many",
])
def test_bad_value_refused_naming_key(tmp_path, flag):
    args = [a for a in _base_args(tmp_path) if not a.startswith("--" + flag[2:].split("=")[0] + "=")]
    r = _run(args + [flag])
    assert r.returncode != 0
    key = flag[2:].split("=")[0]
    assert key in r.stdout + r.stderr, f"message does not name {key!r}: {r.stderr!r}"


def test_bad_value_in_environment_refused(tmp_path):
    r = _run(_base_args(tmp_path), env=_env(MESHMQ_MQTT__MAX_INFLIGHT="abc"))
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "mqtt.max_inflight" in out or "MESHMQ_MQTT__MAX_INFLIGHT" in out, out


def test_help_lists_keys(tmp_path):
    r = _run([str(meshmq_bin()), "--help"])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    missing = [k for k in ALL_KEYS if k not in out]
    assert not missing, f"--help does not mention {missing}"


def test_port_from_environment(tmp_path):
    port = free_port()
    args = [a for a in _base_args(tmp_path) if not a.startswith("--listeners.tcp.port=")]
    env = _env(MESHMQ_LISTENERS__TCP__PORT=str(port))
    with _Proc(args, port, env, tmp_path / "log") as p:
        _roundtrip(port)
        assert p.stop() == 0


def test_flag_overrides_environment(tmp_path):
    env_port, flag_port = free_port(), free_port()
    args = _base_args(tmp_path, flag_port)
    env = _env(MESHMQ_LISTENERS__TCP__PORT=str(env_port))
    with _Proc(args, flag_port, env, tmp_path / "log") as p:
        _roundtrip(flag_port)
        assert not harness.port_accepts(env_port)
        assert p.stop() == 0


def test_every_documented_flag_accepted(tmp_path):
    port = free_port()
    args = _base_args(tmp_path, port) + [
        "--node.name=cfgtest", "--log.level=debug", "--broker.threads=2",
        "--mqtt.max_inflight=8", "--mqtt.max_queued_messages=50", "--mqtt.queue_qos0=true",
        "--mqtt.session_expiry=2h", "--mqtt.connect_timeout=5", "--mqtt.max_packet_size=65536",
        "--mqtt.max_outgoing_bytes=262144", "--mqtt.retained_max_count=100",
        "--mqtt.retained_max_age=0",
    ]
    with _Proc(args, port, _env(), tmp_path / "log") as p:
        _roundtrip(port)
        assert p.stop() == 0
    assert (tmp_path / "log").stat().st_size > 0, "nothing logged to stderr at debug level"


def test_session_expiry_plain_seconds_accepted(tmp_path):
    port = free_port()
    with _Proc(_base_args(tmp_path, port) + ["--mqtt.session_expiry=7200"], port, _env(),
               tmp_path / "log") as p:
        assert p.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero_closing_connections(tmp_path, sig):
    port = free_port()
    with _Proc(_base_args(tmp_path, port), port, _env(), tmp_path / "log") as p:
        c = Client(port, uid("c"), clean_session=False)
        c.connect()
        c.subscribe("x/#", 1)
        r = RawClient(port)
        assert r.connect(uid("raw")).rc == 0
        assert p.stop(sig, timeout=10) == 0
        c.wait_disconnected(timeout=5)
        r.wait_closed(timeout=5)
        r.close()
        c.close()


def test_port_in_use_fails(tmp_path):
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = _run(_base_args(tmp_path, port))
        assert r.returncode != 0


def test_uncreatable_data_dir_fails_naming_key(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    args = [a for a in _base_args(tmp_path) if not a.startswith("--node.data_dir")]
    r = _run(args + [f"--node.data_dir={blocker}/data"])
    assert r.returncode != 0
    assert "node.data_dir" in r.stderr + r.stdout
