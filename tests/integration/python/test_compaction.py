"""Compacted topics (cleanup.policy=compact) on a real broker: the cleaner keeps the
newest record per key with its original offset, across a restart; keyless records are
refused."""
import time

from confluent_kafka import KafkaError, TopicPartition

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
