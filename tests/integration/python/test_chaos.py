"""A bounded chaos run (tests/chaos/chaos.py) inside make test: a three-node cluster
with replication factor 3 under kill -9, SIGSTOP and SIGTERM restarts of one node at a
time while an idempotent acks=all producer and a consumer group run; the checker then
demands every acknowledged record exactly once, in order, at its offset, and no commit
beyond what was consumed. `make chaos RUNS=N SEED=S` runs longer ones."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "chaos"))

import chaos  # noqa: E402


def test_chaos_bounded():
    bad, hist = chaos.run(seed=int(os.environ.get("SAMSA_CHAOS_SEED", "3")), duration=25,
                          log=print)
    assert not bad, bad[:10]
    assert len(hist.acked) > 1000, "the run acknowledged too little to mean anything"
