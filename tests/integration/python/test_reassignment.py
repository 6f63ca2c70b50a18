"""Partition reassignments (KIP-455) on three real samsa-server processes (loopback),
driven by `samsa topic reassign`, `samsa topic reassignments` and `samsa cluster drain`
(AlterPartitionReassignments and ListPartitionReassignments on the wire).

What is shown: a partition moves to other brokers while an idempotent acks=all producer
writes to it, and every acknowledged record is there exactly once, in order; the new
replicas' logs become byte for byte the leader's and the old replica's directory goes;
a reassignment to a broker that is down stays under way, is listed, and can be
cancelled; a drained broker ends up holding no replica, internal topics included; bad
targets are refused with Kafka's errors and change nothing; a new replica throttled
(KIP-73) at its own broker or at the leader copies the log in many steps while another
partition of the same leader and follower keeps acknowledging acks=all writes.
"""
import os
import subprocess
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import kwire
from clients import consume_all
from conftest import wait_until

import pytest

from test_cluster_quorum import (CLI, agreed_controller, node, quorum,  # noqa: F401
                                 running, three_voters)
from test_replication import (BackgroundProducer, acks_all_producer, create_replicated,
                              log_bytes, n_brokers)


def cli(n, *args, check=True):
    r = subprocess.run([CLI, "-b", n.bootstrap] + list(args), capture_output=True, timeout=120)
    out = (r.stdout + r.stderr).decode(errors="replace")
    if check:
        assert r.returncode == 0, out
    return r.returncode, out


def partitions_on(n, topic=None):
    """{(topic, partition): (leader, replicas, isr)} as node n's Metadata (v1) tells it,
    of one topic or (None) of every topic, internal ones included."""
    with kwire.Conn(n.port, host=n.host) as c:
        body = kwire.array([kwire.string(topic)]) if topic else kwire.i32(-1)
        r = c.request(3, 1, body)
        r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
        r.i32()

        def part(r):
            r.i16()
            pid, leader = r.i32(), r.i32()
            return pid, (leader, r.array(kwire.Reader.i32), r.array(kwire.Reader.i32))

        def top(r):
            r.i16()
            name = r.string()
            r.i8()
            return name, r.array(part)

        return {(name, pid): state for name, parts in r.array(top) for pid, state in parts}


def replicas_on(n, topic):
    """{partition: (leader, replicas, isr)} of one topic."""
    return {p: state for (_, p), state in partitions_on(n, topic).items()}


def all_replicas_on(n):
    """{(topic, partition): replicas} of every topic, internal ones included."""
    return {k: replicas for k, (_, replicas, _) in partitions_on(n).items()}


def wait_replicas(n, topic, partition, want):
    """Until node n's metadata shows those replicas: a change is committed when the
    command that made it returns, and reaches the other nodes a moment later."""
    wait_until(lambda: replicas_on(n, topic).get(partition, (0, None))[1] == want, 15,
               what="%s-%d on %s as node %d sees it" % (topic, partition, want, n.node_id))


def has_dir(n, topic, partition):
    return os.path.isdir(os.path.join(n.data_dir, "%s-%d" % (topic, partition)))


def test_a_partition_moves_under_load_and_nothing_acknowledged_is_lost(quorum):
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")
    create_replicated(quorum, "mv", 2, rf=1, configs={})
    before = replicas_on(quorum[0], "mv")
    src = before[0][1][0]  # partition 0's one replica
    dst = [n.node_id for n in quorum if n.node_id != src]
    bp = BackgroundProducer(quorum, "mv", 2, b"m")
    try:
        wait_until(lambda: bp.count(0) >= 300, 20, what="300 acks on partition 0")
        # Refused targets change nothing: an unknown broker, a broker named twice.
        rc, out = cli(quorum[0], "topic", "reassign", "mv", "0=%d,9" % dst[0], check=False)
        assert rc != 0 and "INVALID_REPLICA_ASSIGNMENT" in out and "broker 9" in out, out
        rc, out = cli(quorum[0], "topic", "reassign", "mv", "0=%d,%d" % (dst[0], dst[0]),
                      check=False)
        assert rc != 0 and "more than once" in out, out
        rc, out = cli(quorum[0], "topic", "reassign", "mv", "--cancel", "0", check=False)
        assert rc != 0 and "NO_REASSIGNMENT_IN_PROGRESS" in out, out
        rc, out = cli(quorum[0], "topic", "reassign", "mv", "7=%d" % dst[0], check=False)
        assert rc != 0 and "UNKNOWN_TOPIC_OR_PARTITION" in out, out
        assert replicas_on(quorum[0], "mv") == before
        # Partition 0 leaves its broker for the two others (its leader moves with it).
        cli(quorum[1], "topic", "reassign", "mv", "0=%d,%d" % tuple(dst), "--wait",
            "--timeout", "60")
        wait_until(lambda: replicas_on(quorum[0], "mv")[0] in ((dst[0], dst, dst),
                                                                (dst[0], dst, dst[::-1])),
                   15, what="partition 0 on %s, led by %d, both in sync" % (dst, dst[0]))
        count = bp.count(0)
        wait_until(lambda: bp.count(0) >= count + 300, 30,
                   what="acks from partition 0's new leader")
    finally:
        bp.stop()
    _, out = cli(quorum[2], "topic", "reassignments")
    assert "no reassignment is under way" in out
    bp.check(consume_all(quorum[2], "mv", 2, expected=bp.count()))
    # The new replicas hold the leader's log byte for byte; the old one's is gone.
    new = [node(quorum, d) for d in dst]
    wait_until(lambda: len({log_bytes(n, "mv", 0) for n in new}) == 1 and
               log_bytes(new[0], "mv", 0), 30, what="the new replicas identical")
    wait_until(lambda: not has_dir(node(quorum, src), "mv", 0), 15,
               what="the old replica's directory removed")


