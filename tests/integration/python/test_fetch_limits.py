"""Fetch honours max_bytes and partition_max_bytes as Kafka does (KIP-74): a response
exceeds them only by the first record batch of the first partition with data, so a
consumer always progresses; a later partition whose first batch does not fit in what
remains gets no records (Kafka v3+ replaces an incomplete first batch by nothing)."""
import kwire
from clients import create_topic


def fetch_multi(conn, topic, partitions, max_bytes, partition_max_bytes, version=4):
    """Fetch v4 of offset 0 of each partition, in order. Returns {partition: records}."""
    body = (
        kwire.i32(-1) + kwire.i32(0) + kwire.i32(1) + kwire.i32(max_bytes) + kwire.i8(0)
        + kwire.array([kwire.string(topic) + kwire.array(
            [kwire.i32(p) + kwire.i64(0) + kwire.i32(partition_max_bytes) for p in partitions])])
    )
    r = conn.request(1, version, body)
    r.i32()  # throttle

    def part(r):
        p = r.i32()
        err = r.i16()
        r.i64()  # high watermark
        r.i64()  # last stable offset
        r.array(lambda r: (r.i64(), r.i64()))
        recs = r.nbytes()
        assert err == 0, "partition %d: error %d" % (p, err)
        return p, recs or b""

    (_, parts), = r.array(lambda r: (r.string(), r.array(part)))
    return dict(parts)


def produce_one_batch(conn, topic, partition, value_size, records=1):
    batch = kwire.record_batch([(b"k%d" % i, b"v" * value_size) for i in range(records)])
    err, _ = kwire.produce(conn, topic, partition, batch)
    assert err == 0
    return len(batch)


def test_later_partition_batch_over_the_remaining_budget_is_left_out(broker):
    create_topic(broker, "limits", 2)
    with kwire.Conn(broker.port) as c:
        small = produce_one_batch(c, "limits", 0, 1000)
        big = produce_one_batch(c, "limits", 1, 60000)
        got = fetch_multi(c, "limits", [0, 1], max_bytes=20000, partition_max_bytes=1 << 20)
        assert len(got[0]) == small
        assert got[1] == b"", "partition 1's %d-byte batch exceeds the fetch's max_bytes" % big
        # Alone (or first), the big batch is returned whole: progress is always possible.
        got = fetch_multi(c, "limits", [1, 0], max_bytes=20000, partition_max_bytes=1 << 20)
        assert len(got[1]) == big
        assert got[0] == b""  # nothing left of the 20,000 bytes


def test_partition_max_bytes_bounds_every_partition_but_the_first_with_data(broker):
    create_topic(broker, "plimits", 3)
    with kwire.Conn(broker.port) as c:
        first = produce_one_batch(c, "plimits", 0, 5000)
        produce_one_batch(c, "plimits", 1, 5000)
        small = produce_one_batch(c, "plimits", 2, 100)
        got = fetch_multi(c, "plimits", [0, 1, 2], max_bytes=1 << 20, partition_max_bytes=1000)
        assert len(got[0]) == first  # over partition_max_bytes, but first: returned whole
        assert got[1] == b""
        assert len(got[2]) == small


def test_whole_batches_up_to_the_limits(broker):
    create_topic(broker, "wlimits", 1)
    with kwire.Conn(broker.port) as c:
        sizes = [produce_one_batch(c, "wlimits", 0, 900) for _ in range(10)]
        got = fetch_multi(c, "wlimits", [0], max_bytes=1 << 20, partition_max_bytes=sizes[0] * 3 + 10)
        # Samsa returns only whole batches (Kafka may add a partial one: clients drop it).
        assert len(got[0]) == sum(sizes[:3])
        assert [o for o, _, _ in kwire.decode_batches(got[0])] == [0, 1, 2]
