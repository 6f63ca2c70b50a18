/* The aborted-transaction index of one log (Kafka's `.txnindex`, docs/storage-format.md,
 * "Transactions"): every transaction an ABORT marker ended, which a read_committed
 * fetch lists so that its consumer skips the aborted records.
 *
 * Memory holds the whole index of the log, ascending marker offset (32 bytes per aborted
 * transaction); the files keep it across restarts, one per segment, named after the
 * segment and holding the entries whose marker is in it, in Kafka's layout (34 bytes:
 * Version int16 = 0, ProducerId int64, FirstOffset int64, LastOffset int64,
 * LastStableOffset int64, big-endian). An entry is written when its marker is appended
 * and the file is synced by the next flush job, with the segment, so an entry is durable
 * no later than the producer snapshot after its marker: the replay after the newest
 * snapshot at open (producer_snapshots.c) adds the entries of later markers again, and
 * an entry already present is not added twice.
 *
 * Memory is the truth and the files are rewritten from it when they disagree: at open
 * (a compaction merged segments and left their files behind; a crash cut the log), and
 * after a truncation. */
#include "storage/storage_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define TXNIDX_SUFFIX ".txnindex"
#define TXNIDX_ENTRY_BYTES 34
#define TXNIDX_VERSION 0
#define TXNIDX_MAX_FILE_BYTES (64u << 20) /* ~2 million aborts in one segment: a bound */

/* Writes all of data at pos: 0 or -errno. */
static int pwrite_all(int fd, const uint8_t *data, size_t len, int64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, data + done, len - done, (off_t)(pos + (int64_t)done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        done += (size_t)w;
    }
    return 0;
}

static void encode_entry(uint8_t *p, const struct pstate_txn *t)
{
    be16_write(p, TXNIDX_VERSION);
    be64_write(p + 2, (uint64_t)t->producer_id);
    be64_write(p + 10, (uint64_t)t->first_offset);
    be64_write(p + 18, (uint64_t)t->last_offset);
    be64_write(p + 26, (uint64_t)t->last_stable_offset);
}

static bool decode_entry(const uint8_t *p, struct pstate_txn *t)
{
    if ((int16_t)be16_read(p) != TXNIDX_VERSION)
        return false;
    t->producer_id = (int64_t)be64_read(p + 2);
    t->first_offset = (int64_t)be64_read(p + 10);
    t->last_offset = (int64_t)be64_read(p + 18);
    t->last_stable_offset = (int64_t)be64_read(p + 26);
    return t->producer_id >= 0 && t->first_offset >= 0 && t->first_offset <= t->last_offset;
}

/* The base of the segment holding offset (the first segment's for offsets before it). */
static int64_t base_for(const struct log *l, int64_t offset)
{
    size_t i = l->n_segs;
    while (i > 1 && l->segs[i - 1]->base_offset > offset)
        i--;
    return l->segs[i - 1]->base_offset;
}

static void note_unsynced(struct log *l, int64_t base)
{
    for (size_t i = 0; i < l->n_txnidx_unsynced; i++)
        if (l->txnidx_unsynced[i] == base)
            return;
    if (l->n_txnidx_unsynced == l->cap_txnidx_unsynced) {
        l->cap_txnidx_unsynced = l->cap_txnidx_unsynced ? 2 * l->cap_txnidx_unsynced : 4;
        l->txnidx_unsynced =
            xrealloc(l->txnidx_unsynced, l->cap_txnidx_unsynced * sizeof *l->txnidx_unsynced);
    }
    l->txnidx_unsynced[l->n_txnidx_unsynced++] = base;
}

