"""The HTTP port: /metrics (Prometheus text, checked by promtool), /healthz, /readyz, the admin API
with its bearer token, and `meshmq ctl` using it. meshmq only.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from harness import meshmq_bin, uid

pytestmark = [pytest.mark.meshmq_only("meshmq's HTTP endpoint"), pytest.mark.timeout(60)]

TOKEN = "s3cret-token"
ADMIN = {"admin.token": TOKEN}


def promtool() -> str:
    # scripts/deps.sh (run by scripts/run-tests.sh) installs Debian's prometheus, which has it.
    path = shutil.which("promtool")
    assert path, "promtool not found: run scripts/deps.sh (Debian package prometheus)"
    return path


def metric(body: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", body, re.M)
    assert m, f"{name}{labels} not in /metrics"
    return float(m.group(1))


def api(broker, path, method="GET", token=TOKEN):
    status, ctype, body = broker.http(path, method, token)
    return status, (json.loads(body) if ctype.startswith("application/json") else body)


def ctl(broker, *args, token=TOKEN, env_token=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHMQ_")}
    cmd = [str(meshmq_bin()), "ctl", "--url", f"http://127.0.0.1:{broker.http_port}"]
    if token is not None and env_token:
        env["MESHMQ_ADMIN_TOKEN"] = token
    elif token is not None:
        cmd += ["--token", token]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=20, env=env)


def test_metrics_pass_promtool_and_move_with_traffic(broker, client):
    sub = client(uid("sub"))
    sub.connect()
    sub.subscribe("m/#", 1)
    pub = client(uid("pub"))
    pub.connect()
    for qos in (0, 1, 2):
        pub.publish(f"m/{qos}", b"12345", qos=qos)
    sub.expect_messages(3)
    status, ctype, body = broker.http("/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    text = body.decode()
    check = subprocess.run([promtool(), "check", "metrics"], input=body, capture_output=True,
                           timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert metric(text, "meshmq_connections") == 2
    assert metric(text, "meshmq_subscriptions") == 1
    for qos in ("0", "1", "2"):
        assert metric(text, "meshmq_messages_received_total", f'{{qos="{qos}"}}') == 1
        assert metric(text, "meshmq_messages_received_bytes_total", f'{{qos="{qos}"}}') == 5
    assert metric(text, "meshmq_packets_received_total", '{type="publish"}') == 3
    assert metric(text, "meshmq_packets_sent_total", '{type="connack"}') == 2
    assert metric(text, "meshmq_publish_deliver_latency_seconds_count") >= 3
    assert metric(text, "meshmq_process_resident_memory_bytes") > 1e6
    assert metric(text, "meshmq_process_open_fds") >= 4
    assert metric(text, "meshmq_process_cpu_seconds_total") >= 0
    # Every name carries the prefix; counters end in _total.
    for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M):
        assert m.group(1).startswith("meshmq_")
        assert (m.group(2) == "counter") == m.group(1).endswith("_total"), m.group(1)


def test_storage_and_cluster_series(broker, client):
    # A persistent subscriber offline: the publishes are queued in RocksDB.
    who = uid("durable")
    durable = client(who, clean_session=False)
    durable.connect()
    durable.subscribe("st/#", 1)
    durable.disconnect()
    pub = client(uid("pub"))
    pub.connect()
    for _ in range(5):
        pub.publish("st/x", b"0123456789", qos=1)
    status, _, body = broker.http("/metrics")
    text = body.decode()
    check = subprocess.run([promtool(), "check", "metrics"], input=body, capture_output=True,
                           timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert metric(text, "meshmq_storage_commits_total") >= 1
    assert metric(text, "meshmq_storage_keys_written_total") >= 5
    assert metric(text, "meshmq_storage_written_bytes_total") >= 50
    assert metric(text, "meshmq_storage_wal_written_bytes_total") >= 50
    assert metric(text, "meshmq_storage_memtable_bytes") > 0
    assert metric(text, "meshmq_storage_disk_bytes") > 0
    assert metric(text, "meshmq_storage_healthy") == 1
    assert metric(text, "meshmq_storage_write_stopped") == 0
    assert metric(text, "meshmq_storage_write_delay_rate_bytes_per_second") == 0
    assert metric(text, "meshmq_storage_write_stall_seconds_total") == 0
    for name in ("meshmq_storage_sst_bytes", "meshmq_storage_live_data_bytes",
                 "meshmq_storage_pending_compaction_bytes", "meshmq_storage_syncs_total",
                 "meshmq_storage_write_errors_total", "meshmq_storage_flush_written_bytes_total",
                 "meshmq_storage_compaction_written_bytes_total"):
        assert metric(text, name) >= 0
    # Alone: the cluster series exist with zeros, so dashboards and alerts need no special case.
    for direction in ("out", "in"):
        assert metric(text, "meshmq_cluster_forwarded_messages_total",
                      f'{{direction="{direction}"}}') == 0
    assert metric(text, "meshmq_cluster_forward_pending_messages") == 0
    assert metric(text, "meshmq_cluster_peers", '{state="left"}') == 0


def test_health_and_readiness(broker):
    assert broker.http("/healthz")[:1] == (200,)
    status, body = api(broker, "/readyz", token=None)
    assert (status, body) == (200, {"ready": True})
    assert broker.http("/nope")[0] == 404


@pytest.mark.broker_opts(**ADMIN)
def test_admin_api_needs_the_token(broker):
    assert api(broker, "/api/v1/clients", token=None)[0] == 401
    assert api(broker, "/api/v1/clients", token="wrong")[0] == 401
    assert api(broker, "/api/v1/clients", token=TOKEN[:-1])[0] == 401
    assert api(broker, "/api/v1/clients")[0] == 200
    # Metrics and health stay open for scrapers and load balancers.
    assert broker.http("/metrics")[0] == 200


def test_admin_api_off_without_a_configured_token(broker):
    status, body = api(broker, "/api/v1/clients", token="")
    assert status == 403 and "admin.token" in body["error"]


@pytest.mark.broker_opts(**ADMIN)
def test_clients_subscriptions_retained_cluster_and_kick(broker, client):
    who = uid("adm")
    c = client(who)
    c.connect()
    c.subscribe([("a/+", 1), ("b", 0)])
    c.publish("keep/me", b"retained!", qos=1, retain=True)
    status, body = api(broker, "/api/v1/clients")
    assert status == 200
    mine = [x for x in body["clients"] if x["client_id"] == who]
    assert mine and mine[0]["connected"] and mine[0]["subscriptions"] == 2
    assert mine[0]["peer"].startswith("127.0.0.1:")
    status, body = api(broker, f"/api/v1/subscriptions?client_id={who}")
    assert sorted((s["filter"], s["qos"]) for s in body["subscriptions"]) == [("a/+", 1), ("b", 0)]
    status, body = api(broker, "/api/v1/retained?filter=keep%2F%23")
    assert [(r["topic"], r["payload"]) for r in body["retained"]] == [("keep/me", "retained!")]
    status, body = api(broker, "/api/v1/cluster")
    assert status == 200 and body["node"] == broker.name
    status, body = api(broker, f"/api/v1/clients/{who}")
    assert status == 200 and {s["filter"] for s in body["subscriptions"]} == {"a/+", "b"}
    # Kick: the connection is closed by the broker.
    assert api(broker, f"/api/v1/clients/{who}", method="DELETE")[0] == 200
    c.wait_disconnected()
    assert api(broker, f"/api/v1/clients/{who}", method="DELETE")[0] == 404
    assert api(broker, "/api/v1/clients/nobody-here", method="DELETE")[0] == 404


@pytest.mark.broker_opts(**ADMIN)
def test_meshmq_ctl(broker, client):
    who = uid("ctl")
    c = client(who)
    c.connect()
    c.subscribe("ctl/#", 1)
    r = ctl(broker, "clients")
    assert r.returncode == 0, r.stderr
    assert who in [x["client_id"] for x in json.loads(r.stdout)["clients"]]
    r = ctl(broker, "subscriptions", who, env_token=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["subscriptions"][0]["filter"] == "ctl/#"
    r = ctl(broker, "cluster")
    assert r.returncode == 0 and json.loads(r.stdout)["node"] == broker.name
    r = ctl(broker, "kick", who)
    assert r.returncode == 0, r.stderr
    c.wait_disconnected()
    r = ctl(broker, "kick", who)
    assert r.returncode == 1 and "404" in r.stderr
    r = ctl(broker, "clients", token="wrong")
    assert r.returncode == 1 and "401" in r.stderr
    r = ctl(broker, "clients", token=None)
    assert r.returncode == 2 and "token" in r.stderr
