"""Consumer-group and offset APIs (classic protocol): error paths of OffsetCommit,
OffsetFetch, Heartbeat, SyncGroup, LeaveGroup, JoinGroup, DescribeGroups,
DeleteGroups, OffsetDelete and FindCoordinator, and one live group's life.

Member ids are chosen by each broker: they are replaced by "<member>" (and checked to
be the ids the broker handed out) before answers are compared."""
import struct

import pytest

MEMBER_FIELDS = ("*MemberId", "*Leader")


def _s(x):
    b = x.encode()
    return struct.pack(">h", len(b)) + b


def subscription(topics):
    """ConsumerProtocolSubscription v0."""
    return struct.pack(">hi", 0, len(topics)) + b"".join(_s(t) for t in topics) + struct.pack(">i", -1)


def assignment(parts):
    """ConsumerProtocolAssignment v0: parts = {topic: [partition, ...]}."""
    out = struct.pack(">hi", 0, len(parts))
    for t, ps in parts.items():
        out += _s(t) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
    return out + struct.pack(">i", -1)


def _cmp(pair, what, k, s, ignore=(), **kw):
    pair.compare(what, k, s, ignore=tuple(ignore) + MEMBER_FIELDS, **kw)


def _same(pair, what, api, req, version=None, ignore=(), **kw):
    v = version if version is not None else pair.version(api)
    k, s = pair.both(api, v, req)
    _cmp(pair, "%s (%s v%d)" % (what, api, v), k, s, ignore, **kw)
    return k, s


# ---------------------------------------------------------------- requests


def join_req(v, group, member="", protocols=None, ptype="consumer", session=10000,
             rebalance=10000, instance=None):
    r = {"GroupId": group, "SessionTimeoutMs": session, "MemberId": member, "ProtocolType": ptype,
         "Protocols": protocols if protocols is not None else [{"Name": "range", "Metadata": b""}]}
    if v >= 1:
        r["RebalanceTimeoutMs"] = rebalance
    if v >= 5:
        r["GroupInstanceId"] = instance
    return r


def sync_req(v, group, gen, member, assignments=(), ptype="consumer", pname="range"):
    r = {"GroupId": group, "GenerationId": gen, "MemberId": member,
         "Assignments": [{"MemberId": m, "Assignment": a} for m, a in assignments]}
    if v >= 5:
        r["ProtocolType"], r["ProtocolName"] = ptype, pname
    return r


def commit_req(v, group, topic, offsets, gen=-1, member="", instance=None):
    r = {"GroupId": group, "Topics": [{"Name": topic, "Partitions": [
        {"PartitionIndex": p, "CommittedOffset": o, "CommittedMetadata": "m"} for p, o in offsets]}]}
    if v >= 1:
        r["GenerationIdOrMemberEpoch"], r["MemberId"] = gen, member
    if instance is not None:
        r["GroupInstanceId"] = instance
    return r


def fetch_req(v, group, topics):
    """topics: {name: [partitions]} or None for all."""
    ts = None if topics is None else [{"Name": t, "PartitionIndexes": ps} for t, ps in topics.items()]
    if v >= 8:
        return {"Groups": [{"GroupId": group, "Topics": ts}], "RequireStable": False}
    r = {"GroupId": group, "Topics": ts}
    if v >= 7:
        r["RequireStable"] = False
    return r


def leave_req(v, group, member):
    if v >= 3:
        return {"GroupId": group, "Members": [{"MemberId": member}]}
    return {"GroupId": group, "MemberId": member}


# ---------------------------------------------------------------- coordinator


@pytest.mark.parametrize("which", ["lowest", "highest"])
def test_find_coordinator_group(pair, which):
    lo, hi = pair.versions("FindCoordinator")
    v = lo if which == "lowest" else hi
    req = {"KeyType": 0} if v >= 1 else {}
    if v >= 4:
        req["CoordinatorKeys"] = ["g1", "g2"]
    else:
        req["Key"] = "g1"
    _same(pair, "group coordinator", "FindCoordinator", req, version=v)


