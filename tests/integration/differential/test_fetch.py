"""Fetch: which partitions get data and how much under max_bytes,
partition_max_bytes and min_bytes; offsets out of range; unknown topics and
partitions. Both brokers hold byte-identical logs (same batches, same timestamps),
so the record bytes of each answer are compared exactly."""
import pytest

from kcodec import decode_batches, record_batch
import kdiff
from kdiff import known

VALUE = b"f" * 150


def _batches():
    """partition -> list of batches (bytes)."""
    out = {0: [], 1: [], 2: []}
    ts = 1700000000000
    for i in range(3):
        out[0].append(record_batch([(b"p0-%d-%d" % (i, j), VALUE) for j in range(5)], base_ts=ts + i * 10))
    out[1].append(record_batch([(b"p1-%d" % j, VALUE) for j in range(20)], base_ts=ts))
    for i in range(2):
        out[2].append(record_batch([(b"p2-%d-%d" % (i, j), VALUE) for j in range(2)], base_ts=ts + i * 10))
    return out


BATCHES = _batches()
SIZES = {p: [len(b) for b in bs] for p, bs in BATCHES.items()}
TOTAL = {p: sum(s) for p, s in SIZES.items()}
END = {0: 15, 1: 20, 2: 4}  # log end offsets


@pytest.fixture(scope="module")
def fetch_topic(pair):
    t = pair.create_topic(pair.name("fx"), partitions=3)
    for p, bs in BATCHES.items():
        pair.produce(t, p, bs)
    return t


def _req(topic, parts, max_bytes=10 << 20, min_bytes=1, max_wait=0, pmb=1 << 20, isolation=0):
    """parts: [(partition, offset)] or [(partition, offset, partition_max_bytes)]."""
    ps = []
    for x in parts:
        p, off = x[0], x[1]
        ps.append({"Partition": p, "FetchOffset": off, "PartitionMaxBytes": x[2] if len(x) > 2 else pmb})
    return {"ReplicaId": -1, "MaxWaitMs": max_wait, "MinBytes": min_bytes, "MaxBytes": max_bytes,
            "IsolationLevel": isolation, "SessionId": 0, "SessionEpoch": -1,
            "Topics": [{"Topic": topic, "Partitions": ps}], "ForgottenTopicsData": [], "RackId": ""}


def _summary(resp):
    """partition -> (error, records size, complete batches' base offsets, partial tail)."""
    out = {}
    for t in resp["Responses"]:
        for p in t["Partitions"]:
            recs = p["Records"]
            batches, tail = decode_batches(recs)
            out[p["PartitionIndex"]] = (p["ErrorCode"], len(recs) if recs is not None else None,
                                        [b["base_offset"] for b in batches], tail)
    return out



def _fetch(pair, what, topic, parts, version=None, ignore=(), **kw):
    v = version if version is not None else pair.version("Fetch")
    k, s = pair.both("Fetch", v, _req(topic, parts, **kw))
    # First the shape (which partitions got which batches, how many bytes), which
    # reads better than a byte diff, then everything, record bytes included.
    pair.compare("%s (Fetch v%d): per partition (error, bytes, batch offsets, partial tail)" % (what, v),
                 _summary(k), _summary(s))
    pair.compare("%s (Fetch v%d)" % (what, v), k, s, ignore=ignore)
    return k, s


def _limits_hold(resp, max_bytes, pmb):
    """Kafka's rules for the sizes: the first partition with data may exceed the limits
    by one whole batch (KIP-74), nothing else may."""
    total = 0
    first = True
    for t in resp["Responses"]:
        for p in t["Partitions"]:
            n = len(p["Records"] or b"")
            if n and first:
                batches, tail = decode_batches(p["Records"])
                if batches and batches[0]["size"] > min(pmb, max_bytes):
                    assert n == batches[0]["size"], "oversized first batch plus more: %d" % n
                first = False if n else first
            elif n and n > pmb:
                raise kdiff.Difference("partition %d: %d bytes > partition_max_bytes %d"
                                       % (p["PartitionIndex"], n, pmb))
            total += n
    return total


