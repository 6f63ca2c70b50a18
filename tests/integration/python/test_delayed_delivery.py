"""Delayed delivery (issue #16): records produced with samsa.deliver.at / .after appear in
their partition at that time, exactly once, across restarts and kill -9; cancels; bad
headers refused with nothing stored. Real clients (confluent-kafka, kcat) on a real
broker."""
import datetime
import os
import re
import struct
import subprocess
import threading
import time

import kwire
from clients import consume_all, consumer, create_topic, delete_topic, producer
from confluent_kafka import TopicPartition
from conftest import wait_until

INVALID_RECORD = 87
CORRUPT_MESSAGE = 2
NOT_ENOUGH_REPLICAS = 19


def now_ms():
    return int(time.time() * 1000)


def send_all(broker, topic, records, partition=0, **conf):
    """records: list of (key, value, headers). Produces them to the partition in order and
    returns the delivery reports [(error or None, offset)], one per record."""
    p = producer(broker, **conf)
    reports = [None] * len(records)

    def report(err, msg, i):
        reports[i] = (err, msg.offset())

    for i, (k, v, hs) in enumerate(records):
        while True:
            try:
                p.produce(topic, key=k, value=v, headers=hs, partition=partition,
                          on_delivery=lambda err, msg, i=i: report(err, msg, i))
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0
    return reports


def log_end(broker, topic, partition=0):
    with kwire.Conn(broker.port) as c:
        err, off = kwire.list_offset(c, topic, partition)
        assert err == 0, err
        return off


def delay_store_end(broker):
    """The sum of the delay store's partitions' log ends (0 when it does not exist)."""
    with kwire.Conn(broker.port) as c:
        total = 0
        for p in range(8):
            err, off = kwire.list_offset(c, "__samsa_delay", p)
            if err != 0:
                return 0
            total += off
        return total


def values(got):
    return [v for recs in got.values() for _, _, v, _ in recs]


def test_records_appear_at_their_time_with_key_value_and_headers(broker):
    create_topic(broker, "later", 1)
    t0 = now_ms()
    rfc3339 = datetime.datetime.fromtimestamp((t0 + 900) / 1000, datetime.timezone.utc)
    wanted = {
        b"now": [("samsa.deliver.after", b"0")],
        b"past": [("samsa.deliver.at", str(t0 - 3_600_000).encode())],
        b"50ms": [("samsa.deliver.after", b"50")],
        b"2s": [("samsa.deliver.at", str(t0 + 2000).encode())],
        b"rfc3339": [("samsa.deliver.at", rfc3339.isoformat(timespec="milliseconds").encode())],
        b"plain": [],
    }
    due = {b"now": t0, b"past": t0, b"50ms": t0 + 50, b"2s": t0 + 2000,
           b"rfc3339": t0 + 900, b"plain": t0}
    # A consumer group on the target sees each once, never before its time.
    seen = {}
    stop = threading.Event()

    def consume():
        c = consumer(broker, **{"group.id": "delay-watchers", "enable.partition.eof": False})
        c.subscribe(["later"])
        while not stop.is_set():
            for m in c.consume(num_messages=100, timeout=0.1):
                if m.error() is None:
                    seen.setdefault(m.value(), []).append((now_ms(), m.key(), m.headers()))
        c.close()

    watcher = threading.Thread(target=consume)
    watcher.start()
    try:
        reports = send_all(broker, "later", [(b"k-" + v, v, [("app", b"x")] + hs)
                                             for v, hs in wanted.items()])
        assert all(err is None for err, _ in reports), reports
        wait_until(lambda: len(seen) == len(wanted), 20, what="every record delivered")
        time.sleep(0.3)  # nothing more comes
    finally:
        stop.set()
        watcher.join(30)
    for v, got in seen.items():
        assert len(got) == 1, (v, got)  # exactly once
        at, key, headers = got[0]
        assert at >= due[v], (v, at - due[v])
        assert key == b"k-" + v
        names = [h[0] for h in headers or []]
        assert ("app", b"x") in headers
        if v != b"plain":
            # The delivery headers stay, and the delay store's offset comes with them.
            assert names.count("samsa.delay.id") == 1
            assert int(dict(headers)["samsa.delay.id"]) >= 0
    # A plain record is stored at once; the delayed ones were answered with the delay
    # store's offsets and appended to the partition when due.
    assert log_end(broker, "later") == len(wanted)


