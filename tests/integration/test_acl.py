"""ACL rules (auth.acl_file): SUBACK 0x80, denied PUBLISH dropped or disconnecting, %u / %c,
first match wins, reload on SIGHUP without dropping connections."""

import pytest

from harness import expect_startup_failure, reload_broker, uid, wait_for_log

pytestmark = [pytest.mark.meshmq_only("meshmq ACL keys"), pytest.mark.timeout(60)]


def acl_broker(broker_factory, tmp_path, rules: str, **opts):
    path = tmp_path / "acl"
    path.write_text(rules)
    o = {"auth.acl_file": path}
    o.update(opts)
    return broker_factory(o), path


def user_client(broker, user, client_id=None):
    c = broker.client(client_id or uid("u"))
    if user:
        c.c.username_pw_set(user)  # no password file: user names are taken as given
    c.connect()
    return c


def test_denied_subscription_gets_0x80(broker_factory, tmp_path):
    b, _ = acl_broker(broker_factory, tmp_path, "deny subscribe all test/nosubscribe\n")
    c = user_client(b, None)
    assert c.subscribe([("test/nosubscribe", 2), ("test/ok", 1)]) == [0x80, 1]
    wait_for_log(b, r"subscription to test/nosubscribe denied by ACL")
    c.publish("test/ok", b"x", qos=1)
    assert c.expect_message().payload == b"x"  # the connection is fine
    c.close()


def test_denied_publish_is_dropped_and_logged(broker_factory, tmp_path):
    b, _ = acl_broker(broker_factory, tmp_path, "deny publish all secret/#\n")
    sub = user_client(b, None)
    sub.subscribe([("secret/#", 1), ("open/#", 1)])
    pub = user_client(b, None)
    pub.publish("secret/plans", b"hidden", qos=1)  # still acknowledged (PUBACK)
    pub.publish("secret/plans", b"hidden", qos=2)
    pub.publish("open/sentinel", b"end", qos=1)
    assert sub.messages_until("open/sentinel") == []
    wait_for_log(b, r"PUBLISH to secret/plans denied by ACL, dropped")
    assert not pub.disconnected.is_set()
    sub.close()
    pub.close()


def test_denied_publish_disconnects_when_configured(broker_factory, tmp_path):
    b, _ = acl_broker(broker_factory, tmp_path, "deny publish all secret/#\n",
                      **{"auth.acl_deny_action": "disconnect"})
    sub = user_client(b, None)
    sub.subscribe("secret/#", 1)
    pub = user_client(b, None)
    pub.publish("secret/x", b"no", qos=0)
    pub.wait_disconnected()
    wait_for_log(b, r"denied by ACL \(auth.acl_deny_action = disconnect\)")
    sub.expect_no_message()
    b.assert_serves("after acl disconnect")
    sub.close()


def test_user_and_client_id_substitution(broker_factory, tmp_path):
    rules = ("allow both all users/%u/#\n"
             "allow both all clients/%c/#\n"
             "allow subscribe all sentinel\n"
             "allow publish all sentinel\n")
    b, _ = acl_broker(broker_factory, tmp_path, rules, **{"auth.acl_default": "deny"})
    alice = user_client(b, "alice", "dev-a")
    assert alice.subscribe([("users/alice/#", 1), ("users/bob/#", 1), ("clients/dev-a/#", 1),
                            ("clients/dev-b/#", 1), ("sentinel", 1), ("#", 1)]) \
        == [1, 0x80, 1, 0x80, 1, 0x80]
    bob = user_client(b, "bob", "dev-b")
    bob.publish("users/alice/inbox", b"not bob's", qos=1)  # dropped: bob may not
    bob.publish("clients/dev-a/inbox", b"not bob's", qos=1)  # dropped
    alice.publish("users/alice/self", b"mine", qos=1)
    alice.publish("clients/dev-a/self", b"mine too", qos=1)
    bob.publish("sentinel", b"end", qos=1)
    got = alice.messages_until("sentinel")
    assert sorted((m.topic, m.payload) for m in got) == [
        ("clients/dev-a/self", b"mine too"), ("users/alice/self", b"mine")]
    anon = user_client(b, None)
    assert anon.subscribe("users//#", 1) == 0x80  # %u never matches anonymous clients
    for c in (alice, bob, anon):
        c.close()


def test_first_match_wins(broker_factory, tmp_path):
    rules = ("deny both user:mallory #\n"
             "allow both all #\n")
    b, _ = acl_broker(broker_factory, tmp_path, rules, **{"auth.acl_default": "deny"})
    m = user_client(b, "mallory")
    assert m.subscribe("news", 0) == 0x80
    ok = user_client(b, "alice")
    assert ok.subscribe("news", 0) == 0
    for c in (m, ok):
        c.close()


