"""ListOffsets: every special timestamp (-1 latest, -2 earliest, -3 max timestamp,
-4 earliest local, -5 latest tiered) where the version allows it, real timestamps
(before, at, between and after the records), empty topics, unknown topics and
partitions, a moved log start."""
import pytest

from kcodec import record_batch

T0 = 1700000000000
SPECIAL = {"latest": -1, "earliest": -2, "max-timestamp": -3, "earliest-local": -4,
           "latest-tiered": -5}
# The first version that defines each special timestamp.
SINCE = {-1: 0, -2: 0, -3: 7, -4: 8, -5: 9}


@pytest.fixture(scope="module")
def lo_topic(pair):
    """Offsets 0-4 at T0..T0+4, 5-9 at T0+1000..T0+1004 (the largest), 10-12 at
    T0+500..T0+502."""
    t = pair.create_topic(pair.name("lo"))
    pair.produce(t, 0, [
        record_batch([(b"a%d" % i, b"x") for i in range(5)], base_ts=T0),
        record_batch([(b"b%d" % i, b"x") for i in range(5)], base_ts=T0 + 1000),
        record_batch([(b"c%d" % i, b"x") for i in range(3)], base_ts=T0 + 500),
    ])
    return t


def _req(version, topic, stamps, partition=0, isolation=0):
    r = {"ReplicaId": -1, "IsolationLevel": isolation,
         "Topics": [{"Name": topic, "Partitions": [
             {"PartitionIndex": partition, "Timestamp": ts, "CurrentLeaderEpoch": -1}
             for ts in stamps]}]}
    if version >= 10:
        r["TimeoutMs"] = 30000
    return r


def _one(pair, what, topic, ts, version, partition=0):
    k, s = pair.both("ListOffsets", version, _req(version, topic, [ts], partition))
    pair.compare("%s (ListOffsets v%d, timestamp %d)" % (what, version, ts), k, s)
    return k, s


def _versions(pair):
    lo, hi = pair.versions("ListOffsets")
    return sorted({lo, max(lo, min(hi, 6)), max(lo, min(hi, 7)), max(lo, min(hi, 8)), hi})


@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_timestamps(pair, lo_topic, name):
    ts = SPECIAL[name]
    for v in _versions(pair):
        if v >= SINCE[ts]:
            _one(pair, name, lo_topic, ts, v)


@pytest.mark.parametrize("name", [n for n in SPECIAL if SINCE[SPECIAL[n]] > 1])
def test_special_timestamps_too_new_for_version(pair, lo_topic, name):
    """A special timestamp in a version older than the one that defines it."""
    ts = SPECIAL[name]
    for v in _versions(pair):
        if v < SINCE[ts]:
            _one(pair, name, lo_topic, ts, v)


@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_timestamps_empty_topic(pair, name):
    t = pair.create_topic(pair.name("loe"))
    _one(pair, "%s, empty topic" % name, t, SPECIAL[name], pair.version("ListOffsets"))


@pytest.mark.parametrize("case,ts", [
    ("before-all", T0 - 1000), ("first", T0), ("inside-first-batch", T0 + 2),
    ("between-batches", T0 + 600), ("older-batch-after-newer", T0 + 501),
    ("max", T0 + 1004), ("after-all", T0 + 5000), ("zero", 0),
])
def test_real_timestamps(pair, lo_topic, case, ts):
    for v in (pair.versions("ListOffsets")[0], pair.version("ListOffsets")):
        _one(pair, case, lo_topic, ts, v)


def test_below_minus_five(pair, lo_topic):
    _one(pair, "timestamp -6", lo_topic, -6, pair.version("ListOffsets"))


def test_unknown_topic(pair):
    _one(pair, "unknown topic", pair.name("nolo"), -1, pair.version("ListOffsets"))


@pytest.mark.parametrize("partition", [1, -1])
def test_unknown_partition(pair, lo_topic, partition):
    _one(pair, "unknown partition", lo_topic, -1, pair.version("ListOffsets"), partition=partition)


def test_duplicate_partition(pair, lo_topic):
    v = pair.version("ListOffsets")
    pair.same("same partition twice", "ListOffsets", v, _req(v, lo_topic, [-1, -2]))


def test_read_committed(pair, lo_topic):
    v = pair.version("ListOffsets")
    pair.same("read_committed latest", "ListOffsets", v, _req(v, lo_topic, [-1], isolation=1))


def test_after_delete_records(pair):
    t = pair.create_topic(pair.name("lod"))
    pair.produce(t, 0, [record_batch([(b"k%d" % i, b"x") for i in range(4)], base_ts=T0 + 10 * i)
                        for i in range(3)])
    dv = pair.version("DeleteRecords")
    pair.same("DeleteRecords to 6", "DeleteRecords", dv, {
        "Topics": [{"Name": t, "Partitions": [{"PartitionIndex": 0, "Offset": 6}]}], "TimeoutMs": 30000})
    v = pair.version("ListOffsets")
    for ts in (-1, -2, -3, -4, -5, T0, T0 + 10, T0 + 21):
        if SINCE.get(ts, 0) <= v:
            _one(pair, "after DeleteRecords", t, ts, v)
