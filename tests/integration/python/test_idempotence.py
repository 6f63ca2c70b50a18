"""Idempotent producers: InitProducerId, deduplicated retries, sequence and epoch
errors, and the producer state across clean and hard (kill -9) restarts."""
import threading
import time

import kwire
from clients import consume_all, create_topic, produce_keyed, producer

NONE, OUT_OF_ORDER_SEQUENCE, INVALID_PRODUCER_EPOCH = 0, 45, 47
NOT_COORDINATOR, INVALID_RECORD = 16, 87
PAD = b"x" * 1000


def batch(pid, epoch, seq, n=3, tag=b"r"):
    return kwire.record_batch([(None, b"%s-%d" % (tag, seq + i)) for i in range(n)],
                              producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def log_end(conn, topic):
    err, off = kwire.list_offset(conn, topic, 0)
    assert err == NONE
    return off


def new_producer_id(conn):
    err, pid, epoch = kwire.init_producer_id_v0(conn)
    assert err == NONE and pid >= 0 and epoch == 0, (err, pid, epoch)
    return pid


def test_librdkafka_idempotent_producer_delivers_each_record_once(broker):
    create_topic(broker, "idem", 3)
    acked = produce_keyed(broker, "idem", 20_000, keys=30,
                          **{"enable.idempotence": True, "linger.ms": 2})
    got = consume_all(broker, "idem", 3, expected=20_000)
    seen = [int(v.split(b"-")[1]) for recs in got.values() for _, _, v, _ in recs]
    assert sorted(seen) == list(range(20_000))  # each exactly once
    for part, recs in got.items():
        # in the order produced, at the offsets the delivery reports gave
        assert [off for off, _, _, _ in recs] == list(range(len(recs)))
        for off, _, v, _ in recs:
            assert acked[int(v.split(b"-")[1])] == (part, off)


def test_retry_is_deduplicated_and_gaps_refused(broker):
    with kwire.Conn(broker.port) as c:
        kwire.create_topics_v0(c, "retry", 1)
        pid = new_producer_id(c)
        assert new_producer_id(c) != pid  # every producer gets its own id
        assert kwire.produce(c, "retry", 0, batch(pid, 0, 0)) == (NONE, 0)
        assert kwire.produce(c, "retry", 0, batch(pid, 0, 3)) == (NONE, 3)
        # The client retries both (a lost response): the stored offsets, nothing written.
        assert kwire.produce(c, "retry", 0, batch(pid, 0, 0)) == (NONE, 0)
        assert kwire.produce(c, "retry", 0, batch(pid, 0, 3), acks=1) == (NONE, 3)
        assert log_end(c, "retry") == 6
        # A producer id without a sequence number is not a valid batch (Kafka's rule).
        assert kwire.produce(c, "retry", 0, batch(pid, 0, -1))[0] == INVALID_RECORD
        # A gap and a batch not matching a stored one are refused.
        assert kwire.produce(c, "retry", 0, batch(pid, 0, 9))[0] == OUT_OF_ORDER_SEQUENCE
        assert kwire.produce(c, "retry", 0, batch(pid, 0, 1, n=2))[0] == OUT_OF_ORDER_SEQUENCE
        # A newer epoch starts again at 0 and fences the old one.
        assert kwire.produce(c, "retry", 0, batch(pid, 1, 5))[0] == OUT_OF_ORDER_SEQUENCE
        assert kwire.produce(c, "retry", 0, batch(pid, 1, 0)) == (NONE, 6)
        assert kwire.produce(c, "retry", 0, batch(pid, 0, 6))[0] == INVALID_PRODUCER_EPOCH
        assert log_end(c, "retry") == 9
        # A transactional id is for its coordinator, which nobody has looked for yet.
        err, tpid, _ = kwire.init_producer_id_v0(c, transactional_id="tx-1")
        assert (err, tpid) == (NOT_COORDINATOR, -1)
    got = consume_all(broker, "retry", 1, expected=9)
    assert [v for _, _, v, _ in got[0]] == [b"r-%d" % i for i in (0, 1, 2, 3, 4, 5, 0, 1, 2)]


def test_describe_producers(broker):
    with kwire.Conn(broker.port) as c:
        kwire.create_topics_v0(c, "described", 2)
        a, b = new_producer_id(c), new_producer_id(c)
        assert kwire.produce(c, "described", 0, batch(b, 0, 0, n=4))[0] == NONE
        assert kwire.produce(c, "described", 0, batch(a, 0, 0))[0] == NONE
        assert kwire.produce(c, "described", 0, batch(a, 0, 3, n=2))[0] == NONE
        got = kwire.describe_producers_v0(c, {"described": [0, 1, 7], "nope": [0]})
    assert set(got) == {("described", 0), ("described", 1), ("described", 7), ("nope", 0)}
    err, producers = got[("described", 0)]
    assert err == NONE
    # Ascending producer id: a then b; last sequence of the newest batch; no transactions.
    assert [(p[0], p[1], p[2], p[4], p[5]) for p in producers] == [(a, 0, 4, -1, -1),
                                                                   (b, 0, 3, -1, -1)]
    assert all(p[3] > 0 for p in producers)  # the newest batch's max timestamp
    assert got[("described", 1)] == (NONE, [])
    assert got[("described", 7)][0] == 3  # UNKNOWN_TOPIC_OR_PARTITION
    assert got[("nope", 0)][0] == 3


def test_state_survives_clean_restart(broker):
    with kwire.Conn(broker.port) as c:
        kwire.create_topics_v0(c, "clean", 1)
        pid = new_producer_id(c)
        for seq in (0, 3, 6):
            assert kwire.produce(c, "clean", 0, batch(pid, 0, seq))[0] == NONE
    broker.restart()
    with kwire.Conn(broker.port) as c:
        assert kwire.produce(c, "clean", 0, batch(pid, 0, 6)) == (NONE, 6)
        # As in Kafka, a snapshot keeps only each producer's newest batch: an older
        # one is no longer recognised after a restart.
        assert kwire.produce(c, "clean", 0, batch(pid, 0, 3))[0] == OUT_OF_ORDER_SEQUENCE
        assert kwire.produce(c, "clean", 0, batch(pid, 0, 10))[0] == OUT_OF_ORDER_SEQUENCE
        assert kwire.produce(c, "clean", 0, batch(pid, 0, 9)) == (NONE, 9)
        assert log_end(c, "clean") == 12
        # Ids handed out before the restart are never handed out again.
        assert new_producer_id(c) > pid


def test_state_survives_kill9(broker):
    """acks=all batches are durable when acknowledged, and so is what tells the broker
    they came from this producer: after kill -9 a retry is still recognised."""
    with kwire.Conn(broker.port) as c:
        kwire.create_topics_v0(c, "hard", 1)
        for i in range(5):  # records without a producer id before the first with one
            assert kwire.produce(c, "hard", 0, kwire.record_batch([(None, b"x")]))[0] == NONE
        pid = new_producer_id(c)
        for seq in range(0, 30, 3):
            assert kwire.produce(c, "hard", 0, batch(pid, 0, seq))[0] == NONE
    broker.restart(hard=True)
    with kwire.Conn(broker.port) as c:
        assert log_end(c, "hard") == 35
        assert kwire.produce(c, "hard", 0, batch(pid, 0, 27)) == (NONE, 32)
        assert kwire.produce(c, "hard", 0, batch(pid, 0, 24)) == (NONE, 29)
        assert kwire.produce(c, "hard", 0, batch(pid, 0, 30)) == (NONE, 35)
        assert log_end(c, "hard") == 38
        assert new_producer_id(c) > pid


def test_librdkafka_retries_across_kill9_store_each_record_once(broker_factory):
    """An idempotent producer streams while the broker is killed (kill -9) and restarted
    on the same port; librdkafka keeps retrying what was in flight. Afterwards every
    acknowledged record is stored exactly once where its report said, and no record
    is stored twice: retries of batches that were already durable are recognised."""
    broker = broker_factory()
    create_topic(broker, "idem-crash", 2)
    acked, failed, lock = {}, [], threading.Lock()

    def report(err, msg, seq):
        with lock:
            if err is None:
                acked[seq] = (msg.partition(), msg.offset())
            else:
                failed.append((seq, err))

    p = producer(broker, **{"enable.idempotence": True, "linger.ms": 2,
                            "message.timeout.ms": 60000, "socket.timeout.ms": 3000,
                            "reconnect.backoff.max.ms": 200})
    stop = threading.Event()
    sent = [0]

    def stream():
        i = 0
        while not stop.is_set() and i < 150_000:
            try:
                p.produce("idem-crash", value=b"seq-%08d-" % i + PAD, partition=i % 2,
                          on_delivery=lambda e, m, s=i: report(e, m, s))
                i += 1
            except BufferError:
                p.poll(0.01)
        sent[0] = i

    t = threading.Thread(target=stream)
    t.start()
    try:
        for at in (20_000, 60_000):  # two crashes: each catches a retried durable
            deadline = time.monotonic() + 60  # batch about half the time here
            while len(acked) < at and time.monotonic() < deadline:
                p.poll(0.05)
            assert len(acked) >= at
            broker.kill()
            p.poll(0.5)
            broker.start(broker.port)
            p.poll(1.0)
    finally:
        stop.set()
        t.join(60)
    assert p.flush(90) == 0
    assert not failed, failed[:5]
    got = consume_all(broker, "idem-crash", 2, expected=sent[0], timeout=60)
    for part, recs in got.items():
        seqs = [int(v.split(b"-")[1]) for _, _, v, _ in recs]
        assert len(seqs) == len(set(seqs)), "partition %d stores a record twice" % part
        assert seqs == sorted(seqs), "partition %d out of order" % part
        for off, _, v, _ in recs:
            seq = int(v.split(b"-")[1])
            assert acked[seq] == (part, off)
    assert sum(len(r) for r in got.values()) == sent[0] == len(acked)
