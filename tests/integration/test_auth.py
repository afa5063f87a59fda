"""Authentication: auth.password_file, auth.allow_anonymous, `meshmq passwd`, CONNACK 0x04 vs
0x05, reload on SIGHUP, and passwords never in the log."""

import base64
import os
import stat
import time

import pytest

from harness import (CONNACK, connect_pkt, expect_startup_failure, meshmq_passwd, reload_broker,
                     uid, wait_for_log)

pytestmark = [pytest.mark.meshmq_only("meshmq auth keys and passwd subcommand"),
              pytest.mark.timeout(60)]

# Few iterations keep each CONNECT cheap in the test (the format is the same).
FAST = ["--iterations", "1000"]


def make_password_file(path, users: dict):
    first = True
    for user, password in users.items():
        r = meshmq_passwd(["-f", path] + (["-c"] if first else []) + FAST + [user], password)
        assert r.returncode == 0, r.stderr
        first = False
    return path


def connack(broker, **kw) -> int:
    raw = broker.raw()
    try:
        return raw.connect(uid("a"), **kw).rc
    finally:
        raw.close()


def test_passwd_add_change_delete_round_trip(tmp_path):
    pw = tmp_path / "passwd"
    r = meshmq_passwd(["-f", pw, "-c"] + FAST + ["alice"], "first-secret")
    assert r.returncode == 0, r.stderr
    assert "added user alice" in r.stdout
    assert stat.S_IMODE(os.stat(pw).st_mode) == 0o600
    r = meshmq_passwd(["-f", pw] + FAST + ["bob"], "bob-secret")
    assert r.returncode == 0, r.stderr
    lines = pw.read_text().splitlines()
    assert [l.split(":")[0] for l in lines] == ["alice", "bob"]
    assert all(l.split(":", 1)[1].startswith("$pbkdf2-sha512$1000$") for l in lines)
    assert "secret" not in pw.read_text()

    old_alice = lines[0]
    r = meshmq_passwd(["-f", pw] + FAST + ["alice"], "second-secret")
    assert r.returncode == 0 and "updated user alice" in r.stdout, r.stderr
    lines = pw.read_text().splitlines()
    assert lines[0].startswith("alice:") and lines[0] != old_alice and len(lines) == 2

    r = meshmq_passwd(["-f", pw, "-D", "bob"])
    assert r.returncode == 0 and "deleted user bob" in r.stdout, r.stderr
    assert [l.split(":")[0] for l in pw.read_text().splitlines()] == ["alice"]

    r = meshmq_passwd(["-f", pw, "-D", "bob"])
    assert r.returncode == 1 and "no user bob" in r.stderr
    r = meshmq_passwd(["-f", tmp_path / "missing"] + FAST + ["x"], "p")
    assert r.returncode == 1 and "cannot open" in r.stderr
    r = meshmq_passwd(["-f", pw] + FAST + ["bad:name"], "p")
    assert r.returncode == 2
    (tmp_path / "broken").write_text("garbage line\n")
    r = meshmq_passwd(["-f", tmp_path / "broken"] + FAST + ["x"], "p")
    assert r.returncode == 1 and "broken:1:" in r.stderr


def test_passwd_file_works_with_the_broker(broker_factory, tmp_path):
    pw = make_password_file(tmp_path / "passwd", {"alice": "wonderland", "bob": "builder"})
    b = broker_factory({"auth.password_file": pw, "auth.allow_anonymous": False})
    assert connack(b, username="alice", password="wonderland") == 0
    assert connack(b, username="bob", password="builder") == 0
    meshmq_passwd(["-f", pw] + FAST + ["alice"], "changed")
    meshmq_passwd(["-f", pw, "-D", "bob"])
    assert "reloaded" in reload_broker(b)
    assert connack(b, username="alice", password="changed") == 0
    assert connack(b, username="alice", password="wonderland") == 4
    assert connack(b, username="bob", password="builder") == 4


