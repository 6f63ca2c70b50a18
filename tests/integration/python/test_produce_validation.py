"""Produce-time record checks that clients see: message.timestamp.after.max.ms and
message.timestamp.before.max.ms (topic configs, and their broker defaults
log.message.timestamp.*), answered INVALID_TIMESTAMP with a RecordError per refused
record as Kafka 4 does; nothing of a refused batch is stored.

Timestamps are 10 hours off the clock, far from the bounds used (1 h, 24 h), so the
machine's clock moving during a test changes nothing."""
import struct
import time

import pytest
from confluent_kafka import KafkaError

import kwire
from clients import consume_all, create_topic, producer
from kwire import Conn, array, i8, i16, i32, i64, nbytes, string

INVALID_TIMESTAMP = 32
INVALID_CONFIG = 40
HOUR_MS = 3600 * 1000


def now_ms():
    return int(time.time() * 1000)


def batch(stamps, keys=None):
    """One uncompressed magic-2 batch with a record per absolute timestamp (the first is
    the batch's base timestamp; the others are deltas from it, negative ones too)."""
    base = stamps[0]
    keys = keys or [b"k%d" % i for i in range(len(stamps))]
    recs = b"".join(kwire.record(i, keys[i], b"v%d" % i, ts_delta=ts - base)
                    for i, ts in enumerate(stamps))
    after_crc = (i16(0) + i32(len(stamps) - 1) + i64(base) + i64(max(stamps)) + i64(-1)
                 + i16(-1) + i32(-1) + i32(len(stamps)) + recs)
    after_len = i32(-1) + i8(2) + struct.pack(">I", kwire.crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(after_len)) + after_len


def produce_v8(conn, topic, records):
    """Produce v8 (the first with RecordErrors). Returns the partition's answer:
    (error, base_offset, log_start_offset, [(batch_index, message)], error_message)."""
    body = (string(None) + i16(-1) + i32(10000)
            + array([string(topic) + array([i32(0) + nbytes(records)])]))
    r = conn.request(0, 8, body)

    def part(r):
        r.i32()
        err, base, _append_time, log_start = r.i16(), r.i64(), r.i64(), r.i64()
        errors = r.array(lambda r: (r.i32(), r.string()))
        return err, base, log_start, errors, r.string()

    (_, (p,)), = r.array(lambda r: (r.string(), r.array(part)))
    return p


def log_end(conn, topic):
    err, end = kwire.list_offset(conn, topic, 0)
    assert err == 0
    return end


def test_record_errors_name_each_refused_record(broker):
    """Records 1 (10 h ahead) and 3 (10 h back, below the batch's first timestamp) are
    refused; the batch is not stored, and a batch within the bounds then is."""
    with Conn(broker.port) as c:
        assert kwire.create_topics_v0(c, "ts", configs=[
            ("message.timestamp.before.max.ms", str(HOUR_MS))]) == {"ts": 0}
        now = now_ms()
        err, base, log_start, errors, msg = produce_v8(
            c, "ts", batch([now, now + 10 * HOUR_MS, now, now - 10 * HOUR_MS]))
        assert (err, base, log_start) == (INVALID_TIMESTAMP, -1, 0)
        assert [i for i, _ in errors] == [1, 3], errors
        assert all("out of range" in m for _, m in errors), errors
        assert msg and "invalid timestamp" in msg
        assert log_end(c, "ts") == 0
        err, base, _, errors, _ = produce_v8(c, "ts", batch([now - 10 * 60000, now]))
        assert (err, base, errors) == (0, 0, [])
        assert log_end(c, "ts") == 2


def test_no_timestamp_is_not_checked(broker):
    """A record without a timestamp (-1) passes whatever the bounds, as in Kafka."""
    with Conn(broker.port) as c:
        assert kwire.create_topics_v0(c, "nots", configs=[
            ("message.timestamp.before.max.ms", "0")]) == {"nots": 0}
        err, base, _, errors, _ = produce_v8(c, "nots", batch([-1]))
        assert (err, base, errors) == (0, 0, [])


