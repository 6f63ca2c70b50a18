"""A metadata quorum of three controllers on loopback: real samsa-server processes,
each with its own data dir and ports, formatted with one cluster id.

What is shown: the three elect a leader and every node applies the metadata it
commits; admin changes go to the active controller (NOT_CONTROLLER elsewhere); killing
(kill -9) or pausing (SIGSTOP) the active controller makes another take over, after
which CreateTopics succeeds again and the returning node catches up with nothing
committed lost; a voter whose dir was never formatted, or whose metadata log was lost,
refuses to start rather than vote.
"""
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time

import pytest

from clients import consume_all, producer
from conftest import CONFIG, SERVER, Broker, wait_until
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
import kwire

NOT_CONTROLLER = 41
CLI = os.environ.get("SAMSA_CLI", os.path.join(os.path.dirname(SERVER), "tools", "samsa"))
ELECTION_TIMEOUT_MS = 1000
SESSION_TIMEOUT_MS = 3000


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A free loopback port for a node to bind later, picked at random below the kernel's
    ephemeral range: no client connection (of this suite, or of another that make
    integration runs beside it) can take it between this check and the node's bind, as
    one did once with a port from that range."""
    hi = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(10000, hi)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuorumNode(Broker):
    """A Broker with a fixed client port and a controller listener."""

    def __init__(self, node_id, port, controller_port, voters):
        """controller_port None: a broker-only node (process.roles=broker), an observer
        of the quorum; port None: a controller-only node (its one listener is the
        controller listener, which is the port it reports)."""
        listeners = ",".join(
            (["PLAINTEXT://127.0.0.1:%d" % port] if port else []) +
            (["CONTROLLER://127.0.0.1:%d" % controller_port] if controller_port else []))
        roles = "broker,controller" if port and controller_port else \
            "broker" if port else "controller"
        super().__init__({
            "node.id": str(node_id),
            "process.roles": roles,
            "listeners": listeners,
            "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % (port or controller_port),
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": voters,
            "controller.quorum.election.timeout.ms": str(ELECTION_TIMEOUT_MS),
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": str(SESSION_TIMEOUT_MS),
        })
        self.node_id = node_id
        self.port = port or controller_port

    def args(self):
        args = ["-c", CONFIG, "--override", "log.dirs=%s" % self.data_dir]
        for k, v in self.overrides.items():
            args += ["--override", "%s=%s" % (k, v)]
        return args

    def format(self, cluster_id):
        return subprocess.run([SERVER, "format", "--cluster-id", cluster_id] + self.args(),
                              capture_output=True, timeout=30)

    def try_start(self):
        """Runs the server expecting it to refuse: returns (rc, stderr)."""
        p = subprocess.run([SERVER] + self.args(), capture_output=True, timeout=30)
        return p.returncode, p.stderr.decode(errors="replace")

    def controller(self):
        """The active controller this node names, once it is also among the brokers this
        node lists (clients cannot reach it before); -1 for none; None if unreachable."""
        try:
            with kwire.Conn(self.port, timeout=2, host=self.host) as c:
                d = kwire.describe_cluster_v0(c)
        except (OSError, kwire.Closed):
            return None
        return d["controller"] if any(b[0] == d["controller"] for b in d["brokers"]) else -1


def three_voters(**overrides):
    """Three combined broker+controller nodes on free ports (not started), each with the
    given server properties (underscores in the names stand for dots)."""
    ports = [(free_port(), free_port()) for _ in range(3)]
    voters = ",".join("%d@127.0.0.1:%d" % (i + 1, cp) for i, (_, cp) in enumerate(ports))
    nodes = [QuorumNode(i + 1, p, cp, voters) for i, (p, cp) in enumerate(ports)]
    for n in nodes:
        n.overrides.update({k.replace("_", "."): v for k, v in overrides.items()})
    return nodes


@pytest.fixture
def quorum():
    with running(three_voters()) as nodes:
        yield nodes


@contextlib.contextmanager
def running(nodes):
    """Formats the nodes with one new cluster id and starts them; at the end (also on
    failure) resumes any paused one, kills them all, prints their logs' tails and removes
    their dirs."""
    cluster_id = subprocess.run([SERVER, "random-uuid"], capture_output=True, timeout=10,
                                check=True).stdout.decode().strip()
    try:
        for n in nodes:
            r = n.format(cluster_id)
            assert r.returncode == 0, r.stderr.decode(errors="replace")
        for n in nodes:
            n.start(n.port)
        yield nodes
    finally:
        for n in nodes:
            if n.running():
                n.proc.send_signal(signal.SIGCONT)
        for n in nodes:
            n.kill()
            print("---- node %d stderr tail ----\n%s" % (n.node_id, n.stderr_tail()))
            n.cleanup()


def agreed_controller(nodes, timeout=15, not_node=None):
    """Waits until every running node names the same controller (other than not_node,
    one known gone), and returns it."""
    def agreed():
        seen = {n.controller() for n in nodes if n.running()}
        if len(seen) == 1:
            (c,) = seen
            if c is not None and c > 0 and c != not_node:
                return c
        return None
    return wait_until(agreed, timeout, interval=0.1, what="one controller named by all nodes")


def node(nodes, node_id):
    return next(n for n in nodes if n.node_id == node_id)


def create_topic(bootstrap_nodes, name, partitions):
    """CreateTopics through the Admin API, bootstrapped from these nodes: the client
    finds the active controller itself."""
    a = AdminClient({"bootstrap.servers": ",".join(n.bootstrap for n in bootstrap_nodes),
                     "socket.timeout.ms": 10000})
    fs = a.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10,
                         request_timeout=20)
    fs[name].result(timeout=30)


def topics_on(n):
    with kwire.Conn(n.port, host=n.host) as c:
        return kwire.metadata_v1(c, None)


def leaders_on(n, topic):
    """{partition: leader} as node n's Metadata (v1) tells it."""
    with kwire.Conn(n.port, host=n.host) as c:
        r = c.request(3, 1, kwire.array([kwire.string(topic)]))
        r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
        r.i32()

        def part(r):
            err, pid, leader = r.i16(), r.i32(), r.i32()
            r.array(kwire.Reader.i32)
            r.array(kwire.Reader.i32)
            return pid, leader

        def top(r):
            r.i16()
            r.string()
            r.i8()
            return dict(r.array(part))

        (parts,) = r.array(top)
        return parts


