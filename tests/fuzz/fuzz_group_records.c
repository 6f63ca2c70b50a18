/*
 * fuzz_group_records: libFuzzer target for the record decoders of the coordinators'
 * internal topics, which read whatever the log holds at start-up: __consumer_offsets
 * (keys, offset values, group values, consumer subscriptions) and __transaction_state
 * (keys, values). The input is split in two at its first byte: key, then value.
 * Build: cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON, target fuzz_group_records.
 */
#include <stdint.h>
#include <stdlib.h>

#include "group/group.h"
#include "txn/txn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut = data[0] < size ? data[0] : size - 1;
    struct slice key = {data + 1, cut > 0 ? cut - 1 : 0};
    struct slice value = {data + cut, size - cut};
    struct grp_key k;
    (void)grp_key_decode(key, &k);
    struct grp_offset_value ov;
    (void)grp_offset_value_decode(value, &ov);
    struct arena a;
    arena_init(&a);
    struct grp_group_value gv;
    if (grp_group_value_decode(value, &a, &gv) == 0) {
        for (size_t i = 0; i < gv.n_members; i++) {
            struct slice *topics;
            size_t n;
            (void)grp_consumer_subscription_topics(gv.members[i].subscription, &a, &topics, &n);
        }
    }
    struct slice *topics;
    size_t n;
    (void)grp_consumer_subscription_topics(value, &a, &topics, &n);
    arena_free(&a);
    struct slice id;
    (void)txn_record_decode_key(key, &id);
    struct txn_meta m;
    struct txn_partition *parts;
    if (txn_record_decode_value(value, &m, &parts) == 0)
        free(parts);
    return 0;
}
