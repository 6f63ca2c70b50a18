/* Records inside an uncompressed magic-2 batch: iterate them (for compaction, group
 * offsets loading and record-level timestamp lookups) and build batches of them (for
 * internal topics the broker writes itself).
 *
 * Record layout (all varints zigzag): length, attributes int8, timestampDelta varlong,
 * offsetDelta varint, keyLength varint (-1 null), key, valueLength varint (-1 null),
 * value, headerCount varint, then per header: keyLength, key, valueLength, value. */
#include "storage/storage_internal.h"

#include <stdlib.h>
#include <string.h>

void record_iter_init(struct record_iter *it, const uint8_t *batch, const struct batch_info *info)
{
    ASSERT(batch_compression(info) == 0);
    rd_init(&it->r, batch + BATCH_HEADER_BYTES, info->size_bytes - BATCH_HEADER_BYTES);
    it->info = *info;
    it->remaining = info->records_count;
    it->prev_delta = -1;
}

/* A varint-length byte string: -1 is null. */
static struct slice read_varbytes(struct reader *r)
{
    int32_t len = rd_varint(r);
    if (r->err || len < -1) {
        r->err = -1;
        return SLICE_NULL;
    }
    if (len == -1)
        return SLICE_NULL;
    struct slice s = rd_bytes(r, (size_t)len);
    if (!r->err && len == 0)
        s.ptr = (const uint8_t *)""; /* empty, not null */
    return s;
}

int record_iter_next(struct record_iter *it, struct record *out)
{
    if (it->remaining == 0)
        return rd_remaining(&it->r) == 0 && !it->r.err ? 0 : STORAGE_ERR_CORRUPT;
    int32_t rec_len = rd_varint(&it->r);
    if (it->r.err || rec_len < 0 || (size_t)rec_len > rd_remaining(&it->r))
        return STORAGE_ERR_CORRUPT;
    struct reader rec;
    rd_init(&rec, it->r.p + it->r.pos, (size_t)rec_len);
    rd_skip(&it->r, (size_t)rec_len);
    out->attributes = rd_i8(&rec);
    int64_t ts_delta = rd_varlong(&rec);
    int32_t offset_delta = rd_varint(&rec);
    out->key = read_varbytes(&rec);
    out->value = read_varbytes(&rec);
    out->header_count = rd_varint(&rec);
    if (rec.err || out->header_count < 0)
        return STORAGE_ERR_CORRUPT;
    size_t headers_at = rec.pos;
    for (int32_t h = 0; h < out->header_count && !rec.err; h++) {
        int32_t klen = rd_varint(&rec);
        if (klen < 0)
            return STORAGE_ERR_CORRUPT;
        rd_skip(&rec, (size_t)klen);
        (void)read_varbytes(&rec);
    }
    if (rec.err || rd_remaining(&rec) != 0)
        return STORAGE_ERR_CORRUPT;
    if (offset_delta <= it->prev_delta || offset_delta > it->info.last_offset_delta)
        return STORAGE_ERR_CORRUPT;
    it->prev_delta = offset_delta;
    out->headers = (struct slice){rec.p + headers_at, rec.len - headers_at};
    out->offset_delta = offset_delta;
    /* Wrapping, as Kafka's Java longs do: a hostile batch may carry any base values. */
    out->offset = (int64_t)((uint64_t)it->info.base_offset + (uint64_t)offset_delta);
    out->timestamp = (int64_t)((uint64_t)it->info.first_timestamp + (uint64_t)ts_delta);
    it->remaining--;
    return 1;
}

/* ---- checking every record of a produced batch, without building records ---- */

static inline bool take_varint(const uint8_t **p, const uint8_t *end, int32_t *out)
{
    uint64_t u;
    if (!uvarint_take(p, end, 5, &u))
        return false;
    uint32_t w = (uint32_t)u;
    *out = (int32_t)((w >> 1) ^ (~(w & 1) + 1));
    return true;
}

/* Skips a varint length (>= min) and that many bytes; *is_null when the length is -1. */
static inline bool skip_sized(const uint8_t **p, const uint8_t *end, int32_t min, bool *is_null)
{
    int32_t len;
    if (!take_varint(p, end, &len) || len < min)
        return false;
    *is_null = len == -1;
    if (len <= 0)
        return true;
    if ((size_t)len > (size_t)(end - *p))
        return false;
    *p += len;
    return true;
}