def test_everything(pair, fetch_topic):
    k, s = _fetch(pair, "all partitions, large limits", fetch_topic, [(0, 0), (1, 0), (2, 0)])
    assert _summary(s) == {0: (0, TOTAL[0], [0, 5, 10], 0), 1: (0, TOTAL[1], [0], 0),
                           2: (0, TOTAL[2], [0, 2], 0)}


@pytest.mark.parametrize("version", ["lowest", "v11"])
def test_older_versions(pair, fetch_topic, version):
    lo, hi = pair.versions("Fetch")
    v = lo if version == "lowest" else min(hi, 11)
    _fetch(pair, "all partitions", fetch_topic, [(0, 0), (1, 0), (2, 0)], version=v)


def test_max_bytes_one(pair, fetch_topic):
    """max_bytes=1: the first batch of the first partition, whole (KIP-74)."""
    k, s = _fetch(pair, "max_bytes=1", fetch_topic, [(0, 0), (1, 0), (2, 0)], max_bytes=1)
    _limits_hold(k, 1, 1 << 20)
    _limits_hold(s, 1, 1 << 20)


def test_max_bytes_first_partition_large_batch(pair, fetch_topic):
    """The first partition's only batch (p1, ~3.3 kB) is larger than max_bytes: it is
    returned whole, and the other partitions get nothing."""
    _fetch(pair, "max_bytes=1000, p1 first", fetch_topic, [(1, 0), (0, 0), (2, 0)], max_bytes=1000)


# Cases where fewer bytes are left (of max_bytes or partition_max_bytes) than the next
# batch's size, other than for the response's first batch: Kafka returns exactly the
# bytes left, ending in the truncated start of that batch; Samsa stops before it
# (known difference fetch-whole-batches-only). Everything before the cut must agree.
CUT = [
    ("inside-second-batch-of-first-partition", [(0, 0), (1, 0), (2, 0)],
     {"max_bytes": SIZES[0][0] + 100}),
    ("later-partition-first-batch", [(0, 0), (1, 0), (2, 0)],
     {"max_bytes": TOTAL[0] + 500}),
    ("partition-max-bytes", [(0, 0), (1, 0), (2, 0)], {"pmb": 1000}),
    ("partition-max-bytes-one", [(0, 0), (1, 0), (2, 0)], {"pmb": 1}),
    ("per-partition-limits", [(0, 0, 2000), (1, 0, 100), (2, 0, 250)], {}),
]


def _strip_tails(resp):
    """The answer with each partition's trailing partial batch removed; returns the
    number of partitions that had one."""
    cut = 0
    for t in resp["Responses"]:
        for p in t["Partitions"]:
            recs = p["Records"]
            if recs:
                _, tail = decode_batches(recs)
                if tail:
                    p["Records"] = recs[:len(recs) - tail]
                    cut += 1
    return cut


@pytest.mark.parametrize("case,parts,kw", [pytest.param(c, p, kw, id=c) for c, p, kw in CUT])
def test_cut_batches(pair, fetch_topic, case, parts, kw):
    v = pair.version("Fetch")
    k, s = pair.both("Fetch", v, _req(fetch_topic, parts, **kw))
    scut = _strip_tails(s)
    if scut:
        raise kdiff.Difference("%s: Samsa's answer ends %d partition(s) with a partial batch; "
                               "known difference %s no longer holds" % (
                                   case, scut, known("fetch-whole-batches-only")))
    kcut = _strip_tails(k)
    pair.compare("%s (Fetch v%d), Kafka's partial batches removed (%d)" % (case, v, kcut), k, s)


@pytest.mark.parametrize("case,parts,kw", [pytest.param(c, p, kw, id=c) for c, p, kw in CUT])
def test_limits_obeyed(pair, fetch_topic, case, parts, kw):
    """Each broker obeys the limits (KIP-74: only the response's first batch may
    exceed them)."""
    v = pair.version("Fetch")
    k, s = pair.both("Fetch", v, _req(fetch_topic, parts, **kw))
    mb = kw.get("max_bytes", 10 << 20)
    pmb = kw.get("pmb", 1 << 20)
    for name, r in (("kafka", k), ("samsa", s)):
        total = _limits_hold(r, mb, pmb if len(parts[0]) == 2 else max(x[2] for x in parts))
        first = next((len(p["Records"]) for t in r["Responses"] for p in t["Partitions"] if p["Records"]), 0)
        if total > max(mb, first):
            raise kdiff.Difference("%s: %d bytes in all > max_bytes %d" % (name, total, mb))


