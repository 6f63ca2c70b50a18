"""Apache Kafka 4.4 as a reference broker for tests (stdlib only, /usr/bin/python3).

    from kafka_ref import KafkaRef, kafka_available
    kafka_available()                      # fetches Kafka if needed; raises if it can't
    with KafkaRef(nodes=3, overrides={"num.partitions": "3"}) as k:
        k.bootstrap                        # "127.0.0.1:port" of node 1
        k.bootstraps                       # every node's "127.0.0.1:port"
        kafka_metadata(k.bootstrap, ["t"]) # parsed Metadata response

KafkaRef runs tests/reference/kafka.sh start --foreground in a temporary directory; the
script is the JVMs' parent, and both it and the JVMs get SIGKILL when their parent dies
(PR_SET_PDEATHSIG), so nothing outlives the test process. PR_SET_PDEATHSIG follows the
parent *thread*: start KafkaRef from a thread that lives as long as the cluster (the
main thread, normally).

Also a command line for kafka.sh (not for tests):
    kafka_ref.py ports N | cluster-id | probe [--brokers N] [--timeout S] HOST:PORT...
    kafka_ref.py exec-pdeathsig [--parent PID] -- PROGRAM ARGS...
"""
import atexit
import base64
import ctypes
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
KAFKA_SH = os.path.join(HERE, "kafka.sh")
DEPS_SH = os.path.join(HERE, "deps.sh")
KAFKA_VERSION = "4.4.0"
START_TIMEOUT = 120  # seconds kafka.sh waits for the cluster to answer
STOP_TIMEOUT = 20  # seconds between SIGTERM and SIGKILL
DEPS_TIMEOUT = 900  # a cold fetch from Maven Central