def test_find_coordinator_bad_key_type(pair):
    v = pair.version("FindCoordinator")
    req = {"KeyType": 7, "CoordinatorKeys": ["g1"]} if v >= 4 else {"KeyType": 7, "Key": "g1"}
    _same(pair, "key type 7", "FindCoordinator", req, version=v)


# ---------------------------------------------------------------- error paths, no group


@pytest.mark.parametrize("case,kw", [
    ("empty-protocols", {"protocols": []}),
    ("empty-protocol-type", {"ptype": ""}),
    ("session-below-min", {"session": 1000}),
    ("session-above-max", {"session": 1800001}),
    ("unknown-member-id", {"member": "no-such-member"}),
])
def test_join_errors(pair, case, kw):
    v = pair.version("JoinGroup")
    g = pair.name("gj")
    # Not compared afterwards: whether Kafka 4.4 keeps an empty group after a refused
    # join varies from run to run (it is removed asynchronously).
    _same(pair, "JoinGroup %s" % case, "JoinGroup", join_req(v, g, **kw))


def _describe_after(pair, what, g, known_paths=None):
    """Whether a refused request left a group behind."""
    _same(pair, "DescribeGroups after %s" % what, "DescribeGroups",
          {"Groups": [g], "IncludeAuthorizedOperations": False}, known_paths=known_paths)


def test_join_empty_group_id(pair):
    v = pair.version("JoinGroup")
    _same(pair, "JoinGroup with group id ''", "JoinGroup", join_req(v, ""))


def test_heartbeat_unknown(pair):
    v = pair.version("Heartbeat")
    _same(pair, "Heartbeat, unknown group", "Heartbeat",
          {"GroupId": pair.name("gh"), "GenerationId": 1, "MemberId": "m"})


def test_sync_unknown(pair):
    v = pair.version("SyncGroup")
    _same(pair, "SyncGroup, unknown group", "SyncGroup", sync_req(v, pair.name("gs"), 1, "m"))


def test_leave_unknown(pair):
    v = pair.version("LeaveGroup")
    _same(pair, "LeaveGroup, unknown group", "LeaveGroup", leave_req(v, pair.name("gl"), "m"))


# OffsetCommit to a group that does not exist: generation -1 is a simple consumer's
# commit (accepted whatever the member id, the group is made Empty); a generation of
# 0 or more is a member of a group that is gone (v9+: GROUP_ID_NOT_FOUND, before:
# ILLEGAL_GENERATION) and leaves no group behind.
@pytest.mark.parametrize("case,gen,member,instance,version", [
    pytest.param("simple-consumer", -1, "", None, None, id="simple-consumer"),
    pytest.param("generation-and-member", 3, "m", None, None, id="generation-and-member"),
    pytest.param("generation-and-member", 3, "m", None, 8, id="generation-and-member-v8"),
    pytest.param("generation-only", 0, "", None, None, id="generation-only"),
    pytest.param("member-only", -1, "m", None, None, id="member-only"),
    pytest.param("instance-only", -1, "", "i", None, id="instance-only"),
    pytest.param("instance-and-generation", 2, "m", "i", None, id="instance-and-generation"),
])
def test_commit_unknown_group(pair, case, gen, member, instance, version):
    t = pair.create_topic(pair.name("gct"), partitions=2)
    v = version if version is not None else pair.version("OffsetCommit")
    g = pair.name("gc")
    req = commit_req(v, g, t, [(0, 5), (1, 7)], gen, member, instance)
    _same(pair, "OffsetCommit to an unknown group, %s" % case, "OffsetCommit", req, version=v)
    fv = pair.version("OffsetFetch")
    _same(pair, "OffsetFetch after it", "OffsetFetch", fetch_req(fv, g, {t: [0, 1]}))
    _describe_after(pair, "OffsetCommit to an unknown group, %s" % case, g)


