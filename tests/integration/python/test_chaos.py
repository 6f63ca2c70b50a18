"""A bounded chaos run (tests/chaos/chaos.py) inside make test: a three-node cluster
with replication factor 3 under kill -9, SIGSTOP and SIGTERM restarts of one node at a
time and, with each node in its own network namespace (when this runs as root and
`ip netns` and nft work; else on loopback, with the process faults only), network
faults too (the seed's: a node cut off, then a partition leader cut off from the other
nodes but not from the clients), while an idempotent acks=all producer and a consumer
group run; the checker then demands every acknowledged record exactly once,
in order, at its offset, and no commit beyond what was consumed. `make chaos RUNS=N
SEED=S [CHAOS_NETNS=1]` runs longer ones."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "chaos"))

import chaos  # noqa: E402
import netns  # noqa: E402


def test_chaos_bounded():
    why = netns.unusable(need_nft=True)
    if why:
        print("chaos on loopback, without network faults: %s" % why)
    # Seed 31's schedule in namespaces: node 1 cut off, a partition leader cut off from
    # the other nodes, kill -9 of node 3.
    bad, hist = chaos.run(seed=int(os.environ.get("SAMSA_CHAOS_SEED", "31")), duration=25,
                          log=print, use_netns=why is None)
    assert not bad, bad[:10]
    assert len(hist.acked) > 1000, "the run acknowledged too little to mean anything"
    if why is None and "SAMSA_CHAOS_SEED" not in os.environ:
        assert {f for _, f, _ in hist.faults} & set(chaos.NETWORK_FAULTS), hist.faults
