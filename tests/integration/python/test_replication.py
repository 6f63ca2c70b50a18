"""Replication on three real samsa-server processes (loopback): every partition has
three replicas; followers fetch from their leader and append its batches as they are.

What is shown: acks=all records reach every replica and the replicas' segment files
become byte for byte the leader's; after kill -9 of a partition's leader, the
controller makes an in-sync follower leader, the producers carry on by themselves, and
every acknowledged record is there exactly once, in order; the killed node comes back
as a follower and catches up.
"""
import os
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from clients import consume_all
from conftest import wait_until
import pytest

from test_cluster_quorum import (QuorumNode, agreed_controller, free_port, leaders_on, node,
                                 quorum, running, three_voters)  # noqa: F401

TOPIC_CONFIGS = {"min.insync.replicas": "2"}


def create_replicated(nodes, name, partitions, rf=3, configs=TOPIC_CONFIGS):
    a = AdminClient({"bootstrap.servers": ",".join(n.bootstrap for n in nodes),
                     "socket.timeout.ms": 10000})
    fs = a.create_topics([NewTopic(name, partitions, rf, config=configs)],
                         operation_timeout=10, request_timeout=20)
    fs[name].result(timeout=30)
    ids = {n.node_id for n in nodes}
    return wait_until(lambda: (lambda l: l if len(l) == partitions and set(l.values()) <= ids
                               else None)(leaders_on(nodes[0], name)),
                      15, what="%d partitions with leaders" % partitions)


def log_bytes(n, topic, partition):
    """The concatenated segment files of one replica (None if it has none yet)."""
    d = os.path.join(n.data_dir, "%s-%d" % (topic, partition))
    try:
        files = sorted(f for f in os.listdir(d) if f.endswith(".log"))
    except FileNotFoundError:
        return None
    out = b""
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            out += fh.read()
    return out


def replicas_identical(nodes, topic, partitions):
    for p in range(partitions):
        logs = {log_bytes(n, topic, p) for n in nodes}
        if len(logs) != 1 or logs == {None}:
            return False
    return True


def under_replicated(n):
    """{(topic, partition): (min.insync.replicas, under it)} that `samsa cluster status
    --json` lists as under-replicated."""
    import json
    import subprocess
    from test_cluster_quorum import CLI
    out = subprocess.run([CLI, "-b", n.bootstrap, "cluster", "status", "--json"],
                         capture_output=True, timeout=30, check=True).stdout
    return {(u["topic"], u["partition"]): (u["min_insync_replicas"], u["under_min_isr"])
            for u in json.loads(out)["under_replicated_partitions"]}


def replica_lag(n, topic):
    """{(partition, replica id): replica} of topic from `samsa cluster status --json`'s
    replica_lag (DescribeLogDirs from every broker), asked through node n."""
    import json
    import subprocess
    from test_cluster_quorum import CLI
    out = subprocess.run([CLI, "-b", n.bootstrap, "cluster", "status", "--json"],
                         capture_output=True, timeout=60, check=True).stdout
    return {(p["partition"], r["id"]): r
            for p in json.loads(out)["replica_lag"]["partitions"] if p["topic"] == topic
            for r in p["replicas"]}


def acks_all_producer(nodes):
    return Producer({"bootstrap.servers": ",".join(n.bootstrap for n in nodes),
                     "enable.idempotence": True, "acks": "all",
                     "message.timeout.ms": 60000, "linger.ms": 5})


def test_acks_all_reaches_every_replica_byte_for_byte(quorum):
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")
    create_replicated(quorum, "r-copy", 3)
    # Every node holds a replica of every partition.
    for n in quorum:
        wait_until(lambda: all(os.path.isdir(os.path.join(n.data_dir, "r-copy-%d" % p))
                               for p in range(3)), 10, what="node %d's replicas" % n.node_id)
    p = acks_all_producer(quorum)
    for i in range(600):
        p.produce("r-copy", value=b"c%d" % i, partition=i % 3)
    assert p.flush(60) == 0
    got = consume_all(quorum[1], "r-copy", 3, expected=600)
    assert sorted(v for recs in got.values() for _, _, v, _ in recs) == \
        sorted(b"c%d" % i for i in range(600))
    wait_until(lambda: replicas_identical(quorum, "r-copy", 3), 15,
               what="every replica byte for byte the leader's")


