/*
 * The record formats of __transaction_state, byte-compatible with Kafka's
 * TransactionLogKey / TransactionLogValue (layout in txn.h), so that Kafka's tools can
 * read a Samsa log and a Samsa broker can load one Kafka wrote. We write value version 0
 * for ids of transaction version 0/1 clients with nothing a tagged field must carry,
 * and version 1 (flexible: compact strings and arrays, tagged fields) otherwise; both
 * are read. Decoders are for untrusted bytes: every length is checked against what is
 * left.
 */
#include "txn/txn.h"

#include <stdlib.h>
#include <string.h>

#define KEY_VERSION 0
/* Tagged fields of value version 1. */
#define TAG_PREVIOUS_PRODUCER_ID 0
#define TAG_NEXT_PRODUCER_ID 1
#define TAG_CLIENT_VERSION 2
#define MAX_PARTITIONS 1000000 /* a bound on one record's partitions (allocation) */

static void put_str(struct buf *b, struct slice s)
{
    ASSERT(s.len <= INT16_MAX);
    buf_put_i16(b, (int16_t)s.len);
    buf_append(b, s.ptr ? s.ptr : (const uint8_t *)"", s.len);
}

static void put_compact_str(struct buf *b, struct slice s)
{
    buf_put_uvarint(b, s.len + 1);
    buf_append(b, s.ptr ? s.ptr : (const uint8_t *)"", s.len);
}

static void put_count(struct buf *b, size_t n, bool flexible)
{
    if (flexible)
        buf_put_uvarint(b, n + 1);
    else
        buf_put_i32(b, (int32_t)n);
}

/* The top-level tagged fields of version 1, those not at their defaults, by tag. */
static void put_value_tags(struct buf *b, const struct txn_meta *m)
{
    int n = (m->prev_producer_id != -1) + (m->next_producer_id != -1) + (m->client_version != 0);
    buf_put_uvarint(b, (uint64_t)n);
    if (m->prev_producer_id != -1) {
        buf_put_uvarint(b, TAG_PREVIOUS_PRODUCER_ID);
        buf_put_uvarint(b, 8);
        buf_put_i64(b, m->prev_producer_id);
    }
    if (m->next_producer_id != -1) {
        buf_put_uvarint(b, TAG_NEXT_PRODUCER_ID);
        buf_put_uvarint(b, 8);
        buf_put_i64(b, m->next_producer_id);
    }
    if (m->client_version != 0) {
        buf_put_uvarint(b, TAG_CLIENT_VERSION);
        buf_put_uvarint(b, 2);
        buf_put_i16(b, m->client_version);
    }
}

void txn_record_encode(struct buf *key, struct buf *value, const struct txn_meta *m)
{
    buf_put_i16(key, KEY_VERSION);
    put_str(key, m->transactional_id);
    bool flexible =
        m->client_version >= 2 || m->prev_producer_id != -1 || m->next_producer_id != -1;
    buf_put_i16(value, flexible ? 1 : 0);
    buf_put_i64(value, m->producer_id);
    buf_put_i16(value, m->producer_epoch);
    buf_put_i32(value, m->timeout_ms);
    buf_put_i8(value, (int8_t)m->state);
    /* Partitions grouped by topic (they are sorted). */
    size_t topics = 0;
    for (size_t i = 0; i < m->n_partitions; i++)
        topics += i == 0 || !slice_eq(m->partitions[i].topic, m->partitions[i - 1].topic);
    put_count(value, topics, flexible);
    for (size_t i = 0; i < m->n_partitions;) {
        size_t j = i;
        while (j < m->n_partitions && slice_eq(m->partitions[j].topic, m->partitions[i].topic))
            j++;
        if (flexible)
            put_compact_str(value, m->partitions[i].topic);
        else
            put_str(value, m->partitions[i].topic);
        put_count(value, j - i, flexible);
        for (size_t k = i; k < j; k++)
            buf_put_i32(value, m->partitions[k].partition);
        if (flexible)
            buf_put_uvarint(value, 0); /* the topic entry's tagged fields: none */
        i = j;
    }
    buf_put_i64(value, m->last_update_ms);
    buf_put_i64(value, m->start_ms);
    if (flexible)
        put_value_tags(value, m);
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

/* Tagged fields: those of the value's top level are read into m (when m is not NULL),
 * others skipped. */
static void read_tags(struct reader *r, struct txn_meta *m)
{
    uint64_t n = rd_uvarint(r);
    for (uint64_t i = 0; i < n && !r->err; i++) {
        uint64_t tag = rd_uvarint(r);
        uint64_t size = rd_uvarint(r);
        if (size > rd_remaining(r)) {
            r->err = -1;
            break;
        }
        struct reader field;
        rd_init(&field, r->p + r->pos, (size_t)size);
        rd_skip(r, (size_t)size);
        if (!m)
            continue;
        if (tag == TAG_PREVIOUS_PRODUCER_ID && size == 8)
            m->prev_producer_id = rd_i64(&field);
        else if (tag == TAG_NEXT_PRODUCER_ID && size == 8)
            m->next_producer_id = rd_i64(&field);
        else if (tag == TAG_CLIENT_VERSION && size == 2)
            m->client_version = rd_i16(&field);
        else if (tag <= TAG_CLIENT_VERSION)
            r->err = -1; /* a known field of the wrong size */
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
    m->prev_producer_id = -1;
    m->next_producer_id = -1;
    m->client_version = 0;
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
            read_tags(&r, NULL);
    }
    m->last_update_ms = rd_i64(&r);
    m->start_ms = rd_i64(&r);
    if (flexible)
        read_tags(&r, m);
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