# OffsetCommit to an Empty group (one that has only offsets): generation -1 is accepted
# whatever the member id; a generation or member id otherwise names a member, and there
# is none.
@pytest.mark.parametrize("case,gen,member,instance", [
    pytest.param("member-only", -1, "m", None, id="member-only"),
    pytest.param("instance-only", -1, "", "i", id="instance-only"),
    pytest.param("generation-only", 0, "", None, id="generation-only"),
    pytest.param("generation-and-member", 1, "m", None, id="generation-and-member"),
    pytest.param("instance-and-generation", 0, "m", "i", id="instance-and-generation"),
])
def test_commit_empty_group(pair, case, gen, member, instance):
    t = pair.create_topic(pair.name("gct"))
    v = pair.version("OffsetCommit")
    g = pair.name("gc")
    _same(pair, "simple commit", "OffsetCommit", commit_req(v, g, t, [(0, 5)]))
    req = commit_req(v, g, t, [(0, 6)], gen, member, instance)
    _same(pair, "OffsetCommit to an Empty group, %s" % case, "OffsetCommit", req)
    fv = pair.version("OffsetFetch")
    _same(pair, "OffsetFetch after it", "OffsetFetch", fetch_req(fv, g, {t: [0]}))


@pytest.mark.parametrize("case", ["no-topics", "no-partitions"])
def test_commit_nothing(pair, case):
    """An OffsetCommit with nothing to commit does not make a group."""
    t = pair.create_topic(pair.name("gct"))
    v = pair.version("OffsetCommit")
    g = pair.name("gc")
    req = commit_req(v, g, t, [])
    if case == "no-topics":
        req["Topics"] = []
    _same(pair, "OffsetCommit, %s" % case, "OffsetCommit", req)
    _describe_after(pair, "OffsetCommit, %s" % case, g)


def test_commit_mixed(pair):
    """Known and unknown topics and partitions in one OffsetCommit, a topic named twice
    and topics with no partitions: which entries the answer has, in which order."""
    t1 = pair.create_topic(pair.name("gct"), partitions=2)
    t2 = pair.create_topic(pair.name("gct"))
    u1, u2 = pair.name("nogct"), pair.name("nogct")
    v = pair.version("OffsetCommit")
    g = pair.name("gc")

    def parts(*ps):
        return [{"PartitionIndex": p, "CommittedOffset": 10 + p, "CommittedMetadata": ""} for p in ps]
    for topics in (
        [(t1, parts(0, 1)), (t2, parts(0)), (t1, parts(1))],
        [(t1, parts(0, 5, 1)), (u1, parts(0)), (t2, []), (u2, []), (t1, parts(-1, 1)), (t2, parts(0))],
        [(t2, parts(0)), (u1, parts(2)), (t1, parts(7))],
    ):
        req = commit_req(v, g, t1, [])
        req["Topics"] = [{"Name": n, "Partitions": ps} for n, ps in topics]
        _same(pair, "OffsetCommit of %s" % [(n, [p["PartitionIndex"] for p in ps]) for n, ps in topics],
              "OffsetCommit", req)
    fv = pair.version("OffsetFetch")
    # Named partitions: Kafka lists "all topics" in hash order.
    _same(pair, "OffsetFetch after it", "OffsetFetch", fetch_req(fv, g, {t1: [0, 1], t2: [0]}))


def test_commit_metadata_too_large(pair):
    """offset.metadata.max.bytes (4096): the partition is refused, the others stored."""
    t = pair.create_topic(pair.name("gct"), partitions=2)
    v = pair.version("OffsetCommit")
    g = pair.name("gc")
    req = commit_req(v, g, t, [(0, 5), (1, 6)])
    req["Topics"][0]["Partitions"][0]["CommittedMetadata"] = "x" * 4097
    _same(pair, "OffsetCommit, metadata too large", "OffsetCommit", req)
    fv = pair.version("OffsetFetch")
    _same(pair, "OffsetFetch after it", "OffsetFetch", fetch_req(fv, g, {t: [0, 1]}))
    g2 = pair.name("gc")
    req = commit_req(v, g2, t, [(0, 5)])
    req["Topics"][0]["Partitions"][0]["CommittedMetadata"] = "x" * 4097
    _same(pair, "OffsetCommit, only metadata too large", "OffsetCommit", req)
    _describe_after(pair, "OffsetCommit, only metadata too large", g2)