def n_brokers(n):
    import kwire
    with kwire.Conn(n.port, host=n.host) as c:
        return kwire.describe_cluster_v0(c)["brokers"]


class BackgroundProducer:
    """An idempotent acks=all producer writing numbered records ("<prefix>000042") round
    the partitions of a topic, on a thread of its own, until stop(). acked: partition ->
    [(offset, value)] in acknowledgement order; errors: the delivery errors."""

    def __init__(self, nodes, topic, partitions, prefix):
        self.acked, self.errors = {}, []
        self.lock, self._stop = threading.Lock(), threading.Event()

        def on_delivery(err, msg):
            if err is not None:
                self.errors.append(str(err))
                return
            with self.lock:
                self.acked.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))

        def produce():
            p = acks_all_producer(nodes)
            i = 0
            while not self._stop.is_set():
                p.produce(topic, value=prefix + b"%06d" % i, partition=i % partitions,
                          on_delivery=on_delivery)
                i += 1
                p.poll(0.002)
            self.unflushed = p.flush(60)

        self.unflushed = None
        self.thread = threading.Thread(target=produce)
        self.thread.start()

    def count(self, partition=None):
        with self.lock:
            return sum(len(v) for k, v in self.acked.items() if partition in (None, k))

    def stop(self):
        """Stops, and flushes what is left (check says whether that went well)."""
        self._stop.set()
        self.thread.join(90)

    def check(self, got):
        """After stop: every record was acknowledged, and got (consume_all's) holds every
        acknowledged record exactly once and in the order it was acknowledged (offsets
        ascending)."""
        assert self.unflushed == 0, "flush left %s records" % self.unflushed
        assert not self.errors, self.errors[:5]
        for part, recs in self.acked.items():
            values = [v for _, _, v, _ in got[part]]
            assert len(values) == len(set(values)), "duplicates in partition %d" % part
            want = [v for _, v in sorted(recs)]
            assert [v for v in values if v in set(want)] == want, "partition %d" % part
            assert set(want) <= set(values)


def test_killed_leader_fails_over_and_nothing_acknowledged_is_lost(quorum):
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")
    leaders = create_replicated(quorum, "r-fail", 3)
    bp = BackgroundProducer(quorum, "r-fail", 3, b"f")
    try:
        wait_until(lambda: bp.count() >= 300, 20, what="300 acks")
        victim = node(quorum, leaders[0])
        victim.kill()
        before = bp.count()
        # Partition 0 gets a new leader from the in-sync followers and takes writes again.
        rest = [n for n in quorum if n is not victim]
        wait_until(lambda: leaders_on(rest[0], "r-fail")[0] not in (-1, victim.node_id), 20,
                   what="a new leader for partition 0")
        wait_until(lambda: bp.count(0) > 0 and bp.count() >= before + 300, 30,
                   what="acks after the failover")
    finally:
        bp.stop()
    bp.check(consume_all(rest[0], "r-fail", 3, expected=bp.count()))
    # The killed node comes back as a follower and catches up with all of it.
    victim.start(victim.port)
    wait_until(lambda: replicas_identical(quorum, "r-fail", 3), 30,
               what="the returning node's replicas identical to the leaders'")


def coordinator_of(nodes, group):
    """The node id FindCoordinator names for the group (v0, through the first node that
    answers)."""
    import kwire
    for n in nodes:
        if not n.running():
            continue
        try:
            with kwire.Conn(n.port, host=n.host, timeout=2) as c:
                r = c.request(10, 0, kwire.string(group))
                err, node_id = r.i16(), r.i32()
                return node_id if err == 0 else None
        except (OSError, kwire.Closed):
            continue
    return None