def test_three_controllers_elect_and_replicate_metadata(quorum):
    ctl = agreed_controller(quorum)
    create_topic(quorum, "q-spread", 6)
    # Every node applies the committed creation.
    for n in quorum:
        wait_until(lambda: topics_on(n).get("q-spread") == (0, 6), 10,
                   what="the topic on node %d" % n.node_id)
    # `samsa cluster status` through a follower: it forwards DescribeQuorum to the active
    # controller, which knows every voter's log end.
    follower = next(n for n in quorum if n.node_id != ctl)

    def quorum_seen():
        out = subprocess.run([CLI, "-b", follower.bootstrap, "cluster", "status", "--json"],
                             capture_output=True, timeout=60)
        q = json.loads(out.stdout)["quorum"]
        lags = [v["lag"] for v in q.get("voters", [])]
        return q if q.get("available") and len(lags) == 3 and lags == [0, 0, 0] else None

    q = wait_until(quorum_seen, 15, interval=0.2, what="the quorum through a follower")
    assert q["leader_id"] == ctl, q
    # DescribeCluster for controllers (endpoint type 2, KIP-919): the voters, at their
    # controller listeners.
    with kwire.Conn(follower.port) as c:
        r = c.request(60, 1, kwire.i8(0) + kwire.i8(2) + kwire.TAGS, flexible=True)
        r.i32(), r.i16(), r.cstring(), r.i8(), r.cstring(), r.i32()
        controllers = r.carray(lambda r: (r.i32(), r.cstring(), r.i32(), r.cstring(), r.tags())[:3])
    assert sorted(controllers) == sorted(
        (n.node_id, "127.0.0.1", int(n.overrides["listeners"].rsplit(":", 1)[1])) for n in quorum)
    # A follower forwards metadata changes to the active controller, as a Kafka broker
    # does (KIP-590); on the controller listener it answers NOT_CONTROLLER, as Kafka's
    # controllers do.
    follower = next(n for n in quorum if n.node_id != ctl)
    with kwire.Conn(follower.port) as c:
        assert kwire.create_topics_v0(c, "q-forwarded", 1) == {"q-forwarded": 0}
    with kwire.Conn(int(follower.overrides["listeners"].rsplit(":", 1)[1])) as c:
        assert kwire.create_topics_v0(c, "q-refused", 1) == {"q-refused": NOT_CONTROLLER}
    wait_until(lambda: all(topics_on(n).get("q-forwarded") == (0, 1) for n in quorum), 10,
               what="the forwarded creation on every node")
    with kwire.Conn(node(quorum, ctl).port) as c:
        assert kwire.create_topics_v0(c, "q-direct", 2) == {"q-direct": 0}
    # Producer ids: every node hands them out, from blocks the active controller reserves
    # (AllocateProducerIds), never the same id twice.
    def producer_id(n):
        with kwire.Conn(n.port, host=n.host) as c:
            err, pid, epoch = kwire.init_producer_id_v0(c)
        return pid if err == 0 and epoch == 0 else None  # retriable until registered

    ids = {wait_until(lambda: producer_id(n), 15, what="a producer id from node %d" % n.node_id)
           for n in quorum}
    assert len(ids) == 3, ids
    # Data flows through the partitions' leader with one bootstrap address, from an
    # idempotent producer.
    p = producer(quorum[0], **{"enable.idempotence": True})
    for i in range(30):
        p.produce("q-spread", value=b"v%d" % i, partition=i % 6)
    assert p.flush(30) == 0
    got = consume_all(quorum[1], "q-spread", 6, expected=30)
    assert sorted(v for recs in got.values() for _, _, v, _ in recs) == \
        sorted(b"v%d" % i for i in range(30))