def _die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def libs_dir():
    cache = os.environ.get("SAMSA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "samsa")
    return os.path.join(cache, "kafka-" + KAFKA_VERSION, "libs")


_deps_ok = False
_deps_lock = threading.Lock()


def kafka_available():
    """Makes sure Kafka's jars are installed (runs deps.sh: a file check when they are)
    and returns the libs dir. Raises RuntimeError with deps.sh's message otherwise;
    tests must fail, not skip, when Kafka cannot be fetched."""
    global _deps_ok
    with _deps_lock:
        if not _deps_ok:
            try:
                r = subprocess.run([DEPS_SH], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=DEPS_TIMEOUT,
                                   preexec_fn=_die_with_parent)
            except subprocess.TimeoutExpired:
                raise RuntimeError("Apache Kafka %s: %s did not finish within %ss"
                                   % (KAFKA_VERSION, DEPS_SH, DEPS_TIMEOUT))
            if r.returncode != 0:
                raise RuntimeError("Apache Kafka %s is not available: %s failed (rc=%d):\n%s"
                                   % (KAFKA_VERSION, DEPS_SH, r.returncode,
                                      r.stdout.decode(errors="replace")))
            _deps_ok = True
    return libs_dir()


# ---------------------------------------------------------------------------------------
# A minimal Kafka protocol client (non-flexible versions only): ApiVersions v0,
# Metadata v4..v8, CreateTopics v4.

API_METADATA = 3
API_API_VERSIONS = 18
API_CREATE_TOPICS = 19


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def array(self, item):
        n = self.take(">i")
        return None if n < 0 else [item() for _ in range(n)]


def _str(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class KafkaConn:
    """One blocking connection speaking request header v1 / response header v0."""

    def __init__(self, addr, timeout=5.0, client_id="samsa-kafka-ref"):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        self.client_id = client_id
        self.corr = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            buf += chunk
        return buf

    def request(self, api_key, version, body):
        self.corr += 1
        msg = struct.pack(">hhi", api_key, version, self.corr) + _str(self.client_id) + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self._recv(4))[0]
        r = _Reader(self._recv(size))
        corr = r.take(">i")
        if corr != self.corr:
            raise ConnectionError("correlation id %d, expected %d" % (corr, self.corr))
        return r

    def api_versions(self):
        """{api_key: (min, max)}"""
        r = self.request(API_API_VERSIONS, 0, b"")
        err = r.take(">h")
        if err:
            raise ConnectionError("ApiVersions error %d" % err)
        return dict((k, (lo, hi)) for k, lo, hi in r.array(lambda: r.take(">hhh")))

    def metadata(self, topics=None, auto_create=False, version=None):
        """Metadata (topics=None: all topics). Returns a dict: brokers {id: (host, port)},
        cluster_id, controller_id, topics {name: {"error", "internal", "partitions":
        {index: {"error", "leader", "replicas", "isr"}}}}."""
        if version is None:
            lo, hi = self.api_versions().get(API_METADATA, (0, -1))
            version = min(8, hi)
            if version < max(4, lo):
                raise ConnectionError("no Metadata version in 4..8 (broker: %d..%d)" % (lo, hi))
        body = struct.pack(">i", -1) if topics is None else \
            struct.pack(">i", len(topics)) + b"".join(_str(t) for t in topics)
        body += struct.pack(">?", auto_create)
        if version >= 8:
            body += struct.pack(">??", False, False)
        r = self.request(API_METADATA, version, body)
        r.take(">i")  # throttle_time_ms

        def broker():
            node, host, port, _rack = r.take(">i"), r.string(), r.take(">i"), r.string()
            return node, (host, port)

        def partition():
            p = {"error": r.take(">h")}
            index = r.take(">i")
            p["leader"] = r.take(">i")
            if version >= 7:
                p["leader_epoch"] = r.take(">i")
            p["replicas"] = r.array(lambda: r.take(">i"))
            p["isr"] = r.array(lambda: r.take(">i"))
            if version >= 5:
                p["offline"] = r.array(lambda: r.take(">i"))
            return index, p

        def topic():
            t = {"error": r.take(">h")}
            name = r.string()
            t["internal"] = r.take(">?")
            t["partitions"] = dict(r.array(partition))
            if version >= 8:
                r.take(">i")
            return name, t

        md = {"brokers": dict(r.array(broker)), "cluster_id": r.string(),
              "controller_id": r.take(">i")}
        md["topics"] = dict(r.array(topic))
        return md

    def create_topics(self, topics, timeout_ms=30000):
        """CreateTopics v4: topics is [(name, partitions, replication_factor, {config})].
        Returns {name: (error_code, error_message)}."""
        body = struct.pack(">i", len(topics))
        for name, partitions, rf, configs in topics:
            body += _str(name) + struct.pack(">ihi", partitions, rf, 0)  # no assignments
            body += struct.pack(">i", len(configs or {}))
            for k, v in (configs or {}).items():
                body += _str(k) + _str(v)
        body += struct.pack(">i?", timeout_ms, False)
        r = self.request(API_CREATE_TOPICS, 4, body)
        r.take(">i")  # throttle_time_ms
        return dict(r.array(lambda: (r.string(), (r.take(">h"), r.string()))))


def kafka_metadata(addr, topics=None, timeout=5.0):
    """One Metadata round trip to addr ("host:port"); see KafkaConn.metadata."""
    with KafkaConn(addr, timeout) as c:
        return c.metadata(topics)


def create_topic(addr, name, partitions=1, replication_factor=1, configs=None, timeout=30.0):
    """Creates a topic through addr (any node: Kafka forwards to the controller);
    raises on an error code other than 0."""
    with KafkaConn(addr, timeout) as c:
        err, msg = c.create_topics([(name, partitions, replication_factor, configs)],
                                   int(timeout * 1000))[name]
    if err:
        raise RuntimeError("CreateTopics %s: error %d %s" % (name, err, msg or ""))


def probe(addrs, brokers=None, timeout=2.0):
    """Raises unless every address answers ApiVersions and a Metadata that lists
    `brokers` brokers (when given)."""
    for a in addrs:
        md = kafka_metadata(a, [], timeout)
        if brokers is not None and len(md["brokers"]) != brokers:
            raise ConnectionError("%s: Metadata lists %d broker(s), want %d"
                                  % (a, len(md["brokers"]), brokers))


def free_ports(n):
    """n distinct free loopback TCP ports (all held open while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def new_cluster_id():
    # Like Kafka's Uuid.randomUuid: never one starting with '-', which command lines
    # would take for an option.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


# ---------------------------------------------------------------------------------------

_live = weakref.WeakSet()


@atexit.register
def _stop_all():
    for k in list(_live):
        try:
            k.stop()
        except Exception:
            pass


class KafkaRef:
    """An Apache Kafka cluster of `nodes` combined broker+controller nodes on free
    loopback ports; `overrides` ({key: value}) go into every node's server.properties.
    work_dir: where node dirs go (kept); default a temporary dir removed by stop()."""

    def __init__(self, nodes=1, overrides=None, work_dir=None, start_timeout=START_TIMEOUT):
        self.nodes = int(nodes)
        self.overrides = dict(overrides or {})
        self.owns_dir = work_dir is None
        self.work_dir = work_dir
        self.start_timeout = start_timeout
        self.proc = None
        self.bootstraps = []
        self._log = None

    @property
    def bootstrap(self):
        """"127.0.0.1:port" of the first node."""
        return self.bootstraps[0] if self.bootstraps else None

    @property
    def bootstrap_servers(self):
        """Every node, comma-separated (for client configs)."""
        return ",".join(self.bootstraps)

    def start(self):
        """Starts the cluster and waits until every node answers (see kafka.sh).
        Raises RuntimeError with the logs' tails when it does not come up."""
        assert self.proc is None, "already started"
        kafka_available()
        try:
            return self._start()
        except RuntimeError as e:
            # The ports are free when chosen but only bound seconds later by the JVMs:
            # another process may take one in between. Try once more with new ports.
            if not (self.owns_dir and "Address already in use" in str(e)):
                raise
            self.stop()
            self.work_dir, self.proc = None, None
            return self._start()

    def _start(self):
        if self.work_dir is None:
            self.work_dir = tempfile.mkdtemp(prefix="samsa-kafka-ref-")
        else:
            os.makedirs(self.work_dir, exist_ok=True)
        args = [KAFKA_SH, "start", self.work_dir, "--nodes", str(self.nodes),
                "--timeout", str(self.start_timeout), "--foreground"]
        for k, v in self.overrides.items():
            args += ["--set", "%s=%s" % (k, v)]
        self._log = os.path.join(self.work_dir, "kafka.sh.log")
        with open(self._log, "ab") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, preexec_fn=_die_with_parent)
        _live.add(self)
        # kafka.sh bounds the wait itself; this is a safety net that also covers
        # formatting and a one-time CDS training run (see kafka.sh cds_opts).
        limit = 2 * self.start_timeout + 120
        deadline = time.monotonic() + limit
        buf = b""
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("Kafka did not start within %ss" % limit)
                r, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
                if r:
                    chunk = os.read(self.proc.stdout.fileno(), 4096)
                    if not chunk:
                        self.proc.wait(timeout=30)
                        raise RuntimeError("kafka.sh start failed (rc=%s)" % self.proc.returncode)
                    buf += chunk
        except BaseException as e:
            tail = self.log_tail()
            self._kill()
            if isinstance(e, RuntimeError):
                raise RuntimeError("%s (work dir %s)\n%s" % (e, self.work_dir, tail)) from None
            raise
        self.bootstraps = buf.split(b"\n", 1)[0].decode().strip().split(",")
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM to every node, SIGKILL after `timeout`; removes the temporary dir."""
        _live.discard(self)
        if self.proc is not None:
            try:
                subprocess.run([KAFKA_SH, "stop", self.work_dir, "--timeout", str(timeout)],
                               stdin=subprocess.DEVNULL, timeout=timeout + 30,
                               preexec_fn=_die_with_parent)
            except subprocess.TimeoutExpired:
                pass
            self._kill()
        if self.owns_dir and self.work_dir and os.path.isdir(self.work_dir) and \
                not os.environ.get("SAMSA_KEEP_KAFKA_DIR"):
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _kill(self):
        """The foreground kafka.sh stops its JVMs on SIGTERM; SIGKILL if it lingers
        (the JVMs then die with it through PR_SET_PDEATHSIG)."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=STOP_TIMEOUT + 10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        if p.stdout and not p.stdout.closed:
            p.stdout.close()

    def log_tail(self, lines=30):
        """kafka.sh's output (which has the node logs' tails when it failed), else the
        last lines of every node's logs."""
        def read(path):
            try:
                with open(path, "rb") as f:
                    return f.read().decode(errors="replace").splitlines()
            except (OSError, TypeError):
                return []
        script = read(self._log)
        if any(line.startswith("---- tail of ") for line in script):
            return "\n".join(script[-400:])
        out = ["---- %s" % self._log] + script[-lines:] if script else []
        for i in range(1, self.nodes + 1):
            for name in ("format.log", "stdout.log", "server.log"):
                path = os.path.join(self.work_dir or "", "node%d" % i, name)
                data = read(path)
                if data:
                    out.append("---- %s" % path)
                    out.extend(data[-lines:])
        return "\n".join(out) if out else "(no logs)"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _main(argv):
    if argv[:1] == ["exec-pdeathsig"]:
        args, parent = argv[1:], None
        if args[:1] == ["--parent"]:
            parent, args = int(args[1]), args[2:]
        if args[:1] == ["--"]:
            args = args[1:]
        _die_with_parent()
        if parent is not None and os.getppid() != parent:
            return 1  # the parent died before PR_SET_PDEATHSIG took effect
        os.execvp(args[0], args)
    if argv[:1] == ["ports"] and len(argv) == 2:
        print(" ".join(str(p) for p in free_ports(int(argv[1]))))
        return 0
    if argv[:1] == ["cluster-id"]:
        print(new_cluster_id())
        return 0
    if argv[:1] == ["probe"]:
        brokers, timeout, addrs, i = None, 2.0, [], 1
        while i < len(argv):
            if argv[i] == "--brokers":
                brokers, i = int(argv[i + 1]), i + 2
            elif argv[i] == "--timeout":
                timeout, i = float(argv[i + 1]), i + 2
            else:
                addrs.append(argv[i])
                i += 1
        try:
            probe(addrs, brokers, timeout)
        except (OSError, ConnectionError, struct.error) as e:
            print("probe: %s" % e, file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