def test_malformed_headers_are_refused_and_nothing_is_stored(broker):
    create_topic(broker, "strict", 1)
    bad = [
        [("samsa.deliver.after", b"soon")],
        [("samsa.deliver.after", b"-5")],
        [("samsa.deliver.after", b"99999999999999999999")],
        [("samsa.deliver.at", b"2026-13-01T00:00:00Z")],
        [("samsa.deliver.at", b"1"), ("samsa.deliver.after", b"1")],
        [("samsa.deliver.cancel", b"")],
        [("samsa.deliver.cancel", b"12345")],  # nothing pending has that id
    ]
    for hs in bad:
        (err, _), = send_all(broker, "strict", [(None, b"v", hs)])
        assert err is not None and err.code() == INVALID_RECORD, (hs, err)
    assert log_end(broker, "strict") == 0
    assert delay_store_end(broker) == 0
    # samsa.delay.max.ms bounds how far ahead.
    create_topic(broker, "bounded", 1, **{"samsa.delay.max.ms": "1000"})
    (err, _), = send_all(broker, "bounded", [(None, b"v", [("samsa.deliver.after", b"5000")])])
    assert err is not None and err.code() == INVALID_RECORD
    # samsa.delay.enable=false: the headers are stored as any others, at once.
    create_topic(broker, "undelayed", 1, **{"samsa.delay.enable": "false"})
    (err, off), = send_all(broker, "undelayed",
                           [(None, b"v", [("samsa.deliver.after", b"60000")])])
    assert err is None and off == 0
    assert log_end(broker, "undelayed") == 1


def test_cancel_takes_a_pending_record_back_for_good(broker):
    create_topic(broker, "cancels", 1)
    (err, held), (err2, kept) = send_all(broker, "cancels", [
        (b"a", b"cancelled", [("samsa.deliver.after", b"1500")]),
        (b"b", b"kept", [("samsa.deliver.after", b"1500")])])
    assert err is None and err2 is None and held != kept
    (err, _), = send_all(broker, "cancels",
                         [(None, b"", [("samsa.deliver.cancel", str(held).encode())])])
    assert err is None
    # Twice: it is no longer pending.
    (err, _), = send_all(broker, "cancels",
                         [(None, b"", [("samsa.deliver.cancel", str(held).encode())])])
    assert err is not None and err.code() == INVALID_RECORD
    broker.restart()  # the cancel is durable
    wait_until(lambda: log_end(broker, "cancels") >= 1, 20, what="the kept record")
    time.sleep(0.5)
    assert values(consume_all(broker, "cancels", 1)) == [b"kept"]


