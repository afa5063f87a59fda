"""Shared subscriptions on one node: `$share/<group>/<filter>` and `$queue/<filter>` give each
message to one member of the group (strategy `shared.strategy`), next to ordinary subscriptions.
See README "Shared subscriptions"; the cluster-wide behaviour is in test_cluster_shared.py."""

import time

import pytest

from harness import uid, wait_for_log

pytestmark = [pytest.mark.meshmq_only("meshmq's $share/$queue and shared.strategy"),
              pytest.mark.timeout(60)]

N = 60


def members(client, flt, count, qos=1, **kw):
    out = []
    for i in range(count):
        c = client(uid(f"m{i}"), **kw)
        c.connect()
        assert c.subscribe(flt, qos) == qos
        out.append(c)
    return out


def publish_all(client, topic, n=N, qos=1):
    pub = client(uid("pub"))
    pub.connect()
    mids = [pub.publish(topic, str(i).encode(), qos=qos, wait=False) for i in range(n)]
    pub.wait_published(mids)
    return pub


def collect(subs, total):
    """Every message the members got, per member, once `total` arrived in all (then a quiet
    period shows there is no extra copy)."""
    got = [[] for _ in subs]
    deadline = time.monotonic() + 10
    while sum(map(len, got)) < total:
        assert time.monotonic() < deadline, f"only {sum(map(len, got))} of {total} delivered"
        for i, s in enumerate(subs):
            got[i] += [m.payload for m in s.drain()]
        time.sleep(0.02)
    for s in subs:
        s.expect_no_message(0.3)
    return got


def assert_split(got, n=N):
    every = [p for g in got for p in g]
    assert sorted(every) == sorted(str(i).encode() for i in range(n)), "lost or duplicated"