def test_will_topic_needs_publish_permission(broker_factory, tmp_path):
    b, _ = acl_broker(broker_factory, tmp_path, "deny publish all forbidden/#\n")
    raw = b.raw()
    assert raw.connect(uid("w"), will=("forbidden/will", b"bye", 0, False)).rc == 5
    raw.close()
    raw = b.raw()
    assert raw.connect(uid("w"), will=("allowed/will", b"bye", 0, False)).rc == 0
    raw.close()


def test_sighup_reloads_rules_without_dropping_clients(broker_factory, tmp_path):
    b, path = acl_broker(broker_factory, tmp_path, "deny subscribe all old/#\n")
    c = user_client(b, None)
    assert c.subscribe([("old/x", 1), ("new/x", 1), ("keep/x", 1)]) == [0x80, 1, 1]
    path.write_text("deny subscribe all new/#\ndeny publish all keep/blocked\n")
    assert "reloaded" in reload_broker(b)
    assert c.subscribe([("old/x", 1), ("new/y", 1)]) == [1, 0x80]
    c.publish("keep/blocked", b"dropped now", qos=1)
    c.publish("keep/x", b"still delivered", qos=1)
    m = c.expect_message()
    assert (m.topic, m.payload) == ("keep/x", b"still delivered")
    assert not c.disconnected.is_set()
    # A broken file is refused and the rules in force stay.
    path.write_text("allow everything\n")
    assert "acl:1: expected publish, subscribe or both" in reload_broker(b)
    assert c.subscribe("new/z", 1) == 0x80
    c.close()


def test_wide_subscription_does_not_receive_denied_topics(broker_factory, tmp_path):
    """`#` is granted (no rule covers it), but the topics a deny rule hides are withheld at
    delivery, live and retained, while other topics still arrive."""
    b, _ = acl_broker(broker_factory, tmp_path, "deny subscribe all secret/#\n")
    pub = user_client(b, None)
    pub.publish("secret/kept", b"retained secret", qos=1, retain=True)
    pub.publish("open/kept", b"retained open", qos=1, retain=True)
    sub = user_client(b, None)
    assert sub.subscribe("#", 1) == 1
    pub.publish("secret/plans", b"hidden", qos=1)
    pub.publish("open/news", b"shown", qos=1)
    pub.publish("open/sentinel", b"end", qos=1)
    got = sub.messages_until("open/sentinel")
    assert sorted(m.payload for m in got) == [b"retained open", b"shown"]
    assert b'meshmq_acl_denied_total{action="deliver"} 2' in b.http("/metrics")[2]
    for c in (sub, pub):
        c.close()


def test_reload_applies_to_existing_subscriptions(broker_factory, tmp_path):
    b, path = acl_broker(broker_factory, tmp_path, "deny subscribe all secret/#\n")
    sub = user_client(b, None)
    assert sub.subscribe([("#", 1), ("news/+", 1)]) == [1, 1]
    path.write_text("deny subscribe all news/hidden\n")
    assert "reloaded" in reload_broker(b)
    pub = user_client(b, None)
    for topic in ("news/hidden", "news/shown", "secret/now-open", "sentinel"):
        pub.publish(topic, topic.encode(), qos=1)
    # news/+ was granted under the old rules: after the reload it is checked like `#`.
    got = sub.messages_until("sentinel")
    assert sorted(m.topic for m in got) == ["news/shown", "secret/now-open"]
    for c in (sub, pub):
        c.close()


def test_restored_subscription_is_filtered_with_its_user_name(broker_factory, tmp_path):
    """After a restart, a persistent `#` subscription is checked with the user name of the
    client's last connection (kept on disk), before the client is back."""
    b, _ = acl_broker(broker_factory, tmp_path, "deny subscribe user:alice audit/#\n")
    cid = uid("alice")
    c = b.client(cid, clean_session=False)
    c.c.username_pw_set("alice")
    c.connect()
    assert c.subscribe("#", 1) == 1
    c.disconnect()
    b.restart(crash=True)
    pub = user_client(b, None)
    for topic in ("audit/x", "open/x", "sentinel"):
        pub.publish(topic, topic.encode(), qos=1)
    pub.close()
    c = b.client(cid, clean_session=False)
    c.c.username_pw_set("alice")
    assert c.connect() == (0, True)
    assert [m.topic for m in c.messages_until("sentinel")] == ["open/x"]
    c.close()


def test_bad_acl_file_stops_startup(tmp_path):
    (tmp_path / "acl").write_text("allow publish all ok\nallow publish all a/#/b\n")
    expect_startup_failure(tmp_path / "b", {"auth.acl_file": tmp_path / "acl"},
                           r"acl:2: \"a/#/b\" is not a valid topic filter")
