"""compression.type as Kafka has it (KIP-390, LogValidator): a topic whose compression.type
names a codec stores every batch with that codec, whatever the producer sent; `producer`
stores batches as sent; the broker's compression.type is the default of topics without
their own; invalid values and levels are refused with INVALID_CONFIG; compacted topics
refuse keyless records inside compressed batches too.

Stored codecs are read from the batches' attributes with a raw Fetch, so the tests see
what is on disk, not what the client decoded. Batches of every codec are produced two
ways: by confluent-kafka (librdkafka) with its compression.type, and raw, compressed
here with the same system libraries any client uses (ctypes), in every framing clients
write: gzip, snappy raw (librdkafka) and Xerial-framed (Java), lz4 frames, zstd.

librdkafka before 2.8 (Debian's 2.0.2 here) does not compress gzip, snappy or lz4 for a
broker whose Produce versions start at v3, as Kafka 4's and Samsa's do: it logs "Broker
does not support compression type ...: not compressing batch" and sends them plain
(librdkafka issue #4956). The raw batches cover those codecs."""
import ctypes
import gzip
import struct

from confluent_kafka import KafkaError
from confluent_kafka.admin import ConfigResource, ConfigSource, NewTopic

import kwire
from clients import admin, consume_all, create_topic, producer

CODEC_IDS = {"none": 0, "uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
PRODUCER_CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
TOPIC_TYPES = ["uncompressed", "gzip", "snappy", "lz4", "zstd", "producer"]
OPS = {"operation_timeout": 10, "request_timeout": 20}
N = 300  # records per producer codec and topic
CORRUPT_MESSAGE = KafkaError.INVALID_MSG  # Kafka's CORRUPT_MESSAGE (2)


def _lib(name):
    try:
        return ctypes.CDLL(name)
    except OSError as e:
        raise AssertionError("cannot load %s (the codec libraries the broker links): %s"
                             % (name, e))


class Codecs:
    """Compression with the system's libsnappy, liblz4 and libzstd, framed as clients
    frame it."""

    def __init__(self):
        self.snappy = _lib("libsnappy.so.1")
        self.snappy.snappy_max_compressed_length.restype = ctypes.c_size_t
        self.snappy.snappy_max_compressed_length.argtypes = [ctypes.c_size_t]
        self.snappy.snappy_compress.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                                ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]
        self.lz4 = _lib("liblz4.so.1")
        self.lz4.LZ4F_compressFrameBound.restype = ctypes.c_size_t
        self.lz4.LZ4F_compressFrameBound.argtypes = [ctypes.c_size_t, ctypes.c_void_p]
        self.lz4.LZ4F_compressFrame.restype = ctypes.c_size_t
        self.lz4.LZ4F_compressFrame.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                                ctypes.c_size_t, ctypes.c_void_p]
        self.zstd = _lib("libzstd.so.1")
        self.zstd.ZSTD_compressBound.restype = ctypes.c_size_t
        self.zstd.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
        self.zstd.ZSTD_compress.restype = ctypes.c_size_t
        self.zstd.ZSTD_compress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                            ctypes.c_size_t, ctypes.c_int]

    def snappy_raw(self, data):
        cap = ctypes.c_size_t(self.snappy.snappy_max_compressed_length(len(data)))
        out = ctypes.create_string_buffer(cap.value)
        assert self.snappy.snappy_compress(data, len(data), out, ctypes.byref(cap)) == 0
        return out.raw[:cap.value]

    def snappy_xerial(self, data, block=32 * 1024):
        out = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
        for i in range(0, len(data), block):
            c = self.snappy_raw(data[i:i + block])
            out += struct.pack(">i", len(c)) + c
        return out

    def lz4_frame(self, data):
        cap = self.lz4.LZ4F_compressFrameBound(len(data), None)
        out = ctypes.create_string_buffer(cap)
        n = self.lz4.LZ4F_compressFrame(out, cap, data, len(data), None)
        assert n < cap
        return out.raw[:n]

    def zstd_frame(self, data):
        cap = self.zstd.ZSTD_compressBound(len(data))
        out = ctypes.create_string_buffer(cap)
        n = self.zstd.ZSTD_compress(out, cap, data, len(data), 3)
        assert n <= cap
        return out.raw[:n]

    def raw_kinds(self):
        return [("none", 0, lambda d: d), ("gzip", 1, gzip.compress),
                ("snappy-raw", 2, self.snappy_raw), ("snappy-xerial", 2, self.snappy_xerial),
                ("lz4", 3, self.lz4_frame), ("zstd", 4, self.zstd_frame)]


