/* Record batch validation: good batches, bad CRC, bad magic, truncation, length lies. */
#include "helpers.h"

static void test_validate_good(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    th_batch(&b, 5, 1000, 10, 'a');
    struct batch_info info;
    assert_int_equal(batch_validate(b.data, b.len, &info), 0);
    assert_int_equal(info.size_bytes, b.len);
    assert_int_equal(info.records_count, 5);
    assert_int_equal(info.last_offset_delta, 4);
    assert_int_equal(info.first_timestamp, 1000);
    assert_int_equal(info.max_timestamp, 1004);
    assert_int_equal(info.producer_id, -1);
    assert_int_equal(batch_compression(&info), 0);
    assert_int_equal(batch_count_records_check(b.data, &info), 0);
    int batches;
    int64_t records;
    th_batch(&b, 3, 2000, 0, 'b');
    assert_int_equal(batch_validate_all(b.data, b.len, true, &batches, &records), 0);
    assert_int_equal(batches, 2);
    assert_int_equal(records, 8);
    buf_free(&b);
}

static void test_validate_bad(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    th_batch(&b, 3, 1000, 20, 'x');
    struct batch_info info;
    /* flipped byte in a record value: CRC mismatch */
    b.data[b.len - 5] ^= 0x40;
    assert_int_equal(batch_validate(b.data, b.len, &info), STORAGE_ERR_CORRUPT);
    b.data[b.len - 5] ^= 0x40;
    /* partitionLeaderEpoch is not covered by the CRC */
    be32_write(b.data + BATCH_OFF_LEADER_EPOCH, 77);
    assert_int_equal(batch_validate(b.data, b.len, &info), 0);
    assert_int_equal(info.partition_leader_epoch, 77);
    /* bad magic */
    b.data[BATCH_OFF_MAGIC] = 1;
    assert_int_equal(batch_validate(b.data, b.len, &info), STORAGE_ERR_BAD_MAGIC);
    b.data[BATCH_OFF_MAGIC] = 2;
    /* truncated */
    assert_int_equal(batch_validate(b.data, b.len - 1, &info), STORAGE_ERR_SHORT);
    assert_int_equal(batch_validate(b.data, 10, &info), STORAGE_ERR_SHORT);
    /* length lies: too small, and larger than the buffer */
    uint32_t real = be32_read(b.data + BATCH_OFF_LENGTH);
    be32_write(b.data + BATCH_OFF_LENGTH, 48);
    assert_int_equal(batch_validate(b.data, b.len, &info), STORAGE_ERR_CORRUPT);
    be32_write(b.data + BATCH_OFF_LENGTH, (uint32_t)-5);
    assert_int_equal(batch_validate(b.data, b.len, &info), STORAGE_ERR_CORRUPT);
    be32_write(b.data + BATCH_OFF_LENGTH, real + 100);
    assert_int_equal(batch_validate(b.data, b.len, &info), STORAGE_ERR_SHORT);
    /* shorter than the real batch: CRC covers the wrong bytes */
    be32_write(b.data + BATCH_OFF_LENGTH, real - 4);
    assert_int_equal(batch_validate(b.data, b.len, &info), STORAGE_ERR_CORRUPT);
    be32_write(b.data + BATCH_OFF_LENGTH, real);
    assert_int_equal(batch_validate(b.data, b.len, &info), 0);
    /* trailing garbage after a good batch */
    buf_append(&b, "xyz", 3);
    assert_int_equal(batch_validate_all(b.data, b.len, true, NULL, NULL), STORAGE_ERR_SHORT);
    assert_int_equal(batch_validate_all(b.data, 0, true, NULL, NULL), STORAGE_ERR_CORRUPT);
    buf_free(&b);
}

static void test_record_framing(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    th_batch(&b, 3, 1000, 4, 'x');
    struct batch_info info;
    assert_int_equal(batch_validate(b.data, b.len, &info), 0);
    /* records count lies (CRC recomputed so only the framing check catches it) */
    be32_write(b.data + BATCH_OFF_RECORDS_COUNT, 4);
    be32_write(b.data + BATCH_OFF_CRC,
               crc32c(0, b.data + BATCH_OFF_ATTRIBUTES, b.len - BATCH_OFF_ATTRIBUTES));
    assert_int_equal(batch_validate(b.data, b.len, &info), 0);
    assert_int_equal(batch_count_records_check(b.data, &info), STORAGE_ERR_CORRUPT);
    be32_write(b.data + BATCH_OFF_RECORDS_COUNT, 2);
    assert_int_equal(batch_parse_header(b.data, b.len, &info), 0);
    assert_int_equal(batch_count_records_check(b.data, &info), STORAGE_ERR_CORRUPT);
    /* compressed batches are not walked */
    info.attributes = 1;
    assert_int_equal(batch_count_records_check(b.data, &info), 0);
    buf_free(&b);
}

/* batch_encode output validates, and record_iter reads back exactly what went in,
 * including null keys, tombstones and empty (non-null) values. */
