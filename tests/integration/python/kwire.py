"""Minimal Kafka wire-protocol helpers for raw-socket tests.

Encodes request frames (header v1, or v2 for flexible versions), record batches
(magic 2, CRC32C) and decodes the handful of responses the tests read. Written
from the protocol guide; deliberately independent of the broker's own codec.
"""
import socket
import struct
import time

# ---------------------------------------------------------------- CRC32C


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value

# ---------------------------------------------------------------- primitives


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def nbytes(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items):
    """items: list of already-encoded elements (classic int32 count)."""
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v):
    return uvarint((v << 1) ^ (v >> 63))


def cstring(s):
    if s is None:
        return uvarint(0)
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


def carray(items):
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(items)


TAGS = uvarint(0)  # empty tagged-field section

# ---------------------------------------------------------------- record batches


def record(offset_delta, key, value, ts_delta=0, headers=()):
    body = i8(0) + varint(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        body += varint(len(hk)) + hk + varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_ts=None, corrupt_crc=False, producer_id=-1, producer_epoch=-1,
                 base_sequence=-1, ts_deltas=None, transactional=False):
    """records: list of (key, value) bytes, or (key, value, headers) with headers a list of
    (key, value) bytes. Returns one magic-2 batch (an idempotent producer's when
    producer_id >= 0). ts_deltas: each record's timestamp - base_ts (default all 0)."""
    if base_ts is None:
        base_ts = int(time.time() * 1000)
    deltas = ts_deltas or [0] * len(records)
    recs = b"".join(record(i, r[0], r[1], ts_delta=deltas[i], headers=r[2] if len(r) > 2 else ())
                    for i, r in enumerate(records))
    after_crc = (
        i16(0x10 if transactional else 0)  # attributes: no compression, create time
        + i32(len(records) - 1)  # last offset delta
        + i64(base_ts)
        + i64(base_ts + max(deltas))
        + i64(producer_id)
        + i16(producer_epoch)
        + i32(base_sequence)
        + i32(len(records))
        + recs
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0x1
    after_len = i32(-1) + i8(2) + struct.pack(">I", crc) + after_crc
    return i64(0) + i32(len(after_len)) + after_len


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError("truncated: need %d bytes at %d of %d" % (n, self.p, len(self.d)))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def nbytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, fn):
        n = self.i32()
        return None if n < 0 else [fn(self) for _ in range(n)]

    def uvarint(self):
        shift = v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def cstring(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def carray(self, fn):
        n = self.uvarint()
        return None if n == 0 else [fn(self) for _ in range(n - 1)]

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def done(self):
        return self.p >= len(self.d)


def decode_batches(data):
    """Decodes a records blob into [(offset, key, value)], checking each CRC.
    A trailing partial batch (allowed in fetch responses) is ignored."""
    out = []
    r = Reader(data or b"")
    while len(r.d) - r.p >= 12:
        base_offset = r.i64()
        length = r.i32()
        if len(r.d) - r.p < length:
            break
        b = Reader(r.take(length))
        b.i32()  # partition leader epoch
        magic = b.i8()
        assert magic == 2, "magic %d" % magic
        crc = b.u32()
        assert crc32c(b.d[b.p:]) == crc, "bad CRC in fetched batch at offset %d" % base_offset
        attrs = b.i16()
        assert attrs & 0x7 == 0, "compressed batch not expected"
        b.i32()
        b.i64()
        b.i64()
        b.i64()
        b.i16()
        b.i32()
        n = b.i32()
        for _ in range(n):
            b.varint()  # length
            b.i8()
            b.varint()
            od = b.varint()
            kl = b.varint()
            k = None if kl < 0 else b.take(kl)
            vl = b.varint()
            v = None if vl < 0 else b.take(vl)
            for _ in range(b.varint()):
                b.take(b.varint())
                b.take(b.varint())
            out.append((base_offset + od, k, v))
    return out


# ---------------------------------------------------------------- connection


class Closed(Exception):
    pass


class Conn:
    """One blocking client connection with a per-operation timeout."""

    def __init__(self, port, timeout=10.0, client_id="raw-test", host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.client_id = client_id
        self.corr = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def frame(self, api_key, version, body, flexible=False, corr=None):
        self.corr += 1
        c = self.corr if corr is None else corr
        hdr = i16(api_key) + i16(version) + i32(c) + string(self.client_id)
        if flexible:
            hdr += TAGS
        payload = hdr + body
        return i32(len(payload)) + payload

    def send(self, api_key, version, body, flexible=False):
        self.send_raw(self.frame(api_key, version, body, flexible))
        return self.corr

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise Closed("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def recv_frame(self):
        (n,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(n)

    def request(self, api_key, version, body, flexible=False, flexible_response=None):
        """Sends one request and returns a Reader positioned after the response header."""
        corr = self.send(api_key, version, body, flexible)
        r = Reader(self.recv_frame())
        got = r.i32()
        assert got == corr, "correlation id %d, expected %d" % (got, corr)
        if flexible if flexible_response is None else flexible_response:
            r.tags()
        return r

    def expect_closed(self, timeout=5.0):
        """True if the peer closes (EOF or reset) within timeout without sending a
        response; raises AssertionError if it answers or stays open."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            raise AssertionError("connection still open %.1fs after the bad request" % timeout)
        if data:
            raise AssertionError("broker answered instead of closing: %r" % data[:64])
        return True


# ---------------------------------------------------------------- requests


def produce(conn, topic, partition, batch, acks=-1, version=3, timeout_ms=10000,
            transactional_id=None):
    """Produce v3 (classic). Returns (error_code, base_offset)."""
    body = (
        string(transactional_id)
        + i16(acks)
        + i32(timeout_ms)
        + array([string(topic) + array([i32(partition) + nbytes(batch)])])
    )
    r = conn.request(0, version, body)
    topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
    (_, parts), = topics
    (_, err, base, _), = parts
    return err, base


def init_producer_id_v0(conn, transactional_id=None, timeout_ms=60000):
    """InitProducerId v0. Returns (error_code, producer_id, producer_epoch)."""
    r = conn.request(22, 0, string(transactional_id) + i32(timeout_ms))
    r.i32()  # throttle
    return r.i16(), r.i64(), r.i16()


def list_offset(conn, topic, partition, timestamp=-1, isolation_level=None):
    """ListOffsets v1: -1 latest (log end), -2 earliest; with isolation_level (0
    read_uncommitted, 1 read_committed) v2. Returns (error, offset)."""
    version = 1 if isolation_level is None else 2
    body = i32(-1) + (i8(isolation_level) if version == 2 else b"")
    body += array([string(topic) + array([i32(partition) + i64(timestamp)])])
    r = conn.request(2, version, body)
    if version == 2:
        r.i32()  # throttle time
    topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
    (_, parts), = topics
    (_, err, _, off), = parts
    return err, off


def list_offsets_v7(conn, topic, partition, timestamp):
    """ListOffsets v7 (flexible; -3 = max timestamp needs v7). Returns (error, ts, offset)."""
    body = (i32(-1) + i8(0)
            + carray([cstring(topic) + carray(
                [i32(partition) + i32(-1) + i64(timestamp) + TAGS])
                + TAGS]) + TAGS)
    r = conn.request(2, 7, body, flexible=True)
    r.i32()

    def part(r):
        p = (r.i32(), r.i16(), r.i64(), r.i64(), r.i32())
        r.tags()
        return p

    def topic(r):
        t = (r.cstring(), r.carray(part))
        r.tags()
        return t

    ((_, ((_, err, ts, off, _),)),) = r.carray(topic)
    return err, ts, off


def find_coordinator_v1(conn, key, key_type=0):
    """FindCoordinator v1. Returns (error, node id)."""
    r = conn.request(10, 1, string(key) + i8(key_type))
    r.i32()
    err = r.i16()
    r.string()
    return err, r.i32()


def offset_fetch_v7(conn, group, topic, partition, require_stable=False):
    """OffsetFetch v7 (flexible) of one partition. Returns (partition error, offset)."""
    body = (cstring(group) + carray([cstring(topic) + carray([i32(partition)]) + TAGS])
            + i8(1 if require_stable else 0) + TAGS)
    r = conn.request(9, 7, body, flexible=True)
    r.i32()

    def part(r):
        p = (r.i32(), r.i64(), r.i32(), r.cstring(), r.i16())
        r.tags()
        return p

    def one_topic(r):
        t = (r.cstring(), r.carray(part))
        r.tags()
        return t

    ((_, ((_, off, _, _, err),)),) = r.carray(one_topic)
    return err, off


def fetch_body(topic, partition, offset, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20):
    return (
        i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0)
        + array([string(topic) + array([i32(partition) + i64(offset) + i32(max_bytes)])])
    )


def parse_fetch_v4(r):
    """Returns (error, high_watermark, records_bytes) of the single partition."""
    r.i32()  # throttle

    def part(r):
        p = r.i32()
        err = r.i16()
        hw = r.i64()
        r.i64()
        r.array(lambda r: (r.i64(), r.i64()))
        return p, err, hw, r.nbytes()

    (_, parts), = r.array(lambda r: (r.string(), r.array(part)))
    (_, err, hw, recs), = parts
    return err, hw, recs


def fetch(conn, topic, partition, offset, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20):
    r = conn.request(1, 4, fetch_body(topic, partition, offset, max_wait_ms, min_bytes, max_bytes))
    return parse_fetch_v4(r)


def metadata_v1(conn, topics):
    """Returns {name: (error, num_partitions)}."""
    body = array([string(t) for t in topics]) if topics is not None else i32(-1)
    r = conn.request(3, 1, body)
    r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
    r.i32()

    def topic(r):
        err = r.i16()
        name = r.string()
        r.i8()
        parts = r.array(lambda r: (r.i16(), r.i32(), r.i32(), r.array(Reader.i32), r.array(Reader.i32)))
        return name, (err, len(parts or []))

    return dict(r.array(topic))


def create_topics_v0(conn, name, partitions=1, rf=1, configs=(), timeout_ms=10000):
    body = array([
        string(name) + i32(partitions) + i16(rf) + array([])
        + array([string(k) + string(v) for k, v in configs])
    ]) + i32(timeout_ms)
    r = conn.request(19, 0, body)
    return dict(r.array(lambda r: (r.string(), r.i16())))


def delete_records_v0(conn, topic, partition, offset, timeout_ms=10000):
    """Returns (error, low_watermark)."""
    body = array([string(topic) + array([i32(partition) + i64(offset)])]) + i32(timeout_ms)
    r = conn.request(21, 0, body)
    r.i32()
    (_, parts), = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i64(), r.i16()))))
    (_, low, err), = parts
    return err, low


def incremental_alter_configs_v0(conn, resource_type, name, ops, validate_only=False):
    """ops: [(key, op, value)]; op 0 set, 1 delete. Returns [(error, message)]."""
    body = array([
        i8(resource_type) + string(name)
        + array([string(k) + i8(op) + string(v) for k, op, v in ops])
    ]) + i8(1 if validate_only else 0)
    r = conn.request(44, 0, body)
    r.i32()
    return r.array(lambda r: (r.i16(), r.string(), r.i8(), r.string()))


def describe_cluster_v0(conn):
    """Flexible v0. Returns dict with error, cluster_id, controller, brokers."""
    body = i8(0) + TAGS  # include_cluster_authorized_operations=false
    r = conn.request(60, 0, body, flexible=True)
    r.i32()  # throttle
    err = r.i16()
    msg = r.cstring()

    def broker(r):
        b = (r.i32(), r.cstring(), r.i32(), r.cstring())
        r.tags()
        return b

    cluster_id = r.cstring()
    controller = r.i32()
    brokers = r.carray(broker)
    r.i32()
    r.tags()
    return {"error": err, "message": msg, "cluster_id": cluster_id,
            "controller": controller, "brokers": brokers}


def describe_producers_v0(conn, topics):
    """Flexible v0. topics: {name: [partition, ...]}. Returns {(name, partition):
    (error, [(producer_id, epoch, last_sequence, last_timestamp, coordinator_epoch,
    current_txn_start_offset), ...])}."""
    body = carray([cstring(t) + carray([i32(p) for p in parts]) + TAGS
                   for t, parts in topics.items()]) + TAGS
    r = conn.request(61, 0, body, flexible=True)
    r.i32()  # throttle
    out = {}

    def producer(r):
        p = (r.i64(), r.i32(), r.i32(), r.i64(), r.i32(), r.i64())
        r.tags()
        return p

    def topic(r):
        name = r.cstring()

        def partition(r):
            index, err = r.i32(), r.i16()
            r.cstring()  # error message
            out[(name, index)] = (err, r.carray(producer))
            r.tags()

        r.carray(partition)
        r.tags()

    r.carray(topic)
    r.tags()
    return out


def add_partitions_to_txn_v5(conn, transactional_id, producer_id, producer_epoch, topics,
                             verify_only=False):
    """Flexible v5, as a partition's leader sends it (one transaction). topics: {name:
    [partition, ...]}. Returns (error, {(name, partition): error})."""
    body = carray([cstring(transactional_id) + i64(producer_id) + i16(producer_epoch)
                   + i8(1 if verify_only else 0)
                   + carray([cstring(t) + carray([i32(p) for p in parts]) + TAGS
                             for t, parts in topics.items()]) + TAGS]) + TAGS
    r = conn.request(24, 5, body, flexible=True)
    r.i32()  # throttle
    err, out = r.i16(), {}

    def transaction(r):
        r.cstring()
        _partition_errors(r, out)
        r.tags()

    r.carray(transaction)
    r.tags()
    return err, out


def _partition_errors(r, out):
    """A flexible [Name, [PartitionIndex, ErrorCode]] answer into out[(name, index)]."""
    def topic(r):
        name = r.cstring()

        def partition(r):
            index = r.i32()
            out[(name, index)] = r.i16()
            r.tags()

        r.carray(partition)
        r.tags()

    r.carray(topic)


def txn_offset_commit_v5(conn, transactional_id, group, producer_id, producer_epoch, offsets):
    """Flexible v5 (transaction version 2: no AddOffsetsToTxn before it). offsets:
    {(topic, partition): offset}. Returns {(topic, partition): error}."""
    topics = {}
    for (t, p), off in offsets.items():
        topics.setdefault(t, []).append(i32(p) + i64(off) + i32(-1) + cstring(None) + TAGS)
    body = (cstring(transactional_id) + cstring(group) + i64(producer_id) + i16(producer_epoch)
            + i32(-1) + cstring("") + cstring(None)
            + carray([cstring(t) + carray(parts) + TAGS for t, parts in topics.items()]) + TAGS)
    r = conn.request(28, 5, body, flexible=True)
    r.i32()  # throttle
    out = {}
    _partition_errors(r, out)
    r.tags()
    return out


def describe_transactions_v0(conn, transactional_id):
    """Flexible v0, one id. Returns (error, state, [(topic, partition), ...])."""
    r = conn.request(65, 0, carray([cstring(transactional_id)]) + TAGS, flexible=True)
    r.i32()  # throttle
    (answer,) = r.carray(lambda r: _described_transaction(r))
    r.tags()
    return answer


def _described_transaction(r):
    err, _, state = r.i16(), r.cstring(), r.cstring()
    r.i32(), r.i64(), r.i64(), r.i16()  # timeout, start, producer id and epoch

    def topic(r):
        name = r.cstring()
        parts = r.carray(lambda r: r.i32())
        r.tags()
        return [(name, p) for p in parts]

    parts = [tp for t in r.carray(topic) for tp in t]
    r.tags()
    return err, state, parts


def api_versions_v0(conn):
    r = conn.request(18, 0, b"")
    err = r.i16()
    apis = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
    return err, apis


def offset_for_leader_epoch_v2(conn, topic, partition, leader_epoch, current_leader_epoch=-1):
    """Returns (error, leader_epoch, end_offset)."""
    body = array([string(topic) + array([i32(partition) + i32(current_leader_epoch) + i32(leader_epoch)])])
    r = conn.request(23, 2, body)
    r.i32()
    (_, parts), = r.array(lambda r: (r.string(), r.array(lambda r: (r.i16(), r.i32(), r.i32(), r.i64()))))
    (err, _, epoch, end), = parts
    return err, epoch, end


def batch_leader_epochs(data):
    """The partitionLeaderEpoch of each complete batch in a records blob."""
    out = []
    r = Reader(data or b"")
    while len(r.d) - r.p >= 12:
        r.i64()
        length = r.i32()
        if len(r.d) - r.p < length:
            break
        out.append(Reader(r.take(length)).i32())
    return out
