"""Fixtures that run real samsa-server processes on free loopback ports.

Each broker gets a fresh temporary data dir, its stderr goes to a file in that dir
(the tail is printed when a test fails), and everything is killed and removed at the
end of the test whatever happened.
"""
import contextlib
import ctypes
import faulthandler
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SERVER = os.environ.get("SAMSA_SERVER", "/work/main/build/samsa-server")
CONFIG = os.path.join(REPO, "config", "server.properties")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
# Every test ends by itself: SIGALRM raises in the test after TEST_TIMEOUT, and if
# even that is stuck (in C code), faulthandler dumps all stacks and exits. Servers
# get SIGKILL when this process dies (PR_SET_PDEATHSIG), so nothing is left behind.
TEST_TIMEOUT = 180

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Broker:
    def __init__(self, overrides=None, data_dir=None):
        self.overrides = dict(overrides or {})
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="samsa-pytest-")
        self.stderr_path = os.path.join(self.data_dir, "server.stderr")
        self.proc = None
        self.port = 0
        self.starts = 0
        self.nofile = None  # RLIMIT_NOFILE (soft = hard) to start the server under
        self.env = None  # environment to start the server with (None: this process's)
        self.host = "127.0.0.1"  # the address it listens on and clients dial
        self.command_prefix = []  # runs the server under this, e.g. ["ip", "netns", "exec", NS]

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    def start(self, port=None):
        """Starts the server (on `port`, or the previous port, or a free one) and
        waits for its 'listening on port N' line."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if port is None:
            port = self.port
        args = self.command_prefix + [
            SERVER, "-c", CONFIG,
            "--override", "log.dirs=%s" % self.data_dir,
            "--override", "listeners=PLAINTEXT://%s:%d" % (self.host, port),
            "--override", "advertised.listeners=PLAINTEXT://%s:%d" % (self.host, port)]
        for k, v in self.overrides.items():
            args += ["--override", "%s=%s" % (k, v)]
        self.starts += 1
        err = open(self.stderr_path, "ab")
        err.write(("==== start %d: %s\n" % (self.starts, " ".join(args))).encode())
        err.flush()
        def preexec(nofile=self.nofile):
            _die_with_parent()
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.DEVNULL, preexec_fn=preexec,
                                     env=self.env)
        err.close()
        deadline = time.monotonic() + START_TIMEOUT
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RuntimeError("samsa-server did not report its port within %ss\n%s"
                                   % (START_TIMEOUT, self.stderr_tail()))
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.5))
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    self.proc.wait(timeout=5)
                    raise RuntimeError("samsa-server exited (rc=%s) before listening\n%s"
                                       % (self.proc.returncode, self.stderr_tail()))
                buf += chunk
                # "samsa-server listening on port N ..." (N must be complete).
                m = re.search(rb"samsa-server listening on port (\d+)\D", buf)
                if m:
                    self.port = int(m.group(1))
                    if port:
                        assert self.port == port, (self.port, port)
                    return self
            elif self.proc.poll() is not None:
                raise RuntimeError("samsa-server exited (rc=%s) before listening\n%s"
                                   % (self.proc.returncode, self.stderr_tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; returns the exit code (fails if it does not exit)."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("samsa-server ignored SIGTERM for %ss" % timeout)
        self._close_stdout()
        return rc

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_stdout()

    def _close_stdout(self):
        if self.proc is not None and self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()

    def restart(self, hard=False):
        """Stops (SIGTERM, or SIGKILL when hard) and starts again on the same port
        and data dir."""
        if hard:
            self.kill()
        else:
            rc = self.stop()
            assert rc == 0, "clean shutdown exited with %s" % rc
        return self.start(self.port)

    def stderr_tail(self, lines=int(os.environ.get("SAMSA_TAIL", "40"))):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no stderr file)"
        return "\n".join(data[-lines:])

    def cleanup(self):
        try:
            self.kill()
        finally:
            if self.owns_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)


@contextlib.contextmanager
def deadline(seconds):
    """Bounds a test: SIGALRM raises in it after `seconds`, and if even that is stuck,
    faulthandler dumps every stack and exits 60 s later. Other suites use it too."""
    def on_alarm(signum, frame):
        raise TimeoutError("test still running after %d s" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    faulthandler.dump_traceback_later(seconds + 60, exit=True)
    try:
        yield
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def _test_deadline():
    with deadline(TEST_TIMEOUT):
        yield


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


class BrokerFactory:
    def __init__(self):
        self.brokers = []

    def __call__(self, data_dir=None, start=True, **overrides):
        """broker_factory(**{"samsa.fetch.sendfile": "true"}) -> started Broker."""
        b = Broker(overrides, data_dir=data_dir)
        self.brokers.append(b)
        if start:
            b.start()
        return b

    def finish(self, failed):
        for b in self.brokers:
            if failed:
                print("\n---- samsa-server stderr tail (%s) ----\n%s"
                      % (b.data_dir, b.stderr_tail()))
        # Shared data dirs are removed by their owner, after every user is down.
        for b in self.brokers:
            b.kill()
        for b in self.brokers:
            b.cleanup()


def _failed(request):
    return any(getattr(getattr(request.node, "rep_" + w, None), "failed", False)
               for w in ("setup", "call"))


@pytest.fixture
def broker_factory(request):
    f = BrokerFactory()
    try:
        yield f
    finally:
        f.finish(_failed(request))


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


def wait_until(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