def test_connack_codes(broker_factory, tmp_path):
    pw = make_password_file(tmp_path / "passwd", {"alice": "wonderland"})
    b = broker_factory({"auth.password_file": pw, "auth.allow_anonymous": False})
    assert connack(b, username="alice", password="wonderland") == 0
    assert connack(b, username="alice", password="wrong") == 4  # bad user name or password
    assert connack(b, username="alice") == 4
    assert connack(b, username="mallory", password="x") == 4
    assert connack(b) == 5  # anonymous: not authorized
    wait_for_log(b, r"CONNECT refused \(code 5\): no user name and auth.allow_anonymous is false")
    wait_for_log(b, r"CONNECT refused \(code 4\): password file: wrong password for user 'alice'")
    # The refused clients did not get in: a paho client with the right password does.
    c = b.client(uid("ok"))
    c.c.username_pw_set("alice", "wonderland")
    c.connect()
    c.subscribe("t/auth", 1)
    c.publish("t/auth", b"hi", qos=1)
    assert c.expect_message().payload == b"hi"
    c.close()


def test_anonymous_allowed_by_default_with_password_file(broker_factory, tmp_path):
    pw = make_password_file(tmp_path / "passwd", {"alice": "wonderland"})
    b = broker_factory({"auth.password_file": pw})
    wait_for_log(b, r"auth.allow_anonymous is true")
    assert connack(b) == 0
    assert connack(b, username="alice", password="nope") == 4  # known names are still checked


def test_passwords_never_in_the_log(broker_factory, tmp_path):
    right, wrong = "Right-Pa55-f00d", "Wrong-Pa55-beef"
    pw = make_password_file(tmp_path / "passwd", {"alice": right})
    b = broker_factory({"auth.password_file": pw, "auth.allow_anonymous": False,
                        "log.level": "trace"})
    assert connack(b, username="alice", password=right) == 0
    assert connack(b, username="alice", password=wrong) == 4
    assert connack(b, username="nobody", password=wrong) == 4
    wait_for_log(b, r"code 4.*nobody")
    b.stop()
    log = b.log_path.read_text(errors="replace")
    assert right not in log and wrong not in log
    assert "alice" in log  # user names are logged, passwords are not


def test_bad_password_file_stops_startup(tmp_path):
    (tmp_path / "passwd").write_text("alice:$pbkdf2-sha512$10$bad\n")
    expect_startup_failure(tmp_path / "b", {"auth.password_file": tmp_path / "passwd"},
                           r"passwd:1: user alice: hash is not")


def test_reload_error_keeps_users_and_connections(broker_factory, tmp_path):
    pw = make_password_file(tmp_path / "passwd", {"alice": "wonderland"})
    b = broker_factory({"auth.password_file": pw, "auth.allow_anonymous": False})
    c = b.client(uid("stay"))
    c.c.username_pw_set("alice", "wonderland")
    c.connect()
    c.subscribe("t/stay", 1)
    (tmp_path / "passwd").write_text("broken\n")
    assert "keeping the previous rules" in reload_broker(b)
    assert connack(b, username="alice", password="wonderland") == 0
    c.publish("t/stay", b"still here", qos=1)
    assert c.expect_message().payload == b"still here"
    assert not c.disconnected.is_set()
    c.close()


def test_password_hashing_does_not_stall_other_clients(broker_factory, tmp_path):
    """A CONNECT whose hash takes seconds (2,000,000 iterations) is checked off the worker: a
    client already connected to the same single worker keeps being served meanwhile."""
    salt = base64.b64encode(b"s" * 16).decode()
    digest = base64.b64encode(b"h" * 64).decode()
    pw = tmp_path / "passwd"
    pw.write_text(f"slow:$pbkdf2-sha512$2000000${salt}${digest}\n")
    # A loaded machine may take longer than the default connect timeout for such a hash.
    b = broker_factory({"auth.password_file": pw, "broker.threads": 1,
                        "mqtt.connect_timeout": "60s"})
    fast = b.client(uid("fast"))
    fast.connect()
    fast.subscribe("t", 1)
    slow = b.raw()
    slow.send(connect_pkt(uid("slow"), username="slow", password=b"guess"))
    time.sleep(0.3)  # the CONNECT is in, its hash under way
    fast.publish("t", b"while hashing", qos=1)
    assert fast.expect_message().payload == b"while hashing"
    slow.expect_no_packet(within=0.1)  # the hash is still running: no CONNACK yet
    assert slow.expect(CONNACK, timeout=55).rc == 4  # a wrong password, after the full hash
    slow.close()
    fast.close()