def test_commit_unknown_topic(pair):
    v = pair.version("OffsetCommit")
    g = pair.name("gc")
    _same(pair, "OffsetCommit to an unknown topic", "OffsetCommit",
          commit_req(v, g, pair.name("nogct"), [(0, 5)]))
    _describe_after(pair, "OffsetCommit to an unknown topic", g)


def test_commit_unknown_partition(pair):
    t = pair.create_topic(pair.name("gct"))
    v = pair.version("OffsetCommit")
    g = pair.name("gc")
    _same(pair, "OffsetCommit to an unknown partition", "OffsetCommit", commit_req(v, g, t, [(3, 5)]))
    _describe_after(pair, "OffsetCommit to an unknown partition", g)


@pytest.mark.parametrize("which", ["lowest", "highest"])
def test_offset_fetch_unknown_group(pair, which):
    t = pair.create_topic(pair.name("gft"), partitions=2)
    lo, hi = pair.versions("OffsetFetch")
    v = lo if which == "lowest" else hi
    _same(pair, "OffsetFetch, unknown group", "OffsetFetch", fetch_req(v, pair.name("gf"), {t: [0, 1]}),
          version=v)
    if v >= 2:
        _same(pair, "OffsetFetch all topics, unknown group", "OffsetFetch",
              fetch_req(v, pair.name("gf"), None), version=v)


def test_offset_fetch_unknown_topic(pair):
    v = pair.version("OffsetFetch")
    _same(pair, "OffsetFetch, unknown topic", "OffsetFetch",
          fetch_req(v, pair.name("gf"), {pair.name("nogft"): [0]}))


def test_describe_missing_group(pair):
    _same(pair, "DescribeGroups, missing group", "DescribeGroups",
          {"Groups": [pair.name("gd")], "IncludeAuthorizedOperations": False})


def test_delete_missing_group(pair):
    _same(pair, "DeleteGroups, missing group", "DeleteGroups", {"GroupsNames": [pair.name("gdd")]})


def test_offset_delete_missing_group(pair):
    t = pair.create_topic(pair.name("godt"))
    _same(pair, "OffsetDelete, missing group", "OffsetDelete",
          {"GroupId": pair.name("god"), "Topics": [{"Name": t, "Partitions": [{"PartitionIndex": 0}]}]})


def test_empty_group_with_offsets(pair):
    """A group that only has committed offsets (no members): OffsetDelete, then
    DescribeGroups, DeleteGroups, OffsetFetch."""
    t = pair.create_topic(pair.name("get"), partitions=2)
    g = pair.name("ge")
    v = pair.version("OffsetCommit")
    _same(pair, "commit", "OffsetCommit", commit_req(v, g, t, [(0, 3), (1, 4)]))
    _same(pair, "OffsetDelete partition 0", "OffsetDelete",
          {"GroupId": g, "Topics": [{"Name": t, "Partitions": [{"PartitionIndex": 0}]}]})
    fv = pair.version("OffsetFetch")
    _same(pair, "OffsetFetch after OffsetDelete", "OffsetFetch", fetch_req(fv, g, {t: [0, 1]}))
    _same(pair, "DescribeGroups, group with offsets only", "DescribeGroups",
          {"Groups": [g], "IncludeAuthorizedOperations": False})
    _same(pair, "DeleteGroups, group with offsets only", "DeleteGroups", {"GroupsNames": [g]})
    _same(pair, "OffsetFetch after DeleteGroups", "OffsetFetch", fetch_req(fv, g, {t: [0, 1]}))


