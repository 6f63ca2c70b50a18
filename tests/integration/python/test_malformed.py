"""Bad input over raw sockets: each case gets Kafka's error code or a closed
connection, stores nothing, and leaves other connections working."""
import itertools
import struct
import time

import pytest

import kwire
from kwire import Conn, i16, i32, string

MAX_MESSAGE = 100_000
MAX_REQUEST = 1 << 20
_seq = itertools.count()

CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
INVALID_RECORD = 87
UNSUPPORTED_VERSION = 35


@pytest.fixture
def rb(broker_factory):
    """A broker with small limits and a 2-partition topic 't'."""
    b = broker_factory(**{"message.max.bytes": MAX_MESSAGE,
                          "socket.request.max.bytes": MAX_REQUEST})
    with Conn(b.port) as c:
        assert kwire.create_topics_v0(c, "t", partitions=2) == {"t": 0}
    return b


def assert_healthy(broker):
    """A fresh, well-behaved connection can still produce and read back."""
    with Conn(broker.port) as c:
        _, end = kwire.list_offset(c, "t", 0)
        value = b"healthy-%d" % next(_seq)
        err, base = kwire.produce(c, "t", 0, kwire.record_batch([(b"h", value)]))
        assert (err, base) == (0, end)
        err, hw, recs = kwire.fetch(c, "t", 0, base)
        assert err == 0 and hw == end + 1
        assert kwire.decode_batches(recs) == [(base, b"h", value)]


def log_end(broker, partition=0):
    with Conn(broker.port) as c:
        err, off = kwire.list_offset(c, "t", partition)
        assert err == 0
        return off


def produce_body(topic, partition, batch):
    return (string(None) + i16(-1) + i32(10000)
            + kwire.array([string(topic) + kwire.array([i32(partition) + kwire.nbytes(batch)])]))


def test_frame_larger_than_socket_request_max_bytes_closes(rb):
    with Conn(rb.port) as c:
        c.send_raw(i32(MAX_REQUEST + 1) + b"\x00" * 64)
        c.expect_closed()
    assert_healthy(rb)


def test_huge_frame_length_closes(rb):
    with Conn(rb.port) as c:
        c.send_raw(i32(0x7FFFFFFF))
        c.expect_closed()
    assert_healthy(rb)


@pytest.mark.parametrize("length", [-1, -0x80000000, 0])
def test_negative_or_empty_frame_closes(rb, length):
    with Conn(rb.port) as c:
        c.send_raw(i32(length) + b"\x00" * 16)
        c.expect_closed()
    assert_healthy(rb)


def test_unknown_api_key_closes(rb):
    with Conn(rb.port) as c:
        c.send(12345, 0, b"\x00" * 8)
        c.expect_closed()
    with Conn(rb.port) as c:
        c.send(-1, 0, b"")
        c.expect_closed()
    assert_healthy(rb)


@pytest.mark.parametrize("version", [0, 2, 12, 99])
def test_unsupported_produce_version_closes(rb, version):
    before = log_end(rb)
    with Conn(rb.port) as c:
        c.send(0, version, produce_body("t", 0, kwire.record_batch([(b"k", b"v")])))
        c.expect_closed()
    assert log_end(rb) == before
    assert_healthy(rb)


def test_api_versions_unsupported_version_answers_v0_with_error(rb):
    with Conn(rb.port) as c:
        corr = c.send(18, 99, b"\x00\x00\x00", flexible=True)
        r = kwire.Reader(c.recv_frame())
        assert r.i32() == corr
        assert r.i16() == UNSUPPORTED_VERSION
        apis = {k: (lo, hi) for k, lo, hi in r.array(lambda r: (r.i16(), r.i16(), r.i16()))}
        assert apis.get(18, (None, None))[0] == 0 and apis[18][1] >= 3, apis
        assert apis[0] == (3, 12), apis
        assert r.done(), "trailing bytes after a v0 ApiVersions response"
        # The connection stays usable: a proper ApiVersions v0 now.
        err, apis2 = kwire.api_versions_v0(c)
        assert err == 0 and {a[0] for a in apis2} == set(apis)
    assert_healthy(rb)


@pytest.mark.parametrize("cut", [1, 7, 20, 40])
def test_truncated_produce_body_closes(rb, cut):
    before = log_end(rb)
    body = produce_body("t", 0, kwire.record_batch([(b"k", b"v" * 20)]))
    with Conn(rb.port) as c:
        c.send(0, 3, body[:cut])
        c.expect_closed()
    assert log_end(rb) == before
    assert_healthy(rb)


