"""Durability across clean (SIGTERM) and hard (SIGKILL) restarts."""
import threading
import time

from clients import consume_all, create_topic, produce_keyed, producer
from conftest import wait_until


def test_clean_restart_keeps_everything(broker):
    create_topic(broker, "keep", 3)
    acked = produce_keyed(broker, "keep", 30_000, keys=12)
    before = consume_all(broker, "keep", 3, expected=30_000)
    assert {int(v.split(b"-")[1]): (p, off) for p, recs in before.items()
            for off, _, v, _ in recs} == acked
    broker.restart()
    after = consume_all(broker, "keep", 3, expected=30_000)
    assert after == before
    # And it keeps appending after the restart at the right offsets.
    more = produce_keyed(broker, "keep", 300, keys=12, value=lambda i: b"seq-%08d" % (30_000 + i))
    for p, off in more.values():
        assert off >= len(before[p])
    final = consume_all(broker, "keep", 3, expected=30_300)
    assert sum(len(v) for v in final.values()) == 30_300
    assert {p: v[:len(before[p])] for p, v in final.items()} == before


def test_kill9_keeps_every_acknowledged_record(broker):
    create_topic(broker, "crash", 2)
    acked = {}  # seq -> (partition, offset)
    failed = []
    stop = threading.Event()
    lock = threading.Lock()

    def report(err, msg, seq):
        with lock:
            if err is None:
                acked[seq] = (msg.partition(), msg.offset())
            else:
                failed.append(seq)

    p = producer(broker, **{"linger.ms": 2, "message.timeout.ms": 4000, "retries": 0,
                            "socket.timeout.ms": 3000, "reconnect.backoff.max.ms": 200})

    def stream():
        i = 0
        while not stop.is_set():
            try:
                p.produce("crash", key=b"k%d" % (i % 2), value=b"seq-%08d" % i,
                          partition=i % 2, on_delivery=lambda e, m, s=i: report(e, m, s))
                i += 1
            except BufferError:
                pass
            if i % 1000 == 0:
                p.poll(0)  # keeps a backlog queued, so the kill lands mid-stream
        p.poll(0)

    t = threading.Thread(target=stream)
    t.start()
    try:
        wait_until(lambda: len(acked) > 20_000, 60, what="20k acknowledged records")
        broker.kill()
        time.sleep(0.3)  # keep producing into the dead broker for a moment
    finally:
        stop.set()
        t.join(30)
    # Let every outstanding record fail before the broker comes back, so no retry
    # of an unacknowledged batch can land after the restart.
    assert p.flush(30) == 0
    assert failed, "no record was in flight at the kill; the crash hit nothing"
    n_acked = len(acked)
    assert n_acked > 20_000

    broker.start(broker.port)
    out = consume_all(broker, "crash", 2, expected=n_acked, timeout=60)
    for part, recs in out.items():
        assert [r[0] for r in recs] == list(range(len(recs))), "partition %d offsets not dense" % part
        seqs = [int(r[2].split(b"-")[1]) for r in recs]
        assert len(seqs) == len(set(seqs)), "partition %d has duplicates" % part
        assert seqs == sorted(seqs), "partition %d out of order" % part
        assert all(s % 2 == part for s in seqs)
        for off, _, val, _ in recs:
            seq = int(val.split(b"-")[1])
            if seq in acked:
                assert acked[seq] == (part, off), "seq %d acked at %s, found at %s" % (seq, acked[seq], (part, off))
    present = {int(r[2].split(b"-")[1]) for recs in out.values() for r in recs}
    missing = sorted(set(acked) - present)
    assert not missing, "%d acknowledged records lost, first %s" % (len(missing), missing[:10])