def test_keyless_and_future_in_a_compacted_topic(broker):
    """Each record gets one error, the key's first; a refused timestamp makes the
    partition's error INVALID_TIMESTAMP."""
    with Conn(broker.port) as c:
        assert kwire.create_topics_v0(c, "cts", configs=[("cleanup.policy", "compact")]) \
            == {"cts": 0}
        now = now_ms()
        err, _, _, errors, _ = produce_v8(c, "cts", batch(
            [now + 10 * HOUR_MS, now + 10 * HOUR_MS, now], keys=[None, b"a", None]))
        assert err == INVALID_TIMESTAMP
        assert [(i, "key" in m) for i, m in errors] == [(0, True), (1, False), (2, True)], errors
        assert log_end(c, "cts") == 0


def test_settings_follow_topic_and_broker_configs(broker_factory):
    """The broker default (log.message.timestamp.after.max.ms) applies to topics that do
    not set their own; a topic's own value, and a change of it, apply at once; a
    LogAppendTime topic does not check producers' timestamps."""
    b = broker_factory(**{"log.message.timestamp.after.max.ms": str(24 * HOUR_MS)})
    future = lambda: batch([now_ms() + 10 * HOUR_MS])
    with Conn(b.port) as c:
        assert kwire.create_topics_v0(c, "dflt") == {"dflt": 0}
        assert kwire.create_topics_v0(c, "own", configs=[
            ("message.timestamp.after.max.ms", str(HOUR_MS))]) == {"own": 0}
        assert kwire.create_topics_v0(c, "lat", configs=[
            ("message.timestamp.type", "LogAppendTime"),
            ("message.timestamp.after.max.ms", "0")]) == {"lat": 0}
        assert produce_v8(c, "dflt", future())[0] == 0
        assert produce_v8(c, "own", future())[0] == INVALID_TIMESTAMP
        assert produce_v8(c, "lat", future())[0] == 0
        assert kwire.incremental_alter_configs_v0(
            c, 2, "own", [("message.timestamp.after.max.ms", 0, str(24 * HOUR_MS))])[0][0] == 0
        assert produce_v8(c, "own", future())[0] == 0
        assert kwire.incremental_alter_configs_v0(
            c, 2, "dflt", [("message.timestamp.after.max.ms", 0, "0")])[0][0] == 0
        assert produce_v8(c, "dflt", future())[0] == INVALID_TIMESTAMP


@pytest.mark.parametrize("name", ["message.timestamp.after.max.ms",
                                  "message.timestamp.before.max.ms"])
def test_values_are_validated(broker, name):
    """Kafka's rule: a long, at least 0."""
    with Conn(broker.port) as c:
        for i, value in enumerate(["-1", "abc", "", "1.5"]):
            assert kwire.create_topics_v0(c, "bad%d" % i, configs=[(name, value)]) \
                == {"bad%d" % i: INVALID_CONFIG}, value
        for i, value in enumerate(["0", "9223372036854775807"]):
            assert kwire.create_topics_v0(c, "good%d" % i, configs=[(name, value)]) \
                == {"good%d" % i: 0}, value


def test_invalid_broker_default_stops_start_up(broker_factory):
    b = broker_factory(start=False, **{"log.message.timestamp.before.max.ms": "-5"})
    with pytest.raises(RuntimeError, match="exited"):
        b.start()
    assert "log.message.timestamp.before.max.ms" in b.stderr_tail()


def test_client_sees_invalid_timestamp(broker):
    """librdkafka fails the record stamped 10 h ahead with INVALID_TIMESTAMP (without
    retrying it) and delivers the others; only those are stored."""
    create_topic(broker, "cl", 1)
    p = producer(broker, **{"linger.ms": 0})
    reports = []
    now = now_ms()
    for ts, value in ((now, b"before"), (now + 10 * HOUR_MS, b"future"), (now, b"after")):
        p.produce("cl", key=b"k", value=value, timestamp=ts,
                  on_delivery=lambda err, msg: reports.append((msg.value(), err)))
        assert p.flush(30) == 0  # one record per batch: each is judged on its own
    errs = {v: (e.code() if e else None) for v, e in reports}
    assert errs == {b"before": None, b"future": KafkaError.INVALID_TIMESTAMP, b"after": None}
    out = consume_all(broker, "cl", 1, expected=2)
    assert [v for _, _, v, _ in out[0]] == [b"before", b"after"]
