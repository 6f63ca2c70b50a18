"""Delayed delivery in a cluster of three real samsa-server processes (loopback).

The delay store (__samsa_delay) is created on the first delayed produce, replicated like
__consumer_offsets; a target partition's leader sends the records of a delayed produce
to the leader of their delay partition (SamsaDelayStore), whose mover delivers them when
due to the target's leader, wherever it is (DescribeProducers, then Produce).

What is shown: records produced with a delay to every partition of a replicated topic
arrive once each, not before their time, whichever brokers lead their delay partitions
and targets; a cancel goes the same way; after kill -9 of a broker that leads delay
partitions holding pending records, the others take them over and every record still
arrives exactly once; after kill -9 of a target's leader, the new one knows where an
idempotent producer's sequence stands after a delayed batch (librdkafka would otherwise
fail fatally on the producer's next batch).
"""
import time

from confluent_kafka import Consumer, TopicPartition

from conftest import wait_until

from test_cluster_quorum import agreed_controller, leaders_on, quorum  # noqa: F401
from test_replication import acks_all_producer, create_replicated, n_brokers


def now_ms():
    return int(time.time() * 1000)


def send(nodes, topic, records):
    """records: (partition, value, headers). Returns the delivery reports [(err, offset)]."""
    p = acks_all_producer(nodes)
    reports = [None] * len(records)
    for i, (part, value, headers) in enumerate(records):
        p.produce(topic, value=value, partition=part, headers=headers,
                  on_delivery=lambda err, msg, i=i: reports.__setitem__(i, (err, msg.offset())))
        p.poll(0)
    assert p.flush(60) == 0
    return reports


def read(nodes, topic, partitions, want, timeout=60):
    """Reads every partition from the start until `want` records came (or timeout), then
    a little longer: [(value, arrival ms)]."""
    c = Consumer({"bootstrap.servers": ",".join(n.bootstrap for n in nodes if n.running()),
                  "group.id": "delayed-cluster-check", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    deadline = time.monotonic() + timeout
    extra = None
    while time.monotonic() < deadline and (extra is None or time.monotonic() < extra):
        for m in c.consume(num_messages=500, timeout=0.2):
            if m.error() is None:
                got.append((m.value(), now_ms()))
        if len(got) >= want and extra is None:
            extra = time.monotonic() + 1.0  # anything more would be a duplicate
    c.close()
    return got


def start(quorum):
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")


def test_delayed_records_cross_brokers_and_arrive_once_when_due(quorum):
    start(quorum)
    create_replicated(quorum, "later", 6)
    t0 = now_ms()
    due = t0 + 3000
    reports = send(quorum, "later",
                   [(i % 6, b"%03d" % i, [("samsa.deliver.at", str(due).encode())])
                    for i in range(60)] +
                   [(0, b"cancelled", [("samsa.deliver.after", b"3600000")])])
    assert all(err is None for err, _ in reports), reports
    (err, _), = send(quorum, "later", [(0, b"", [("samsa.deliver.cancel",
                                                  str(reports[-1][1]).encode())])])
    assert err is None, err
    # The store's partitions are spread over the brokers: some records crossed.
    leaders = leaders_on(quorum[0], "__samsa_delay")
    assert len(set(leaders.values())) > 1, leaders
    got = read(quorum, "later", 6, 60)
    values = sorted(v for v, _ in got)
    assert values == [b"%03d" % i for i in range(60)], values
    assert all(at >= due for _, at in got)


def test_kill_9_of_a_delay_partition_leader_loses_and_repeats_nothing(quorum):
    start(quorum)
    create_replicated(quorum, "failover", 3)
    due = now_ms() + 6000
    reports = send(quorum, "failover",
                   [(i % 3, b"%03d" % i, [("samsa.deliver.at", str(due).encode())])
                    for i in range(300)])
    assert all(err is None for err, _ in reports)
    # A broker leading a delay partition: killed while its records wait.
    leaders = leaders_on(quorum[0], "__samsa_delay")
    victim = next(n for n in quorum if n.node_id in leaders.values())
    victim.kill()
    live = [n for n in quorum if n is not victim]
    wait_until(lambda: victim.node_id not in leaders_on(live[0], "__samsa_delay").values(), 20,
               what="the delay partitions led elsewhere")
    got = read(live, "failover", 3, 300, timeout=90)
    values = sorted(v for v, _ in got)
    assert values == [b"%03d" % i for i in range(300)], (len(values), len(set(values)))
    assert all(at >= due for _, at in got)


def producer_epochs(n, topic, partition):
    """{producer id: epoch} of a partition's idempotent producers, as node n (its leader)
    says (DescribeProducers v0)."""
    import kwire
    body = (kwire.carray([kwire.cstring(topic) + kwire.uvarint(2) + kwire.i32(partition) +
                          kwire.TAGS]) + kwire.TAGS)
    with kwire.Conn(n.port, host=n.host) as c:
        r = c.request(61, 0, body, flexible=True)
    r.i32()
    out = {}

    def producer(r):
        pid, epoch = r.i64(), r.i32()
        r.i32(), r.i64(), r.i32(), r.i64()
        r.tags()
        out[pid] = epoch

    def part(r):
        r.i32(), r.i16(), r.cstring()
        r.carray(producer)
        r.tags()

    def top(r):
        r.cstring()
        r.carray(part)
        r.tags()

    r.carray(top)
    return out


def test_a_new_target_leader_knows_the_sequence_numbers_delayed_batches_used(quorum):
    """An idempotent producer sends a plain batch and a delayed one, then, after its
    partition's leader is killed, another plain one: the new leader has learned from the delay store where the
    producer's sequence stands, so the plain batch is taken as it is (no out-of-order
    refusal, no epoch bump)."""
    start(quorum)
    create_replicated(quorum, "mixed", 1)
    p = acks_all_producer(quorum)
    reports = []
    p.produce("mixed", value=b"first", partition=0, on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(30) == 0
    p.produce("mixed", value=b"later", partition=0,
              headers=[("samsa.deliver.after", b"3600000")],
              on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(30) == 0 and reports == [None, None]
    victim = next(n for n in quorum if n.node_id == leaders_on(quorum[0], "mixed")[0])
    victim.kill()
    live = [n for n in quorum if n is not victim]
    new = wait_until(lambda: (lambda l: l if l not in (None, -1, victim.node_id) else None)(
        leaders_on(live[0], "mixed").get(0)), 20, what="a new leader of mixed-0")
    leader = next(n for n in live if n.node_id == new)
    p.produce("mixed", value=b"now", partition=0, on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(60) == 0 and reports == [None, None, None], reports
    epochs = producer_epochs(leader, "mixed", 0)
    assert list(epochs.values()) == [0], epochs
    with open(leader.stderr_path) as f:
        assert "OUT_OF_ORDER" not in f.read()
