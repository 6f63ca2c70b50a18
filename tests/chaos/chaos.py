"""Chaos against a real three-node Samsa cluster on loopback: faults while idempotent
acks=all producers and a consumer group run, then a check over the whole history.

    python3 tests/chaos/chaos.py --seed 7 --duration 60        (make chaos RUNS=N SEED=S)

Each run starts three combined broker+controller nodes (short election and session
timeouts), creates a topic with replication.factor=3 and min.insync.replicas=2, and
runs, for --duration seconds:
  - a producer (librdkafka, enable.idempotence, acks=all) sending numbered records;
  - a consumer group member reading them and committing after each batch it processed;
  - the nemesis, which every few seconds hurts one node at a time, chosen by the seed:
    kill -9 and restart, SIGSTOP for longer than the broker session then SIGCONT, or
    SIGTERM (controlled shutdown) and restart.
Then everything heals, the producer flushes, and a fresh consumer reads every partition
from the start. The checker asserts, over the whole history:
  - every acknowledged record is present exactly once, at the offset it was
    acknowledged with (no offset with two values, nothing acknowledged lost);
  - per partition, acknowledged records are in acknowledgement order;
  - no record appears that was never sent, and none twice;
  - the group never committed an offset beyond what it had consumed.
The seed decides the faults and their timing (the clients' and servers' own timing is
not under its control, so a seed reproduces the schedule, not every interleaving).
Exit status 0 when every check holds; on a violation it prints the seed and what broke.
"""
import argparse
import os
import random
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "python"))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from test_cluster_quorum import QuorumNode, agreed_controller, free_port, running  # noqa: E402

TOPIC = "chaos"
PARTITIONS = 6


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}        # value -> (partition, offset)
        self.sent = set()
        self.errors = []       # delivery errors (allowed: not acknowledged)
        self.consumed = []     # (partition, offset, value) by the group member
        self.commits = []      # (partition, committed offset)


def producer_loop(boot, hist, stop):
    p = Producer({"bootstrap.servers": boot, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 2, "message.timeout.ms": 120000})

    def delivered(err, msg):
        with hist.lock:
            if err is not None:
                hist.errors.append(str(err))
            else:
                hist.acked[msg.value()] = (msg.partition(), msg.offset())
    i = 0
    while not stop.is_set():
        v = b"r%08d" % i
        with hist.lock:
            hist.sent.add(v)
        p.produce(TOPIC, key=b"k%d" % (i % 64), value=v, on_delivery=delivered)
        i += 1
        p.poll(0.001 if i % 20 else 0.02)
    if p.flush(150) != 0:
        with hist.lock:
            hist.errors.append("flush left %d records unacknowledged" % len(p))


def consumer_loop(boot, hist, stop):
    c = Consumer({"bootstrap.servers": boot, "group.id": "chaos-group",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10000})
    c.subscribe([TOPIC])
    try:
        while not stop.is_set():
            msgs = c.consume(num_messages=500, timeout=0.5)
            done = {}
            for m in msgs:
                if m.error():
                    continue
                with hist.lock:
                    hist.consumed.append((m.partition(), m.offset(), m.value()))
                done[m.partition()] = m.offset() + 1
            if done:
                tps = [TopicPartition(TOPIC, p, o) for p, o in done.items()]
                try:
                    c.commit(offsets=tps, asynchronous=False)
                    with hist.lock:
                        hist.commits.extend(done.items())
                except Exception:
                    pass  # a commit during a fault may fail: it is retried by the next one
    finally:
        c.close()


def nemesis(nodes, rng, stop, quiet, done, log, session_s, failures):
    try:
        hurt(nodes, rng, stop, log, session_s)
    except Exception as e:  # a node that does not come back is a finding, not a hang
        failures.append("the nemesis failed: %r" % e)
        stop.set()
    quiet.set()
    # The servers this thread started die with it (conftest starts them with
    # PR_SET_PDEATHSIG, which follows the starting thread): it lives to the end.
    done.wait()


def hurt(nodes, rng, stop, log, session_s):
    while not stop.is_set():
        if stop.wait(rng.uniform(2, 5)):
            return
        n = rng.choice(nodes)
        action = rng.choice(["kill", "pause", "term"])
        log("%s node %d" % (action, n.node_id))
        if action == "pause":
            n.proc.send_signal(signal.SIGSTOP)
            stop.wait(session_s + rng.uniform(0.5, 2))
            n.proc.send_signal(signal.SIGCONT)
        else:
            if action == "kill":
                n.kill()
            else:
                n.stop()
            stop.wait(rng.uniform(1, 4))
            n.start(n.port)
        # Let it rejoin before the next fault, so that min.insync.replicas=2 holds.
        stop.wait(3)


