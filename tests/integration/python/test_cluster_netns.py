"""A metadata quorum of three nodes, each in its own network namespace, and a cut link.

test_cluster_quorum.py kills (kill -9) and pauses (SIGSTOP) the active controller on
loopback; here it is cut off the network instead: the process runs on, its sockets stay
open, but no packet reaches it or leaves it. The other two elect a new controller,
CreateTopics succeeds through them and the cut node's broker is fenced; when the link
comes back the old controller follows the new one, learns what was committed without
it, is unfenced, and every record acknowledged before the cut can be read.

Topology, made and removed by the test (root and `ip netns` needed, else it skips):

    root namespace                                namespace samsa-tN-<pid>, N = 1, 2, 3
    bridge samsa-b<pid>  10.213.S.254/24 --- veth samsaN-<pid> === eth0  10.213.S.N/24
    route unreachable 10.213.0.0/16 metric <pid>                      samsa-server node N

Every node listens on its own address (9092 clients, 9093 quorum), and this process
talks to the nodes through the bridge. The namespaces have no default route, only
their /24, and the root namespace has the `unreachable` route over the whole block for
as long as anything is up, so no packet for these addresses can leave the machine by
the default route, even from a client that outlives the bridge. S is a /24 of the block
no other route uses, so concurrent runs stay apart; <pid> (this process) names each run's
objects and its route's metric, and a run first removes what a dead run left behind.

A cut sets the root end of the node's veth down: the bridge stops forwarding to it and
the node's eth0 loses its carrier, so both directions drop silently, as with a pulled
cable (no RST: open TCP connections just stall, and their requests are never answered).
Setting it up again heals it, with the same addresses and the connections resuming.
This kernel has no netem and nftables is not installed; a link down needs neither, and
doing it from the root namespace needs no command run inside the node's.
"""
import os
import re
import subprocess

import pytest

import kwire

from clients import consume_all, producer
from conftest import wait_until
from confluent_kafka.admin import AdminClient, NewTopic
from test_cluster_quorum import (QuorumNode, SERVER, agreed_controller, describe,
                                 leaders_on, node, topics_on)

BLOCK = "10.213.0.0/16"
PREFIX = "10.213."
CLIENT_PORT = 9092
CONTROLLER_PORT = 9093
NS_RE = re.compile(r"^samsa-t\d-(\d+)$")
LINK_RE = re.compile(r"^samsa(?:-b|\d-)(\d+)$")


def ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def run_is_gone(pid):
    """True if the run that named objects after pid cannot be using them any more: it
    is this one, or that process is gone (or a zombie)."""
    if pid == os.getpid():
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def remove_leftovers():
    """Removes the namespaces, links and routes of earlier runs that died before their
    own cleanup (and of this process, if any), found by name and metric."""
    for line in ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NS_RE.match(name)
        if m and run_is_gone(int(m.group(1))):
            ip("netns", "delete", name, check=False)
    for line in ip("-o", "link", "show").stdout.splitlines():
        # "12: samsa1-4242@if11: <BROADCAST,...> ..."
        name = line.split(":")[1].strip().split("@")[0]
        m = LINK_RE.match(name)
        if m and run_is_gone(int(m.group(1))):
            ip("link", "delete", name, check=False)
    for line in ip("-o", "route", "show", "type", "unreachable").stdout.splitlines():
        m = re.match(r"^unreachable %s metric (\d+)" % re.escape(BLOCK), line)
        if m and run_is_gone(int(m.group(1))):
            ip("route", "delete", "unreachable", BLOCK, "metric", m.group(1), check=False)


