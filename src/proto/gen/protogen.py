#!/usr/bin/python3
"""protogen: generates Samsa's Kafka message codec from the schema files.

Usage: protogen.py OUT_DIR SCHEMA...

Writes OUT_DIR/proto_gen.h (structs, prototypes, API table types),
OUT_DIR/proto_gen.c (decoders, encoders, init functions, API table) and
OUT_DIR/proto_gen_fill.c (test support: pseudo-random fill of every message,
compiled only into tests and the fuzzer).

Schema format (src/proto/schema/*.schema)
------------------------------------------
One file per Kafka API. '#' starts a comment that runs to the end of the line;
blank lines are ignored. The first statement is

    api <KafkaName> key=<api key> versions=<min>-<max> flexible=<N>+|none

where versions is the range this broker supports (it becomes the API table
entry) and flexible is where Kafka's flexible encoding begins (compact
strings, arrays and bytes; a tagged-field section at the end of every struct).

Then come two sections, each started by a line holding only `request` or only
`response`. Within a section each line is one field:

    <Name> <type> <versions> [nullable=<range>] [default=<value>]
                             [tag=<n> tagged=<range>]

and nesting is by indentation (two spaces per level): the fields of a struct
follow its line, indented one level deeper.

  Name      Kafka's field name in CamelCase; the C member is its snake_case.
  type      int8 int16 int32 int64 uint16 float64 bool string bytes records
            uuid; `[]int32` `[]int64` `[]string` (arrays of primitives);
            `[]` (array of structs, fields follow indented); `{}` (a single
            struct, fields follow indented; Kafka uses these only as tagged
            fields).
  versions  the versions in which the field exists, in Kafka's notation:
            `N+`, `N-M`, `N` or `none`. Versions outside it decode to the
            default and are not written when encoding (Kafka's "ignorable"
            is not enforced: a non-default value is silently dropped).
  nullable  versions in which the field (string, bytes, records, array) may
            be null. Default: never.
  default   value for versions that lack the field: an integer (decimal or
            0x hex), true/false, `null`, or a string literal in double quotes
            (`""`). Default: 0 / false / empty string / empty array.
  tag, tagged
            the field is a tagged field with this tag in these versions
            (a subset of the flexible versions). Tagged fields are written
            only when they differ from their default; unknown tags are
            skipped when decoding.

Naming rule for the generated C: a message Kafka calls FooRequest becomes
`struct foo_request`; the element struct of an array field (or a struct field)
Bar inside struct S is `struct S_bar` (parent struct name, underscore, field
name in snake_case), regardless of Kafka's element type name. snake_case
inserts `_` before an upper-case letter that follows a lower-case letter or
digit, and before the last capital of an acronym followed by a lower-case
letter (ThrottleTimeMs -> throttle_time_ms, IsrNodes -> isr_nodes).
"""

import os
import re
import sys

PRIMS = {
    # type: (C type, reader, writer, wire size)
    "int8": ("int8_t", "rd_i8(r)", "buf_put_i8(b, {v})", 1),
    "int16": ("int16_t", "rd_i16(r)", "buf_put_i16(b, {v})", 2),
    "uint16": ("uint16_t", "(uint16_t)rd_i16(r)", "buf_put_i16(b, (int16_t){v})", 2),
    "int32": ("int32_t", "rd_i32(r)", "buf_put_i32(b, {v})", 4),
    "int64": ("int64_t", "rd_i64(r)", "buf_put_i64(b, {v})", 8),
    "float64": ("double", "rd_f64(r)", "buf_put_f64(b, {v})", 8),
    "bool": ("bool", "(rd_i8(r) != 0)", "buf_put_i8(b, {v} ? 1 : 0)", 1),
}
SLICES = ("string", "bytes", "records")
MAXV = 0x7FFF


class SchemaError(Exception):
    pass


def snake(name):
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


def parse_range(text, where):
    text = text.strip()
    if text == "none":
        return None
    m = re.fullmatch(r"(\d+)\+", text)
    if m:
        return (int(m.group(1)), MAXV)
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if m:
        return (int(m.group(1)), int(m.group(2)))
    m = re.fullmatch(r"(\d+)", text)
    if m:
        return (int(m.group(1)), int(m.group(1)))
    raise SchemaError("%s: bad version range %r" % (where, text))


def in_range(rng, v):
    return rng is not None and rng[0] <= v <= rng[1]