/* First entry with last_offset >= offset. */
static size_t lower_bound(const struct log *l, int64_t offset)
{
    size_t lo = 0, hi = l->n_aborted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->aborted[mid].last_offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Rewrites the file of the segment at base from memory (removes it when it would be
 * empty). Not synced: the next flush job syncs it. */
static int rewrite_file(struct log *l, int64_t base)
{
    int64_t end = INT64_MAX;
    for (size_t i = 0; i + 1 < l->n_segs; i++)
        if (l->segs[i]->base_offset == base)
            end = l->segs[i + 1]->base_offset;
    size_t from = lower_bound(l, base), to = lower_bound(l, end);
    char *path = seg_path(l->dir, base, TXNIDX_SUFFIX);
    int rc = 0;
    if (to == from) {
        if (unlink(path) != 0 && errno != ENOENT)
            rc = -errno;
    } else {
        size_t len = (to - from) * TXNIDX_ENTRY_BYTES;
        uint8_t *data = xmalloc(len);
        for (size_t i = from; i < to; i++)
            encode_entry(data + (i - from) * TXNIDX_ENTRY_BYTES, &l->aborted[i]);
        rc = atomic_write_file(path, (const char *)data, len, false);
        free(data);
        note_unsynced(l, base);
    }
    l->dir_gen++;
    if (rc != 0)
        say_error(SUBSYS, "partition %s: cannot rewrite %s: %s", l->name, path,
                  storage_strerror(rc));
    free(path);
    return rc;
}

static void insert_at(struct log *l, size_t at, const struct pstate_txn *t)
{
    if (l->n_aborted == l->cap_aborted) {
        l->cap_aborted = l->cap_aborted ? 2 * l->cap_aborted : 8;
        l->aborted = xrealloc(l->aborted, l->cap_aborted * sizeof *l->aborted);
    }
    memmove(&l->aborted[at + 1], &l->aborted[at], (l->n_aborted - at) * sizeof *l->aborted);
    l->aborted[at] = *t;
    l->n_aborted++;
}

/* Reads one file's entries into memory (kept sorted, duplicates dropped); false when the
 * file is not exactly whole valid entries (what could be read is kept). */
static bool load_file(struct log *l, int64_t base)
{
    char *path = seg_path(l->dir, base, TXNIDX_SUFFIX);
    bool clean = true;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size > (off_t)TXNIDX_MAX_FILE_BYTES) {
        say_warn(SUBSYS, "partition %s: aborted-transaction index %s unreadable: %s", l->name, path,
                 fd < 0 ? strerror(errno) : "too large");
        if (fd >= 0)
            close(fd);
        free(path);
        return false;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *data = xmalloc(len + 1);
    int r = pread_exact(fd, data, len, 0);
    close(fd);
    if (r < 0 || len % TXNIDX_ENTRY_BYTES != 0)
        clean = false;
    size_t n = r < 0 ? 0 : len / TXNIDX_ENTRY_BYTES;
    for (size_t i = 0; i < n; i++) {
        struct pstate_txn t;
        if (!decode_entry(data + i * TXNIDX_ENTRY_BYTES, &t)) {
            clean = false;
            continue;
        }
        size_t at = lower_bound(l, t.last_offset);
        if (at < l->n_aborted && l->aborted[at].last_offset == t.last_offset)
            continue;
        insert_at(l, at, &t);
    }
    if (!clean)
        say_warn(SUBSYS, "partition %s: aborted-transaction index %s damaged; rewritten", l->name,
                 path);
    free(data);
    free(path);
    return clean;
}

int txnidx_open(struct log *l)
{
    int64_t *bases;
    size_t n;
    if (list_offset_files(l->dir, TXNIDX_SUFFIX, &bases, &n) != 0)
        return -errno;
    bool rewrite = false;
    for (size_t i = 0; i < n; i++) {
        rewrite |= !load_file(l, bases[i]);
        /* A file not named after a segment was left by a compaction that merged its
         * segment into an earlier one: its entries now belong to that one's file. */
        rewrite |= base_for(l, bases[i]) != bases[i];
    }
    /* Entries beyond the log end (cut by recovery) or wholly before its start. */
    size_t keep_to = lower_bound(l, l->log_end_offset);
    size_t keep_from = lower_bound(l, l->log_start_offset);
    if (keep_to < l->n_aborted || keep_from > 0) {
        rewrite = true;
        memmove(l->aborted, l->aborted + keep_from, (keep_to - keep_from) * sizeof *l->aborted);
        l->n_aborted = keep_to - keep_from;
    }
    int rc = 0;
    if (rewrite) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            char *path = seg_path(l->dir, bases[i], TXNIDX_SUFFIX);
            if (unlink(path) != 0 && errno != ENOENT)
                rc = -errno;
            free(path);
        }
        for (size_t i = 0; i < l->n_segs && rc == 0; i++)
            rc = rewrite_file(l, l->segs[i]->base_offset);
    }
    free(bases);
    if (l->n_aborted > 0)
        say_info(SUBSYS, "partition %s: %zu aborted transactions indexed", l->name, l->n_aborted);
    return rc;
}

