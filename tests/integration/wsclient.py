"""A minimal WebSocket client (RFC 6455) for tests that need control below paho's websocket
transport: hand-made handshakes, text or oversized frames, MQTT packets split over or packed into
frames, and the Chrome DevTools protocol for the browser test. Every read has a timeout.

- upgrade(): the HTTP upgrade only; returns the status, headers and body (refusals included).
- WsConn: frames over an upgraded socket.
- RawWsClient: harness.RawClient speaking over WebSocket, so its packet helpers (connect,
  wait_for, wait_closed, ...) work unchanged; every send() is one binary frame.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import struct
import time
from typing import Optional

from harness import HOST, WAIT, Closed, RawClient, Timeout

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True,
          length: Optional[int] = None) -> bytes:
    """One frame; `length` overrides the announced payload length (for oversized headers)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def open_socket(port: int, host: str = HOST, ssl_context: Optional[ssl.SSLContext] = None,
                timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ssl_context is not None:
        sock = ssl_context.wrap_socket(sock, server_hostname=host)
    return sock


def upgrade(sock: socket.socket, path: str = "/mqtt", protocols: Optional[str] = "mqtt",
            host: str = HOST, request: Optional[bytes] = None, timeout: float = WAIT):
    """Sends an upgrade request (or `request` verbatim) and reads the response head (and, for a
    refusal, its body). Returns (status, {lower-case header: value}, body, leftover bytes)."""
    if request is None:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if protocols is not None:
            lines.append(f"Sec-WebSocket-Protocol: {protocols}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    sock.sendall(request)
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = _recv(sock, deadline)
        if not chunk:
            raise Closed(f"closed during the upgrade (got {data!r})")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if status != 101:
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = _recv(sock, deadline)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest[:length], b""
    return status, headers, b"", rest


def _recv(sock: socket.socket, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Timeout("no data")
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except socket.timeout:
        raise Timeout("no data") from None
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return b""


class WsConn:
    """Frames over an upgraded socket. recv_frame() answers pings itself."""

    def __init__(self, sock: socket.socket, leftover: bytes = b""):
        self.sock = sock
        self.inbuf = bytearray(leftover)
        self.close_code: Optional[int] = None

    def send_frame(self, opcode: int, payload: bytes = b"", **kw):
        self.sock.sendall(frame(opcode, payload, **kw))

    def recv_frame(self, timeout: float = WAIT) -> tuple[int, bool, bytes]:
        """(opcode, fin, payload). A close frame sets close_code and raises Closed, and so does
        the end of the connection."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse()
            if f is not None:
                opcode, fin, payload = f
                if opcode == CLOSE:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    raise Closed(f"close frame {self.close_code}")
                if opcode == PING:
                    self.send_frame(PONG, payload)
                    continue
                return f
            chunk = _recv(self.sock, deadline)
            if not chunk:
                raise Closed("connection closed without a close frame")
            self.inbuf += chunk

    def recv_message(self, timeout: float = WAIT) -> bytes:
        deadline = time.monotonic() + timeout
        parts = []
        while True:
            _, fin, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            parts.append(payload)
            if fin:
                return b"".join(parts)

    def _parse(self):
        b = self.inbuf
        if len(b) < 2:
            return None
        n, i = b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, i = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, i = struct.unpack("!Q", b[2:10])[0], 10
        assert not b[1] & 0x80, "the server masked a frame (RFC 6455 5.1 forbids it)"
        if len(b) < i + n:
            return None
        f = (b[0] & 0x0F, bool(b[0] & 0x80), bytes(b[i:i + n]))
        del b[:i + n]
        return f

    def wait_closed(self, timeout: float = WAIT) -> Optional[int]:
        """Reads until the server ends the connection; returns the close code (None if it just
        dropped the socket). Data frames on the way are ignored."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.recv_frame(max(0.01, deadline - time.monotonic()))
        except Closed:
            return self.close_code

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RawWsClient(RawClient):
    """RawClient over WebSocket: send() puts its bytes in one binary frame; received binary frames
    feed the packet parser. `ws` gives frame-level access."""

    def __init__(self, port: int, path: str = "/mqtt", protocols: str = "mqtt",
                 host: str = HOST, ssl_context: Optional[ssl.SSLContext] = None):
        self.sock = open_socket(port, host, ssl_context)
        status, headers, body, leftover = upgrade(self.sock, path, protocols, host)
        assert status == 101, f"upgrade refused: {status} {body!r}"
        self.headers = headers
        self.ws = WsConn(self.sock, leftover)
        self.buf = bytearray()
        self.backlog = []
        self.closed = False

    def send(self, data: bytes):
        self.ws.send_frame(BINARY, data)

    def try_send(self, data: bytes) -> bool:
        try:
            self.send(data)
            return True
        except OSError:
            return False

    def _fill(self, deadline: float) -> None:
        try:
            opcode, _, payload = self.ws.recv_frame(max(0.0, deadline - time.monotonic()))
        except Closed:
            self.closed = True
            raise
        assert opcode in (BINARY, CONT), f"broker sent a non-binary frame (opcode {opcode})"
        self.buf += payload