static void test_encode_and_iterate(void **state)
{
    (void)state;
    struct record_in in[] = {
        {slice_from_cstr("k1"), slice_from_cstr("v1")},
        {SLICE_NULL, slice_from_cstr("no key")},
        {slice_from_cstr("k2"), SLICE_NULL},
        {slice_from_cstr("k3"), (struct slice){(const uint8_t *)"", 0}},
    };
    struct buf b;
    buf_init(&b);
    batch_encode(&b, in, 4, 1234567);
    struct batch_info info;
    assert_int_equal(batch_validate(b.data, b.len, &info), 0);
    assert_int_equal(info.records_count, 4);
    assert_int_equal(info.last_offset_delta, 3);
    assert_int_equal(batch_count_records_check(b.data, &info), 0);
    be64_write(b.data, 100); /* as if appended at offset 100 */
    info.base_offset = 100;
    struct record_iter it;
    struct record r;
    record_iter_init(&it, b.data, &info);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(record_iter_next(&it, &r), 1);
        assert_true(r.offset == 100 + i);
        assert_true(r.timestamp == 1234567);
        assert_true(slice_eq(r.key, in[i].key));
        assert_true(slice_eq(r.value, in[i].value));
        assert_int_equal(r.header_count, 0);
    }
    assert_int_equal(record_iter_next(&it, &r), 0);
    /* A record count that lies is caught. */
    info.records_count = 5;
    record_iter_init(&it, b.data, &info);
    int rc;
    while ((rc = record_iter_next(&it, &r)) > 0) {
    }
    assert_int_equal(rc, STORAGE_ERR_CORRUPT);
    buf_free(&b);
}

/* The one-pass record check used on produce must agree with the record iterator on
 * every single-byte change of a batch with keyed, unkeyed, empty and headered records. */
static int iterate_all(const uint8_t *p, const struct batch_info *info, bool *keyed)
{
    struct record_iter it;
    struct record r;
    int rc;
    *keyed = true;
    record_iter_init(&it, p, info);
    while ((rc = record_iter_next(&it, &r)) > 0)
        *keyed &= r.key.ptr != NULL;
    return rc;
}

/* batch_scan_records's timestamp range must be the iterator's smallest and largest. */
static void assert_scan_matches_iterator(const uint8_t *p, const struct batch_info *info)
{
    struct batch_scan scan;
    if (batch_scan_records(p, info, &scan) != 0)
        return;
    struct record_iter it;
    struct record r;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    bool keyed = true;
    record_iter_init(&it, p, info);
    while (record_iter_next(&it, &r) > 0) {
        lo = r.timestamp < lo ? r.timestamp : lo;
        hi = r.timestamp > hi ? r.timestamp : hi;
        keyed &= r.key.ptr != NULL;
    }
    assert_true(scan.min_timestamp == lo);
    assert_true(scan.max_timestamp == hi);
    assert_int_equal(scan.all_keyed, keyed);
}

static void test_check_records_matches_iterator(void **state)
{
    (void)state;
    struct record_in recs[] = {
        {.key = {(const uint8_t *)"k1", 2}, .value = {(const uint8_t *)"value-1", 7}},
        {.key = {(const uint8_t *)"", 0}, .value = SLICE_NULL},
        {.key = SLICE_NULL, .value = {(const uint8_t *)"v", 1}},
    };
    for (int variant = 0; variant < 3; variant++) {
        bool keyed_only = variant != 0;
        struct buf b;
        buf_init(&b);
        batch_encode(&b, recs, keyed_only ? 2 : 3, 5000);
        struct batch_info info;
        assert_int_equal(batch_validate(b.data, b.len, &info), 0);
        if (variant == 2) { /* the same two records' slots rewritten with headers */
            b.len = BATCH_HEADER_BYTES;
            for (int i = 0; i < 2; i++) {
                struct buf rec;
                buf_init(&rec);
                buf_put_i8(&rec, 0);
                buf_put_varlong(&rec, i);
                buf_put_varint(&rec, i);
                buf_put_varint(&rec, 1);
                buf_append(&rec, "k", 1);
                buf_put_varint(&rec, 1);
                buf_append(&rec, "v", 1);
                buf_put_varint(&rec, 2); /* headers */
                buf_put_varint(&rec, 2);
                buf_append(&rec, "h1", 2);
                buf_put_varint(&rec, -1); /* null header value */
                buf_put_varint(&rec, 2);
                buf_append(&rec, "h2", 2);
                buf_put_varint(&rec, 1);
                buf_append(&rec, "x", 1);
                buf_put_varint(&b, (int32_t)rec.len);
                buf_append(&b, rec.data, rec.len);
                buf_free(&rec);
            }
            info.size_bytes = (int32_t)b.len; /* the check trusts the header's numbers */
        }
        bool keyed, fast_keyed;
        assert_int_equal(iterate_all(b.data, &info, &keyed), 0);
        assert_int_equal(batch_check_records(b.data, &info, &fast_keyed), 0);
        assert_int_equal(fast_keyed, keyed);
        assert_int_equal(keyed, keyed_only);
        static const uint8_t values[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0x03, 0x10};
        int agreed = 0;
        for (size_t pos = BATCH_HEADER_BYTES; pos < b.len; pos++) {
            uint8_t orig = b.data[pos];
            for (size_t v = 0; v < sizeof values; v++) {
                b.data[pos] = values[v];
                int slow = iterate_all(b.data, &info, &keyed);
                int fast = batch_check_records(b.data, &info, &fast_keyed);
                assert_int_equal(fast == 0, slow == 0);
                if (fast == 0)
                    assert_int_equal(fast_keyed, keyed);
                assert_scan_matches_iterator(b.data, &info);
                agreed++;
            }
            b.data[pos] = orig;
        }
        /* and with the count and last offset delta lying */
        info.records_count++;
        info.last_offset_delta++;
        assert_int_equal(iterate_all(b.data, &info, &keyed) == 0,
                         batch_check_records(b.data, &info, &fast_keyed) == 0);
        assert_true(agreed > 100);
        buf_free(&b);
    }
}

