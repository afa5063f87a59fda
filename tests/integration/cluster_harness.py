"""Multi-node helpers for the cluster tests: N real meshmq nodes on 127.0.0.1, .2, .3, ...

ClusterNode is a harness.Broker on its own loopback address with a fixed MQTT port and cluster
port (so a node killed with SIGKILL restarts at the same address), and log-line waits. The
`cluster_factory` fixture (see test_cluster.py's use) starts nodes that all list each other as
seeds, all at once unless asked otherwise, and waits until every node has a stream to every other.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Optional

import harness

#: Fast failure detection for tests: a killed node is down after 2 s, its routes go 1 s later.
FAST = {
    "cluster.heartbeat": "1s",
    "cluster.down_after": "2s",
    "cluster.route_grace": "1s",
    "cluster.anti_entropy": "2s",
}


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


#: Lock files, one per port handed out, held open (flock) until this process exits.
_PORT_LOCKS = Path("/tmp/meshmq-test-ports")
_held: list = []


def _reserve(host: str, port: int) -> bool:
    """Claims host:port for this process against every other test process on the machine.

    ctest runs test files in parallel, and a node that was stopped to be restarted leaves its
    ports free in between: a cluster test in another process could pick them then, and the
    restart would fail with "Address already in use". A flock dies with its process, so a
    crashed run leaves nothing locked."""
    _PORT_LOCKS.mkdir(parents=True, exist_ok=True)
    fd = os.open(_PORT_LOCKS / f"{host}:{port}", os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held.append(fd)
    return True


def free_ports(host: str, count: int) -> list[int]:
    """Ports free on host a moment ago, all different, below the kernel's ephemeral range, and
    reserved for this process (see _reserve) so they stay ours across restarts.

    A node restarts on the same ports after kill -9. A port from the ephemeral range may by then
    be the source port of an outgoing connection to that address (a peer redialling the node, a
    readiness probe: on loopback the source address is the destination's), and the restart fails
    with "Address already in use". The sockets stay bound until every port is picked."""
    low = max(1024, min(_ephemeral_range()[0], 32768) - 12000)
    high = min(_ephemeral_range()[0], 32768) - 1
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(200 * count):
            if len(ports) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, random.randint(low, high)))
            except OSError:
                s.close()
                continue
            socks.append(s)
            port = s.getsockname()[1]
            if _reserve(host, port):
                ports.append(port)
        if len(ports) < count:
            raise RuntimeError(f"no {count} free ports in {low}-{high} on {host}")
        return ports
    finally:
        for s in socks:
            s.close()


def free_port(host: str) -> int:
    return free_ports(host, 1)[0]


class ClusterNode(harness.Broker):
    def __init__(self, workdir: Path, index: int, opts: Optional[dict] = None):
        self.host = f"127.0.0.{index}"
        self.index = index
        super().__init__(workdir, opts, name=f"node{index}")
        self.port, self.cluster_port, self.http_port = free_ports(self.host, 3)
        self.address = f"{self.host}:{self.cluster_port}"

    def configure(self, seeds: list[str]):
        self.opts = {
            **FAST,
            "listeners.tcp.bind": self.host,
            "cluster.bind": self.host,
            "cluster.port": self.cluster_port,
            "cluster.seeds": ",".join(seeds),
            "http.bind": self.host,
            **self.opts,
        }

    def spawn(self):
        """Start the process without waiting (nodes of one cluster start together)."""
        self._spawn()

    def wait_ready(self, timeout: float = harness.WAIT) -> "ClusterNode":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}\n"
                                     f"{self.log_tail()}")
            if harness.port_accepts(self.port, self.host):
                self.started = True
                return self
            time.sleep(0.02)
        raise AssertionError(f"{self.name} not accepting on {self.host}:{self.port}\n"
                             f"{self.log_tail()}")

    def terminate(self, timeout: float = 15.0) -> int:
        """A graceful stop (SIGTERM, as Kubernetes does in a rolling restart): returns the exit
        code; restart() brings the node back with its data."""
        return self.stop(timeout=timeout)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def restart(self, timeout: float = harness.WAIT) -> "ClusterNode":
        self._spawn()
        return self.wait_ready(timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def count_log(self, pattern: str, since: int = 0) -> int:
        return len(re.findall(pattern, self.log_text()[since:]))

    def log_size(self) -> int:
        return len(self.log_text())

    def wait_log(self, pattern: str, count: int = 1, timeout: float = harness.WAIT,
                 since: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count_log(pattern, since) >= count:
                return
            self.assert_alive()
            time.sleep(0.05)
        raise harness.Timeout(f"{self.name}: {count} x /{pattern}/ not logged within {timeout}s\n"
                              f"{self.log_tail(30)}")

    def client(self, client_id: str = "", **kw) -> harness.Client:
        return harness.Client(self.port, client_id, host=self.host, **kw)


def links_up(node: ClusterNode, peers: list[ClusterNode]) -> bool:
    text = node.log_text()
    return all(re.search(rf"link to {p.name} at \S+ up", text) for p in peers)


def wait_formed(nodes: list[ClusterNode], timeout: float = 15.0, since: Optional[dict] = None,
                fresh: Optional[ClusterNode] = None):
    """Every node has an open stream to every other one (each logs 'link to X ... up'). With
    `fresh` (a restarted node) and `since` (log offsets), only the links to and from it, logged
    after the offsets, count."""
    deadline = time.monotonic() + timeout
    since = since or {}
    while time.monotonic() < deadline:
        ok = True
        for n in nodes:
            n.assert_alive()
            text = n.log_text()[since.get(n.name, 0):]
            for p in nodes:
                if fresh is not None and fresh not in (n, p):
                    continue
                if p is not n and not re.search(rf"link to {p.name} at \S+ up", text):
                    ok = False
        if ok:
            return
        time.sleep(0.05)
    raise harness.Timeout("cluster did not form within %.0fs:\n%s" % (
        timeout, "\n".join(f"--- {n.name}\n{n.log_tail(15)}" for n in nodes)))


class TcpProxy:
    """A loopback TCP proxy in front of a node's cluster port, to cut the network between nodes:
    stop() closes the listener and every connection through it (the nodes see their streams
    fail and their dials refused, as with a real partition), start() listens again on the same
    address. Nodes advertise the proxy's address (cluster.advertise), so all traffic to the node
    goes through it."""

    def __init__(self, host: str, target: tuple[str, int]):
        self.host, self.target = host, target
        self.port = free_port(host)
        self.address = f"{host}:{self.port}"
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener: Optional[socket.socket] = None

    def start(self) -> "TcpProxy":
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(64)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()
        return self

    def stop(self):
        with self._lock:
            ls, self._listener = self._listener, None
            socks, self._socks = self._socks, []
        if ls is not None:
            try:
                ls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            ls.close()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, ls: socket.socket):
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=2)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not ls:  # stopped meanwhile
                    client.close()
                    upstream.close()
                    return
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
