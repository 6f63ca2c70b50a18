/*
 * bench_raft: proposals committed per second on a 3-node cluster in one process.
 *   pure CPU: in-memory network and storage (no fsync)
 *   durable:  every node persists through raft_storage with fdatasync (fsync-bound)
 * Proposals go in batches (one ready cycle carries a whole batch); latency is measured
 * from raft_propose to the leader seeing the entry committed.
 * Usage: bench_raft [--durable DIR] [--seconds S] [--batch N] [--size BYTES]
 */
#include "raft/raft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 3

static struct raft *nodes[N];
static struct raft_storage *stores[N];
static struct buf inbox[N];
static size_t inbox_count[N];

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool pump(void)
{
    bool any = false;
    for (int i = 0; i < N; i++) {
        if (!raft_has_ready(nodes[i]))
            continue;
        any = true;
        struct raft_ready rd;
        raft_ready(nodes[i], &rd);
        if (stores[i] && raft_storage_save(stores[i], &rd, true) != 0)
            abort();
        for (size_t k = 0; k < rd.n_msgs; k++) {
            /* Through the codec, as on a real network. */
            size_t at = inbox[rd.msgs[k].to - 1].len;
            buf_put_u32(&inbox[rd.msgs[k].to - 1], 0);
            raft_msg_encode(&rd.msgs[k], &inbox[rd.msgs[k].to - 1]);
            be32_write(inbox[rd.msgs[k].to - 1].data + at,
                       (uint32_t)(inbox[rd.msgs[k].to - 1].len - at - 4));
            inbox_count[rd.msgs[k].to - 1]++;
        }
        raft_advance(nodes[i], &rd);
    }
    for (int i = 0; i < N; i++) {
        struct buf b = inbox[i];
        buf_init(&inbox[i]);
        inbox_count[i] = 0;
        for (size_t pos = 0; pos < b.len;) {
            uint32_t len = be32_read(b.data + pos);
            struct arena a;
            arena_init(&a);
            struct raft_msg m;
            if (raft_msg_decode(b.data + pos + 4, len, &a, &m) != 0)
                abort();
            raft_step(nodes[i], &m);
            arena_free(&a);
            pos += 4 + len;
            any = true;
        }
        buf_free(&b);
    }
    return any;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    double seconds = 3;
    int batch = 64, size = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--durable") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--size") == 0)
            size = atoi(argv[i + 1]);
    }
    say_set_level(SAY_LEVEL_ERROR);
    struct raft_conf boot = {.n_voters = N, .voters = {1, 2, 3}};
    for (int i = 0; i < N; i++) {
        struct raft_config cfg;
        raft_config_default(&cfg, (uint64_t)i + 1);
        cfg.max_msg_entries = 1024;
        struct raft_restore rs = {0};
        if (dir) {
            char path[512];
            snprintf(path, sizeof path, "%s/node%d", dir, i + 1);
            if (raft_storage_open(path, RAFT_STORAGE_STRICT, &stores[i]) != 0 ||
                raft_storage_accept(stores[i]) != 0)
                return 1;
            raft_storage_restore(stores[i], &rs);
        }
        if (raft_new(&cfg, &rs, &boot, &nodes[i]) != 0)
            return 1;
    }
    raft_campaign(nodes[0]);
    while (pump()) {
    }
    char *payload = xcalloc(1, (size_t)size);
    size_t cap = 1 << 22, n_lat = 0;
    int64_t *lat = xmalloc(cap * sizeof *lat);
    int64_t t0 = time_mono_ns(), deadline = t0 + (int64_t)(seconds * 1e9);
    uint64_t committed = 0;
    while (time_mono_ns() < deadline) {
        uint64_t first = 0, last = 0;
        int64_t start = time_mono_ns();
        for (int k = 0; k < batch; k++)
            if (raft_propose(nodes[0], payload, (size_t)size, &last) == 0 && !first)
                first = last;
        struct raft_status st;
        do {
            pump();
            raft_status(nodes[0], &st);
        } while (st.commit < last);
        int64_t l = time_mono_ns() - start;
        for (uint64_t k = first; k <= last && n_lat < cap; k++)
            lat[n_lat++] = l;
        committed += last - first + 1;
        while (pump()) {
        }
        /* Keep memory flat: snapshot and compact as a real controller would. */
        raft_status(nodes[0], &st);
        if (st.applied > st.snapshot_index + 100000)
            for (int i = 0; i < N; i++)
                raft_snapshot_create(nodes[i], "s", 1, 1000);
    }
    double secs = (double)(time_mono_ns() - t0) / 1e9;
    qsort(lat, n_lat, sizeof *lat, cmp_i64);
    printf("bench_raft %s: 3 nodes, batch %d, %d-byte entries: %.0f commits/s, "
           "commit latency p50 %.1f us p99 %.1f us (%llu commits in %.1f s)\n",
           dir ? "durable (fdatasync)" : "pure CPU", batch, size, (double)committed / secs,
           (double)lat[n_lat / 2] / 1e3, (double)lat[n_lat * 99 / 100] / 1e3,
           (unsigned long long)committed, secs);
    for (int i = 0; i < N; i++) {
        raft_free(nodes[i]);
        raft_storage_close(stores[i]);
    }
    free(lat);
    free(payload);
    return 0;
}
