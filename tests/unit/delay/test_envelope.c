/* Unit tests for the delay store's records: envelopes, keys and raw headers (delay.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "delay/delay.h"

static bool same(struct slice a, struct slice b)
{
    if (!a.ptr || !b.ptr)
        return !a.ptr && !b.ptr;
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* Two headers in a record's raw layout: varint lengths (zigzag) and bytes. */
static const uint8_t raw_headers[] = {
    2 * 3,  'a',   'p', 'p', 2 * 1, 'x',                /* app=x */
    2 * 16, 's',   'a', 'm', 's',   'a', '.', 'd', 'e', /* samsa.deliver.at=5 */
    'l',    'i',   'v', 'e', 'r',   '.', 'a', 't', 2 * 1,
    '5',    2 * 1, 'n', 1, /* n=null (length -1 is zigzag 1) */
};

static void test_envelope_round_trip(void **state)
{
    (void)state;
    struct delay_envelope e = {
        .due_ms = 1796638500123,
        .topic = slice_from_cstr("orders"),
        .topic_id = (const uint8_t *)"0123456789abcdef",
        .partition = 7,
        .producer_id = 4242,
        .producer_epoch = 3,
        .first_sequence = 100,
        .last_sequence = 109,
        .timestamp = 1796638400000,
        .key = SLICE_NULL,
        .value = slice_from_cstr("payload"),
        .header_count = 3,
        .headers = {raw_headers, sizeof raw_headers},
    };
    struct buf b;
    buf_init(&b);
    delay_envelope_encode(&b, &e);
    struct delay_envelope d;
    assert_int_equal(delay_envelope_decode((struct slice){b.data, b.len}, &d), 0);
    assert_int_equal(d.due_ms, e.due_ms);
    assert_true(same(d.topic, e.topic));
    assert_memory_equal(d.topic_id, "0123456789abcdef", 16);
    assert_int_equal(d.partition, 7);
    assert_int_equal(d.producer_id, 4242);
    assert_int_equal(d.producer_epoch, 3);
    assert_int_equal(d.first_sequence, 100);
    assert_int_equal(d.last_sequence, 109);
    assert_int_equal(d.timestamp, e.timestamp);
    assert_null(d.key.ptr); /* a null key stays null */
    assert_true(same(d.value, e.value));
    assert_int_equal(d.header_count, 3);
    assert_true(same(d.headers, e.headers));

    /* An empty (not null) value, no headers. */
    buf_reset(&b);
    e.value = (struct slice){(const uint8_t *)"", 0};
    e.key = slice_from_cstr("k");
    e.header_count = 0;
    e.headers = SLICE_NULL;
    delay_envelope_encode(&b, &e);
    assert_int_equal(delay_envelope_decode((struct slice){b.data, b.len}, &d), 0);
    assert_non_null(d.value.ptr);
    assert_int_equal(d.value.len, 0);
    assert_int_equal(d.header_count, 0);

    /* Every cut short, a trailing byte, another version: refused. */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(delay_envelope_decode((struct slice){b.data, n}, &d), -1);
    buf_put_i8(&b, 0);
    assert_int_equal(delay_envelope_decode((struct slice){b.data, b.len}, &d), -1);
    b.len--;
    b.data[0] = 1;
    assert_int_equal(delay_envelope_decode((struct slice){b.data, b.len}, &d), -1);
    buf_free(&b);
}

