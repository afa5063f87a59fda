"""pytest harness: a real broker per test, per-test time limits, broker log tail on failure.

Fixtures
  broker          a started broker (meshmq, or mosquitto with MESHMQ_TEST_BROKER=mosquitto) with
                  the options of the test's `broker_opts` marker, stopped with SIGTERM afterwards
                  (teardown asserts exit code 0 within 10 s).
  broker_factory  start more brokers, or one with options chosen at run time: broker_factory(opts)
  client          factory for paho clients bound to `broker`, closed at teardown

Markers
  broker_opts(**{"mqtt.max_inflight": 4})  meshmq flags (mapped to mosquitto.conf for the stand-in;
                  a flag mosquitto cannot express skips the test under mosquitto)
  meshmq_only(reason)        skipped under mosquitto
  mosquitto_differs(reason)  expected to fail under mosquitto (known difference), xfail there
  timeout(seconds)           limit for each phase of the test (default 60 s)
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

DEFAULT_TIMEOUT = 60.0


def pytest_configure(config):
    for line in (
        "broker_opts(**opts): meshmq options for the broker fixture",
        "meshmq_only(reason): test only meaningful against meshmq",
        "mosquitto_differs(reason): known difference of the mosquitto stand-in (xfail there)",
        "timeout(seconds): per-phase time limit of the test",
    ):
        config.addinivalue_line("markers", line)


def pytest_report_header(config):
    kind = harness.broker_kind()
    where = harness.MOSQUITTO_BIN if kind == "mosquitto" else harness.meshmq_bin()
    return f"broker under test: {kind} ({where})"


def pytest_collection_modifyitems(config, items):
    if not harness.is_mosquitto():
        return
    for item in items:
        m = item.get_closest_marker("meshmq_only")
        if m:
            item.add_marker(pytest.mark.skip(reason="meshmq only: " + (m.args[0] if m.args else "")))
        m = item.get_closest_marker("mosquitto_differs")
        if m:
            item.add_marker(pytest.mark.xfail(reason="mosquitto differs: " + (m.args[0] if m.args else ""),
                                              strict=False))


# ---- per-phase time limit (pytest-timeout is not assumed) ----------------------------------

class TestTimeout(BaseException):
    """Raised by SIGALRM when a test phase runs past its limit."""


def _limit(item) -> float:
    m = item.get_closest_marker("timeout")
    return float(m.args[0]) if m and m.args else DEFAULT_TIMEOUT


def _alarm(limit, phase, item):
    def handler(signum, frame):
        raise TestTimeout(f"{item.nodeid}: {phase} exceeded {limit:.0f}s")
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, limit)
    return old


def _disarm(old):
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    old = _alarm(_limit(item), "setup", item)
    try:
        yield
    finally:
        _disarm(old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    old = _alarm(_limit(item), "test", item)
    try:
        yield
    finally:
        _disarm(old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    old = _alarm(30.0, "teardown", item)
    try:
        yield
    finally:
        _disarm(old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in getattr(item, "_brokers", []):
            rep.sections.append((f"{b.kind} log tail ({b.log_path})", b.log_tail()))


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def broker_factory(request, tmp_path):
    started = []
    request.node._brokers = started

    def start(opts=None, name=None):
        opts = dict(opts or {})
        n = len(started)
        try:
            b = harness.Broker(tmp_path / f"broker{n}", opts, name=name or f"itest{n}")
            started.append(b)
            return b.start()
        except harness.UnsupportedOption as e:
            pytest.skip(str(e))

    yield start

    errors = []
    for b in started:
        if not b.started:  # its start already failed the test
            b.stop()
            continue
        try:
            code = b.stop(timeout=10.0)
            if code != 0:
                errors.append(f"{b.kind} exited with code {code} after SIGTERM")
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("; ".join(errors), pytrace=False)


@pytest.fixture
def broker(request, broker_factory):
    m = request.node.get_closest_marker("broker_opts")
    opts = dict(m.kwargs) if m else {}
    return broker_factory(opts)


@pytest.fixture
def client(broker):
    """client(client_id="", clean_session=True, protocol=...) -> harness.Client, closed at teardown."""
    made = []

    def make(client_id="", **kw):
        c = broker.client(client_id, **kw)
        made.append(c)
        return c

    yield make
    harness.close_quietly(made)


@pytest.fixture
def raw(broker):
    """raw() -> harness.RawClient connected (TCP only) to `broker`, closed at teardown."""
    made = []

    def make(**kw):
        r = broker.raw(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()
