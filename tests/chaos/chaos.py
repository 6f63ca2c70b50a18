"""Chaos against a real three-node cluster: faults while idempotent acks=all producers
and a consumer group run, then a check over the whole history.

    python3 tests/chaos/chaos.py --seed 7 --duration 60   (make chaos RUNS=N SEED=S)
    python3 tests/chaos/chaos.py --netns --seed 7         (make chaos CHAOS_NETNS=1)
    python3 tests/chaos/chaos.py --target kafka --seed 7  (make chaos CHAOS_TARGET=kafka)
    python3 tests/chaos/chaos.py --java-producer --seed 7 (make chaos CHAOS_JAVA=1)
    python3 tests/chaos/chaos.py --txn --seed 7           (make chaos CHAOS_TXN=1)

Each run starts three combined broker+controller nodes (short election and session
timeouts, replica.lag.time.max.ms 5 s), creates a topic with replication.factor=3 and
min.insync.replicas=2, and runs, for --duration seconds:
  - a producer (librdkafka, enable.idempotence, acks=all) sending numbered records
    (r%08d); with --java-producer also, or with --java-producer only instead, one
    written with the Apache Kafka Java client 4.4 (ChaosProducer.java, values j%08d,
    compiled with javac against kafka-clients from the local Maven repository that
    tests/integration/java/deps.sh fills), which reports every acknowledgement (value,
    partition, offset) and every error as a JSON line on its stdout, read into the same
    history by a thread;
  - a consumer group member reading them and committing after each batch it processed;
  - with --txn, a transactional producer (librdkafka) on a topic of its own (chaos-txn,
    the same layout), committing transactions of 12 records (t%08d), two to each
    partition, one after another, every seventh aborted on purpose once its records are
    acknowledged; a transaction an abortable error ends is aborted, and
    one whose outcome the client cannot know (a fatal error, a commit that keeps
    failing) is settled by a new instance with the same transactional.id; with
    --java-producer also (or with only, instead) one written with the Java client 4.4
    (ChaosTxnProducer.java, transaction version 2, values u%08d), which reports each
    transaction's outcome as a JSON line;
  - the nemesis, which every few seconds makes one fault, chosen by the seed, and undoes
    it before the next:
      kill    kill -9, and a restart 1-4 s later;
      pause   SIGSTOP for longer than the broker session, then SIGCONT;
      term    SIGTERM (controlled shutdown), and a restart 1-4 s later;
      torn    (Samsa only) kill -9, then a torn tail, as a crash in the middle of a
              write leaves one: in one or more of the node's chaos partitions (the seed
              picks), the last segment is cut inside its last batch and/or a torn
              batch, random bytes or zeros (a file grown before its data reached the
              disk) are appended to it; what was damaged is logged; a restart 1-4 s
              later. The node must truncate exactly that tail (the checker looks for
              the line its recovery logs for it) and rejoin;
    and with --netns (each node in its own network namespace, see netns.py; the clients
    stay in the root namespace and reach the nodes over the bridge), also, each held for
    longer than the broker session and then healed:
      isolate      one node cut off entirely: its veth down, for clients and nodes alike;
      leader-cut   the node leading a partition (chosen by the seed) cut off from the
                   two other nodes but not from the clients: nftables drops what the
                   bridge forwards between their addresses;
      bridge       two nodes cannot reach each other, both still reach the third (the
                   one the seed chose) and the clients.
Then everything heals, the producers flush, and a fresh consumer reads every partition
from the start. The checker asserts, over the whole history:
  - every acknowledged record is present exactly once, at the offset it was
    acknowledged with (no offset with two values, nothing acknowledged lost);
  - per partition and producer, acknowledged records are in the order they were sent;
  - no record appears that was never sent, and none twice;
  - the group never committed an offset beyond what it had consumed;
  - every torn tail was truncated by the node's recovery where the intact data ends;
  - with --txn, read read_committed after the run: every committed transaction's records
    exactly once and in order, no record of an aborted one, each transaction whose
    outcome is unknown all there or not at all, and no transaction left open (every
    partition's last stable offset reaches its high watermark within 90 s).
The torn fault cuts only what a crash can tear: bytes of the last segment's last batch
(batches found from their headers: baseOffset int64, batchLength int32 at byte 8, a
batch spans 12 + batchLength bytes), never deeper than that batch's start, and only when
that batch lies at or past the recovery point in the node's recovery-point-offset-
checkpoint (below it the node recorded the batch as synced, and recovery rightly keeps
damage there instead of cutting it; the fault then only appends). Past that point the
node may still have synced the batch (an acks=all leader syncs before it answers), and
then a real crash could not tear it: from outside this cannot be known. Such a cut takes
an acknowledged batch from one replica, which a correct cluster survives because every
acknowledged batch is on every in-sync replica's disk; not when the torn node was the
partition's only in-sync replica left (after another fault): a lost acknowledged record
inside a batch the fault cut is marked so in the report, to be judged before it is
blamed on Samsa. For the same reason whole trailing batches are never cut (that would
be lost unsynced writes, which only the node could tell apart from synced ones).
--target kafka runs the same against Apache Kafka 4.4 (tests/reference/kafka.sh: three
KRaft nodes on loopback, with the same election and session timeouts) with the process
faults only, so that a violation found against Samsa can be told apart from a harness
bug: Kafka's acks=all with RF=3 and min.insync.replicas=2 must pass.
The seed decides the faults and their timing (the clients' and servers' own timing is
not under its control, so a seed reproduces the schedule, not every interleaving).
--faults a,b,... narrows the choice (the seed indexes the list, in the order given:
--faults kill,pause,term[,isolate,leader-cut,bridge] replays the schedules seeds made
before torn existed).
Exit status 0 when every check holds; on a violation it prints the seed, the fault
schedule and what broke. CHAOS_CONSUMER_DEBUG=cgrp (librdkafka debug contexts) makes the
group member log to stderr.
"""
import argparse
import atexit
import contextlib
import ctypes
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