def test_group_offsets_survive_the_coordinators_loss(quorum):
    """__consumer_offsets is replicated (offsets.topic.replication.factor, here 3): the
    group's committed offsets are on every replica before the commit is answered, and
    after kill -9 of the coordinator the new leader of the group's partition serves
    them."""
    from confluent_kafka import Consumer, TopicPartition
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")
    create_replicated(quorum, "r-grp", 2)
    wait_until(lambda: len(leaders_on(quorum[0], "__consumer_offsets")) > 0, 15,
               what="__consumer_offsets")
    bootstrap = ",".join(n.bootstrap for n in quorum)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-repl",
                  "enable.auto.commit": False})
    try:
        wanted = [TopicPartition("r-grp", 0, 17), TopicPartition("r-grp", 1, 42)]
        c.commit(offsets=wanted, asynchronous=False)
    finally:
        c.close()
    old = wait_until(lambda: coordinator_of(quorum, "g-repl"), 15, what="the coordinator")
    node(quorum, old).kill()
    rest = [n for n in quorum if n.node_id != old]
    wait_until(lambda: coordinator_of(rest, "g-repl") not in (None, -1, old), 20,
               what="a new coordinator")

    def committed():
        c2 = Consumer({"bootstrap.servers": ",".join(n.bootstrap for n in rest),
                       "group.id": "g-repl"})
        try:
            got = c2.committed([TopicPartition("r-grp", 0), TopicPartition("r-grp", 1)],
                               timeout=5)
            return sorted((t.partition, t.offset) for t in got)
        except Exception:
            return None
        finally:
            c2.close()
    assert wait_until(lambda: (lambda r: r if r == [(0, 17), (1, 42)] else None)(committed()),
                      30, what="the committed offsets from the new coordinator")


def test_controlled_shutdown_moves_leaderships_first(quorum):
    """SIGTERM in a cluster: the broker asks the controller to move its leaderships to
    other in-sync replicas before it stops (KIP-631's WantShutDown), so when the process
    has exited no partition is left led by it or leaderless, without waiting for its
    session to expire; acks=all producers carry on. `samsa cluster status` shows its
    replicas' lag unknown while it is away, and none lagging once it has caught up."""
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")
    leaders = create_replicated(quorum, "r-stop", 6)
    p = acks_all_producer(quorum)
    for i in range(300):
        p.produce("r-stop", value=b"s%d" % i, partition=i % 6)
    assert p.flush(60) == 0
    victim = node(quorum, leaders[0])
    assert victim.stop() == 0
    rest = [n for n in quorum if n is not victim]
    now = leaders_on(rest[0], "r-stop")
    assert all(l not in (-1, victim.node_id) for l in now.values()), now
    for i in range(300, 600):
        p.produce("r-stop", value=b"s%d" % i, partition=i % 6)
    assert p.flush(60) == 0
    got = consume_all(rest[0], "r-stop", 6, expected=600)
    assert sorted(v for recs in got.values() for _, _, v, _ in recs) == \
        sorted(b"s%d" % i for i in range(600))
    # `samsa cluster status` cannot know the stopped node's replicas, and says why; the
    # others' it knows, with their lag behind their (new) leaders.
    lag = replica_lag(rest[0], "r-stop")
    assert len(lag) == 18, lag
    for (p, r), v in lag.items():
        if r == victim.node_id:
            assert v["lag_bytes"] is None and v["size_bytes"] is None, v
            assert v["unknown"] in ("fenced", "unreachable"), v
        else:
            assert v["size_bytes"] > 0 and v["lag_bytes"] is not None, v
    # It comes back as a follower of every partition and catches up.
    victim.start(victim.port)
    wait_until(lambda: replicas_identical(quorum, "r-stop", 6), 30,
               what="the restarted node's replicas identical to the leaders'")
    # Then every replica is known, in the ISR and no byte behind its leader.
    wait_until(lambda: all(v["lag_bytes"] == 0 and v["in_isr"] and v["unknown"] is None
                           for v in replica_lag(quorum[0], "r-stop").values()), 30,
               interval=0.5, what="no replica of r-stop lagging in cluster status")


