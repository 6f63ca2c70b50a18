/* The local metadata log: an append-only file of CRC-framed entries, each entry one
 * atomic group of metadata records. Internal to cluster/; read now only to upgrade a
 * data dir of an earlier version (quorum.h).
 *
 * Errors: 0 or a negative errno; -EBADMSG for damage other than a torn tail. */
#ifndef SAMSA_CLUSTER_METALOG_H
#define SAMSA_CLUSTER_METALOG_H

#include "base/base.h"

struct metalog;

/* How metalog_open treats damage. */
enum metalog_mode {
    /* Start-up: a torn tail (one incomplete final entry, after a crash) is truncated;
     * any other damage is refused with -EBADMSG and changes nothing. */
    METALOG_STRICT,
    /* Recovery: every intact entry is applied, damaged stretches are skipped (and
     * logged), and the file is opened read-only; metalog_replace writes the new one. */
    METALOG_SALVAGE,
};

/* What metalog_open found. */
struct metalog_stats {
    size_t entries;       /* whole entries applied */
    bool was_empty;       /* no entry at all (new, emptied or deleted file) */
    size_t skipped_bytes; /* METALOG_SALVAGE: bytes of damaged stretches skipped */
};

/* Opens dir/metadata.log, calling apply(arg, payload) for every whole entry in order.
 * Returns 0, a negative errno, or -EBADMSG for damage other than a torn tail (the
 * message names the file, the byte offset and how to recover). */
int metalog_open(const char *dir, enum metalog_mode mode,
                 void (*apply)(void *arg, struct slice payload), void *arg, struct metalog **out,
                 struct metalog_stats *stats);
/* Appends one entry and makes it durable (fdatasync) before returning. */
int metalog_append(struct metalog *m, const uint8_t *payload, size_t len);
/* Replaces the file with a new one holding exactly these entries: written and
 * fsync'd beside it, the old file kept as metadata.log.damaged-<ms> (its path in
 * *kept_path, malloc'd; NULL if there was none), then renamed into place. */
int metalog_replace(struct metalog *m, const struct slice *payloads, size_t n, char **kept_path);
const char *metalog_path(const struct metalog *m);
/* Closes the log. A writable log whose every byte is a whole entry leaves a
 * clean-shutdown marker, so that the next start knows any damage is not a torn tail. */
void metalog_close(struct metalog *m);
/* Closes the log without a clean-shutdown marker (its entries moved elsewhere). */
void metalog_forget(struct metalog *m);

#endif
