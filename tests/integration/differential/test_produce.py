"""Produce: error paths (unknown topics and partitions, oversized batches, bad CRCs,
keyless records in compacted topics, acks values, empty and malformed record sets,
idempotent sequence checks) and what ends up in the log afterwards."""
import gzip
import struct
import time

import pytest

import kclient
import kcodec
from kcodec import record_batch
from kdiff import known

VALUE = b"v" * 100


def _produce_req(topic, partition, records, acks=-1, tid=None, timeout_ms=30000):
    return {"TransactionalId": tid, "Acks": acks, "TimeoutMs": timeout_ms,
            "TopicData": [{"Name": topic, "PartitionData": [{"Index": partition, "Records": records}]}]}


def _log(pair, topic, partition=0):
    """Both logs read back from offset 0 (Fetch), compared byte for byte."""
    v = pair.version("Fetch")
    req = {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 10 << 20,
           "IsolationLevel": 0, "SessionId": 0, "SessionEpoch": -1,
           "Topics": [{"Topic": topic, "Partitions": [{"Partition": partition, "FetchOffset": 0,
                                                      "PartitionMaxBytes": 10 << 20}]}],
           "ForgottenTopicsData": [], "RackId": ""}
    pair.same("Fetch %s-%d after produce" % (topic, partition), "Fetch", v, req)


def _same_produce(pair, what, topic, partition, records, acks=-1, known_paths=None, version=None,
                  timeout_ms=30000, ignore=()):
    v = version or pair.version("Produce")
    k, s = pair.both("Produce", v, _produce_req(topic, partition, records, acks, timeout_ms=timeout_ms))
    pair.compare("%s (Produce v%d)" % (what, v), k, s, known_paths=known_paths, ignore=ignore)
    return k, s


def test_unknown_topic(pair):
    _same_produce(pair, "unknown topic", pair.name("nope"), 0, record_batch([(b"k", VALUE)]))


@pytest.mark.parametrize("partition", [1, 7, -1])
def test_unknown_partition(pair, partition):
    t = pair.create_topic(pair.name("pp"))
    _same_produce(pair, "partition %d of a 1-partition topic" % partition, t, partition,
                  record_batch([(b"k", VALUE)]))
    _log(pair, t)


def test_topic_max_message_bytes(pair):
    t = pair.create_topic(pair.name("big"), configs={"max.message.bytes": "2000"})
    _same_produce(pair, "batch over the topic's max.message.bytes", t, 0,
                  record_batch([(b"k", b"x" * 3000)]))
    _same_produce(pair, "batch under it", t, 0, record_batch([(b"k", b"x" * 1000)]))
    _log(pair, t)


def test_broker_message_max_bytes(pair):
    t = pair.create_topic(pair.name("big"))
    _same_produce(pair, "batch over message.max.bytes", t, 0,
                  record_batch([(b"k", b"x" * 1100000)]))
    _log(pair, t)


def test_bad_crc(pair):
    t = pair.create_topic(pair.name("crc"))
    _same_produce(pair, "batch with a wrong CRC", t, 0, record_batch([(b"k", VALUE)], corrupt_crc=True))
    _log(pair, t)


@pytest.mark.parametrize("case,records", [
    pytest.param("one-keyless", [(None, VALUE)], id="one-keyless"),
    pytest.param("keyed-then-keyless", [(b"a", VALUE), (None, VALUE), (b"b", VALUE), (None, VALUE)],
                 id="keyed-then-keyless"),
    pytest.param("all-keyed", [(b"a", VALUE), (b"b", VALUE)], id="all-keyed"),
])
def test_keyless_in_compacted_topic(pair, case, records):
    t = pair.create_topic(pair.name("cmp"), configs={"cleanup.policy": "compact"})
    _same_produce(pair, "compacted topic, %s" % case, t, 0, record_batch(records))
    _log(pair, t)


def test_keyless_in_compacted_topic_old_version(pair):
    """Before v8 there is no RecordErrors: only the partition's error code."""
    lo, hi = pair.versions("Produce")
    t = pair.create_topic(pair.name("cmp"), configs={"cleanup.policy": "compact"})
    _same_produce(pair, "compacted topic, keyless, v%d" % min(7, hi), t, 0,
                  record_batch([(None, VALUE)]), version=max(lo, min(7, hi)))


