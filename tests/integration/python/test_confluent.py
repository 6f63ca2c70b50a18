"""confluent-kafka (librdkafka 2.0.2): bulk keyed produce with acks=all and
assign()-based consumption, over both fetch data paths (copy and sendfile)."""
import kwire
from clients import consume_all, create_topic, produce_keyed

N = 100_000
PARTS = 6
KEYS = 64


def check_content(acked, out):
    """Every acknowledged record is at its reported (partition, offset), offsets are
    dense and in produce order per partition, and each key lives in one partition."""
    total = sum(len(v) for v in out.values())
    assert total == N, "consumed %d, produced %d" % (total, N)
    key_part = {}
    for p, recs in out.items():
        assert [r[0] for r in recs] == list(range(len(recs))), "partition %d offsets not dense" % p
        last_seq = -1
        for off, key, val, _ts in recs:
            seq = int(val.split(b"-")[1])
            assert key == b"key-%d" % (seq % KEYS), (p, off, key, val)
            assert acked[seq] == (p, off), "seq %d acked at %s, read at %s" % (seq, acked[seq], (p, off))
            assert seq > last_seq, "partition %d out of order at offset %d" % (p, off)
            last_seq = seq
            assert key_part.setdefault(key, p) == p, "key %r in partitions %d and %d" % (key, key_part[key], p)
    assert len(key_part) == KEYS


def test_bulk_produce_consume_copy_and_sendfile(broker_factory):
    a = broker_factory(**{"samsa.fetch.sendfile": "false"})
    create_topic(a, "bulk", PARTS)
    acked = produce_keyed(a, "bulk", N, keys=KEYS)
    assert len({p for p, _ in acked.values()}) == PARTS, "keys did not spread over partitions"
    via_copy = consume_all(a, "bulk", PARTS, expected=N)
    check_content(acked, via_copy)
    with kwire.Conn(a.port) as c:
        raw_copy = [kwire.fetch(c, "bulk", p, 0, max_bytes=256 << 10) for p in range(PARTS)]
    assert a.stop() == 0

    # Same data dir, the zero-copy path.
    b = broker_factory(data_dir=a.data_dir, **{"samsa.fetch.sendfile": "true"})
    via_sendfile = consume_all(b, "bulk", PARTS, expected=N)
    check_content(acked, via_sendfile)
    assert via_sendfile == via_copy
    with kwire.Conn(b.port) as c:
        raw_sendfile = [kwire.fetch(c, "bulk", p, 0, max_bytes=256 << 10) for p in range(PARTS)]
    for p in range(PARTS):
        err, hw, recs = raw_copy[p]
        assert err == 0 and hw == len(via_copy[p])
        assert recs and len(kwire.decode_batches(recs)) > 0
        assert raw_sendfile[p] == raw_copy[p], "partition %d: fetch bytes differ between paths" % p


def test_sendfile_broker_fresh_produce(broker_factory):
    """A broker that starts with sendfile on serves what it just stored."""
    b = broker_factory(**{"samsa.fetch.sendfile": "true"})
    create_topic(b, "sf", 3)
    acked = produce_keyed(b, "sf", 20_000, keys=16)
    out = consume_all(b, "sf", 3, expected=20_000)
    got = {}
    for p, recs in out.items():
        for off, key, val, _ in recs:
            got[int(val.split(b"-")[1])] = (p, off)
    assert got == acked
