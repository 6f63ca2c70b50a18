"""Consumer groups against real samsa-server processes: partitioning among members,
rebalances on kill -9 / graceful close / join (eager and cooperative-sticky), static
membership, committed offsets across broker restarts, kafka-python <-> confluent-kafka,
and the admin side (list / describe / delete groups, OffsetDelete, lag).

Members that must be killable run in their own processes (groups_util.py as a script)."""
import collections
import time

import pytest
from confluent_kafka import KafkaException, TopicPartition

import kwire
from clients import consumer, create_topic, produce_keyed, producer
from groups_util import FAST_GROUPS, Member, decode_assignment, describe_group, partitioned, \
    wait_for


@pytest.fixture
def members(request):
    started = []

    def start(broker, group, topic, name, **conf):
        m = Member(broker, group, topic, name, **conf)
        started.append(m)
        return m

    yield start
    failed = any(getattr(getattr(request.node, "rep_" + w, None), "failed", False)
                 for w in ("setup", "call"))
    for m in started:
        if failed:
            with m.lock:
                evs = [e for e in m.events if e["ev"] != "committed"][-15:]
            print("\n---- member %s: %d records, owned %s, events %s\nstderr: %s"
                  % (m.name, len(m.records), sorted(m.owned), evs, m.stderr_tail()))
        m.cleanup()


