"""A metadata quorum of three nodes, each in its own network namespace, and a cut link.

test_cluster_quorum.py kills (kill -9) and pauses (SIGSTOP) the active controller on
loopback; here it is cut off the network instead: the process runs on, its sockets stay
open, but no packet reaches it or leaves it. The other two elect a new controller,
CreateTopics succeeds through them and the cut node's broker is fenced; when the link
comes back the old controller follows the new one, learns what was committed without
it, is unfenced, and every record acknowledged before the cut can be read.

The topology (three namespaces on a bridge, made and removed by the test; root and
`ip netns` needed, else it skips) and the cut are netns.py's: every node listens on
its own address, this process talks to them through the bridge, and a cut sets the
node's veth down, so both directions drop silently, as with a pulled cable (no RST:
open TCP connections just stall, and their requests are never answered). Setting it up
again heals it, with the same addresses and the connections resuming.
"""
import pytest

import kwire
import netns

from clients import consume_all, producer
from conftest import wait_until
from confluent_kafka.admin import AdminClient, NewTopic
from test_cluster_quorum import agreed_controller, describe, leaders_on, node, topics_on


@pytest.fixture
def netns_quorum():
    why = netns.unusable()
    if why:
        pytest.skip(why)
    with netns.cluster() as (nodes, net):
        yield nodes, net


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