def test_partitions_spread_and_a_killed_broker_is_fenced(quorum):
    ctl = agreed_controller(quorum)
    # Every broker registered and unfenced before the topic is placed.
    wait_until(lambda: all(len(describe(n)["brokers"]) == 3 for n in quorum), 15,
               what="three unfenced brokers")
    create_topic(quorum, "q-spread12", 12)
    node_ids = {n.node_id for n in quorum}
    leaders = wait_until(lambda: (lambda l: l if len(l) == 12 and set(l.values()) <= node_ids
                                  else None)(leaders_on(quorum[0], "q-spread12")),
                         10, what="twelve partitions with leaders")
    counts = {n.node_id: sum(1 for x in leaders.values() if x == n.node_id) for n in quorum}
    assert counts == {1: 4, 2: 4, 3: 4}, leaders
    # Each node holds only its own partitions' directories.
    for n in quorum:
        want = {"q-spread12-%d" % p for p, l in leaders.items() if l == n.node_id}
        wait_until(lambda: {d for d in os.listdir(n.data_dir)
                            if d.startswith("q-spread12-")} == want, 10,
                   what="node %d's own directories only" % n.node_id)
    p = producer(quorum[0])
    for i in range(60):
        p.produce("q-spread12", value=b"s%d" % i, partition=i % 12)
    assert p.flush(30) == 0
    # A broker that is not the controller dies: fenced after the session timeout, its
    # partitions lose their leader (one replica: nowhere to move it).
    victim = next(n for n in quorum if n.node_id != ctl)
    victim.kill()
    rest = [n for n in quorum if n is not victim]
    wait_until(lambda: all(l == -1 for p, l in leaders_on(rest[0], "q-spread12").items()
                           if leaders[p] == victim.node_id), 20,
               what="the victim's partitions without a leader")
    assert all(b[0] != victim.node_id for b in describe(rest[0])["brokers"])
    # It comes back: registered again, unfenced, leading its partitions, data intact.
    victim.start(victim.port)
    wait_until(lambda: leaders_on(rest[0], "q-spread12") == leaders, 20,
               what="the victim's partitions led again")
    got = consume_all(quorum[0], "q-spread12", 12, expected=60)
    assert sorted(v for recs in got.values() for _, _, v, _ in recs) == \
        sorted(b"s%d" % i for i in range(60))