def test_offset_fetch_several_groups(pair):
    """OffsetFetch v8+ naming several groups at once: one with offsets (some topics,
    then all), one unknown, the empty group id, and the first one again."""
    t = pair.create_topic(pair.name("gft"), partitions=2)
    g, missing = pair.name("gf"), pair.name("gf")
    _same(pair, "commit", "OffsetCommit", commit_req(pair.version("OffsetCommit"), g, t, [(1, 9)]))
    v = pair.version("OffsetFetch", lo=8)
    req = {"Groups": [{"GroupId": g, "Topics": [{"Name": t, "PartitionIndexes": [0, 1]}]},
                      {"GroupId": missing, "Topics": None},
                      {"GroupId": "", "Topics": [{"Name": t, "PartitionIndexes": [1]}]},
                      {"GroupId": g, "Topics": None}],
           "RequireStable": True}
    _same(pair, "OffsetFetch of several groups", "OffsetFetch", req, version=v)


@pytest.mark.parametrize("which", ["lowest", "highest"])
def test_offset_fetch_empty_group_id(pair, which):
    lo, hi = pair.versions("OffsetFetch")
    v = lo if which == "lowest" else hi
    t = pair.create_topic(pair.name("gft"))
    _same(pair, "OffsetFetch, group id ''", "OffsetFetch", fetch_req(v, "", {t: [0]}), version=v)


def test_offset_fetch_member_epoch(pair):
    """OffsetFetch v9 with a member id and epoch (KIP-848 fields) for a classic group
    with offsets only: the classic group ignores them."""
    t = pair.create_topic(pair.name("gft"))
    g = pair.name("gf")
    _same(pair, "commit", "OffsetCommit", commit_req(pair.version("OffsetCommit"), g, t, [(0, 4)]))
    v = pair.version("OffsetFetch", lo=9)
    req = {"Groups": [{"GroupId": g, "MemberId": "m", "MemberEpoch": 3,
                       "Topics": [{"Name": t, "PartitionIndexes": [0]}]}], "RequireStable": False}
    _same(pair, "OffsetFetch with member id and epoch", "OffsetFetch", req, version=v)


def test_offset_delete_edge_cases(pair):
    """OffsetDelete in a group with offsets only: a partition with an offset, one
    without, one named twice, an unknown topic and a partition the topic lacks."""
    t = pair.create_topic(pair.name("godt"), partitions=2)
    g = pair.name("god")
    _same(pair, "commit", "OffsetCommit", commit_req(pair.version("OffsetCommit"), g, t, [(0, 3)]))
    req = {"GroupId": g, "Topics": [
        {"Name": t, "Partitions": [{"PartitionIndex": 0}, {"PartitionIndex": 1},
                                   {"PartitionIndex": 0}, {"PartitionIndex": 7}]},
        {"Name": pair.name("nogodt"), "Partitions": [{"PartitionIndex": 0}]}]}
    _same(pair, "OffsetDelete, edge cases", "OffsetDelete", req)
    fv = pair.version("OffsetFetch")
    _same(pair, "OffsetFetch after it", "OffsetFetch", fetch_req(fv, g, None))
    _describe_after(pair, "OffsetDelete of the only offset", g)


def test_offset_delete_empty_group_id(pair):
    t = pair.create_topic(pair.name("godt"))
    _same(pair, "OffsetDelete, group id ''", "OffsetDelete",
          {"GroupId": "", "Topics": [{"Name": t, "Partitions": [{"PartitionIndex": 0}]}]})


def test_delete_groups_mixed(pair):
    """DeleteGroups naming a group with offsets twice, a missing group and ''."""
    t = pair.create_topic(pair.name("gdt"))
    g, missing = pair.name("gdd"), pair.name("gdd")
    _same(pair, "commit", "OffsetCommit", commit_req(pair.version("OffsetCommit"), g, t, [(0, 3)]))
    k, s = pair.both("DeleteGroups", pair.version("DeleteGroups"), {"GroupsNames": [g, missing, "", g]})
    # Kafka answers the groups of one __consumer_offsets partition in the order of a
    # Java HashSet of their ids: compared in id order.
    for r in (k, s):
        r["Results"].sort(key=lambda x: x["GroupId"])
    _cmp(pair, "DeleteGroups, mixed", k, s)
    _describe_after(pair, "DeleteGroups", g)