class Net:
    """The bridge, the unreachable route and one namespace plus veth per node."""

    def __init__(self, nodes=3):
        self.pid = os.getpid()
        self.bridge = "samsa-b%d" % self.pid
        self.ns = ["samsa-t%d-%d" % (i, self.pid) for i in range(1, nodes + 1)]
        self.veth = ["samsa%d-%d" % (i, self.pid) for i in range(1, nodes + 1)]
        self.subnet = None

    def free_subnet(self):
        used = ip("-o", "route", "show", "table", "all").stdout
        for s in range(1, 254):
            if (" %s%d." % (PREFIX, s)) not in " " + used.replace("\n", " "):
                return s
        raise RuntimeError("no free /24 in %s" % BLOCK)

    def address(self, i):
        return "%s%d.%d" % (PREFIX, self.subnet, i)

    def up(self):
        # The route first and gone last: while any address of the block is in use,
        # nothing for it goes out by the default route.
        ip("route", "add", "unreachable", BLOCK, "metric", str(self.pid))
        self.subnet = self.free_subnet()
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", "%s/24" % self.address(254), "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i, (ns, veth) in enumerate(zip(self.ns, self.veth), 1):
            ip("netns", "add", ns)
            ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", veth, "master", self.bridge)
            ip("link", "set", veth, "up")
            ip("-n", ns, "addr", "add", "%s/24" % self.address(i), "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def down(self):
        """Removes everything up() made, whatever of it exists; processes in the
        namespaces must be gone first."""
        for ns, veth in zip(self.ns, self.veth):
            ip("link", "delete", veth, check=False)
            ip("netns", "delete", ns, check=False)
        ip("link", "delete", self.bridge, check=False)
        ip("route", "delete", "unreachable", BLOCK, "metric", str(self.pid), check=False)

    def cut(self, i):
        ip("link", "set", self.veth[i - 1], "down")

    def heal(self, i):
        ip("link", "set", self.veth[i - 1], "up")


class NetnsNode(QuorumNode):
    """A QuorumNode listening on its namespace's address, started inside it."""

    def __init__(self, node_id, ns, host, voters):
        super().__init__(node_id, CLIENT_PORT, CONTROLLER_PORT, voters)
        self.overrides["listeners"] = "PLAINTEXT://%s:%d,CONTROLLER://%s:%d" % (
            host, CLIENT_PORT, host, CONTROLLER_PORT)
        self.overrides["advertised.listeners"] = "PLAINTEXT://%s:%d" % (host, CLIENT_PORT)
        self.host = host
        # `ip netns exec` enters the namespace and execs: the child is samsa-server
        # itself, so kill() and PR_SET_PDEATHSIG reach it.
        self.command_prefix = ["ip", "netns", "exec", ns]


@pytest.fixture
def netns_quorum():
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces, veths and routes")
    try:
        remove_leftovers()
        probe = "samsa-t0-%d" % os.getpid()
        ip("netns", "add", probe)
        ip("netns", "delete", probe)
    except (OSError, RuntimeError) as e:
        pytest.skip("ip netns is not usable here: %s" % e)
    net = Net()
    nodes = []
    try:
        net.up()
        voters = ",".join("%d@%s:%d" % (i, net.address(i), CONTROLLER_PORT)
                          for i in range(1, 4))
        nodes = [NetnsNode(i, net.ns[i - 1], net.address(i), voters) for i in range(1, 4)]
        cluster_id = subprocess.run([SERVER, "random-uuid"], capture_output=True,
                                    timeout=10, check=True).stdout.decode().strip()
        for n in nodes:
            r = n.format(cluster_id)
            assert r.returncode == 0, r.stderr.decode(errors="replace")
        for n in nodes:
            n.start(n.port)
        yield nodes, net
    finally:
        for n in nodes:
            n.kill()
            print("---- node %d stderr tail ----\n%s" % (n.node_id, n.stderr_tail()))
            n.cleanup()
        net.down()


def create_topic(bootstrap_nodes, name, partitions):
    """CreateTopics through the Admin API; the client is gone when this returns, even
    when it fails (no client may outlive the namespaces)."""
    a = AdminClient({"bootstrap.servers": ",".join(n.bootstrap for n in bootstrap_nodes),
                     "socket.timeout.ms": 10000})
    try:
        fs = a.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10,
                             request_timeout=20)
        fs[name].result(timeout=30)
    finally:
        fs = None
        del a