def end_offsets(broker, topic, partitions):
    c = consumer(broker, **{"group.id": "end-offsets-probe"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        c.close()


def committed(broker, group, topic, partitions):
    """OffsetFetch through a consumer of the group that does not join it."""
    c = consumer(broker, **{"group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def assert_exactly(acked, consumed, what):
    """acked: {seq: (p, o)}; consumed: list of (p, o). No duplicates and no gaps."""
    counts = collections.Counter(consumed)
    dups = sorted(k for k, n in counts.items() if n > 1)
    assert not dups, "%s: %d records delivered more than once, e.g. %s" % (what, len(dups), dups[:10])
    want = set(acked.values())
    missing = sorted(want - set(counts))
    assert not missing, "%s: %d records never delivered, e.g. %s" % (what, len(missing), missing[:10])
    extra = sorted(set(counts) - want)
    assert not extra, "%s: delivered records that were not produced: %s" % (what, extra[:10])


# ---------------------------------------------------------------- 1. three members


def test_three_members_share_12_partitions_and_consume_exactly_once(broker_factory, members):
    b = broker_factory(**FAST_GROUPS)
    create_topic(b, "g12", 12)
    ms = [members(b, "grp-three", "g12", "m%d" % i) for i in range(3)]
    wait_for(lambda: partitioned(ms, 12) and all(len(m.snapshot()[0]) == 4 for m in ms),
             45, "12 partitions split 4/4/4 among the three members")

    # The coordinator's view (ListGroups + DescribeGroups) agrees with the members.
    def described():
        g = describe_group(b, "grp-three")
        return g if g.state == "Stable" and len(g.members) == 3 else None
    g = wait_for(described, 20, "group Stable with 3 members")
    assert g.protocol_type == "consumer"
    assert g.protocol in ("range", "roundrobin"), g.protocol
    assigned = [decode_assignment(mm.assignment).get("g12", []) for mm in g.members]
    flat = sorted(p for a in assigned for p in a)
    assert flat == list(range(12)), assigned
    assert sorted(sorted(a) for a in assigned) == sorted(sorted(m.snapshot()[0]) for m in ms)

    acked = produce_keyed(b, "g12", 30_000, keys=500)
    assert len({p for p, _ in acked.values()}) == 12
    wait_for(lambda: sum(m.snapshot()[2] for m in ms) >= 30_000, 60, "30,000 records consumed")
    time.sleep(0.5)  # anything extra (a duplicate) would show up now
    consumed = [r for m in ms for r in m.recs()]
    assert_exactly(acked, consumed, "three members")
    # Each member only processed records of its own partitions.
    for m in ms:
        assert {p for p, _ in m.recs()} <= m.snapshot()[0], m.name
    ends = end_offsets(b, "g12", 12)
    wait_for(lambda: committed(b, "grp-three", "g12", 12) == ends, 20,
             "committed offsets == end offsets %s" % ends)
    for m in ms:
        assert not m.commit_errors, (m.name, m.commit_errors[:3])


# ---------------------------------------------------------------- 2. member failure / leave


def test_kill9_member_partitions_move_within_session_timeout(broker_factory, members):
    b = broker_factory(**FAST_GROUPS)
    create_topic(b, "gk", 12)
    session_ms = 4000
    conf = {"session.timeout.ms": session_ms, "heartbeat.interval.ms": 300}
    ms = [members(b, "grp-kill", "gk", "k%d" % i, **conf) for i in range(3)]
    wait_for(lambda: partitioned(ms, 12) and all(len(m.snapshot()[0]) == 4 for m in ms),
             45, "a 4/4/4 split")
    first = produce_keyed(b, "gk", 6000, keys=300)
    wait_for(lambda: sum(m.snapshot()[2] for m in ms) >= 6000, 60, "first 6000 records")

    victim, rest = ms[0], ms[1:]
    lost = victim.snapshot()[0]
    t0 = time.monotonic()
    victim.kill9()
    wait_for(lambda: partitioned(rest, 12), session_ms / 1000 + 10,
             "the survivors to own all 12 partitions")
    took = time.monotonic() - t0
    assert took < session_ms / 1000 + 5, "rebalance after kill -9 took %.1fs" % took
    assert lost <= set().union(*(m.snapshot()[0] for m in rest))

    # Consumption continues, on every partition, with no gap.
    second = produce_keyed(b, "gk", 3000, keys=300, value=lambda i: b"seq-%08d" % (10**6 + i))
    allacked = dict(first)
    allacked.update({10**6 + k: v for k, v in second.items()})
    want = set(allacked.values())
    wait_for(lambda: want <= {r for m in ms for r in m.recs()}, 60,
             "every record of both batches consumed")
    consumed = [r for m in ms for r in m.recs()]
    # Records re-delivered after the kill may only be ones the victim processed and
    # had not committed yet (at-least-once); the survivors never repeat each other.
    counts = collections.Counter(consumed)
    vrecs = set(victim.recs())
    dups = [k for k, n in counts.items() if n > 1]
    assert all(k in vrecs for k in dups), [k for k in dups if k not in vrecs][:10]
    assert set(counts) == want
    ends = end_offsets(b, "gk", 12)
    wait_for(lambda: committed(b, "grp-kill", "gk", 12) == ends, 20, "final commits")


def test_graceful_close_moves_partitions_at_once(broker_factory, members):
    b = broker_factory(**FAST_GROUPS)
    create_topic(b, "gc", 12)
    # 30 s session: if the leave were not seen, the move would take ~30 s.
    conf = {"session.timeout.ms": 30000, "heartbeat.interval.ms": 500}
    ms = [members(b, "grp-close", "gc", "c%d" % i, **conf) for i in range(3)]
    wait_for(lambda: partitioned(ms, 12) and all(len(m.snapshot()[0]) == 4 for m in ms),
             45, "a 4/4/4 split")
    leaver, rest = ms[0], ms[1:]
    t0 = time.monotonic()
    leaver.close()
    wait_for(lambda: partitioned(rest, 12), 20, "the others to own all 12 partitions")
    took = time.monotonic() - t0
    assert took < 10, "rebalance after a graceful close took %.1fs (session is 30s)" % took
    assert sorted(len(m.snapshot()[0]) for m in rest) == [6, 6]
    g = describe_group(b, "grp-close")
    assert len(g.members) == 2, [m.id for m in g.members]
    acked = produce_keyed(b, "gc", 2000, keys=100)
    wait_for(lambda: set(acked.values()) <= {r for m in rest for r in m.recs()}, 30,
             "the two members consume all 12 partitions")


# ---------------------------------------------------------------- 3. cooperative-sticky


def test_cooperative_sticky_join_keeps_unmoved_partitions(broker_factory, members):
    b = broker_factory(**FAST_GROUPS)
    create_topic(b, "gcs", 12)
    conf = {"partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 300}
    a = members(b, "grp-coop", "gcs", "a", **conf)
    bm = members(b, "grp-coop", "gcs", "b", **conf)
    wait_for(lambda: partitioned([a, bm], 12) and len(a.snapshot()[0]) == 6, 45, "a 6/6 split")
    first = produce_keyed(b, "gcs", 3000, keys=120)
    wait_for(lambda: a.snapshot()[2] + bm.snapshot()[2] >= 3000, 30, "first records")
    g = describe_group(b, "grp-coop")
    assert g.protocol == "cooperative-sticky", g.protocol

    before = {m.name: m.snapshot()[0] for m in (a, bm)}
    ev_mark = {m.name: len(m.events_of("assign", "revoke", "lost")) for m in (a, bm)}
    c = members(b, "grp-coop", "gcs", "c", **conf)
    wait_for(lambda: partitioned([a, bm, c], 12)
             and sorted(len(m.snapshot()[0]) for m in (a, bm, c)) == [4, 4, 4],
             45, "a 4/4/4 split after the third member joined")
    time.sleep(1.0)  # let any late callback arrive
    moved_to_c = c.snapshot()[0]
    for m in (a, bm):
        evs = m.events_of("assign", "revoke", "lost")[ev_mark[m.name]:]
        kept = before[m.name] - moved_to_c
        assert m.snapshot()[0] == kept, (m.name, sorted(m.snapshot()[0]), sorted(kept))
        revoked = set()
        for e in evs:
            assert e["ev"] != "lost", (m.name, e)
            if e["ev"] == "revoke":
                revoked |= set(e["p"])
        # Incremental: only the partitions handed to c were revoked, never the kept ones.
        assert revoked == before[m.name] & moved_to_c, (m.name, sorted(revoked))
        assert not revoked & kept
    # Everything before and after the join is consumed exactly once.
    second = produce_keyed(b, "gcs", 3000, keys=120, value=lambda i: b"seq-%08d" % (10**6 + i))
    allacked = dict(first)
    allacked.update({10**6 + k: v for k, v in second.items()})
    wait_for(lambda: sum(m.snapshot()[2] for m in (a, bm, c)) >= 6000, 30, "all 6000 records")
    time.sleep(0.5)
    assert_exactly(allacked, [r for m in (a, bm, c) for r in m.recs()], "cooperative")


# ---------------------------------------------------------------- 4. static membership


def test_static_member_restart_keeps_assignment_without_rebalance(broker_factory, members):
    b = broker_factory(**FAST_GROUPS)
    create_topic(b, "gst", 12)
    conf = {"session.timeout.ms": 10000, "heartbeat.interval.ms": 300}
    ms = [members(b, "grp-static", "gst", "s%d" % i, **dict(conf, **{"group.instance.id": "inst-%d" % i}))
          for i in range(3)]
    wait_for(lambda: partitioned(ms, 12) and all(len(m.snapshot()[0]) == 4 for m in ms),
             45, "a 4/4/4 split")
    first = produce_keyed(b, "gst", 3000, keys=120)
    wait_for(lambda: sum(m.snapshot()[2] for m in ms) >= 3000, 30, "first records")

    old = ms[0]
    old_parts = old.snapshot()[0]
    others = ms[1:]
    marks = {m.name: m.snapshot()[1] for m in others}
    old.kill9()  # a crash: no LeaveGroup
    new = members(b, "grp-static", "gst", "s0-restarted",
                  **dict(conf, **{"group.instance.id": "inst-0"}))
    wait_for(lambda: new.snapshot()[0], 8, "the restarted static member's assignment")
    assert new.snapshot()[0] == old_parts
    # Past the old member's session timeout: still no rebalance anywhere.
    t_end = time.monotonic() + 10.5
    second = produce_keyed(b, "gst", 3000, keys=120, value=lambda i: b"seq-%08d" % (10**6 + i))
    while time.monotonic() < t_end:
        time.sleep(0.5)
    for m in others:
        assert m.snapshot()[1] == marks[m.name], \
            (m.name, "saw a rebalance", m.events_of("assign", "revoke", "lost"))
    assert new.snapshot()[1] == 1, new.events_of("assign", "revoke", "lost")
    g2 = describe_group(b, "grp-static")
    assert g2.state == "Stable" and len(g2.members) == 3
    assert sorted(sorted(decode_assignment(mm.assignment).get("gst", [])) for mm in g2.members) \
        == sorted(sorted(m.snapshot()[0]) for m in [new] + others)
    # The restarted member resumed from the old one's commits: all records, and
    # duplicates only of what the old process processed without committing.
    allacked = dict(first)
    allacked.update({10**6 + k: v for k, v in second.items()})
    want = set(allacked.values())
    wait_for(lambda: want <= {r for m in ms + [new] for r in m.recs()}, 30, "all records")
    counts = collections.Counter(r for m in ms + [new] for r in m.recs())
    dups = [k for k, n in counts.items() if n > 1]
    assert all(k in set(old.recs()) for k in dups), dups[:10]


# ---------------------------------------------------------------- 5. broker restarts


def consume_some(broker, group, topic, n, timeout=45, settle=0.0):
    """Subscribes as `group`, processes records one at a time until n are processed (or,
    with n=None, until nothing arrives for `settle` seconds), commits exactly what was
    processed (synchronously), closes. Returns (processed [(p, o)], committed {p: o})."""
    c = consumer(broker, **{"group.id": group, "enable.partition.eof": False,
                            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    done, nxt = [], {}
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            if n is not None and len(done) >= n:
                break
            msgs = c.consume(num_messages=100, timeout=0.2)
            got = False
            for m in msgs:
                if m.error() is not None:
                    raise KafkaException(m.error())
                if n is not None and len(done) >= n:
                    break  # fetched but not processed: must not be committed
                done.append((m.partition(), m.offset()))
                nxt[m.partition()] = m.offset() + 1
                got = True
            if n is None:
                if got or not done:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= settle:
                    break
        else:
            raise AssertionError("%s: processed %d of %s records in %ss" % (group, len(done), n, timeout))
        if nxt:
            c.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()],
                     asynchronous=False)
        return done, nxt
    finally:
        c.close()


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "kill9"])
def test_committed_offsets_survive_broker_restart(broker_factory, hard):
    b = broker_factory(**FAST_GROUPS)
    create_topic(b, "gr", 4)
    acked = produce_keyed(b, "gr", 4000, keys=40)
    want = set(acked.values())

    first, c1 = consume_some(b, "grp-restart", "gr", 1500)
    assert committed(b, "grp-restart", "gr", 4) == {p: c1.get(p, -1001) for p in range(4)}
    b.restart(hard=hard)
    assert committed(b, "grp-restart", "gr", 4) == {p: c1.get(p, -1001) for p in range(4)}, \
        "committed offsets changed across the restart"

    second, c2 = consume_some(b, "grp-restart", "gr", 1000)
    b.restart(hard=hard)
    third, _ = consume_some(b, "grp-restart", "gr", None, settle=2.0)

    every = first + second + third
    counts = collections.Counter(every)
    assert not [k for k, v in counts.items() if v > 1], "re-delivered beyond the last commit"
    assert set(counts) == want, "lost: %s" % sorted(want - set(counts))[:10]
    # Each run started exactly at the previous run's commit.
    for prev, run in ((c1, second), ({**c1, **c2}, third)):
        starts = {}
        for p, o in run:
            starts.setdefault(p, o)
        for p, o in starts.items():
            assert o == prev.get(p, 0), (p, o, prev)
    ends = end_offsets(b, "gr", 4)
    assert committed(b, "grp-restart", "gr", 4) == ends


# ---------------------------------------------------------------- 6. kafka-python groups


def test_kafka_python_group_commits_seen_by_confluent(broker_factory):
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka import TopicPartition as KTP

    b = broker_factory(**FAST_GROUPS)
    create_topic(b, "gkp", 3)
    acked = produce_keyed(b, "gkp", 3000, keys=30)
    kc = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id="grp-kp",
                       enable_auto_commit=False, auto_offset_reset="earliest",
                       fetch_max_wait_ms=100, request_timeout_ms=15000,
                       session_timeout_ms=6000, heartbeat_interval_ms=500,
                       api_version_auto_timeout_ms=10000)
    got = []
    try:
        kc.subscribe(["gkp"])
        deadline = time.monotonic() + 45
        while len(got) < 3000 and time.monotonic() < deadline:
            for tp, msgs in kc.poll(timeout_ms=300, max_records=5000).items():
                got += [(tp.partition, m.offset) for m in msgs]
        assert sorted(kc.assignment()) == [KTP("gkp", p) for p in range(3)]
        kc.commit()  # synchronous, the consumed positions
    finally:
        kc.close()
    assert_exactly(acked, got, "kafka-python")
    ends = end_offsets(b, "gkp", 3)
    assert committed(b, "grp-kp", "gkp", 3) == ends  # OffsetFetch by librdkafka

    adm = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000,
                           api_version_auto_timeout_ms=10000)
    try:
        offs = adm.list_consumer_group_offsets("grp-kp")
        assert {tp.partition: om.offset for tp, om in offs.items() if tp.topic == "gkp"} == ends
    finally:
        adm.close()

    # A confluent-kafka member of the same group resumes after kafka-python's commits.
    more = produce_keyed(b, "gkp", 300, keys=30, value=lambda i: b"more-%d" % i)
    done, nxt = consume_some(b, "grp-kp", "gkp", None, settle=2.0)
    assert_exactly(more, done, "confluent after kafka-python")
    # And kafka-python reads confluent-kafka's commit back.
    kc = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id="grp-kp",
                       enable_auto_commit=False, request_timeout_ms=15000,
                       api_version_auto_timeout_ms=10000)
    try:
        ends2 = end_offsets(b, "gkp", 3)
        assert {p: kc.committed(KTP("gkp", p)) for p in range(3)} == ends2
    finally:
        kc.close()