@pytest.mark.parametrize("acks", [1, -1, 2, -2, 3])
def test_acks(pair, acks):
    t = pair.create_topic(pair.name("acks"))
    _same_produce(pair, "acks=%d" % acks, t, 0, record_batch([(b"k", VALUE)]), acks=acks)
    _log(pair, t)


def test_acks_zero(pair):
    """acks=0: no answer at all; the next request on the connection gets the next
    answer, and the record is in the log."""
    t = pair.create_topic(pair.name("acks0"))
    v = pair.version("Produce")
    for peer in pair.peers:
        with peer.connect() as c:
            c.send("Produce", v, _produce_req(t, 0, record_batch([(b"k", VALUE)]), acks=0))
            corr = c.send("ApiVersions", 0, {})
            r = c.recv("ApiVersions", 0, corr)  # asserts the correlation id
            assert r["ErrorCode"] == 0
    _log(pair, t)


def test_acks_zero_refused_batch(pair):
    """acks=0 with a batch the broker refuses (bad CRC): Kafka closes the connection
    so the producer notices; compare whether the connection survives."""
    t = pair.create_topic(pair.name("acks0"))
    v = pair.version("Produce")
    outcome = []
    for peer in pair.peers:
        with peer.connect(timeout=10) as c:
            c.send("Produce", v, _produce_req(t, 0, record_batch([(b"k", VALUE)], corrupt_crc=True), acks=0))
            try:
                corr = c.send("ApiVersions", 0, {})
                c.recv("ApiVersions", 0, corr)
                outcome.append("answered")
            except (kclient.Closed, OSError):
                outcome.append("closed")
    pair.compare("acks=0 with a bad batch: connection", outcome[0], outcome[1])


MALFORMED = [
    pytest.param("empty-bytes", b"", id="empty-bytes"),
    pytest.param("truncated-batch", record_batch([(b"k", VALUE)])[:-10], id="truncated-batch"),
    pytest.param("garbage", b"\x00" * 70, id="garbage"),
]

NULL_RECORDS_WAIT = 3.0  # seconds to wait for Kafka's (absent) answer


def test_null_records(pair):
    """Null records: Samsa answers INVALID_RECORD; Kafka 4.4 does not answer at all
    (known difference produce-null-records)."""
    known("produce-null-records")
    t = pair.create_topic(pair.name("mal"))
    v = pair.version("Produce")
    answers = []
    for peer in pair.peers:
        with peer.connect(timeout=NULL_RECORDS_WAIT) as c:
            corr = c.send("Produce", v, _produce_req(t, 0, None, timeout_ms=1000))
            try:
                r = c.recv("Produce", v, corr)
                answers.append(r["Responses"][0]["PartitionResponses"][0]["ErrorCode"])
            except OSError:  # socket.timeout
                answers.append("no answer")
            except kclient.Closed:
                answers.append("closed")
    if answers[0] == answers[1]:
        raise AssertionError("known difference produce-null-records no longer seen (both %r): "
                             "remove it from KNOWN_DIFFERENCES and docs" % (answers[0],))
    assert answers == ["no answer", 87], answers
    _log(pair, t)


@pytest.mark.parametrize("case,records", MALFORMED)
def test_malformed_records(pair, case, records):
    t = pair.create_topic(pair.name("mal"))
    # A short timeout: Kafka holds a request with null records until it expires.
    _same_produce(pair, "records %s" % case, t, 0, records, timeout_ms=1000)
    _log(pair, t)


def test_magic_1_message_set(pair):
    """A legacy (magic 1) message in a v3+ produce."""
    t = pair.create_topic(pair.name("m1"))
    key, value = b"k", VALUE
    body = struct.pack(">bbq", 1, 0, 1700000000000) + struct.pack(">i", len(key)) + key \
        + struct.pack(">i", len(value)) + value
    import zlib
    msg = struct.pack(">I", zlib.crc32(body)) + body
    records = struct.pack(">qi", 0, len(msg)) + msg
    _same_produce(pair, "magic 1 message", t, 0, records)
    _log(pair, t)


