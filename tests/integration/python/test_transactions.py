"""Transactions (KIP-98) with librdkafka's transactional producer: commit, abort,
read_committed consumers that skip aborted records and stop at the last stable offset,
fencing of a zombie by a new instance, a transaction aborted by its timeout, and the
coordinator's state across kill -9."""
import time

import kwire
from clients import consume_all, consumer, create_topic, producer
from confluent_kafka import KafkaException, TopicPartition
from conftest import wait_until

COMMITTED = {"isolation.level": "read_committed"}
UNCOMMITTED = {"isolation.level": "read_uncommitted"}


def txn_producer(broker, txn_id, **extra):
    p = producer(broker, **{"transactional.id": txn_id, "enable.idempotence": True, **extra})
    p.init_transactions(30)
    return p


def values(got):
    return sorted(v for recs in got.values() for _, _, v, _ in recs)


def send(p, topic, prefix, n, partitions):
    for i in range(n):
        p.produce(topic, b"%s-%04d" % (prefix, i), partition=i % partitions)


def lso_and_hw(broker, topic, partition=0):
    with kwire.Conn(broker.port) as c:
        _, hw = kwire.list_offset(c, topic, partition)
        _, lso = kwire.list_offset(c, topic, partition, isolation_level=1)
    return lso, hw


def test_commit_and_abort_with_read_committed(broker):
    create_topic(broker, "tx", 2)
    p = txn_producer(broker, "app-1")
    p.begin_transaction()
    send(p, "tx", b"c1", 100, 2)
    p.commit_transaction(30)
    p.begin_transaction()
    send(p, "tx", b"ab", 50, 2)
    p.flush(10)
    p.abort_transaction(30)
    p.begin_transaction()
    send(p, "tx", b"c2", 30, 2)
    p.commit_transaction(30)
    committed = values(consume_all(broker, "tx", 2, expected=130, **COMMITTED))
    assert committed == sorted([b"c1-%04d" % i for i in range(100)] +
                               [b"c2-%04d" % i for i in range(30)])
    everything = values(consume_all(broker, "tx", 2, expected=180, **UNCOMMITTED))
    assert len(everything) == 180  # aborted records are in the log; markers are not records
    lso, hw = lso_and_hw(broker, "tx")
    assert lso == hw


def test_open_transaction_holds_the_last_stable_offset(broker):
    create_topic(broker, "held", 1)
    plain = producer(broker)
    plain.produce("held", b"before")
    plain.flush(10)
    p = txn_producer(broker, "holder")
    p.begin_transaction()
    send(p, "held", b"open", 10, 1)
    p.flush(10)
    plain.produce("held", b"after")  # behind the open transaction
    plain.flush(10)
    lso, hw = lso_and_hw(broker, "held")
    assert (lso, hw) == (1, 12)
    got = values(consume_all(broker, "held", 1, expected=1, **COMMITTED))
    assert got == [b"before"]
    p.commit_transaction(30)
    wait_until(lambda: lso_and_hw(broker, "held")[0] == 13, 10, what="the LSO to pass the marker")
    got = values(consume_all(broker, "held", 1, expected=12, **COMMITTED))
    assert got == sorted([b"before", b"after"] + [b"open-%04d" % i for i in range(10)])


def test_a_new_instance_fences_the_zombie(broker):
    create_topic(broker, "zombie", 1)
    old = txn_producer(broker, "same-id")
    old.begin_transaction()
    send(old, "zombie", b"old", 5, 1)
    old.flush(10)
    new = txn_producer(broker, "same-id")  # aborts old's transaction, bumps the epoch
    new.begin_transaction()
    send(new, "zombie", b"new", 5, 1)
    new.commit_transaction(30)
    try:
        old.commit_transaction(10)
        raise AssertionError("the zombie committed")
    except KafkaException as e:
        assert e.args[0].fatal() or e.args[0].txn_requires_abort(), e
    got = values(consume_all(broker, "zombie", 1, expected=5, **COMMITTED))
    assert got == [b"new-%04d" % i for i in range(5)]


