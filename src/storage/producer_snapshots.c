/* The idempotent producers of one log: checks on append, and the state kept across
 * restarts in producer snapshot files (docs/storage-format.md, "Producer state").
 *
 * The state itself (producers.c) is rebuilt at open from the newest valid snapshot
 * `<offset>.snapshot` (the state as of that offset) plus the batches after it. Snapshots
 * are written:
 *   - before the first idempotent batch of a log that has none (its "marker": from then
 *     on some snapshot exists, so a log without one never needs a replay at open);
 *   - at every segment roll, so that a replay after a crash reads at most the active
 *     segment;
 *   - at clean close, at the log end, so a clean start replays nothing.
 * A snapshot written on the event loop is not fsync'd there: it is the log's pending
 * snapshot, and the next flush job fdatasyncs it (and the directory) together with the
 * segments. So whatever a flush makes durable, the snapshot covering it is durable too,
 * and batches below the recovery point always have a snapshot at or before them. With no
 * valid snapshot at all the replay starts at the recovery point (the part recovery
 * scanned), or at the log start when snapshots existed but none could be read. */
#include "storage/storage_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_SUFFIX ".snapshot"
#define SNAPSHOTS_KEPT 3               /* the newest ones; older are deleted at a roll */
#define SNAPSHOT_MAX_BYTES (64u << 20) /* ~1.4 million producers: a bound, not an expectation */

static char *snapshot_path(const struct log *l, int64_t offset)
{
    return seg_path(l->dir, offset, SNAPSHOT_SUFFIX);
}

static void delete_snapshot(struct log *l, int64_t offset, const char *why)
{
    char *path = snapshot_path(l, offset);
    say_info(SUBSYS, "partition %s: deleting producer snapshot %lld (%s)", l->name,
             (long long)offset, why);
    if (unlink(path) != 0 && errno != ENOENT)
        say_warn(SUBSYS, "cannot delete %s: %s", path, strerror(errno));
    free(path);
    l->dir_gen++;
    if (l->snap_pending == offset)
        l->snap_pending = -1;
}

/* Loads one snapshot file into the state: 0, or non-zero (state left empty). */
static int load_snapshot(struct log *l, int64_t offset)
{
    char *path = snapshot_path(l, offset);
    int rc = 0;
    uint8_t *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = -errno;
    } else if (st.st_size > (off_t)SNAPSHOT_MAX_BYTES) {
        rc = STORAGE_ERR_CORRUPT;
    } else {
        data = xmalloc((size_t)st.st_size + 1);
        ssize_t r = pread_exact(fd, data, (size_t)st.st_size, 0);
        rc = r < 0 ? (int)r : pstate_decode_snapshot(l->producers, data, (size_t)st.st_size);
    }
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        say_warn(SUBSYS, "partition %s: producer snapshot %s unreadable: %s", l->name, path,
                 storage_strerror(rc));
    free(data);
    free(path);
    return rc;
}

static struct pstate_batch batch_of(const struct batch_info *b)
{
    return (struct pstate_batch){
        .producer_id = b->producer_id,
        .epoch = b->producer_epoch,
        .first_seq = b->base_sequence,
        .last_seq = pstate_seq_add(b->base_sequence, b->last_offset_delta),
        .first_offset = b->base_offset,
        .last_offset = batch_last_offset(b),
        .timestamp_ms = b->max_timestamp,
        .transactional = (b->attributes & BATCH_ATTR_TRANSACTIONAL) != 0,
    };
}

static bool is_idempotent(const struct batch_info *b)
{
    return b->producer_id >= 0 && !(b->attributes & BATCH_ATTR_CONTROL);
}

static bool is_marker(const struct batch_info *b)
{
    return b->producer_id >= 0 && (b->attributes & BATCH_ATTR_CONTROL);
}

static struct pstate_marker marker_of(const struct batch_info *b, int32_t coordinator_epoch)
{
    return (struct pstate_marker){.producer_id = b->producer_id,
                                  .epoch = b->producer_epoch,
                                  .coordinator_epoch = coordinator_epoch,
                                  .offset = b->base_offset,
                                  .timestamp_ms = b->max_timestamp};
}

/* A marker now in the log (appended or replayed, batch whole): ends the producer's
 * transaction, and indexes it when aborted. A marker that cannot be read was checked
 * on its way in, so this is damage: it is logged and ends nothing. */
