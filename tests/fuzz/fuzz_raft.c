/*
 * fuzz_raft: libFuzzer target for the raft message decoder (bytes from peers are
 * untrusted). Whatever decodes must re-encode to the same bytes (the encoding is
 * canonical), and stepping it into a live node must not crash: malformed contents are
 * rejected by raft_step's validation, never applied.
 * Build: cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON, target fuzz_raft.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct raft *node;
    if (!node) {
        say_set_level(SAY_LEVEL_ERROR);
        struct raft_config cfg;
        raft_config_default(&cfg, 1);
        struct raft_conf boot = {.n_voters = 3, .voters = {1, 2, 3}};
        if (raft_new(&cfg, NULL, &boot, &node) != 0)
            abort();
    }
    struct arena a;
    arena_init(&a);
    struct raft_msg m;
    if (raft_msg_decode(data, size, &a, &m) == 0) {
        struct buf b;
        buf_init(&b);
        raft_msg_encode(&m, &b);
        if (b.len != size || memcmp(b.data, data, size) != 0)
            abort();
        buf_free(&b);
        m.to = 1; /* address it to the node so that validation and handlers run */
        raft_step(node, &m);
        /* Drain the node so its state stays bounded across inputs. */
        if (raft_has_ready(node)) {
            struct raft_ready rd;
            raft_ready(node, &rd);
            raft_advance(node, &rd);
        }
    }
    arena_free(&a);
    return 0;
}