def test_transaction_timeout_aborts(broker_factory):
    b = broker_factory(**{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"})
    create_topic(b, "slow", 1)
    p = txn_producer(b, "slowpoke", **{"transaction.timeout.ms": 2000, "message.timeout.ms": 2000})
    p.begin_transaction()
    send(p, "slow", b"late", 5, 1)
    p.flush(10)
    # Aborted by the coordinator: the last stable offset passes the abort marker.
    wait_until(lambda: lso_and_hw(b, "slow") == (6, 6), 15, what="the timed-out abort")
    assert values(consume_all(b, "slow", 1, **COMMITTED)) == []


def test_coordinator_survives_kill_9(broker):
    create_topic(broker, "durable-tx", 2)
    p = txn_producer(broker, "survivor")
    p.begin_transaction()
    send(p, "durable-tx", b"a", 20, 2)
    p.commit_transaction(30)
    p.begin_transaction()
    send(p, "durable-tx", b"open", 20, 2)
    p.flush(10)
    broker.kill()
    broker.start()
    # The open transaction is still open after the restart: nothing past it is stable.
    assert lso_and_hw(broker, "durable-tx")[0] < lso_and_hw(broker, "durable-tx")[1]
    # A new instance of the producer aborts it and goes on.
    p2 = txn_producer(broker, "survivor")
    p2.begin_transaction()
    send(p2, "durable-tx", b"b", 20, 2)
    p2.commit_transaction(30)
    got = values(consume_all(broker, "durable-tx", 2, expected=40, **COMMITTED))
    assert got == sorted([b"a-%04d" % i for i in range(20)] + [b"b-%04d" % i for i in range(20)])


def test_offsets_committed_in_the_transaction(broker):
    """Consume-transform-produce (sendOffsetsToTransaction): the group's offsets move
    with the transaction's commit, and not at all with its abort."""
    create_topic(broker, "in", 1)
    create_topic(broker, "out", 1)
    plain = producer(broker)
    for i in range(30):
        plain.produce("in", b"in-%04d" % i, partition=0)
    plain.flush(10)
    c = consumer(broker, **{"group.id": "etl", "enable.auto.commit": False, **COMMITTED})
    c.assign([TopicPartition("in", 0, 0)])
    p = txn_producer(broker, "etl-1")

    def step(n, commit):
        got = []
        while len(got) < n:
            got += [m for m in c.consume(n - len(got), timeout=1) if m.error() is None]
        p.begin_transaction()
        for m in got:
            p.produce("out", m.value().replace(b"in", b"out"), partition=0)
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 10)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)

    def committed():
        return c.committed([TopicPartition("in", 0)], timeout=10)[0].offset

    step(10, True)
    assert committed() == 10
    step(10, False)
    assert committed() == 10  # the aborted transaction's offsets are dropped
    c.seek(TopicPartition("in", 0, 10))  # re-process what the abort threw away
    step(20, True)
    assert committed() == 30
    c.close()
    got = values(consume_all(broker, "out", 1, expected=30, **COMMITTED))
    assert got == [b"out-%04d" % i for i in range(30)]
    # The group's offsets survive a restart: the load resolves them by the markers.
    broker.kill()
    broker.start()
    c2 = consumer(broker, **{"group.id": "etl", "enable.auto.commit": False, **COMMITTED})
    assert c2.committed([TopicPartition("in", 0)], timeout=20)[0].offset == 30
    c2.close()


def test_pending_offsets_are_unstable(broker):
    """OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT while a transaction
    holds offsets for the partition; without it, the last committed offset."""
    create_topic(broker, "src", 1)
    p = txn_producer(broker, "holder-of-offsets")
    p.begin_transaction()
    p.produce("src", b"x", partition=0)
    meta = consumer(broker, **{"group.id": "g-unstable"}).consumer_group_metadata()
    p.send_offsets_to_transaction([TopicPartition("src", 0, 7)], meta, 10)
    with kwire.Conn(broker.port) as conn:
        assert kwire.offset_fetch_v7(conn, "g-unstable", "src", 0, require_stable=True) == (88, -1)
        assert kwire.offset_fetch_v7(conn, "g-unstable", "src", 0, require_stable=False) == (0, -1)
        p.commit_transaction(30)
        wait_until(lambda: kwire.offset_fetch_v7(conn, "g-unstable", "src", 0,
                                                 require_stable=True) == (0, 7),
                   10, what="the committed offset")