def find_coordinator(n, group):
    """FindCoordinator v0 on node n: (error, node id)."""
    with kwire.Conn(n.port, host=n.host) as c:
        r = c.request(10, 0, kwire.string(group))
        return r.i16(), r.i32()


def test_consumer_groups_across_brokers(quorum):
    agreed_controller(quorum)
    wait_until(lambda: all(len(describe(n)["brokers"]) == 3 for n in quorum), 15,
               what="three unfenced brokers")
    create_topic(quorum, "q-groups", 6)
    p = producer(quorum[1])
    for i in range(90):
        p.produce("q-groups", value=b"g%d" % i, partition=i % 6)
    assert p.flush(30) == 0
    # Every node names the same coordinator, the leader of the group's partition of
    # __consumer_offsets (which the controller created, spread over the brokers).
    coord = wait_until(lambda: (lambda cs: cs.pop() if len(cs) == 1 and None not in cs else None)(
        {(lambda e, n: n if e == 0 else None)(*find_coordinator(n, "q-group")) for n in quorum}),
        20, what="one coordinator for the group")
    assert coord in (1, 2, 3)
    wait_until(lambda: set(leaders_on(quorum[0], "__consumer_offsets").values()) == {1, 2, 3},
               10, what="__consumer_offsets led by all three")

    def consume(n, expected):
        c = Consumer({"bootstrap.servers": quorum[0].bootstrap, "group.id": "q-group",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe(["q-groups"])
        got = []
        deadline = time.monotonic() + 60
        try:
            while len(got) < expected and time.monotonic() < deadline:
                for m in c.consume(num_messages=100, timeout=0.5):
                    if m.error() is None:
                        got.append(m.value())
            if got:
                c.commit(asynchronous=False)
            # Nothing more arrives.
            for m in c.consume(num_messages=100, timeout=2):
                if m.error() is None:
                    got.append(m.value())
        finally:
            c.close()
        return got

    first = consume(quorum[0], 90)
    assert sorted(first) == sorted(b"g%d" % i for i in range(90))
    # Committed offsets hold: a new member of the group gets only what came after.
    for i in range(90, 96):
        p.produce("q-groups", value=b"g%d" % i, partition=i % 6)
    assert p.flush(30) == 0
    assert sorted(consume(quorum[2], 6)) == sorted(b"g%d" % i for i in range(90, 96))


def produce_v10(n, topic, partition):
    """A Produce v10 (flexible, KIP-951) of one record to node n. Returns (error, the
    partition's CurrentLeader (id, epoch) or None, {node id: (host, port)} of
    NodeEndpoints)."""
    batch = kwire.record_batch([(None, b"hint")])
    body = (kwire.cstring(None) + kwire.i16(-1) + kwire.i32(10000)
            + kwire.carray([kwire.cstring(topic) + kwire.carray([
                kwire.i32(partition) + kwire.uvarint(len(batch) + 1) + batch + kwire.TAGS])
                + kwire.TAGS]) + kwire.TAGS)
    with kwire.Conn(n.port) as c:
        r = c.request(0, 10, body, flexible=True)
    leader = {}

    def tagged(r, on_tag):
        for _ in range(r.uvarint()):
            tag, size = r.uvarint(), r.uvarint()
            end = r.p + size
            on_tag(tag, r)
            r.p = end

    def part(r):
        err = r.i16() if r.i32() is not None else None
        r.i64(), r.i64(), r.i64()
        r.carray(lambda r: (r.i32(), r.cstring(), r.tags()))
        r.cstring()

        def current(tag, r):
            if tag == 0:
                leader["current"] = (r.i32(), r.i32())
        tagged(r, current)
        return err

    (errs,) = r.carray(lambda r: (r.cstring(), r.carray(part), r.tags())[1])
    r.i32()  # throttle
    endpoints = {}

    def nodes(tag, r):
        if tag == 0:
            for node_id, host, port in r.carray(
                    lambda r: (r.i32(), r.cstring(), r.i32(), r.cstring(), r.tags())[:3]):
                endpoints[node_id] = (host, port)
    tagged(r, nodes)
    return errs[0], leader.get("current"), endpoints


def test_produce_to_another_brokers_partition_names_its_leader(quorum):
    agreed_controller(quorum)
    wait_until(lambda: all(len(describe(n)["brokers"]) == 3 for n in quorum), 15,
               what="three unfenced brokers")
    create_topic(quorum, "q-hints", 3)
    leaders = wait_until(lambda: (lambda l: l if len(l) == 3 and -1 not in l.values() else None)(
        leaders_on(quorum[0], "q-hints")), 10, what="three led partitions")
    p, leader = next((p, l) for p, l in leaders.items())
    wrong = next(n for n in quorum if n.node_id != leader)
    err, current, endpoints = produce_v10(wrong, "q-hints", p)
    assert err == 6  # NOT_LEADER_OR_FOLLOWER
    assert current is not None and current[0] == leader, current
    assert endpoints.get(leader) == ("127.0.0.1", node(quorum, leader).port), endpoints
    err, _, endpoints = produce_v10(node(quorum, leader), "q-hints", p)
    assert err == 0 and endpoints == {}


def describe(n):
    with kwire.Conn(n.port, host=n.host) as c:
        return kwire.describe_cluster_v0(c)


def test_killed_controller_is_replaced_and_catches_up(quorum):
    ctl = agreed_controller(quorum)
    create_topic(quorum, "q-before", 2)
    p = producer(quorum[0])
    for i in range(20):
        p.produce("q-before", value=b"b%d" % i, partition=i % 2)
    assert p.flush(30) == 0
    old = node(quorum, ctl)
    old.kill()
    rest = [n for n in quorum if n is not old]
    new = agreed_controller(rest, not_node=ctl)
    create_topic(rest, "q-after", 3)
    # The old controller comes back, learns what was committed without it, keeps its data.
    old.start(old.port)
    assert agreed_controller(quorum) == new
    wait_until(lambda: topics_on(old).get("q-after") == (0, 3), 15,
               what="the returning node to learn of q-after")
    assert topics_on(old).get("q-before") == (0, 2)
    got = consume_all(quorum[0], "q-before", 2, expected=20)
    assert sum(len(r) for r in got.values()) == 20


def test_paused_controller_is_replaced(quorum):
    ctl = agreed_controller(quorum)
    old = node(quorum, ctl)
    old.proc.send_signal(signal.SIGSTOP)
    try:
        rest = [n for n in quorum if n is not old]
        new = agreed_controller(rest, not_node=ctl)
        create_topic(rest, "q-during-pause", 1)
    finally:
        old.proc.send_signal(signal.SIGCONT)
    # Resumed, the old leader hears of the newer term and follows.
    assert agreed_controller(quorum) == new
    wait_until(lambda: topics_on(old).get("q-during-pause") == (0, 1), 15,
               what="the resumed node to learn of the topic")


def test_voter_without_its_log_refuses_to_start(quorum):
    agreed_controller(quorum)
    create_topic(quorum, "q-kept", 1)
    victim = quorum[2]
    victim.kill()
    shutil.rmtree(os.path.join(victim.data_dir, "__cluster_metadata-0"))
    rc, err = victim.try_start()
    assert rc != 0
    assert "must not vote" in err, err


def test_broker_only_nodes_observe_the_quorum():
    """One controller (broker and controller) and two broker-only nodes: they register,
    are added as observers, apply the log, lead partitions and serve clients."""
    ctl_port, ctl_cport = free_port(), free_port()
    voters = "1@127.0.0.1:%d" % ctl_cport
    nodes = [QuorumNode(1, ctl_port, ctl_cport, voters)] + \
        [QuorumNode(i, free_port(), None, voters) for i in (2, 3)]
    with running(nodes):
        assert agreed_controller(nodes) == 1
        wait_until(lambda: all(len(describe(n)["brokers"]) == 3 for n in nodes), 15,
                   what="three unfenced brokers")

        def observers():
            out = subprocess.run([CLI, "-b", nodes[2].bootstrap, "cluster", "status", "--json"],
                                 capture_output=True, timeout=60)
            q = json.loads(out.stdout)["quorum"]
            return q if q.get("available") and sorted(o["id"] for o in q["observers"]) == [2, 3] \
                and all(o["lag"] == 0 for o in q["observers"]) else None
        q = wait_until(observers, 15, interval=0.2, what="two observers caught up")
        assert [v["id"] for v in q["voters"]] == [1], q
        # A broker-only node forwards changes to the active controller.
        with kwire.Conn(nodes[1].port) as c:
            assert kwire.create_topics_v0(c, "o-forwarded", 1) == {"o-forwarded": 0}
        create_topic(nodes[1:], "o-topic", 6)
        leaders = wait_until(lambda: (lambda l: l if len(l) == 6 and -1 not in l.values()
                                      else None)(leaders_on(nodes[2], "o-topic")), 10,
                             what="six led partitions")
        assert {2, 3} <= set(leaders.values()), leaders
        p = producer(nodes[1])
        for i in range(30):
            p.produce("o-topic", value=b"o%d" % i, partition=i % 6)
        assert p.flush(30) == 0
        # An observer restarted from its dir catches up with what it missed.
        nodes[2].kill()
        create_topic(nodes[:2], "o-later", 2)
        nodes[2].start(nodes[2].port)
        wait_until(lambda: topics_on(nodes[2]).get("o-later") == (0, 2), 15,
                   what="the restarted observer to learn of o-later")
        got = consume_all(nodes[2], "o-topic", 6, expected=30)
        assert sorted(v for recs in got.values() for _, _, v, _ in recs) == \
            sorted(b"o%d" % i for i in range(30))


def test_controller_only_nodes_and_brokers():
    """Three controller-only nodes (the quorum) and two broker-only nodes (observers):
    clients bootstrapped with a broker create topics through it (it forwards them to the
    active controller), and do so again right after the active controller is killed."""
    cports = [free_port() for _ in range(3)]
    voters = ",".join("%d@127.0.0.1:%d" % (i + 1, p) for i, p in enumerate(cports))
    nodes = [QuorumNode(i + 1, None, cports[i], voters) for i in range(3)] + \
        [QuorumNode(i, free_port(), None, voters) for i in (4, 5)]
    brokers = nodes[3:]
    with running(nodes):
        wait_until(lambda: all(len(describe(n)["brokers"]) == 2 for n in brokers), 15,
                   what="two unfenced brokers")
        # Clients are told a broker as the controller (as KRaft brokers do).
        assert describe(brokers[0])["controller"] in (4, 5)
        create_topic(brokers[:1], "co-topic", 4)
        leaders = wait_until(lambda: (lambda l: l if len(l) == 4 and -1 not in l.values()
                                      else None)(leaders_on(brokers[1], "co-topic")), 10,
                             what="four led partitions")
        assert set(leaders.values()) == {4, 5}, leaders
        p = producer(brokers[0])
        for i in range(20):
            p.produce("co-topic", value=b"c%d" % i, partition=i % 4)
        assert p.flush(30) == 0
        # The active controller (a controller-only node) is killed.
        def leader():
            out = subprocess.run([CLI, "-b", brokers[0].bootstrap, "cluster", "status", "--json"],
                                 capture_output=True, timeout=60)
            q = json.loads(out.stdout)["quorum"]
            return q["leader_id"] if q.get("available") else None
        old = wait_until(leader, 15, what="the quorum's leader")
        node(nodes, old).kill()
        create_topic(brokers[:1], "co-after", 2)  # forwarded to the next controller
        assert wait_until(leader, 15, what="a new leader") != old
        got = consume_all(brokers[1], "co-topic", 4, expected=20)
        assert sum(len(r) for r in got.values()) == 20


def test_unformatted_voter_refuses_to_start(tmp_path):
    n = QuorumNode(1, free_port(), free_port(),
                   "1@127.0.0.1:%d,2@127.0.0.1:%d" % (free_port(), free_port()))
    try:
        rc, err = n.try_start()
        assert rc != 0
        assert "not formatted" in err, err
        assert not os.path.exists(os.path.join(n.data_dir, "__cluster_metadata-0", "raft.log"))
    finally:
        n.cleanup()
