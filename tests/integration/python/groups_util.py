"""Helpers for the consumer-group tests (test_groups.py).

Run as a script, this file is a group member: one confluent-kafka Consumer in its own
process (so a test can kill -9 it) that subscribes, reports every rebalance callback and
every record it processed as JSON lines on stdout, and commits synchronously after each
processed batch (commit after processing). "close" on stdin closes the consumer
gracefully (LeaveGroup) and exits.

In the test process, Member starts such a worker and collects what it reports.
"""
import ctypes
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))

# Default group-broker overrides for the tests: no initial rebalance delay, and session
# timeouts down to 1 s allowed so that kill -9 cases are quick.
FAST_GROUPS = {"group.initial.rebalance.delay.ms": "0",
               "group.min.session.timeout.ms": "1000"}


# ------------------------------------------------------------------ worker process side


def _worker(spec):
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    out_lock = threading.Lock()

    def emit(ev, **kw):
        kw["ev"] = ev
        kw["t"] = time.monotonic()
        line = json.dumps(kw)
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    closing = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "close":
                closing.set()
                return
        closing.set()  # parent went away

    threading.Thread(target=read_stdin, daemon=True).start()

    conf = {"bootstrap.servers": spec["bootstrap"], "group.id": spec["group"],
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
            "socket.timeout.ms": 10000}
    conf.update(spec.get("conf", {}))
    c = Consumer(conf)

    def on_assign(consumer, parts):
        emit("assign", p=sorted(tp.partition for tp in parts))

    def on_revoke(consumer, parts):
        emit("revoke", p=sorted(tp.partition for tp in parts))

    def on_lost(consumer, parts):
        emit("lost", p=sorted(tp.partition for tp in parts))

    c.subscribe([spec["topic"]], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit("ready", pid=os.getpid())
    topic = spec["topic"]
    while not closing.is_set():
        msgs = c.consume(num_messages=1000, timeout=0.2)
        recs = []
        nxt = {}
        for m in msgs:
            if m.error() is not None:
                emit("error", e=str(m.error()))
                continue
            recs.append((m.partition(), m.offset()))
            nxt[m.partition()] = m.offset() + 1
        if not recs:
            continue
        emit("recs", r=recs)  # "processed"
        try:
            c.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()],
                     asynchronous=False)
            emit("committed", o=sorted(nxt.items()))
        except KafkaException as e:
            emit("commit_error", e=str(e), o=sorted(nxt.items()))
    c.close()
    emit("closed")


# ------------------------------------------------------------------ test process side

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Member:
    """One worker process and what it reported. `owned` follows on_assign/on_revoke as
    deltas (correct for eager protocols, where revoke is the whole set, and for
    cooperative ones, where both are incremental)."""

    def __init__(self, broker, group, topic, name, **conf):
        self.name = name
        spec = {"bootstrap": broker.bootstrap, "group": group, "topic": topic, "conf": conf}
        self.err_path = "/tmp/samsa-groups-%s-%d.stderr" % (name, os.getpid())
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([PY, os.path.abspath(__file__), json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, preexec_fn=_die_with_parent)
        self.lock = threading.Lock()
        self.events = []  # (ev dict), in order
        self.records = []  # (partition, offset) in processing order
        self.owned = set()
        self.callbacks = 0  # assign/revoke/lost callbacks seen
        self.commit_errors = []
        self.committed = {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            with self.lock:
                kind = ev["ev"]
                if kind == "recs":
                    self.records.extend(tuple(r) for r in ev["r"])
                    continue
                self.events.append(ev)
                if kind == "assign":
                    self.owned |= set(ev["p"])
                    self.callbacks += 1
                elif kind in ("revoke", "lost"):
                    self.owned -= set(ev["p"])
                    self.callbacks += 1
                elif kind == "commit_error":
                    self.commit_errors.append(ev)
                elif kind == "committed":
                    self.committed.update({p: o for p, o in ev["o"]})

    def snapshot(self):
        with self.lock:
            return set(self.owned), self.callbacks, len(self.records)

    def events_of(self, *kinds):
        with self.lock:
            return [e for e in self.events if e["ev"] in kinds]

    def recs(self):
        with self.lock:
            return list(self.records)

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self, timeout=30):
        """Graceful consumer.close() in the worker; waits for the process to exit."""
        try:
            self.proc.stdin.write(b"close\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)

    def stderr_tail(self, n=20):
        try:
            with open(self.err_path, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def cleanup(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._err.close()
        try:
            os.unlink(self.err_path)
        except OSError:
            pass


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def partitioned(members, partitions):
    """True when the members' owned sets are disjoint, non-empty and cover
    range(partitions)."""
    owned = [m.snapshot()[0] for m in members]
    if any(not o for o in owned):
        return False
    union = set().union(*owned)
    return union == set(range(partitions)) and sum(len(o) for o in owned) == partitions


def decode_assignment(data):
    """ConsumerProtocol MemberAssignment -> {topic: [partitions]}."""
    if not data:
        return {}
    pos = 2  # version
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    out = {}
    for _ in range(n):
        (ln,) = struct.unpack_from(">h", data, pos)
        pos += 2
        topic = data[pos:pos + ln].decode()
        pos += ln
        (np_,) = struct.unpack_from(">i", data, pos)
        pos += 4
        out[topic] = list(struct.unpack_from(">%di" % np_, data, pos))
        pos += 4 * np_
    return out


def describe_group(broker, group):
    """confluent-kafka AdminClient.list_groups (ListGroups + DescribeGroups) for one group
    -> GroupMetadata."""
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 10000})
    groups = a.list_groups(group=group, timeout=15)
    assert len(groups) == 1, groups
    g = groups[0]
    assert g.error is None or g.error.code() == 0, g.error
    return g


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
