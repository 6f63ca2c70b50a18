#!/usr/bin/python3
"""bench/cluster.py BUILD WORK OUT_MD: the cluster section of `make bench`.

Three measurements on a three-node cluster (combined broker+controller nodes on
loopback, each its own process and data dir), Samsa's and, when tests/reference/kafka.sh
can run it, Apache Kafka 4.4's in the same run:

  failover      the active controller is killed (SIGKILL); from the kill to the first
                CreateTopics that succeeds, sent in turn to the surviving nodes over raw
                connections (a Kafka broker forwards it to its controller; a Samsa node
                that does not lead answers NOT_CONTROLLER and the next is tried). p50/p99
                over the trials. Samsa: the killed node is restarted between trials.
                Kafka: a fresh cluster per trial (a JVM restart costs more than a trial).
  propagation   CreateTopics to the cluster, then Metadata polled on every node until all
                three list the topic: p50/p99 of the time to the last node.
  throughput    `samsa bench` (1 KiB, acks=all, 12 partitions) against the three Samsa
                nodes and against one Samsa node, same arguments: the cost of spreading
                partitions over processes on this 2-core machine.

Default timeouts everywhere (controller.quorum.election.timeout.ms 1000, Kafka's too).
Environment: FAILOVER_TRIALS (20), PROPAGATION_TRIALS (100), KAFKA_FAILOVER_TRIALS (3),
KAFKA_PROPAGATION_TRIALS (30), CLUSTER_RECORDS (1 KiB records per throughput run,
300000), QUICK (fewer of everything), KAFKA=0 (skip Kafka).
Writes OUT_MD (a markdown table); results also on stdout.
"""
import os
import re
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
KAFKA_SH = os.path.join(ROOT, "tests", "reference", "kafka.sh")
TRIAL_TIMEOUT_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def lists_topic(port, name):
    """Metadata v4 (the oldest Kafka 4 serves) on one node: the topic is listed without
    error."""
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
                r.array(lambda r: (r.i16(), r.i32(), r.i32(), r.array(kwire.Reader.i32),
                                   r.array(kwire.Reader.i32)))
                return tname, err

            return dict(r.array(topic)).get(name) == 0
    except (OSError, kwire.Closed):
        return False


class SamsaCluster:
    def __init__(self, build, work):
        self.server = os.path.join(build, "samsa-server")
        self.dir = tempfile.mkdtemp(prefix="cluster-", dir=work)
        self.ports = [(free_port(), free_port()) for _ in range(3)]
        self.voters = ",".join("%d@127.0.0.1:%d" % (i + 1, c) for i, (_, c) in enumerate(self.ports))
        self.procs = [None] * 3
        cid = subprocess.run([self.server, "random-uuid"], capture_output=True, check=True,
                             timeout=10).stdout.decode().strip()
        for i in range(3):
            subprocess.run([self.server, "format", "--cluster-id", cid] + self.args(i),
                           capture_output=True, check=True, timeout=30)
        for i in range(3):
            self.start(i)

    def args(self, i):
        p, c = self.ports[i]
        o = {"node.id": i + 1, "log.dirs": os.path.join(self.dir, "node%d" % (i + 1)),
             "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (p, c),
             "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % p,
             "controller.listener.names": "CONTROLLER", "controller.quorum.voters": self.voters,
             "log.level": "WARN"}
        a = ["-c", os.path.join(ROOT, "config", "server.properties")]
        for k, v in o.items():
            a += ["--override", "%s=%s" % (k, v)]
        return a

    def start(self, i):
        log = open(os.path.join(self.dir, "node%d.log" % (i + 1)), "ab")
        self.procs[i] = subprocess.Popen([self.server] + self.args(i), stdout=subprocess.PIPE,
                                         stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        line = b""
        deadline = time.monotonic() + 30
        while b"listening on port" not in line and time.monotonic() < deadline:
            line = self.procs[i].stdout.readline()
            if not line and self.procs[i].poll() is not None:
                raise RuntimeError("node %d exited" % (i + 1))

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

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            if p and p.stdout:
                p.stdout.close()


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


def samsa_bench(build, bootstrap, tag):
    samsa = os.path.join(build, "tools", "samsa")
    if not os.path.exists(samsa):
        samsa = subprocess.run(["find", build, "-name", "samsa", "-type", "f", "-perm", "-u+x"],
                               capture_output=True).stdout.decode().split()[0]
    out = subprocess.run([samsa, "bench", "-b", bootstrap, "-n", str(RECORDS), "-s", "1024",
                          "-a", "all", "-p", "12"], capture_output=True, timeout=600)
    text = out.stdout.decode() + out.stderr.decode()
    m = re.search(r"^samsa bench: (.*)$", text, re.M)
    if out.returncode != 0 or not m:
        raise RuntimeError("samsa bench (%s) failed: %s" % (tag, text[-2000:]))
    return dict(kv.split("=", 1) for kv in m.group(1).split())


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


def kafka_quorum_leader(build, ports):
    """The KRaft leader, from `samsa cluster status --json` (DescribeQuorum, which a Kafka
    broker forwards to its controller)."""
    import json
    samsa = subprocess.run(["find", build, "-name", "samsa", "-type", "f", "-perm", "-u+x"],
                           capture_output=True).stdout.decode().split()[0]
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


def main():
    build, work, out_md = sys.argv[1:4]
    rows = []
    res = {}
    # ---- Samsa ----
    c = SamsaCluster(build, work)
    try:
        c.wait_settled()
        prop = [propagation_once(c.client_ports(), "prop-%d" % i) for i in range(PROPAGATION_TRIALS)]
        res["samsa.prop"] = prop
        fo = []
        for i in range(FAILOVER_TRIALS):
            ctl = c.wait_settled()
            alive = [p for n, (p, _) in enumerate(c.ports) if n + 1 != ctl]
            fo.append(failover_once(lambda: c.kill(ctl), alive, "fo-%d" % i))
            c.start(ctl - 1)
        res["samsa.fo"] = fo
        c.wait_settled()
        res["samsa.three"] = samsa_bench(build, c.bootstrap(), "three")
    finally:
        c.stop()
    p, port = samsa_single(build, work)
    try:
        res["samsa.one"] = samsa_bench(build, "127.0.0.1:%d" % port, "one")
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
    rows.append("| metadata propagation: CreateTopics answered → listed by all three (goal p99 ≤ 100 ms) | %s | %s |"
                % (cell("samsa.prop"), cell("kafka.prop")))
    rows.append("| %d × 1 KiB, acks=all, 12 partitions, replication 1: three nodes / one node, produce (goal: lose ≤ 15%%) | %s / %s MB/s (%+.0f%%) | - |"
                % (RECORDS, three["produce_MB_s"], one["produce_MB_s"], -loss * 100))
    rows.append("| same, consume | %s / %s MB/s (%+.0f%%) | - |"
                % (three["consume_MB_s"], one["consume_MB_s"], -closs * 100))
    text = "\n".join(rows) + "\n"
    if kafka_note:
        text += "\n" + kafka_note + "\n"
    open(out_md, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
