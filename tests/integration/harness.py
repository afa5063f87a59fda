"""Helpers for the meshmq integration suite.

- Broker: starts the real broker (meshmq, or Debian's mosquitto as a stand-in) on a free loopback
  port with a private data dir, waits until it accepts, stops it with SIGTERM.
- Client: a paho-mqtt 1.6.1 client with bounded waits for every event.
- RawClient and the packet builders: hand-made MQTT bytes for malformed-input tests.
- MosquittoSub / mosquitto_pub: the mosquitto command-line clients as subprocesses with timeouts.

Every wait here has a timeout; nothing sleeps and hopes. Absence of an event ("nothing more is
delivered") is checked with a sentinel where one exists, and with a short bounded quiet period
otherwise.
"""

from __future__ import annotations

import http.client as http_client
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import paho.mqtt.client as mqtt

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Default bound for any single awaited event.
WAIT = 10.0
#: Quiet period used to check that nothing (more) arrives, when no sentinel can be used.
QUIET = 0.5


class Timeout(AssertionError):
    """An awaited event did not happen in time."""


# --------------------------------------------------------------------------------------------
# Which broker
# --------------------------------------------------------------------------------------------

def broker_kind() -> str:
    kind = os.environ.get("MESHMQ_TEST_BROKER", "meshmq").strip().lower() or "meshmq"
    if kind not in ("meshmq", "mosquitto"):
        raise RuntimeError(f"MESHMQ_TEST_BROKER must be meshmq or mosquitto, not {kind!r}")
    return kind


def is_mosquitto() -> bool:
    return broker_kind() == "mosquitto"


def meshmq_bin() -> Path:
    env = os.environ.get("MESHMQ_BIN")
    return Path(env) if env else REPO_ROOT / "build" / "broker" / "meshmq"


MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the kernel picks it: bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


#: Option value that the harness replaces with a free port at each start (listener ports other
#: than the TCP one: listeners.ws.port, listeners.tls.port, ...); see Broker.ports.
FREE_PORT = "<free port>"


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on TCP `port`. A port from free_port() can be
    taken by another test running in parallel (another broker's HTTP port, say) before this broker
    binds it; then the port accepts although this broker is not listening yet."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def port_accepts(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Broker process
# --------------------------------------------------------------------------------------------

class UnsupportedOption(Exception):
    """The stand-in broker has no equivalent of a meshmq option (the test is skipped)."""


def _hours(value) -> Optional[str]:
    """meshmq session expiry value -> mosquitto duration, if it is whole hours."""
    s = str(value).strip()
    m = re.fullmatch(r"(\d+)([smhd]?)", s)
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2) or "s"
    secs = n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    if secs % 3600:
        return None
    return f"{secs // 3600}h"


def mosquitto_conf(port: int, opts: dict) -> str:
    """A mosquitto.conf equivalent to meshmq's defaults plus `opts` (meshmq keys)."""
    o = {
        "mqtt.max_inflight": 32,
        "mqtt.max_queued_messages": 1000,
        "mqtt.queue_qos0": False,
        "mqtt.max_packet_size": 1024 * 1024,
    }
    o.update(opts)
    lines = [
        f"listener {port} {HOST}",
        "allow_anonymous true",
        "persistence false",
        "log_dest stderr",
        "log_type all",
        "connection_messages true",
        "set_tcp_nodelay true",
    ]
    for key, val in o.items():
        if key in ("node.name", "node.data_dir", "log.level", "broker.threads"):
            continue
        if key == "mqtt.max_inflight":
            lines.append(f"max_inflight_messages {int(val)}")
        elif key == "mqtt.max_queued_messages":
            lines.append(f"max_queued_messages {int(val)}")
        elif key == "mqtt.queue_qos0":
            lines.append(f"queue_qos0_messages {'true' if str(val).lower() == 'true' or val is True else 'false'}")
        elif key == "mqtt.max_packet_size":
            # meshmq limits the remaining length; mosquitto the whole packet (+ up to 5 header bytes).
            lines.append(f"max_packet_size {int(val) + 5}")
        elif key == "mqtt.session_expiry":
            h = _hours(val)
            if h is None:
                raise UnsupportedOption(
                    f"mosquitto's persistent_client_expiration has a granularity of hours; "
                    f"cannot express mqtt.session_expiry={val}")
            lines.append(f"persistent_client_expiration {h}")
        else:
            raise UnsupportedOption(f"mosquitto has no equivalent of meshmq's {key}")
    return "\n".join(lines) + "\n"