static void test_keys(void **state)
{
    (void)state;
    uint8_t k[DELAY_ENVELOPE_KEY_BYTES];
    struct delay_key dk;
    assert_int_equal(delay_key_envelope(k, 123456789012, 1765100000000), DELAY_ENVELOPE_KEY_BYTES);
    delay_key_decode((struct slice){k, sizeof k}, &dk);
    assert_int_equal(dk.kind, DELAY_KEY_ENVELOPE);
    assert_int_equal(dk.offset, 123456789012);
    assert_int_equal(dk.due_ms, 1765100000000);
    /* The 9-byte key of a store written before the due time was in it. */
    assert_int_equal(delay_key_envelope(k, 77, DELAY_DUE_UNKNOWN), DELAY_ENVELOPE_KEY_BYTES_V0);
    delay_key_decode((struct slice){k, DELAY_ENVELOPE_KEY_BYTES_V0}, &dk);
    assert_int_equal(dk.kind, DELAY_KEY_ENVELOPE);
    assert_int_equal(dk.offset, 77);
    assert_int_equal(dk.due_ms, DELAY_DUE_UNKNOWN);

    struct buf b;
    buf_init(&b);
    delay_key_sequence(&b, slice_from_cstr("orders"), 12);
    delay_key_decode((struct slice){b.data, b.len}, &dk);
    assert_int_equal(dk.kind, DELAY_KEY_SEQUENCE);
    assert_true(same(dk.topic, slice_from_cstr("orders")));
    assert_int_equal(dk.partition, 12);
    buf_free(&b);

    delay_key_decode(slice_from_cstr(DELAY_COUNTS_KEY), &dk);
    assert_int_equal(dk.kind, DELAY_KEY_COUNTS);
    struct delay_counts c = {5, 2, 3, 1}, back;
    uint8_t cv[DELAY_COUNTS_BYTES];
    delay_counts_encode(cv, &c);
    assert_int_equal(delay_counts_decode((struct slice){cv, sizeof cv}, &back), 0);
    assert_memory_equal(&back, &c, sizeof c);
    assert_int_equal(delay_counts_decode((struct slice){cv, sizeof cv - 1}, &back), -1);
    cv[0] = 0x80; /* negative */
    assert_int_equal(delay_counts_decode((struct slice){cv, sizeof cv}, &back), -1);

    /* Another record type, a short key, a key between the two envelope lengths, a
     * negative offset: not ours to read. */
    delay_key_decode(slice_from_cstr("Xabcdefgh"), &dk);
    assert_int_equal(dk.kind, DELAY_KEY_UNKNOWN);
    delay_key_decode(slice_from_cstr("S123"), &dk);
    assert_int_equal(dk.kind, DELAY_KEY_UNKNOWN);
    delay_key_envelope(k, 5, 1000);
    delay_key_decode((struct slice){k, 12}, &dk);
    assert_int_equal(dk.kind, DELAY_KEY_UNKNOWN);
    delay_key_envelope(k, -1, 1000);
    delay_key_decode((struct slice){k, sizeof k}, &dk);
    assert_int_equal(dk.kind, DELAY_KEY_UNKNOWN);
}

static void test_headers_read(void **state)
{
    (void)state;
    struct delay_header hs[4];
    struct slice raw = {raw_headers, sizeof raw_headers};
    assert_int_equal(delay_headers_read(raw, 3, hs, 4), 3);
    assert_true(same(hs[0].key, slice_from_cstr("app")));
    assert_true(same(hs[0].value, slice_from_cstr("x")));
    assert_true(same(hs[1].key, slice_from_cstr(DELAY_HEADER_AT)));
    assert_true(same(hs[1].value, slice_from_cstr("5")));
    assert_true(same(hs[2].key, slice_from_cstr("n")));
    assert_null(hs[2].value.ptr);
    /* What the delivery headers of that record say. */
    struct delay_request r;
    char why[128];
    assert_int_equal(delay_parse(hs, 3, 1000, INT64_MAX, &r, why, sizeof why), 0);
    assert_int_equal(r.kind, DELAY_DELIVER);
    assert_int_equal(r.due_ms, 5);
    /* More than room, a count that does not match the bytes, cut short: refused. */
    assert_int_equal(delay_headers_read(raw, 3, hs, 2), -1);
    assert_int_equal(delay_headers_read(raw, 2, hs, 4), -1);
    assert_int_equal(delay_headers_read(raw, 4, hs, 4), -1);
    assert_int_equal(delay_headers_read((struct slice){raw_headers, 5}, 1, hs, 4), -1);
    assert_int_equal(delay_headers_read(SLICE_NULL, 0, hs, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_round_trip),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_headers_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