static void marker_appended(struct log *l, const uint8_t *batch, const struct batch_info *b)
{
    enum txn_marker_type type;
    int32_t coordinator_epoch;
    if (batch_parse_marker(batch, b, &type, &coordinator_epoch) != 0) {
        say_error(SUBSYS, "partition %s: unreadable transaction marker at offset %lld", l->name,
                  (long long)b->base_offset);
        return;
    }
    struct pstate_marker m = marker_of(b, coordinator_epoch);
    struct pstate_txn ended;
    if (pstate_end_txn(l->producers, &m, &ended) && type == TXN_MARKER_ABORT)
        txnidx_add(l, &ended);
}

struct replay {
    struct log *l;
    struct segment *seg;
    int64_t from;
    int64_t batches;
    struct buf marker; /* a marker batch read back */
};

static int replay_cb(void *arg, const struct batch_info *b, int64_t pos)
{
    struct replay *r = arg;
    if (batch_last_offset(b) < r->from)
        return 0;
    if (is_idempotent(b)) {
        struct pstate_batch pb = batch_of(b);
        pstate_update(r->l->producers, &pb);
        r->batches++;
    } else if (is_marker(b)) {
        r->marker.len = 0;
        buf_reserve(&r->marker, b->size_bytes);
        int rc = pread_exact(r->seg->fd, r->marker.data, b->size_bytes, pos);
        if (rc != 0)
            return rc;
        r->marker.len = b->size_bytes;
        marker_appended(r->l, r->marker.data, b);
        r->batches++;
    }
    return 0;
}

/* Feeds every idempotent batch from `from` to the log end into the state. */
static int replay(struct log *l, int64_t from, int64_t *batches)
{
    struct replay r = {.l = l, .from = from};
    buf_init(&r.marker);
    int rc = 0;
    for (size_t i = 0; i < l->n_segs && rc == 0; i++) {
        struct segment *s = l->segs[i];
        if (s->next_offset <= from)
            continue;
        rc = seg_acquire(s); /* for the index lookup, and markers' reads (seg_scan keeps it) */
        if (rc != 0)
            break;
        r.seg = s;
        int64_t pos = s->base_offset < from ? seg_lookup_position(s, from) : 0;
        int64_t bad_pos;
        rc = seg_scan(l, s, pos, s->size_bytes, replay_cb, &r, &bad_pos);
        rc = rc < 0 ? rc : 0;
    }
    buf_free(&r.marker);
    *batches = r.batches;
    return rc;
}

/* Writes the state as the snapshot at `offset`. do_sync: fsync it and the directory now
 * (close); else it becomes the pending snapshot the next flush job syncs. */
static int write_snapshot(struct log *l, int64_t offset, bool do_sync)
{
    struct buf b;
    buf_init(&b);
    pstate_encode_snapshot(l->producers, &b);
    char *path = snapshot_path(l, offset);
    int rc = atomic_write_file(path, (const char *)b.data, b.len, do_sync);
    free(path);
    buf_free(&b);
    if (rc != 0)
        return rc;
    l->snap_exists = true;
    if (!do_sync) {
        l->dir_gen++;
        l->snap_pending = offset;
    } else if (l->snap_pending <= offset) {
        l->snap_pending = -1;
    }
    return 0;
}

/* Deletes snapshots beyond the log end (after truncation they describe offsets that are
 * gone) and, when prune, all but the newest SNAPSHOTS_KEPT. Returns the remaining
 * offsets, ascending (caller frees). */
static int64_t *tidy_snapshots(struct log *l, bool prune, size_t *n_out)
{
    int64_t *offs;
    size_t n;
    *n_out = 0;
    if (list_offset_files(l->dir, SNAPSHOT_SUFFIX, &offs, &n) != 0) {
        say_warn(SUBSYS, "partition %s: cannot list producer snapshots: %s", l->name,
                 strerror(errno));
        return NULL;
    }
    bool deleted_beyond_end = false;
    while (n > 0 && offs[n - 1] > l->log_end_offset) {
        delete_snapshot(l, offs[--n], "beyond the log end");
        deleted_beyond_end = true;
    }
    /* Durable now, not at the next flush: that flush syncs segments before the
     * directory, and a power loss in between could bring back a snapshot that claims
     * producers' state for offsets the log no longer has (rare: after a truncation). */
    int rc = deleted_beyond_end ? fsync_dir(l->dir) : 0;
    if (rc != 0)
        say_warn(SUBSYS,
                 "partition %s: cannot fsync the directory after deleting snapshots: "
                 "%s",
                 l->name, strerror(-rc));
    size_t drop = prune && n > SNAPSHOTS_KEPT ? n - SNAPSHOTS_KEPT : 0;
    for (size_t i = 0; i < drop; i++)
        delete_snapshot(l, offs[i], "superseded");
    memmove(offs, offs + drop, (n - drop) * sizeof *offs);
    *n_out = n - drop;
    return offs;
}