def check(hist, final):
    """final: {partition: [(offset, value)]}. Returns a list of violations."""
    bad = []
    at = {}
    for p, recs in final.items():
        for off, v in recs:
            if v in at:
                bad.append("record %r appears twice: %s and %s" % (v, at[v], (p, off)))
            at[v] = (p, off)
            if v not in hist.sent:
                bad.append("record %r at %s was never sent" % (v, (p, off)))
    for v, where in hist.acked.items():
        if at.get(v) != where:
            bad.append("acknowledged %r at %s, found at %s" % (v, where, at.get(v)))
    by_part = {}
    for v, (p, off) in hist.acked.items():
        by_part.setdefault(p, []).append((off, int(v[1:])))
    for p, recs in by_part.items():
        seqs = [s for _, s in sorted(recs)]
        if seqs != sorted(seqs):
            bad.append("partition %d: acknowledged records out of order" % p)
    consumed_end = {}
    for p, off, _ in hist.consumed:
        consumed_end[p] = max(consumed_end.get(p, 0), off + 1)
    for p, off in hist.commits:
        if off > consumed_end.get(p, 0):
            bad.append("partition %d: committed %d beyond consumed %d" % (p, off,
                                                                         consumed_end.get(p, 0)))
    return bad


def read_all(boot, expected):
    c = Consumer({"bootstrap.servers": boot, "group.id": "chaos-check",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    out = {p: [] for p in range(PARTITIONS)}
    seen = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=10000, timeout=1):
                if not m.error():
                    out[m.partition()].append((m.offset(), m.value()))
                    seen += 1
            if seen >= expected:
                # one more round for stragglers beyond the acknowledged ones
                for m in c.consume(num_messages=10000, timeout=2):
                    if not m.error():
                        out[m.partition()].append((m.offset(), m.value()))
                return out
        return out
    finally:
        c.close()


def run(seed, duration, log=print):
    rng = random.Random(seed)
    ports = [(free_port(), free_port()) for _ in range(3)]
    voters = ",".join("%d@127.0.0.1:%d" % (i + 1, cp) for i, (_, cp) in enumerate(ports))
    nodes = [QuorumNode(i + 1, p, cp, voters) for i, (p, cp) in enumerate(ports)]
    session_s = 3.0
    with running(nodes):
        agreed_controller(nodes)
        boot = ",".join(n.bootstrap for n in nodes)
        a = AdminClient({"bootstrap.servers": boot})
        fs = a.create_topics([NewTopic(TOPIC, PARTITIONS, 3,
                                       config={"min.insync.replicas": "2"})])
        fs[TOPIC].result(30)
        hist = History()
        stop_clients, stop_nemesis = threading.Event(), threading.Event()
        threads = [threading.Thread(target=producer_loop, args=(boot, hist, stop_clients)),
                   threading.Thread(target=consumer_loop, args=(boot, hist, stop_clients))]
        failures = []
        quiet, run_over = threading.Event(), threading.Event()
        nem = threading.Thread(target=nemesis, args=(nodes, rng, stop_nemesis, quiet, run_over,
                                                     log, session_s, failures))
        for t in threads:
            t.start()
        nem.start()
        stop_nemesis.wait(duration)
        stop_nemesis.set()
        quiet.wait(120)  # its last fault undone
        for n in nodes:  # heal
            if not n.running():
                n.start(n.port)
            else:
                n.proc.send_signal(signal.SIGCONT)
        stop_clients.set()
        for t in threads:
            t.join(180)
        final = read_all(boot, len(hist.acked))
        bad = failures + check(hist, final)
        log("seed %d: %d sent, %d acknowledged, %d delivery errors, %d consumed by the "
            "group, %d commits; %s" % (seed, len(hist.sent), len(hist.acked),
                                       len(hist.errors), len(hist.consumed),
                                       len(hist.commits),
                                       "OK" if not bad else "%d VIOLATIONS" % len(bad)))
        run_over.set()
        nem.join(60)
        for b in bad[:20]:
            log("  " + b)
        if bad:
            for p in range(PARTITIONS):
                offs = [o for o, _ in final[p]]
                acked = [o for (q, o) in hist.acked.values() if q == p]
                log("  partition %d: final read %d records (offsets %s..%s), %d acknowledged "
                    "(offsets %s..%s)" % (p, len(offs), min(offs, default=None),
                                          max(offs, default=None), len(acked),
                                          min(acked, default=None), max(acked, default=None)))
        return bad, hist


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--duration", type=float, default=60)
    args = ap.parse_args()
    failed = []
    for s in range(args.seed, args.seed + args.runs):
        bad, _ = run(s, args.duration)
        if bad:
            failed.append(s)
    if failed:
        print("FAILED seeds: %s" % failed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