@pytest.fixture
def quorum_rf2():
    """Three nodes whose __consumer_offsets has two replicas: a node can be drained."""
    with running(three_voters(offsets_topic_replication_factor="2")) as nodes:
        yield nodes


def test_a_stuck_reassignment_is_listed_and_cancelled_and_a_drain_empties_a_broker(quorum_rf2):
    quorum = quorum_rf2
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")
    create_replicated(quorum, "dr", 3, rf=2)
    p = acks_all_producer(quorum)
    for i in range(300):
        p.produce("dr", value=b"d%d" % i, partition=i % 3)
    assert p.flush(60) == 0
    # A target naming a broker that is down cannot complete: listed, then cancelled.
    parts = replicas_on(quorum[0], "dr")
    _, replicas, _ = parts[0]
    absent = next(n for n in quorum if n.node_id not in replicas)
    live = [n for n in quorum if n is not absent]
    assert absent.stop() == 0
    wait_until(lambda: len(n_brokers(live[0])) == 2, 15, what="the stopped broker fenced")
    target = replicas + [absent.node_id]
    cli(live[0], "topic", "reassign", "dr", "0=" + ",".join(map(str, target)))
    _, out = cli(live[1], "topic", "reassignments", "dr")
    assert "dr-0 replicas %s adding %d removing \n" % (",".join(map(str, target)),
                                                       absent.node_id) in out, out
    wait_replicas(live[0], "dr", 0, target)
    cli(live[0], "topic", "reassign", "dr", "--cancel", "0")
    wait_replicas(live[0], "dr", 0, replicas)
    _, out = cli(live[1], "topic", "reassignments")
    assert "no reassignment is under way" in out
    absent.start(absent.port)
    wait_until(lambda: len(n_brokers(live[0])) == 3, 15, what="the broker back")
    # Drain: every replica on the node moves to the others, internal topics included;
    # refused, changing nothing, while a partition has a replica on every broker.
    wait_until(lambda: any(t == "__consumer_offsets" for t, _ in partitions_on(quorum[1])), 15,
               what="__consumer_offsets")
    gone, at = quorum[0], quorum[1]  # drained, and the node the commands go through
    create_replicated(quorum, "full", 1, rf=3)
    wait_until(lambda: ("full", 0) in all_replicas_on(at), 15, what="full on node 2")
    before = all_replicas_on(at)
    rc, out = cli(at, "cluster", "drain", str(gone.node_id), check=False)
    assert rc != 0 and "full-0 has 3 replicas" in out, out
    assert all_replicas_on(at) == before
    cli(at, "topic", "delete", "full")
    wait_until(lambda: ("full", 0) not in all_replicas_on(at), 15, what="full gone on node 2")
    _, out = cli(at, "cluster", "drain", str(gone.node_id), "--wait", "--timeout", "90")
    assert "reassignments are done" in out, out
    wait_until(lambda: not any(gone.node_id in v for v in all_replicas_on(at).values()), 15,
               what="no replica left on node %d" % gone.node_id)
    assert all(len(v) == 2 for (t, _), v in all_replicas_on(at).items() if t == "dr")
    wait_until(lambda: not any(has_dir(gone, "dr", k) for k in range(3)), 15,
               what="the drained node's directories removed")
    got = consume_all(quorum[2], "dr", 3, expected=300)
    assert sorted(v for recs in got.values() for _, _, v, _ in recs) == \
        sorted(b"d%d" % i for i in range(300))
    # Nothing left to drain: a second drain moves nothing.
    _, out = cli(at, "cluster", "drain", str(gone.node_id))
    assert "0 replicas to move" in out, out


# ---- replication throttles (KIP-73) ----

THROTTLE_RATE = 1 << 20  # bytes/s, both quotas
THROTTLED_MIB = 4  # what a new replica copies under the throttle


@pytest.fixture
def quorum_throttled():
    """Three nodes with both replication quotas at 1 MiB/s (Kafka's window: 11 samples
    of 1 s) and follower fetches of at most 128 KiB per partition, so that a throttled
    copy goes in many small steps: about three seconds for 4 MiB, where an unthrottled
    one takes a few fetches."""
    with running(three_voters(leader_replication_throttled_rate=str(THROTTLE_RATE),
                              follower_replication_throttled_rate=str(THROTTLE_RATE),
                              replica_fetch_max_bytes="131072")) as nodes:
        yield nodes