/* Rebuilds the state from the snapshots and the log (open, truncation). */
static int rebuild(struct log *l)
{
    pstate_clear(l->producers);
    size_t n = 0;
    /* snap_exists says whether to look: at open, list_segments saw the directory. A log
     * that had snapshots had idempotent producers, even if every snapshot is gone now
     * (beyond the end after a power loss, the durable one pruned by later rolls). */
    bool had_snapshots = l->snap_exists;
    int64_t *offs = had_snapshots ? tidy_snapshots(l, false, &n) : NULL;
    l->snap_exists = n > 0;
    int64_t from = -1;
    for (size_t i = n; i-- > 0 && from < 0;) {
        if (load_snapshot(l, offs[i]) == 0)
            from = offs[i];
    }
    free(offs);
    if (from < 0) /* see the top of the file */
        from = had_snapshots ? l->log_start_offset : l->durable_offset;
    from = MAX(from, l->log_start_offset);
    int64_t batches = 0;
    int rc = replay(l, from, &batches);
    if (rc != 0) {
        /* Recovery has checked the part of the log a crash can leave torn, so this is
         * damage elsewhere: keep the partition available with what was read (retries
         * of the producers' last batches may then be stored twice) rather than refuse
         * to open it. */
        say_error(SUBSYS,
                  "partition %s: producer state rebuilt only up to a bad batch "
                  "after offset %lld: %s",
                  l->name, (long long)from, storage_strerror(rc));
    }
    if (batches > 0 || pstate_count(l->producers) > 0)
        say_info(SUBSYS,
                 "partition %s: %zu idempotent producers (snapshot at %lld, %lld "
                 "batches replayed)",
                 l->name, pstate_count(l->producers), (long long)from, (long long)batches);
    /* Producers found by replay but no snapshot on disk: write one, so the state
     * survives the next start too. */
    if (!l->snap_exists && pstate_count(l->producers) > 0)
        return write_snapshot(l, l->log_end_offset, false);
    return 0;
}

int producers_open(struct log *l)
{
    l->producers = pstate_new();
    l->snap_pending = -1;
    return rebuild(l);
}

int producers_truncated(struct log *l)
{
    return rebuild(l);
}

int producers_check(struct log *l, const uint8_t *records, size_t len,
                    struct log_append_result *dup)
{
    struct batch_iter it;
    struct batch_info b;
    struct pstate_batch prev = {.producer_id = -1};
    int batches = 0;
    bool any = false;
    batch_iter_init(&it, records, len);
    while (batch_iter_next(&it, &b, false) > 0) {
        batches++;
        if (is_marker(&b)) {
            /* The broker appends each marker alone (WriteTxnMarkers). */
            enum txn_marker_type type;
            int32_t coordinator_epoch;
            if (len != b.size_bytes ||
                batch_parse_marker(records + it.batch_pos, &b, &type, &coordinator_epoch) != 0)
                return STORAGE_ERR_CORRUPT;
            struct pstate_marker m = marker_of(&b, coordinator_epoch);
            switch (pstate_check_marker(l->producers, &m)) {
            case PSTATE_APPEND: break;
            case PSTATE_BAD_EPOCH: return STORAGE_ERR_INVALID_PRODUCER_EPOCH;
            case PSTATE_BAD_COORDINATOR_EPOCH: return STORAGE_ERR_COORDINATOR_FENCED;
            default: ASSERT(!"a marker's verdict");
            }
            any = true;
            continue;
        }
        if (!is_idempotent(&b))
            continue;
        struct pstate_batch pb = batch_of(&b), d;
        if (prev.producer_id >= 0) {
            /* A later batch of the same append continues the one before it. */
            if (pb.producer_id != prev.producer_id || pb.epoch != prev.epoch ||
                pb.first_seq != pstate_seq_add(prev.last_seq, 1))
                return STORAGE_ERR_OUT_OF_ORDER_SEQUENCE;
            if (pb.transactional != prev.transactional)
                return STORAGE_ERR_INVALID_TXN_STATE;
            prev = pb;
            continue;
        }
        prev = pb;
        any = true;
        switch (pstate_check(l->producers, &pb, &d)) {
        case PSTATE_APPEND: break;
        case PSTATE_DUPLICATE:
            if (it.pos != len || batches != 1)
                return STORAGE_ERR_OUT_OF_ORDER_SEQUENCE; /* only part of the append */
            if (dup) {
                *dup = (struct log_append_result){
                    .base_offset = d.first_offset,
                    .last_offset = d.last_offset,
                    .log_append_time = -1,
                    .log_start_offset = l->log_start_offset,
                    .records_count = d.last_offset - d.first_offset + 1,
                };
            }
            return STORAGE_DUPLICATE;
        case PSTATE_BAD_EPOCH: return STORAGE_ERR_INVALID_PRODUCER_EPOCH;
        case PSTATE_BAD_SEQUENCE: return STORAGE_ERR_OUT_OF_ORDER_SEQUENCE;
        case PSTATE_BAD_TXN_STATE: return STORAGE_ERR_INVALID_TXN_STATE;
        case PSTATE_BAD_COORDINATOR_EPOCH: ASSERT(!"a batch's verdict");
        }
    }
    if (any && !l->snap_exists) {
        int rc = write_snapshot(l, l->log_end_offset, false); /* the marker */
        if (rc != 0)
            return rc;
    }
    return 0;
}

