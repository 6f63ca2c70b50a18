/*
 * fuzz_batch: libFuzzer target for record batch validation and record iteration — the
 * bytes of every Produce request and of every segment read at recovery. Whatever
 * validates must iterate cleanly: every record inside the batch's bounds, offsets
 * increasing. Build: cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON, target fuzz_batch.
 */
#include <stdint.h>
#include <stdlib.h>

#include "storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int batches = 0;
    int64_t records = 0;
    (void)batch_validate_all(data, size, true, &batches, &records);
    struct batch_iter it;
    struct batch_info info;
    batch_iter_init(&it, data, size);
    /* Headers without the CRC check too: recovery and reads parse headers first. */
    while (batch_iter_next(&it, &info, false) > 0) {
        if (batch_compression(&info) != 0 || batch_count_records_check(data + it.batch_pos, &info))
            continue;
        struct record_iter ri;
        struct record r;
        int64_t last = -1;
        record_iter_init(&ri, data + it.batch_pos, &info);
        while (record_iter_next(&ri, &r) > 0) {
            if (r.offset <= last || r.key.len > info.size_bytes || r.value.len > info.size_bytes)
                abort();
            last = r.offset;
        }
    }
    return 0;
}