def test_follower_behind_the_leaders_log_start_starts_over(quorum):
    """A follower that was away while DeleteRecords moved the leader's log start past its
    log end starts over at the leader's log start (the batch holding it) and catches up,
    instead of fetching an offset the leader no longer has forever."""
    import kwire
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")
    leaders = create_replicated(quorum, "r-start", 1)
    leader = node(quorum, leaders[0])
    follower = next(n for n in quorum if n is not leader)
    p = acks_all_producer(quorum)
    for i in range(50):
        p.produce("r-start", value=b"a%d" % i, partition=0)
    assert p.flush(60) == 0
    follower.kill()
    # Once it is fenced, `samsa cluster status` lists the partition as under-replicated.
    wait_until(lambda: ("r-start", 0) in under_replicated(leader), 15,
               what="r-start-0 under-replicated in cluster status")
    # Two of three in sync, min.insync.replicas 2: under-replicated, not under min ISR.
    assert under_replicated(leader)[("r-start", 0)] == (2, False)
    for i in range(50):
        p.produce("r-start", value=b"b%d" % i, partition=0)
        p.flush(60)  # one batch per record: the log start falls between batches
    with kwire.Conn(leader.port, host=leader.host) as c:
        assert kwire.delete_records_v0(c, "r-start", 0, 80) == (0, 80)
    for i in range(10):
        p.produce("r-start", value=b"c%d" % i, partition=0)
    assert p.flush(60) == 0
    follower.start(follower.port)

    def caught_up():
        lead, mine = log_bytes(leader, "r-start", 0), log_bytes(follower, "r-start", 0)
        return mine and lead.endswith(mine) and b"c9" in mine
    wait_until(caught_up, 30, what="the follower's log a suffix of the leader's, to its end")
    # Its log starts at or below 80, never above: nothing the leader still has is skipped.
    d = os.path.join(follower.data_dir, "r-start-0")
    first = min(int(f.split(".")[0]) for f in os.listdir(d) if f.endswith(".log"))
    assert first <= 80, first


def elect_preferred(n, topic=None, partitions=()):
    """ElectLeaders v1, type 0 (preferred), through node n (forwarded to the active
    controller): {(topic, partition): error}. topic None: every partition."""
    import kwire
    tp = None if topic is None else [kwire.string(topic) + kwire.array(
        [kwire.i32(p) for p in partitions])]
    with kwire.Conn(n.port, host=n.host) as c:
        r = c.request(43, 1, kwire.i8(0) + kwire.array(tp) + kwire.i32(10000))
        r.i32()
        assert r.i16() == 0
        out = {}
        for t, parts in r.array(lambda r: (r.string(), r.array(
                lambda r: (r.i32(), r.i16(), r.string())))):
            for p, err, _ in parts:
                out[(t, p)] = err
        return out


def test_preferred_leaders_are_elected_again(quorum):
    """After a broker's restart its partitions are led by the others; ElectLeaders
    (type preferred, as kafka-leader-election.sh sends it) gives each back to its first
    replica once that is in sync again, and says ELECTION_NOT_NEEDED where it leads."""
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")
    leaders = create_replicated(quorum, "r-pref", 6)
    p = acks_all_producer(quorum)
    for i in range(60):
        p.produce("r-pref", value=b"p%d" % i, partition=i % 6)
    assert p.flush(60) == 0
    victim = node(quorum, leaders[0])
    assert victim.stop() == 0
    moved = leaders_on(node(quorum, next(n.node_id for n in quorum if n is not victim)), "r-pref")
    assert victim.node_id not in moved.values()
    victim.start(victim.port)
    # Back in every ISR (AlterPartition from the leaders), then elected where preferred.
    ELECTION_NOT_NEEDED = 84

    def elected():
        got = elect_preferred(quorum[0], "r-pref", range(6))
        return got if all(e in (0, ELECTION_NOT_NEEDED) for e in got.values()) else None
    wait_until(elected, 30, interval=0.5, what="preferred elections to succeed")
    assert wait_until(lambda: leaders_on(quorum[0], "r-pref") == leaders, 10,
                      what="every partition led by its preferred replica")
    assert set(elect_preferred(quorum[0], "r-pref", range(6)).values()) == {ELECTION_NOT_NEEDED}
    # Every partition (null TopicPartitions): those of __consumer_offsets the victim
    # should lead come back too; then none needs it, and the answer is empty.
    assert set(elect_preferred(quorum[1]).values()) <= {0}
    wait_until(lambda: elect_preferred(quorum[1]) == {}, 10, interval=0.5,
               what="no partition left away from its preferred replica")
    for i in range(60, 120):
        p.produce("r-pref", value=b"p%d" % i, partition=i % 6)
    assert p.flush(60) == 0
    got = consume_all(quorum[2], "r-pref", 6, expected=120)
    assert sorted(v for recs in got.values() for _, _, v, _ in recs) == \
        sorted(b"p%d" % i for i in range(120))


