/*
 * codec.c: the encoding primitives of Kafka's protocol used by the generated
 * codec (see codec.h). Encodings: https://kafka.apache.org/protocol#protocol_types
 * and KIP-482 for compact types and tagged fields; docs/compatibility.md.
 */
#include "proto/codec.h"

#include <string.h>

/* Largest length we accept for one string/bytes value or array; Kafka uses
 * int32 lengths, and a compact length is a uvarint that could be larger. */
#define PC_MAX_LEN INT32_MAX

static const uint8_t pc_empty[1] = {0};

static void pc_fail(struct reader *r)
{
    r->err = -1;
}

/* Reads a length prefix. Returns -1 for null, else the length; sets err on a
 * malformed prefix or a null that is not allowed. */
static int64_t pc_read_len(struct reader *r, bool compact, bool nullable, bool wide)
{
    int64_t n;
    if (compact) {
        uint64_t u = rd_uvarint(r);
        if (r->err)
            return -1;
        if (u > (uint64_t)PC_MAX_LEN + 1) {
            pc_fail(r);
            return -1;
        }
        n = (int64_t)u - 1;
    } else {
        n = wide ? rd_i32(r) : rd_i16(r);
        if (r->err)
            return -1;
    }
    if (n < -1 || (n == -1 && !nullable)) {
        pc_fail(r);
        return -1;
    }
    return n;
}

static struct slice pc_read_blob(struct reader *r, bool compact, bool nullable, bool wide)
{
    int64_t n = pc_read_len(r, compact, nullable, wide);
    if (r->err || n < 0)
        return SLICE_NULL;
    /* Kafka caps strings at INT16_MAX bytes in the compact encoding too. */
    if ((uint64_t)n > rd_remaining(r) || (!wide && n > INT16_MAX)) {
        pc_fail(r);
        return SLICE_NULL;
    }
    if (n == 0)
        return (struct slice){pc_empty, 0};
    return rd_bytes(r, (size_t)n);
}

struct slice pc_read_string(struct reader *r, bool compact, bool nullable)
{
    return pc_read_blob(r, compact, nullable, false);
}

struct slice pc_read_bytes(struct reader *r, bool compact, bool nullable)
{
    return pc_read_blob(r, compact, nullable, true);
}

int32_t pc_read_array_len(struct reader *r, bool compact, bool nullable, size_t min_elem_size)
{
    ASSERT(min_elem_size > 0);
    int64_t n = pc_read_len(r, compact, nullable, true);
    if (r->err)
        return 0;
    if (n > 0 && (uint64_t)n > rd_remaining(r) / min_elem_size) {
        pc_fail(r);
        return 0;
    }
    return (int32_t)n;
}

void pc_read_uuid(struct reader *r, uint8_t out[16])
{
    struct slice s = rd_bytes(r, 16);
    if (r->err || s.len != 16) {
        pc_fail(r);
        memset(out, 0, 16);
        return;
    }
    memcpy(out, s.ptr, 16);
}

uint64_t pc_read_tag_count(struct reader *r)
{
    uint64_t n = rd_uvarint(r);
    /* every tagged field takes at least two bytes (tag and size) */
    if (!r->err && n > rd_remaining(r) / 2)
        pc_fail(r);
    return r->err ? 0 : n;
}

uint64_t pc_read_tag(struct reader *r, struct reader *sub)
{
    uint64_t tag = rd_uvarint(r);
    uint64_t size = rd_uvarint(r);
    if (!r->err && size > rd_remaining(r))
        pc_fail(r);
    if (r->err) {
        rd_init(sub, pc_empty, 0);
        return 0;
    }
    rd_init(sub, r->p + r->pos, (size_t)size);
    rd_skip(r, (size_t)size);
    return tag;
}

static void pc_write_len(struct buf *b, bool compact, bool wide, int64_t n)
{
    if (compact)
        buf_put_uvarint(b, (uint64_t)(n + 1));
    else if (wide)
        buf_put_i32(b, (int32_t)n);
    else
        buf_put_i16(b, (int16_t)n);
}

static void pc_write_blob(struct buf *b, bool compact, bool nullable, bool wide, struct slice s)
{
    if (s.ptr == NULL && nullable) {
        pc_write_len(b, compact, wide, -1);
        return;
    }
    size_t len = s.ptr ? s.len : 0;
    ASSERT(len <= (wide ? (size_t)INT32_MAX : (size_t)INT16_MAX));
    pc_write_len(b, compact, wide, (int64_t)len);
    if (len)
        buf_append(b, s.ptr, len);
}

void pc_write_string(struct buf *b, bool compact, bool nullable, struct slice s)
{
    pc_write_blob(b, compact, nullable, false, s);
}

void pc_write_bytes(struct buf *b, bool compact, bool nullable, struct slice s)
{
    pc_write_blob(b, compact, nullable, true, s);
}

void pc_write_array_len(struct buf *b, bool compact, bool nullable, int32_t count)
{
    if (count < 0 && !nullable)
        count = 0;
    pc_write_len(b, compact, true, count < 0 ? -1 : count);
}

void pc_write_tagged(struct buf *b, uint32_t tag, const struct buf *field)
{
    buf_put_uvarint(b, tag);
    buf_put_uvarint(b, field->len);
    if (field->len)
        buf_append(b, field->data, field->len);
}

bool pc_slice_is(struct slice s, const char *lit, size_t len)
{
    return s.ptr != NULL && s.len == len && (len == 0 || memcmp(s.ptr, lit, len) == 0);
}

bool pc_uuid_is_zero(const uint8_t u[16])
{
    for (int i = 0; i < 16; i++)
        if (u[i])
            return false;
    return true;
}