def test_idempotent_producer_mixing_delayed_and_plain_batches(broker):
    """A delayed batch uses up its sequence numbers in the target partition: the
    producer's next plain batch continues from it, also after a restart."""
    create_topic(broker, "mixed", 1)
    conf = {"enable.idempotence": True, "linger.ms": 1, "batch.num.messages": 20}
    p = producer(broker, **conf)
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)

    def burst(start, n):
        for i in range(start, start + n):
            hs = [("samsa.deliver.after", str(i % 300).encode())] if (i // 20) % 2 else []
            p.produce("mixed", key=b"k", value=b"%06d" % i, headers=hs, partition=0,
                      on_delivery=report)
            if i % 20 == 19:
                p.poll(0.002)  # keeps batches small and interleaved
        assert p.flush(60) == 0

    burst(0, 2000)
    broker.restart()
    burst(2000, 1000)
    broker.restart(hard=True)
    burst(3000, 500)
    assert not errors, errors[:3]
    got = values(consume_all(broker, "mixed", 1, expected=3500, timeout=60))
    assert sorted(got) == [b"%06d" % i for i in range(3500)]  # each exactly once


def test_kill9_during_a_flood_of_due_records_delivers_each_once(broker):
    create_topic(broker, "flood", 4)
    n = 4000
    t0 = now_ms()
    p = producer(broker, **{"linger.ms": 5})
    first_due = t0 + 1500
    for i in range(n):
        due = first_due + (i * 2000) // n  # due over two seconds
        p.produce("flood", value=b"%06d" % i, partition=i % 4,
                  headers=[("samsa.deliver.at", str(due).encode())])
    assert p.flush(60) == 0
    # Due order is delivery order only for records stored before they fell due: the
    # first batches may be retried while the delay store is created, and a loaded
    # machine may take longer than the margin to send them all.
    stored_in_time = now_ms() < first_due
    # Killed in the middle of the deliveries, and down while the rest fall due.
    wait_until(lambda: sum(log_end(broker, "flood", q) for q in range(4)) > n // 10, 20,
               interval=0.01, what="deliveries under way")
    broker.kill()
    time.sleep(max(0, (first_due + 2500 - now_ms()) / 1000))
    broker.start(broker.port)
    got = consume_all(broker, "flood", 4, expected=n, timeout=60)
    time.sleep(0.5)
    got = consume_all(broker, "flood", 4, expected=n, timeout=60)
    vals = values(got)
    assert sorted(vals) == [b"%06d" % i for i in range(n)], len(vals)
    for part, recs in got.items():  # each partition in due order
        order = [int(v) for _, _, v, _ in recs]
        assert order == sorted(order) or not stored_in_time, part
    with open(broker.stderr_path) as f:
        assert "due already" in f.read()


def test_kcat_delays_with_a_header(broker):
    create_topic(broker, "kcat-later", 1)
    t0 = now_ms()
    subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", "kcat-later", "-p", "0",
                    "-H", "samsa.deliver.after=700"], input=b"hello\n", check=True, timeout=30)
    assert log_end(broker, "kcat-later") == 0 or now_ms() - t0 >= 700
    wait_until(lambda: log_end(broker, "kcat-later") == 1, 20, what="the delivery")
    assert now_ms() - t0 >= 700
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", "kcat-later", "-e",
                          "-f", "%s %h\n"], capture_output=True, check=True, timeout=30)
    assert out.stdout.startswith(b"hello samsa.deliver.after=700,samsa.delay.id=")


def test_compressed_batches_are_looked_into(broker):
    create_topic(broker, "packed", 1)
    t0 = now_ms()
    for codec in ("lz4", "zstd", "gzip", "snappy"):
        reports = send_all(broker, "packed", [(None, b"%s-%d" % (codec.encode(), i),
                                               [("samsa.deliver.after", b"400")])
                                              for i in range(50)],
                           **{"compression.codec": codec, "linger.ms": 20})
        assert all(err is None for err, _ in reports), reports[:3]
    assert log_end(broker, "packed") == 0 or now_ms() - t0 >= 400
    got = values(consume_all(broker, "packed", 1, expected=200, timeout=30))
    assert now_ms() - t0 >= 400
    assert sorted(got) == sorted(b"%s-%d" % (c, i) for c in (b"lz4", b"zstd", b"gzip", b"snappy")
                                 for i in range(50))


def test_records_for_a_deleted_topic_are_dropped_when_due(broker):
    create_topic(broker, "doomed", 1)
    (err, _), = send_all(broker, "doomed", [(None, b"v", [("samsa.deliver.after", b"500")])])
    assert err is None
    delete_topic(broker, "doomed")
    create_topic(broker, "doomed", 1)  # a new topic of the same name gets nothing
    time.sleep(1.0)

    def dropped():
        with open(broker.stderr_path) as f:
            return "doomed-0 no longer exists" in f.read()
    wait_until(dropped, 10, what="the drop logged")
    assert log_end(broker, "doomed") == 0
    broker.restart()
    with open(broker.stderr_path) as f:
        assert ": 0 pending within the window" in f.read().split("==== start 2")[1]