import kwire  # noqa: E402
import netns  # noqa: E402
from kafka_ref import KafkaRef, kafka_metadata  # noqa: E402
from test_cluster_quorum import (ELECTION_TIMEOUT_MS, SESSION_TIMEOUT_MS,  # noqa: E402
                                 agreed_controller, leaders_on, running, three_voters)

TOPIC = "chaos"
PARTITIONS = 6
PROCESS_FAULTS = ["kill", "pause", "term"]
DISK_FAULTS = ["torn"]  # Samsa only: the harness knows its data layout
NETWORK_FAULTS = ["isolate", "leader-cut", "bridge"]
PRODUCER_NAMES = {b"r": "the librdkafka producer", b"j": "the Java producer"}
# A follower that fetches nothing for this long leaves the ISR (Kafka's default is 30 s):
# shorter than the longer faults, so that ISR shrinks and expands happen during runs.
REPLICA_LAG_TIME_MAX_MS = 5000


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}        # value -> (partition, offset)
        self.sent = set()
        self.errors = []       # delivery errors (allowed: not acknowledged)
        self.consumed = []     # (partition, offset, value) by the group member
        self.commits = []      # (partition, committed offset)
        self.faults = []       # (seconds since the start, fault, what it hit)
        self.torn = []         # Tear()s: the tails damaged, and what recovery must log
        self.txns = []         # --txn: [values, outcome] per transaction, in order
        self.txn_errors = []   # the transactional producer's errors (allowed)
        self.txn_broken = None  # why the transactional producer stopped early
        self.txn_slow = []     # seconds of each transaction that took over 1 s (faults felt)


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
    del p  # destroyed here: no client may outlive the namespaces


TXN_TOPIC = "chaos-txn"
TXN_ID = "chaos-txn-producer"
TXN_RECORDS = 12  # per transaction, over every partition
TXN_ABORT_EVERY = 7  # every seventh transaction is aborted on purpose (ABORT markers too)