def test_two_batches_in_one_partition(pair):
    t = pair.create_topic(pair.name("two"))
    records = record_batch([(b"a", VALUE)]) + record_batch([(b"b", VALUE)])
    v = pair.version("Produce")
    k, s = pair.both("Produce", v, _produce_req(t, 0, records))
    pair.compare("two batches for one partition (Produce v%d)" % v, k, s,
                 known_paths={"Responses[].PartitionResponses[].ErrorCode":
                              (known("produce-several-batches"), 87, 0),
                              "Responses[].PartitionResponses[].BaseOffset":
                              (known("produce-several-batches"), -1, 0),
                              "Responses[].PartitionResponses[].LogStartOffset":
                              (known("produce-several-batches"), -1, 0),
                              "Responses[].PartitionResponses[].RecordErrors*":
                              known("produce-several-batches")})


def test_internal_topic(pair):
    _same_produce(pair, "produce to __consumer_offsets", "__consumer_offsets", 0,
                  record_batch([(b"k", VALUE)]))


def test_gzip_batch(pair):
    """A gzip-compressed batch (attributes codec 1) is stored as sent."""
    t = pair.create_topic(pair.name("gz"))
    recs = [(b"k%d" % i, VALUE) for i in range(5)]
    inner = b"".join(kcodec._record(i, i, k, v, ()) for i, (k, v) in enumerate(recs))
    payload = gzip.compress(inner, mtime=0)
    batch = record_batch(recs, attributes=1, compressed_payload=payload)
    _same_produce(pair, "gzip batch", t, 0, batch)
    _log(pair, t)


def test_log_append_time(pair):
    t = pair.create_topic(pair.name("lat"), configs={"message.timestamp.type": "LogAppendTime"})
    v = pair.version("Produce")
    k, s = pair.both("Produce", v, _produce_req(t, 0, record_batch([(b"k", VALUE)])))
    pair.compare("LogAppendTime topic", k, s)
    for name, r in (("kafka", k), ("samsa", s)):
        ts = r["Responses"][0]["PartitionResponses"][0]["LogAppendTimeMs"]
        assert ts > 1700000000000, "%s: LogAppendTimeMs %d" % (name, ts)


def test_timestamp_far_in_future(pair):
    """Kafka 4 refuses batches stamped more than message.timestamp.after.max.ms (1 h)
    ahead of the broker's clock."""
    t = pair.create_topic(pair.name("fut"))
    future = int(time.time() * 1000) + 10 * HOUR_MS
    _same_produce(pair, "timestamp 10 h ahead", t, 0,
                  record_batch([(b"k", VALUE)], base_ts=future))
    _log(pair, t)


HOUR_MS = 3600 * 1000


