/*
 * The record formats of __transaction_state, byte-compatible with Kafka's
 * TransactionLogKey / TransactionLogValue (layout in txn.h), so that Kafka's tools can
 * read a Samsa log and a Samsa broker can load one Kafka wrote. We write value version 0
 * (what Kafka writes for transaction version 1 clients) and read 0 and 1 (flexible:
 * compact strings and arrays, tagged fields, which we skip). Decoders are for untrusted
 * bytes: every length is checked against what is left.
 */
#include "txn/txn.h"

#include <stdlib.h>
#include <string.h>

#define KEY_VERSION 0
#define VALUE_VERSION 0
#define MAX_PARTITIONS 1000000 /* a bound on one record's partitions (allocation) */

static void put_str(struct buf *b, struct slice s)
{
    ASSERT(s.len <= INT16_MAX);
    buf_put_i16(b, (int16_t)s.len);
    buf_append(b, s.ptr ? s.ptr : (const uint8_t *)"", s.len);
}

void txn_record_encode(struct buf *key, struct buf *value, const struct txn_meta *m)
{
    buf_put_i16(key, KEY_VERSION);
    put_str(key, m->transactional_id);
    buf_put_i16(value, VALUE_VERSION);
    buf_put_i64(value, m->producer_id);
    buf_put_i16(value, m->producer_epoch);
    buf_put_i32(value, m->timeout_ms);
    buf_put_i8(value, (int8_t)m->state);
    /* Partitions grouped by topic (they are sorted). */
    size_t topics = 0;
    for (size_t i = 0; i < m->n_partitions; i++)
        topics += i == 0 || !slice_eq(m->partitions[i].topic, m->partitions[i - 1].topic);
    buf_put_i32(value, (int32_t)topics);
    for (size_t i = 0; i < m->n_partitions;) {
        size_t j = i;
        while (j < m->n_partitions && slice_eq(m->partitions[j].topic, m->partitions[i].topic))
            j++;
        put_str(value, m->partitions[i].topic);
        buf_put_i32(value, (int32_t)(j - i));
        for (size_t k = i; k < j; k++)
            buf_put_i32(value, m->partitions[k].partition);
        i = j;
    }
    buf_put_i64(value, m->last_update_ms);
    buf_put_i64(value, m->start_ms);
}

/* A compact length: uvarint n + 1, 0 for null (-1). A value no int32 length can carry
 * is malformed (untrusted bytes: n + 1 may be anything up to 2^64 - 1). */
static int64_t compact_length(struct reader *r)
{
    uint64_t v = rd_uvarint(r);
    if (v > (uint64_t)INT32_MAX + 1) {
        r->err = true;
        return -1;
    }
    return (int64_t)v - 1;
}

/* A string: int16 length (v0) or compact uvarint length + 1 (flexible). Null is
 * malformed here (no field of these records is a nullable string). */
static struct slice get_str(struct reader *r, bool flexible)
{
    int64_t len = flexible ? compact_length(r) : rd_i16(r);
    if (len < 0 || (uint64_t)len > rd_remaining(r)) {
        r->err = true;
        return (struct slice){NULL, 0};
    }
    return rd_bytes(r, (size_t)len);
}

/* An array length: int32 (v0) or compact uvarint n + 1; -1 is null. */
static int64_t get_count(struct reader *r, bool flexible)
{
    return flexible ? compact_length(r) : rd_i32(r);
}

static void skip_tags(struct reader *r)
{
    uint64_t n = rd_uvarint(r);
    for (uint64_t i = 0; i < n && !r->err; i++) {
        (void)rd_uvarint(r); /* tag */
        uint64_t size = rd_uvarint(r);
        if (size > rd_remaining(r))
            r->err = true;
        else
            rd_skip(r, (size_t)size);
    }
}

int txn_record_decode_key(struct slice key, struct slice *transactional_id)
{
    struct reader r;
    rd_init(&r, key.ptr, key.len);
    if (rd_i16(&r) != KEY_VERSION)
        return -1;
    *transactional_id = get_str(&r, false);
    return r.err || rd_remaining(&r) != 0 ? -1 : 0;
}

int txn_record_decode_value(struct slice value, struct txn_meta *m, struct txn_partition **parts)
{
    *parts = NULL;
    struct reader r;
    rd_init(&r, value.ptr, value.len);
    int16_t version = rd_i16(&r);
    if (version < 0 || version > 1)
        return -1;
    bool flexible = version >= 1;
    m->producer_id = rd_i64(&r);
    m->producer_epoch = rd_i16(&r);
    m->timeout_ms = rd_i32(&r);
    int8_t state = rd_i8(&r);
    int64_t topics = get_count(&r, flexible);
    size_t n = 0, cap = 0;
    struct txn_partition *p = NULL;
    for (int64_t t = 0; t < topics && !r.err; t++) {
        struct slice topic = get_str(&r, flexible);
        int64_t count = get_count(&r, flexible);
        if (count < 0 || (uint64_t)count > rd_remaining(&r) / 4 ||
            n + (size_t)count > MAX_PARTITIONS) {
            r.err = true;
            break;
        }
        for (int64_t i = 0; i < count; i++) {
            if (n == cap) {
                cap = cap ? 2 * cap : 8;
                p = xrealloc(p, cap * sizeof *p);
            }
            p[n++] = (struct txn_partition){topic, rd_i32(&r)};
        }
        if (flexible)
            skip_tags(&r);
    }
    m->last_update_ms = rd_i64(&r);
    m->start_ms = rd_i64(&r);
    if (flexible)
        skip_tags(&r);
    if (r.err || rd_remaining(&r) != 0 || topics < -1 || state < TXN_EMPTY ||
        state > TXN_PREPARE_EPOCH_FENCE || m->producer_id < -1 || m->timeout_ms < 0) {
        free(p);
        return -1;
    }
    m->state = (enum txn_state)state;
    m->partitions = p;
    m->n_partitions = n;
    *parts = p;
    return 0;
}