def txn_producer_loop(boot, hist, stop):
    """--txn: a librdkafka transactional producer writing TXN_RECORDS records (t%08d) per
    transaction to TXN_TOPIC, two to each partition, and committing (every
    TXN_ABORT_EVERY-th aborting instead). Each transaction's outcome is recorded:
    committed (commit_transaction returned), aborted (abort_transaction returned: on
    purpose, or after an abortable error), or unknown (a fatal error or
    a commit that kept failing: the producer is then replaced by a new instance with the
    same transactional.id, whose init_transactions completes or aborts what the old one
    left). So nothing is left open when the loop ends."""
    try:
        p, i = txn_producer(boot, hist), 0
        while not stop.is_set():
            values = [b"t%08d" % (i + k) for k in range(TXN_RECORDS)]
            i += TXN_RECORDS
            txn = [values, "unknown"]
            with hist.lock:
                hist.txns.append(txn)
            t0 = time.monotonic()
            txn[1] = txn_run(p, values, hist, abort=(i // TXN_RECORDS) % TXN_ABORT_EVERY == 0)
            if time.monotonic() - t0 > 1:
                with hist.lock:
                    hist.txn_slow.append(time.monotonic() - t0)
            if txn[1] == "unknown":
                del p  # a new instance fences it and settles its transaction
                p = txn_producer(boot, hist)
        del p  # destroyed here: no client may outlive the namespaces
    except Exception as e:  # a finding, reported by check_txns
        with hist.lock:
            hist.txn_broken = repr(e)


def txn_producer(boot, hist):
    """A transactional producer with TXN_ID, initialized (which fences any other with the
    same id and settles its transaction); tries for 150 s."""
    deadline = time.monotonic() + 150
    while True:
        p = Producer({"bootstrap.servers": boot, "transactional.id": TXN_ID, "acks": "all",
                      "linger.ms": 2, "transaction.timeout.ms": 60000,
                      "message.timeout.ms": 60000})
        try:
            p.init_transactions(60)
            return p
        except KafkaException as e:
            txn_error(hist, "init_transactions", e)
            del p
            if time.monotonic() > deadline:
                raise RuntimeError("init_transactions failed for 150 s: %s" % e)
            time.sleep(0.5)


def txn_run(p, values, hist, abort=False):
    """One transaction of values, aborted once its records are acknowledged when abort:
    "committed", "aborted" or "unknown"."""
    try:
        p.begin_transaction()
        for k, v in enumerate(values):
            p.produce(TXN_TOPIC, value=v, partition=k % PARTITIONS)
        if abort:
            p.flush(30)  # written first, so that the ABORT markers have records to end
            p.abort_transaction(60)
            return "aborted"
        for _ in range(5):  # a commit that failed retriably may be called again
            try:
                p.commit_transaction(60)
                return "committed"
            except KafkaException as e:
                if not e.args[0].retriable() or e.args[0].txn_requires_abort():
                    raise
                txn_error(hist, "commit_transaction (retried)", e)
        return "unknown"
    except KafkaException as e:
        txn_error(hist, "transaction", e)
        if not e.args[0].txn_requires_abort():
            return "unknown"
        try:
            p.abort_transaction(60)
            return "aborted"
        except KafkaException as e2:
            txn_error(hist, "abort_transaction", e2)
            return "unknown"


def txn_error(hist, what, e):
    with hist.lock:
        hist.txn_errors.append("%s: %s" % (what, e))


KAFKA_CLIENTS_VERSION = "4.4.0"
JAVA_DEPS = os.path.join(HERE, "..", "integration", "java", "deps.sh")
# Under the local Maven repository, as deps.sh fills it (kafka-clients 4.4 with the slf4j
# its pom.xml names; no compression library: the producer does not compress).
JAVA_JARS = ["org/apache/kafka/kafka-clients/{v}/kafka-clients-{v}.jar".format(
                 v=KAFKA_CLIENTS_VERSION),
             "org/slf4j/slf4j-api/2.0.17/slf4j-api-2.0.17.jar",
             "org/slf4j/slf4j-simple/2.0.17/slf4j-simple-2.0.17.jar"]
_java_classes = []  # (the directory the Chaos*Producer classes were compiled into, jars), once


def java_producer_command(main_class="ChaosProducer"):
    """The command line that runs ChaosProducer.java (or ChaosTxnProducer.java): fills
    ~/.m2 with deps.sh (a file check once done), compiles both with javac into a temp dir
    (once per process, removed at exit). Raises when Java, Maven or the jars are
    missing."""
    if not _java_classes:
        r = subprocess.run([JAVA_DEPS], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=1800)
        if r.returncode != 0:
            raise RuntimeError("tests/integration/java/deps.sh failed:\n%s" %
                               r.stdout.decode(errors="replace")[-3000:])
        m2 = os.environ.get("MAVEN_REPO") or os.path.expanduser("~/.m2/repository")
        jars = [os.path.join(m2, j) for j in JAVA_JARS]
        missing = [j for j in jars if not os.path.exists(j)]
        if missing:
            raise RuntimeError("not in the local Maven repository: %s" % missing)
        out = tempfile.mkdtemp(prefix="samsa-chaos-java-")
        atexit.register(shutil.rmtree, out, True)
        r = subprocess.run(["javac", "-Xlint:all", "-d", out, "-cp", ":".join(jars),
                            os.path.join(HERE, "ChaosProducer.java"),
                            os.path.join(HERE, "ChaosTxnProducer.java")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("javac failed:\n%s" % r.stdout.decode(errors="replace"))
        _java_classes.append((out, jars))
    out, jars = _java_classes[0]
    return ["java", "-Xmx256m", "-XX:+UseSerialGC",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
            "-cp", ":".join(jars + [out]), main_class]


def run_java(main_class, args, stop, log_path, on_line):
    """Runs one of the Java producers (main_class, with args) until stop, when it is told
    "stop" on its stdin; calls on_line with each JSON object of its stdout (or the line
    itself, when it is not JSON) and returns its exit status (None: killed after its
    stdout closed). Its log (the Java client's warnings) goes to log_path."""
    with open(log_path, "ab") as err:
        proc = subprocess.Popen(java_producer_command(main_class) + args, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, preexec_fn=die_with_parent)

    def stopper():
        stop.wait()
        try:
            proc.stdin.write(b"stop\n")
            proc.stdin.close()
        except OSError:
            pass  # it is gone already
    threading.Thread(target=stopper, daemon=True).start()
    rc = None
    try:
        for line in proc.stdout:
            try:
                on_line(json.loads(line))
            except ValueError:
                on_line(line)
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass  # its stdout closed, yet it runs on: killed below
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    return rc


def java_producer_loop(boot, hist, stop, failures, log_path):
    """Runs ChaosProducer (values j%08d) until stop, reading its acknowledgements and
    errors from its stdout into hist as producer_loop does."""
    summary = []

    def on_line(d):
        with hist.lock:
            if not isinstance(d, dict):
                failures.append("the Java producer wrote %r" % d[:200])
            elif "ack" in d:
                hist.acked[d["ack"].encode()] = (d["p"], d["o"])
            elif "err" in d:
                hist.errors.append("java: %s: %s" % (d["err"], d["e"]))
            elif "sent" in d:
                summary.append(d)
    rc = run_java("ChaosProducer", [boot, TOPIC, "j"], stop, log_path, on_line)
    with hist.lock:
        if not summary:
            # What it sent is unknown: its records cannot be checked.
            failures.append("the Java producer exited (rc=%s) without its summary; see %s"
                            % (rc, log_path))
            return
        hist.sent.update(b"j%08d" % i for i in range(summary[-1]["sent"]))
        if summary[-1]["unfinished"]:
            hist.errors.append("java: %d records never answered" % summary[-1]["unfinished"])


JAVA_TXN_ID = "chaos-java-txn-producer"


def java_txn_producer_loop(boot, hist, stop, failures, log_path):
    """--txn with a Java producer: runs ChaosTxnProducer (values u%08d, transactions of
    TXN_RECORDS records on TXN_TOPIC, transaction version 2) until stop, reading each
    transaction's outcome from its stdout into hist.txns as txn_producer_loop records
    its own."""
    done = []

    def on_line(d):
        with hist.lock:
            if not isinstance(d, dict):
                failures.append("the Java transactional producer wrote %r" % d[:200])
            elif "txn" in d:
                first = int(d["txn"][1:])
                hist.txns.append([[b"u%08d" % (first + k) for k in range(d["n"])],
                                  d["outcome"]])
            elif "err" in d:
                hist.txn_errors.append("java: %s" % d["err"])
            elif "done" in d:
                done.append(d)
    rc = run_java("ChaosTxnProducer",
                  [boot, TXN_TOPIC, "u", JAVA_TXN_ID, str(TXN_RECORDS), str(PARTITIONS),
                   str(TXN_ABORT_EVERY)], stop, log_path, on_line)
    if not done:
        with hist.lock:
            # Its last transaction may be open or unreported: what it wrote cannot be judged.
            failures.append("the Java transactional producer exited (rc=%s) before it was "
                            "done; see %s" % (rc, log_path))


def consumer_loop(boot, hist, stop):
    c = Consumer({"bootstrap.servers": boot, "group.id": "chaos-group",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10000,
                  **({"debug": os.environ["CHAOS_CONSUMER_DEBUG"]}
                     if os.environ.get("CHAOS_CONSUMER_DEBUG") else {})})
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


def nemesis(cl, rng, stop, quiet, done, log, failures, hist, faults):
    try:
        hurt(cl, rng, stop, log, hist, faults)
    except Exception as e:  # a node that does not come back is a finding, not a hang
        failures.append("the nemesis failed: %r" % e)
        stop.set()
    quiet.set()
    # The servers this thread started die with it (conftest starts them with
    # PR_SET_PDEATHSIG, which follows the starting thread): it lives to the end.
    done.wait()


def hurt(cl, rng, stop, log, hist, faults):
    session_s = SESSION_TIMEOUT_MS / 1000.0
    while not stop.is_set():
        if stop.wait(rng.uniform(2, 5)):
            return
        n = rng.choice(cl.nodes)
        action = rng.choice(faults)
        if action == "leader-cut":
            p = rng.randrange(PARTITIONS)
            leader = cl.leader_of(p)
            n = next((m for m in cl.nodes if m.node_id == leader), n)
            what = "node %d (leader of partition %d: %s) from nodes %s" % (
                n.node_id, p, leader, [m.node_id for m in cl.nodes if m is not n])
        elif action == "bridge":
            ends = [m.node_id for m in cl.nodes if m is not n]
            what = "nodes %d and %d apart, both reach node %d" % (ends[0], ends[1],
                                                                 n.node_id)
        else:
            what = "node %d" % n.node_id
        with hist.lock:
            hist.faults.append((log.elapsed(), action, what))
        log("%s %s" % (action, what))
        if action == "pause":
            n.proc.send_signal(signal.SIGSTOP)
            stop.wait(session_s + rng.uniform(0.5, 2))
            n.proc.send_signal(signal.SIGCONT)
        elif action in ("kill", "term", "torn"):
            tears = []
            if action == "term":
                t = time.monotonic()
                n.stop()
                log("node %d exited %.1f s after SIGTERM" % (n.node_id,
                                                             time.monotonic() - t))
            else:
                n.kill()
                if action == "torn":
                    # One draw of the schedule's generator, whatever the files hold.
                    tears = tear_tails(n, random.Random(rng.random()), log)
            stop.wait(rng.uniform(1, 4))
            for tear in tears:
                tear.stderr_from = os.path.getsize(n.stderr_path)
            with hist.lock:
                hist.torn.extend(tears)
            t = time.monotonic()
            n.start(n.port)
            log("node %d started again in %.1f s" % (n.node_id, time.monotonic() - t))
        else:
            if action == "isolate":
                cl.net.cut(n.node_id)
            elif action == "leader-cut":
                cl.net.block([(n.node_id, m.node_id) for m in cl.nodes if m is not n])
            else:
                cl.net.block([tuple(ends)])
            try:
                stop.wait(session_s + rng.uniform(0.5, 4))
            finally:
                cl.net.heal_all()
        log("healed")
        # Let it rejoin before the next fault, so that min.insync.replicas=2 holds.
        stop.wait(3)


# ---- torn tails (the "torn" fault) ----
# A Kafka record batch (v2): baseOffset int64, batchLength int32 (the bytes after these
# 12), partitionLeaderEpoch int32, magic int8, crc uint32 (CRC32C of attributes..end),
# attributes int16, lastOffsetDelta int32 at byte 23, ...; 61 bytes of header in all.
BATCH_HEADER_BYTES = 61
SEGMENT_NAME = re.compile(r"^(\d{20})\.log$")


def segment_batches(data):
    """[(start, end, base offset, last offset)] of the whole batches at the start of a
    segment's bytes, up to the first that does not fit in them (headers only)."""
    out, pos = [], 0
    while pos + BATCH_HEADER_BYTES <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        end = pos + 12 + length
        if length < BATCH_HEADER_BYTES - 12 or end > len(data):
            break
        out.append((pos, end, base, base + struct.unpack_from(">i", data, pos + 23)[0]))
        pos = end
    return out


def recovery_points(data_dir):
    """{partition: offset} of TOPIC from the node's recovery-point-offset-checkpoint
    ("0\n<count>\n<topic> <partition> <offset>\n..."): the offset below which the node
    recorded its log as synced, the one its recovery reads at start-up."""
    out = {}
    try:
        with open(os.path.join(data_dir, "recovery-point-offset-checkpoint")) as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return out
    for line in lines:
        parts = line.rsplit(" ", 2)
        if len(parts) == 3 and parts[0] == TOPIC:
            out[int(parts[1])] = int(parts[2])
    return out


class Tear:
    """What the torn fault did to one partition's last segment on a stopped node, and
    the line the node's recovery must log when it starts: "partition chaos-P: <why> in
    segment B at byte N (next offset O); truncating K bytes" (src/storage/recovery.c),
    N being where the intact data ends."""

    def __init__(self, node_id, partition, stderr_path):
        self.node_id, self.partition, self.stderr_path = node_id, partition, stderr_path
        self.stderr_from = 0  # where the node's stderr stood when it was started again
        self.what = []
        self.expect = None
        self.cut = None  # (base offset, last offset) of the batch cut, if one was

    def __str__(self):
        return "node %d chaos-%d: %s" % (self.node_id, self.partition, ", ".join(self.what))

    def recovered(self):
        """None when the node's stderr since its restart has the truncation line;
        else what it logged about the partition instead."""
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(self.stderr_from)
                text = f.read().decode(errors="replace")
        except OSError as e:
            return "cannot read %s: %s" % (self.stderr_path, e)
        name = "partition %s-%d: " % (TOPIC, self.partition)
        lines = [line for line in text.splitlines() if name in line]
        if any(self.expect in line for line in lines):
            return None
        return "expected %r, it logged %s" % (name + "... " + self.expect, lines[:5] or "nothing")


def torn_batch(rng, base):
    """A plausible record batch at `base` that a crash cut short: a v2 header (the
    length naming more bytes than follow) and part of a body."""
    body = rng.randbytes(rng.randint(20, 2000))
    length = BATCH_HEADER_BYTES - 12 + len(body)
    ts = int(time.time() * 1000)
    header = struct.pack(">qiibIhiqqqhii", base, length, 0, 2, rng.getrandbits(32), 0, 0,
                         ts, ts, -1, -1, -1, 1)
    assert len(header) == BATCH_HEADER_BYTES
    whole = header + body
    return whole[:rng.randrange(1, len(whole))]


def tear_partition(data_dir, partition, rng, recovery_point, tear):
    """Damages the end of the partition's last segment as a crash in the middle of a
    write could: cuts it inside its last batch (never deeper than that batch's start)
    and/or appends a torn batch, random bytes or zeros (the file grown before its data
    reached the disk). Fills tear.what and tear.expect; False when there is no segment."""
    d = os.path.join(data_dir, "%s-%d" % (TOPIC, partition))
    try:
        names = sorted(f for f in os.listdir(d) if SEGMENT_NAME.match(f))
    except OSError:
        return False
    if not names:
        return False
    seg_base = int(SEGMENT_NAME.match(names[-1]).group(1))
    path = os.path.join(d, names[-1])
    with open(path, "rb") as f:
        data = f.read()
    bs = segment_batches(data)
    intact = bs[-1][1] if bs else 0
    if intact != len(data):  # not expected: kill -9 does not cut a write() short
        tear.what.append("(found %d bytes after its last whole batch)" % (len(data) - intact))
    mode = rng.choice(["cut", "append", "cut+append"])
    if mode != "append" and not bs:
        tear.what.append("(no batch to cut: the segment is empty)")
        mode = "append"
    elif mode != "append" and bs[-1][2] < recovery_point:
        # The node recorded this batch as synced: a crash cannot tear it, and Samsa
        # rightly keeps such damage (served up to it, reported) instead of cutting.
        tear.what.append("(last batch %d..%d below the recovery point %d: not cut)" % (
            bs[-1][2], bs[-1][3], recovery_point))
        mode = "append"
    end = len(data)
    next_offset = bs[-1][3] + 1 if bs else seg_base
    with open(path, "r+b") as f:
        if mode in ("cut", "cut+append"):
            start, stop, base, last = bs[-1]
            end = start + rng.randrange(1, stop - start)
            f.truncate(end)
            tear.what.append("segment %s cut at byte %d, inside its last batch (offsets "
                             "%d..%d, bytes %d..%d)" % (names[-1], end, base, last, start, stop))
            intact, next_offset = start, base
            tear.cut = (base, last)
        if mode in ("append", "cut+append"):
            kind = rng.choice(["batch", "random", "zeros"] if mode == "append"
                              else ["random", "zeros"])
            if kind == "batch":
                junk = torn_batch(rng, next_offset)
            elif kind == "random":
                junk = rng.randbytes(rng.randint(1, 4096))
            else:
                junk = bytes(rng.randint(1, 4096))
            f.seek(end)
            f.write(junk)
            end += len(junk)
            tear.what.append("%d bytes of %s appended to segment %s at byte %d" % (
                len(junk), "a torn batch at offset %d" % next_offset if kind == "batch"
                else kind, names[-1], end - len(junk)))
    tear.expect = "in segment %d at byte %d (next offset %d); truncating %d bytes" % (
        seg_base, intact, next_offset, os.path.getsize(path) - intact)
    return True


def tear_tails(n, rng, log):
    """The torn fault on a killed Samsa node: damages the tails of one or more of its
    chaos partitions (the seed picks which and how). Returns the Tears."""
    assert not n.running()
    points = recovery_points(n.data_dir)
    parts = sorted(int(m.group(1)) for m in
                   (re.match(r"^%s-(\d+)$" % TOPIC, f) for f in os.listdir(n.data_dir)) if m)
    tears = []
    for p in rng.sample(parts, rng.randint(1, len(parts))) if parts else []:
        t = Tear(n.node_id, p, n.stderr_path)
        if tear_partition(n.data_dir, p, rng, points.get(p, -1), t):
            log("torn: %s" % t)
            tears.append(t)
    return tears


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
            bad.append("acknowledged %r at %s, found at %s%s" % (v, where, at.get(v),
                                                                 cut_note(hist, *where)))
    # Per producer (the value's first letter) and partition: offsets in sending order.
    by_part = {}
    for v, (p, off) in hist.acked.items():
        by_part.setdefault((v[:1], p), []).append((off, int(v[1:])))
    for (producer, p), recs in sorted(by_part.items()):
        seqs = [s for _, s in sorted(recs)]
        if seqs != sorted(seqs):
            bad.append("partition %d: %s's acknowledged records out of order" % (
                p, PRODUCER_NAMES.get(producer, producer)))
    consumed_end = {}
    for p, off, _ in hist.consumed:
        consumed_end[p] = max(consumed_end.get(p, 0), off + 1)
    for p, off in hist.commits:
        if off > consumed_end.get(p, 0):
            bad.append("partition %d: committed %d beyond consumed %d" % (p, off,
                                                                         consumed_end.get(p, 0)))
    for t in hist.torn:
        why = t.recovered()
        if why:
            bad.append("node %d did not truncate the torn tail of %s-%d (%s) as expected: %s"
                       % (t.node_id, TOPIC, t.partition, ", ".join(t.what), why))
    return bad


def check_txns(hist, final, ends):
    """--txn. final: {partition: [(offset, value)]} of TXN_TOPIC read read_committed;
    ends: {partition: (last stable offset, high watermark)} after the run. Returns a list
    of violations."""
    bad = ["the transactional producer stopped: %s" % hist.txn_broken] if hist.txn_broken else []
    at = {}
    for p, recs in final.items():
        for off, v in recs:
            if v in at:
                bad.append("%s: record %r appears twice: %s and %s" % (TXN_TOPIC, v, at[v], (p, off)))
            at[v] = (p, off)
    sent = {v for values, _ in hist.txns for v in values}
    bad += ["%s: record %r at %s was never sent" % (TXN_TOPIC, v, where)
            for v, where in at.items() if v not in sent]
    for values, outcome in hist.txns:
        seen = sum(1 for v in values if v in at)
        name = "transaction %s..%s (%s)" % (values[0].decode(), values[-1].decode(), outcome)
        if outcome == "committed" and seen != len(values):
            bad.append("%s: %d of its %d records visible read_committed" % (name, seen, len(values)))
        elif outcome == "aborted" and seen:
            bad.append("%s: %d of its records visible read_committed" % (name, seen))
        elif 0 < seen < len(values):
            bad.append("%s: only %d of its %d records visible: not atomic" % (name, seen, len(values)))
    for p, recs in final.items():  # per producer: transactions one after another
        for prefix in sorted({v[:1] for _, v in recs}):
            nums = [int(v[1:]) for _, v in sorted(recs) if v[:1] == prefix]
            if nums != sorted(nums):
                bad.append("%s partition %d: %r records out of the order they were sent" % (
                    TXN_TOPIC, p, prefix))
    for p in range(PARTITIONS):
        lso, hw = ends.get(p, (None, None))
        if lso is None or lso != hw:
            bad.append("%s partition %d: last stable offset %s, high watermark %s after the run: "
                       "a transaction left open" % (TXN_TOPIC, p, lso, hw))
    return bad


def txn_ends(cl):
    """{partition: (last stable offset, high watermark)} of TXN_TOPIC, from each
    partition's leader (ListOffsets read_committed and read_uncommitted)."""
    leaders = {}
    for n in cl.nodes:
        try:
            leaders = {p: l for p, l in leaders_on(n, TXN_TOPIC).items() if l > 0}
            break
        except Exception:
            continue
    ends = {}
    for p, leader in leaders.items():
        node = next((n for n in cl.nodes if n.node_id == leader), None)
        try:
            with kwire.Conn(node.port, host=node.host, timeout=5) as c:
                lso = kwire.list_offset(c, TXN_TOPIC, p, isolation_level=1)
                hw = kwire.list_offset(c, TXN_TOPIC, p, isolation_level=0)
        except Exception:
            continue
        if lso[0] == 0 and hw[0] == 0:
            ends[p] = (lso[1], hw[1])
    return ends


def settled_txn_ends(cl, timeout=90):
    """txn_ends once every partition's last stable offset has reached its high watermark,
    or as they are after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ends = txn_ends(cl)
        if (len(ends) == PARTITIONS and all(l == h for l, h in ends.values())) or \
                time.monotonic() > deadline:
            return ends
        time.sleep(0.5)


def read_txn_topic(boot, at_least):
    """TXN_TOPIC read_committed from the start: until at least at_least records are
    read, then until 3 s pass with none (to see any that must not be there); or 120 s."""
    c = Consumer({"bootstrap.servers": boot, "group.id": "chaos-txn-check",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    c.assign([TopicPartition(TXN_TOPIC, p, 0) for p in range(PARTITIONS)])
    out = {p: [] for p in range(PARTITIONS)}
    seen, last = 0, time.monotonic()
    deadline = last + 120
    try:
        while time.monotonic() < deadline:
            if seen >= at_least and time.monotonic() - last > 3:
                break
            for m in c.consume(num_messages=10000, timeout=0.5):
                if not m.error():
                    out[m.partition()].append((m.offset(), m.value()))
                    seen += 1
                    last = time.monotonic()
        return out
    finally:
        c.close()


def cut_note(hist, partition, offset):
    """For a violation at (partition, offset): whether a batch the torn fault cut held
    it. The cut is made only past the node's recovery point, but the node may have
    synced the batch since it last wrote that checkpoint: a cut from outside cannot
    know, so such a loss may be the harness's doing (see the module's docstring)."""
    hits = ["node %d" % t.node_id for t in hist.torn if t.partition == partition and
            t.cut and t.cut[0] <= offset <= t.cut[1]]
    return " (in a batch the torn fault cut on %s)" % ", ".join(hits) if hits else ""


def read_all(boot, expected):
    """Every partition from offset 0, until at least `expected` records are read and
    every partition's position has reached the high watermark its last fetch response
    named (so nothing a consumer could see then is left out, without a fixed wait for
    stragglers); or 120 s."""
    c = Consumer({"bootstrap.servers": boot, "group.id": "chaos-check",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    out = {p: [] for p in range(PARTITIONS)}
    pos = {p: 0 for p in range(PARTITIONS)}
    seen = 0
    deadline = time.monotonic() + 120

    def at_end(p):
        # cached: from the fetch responses, no request (which would queue behind a
        # long-polling fetch); negative while none has come
        hw = c.get_watermark_offsets(TopicPartition(TOPIC, p), cached=True)[1]
        return hw >= 0 and pos[p] >= hw
    try:
        while time.monotonic() < deadline:
            if seen >= expected and all(at_end(p) for p in range(PARTITIONS)):
                return out
            for m in c.consume(num_messages=10000, timeout=0.5):
                if not m.error():
                    out[m.partition()].append((m.offset(), m.value()))
                    pos[m.partition()] = m.offset() + 1
                    seen += 1
        return out
    finally:
        c.close()


def die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Cluster:
    """The three nodes under test, as the nemesis and the clients see them: nodes have
    node_id, port, bootstrap, proc (send_signal), running(), kill(), stop(), start()."""

    def __init__(self, nodes, net=None):
        self.nodes = nodes
        self.net = net  # a netns.Net when the nodes are in namespaces

    @property
    def boot(self):
        return ",".join(n.bootstrap for n in self.nodes)

    def leader_of(self, partition):
        """The partition's leader as the first node that answers names it (None: none)."""
        for n in self.nodes:
            try:
                leader = leaders_on(n, TOPIC).get(partition, -1)
            except Exception:
                continue
            if leader > 0:
                return leader
        return None

    def heal(self):
        """Every link up, every node running and not paused."""
        if self.net:
            self.net.heal_all()
        for n in self.nodes:
            if not n.running():
                n.start(n.port)
            else:
                n.proc.send_signal(signal.SIGCONT)

    def tails(self):
        """(node id, server log tail) of Kafka nodes; Samsa's running() prints its own."""
        return [(n.node_id, n.tail()) for n in self.nodes if hasattr(n, "tail")]


# Added to QuorumNode's short election and session timeouts.
NODE_SETTINGS = {"replica.lag.time.max.ms": str(REPLICA_LAG_TIME_MAX_MS)}


@contextlib.contextmanager
def samsa_cluster(use_netns):
    """Three Samsa nodes that agree on a controller, on loopback or in namespaces; they
    are killed (and the namespaces removed) at the end, their logs' tails printed."""
    if use_netns:
        with netns.cluster(overrides=NODE_SETTINGS) as (nodes, net):
            agreed_controller(nodes)
            yield Cluster(nodes, net)
        return
    with running(three_voters(**{k.replace(".", "_"): v
                                 for k, v in NODE_SETTINGS.items()})) as nodes:
        agreed_controller(nodes)
        yield Cluster(nodes)


# Kafka with the timeouts QuorumNode gives Samsa, so that the same faults bite alike.
KAFKA_SETTINGS = {
    "controller.quorum.election.timeout.ms": str(ELECTION_TIMEOUT_MS),
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "replica.lag.time.max.ms": str(REPLICA_LAG_TIME_MAX_MS),
}
KAFKA_START_TIMEOUT = 90
KAFKA_STOP_TIMEOUT = 60  # a controlled shutdown took up to 25 s here


class ForeignProcess:
    """A process this one did not start (a JVM kafka.sh started), with the part of
    Popen the nemesis uses. Gone or a zombie counts as exited."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            try:
                with open("/proc/%d/stat" % self.pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                state = None
            if state in (None, "Z"):
                self.returncode = -1  # unknown: its parent (kafka.sh) reaps it
        return self.returncode

    def send_signal(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("pid %d" % self.pid, timeout)
            time.sleep(0.05)
        return self.returncode


class KafkaNode:
    """One node of a kafka.sh cluster. kafka.sh starts the JVMs; a restart runs the
    same command line (read from /proc when the cluster is up) in the same node dir,
    as a child of the calling thread that dies with it (PR_SET_PDEATHSIG)."""

    def __init__(self, node_id, pid, bootstrap, work_dir):
        self.node_id = node_id
        self.bootstrap = bootstrap
        self.host, port = bootstrap.rsplit(":", 1)
        self.port = int(port)
        self.dir = os.path.join(work_dir, "node%d" % node_id)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            self.cmdline = [a.decode() for a in f.read().split(b"\0")[:-1]]
        assert "kafka.Kafka" in self.cmdline, self.cmdline
        self.proc = ForeignProcess(pid)

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        """SIGTERM (controlled shutdown) and wait; fails if it does not exit."""
        if not self.running():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=KAFKA_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("Kafka node %d ignored SIGTERM for %ss" % (
                self.node_id, KAFKA_STOP_TIMEOUT))

    def start(self, port=None):
        """Starts the JVM again and waits until it answers Metadata."""
        assert not self.running()
        with open(os.path.join(self.dir, "stdout.log"), "ab") as out:
            out.write(b"==== restarted by chaos.py\n")
            out.flush()
            self.proc = subprocess.Popen(self.cmdline, cwd=self.dir, stdout=out,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         preexec_fn=die_with_parent)
        deadline = time.monotonic() + KAFKA_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("Kafka node %d exited (rc=%s) while starting\n%s" % (
                    self.node_id, self.proc.returncode, self.tail()))
            try:
                kafka_metadata(self.bootstrap, [], timeout=2)
                return self
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Kafka node %d did not answer within %ss\n%s" % (
                    self.node_id, KAFKA_START_TIMEOUT, self.tail()))
            time.sleep(0.5)

    def tail(self, lines=int(os.environ.get("SAMSA_TAIL", "40"))):
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server.log)"


@contextlib.contextmanager
def kafka_cluster():
    """Three Apache Kafka 4.4 nodes from kafka.sh, all stopped at the end."""
    k = KafkaRef(nodes=3, overrides=KAFKA_SETTINGS)
    k.start()  # from this (the main) thread: the JVMs die with it
    nodes = []
    try:
        with open(os.path.join(k.work_dir, "pids")) as f:
            pids = dict(tuple(map(int, line.split())) for line in f if line.strip())
        nodes = [KafkaNode(i, pids[i], k.bootstraps[i - 1], k.work_dir) for i in (1, 2, 3)]
        yield Cluster(nodes)
    finally:
        for n in nodes:
            if n.running():
                n.proc.send_signal(signal.SIGCONT)
        for n in nodes:  # the restarted ones are not kafka.sh's to stop
            if isinstance(n.proc, subprocess.Popen):
                n.kill()
        k.stop()


class Log:
    """Prints lines with the seconds since the clients started."""

    def __init__(self, out):
        self.out = out
        self.t0 = time.monotonic()

    def elapsed(self):
        return round(time.monotonic() - self.t0, 1)

    def __call__(self, msg):
        self.out("%6.1fs %s" % (self.elapsed(), msg))


def default_faults(target, use_netns):
    """The faults the seed chooses from, in the order it indexes them."""
    return (PROCESS_FAULTS + (DISK_FAULTS if target == "samsa" else []) +
            (NETWORK_FAULTS if use_netns else []))


def run(seed, duration, log=print, use_netns=False, target="samsa", faults=None,
        producers=("librdkafka",), txn=False):
    """One run; returns (violations, History). faults: the nemesis's choice (default
    default_faults()); producers: "librdkafka" and/or "java" (ChaosProducer.java); txn:
    the transactional producer too (txn_producer_loop)."""
    assert target in ("samsa", "kafka") and not (use_netns and target == "kafka")
    faults = list(faults or default_faults(target, use_netns))
    assert set(faults) <= set(default_faults(target, use_netns)), faults
    assert producers and set(producers) <= {"librdkafka", "java"}, producers
    rng = random.Random(seed)
    log("seed %d: %s, %s, %.0f s, faults %s, producers %s" % (
        seed, target, "nodes in network namespaces" if use_netns else "loopback", duration,
        ",".join(faults), ",".join(producers + (("transactional",) if txn else ()))))
    with (kafka_cluster() if target == "kafka" else samsa_cluster(use_netns)) as cl:
        boot = cl.boot
        a = AdminClient({"bootstrap.servers": boot})
        fs = a.create_topics([NewTopic(t, PARTITIONS, 3, config={"min.insync.replicas": "2"})
                              for t in (TOPIC,) + ((TXN_TOPIC,) if txn else ())])
        for f in fs.values():
            f.result(30)
        del fs, a  # no client may outlive the namespaces
        hist = History()
        stop_clients, stop_nemesis = threading.Event(), threading.Event()
        failures = []
        java_log = None
        # Daemons: a run stopped by a signal or an exception exits without them.
        threads = [threading.Thread(target=consumer_loop, args=(boot, hist, stop_clients),
                                    name="consumer", daemon=True)]
        if "librdkafka" in producers:
            threads.append(threading.Thread(target=producer_loop, name="librdkafka producer",
                                            args=(boot, hist, stop_clients), daemon=True))
        if txn and "librdkafka" in producers:
            threads.append(threading.Thread(target=txn_producer_loop, daemon=True,
                                            name="transactional producer",
                                            args=(boot, hist, stop_clients)))
        if "java" in producers:
            fd, java_log = tempfile.mkstemp(prefix="samsa-chaos-java-producer-", suffix=".log")
            os.close(fd)
            threads.append(threading.Thread(target=java_producer_loop, name="Java producer",
                                            args=(boot, hist, stop_clients, failures,
                                                  java_log), daemon=True))
            if txn:
                threads.append(threading.Thread(target=java_txn_producer_loop, daemon=True,
                                                name="Java transactional producer",
                                                args=(boot, hist, stop_clients, failures,
                                                      java_log)))
        quiet, run_over = threading.Event(), threading.Event()
        tlog = Log(log)
        nem = threading.Thread(target=nemesis, args=(cl, rng, stop_nemesis, quiet, run_over,
                                                     tlog, failures, hist, faults),
                               daemon=True)
        for t in threads:
            t.start()
        nem.start()
        stop_nemesis.wait(duration)
        stop_nemesis.set()
        quiet.wait(120)  # its last fault undone
        cl.heal()
        stop_clients.set()
        for t in threads:
            t.join(180)
        for t in threads:
            if t.is_alive():
                failures.append("the %s did not finish" % t.name)
        tlog("clients done")
        final = read_all(boot, len(hist.acked))
        bad = failures + check(hist, final)
        if txn:
            ends = settled_txn_ends(cl)
            committed = sum(len(v) for v, outcome in hist.txns if outcome == "committed")
            bad += check_txns(hist, read_txn_topic(boot, committed), ends)
            for prefix, who in ((b"t", "librdkafka"), (b"u", "Java")):
                outcomes = [o for values, o in hist.txns if values[0][:1] == prefix]
                if outcomes:
                    tlog("%s transactions: %d committed, %d aborted, %d unknown" % (
                        who, outcomes.count("committed"), outcomes.count("aborted"),
                        outcomes.count("unknown")))
            tlog("transactions: %d of librdkafka's over 1 s (the longest %.1f s); %d errors%s"
                 % (len(hist.txn_slow), max(hist.txn_slow, default=0), len(hist.txn_errors),
                    " (first: %s)" % hist.txn_errors[0] if hist.txn_errors else ""))
        java_acked = sum(1 for v in hist.acked if v[:1] == b"j")
        if "java" in producers and not java_acked:
            bad.append("the Java producer had nothing acknowledged (see %s)" % java_log)
        if txn and "java" in producers and not any(
                values[0][:1] == b"u" and outcome == "committed" for values, outcome in hist.txns):
            bad.append("the Java transactional producer committed nothing (see %s)" % java_log)
        tlog("seed %d: %d sent, %d acknowledged%s, %d delivery errors, %d consumed by the "
             "group, %d commits, %d faults%s; %s" % (
                 seed, len(hist.sent), len(hist.acked),
                 " (%d of them the Java producer's)" % java_acked if "java" in producers
                 else "", len(hist.errors), len(hist.consumed), len(hist.commits),
                 len(hist.faults),
                 ", torn tails: %d" % len(hist.torn) if hist.torn else "",
                 "OK" if not bad else "%d VIOLATIONS" % len(bad)))
        run_over.set()
        nem.join(60)
        for b in bad[:20]:
            log("  " + b)
        if bad:
            log("  faults: %s" % "; ".join("%.1fs %s %s" % f for f in hist.faults))
            for p in range(PARTITIONS):
                offs = [o for o, _ in final[p]]
                acked = [o for (q, o) in hist.acked.values() if q == p]
                log("  partition %d: final read %d records (offsets %s..%s), %d acknowledged "
                    "(offsets %s..%s)" % (p, len(offs), min(offs, default=None),
                                          max(offs, default=None), len(acked),
                                          min(acked, default=None), max(acked, default=None)))
            for node_id, tail in cl.tails():
                log("---- node %d server.log tail ----\n%s" % (node_id, tail))
            if java_log:
                log("  the Java producer's log is kept: %s" % java_log)
        elif java_log:
            os.unlink(java_log)
        return bad, hist


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--netns", action="store_true",
                    help="each node in its own network namespace, with network faults too")
    ap.add_argument("--target", choices=["samsa", "kafka"], default="samsa",
                    help="kafka: Apache Kafka 4.4 from tests/reference/kafka.sh")
    ap.add_argument("--faults",
                    help="comma-separated faults for the seed to choose from (default: all "
                    "that apply: %s, torn on Samsa, %s with --netns)" % (
                        ",".join(PROCESS_FAULTS), ",".join(NETWORK_FAULTS)))
    ap.add_argument("--java-producer", nargs="?", const="beside", choices=["beside", "only"],
                    help="also (beside) or only (only) an idempotent acks=all producer "
                    "written with the Apache Kafka Java client 4.4 (ChaosProducer.java)")
    ap.add_argument("--txn", action="store_true",
                    help="also a transactional producer (librdkafka) on its own topic, "
                    "checked read_committed: exactly once, atomic, nothing left open")
    args = ap.parse_args()
    faults = default_faults(args.target, args.netns)
    if args.faults:
        chosen = [f.strip() for f in args.faults.split(",") if f.strip()]
        unknown = [f for f in chosen if f not in faults]
        if not chosen or unknown:
            ap.error("--faults: %s not among %s for this target" % (unknown, faults))
        faults = chosen
    producers = (("java",) if args.java_producer == "only" else
                 ("librdkafka", "java") if args.java_producer else ("librdkafka",))
    if "java" in producers:
        try:
            java_producer_command()  # before any cluster: fails fast, compiles once
        except Exception as e:
            ap.error("--java-producer: %s" % e)
    if args.netns:
        if args.target == "kafka":
            ap.error("--netns is for Samsa only (kafka.sh binds loopback)")
        why = netns.unusable(need_nft=True)
        if why:
            ap.error("--netns: %s" % why)
    # SIGTERM unwinds like an exception, so that the nodes, namespaces and nft table go.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    failed = []
    for s in range(args.seed, args.seed + args.runs):
        bad, _ = run(s, args.duration, use_netns=args.netns, target=args.target,
                     faults=faults, producers=producers, txn=args.txn)
        if bad:
            failed.append(s)
    if failed:
        print("FAILED seeds: %s" % failed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
