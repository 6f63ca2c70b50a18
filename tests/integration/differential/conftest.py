"""Fixtures of the differential tests: one Apache Kafka 4.4 broker and one Samsa broker
for the whole session, configured alike, and a Pair that sends the same request to
both and compares the answers.

Kafka comes from tests/reference (kafka_ref.KafkaRef, fetched by tests/reference/deps.sh
into a cache outside the repo). When it cannot be fetched or started, every test here
FAILS with the reason.

Settings given to both brokers (BOTH): where the two products' defaults differ on
purpose, or where Kafka's default needs three nodes, both get the same value:
- offsets.topic.replication.factor / transaction.state.log.* = 1: Kafka's defaults (3)
  need three brokers; Samsa is single-node.
- offsets.topic.num.partitions = 1: fewer files for Kafka to create; the tests do not
  depend on it (FindCoordinator always names the only node).
- group.initial.rebalance.delay.ms = 0: no 3 s wait before a new group's first
  rebalance (same default, 3000, in both; lowered for speed).
- fetch.max.bytes = 57671680: Kafka's default; Samsa's default is 1 MiB on purpose
  (docs/configuration.md), so the fetch tests would otherwise compare two settings.
- auto.create.topics.enable = true, num.partitions = 1, default.replication.factor = 1,
  message.max.bytes = 1048588: the defaults of both, written out because the tests
  depend on them.
- every Kafka setting of config/server.properties (the file Samsa's test brokers start
  from: log.segment.bytes, log.retention.*, socket.request.max.bytes, ...) is given to
  Kafka too, so config sources agree (STATIC_BROKER_CONFIG on both).
- everything else is left at the (equal) defaults.
"""
import importlib.util
import itertools
import os
import sys
import threading
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
REFERENCE_DIR = os.path.join(REPO, "tests", "reference")

import kclient  # noqa: E402
import kcodec  # noqa: E402
import kdiff  # noqa: E402


