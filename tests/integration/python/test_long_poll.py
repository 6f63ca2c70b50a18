"""Fetch long polling: a fetch waiting on an empty partition is parked until data
arrives (or max wait passes), then answered promptly."""
import select
import threading
import time

from confluent_kafka import TopicPartition

import kwire
from clients import consumer, create_topic, producer


def test_raw_fetch_parks_then_wakes_on_produce(broker):
    create_topic(broker, "lp", 1)
    with kwire.Conn(broker.port, timeout=20) as waiter, kwire.Conn(broker.port) as writer:
        waiter.send(1, 4, kwire.fetch_body("lp", 0, 0, max_wait_ms=10000, min_bytes=1))
        # Parked: no answer while the partition is empty.
        r, _, _ = select.select([waiter.sock], [], [], 1.0)
        assert not r, "fetch on an empty partition answered before max wait"
        t0 = time.monotonic()
        err, _ = kwire.produce(writer, "lp", 0, kwire.record_batch([(b"k", b"wake")]))
        assert err == 0
        r = kwire.Reader(waiter.recv_frame())
        elapsed = time.monotonic() - t0
        r.i32()
        err, hw, recs = kwire.parse_fetch_v4(r)
        assert err == 0 and hw == 1
        assert kwire.decode_batches(recs) == [(0, b"k", b"wake")]
        assert elapsed < 8.0, "parked fetch answered %.1fs after the produce" % elapsed

        # With no data at all, the fetch is answered (empty) once max wait passes.
        t0 = time.monotonic()
        err, hw, recs = kwire.fetch(waiter, "lp", 0, 1, max_wait_ms=1500)
        elapsed = time.monotonic() - t0
        assert err == 0 and hw == 1 and not recs
        assert 1.0 <= elapsed < 10.0, "empty fetch with max wait 1.5s answered after %.2fs" % elapsed


def test_consumer_long_poll_delivers_promptly(broker):
    create_topic(broker, "lpc", 1)
    c = consumer(broker, **{"fetch.wait.max.ms": 10000, "enable.partition.eof": False})
    try:
        c.assign([TopicPartition("lpc", 0, 0)])
        assert c.poll(2.0) is None  # nothing yet; the consumer's fetch is now parked
        sent = {}

        def produce_later():
            p = producer(broker, **{"linger.ms": 0})
            sent["t"] = time.monotonic()
            p.produce("lpc", key=b"k", value=b"late")
            p.flush(10)

        t = threading.Thread(target=produce_later)
        t.start()
        msg = None
        deadline = time.monotonic() + 15
        while msg is None and time.monotonic() < deadline:
            msg = c.poll(0.2)
        got_at = time.monotonic()
        t.join(15)
        assert msg is not None and msg.error() is None, msg and msg.error()
        assert msg.value() == b"late" and msg.offset() == 0
        assert got_at - sent["t"] < 8.0, "record arrived %.1fs after produce" % (got_at - sent["t"])
    finally:
        c.close()


def test_broker_fetch_max_bytes_caps_response(broker_factory):
    """The broker's fetch.max.bytes caps a response below what the client asks for,
    in whole batches, and a first batch larger than the cap still comes whole."""
    b = broker_factory(**{"fetch.max.bytes": "4096"})
    create_topic(b, "cap", 1)
    with kwire.Conn(b.port) as c:
        for i in range(5):
            err, _ = kwire.produce(c, "cap", 0, kwire.record_batch([(b"k%d" % i, b"v" * 1400)]))
            assert err == 0
        err, hw, recs = kwire.fetch(c, "cap", 0, 0, max_bytes=1 << 20)
        assert err == 0 and hw == 5
        got = kwire.decode_batches(recs)
        assert [o for o, _, _ in got] == [0, 1], "expected 2 whole batches under 4096 bytes"
        assert len(recs) <= 4096

    b2 = broker_factory(**{"fetch.max.bytes": "1024"})
    create_topic(b2, "cap", 1)
    with kwire.Conn(b2.port) as c:
        err, _ = kwire.produce(c, "cap", 0, kwire.record_batch([(b"k", b"v" * 3000)]))
        assert err == 0
        err, hw, recs = kwire.fetch(c, "cap", 0, 0, max_bytes=1 << 20)
        assert err == 0 and [o for o, _, _ in kwire.decode_batches(recs)] == [0]


def test_parked_fetch_dropped_when_its_connection_closes(broker_factory):
    """A long poll parked for a connection that then closes is dropped at once, not
    kept until its max wait (here 60 s) passes."""
    b = broker_factory(**{"log.level": "DEBUG"})
    create_topic(b, "orphan", 1)
    waiter = kwire.Conn(b.port)
    waiter.send(1, 4, kwire.fetch_body("orphan", 0, 0, max_wait_ms=60000, min_bytes=1))
    r, _, _ = select.select([waiter.sock], [], [], 0.5)
    assert not r, "fetch on an empty partition answered before max wait"
    waiter.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "dropped 1 parked fetches of closed connections" in b.stderr_tail(400):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("parked fetch of a closed connection was not dropped")
    # The broker goes on serving long polls on that partition.
    with kwire.Conn(b.port) as c:
        err, hw, recs = kwire.fetch(c, "orphan", 0, 0, max_wait_ms=100)
        assert err == 0 and hw == 0 and not recs
