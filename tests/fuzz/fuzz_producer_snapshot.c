/*
 * fuzz_producer_snapshot: libFuzzer target for producer snapshot files (the bytes
 * log_open reads back from `<offset>.snapshot`). The harness writes the right CRC into
 * the input first, so the fuzzer reaches the decoder's checks behind it instead of
 * stopping at a CRC mismatch. Whatever decodes must encode, decode again and encode to
 * the same bytes, and a duplicate check of each decoded producer's batch must find it.
 * Build: cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON, target fuzz_producer_snapshot.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    if (size >= 6) /* version int16, then the CRC of everything after it */
        be32_write(in + 2, crc32c(0, in + 6, size - 6));
    struct producer_state *ps = pstate_new();
    if (pstate_decode_snapshot(ps, in, size) == 0) {
        struct buf a, b;
        buf_init(&a);
        buf_init(&b);
        pstate_encode_snapshot(ps, &a);
        struct producer_state *again = pstate_new();
        if (pstate_decode_snapshot(again, a.data, a.len) != 0 ||
            pstate_count(again) != pstate_count(ps))
            abort();
        pstate_encode_snapshot(again, &b);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
            abort();
        /* Each producer's stored batch is recognised as a retry of itself. */
        for (size_t off = 10; off + 46 <= a.len; off += 46) {
            struct pstate_batch last, dup;
            if (!pstate_last(again, (int64_t)be64_read(a.data + off), &last) ||
                pstate_check(again, &last, &dup) != PSTATE_DUPLICATE ||
                dup.last_offset != last.last_offset)
                abort();
        }
        pstate_free(again);
        buf_free(&a);
        buf_free(&b);
    } else if (pstate_count(ps) != 0) {
        abort(); /* a failed decode leaves the state empty */
    }
    pstate_free(ps);
    free(in);
    return 0;
}
