/*
 * Leader epoch cache: (epoch, start offset) pairs in increasing order, persisted in
 * `leader-epoch-checkpoint` (Kafka text format "0\n<count>\n<epoch> <startOffset>\n...").
 * The file is rewritten (tmp + rename) when a new epoch starts or the log is truncated;
 * it becomes durable with the next flush (the rename bumps the directory generation).
 * Recovery re-learns epochs from the partitionLeaderEpoch of recovered batches, so a
 * lost rewrite is repaired at the next start.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "storage/storage_internal.h"

#define EPOCH_FILE "leader-epoch-checkpoint"

static char *epoch_path(const struct log *l)
{
    size_t n = strlen(l->dir) + sizeof(EPOCH_FILE) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", l->dir, EPOCH_FILE);
    return p;
}

static void epoch_push(struct log *l, int32_t epoch, int64_t start)
{
    if (l->n_epochs == l->cap_epochs) {
        l->cap_epochs = l->cap_epochs ? l->cap_epochs * 2 : 8;
        l->epochs = xrealloc(l->epochs, l->cap_epochs * sizeof(*l->epochs));
    }
    l->epochs[l->n_epochs++] = (struct epoch_entry){epoch, start};
}

int epoch_load(struct log *l)
{
    l->n_epochs = 0;
    char *path = epoch_path(l);
    FILE *f = fopen(path, "re");
    if (!f) {
        int err = errno;
        free(path);
        return err == ENOENT ? 0 : -err;
    }
    long long version = -1, count = -1;
    int rc = 0;
    if (fscanf(f, "%lld %lld", &version, &count) != 2 || version != 0 || count < 0) {
        rc = STORAGE_ERR_CORRUPT;
    } else {
        for (long long i = 0; i < count; i++) {
            long long e, s;
            if (fscanf(f, "%lld %lld", &e, &s) != 2 || e < 0 || e > INT32_MAX || s < 0) {
                rc = STORAGE_ERR_CORRUPT;
                break;
            }
            /* Keep the cache monotonic even if the file is not. */
            if (l->n_epochs == 0 || (e > l->epochs[l->n_epochs - 1].epoch &&
                                     s >= l->epochs[l->n_epochs - 1].start_offset))
                epoch_push(l, (int32_t)e, s);
        }
    }
    fclose(f);
    if (rc != 0) {
        say_warn(SUBSYS, "partition %s: malformed %s, rebuilding epochs from the log", l->name,
                 path);
        l->n_epochs = 0;
    }
    free(path);
    return rc;
}

int epoch_assign(struct log *l, int32_t epoch, int64_t start_offset)
{
    if (l->n_epochs > 0 && epoch <= l->epochs[l->n_epochs - 1].epoch)
        return 0;
    /* As Kafka's assign: a newer epoch supersedes entries starting at or after it (only
     * possible with an inconsistent checkpoint file; data on disk wins). */
    while (l->n_epochs > 0 && l->epochs[l->n_epochs - 1].start_offset >= start_offset)
        l->n_epochs--;
    epoch_push(l, epoch, start_offset);
    return 1;
}

int epoch_truncate_from_end(struct log *l, int64_t end_offset)
{
    size_t n = l->n_epochs;
    while (l->n_epochs > 0 && l->epochs[l->n_epochs - 1].start_offset >= end_offset)
        l->n_epochs--;
    return n != l->n_epochs;
}

int epoch_persist(struct log *l)
{
    struct buf b;
    buf_init(&b);
    char line[64];
    int k = snprintf(line, sizeof(line), "0\n%zu\n", l->n_epochs);
    buf_append(&b, line, (size_t)k);
    for (size_t i = 0; i < l->n_epochs; i++) {
        k = snprintf(line, sizeof(line), "%" PRId32 " %" PRId64 "\n", l->epochs[i].epoch,
                     l->epochs[i].start_offset);
        buf_append(&b, line, (size_t)k);
    }
    char *path = epoch_path(l);
    int rc = atomic_write_file(path, (const char *)b.data, b.len, false);
    free(path);
    buf_free(&b);
    l->dir_gen++;
    return rc;
}
