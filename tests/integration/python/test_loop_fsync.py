"""The event loop never waits on the disk: no fsync, fdatasync, syncfs or
sync_file_range on the loop thread while the broker serves produce (acks=all and
acks=1), fetch long polls, consumer groups and committed offsets (STYLE.md,
"Concurrency"). An LD_PRELOAD probe (fsync_probe.c) records every such call made on the
server's main thread, which runs the loop.

Metadata changes (CreateTopics, DeleteTopics, the producer-id blocks of
InitProducerId) and the checkpoints written by DeleteRecords and topic deletion are
still synced on the loop (issue #13 moves them off it); the test uses only topic
creation, before its measured window, and checks there that the probe does see the
loop's syncs."""
import os
import threading
import time

from clients import consumer, create_topic, producer
from conftest import SERVER

PROBE = os.environ.get("SAMSA_FSYNC_PROBE") or os.path.join(
    os.path.dirname(SERVER), "tests", "integration", "python", "libfsync_probe.so")


def loop_syncs(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n") for line in f]


def test_event_loop_never_syncs_while_serving(broker_factory):
    assert os.path.exists(PROBE), "fsync probe not built: %s" % PROBE
    b = broker_factory(start=False)
    log = os.path.join(b.data_dir, "loop-syncs.txt")
    b.env = dict(os.environ, LD_PRELOAD=PROBE, SAMSA_FSYNC_PROBE_LOG=log)
    b.start()

    # Before the window: a topic creation syncs the metadata log on the loop, which
    # shows the probe sees the loop's syncs (else the check below could not fail).
    create_topic(b, "loopsync", 3)
    create_topic(b, "loopsync-acks1", 1)
    before = loop_syncs(log)
    assert any("fdatasync" in l or "fsync" in l for l in before), before
    mark = len(before)

    # The window: acks=all and acks=1 producers, a parked fetch woken by a produce, a
    # consumer group that joins, consumes and commits (its offsets are acks=all writes
    # to __consumer_offsets).
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