def test_describe_groups_mixed(pair):
    """DescribeGroups naming '' and one group twice."""
    t = pair.create_topic(pair.name("gdt"))
    g = pair.name("gd")
    _same(pair, "commit", "OffsetCommit", commit_req(pair.version("OffsetCommit"), g, t, [(0, 3)]))
    lo, hi = pair.versions("DescribeGroups")
    for v in sorted({lo, hi}):
        _same(pair, "DescribeGroups, mixed", "DescribeGroups",
              {"Groups": ["", g, g], "IncludeAuthorizedOperations": False}, version=v)


# ---------------------------------------------------------------- a live group


class Member:
    """One member of a group on one broker, on its own connection."""

    def __init__(self, pair, peer, group, topic):
        self.pair, self.peer, self.group, self.topic = pair, peer, group, topic
        self.conn = peer.connect(timeout=30)
        self.member = ""
        self.gen = -1

    def call(self, api, req, version=None):
        v = version if version is not None else self.pair.version(api)
        return self.conn.call(api, v, req)

    def join(self):
        v = self.pair.version("JoinGroup")
        req = join_req(v, self.group, protocols=[{"Name": "range", "Metadata": subscription([self.topic])}])
        r = self.call("JoinGroup", req)
        steps = [("join without member id", r)]
        if r["ErrorCode"] == 79:  # MEMBER_ID_REQUIRED
            assert r["MemberId"], r
            req["MemberId"] = r["MemberId"]
            r = self.call("JoinGroup", req)
            steps.append(("join with member id", r))
        assert r["ErrorCode"] == 0, "%s: JoinGroup %r" % (self.peer.name, r)
        assert r["Leader"] == r["MemberId"], r
        self.member, self.gen = r["MemberId"], r["GenerationId"]
        sv = self.pair.version("SyncGroup")
        s = self.call("SyncGroup", sync_req(sv, self.group, self.gen, self.member,
                                            [(self.member, assignment({self.topic: [0, 1]}))]))
        steps.append(("sync as leader", s))
        return steps

    def close(self):
        self.conn.close()


