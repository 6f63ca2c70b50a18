"""Damaged segments never delete data; what can be read is served, the rest reported.

The adversarial round found: a broken batch length in a sealed segment made the
records before it unreadable (and was logged every 0.5 s); when the damage was met
at start-up it was taken for a torn write and the segment was cut there and every
later segment deleted; a deleted or emptied middle segment skipped its offsets
without a word; a damaged __consumer_offsets batch stopped the broker after a clean
shutdown but was truncated away after kill -9.

Now one rule: only the tail of the last segment, after the last write a crash may
have cut short, is ever truncated. Damage anywhere else is kept on disk: the log is
served up to it, a fetch inside it gets CORRUPT_MESSAGE (a consumer stops there
rather than skipping silently; DeleteRecords past it lets it go on, as in Kafka),
it is reported once, and later segments are served as before.
"""
import os
import struct

from confluent_kafka import TopicPartition

from clients import consumer, create_topic, produce_keyed
import kwire

CORRUPT_MESSAGE = 2


def segments(b, topic, partition=0):
    d = os.path.join(b.data_dir, "%s-%d" % (topic, partition))
    return d, sorted(f for f in os.listdir(d) if f.endswith(".log"))


def batches(path):
    """(position, base offset, last offset) of every batch of a segment file."""
    out, data, pos = [], open(path, "rb").read(), 0
    while pos + 61 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        last_delta = struct.unpack(">i", data[pos + 23:pos + 27])[0]
        out.append((pos, base, base + last_delta))
        pos += 12 + length
    return out


def break_length(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos + 8)
        f.write(struct.pack(">i", 0x7FFF0000))


def fill(b, topic, n=3000):
    create_topic(b, topic, 1, **{"segment.bytes": "65536"})
    produce_keyed(b, topic, n, keys=1, value=lambda i: b"rec-%06d-" % i + b"x" * 60,
                  **{"batch.num.messages": 20, "linger.ms": 0})


def fetch_at(b, topic, offset):
    with kwire.Conn(b.port) as c:
        r = c.request(1, 4, kwire.fetch_body(topic, 0, offset))
        return kwire.parse_fetch_v4(r)


def file_sizes(d):
    return {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".log")}


def check_damage_served_around(b, topic, seg0, damaged, later_base):
    # Before the damage: served.
    err, _, data = fetch_at(b, topic, 0)[:3]
    assert err == 0 and data, err
    offsets = [o for o, _, _ in kwire.decode_batches(data)]
    assert offsets[0] == 0 and offsets[-1] < damaged[1]
    # Inside it: an error, not silence.
    assert fetch_at(b, topic, damaged[1])[0] == CORRUPT_MESSAGE
    # The later segments: served as before.
    err, _, data = fetch_at(b, topic, later_base)[:3]
    assert err == 0 and data


def test_broken_batch_length_in_a_sealed_segment(broker):
    fill(broker, "dmg")
    assert broker.stop() == 0
    d, segs = segments(broker, "dmg")
    assert len(segs) >= 3, segs
    seg0 = os.path.join(d, segs[0])
    bs = batches(seg0)
    damaged = bs[len(bs) // 2]
    break_length(seg0, damaged[0])
    before = file_sizes(d)
    later_base = int(segs[1].split(".")[0])

    broker.start()
    assert file_sizes(d) == before  # nothing cut, nothing deleted
    check_damage_served_around(broker, "dmg", seg0, damaged, later_base)
    for _ in range(5):
        fetch_at(broker, "dmg", damaged[1])
    log = open(broker.stderr_path, errors="replace").read()
    assert log.count("damaged") >= 1
    lines = [l for l in log.splitlines() if "segment %d" % 0 in l and "damaged" in l]
    assert len(lines) == 1, lines  # reported once, not per fetch

    # The same damage found by recovery after a crash that left no recovery point (every
    # segment is scanned): the same behaviour, and still nothing cut or deleted.
    broker.kill()
    os.unlink(os.path.join(broker.data_dir, "recovery-point-offset-checkpoint"))
    broker.start()
    assert file_sizes(d) == before
    assert "offsets %d to %d cannot be read" % (damaged[1], damaged[2]) in open(
        broker.stderr_path, errors="replace").read()
    check_damage_served_around(broker, "dmg", seg0, damaged, later_base)


def test_missing_middle_segment_is_named_at_start_up(broker):
    fill(broker, "gap")
    assert broker.stop() == 0
    d, segs = segments(broker, "gap")
    assert len(segs) >= 3, segs
    lost_base, next_base = int(segs[1].split(".")[0]), int(segs[2].split(".")[0])
    os.unlink(os.path.join(d, segs[1]))
    broker.start()
    log = open(broker.stderr_path, errors="replace").read()
    assert "offsets %d to %d are missing" % (lost_base, next_base - 1) in log, log[-2000:]
    err, _, data = fetch_at(broker, "gap", next_base)[:3]
    assert err == 0 and data


def test_damaged_consumer_offsets_batch_same_after_clean_stop_and_kill(broker_factory):
    b = broker_factory(**{"offsets.topic.num.partitions": "1"})
    create_topic(b, "work", 1)
    produce_keyed(b, "work", 100, keys=1)
    c = consumer(b, **{"group.id": "g"})
    try:
        for o in range(1, 41):  # 40 commits: 40 batches in __consumer_offsets-0
            c.commit(offsets=[TopicPartition("work", 0, o)], asynchronous=False)
    finally:
        c.close()
    for how in ("clean", "kill"):
        if how == "clean":
            assert b.stop() == 0
        else:
            b.kill()
        d, segs = segments(b, "__consumer_offsets")
        seg = os.path.join(d, segs[0])
        bs = batches(seg)
        if how == "clean":
            break_length(seg, bs[len(bs) // 2][0])
        sizes = file_sizes(d)
        b.start()  # starts in both cases
        assert file_sizes(d) == sizes
        c = consumer(b, **{"group.id": "g"})
        try:
            # The last commit lies after the damage and is still read.
            tp, = c.committed([TopicPartition("work", 0)], timeout=15)
            assert tp.offset == 40, tp.offset
        finally:
            c.close()