def test_offset_inside_a_batch(pair, fetch_topic):
    """Offset 7 is inside p0's second batch (5-9): the batch is returned from its start."""
    _fetch(pair, "offset inside a batch", fetch_topic, [(0, 7)])


@pytest.mark.parametrize("case,offset", [("at-end", END[0]), ("above-end", END[0] + 1),
                                         ("far-above", 1 << 40), ("minus-one", -1),
                                         ("minus-two", -2)])
def test_offsets(pair, fetch_topic, case, offset):
    _fetch(pair, "offset %s" % case, fetch_topic, [(0, offset)])


def test_below_log_start(pair):
    t = pair.create_topic(pair.name("fxs"))
    pair.produce(t, 0, BATCHES[0])
    v = pair.version("DeleteRecords")
    pair.same("DeleteRecords to 5", "DeleteRecords", v, {
        "Topics": [{"Name": t, "Partitions": [{"PartitionIndex": 0, "Offset": 5}]}], "TimeoutMs": 30000})
    for off in (0, 4, 5, 6):
        _fetch(pair, "offset %d, log start 5" % off, t, [(0, off)])


def test_min_bytes_and_wait(pair, fetch_topic):
    """At the log end with min_bytes=1: both wait max_wait_ms and answer empty; with a
    min_bytes larger than the data: both answer with what there is at the deadline."""
    _fetch(pair, "at end, min_bytes=1, wait 200 ms", fetch_topic, [(2, END[2])], min_bytes=1, max_wait=200)
    _fetch(pair, "min_bytes above the data, wait 200 ms", fetch_topic, [(2, 0)], min_bytes=1 << 20,
           max_wait=200)


def test_read_committed(pair, fetch_topic):
    _fetch(pair, "read_committed", fetch_topic, [(0, 0), (2, 0)], isolation=1)


def test_unknown_topic(pair):
    _fetch(pair, "unknown topic", pair.name("nofx"), [(0, 0)])


def test_unknown_partition(pair, fetch_topic):
    _fetch(pair, "unknown partition", fetch_topic, [(0, 0), (3, 0), (-1, 0)])


def test_mixed_topics(pair, fetch_topic):
    """A known and an unknown topic in one request."""
    v = pair.version("Fetch")
    req = _req(fetch_topic, [(2, 0)])
    req["Topics"].append({"Topic": pair.name("nofx"), "Partitions": [
        {"Partition": 0, "FetchOffset": 0, "PartitionMaxBytes": 1 << 20}]})
    k, s = pair.both("Fetch", v, req)
    pair.compare("known and unknown topic (Fetch v%d)" % v, k, s)


@pytest.mark.parametrize("case", ["out-of-range", "unknown-partition"])
def test_error_partition_fields(pair, fetch_topic, case):
    """The other fields of a partition answered with an error."""
    v = pair.version("Fetch")
    parts = [(0, END[0] + 1)] if case == "out-of-range" else [(5, 0)]
    k, s = pair.both("Fetch", v, _req(fetch_topic, parts))
    pair.compare("Fetch v%d, %s: fields of the partition" % (v, case), k, s)


@pytest.mark.parametrize("epoch", [-1, 0, 1, 7])
def test_current_leader_epoch(pair, fetch_topic, epoch):
    """KIP-320: a CurrentLeaderEpoch above the partition's (0 on one node, in both) is
    UNKNOWN_LEADER_EPOCH; -1 (not said) and the partition's own epoch read as usual."""
    v = pair.version("Fetch")
    req = _req(fetch_topic, [(0, 0)])
    req["Topics"][0]["Partitions"][0]["CurrentLeaderEpoch"] = epoch
    k, s = pair.both("Fetch", v, req)
    pair.compare("Fetch v%d, CurrentLeaderEpoch %d" % (v, epoch), k, s)