class Field:
    def __init__(self, name, type_, versions, opts, where):
        self.name = name
        self.cname = snake(name)
        self.type = type_
        self.versions = parse_range(versions, where)
        self.nullable = parse_range(opts.pop("nullable", "none"), where)
        self.default = opts.pop("default", None)
        tag = opts.pop("tag", None)
        self.tag = int(tag) if tag is not None else None
        self.tagged = parse_range(opts.pop("tagged", "none"), where)
        if (self.tag is None) != (self.tagged is None):
            raise SchemaError("%s: tag and tagged go together" % where)
        if opts:
            raise SchemaError("%s: unknown options %s" % (where, sorted(opts)))
        self.children = []
        self.struct = None  # Struct for [] and {}
        self.where = where
        if type_ in ("[]", "{}"):
            self.kind = "structarray" if type_ == "[]" else "struct"
        elif type_.startswith("[]"):
            self.kind = "primarray"
            self.elem = type_[2:]
            if self.elem not in PRIMS and self.elem != "string":
                raise SchemaError("%s: unsupported array element %r" % (where, self.elem))
        elif type_ in PRIMS:
            self.kind = "prim"
        elif type_ in SLICES:
            self.kind = "slice"
        elif type_ == "uuid":
            self.kind = "uuid"
        else:
            raise SchemaError("%s: unknown type %r" % (where, type_))

    def is_tagged_in(self, v):
        return in_range(self.tagged, v)

    def present_in(self, v):
        return in_range(self.versions, v)


class Struct:
    def __init__(self, cname, fields):
        self.cname = cname
        self.fields = fields


class Message:
    def __init__(self, api, kind, fields):
        self.api = api
        self.kind = kind  # "request" / "response"
        self.cname = snake(api.name) + "_" + kind
        self.fields = fields
        self.structs = []  # all structs, children before parents
        self.root = self._build(self.cname, fields)

    def _build(self, cname, fields):
        for f in fields:
            if f.kind in ("structarray", "struct"):
                f.struct = self._build(cname + "_" + f.cname, f.children)
        s = Struct(cname, fields)
        self.structs.append(s)
        return s


class Api:
    def __init__(self, name, key, vmin, vmax, flexmin):
        self.name = name
        self.key = key
        self.vmin = vmin
        self.vmax = vmax
        self.flexmin = flexmin  # None if never flexible
        self.messages = {}

    def flexible(self, v):
        return self.flexmin is not None and v >= self.flexmin


def tokenize_opts(tokens, where):
    opts = {}
    for t in tokens:
        if "=" not in t:
            raise SchemaError("%s: expected key=value, got %r" % (where, t))
        k, v = t.split("=", 1)
        opts[k] = v
    return opts


def parse_schema(path):
    with open(path) as fh:
        lines = fh.read().split("\n")
    api = None
    section = None
    stack = []  # (indent, list of fields)
    for lineno, raw in enumerate(lines, 1):
        where = "%s:%d" % (path, lineno)
        line = raw.split("#", 1)[0].rstrip() if '"' not in raw else strip_comment(raw)
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        tokens = line.split()
        if tokens[0] == "api":
            opts = tokenize_opts(tokens[2:], where)
            vr = parse_range(opts["versions"], where)
            fl = parse_range(opts.get("flexible", "none"), where)
            api = Api(tokens[1], int(opts["key"]), vr[0], vr[1], fl[0] if fl else None)
            continue
        if tokens[0] in ("request", "response") and len(tokens) == 1:
            if api is None:
                raise SchemaError("%s: section before api line" % where)
            section = []
            api.messages[tokens[0]] = section
            stack = [(indent, section)]
            continue
        if section is None:
            raise SchemaError("%s: field outside a section" % where)
        if indent % 2:
            raise SchemaError("%s: odd indentation" % where)
        level = indent // 2 - 1
        if level < 0:
            raise SchemaError("%s: field must be indented" % where)
        while len(stack) - 1 > level:
            stack.pop()
        if len(stack) - 1 != level:
            raise SchemaError("%s: unexpected indentation" % where)
        if len(tokens) < 3:
            raise SchemaError("%s: need name, type, versions" % where)
        f = Field(tokens[0], tokens[1], tokens[2], tokenize_opts(tokens[3:], where), where)
        parent = stack[-1][1]
        if any(p.cname == f.cname for p in parent):
            raise SchemaError("%s: duplicate field %s" % (where, f.name))
        parent.append(f)
        if f.kind in ("structarray", "struct"):
            stack.append((indent, f.children))
    if api is None or set(api.messages) != {"request", "response"}:
        raise SchemaError("%s: need an api line and request and response sections" % path)
    for kind, fields in api.messages.items():
        api.messages[kind] = Message(api, kind, fields)
    return api


