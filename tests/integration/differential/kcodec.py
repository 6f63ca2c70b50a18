"""A schema-driven Kafka codec for the differential tests.

Reads the project's own schema files (src/proto/schema/*.schema) with the parser of
src/proto/gen/protogen.py and encodes/decodes any message of any version as plain
dicts keyed by Kafka's CamelCase field names. Decoding Kafka's own answers with
these schemas also checks the schemas: a field Samsa's schema lays out wrongly shows
up as a decode error or as trailing bytes.

Encoding: a missing key takes the field's default for that version; fields absent
from the version are not written (a non-default value there is an error, so a test
cannot silently send something the version cannot carry). Tagged fields are written
when they differ from their default.

Decoding: every field present in the version is returned (absent ones are not);
tagged fields take their default when not sent; unknown tags are collected under
"_unknown_tags" (a dict tag -> bytes) so a comparison can see them.
"""
import glob
import os
import struct
import sys
import uuid as uuidlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "src", "proto", "gen"))
import protogen  # noqa: E402  (the project's schema parser)

SCHEMA_DIR = os.path.join(REPO, "src", "proto", "schema")


class CodecError(Exception):
    pass


def _load():
    by_name, by_key = {}, {}
    for path in sorted(glob.glob(os.path.join(SCHEMA_DIR, "*.schema"))):
        api = protogen.parse_schema(path)
        protogen.check(api)
        by_name[api.name] = api
        by_key[api.key] = api
    return by_name, by_key


APIS, APIS_BY_KEY = _load()

# ---------------------------------------------------------------- defaults

_INT_RANGES = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "uint16": (0, (1 << 16) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
}
_PACK = {"int8": ">b", "int16": ">h", "uint16": ">H", "int32": ">i", "int64": ">q",
         "float64": ">d"}
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def default_of(f, v):
    d = f.default
    if f.kind == "prim":
        if f.type == "bool":
            return d == "true"
        if f.type == "float64":
            return float(d) if d is not None else 0.0
        return int(d, 0) if d is not None else 0
    if f.kind == "slice":
        if d == "null":
            return None
        if f.type == "string":
            return d[1:-1] if d is not None else ""
        return b"" if d is None else d[1:-1].encode()
    if f.kind == "uuid":
        return ZERO_UUID
    if f.kind in ("structarray", "primarray"):
        return None if d == "null" else []
    if f.kind == "struct":
        return {c.name: default_of(c, v) for c in f.children if c.present_in(v)}
    raise AssertionError(f.kind)


# ---------------------------------------------------------------- writer


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n):
    return uvarint((n << 1) ^ (n >> 63))


class _W:
    def __init__(self, flex):
        self.flex = flex
        self.out = bytearray()

    def prim(self, t, val):
        if t == "bool":
            self.out += b"\x01" if val else b"\x00"
        else:
            self.out += struct.pack(_PACK[t], val)

    def length(self, n, classic_fmt):
        """n is None for null."""
        if self.flex:
            self.out += uvarint(0 if n is None else n + 1)
        else:
            self.out += struct.pack(classic_fmt, -1 if n is None else n)

    def string(self, s):
        if s is None:
            self.length(None, ">h")
            return
        b = s.encode() if isinstance(s, str) else bytes(s)
        self.length(len(b), ">h")
        self.out += b

    def bytes_(self, b):
        if b is None:
            self.length(None, ">i")
            return
        self.length(len(b), ">i")
        self.out += b

    def uuid(self, u):
        self.out += uuidlib.UUID(u).bytes if isinstance(u, str) else bytes(u)


def _encode_value(w, f, val, v, path):
    nullable = protogen.in_range(f.nullable, v)
    if val is None and f.kind in ("slice", "structarray", "primarray") and not nullable:
        raise CodecError("%s: null in v%d where the field is not nullable" % (path, v))
    if f.kind == "prim":
        if f.type in _INT_RANGES:
            lo, hi = _INT_RANGES[f.type]
            if not isinstance(val, int) or not lo <= val <= hi:
                raise CodecError("%s: %r is not an %s" % (path, val, f.type))
        w.prim(f.type, val)
    elif f.kind == "slice":
        if f.type == "string":
            w.string(val)
        else:
            w.bytes_(val)
    elif f.kind == "uuid":
        w.uuid(val)
    elif f.kind == "primarray":
        if val is None:
            w.length(None, ">i")
            return
        w.length(len(val), ">i")
        for i, e in enumerate(val):
            if f.elem == "string":
                w.string(e)
            else:
                w.prim(f.elem, e)
    elif f.kind == "structarray":
        if val is None:
            w.length(None, ">i")
            return
        w.length(len(val), ">i")
        for i, e in enumerate(val):
            _encode_struct(w, f.children, e, v, "%s[%d]" % (path, i))
    elif f.kind == "struct":
        _encode_struct(w, f.children, val, v, path)