@pytest.fixture
def quorum_rebalancing():
    """Three nodes whose active controller checks leader balance every second."""
    with running(three_voters(leader_imbalance_check_interval_seconds="1")) as nodes:
        yield nodes


def test_leaders_return_to_preferred_replicas_by_themselves(quorum_rebalancing):
    """auto.leader.rebalance.enable (the default): a restarted broker gets back the
    leadership of the partitions it is the first replica of, once it is in sync, with no
    operator action."""
    nodes = quorum_rebalancing
    agreed_controller(nodes)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in nodes), 15, what="three brokers")
    leaders = create_replicated(nodes, "r-auto", 6)
    victim = node(nodes, leaders[0])
    assert victim.stop() == 0
    other = next(n for n in nodes if n is not victim)
    assert victim.node_id not in leaders_on(other, "r-auto").values()
    victim.start(victim.port)
    wait_until(lambda: leaders_on(other, "r-auto") == leaders, 30, interval=0.5,
               what="every partition led by its preferred replica again")


def log_dirs(n):
    """DescribeLogDirs v1 (all topics) from node n: {(topic, partition): (size, lag)}."""
    import kwire
    with kwire.Conn(n.port, host=n.host) as c:
        r = c.request(35, 1, kwire.i32(-1))
        r.i32()
        out = {}
        for err, _, topics in r.array(lambda r: (r.i16(), r.string(), r.array(
                lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i64(), r.i64(), r.i8())))))):
            assert err == 0
            for t, parts in topics:
                for p, size, lag, _ in parts:
                    out[(t, p)] = (size, lag)
        return out


def test_describe_log_dirs_shows_each_replica(quorum):
    """DescribeLogDirs (kafka-log-dirs.sh): every node lists the replicas it holds, with
    their size; once the followers have caught up the sizes agree and no lag is left."""
    agreed_controller(quorum)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in quorum), 15, what="three brokers")
    create_replicated(quorum, "r-dirs", 2)
    p = acks_all_producer(quorum)
    for i in range(100):
        p.produce("r-dirs", value=b"d" * 100, partition=i % 2)
    assert p.flush(60) == 0

    def agreed():
        seen = [{k: v for k, v in log_dirs(n).items() if k[0] == "r-dirs"} for n in quorum]
        return seen if all(len(d) == 2 for d in seen) and \
            all(d == seen[0] for d in seen) and \
            all(size > 0 and lag == 0 for size, lag in seen[0].values()) else None
    wait_until(agreed, 15, what="the same sizes and no lag on every replica")


@pytest.fixture
def quorum_long_sessions():
    """Three nodes whose broker sessions last ten minutes: a broker fenced sooner was
    fenced because its connection to the controller closed."""
    with running(three_voters(broker_session_timeout_ms="600000")) as nodes:
        yield nodes


def test_a_killed_broker_is_fenced_when_its_connection_closes(quorum_long_sessions):
    """samsa.broker.disconnect.fence.ms: a broker killed with kill -9 closes its
    connection to the active controller at once, which fences it a second later instead
    of at the end of its session; its partitions get new leaders from their ISRs and
    take acks=all writes."""
    nodes = quorum_long_sessions
    agreed_controller(nodes)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in nodes), 15, what="three brokers")
    leaders = create_replicated(nodes, "r-gone", 6)
    ctl = nodes[0].controller()
    victim = node(nodes, next(l for l in leaders.values() if l != ctl))
    led = [p for p, l in leaders.items() if l == victim.node_id]
    victim.kill()
    rest = [n for n in nodes if n is not victim]
    wait_until(lambda: all(leaders_on(rest[0], "r-gone")[p] not in (-1, victim.node_id)
                           for p in led), 30, what="new leaders long before the session ends")
    p = acks_all_producer(rest)
    for i in range(60):
        p.produce("r-gone", value=b"g%d" % i, partition=led[0])
    assert p.flush(30) == 0


