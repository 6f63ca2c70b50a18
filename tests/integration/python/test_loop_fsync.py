"""The event loop never waits for the disk: no fsync/fdatasync on it while it serves
produce (acks=all and acks=1, idempotent or not), fetch long polls, consumer groups,
committed offsets, metadata changes (CreateTopics, DeleteTopics, the producer-id blocks
of InitProducerId), whose metadata-log writes run on a thread of their own, and the
checkpoint files of DeleteRecords and topic deletion, written on that same thread
(STYLE.md, "Concurrency"). An LD_PRELOAD probe (fsync_probe.c) records every such call
made on the server's main thread, which runs the loop.

Start-up syncs on the main thread (the metadata log, the checkpoints) before the loop
serves: the test checks that the probe saw those, else the check below could not fail."""
import os
import threading
import time

import kwire
from clients import consumer, create_topic, delete_topic, producer
from conftest import SERVER

PROBE = os.environ.get("SAMSA_FSYNC_PROBE") or os.path.join(
    os.path.dirname(SERVER), "tests", "integration", "python", "libfsync_probe.so")


def loop_syncs(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n") for line in f]


def producer_send(b, topic):
    p = producer(b)
    p.produce(topic, value=b"x")
    assert p.flush(30) == 0


def test_event_loop_never_syncs_while_serving(broker_factory):
    assert os.path.exists(PROBE), "fsync probe not built: %s" % PROBE
    b = broker_factory(start=False)
    log = os.path.join(b.data_dir, "loop-syncs.txt")
    b.env = dict(os.environ, LD_PRELOAD=PROBE, SAMSA_FSYNC_PROBE_LOG=log)
    b.start()

    # Before the window: start-up synced on the main thread (so the probe works).
    before = loop_syncs(log)
    assert len(before) > 0, "the probe saw no start-up sync on the main thread"
    mark = len(before)

    # The window: topic creation, DeleteRecords, topic deletion and re-creation under
    # the same name, acks=all, acks=1 and idempotent producers, a parked fetch woken by a
    # produce, a consumer group that joins, consumes and commits (its offsets are
    # acks=all writes to __consumer_offsets).
    create_topic(b, "loopsync-probe", 1)
    producer_send(b, "loopsync-probe")
    producer_send(b, "loopsync-probe")
    with kwire.Conn(b.port) as conn:
        assert kwire.delete_records_v0(conn, "loopsync-probe", 0, 1) == (0, 1)
    delete_topic(b, "loopsync-probe")
    create_topic(b, "loopsync-probe", 1)
    producer_send(b, "loopsync-probe")
    create_topic(b, "loopsync", 3)
    create_topic(b, "loopsync-acks1", 1)
    c = consumer(b, **{"group.id": "loopsync-group", "fetch.wait.max.ms": 500,
                       "enable.partition.eof": False})
    c.subscribe(["loopsync"])
    got = []
    stop = threading.Event()

    def consume():
        while not stop.is_set() and len(got) < 6000:
            for m in c.consume(num_messages=1000, timeout=0.2):
                if m.error() is None:
                    got.append(m)
                    c.commit(message=m, asynchronous=True)

    t = threading.Thread(target=consume)
    t.start()
    try:
        time.sleep(1.0)  # the group forms and its fetches park
        p = producer(b)
        for i in range(3000):
            p.produce("loopsync", value=b"v%d" % i, partition=i % 3)
        assert p.flush(30) == 0
        p1 = producer(b, acks="1")
        for i in range(3000):
            p1.produce("loopsync", value=b"w%d" % i, partition=i % 3)
            p1.produce("loopsync-acks1", value=b"x%d" % i)
        assert p1.flush(30) == 0
        pi = producer(b, **{"enable.idempotence": True})
        for i in range(100):
            pi.produce("loopsync-acks1", value=b"i%d" % i)
        assert pi.flush(30) == 0
        deadline = time.monotonic() + 60
        while len(got) < 6000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(got) == 6000, len(got)
    finally:
        stop.set()
        t.join(timeout=30)
    try:
        # One synchronous commit: answered only once durable in __consumer_offsets.
        c.commit(message=got[-1], asynchronous=False)
    finally:
        c.close()

    during = loop_syncs(log)[mark:]
    assert during == [], "the event loop synced while serving:\n" + "\n".join(during)