def _life(pair, peer, group, topic):
    """The steps of one group's life on one broker: [(step, answer)]."""
    m = Member(pair, peer, group, topic)
    try:
        steps = m.join()
        cv = pair.version("OffsetCommit")
        steps += [
            ("heartbeat", m.call("Heartbeat", {"GroupId": group, "GenerationId": m.gen, "MemberId": m.member})),
            ("heartbeat, wrong generation",
             m.call("Heartbeat", {"GroupId": group, "GenerationId": m.gen + 1, "MemberId": m.member})),
            ("heartbeat, unknown member",
             m.call("Heartbeat", {"GroupId": group, "GenerationId": m.gen, "MemberId": "no-such-member"})),
            ("sync, unknown member", m.call("SyncGroup", sync_req(pair.version("SyncGroup"), group, m.gen,
                                                                  "no-such-member"))),
            ("sync, wrong generation", m.call("SyncGroup", sync_req(pair.version("SyncGroup"), group,
                                                                    m.gen + 1, m.member))),
            ("commit", m.call("OffsetCommit", commit_req(cv, group, topic, [(0, 10), (1, 20)], m.gen, m.member))),
            ("commit, wrong generation",
             m.call("OffsetCommit", commit_req(cv, group, topic, [(0, 11)], m.gen + 1, m.member))),
            ("commit, unknown member",
             m.call("OffsetCommit", commit_req(cv, group, topic, [(0, 12)], m.gen, "no-such-member"))),
            ("commit, no generation (simple consumer) into a live group",
             m.call("OffsetCommit", commit_req(cv, group, topic, [(0, 13)], -1, ""))),
            ("commit, no generation, the member's id",
             m.call("OffsetCommit", commit_req(cv, group, topic, [(0, 13)], -1, m.member))),
            ("commit, an instance id the group does not have",
             m.call("OffsetCommit", commit_req(cv, group, topic, [(0, 14)], m.gen, m.member, "i"))),
            ("fetch offsets", m.call("OffsetFetch", fetch_req(pair.version("OffsetFetch"), group, {topic: [0, 1]}))),
            ("describe", m.call("DescribeGroups", {"Groups": [group], "IncludeAuthorizedOperations": False})),
            ("delete, non-empty group", m.call("DeleteGroups", {"GroupsNames": [group]})),
            ("offset delete, subscribed topic", m.call("OffsetDelete", {
                "GroupId": group, "Topics": [{"Name": topic, "Partitions": [{"PartitionIndex": 0}]}]})),
            ("leave, unknown member", m.call("LeaveGroup", leave_req(pair.version("LeaveGroup"), group,
                                                                      "no-such-member"))),
            ("join, empty protocols, member of the group", m.call("JoinGroup", join_req(
                pair.version("JoinGroup"), group, member=m.member, protocols=[]))),
            ("join, another protocol type", m.call("JoinGroup", join_req(
                pair.version("JoinGroup"), group, ptype="connect"))),
            ("leave", m.call("LeaveGroup", leave_req(pair.version("LeaveGroup"), group, m.member))),
            ("describe, after leave", m.call("DescribeGroups", {"Groups": [group],
                                                                "IncludeAuthorizedOperations": False})),
            ("heartbeat, after leave",
             m.call("Heartbeat", {"GroupId": group, "GenerationId": m.gen, "MemberId": m.member})),
            ("commit, after leave",
             m.call("OffsetCommit", commit_req(cv, group, topic, [(1, 21)], m.gen, m.member))),
            ("commit, no generation, after leave",
             m.call("OffsetCommit", commit_req(cv, group, topic, [(1, 22)], -1, m.member))),
            ("fetch offsets, after leave",
             m.call("OffsetFetch", fetch_req(pair.version("OffsetFetch"), group, {topic: [0, 1]}))),
            ("offset delete, no longer subscribed", m.call("OffsetDelete", {
                "GroupId": group, "Topics": [{"Name": topic, "Partitions": [{"PartitionIndex": 0}]}]})),
            ("delete, empty group", m.call("DeleteGroups", {"GroupsNames": [group]})),
            ("describe, after delete", m.call("DescribeGroups", {"Groups": [group],
                                                                 "IncludeAuthorizedOperations": False})),
        ]
        return steps, m.member
    finally:
        m.close()


def test_group_life(pair):
    t = pair.create_topic(pair.name("glt"), partitions=2)
    g = pair.name("gl")
    (ks, kmember), (ss, smember) = [_life(pair, p, g, t) for p in pair.peers]
    assert [n for n, _ in ks] == [n for n, _ in ss], ([n for n, _ in ks], [n for n, _ in ss])
    for (name, k), (_, s) in zip(ks, ss):
        _cmp(pair, "group life: %s" % name, k, s,
             ignore=("Groups[].Members[].ClientHost", "Groups[].Members[].MemberMetadata"))


def test_list_groups(pair):
    """ListGroups: the groups this test made (one with offsets only, one with a
    member), unfiltered and with state filters."""
    t = pair.create_topic(pair.name("glg"))
    g1, g2 = pair.name("glg"), pair.name("glg")
    cv = pair.version("OffsetCommit")
    _same(pair, "commit", "OffsetCommit", commit_req(cv, g1, t, [(0, 1)]))
    members = [Member(pair, p, g2, t) for p in pair.peers]
    try:
        for m in members:
            m.join()
        lo, hi = pair.versions("ListGroups")
        for v in sorted({lo, hi}):
            filters = [None] if v < 4 else [None, ["Empty"], ["Stable"], ["Dead"]]
            for f in filters:
                req = {}
                if v >= 4:
                    req["StatesFilter"] = f or []
                if v >= 5:
                    req["TypesFilter"] = []
                k, s = pair.both("ListGroups", v, req)
                for r in (k, s):
                    r["Groups"] = sorted((x for x in r["Groups"] if x["GroupId"] in (g1, g2)),
                                         key=lambda x: x["GroupId"])
                _cmp(pair, "ListGroups v%d filter %s" % (v, f), k, s)
    finally:
        for m in members:
            m.close()