def meshmq_args(port: int, data_dir: Path, name: str, opts: dict,
                http_port: int = 0) -> list[str]:
    base = {
        "listeners.tcp.port": port,
        "listeners.tcp.bind": HOST,
        # Never the default 8080: parallel tests would collide on it.
        "http.port": http_port,
        "http.bind": HOST,
        "node.data_dir": str(data_dir),
        "node.name": name,
        "log.level": os.environ.get("MESHMQ_TEST_LOG_LEVEL", "debug"),
        "broker.threads": 2,
        # Listeners on fixed default ports would collide between parallel test brokers: off unless
        # a test asks for them (with FREE_PORT).
        "listeners.ws.port": 0,
        "listeners.ws.bind": HOST,
        "listeners.tls.bind": HOST,
        "listeners.wss.bind": HOST,
        "listeners.tls.port": 0,
        "listeners.wss.port": 0,
    }
    base.update(opts)
    args = [str(meshmq_bin())]
    for k, v in base.items():
        if v is True or v is False:
            v = "true" if v else "false"
        args.append(f"--{k}={v}")
    return args


class Broker:
    """One broker process on a free loopback port; stderr goes to `log_path`."""

    def __init__(self, workdir: Path, opts: Optional[dict] = None, name: str = "itest"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.opts = dict(opts or {})
        self.name = name
        self.kind = broker_kind()
        self.port: Optional[int] = None
        self.http_port: Optional[int] = None  # /metrics, /healthz, /readyz, /api/v1/ (meshmq)
        self.ports: dict = {}  # option key -> port, for the options given as FREE_PORT
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = self.workdir / "broker.log"
        self.data_dir = self.workdir / "data"
        self.exit_code: Optional[int] = None
        self.started = False
        self._log = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = WAIT, attempts: int = 3) -> "Broker":
        """Start and wait (bounded) until the port accepts. Retries on a new port if the broker
        exits early (e.g. another test grabbed the port between free_port() and bind)."""
        last = ""
        for _ in range(attempts):
            self.port = free_port()
            self.http_port = free_port()
            self._spawn()
            ok, last = self._wait_ready(timeout)
            if ok:
                self.started = True
                return self
            self._kill()
            if not (self.proc and self.proc.returncode is not None):
                break  # did not die, just never listened: no point retrying
        raise AssertionError(f"{self.kind} did not start: {last}\n--- log tail ---\n{self.log_tail()}")

    def _spawn(self):
        self.ports = {k: free_port() for k, v in self.opts.items() if v is FREE_PORT}
        opts = {**self.opts, **self.ports}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._log:
            self._log.close()
        self._log = open(self.log_path, "ab")
        self._log.write(f"=== starting {self.kind} on port {self.port}\n".encode())
        self._log.flush()
        if self.kind == "mosquitto":
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(mosquitto_conf(self.port, opts))
            cmd = [MOSQUITTO_BIN, "-c", str(conf)]
        else:
            binary = meshmq_bin()
            if not binary.exists():
                raise AssertionError(
                    f"meshmq binary not found at {binary} (build it, or set MESHMQ_BIN, "
                    f"or run with MESHMQ_TEST_BROKER=mosquitto)")
            cmd = meshmq_args(self.port, self.data_dir, self.name, opts, self.http_port)
        self._log.write(("=== " + " ".join(cmd) + "\n").encode())
        self._log.flush()
        self.cmd = cmd
        # meshmq reads MESHMQ_* variables as configuration: keep the harness's own (MESHMQ_BIN,
        # MESHMQ_TEST_*) and any others out of its environment; tests configure it with flags.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESHMQ_")}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, cwd=self.workdir, env=env,
                                     start_new_session=True)

    def _wait_ready(self, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, f"exited with code {self.proc.returncode} before accepting"
            ports = [self.port, *self.ports.values()]
            if all(listens(self.proc.pid, p) and port_accepts(p) for p in ports):
                return True, ""
            time.sleep(0.02)
        return False, f"port {self.port} not accepting after {timeout}s"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        assert self.alive(), (f"broker died (exit code {self.proc.returncode})\n"
                              f"--- log tail ---\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to `timeout`; SIGKILL after that and raise. Returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                self.exit_code = self.proc.returncode
                raise AssertionError(f"broker did not exit within {timeout}s of SIGTERM (killed)")
        self.exit_code = self.proc.returncode
        if self._log:
            self._log.close()
            self._log = None
        return self.exit_code

    def crash(self):
        """kill -9: no shutdown code runs (what a power cut or OOM kill leaves behind)."""
        self._kill()
        if self._log:
            self._log.close()
            self._log = None

    def restart(self, crash: bool = False, timeout: float = WAIT) -> "Broker":
        """Stop (SIGTERM, or kill -9 with crash=True) and start again on the same data dir; the
        port may change (use .port afterwards)."""
        if crash:
            self.crash()
        else:
            code = self.stop()
            assert code == 0, f"broker exited with code {code} after SIGTERM"
        return self.start(timeout)

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def log_tail(self, lines: int = 60) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no log)"
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def wait_log(self, text: str, timeout: float = WAIT) -> str:
        """The first log line containing `text`, waiting (bounded) for it to be written."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                for line in self.log_path.read_text("utf-8", "replace").splitlines():
                    if text in line:
                        return line
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Timeout(f"no log line containing {text!r} within {timeout}s\n"
                              f"--- log tail ---\n{self.log_tail()}")
            time.sleep(0.05)

    # -- conveniences ------------------------------------------------------------------------

    def client(self, client_id: str = "", **kw) -> "Client":
        return Client(self.port, client_id, **kw)

    def raw(self, **kw) -> "RawClient":
        return RawClient(self.port, **kw)

    def http(self, path: str, method: str = "GET", token: Optional[str] = None,
             timeout: float = WAIT):
        """One request to the broker's HTTP port: (status, content type, body bytes)."""
        conn = http_client.HTTPConnection(getattr(self, "host", HOST), self.http_port,
                                          timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            conn.request(method, path, headers=headers)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type", ""), r.read()
        finally:
            conn.close()

    def assert_serves(self, tag: str = "check"):
        """The broker is alive and a fresh pair of clients can publish and receive."""
        self.assert_alive()
        topic = f"serves/{tag}/{time.monotonic_ns()}"
        with self.client(f"serves-sub-{os.getpid()}-{time.monotonic_ns()}") as sub, \
                self.client(f"serves-pub-{os.getpid()}-{time.monotonic_ns()}") as pub:
            sub.connect()
            sub.subscribe(topic, 1)
            pub.connect()
            pub.publish(topic, b"still serving", qos=1)
            m = sub.expect_message()
            assert (m.topic, m.payload) == (topic, b"still serving")
        self.assert_alive()


# --------------------------------------------------------------------------------------------
# paho client with bounded waits
# --------------------------------------------------------------------------------------------

@dataclass
class Msg:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    mid: int
    at: float = field(default_factory=time.monotonic)


class Client:
    """paho-mqtt 1.6.1 client, its network loop on paho's thread, never auto-reconnecting.

    Events (CONNACK, SUBACK, UNSUBACK, publish completion, messages, disconnect) land in queues or
    dicts and are awaited with timeouts.
    """

    def __init__(self, port: int, client_id: str = "", clean_session: bool = True,
                 protocol=mqtt.MQTTv311, host: str = HOST, transport: str = "tcp",
                 ws_path: str = "/mqtt", tls: Optional[dict] = None):
        """transport "websockets" speaks MQTT over WebSocket on `ws_path`; `tls` holds paho's
        tls_set() arguments (ca_certs, certfile, keyfile, ...) for TLS or WSS."""
        self.port, self.host = port, host
        self.client_id = client_id
        kw = {}
        if protocol != mqtt.MQTTv5:
            kw["clean_session"] = clean_session
        self.c = mqtt.Client(client_id=client_id, protocol=protocol, transport=transport,
                             reconnect_on_failure=False, **kw)
        if transport == "websockets":
            self.c.ws_set_options(path=ws_path)
        if tls is not None:
            self.c.tls_set(**tls)
        self.messages: "queue.Queue[Msg]" = queue.Queue()
        self._cond = threading.Condition()
        self._connacks: list = []
        self._subacks: dict = {}
        self._unsubacks: set = set()
        self._published: set = set()
        self.disconnected = threading.Event()
        self.disconnect_rc: Optional[int] = None
        self._started = False
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect

    # callbacks (paho's thread)
    def _on_connect(self, c, ud, flags, rc):
        with self._cond:
            self._connacks.append((rc, bool(flags.get("session present", 0))))
            self._cond.notify_all()

    def _on_subscribe(self, c, ud, mid, granted):
        with self._cond:
            self._subacks[mid] = list(granted)
            self._cond.notify_all()

    def _on_unsubscribe(self, c, ud, mid):
        with self._cond:
            self._unsubacks.add(mid)
            self._cond.notify_all()

    def _on_publish(self, c, ud, mid):
        with self._cond:
            self._published.add(mid)
            self._cond.notify_all()

    def _on_message(self, c, ud, m):
        self.messages.put(Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain), bool(m.dup), m.mid))

    def _on_disconnect(self, c, ud, rc):
        self.disconnect_rc = rc
        self.disconnected.set()
        with self._cond:
            self._cond.notify_all()

    def _wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                r = pred()
                if r:
                    return r
                if self.disconnected.is_set():
                    raise AssertionError(f"{self.client_id or 'client'}: connection closed "
                                         f"(rc {self.disconnect_rc}) while waiting for {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout(f"{self.client_id or 'client'}: no {what} within {timeout}s")
                self._cond.wait(min(left, 0.1))

    # API
    def will(self, topic: str, payload: bytes = b"", qos: int = 0, retain: bool = False):
        self.c.will_set(topic, payload, qos, retain)
        return self

    def connect(self, keepalive: int = 60, timeout: float = WAIT, expect_rc: Optional[int] = 0):
        """Connect and wait for CONNACK. Returns (rc, session_present)."""
        self.c.connect(self.host, self.port, keepalive)
        self.c.loop_start()
        self._started = True
        rc_sp = self._wait_for(lambda: self._connacks[-1] if self._connacks else None, timeout,
                               "CONNACK")
        if expect_rc is not None:
            assert rc_sp[0] == expect_rc, f"CONNACK rc {rc_sp[0]}, expected {expect_rc}"
        return rc_sp

    @property
    def session_present(self) -> bool:
        return self._connacks[-1][1]

    def subscribe(self, topic, qos: int = 0, timeout: float = WAIT):
        """subscribe("a/b", 1) or subscribe([("a", 0), ("b", 2)]); waits for SUBACK and returns
        the granted QoS (an int for one filter, a list otherwise)."""
        if isinstance(topic, (list, tuple)):
            rc, mid = self.c.subscribe(list(topic))
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe failed locally: {mqtt.error_string(rc)}"
        granted = self._wait_for(lambda: self._subacks.get(mid), timeout, f"SUBACK {mid}")
        return granted if isinstance(topic, (list, tuple)) else granted[0]

    def unsubscribe(self, topic, timeout: float = WAIT):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        self._wait_for(lambda: mid in self._unsubacks, timeout, f"UNSUBACK {mid}")

    def publish(self, topic: str, payload=b"", qos: int = 0, retain: bool = False,
                wait: bool = True, timeout: float = WAIT):
        """Publish; with wait=True and QoS>0, wait for PUBACK / PUBCOMP. Returns the mid."""
        info = self.c.publish(topic, payload, qos, retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed locally: {mqtt.error_string(info.rc)}"
        if wait and qos > 0:
            self.wait_published(info.mid, timeout)
        return info.mid

    def wait_published(self, mids, timeout: float = WAIT):
        mids = [mids] if isinstance(mids, int) else list(mids)
        self._wait_for(lambda: all(m in self._published for m in mids), timeout,
                       f"completion of {len(mids)} publish(es)")

    def expect_message(self, timeout: float = WAIT) -> Msg:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise Timeout(f"{self.client_id or 'client'}: no message within {timeout}s") from None

    def expect_messages(self, n: int, timeout: float = WAIT) -> list[Msg]:
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"{self.client_id or 'client'}: got {len(out)} of {n} messages "
                              f"within {timeout}s: {[m.payload[:20] for m in out[-5:]]}")
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def messages_until(self, topic: str, timeout: float = WAIT) -> list[Msg]:
        """Collect messages until one arrives on `topic` (the sentinel); returns those before it."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"sentinel on {topic} not received within {timeout}s "
                              f"(got {len(out)} others)")
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if m.topic == topic:
                return out
            out.append(m)

    def expect_no_message(self, within: float = QUIET):
        try:
            m = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message: {m}")

    def drain(self) -> list[Msg]:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def wait_disconnected(self, timeout: float = WAIT):
        if not self.disconnected.wait(timeout):
            raise Timeout(f"{self.client_id or 'client'}: still connected after {timeout}s")
        return self.disconnect_rc

    def disconnect(self, timeout: float = WAIT):
        """Clean DISCONNECT; waits until paho has sent it and closed."""
        if not self.disconnected.is_set():
            self.c.disconnect()
            self.disconnected.wait(timeout)
        self._stop_loop()

    def _stop_loop(self):
        if self._started:
            self.c.loop_stop()
            self._started = False

    def abort(self):
        """Drop the TCP connection without DISCONNECT (the will fires)."""
        sock = self.c.socket()
        sock = getattr(sock, "_socket", sock)  # paho's websocket wrapper
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.wait_disconnected()
        self._stop_loop()

    def close(self):
        try:
            if not self.disconnected.is_set() and self._started:
                self.disconnect(timeout=2)
        finally:
            self._stop_loop()
            try:
                self.c.socket() and self.c.socket().close()
            except Exception:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------------------------
# Raw MQTT packets
# --------------------------------------------------------------------------------------------

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14
NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT"}


def varint(n: int) -> bytes:
    """MQTT remaining-length encoding."""
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def mstr(s) -> bytes:
    """A length-prefixed MQTT string (bytes are taken verbatim, so invalid UTF-8 is possible)."""
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | (flags & 0x0F)]) + varint(len(body)) + body


def connect_pkt(client_id="", clean: bool = True, keepalive: int = 60,
                will: Optional[tuple] = None, username=None, password=None,
                proto_name=b"MQTT", proto_level: int = 4, flags: Optional[int] = None,
                header_flags: int = 0) -> bytes:
    """CONNECT. will = (topic, payload, qos, retain). `flags` overrides the computed flag byte."""
    f = 0
    if clean:
        f |= 0x02
    if will:
        f |= 0x04 | ((will[2] & 3) << 3) | (0x20 if will[3] else 0)
    if username is not None:
        f |= 0x80
    if password is not None:
        f |= 0x40
    if flags is not None:
        f = flags
    body = mstr(proto_name) + bytes([proto_level, f]) + struct.pack("!H", keepalive)
    body += mstr(client_id)
    if will:
        body += mstr(will[0]) + mstr(will[1])
    if username is not None:
        body += mstr(username)
    if password is not None:
        body += mstr(password)
    return packet(CONNECT, header_flags, body)


def publish_pkt(topic, payload=b"", qos: int = 0, pid: Optional[int] = None, retain: bool = False,
                dup: bool = False) -> bytes:
    flags = (0x08 if dup else 0) | ((qos & 3) << 1) | (1 if retain else 0)
    body = mstr(topic)
    if qos > 0:
        body += struct.pack("!H", 1 if pid is None else pid)
    body += payload if isinstance(payload, bytes) else payload.encode()
    return packet(PUBLISH, flags, body)


def ack_pkt(ptype: int, pid: int) -> bytes:
    return packet(ptype, 0x02 if ptype == PUBREL else 0, struct.pack("!H", pid))


def puback(pid): return ack_pkt(PUBACK, pid)
def pubrec(pid): return ack_pkt(PUBREC, pid)
def pubrel(pid): return ack_pkt(PUBREL, pid)
def pubcomp(pid): return ack_pkt(PUBCOMP, pid)


def subscribe_pkt(pid: int, filters: Iterable[tuple], header_flags: int = 0x02) -> bytes:
    body = struct.pack("!H", pid)
    for flt, qos in filters:
        body += mstr(flt) + bytes([qos])
    return packet(SUBSCRIBE, header_flags, body)


def unsubscribe_pkt(pid: int, filters: Iterable, header_flags: int = 0x02) -> bytes:
    body = struct.pack("!H", pid)
    for flt in filters:
        body += mstr(flt)
    return packet(UNSUBSCRIBE, header_flags, body)


PINGREQ_PKT = bytes([0xC0, 0x00])
DISCONNECT_PKT = bytes([0xE0, 0x00])


@dataclass
class Packet:
    type: int
    flags: int
    body: bytes

    @property
    def name(self):
        return NAMES.get(self.type, f"type{self.type}")

    # PUBLISH
    @property
    def qos(self):
        return (self.flags >> 1) & 3

    @property
    def dup(self):
        return bool(self.flags & 0x08)

    @property
    def retain(self):
        return bool(self.flags & 0x01)

    @property
    def topic(self) -> str:
        (n,) = struct.unpack_from("!H", self.body, 0)
        return self.body[2:2 + n].decode("utf-8")

    @property
    def pid(self) -> int:
        if self.type == PUBLISH:
            (n,) = struct.unpack_from("!H", self.body, 0)
            return struct.unpack_from("!H", self.body, 2 + n)[0] if self.qos else 0
        return struct.unpack_from("!H", self.body, 0)[0]

    @property
    def payload(self) -> bytes:
        (n,) = struct.unpack_from("!H", self.body, 0)
        return self.body[2 + n + (2 if self.qos else 0):]

    # CONNACK
    @property
    def session_present(self):
        return bool(self.body[0] & 1)

    @property
    def rc(self):
        return self.body[1]

    # SUBACK
    @property
    def granted(self) -> list:
        return list(self.body[2:])

    def __repr__(self):
        if self.type == PUBLISH:
            return (f"PUBLISH(topic={self.topic!r}, qos={self.qos}, dup={self.dup}, "
                    f"retain={self.retain}, pid={self.pid}, payload={self.payload[:40]!r})")
        return f"{self.name}(flags={self.flags:#x}, body={self.body[:40].hex()})"


class Closed(Exception):
    """The peer closed the connection."""


class RawClient:
    """A TCP socket speaking hand-made MQTT. recv_packet() waits with a timeout."""

    def __init__(self, port: int, host: str = HOST, connect_timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.backlog: list[Packet] = []
        self.closed = False

    def send(self, data: bytes):
        self.sock.sendall(data)

    def try_send(self, data: bytes) -> bool:
        """Send, tolerating a peer that already closed. Returns False if the send failed."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout("no data")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("no data") from None
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            raise Closed()
        self.buf += data

    def _try_parse(self) -> Optional[Packet]:
        if len(self.buf) < 2:
            return None
        mult, rl, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            rl += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
            if i > 4:
                raise AssertionError(f"broker sent a malformed remaining length: {bytes(self.buf[:6]).hex()}")
        if len(self.buf) < i + rl:
            return None
        p = Packet(self.buf[0] >> 4, self.buf[0] & 0x0F, bytes(self.buf[i:i + rl]))
        del self.buf[:i + rl]
        return p

    def recv_packet(self, timeout: float = WAIT) -> Packet:
        """The next packet (set-aside packets first). Raises Timeout, or Closed if the broker
        closed the connection."""
        if self.backlog:
            return self.backlog.pop(0)
        return self._next_unbuffered(timeout)

    def wait_for(self, ptype: int, pid: Optional[int] = None, timeout: float = WAIT) -> Packet:
        """The next packet of `ptype` (and packet id); other packets are set aside for later
        recv_packet()/expect() calls (e.g. our own PUBLISH coming back before the PUBACK)."""
        for i, p in enumerate(self.backlog):
            if p.type == ptype and (pid is None or p.pid == pid):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        aside = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout(f"no {NAMES[ptype]} within {timeout}s (got {aside})")
                p = self._next_unbuffered(left)
                if p.type == ptype and (pid is None or p.pid == pid):
                    return p
                aside.append(p)
        finally:
            self.backlog.extend(aside)

    def _next_unbuffered(self, timeout: float) -> Packet:
        deadline = time.monotonic() + timeout
        while True:
            p = self._try_parse()
            if p:
                return p
            try:
                self._fill(deadline)
            except Timeout:
                raise Timeout(f"no packet within {timeout}s") from None

    def expect(self, ptype: int, timeout: float = WAIT) -> Packet:
        p = self.recv_packet(timeout)
        assert p.type == ptype, f"expected {NAMES[ptype]}, got {p!r}"
        return p

    def expect_no_packet(self, within: float = QUIET):
        try:
            p = self.recv_packet(within)
        except Timeout:
            return
        raise AssertionError(f"unexpected packet {p!r}")

    def wait_closed(self, timeout: float = WAIT, allow: Iterable[int] = ()) -> tuple[float, list]:
        """Wait until the broker closes the connection. Packets of the types in `allow` may arrive
        first (returned); any other packet fails. Returns (seconds waited, packets)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        got = []
        allow = set(allow)
        while True:
            try:
                p = self.recv_packet(max(0.0, deadline - time.monotonic()))
            except Closed:
                return time.monotonic() - t0, got
            except Timeout:
                raise Timeout(f"connection still open after {timeout}s (got {got})") from None
            assert p.type in allow, f"expected the connection to close, got {p!r}"
            got.append(p)

    def connect(self, client_id="raw", clean: bool = True, keepalive: int = 60,
                timeout: float = WAIT, **kw) -> Packet:
        """CONNECT and wait for CONNACK (returned; rc not checked)."""
        self.send(connect_pkt(client_id, clean, keepalive, **kw))
        return self.expect(CONNACK, timeout)

    def subscribe(self, pid: int, filters, timeout: float = WAIT) -> Packet:
        self.send(subscribe_pkt(pid, filters))
        p = self.expect(SUBACK, timeout)
        assert p.pid == pid
        return p

    def publish(self, topic, payload=b"", qos=0, pid=None, retain=False, dup=False,
                timeout: float = WAIT):
        """PUBLISH and complete the QoS handshake as a sender (packets that arrive meanwhile,
        e.g. our own message if we are subscribed, are kept for later expect() calls)."""
        pid = pid or 1
        self.send(publish_pkt(topic, payload, qos, pid, retain, dup))
        if qos == 1:
            self.wait_for(PUBACK, pid, timeout)
        elif qos == 2:
            self.wait_for(PUBREC, pid, timeout)
            self.send(pubrel(pid))
            self.wait_for(PUBCOMP, pid, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with RST (SO_LINGER 0)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------------------------
# mosquitto command-line clients
# --------------------------------------------------------------------------------------------

PUB_BIN = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
SUB_BIN = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
STDBUF = [shutil.which("stdbuf"), "-oL"] if shutil.which("stdbuf") else []

# -d output: "Client x received PUBLISH (d0, q1, r0, m1, 'topic', ... (5 bytes))"
RECEIVED_RE = re.compile(r"received PUBLISH \(d(\d), q(\d), r(\d), m(\d+), '(.*)', \.\.\. \((\d+) bytes\)\)")


def mosquitto_pub(port: int, topic: str, message: str = "", qos: int = 0, retain: bool = False,
                  extra: Iterable[str] = (), timeout: float = WAIT, check: bool = True):
    cmd = [PUB_BIN, "-h", HOST, "-p", str(port), "-t", topic, "-q", str(qos), "-d"]
    cmd += ["-n"] if message is None else ["-m", message]
    if retain:
        cmd.append("-r")
    cmd += list(extra)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


@dataclass
class SubReceived:
    topic: str
    qos: int
    retain: bool
    dup: bool
    payload: str


class MosquittoSub:
    """mosquitto_sub -d -v in the background. start() returns once the SUBACK is printed."""

    def __init__(self, port: int, topics, qos: int = 0, count: Optional[int] = None,
                 wait_s: int = 10, extra: Iterable[str] = ()):
        topics = [topics] if isinstance(topics, str) else list(topics)
        # stdbuf: mosquitto_sub's stdout is block-buffered on a pipe; line-buffer it so the
        # SUBACK line is seen when it is printed.
        self.cmd = STDBUF + [SUB_BIN, "-h", HOST, "-p", str(port), "-q", str(qos), "-v", "-d",
                    "-W", str(wait_s)]
        for t in topics:
            self.cmd += ["-t", t]
        if count is not None:
            self.cmd += ["-C", str(count)]
        self.cmd += list(extra)
        self.wait_s = wait_s
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.all_lines: list[str] = []
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = WAIT) -> "MosquittoSub":
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)
        self._reader_thread = threading.Thread(target=self._reader, daemon=True)
        self._reader_thread.start()
        self.wait_line(lambda l: l.startswith("Subscribed (mid:"), timeout)
        return self

    def _reader(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.all_lines.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_line(self, pred, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"mosquitto_sub: no matching line within {timeout}s:\n"
                              + "\n".join(self.all_lines[-20:]))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("mosquitto_sub exited:\n" + "\n".join(self.all_lines[-20:]))
            if pred(line):
                return line

    def finish(self, timeout: Optional[float] = None) -> list[SubReceived]:
        """Wait for the process to exit (after -C messages or -W seconds); parse what it got."""
        timeout = timeout if timeout is not None else self.wait_s + 5
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Timeout(f"mosquitto_sub did not exit within {timeout}s")
        self._reader_thread.join(5)
        return self.received()

    def received(self) -> list[SubReceived]:
        """Messages in reception order. The -d line "received PUBLISH (dX, qX, rX, ...)" gives the
        flags; the -v line "topic payload" is printed when the message is complete (for QoS 2
        only after PUBREL, possibly after other messages' lines), so payload lines are matched
        to receptions per topic, first come first served."""
        lines = list(self.all_lines)
        receptions = []
        printed = []
        for line in lines:
            m = RECEIVED_RE.search(line)
            if m:
                receptions.append(m.groups())
            elif not line.startswith("Client ") and not line.startswith("Subscribed (mid:"):
                printed.append(line)
        out = []
        used = set()
        for d, q, r, mid, topic, nbytes in receptions:
            payload = None
            for i, line in enumerate(printed):
                if i not in used and (line.startswith(topic + " ") or line == topic):
                    used.add(i)
                    payload = line[len(topic) + 1:]
                    break
            out.append(SubReceived(topic, int(q), r == "1", d == "1", payload))
        return out

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


# --------------------------------------------------------------------------------------------
# misc
# --------------------------------------------------------------------------------------------

_counter = [0]
_counter_lock = threading.Lock()


def close_quietly(clients) -> None:
    """Teardown of client fixtures: close each, whatever state a failed test left it in."""
    for c in clients:
        try:
            c.close()
        except Exception:
            pass


def uid(prefix: str = "c") -> str:
    """A client id / topic segment unique within this process (ids stay <= 23 chars)."""
    with _counter_lock:
        _counter[0] += 1
        n = _counter[0]
    return f"{prefix}{os.getpid() % 100000}-{n}"[:23]


# --------------------------------------------------------------------------------------------
# Broker log, signals and the passwd subcommand (auth, ACL and limits tests)
# --------------------------------------------------------------------------------------------

def wait_for_log(broker: "Broker", pattern: str, timeout: float = WAIT, count: int = 1) -> str:
    """Wait until the broker log has `count` lines matching the regex; returns the last one."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = broker.log_path.read_text(errors="replace")
        except OSError:
            text = ""
        hits = [line for line in text.splitlines() if rx.search(line)]
        if len(hits) >= count:
            return hits[-1]
        if time.monotonic() >= deadline:
            raise Timeout(f"no {count} log line(s) matching {pattern!r} within {timeout}s "
                          f"(found {len(hits)})")
        time.sleep(0.05)


def reload_broker(broker: "Broker", timeout: float = WAIT) -> str:
    """SIGHUP and wait for the broker's reload result line (success or error)."""
    rx = r"reload: (password file and ACL reloaded|.*keeping the previous rules)"
    before = len([l for l in broker.log_path.read_text(errors="replace").splitlines()
                  if re.search(rx, l)])
    broker.proc.send_signal(signal.SIGHUP)
    return wait_for_log(broker, rx, timeout, count=before + 1)


def meshmq_passwd(args: list, password: Optional[str] = None, timeout: float = WAIT):
    """Run `meshmq passwd ARGS` (with --password-stdin when a password is given)."""
    cmd = [str(meshmq_bin()), "passwd"] + [str(a) for a in args]
    if password is not None:
        cmd.append("--password-stdin")
    return subprocess.run(cmd, input=(password + "\n") if password is not None else "",
                          capture_output=True, text=True, timeout=timeout)


def expect_startup_failure(workdir: Path, opts: dict, pattern: str):
    """Starting meshmq with `opts` fails, and the log explains why (regex `pattern`)."""
    b = Broker(workdir, opts)
    try:
        b.start(timeout=5, attempts=1)
    except AssertionError as e:
        assert re.search(pattern, str(e)), str(e)
    else:
        raise AssertionError(f"meshmq started with {opts}")
    finally:
        b.stop()
