"""Slow readers: connections that pipeline Fetch requests and never read the answers.

Each such connection used to hold up to samsa.connection.max.unsent.bytes (16 MiB) of
responses in the broker's memory, with no bound over all connections, and with
samsa.fetch.sendfile=true one descriptor per queued file chunk. The broker-wide budgets
(samsa.queued.max.response.bytes, samsa.queued.max.response.files) bound both; these
tests hold N raw sockets that each send several Fetch requests asking for 2 GiB and
never read, and check resource bounds (never timing):

- the broker's VmRSS stays within the response budget plus a fixed slack over what it
  used before the slow readers came;
- a healthy consumer (librdkafka) still reads the whole topic meanwhile;
- once the slow sockets close, VmRSS falls back (the queued memory is given back);
- with sendfile, the open descriptors stay within sockets + budget + one per connection,
  and a new client still connects and is answered.

See docs/operations.md, "Memory and slow clients".
"""
import os
import socket
import threading
import time

import clients
import kwire

MiB = 1024 * 1024
TOPIC = "slow-readers"
PARTITIONS = 4
RECORDS = 40000            # x 1 KiB values: ~40 MB in the topic
VALUE_BYTES = 1000
N_SLOW = 150               # slow connections
FETCHES_PER_CONN = 8       # pipelined Fetch requests on each
BUDGET = 96 * MiB          # samsa.queued.max.response.bytes for these tests
FILES_BUDGET = 64          # samsa.queued.max.response.files
# What the broker may hold beyond the budget while slow readers are connected: the
# allocator keeps up to M_TRIM_THRESHOLD (64 MiB, src/main.c) of freed memory for
# reuse on top of what is live, plus 16 MiB for what the budget does not count
# (pooled reply buffers, capped at 8 MiB; encoded response headers; per-connection
# state; the one reply that crosses the budget).
SLACK = (64 + 16) * MiB
# After the slow sockets close: the queued memory is freed and, the drop being larger
# than the trim threshold, trimmed; what may stay is the allocator's threshold.
AFTER_SLACK = 64 * MiB
FD_SLACK = 32              # descriptors besides sockets and chunks (files, eventfds)


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def sanitized(pid):
    """An ASan build: its allocator quarantines freed memory and maps shadow memory, so
    RSS says nothing about the broker's own bounds; only descriptors are checked."""
    with open("/proc/%d/maps" % pid) as f:
        return any("asan" in line for line in f)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fetch_v4_frame(corr, offsets, max_bytes=2 ** 31 - 1):
    """Fetch v4, max_wait 0, every partition asking for max_bytes."""
    parts = [kwire.i32(p) + kwire.i64(o) + kwire.i32(max_bytes) for p, o in offsets]
    body = (kwire.i32(-1) + kwire.i32(0) + kwire.i32(1) + kwire.i32(max_bytes) + kwire.i8(0)
            + kwire.array([kwire.string(TOPIC) + kwire.array(parts)]))
    hdr = kwire.i16(1) + kwire.i16(4) + kwire.i32(corr) + kwire.string("slow-reader")
    payload = hdr + body
    return kwire.i32(len(payload)) + payload


def open_slow_readers(port, n, per_partition_records):
    """n sockets with a tiny receive buffer, each with FETCHES_PER_CONN pipelined
    fetches at spread-out offsets, none of which it will ever read."""
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: window
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        frames = b""
        for k in range(FETCHES_PER_CONN):
            start = ((i * FETCHES_PER_CONN + k) * 997) % max(per_partition_records - 2000, 1)
            frames += fetch_v4_frame(k + 1, [(p, start) for p in range(PARTITIONS)])
        s.sendall(frames)
        socks.append(s)
    return socks


