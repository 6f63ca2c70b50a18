#!/usr/bin/python3
"""bench/limits.py BUILD_DIR WORK_DIR OUT_MD — the broker's resource bounds (issue #11),
measured on fresh samsa-server processes on loopback:

  slow      N connections (SLOW_READERS, 1,000) each pipeline 8 Fetch requests for
            max_bytes 2^31-1 and never read, while a healthy consumer reads the topic:
            the broker's peak VmRSS and descriptors, and both after they close.
  idle      IDLE_PARTITIONS (100,000) partitions, created 10,000 per request (Kafka's
            cap), left idle: creation time, VmRSS, descriptors, memory mappings, and
            start-up time (exec -> "listening on port") after a clean shutdown.
  create    one CreateTopics of 10,000 partitions while another connection sends
            Metadata requests back to back: creation time, and the Metadata latency
            p50 / p99 / max meanwhile.

Writes a markdown table to OUT_MD and key=value lines to stdout. Raw Kafka framing
comes from the tests' kwire.py (written from the protocol guide, independent of the
broker's codec). Everything it starts it stops, also on failure.
"""
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "python"))
import kwire  # noqa: E402

BUILD, WORK, OUT_MD = sys.argv[1:4]
SERVER = os.path.join(BUILD, "samsa-server")
CLI = os.path.join(BUILD, "tools", "samsa")
CONFIG = os.path.join(ROOT, "config", "server.properties")
SLOW_READERS = int(os.environ.get("SLOW_READERS", "1000"))
IDLE_PARTITIONS = int(os.environ.get("IDLE_PARTITIONS", "100000"))
CREATE_PARTITIONS = int(os.environ.get("CREATE_PARTITIONS", "10000"))
ONLY = os.environ.get("LIMITS_ONLY", "slow idle create").split()