def test_cli_txn_list_describe_abort(broker):
    """`samsa txn`: list and describe show an open transaction; abort ends it in its
    partition (as for a hanging transaction), moving the last stable offset."""
    import os
    import subprocess

    from conftest import SERVER
    cli = os.environ.get("SAMSA_CLI", os.path.join(os.path.dirname(SERVER), "tools", "samsa"))

    def samsa(*args, ok=True):
        out = subprocess.run([cli, "-b", broker.bootstrap, "txn", *args], capture_output=True,
                             timeout=60)
        assert (out.returncode == 0) == ok, out.stderr
        return out.stdout.decode() + out.stderr.decode()

    create_topic(broker, "stuck", 1)
    p = txn_producer(broker, "stuck-app")
    p.begin_transaction()
    send(p, "stuck", b"open", 3, 1)
    p.flush(10)
    listing = samsa("list")
    assert "stuck-app" in listing and "Ongoing" in listing, listing
    assert "stuck-app" not in samsa("list", "--state", "CompleteCommit")
    assert "unknown transaction state" in samsa("list", "--state", "Nope", ok=False)
    described = samsa("describe", "stuck-app")
    assert "Ongoing" in described and "stuck-0" in described and "ms ago" in described, described
    assert "TRANSACTIONAL_ID_NOT_FOUND" in samsa("describe", "nobody", ok=False)
    assert lso_and_hw(broker, "stuck") == (0, 3)
    aborted = samsa("abort", "--topic", "stuck", "--partition", "0")
    assert "aborted the transaction of producer" in aborted, aborted
    assert lso_and_hw(broker, "stuck") == (4, 4)
    assert "no open transaction" in samsa("abort", "--topic", "stuck", "--partition", "0", ok=False)
    assert values(consume_all(broker, "stuck", 1, **COMMITTED)) == []


def test_a_late_batch_cannot_open_a_hanging_transaction(broker):
    """KIP-890 part 1: after a transaction committed, a batch of it that arrives late
    (a retry stuck in the network, a zombie) would open a transaction nobody ends, which
    would hold the last stable offset back for good. The leader asks the coordinator and
    refuses it with INVALID_TXN_STATE; the log and its LSO are unchanged."""
    create_topic(broker, "late", 1)
    p = txn_producer(broker, "late-app")
    p.begin_transaction()
    send(p, "late", b"in-time", 3, 1)
    p.commit_transaction(30)
    # EndTxn is answered once the commit is decided; its markers follow.
    wait_until(lambda: lso_and_hw(broker, "late") == (4, 4), 10, what="the commit marker")
    with kwire.Conn(broker.port) as c:
        err, producers = kwire.describe_producers_v0(c, {"late": [0]})[("late", 0)]
        assert err == 0
        ((pid, epoch, last_seq, _, _, open_from),) = producers
        assert open_from == -1  # committed: nothing open
        late = kwire.record_batch([(None, b"late")], producer_id=pid, producer_epoch=epoch,
                                  base_sequence=last_seq + 1, transactional=True)
        assert kwire.produce(c, "late", 0, late, transactional_id="late-app")[0] == 48
    assert lso_and_hw(broker, "late") == (4, 4)
    # The producer itself goes on: its next transaction adds the partition first.
    p.begin_transaction()
    send(p, "late", b"next", 2, 1)
    p.commit_transaction(30)
    assert values(consume_all(broker, "late", 1, expected=5, **COMMITTED)) == sorted(
        [b"in-time-%04d" % i for i in range(3)] + [b"next-%04d" % i for i in range(2)])


