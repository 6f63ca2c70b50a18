/* The delay store's records: envelopes, their keys and the per-target sequence keys
 * (delay.h, "the delay store's records"). */
#include "delay/delay.h"

#include <string.h>

#define ENVELOPE_VERSION 0

static void put_sized(struct buf *b, struct slice s)
{
    if (!s.ptr) {
        buf_put_i32(b, -1);
        return;
    }
    buf_put_i32(b, (int32_t)s.len);
    if (s.len)
        buf_append(b, s.ptr, s.len);
}

/* A length-prefixed field; a null one (length -1) when nullable. */
static struct slice take_sized(struct reader *r, bool nullable)
{
    int32_t n = rd_i32(r);
    if (n == -1 && nullable)
        return SLICE_NULL;
    if (n < 0 || (size_t)n > rd_remaining(r)) {
        r->err = -1;
        return SLICE_NULL;
    }
    struct slice s = rd_bytes(r, (size_t)n);
    if (!s.ptr)
        s.ptr = (const uint8_t *)""; /* empty, not null */
    return s;
}

void delay_envelope_encode(struct buf *out, const struct delay_envelope *e)
{
    ASSERT(e->topic.len <= INT16_MAX);
    buf_put_i8(out, ENVELOPE_VERSION);
    buf_put_i64(out, e->due_ms);
    buf_put_i32(out, e->partition);
    buf_put_i16(out, (int16_t)e->topic.len);
    buf_append(out, e->topic.ptr, e->topic.len);
    buf_append(out, e->topic_id, 16);
    buf_put_i64(out, e->producer_id);
    buf_put_i16(out, e->producer_epoch);
    buf_put_i32(out, e->first_sequence);
    buf_put_i32(out, e->last_sequence);
    buf_put_i64(out, e->timestamp);
    put_sized(out, e->key);
    put_sized(out, e->value);
    buf_put_i32(out, e->header_count);
    put_sized(out, e->headers.ptr ? e->headers : (struct slice){(const uint8_t *)"", 0});
}

int delay_envelope_decode(struct slice value, struct delay_envelope *out)
{
    struct reader r;
    rd_init(&r, value.ptr, value.len);
    if (rd_i8(&r) != ENVELOPE_VERSION)
        return -1;
    memset(out, 0, sizeof *out);
    out->due_ms = rd_i64(&r);
    out->partition = rd_i32(&r);
    int16_t topic_len = rd_i16(&r);
    if (topic_len <= 0 || (size_t)topic_len > rd_remaining(&r))
        return -1;
    out->topic = rd_bytes(&r, (size_t)topic_len);
    out->topic_id = rd_bytes(&r, 16).ptr;
    out->producer_id = rd_i64(&r);
    out->producer_epoch = rd_i16(&r);
    out->first_sequence = rd_i32(&r);
    out->last_sequence = rd_i32(&r);
    out->timestamp = rd_i64(&r);
    out->key = take_sized(&r, true);
    out->value = take_sized(&r, true);
    out->header_count = rd_i32(&r);
    out->headers = take_sized(&r, false);
    if (r.err || rd_remaining(&r) != 0 || out->partition < 0 || out->header_count < 0)
        return -1;
    return 0;
}

size_t delay_key_envelope(uint8_t out[DELAY_ENVELOPE_KEY_BYTES], int64_t offset, int64_t due_ms)
{
    out[0] = 'E';
    be64_write(out + 1, (uint64_t)offset);
    if (due_ms == DELAY_DUE_UNKNOWN)
        return DELAY_ENVELOPE_KEY_BYTES_V0;
    be64_write(out + 9, (uint64_t)due_ms);
    return DELAY_ENVELOPE_KEY_BYTES;
}

void delay_key_sequence(struct buf *out, struct slice topic, int32_t partition)
{
    buf_put_i8(out, 'S');
    buf_put_i32(out, partition);
    buf_append(out, topic.ptr, topic.len);
}

void delay_counts_encode(uint8_t out[DELAY_COUNTS_BYTES], const struct delay_counts *c)
{
    be64_write(out, (uint64_t)c->delivered);
    be64_write(out + 8, (uint64_t)c->late);
    be64_write(out + 16, (uint64_t)c->cancelled);
    be64_write(out + 24, (uint64_t)c->dropped);
}

int delay_counts_decode(struct slice value, struct delay_counts *out)
{
    if (value.len != DELAY_COUNTS_BYTES)
        return -1;
    *out = (struct delay_counts){(int64_t)be64_read(value.ptr), (int64_t)be64_read(value.ptr + 8),
                                 (int64_t)be64_read(value.ptr + 16),
                                 (int64_t)be64_read(value.ptr + 24)};
    return out->delivered >= 0 && out->late >= 0 && out->cancelled >= 0 && out->dropped >= 0 ? 0
                                                                                             : -1;
}

void delay_key_decode(struct slice key, struct delay_key *out)
{
    *out = (struct delay_key){.kind = DELAY_KEY_UNKNOWN};
    if ((key.len == DELAY_ENVELOPE_KEY_BYTES || key.len == DELAY_ENVELOPE_KEY_BYTES_V0) &&
        key.ptr[0] == 'E') {
        out->offset = (int64_t)be64_read(key.ptr + 1);
        out->due_ms = key.len == DELAY_ENVELOPE_KEY_BYTES ? (int64_t)be64_read(key.ptr + 9)
                                                          : DELAY_DUE_UNKNOWN;
        if (out->offset >= 0 &&
            (key.len == DELAY_ENVELOPE_KEY_BYTES_V0 || out->due_ms != DELAY_DUE_UNKNOWN))
            out->kind = DELAY_KEY_ENVELOPE;
    } else if (key.len == 1 && key.ptr[0] == DELAY_COUNTS_KEY[0]) {
        out->kind = DELAY_KEY_COUNTS;
    } else if (key.len > 5 && key.ptr[0] == 'S') {
        out->partition = (int32_t)be32_read(key.ptr + 1);
        out->topic = (struct slice){key.ptr + 5, key.len - 5};
        if (out->partition >= 0)
            out->kind = DELAY_KEY_SEQUENCE;
    }
}

/* A varint-sized field of a header: its bytes, or null for length -1 when nullable. */
static bool take_varbytes(struct reader *r, bool nullable, struct slice *out)
{
    int32_t n = rd_varint(r);
    if (n == -1 && nullable) {
        *out = SLICE_NULL;
        return !r->err;
    }
    if (n < 0 || (size_t)n > rd_remaining(r))
        return false;
    *out = rd_bytes(r, (size_t)n);
    if (!out->ptr)
        out->ptr = (const uint8_t *)"";
    return !r->err;
}

int delay_headers_read(struct slice raw, int32_t count, struct delay_header *out, size_t max)
{
    if (count < 0 || (size_t)count > max)
        return -1;
    struct reader r;
    rd_init(&r, raw.ptr, raw.len);
    for (int32_t i = 0; i < count; i++)
        if (!take_varbytes(&r, false, &out[i].key) || !take_varbytes(&r, true, &out[i].value))
            return -1;
    return rd_remaining(&r) == 0 && !r.err ? count : -1;
}
