"""kill -9 at random moments under load, restart, and check that nothing acknowledged was lost.

Two persistent subscribers (QoS 1 and QoS 2 subscriptions) stay offline while publishers send a
stream of QoS 1 and QoS 2 messages and retained updates; the broker is killed with SIGKILL after a
random delay, restarted on the same data directory, and the subscribers collect their queues up to
a sentinel. Every message whose PUBACK/PUBCOMP the publisher saw must arrive; a QoS 2 message at
QoS 2 exactly once (QoS 1 may repeat); the retained topic holds the last acknowledged value or a
later one. Bounded: ITERATIONS rounds, each waiting at most a few seconds. The seed is printed so
a failure can be replayed with MESHMQ_TEST_CRASH_SEED.
"""

import os
import random
import threading
import time

import pytest

from harness import uid

pytestmark = [pytest.mark.meshmq_only("kills and restarts meshmq on its data dir"),
              pytest.mark.timeout(240)]

ITERATIONS = int(os.environ.get("MESHMQ_TEST_CRASH_ITERATIONS", "10"))
TOPIC = "crash"


class Publisher:
    """Publishes until the broker dies; afterwards tells what the broker acknowledged (paho marks
    a message published on PUBACK, or on PUBCOMP for QoS 2, which follows the PUBREC)."""

    def __init__(self, broker, name, qos):
        self.client = broker.client(uid(name))
        self.qos = qos
        self.name = name
        self.sent = []  # (MQTTMessageInfo, payload) in publish order
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self, round_no):
        self.round = round_no
        self.client.connect()
        self.thread.start()
        return self

    def _run(self):
        c = self.client.c
        n = 0
        while not self._stop.is_set() and not self.client.disconnected.is_set():
            if sum(1 for info, _ in self.sent[-60:] if not info.is_published()) >= 50:
                time.sleep(0.001)  # a bounded window, like a real client's inflight limit
                continue
            n += 1
            if n % 10 == 0:
                p = f"R{self.round}-{self.name}-{n}".encode()
                info = c.publish(f"{TOPIC}/retained/{self.name}", p, 1, retain=True)
            else:
                p = f"{self.round}-{self.name}-{n}".encode()
                info = c.publish(f"{TOPIC}/{self.name}", p, self.qos)
            if info.rc != 0:
                return
            self.sent.append((info, p))

    def stop(self):
        self._stop.set()
        self.thread.join(5)
        self.client.close()

    @property
    def acked(self):
        return [p for info, p in self.sent if info.is_published() and not p.startswith(b"R")]

    @property
    def retained_acked(self):
        return [p for info, p in self.sent if info.is_published() and p.startswith(b"R")]


def collect(broker, cid, sentinel_topic):
    """Reconnect a persistent subscriber, drain its queue up to the sentinel, disconnect."""
    c = broker.client(cid, clean_session=False)
    rc, present = c.connect()
    assert present, f"{cid}: session-present 0 after restart"
    got = c.messages_until(sentinel_topic, timeout=30)
    c.disconnect()
    return got


def test_kill9_loop_loses_no_acknowledged_message(broker_factory):
    seed = int(os.environ.get("MESHMQ_TEST_CRASH_SEED", str(random.randrange(1 << 30))))
    print(f"crash loop seed {seed} (MESHMQ_TEST_CRASH_SEED), {ITERATIONS} iterations")
    rnd = random.Random(seed)
    broker = broker_factory({"mqtt.max_queued_messages": 1000000, "log.level": "info"})
    subs = {uid("cq1"): 1, uid("cq2"): 2}
    for cid, q in subs.items():
        c = broker.client(cid, clean_session=False)
        c.connect()
        c.subscribe(f"{TOPIC}/#", q)
        c.disconnect()

    received = {cid: [] for cid in subs}
    acked_q1, acked_q2, last_retained = [], [], {}
    for round_no in range(ITERATIONS):
        pubs = [Publisher(broker, "p1", 1).start(round_no), Publisher(broker, "p2", 2).start(round_no)]
        time.sleep(rnd.uniform(0.05, 0.6))
        broker.crash()
        for p in pubs:
            p.stop()
        acked_q1 += pubs[0].acked
        acked_q2 += pubs[1].acked
        for p in pubs:
            if p.retained_acked:
                last_retained[p.name] = p.retained_acked[-1]
        broker.start()

        sentinel = f"{TOPIC}/sentinel/{round_no}"
        with broker.client(uid("sent")) as s:
            s.connect()
            # QoS 2, so that for the QoS 2 subscriber it comes after the QoS 2 messages (paho
            # hands those over only at PUBREL, after any QoS 1 message sent later).
            s.publish(sentinel, b"end", qos=2)
        for cid in subs:
            received[cid] += [m for m in collect(broker, cid, sentinel)
                              if not m.topic.startswith(f"{TOPIC}/sentinel/")]

        # Retained: the last acknowledged value, or a later one the broker stored but had not
        # acknowledged yet when it died (same round, higher number).
        with broker.client(uid("ret")) as r:
            r.connect()
            r.subscribe(f"{TOPIC}/retained/#", 0)
            time.sleep(0.2)
            have = {m.topic.rsplit("/", 1)[1]: m.payload for m in r.drain()}
        for name, value in last_retained.items():
            assert name in have, f"retained {name} lost (last acknowledged {value!r}), seed {seed}"
            got_round, got_n = have[name][1:].split(b"-")[0], int(have[name].rsplit(b"-", 1)[1])
            want_round, want_n = value[1:].split(b"-")[0], int(value.rsplit(b"-", 1)[1])
            assert (int(got_round), got_n) >= (int(want_round), want_n), \
                f"retained {name}: {have[name]!r} older than acknowledged {value!r}, seed {seed}"

    assert acked_q1 and acked_q2, "the publishers never got an acknowledgement: nothing tested"
    for cid, sub_qos in subs.items():
        payloads = [m.payload for m in received[cid] if not m.topic.startswith(f"{TOPIC}/retained")]
        have = set(payloads)
        lost = [p for p in acked_q1 + acked_q2 if p not in have]
        assert not lost, (f"{cid}: {len(lost)} acknowledged messages lost, e.g. {lost[:5]}, "
                          f"seed {seed}")
        if sub_qos == 2:
            q2 = [m.payload for m in received[cid]
                  if m.qos == 2 and m.topic == f"{TOPIC}/p2"]
            dups = {p for p in q2 if q2.count(p) > 1}
            assert not dups, f"{cid}: QoS 2 messages delivered twice: {sorted(dups)[:5]}, seed {seed}"
    print(f"acknowledged {len(acked_q1)} QoS 1 and {len(acked_q2)} QoS 2 messages over "
          f"{ITERATIONS} crashes; all delivered")
    broker.assert_serves()
