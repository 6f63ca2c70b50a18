"""DescribeQuorum: the metadata quorum (__cluster_metadata partition 0) in every version,
a metadata change moving the high watermark, and requests naming anything else.

What legitimately differs is left out of the comparison and checked on each broker on
its own terms: offsets (Kafka's metadata log counts records and gains a NoOpRecord every
metadata.max.idle.interval.ms; Samsa's counts Raft entries, one per change), the leader
epoch (Kafka's first election is epoch 1, Samsa's term 2: its founders' configuration is
written in term 1) and the timestamps (the time of the answer)."""
import time

from kdiff import known

TOPIC = "__cluster_metadata"
OFFSETS = ("Topics[].Partitions[].HighWatermark",
           "Topics[].Partitions[].CurrentVoters[].LogEndOffset",
           "Topics[].Partitions[].LeaderEpoch",
           "Topics[].Partitions[].CurrentVoters[].LastFetchTimestamp",
           "Topics[].Partitions[].CurrentVoters[].LastCaughtUpTimestamp")
# The voter's listener: Kafka's controller listener; Samsa's one listener serves both.
LISTENER = {"Nodes[].Listeners[].Name": known("quorum-one-listener")}


def _req(topics):
    return {"Topics": [{"TopicName": t, "Partitions": [{"PartitionIndex": p} for p in parts]}
                       for t, parts in topics]}


def _quorum(answer):
    assert answer["ErrorCode"] == 0, answer
    [t] = answer["Topics"]
    assert t["TopicName"] == TOPIC, answer
    [p] = t["Partitions"]
    assert p["ErrorCode"] == 0, answer
    return p


def _check_alone(name, version, answer, before_ms, after_ms):
    """What each broker must answer by itself: it leads, one voter caught up to the high
    watermark, and (v1+) the leader's times are the time of the answer."""
    p = _quorum(answer)
    assert p["LeaderEpoch"] >= 1, (name, p)
    assert p["HighWatermark"] >= 1, (name, p)
    [v] = p["CurrentVoters"]
    assert v["ReplicaId"] == p["LeaderId"], (name, p)
    assert v["LogEndOffset"] >= p["HighWatermark"], (name, p)
    if version >= 1:
        for f in ("LastFetchTimestamp", "LastCaughtUpTimestamp"):
            assert before_ms - 1000 <= v[f] <= after_ms + 1000, (name, f, v[f], before_ms, after_ms)
    return p


def test_quorum(pair):
    lo, hi = pair.versions("DescribeQuorum")
    for v in range(lo, hi + 1):
        before = int(time.time() * 1000)
        k, s = pair.both("DescribeQuorum", v, _req([(TOPIC, [0])]))
        after = int(time.time() * 1000)
        for name, answer in (("kafka", k), ("samsa", s)):
            _check_alone(name, v, answer, before, after)
        pair.compare("the metadata quorum (DescribeQuorum v%d)" % v, k, s, ignore=OFFSETS,
                     known_paths=LISTENER if v >= 2 else None)


def test_metadata_change_moves_high_watermark(pair):
    v = pair.version("DescribeQuorum")

    def hw(peer):
        return _quorum(peer.call("DescribeQuorum", v, _req([(TOPIC, [0])])))["HighWatermark"]

    before = [hw(p) for p in pair.peers]
    pair.create_topic(pair.name("dq"))
    after = [hw(p) for p in pair.peers]
    for p, b, a in zip(pair.peers, before, after):
        assert a > b, "%s: high watermark %d before creating a topic, %d after" % (p.name, b, a)
    # Samsa's log holds one entry per change, and nothing else happened meanwhile.
    assert after[1] == before[1] + 1, (before[1], after[1])


def test_not_the_metadata_partition(pair):
    """Anything but exactly [__cluster_metadata: [0]]: every partition named gets
    UNKNOWN_TOPIC_OR_PARTITION, in the request's order, with no quorum data."""
    cases = {
        "another topic": [("t", [0])],
        "another partition": [(TOPIC, [1])],
        "partition 0 twice": [(TOPIC, [0, 0])],
        "two partitions": [(TOPIC, [0, 1])],
        "two topics": [(TOPIC, [0]), ("t", [2, 3])],
        "the topic twice": [(TOPIC, [0]), (TOPIC, [0])],
        "no partitions": [(TOPIC, [])],
        "no topics": [],
    }
    lo, hi = pair.versions("DescribeQuorum")
    for what, topics in cases.items():
        for v in sorted({lo, hi}):
            pair.same(what, "DescribeQuorum", v, _req(topics))