def batch(records, codec_id=0, compress=lambda d: d, base_ts=1_600_000_000_000):
    """One magic-2 batch of (key, value) records, the records section compressed with
    `compress` and codec_id in the attributes, with a valid CRC; record i has timestamp
    base_ts + i."""
    recs = b"".join(kwire.record(i, k, v, ts_delta=i) for i, (k, v) in enumerate(records))
    after_crc = (kwire.i16(codec_id) + kwire.i32(len(records) - 1) + kwire.i64(base_ts)
                 + kwire.i64(base_ts + len(records) - 1) + kwire.i64(-1) + kwire.i16(-1)
                 + kwire.i32(-1) + kwire.i32(len(records)) + compress(recs))
    after_len = (kwire.i32(-1) + kwire.i8(2) + struct.pack(">I", kwire.crc32c(after_crc))
                 + after_crc)
    return kwire.i64(0) + kwire.i32(len(after_len)) + after_len


def gzip_batch(records, corrupt_payload=False):
    def compress(d):
        c = gzip.compress(d)
        return c[:10] + bytes(x ^ 0x5A for x in c[10:-8]) + c[-8:] if corrupt_payload else c
    return batch(records, 1, compress)


def value(codec, i):
    # Compressible (so a client does not fall back to sending it uncompressed), and
    # distinct per record.
    return (b"%s record %06d " % (codec.encode(), i)) * 12


def stored_batches(broker, topic, partition):
    """[(codec, records_count, producer_id)] of the partition's batches on disk, each
    batch's CRC checked."""
    out = []
    offset = 0
    with kwire.Conn(broker.port) as c:
        while True:
            err, hw, recs = kwire.fetch(c, topic, partition, offset, max_bytes=4 << 20)
            assert err == 0, err
            r = kwire.Reader(recs or b"")
            got = 0
            while len(r.d) - r.p >= 12:
                base = r.i64()
                length = r.i32()
                if len(r.d) - r.p < length:
                    break
                b = kwire.Reader(r.take(length))
                b.i32()
                assert b.i8() == 2
                crc = b.u32()
                assert kwire.crc32c(b.d[b.p:]) == crc, "bad CRC in the stored batch at %d" % base
                attrs = b.i16()
                last_delta = b.i32()
                b.i64()
                b.i64()
                pid = b.i64()
                b.i16()
                b.i32()
                count = b.i32()
                assert count == last_delta + 1
                out.append((attrs & 7, count, pid))
                offset = base + last_delta + 1
                got += 1
            if offset >= hw or got == 0:
                assert offset == hw, (offset, hw)
                return out


def produce_all(broker, topics, codec, partition, idempotent=True):
    """N records with producer compression `codec` to `partition` of every topic; fails
    unless all are acknowledged. Timestamps are explicit, to check they are kept."""
    p = producer(broker, **{"compression.type": codec, "linger.ms": 20,
                            "enable.idempotence": idempotent})
    errors = []
    for t in topics:
        for i in range(N):
            p.produce(t, key=b"k%d" % i, value=value(codec, i), partition=partition,
                      timestamp=1_600_000_000_000 + i,
                      on_delivery=lambda e, m: e is not None and errors.append(e))
    assert p.flush(60) == 0
    assert not errors, errors[:3]


