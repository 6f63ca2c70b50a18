/*
 * fuzz_batch: libFuzzer target for record batch validation and record iteration — the
 * bytes of every Produce request and of every segment read at recovery. Whatever
 * validates must iterate cleanly: every record inside the batch's bounds, offsets
 * increasing; and the one-pass check (batch_check_records) must agree with it.
 * Build: cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON, target fuzz_batch.
 */
#include <stdint.h>
#include <stdlib.h>

#include "storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int batches = 0;
    int64_t records = 0;
    (void)batch_validate_all(data, size, true, &batches, &records);
    struct batch_iter it;
    struct batch_info info;
    batch_iter_init(&it, data, size);
    /* Headers without the CRC check too: recovery and reads parse headers first. */
    while (batch_iter_next(&it, &info, false) > 0) {
        if (batch_compression(&info) != 0)
            continue;
        /* The one-pass check that produce runs must agree with the record iterator. */
        struct record_iter ri;
        struct record r;
        int64_t last = INT64_MIN; /* base offsets may be anything here, even negative */
        bool keyed = true, fast_keyed = false;
        int rc;
        record_iter_init(&ri, data + it.batch_pos, &info);
        while ((rc = record_iter_next(&ri, &r)) > 0) {
            if ((last != INT64_MIN && r.offset <= last) || r.key.len > info.size_bytes ||
                r.value.len > info.size_bytes)
                abort();
            last = r.offset;
            keyed &= r.key.ptr != NULL;
        }
        int fast = batch_check_records(data + it.batch_pos, &info, &fast_keyed);
        if ((fast == 0) != (rc == 0) || (fast == 0 && fast_keyed != keyed))
            abort();
    }
    return 0;
}