@pytest.mark.parametrize("strategy", ["round_robin", "random", "sticky", "local_first"])
def test_members_get_disjoint_messages_whose_union_is_everything(broker_factory, strategy):
    b = broker_factory({"shared.strategy": strategy})
    topic = f"sh/{uid()}"
    subs = members(lambda cid: b.client(cid), f"$share/g1/{topic}", 3)
    publish_all(lambda cid: b.client(cid), topic)
    got = collect(subs, N)
    assert_split(got)
    sizes = sorted(len(g) for g in got)
    if strategy in ("round_robin", "local_first"):
        # One publisher, so one worker's counter: an exact rotation.
        assert sizes == [N // 3] * 3
    elif strategy == "sticky":
        assert sizes == [0, 0, N]
    else:
        assert sizes[-1] < N  # random: (1/3)^59 chance of all to one member
    for s in subs:
        s.close()


def test_default_strategy_is_round_robin_and_wildcards_work(broker, client):
    base = uid("rr")
    subs = members(client, f"$share/grp/{base}/+/x", 2)
    pub = client(uid("pub"))
    pub.connect()
    for i in range(N):
        pub.publish(f"{base}/{i}/x", str(i).encode(), qos=1)
    pub.publish(f"{base}/no/y", b"unmatched", qos=1)
    got = collect(subs, N)
    assert_split(got)
    assert [len(g) for g in got] == [N // 2, N // 2]


def test_queue_is_a_group(broker, client):
    topic = f"q/{uid()}"
    subs = members(client, f"$queue/{topic}", 2)
    publish_all(client, topic)
    assert_split(collect(subs, N))


def test_ordinary_and_shared_subscription_on_one_filter_both_receive(broker, client):
    topic = f"mix/{uid()}"
    plain = client(uid("plain"))
    plain.connect()
    plain.subscribe(topic, 1)
    subs = members(client, f"$share/g/{topic}", 2)
    other = members(client, f"$share/other/{topic}", 1)  # another group: its own copy
    publish_all(client, topic)
    assert sorted(m.payload for m in plain.expect_messages(N)) == sorted(
        str(i).encode() for i in range(N))
    assert_split(collect(subs, N))
    assert len(other[0].expect_messages(N)) == N
    plain.expect_no_message(0.2)


def test_a_client_in_a_group_and_subscribed_plainly_gets_both(broker, client):
    topic = f"both/{uid()}"
    c = client(uid("both"))
    c.connect()
    assert c.subscribe([(topic, 1), (f"$share/g/{topic}", 1)]) == [1, 1]
    publish_all(client, topic, n=3)
    assert len(c.expect_messages(6)) == 6


def test_invalid_share_syntax_gets_0x80(broker, client):
    c = client(uid("bad"))
    c.connect()
    good = f"$share/ok/{uid()}"
    bad = ["$share//t", "$share/+/t", "$share/#", "$share/g", "$share/g/", "$queue/"]
    assert c.subscribe([(f, 1) for f in bad] + [(good, 1)]) == [0x80] * len(bad) + [1]
    wait_for_log(broker, r"subscription to \$share/g refused")
    publish_all(client, good.split("/", 2)[2], n=1)
    assert c.expect_message().payload == b"0"  # the connection is fine


def test_subscriber_qos_is_the_lower_of_publish_and_subscription(broker, client):
    topic = f"qos/{uid()}"
    (s0,) = members(client, f"$share/g/{topic}", 1, qos=0)
    (s2,) = members(client, f"$share/h/{topic}", 1, qos=2)
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(topic, b"x", qos=1)
    assert s0.expect_message().qos == 0
    assert s2.expect_message().qos == 1


def test_retained_messages_are_not_sent_to_shared_subscriptions(broker, client):
    topic = f"ret/{uid()}"
    pub = client(uid("pub"))
    pub.connect()
    pub.publish(topic, b"kept", qos=1, retain=True)
    c = client(uid("sub"))
    c.connect()
    sentinel = f"sentinel/{uid()}"
    c.subscribe([(f"$share/g/{topic}", 1), (sentinel, 2)])
    c.publish(sentinel, b"", qos=2)
    assert c.messages_until(sentinel) == []
    pub.publish(topic, b"live", qos=1)  # but live messages are delivered (with RETAIN=0)
    m = c.expect_message()
    assert (m.payload, m.retain) == (b"live", False)
    pub.publish(topic, b"", qos=1, retain=True)


def test_unsubscribe_and_disconnect_leave_the_group(broker, client):
    topic = f"leave/{uid()}"
    a, b, c = members(client, f"$share/g/{topic}", 3)
    a.unsubscribe(f"$share/g/{topic}")
    b.disconnect()
    time.sleep(0.2)  # the broker handles the DISCONNECT after paho returns
    publish_all(client, topic)
    assert len(c.expect_messages(N)) == N
    a.expect_no_message(0.2)


def test_offline_persistent_member_messages_go_to_online_members(broker, client):
    """A persistent member that is offline is skipped while another member is online (EMQX
    does the same); with no member online, one of them queues the message."""
    topic = f"off/{uid()}"
    flt = f"$share/g/{topic}"
    pid = uid("persist")
    p = client(pid, clean_session=False)
    p.connect()
    p.subscribe(flt, 1)
    p.disconnect()
    (online,) = members(client, flt, 1)
    publish_all(client, topic, n=10)
    assert len(online.expect_messages(10)) == 10
    online.disconnect()
    publish_all(client, topic, n=1)  # nobody online: queued for the persistent member
    back = client(pid, clean_session=False)
    back.connect()
    assert back.expect_message().payload == b"0"
    back.expect_no_message(0.3)


def test_acl_judges_the_real_filter(broker_factory, tmp_path):
    acl = tmp_path / "acl"
    acl.write_text("deny subscribe all secret/#\n")
    b = broker_factory({"auth.acl_file": acl})
    c = b.client(uid("acl"))
    c.connect()
    assert c.subscribe([("$share/g/secret/x", 1), ("$share/g/open/x", 1)]) == [0x80, 1]
    c.close()


def test_persistent_membership_survives_a_restart(broker, client):
    topic = f"restart/{uid()}"
    pid = uid("persist")
    p = client(pid, clean_session=False)
    p.connect()
    p.subscribe(f"$share/g/{topic}", 1)
    p.disconnect()
    broker.restart()
    back = client(pid, clean_session=False)
    back.connect()
    assert back.session_present
    publish_all(client, topic, n=3)
    assert [m.payload for m in back.expect_messages(3)] == [b"0", b"1", b"2"]