def test_corrupt_crc_is_rejected_and_not_stored(rb):
    before = log_end(rb)
    with Conn(rb.port) as c:
        batch = kwire.record_batch([(b"k", b"v%d" % i) for i in range(10)], corrupt_crc=True)
        err, _ = kwire.produce(c, "t", 0, batch)
        assert err == CORRUPT_MESSAGE
        # A flipped payload byte under a valid-looking header is caught the same way.
        good = bytearray(kwire.record_batch([(b"k", b"payload")]))
        good[-3] ^= 0xFF
        err, _ = kwire.produce(c, "t", 0, bytes(good))
        assert err == CORRUPT_MESSAGE
        # A batch length larger than the bytes sent: no whole batch, which Kafka answers
        # INVALID_RECORD (its check for "at least one record batch").
        short = bytearray(kwire.record_batch([(b"k", b"payload")]))
        short[8:12] = i32(struct.unpack(">i", bytes(short[8:12]))[0] + 5)
        err, _ = kwire.produce(c, "t", 0, bytes(short))
        assert err == INVALID_RECORD
        assert kwire.list_offset(c, "t", 0) == (0, before)
    assert_healthy(rb)


def test_batch_over_message_max_bytes(rb):
    before = log_end(rb)
    with Conn(rb.port) as c:
        err, _ = kwire.produce(c, "t", 0, kwire.record_batch([(b"k", b"x" * (MAX_MESSAGE + 100))]))
        assert err == MESSAGE_TOO_LARGE
        assert kwire.list_offset(c, "t", 0) == (0, before)
        # Just under the limit is fine.
        err, base = kwire.produce(c, "t", 0, kwire.record_batch([(b"k", b"x" * (MAX_MESSAGE - 200))]))
        assert (err, base) == (0, before)
    assert_healthy(rb)


def test_produce_to_nonexistent_partition(rb):
    with Conn(rb.port) as c:
        for p in (2, 99, -1):
            err, _ = kwire.produce(c, "t", p, kwire.record_batch([(b"k", b"v")]))
            assert err == UNKNOWN_TOPIC_OR_PARTITION, p
        assert kwire.metadata_v1(c, ["t"]) == {"t": (0, 2)}
    assert_healthy(rb)


@pytest.mark.parametrize("name", ["bad name!", "x" * 250, "..", "."])
def test_invalid_topic_name_metadata_and_create(rb, name):
    with Conn(rb.port) as c:
        # Metadata v1 auto-creates (auto.create.topics.enable=true) but not bad names.
        md = kwire.metadata_v1(c, [name])
        assert md[name][0] == INVALID_TOPIC_EXCEPTION, md
        assert kwire.create_topics_v0(c, name) == {name: INVALID_TOPIC_EXCEPTION}
        names = {n for n in kwire.metadata_v1(c, None) if not n.startswith("__")}
        assert names == {"t"}, names
    assert_healthy(rb)


def test_garbage_does_not_disturb_concurrent_connection(rb):
    """A well-behaved connection opened before the bad one keeps working after it."""
    with Conn(rb.port) as good, Conn(rb.port) as bad:
        assert kwire.list_offset(good, "t", 1) == (0, 0)
        bad.send_raw(b"\x00\x00\x00\x10" + b"\xff" * 16)
        bad.expect_closed()
        err, base = kwire.produce(good, "t", 1, kwire.record_batch([(b"a", b"b")]))
        assert (err, base) == (0, 0)
        err, _, recs = kwire.fetch(good, "t", 1, 0)
        assert kwire.decode_batches(recs) == [(0, b"a", b"b")]


def test_failed_acks0_produce_closes_and_good_one_does_not(rb):
    """acks=0 has no response to carry an error: Kafka closes the connection instead."""
    def body(topic, partition, acks):
        return (string(None) + i16(acks) + i32(10000)
                + kwire.array([string(topic) + kwire.array(
                    [i32(partition) + kwire.nbytes(kwire.record_batch([(b"k", b"v")]))])]))
    before = log_end(rb)
    with Conn(rb.port) as c:
        c.send(0, 3, body("t", 0, 0))      # fine: no answer, connection stays
        c.send(0, 3, body("t", 99, 0))     # unknown partition: connection closed
        c.expect_closed()
    assert log_end(rb) == before + 1
    assert_healthy(rb)


def test_auto_creation_is_bounded_per_request(rb):
    """One Metadata request naming many unknown topics starts creating at most 16 of
    them; every one is answered UNKNOWN_TOPIC_OR_PARTITION (as Kafka 4.4 answers a topic
    it is auto-creating), and the client's retries create the rest."""
    names = ["auto-%02d" % i for i in range(40)]

    def existing(c):
        return sorted(n for n in kwire.metadata_v1(c, None) if n.startswith("auto-"))

    with Conn(rb.port) as c:
        md = kwire.metadata_v1(c, names)
        assert all(e == UNKNOWN_TOPIC_OR_PARTITION and n == 0 for e, n in md.values()), md
        # Creations are written in order: once the 16th exists, all the request started
        # are done, and no more may appear (listing all topics creates nothing).
        deadline = time.monotonic() + 30
        while len(existing(c)) < 16 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert existing(c) == names[:16]
        while time.monotonic() < deadline:
            md = kwire.metadata_v1(c, names)
            if all(e == 0 for e, _ in md.values()):
                break
            time.sleep(0.02)
        assert all(e == 0 and n == 1 for e, n in md.values()), md
    assert_healthy(rb)