def strip_comment(raw):
    out, inq = [], False
    for ch in raw:
        if ch == '"':
            inq = not inq
        if ch == "#" and not inq:
            break
        out.append(ch)
    return "".join(out).rstrip()


# ---------------------------------------------------------------------------
# C generation helpers

def cond(rng, api, extra=None):
    """C condition (on variable v) for membership in rng, simplified against the
    API's supported range. Returns "1", "0" or an expression."""
    if rng is None:
        return "0"
    lo, hi = max(rng[0], api.vmin), min(rng[1], api.vmax)
    if lo > hi:
        return "0"
    parts = []
    if lo > api.vmin:
        parts.append("v >= %d" % lo)
    if hi < api.vmax:
        parts.append("v <= %d" % hi)
    if not parts:
        return "1"
    return " && ".join(parts)


def cond_plain(f, api):
    """Condition for versions in which f is present and not tagged."""
    vs = [v for v in range(api.vmin, api.vmax + 1) if f.present_in(v) and not f.is_tagged_in(v)]
    if not vs:
        return "0"
    runs, start = [], vs[0]
    for a, b in zip(vs, vs[1:] + [None]):
        if b != a + 1:
            runs.append((start, a))
            start = b
    return " || ".join("(%s)" % cond(r, api) if len(runs) > 1 else cond(r, api) for r in runs)


def c_default_scalar(f):
    d = f.default
    if f.type == "bool":
        if d in (None, "false"):
            return "false"
        if d == "true":
            return "true"
        raise SchemaError("%s: bad bool default" % f.where)
    if d is None:
        return "0"
    val = int(d, 0)
    if f.type == "int32" and val == -2147483648:
        return "INT32_MIN"
    if f.type == "int64":
        return "INT64_C(%d)" % val
    return str(val)


def slice_default(f):
    """Returns None for null, else the C string literal."""
    d = f.default
    if d == "null":
        return None
    if d is None:
        return '""'
    if not (d.startswith('"') and d.endswith('"')):
        raise SchemaError("%s: string default must be quoted or null" % f.where)
    return d


def member_decl(f):
    if f.kind == "prim":
        return ["%s %s;" % (PRIMS[f.type][0], f.cname)]
    if f.kind == "slice":
        return ["struct slice %s;" % f.cname]
    if f.kind == "uuid":
        return ["uint8_t %s[16];" % f.cname]
    if f.kind == "struct":
        return ["struct %s %s;" % (f.struct.cname, f.cname)]
    if f.kind == "structarray":
        return ["int32_t %s_count; /* -1: null */" % f.cname,
                "struct %s *%s;" % (f.struct.cname, f.cname)]
    if f.kind == "primarray":
        ct = "struct slice" if f.elem == "string" else PRIMS[f.elem][0]
        return ["int32_t %s_count; /* -1: null */" % f.cname, "%s *%s;" % (ct, f.cname)]
    raise AssertionError


def range_doc(f):
    def r(x):
        if x is None:
            return "none"
        if x[1] == MAXV:
            return "%d+" % x[0]
        if x[0] == x[1]:
            return "%d" % x[0]
        return "%d-%d" % x
    s = "v" + r(f.versions)
    if f.nullable:
        s += ", nullable " + r(f.nullable)
    if f.tag is not None:
        s += ", tag %d in %s" % (f.tag, r(f.tagged))
    if f.default is not None:
        s += ", default " + f.default
    return s


def min_wire_size(struct, api, v):
    flex = api.flexible(v)
    n = 1 if flex else 0
    for f in struct.fields:
        if not f.present_in(v) or f.is_tagged_in(v):
            continue
        if f.kind == "prim":
            n += PRIMS[f.type][3]
        elif f.kind == "uuid":
            n += 16
        elif f.kind == "slice":
            n += 1 if flex else (2 if f.type == "string" else 4)
        elif f.kind in ("structarray", "primarray"):
            n += 1 if flex else 4
        elif f.kind == "struct":
            n += min_wire_size(f.struct, api, v)
    return max(n, 1)