int batch_scan_records(const uint8_t *batch, const struct batch_info *info, struct batch_scan *out)
{
    ASSERT(batch_compression(info) == 0);
    const uint8_t *p = batch + BATCH_HEADER_BYTES, *end = batch + info->size_bytes;
    int32_t prev_delta = -1;
    bool keyed = true, any_headers = false;
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
    for (int32_t n = 0; n < info->records_count; n++) {
        int32_t rec_len, offset_delta, headers;
        uint64_t ts_delta;
        bool null;
        if (!take_varint(&p, end, &rec_len) || rec_len < 0 || (size_t)rec_len > (size_t)(end - p))
            return STORAGE_ERR_CORRUPT;
        const uint8_t *rec_end = p + rec_len;
        if (p == rec_end)
            return STORAGE_ERR_CORRUPT; /* no attributes byte */
        p++;                            /* attributes */
        if (!uvarint_take(&p, rec_end, 10, &ts_delta) || !take_varint(&p, rec_end, &offset_delta) ||
            !skip_sized(&p, rec_end, -1, &null))
            return STORAGE_ERR_CORRUPT;
        keyed &= !null;
        /* The record's timestamp, wrapping as Kafka's Java longs do (a hostile batch may
         * carry any values): two compares per record, for message.timestamp.*.max.ms. */
        int64_t ts =
            (int64_t)((uint64_t)info->first_timestamp + ((ts_delta >> 1) ^ (~(ts_delta & 1) + 1)));
        min_ts = ts < min_ts ? ts : min_ts;
        max_ts = ts > max_ts ? ts : max_ts;
        if (!skip_sized(&p, rec_end, -1, &null) || !take_varint(&p, rec_end, &headers) ||
            headers < 0)
            return STORAGE_ERR_CORRUPT;
        any_headers |= headers > 0;
        for (int32_t h = 0; h < headers; h++)
            if (!skip_sized(&p, rec_end, 0, &null) || !skip_sized(&p, rec_end, -1, &null))
                return STORAGE_ERR_CORRUPT;
        if (p != rec_end || offset_delta <= prev_delta || offset_delta > info->last_offset_delta)
            return STORAGE_ERR_CORRUPT;
        prev_delta = offset_delta;
    }
    if (p != end)
        return STORAGE_ERR_CORRUPT;
    *out = (struct batch_scan){.all_keyed = keyed,
                               .min_timestamp = min_ts,
                               .max_timestamp = max_ts,
                               .any_headers = any_headers};
    return 0;
}

int batch_check_records(const uint8_t *batch, const struct batch_info *info, bool *all_keyed)
{
    struct batch_scan scan;
    int rc = batch_scan_records(batch, info, &scan);
    if (rc == 0 && all_keyed)
        *all_keyed = scan.all_keyed;
    return rc;
}

/* Bytes put_varbytes writes for s. */
static size_t sized_len(struct slice s)
{
    return s.ptr ? varint_size((int32_t)s.len) + s.len : 1; /* -1 is one byte */
}

static void put_varbytes(struct buf *b, struct slice s)
{
    if (!s.ptr) {
        buf_put_varint(b, -1);
        return;
    }
    buf_put_varint(b, (int32_t)s.len);
    buf_append(b, s.ptr, s.len);
}

void batch_encode(struct buf *out, const struct record_in *recs, size_t n, int64_t timestamp)
{
    ASSERT(n > 0 && n <= INT32_MAX);
    struct record_out *all = xcalloc(n, sizeof *all);
    for (size_t i = 0; i < n; i++)
        all[i] = (struct record_out){.key = recs[i].key, .value = recs[i].value};
    batch_encode_records(out, all, n, timestamp, NULL);
    free(all);
}

