"""MQTT.js (npm `mqtt`, pinned in node/package-lock.json) over WebSocket: in Node, and in headless
Chromium through the example page examples/browser/index.html, whose received messages are read
from the DOM over the Chrome DevTools protocol. node/install.sh installs MQTT.js (npm ci, once per
lock file); Node/npm and /usr/bin/chromium come from scripts/deps.sh.
"""

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path

import pytest

from harness import FREE_PORT, HOST, REPO_ROOT, Client, Timeout, uid
from wsclient import TEXT, WsConn, open_socket, upgrade

NODE_DIR = Path(__file__).resolve().parent / "node"
MQTT_DIST = NODE_DIR / "node_modules" / "mqtt" / "dist"
PAGE = REPO_ROOT / "examples" / "browser" / "index.html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [pytest.mark.meshmq_only("MQTT over WebSocket listener"),
              pytest.mark.broker_opts(**{"listeners.ws.port": FREE_PORT}),
              pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def mqttjs():
    r = subprocess.run([str(NODE_DIR / "install.sh")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"node/install.sh failed:\n{r.stdout}\n{r.stderr}"
    assert (MQTT_DIST / "mqtt.min.js").exists()


def ws_url(broker):
    return f"ws://{HOST}:{broker.ports['listeners.ws.port']}/mqtt"


def test_mqttjs_in_node(broker, mqttjs):
    prefix = f"js/{uid('n')}"
    with Client(broker.port, uid("tcp")) as tcp:
        tcp.connect()
        tcp.subscribe(f"{prefix}/to-tcp", 1)
        r = subprocess.run(["node", "mqttjs_test.mjs", ws_url(broker), prefix], cwd=NODE_DIR,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "PASS" in r.stdout, f"{r.stdout}\n{r.stderr}"
        assert tcp.expect_message().payload == b"from mqtt.js"


# ---- the example page in headless Chromium -------------------------------------------------

class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves the example page and MQTT.js's browser bundle, nothing else."""
    routes = {"/index.html": PAGE, "/mqtt.min.js": MQTT_DIST / "mqtt.min.js"}

    def translate_path(self, path):
        return str(self.routes.get(path.split("?", 1)[0], "/nonexistent"))

    def log_message(self, *args):
        pass


class DevTools:
    """The Chrome DevTools protocol over one page's WebSocket: evaluate JavaScript."""

    def __init__(self, port: int, page_url_part: str, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(f"http://{HOST}:{port}/json/list", timeout=5) as f:
                pages = [t for t in json.load(f) if t.get("type") == "page"
                         and page_url_part in t.get("url", "")]
            if pages:
                break
            if time.monotonic() > deadline:
                raise Timeout("Chromium shows no page for the example client")
            time.sleep(0.1)
        path = re.sub(r"^ws://[^/]+", "", pages[0]["webSocketDebuggerUrl"])
        sock = open_socket(port)
        status, _, body, rest = upgrade(sock, path, protocols=None)
        assert status == 101, (status, body)
        self.ws = WsConn(sock, rest)
        self.next_id = 0

    def evaluate(self, expression: str):
        self.next_id += 1
        self.ws.send_frame(TEXT, json.dumps({"id": self.next_id, "method": "Runtime.evaluate",
                                             "params": {"expression": expression,
                                                        "returnByValue": True}}).encode())
        while True:
            reply = json.loads(self.ws.recv_message(10))
            if reply.get("id") == self.next_id:
                return reply["result"]["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                status = self.evaluate("document.getElementById('status').textContent")
                raise Timeout(f"page: {what} not within {timeout}s (status: {status})")
            time.sleep(0.1)

    def close(self):
        self.ws.close()


@pytest.fixture
def page_server(mqttjs):
    server = http.server.ThreadingHTTPServer((HOST, 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def chromium(tmp_path):
    """chromium(url) -> DevTools of headless Chromium showing `url`; killed at teardown."""
    procs = []

    def start(url):
        p = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        procs.append(p)
        port_file = tmp_path / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert p.poll() is None, f"chromium exited {p.returncode}: {p.stderr.read()}"
            if time.monotonic() > deadline:
                raise Timeout("chromium did not open its DevTools port within 30 s")
            time.sleep(0.1)
        return DevTools(int(port_file.read_text().split()[0]), "index.html")

    yield start
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(10)


def test_example_page_in_headless_chromium(broker, page_server, chromium):
    topic = f"browser/{uid('b')}"
    url = (f"http://{HOST}:{page_server}/index.html?url={ws_url(broker)}&topic={topic}/in"
           f"&pubtopic={topic}/out&autoconnect=1")
    page = chromium(url)
    try:
        page.wait_for('document.getElementById("status").textContent === "subscribed"',
                      "subscription")
        with Client(broker.port, uid("tcp")) as tcp:
            tcp.connect()
            tcp.subscribe(f"{topic}/out", 1)
            for i in range(3):
                tcp.publish(f"{topic}/in", f"to the browser {i}".encode(), qos=1)
            items = page.wait_for(
                '(() => { const li = [...document.querySelectorAll("#messages li")];'
                ' return li.length >= 3 ? li.map(e => e.textContent) : null; })()',
                "three messages in the DOM")
            assert items == [f"{topic}/in: to the browser {i}" for i in range(3)]
            # And the other way: the page's publish form.
            page.evaluate('document.getElementById("message").value = "from chromium";'
                          'document.querySelector("#publish button").click(); true')
            m = tcp.expect_message()
            assert (m.topic, m.payload) == (f"{topic}/out", b"from chromium")
    finally:
        page.close()
