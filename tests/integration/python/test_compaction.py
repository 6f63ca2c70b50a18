"""Compacted topics (cleanup.policy=compact) on a real broker: the cleaner keeps the
newest record per key with its original offset, across a restart; keyless records are
refused."""
import time

from confluent_kafka import KafkaError, TopicPartition

import kwire
from clients import consume_all, create_topic, producer, produce_keyed
from conftest import wait_until

KEYS = 20


def latest_by_key(records):
    out = {}
    for offset, key, value, _ts in records:
        out[key] = (offset, value)
    return out


def test_compaction_keeps_newest_value_per_key(broker_factory):
    b = broker_factory(**{"log.cleaner.backoff.ms": "200"})
    create_topic(b, "cmp", 1, **{"cleanup.policy": "compact", "segment.bytes": "65536",
                                 "min.cleanable.dirty.ratio": "0.01"})
    n = 20000
    acked = produce_keyed(b, "cmp", n, keys=KEYS, **{"batch.size": 16384})
    # What compaction must leave: the newest record of every key, at its offset. (The
    # cleaner may already be running, so this comes from the acknowledgements.)
    want = {}
    for i in sorted(acked):
        want[b"key-%d" % (i % KEYS)] = (acked[i][1], b"seq-%08d" % i)

    # The cleaner runs in the background; wait until it has removed superseded records.
    def cleaned():
        return len(consume_all(b, "cmp", 1)[0]) < n // 2
    wait_until(cleaned, 30, interval=0.5, what="the cleaner to compact cmp-0")

    for restart in (False, True):
        if restart:
            b.restart()
        after = consume_all(b, "cmp", 1)[0]
        offsets = [r[0] for r in after]
        assert offsets == sorted(set(offsets)), "offsets must stay increasing and unique"
        assert latest_by_key(after) == want, "newest value per key, at its original offset"
        # Nothing that was not superseded is gone: every kept record is one we produced,
        # at the offset it was acknowledged with.
        produced = {acked[i][1]: b"seq-%08d" % i for i in acked}
        assert all(produced[o] == v for o, _k, v, _t in after)
    # The log end is unchanged: new records continue after the old offsets.
    p = producer(b)
    got = []
    p.produce("cmp", key=b"key-0", value=b"after", on_delivery=lambda e, m: got.append((e, m)))
    assert p.flush(30) == 0
    assert got[0][0] is None and got[0][1].offset() == n


def test_compacted_topic_refuses_keyless_records(broker):
    create_topic(broker, "keyed", 1, **{"cleanup.policy": "compact"})
    p = producer(broker, **{"linger.ms": 0})
    got = []
    # Separate flushes: one batch per record, so the good one is not refused with it.
    p.produce("keyed", value=b"no key", on_delivery=lambda e, m: got.append(e))
    assert p.flush(30) == 0
    p.produce("keyed", key=b"k", value=b"v", on_delivery=lambda e, m: got.append(e))
    assert p.flush(30) == 0
    assert got[0] is not None and got[0].code() == KafkaError.INVALID_RECORD, got
    assert got[1] is None
    recs = consume_all(broker, "keyed", 1, expected=1)[0]
    assert [(r[1], r[2]) for r in recs] == [(b"k", b"v")]


def test_keyless_records_get_record_errors_v8(broker):
    """Produce v8+: INVALID_RECORD with one RecordError per keyless record (its index in
    the batch) and an ErrorMessage, as Kafka answers; nothing is appended."""
    create_topic(broker, "keyed8", 1, **{"cleanup.policy": "compact"})
    batch = kwire.record_batch([(b"a", b"1"), (None, b"2"), (b"c", b"3"), (None, b"4")])
    body = (kwire.string(None) + kwire.i16(-1) + kwire.i32(10000)
            + kwire.array([kwire.string("keyed8") + kwire.array([kwire.i32(0) + kwire.nbytes(batch)])]))
    with kwire.Conn(broker.port) as c:
        r = c.request(0, 8, body)

        def part(r):
            return dict(index=r.i32(), error=r.i16(), base=r.i64(), append_time=r.i64(),
                        start=r.i64(), record_errors=r.array(lambda r: (r.i32(), r.string())),
                        message=r.string())

        (_, (p,)), = r.array(lambda r: (r.string(), r.array(part)))
        assert p["error"] == KafkaError.INVALID_RECORD and p["base"] == -1
        assert [i for i, _ in p["record_errors"]] == [1, 3]
        assert all("without key" in m for _, m in p["record_errors"])
        assert p["message"] and "keyed8-0" in p["message"]
        assert kwire.list_offset(c, "keyed8", 0) == (0, 0)