void txnidx_add(struct log *l, const struct pstate_txn *t)
{
    size_t at = lower_bound(l, t->last_offset);
    if (at < l->n_aborted && l->aborted[at].last_offset == t->last_offset)
        return; /* replayed after a snapshot: the file has it already */
    insert_at(l, at, t);
    int64_t base = base_for(l, t->last_offset);
    if (at + 1 < l->n_aborted) { /* not at the end: only a replay gets here */
        rewrite_file(l, base);
        return;
    }
    uint8_t entry[TXNIDX_ENTRY_BYTES];
    encode_entry(entry, t);
    char *path = seg_path(l->dir, base, TXNIDX_SUFFIX);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    int rc = fd < 0 || fstat(fd, &st) != 0 ? -errno : 0;
    if (rc == 0 && st.st_size % TXNIDX_ENTRY_BYTES != 0)
        rc = STORAGE_ERR_CORRUPT; /* a torn earlier write: start the file over */
    if (rc == 0)
        rc = pwrite_all(fd, entry, sizeof entry, (int64_t)st.st_size);
    if (fd >= 0)
        close(fd);
    if (rc == 0 && st.st_size == 0)
        l->dir_gen++; /* created, most likely: the directory entry needs its sync */
    free(path);
    if (rc != 0) {
        say_error(SUBSYS, "partition %s: cannot append to the aborted-transaction index: %s",
                  l->name, storage_strerror(rc));
        rc = rewrite_file(l, base);
    }
    if (rc != 0) {
        /* A read_committed consumer would see this transaction's records after a
         * restart: stop writing rather than keep a log whose index lies. */
        say_error(SUBSYS, "partition %s: aborted-transaction index not written; log failed",
                  l->name);
        l->failed = true;
        return;
    }
    note_unsynced(l, base);
}

int txnidx_truncated(struct log *l)
{
    txnidx_trim(l); /* a log restarted further on keeps none */
    size_t keep = lower_bound(l, l->log_end_offset);
    if (keep == l->n_aborted)
        return 0;
    l->n_aborted = keep;
    /* Files of removed segments went with them (seg_unlink_files). */
    int rc = rewrite_file(l, log_active(l)->base_offset);
    if (rc != 0) {
        /* Its entries past the new end would come back at the next open and hide
         * records written at those offsets from read_committed consumers. */
        say_error(SUBSYS, "partition %s: aborted-transaction index not truncated; log failed",
                  l->name);
        l->failed = true;
    }
    return rc;
}

void txnidx_trim(struct log *l)
{
    size_t drop = lower_bound(l, l->log_start_offset);
    if (drop == 0)
        return;
    memmove(l->aborted, l->aborted + drop, (l->n_aborted - drop) * sizeof *l->aborted);
    l->n_aborted -= drop;
}

size_t txnidx_flush_prepare(struct log *l, char **paths)
{
    size_t n = l->n_txnidx_unsynced;
    for (size_t i = 0; i < n; i++)
        paths[i] = seg_path(l->dir, l->txnidx_unsynced[i], TXNIDX_SUFFIX);
    l->n_txnidx_unsynced = 0;
    return n;
}

void txnidx_flush_not_done(struct log *l, char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = strrchr(paths[i], '/');
        int64_t base = parse_segment_name(name ? name + 1 : paths[i], TXNIDX_SUFFIX);
        if (base >= 0)
            note_unsynced(l, base);
    }
}

void txnidx_close(struct log *l)
{
    for (size_t i = 0; i < l->n_txnidx_unsynced; i++) {
        char *path = seg_path(l->dir, l->txnidx_unsynced[i], TXNIDX_SUFFIX);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && fdatasync(fd) != 0)
            say_error(SUBSYS, "partition %s: fdatasync of %s failed: %s", l->name, path,
                      strerror(errno));
        if (fd >= 0)
            close(fd);
        free(path);
    }
    l->n_txnidx_unsynced = 0;
}

void txnidx_free(struct log *l)
{
    free(l->aborted);
    free(l->txnidx_unsynced);
    l->aborted = NULL;
    l->txnidx_unsynced = NULL;
    l->n_aborted = l->cap_aborted = l->n_txnidx_unsynced = l->cap_txnidx_unsynced = 0;
}

size_t log_aborted_txns(const struct log *l, int64_t from_offset, int64_t upper_offset,
                        struct pstate_txn *out, size_t max)
{
    size_t n = 0;
    for (size_t i = lower_bound(l, from_offset); i < l->n_aborted; i++) {
        if (l->aborted[i].first_offset >= upper_offset)
            continue; /* began after the range; a later one may still overlap it */
        if (n < max)
            out[n] = l->aborted[i];
        n++;
    }
    return n;
}

int64_t log_first_unstable_offset(const struct log *l)
{
    return pstate_first_unstable_offset(l->producers);
}

size_t log_open_txns(const struct log *l, struct pstate_txn *out, size_t max)
{
    return pstate_open_txns(l->producers, out, max);
}