def test_every_topic_type_with_every_producer_codec(broker):
    """confluent-kafka producers, one partition per producer codec."""
    topics = {t: "ct-%s" % t for t in TOPIC_TYPES}
    for t, name in topics.items():
        create_topic(broker, name, len(PRODUCER_CODECS), **{"compression.type": t})
    for pi, codec in enumerate(PRODUCER_CODECS):
        produce_all(broker, topics.values(), codec, pi)

    def check():
        for t, name in topics.items():
            parts = consume_all(broker, name, len(PRODUCER_CODECS),
                                expected=N * len(PRODUCER_CODECS))
            for pi, codec in enumerate(PRODUCER_CODECS):
                want = [(i, b"k%d" % i, value(codec, i), 1_600_000_000_000 + i) for i in range(N)]
                assert parts[pi] == want, "%s-%d (%s): records differ" % (name, pi, codec)
                stored = stored_batches(broker, name, pi)
                assert sum(b[1] for b in stored) == N
                assert all(b[2] >= 0 for b in stored), "the idempotent producer's id is kept"
                codecs = {b[0] for b in stored}
                if t != "producer":
                    assert codecs == {CODEC_IDS[t]}, (name, codec, stored)
                elif codec in ("none", "zstd"):
                    assert codecs == {CODEC_IDS[codec]}, (name, codec, stored)
                else:  # what librdkafka sent: see the module comment
                    assert codecs <= {CODEC_IDS[codec], 0}, (name, codec, stored)
    check()
    # Recompressed data survives a restart (recovery re-validates the stored batches).
    broker.restart()
    check()


def test_every_topic_type_with_every_raw_codec(broker):
    """Raw batches of every codec and framing, consumed back with confluent-kafka."""
    codecs = Codecs()
    kinds = codecs.raw_kinds()
    n = 50
    with kwire.Conn(broker.port) as c:
        for t in TOPIC_TYPES:
            name = "raw-%s" % t
            create_topic(broker, name, len(kinds), **{"compression.type": t})
            for pi, (kind, cid, fn) in enumerate(kinds):
                recs = [(b"k%d" % i, value(kind, i)) for i in range(n)]
                for rep in range(2):  # two batches, so offsets continue across them
                    err, base = kwire.produce(c, name, pi, batch(recs, cid, fn))
                    assert (err, base) == (0, rep * n), (name, kind, err, base)
            for pi, (kind, cid, _) in enumerate(kinds):
                want = cid if t == "producer" else CODEC_IDS[t]
                stored = stored_batches(broker, name, pi)
                assert stored == [(want, n, -1)] * 2, (name, kind, stored)
            parts = consume_all(broker, name, len(kinds), expected=2 * n * len(kinds))
            for pi, (kind, _, _) in enumerate(kinds):
                want = [(i, b"k%d" % (i % n), value(kind, i % n), 1_600_000_000_000 + i % n)
                        for i in range(2 * n)]
                assert parts[pi] == want, (name, kind)


def test_levels_and_a_change_of_type_apply_to_new_batches(broker):
    create_topic(broker, "lv", 1, **{"compression.type": "gzip", "compression.gzip.level": "1"})
    produce_all(broker, ["lv"], "none", 0, idempotent=False)
    with kwire.Conn(broker.port) as c:
        res = kwire.incremental_alter_configs_v0(
            c, 2, "lv", [("compression.type", 0, "zstd"), ("compression.zstd.level", 0, "19")])
        assert [r[0] for r in res] == [0], res
    p = producer(broker, **{"compression.type": "lz4"})
    for i in range(N):
        p.produce("lv", key=b"k%d" % i, value=value("lz4", i), partition=0)
    assert p.flush(30) == 0
    codecs = [b[0] for b in stored_batches(broker, "lv", 0)]
    # Batches written before the change keep their codec; later ones get the new one.
    first_zstd = codecs.index(4)
    assert set(codecs[:first_zstd]) == {1} and set(codecs[first_zstd:]) == {4}, codecs
    got = consume_all(broker, "lv", 1, expected=2 * N)[0]
    assert [v for _, _, v, _ in got] == [value("none", i) for i in range(N)] + [
        value("lz4", i) for i in range(N)]


def describe(broker, rtype, name):
    a = admin(broker)  # must outlive the future
    fs = a.describe_configs([ConfigResource(rtype, name)], request_timeout=20)
    (f,) = fs.values()
    return f.result(timeout=30)