def create_assigned(nodes, name, replicas, configs):
    """A topic of one partition on the given brokers (the first leads)."""
    a = AdminClient({"bootstrap.servers": ",".join(n.bootstrap for n in nodes),
                     "socket.timeout.ms": 10000})
    fs = a.create_topics([NewTopic(name, num_partitions=1, replica_assignment=[replicas],
                                   config=configs)],
                         operation_timeout=10, request_timeout=20)
    fs[name].result(timeout=30)
    wait_until(lambda: replicas_on(nodes[0], name).get(0, (-1,))[0] == replicas[0], 15,
               what="%s led by %d" % (name, replicas[0]))


def log_size(n, topic, partition):
    """Bytes in one replica's segment files (0 before it has any)."""
    d = os.path.join(n.data_dir, "%s-%d" % (topic, partition))
    try:
        return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
                   if f.endswith(".log"))
    except FileNotFoundError:
        return 0


def copy_under_throttle(nodes, topic, src, dst, flowing):
    """Fills partition 0 of topic (led by src alone) with THROTTLED_MIB MiB, then adds dst
    to its replicas while a producer writes, acks=all, to `flowing` (replicas src and
    dst: the same leader and follower, so the same Fetch as the throttled copy). Returns
    the sizes of dst's copy seen while it was incomplete, and how many records `flowing`
    had acknowledged at each of those moments."""
    p = Producer({"bootstrap.servers": ",".join(n.bootstrap for n in nodes), "acks": "all",
                  "linger.ms": 20, "batch.size": 65536})
    value = os.urandom(10240)
    for _ in range(THROTTLED_MIB * 100):
        p.produce(topic, value=value, partition=0)
    assert p.flush(60) == 0
    final = log_size(node(nodes, src), topic, 0)
    sizes, acks = [], []
    bp = BackgroundProducer(nodes, flowing, 1, b"f")
    try:
        wait_until(lambda: bp.count() >= 50, 20, what="acks from %s" % flowing)
        cli(nodes[0], "topic", "reassign", topic, "0=%d,%d" % (src, dst))
        deadline = time.monotonic() + 60
        while log_size(node(nodes, dst), topic, 0) < final:
            sizes.append(log_size(node(nodes, dst), topic, 0))
            acks.append(bp.count())
            assert time.monotonic() < deadline, "the throttled copy did not finish: %s" % sizes
            time.sleep(0.05)
    finally:
        bp.stop()
    assert bp.unflushed == 0 and not bp.errors, bp.errors[:5]
    # The copy is the leader's log, and the reassignment completes.
    wait_until(lambda: log_bytes(node(nodes, dst), topic, 0) ==
               log_bytes(node(nodes, src), topic, 0), 15, what="the new replica identical")
    wait_until(lambda: replicas_on(nodes[0], topic)[0][1:] == ([src, dst], [src, dst]) or
               replicas_on(nodes[0], topic)[0][1:] == ([src, dst], [dst, src]), 15,
               what="%s-0 on %d and %d, both in sync" % (topic, src, dst))
    return sizes, acks


def assert_copied_in_steps_while_others_flowed(sizes, acks):
    """The new replica's log grew in many steps, seen one look (50 ms apart) after
    another: about 26 here, where the same copy unthrottled was over before the first
    look; and the flowing partition's acknowledgements went on meanwhile."""
    partial = sorted({s for s in sizes if s > 0})
    assert len(partial) >= 12, "the copy grew in %d steps: %s" % (len(partial), partial)
    started = next(i for i, s in enumerate(sizes) if s > 0)
    assert acks[-1] - acks[started] >= 20, (acks[started], acks[-1])


def test_a_reassignment_throttled_at_the_follower_copies_in_steps(quorum_throttled):
    """follower.replication.throttled.replicas=* on the topic: the new replica's broker
    holds the partition back from its Fetch while over its quota; the other partition it
    follows from the same leader keeps flowing."""
    nodes = quorum_throttled
    agreed_controller(nodes)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in nodes), 15, what="three brokers")
    create_assigned(nodes, "thf", [1], {"follower.replication.throttled.replicas": "*"})
    create_assigned(nodes, "thf-flow", [1, 2], {})
    sizes, acks = copy_under_throttle(nodes, "thf", 1, 2, "thf-flow")
    assert_copied_in_steps_while_others_flowed(sizes, acks)


def test_a_reassignment_throttled_at_the_leader_copies_in_steps(quorum_throttled):
    """leader.replication.throttled.replicas=0:<leader> (what kafka-reassign-partitions
    sets: the partition's current replicas, which lead): the leader answers the new
    follower's fetches without records while over its quota; the other partition of the
    same Fetch keeps flowing."""
    nodes = quorum_throttled
    agreed_controller(nodes)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in nodes), 15, what="three brokers")
    create_assigned(nodes, "thl", [3], {"leader.replication.throttled.replicas": "0:3"})
    create_assigned(nodes, "thl-flow", [3, 2], {})
    sizes, acks = copy_under_throttle(nodes, "thl", 3, 2, "thl-flow")
    assert_copied_in_steps_while_others_flowed(sizes, acks)