void producers_appended(struct log *l, const uint8_t *records, size_t len)
{
    struct batch_iter it;
    struct batch_info b;
    batch_iter_init(&it, records, len);
    while (batch_iter_next(&it, &b, false) > 0) {
        if (is_marker(&b)) {
            marker_appended(l, records + it.batch_pos, &b);
            continue;
        }
        if (!is_idempotent(&b))
            continue;
        struct pstate_batch pb = batch_of(&b);
        pstate_update(l->producers, &pb);
    }
    if (!l->snap_exists && pstate_count(l->producers) > 0)
        write_snapshot(l, l->log_end_offset, false); /* a follower's first producer */
}

void producers_rolled(struct log *l)
{
    if (!l->snap_exists)
        return;
    if (write_snapshot(l, l->log_end_offset, false) != 0)
        return; /* the older snapshot stays: a replay after a crash reads more */
    size_t n;
    free(tidy_snapshots(l, true, &n));
}

void producers_close(struct log *l)
{
    if (l->snap_exists && write_snapshot(l, l->log_end_offset, true) == 0) {
        size_t n;
        free(tidy_snapshots(l, true, &n));
    }
    pstate_free(l->producers);
    l->producers = NULL;
}

int producers_flush_prepare(struct log *l, char **path_out, int64_t *offset_out)
{
    *path_out = NULL;
    *offset_out = -1;
    if (l->snap_pending < 0)
        return 0;
    *path_out = snapshot_path(l, l->snap_pending);
    *offset_out = l->snap_pending;
    return 0;
}

void producers_flush_done(struct log *l, int64_t offset, uint64_t trunc_gen)
{
    /* A truncation since prepare may have replaced the file at that offset: then the
     * synced one is gone and the new one still pending. */
    if (offset >= 0 && l->snap_pending == offset && trunc_gen == l->trunc_gen)
        l->snap_pending = -1;
}

size_t log_expire_producers(struct log *l, int64_t now_ms, int64_t expiration_ms)
{
    size_t n = pstate_expire(l->producers, now_ms, expiration_ms);
    if (n > 0)
        say_info(SUBSYS,
                 "partition %s: %zu idempotent producers expired "
                 "(producer.id.expiration.ms %lld)",
                 l->name, n, (long long)expiration_ms);
    return n;
}

size_t log_producer_count(const struct log *l)
{
    return pstate_count(l->producers);
}

size_t log_producers(const struct log *l, struct pstate_batch *out, size_t max)
{
    return pstate_list(l->producers, out, max);
}

enum pstate_verdict log_producer_check(const struct log *l, const struct pstate_batch *b,
                                       struct pstate_batch *dup)
{
    return pstate_check(l->producers, b, dup);
}

void log_producer_record(struct log *l, const struct pstate_batch *b)
{
    pstate_update(l->producers, b);
}

bool log_producer_last(const struct log *l, int64_t producer_id, struct pstate_batch *out)
{
    return pstate_last(l->producers, producer_id, out);
}