class Gen:
    def __init__(self, apis):
        self.apis = apis
        self.h = []
        self.c = []
        self.t = []

    # ---- header ----
    def gen_header(self):
        h = self.h
        h.append("/* Generated by src/proto/gen/protogen.py from the schema files in src/proto/schema. Do not edit. */")
        h.append("#ifndef SAMSA_PROTO_GEN_H")
        h.append("#define SAMSA_PROTO_GEN_H")
        h.append("")
        h.append('#include "base/base.h"')
        h.append("")
        h.append("enum api_key {")
        for api in self.apis:
            h.append("    API_KEY_%s = %d," % (snake(api.name).upper(), api.key))
        h.append("};")
        h.append("#define PROTO_API_COUNT %d" % len(self.apis))
        h.append("")
        for api in self.apis:
            h.append("/* ==== %s (api key %d), versions %d-%d, flexible %s ==== */" % (
                api.name, api.key, api.vmin, api.vmax,
                ("%d+" % api.flexmin) if api.flexmin is not None else "never"))
            for kind in ("request", "response"):
                msg = api.messages[kind]
                for s in msg.structs:
                    h.append("struct %s {" % s.cname)
                    for f in s.fields:
                        decls = member_decl(f)
                        decls[0] = decls[0] + " /* " + range_doc(f) + " */" if "/*" not in decls[0] \
                            else decls[0].replace("/* -1: null */", "/* " + range_doc(f) + "; -1: null */")
                        for d in decls:
                            h.append("    " + d)
                    if not s.fields:
                        h.append("    char unused_;")
                    h.append("};")
                    h.append("void %s_init(struct %s *m);" % (s.cname, s.cname))
                    h.append("")
                n = msg.cname
                h.append("int %s_decode(struct reader *r, int16_t version, struct arena *a, struct %s *out);" % (n, n))
                h.append("void %s_encode(struct buf *b, int16_t version, const struct %s *m);" % (n, n))
                h.append("")
        h.append("/* Type-erased codec entry points per API, for dispatchers, tests and fuzzers. */")
        h.append("struct proto_codec {")
        h.append("    int16_t api_key;")
        h.append("    size_t request_size;  /* sizeof(struct <api>_request) */")
        h.append("    size_t response_size; /* sizeof(struct <api>_response) */")
        h.append("    int (*request_decode)(struct reader *r, int16_t version, struct arena *a, void *out);")
        h.append("    void (*request_encode)(struct buf *b, int16_t version, const void *m);")
        h.append("    int (*response_decode)(struct reader *r, int16_t version, struct arena *a, void *out);")
        h.append("    void (*response_encode)(struct buf *b, int16_t version, const void *m);")
        h.append("};")
        h.append("const struct proto_codec *proto_codec_find(int16_t api_key);")
        h.append("")
        h.append("/* Test support (proto_gen_fill.c): fill every field present in `version` with")
        h.append(" * pseudo-random values drawn from *seed; arrays and bytes come from the arena. */")
        h.append("struct proto_fill {")
        h.append("    uint64_t seed;")
        h.append("    struct arena *arena;")
        h.append("    int depth;")
        h.append("};")
        h.append("void proto_fill_request(struct proto_fill *pf, int16_t api_key, int16_t version, void *m);")
        h.append("void proto_fill_response(struct proto_fill *pf, int16_t api_key, int16_t version, void *m);")
        h.append("")
        h.append("#endif")

    # ---- codec ----
    def gen_codec(self):
        c = self.c
        c.append("/* Generated by src/proto/gen/protogen.py from the schema files in src/proto/schema. Do not edit. */")
        c.append('#include "proto/proto.h"')
        c.append('#include "proto/codec.h"')
        c.append("")
        c.append("#include <string.h>")
        c.append("")
        for api in self.apis:
            for kind in ("request", "response"):
                msg = api.messages[kind]
                for s in msg.structs:
                    c.append("static PC_UNUSED void %s_read(struct reader *r, int16_t v, struct arena *a, struct %s *m);"
                             % (s.cname, s.cname))
                    c.append("static PC_UNUSED void %s_write(struct buf *b, int16_t v, const struct %s *m);"
                             % (s.cname, s.cname))
                    c.append("static PC_UNUSED bool %s_is_default(const struct %s *m);" % (s.cname, s.cname))
        c.append("")
        for api in self.apis:
            for kind in ("request", "response"):
                msg = api.messages[kind]
                for s in msg.structs:
                    self.gen_struct(api, s)
                self.gen_entry(api, msg)
            self.gen_codec_wrappers(api)
        self.gen_tables()

    def gen_struct(self, api, s):
        c = self.c
        n = s.cname
        # init
        c.append("void %s_init(struct %s *m) {" % (n, n))
        c.append("    memset(m, 0, sizeof(*m));")
        for f in s.fields:
            if f.kind == "prim":
                d = c_default_scalar(f)
                if d not in ("0", "false", "INT64_C(0)"):
                    c.append("    m->%s = %s;" % (f.cname, d))
            elif f.kind == "slice":
                d = slice_default(f)
                if d is not None:
                    c.append("    m->%s = (struct slice){(const uint8_t *)%s, sizeof(%s) - 1};" % (f.cname, d, d))
            elif f.kind == "struct":
                c.append("    %s_init(&m->%s);" % (f.struct.cname, f.cname))
            elif f.kind in ("structarray", "primarray") and f.default == "null":
                c.append("    m->%s_count = -1;" % f.cname)
        c.append("}")
        c.append("")
        # is_default
        c.append("static PC_UNUSED bool %s_is_default(const struct %s *m) {" % (n, n))
        for f in s.fields:
            c.append("    if (!(%s)) return false;" % self.default_test(f, "m->" + f.cname))
        c.append("    (void)m;")
        c.append("    return true;")
        c.append("}")
        c.append("")
        # min sizes per version
        sizes = [min_wire_size(s, api, v) for v in range(api.vmin, api.vmax + 1)]
        c.append("static const uint32_t %s_min_size[%d] PC_UNUSED = {%s};" % (n, len(sizes), ", ".join(map(str, sizes))))
        c.append("")
        # read
        c.append("static void %s_read(struct reader *r, int16_t v, struct arena *a, struct %s *m) {" % (n, n))
        c.append("    bool flex = %s;" % (cond((api.flexmin, MAXV), api) if api.flexmin is not None else "0"))
        c.append("    %s_init(m);" % n)
        c.append("    (void)flex; (void)a;")
        for f in s.fields:
            guard = cond_plain(f, api)
            if guard == "0":
                continue
            body = self.read_field(api, f, "m->" + f.cname, "r")
            self.emit_guarded(guard, body)
        tagged = [f for f in s.fields if f.tag is not None and cond(f.tagged, api) != "0"]
        c.append("    if (flex) {")
        c.append("        uint64_t ntags = pc_read_tag_count(r);")
        c.append("        for (uint64_t ti = 0; ti < ntags && !r->err; ti++) {")
        c.append("            struct reader sub;")
        c.append("            uint64_t tag = pc_read_tag(r, &sub);")
        c.append("            if (r->err) break;")
        if tagged:
            c.append("            switch (tag) {")
            for f in sorted(tagged, key=lambda x: x.tag):
                c.append("            case %d:" % f.tag)
                c.append("                if (%s) {" % cond(f.tagged, api))
                for line in self.read_field(api, f, "m->" + f.cname, "(&sub)"):
                    c.append("                    " + line)
                c.append("                    if (sub.err) r->err = -1;")
                c.append("                }")
                c.append("                break;")
            c.append("            default:")
            c.append("                break;")
            c.append("            }")
        else:
            c.append("            (void)tag;")
        c.append("        }")
        c.append("    }")
        c.append("}")
        c.append("")
        # write
        c.append("static void %s_write(struct buf *b, int16_t v, const struct %s *m) {" % (n, n))
        c.append("    bool flex = %s;" % (cond((api.flexmin, MAXV), api) if api.flexmin is not None else "0"))
        c.append("    (void)flex;")
        for f in s.fields:
            guard = cond_plain(f, api)
            if guard == "0":
                continue
            self.emit_guarded(guard, self.write_field(api, f, "m->" + f.cname, "b"))
        c.append("    if (flex) {")
        if tagged:
            tagged.sort(key=lambda x: x.tag)
            c.append("        uint64_t ntags = 0;")
            for f in tagged:
                c.append("        bool has_%s = (%s) && !(%s);" % (
                    f.cname, cond(f.tagged, api), self.default_test(f, "m->" + f.cname)))
                c.append("        ntags += has_%s;" % f.cname)
            c.append("        buf_put_uvarint(b, ntags);")
            for f in tagged:
                c.append("        if (has_%s) {" % f.cname)
                c.append("            struct buf tb;")
                c.append("            buf_init(&tb);")
                for line in self.write_field(api, f, "m->" + f.cname, "(&tb)"):
                    c.append("            " + line)
                c.append("            pc_write_tagged(b, %d, &tb);" % f.tag)
                c.append("            buf_free(&tb);")
                c.append("        }")
        else:
            c.append("        buf_put_uvarint(b, 0);")
        c.append("    }")
        c.append("}")
        c.append("")

    def emit_guarded(self, guard, body):
        c = self.c
        if guard == "1":
            for line in body:
                c.append("    " + line)
        else:
            c.append("    if (%s) {" % guard)
            for line in body:
                c.append("        " + line)
            c.append("    }")

    def default_test(self, f, lv):
        """C expression that is true when lv holds f's default."""
        if f.kind == "prim":
            return "%s == %s" % (lv, c_default_scalar(f))
        if f.kind == "slice":
            d = slice_default(f)
            if d is None:
                return "%s.ptr == NULL" % lv
            return "pc_slice_is(%s, %s, sizeof(%s) - 1)" % (lv, d, d)
        if f.kind == "uuid":
            return "pc_uuid_is_zero(%s)" % lv
        if f.kind == "struct":
            return "%s_is_default(&%s)" % (f.struct.cname, lv)
        if f.kind in ("structarray", "primarray"):
            return "%s_count == %s" % (lv, "-1" if f.default == "null" else "0")
        raise AssertionError

    def read_field(self, api, f, lv, r):
        nul = cond(f.nullable, api)
        if f.kind == "prim":
            return ["%s = %s;" % (lv, PRIMS[f.type][1].replace("(r)", "(%s)" % r))]
        if f.kind == "uuid":
            return ["pc_read_uuid(%s, %s);" % (r, lv)]
        if f.kind == "slice":
            fn = "pc_read_string" if f.type == "string" else "pc_read_bytes"
            return ["%s = %s(%s, flex, %s);" % (lv, fn, r, nul)]
        if f.kind == "struct":
            return ["%s_read(%s, v, a, &%s);" % (f.struct.cname, r, lv)]
        if f.kind == "structarray":
            sn = f.struct.cname
            return [
                "%s_count = pc_read_array_len(%s, flex, %s, %s_min_size[v - %d]);" % (lv, r, nul, sn, api.vmin),
                "%s = NULL;" % lv,
                "if (%s_count > 0) {" % lv,
                "    %s = arena_alloc(a, (size_t)%s_count * sizeof(*%s));" % (lv, lv, lv),
                "    for (int32_t i = 0; i < %s_count && !%s->err; i++)" % (lv, r),
                "        %s_read(%s, v, a, &%s[i]);" % (sn, r, lv),
                "}",
            ]
        if f.kind == "primarray":
            if f.elem == "string":
                minsz, rd = "flex ? 1 : 2", "pc_read_string(%s, flex, 0)" % r
            else:
                minsz, rd = str(PRIMS[f.elem][3]), PRIMS[f.elem][1].replace("(r)", "(%s)" % r)
            return [
                "%s_count = pc_read_array_len(%s, flex, %s, %s);" % (lv, r, nul, minsz),
                "%s = NULL;" % lv,
                "if (%s_count > 0) {" % lv,
                "    %s = arena_alloc(a, (size_t)%s_count * sizeof(*%s));" % (lv, lv, lv),
                "    for (int32_t i = 0; i < %s_count && !%s->err; i++)" % (lv, r),
                "        %s[i] = %s;" % (lv, rd),
                "}",
            ]
        raise AssertionError

    def write_field(self, api, f, lv, b):
        nul = cond(f.nullable, api)
        if f.kind == "prim":
            return [PRIMS[f.type][2].replace("(b,", "(%s," % b).format(v=lv) + ";"]
        if f.kind == "uuid":
            return ["buf_append(%s, %s, 16);" % (b, lv)]
        if f.kind == "slice":
            fn = "pc_write_string" if f.type == "string" else "pc_write_bytes"
            return ["%s(%s, flex, %s, %s);" % (fn, b, nul, lv)]
        if f.kind == "struct":
            return ["%s_write(%s, v, &%s);" % (f.struct.cname, b, lv)]
        if f.kind in ("structarray", "primarray"):
            if f.kind == "structarray":
                el = "%s_write(%s, v, &%s[i]);" % (f.struct.cname, b, lv)
            elif f.elem == "string":
                el = "pc_write_string(%s, flex, 0, %s[i]);" % (b, lv)
            else:
                el = PRIMS[f.elem][2].replace("(b,", "(%s," % b).format(v=lv + "[i]") + ";"
            return [
                "pc_write_array_len(%s, flex, %s, %s_count);" % (b, nul, lv),
                "for (int32_t i = 0; i < %s_count; i++)" % lv,
                "    " + el,
            ]
        raise AssertionError

    def gen_entry(self, api, msg):
        c = self.c
        n = msg.cname
        c.append("int %s_decode(struct reader *r, int16_t version, struct arena *a, struct %s *out) {" % (n, n))
        c.append("    if (version < %d || version > %d) {" % (api.vmin, api.vmax))
        c.append("        %s_init(out);" % n)
        c.append("        return -1;")
        c.append("    }")
        c.append("    %s_read(r, version, a, out);" % n)
        c.append("    return r->err ? -1 : 0;")
        c.append("}")
        c.append("")
        c.append("void %s_encode(struct buf *b, int16_t version, const struct %s *m) {" % (n, n))
        c.append("    ASSERT(version >= %d && version <= %d);" % (api.vmin, api.vmax))
        c.append("    %s_write(b, version, m);" % n)
        c.append("}")
        c.append("")

    def gen_codec_wrappers(self, api):
        c = self.c
        for kind in ("request", "response"):
            n = api.messages[kind].cname
            c.append("static int %s_decode_any(struct reader *r, int16_t v, struct arena *a, void *out) {" % n)
            c.append("    return %s_decode(r, v, a, out);" % n)
            c.append("}")
            c.append("static void %s_encode_any(struct buf *b, int16_t v, const void *m) {" % n)
            c.append("    %s_encode(b, v, m);" % n)
            c.append("}")
        c.append("")

    def gen_tables(self):
        c = self.c
        c.append("const struct proto_api proto_apis[PROTO_API_COUNT] = {")
        for api in self.apis:
            c.append('    {%d, "%s", %d, %d, %d},' % (api.key, api.name, api.vmin, api.vmax,
                                                    api.flexmin if api.flexmin is not None else -1))
        c.append("};")
        c.append("")
        c.append("static const struct proto_codec proto_codecs[PROTO_API_COUNT] = {")
        for api in self.apis:
            rq, rs = api.messages["request"].cname, api.messages["response"].cname
            c.append("    {%d, sizeof(struct %s), sizeof(struct %s), %s_decode_any, %s_encode_any, "
                     "%s_decode_any, %s_encode_any}," % (api.key, rq, rs, rq, rq, rs, rs))
        c.append("};")
        c.append("")
        c.append("const struct proto_codec *proto_codec_find(int16_t api_key) {")
        c.append("    for (size_t i = 0; i < PROTO_API_COUNT; i++)")
        c.append("        if (proto_codecs[i].api_key == api_key) return &proto_codecs[i];")
        c.append("    return NULL;")
        c.append("}")

    # ---- test fill ----
    def gen_fill(self):
        t = self.t
        t.append("/* Generated by src/proto/gen/protogen.py. Test support only: fills messages with")
        t.append(" * pseudo-random values for round-trip tests and fuzz seeds. Do not edit. */")
        t.append('#include "proto/proto.h"')
        t.append('#include "proto/codec.h"')
        t.append("")
        t.append("#include <string.h>")
        t.append("")
        t.append("static uint64_t pf_next(struct proto_fill *pf) {")
        t.append("    pf->seed = pf->seed * 6364136223846793005ULL + 1442695040888963407ULL;")
        t.append("    return pf->seed >> 33;")
        t.append("}")
        t.append("static const char *const pf_strings[] = {\"\", \"a\", \"topic-1\", \"__consumer_offsets\",")
        t.append("    (\"a-somewhat-longer-string-to-cross-the-one-byte-varint-boundary-of-127-bytes-\"")
        t.append("     \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\")};")
        t.append("static struct slice pf_string(struct proto_fill *pf, bool nullable) {")
        t.append("    uint64_t x = pf_next(pf) % (ARRAY_LEN(pf_strings) + (nullable ? 1 : 0));")
        t.append("    if (x == ARRAY_LEN(pf_strings)) return SLICE_NULL;")
        t.append("    return (struct slice){(const uint8_t *)pf_strings[x], strlen(pf_strings[x])};")
        t.append("}")
        t.append("static struct slice pf_bytes(struct proto_fill *pf, bool nullable) {")
        t.append("    uint64_t x = pf_next(pf) % 5;")
        t.append("    if (x == 0 && nullable) return SLICE_NULL;")
        t.append("    size_t n = x == 4 ? 300 : (size_t)x * 3;")
        t.append("    uint8_t *p = arena_alloc(pf->arena, n + 1);")
        t.append("    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)pf_next(pf);")
        t.append("    return (struct slice){p, n};")
        t.append("}")
        t.append("static int32_t pf_count(struct proto_fill *pf, bool nullable) {")
        t.append("    if (pf->depth > 4) return 0;")
        t.append("    int32_t n = (int32_t)(pf_next(pf) % 4) - (nullable ? 1 : 0);")
        t.append("    return n;")
        t.append("}")
        t.append("")
        for api in self.apis:
            for kind in ("request", "response"):
                for s in api.messages[kind].structs:
                    t.append("static PC_UNUSED void %s_fill(struct proto_fill *pf, int16_t v, struct %s *m);" % (s.cname, s.cname))
        t.append("")
        for api in self.apis:
            for kind in ("request", "response"):
                for s in api.messages[kind].structs:
                    self.gen_fill_struct(api, s)
        for kind in ("request", "response"):
            t.append("void proto_fill_%s(struct proto_fill *pf, int16_t api_key, int16_t version, void *m) {" % kind)
            t.append("    switch (api_key) {")
            for api in self.apis:
                n = api.messages[kind].cname
                t.append("    case %d: %s_fill(pf, version, m); break;" % (api.key, n))
            t.append("    default: ASSERT(!\"unknown api key\");")
            t.append("    }")
            t.append("}")

    def gen_fill_struct(self, api, s):
        t = self.t
        t.append("static void %s_fill(struct proto_fill *pf, int16_t v, struct %s *m) {" % (s.cname, s.cname))
        t.append("    %s_init(m);" % s.cname)
        t.append("    pf->depth++;")
        for f in s.fields:
            pc = cond(f.versions, api)
            if pc == "0":
                continue
            tc = cond(f.tagged, api)
            # tagged fields keep their default half of the time
            guard = pc if tc == "0" else "(%s) && (!(%s) || pf_next(pf) %% 2)" % (pc, tc)
            nul = cond(f.nullable, api)
            lv = "m->" + f.cname
            body = []
            if f.kind == "prim":
                if f.type == "bool":
                    body.append("%s = pf_next(pf) & 1;" % lv)
                elif f.type == "float64":
                    body.append("%s = (double)(int64_t)pf_next(pf) / 7.0;" % lv)
                else:
                    body.append("%s = (%s)(pf_next(pf) - (1ULL << 30));" % (lv, PRIMS[f.type][0]))
            elif f.kind == "uuid":
                body.append("for (int i = 0; i < 16; i++) %s[i] = (uint8_t)pf_next(pf);" % lv)
            elif f.kind == "slice":
                fn = "pf_string" if f.type == "string" else "pf_bytes"
                body.append("%s = %s(pf, %s);" % (lv, fn, nul))
            elif f.kind == "struct":
                body.append("%s_fill(pf, v, &%s);" % (f.struct.cname, lv))
            else:
                body.append("%s_count = pf_count(pf, %s);" % (lv, nul))
                body.append("if (%s_count > 0) {" % lv)
                body.append("    %s = arena_alloc(pf->arena, (size_t)%s_count * sizeof(*%s));" % (lv, lv, lv))
                body.append("    for (int32_t i = 0; i < %s_count; i++) {" % lv)
                if f.kind == "structarray":
                    body.append("        %s_fill(pf, v, &%s[i]);" % (f.struct.cname, lv))
                elif f.elem == "string":
                    body.append("        %s[i] = pf_string(pf, 0);" % lv)
                else:
                    body.append("        %s[i] = (%s)pf_next(pf);" % (lv, PRIMS[f.elem][0]))
                body.append("    }")
                body.append("}")
            if guard == "1":
                t.extend("    " + x for x in body)
            else:
                t.append("    if (%s) {" % guard)
                t.extend("        " + x for x in body)
                t.append("    }")
        t.append("    (void)v;")
        t.append("    pf->depth--;")
        t.append("}")
        t.append("")


