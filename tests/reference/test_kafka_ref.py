"""Smoke tests of the Apache Kafka reference broker (kafka.sh / kafka_ref.py):
a 1-node and a 3-node cluster answer real clients (kcat), a bad configuration fails
with the server log in the error, and the JVMs die with the process that started them.

Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/reference/test_kafka_ref.py
"""
import faulthandler
import os
import re
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_ref import KafkaRef, create_topic, kafka_available, kafka_metadata  # noqa: E402

TEST_TIMEOUT = 300  # a cold Maven fetch plus a 3-node start on a loaded machine
KCAT_TIMEOUT = 60


class _TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _bounded():
    """Every test ends by itself: SIGALRM raises in the test, and if even that does not
    help, faulthandler dumps the stacks and exits."""
    def on_alarm(signum, frame):
        raise _TestTimeout("test exceeded %ss" % TEST_TIMEOUT)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    faulthandler.dump_traceback_later(TEST_TIMEOUT + 60, exit=True)
    try:
        yield
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, old)


def kcat(*args, data=None):
    r = subprocess.run(["kcat", *args], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=KCAT_TIMEOUT)
    assert r.returncode == 0, "kcat %s failed (rc=%d): %s" % (
        " ".join(args), r.returncode, r.stderr.decode(errors="replace"))
    return r.stdout.decode()


def wait_for(what, fn, timeout=30.0):
    """Polls fn() until it returns a true value (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for %s" % what
        time.sleep(0.2)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as dead.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def node_pids(work_dir):
    with open(os.path.join(work_dir, "pids")) as f:
        return [int(line.split()[1]) for line in f if line.strip()]


def test_fetch():
    libs = kafka_available()
    jars = os.listdir(libs)
    assert "kafka_2.13-4.4.0.jar" in jars
    assert any(j.startswith("log4j-slf4j-impl-") for j in jars), jars


def test_single_node_produce_consume():
    with KafkaRef(nodes=1) as k:
        assert re.fullmatch(r"127\.0\.0\.1:\d+", k.bootstrap), k.bootstrap
        assert k.bootstraps == [k.bootstrap]
        create_topic(k.bootstrap, "smoke", partitions=1, replication_factor=1)
        kcat("-b", k.bootstrap, "-t", "smoke", "-P", "-K", ":", data=b"k1:hello kafka\n")
        out = kcat("-b", k.bootstrap, "-t", "smoke", "-C", "-e", "-o", "beginning",
                   "-q", "-f", "%k=%s@%o\\n")
        assert out == "k1=hello kafka@0\n", out
        md = kafka_metadata(k.bootstrap, ["smoke"])
        assert list(md["brokers"]) == [1]
        assert md["topics"]["smoke"]["partitions"][0]["leader"] == 1
        pids = node_pids(k.work_dir)
        work_dir = k.work_dir
    assert not any(alive(p) for p in pids)
    assert not os.path.exists(work_dir)


def test_three_nodes_replicated_topic():
    with KafkaRef(nodes=3, overrides={"min.insync.replicas": "2"}) as k:
        assert len(k.bootstraps) == 3 and k.bootstrap == k.bootstraps[0]
        listing = kcat("-b", k.bootstrap, "-L")
        assert " 3 brokers:" in listing, listing
        create_topic(k.bootstraps[1], "rep3", partitions=3, replication_factor=3)

        def all_isr():
            md = kafka_metadata(k.bootstraps[2], ["rep3"])
            t = md["topics"].get("rep3")
            if len(md["brokers"]) != 3 or not t or t["error"] or len(t["partitions"]) != 3:
                return None
            if all(sorted(p["isr"]) == [1, 2, 3] for p in t["partitions"].values()):
                return md
        md = wait_for("ISR 3 on every partition of rep3", all_isr)
        assert sorted(md["brokers"]) == [1, 2, 3]
        for p in md["topics"]["rep3"]["partitions"].values():
            assert sorted(p["replicas"]) == [1, 2, 3], p
        # kcat sees the same through another node.
        listing = kcat("-b", k.bootstraps[1], "-L", "-t", "rep3")
        assert listing.count("isrs: ") == 3, listing
        for line in re.findall(r"isrs: ([\d,]+)", listing):
            assert sorted(line.split(",")) == ["1", "2", "3"], listing
        # acks=all through node 1, read back through node 3.
        kcat("-b", k.bootstrap, "-t", "rep3", "-P", "-p", "0", "-X", "acks=all",
             data=b"replicated\n")
        out = kcat("-b", k.bootstraps[2], "-t", "rep3", "-p", "0", "-C", "-e",
                   "-o", "beginning", "-q")
        assert out == "replicated\n", out


def test_bad_config_reports_server_log():
    # The format step accepts this; kafka.Kafka fails while starting (no such class).
    k = KafkaRef(nodes=1, overrides={"metric.reporters": "org.example.NoSuchReporter"})
    with pytest.raises(RuntimeError) as e:
        k.start()
    k.stop()
    msg = str(e.value)
    assert "exited during startup" in msg, msg
    assert "server.log" in msg and "org.example.NoSuchReporter" in msg, msg
    assert not os.path.exists(k.work_dir)


def test_jvms_die_with_the_test_process():
    """A child process starts Kafka, reports its PIDs and is SIGKILLed: the JVMs must
    not outlive it (PR_SET_PDEATHSIG chain)."""
    code = ("import sys, time; sys.path.insert(0, %r)\n"
            "from kafka_ref import KafkaRef\n"
            "k = KafkaRef(nodes=1).start()\n"
            "print(k.work_dir, flush=True)\n"
            "time.sleep(600)\n" % os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
    work_dir = ""
    try:
        work_dir = child.stdout.readline().decode().strip()
        assert work_dir and os.path.isdir(work_dir), "child did not start Kafka"
        pids = node_pids(work_dir)
        assert pids and all(alive(p) for p in pids)
        child.kill()
        child.wait(timeout=10)
        wait_for("the Kafka JVMs to die", lambda: not any(alive(p) for p in pids))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        child.stdout.close()
        if work_dir and os.path.isdir(work_dir):
            subprocess.run([os.path.join(os.path.dirname(__file__), "kafka.sh"), "stop",
                            work_dir, "--timeout", "5"], timeout=60)
            subprocess.run(["rm", "-rf", work_dir], timeout=60)