# ---------------------------------------------------------------- 8. admin


def list_groups_v4(conn, states=()):
    """Raw ListGroups v4 (flexible, StatesFilter) -> (error, {group: (type, state)})."""
    body = kwire.carray([kwire.cstring(s) for s in states]) + kwire.TAGS
    r = conn.request(16, 4, body, flexible=True)
    r.i32()
    err = r.i16()

    def grp(r):
        g = (r.cstring(), r.cstring(), r.cstring())
        r.tags()
        return g
    groups = r.carray(grp)
    r.tags()
    return err, {g: (t, s) for g, t, s in groups}


def offset_delete_v0(conn, group, topic, partitions):
    """Raw OffsetDelete v0 -> (error, {partition: error})."""
    body = kwire.string(group) + kwire.array([
        kwire.string(topic) + kwire.array([kwire.i32(p) for p in partitions])])
    r = conn.request(47, 0, body)
    err = r.i16()
    r.i32()
    topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16()))))
    return err, {p: e for t, parts in topics for p, e in parts}


def test_admin_list_describe_delete_offsetdelete_and_lag(broker_factory):
    from kafka import KafkaAdminClient
    from kafka.errors import GroupIdNotFoundError, NonEmptyGroupError, NoError

    b = broker_factory(**FAST_GROUPS)
    create_topic(b, "gadm", 2)
    p = producer(b)
    for i in range(1000):
        p.produce("gadm", value=b"v%d" % i, partition=0 if i < 600 else 1)
    assert p.flush(30) == 0

    # An idle group: offsets committed, nobody left (state Empty).
    _, idle = consume_some(b, "grp-idle", "gadm", 700)
    assert sum(idle.values()) == 700
    # A live group that is behind: 300 consumed, 200 + 100 committed, member still in.
    live = consumer(b, **{"group.id": "grp-live", "enable.partition.eof": False,
                          "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
                          "max.poll.interval.ms": 60000})
    adm = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000,
                           api_version_auto_timeout_ms=10000)
    try:
        live.subscribe(["gadm"])
        seen, nxt = 0, {}
        deadline = time.monotonic() + 30
        while seen < 300 and time.monotonic() < deadline:
            for m in live.consume(num_messages=300 - seen, timeout=0.2):
                assert m.error() is None, m.error()
                nxt[m.partition()] = m.offset() + 1
                seen += 1
        assert seen == 300
        nxt = {0: 200, 1: 100}  # the group's position: 300 records processed
        live.commit(offsets=[TopicPartition("gadm", q, o) for q, o in nxt.items()],
                    asynchronous=False)
        for i in range(500):  # the log grows while the group is not reading
            p.produce("gadm", value=b"w%d" % i, partition=i % 2)
        assert p.flush(30) == 0

        # Lag = log end - committed, per partition, from OffsetFetch + ListOffsets.
        ends = end_offsets(b, "gadm", 2)
        assert ends == {0: 850, 1: 650}
        offs = adm.list_consumer_group_offsets("grp-live")
        com = {tp.partition: om.offset for tp, om in offs.items() if tp.topic == "gadm"}
        assert com == nxt, (com, nxt)
        lag = {q: ends[q] - max(com.get(q, -1), 0) for q in range(2)}
        assert sum(lag.values()) == 1500 - 300, lag
        assert all(lag[q] == ends[q] - nxt.get(q, 0) for q in range(2)), lag

        # ListGroups (all; and v4 state filter) and DescribeGroups.
        groups = dict(adm.list_consumer_groups())
        assert groups.get("grp-idle") == "consumer" and groups.get("grp-live") == "consumer", groups
        with kwire.Conn(b.port) as conn:
            err, allg = list_groups_v4(conn)
            assert err == 0 and allg["grp-idle"][1] == "Empty" and allg["grp-live"][1] == "Stable", allg
            assert set(list_groups_v4(conn, ["Empty"])[1]) >= {"grp-idle"}
            assert "grp-live" not in list_groups_v4(conn, ["Empty"])[1]
            assert "grp-idle" not in list_groups_v4(conn, ["Stable"])[1]
            assert "grp-live" in list_groups_v4(conn, ["Stable"])[1]
        d = {g.group: g for g in adm.describe_consumer_groups(["grp-idle", "grp-live"])}
        assert d["grp-idle"].state == "Empty" and d["grp-idle"].members == []
        assert d["grp-live"].state == "Stable" and len(d["grp-live"].members) == 1
        assert d["grp-live"].protocol_type == "consumer"
        ma = d["grp-live"].members[0].member_assignment
        assert sorted(p for t, ps in ma.assignment for p in ps if t == "gadm") == [0, 1]

        # OffsetDelete: allowed on the idle group, refused while the live one consumes it.
        with kwire.Conn(b.port) as conn:
            assert offset_delete_v0(conn, "grp-idle", "gadm", [0]) == (0, {0: 0})
            err, parts = offset_delete_v0(conn, "grp-live", "gadm", [0])
            assert (err, parts) == (0, {0: 86}), (err, parts)  # GROUP_SUBSCRIBED_TO_TOPIC
            assert offset_delete_v0(conn, "grp-none", "gadm", [0])[0] == 69  # GROUP_ID_NOT_FOUND
        assert committed(b, "grp-idle", "gadm", 2) == {0: -1001, 1: idle[1]}
        assert committed(b, "grp-live", "gadm", 2)[0] == nxt[0]

        # DeleteGroups: the empty group goes, the live one is NON_EMPTY_GROUP.
        res = dict(adm.delete_consumer_groups(["grp-idle", "grp-live", "grp-none"]))
        assert res["grp-idle"] is NoError or res["grp-idle"] == NoError, res
        assert res["grp-live"] is NonEmptyGroupError, res
        assert res["grp-none"] is GroupIdNotFoundError, res
        assert "grp-idle" not in dict(adm.list_consumer_groups())
        assert committed(b, "grp-idle", "gadm", 2) == {0: -1001, 1: -1001}
        assert committed(b, "grp-live", "gadm", 2)[0] == nxt[0]
    finally:
        live.close()
    try:
        # Once its member left, the other one can be deleted too.
        res = dict(adm.delete_consumer_groups(["grp-live"]))
        assert res["grp-live"] is NoError, res
        assert "grp-live" not in dict(adm.list_consumer_groups())
    finally:
        adm.close()
