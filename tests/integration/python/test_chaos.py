"""A bounded chaos run (tests/chaos/chaos.py) inside make test: a three-node cluster
with replication factor 3 under kill -9, SIGSTOP and SIGTERM restarts of one node at a
time, torn tails (kill -9, then the end of some partition logs damaged as a crash in
the middle of a write leaves it, then a restart) and, with each node in its own network
namespace (when this runs as root and `ip netns` and nft work; else on loopback, with
the process faults only), network faults too (the seed's: a partition leader cut off
from the other nodes but not from the clients, then a node cut off), while an
idempotent acks=all producer, a transactional producer on a topic of its own and a
consumer group run; the checker then demands every acknowledged record exactly once, in
order, at its offset, no commit beyond what was consumed, every torn tail truncated by
recovery, and, read_committed, every committed transaction exactly once, no aborted
record, each transaction all or nothing and none left open. `make chaos RUNS=N SEED=S
[CHAOS_NETNS=1] [CHAOS_TXN=1]` runs longer ones."""
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
    # Seed 224's schedule in namespaces: a torn tail on node 1, a partition leader cut
    # off from the other nodes, node 2 cut off; on loopback: a torn tail on node 1, two
    # SIGSTOPs.
    bad, hist = chaos.run(seed=int(os.environ.get("SAMSA_CHAOS_SEED", "224")), duration=25,
                          log=print, use_netns=why is None, txn=True)
    assert not bad, bad[:10]
    assert len(hist.acked) > 1000, "the run acknowledged too little to mean anything"
    assert sum(1 for _, outcome in hist.txns if outcome == "committed") > 50, \
        "the run committed too few transactions to mean anything"
    if "SAMSA_CHAOS_SEED" not in os.environ:
        assert hist.torn, hist.faults
        if why is None:
            assert {f for _, f, _ in hist.faults} & set(chaos.NETWORK_FAULTS), hist.faults