void batch_encode_records(struct buf *out, const struct record_out *recs, size_t n,
                          int64_t timestamp, const struct batch_producer *producer)
{
    ASSERT(n > 0 && n <= INT32_MAX);
    size_t start = out->len;
    buf_put_i64(out, 0);              /* baseOffset: assigned by log_append */
    buf_put_i32(out, 0);              /* batchLength: patched below */
    buf_put_i32(out, -1);             /* partitionLeaderEpoch: assigned by log_append */
    buf_put_i8(out, 2);               /* magic */
    buf_put_u32(out, 0);              /* crc: patched below */
    buf_put_i16(out, 0);              /* attributes: uncompressed, CreateTime */
    buf_put_i32(out, (int32_t)n - 1); /* lastOffsetDelta */
    buf_put_i64(out, timestamp);      /* baseTimestamp */
    buf_put_i64(out, timestamp);      /* maxTimestamp */
    buf_put_i64(out, producer ? producer->id : -1);
    buf_put_i16(out, producer ? producer->epoch : -1);
    buf_put_i32(out, producer ? producer->base_sequence : -1);
    buf_put_i32(out, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        /* Written in place: the record's length comes first, so it is counted first. */
        const struct record_out *r = &recs[i];
        size_t body = 1 /* attributes */ + 1 /* timestampDelta 0 */ + varint_size((int32_t)i) +
                      sized_len(r->key) + sized_len(r->value) + varint_size(r->header_count) +
                      r->headers.len;
        buf_reserve(out, varint_size((int32_t)body) + body);
        buf_put_varint(out, (int32_t)body);
        size_t at = out->len;
        buf_put_i8(out, 0);
        buf_put_varlong(out, 0);
        buf_put_varint(out, (int32_t)i);
        put_varbytes(out, r->key);
        put_varbytes(out, r->value);
        buf_put_varint(out, r->header_count);
        if (r->headers.len)
            buf_append(out, r->headers.ptr, r->headers.len);
        ASSERT(out->len - at == body);
    }
    be32_write(out->data + start + BATCH_OFF_LENGTH,
               (uint32_t)(out->len - start - BATCH_LOG_OVERHEAD));
    be32_write(out->data + start + BATCH_OFF_CRC,
               crc32c(0, out->data + start + BATCH_OFF_ATTRIBUTES,
                      out->len - start - BATCH_OFF_ATTRIBUTES));
}

#define MARKER_VERSION 0

void batch_set_transactional(uint8_t *batch, size_t len)
{
    uint16_t attrs = be16_read(batch + BATCH_OFF_ATTRIBUTES);
    be16_write(batch + BATCH_OFF_ATTRIBUTES, (uint16_t)(attrs | BATCH_ATTR_TRANSACTIONAL));
    be32_write(batch + BATCH_OFF_CRC,
               crc32c(0, batch + BATCH_OFF_ATTRIBUTES, len - BATCH_OFF_ATTRIBUTES));
}

void batch_encode_marker(struct buf *out, int64_t producer_id, int16_t producer_epoch,
                         enum txn_marker_type type, int32_t coordinator_epoch, int64_t timestamp)
{
    uint8_t key[4], value[6];
    be16_write(key, MARKER_VERSION);
    be16_write(key + 2, (uint16_t)type);
    be16_write(value, MARKER_VERSION);
    be32_write(value + 2, (uint32_t)coordinator_epoch);
    struct record_out r = {.key = {key, sizeof key}, .value = {value, sizeof value}};
    /* Markers carry no sequence (-1): they are not part of the producer's sequence. */
    struct batch_producer producer = {producer_id, producer_epoch, -1};
    size_t start = out->len;
    batch_encode_records(out, &r, 1, timestamp, &producer);
    uint8_t *b = out->data + start;
    be16_write(b + BATCH_OFF_ATTRIBUTES, BATCH_ATTR_CONTROL);
    batch_set_transactional(b, out->len - start);
}

int batch_parse_marker(const uint8_t *batch, const struct batch_info *info,
                       enum txn_marker_type *type, int32_t *coordinator_epoch)
{
    if (!(info->attributes & BATCH_ATTR_CONTROL) || batch_compression(info) != 0 ||
        info->records_count != 1)
        return STORAGE_ERR_CORRUPT;
    struct record_iter it;
    struct record r;
    record_iter_init(&it, batch, info);
    if (record_iter_next(&it, &r) != 1 || r.key.ptr == NULL || r.key.len < 4 ||
        r.value.ptr == NULL || r.value.len < 6)
        return STORAGE_ERR_CORRUPT;
    /* Later versions may add fields after these, as Kafka's readers allow. */
    int16_t t = (int16_t)be16_read(r.key.ptr + 2);
    if ((int16_t)be16_read(r.key.ptr) < 0 || (t != TXN_MARKER_ABORT && t != TXN_MARKER_COMMIT))
        return STORAGE_ERR_CORRUPT;
    *type = (enum txn_marker_type)t;
    *coordinator_epoch = (int32_t)be32_read(r.value.ptr + 2);
    return 0;
}