def test_kill_9_right_after_the_commit_is_decided(broker):
    """kill -9 right after EndTxn is answered, while the markers may still be on their
    way: after the restart the coordinator finds the decided commit (PrepareCommit, or
    CompleteCommit if it got that far) and the records become visible, each once."""
    create_topic(broker, "decided", 3)
    for round_ in range(3):
        p = txn_producer(broker, "decider")
        p.begin_transaction()
        send(p, "decided", b"r%d" % round_, 30, 3)
        p.commit_transaction(30)
        broker.kill()
        broker.start()
    want = sorted(b"r%d-%04d" % (r, i) for r in range(3) for i in range(30))
    assert values(consume_all(broker, "decided", 3, expected=90, **COMMITTED)) == want
    for part in range(3):
        wait_until(lambda: (lambda l: l[0] == l[1])(lso_and_hw(broker, "decided", part)), 20,
                   what="partition %d stable" % part)


def test_topic_describe_shows_the_open_transaction(broker):
    import os
    import subprocess

    from conftest import SERVER
    cli = os.environ.get("SAMSA_CLI", os.path.join(os.path.dirname(SERVER), "tools", "samsa"))
    create_topic(broker, "shown", 2)
    p = txn_producer(broker, "shower")
    p.begin_transaction()
    send(p, "shown", b"x", 1, 1)  # partition 0 only
    p.flush(10)
    out = subprocess.run([cli, "-b", broker.bootstrap, "topic", "describe", "shown"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.decode().splitlines()
            if line[:1].isdigit()}
    assert "from 0 (producer" in rows["0"], rows
    assert rows["1"].rstrip().endswith("-"), rows


def test_compaction_removes_aborted_records(broker_factory):
    """A compacted topic: the cleaner drops the batches of aborted transactions (they
    supersede nothing: the key keeps its committed value), a committed transaction's
    records supersede older ones, read_committed sees the same before and after, and a
    restart changes nothing."""
    b = broker_factory(**{"log.cleaner.backoff.ms": "200"})
    create_topic(b, "ctx", 1, **{"cleanup.policy": "compact", "segment.ms": "100",
                                 "min.cleanable.dirty.ratio": "0.01"})
    plain = producer(b)
    for k in range(10):
        plain.produce("ctx", key=b"k%d" % k, value=b"plain-%d" % k)
    assert plain.flush(30) == 0
    p = txn_producer(b, "cmp-app")
    for rnd in range(5):
        p.begin_transaction()
        for k in range(10):
            p.produce("ctx", key=b"k%d" % k, value=b"aborted-%d-%d" % (rnd, k))
        p.flush(10)
        p.abort_transaction(30)
    p.begin_transaction()
    for k in range(5):
        p.produce("ctx", key=b"k%d" % k, value=b"committed-%d" % k)
    p.commit_transaction(30)
    want = {b"k%d" % k: (b"committed-%d" % k if k < 5 else b"plain-%d" % k) for k in range(10)}

    def newest(got):
        return {key: value for _, key, value, _ in got[0]}
    # (The cleaner may already be at work: only read_committed has a fixed answer here.)
    assert newest(consume_all(b, "ctx", 1, expected=15, **COMMITTED)) == want
    # Later segments roll (segment.ms) as records come, and the cleaner gets to them.
    def cleaned():
        plain.produce("ctx", key=b"tick", value=b"t")
        plain.flush(10)
        return not any(v.startswith(b"aborted") for _, _, v, _ in
                       consume_all(b, "ctx", 1, **UNCOMMITTED)[0])
    wait_until(cleaned, 60, interval=0.5, what="the cleaner to drop the aborted records")
    for restart in (False, True):
        if restart:
            b.restart()
        got = consume_all(b, "ctx", 1, **UNCOMMITTED)[0]
        assert not any(v.startswith(b"aborted") for _, _, v, _ in got)
        assert {k: v for k, v in newest({0: got}).items() if k != b"tick"} == want
        assert {k: v for k, v in newest(consume_all(b, "ctx", 1, **COMMITTED)).items()
                if k != b"tick"} == want