def _load_broker_module():
    """The Broker class of tests/integration/python/conftest.py, loaded under another
    module name so pytest does not take it for a conftest of this folder."""
    path = os.path.join(REPO, "tests", "integration", "python", "conftest.py")
    spec = importlib.util.spec_from_file_location("samsa_python_fixtures", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


samsa_fixtures = _load_broker_module()

def _samsa_properties():
    """The Kafka settings of config/server.properties (which every Samsa test broker
    starts with), so Kafka gets the same ones: otherwise config sources differ
    (STATIC_BROKER_CONFIG in one, DEFAULT_CONFIG in the other)."""
    skip = {"node.id", "process.roles", "listeners", "advertised.listeners", "log.dirs",
            "log.level"}
    out = {}
    with open(samsa_fixtures.CONFIG) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = (x.strip() for x in line.split("=", 1))
            if k not in skip and not k.startswith("samsa."):
                out[k] = v
    return out


BOTH = dict(_samsa_properties())
BOTH.update({
    "auto.create.topics.enable": "true",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "message.max.bytes": "1048588",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "fetch.max.bytes": "57671680",
})

TEST_TIMEOUT = 90  # seconds, per test (SIGALRM), then faulthandler exits the run


@pytest.fixture(autouse=True)
def _test_deadline():
    with samsa_fixtures.deadline(TEST_TIMEOUT):
        yield


# ---------------------------------------------------------------- brokers


@pytest.fixture(scope="session")
def kafka_ref():
    """The Kafka 4.4 reference broker, started once per session."""
    sys.path.insert(0, REFERENCE_DIR)
    try:
        import kafka_ref as kr
    except ImportError as e:
        pytest.fail("tests/reference/kafka_ref.py cannot be imported (%s): the Apache Kafka "
                    "4.4 reference broker is needed by the differential tests" % e, pytrace=False)
    try:
        kr.kafka_available()  # runs tests/reference/deps.sh (a file check when installed)
    except Exception as e:  # noqa: BLE001
        pytest.fail("Apache Kafka 4.4 cannot be fetched, so the differential tests cannot "
                    "run: %s" % e, pytrace=False)
    ref = kr.KafkaRef(nodes=1, overrides=dict(BOTH))
    try:
        try:
            ref.start()
        except Exception as e:  # noqa: BLE001 (report whatever went wrong)
            pytest.fail("Apache Kafka 4.4 reference broker did not start: %s" % e, pytrace=False)
        yield kclient.Peer("kafka", ref.bootstrap)
    finally:
        ref.stop()


# What the Kafka reference's file sets and a single Samsa node may leave out: set here
# too, so both report them as STATIC_BROKER_CONFIG (their values are not compared).
SAMSA_ONLY = {"controller.quorum.voters": "1@127.0.0.1:9093",
              "controller.listener.names": "CONTROLLER"}


@pytest.fixture(scope="session")
def samsa_broker():
    b = samsa_fixtures.Broker(dict(BOTH, **SAMSA_ONLY))
    try:
        b.start()
        yield b
    finally:
        b.cleanup()


# ---------------------------------------------------------------- the pair


class Pair:
    """Kafka (k) and Samsa (s): the same request to both, answers compared."""

    CLOSED = "<connection closed>"

    def __init__(self, kafka, samsa, samsa_broker):
        self.k = kafka
        self.s = samsa
        self.peers = (kafka, samsa)
        self.samsa_broker = samsa_broker
        self._seq = itertools.count()
        self.run_id = uuid.uuid4().hex[:6]
        self.node_ids = (None, None)

    def setup(self):
        for p in self.peers:
            p.load_versions()
        ids = []
        for p in self.peers:
            md = p.call("Metadata", 1, {"Topics": []})
            ids.append(md["ControllerId"] if len(md["Brokers"]) != 1 else md["Brokers"][0]["NodeId"])
        self.node_ids = tuple(ids)
        # Kafka creates __consumer_offsets on the first FindCoordinator, Samsa at
        # start-up: make it exist on both before any test looks at topics.
        v = self.version("FindCoordinator", hi=3)
        for p in self.peers:
            kclient.wait_until(
                lambda: p.call("FindCoordinator", v, {"Key": "warm-up", "KeyType": 0})["ErrorCode"] == 0,
                60, interval=0.2, what="%s: group coordinator available" % p.name)
            # Kafka answers COORDINATOR_LOAD_IN_PROGRESS (14) a while longer.
            kclient.wait_until(
                lambda: p.call("OffsetFetch", 1, {"GroupId": "warm-up", "Topics": []}).get(
                    "ErrorCode", 0) == 0 and
                p.call("DescribeGroups", 0, {"Groups": ["warm-up"]})["Groups"][0]["ErrorCode"] == 0,
                60, interval=0.2, what="%s: group coordinator loaded" % p.name)

    def name(self, prefix="t"):
        return "%s-%s-%d" % (prefix, self.run_id, next(self._seq))

    def versions(self, api):
        """The common version range of an API (min, max), or None."""
        key = kcodec.APIS[api].key
        ours = kcodec.APIS[api]
        lo = max(ours.vmin, *(p.versions.get(key, (99, -1))[0] for p in self.peers))
        hi = min(ours.vmax, *(p.versions.get(key, (99, -1))[1] for p in self.peers))
        return (lo, hi) if lo <= hi else None

    def version(self, api, lo=None, hi=None):
        """The highest version of `api` that both brokers (and the schema) support,
        within [lo, hi]; fails the test if there is none."""
        rng = self.versions(api)
        if rng is None:
            pytest.fail("%s: no version that both Kafka %s and Samsa %s serve" % (
                api, self.k.versions.get(kcodec.APIS[api].key),
                self.s.versions.get(kcodec.APIS[api].key)))
        a, b = rng
        if lo is not None:
            a = max(a, lo)
        if hi is not None:
            b = min(b, hi)
        if a > b:
            pytest.fail("%s: wanted v%s-v%s, common range is v%d-v%d" % (api, lo, hi, *rng))
        return b

    def call(self, peer, api, version, req):
        try:
            return peer.call(api, version, req)
        except kclient.Closed:
            return self.CLOSED

    def both(self, api, version, req):
        """Sends req to Kafka, then to Samsa; returns (kafka_answer, samsa_answer).
        A closed connection is the answer Pair.CLOSED."""
        return tuple(self.call(p, api, version, req) for p in self.peers)

    def both_parallel(self, fn):
        """Runs fn(peer) for both peers in two threads (for requests that block, like
        JoinGroup); returns (kafka_result, samsa_result)."""
        out = [None, None]
        errs = [None, None]

        def run(i):
            try:
                out[i] = fn(self.peers[i])
            except BaseException as e:  # noqa: BLE001
                errs[i] = e

        ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
            if t.is_alive():
                raise AssertionError("both_parallel: a call is still running after 60 s")
        for e in errs:
            if e is not None:
                raise e
        return tuple(out)

    def compare(self, what, k, s, ignore=(), known_paths=None):
        if (k is self.CLOSED) != (s is self.CLOSED):
            raise kdiff.Difference("%s: kafka=%s samsa=%s" % (
                what, "closed the connection" if k is self.CLOSED else repr(k)[:3000],
                "closed the connection" if s is self.CLOSED else repr(s)[:3000]))
        if k is self.CLOSED:
            return
        kdiff.compare(what, k, s, ignore=ignore, known_paths=known_paths,
                      node_ids=self.node_ids)

    def same(self, what, api, version, req, ignore=(), known_paths=None):
        """Sends req to both and compares; returns (kafka_answer, samsa_answer)."""
        k, s = self.both(api, version, req)
        self.compare("%s (%s v%d)" % (what, api, version), k, s, ignore, known_paths)
        return k, s

    # ---- common set-up steps, done on both brokers and checked to succeed

    def create_topic(self, name, partitions=1, configs=None):
        v = self.version("CreateTopics")
        req = {"Topics": [{"Name": name, "NumPartitions": partitions, "ReplicationFactor": 1,
                           "Assignments": [],
                           "Configs": [{"Name": a, "Value": b} for a, b in (configs or {}).items()]}],
               "TimeoutMs": 30000}
        for p in self.peers:
            r = p.call("CreateTopics", v, req)
            t = r["Topics"][0]
            assert t["ErrorCode"] == 0, "%s: creating %s: %r" % (p.name, name, t)
        for p in self.peers:
            self.wait_topic(p, name, partitions)
        return name

    def wait_topic(self, peer, name, partitions):
        """Kafka creates topics asynchronously: wait until Metadata shows every
        partition with a leader."""
        def ready():
            md = peer.call("Metadata", self.version("Metadata", hi=8),
                           {"Topics": [{"Name": name}], "AllowAutoTopicCreation": False})
            t = md["Topics"][0]
            return (t["ErrorCode"] == 0 and len(t["Partitions"]) == partitions
                    and all(pp["LeaderId"] >= 0 and pp["ErrorCode"] == 0 for pp in t["Partitions"]))
        kclient.wait_until(ready, 30, what="%s: topic %s ready" % (peer.name, name))

        # Kafka's Metadata shows the leader before the broker's replica manager has
        # the partition (Fetch then answers NOT_LEADER_OR_FOLLOWER): wait for that too.
        def serving():
            r = peer.call("ListOffsets", self.version("ListOffsets", hi=1), {
                "ReplicaId": -1,
                "Topics": [{"Name": name, "Partitions": [{"PartitionIndex": i, "Timestamp": -1}
                                                         for i in range(partitions)]}]})
            return all(p["ErrorCode"] == 0 for p in r["Topics"][0]["Partitions"])
        kclient.wait_until(serving, 30, what="%s: topic %s served" % (peer.name, name))

    def produce(self, topic, partition, batches, acks=-1):
        """Appends batches (bytes each) on both; returns [(base_offset_kafka, samsa)]."""
        v = self.version("Produce")
        out = []
        for b in batches:
            req = {"Acks": acks, "TimeoutMs": 30000,
                   "TopicData": [{"Name": topic, "PartitionData": [{"Index": partition, "Records": b}]}]}
            res = []
            for p in self.peers:
                r = p.call("Produce", v, req)
                pr = r["Responses"][0]["PartitionResponses"][0]
                assert pr["ErrorCode"] == 0, "%s: produce to %s-%d: %r" % (p.name, topic, partition, pr)
                res.append(pr["BaseOffset"])
            assert res[0] == res[1], "base offsets differ: %r" % res
            out.append(res[0])
        return out

    def close(self):
        for p in self.peers:
            p.close()


@pytest.fixture(scope="session")
def pair(kafka_ref, samsa_broker):
    p = Pair(kafka_ref, kclient.Peer("samsa", samsa_broker.bootstrap), samsa_broker)
    try:
        p.setup()
        yield p
    finally:
        p.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    pair = getattr(item, "funcargs", {}).get("pair")
    if rep.when == "call" and rep.failed and pair is not None and not hasattr(rep, "wasxfail"):
        rep.sections.append(("samsa-server stderr tail", pair.samsa_broker.stderr_tail(15)))


def pytest_terminal_summary(terminalreporter):
    if kdiff.INFO:
        terminalreporter.section("differences reported as information (not failures)")
        for line in kdiff.INFO:
            terminalreporter.write_line(line)