def _stamped_batch(stamps, keys=None, gzipped=False):
    """One batch with a record per absolute timestamp: the first is the batch's base
    timestamp, the others deltas from it (negative ones too), the header's max the
    largest."""
    keys = keys or [b"k%d" % i for i in range(len(stamps))]
    recs = b"".join(kcodec._record(i, ts - stamps[0], keys[i], VALUE, ())
                    for i, ts in enumerate(stamps))
    attributes = 0
    if gzipped:
        recs, attributes = gzip.compress(recs, mtime=0), 1
    n = len(stamps)
    after_crc = struct.pack(">hiqqqhii", attributes, n - 1, stamps[0], max(stamps), -1, -1, -1,
                            n) + recs
    after_len = struct.pack(">ibI", -1, 2, kcodec.crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


# (case, topic configs, timestamps as hours from now (None: no timestamp, -1), keys)
TIMESTAMP_CASES = [
    ("past-before-max-1h", {"message.timestamp.before.max.ms": str(HOUR_MS)}, [-10], None),
    ("past-default-before-max", {}, [-10 * 24 * 365], None),
    ("some-records-out", {"message.timestamp.before.max.ms": str(HOUR_MS)},
     [0, 10, 0, -10, 0], None),
    ("below-first-timestamp", {"message.timestamp.before.max.ms": str(HOUR_MS)}, [0, -10], None),
    ("no-timestamp", {"message.timestamp.before.max.ms": "0"}, [None], None),
    ("after-max-24h", {"message.timestamp.after.max.ms": str(24 * HOUR_MS)}, [10], None),
    ("after-max-zero", {"message.timestamp.after.max.ms": "0"}, [10, -1], None),
    ("compacted-keyless-and-future", {"cleanup.policy": "compact"}, [10, 10, 0],
     [None, b"a", None]),
    ("gzip-future", {}, [0, 10], None),
    ("gzip-compacted-keyless-and-future", {"cleanup.policy": "compact"}, [0, 10],
     [None, b"a"]),
]


@pytest.mark.parametrize("case,configs,hours,keys", TIMESTAMP_CASES,
                         ids=[c[0] for c in TIMESTAMP_CASES])
def test_timestamp_bounds(pair, case, configs, hours, keys):
    """message.timestamp.before/after.max.ms: RecordErrors name each refused record
    (a keyless record in a compacted topic gets its key error instead), and nothing of
    a refused batch is stored. Offsets are hours from the clock, far from the bounds."""
    t = pair.create_topic(pair.name("tsb"), configs=configs)
    now = int(time.time() * 1000)
    stamps = [-1 if h is None else now + h * HOUR_MS for h in hours]
    _same_produce(pair, "timestamps %s" % case, t, 0,
                  _stamped_batch(stamps, keys, gzipped=case.startswith("gzip")))
    _log(pair, t)


def test_timestamp_log_append_time_topic(pair):
    """LogAppendTime topics do not check producers' timestamps."""
    t = pair.create_topic(pair.name("tsl"), configs={"message.timestamp.type": "LogAppendTime",
                                                     "message.timestamp.after.max.ms": "0"})
    future = int(time.time() * 1000) + 10 * HOUR_MS
    _same_produce(pair, "LogAppendTime topic, 10 h ahead", t, 0,
                  record_batch([(b"k", VALUE)], base_ts=future))


# ---------------------------------------------------------------- idempotent producers


def _init_pid(peer):
    v = 4 if peer.versions.get(22, (0, 0))[1] >= 4 else 0
    got = []

    def ok():
        r = peer.call("InitProducerId", v, {"TransactionalId": None, "TransactionTimeoutMs": 60000})
        # Kafka answers COORDINATOR_LOAD_IN_PROGRESS (14) until its first block of
        # producer ids arrives from the controller.
        assert r["ErrorCode"] in (0, 14), r
        got.append(r)
        return r["ErrorCode"] == 0

    kclient.wait_until(ok, 30, interval=0.2, what="%s: InitProducerId" % peer.name)
    return got[-1]["ProducerId"], got[-1]["ProducerEpoch"]


def test_idempotent_sequences(pair):
    t = pair.create_topic(pair.name("idem"))
    v = pair.version("Produce")
    pids = [_init_pid(p) for p in pair.peers]
    steps = [("seq 0", 0, 0), ("seq 1", 1, 0), ("retry of seq 1", 1, 0), ("retry of seq 0", 0, 0),
             ("gap: seq 5", 5, 0), ("new epoch not at 0", 3, 1), ("old epoch", 2, -1),
             ("seq 2", 2, 0)]
    for what, seq, depoch in steps:
        answers = []
        for peer, (pid, epoch) in zip(pair.peers, pids):
            batch = record_batch([(b"k", VALUE)], producer_id=pid, producer_epoch=max(0, epoch + depoch),
                                 base_sequence=seq)
            answers.append(pair.call(peer, "Produce", v, _produce_req(t, 0, batch)))
        pair.compare("idempotent produce: %s" % what, *answers)
    _log_ignoring_pids(pair, t)


def _log_ignoring_pids(pair, topic):
    """Like _log, but batches of idempotent producers differ in producer id (and so
    in CRC): compare the decoded batches without those."""
    v = pair.version("Fetch")
    req = {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 10 << 20,
           "IsolationLevel": 0, "SessionId": 0, "SessionEpoch": -1,
           "Topics": [{"Topic": topic, "Partitions": [{"Partition": 0, "FetchOffset": 0,
                                                      "PartitionMaxBytes": 10 << 20}]}],
           "ForgottenTopicsData": [], "RackId": ""}
    # Kafka once (1 run in 5) answered this Fetch OFFSET_OUT_OF_RANGE (1) right after the
    # produces, then never again: ask it again for a while rather than fail on Kafka.
    def answered():
        got = pair.both("Fetch", v, req)
        return got if got[0]["Responses"][0]["Partitions"][0]["ErrorCode"] != 1 else None

    k, s = kclient.wait_until(answered, 10, interval=0.2, what="Kafka to serve offset 0")
    pair.compare("Fetch after idempotent produce", k, s,
                 ignore=("Responses[].Partitions[].Records",))
    kb, _ = kcodec.decode_batches(k["Responses"][0]["Partitions"][0]["Records"])
    sb, _ = kcodec.decode_batches(s["Responses"][0]["Partitions"][0]["Records"])
    for b in kb + sb:
        assert b.get("crc_ok"), "bad CRC in a fetched batch: %r" % b
        b.pop("producer_id")
    pair.compare("batches after idempotent produce", kb, sb, ignore=("*crc_ok",))


def test_transactional_id_without_transaction(pair):
    t = pair.create_topic(pair.name("tx"))
    v = pair.version("Produce")
    k, s = pair.both("Produce", v, _produce_req(t, 0, record_batch([(b"k", VALUE)]), tid="no-such-txn"))
    # A plain batch is appended whatever the id (Kafka verifies only transactional ones).
    pair.compare("produce with a transactional id", k, s)


def _decoded_log(pair, topic):
    """Both logs from offset 0, decoded: (codec, [(offset, key, value)]) per batch."""
    v = pair.version("Fetch")
    req = {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 10 << 20,
           "IsolationLevel": 0, "SessionId": 0, "SessionEpoch": -1,
           "Topics": [{"Topic": topic, "Partitions": [{"Partition": 0, "FetchOffset": 0,
                                                      "PartitionMaxBytes": 10 << 20}]}],
           "ForgottenTopicsData": [], "RackId": ""}
    out = []
    for r in pair.both("Fetch", v, req):
        batches, _ = kcodec.decode_batches(r["Responses"][0]["Partitions"][0]["Records"])
        side = []
        for b in batches:
            assert b["crc_ok"], b
            codec = b["attributes"] & 7
            if codec == 1:
                inner = gzip.decompress(b["compressed_payload"])
                side.append((codec, b["base_offset"], b["count"], _records_of(inner, b)))
            elif codec == 0:
                side.append((codec, b["base_offset"], b["count"],
                             [(x["offset"], x["key"], x["value"]) for x in b["records"]]))
            else:
                side.append((codec, b["base_offset"], b["count"], None))
        out.append(side)
    return out


def _records_of(payload, b):
    r = kcodec.Reader(payload)
    recs = []
    for _ in range(b["count"]):
        r.varint()
        r.take(1)
        r.varint()
        od = r.varint()
        kl = r.varint()
        k = None if kl < 0 else r.take(kl)
        vl = r.varint()
        v = None if vl < 0 else r.take(vl)
        for _ in range(r.varint()):
            r.take(r.varint())
            hl = r.varint()
            if hl >= 0:
                r.take(hl)
        recs.append((b["base_offset"] + od, k, v))
    return recs


@pytest.mark.parametrize("topic_codec,batch_codec", [
    ("gzip", "none"), ("uncompressed", "gzip"), ("gzip", "gzip"), ("producer", "gzip"),
])
def test_compression_type_applied(pair, topic_codec, batch_codec):
    """compression.type on the topic: the batch is stored in the topic's codec (gzip
    here: the only codec Python's standard library reads) with the same records."""
    t = pair.create_topic(pair.name("ct"), configs={"compression.type": topic_codec})
    recs = [(b"k%d" % i, VALUE) for i in range(5)]
    if batch_codec == "gzip":
        inner = b"".join(kcodec._record(i, i, k, v, ()) for i, (k, v) in enumerate(recs))
        batch = record_batch(recs, attributes=1, compressed_payload=gzip.compress(inner, mtime=0))
    else:
        batch = record_batch(recs)
    _same_produce(pair, "topic %s, batch %s" % (topic_codec, batch_codec), t, 0, batch)
    k, s = _decoded_log(pair, t)
    pair.compare("stored batches (codec, base offset, count, records)", k, s)


@pytest.mark.parametrize("topic_type", ["CreateTime", "LogAppendTime"])
def test_producer_sets_log_append_time(pair, topic_type):
    """A producer's batch carrying the LogAppendTime attribute (0x08)."""
    t = pair.create_topic(pair.name("pla"), configs={"message.timestamp.type": topic_type})
    now = int(time.time() * 1000)
    _same_produce(pair, "%s topic, LogAppendTime bit from the producer" % topic_type, t, 0,
                  record_batch([(b"k", VALUE), (b"k2", VALUE)], base_ts=now, attributes=0x08),
                  ignore=("*.LogAppendTimeMs",))
    _log(pair, t)