def _encode_struct(w, fields, obj, v, path):
    obj = dict(obj or {})
    known = {f.name for f in fields}
    extra = set(obj) - known
    if extra:
        raise CodecError("%s: unknown fields %s" % (path, sorted(extra)))
    tagged = []
    for f in fields:
        p = "%s.%s" % (path, f.name) if path else f.name
        if not f.present_in(v):
            if f.name in obj and obj[f.name] != default_of(f, v):
                raise CodecError("%s: not in v%d (value %r)" % (p, v, obj[f.name]))
            continue
        val = obj.get(f.name, default_of(f, v))
        if f.is_tagged_in(v):
            if val != default_of(f, v):
                sub = _W(True)
                _encode_value(sub, f, val, v, p)
                tagged.append((f.tag, bytes(sub.out)))
            continue
        _encode_value(w, f, val, v, p)
    if w.flex:
        w.out += uvarint(len(tagged))
        for tag, data in sorted(tagged):
            w.out += uvarint(tag) + uvarint(len(data)) + data


def encode(api_name, kind, version, obj):
    api = APIS[api_name]
    w = _W(api.flexible(version))
    _encode_struct(w, api.messages[kind].fields, obj, version, "")
    return bytes(w.out)


# ---------------------------------------------------------------- reader


class Reader:
    def __init__(self, data, flex=False):
        self.d = bytes(data)
        self.p = 0
        self.flex = flex

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise CodecError("truncated: need %d bytes at %d of %d" % (n, self.p, len(self.d)))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def prim(self, t):
        if t == "bool":
            b = self.take(1)[0]
            if b > 1:
                raise CodecError("bool byte %d" % b)
            return b == 1
        fmt = _PACK[t]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def uvarint(self):
        shift = n = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 63:
                raise CodecError("varint too long")

    def varint(self):
        n = self.uvarint()
        return (n >> 1) ^ -(n & 1)

    def length(self, classic_fmt):
        if self.flex:
            n = self.uvarint()
            return None if n == 0 else n - 1
        n = struct.unpack(classic_fmt, self.take(struct.calcsize(classic_fmt)))[0]
        if n < -1:
            raise CodecError("negative length %d" % n)
        return None if n == -1 else n

    def string(self):
        n = self.length(">h")
        if n is None:
            return None
        b = self.take(n)
        try:
            return b.decode()
        except UnicodeDecodeError:
            return b

    def bytes_(self):
        n = self.length(">i")
        return None if n is None else self.take(n)

    def done(self):
        return self.p >= len(self.d)


def _decode_value(r, f, v, path):
    nullable = protogen.in_range(f.nullable, v)

    def nullcheck(val):
        if val is None and not nullable:
            raise CodecError("%s: null in v%d where the field is not nullable" % (path, v))
        return val

    if f.kind == "prim":
        return r.prim(f.type)
    if f.kind == "slice":
        return nullcheck(r.string() if f.type == "string" else r.bytes_())
    if f.kind == "uuid":
        return str(uuidlib.UUID(bytes=r.take(16)))
    if f.kind == "primarray":
        n = nullcheck(r.length(">i"))
        if n is None:
            return None
        if f.elem == "string":
            return [r.string() for _ in range(n)]
        return [r.prim(f.elem) for _ in range(n)]
    if f.kind == "structarray":
        n = nullcheck(r.length(">i"))
        if n is None:
            return None
        if n > len(r.d) - r.p:
            raise CodecError("%s: array count %d larger than the remaining bytes" % (path, n))
        return [_decode_struct(r, f.children, v, "%s[%d]" % (path, i)) for i in range(n)]
    if f.kind == "struct":
        return _decode_struct(r, f.children, v, path)
    raise AssertionError(f.kind)


def _decode_struct(r, fields, v, path):
    out = {}
    tagged = {}
    for f in fields:
        if not f.present_in(v):
            continue
        p = "%s.%s" % (path, f.name) if path else f.name
        if f.is_tagged_in(v):
            out[f.name] = default_of(f, v)
            tagged[f.tag] = (f, p)
            continue
        out[f.name] = _decode_value(r, f, v, p)
    if r.flex:
        unknown = {}
        for _ in range(r.uvarint()):
            tag = r.uvarint()
            data = r.take(r.uvarint())
            if tag in tagged:
                f, p = tagged[tag]
                sub = Reader(data, True)
                out[f.name] = _decode_value(sub, f, v, p)
                if not sub.done():
                    raise CodecError("%s: %d bytes left in tagged field" % (p, len(sub.d) - sub.p))
            else:
                unknown[tag] = data
        if unknown:
            out["_unknown_tags"] = unknown
    return out