def check(api):
    for kind, msg in api.messages.items():
        for s in msg.structs:
            tags = {}
            for f in s.fields:
                if f.tag is not None:
                    if f.tag in tags:
                        raise SchemaError("%s: duplicate tag %d" % (f.where, f.tag))
                    tags[f.tag] = f
                    if api.flexmin is None or f.tagged[0] < api.flexmin:
                        raise SchemaError("%s: tagged outside flexible versions" % f.where)
                if f.kind == "struct" and f.tag is None:
                    raise SchemaError("%s: only tagged struct fields are supported" % f.where)


def write_if_changed(path, text):
    if os.path.exists(path):
        with open(path) as fh:
            if fh.read() == text:
                return
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


def main(argv):
    if len(argv) < 3:
        print("usage: protogen.py OUT_DIR SCHEMA...", file=sys.stderr)
        return 2
    out = argv[1]
    try:
        apis = [parse_schema(p) for p in argv[2:]]
        for api in apis:
            check(api)
        keys = [a.key for a in apis]
        if len(set(keys)) != len(keys):
            raise SchemaError("duplicate api key")
        apis.sort(key=lambda a: a.key)
        g = Gen(apis)
        g.gen_header()
        g.gen_codec()
        g.gen_fill()
    except SchemaError as e:
        print("protogen: error: %s" % e, file=sys.stderr)
        return 1
    os.makedirs(os.path.join(out, "proto"), exist_ok=True)
    write_if_changed(os.path.join(out, "proto", "proto_gen.h"), "\n".join(g.h) + "\n")
    write_if_changed(os.path.join(out, "proto_gen.c"), "\n".join(g.c) + "\n")
    write_if_changed(os.path.join(out, "proto_gen_fill.c"), "\n".join(g.t) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