def test_cli_delay_stats_and_list(broker):
    from conftest import SERVER
    cli = os.environ.get("SAMSA_CLI", os.path.join(os.path.dirname(SERVER), "tools", "samsa"))

    def samsa(*args):
        out = subprocess.run([cli, "-b", broker.bootstrap, "delay", *args], capture_output=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.decode()

    assert "no delay store" in samsa("stats")
    create_topic(broker, "shop", 2)
    t0 = now_ms()
    reports = send_all(broker, "shop", [(b"cart-%d" % i, b"v", [("samsa.deliver.at",
                                                                  str(t0 + 3_600_000 * (3 - i)).encode())])
                                        for i in range(3)] +
                       [(b"now", b"v", [("samsa.deliver.after", b"0")])])
    assert all(err is None for err, _ in reports)
    (err, _), = send_all(broker, "shop", [(None, b"", [("samsa.deliver.cancel",
                                                        str(reports[1][1]).encode())])])
    assert err is None
    wait_until(lambda: log_end(broker, "shop") == 1, 10, what="the record due now")
    stats = samsa("stats")
    assert "pending    2\n" in stats, stats
    assert "delivered  1 (late: 0)" in stats and "cancelled  1" in stats, stats
    assert re.search(r"^shop +2 ", stats, re.M), stats
    lines = samsa("list", "shop").splitlines()
    assert lines[0].split() == ["DUE", "PARTITION", "ID", "KEY"]
    # Due order (cart-2 first, due in an hour), with the ids a cancel takes.
    assert [ln.split()[3] for ln in lines[1:]] == ["cart-2", "cart-0"]
    assert [int(ln.split()[2]) for ln in lines[1:]] == [reports[2][1], reports[0][1]]
    broker.restart()  # the counts are kept in the store
    assert "delivered  1 (late: 0)" in samsa("stats")


def test_an_hour_long_delay_with_a_test_clock(broker_factory):
    """Produced due in an hour; the broker restarts with its delay clock an hour ahead
    (SAMSA_TEST_DELAY_CLOCK_OFFSET_MS, for tests): the record fell due while it was down,
    so it is delivered at start-up and counted late. One due in two hours still waits,
    beyond the one-minute window: in the due-time index, rebuilt at the restart."""
    broker = broker_factory(**{"samsa.delay.window.ms": "60000"})
    create_topic(broker, "hourly", 1)
    reports = send_all(broker, "hourly", [(b"1h", b"an hour", [("samsa.deliver.after", b"3600000")]),
                                          (b"2h", b"two hours", [("samsa.deliver.after", b"7200000")])])
    assert all(err is None for err, _ in reports)
    time.sleep(0.3)
    assert log_end(broker, "hourly") == 0
    broker.stop()
    broker.env = dict(os.environ, SAMSA_TEST_DELAY_CLOCK_OFFSET_MS=str(3_600_000 + 1000))
    broker.start(broker.port)
    wait_until(lambda: log_end(broker, "hourly") == 1, 10, what="the hour-long delay")
    time.sleep(0.3)
    assert values(consume_all(broker, "hourly", 1)) == [b"an hour"]
    with open(broker.stderr_path) as f:
        log = f.read().split("==== start 2")[1]
    assert "1 records pending delivery within the window, 1 of them due already" in log
    # Delivered more than a second after its due time: counted late, in the store.
    from conftest import SERVER
    cli = os.environ.get("SAMSA_CLI", os.path.join(os.path.dirname(SERVER), "tools", "samsa"))
    out = subprocess.run([cli, "-b", broker.bootstrap, "delay", "stats"], capture_output=True,
                         timeout=60, check=True).stdout.decode()
    assert "delivered  1 (late: 1)" in out and "pending    1\n" in out, out


def test_a_crash_between_delivery_and_marks_delivers_nothing_twice(broker):
    """The broker is killed (a test's crash point) after a round's records are in their
    partitions and before the delay store marks them delivered: after the restart the
    mover finds them there by their sequence numbers and delivers each exactly once."""
    create_topic(broker, "marked", 2)
    broker.stop()
    broker.env = dict(os.environ, SAMSA_TEST_DELAY_CRASH_BEFORE_MARKS="1")
    broker.start(broker.port)
    p = producer(broker, **{"linger.ms": 20})
    for i in range(400):
        p.produce("marked", value=b"%04d" % i, partition=i % 2,
                  headers=[("samsa.deliver.after", b"400")])
    assert p.flush(30) == 0
    broker.proc.wait(timeout=20)  # it kills itself when the first round is delivered
    assert broker.proc.returncode == -9
    broker.env = None
    broker.start(broker.port)
    got = consume_all(broker, "marked", 2, expected=400, timeout=30)
    time.sleep(0.5)
    got = consume_all(broker, "marked", 2, expected=400, timeout=30)
    assert sorted(values(got)) == [b"%04d" % i for i in range(400)]
    with open(broker.stderr_path) as f:
        assert "delivered before a restart, whose marks were lost" in f.read()


def test_records_beyond_the_window_come_into_it_as_it_moves(broker_factory):
    """With a 500 ms window (samsa.delay.window.ms), records due in 1 to 3 s wait outside
    the wheel and are taken in as the window moves: each still comes at its time, once;
    one cancelled while outside never comes."""
    b = broker_factory(**{"samsa.delay.window.ms": "500"})
    create_topic(b, "windowed", 1)
    t0 = now_ms()
    dues = [t0 + 1000 + 100 * i for i in range(20)]
    reports = send_all(b, "windowed", [(b"%d" % i, b"%02d" % i, [("samsa.deliver.at", str(d).encode())])
                                       for i, d in enumerate(dues)])
    assert all(err is None for err, _ in reports)
    (err, _), = send_all(b, "windowed", [(None, b"", [("samsa.deliver.cancel",
                                                       str(reports[19][1]).encode())])])
    assert err is None
    seen = {}
    c = consumer(b, **{"enable.partition.eof": False})
    c.assign([TopicPartition("windowed", 0, 0)])
    deadline = time.monotonic() + 20
    while len(seen) < 19 and time.monotonic() < deadline:
        for m in c.consume(num_messages=100, timeout=0.1):
            if m.error() is None:
                assert m.value() not in seen
                seen[m.value()] = now_ms()
    time.sleep(0.5)
    assert not [m for m in c.consume(num_messages=100, timeout=0.3) if m.error() is None]
    c.close()
    assert sorted(seen) == [b"%02d" % i for i in range(19)]
    for v, at in seen.items():
        assert at >= dues[int(v)], (v, dues[int(v)] - at)


def test_records_beyond_the_window_survive_kill_9_and_cancels_with_them(broker_factory):
    """Records due beyond a 500 ms window wait in the due-time index, not in memory. Cancels of them are checked against the store itself; after a
    kill -9 the index is rebuilt from the store: every record still comes once, at its
    time, and none cancelled (before or after the restart) ever comes."""
    b = broker_factory(**{"samsa.delay.window.ms": "500"})
    create_topic(b, "indexed", 2)
    t0 = now_ms()
    dues = [t0 + 5000 + 97 * i for i in range(30)]
    reports = send_all(b, "indexed", [(b"%d" % i, b"%02d" % i, [("samsa.deliver.at", str(d).encode())])
                                      for i, d in enumerate(dues)], partition=0)
    assert all(err is None for err, _ in reports)

    def cancel(i, partition=0):
        (err, _), = send_all(b, "indexed", [(None, b"", [("samsa.deliver.cancel",
                                                          str(reports[i][1]).encode())])],
                             partition=partition)
        return err

    assert cancel(3) is None
    assert cancel(3).code() == INVALID_RECORD  # not pending any more
    assert cancel(4, partition=1).code() == INVALID_RECORD  # not for this partition
    (err, _), = send_all(b, "indexed", [(None, b"", [("samsa.deliver.cancel", b"99999")])],
                         partition=0)
    assert err.code() == INVALID_RECORD
    b.restart(hard=True)
    with open(b.stderr_path) as f:  # none of them in memory: all in the index
        assert ": 0 pending within the window" in f.read().split("==== start 2")[1]
    assert cancel(17) is None  # found in the store after the restart
    assert cancel(3).code() == INVALID_RECORD  # the first cancel held across it
    seen = {}
    c = consumer(b, **{"enable.partition.eof": False})
    c.assign([TopicPartition("indexed", 0, 0), TopicPartition("indexed", 1, 0)])
    deadline = time.monotonic() + 30
    while len(seen) < 28 and time.monotonic() < deadline:
        for m in c.consume(num_messages=100, timeout=0.1):
            if m.error() is None:
                assert m.value() not in seen
                seen[m.value()] = now_ms()
    time.sleep(0.7)
    assert not [m for m in c.consume(num_messages=100, timeout=0.3) if m.error() is None]
    c.close()
    assert sorted(seen) == [b"%02d" % i for i in range(30) if i not in (3, 17)]
    for v, at in seen.items():
        assert at >= dues[int(v)], (v, dues[int(v)] - at)


def test_a_damaged_index_costs_memory_not_records(broker_factory):
    """Every due-time index file damaged under a running broker: when the window reaches
    them the damage is found, the delay partition is loaded again from the store with
    everything in memory, and every record still comes once."""
    b = broker_factory(**{"samsa.delay.window.ms": "500"})
    create_topic(b, "damaged", 1)
    t0 = now_ms()
    n = 33000  # more than the index buffers (32,768): written to its files
    p = producer(b, **{"linger.ms": 20})
    for i in range(n):
        p.produce("damaged", value=b"%05d" % i, partition=0,
                  headers=[("samsa.deliver.at", str(t0 + 8000 + (i % 20) * 50).encode())])
        p.poll(0)
    assert p.flush(30) == 0
    index_dir = os.path.join(b.data_dir, "delay-index")
    files = [os.path.join(d, f) for d, _, fs in os.walk(index_dir) for f in fs if f.endswith(".due")]
    assert files
    for path in files:
        with open(path, "r+b") as f:
            f.write(b"\xff" * 24)
    got = consume_all(b, "damaged", 1, expected=n, timeout=40)
    assert sorted(values(got)) == [b"%05d" % i for i in range(n)]
    with open(b.stderr_path) as f:
        assert "the due-time index of delayed records failed" in f.read()


def samsa_delay_store(conn, delay_partition, topic, partition, items, acks=-1):
    """SamsaDelayStore v0 (key 10001, Samsa's own, between brokers): items are
    (cancel_id, due_ms, envelope bytes or None). Returns (error, message, base_offset)."""
    body = (kwire.i16(acks) + kwire.i32(10000) + kwire.i32(delay_partition) + kwire.cstring(topic) +
            kwire.i32(partition) +
            kwire.carray([kwire.i64(c) + kwire.i64(d) + (kwire.uvarint(0) if e is None else
                                                         kwire.uvarint(len(e) + 1) + e) + kwire.TAGS
                          for c, d, e in items]) + kwire.TAGS)
    r = conn.request(10001, 0, body, flexible=True)
    err, msg, base = r.i16(), r.cstring(), r.i64()
    r.tags()
    return err, msg, base


def test_the_delay_store_takes_what_another_broker_sends(broker):
    """SamsaDelayStore, as the leader of a target partition sends it to the leader of its
    delay partition in a cluster: envelopes stored and delivered when due, cancels checked
    against that same target, a foreign envelope refused; not listed in ApiVersions."""
    create_topic(broker, "relayed", 2)
    t0 = now_ms()
    (err, first), = send_all(broker, "relayed", [(b"k", b"v", [("samsa.deliver.at", str(t0 + 3_600_000).encode())])])
    assert err is None
    # The envelope the broker stored for it, read back from the store (its delay
    # partition is the one holding a record).
    c = consumer(broker, **{"enable.partition.eof": True})
    dpart = next(p for p in range(8) if log_end(broker, "__samsa_delay", p) > 0)
    c.assign([TopicPartition("__samsa_delay", dpart, first)])
    m = next(m for m in iter(lambda: c.poll(5), None) if m.error() is None)
    c.close()
    envelope, due = m.value(), t0 + 3_600_000
    with kwire.Conn(broker.port) as k:
        api_keys = [key for key, _, _ in kwire.api_versions_v0(k)[1]]
        assert 0 in api_keys and 10001 not in api_keys
        # Stored again (a second record), due in 1.5 s, as the batch of an idempotent
        # producer (id 4242, epoch 0, sequence 7): acks=all answers once durable.
        soon = t0 + 1500
        at = 1 + 8 + 4 + 2 + len(b"relayed") + 16  # the producer id, in the envelope
        again = (envelope[:1] + struct.pack(">q", soon) + envelope[9:at] +
                 struct.pack(">qhii", 4242, 0, 7, 7) + envelope[at + 18:])
        err, msg, base = samsa_delay_store(k, dpart, "relayed", 0, [(-1, soon, again)])
        assert (err, msg) == (0, None) and base > first
        # Sent again (its first answer lost, say): answered as stored, not stored twice.
        end = log_end(broker, "__samsa_delay", dpart)
        assert samsa_delay_store(k, dpart, "relayed", 0, [(-1, soon, again)]) == (0, None, base)
        assert log_end(broker, "__samsa_delay", dpart) == end
        # A cancel of a record pending for another partition, or of none: refused.
        err, msg, _ = samsa_delay_store(k, dpart, "relayed", 1, [(first, 0, None)])
        assert err == INVALID_RECORD and "no record %d is pending delivery to relayed-1" % first in msg
        # An envelope for another target than the request names, or due at another time.
        assert samsa_delay_store(k, dpart, "relayed", 1, [(-1, soon, again)])[0] == CORRUPT_MESSAGE
        assert samsa_delay_store(k, dpart, "relayed", 0, [(-1, soon + 1, again)])[0] == CORRUPT_MESSAGE
        assert samsa_delay_store(k, 99, "relayed", 0, [(-1, soon, again)])[0] == NOT_ENOUGH_REPLICAS
        assert samsa_delay_store(k, dpart, "relayed", 0, [(-1, soon, again)], acks=0)[0] == 21
        # The first cancelled this way, as its own target.
        assert samsa_delay_store(k, dpart, "relayed", 0, [(first, 0, None)])[:2] == (0, None)
    wait_until(lambda: log_end(broker, "relayed", 0) == 1, 10, what="the relayed record")
    time.sleep(0.5)
    assert values(consume_all(broker, "relayed", 2)) == [b"v"]


def test_an_idempotent_producers_delayed_batch_counts_in_its_partitions_sequence(broker):
    """A retry of a delayed batch already stored is a success without storing it again
    (offset -1); a gap is OUT_OF_ORDER_SEQUENCE_NUMBER; the producer's next plain batch
    continues the sequence after the delayed one."""
    OUT_OF_ORDER_SEQUENCE = 45
    create_topic(broker, "sequenced", 1)
    held = [("samsa.deliver.after".encode(), b"300")]
    with kwire.Conn(broker.port) as c:
        err, pid, epoch = kwire.init_producer_id_v0(c)
        assert err == 0

        def batch(seq, tag, headers=()):
            return kwire.record_batch([(None, b"%s-%d" % (tag, seq + i), list(headers))
                                       for i in range(2)],
                                      producer_id=pid, producer_epoch=epoch, base_sequence=seq)

        # The first delayed produce creates the delay store: NOT_ENOUGH_REPLICAS (19,
        # retriable) until it is open, as a client would retry.
        deadline = time.monotonic() + 10
        while (r := kwire.produce(c, "sequenced", 0, batch(0, b"held", held)))[0] == 19:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        err, first = r
        assert err == 0 and first >= 0
        assert kwire.produce(c, "sequenced", 0, batch(0, b"held", held)) == (0, -1)  # a retry
        assert kwire.produce(c, "sequenced", 0, batch(5, b"gap", held))[0] == OUT_OF_ORDER_SEQUENCE
        assert kwire.produce(c, "sequenced", 0, batch(2, b"plain")) == (0, 0)
    wait_until(lambda: log_end(broker, "sequenced") == 4, 10, what="the delayed pair")
    time.sleep(0.5)
    assert values(consume_all(broker, "sequenced", 1)) == [b"plain-2", b"plain-3", b"held-0", b"held-1"]
