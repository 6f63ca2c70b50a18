/*
 * fuzz_delay_header: libFuzzer target for delay_parse, which reads the delivery headers
 * (samsa.deliver.at / .after / .cancel) of every record a producer sends. The input is
 * an append time and a bound (8 bytes each), then headers: a byte choosing the key (one
 * of the three, or another), a byte of value length (255: a null value), the value.
 * Checks what a success promises: a delivery time not before the append time for
 * `after`, not before 1970 for `at`, within the bound; a cancel names something.
 * An input starting with '#' is for the delay store's own records instead, read back at
 * start-up: the rest is an envelope value (delay_envelope_decode; one that decodes must
 * encode back to the same bytes, and its raw headers are read with delay_headers_read),
 * and also a key (delay_key_decode) and a counts value (delay_counts_decode). One target for both keeps make test's fuzz pass
 * short.
 * Build: cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON, target fuzz_delay_header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delay/delay.h"

#define MAX_HEADERS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int store_records(const uint8_t *data, size_t size)
{
    struct slice in = {data, size};
    struct delay_key k;
    delay_key_decode(in, &k);
    switch (k.kind) {
    case DELAY_KEY_ENVELOPE: {
        /* What decodes as an envelope key encodes back to the same bytes. */
        uint8_t again[DELAY_ENVELOPE_KEY_BYTES];
        size_t n = delay_key_envelope(again, k.offset, k.due_ms);
        if (k.offset < 0 || n != size || memcmp(again, data, n) != 0)
            abort();
        break;
    }
    case DELAY_KEY_SEQUENCE:
        if (k.partition < 0 || k.topic.ptr < data || k.topic.ptr + k.topic.len > data + size)
            abort();
        break;
    case DELAY_KEY_COUNTS:
        if (size != 1)
            abort();
        break;
    case DELAY_KEY_UNKNOWN: break;
    }
    struct delay_counts counts;
    if (delay_counts_decode(in, &counts) == 0) {
        uint8_t again[DELAY_COUNTS_BYTES];
        delay_counts_encode(again, &counts);
        if (memcmp(again, data, DELAY_COUNTS_BYTES) != 0 || counts.delivered < 0)
            abort();
    }
    struct delay_envelope e;
    if (delay_envelope_decode(in, &e) != 0)
        return 0;
    struct buf again;
    buf_init(&again);
    delay_envelope_encode(&again, &e);
    if (again.len != size || memcmp(again.data, data, size) != 0)
        abort(); /* what decodes is exactly what the encoder writes */
    buf_free(&again);
    struct delay_header h[MAX_HEADERS];
    int n = delay_headers_read(e.headers, e.header_count, h, MAX_HEADERS);
    for (int i = 0; i < n; i++)
        if (h[i].key.ptr < e.headers.ptr ||
            h[i].key.ptr + h[i].key.len > e.headers.ptr + e.headers.len)
            abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 1 && data[0] == '#')
        return store_records(data + 1, size - 1);
    if (size < 16)
        return 0;
    int64_t append_ms = (int64_t)(be64_read(data) >> 2); /* a time a clock could read */
    int64_t max_delay = (int64_t)(be64_read(data + 8) >> 1);
    static const char *const keys[] = {DELAY_HEADER_AT, DELAY_HEADER_AFTER, DELAY_HEADER_CANCEL,
                                       "other"};
    struct delay_header h[MAX_HEADERS];
    size_t n = 0, at = 16;
    bool has_after = false;
    while (n < MAX_HEADERS && at + 2 <= size) {
        uint8_t k = data[at] & 3, len = data[at + 1];
        at += 2;
        struct slice v = {0};
        if (len != 255) {
            size_t take = len < size - at ? len : size - at;
            v = (struct slice){data + at, take};
            at += take;
        }
        has_after |= k == 1;
        h[n++] = (struct delay_header){slice_from_cstr(keys[k]), v};
    }
    struct delay_request r;
    char why[256];
    if (delay_parse(h, n, append_ms, max_delay, &r, why, sizeof why) != 0) {
        if (!memchr(why, '\0', sizeof why) || strncmp(why, "record header samsa.deliver.", 28))
            abort(); /* every refusal names the header */
        return 0;
    }
    if (r.kind == DELAY_DELIVER) {
        if (has_after ? r.due_ms < append_ms : r.due_ms < 0)
            abort();
        if (r.due_ms > append_ms && r.due_ms - append_ms > max_delay)
            abort();
    }
    if (r.kind == DELAY_CANCEL && r.cancel_id.len == 0)
        abort();
    return 0;
}