def test_broker_compression_type_is_the_topic_default(broker_factory):
    b = broker_factory(**{"compression.type": "lz4", "compression.lz4.level": "12"})
    create_topic(b, "inherits", 1)
    create_topic(b, "own", 1, **{"compression.type": "producer"})
    for t in ("inherits", "own"):
        p = producer(b, **{"compression.type": "none"})
        for i in range(100):
            p.produce(t, key=b"k", value=value("none", i))
        assert p.flush(30) == 0
    assert {c for c, _, _ in stored_batches(b, "inherits", 0)} == {3}
    assert {c for c, _, _ in stored_batches(b, "own", 0)} == {0}
    assert len(consume_all(b, "inherits", 1, expected=100)[0]) == 100

    # DescribeConfigs: values and sources as Kafka reports them.
    e = describe(b, "topic", "inherits")
    assert e["compression.type"].value == "lz4"
    assert e["compression.type"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert e["compression.lz4.level"].value == "12"
    assert e["compression.lz4.level"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert e["compression.zstd.level"].value == "3"
    assert e["compression.zstd.level"].source == ConfigSource.DEFAULT_CONFIG.value
    assert e["compression.gzip.level"].value == "-1"
    e = describe(b, "topic", "own")
    assert e["compression.type"].value == "producer"
    assert e["compression.type"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    e = describe(b, "broker", "1")
    assert e["compression.type"].value == "lz4"
    assert e["compression.lz4.level"].value == "12"
    assert e["compression.zstd.level"].value == "3"
    assert e["compression.gzip.level"].value == "-1"


def test_invalid_values_are_refused(broker_factory):
    b = broker_factory()
    a = admin(b)
    bad = [("compression.type", "brotli"), ("compression.type", "ZSTD"),
           ("compression.type", "none"), ("compression.gzip.level", "0"),
           ("compression.gzip.level", "10"), ("compression.lz4.level", "0"),
           ("compression.lz4.level", "18"), ("compression.zstd.level", "23"),
           ("compression.zstd.level", "-131073"), ("compression.zstd.level", "high")]
    for k, v in bad:
        fs = a.create_topics([NewTopic("bad", 1, 1, config={k: v})], **OPS)
        try:
            fs["bad"].result(timeout=30)
            raise AssertionError("%s=%s accepted" % (k, v))
        except Exception as ex:  # KafkaException
            assert ex.args[0].code() == KafkaError.INVALID_CONFIG, (k, v, ex)
    good = {"compression.type": "zstd", "compression.zstd.level": "-131072",
            "compression.lz4.level": "17", "compression.gzip.level": "-1"}
    create_topic(b, "good", 1, **good)
    with kwire.Conn(b.port) as c:
        for k, v in bad:
            res = kwire.incremental_alter_configs_v0(c, 2, "good", [(k, 0, v)])
            assert [r[0] for r in res] == [KafkaError.INVALID_CONFIG], (k, v, res)
        res = kwire.incremental_alter_configs_v0(c, 2, "good", [("compression.lz4.level", 0, "18")])
        assert res[0][1] == "Value must be no more than 17", res
        res = kwire.incremental_alter_configs_v0(c, 2, "good", [("compression.gzip.level", 0, "0")])
        assert res[0][1] == "Value must be between 1 and 9 or equal to -1", res
        res = kwire.incremental_alter_configs_v0(c, 2, "good", [("compression.type", 0, "brotli")])
        assert res[0][1] == ("String must be one of: uncompressed, zstd, lz4, snappy, gzip, "
                             "producer"), res
    e = describe(b, "topic", "good")
    assert {k: e[k].value for k in good} == good
    # A broker refuses to start with an invalid default.
    for k, v in (("compression.type", "brotli"), ("compression.zstd.level", "99")):
        bad_broker = broker_factory(start=False, **{k: v})
        try:
            bad_broker.start()
            raise AssertionError("broker started with %s=%s" % (k, v))
        except RuntimeError as ex:
            assert "exited" in str(ex), ex
            assert k in bad_broker.stderr_tail(), bad_broker.stderr_tail()


def produce_v8(conn, topic, batch):
    body = (kwire.string(None) + kwire.i16(-1) + kwire.i32(10000)
            + kwire.array([kwire.string(topic)
                           + kwire.array([kwire.i32(0) + kwire.nbytes(batch)])]))
    r = conn.request(0, 8, body)

    def part(r):
        return dict(index=r.i32(), error=r.i16(), base=r.i64(), append_time=r.i64(),
                    start=r.i64(), record_errors=r.array(lambda r: (r.i32(), r.string())),
                    message=r.string())

    (_, (p,)), = r.array(lambda r: (r.string(), r.array(part)))
    return p


def test_compacted_topic_refuses_keyless_records_in_compressed_batches(broker):
    for t, ctype in (("cmp-prod", "producer"), ("cmp-zstd", "zstd")):
        create_topic(broker, t, 1, **{"cleanup.policy": "compact", "compression.type": ctype})
        # librdkafka with zstd (the codec it compresses for Produce v3+ brokers): each
        # flush is one compressed batch.
        p = producer(broker, **{"compression.type": "zstd", "linger.ms": 0})
        got = []
        p.produce(t, value=b"no key " * 50, on_delivery=lambda e, m: got.append(e))
        assert p.flush(30) == 0
        p.produce(t, key=b"k", value=b"with key " * 50, on_delivery=lambda e, m: got.append(e))
        assert p.flush(30) == 0
        assert got[0] is not None and got[0].code() == KafkaError.INVALID_RECORD, got
        assert got[1] is None, got
        assert [(k, v) for _, k, v, _ in consume_all(broker, t, 1, expected=1)[0]] == [
            (b"k", b"with key " * 50)]
        # Raw gzip batches: RecordErrors name the keyless records (v8+), nothing is stored.
        with kwire.Conn(broker.port) as c:
            before = kwire.list_offset(c, t, 0)
            keyless = [(b"a", b"1"), (None, b"2"), (b"c", b"3"), (None, b"4")]
            r = produce_v8(c, t, gzip_batch(keyless))
            assert r["error"] == KafkaError.INVALID_RECORD and r["base"] == -1, r
            assert [i for i, _ in r["record_errors"]] == [1, 3], r
            assert kwire.list_offset(c, t, 0) == before
            r = produce_v8(c, t, gzip_batch([(b"a", b"1"), (b"b", b"2")]))
            assert r["error"] == 0, r


def test_bad_compressed_data_is_refused(broker):
    create_topic(broker, "rc", 1, **{"compression.type": "lz4"})
    create_topic(broker, "small", 1, **{"compression.type": "uncompressed",
                                        "max.message.bytes": "100000"})
    with kwire.Conn(broker.port) as c:
        # Corrupt gzip data under a valid CRC: CORRUPT_MESSAGE, as Kafka.
        err, _ = kwire.produce(c, "rc", 0, gzip_batch([(b"k", b"v" * 1000)], corrupt_payload=True))
        assert err == CORRUPT_MESSAGE
        # A decompression bomb (70 MiB of zeros in 70 KiB of gzip): refused, not held.
        err, _ = kwire.produce(c, "rc", 0, gzip_batch([(b"k", bytes(70 << 20))]))
        assert err == CORRUPT_MESSAGE
        # Decompressed for an uncompressed topic, larger than max.message.bytes: Kafka's
        # RecordTooLargeException.
        err, _ = kwire.produce(c, "small", 0, gzip_batch([(b"k", bytes(500_000))]))
        assert err == KafkaError.MSG_SIZE_TOO_LARGE
        assert kwire.list_offset(c, "rc", 0) == (0, 0)
        assert kwire.list_offset(c, "small", 0) == (0, 0)
        # The broker carries on: a good batch is recompressed and stored.
        err, base = kwire.produce(c, "rc", 0, gzip_batch([(b"k", b"v" * 1000)]))
        assert (err, base) == (0, 0)
    assert [c for c, _, _ in stored_batches(broker, "rc", 0)] == [3]


def test_timestamp_lookups_find_the_record_inside_compressed_batches(broker):
    """ListOffsets by timestamp and -3 (max timestamp) name the record inside a
    compressed batch, as Kafka does (it decompresses), not the batch's base offset."""
    create_topic(broker, "tsz", 1, **{"compression.type": "zstd"})
    base = 1_600_000_000_000
    steps = [0, 1, 2, 3, 9, 4, 5, 6, 7, 8]
    batch = kwire.record_batch([(None, b"%d" % i) for i in range(10)], base_ts=base,
                               ts_deltas=[s * 1000 for s in steps])
    with kwire.Conn(broker.port) as c:  # one batch, sent plain, stored zstd by the broker
        assert kwire.produce(c, "tsz", 0, batch) == (0, 0)
    assert [codec for codec, _, _ in stored_batches(broker, "tsz", 0)] == [4]
    with kwire.Conn(broker.port) as c:
        assert kwire.list_offsets_v7(c, "tsz", 0, base + 2500) == (0, base + 3000, 3)
        assert kwire.list_offsets_v7(c, "tsz", 0, -3) == (0, base + 9000, 4)