def test_a_killed_controller_is_fenced_by_its_successor(quorum_long_sessions):
    """The active controller is killed too: the new one never hears from it (no
    connection of its to close), but its own connection to the dead voter is refused,
    which fences it the same way, long before the session would end."""
    nodes = quorum_long_sessions
    ctl = agreed_controller(nodes)
    wait_until(lambda: all(len(n_brokers(n)) == 3 for n in nodes), 15, what="three brokers")
    leaders = create_replicated(nodes, "r-ctl", 6)
    led = [p for p, l in leaders.items() if l == ctl]
    assert led, leaders
    victim = node(nodes, ctl)
    victim.kill()
    rest = [n for n in nodes if n is not victim]
    agreed_controller(rest, not_node=ctl)
    wait_until(lambda: all(leaders_on(rest[0], "r-ctl")[p] not in (-1, ctl) for p in led), 30,
               what="new leaders long before the session ends")


def stderr_text(n):
    with open(n.stderr_path, "rb") as f:
        return f.read().decode(errors="replace")


def test_unclean_leader_election_elects_a_returning_replica():
    """unclean.leader.election.enable=true on a topic: its only in-sync replica dies
    holding records the other never got; the other, when it returns, leads (out of sync,
    logged as UNCLEAN) and takes writes; the old leader, back, truncates what only it
    had. Those records are lost: what the setting trades for availability. One
    controller (node 1, always up) and two broker-only nodes holding the partition."""
    ctl_port, ctl_cport = free_port(), free_port()
    voters = "1@127.0.0.1:%d" % ctl_cport
    nodes = [QuorumNode(1, ctl_port, ctl_cport, voters)] + \
        [QuorumNode(i, free_port(), None, voters) for i in (2, 3)]
    with running(nodes):
        agreed_controller(nodes)
        wait_until(lambda: all(len(n_brokers(n)) == 3 for n in nodes), 15, what="three brokers")
        a = AdminClient({"bootstrap.servers": nodes[0].bootstrap, "socket.timeout.ms": 10000})
        fs = a.create_topics([NewTopic("r-unclean", num_partitions=1, replica_assignment=[[2, 3]], config={
            "unclean.leader.election.enable": "true", "min.insync.replicas": "1"})],
            operation_timeout=10, request_timeout=20)
        fs["r-unclean"].result(timeout=30)
        old, back = nodes[1], nodes[2]
        wait_until(lambda: leaders_on(nodes[0], "r-unclean").get(0) == old.node_id, 15,
                   what="node 2 leading")
        p = acks_all_producer(nodes)
        for i in range(100):
            p.produce("r-unclean", value=b"a%d" % i, partition=0)
        assert p.flush(30) == 0
        wait_until(lambda: log_bytes(old, "r-unclean", 0) == log_bytes(back, "r-unclean", 0),
                   15, what="two copies")
        assert back.stop() == 0  # fenced: out of the ISR, which is now node 2 alone
        for i in range(50):
            p.produce("r-unclean", value=b"b%d" % i, partition=0)
        assert p.flush(30) == 0
        old.kill()
        wait_until(lambda: leaders_on(nodes[0], "r-unclean").get(0) == -1, 15,
                   what="the partition leaderless")
        back.start(back.port)
        wait_until(lambda: leaders_on(nodes[0], "r-unclean").get(0) == back.node_id, 30,
                   what="the returning replica leading, out of sync")
        assert "UNCLEAN election" in stderr_text(back)
        assert "UNCLEAN leader election for r-unclean-0" in stderr_text(nodes[0])
        # A new producer: the old one's next sequence numbers follow records the new
        # leader never had (Kafka's idempotent producers fail the same way after an
        # unclean election: OUT_OF_ORDER_SEQUENCE_NUMBER).
        p = acks_all_producer(nodes)
        for i in range(20):
            p.produce("r-unclean", value=b"c%d" % i, partition=0)
        assert p.flush(30) == 0
        old.start(old.port)
        wait_until(lambda: log_bytes(old, "r-unclean", 0) == log_bytes(back, "r-unclean", 0),
                   30, what="the old leader truncated to the new leader's log")
        got = consume_all(nodes[0], "r-unclean", 1, expected=120)
        values = [v for _, _, v, _ in got[0]]
        assert values == [b"a%d" % i for i in range(100)] + [b"c%d" % i for i in range(20)]