class Sampler(threading.Thread):
    """Samples the broker's VmRSS and descriptor count every 50 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.max_rss = 0
        self.max_fds = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.max_rss = max(self.max_rss, vm_rss(self.pid))
                self.max_fds = max(self.max_fds, fd_count(self.pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.05)


def fill_topic(b):
    clients.create_topic(b, TOPIC, PARTITIONS)
    filler = b"v" * (VALUE_BYTES - 8)
    clients.produce_keyed(b, TOPIC, RECORDS, keys=256, value=lambda i: b"%08d" % i + filler)
    # A first full read warms up what a consumer makes the broker allocate.
    got = clients.consume_all(b, TOPIC, PARTITIONS, expected=RECORDS, timeout=60)
    assert sum(len(v) for v in got.values()) == RECORDS


def run_slow_readers(b, check_fds):
    pid = b.proc.pid
    check_rss = not sanitized(pid)
    fill_topic(b)
    rss0 = vm_rss(pid)
    fds0 = fd_count(pid)
    sampler = Sampler(pid)
    sampler.start()
    socks = []
    try:
        socks = open_slow_readers(b.port, N_SLOW, RECORDS // PARTITIONS)
        # Let the broker answer what it will: poll until RSS stops growing (or fails).
        last = -1
        for _ in range(100):
            time.sleep(0.1)
            cur = vm_rss(pid)
            assert not check_rss or cur - rss0 <= BUDGET + SLACK, (
                "broker RSS grew by %.1f MiB with %d slow readers (budget %d MiB + slack %d MiB)"
                % ((cur - rss0) / MiB, N_SLOW, BUDGET // MiB, SLACK // MiB))
            if cur == last:
                break
            last = cur
        # A healthy consumer is served meanwhile, every record of the topic.
        got = clients.consume_all(b, TOPIC, PARTITIONS, expected=RECORDS, timeout=60)
        assert sum(len(v) for v in got.values()) == RECORDS
        # ... and a new raw client connects and is answered.
        with kwire.Conn(b.port) as c:
            err, apis = kwire.api_versions_v0(c)
            assert err == 0 and apis
        peak_rss = max(sampler.max_rss, vm_rss(pid))
        peak_fds = max(sampler.max_fds, fd_count(pid))
    finally:
        sampler.stop.set()
        sampler.join()
        for s in socks:
            s.close()
    growth = peak_rss - rss0
    print("slow readers: rss0 %.1f MiB, peak growth %.1f MiB; fds %d -> peak %d"
          % (rss0 / MiB, growth / MiB, fds0, peak_fds))
    assert not check_rss or growth <= BUDGET + SLACK, (
        "broker RSS grew by %.1f MiB with %d slow readers (budget %d MiB + slack %d MiB)"
        % (growth / MiB, N_SLOW, BUDGET // MiB, SLACK // MiB))
    if check_fds:
        # Sockets of the slow readers, the budget's chunks, one chunk per connection
        # whose first reply is granted regardless, and some slack.
        bound = fds0 + N_SLOW + FILES_BUDGET + N_SLOW + FD_SLACK
        assert peak_fds <= bound, "broker held %d descriptors (bound %d: %d before)" % (
            peak_fds, bound, fds0)
    # Memory comes back once the slow readers are gone.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = vm_rss(pid)
        rss_ok = not check_rss or after - rss0 <= AFTER_SLACK
        if rss_ok and (not check_fds or fd_count(pid) <= fds0 + FD_SLACK):
            break
        time.sleep(0.2)
    after = vm_rss(pid)
    print("after close: rss %.1f MiB (growth %.1f MiB), fds %d"
          % (after / MiB, (after - rss0) / MiB, fd_count(pid)))
    assert not check_rss or after - rss0 <= AFTER_SLACK, (
        "broker RSS still %.1f MiB above its start after the slow readers closed"
        % ((after - rss0) / MiB))
    if check_fds:
        assert fd_count(pid) <= fds0 + FD_SLACK


def test_slow_readers_copy_path(broker_factory):
    b = broker_factory(**{"samsa.queued.max.response.bytes": str(BUDGET),
                          "samsa.queued.max.response.files": str(FILES_BUDGET),
                          "samsa.fetch.sendfile": "false"})
    run_slow_readers(b, check_fds=True)


def test_slow_readers_sendfile(broker_factory):
    b = broker_factory(**{"samsa.queued.max.response.bytes": str(BUDGET),
                          "samsa.queued.max.response.files": str(FILES_BUDGET),
                          "samsa.fetch.sendfile": "true"})
    run_slow_readers(b, check_fds=True)
