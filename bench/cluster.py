#!/usr/bin/python3
"""bench/cluster.py BUILD WORK OUT_MD: the cluster section of `make bench`.

Three measurements on a three-node cluster (combined broker+controller nodes on
loopback, each its own process and data dir), Samsa's and, when tests/reference/kafka.sh
can run it, Apache Kafka 4.4's in the same run:

  failover      the active controller is killed (SIGKILL); from the kill to the first
                CreateTopics that succeeds, sent in turn to the surviving nodes over raw
                connections (a Kafka broker forwards it to its controller; a Samsa node
                that does not lead answers NOT_CONTROLLER and the next is tried). p50/p99
                over the trials. Samsa: the killed node is restarted between trials (one
                that does not come back is reported; the trials go on on a fresh cluster).
                Kafka: a fresh cluster per trial (a JVM restart costs more than a trial).
  propagation   CreateTopics to the cluster, then Metadata polled on every node until all
                three list the topic: p50/p99 of the time to the last node.
  throughput    `samsa bench` (1 KiB, acks=all, 12 partitions) against the three Samsa
                nodes and against one Samsa node, same arguments: the cost of spreading
                partitions over processes on this 2-core machine.

Replication factor 3 (issue #15's benchmark; topics made with `samsa topic create -r 3
-c min.insync.replicas=2`, idempotent producer, acks=all), Samsa with
samsa.replica.fetch.sync=true (followers fdatasync before acknowledging, the default) and
on a second cluster with false (Kafka's mode), and Kafka's three nodes:

  throughput    `samsa bench` as above (1 KiB, 12 partitions) on an RF=3 topic, against
                the same run on one Samsa node (RF=1, same idempotent producer).
  fixed rate    20,000 records/s of 100 B, linger 0, read concurrently: end-to-end
                latency (and the same on the single node).
  leader        a topic of 3 partitions; the leader of one that the active controller
  failover      does not lead is stopped, with SIGKILL or with SIGTERM (a controlled
                shutdown); from the signal to the first acks=all Produce acknowledged by
                the new leader (Metadata from the survivors names it; polled every 10
                ms over raw connections). A record acknowledged before the stop must be
                on the new leader. The stopped node is started again after each trial
                and must rejoin every ISR before the next (Samsa: a node that does not
                come back is reported, and the trials go on on a fresh cluster). Kafka:
                the stopped JVM started again from its /proc command line.

Default timeouts everywhere (controller.quorum.election.timeout.ms 1000,
broker.session.timeout.ms 9000; Kafka's too).
Environment: FAILOVER_TRIALS (20), PROPAGATION_TRIALS (100), KAFKA_FAILOVER_TRIALS (3),
KAFKA_PROPAGATION_TRIALS (30), CLUSTER_RECORDS (1 KiB records per throughput run,
300000), RF3_RECORDS (the same, replication factor 3; CLUSTER_RECORDS), E2E_RECORDS
(fixed-rate records, 200000 = 10 s), PLEADER_TRIALS (Samsa's leader-failover trials per
signal, 5), KAFKA_PLEADER_TRIALS (3), QUICK (fewer of everything), KAFKA=0 (skip Kafka),
REPLICATION=0 (skip the replication-factor-3 measurements).
Writes OUT_MD (markdown tables); results also on stdout. Exits 1 when a Samsa
replication measurement failed (the table and the notes below it say what happened).
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "python"))
import kwire  # noqa: E402  (raw Kafka wire helpers, independent of the broker's codec)

QUICK = bool(os.environ.get("QUICK"))
FAILOVER_TRIALS = int(os.environ.get("FAILOVER_TRIALS", 5 if QUICK else 20))
PROPAGATION_TRIALS = int(os.environ.get("PROPAGATION_TRIALS", 20 if QUICK else 100))
KAFKA_FAILOVER_TRIALS = int(os.environ.get("KAFKA_FAILOVER_TRIALS", 1 if QUICK else 3))
KAFKA_PROPAGATION_TRIALS = int(os.environ.get("KAFKA_PROPAGATION_TRIALS", 10 if QUICK else 30))
RECORDS = int(os.environ.get("CLUSTER_RECORDS", 50000 if QUICK else 300000))
WANT_KAFKA = os.environ.get("KAFKA", "1") != "0"
WANT_REPLICATION = os.environ.get("REPLICATION", "1") != "0"
PLEADER_TRIALS = int(os.environ.get("PLEADER_TRIALS", 2 if QUICK else 5))
KAFKA_PLEADER_TRIALS = int(os.environ.get("KAFKA_PLEADER_TRIALS", 1 if QUICK else 3))
RF3_RECORDS = int(os.environ.get("RF3_RECORDS", RECORDS))
E2E_RATE = 20000
E2E_RECORDS = int(os.environ.get("E2E_RECORDS", 60000 if QUICK else 200000))
THROUGHPUT_ARGS = ["-s", "1024", "-a", "all", "-p", "12"]
IDEMPOTENT = ["-X", "enable.idempotence=true"]
E2E_ARGS = ["-n", str(E2E_RECORDS), "-s", "100", "-a", "all", "-l", "0", "-p", "12", "--rate",
            str(E2E_RATE), "--concurrent"] + IDEMPOTENT
KAFKA_SH = os.path.join(ROOT, "tests", "reference", "kafka.sh")
TRIAL_TIMEOUT_S = 60


def free_ports(n):
    """n distinct free ports (all bound at once, so the kernel cannot hand one out twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def create_topic(port, name, partitions=1, timeout_s=2.0):
    """CreateTopics v2 (the oldest Kafka 4 serves) on one node; the error code, or None if
    it did not answer."""
    body = kwire.array([kwire.string(name) + kwire.i32(partitions) + kwire.i16(1) +
                        kwire.array([]) + kwire.array([])]) + \
        kwire.i32(int(timeout_s * 1000)) + kwire.i8(0)
    try:
        with kwire.Conn(port, timeout=timeout_s + 1) as c:
            r = c.request(19, 2, body)
            r.i32()  # throttle
            got = dict(r.array(lambda r: (r.string(), (r.i16(), r.string())[0])))
            return got[name]
    except (OSError, kwire.Closed, KeyError):
        return None


def topic_metadata(port, name):
    """Metadata v4 (the oldest Kafka 4 serves) on one node: (error, {partition: (error,
    leader, replicas, isr)}) of the topic, or None if the node did not answer or did not
    list it."""
    body = kwire.array([kwire.string(name)]) + kwire.i8(0)
    try:
        with kwire.Conn(port, timeout=2) as c:
            r = c.request(3, 4, body)
            r.i32()  # throttle
            r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
            r.string()  # cluster id
            r.i32()  # controller

            def topic(r):
                err, tname = r.i16(), r.string()
                r.i8()
                parts = r.array(lambda r: (r.i16(), r.i32(), r.i32(), r.array(kwire.Reader.i32),
                                           r.array(kwire.Reader.i32)))
                return tname, (err, {p[1]: (p[0], p[2], p[3], p[4]) for p in parts or []})

            return dict(r.array(topic)).get(name)
    except (OSError, kwire.Closed):
        return None


def lists_topic(port, name):
    """The node lists the topic without error."""
    md = topic_metadata(port, name)
    return md is not None and md[0] == 0


class SamsaCluster:
    def __init__(self, build, work, overrides=None):
        self.overrides = overrides or {}
        self.keep = True  # the data dir stays after stop() unless a check clears this
        self.server = os.path.join(build, "samsa-server")
        self.dir = tempfile.mkdtemp(prefix="cluster-", dir=work)
        ports = free_ports(6)
        self.ports = [(ports[2 * i], ports[2 * i + 1]) for i in range(3)]
        self.voters = ",".join("%d@127.0.0.1:%d" % (i + 1, c) for i, (_, c) in enumerate(self.ports))
        self.procs = [None] * 3
        self.log_from = [0] * 3
        cid = subprocess.run([self.server, "random-uuid"], capture_output=True, check=True,
                             timeout=10).stdout.decode().strip()
        for i in range(3):
            subprocess.run([self.server, "format", "--cluster-id", cid] + self.args(i),
                           capture_output=True, check=True, timeout=30)
        try:
            for i in range(3):
                self.start(i)
        except RuntimeError:
            self.stop()
            raise

    def args(self, i):
        p, c = self.ports[i]
        o = {"node.id": i + 1, "log.dirs": os.path.join(self.dir, "node%d" % (i + 1)),
             "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (p, c),
             "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % p,
             "controller.listener.names": "CONTROLLER", "controller.quorum.voters": self.voters,
             "log.level": "WARN"}
        o.update(self.overrides)
        a = ["-c", os.path.join(ROOT, "config", "server.properties")]
        for k, v in o.items():
            a += ["--override", "%s=%s" % (k, v)]
        return a

    def start(self, i):
        log = open(os.path.join(self.dir, "node%d.log" % (i + 1)), "ab")
        self.log_from[i] = log.tell()  # where this start's lines begin
        self.procs[i] = subprocess.Popen([self.server] + self.args(i), stdout=subprocess.PIPE,
                                         stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        line, said = b"", []
        deadline = time.monotonic() + 30
        while b"listening on port" not in line and time.monotonic() < deadline:
            line = self.procs[i].stdout.readline()
            said.append(line.decode(errors="replace").rstrip())
            if not line and self.procs[i].poll() is not None:
                st = self.procs[i].returncode
                raise RuntimeError("node %d exited (status %s%s) while starting; stdout: %s; "
                                   "last lines of its stderr since this start: %s" % (
                                       i + 1, st, " = %s" % signal.Signals(-st).name if st < 0 else "",
                                       " | ".join(x for x in said if x) or "nothing",
                                       " | ".join(self.log_tail(i + 1, 2, True).splitlines())
                                       or "nothing"))

    def client_ports(self, alive_only=True):
        return [p for i, (p, _) in enumerate(self.ports)
                if not alive_only or (self.procs[i] and self.procs[i].poll() is None)]

    def bootstrap(self):
        return ",".join("127.0.0.1:%d" % p for p, _ in self.ports)

    def controller(self):
        """The controller every live node names and lists, or None."""
        seen = set()
        for p in self.client_ports():
            try:
                with kwire.Conn(p, timeout=2) as c:
                    d = kwire.describe_cluster_v0(c)
            except (OSError, kwire.Closed):
                return None
            ok = len(d["brokers"]) == len(self.client_ports()) and \
                any(b[0] == d["controller"] for b in d["brokers"])
            seen.add(d["controller"] if ok else None)
        return seen.pop() if len(seen) == 1 and None not in seen else None

    def wait_settled(self):
        deadline = time.monotonic() + TRIAL_TIMEOUT_S
        while time.monotonic() < deadline:
            c = self.controller()
            if c:
                return c
            time.sleep(0.05)
        raise RuntimeError("no agreed controller within %d s" % TRIAL_TIMEOUT_S)

    def kill(self, node_id):
        p = self.procs[node_id - 1]
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        p.stdout.close()

    def term(self, node_id):
        """SIGTERM (a controlled shutdown); reap() waits for the exit."""
        self.procs[node_id - 1].send_signal(signal.SIGTERM)

    def reap(self, node_id, timeout_s=60):
        """Waits for a stopping node to exit; seconds waited, or None if it was still
        running after timeout_s (it is then killed)."""
        p = self.procs[node_id - 1]
        t0 = time.monotonic()
        try:
            p.wait(timeout=timeout_s)
            waited = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            waited = None
        p.stdout.close()
        return waited

    def node_ports(self):
        """{node id: client port} of the live nodes."""
        return {i + 1: p for i, (p, _) in enumerate(self.ports)
                if self.procs[i] and self.procs[i].poll() is None}

    def log_tail(self, node_id, n=20, this_start=False):
        try:
            with open(os.path.join(self.dir, "node%d.log" % node_id), "rb") as f:
                f.seek(self.log_from[node_id - 1] if this_start else 0)
                lines = f.read().decode(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def start_node(self, node_id):
        self.start(node_id - 1)

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            if p and p.stdout:
                p.stdout.close()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def failover_once(kill, ports, name):
    """Kills the controller (kill()), then CreateTopics round the surviving nodes until
    one succeeds; seconds from the kill."""
    t0 = time.monotonic()
    kill()
    i = 0
    while time.monotonic() - t0 < TRIAL_TIMEOUT_S:
        if create_topic(ports[i % len(ports)], name) == 0:
            return time.monotonic() - t0
        i += 1
        time.sleep(0.01)
    raise RuntimeError("no CreateTopics succeeded within %d s of the kill" % TRIAL_TIMEOUT_S)


def propagation_once(ports, name):
    t0 = time.monotonic()
    deadline = t0 + TRIAL_TIMEOUT_S
    i = 0
    while create_topic(ports[i % len(ports)], name) != 0:
        i += 1
        if time.monotonic() > deadline:
            raise RuntimeError("CreateTopics %s did not succeed" % name)
    t0 = time.monotonic()
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        pending = {p for p in pending if not lists_topic(p, name)}
    if pending:
        raise RuntimeError("topic %s not on every node within %d s" % (name, TRIAL_TIMEOUT_S))
    return time.monotonic() - t0


# ---- replication (RF=3): partition-leader failover and the throughput/latency runs ----

def elect_preferred(port, topic, partitions):
    """ElectLeaders v1 (API 43), preferred election of every partition of the topic; the
    top-level error, or None if the node did not answer. Partition errors (84
    ELECTION_NOT_NEEDED among them) are not read: the caller watches Metadata."""
    body = kwire.i8(0) + kwire.array([kwire.string(topic) + kwire.array(
        [kwire.i32(p) for p in range(partitions)])]) + kwire.i32(10000)
    try:
        with kwire.Conn(port, timeout=12) as c:
            r = c.request(43, 1, body)
            r.i32()  # throttle
            return r.i16()
    except (OSError, kwire.Closed):
        return None


def produce_one(port, topic, partition, value, timeout_ms=2000):
    """One acks=all Produce v3 of one record to one node: (error code, base offset), or
    (None, None) if the node did not answer."""
    try:
        with kwire.Conn(port, timeout=timeout_ms / 1000.0 + 2) as c:
            return kwire.produce(c, topic, partition, kwire.record_batch([(None, value)]),
                                 acks=-1, timeout_ms=timeout_ms)
    except (OSError, kwire.Closed):
        return None, None


def read_at(port, topic, partition, offset):
    """The value of the record at offset, read with Fetch v4 from one node, or None."""
    try:
        with kwire.Conn(port, timeout=5) as c:
            err, _, recs = kwire.fetch(c, topic, partition, offset)
    except (OSError, kwire.Closed):
        return None
    if err != 0:
        return None
    return next((v for o, _, v in kwire.decode_batches(recs) if o == offset), None)


def replicated(node_ports, topic, partitions, preferred=False):
    """Every live node lists every partition of the topic with a leader and all three
    replicas in its ISR (and, with preferred, led by its first replica)."""
    for port in node_ports.values():
        md = topic_metadata(port, topic)
        if md is None or md[0] != 0 or len(md[1]) != partitions:
            return False
        for err, leader, replicas, isr in md[1].values():
            if err != 0 or leader < 0 or len(isr or []) != 3:
                return False
            if preferred and leader != replicas[0]:
                return False
    return True


def wait_replicated(node_ports, topic, partitions, timeout_s=120, preferred=False):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if replicated(node_ports, topic, partitions, preferred):
            return True
        time.sleep(0.1)
    return False


def settle_leaders(node_ports, topic, partitions):
    """Waits until every replica is in sync again, then asks for a preferred-leader
    election so that each trial starts from leaderships spread one per node; returns the
    leaders {partition: node} (preferred or not, if the election did not take)."""
    if not wait_replicated(node_ports, topic, partitions):
        raise RuntimeError("%s: replicas not all in sync within 120 s" % topic)
    if not replicated(node_ports, topic, partitions, preferred=True):
        elect_preferred(next(iter(node_ports.values())), topic, partitions)
        wait_replicated(node_ports, topic, partitions, timeout_s=30, preferred=True)
    md = topic_metadata(next(iter(node_ports.values())), topic)
    return {p: v[1] for p, v in md[1].items()}


def leader_failover_once(node_ports, topic, partition, victim, stop, tag):
    """One trial: an acks=all record produced to the partition's leader (victim), then
    stop() (SIGKILL or SIGTERM to the victim), then round the surviving nodes: Metadata
    for the partition's leader, and an acks=all Produce of one record to it when it is a
    survivor, every 10 ms, until one is acknowledged. Returns (seconds from stop() to that
    acknowledgement, {what failed meanwhile: count}). The record acknowledged before the
    stop must be readable from the new leader below the new one: an acknowledged record
    lost in the failover raises."""
    before = ("%s-before" % tag).encode()
    err, off_before = produce_one(node_ports[victim], topic, partition, before, timeout_ms=10000)
    if err != 0:
        raise RuntimeError("%s: acks=all produce to the leader (node %d) before the stop "
                           "failed: error %s" % (tag, victim, err))
    survivors = {n: p for n, p in node_ports.items() if n != victim}
    order = list(survivors.values())
    seen = {}
    t0 = time.monotonic()
    stop()
    i = 0
    while time.monotonic() - t0 < TRIAL_TIMEOUT_S:
        md = topic_metadata(order[i % len(order)], topic)
        i += 1
        leader = md[1].get(partition, (0, -1))[1] if md and md[0] == 0 else -1
        if leader in survivors:
            err, off = produce_one(survivors[leader], topic, partition, ("%s-after" % tag).encode())
            if err == 0:
                took = time.monotonic() - t0
                if off <= off_before or read_at(survivors[leader], topic, partition,
                                                 off_before) != before:
                    raise RuntimeError(
                        "%s: the record acknowledged at offset %d before the stop is not on "
                        "the new leader (node %d, which acknowledged the next at %d)"
                        % (tag, off_before, leader, off))
                return took, seen
            what = "produce error %s" % err if err is not None else "produce: no answer"
        else:
            what = "leader %s (stopped)" % leader if leader == victim else "no leader"
        seen[what] = seen.get(what, 0) + 1
        time.sleep(0.01)
    raise RuntimeError("%s: no acks=all produce to partition %d acknowledged within %d s of "
                       "stopping node %d; seen: %s" % (tag, partition, TRIAL_TIMEOUT_S, victim, seen))


def leader_trial(cl, topic, partitions, how, controller_of, tag):
    """One trial on cluster cl (node_ports(), kill(n), term(n), reap(n)): how ("kill":
    SIGKILL, "term": SIGTERM, a controlled shutdown) to the leader of a partition that
    the active controller does not lead. Returns (seconds, the stopped node); the node is
    down (reaped) on return."""
    ports = cl.node_ports()
    leaders = settle_leaders(ports, topic, partitions)
    ctl = controller_of()
    cands = sorted(p for p, n in leaders.items() if n != ctl and n in ports)
    if not cands:
        raise RuntimeError("%s: every partition of %s is led by the controller (node %s)"
                           % (tag, topic, ctl))
    part = cands[0]
    victim = leaders[part]
    stop = (lambda: cl.kill(victim)) if how == "kill" else (lambda: cl.term(victim))
    took, seen = leader_failover_once(ports, topic, part, victim, stop, tag)
    exited = cl.reap(victim) if how == "term" else 0.0
    print("  %s: partition %d, leader node %d (controller %s): %.0f ms%s; meanwhile %s"
          % (tag, part, victim, ctl, took * 1000, "" if how == "kill" else
             ", exited %s s later" % ("%.1f" % exited if exited is not None else "> 60 (killed)"),
             seen or "nothing failed"), flush=True)
    if how == "term" and exited is None:
        raise RuntimeError("%s: node %d did not exit within 60 s of its controlled shutdown"
                           % (tag, victim))
    return took, victim


def new_samsa_cluster(build, work, overrides=None):
    """A SamsaCluster; tried again on fresh ports when one of the free ports picked has
    been taken meanwhile (by another process, or as a client connection's own port)."""
    for attempt in range(3):
        try:
            return SamsaCluster(build, work, overrides)
        except RuntimeError as e:
            if "Address already in use" not in str(e) or attempt == 2:
                raise
            print("cluster.py: a port was taken meanwhile; starting the cluster again on "
                  "other ports", file=sys.stderr, flush=True)


class SamsaTrials:
    """Failover trials on one Samsa cluster that lives on from trial to trial, as a real
    one would: after each trial the stopped node is started again and must come back
    (rejoined()). A node that does not is a finding, recorded in restarts (None for each
    restart that went well) with its exit status and last log lines; its cluster is
    stopped and kept on disk for a look, and the trials go on on a fresh cluster."""

    def __init__(self, build, work, cluster, restarts):
        self.build, self.work, self.c, self.restarts = build, work, cluster, restarts

    def cluster(self):
        if self.c is None:
            self.c = new_samsa_cluster(self.build, self.work)
            self.c.wait_settled()
        return self.c

    def restart(self, node_id, what, rejoined):
        c = self.c
        try:
            c.start_node(node_id)
            if not rejoined(c):
                raise RuntimeError("node %d started again but did not rejoin within 60 s"
                                   % node_id)
            self.restarts.append(None)
        except RuntimeError as e:
            if "Address already in use" in str(e):  # the harness's port, not a finding
                print("cluster.py: node %d's port was taken while it was down; going on on "
                      "a fresh cluster" % node_id, file=sys.stderr, flush=True)
            else:
                self.restarts.append("after the %s, in %s: %s" % (what, c.dir, e))
                print("cluster.py: restart failed: %s" % self.restarts[-1], file=sys.stderr,
                      flush=True)
            c.stop()
            self.c = None

    def controller(self, trials):
        """Controller failover: kill -9 of the active controller."""
        fo = []
        for i in range(trials):
            c = self.cluster()
            ctl = c.wait_settled()
            alive = [p for n, (p, _) in enumerate(c.ports) if n + 1 != ctl]
            fo.append(failover_once(lambda: c.kill(ctl), alive, "fo-%d" % i))
            self.restart(ctl, "controller trial %d" % i, lambda c: c.wait_settled() is not None)
        return fo

    def leader(self, how, trials):
        """Partition-leader failover (leader_trial) on the topic rf3-fo."""
        out = []
        for t in range(trials):
            c = self.cluster()
            md = topic_metadata(c.client_ports()[0], "rf3-fo")
            if md is None or md[0] != 0:
                create_rf3(self.build, c.node_ports(), "rf3-fo", 3)
            took, victim = leader_trial(c, "rf3-fo", 3, how, c.wait_settled,
                                        "samsa-%s trial %d" % (how, t))
            out.append(took)
            self.restart(victim, "%s trial %d" % (how, t),
                         lambda c: wait_replicated(c.node_ports(), "rf3-fo", 3, timeout_s=60))
        return out

    def stop(self):
        if self.c is not None:
            self.c.keep = False
            self.c.stop()


def kafka_leader_trials(build, kc, how, trials):
    """Kafka: one cluster (a JVM start costs more than a trial); the stopped node is
    started again and back in every ISR before the next trial."""
    out = []
    for t in range(trials):
        took, victim = leader_trial(
            kc, "rf3-fo", 3, how,
            lambda: kafka_quorum_leader(build, list(kc.node_ports().values())),
            "kafka-%s trial %d" % (how, t))
        out.append(took)
        kc.start_node(victim)
    if not wait_replicated(kc.node_ports(), "rf3-fo", 3):
        raise RuntimeError("Kafka: replicas not all in sync within 120 s after the last trial")
    return out


def create_rf3(build, node_ports, topic, partitions):
    """The topic with replication factor 3 and min.insync.replicas 2 (`samsa topic
    create`), once every replica of every partition is in sync."""
    boot = ",".join("127.0.0.1:%d" % p for p in node_ports.values())
    deadline = time.monotonic() + 30
    while True:
        out = subprocess.run([samsa_cli(build), "-b", boot, "topic", "create", topic, "-p",
                              str(partitions), "-r", "3", "-c", "min.insync.replicas=2"],
                             capture_output=True, timeout=60)
        if out.returncode == 0:
            break
        # A node that has just started is registered but fenced until its first heartbeat
        # is answered: the replication factor cannot be reached for a moment.
        said = (out.stdout + out.stderr).decode()
        if "replication factor" not in said or time.monotonic() > deadline:
            raise RuntimeError("topic create %s failed: %s" % (topic, said))
        time.sleep(0.2)
    if not wait_replicated(node_ports, topic, partitions):
        raise RuntimeError("%s: replicas not all in sync within 120 s of its creation" % topic)


def rf3_runs(build, node_ports, tag, res):
    """The replication-factor-3 throughput and fixed-rate runs against a cluster."""
    boot = ",".join("127.0.0.1:%d" % p for p in node_ports.values())
    create_rf3(build, node_ports, "rf3-thr", 12)
    res[tag + ".thr"] = samsa_bench(build, boot, tag + ".thr", THROUGHPUT_ARGS + IDEMPOTENT +
                                    ["-n", str(RF3_RECORDS), "-t", "rf3-thr"])
    create_rf3(build, node_ports, "rf3-e2e", 12)
    res[tag + ".e2e"] = samsa_bench(build, boot, tag + ".e2e", E2E_ARGS + ["-t", "rf3-e2e"])


def samsa_cli(build):
    samsa = os.path.join(build, "tools", "samsa")
    if not os.path.exists(samsa):
        samsa = subprocess.run(["find", build, "-name", "samsa", "-type", "f", "-perm", "-u+x"],
                               capture_output=True).stdout.decode().split()[0]
    return samsa


def samsa_bench(build, bootstrap, tag, args):
    """One `samsa bench` run (it verifies every record read back); its closing line's
    pairs. A failed run raises."""
    out = subprocess.run([samsa_cli(build), "bench", "-b", bootstrap] + args,
                         capture_output=True, timeout=600)
    text = out.stdout.decode() + out.stderr.decode()
    m = re.search(r"^samsa bench: (.*)$", text, re.M)
    if out.returncode != 0 or not m:
        raise RuntimeError("samsa bench (%s) failed: %s" % (tag, text[-2000:]))
    r = dict(kv.split("=", 1) for kv in m.group(1).split())
    print("  %s: produce %s MB/s, consume %s MB/s, e2e p50/p99 %s/%s ms" % (
        tag, r.get("produce_MB_s"), r.get("consume_MB_s"), r.get("e2e_p50_ms"),
        r.get("e2e_p99_ms")), flush=True)
    return r


def samsa_single(build, work):
    """One Samsa node; returns (process, port)."""
    d = tempfile.mkdtemp(prefix="single-", dir=work)
    p = subprocess.Popen([os.path.join(build, "samsa-server"), "-c",
                          os.path.join(ROOT, "config", "server.properties"),
                          "--override", "log.dirs=%s" % d,
                          "--override", "listeners=PLAINTEXT://127.0.0.1:0",
                          "--override", "advertised.listeners=PLAINTEXT://127.0.0.1:0",
                          "--override", "log.level=WARN"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    m = re.search(r"listening on port (\d+)", line)
    if not m:
        p.kill()
        raise RuntimeError("single node did not start")
    return p, int(m.group(1))


def kafka_cluster(work):
    d = tempfile.mkdtemp(prefix="kafka-", dir=work)
    out = subprocess.run([KAFKA_SH, "start", d, "--nodes", "3"], capture_output=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError("kafka.sh start failed: %s" % out.stderr.decode()[-1000:])
    ports = [int(a.rsplit(":", 1)[1]) for a in open(os.path.join(d, "bootstrap")).read().strip().split(",")]
    pids = {}
    for line in open(os.path.join(d, "pids")):
        n, pid = line.split()[:2]
        pids[int(n)] = int(pid)
    return d, ports, pids


class KafkaCluster:
    """A Kafka 4.4 three-node cluster from tests/reference/kafka.sh whose nodes can be
    stopped and started again: each JVM's command line and directory are read from /proc
    while it runs, and a node is started again with them (detached, as kafka.sh starts
    it, its pid written back to DIR/pids so that `kafka.sh stop` stops it)."""

    def __init__(self, work):
        self.dir, self.ports, self.pids = kafka_cluster(work)
        self.cmd = {}
        self.children = {}
        for n, pid in self.pids.items():
            argv = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")[:-1]
            self.cmd[n] = (argv, os.readlink("/proc/%d/cwd" % pid))

    def alive(self, n):
        if n in self.children:
            return self.children[n].poll() is None
        try:  # not our child: gone, or a zombie its new parent has yet to reap
            with open("/proc/%d/stat" % self.pids[n]) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def node_ports(self):
        return {n: self.ports[n - 1] for n in self.pids if self.alive(n)}

    def kill(self, n):
        os.kill(self.pids[n], signal.SIGKILL)

    def term(self, n):
        os.kill(self.pids[n], signal.SIGTERM)

    def reap(self, n, timeout_s=60):
        t0 = time.monotonic()
        while self.alive(n):
            if time.monotonic() - t0 > timeout_s:
                self.kill(n)
                while self.alive(n):
                    time.sleep(0.05)
                return None
            time.sleep(0.05)
        return time.monotonic() - t0

    def start_node(self, n):
        self.reap(n)
        argv, cwd = self.cmd[n]
        with open(os.path.join(cwd, "stdout.log"), "ab") as log:
            p = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        self.children[n] = p
        self.pids[n] = p.pid
        with open(os.path.join(self.dir, "pids"), "w") as f:
            for k in sorted(self.pids):
                f.write("%d %d\n" % (k, self.pids[k]))

    def stop(self):
        subprocess.run([KAFKA_SH, "stop", self.dir, "--timeout", "10"], capture_output=True)
        for p in self.children.values():
            p.poll()


def kafka_quorum_leader(build, ports):
    """The KRaft leader, from `samsa cluster status --json` (DescribeQuorum, which a Kafka
    broker forwards to its controller)."""
    import json
    samsa = samsa_cli(build)
    for p in ports:
        out = subprocess.run([samsa, "-b", "127.0.0.1:%d" % p, "cluster", "status", "--json"],
                             capture_output=True, timeout=60)
        try:
            q = json.loads(out.stdout)["quorum"]
            if q.get("available"):
                return q["leader_id"]
        except (ValueError, KeyError):
            continue
    return None


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def replication_part(what, fn, res, key, notes, logs=None):
    """Runs one replication measurement; a failure is noted (with the nodes' last log
    lines when logs() gives them) instead of stopping the section, and fails it at the
    end."""
    try:
        res[key] = fn()
    except Exception as e:  # noqa: BLE001 (reported, with the logs, below the table)
        tail = logs() if logs else ""
        notes.append("FAILED, %s: %s%s" % (what, e, ("\n\n```\n%s\n```" % tail) if tail else ""))
        print("cluster.py: FAILED, %s: %s\n%s" % (what, e, tail), file=sys.stderr, flush=True)
        res.setdefault("failed", []).append(key)


def main():
    build, work, out_md = sys.argv[1:4]
    # SIGTERM unwinds like ^C, so that the finally clauses stop the nodes started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t_start, load_start = time.monotonic(), loadavg()
    rows = []
    res = {}
    notes = []
    # ---- Samsa ----
    # One cluster for the measurements and then the failover trials, which start each
    # stopped node again (SamsaTrials: a fresh cluster only after one fails to come back).

    def samsa_logs(cl):
        return lambda: "\n".join("-- node%d.log (last lines):\n%s" % (n, cl.log_tail(n))
                                  for n in (1, 2, 3))

    restarts = []
    res["samsa.restarts"] = restarts
    trials = SamsaTrials(build, work, new_samsa_cluster(build, work), restarts)
    try:
        c = trials.cluster()
        prop = [propagation_once(c.client_ports(), "prop-%d" % i) for i in range(PROPAGATION_TRIALS)]
        res["samsa.prop"] = prop
        res["samsa.three"] = samsa_bench(build, c.bootstrap(), "three",
                                         THROUGHPUT_ARGS + ["-n", str(RECORDS)])
        if WANT_REPLICATION:
            replication_part("Samsa RF=3 throughput and fixed rate",
                             lambda: rf3_runs(build, c.node_ports(), "samsa.rf3", res),
                             res, "samsa.rf3.ok", notes, samsa_logs(c))
        res["samsa.fo"] = trials.controller(FAILOVER_TRIALS)
        if WANT_REPLICATION:
            for how in ("kill", "term"):
                replication_part("Samsa partition-leader failover (%s)" % how,
                                 lambda: trials.leader(how, PLEADER_TRIALS),
                                 res, "samsa." + how, notes,
                                 lambda: samsa_logs(trials.c)() if trials.c else "")
    finally:
        trials.stop()
    if WANT_REPLICATION:
        c = new_samsa_cluster(build, work, {"samsa.replica.fetch.sync": "false"})
        try:
            c.wait_settled()
            replication_part("Samsa RF=3 throughput and fixed rate, samsa.replica.fetch.sync=false",
                             lambda: rf3_runs(build, c.node_ports(), "samsa.nosync", res),
                             res, "samsa.nosync.ok", notes, samsa_logs(c))
        finally:
            c.stop()
    p, port = samsa_single(build, work)
    try:
        boot = "127.0.0.1:%d" % port
        res["samsa.one"] = samsa_bench(build, boot, "one", THROUGHPUT_ARGS + ["-n", str(RECORDS)])
        if WANT_REPLICATION:
            res["samsa.one.idem"] = samsa_bench(build, boot, "one.idem", THROUGHPUT_ARGS +
                                                IDEMPOTENT + ["-n", str(RF3_RECORDS)])
            res["samsa.one.e2e"] = samsa_bench(build, boot, "one.e2e", E2E_ARGS)
    finally:
        p.kill()
        p.wait()
    # ---- Kafka ----
    kafka_note = ""
    if WANT_KAFKA and os.path.exists(KAFKA_SH):
        try:
            kfo, kprop = [], []
            for i in range(KAFKA_FAILOVER_TRIALS):
                d, ports, pids = kafka_cluster(work)
                try:
                    if i == 0:
                        kprop = [propagation_once(ports, "kprop-%d" % k)
                                 for k in range(KAFKA_PROPAGATION_TRIALS)]
                    leader = kafka_quorum_leader(build, ports)
                    if leader is None:
                        raise RuntimeError("no KRaft leader found")
                    alive = [pt for n, pt in enumerate(ports) if n + 1 != leader]
                    kfo.append(failover_once(lambda: os.kill(pids[leader], signal.SIGKILL),
                                             alive, "kfo-%d" % i))
                finally:
                    subprocess.run([KAFKA_SH, "stop", d, "--timeout", "10"], capture_output=True)
            res["kafka.fo"], res["kafka.prop"] = kfo, kprop
            if WANT_REPLICATION:
                kc = KafkaCluster(work)
                try:
                    rf3_runs(build, kc.node_ports(), "kafka.rf3", res)
                    create_rf3(build, kc.node_ports(), "rf3-fo", 3)
                    for how in ("kill", "term"):
                        res["kafka." + how] = kafka_leader_trials(build, kc, how,
                                                                  KAFKA_PLEADER_TRIALS)
                finally:
                    kc.stop()
        except Exception as e:  # Kafka is a reference: its failure is noted, not fatal
            kafka_note = "Kafka could not be measured: %s" % e
    else:
        kafka_note = "Kafka not measured (KAFKA=0 or tests/reference/kafka.sh missing)"

    def ms(v, p):
        return "%.0f" % (pct(v, p) * 1000) if v else "-"

    def cell(key):
        v = res.get(key)
        return "p50 %s / p99 %s ms (%d trials)" % (ms(v, 50), ms(v, 99), len(v)) if v else "-"

    three, one = res["samsa.three"], res["samsa.one"]
    loss = 1 - float(three["produce_MB_s"]) / float(one["produce_MB_s"])
    closs = 1 - float(three["consume_MB_s"]) / float(one["consume_MB_s"])
    rows.append("| cluster (3 combined broker+controller nodes on loopback, default timeouts) | Samsa | Kafka 4.4 |")
    rows.append("| --- | --- | --- |")
    rows.append("| controller failover: kill -9 of the active controller → first successful CreateTopics (goal p99 ≤ 3 s) | %s | %s |"
                % (cell("samsa.fo"), cell("kafka.fo")))
    rows.append("| the killed or stopped node started again after each failover trial → back (controller trials: all three list each other and agree on the controller; partition-leader trials: back in every ISR) | %s | %s |"
                % (restarted(res.get("samsa.restarts")),
                   "every time (%d restarts, partition-leader trials)" % (len(res.get("kafka.kill", [])) + len(res.get("kafka.term", [])))
                   if res.get("kafka.term") else "-"))
    rows.append("| metadata propagation: CreateTopics answered → listed by all three (goal p99 ≤ 100 ms) | %s | %s |"
                % (cell("samsa.prop"), cell("kafka.prop")))
    rows.append("| %d × 1 KiB, acks=all, 12 partitions, replication 1: three nodes / one node, produce (goal: lose ≤ 15%%) | %s / %s MB/s (%+.0f%%) | - |"
                % (RECORDS, three["produce_MB_s"], one["produce_MB_s"], -loss * 100))
    rows.append("| same, consume | %s / %s MB/s (%+.0f%%) | - |"
                % (three["consume_MB_s"], one["consume_MB_s"], -closs * 100))
    if WANT_REPLICATION:
        rows.append("")
        rows += replication_table(res)
    text = "\n".join(rows) + "\n"
    if kafka_note:
        text += "\n" + kafka_note + "\n"
    text += "\nCluster section: load average (1/5/15 min) %s at its start, %s at its end; %.1f min.\n" % (
        load_start, loadavg(), (time.monotonic() - t_start) / 60)
    for n in notes:
        text += "\n" + n + "\n"
    bad = [x for x in res.get("samsa.restarts", []) if x]
    if bad:
        text += "\nSamsa restarts that failed after a failover trial:\n\n" + "\n".join(
            "- " + x.replace("\n", " ") for x in bad) + "\n"
        res.setdefault("failed", []).append("samsa.restarts")
    open(out_md, "w").write(text)
    print(text)
    if res.get("failed"):
        sys.exit(1)


def restarted(r):
    if not r:
        return "-"
    bad = [x for x in r if x]
    return "every time (%d restarts)" % len(r) if not bad else \
        "**%d of %d restarts failed** (listed below)" % (len(bad), len(r))


def replication_table(res):
    """The replication-factor-3 rows: Samsa with followers syncing, without, Kafka; ratios
    against one Samsa node and against Kafka, from the same run."""
    def f(key, field):
        v = res.get(key, {}).get(field)
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    def ratio(a, b, fmt="%.2f"):
        return fmt % (a / b) if a is not None and b else "-"

    one_mb, kafka_mb = f("samsa.one.idem", "produce_MB_s"), f("kafka.rf3.thr", "produce_MB_s")
    one_c, kafka_c = f("samsa.one.idem", "consume_MB_s"), f("kafka.rf3.thr", "consume_MB_s")

    def thr(key, field, one, kafka):
        v = f(key, field)
        if v is None:
            return "FAILED" if key.rsplit(".", 1)[0] + ".ok" in res.get("failed", []) else "-"
        out = "%.1f MB/s" % v
        if not key.startswith("kafka"):
            out += ": %s × one node, %s × Kafka" % (ratio(v, one), ratio(v, kafka))
        return out

    def lat(key):
        if f(key, "e2e_p99_ms") is None:
            return "-"
        return "p50 %s / p99 %s / p99.9 %s ms (at %.1f k records/s)" % (
            res[key]["e2e_p50_ms"], res[key]["e2e_p99_ms"], res[key]["e2e_p999_ms"],
            f(key, "produce_records_s") / 1000)

    def lat_ratio(key):
        v, k = f(key, "e2e_p99_ms"), f("kafka.rf3.e2e", "e2e_p99_ms")
        return "; p99 ÷ Kafka's %s" % ratio(v, k) if v is not None and k else ""

    def fo(key):
        v = res.get(key)
        if not v:
            return "FAILED" if key in res.get("failed", []) else "-"
        return "p50 %.0f / p99 %.0f ms (%d trials)" % (pct(v, 50) * 1000, pct(v, 99) * 1000, len(v))

    return [
        "| replication factor 3, min.insync.replicas 2, acks=all, idempotent producer (3 combined nodes on loopback, default timeouts) | Samsa, followers fdatasync before acknowledging (samsa.replica.fetch.sync=true, default) | Samsa, followers acknowledge from memory (samsa.replica.fetch.sync=false, Kafka's mode) | Kafka 4.4 (followers acknowledge from memory) | reference, same run |",
        "| --- | --- | --- | --- | --- |",
        "| %d × 1 KiB, 12 partitions: produce (goal ≥ 0.33 × one node, and ahead of Kafka) | %s | %s | %s | one Samsa node, replication 1, same producer: %s MB/s |"
        % (RF3_RECORDS, thr("samsa.rf3.thr", "produce_MB_s", one_mb, kafka_mb),
           thr("samsa.nosync.thr", "produce_MB_s", one_mb, kafka_mb),
           thr("kafka.rf3.thr", "produce_MB_s", one_mb, kafka_mb),
           "%.1f" % one_mb if one_mb else "-"),
        "| same, consume | %s | %s | %s | one node: %s MB/s |"
        % (thr("samsa.rf3.thr", "consume_MB_s", one_c, kafka_c),
           thr("samsa.nosync.thr", "consume_MB_s", one_c, kafka_c),
           thr("kafka.rf3.thr", "consume_MB_s", one_c, kafka_c),
           "%.1f" % one_c if one_c else "-"),
        "| fixed %d records/s, 100 B, linger 0, 12 partitions, concurrent consume: end-to-end latency (produce call → consumer) | %s%s | %s%s | %s | one node, replication 1: %s |"
        % (E2E_RATE, lat("samsa.rf3.e2e"), lat_ratio("samsa.rf3.e2e"), lat("samsa.nosync.e2e"),
           lat_ratio("samsa.nosync.e2e"), lat("kafka.rf3.e2e"), lat("samsa.one.e2e")),
        "| kill -9 of a partition's leader (not the active controller) → first acks=all produce acknowledged by the new leader (goal p99 ≤ 3 s) | %s | not measured | %s | broker.session.timeout.ms 9000 in both |"
        % (fo("samsa.kill"), fo("kafka.kill")),
        "| SIGTERM of a partition's leader (controlled shutdown) → the same (goal p99 ≤ 0.5 s) | %s | not measured | %s | |"
        % (fo("samsa.term"), fo("kafka.term")),
    ]


if __name__ == "__main__":
    main()