class Broker:
    def __init__(self, name, **overrides):
        self.dir = os.path.join(WORK, "limits-" + name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.overrides = overrides
        self.proc = None
        self.port = 0

    def start(self):
        args = [SERVER, "-c", CONFIG, "--override", "log.dirs=" + self.dir,
                "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "--override", "advertised.listeners=PLAINTEXT://127.0.0.1:%d" % self.port]
        for k, v in self.overrides.items():
            args += ["--override", "%s=%s" % (k, v)]
        err = open(os.path.join(self.dir, "server.stderr"), "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.DEVNULL)
        err.close()
        buf = b""
        deadline = t0 + 600
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.01)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError("samsa-server exited before listening (%s)" % self.dir)
                buf += chunk
                m = re.search(rb"listening on port (\d+)\D", buf)
                if m:
                    self.port = int(m.group(1))
                    return (time.monotonic() - t0) * 1000
        raise RuntimeError("samsa-server did not listen within 600 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss_mb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e6
        return 0.0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def maps(self):
        with open("/proc/%d/maps" % self.proc.pid) as f:
            return sum(1 for _ in f)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def create_topics(port, topics, timeout_ms=600_000):
    """CreateTopics v1 of (name, partitions) pairs; returns the error codes."""
    body = kwire.array([kwire.string(n) + kwire.i32(p) + kwire.i16(1) + kwire.array([]) +
                        kwire.array([]) for n, p in topics]) + kwire.i32(timeout_ms) + kwire.i8(0)
    with kwire.Conn(port, timeout=timeout_ms / 1000 + 60) as c:
        r = c.request(19, 1, body)
        return [e for _, e, _ in r.array(lambda r: (r.string(), r.i16(), r.string()))]


results = {}
rows = []


def rec(key, **kv):
    results[key] = kv
    print(key + " " + " ".join("%s=%s" % x for x in kv.items()), flush=True)


def slow_readers():
    b = Broker("slow")
    b.start()
    try:
        subprocess.run([CLI, "-b", "127.0.0.1:%d" % b.port, "topic", "create", "data", "-p", "4"],
                       check=True, capture_output=True, timeout=60)
        subprocess.run([CLI, "-b", "127.0.0.1:%d" % b.port, "bench", "-t", "data", "-p", "4", "--produce-only",
                        "-n", "40000", "-s", "1024"], check=True, capture_output=True, timeout=600)
        base = b.rss_mb()
        fetch = (kwire.i32(-1) + kwire.i32(500) + kwire.i32(1) + kwire.i32(0x7FFFFFFF) + kwire.i8(0) +
                 kwire.array([kwire.string("data") + kwire.array([
                     kwire.i32(p) + kwire.i64(0) + kwire.i32(0x7FFFFFFF) for p in range(4)])]))
        socks = []
        peak_rss = peak_fds = 0.0
        for i in range(SLOW_READERS):
            s = socket.create_connection(("127.0.0.1", b.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c = kwire.Conn.__new__(kwire.Conn)
            c.sock, c.client_id, c.corr, c.timeout = s, "slow-reader", 0, 10
            for _ in range(8):
                c.send(1, 4, fetch)
            socks.append(s)
            if i % 50 == 0:
                peak_rss, peak_fds = max(peak_rss, b.rss_mb()), max(peak_fds, b.fds())
        # A healthy consumer reads everything meanwhile.
        t0 = time.monotonic()
        got = subprocess.run([CLI, "-b", "127.0.0.1:%d" % b.port, "consume", "data", "-o",
                              "beginning", "-e"], capture_output=True, timeout=600)
        consume_s = time.monotonic() - t0
        m = re.search(rb"consumed (\d+) record", got.stderr)
        healthy = int(m.group(1)) if m else 0
        for _ in range(20):
            peak_rss, peak_fds = max(peak_rss, b.rss_mb()), max(peak_fds, b.fds())
            time.sleep(0.25)
        for s in socks:
            s.close()
        time.sleep(3)
        rec("slow", readers=SLOW_READERS, base_rss_mb="%.0f" % base, peak_rss_mb="%.0f" % peak_rss,
            peak_fds=peak_fds, after_rss_mb="%.0f" % b.rss_mb(), after_fds=b.fds(),
            healthy_records=healthy, healthy_s="%.1f" % consume_s)
    finally:
        b.cleanup()


def idle_partitions():
    b = Broker("idle", **{"samsa.max.partitions": str(IDLE_PARTITIONS + 1000)})
    b.start()
    try:
        base_rss = b.rss_mb()
        t0 = time.monotonic()
        per_request, per_topic = 10_000, 1000
        made = 0
        while made < IDLE_PARTITIONS:
            batch = []
            while made < IDLE_PARTITIONS and sum(p for _, p in batch) < per_request:
                n = min(per_topic, IDLE_PARTITIONS - made)
                batch.append(("idle-%d" % (made // per_topic), n))
                made += n
            errors = create_topics(b.port, batch)
            if any(errors):
                raise RuntimeError("CreateTopics errors %s" % sorted(set(errors)))
        create_s = time.monotonic() - t0
        rec("idle.created", partitions=IDLE_PARTITIONS, create_s="%.1f" % create_s,
            rss_mb="%.0f" % b.rss_mb(), base_rss_mb="%.0f" % base_rss, fds=b.fds(), maps=b.maps())
        b.stop()
        start_ms = b.start()
        time.sleep(1)
        rec("idle.restart", start_ms="%.0f" % start_ms, rss_mb="%.0f" % b.rss_mb(), fds=b.fds(),
            maps=b.maps())
    finally:
        b.cleanup()


def create_under_load():
    b = Broker("create", **{"auto.create.topics.enable": "false"})
    b.start()
    try:
        create_topics(b.port, [("probe", 1)])
        lat = []
        done = threading.Event()

        def probe():
            with kwire.Conn(b.port, timeout=120) as c:
                while not done.is_set():
                    t = time.monotonic()
                    kwire.metadata_v1(c, ["probe"])
                    lat.append((time.monotonic() - t) * 1000)

        th = threading.Thread(target=probe)
        th.start()
        time.sleep(0.5)
        before = len(lat)
        t0 = time.monotonic()
        errors = create_topics(b.port, [("wide", CREATE_PARTITIONS)])
        create_s = time.monotonic() - t0
        during = lat[before:]
        done.set()
        th.join()
        if any(errors):
            raise RuntimeError("CreateTopics errors %s" % errors)
        during.sort()
        q = lambda f: during[min(len(during) - 1, int(f * len(during)))]
        rec("create", partitions=CREATE_PARTITIONS, create_s="%.2f" % create_s,
            metadata_n=len(during), p50_ms="%.2f" % q(0.5), p99_ms="%.2f" % q(0.99),
            max_ms="%.2f" % during[-1])
    finally:
        b.cleanup()


def main():
    os.makedirs(WORK, exist_ok=True)
    if "slow" in ONLY:
        slow_readers()
    if "create" in ONLY:
        create_under_load()
    if "idle" in ONLY:
        idle_partitions()
    with open(OUT_MD, "w") as f:
        f.write("Resource bounds (bench/limits.py; fresh broker per case, default config "
                "unless named):\n\n")
        f.write("| case | measured | goal |\n| --- | --- | --- |\n")
        s = results.get("slow")
        if s:
            f.write("| %s connections pipelining 8 Fetch requests each (max_bytes 2^31-1) and "
                    "never reading, a healthy consumer beside them | broker VmRSS peak %s MB "
                    "(before %s MB), %s descriptors at peak; after they close %s MB, %s "
                    "descriptors; the consumer read %s records in %s s | peak ≤ 512 MB |\n"
                    % (s["readers"], s["peak_rss_mb"], s["base_rss_mb"], s["peak_fds"],
                       s["after_rss_mb"], s["after_fds"], s["healthy_records"], s["healthy_s"]))
        c = results.get("create")
        if c:
            f.write("| one CreateTopics of %s partitions, Metadata requests back to back on "
                    "another connection | created in %s s; Metadata meanwhile (%s requests) "
                    "p50 %s ms, p99 %s ms, max %s ms | p99 ≤ 50 ms |\n"
                    % (c["partitions"], c["create_s"], c["metadata_n"], c["p50_ms"],
                       c["p99_ms"], c["max_ms"]))
        i, r = results.get("idle.created"), results.get("idle.restart")
        if i and r:
            f.write("| %s idle partitions (1,000 per topic, 10,000 per CreateTopics) | created in "
                    "%s s; VmRSS %s MB (%s MB before), %s descriptors, %s memory mappings; after "
                    "a clean restart: start-up %s ms, %s MB, %s descriptors, %s mappings | works "
                    "under a 20,000-descriptor limit |\n"
                    % (i["partitions"], i["create_s"], i["rss_mb"], i["base_rss_mb"], i["fds"],
                       i["maps"], r["start_ms"], r["rss_mb"], r["fds"], r["maps"]))


main()