def decode(api_name, kind, version, data, allow_trailing=False):
    api = APIS[api_name]
    r = Reader(data, api.flexible(version))
    out = _decode_struct(r, api.messages[kind].fields, version, "")
    if not r.done() and not allow_trailing:
        raise CodecError("%s %s v%d: %d trailing bytes" % (api_name, kind, version, len(r.d) - r.p))
    return out


def request_flexible(api_name, version):
    return APIS[api_name].flexible(version)


def response_header_flexible(api_name, version):
    # ApiVersions always answers with response header v0 (KIP-511).
    return api_name != "ApiVersions" and APIS[api_name].flexible(version)


# ---------------------------------------------------------------- record batches

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    tab = _CRC_TABLE
    for b in data:
        crc = tab[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def _record(offset_delta, ts_delta, key, value, headers):
    body = b"\x00" + varint(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        hk = hk.encode() if isinstance(hk, str) else hk
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_ts=1700000000000, attributes=0, producer_id=-1,
                 producer_epoch=-1, base_sequence=-1, base_offset=0, corrupt_crc=False,
                 compressed_payload=None, ts_step=1):
    """One magic-2 record batch. records: [(key, value)] or [(key, value, headers)].
    Timestamps are base_ts + i * ts_step (fixed by default, so both brokers store the
    same bytes). compressed_payload replaces the records section (with attributes
    carrying the codec) for compression tests."""
    recs = []
    for i, rec in enumerate(records):
        k, val = rec[0], rec[1]
        hdrs = rec[2] if len(rec) > 2 else ()
        recs.append(_record(i, i * ts_step, k, val, hdrs))
    payload = b"".join(recs) if compressed_payload is None else compressed_payload
    n = len(records)
    after_crc = (struct.pack(">hiqqqhii", attributes, n - 1, base_ts, base_ts + (n - 1) * ts_step,
                             producer_id, producer_epoch, base_sequence, n) + payload)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 1
    after_len = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", base_offset, len(after_len)) + after_len


def decode_batches(data):
    """Parses a records blob into (batches, trailing): batches is a list of dicts
    (base offset, counts, attributes, timestamps, records with key/value/headers,
    size on the wire, crc_ok); trailing is the number of bytes of a final partial
    batch (Kafka may end a fetch response with one)."""
    out = []
    d = bytes(data or b"")
    p = 0
    while len(d) - p >= 12:
        base_offset, length = struct.unpack_from(">qi", d, p)
        if len(d) - p - 12 < length:
            break
        body = d[p + 12:p + 12 + length]
        b = {"base_offset": base_offset, "size": 12 + length}
        ple, magic, crc = struct.unpack_from(">ibI", body, 0)
        b["magic"] = magic
        b["partition_leader_epoch"] = ple
        if magic != 2:
            b["records"] = None
            out.append(b)
            p += 12 + length
            continue
        b["crc_ok"] = crc32c(body[9:]) == crc
        (attrs, last_delta, first_ts, max_ts, pid, pepoch, bseq, n) = struct.unpack_from(
            ">hiqqqhii", body, 9)
        b.update(attributes=attrs, last_offset_delta=last_delta, first_timestamp=first_ts,
                 max_timestamp=max_ts, producer_id=pid, producer_epoch=pepoch,
                 base_sequence=bseq, count=n)
        recs = []
        if attrs & 0x7 == 0:
            r = Reader(body[49:])
            for _ in range(n):
                r.varint()
                r.take(1)
                tsd = r.varint()
                od = r.varint()
                kl = r.varint()
                k = None if kl < 0 else r.take(kl)
                vl = r.varint()
                val = None if vl < 0 else r.take(vl)
                hdrs = []
                for _ in range(r.varint()):
                    hk = r.take(r.varint())
                    hl = r.varint()
                    hdrs.append((hk, None if hl < 0 else r.take(hl)))
                recs.append({"offset": base_offset + od, "timestamp_delta": tsd, "key": k,
                             "value": val, "headers": hdrs})
            b["records"] = recs
        else:
            b["records"] = None  # compressed: not decoded here
            b["compressed_payload"] = body[49:]
        out.append(b)
        p += 12 + length
    return out, len(d) - p
