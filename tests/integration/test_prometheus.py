"""A real Prometheus server (Debian's `prometheus`) scrapes a node's /metrics, and a value comes
back through Prometheus' HTTP API. meshmq only.
"""

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from harness import HOST, free_port, uid

pytestmark = [pytest.mark.meshmq_only("meshmq's /metrics"), pytest.mark.timeout(90)]


def prometheus_bin() -> str:
    # scripts/deps.sh (run by scripts/run-tests.sh) installs Debian's prometheus package.
    path = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert shutil.which(path), "prometheus not found: run scripts/deps.sh (Debian package prometheus)"
    return path


class Prometheus:
    def __init__(self, workdir, target_port: int):
        self.workdir = workdir
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: meshmq\n"
            f"    static_configs:\n      - targets: ['{HOST}:{target_port}']\n")
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [prometheus_bin(), f"--config.file={config}",
             f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address={HOST}:{self.port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, start_new_session=True)

    def query(self, expr: str):
        url = f"http://{HOST}:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_value(self, expr: str, pred, timeout: float = 45.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "prometheus exited:\n" + self.log_tail()
            try:
                result = self.query(expr)
                if result:
                    last = float(result[0]["value"][1])
                    if pred(last):
                        return last
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        raise AssertionError(f"{expr}: no satisfying value within {timeout}s (last {last})\n"
                             + self.log_tail())

    def log_tail(self) -> str:
        self.log.flush()
        return (self.workdir / "prometheus.log").read_text(errors="replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def test_prometheus_scrapes_the_node(broker, client, tmp_path):
    prom = Prometheus(tmp_path, broker.http_port)
    try:
        c = client(uid("prom"))
        c.connect()
        assert prom.wait_value('up{job="meshmq"}', lambda v: v == 1) == 1
        assert prom.wait_value("meshmq_connections", lambda v: v >= 1) >= 1
        for i in range(3):
            c.publish("prom/x", b"1", qos=1)
        received = 'sum(meshmq_messages_received_total{job="meshmq"})'
        assert prom.wait_value(received, lambda v: v >= 3) >= 3
    finally:
        prom.stop()