/* The timestamp range of the one-pass scan (message.timestamp.*.max.ms checks):
 * deltas may be negative, so the smallest need not be the first record's. */
static void test_scan_records_timestamps(void **state)
{
    (void)state;
    static const int64_t deltas[] = {0, 5, -7, 3};
    struct buf b;
    buf_init(&b);
    struct record_in one = {.key = {(const uint8_t *)"k", 1}, .value = SLICE_NULL};
    batch_encode(&b, &one, 1, 1000);
    b.len = BATCH_HEADER_BYTES;
    for (int i = 0; i < 4; i++) {
        struct buf rec;
        buf_init(&rec);
        buf_put_i8(&rec, 0);
        buf_put_varlong(&rec, deltas[i]);
        buf_put_varint(&rec, i);
        buf_put_varint(&rec, i == 2 ? -1 : 1); /* record 2 has no key */
        if (i != 2)
            buf_append(&rec, "k", 1);
        buf_put_varint(&rec, -1);
        buf_put_varint(&rec, 0);
        buf_put_varint(&b, (int32_t)rec.len);
        buf_append(&b, rec.data, rec.len);
        buf_free(&rec);
    }
    be32_write(b.data + BATCH_OFF_LENGTH, (uint32_t)(b.len - BATCH_LOG_OVERHEAD));
    be32_write(b.data + BATCH_OFF_LAST_OFFSET_DELTA, 3);
    be32_write(b.data + BATCH_OFF_RECORDS_COUNT, 4);
    be32_write(b.data + BATCH_OFF_CRC,
               crc32c(0, b.data + BATCH_OFF_ATTRIBUTES, b.len - BATCH_OFF_ATTRIBUTES));
    struct batch_info info;
    assert_int_equal(batch_validate(b.data, b.len, &info), 0);
    struct batch_scan scan;
    assert_int_equal(batch_scan_records(b.data, &info, &scan), 0);
    assert_true(scan.min_timestamp == 993);
    assert_true(scan.max_timestamp == 1005);
    assert_false(scan.all_keyed);
    assert_scan_matches_iterator(b.data, &info);
    /* No records: an empty range. */
    info.size_bytes = BATCH_HEADER_BYTES;
    info.records_count = 0;
    assert_int_equal(batch_scan_records(b.data, &info, &scan), 0);
    assert_true(scan.min_timestamp == INT64_MAX && scan.max_timestamp == INT64_MIN);
    assert_true(scan.all_keyed);
    buf_free(&b);
}

/* Base offset and timestamp near INT64_MAX (any bytes a client sends): record offsets
 * and timestamps wrap as in Kafka instead of overflowing (found by fuzz_batch). */
static void test_record_values_wrap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    th_batch(&b, 2, 0, 4, 'w');
    be64_write(b.data + BATCH_OFF_BASE_OFFSET, (uint64_t)INT64_MAX);
    be64_write(b.data + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)INT64_MAX);
    be32_write(b.data + BATCH_OFF_CRC,
               crc32c(0, b.data + BATCH_OFF_ATTRIBUTES, b.len - BATCH_OFF_ATTRIBUTES));
    struct batch_info info;
    assert_int_equal(batch_validate(b.data, b.len, &info), 0);
    struct record_iter it;
    struct record r;
    record_iter_init(&it, b.data, &info);
    assert_int_equal(record_iter_next(&it, &r), 1);
    assert_int_equal(r.timestamp, INT64_MAX);
    assert_int_equal(record_iter_next(&it, &r), 1);
    assert_int_equal(r.offset, INT64_MIN);
    assert_int_equal(r.timestamp, INT64_MIN);
    struct batch_scan scan;
    assert_int_equal(batch_scan_records(b.data, &info, &scan), 0);
    assert_true(scan.min_timestamp == INT64_MIN && scan.max_timestamp == INT64_MAX);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_and_iterate),
        cmocka_unit_test(test_validate_good),
        cmocka_unit_test(test_validate_bad),
        cmocka_unit_test(test_record_framing),
        cmocka_unit_test(test_check_records_matches_iterator),
        cmocka_unit_test(test_record_values_wrap),
        cmocka_unit_test(test_scan_records_timestamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