def produce(bootstrap_node, topic, partitions, values):
    """Produces with acks=all; returns the values acknowledged, and fails unless all."""
    p = producer(bootstrap_node, **{"message.timeout.ms": 20000})
    acked = []

    def report(err, msg):
        if err is None:
            acked.append(msg.value())

    try:
        for i, v in enumerate(values):
            p.produce(topic, value=v, partition=i % partitions, on_delivery=report)
        assert p.flush(30) == 0
    finally:
        del p
    assert sorted(acked) == sorted(values)
    return acked


def brokers_named(n):
    return {b[0] for b in describe(n)["brokers"]}


def test_cut_controller_is_replaced_and_rejoins(netns_quorum):
    nodes, net = netns_quorum
    ctl = agreed_controller(nodes)
    wait_until(lambda: all(brokers_named(n) == {1, 2, 3} for n in nodes), 15,
               what="three unfenced brokers")
    create_topic(nodes, "n-before", 6)
    leaders = wait_until(
        lambda: (lambda l: l if len(l) == 6 and -1 not in l.values() else None)(
            leaders_on(nodes[0], "n-before")), 10, what="six partitions with leaders")
    assert set(leaders.values()) == {1, 2, 3}, leaders
    acked = produce(nodes[0], "n-before", 6, [b"b%d" % i for i in range(60)])

    old = node(nodes, ctl)
    rest = [n for n in nodes if n is not old]
    net.cut(old.node_id)
    try:
        # A producer id asked of a survivor at once: its block request goes to the cut
        # controller, which never answers nor closes; the survivor gives up on it after a
        # broker session and asks the new controller, so producer ids come again.
        def producer_id():
            try:
                with kwire.Conn(rest[0].port, host=rest[0].host, timeout=10) as c:
                    err, pid, _ = kwire.init_producer_id_v0(c)
            except (OSError, kwire.Closed):
                return None
            return pid if err == 0 else None
        wait_until(producer_id, 20, interval=0.2, what="a producer id from a survivor")
        # The two that still reach each other elect one of themselves...
        new = agreed_controller(rest, not_node=ctl)
        assert new != ctl
        # ...and take admin changes, which both apply.
        create_topic(rest, "n-during", 3)
        for n in rest:
            wait_until(lambda: topics_on(n).get("n-during") == (0, 3), 10,
                       what="n-during on node %d" % n.node_id)
        # The cut broker's heartbeats stop reaching the controller: fenced, so its
        # partitions have no leader and it is not among the brokers any more. The two
        # others stay unfenced, leading theirs: their heartbeats found the new controller
        # although the old one never answered (nor closed) the last ones they sent it.
        for n in rest:
            wait_until(lambda: all(l == -1 for p, l in leaders_on(n, "n-before").items()
                                   if leaders[p] == ctl), 15,
                       what="node %d to see the cut broker's partitions leaderless"
                       % n.node_id)
            assert {p: l for p, l in leaders_on(n, "n-before").items() if leaders[p] != ctl} \
                == {p: l for p, l in leaders.items() if l != ctl}
            assert brokers_named(n) == {m.node_id for m in rest}
    finally:
        net.heal(old.node_id)

    # Back on the network: the old controller follows the new one (pre-vote keeps it
    # from disrupting the term), learns the topic created without it, is unfenced and
    # leads its partitions again, with every record acknowledged before the cut.
    assert agreed_controller(nodes) == new
    wait_until(lambda: topics_on(old).get("n-during") == (0, 3), 15,
               what="the healed node to learn of n-during")
    for n in nodes:
        wait_until(lambda: leaders_on(n, "n-before") == leaders, 15,
                   what="node %d to see the healed broker lead again" % n.node_id)
        wait_until(lambda: brokers_named(n) == {1, 2, 3}, 10,
                   what="node %d to list three brokers" % n.node_id)
    got = consume_all(nodes[0], "n-before", 6, expected=60)
    assert sorted(v for recs in got.values() for _, _, v, _ in recs) == sorted(acked)
