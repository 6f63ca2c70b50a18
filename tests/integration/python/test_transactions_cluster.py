"""Transactions in a cluster of three real samsa-server processes (loopback).

__transaction_state is created on the first FindCoordinator for a transaction and
replicated like __consumer_offsets. A transaction spans partitions led by every broker:
the coordinator writes the markers of the partitions it leads itself and sends
WriteTxnMarkers to the leaders of the others. After kill -9 of the coordinator with a
transaction open, its partition of __transaction_state moves to another broker, whose
coordinator loads it; a new instance of the producer aborts the open transaction there
and commits its own.
"""
import time

import kwire
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import wait_until

from test_cluster_quorum import agreed_controller, leaders_on, quorum  # noqa: F401
from test_replication import create_replicated, n_brokers


def bootstrap(nodes):
    return ",".join(n.bootstrap for n in nodes if n.running())


def txn_producer(nodes, txn_id):
    p = Producer({"bootstrap.servers": bootstrap(nodes), "transactional.id": txn_id,
                  "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 60000, "transaction.timeout.ms": 60000})
    p.init_transactions(60)
    return p


def read_committed(nodes, topic, partitions, want, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap(nodes), "group.id": "txn-cluster-check",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got, eof = [], set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (len(got) >= want and len(eof) == partitions):
        for m in c.consume(num_messages=500, timeout=0.2):
            if m.error() is None:
                got.append(m.value())
                eof.discard(m.partition())
            elif m.error().code() == -191:
                eof.add(m.partition())
    c.close()
    return sorted(got)


def start(quorum):
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")


def test_markers_reach_partitions_led_by_every_broker(quorum):
    start(quorum)
    leaders = create_replicated(quorum, "spread", 6)
    assert len(set(leaders.values())) == 3, leaders  # every broker leads some
    p = txn_producer(quorum, "cluster-app")
    p.begin_transaction()
    for i in range(60):
        p.produce("spread", b"c-%03d" % i, partition=i % 6)
    p.commit_transaction(60)
    p.begin_transaction()
    for i in range(30):
        p.produce("spread", b"a-%03d" % i, partition=i % 6)
    # Flushed first: librdkafka sends EndTxn(abort) as soon as it has sent an
    # AddPartitionsToTxn, even one still to be answered CONCURRENT_TRANSACTIONS while the
    # commit completes; that EndTxn then meets CompleteCommit with nothing added, and
    # transaction version 1 answers INVALID_TXN_STATE, fatal for the client. Kafka 4.4
    # does the same (seen with this very sequence against it).
    p.flush(30)
    p.abort_transaction(60)
    assert read_committed(quorum, "spread", 6, 60) == [b"c-%03d" % i for i in range(60)]


def test_coordinator_kill_9_with_a_transaction_open(quorum):
    start(quorum)
    create_replicated(quorum, "tx-failover", 3)
    p = txn_producer(quorum, "failover-app")
    p.begin_transaction()
    for i in range(30):
        p.produce("tx-failover", b"lost-%03d" % i, partition=i % 3)
    p.flush(30)
    # The id's coordinator: the broker FindCoordinator names.
    with kwire.Conn(quorum[0].port, host=quorum[0].host) as c:
        err, coordinator = kwire.find_coordinator_v1(c, "failover-app", key_type=1)
    assert err == 0, err
    victim = next(n for n in quorum if n.node_id == coordinator)
    victim.kill()
    live = [n for n in quorum if n is not victim]
    wait_until(lambda: victim.node_id not in leaders_on(live[0], "__transaction_state").values(),
               30, what="__transaction_state led elsewhere")
    p2 = txn_producer(live, "failover-app")  # aborts the open transaction, fences p
    p2.begin_transaction()
    for i in range(30):
        p2.produce("tx-failover", b"kept-%03d" % i, partition=i % 3)
    p2.commit_transaction(60)
    assert read_committed(live, "tx-failover", 3, 30) == [b"kept-%03d" % i for i in range(30)]


def test_a_late_batch_is_verified_with_a_coordinator_on_another_broker(quorum):
    """KIP-890 part 1 across brokers: a partition's leader asks the id's coordinator on
    another broker (AddPartitionsToTxn v4 VerifyOnly) before a transactional batch opens
    a transaction there; a late batch of a committed transaction is refused. A leader's
    add (v5, not VerifyOnly) that reaches a broker not coordinating the id is answered
    NOT_COORDINATOR there, never passed on: two brokers that disagree about the
    coordinator must not bounce it between them. And a TxnOffsetCommit v5 at a broker
    that does not coordinate its group adds nothing to the transaction."""
    start(quorum)
    leaders = create_replicated(quorum, "late-remote", 3)

    def coordinator_of(txn_id):  # __transaction_state is created by the first ask
        with kwire.Conn(quorum[0].port, host=quorum[0].host) as c:
            err, node = kwire.find_coordinator_v1(c, txn_id, key_type=1)
        return node if err == 0 else None

    coordinator = wait_until(lambda: coordinator_of("remote-app"), 30, what="a coordinator")
    partition = next(p for p, node in sorted(leaders.items()) if node != coordinator)
    leader = next(n for n in quorum if n.node_id == leaders[partition])
    p = txn_producer(quorum, "remote-app")
    p.begin_transaction()
    for i in range(5):
        p.produce("late-remote", b"ok-%d" % i, partition=partition)
    p.commit_transaction(60)

    def producer_there():  # once the commit marker is there (markers follow EndTxn)
        with kwire.Conn(leader.port, host=leader.host) as c:
            err, producers = kwire.describe_producers_v0(c, {"late-remote": [partition]})[
                ("late-remote", partition)]
        assert err == 0
        ((pid, epoch, last_seq, _, _, open_from),) = producers
        return (pid, epoch, last_seq) if open_from == -1 else None

    pid, epoch, last_seq = wait_until(producer_there, 20, what="the commit marker")
    host = next(n for n in quorum if n.node_id == coordinator)

    def described():
        with kwire.Conn(host.port, host=host.host) as c:
            return kwire.describe_transactions_v0(c, "remote-app")

    complete = (0, "CompleteCommit", [])
    wait_until(lambda: described() == complete, 20, what="the commit complete")
    with kwire.Conn(leader.port, host=leader.host) as c:
        late = kwire.record_batch([(None, b"late")], producer_id=pid, producer_epoch=epoch,
                                  base_sequence=last_seq + 1, transactional=True)
        assert kwire.produce(c, "late-remote", partition, late,
                             transactional_id="remote-app")[0] == 48  # INVALID_TXN_STATE
        assert kwire.add_partitions_to_txn_v5(c, "remote-app", pid, epoch,
                                              {"late-remote": [partition]}) == (
            0, {("late-remote", partition): 16})  # NOT_COORDINATOR

        def group_elsewhere():  # __consumer_offsets is created by the first ask
            for g in ("elsewhere-%d" % i for i in range(100)):
                err, node = kwire.find_coordinator_v1(c, g)
                if err == 0 and node != leader.node_id:
                    return g
            return None

        group = wait_until(group_elsewhere, 30, what="a group coordinated elsewhere")
        assert kwire.txn_offset_commit_v5(c, "remote-app", group, pid, epoch,
                                          {("late-remote", partition): 5}) == {
            ("late-remote", partition): 16}  # NOT_COORDINATOR
    assert described() == complete  # neither reached the transaction
    assert read_committed(quorum, "late-remote", 3, 5) == [b"ok-%d" % i for i in range(5)]
