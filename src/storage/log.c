/*
 * The partition log: an ordered array of segments, the last one active. Open/recovery
 * orchestration, append, read for fetch, offsets by time and epoch, truncation,
 * retention. Flushing lives in flush.c. Format and contracts: docs/storage-format.md.
 *
 * Segment files are open only while the open-file cache (fcache.c) keeps them: code here
 * calls seg_acquire before it uses a segment's fd or index entries, and uses them only
 * until it acquires another segment. Entry points that change a log end the read turn
 * first (storage_read_turn_end): nothing lent by log_read is in use across them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_internal.h"

void log_config_default(struct log_config *cfg)
{
    cfg->segment_bytes = 1LL << 30;
    cfg->segment_ms = 7LL * 24 * 3600 * 1000;
    cfg->retention_bytes = -1;
    cfg->retention_ms = 7LL * 24 * 3600 * 1000;
    cfg->index_interval_bytes = 4096;
    cfg->max_index_bytes = 10LL * 1024 * 1024;
    cfg->flush_interval_messages = INT64_MAX;
    cfg->flush_interval_ms = INT64_MAX;
    cfg->timestamp_type = LOG_TIMESTAMP_CREATE_TIME;
    cfg->cleanup_compact = false;
    cfg->cleanup_delete = true;
    cfg->delete_retention_ms = 24LL * 3600 * 1000;
    cfg->min_compaction_lag_ms = 0;
    cfg->min_cleanable_dirty_ratio = 0.5;
}

void log_set_config(struct log *l, const struct log_config *cfg)
{
    l->cfg = *cfg;
}

static void segs_push(struct log *l, struct segment *s)
{
    if (l->n_segs == l->cap_segs) {
        l->cap_segs = l->cap_segs ? l->cap_segs * 2 : 8;
        l->segs = xrealloc(l->segs, l->cap_segs * sizeof(*l->segs));
    }
    if (l->n_segs > 0)
        ASSERT(s->base_offset > l->segs[l->n_segs - 1]->base_offset);
    l->segs[l->n_segs++] = s;
}

void log_remove_segment_at(struct log *l, size_t i)
{
    ASSERT(i < l->n_segs);
    seg_delete(l, l->segs[i]);
    memmove(&l->segs[i], &l->segs[i + 1], (l->n_segs - i - 1) * sizeof(*l->segs));
    l->n_segs--;
}

/* Creates dir and any missing parents. Returns 1 if dir itself was created, 0 if it
 * existed, or -errno. */
static int mkdir_p(const char *dir)
{
    char *p = xstrdup(dir);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int err = -errno;
            free(p);
            return err;
        }
        *c = '/';
    }
    int rc = mkdir(p, 0755) == 0 ? 1 : errno == EEXIST ? 0 : -errno;
    free(p);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int64_t parse_segment_name(const char *name, const char *suffix)
{
    size_t n = strlen(name);
    if (n != 20 + strlen(suffix) || !ends_with(name, suffix))
        return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int list_offset_files(const char *dir, const char *suffix, int64_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int64_t *offs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t b = parse_segment_name(de->d_name, suffix);
        if (b >= 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                offs = xrealloc(offs, cap * sizeof(*offs));
            }
            offs[n++] = b;
        }
    }
    closedir(d);
    if (n > 1)
        qsort(offs, n, sizeof(*offs), cmp_i64);
    *out = offs;
    *n_out = n;
    return 0;
}

/* Lists segment base offsets, removing leftovers (*.deleted, *.tmp, orphan indexes). */
static int list_segments(struct log *l, int64_t **bases_out, size_t *n_out)
{
    int64_t *bases;
    size_t n;
    int rc = list_offset_files(l->dir, ".log", &bases, &n);
    if (rc != 0)
        return rc;
    DIR *d = opendir(l->dir);
    if (!d) {
        free(bases);
        return -errno;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (parse_segment_name(nm, ".snapshot") >= 0)
            l->snap_exists = true; /* producer_snapshots.c reads them */
        bool remove = ends_with(nm, ".deleted") || ends_with(nm, ".tmp");
        int64_t b = parse_segment_name(nm, ".index");
        if (b < 0)
            b = parse_segment_name(nm, ".timeindex");
        if (b >= 0) {
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = bases[i] == b;
            remove = remove || !found;
        }
        if (remove) {
            char *p = xmalloc(strlen(l->dir) + strlen(nm) + 2);
            sprintf(p, "%s/%s", l->dir, nm);
            say_info(SUBSYS, "partition %s: removing leftover file %s", l->name, nm);
            if (unlink(p) != 0)
                say_warn(SUBSYS, "cannot remove %s: %s", p, strerror(errno));
            free(p);
        }
    }
    closedir(d);
    *bases_out = bases;
    *n_out = n;
    return 0;
}

static int make_active(struct segment *s)
{
    if (s->active)
        return 0;
    s->active = true;
    int rc = idx_load(&s->oidx, true);
    return rc ? rc : idx_load(&s->tidx, true);
}

static void log_free(struct log *l)
{
    for (size_t i = 0; i < l->n_segs; i++)
        seg_free(l->segs[i]);
    free(l->segs);
    free(l->epochs);
    pstate_free(l->producers);
    txnidx_free(l);
    free(l->dir);
    free(l->name);
    free(l);
}

/* A segment that does not start where the one before it ends, in a log that compaction
 * does not thin out: a segment file was deleted or emptied. Its offsets are skipped by
 * reads (as gaps are); say so loudly, once, at start-up. */
static void report_gap(const struct log *l, const struct segment *s)
{
    if (l->n_segs == 0 || l->cfg.cleanup_compact)
        return;
    const struct segment *prev = l->segs[l->n_segs - 1];
    if (s->base_offset > prev->next_offset)
        say_error(SUBSYS,
                  "partition %s: offsets %lld to %lld are missing: no segment holds "
                  "them (a segment file deleted or emptied?); reads skip them",
                  l->name, (long long)prev->next_offset, (long long)(s->base_offset - 1));
}

int log_open(const char *dir, const struct log_config *cfg, int64_t recovery_point,
             struct log **out)
{
    *out = NULL;
    storage_read_turn_end();
    int rc = mkdir_p(dir);
    if (rc < 0) {
        say_error(SUBSYS, "cannot create log directory %s: %s", dir, strerror(-rc));
        return rc;
    }
    struct log *l = xcalloc(1, sizeof(*l));
    l->dir = xstrdup(dir);
    /* A new directory's own entry is durable only once its parent is fsync'd: the
     * first flush does that, before anything in it is reported durable. */
    l->parent_unsynced = rc == 1;
    const char *slash = strrchr(dir, '/');
    l->name = xstrdup(slash && slash[1] ? slash + 1 : dir);
    l->cfg = *cfg;
    l->last_flush_ms = time_mono_ms();
    l->lent_turn = UINT64_MAX;
    if (epoch_load(l) == STORAGE_ERR_CORRUPT)
        recovery_point = -1; /* re-learn epochs from every batch */

    rc = cleaner_open(l); /* finish or roll back an interrupted compaction swap */
    if (rc != 0) {
        log_free(l);
        return rc;
    }
    int64_t *bases = NULL;
    size_t n = 0;
    rc = list_segments(l, &bases, &n);
    if (rc != 0) {
        say_error(SUBSYS, "cannot list %s: %s", dir, strerror(-rc));
        log_free(l);
        return rc;
    }
    bool truncated_any = false, recovered_any = false;
    int64_t truncated_base = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (truncated_any) {
            /* Never resurrect anything beyond a corruption. */
            say_warn(SUBSYS, "partition %s: deleting segment %lld after truncated segment", l->name,
                     (long long)bases[i]);
            seg_unlink_files(l, bases[i]);
            continue;
        }
        struct segment *s;
        rc = seg_open_files(l, bases[i], &s);
        if (rc != 0)
            goto fail;
        s->active = (i == n - 1);
        /* A segment wholly below the recovery point was synced: load it from its index
         * (checking that, and the batch headers after the last entry). So is the last
         * segment if it ends there, as after a clean shutdown; otherwise it is scanned
         * and CRC-checked in full. The last segment's end is known only after loading. */
        bool is_last = i == n - 1;
        int64_t upper = is_last ? s->base_offset : bases[i + 1];
        bool recover = recovery_point < 0 || upper > recovery_point;
        if (!recover) {
            rc = seg_load_clean(l, s);
            if (rc == STORAGE_ERR_CORRUPT) {
                say_warn(SUBSYS,
                         "partition %s: index of segment %lld missing or "
                         "inconsistent; rebuilding",
                         l->name, (long long)bases[i]);
                recover = true;
            } else if (rc != 0) {
                seg_free(s);
                goto fail;
            } else if (is_last && s->next_offset > recovery_point) {
                recover = true; /* holds data that was never synced */
            }
        }
        if (recover) {
            bool truncated;
            bool last = s->active;
            s->active = true; /* recovery rebuilds the indexes in memory */
            int64_t expect = l->n_segs ? log_active(l)->next_offset : 0;
            /* Only the last segment can end in a write a crash cut short; what was
             * synced (below the recovery point) is never cut (recovery.c). */
            rc = seg_recover_keeping(l, s, expect, is_last, recovery_point < 0 ? 0 : recovery_point,
                                     &truncated);
            if (rc != 0) {
                seg_free(s);
                goto fail;
            }
            recovered_any = true;
            if (truncated) {
                truncated_any = true;
                truncated_base = s->base_offset;
            }
            if (!last && !truncated)
                seg_seal(l, s);
        }
        report_gap(l, s);
        segs_push(l, s);
    }
    free(bases);
    bases = NULL;
    if (l->n_segs == 0) {
        struct segment *s;
        rc = seg_create(l, 0, &s);
        if (rc != 0)
            goto fail;
        segs_push(l, s);
    }
    rc = make_active(log_active(l));
    if (rc != 0)
        goto fail;
    l->log_start_offset = l->segs[0]->base_offset;
    l->log_end_offset = log_active(l)->next_offset;
    if (epoch_truncate_from_end(l, l->log_end_offset) || recovered_any)
        epoch_persist(l);
    l->durable_offset = recovery_point < 0 ? 0 : MIN(recovery_point, l->log_end_offset);
    l->durable_offset = MIN(l->durable_offset, truncated_base);
    /* Recovery's result: nothing counts as durable past what is in the log. */
    ASSERT(l->log_start_offset <= l->log_end_offset && l->durable_offset <= l->log_end_offset);
    rc = txnidx_open(l); /* before the producers' replay, which adds what it lacks */
    if (rc == 0)
        rc = producers_open(l);
    if (rc != 0)
        goto fail;
    say_info(SUBSYS, "partition %s: loaded %zu segments, log start %lld, log end %lld%s", l->name,
             l->n_segs, (long long)l->log_start_offset, (long long)l->log_end_offset,
             truncated_any ? " (truncated by recovery)" : "");
    *out = l;
    return 0;
fail:
    free(bases);
    say_error(SUBSYS, "partition %s: cannot open log: %s", l->name, storage_strerror(rc));
    log_free(l);
    return rc;
}

/* Drops every segment and restarts the log, empty, at `offset`. */
static int truncate_fully_and_start_at(struct log *l, int64_t offset)
{
    say_warn(SUBSYS, "partition %s: truncating fully and restarting at offset %lld", l->name,
             (long long)offset);
    while (l->n_segs > 0)
        log_remove_segment_at(l, l->n_segs - 1);
    struct segment *s;
    int rc = seg_create(l, offset, &s);
    if (rc != 0) {
        l->failed = true;
        return rc;
    }
    segs_push(l, s);
    l->log_start_offset = l->log_end_offset = offset;
    l->durable_offset = MIN(l->durable_offset, offset);
    l->n_epochs = 0;
    l->trunc_gen++;
    epoch_persist(l);
    txnidx_truncated(l);
    return producers_truncated(l);
}

static int log_roll(struct log *l, int64_t new_base)
{
    struct segment *a = log_active(l);
    if (a->size_bytes == 0)
        return 0;
    seg_seal(l, a);
    struct segment *s;
    int rc = seg_create(l, new_base, &s);
    if (rc != 0) {
        make_active(a);
        return rc;
    }
    segs_push(l, s);
    producers_rolled(l);
    return 0;
}

static bool should_roll(struct log *l, size_t len, int64_t last_offset, int64_t now_ms)
{
    struct segment *a = log_active(l);
    if (a->size_bytes == 0)
        return false;
    if (a->size_bytes + (int64_t)len > l->cfg.segment_bytes)
        return true;
    if (a->roll_base_ms >= 0 && now_ms - a->roll_base_ms > l->cfg.segment_ms)
        return true;
    if ((int64_t)(a->oidx.n + 1) * OFFSET_INDEX_ENTRY_BYTES > l->cfg.max_index_bytes ||
        (int64_t)(a->tidx.n + 2) * TIME_INDEX_ENTRY_BYTES > l->cfg.max_index_bytes)
        return true;
    return last_offset - a->base_offset > INT32_MAX;
}

static int append_impl(struct log *l, uint8_t *records, size_t len, int32_t leader_epoch,
                       bool assign, int64_t now_ms, struct log_append_result *out)
{
    storage_read_turn_end();
    if (l->failed)
        return STORAGE_ERR_LOG_FAILED;
    struct batch_iter it;
    struct batch_info b;
    int rc;
    int64_t next = l->log_end_offset, first = -1, records_count = 0;
    batch_iter_init(&it, records, len);
    while ((rc = batch_iter_next(&it, &b, false)) > 0) {
        if (!assign) {
            if (b.base_offset < next)
                return STORAGE_ERR_CORRUPT;
            next = b.base_offset;
        }
        if (first < 0)
            first = next;
        next += (int64_t)b.last_offset_delta + 1;
        records_count += b.records_count;
    }
    if (rc < 0 || first < 0)
        return rc < 0 ? rc : STORAGE_ERR_CORRUPT;
    if ((int64_t)len > l->cfg.segment_bytes)
        return STORAGE_ERR_BATCH_TOO_LARGE;
    if (assign) {
        /* Idempotent producers: refuse or recognise retries before anything is written. */
        rc = producers_check(l, records, len, out);
        if (rc != 0)
            return rc;
    }
    int64_t last = next - 1;
    if (should_roll(l, len, last, now_ms)) {
        rc = log_roll(l, first);
        if (rc != 0)
            return rc;
    }
    bool append_time = assign && l->cfg.timestamp_type == LOG_TIMESTAMP_LOG_APPEND_TIME;
    if (assign) {
        int64_t off = first;
        batch_iter_init(&it, records, len);
        while (batch_iter_next(&it, &b, false) > 0) {
            uint8_t *p = records + it.batch_pos;
            be64_write(p + BATCH_OFF_BASE_OFFSET, (uint64_t)off);
            if (leader_epoch >= 0)
                be32_write(p + BATCH_OFF_LEADER_EPOCH, (uint32_t)leader_epoch);
            if (append_time) {
                /* Kafka's setMaxTimestamp: type bit + maxTimestamp, then a new CRC. */
                uint16_t attrs = (uint16_t)b.attributes | BATCH_ATTR_LOG_APPEND_TIME;
                be16_write(p + BATCH_OFF_ATTRIBUTES, attrs);
                be64_write(p + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)now_ms);
                uint32_t crc =
                    crc32c(0, p + BATCH_OFF_ATTRIBUTES, b.size_bytes - BATCH_OFF_ATTRIBUTES);
                be32_write(p + BATCH_OFF_CRC, crc);
            }
            off += (int64_t)b.last_offset_delta + 1;
        }
    }

    struct segment *s = log_active(l);
    int64_t pos0 = s->size_bytes;
    rc = seg_acquire(s); /* the MRU entry while produced to: open, no syscall */
    if (rc != 0)
        return rc;
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(s->fd, records + done, len - done, (off_t)(pos0 + (int64_t)done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            say_error_ratelimited(SUBSYS,
                                  "partition %s: write to segment %lld at %lld "
                                  "failed: %s",
                                  l->name, (long long)s->base_offset, (long long)pos0,
                                  strerror(-rc));
            if (ftruncate(s->fd, (off_t)pos0) != 0) {
                say_error(SUBSYS,
                          "partition %s: cannot truncate segment %lld back to %lld: "
                          "%s; log failed",
                          l->name, (long long)s->base_offset, (long long)pos0, strerror(errno));
                l->failed = true;
            }
            return rc;
        }
        done += (size_t)w;
    }

    if (s->roll_base_ms < 0)
        s->roll_base_ms = now_ms;
    s->last_modified_ms = now_ms;
    batch_iter_init(&it, records, len);
    while (batch_iter_next(&it, &b, false) > 0) {
        seg_note_batch(l, s, &b, pos0 + (int64_t)it.batch_pos);
        if (!assign && b.partition_leader_epoch >= 0 &&
            epoch_assign(l, b.partition_leader_epoch, b.base_offset))
            epoch_persist(l);
    }
    s->size_bytes = pos0 + (int64_t)len;
    /* An offset once handed out is never handed out again: the log end only grows. */
    ASSERT(last + 1 > l->log_end_offset);
    l->log_end_offset = last + 1;
    l->appended_messages += records_count;
    producers_appended(l, records, len);
    if (assign && leader_epoch >= 0 && epoch_assign(l, leader_epoch, first))
        epoch_persist(l);
    if (out) {
        out->base_offset = first;
        out->last_offset = last;
        out->log_append_time = append_time ? now_ms : -1;
        out->log_start_offset = l->log_start_offset;
        out->records_count = records_count;
    }
    return 0;
}

int log_append(struct log *l, uint8_t *records, size_t len, int32_t leader_epoch, int64_t now_ms,
               struct log_append_result *out)
{
    return append_impl(l, records, len, leader_epoch, true, now_ms, out);
}

int log_append_as_follower(struct log *l, const uint8_t *records, size_t len, int64_t now_ms,
                           struct log_append_result *out)
{
    /* Not assigning, append_impl writes nothing into records. */
    return append_impl(l, (uint8_t *)records, len, -1, false, now_ms, out);
}

/* Index of the last segment with base_offset <= offset (0 if none). */
static size_t find_segment(const struct log *l, int64_t offset)
{
    size_t lo = 0, hi = l->n_segs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->segs[mid]->base_offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? 0 : lo - 1;
}

int64_t log_next_readable_offset(const struct log *l, int64_t offset)
{
    size_t i = find_segment(l, offset);
    const struct segment *s = l->segs[i];
    if (s->damaged_from >= 0 && offset >= s->damaged_from && s->damaged_to > offset)
        return s->damaged_to;
    return i + 1 < l->n_segs ? l->segs[i + 1]->base_offset : l->log_end_offset;
}

struct read_scan {
    int64_t target;
    int64_t max_bytes;
    int64_t max_offset;
    int64_t start_pos;
    int64_t len;
    int64_t first;
    int64_t next;
    bool hit_limit;
};

static int read_cb(void *arg, const struct batch_info *b, int64_t pos)
{
    struct read_scan *r = arg;
    int64_t last = batch_last_offset(b);
    if (r->start_pos < 0) {
        if (last < r->target)
            return 0;
        if (last >= r->max_offset) {
            r->hit_limit = true;
            return 1;
        }
        r->start_pos = pos;
        r->len = (int64_t)b->size_bytes;
        r->first = b->base_offset;
        r->next = last + 1;
        return 0;
    }
    if (last >= r->max_offset || r->len + (int64_t)b->size_bytes > r->max_bytes)
        return 1;
    r->len += (int64_t)b->size_bytes;
    r->next = last + 1;
    return 0;
}

/* One scan of s from pos for the read of offset (read_cb). */
static int scan_for(struct log *l, struct segment *s, int64_t pos, int64_t offset,
                    int32_t max_bytes, int64_t max_offset, struct read_scan *r, int64_t *bad_pos)
{
    *r = (struct read_scan){.target = offset,
                            .max_bytes = max_bytes,
                            .max_offset = max_offset,
                            .start_pos = -1,
                            .first = -1};
    *bad_pos = -1;
    return seg_scan(l, s, pos, s->size_bytes, read_cb, r, bad_pos);
}

/* A read met damage before finding anything: an error, not silence (the consumer stops
 * there; DeleteRecords past it lets it go on), reported once per segment. */
static int read_damaged(struct log *l, struct segment *s, int64_t bad_pos, int rc, int64_t offset)
{
    if (!s->damage_reported)
        say_error(SUBSYS,
                  "partition %s: segment %lld damaged at byte %lld (%s): reads from "
                  "offset %lld get CORRUPT_MESSAGE; kept on disk (docs/operations.md, "
                  "\"Damaged segments\")",
                  l->name, (long long)s->base_offset, (long long)bad_pos, storage_strerror(rc),
                  (long long)offset);
    s->damage_reported = true;
    return STORAGE_ERR_CORRUPT;
}

int log_read(struct log *l, int64_t offset, int32_t max_bytes, int64_t max_offset_exclusive,
             struct log_read_result *out)
{
    if (offset < l->log_start_offset || offset > l->log_end_offset)
        return STORAGE_ERR_OUT_OF_RANGE;
    *out = (struct log_read_result){
        .fd = -1, .file_pos = 0, .len = 0, .first_batch_offset = -1, .next_offset = offset};
    if (offset == l->log_end_offset || offset >= max_offset_exclusive)
        return 0;
    for (size_t i = find_segment(l, offset); i < l->n_segs; i++) {
        struct segment *s = l->segs[i];
        if (offset >= s->next_offset)
            continue; /* past this segment's data (or a gap): try the next */
        if (s->fd < 0 && fcache_lend_full() && l->lent_turn != fcache_turn()) {
            /* Segments lent to other logs in this turn fill the open-file bound: find
             * nothing, like a spent fetch budget; the client asks again. A log that
             * already lent one this turn goes on (a scan of one log must progress). */
            say_warn_ratelimited(SUBSYS,
                                 "partition %s: %zu segment files lent to reads "
                                 "fill the open-file bound; returning no data this time",
                                 l->name, storage_max_open_files());
            return 0;
        }
        int rc = seg_acquire(s);
        if (rc != 0)
            return rc;
        /* Damage recovery measured: never serve it, stop in front of it. */
        if (s->damaged_from >= 0 && offset >= s->damaged_from &&
            (s->damaged_to < 0 || offset < s->damaged_to))
            return STORAGE_ERR_CORRUPT;
        if (s->damaged_from >= 0 && offset < s->damaged_from)
            max_offset_exclusive = MIN(max_offset_exclusive, s->damaged_from);
        struct read_scan r;
        int64_t bad_pos;
        int64_t pos = seg_lookup_position(s, offset);
        rc = scan_for(l, s, pos, offset, max_bytes, max_offset_exclusive, &r, &bad_pos);
        if (rc < 0 && r.start_pos < 0) {
            /* Damage before anything was found: pick up at the first indexed batch that
             * can hold the offset. If it starts after the offset asked for, that offset
             * lies in the damage: an error, never a silent skip. */
            int64_t damage_at = bad_pos;
            int64_t resume = seg_index_position_covering(s, offset);
            if (resume > pos) {
                rc = scan_for(l, s, resume, offset, max_bytes, max_offset_exclusive, &r, &bad_pos);
                if (r.start_pos >= 0 && r.first > offset) {
                    if (s->damaged_from < 0 || offset < s->damaged_from) {
                        s->damaged_from = offset;
                        s->damaged_to = r.first;
                    }
                    r.start_pos = -1;
                    rc = STORAGE_ERR_CORRUPT;
                }
            }
            if (r.start_pos < 0 && rc < 0)
                return read_damaged(l, s, damage_at, rc, offset);
        }
        if (r.start_pos >= 0) {
            seg_lend(s, &l->lent_turn); /* open until the read turn ends */
            out->fd = s->fd;
            out->file_pos = r.start_pos;
            out->len = r.len;
            out->first_batch_offset = r.first;
            out->next_offset = r.next;
            return 0;
        }
        if (r.hit_limit)
            return 0;
    }
    return 0;
}

int64_t log_start_offset(const struct log *l)
{
    return l->log_start_offset;
}
int64_t log_end_offset(const struct log *l)
{
    return l->log_end_offset;
}
int64_t log_durable_offset(const struct log *l)
{
    return l->durable_offset;
}
const char *log_name(const struct log *l)
{
    return l->name;
}
int log_segment_count(const struct log *l)
{
    return (int)l->n_segs;
}

int64_t log_size_bytes(const struct log *l)
{
    int64_t total = 0;
    for (size_t i = 0; i < l->n_segs; i++)
        total += l->segs[i]->size_bytes;
    return total;
}

/* ---- timestamps ---- */

struct ts_scan {
    int64_t ts;
    int64_t min_offset;
    int64_t pos;
    struct batch_info b;
};

static int ts_cb(void *arg, const struct batch_info *b, int64_t pos)
{
    struct ts_scan *t = arg;
    if (b->max_timestamp < t->ts || batch_last_offset(b) < t->min_offset)
        return 0;
    t->pos = pos;
    t->b = *b;
    return 1;
}

/* Record-level search inside a CreateTime batch, decompressed if need be (as Kafka
 * does); in a LogAppendTime batch every record has the batch's time. */
static int find_record_by_ts(struct log *l, struct segment *s, struct ts_scan *t,
                             int64_t *offset_out, int64_t *ts_out)
{
    const struct batch_info *b = &t->b;
    *offset_out = MAX(b->base_offset, t->min_offset);
    *ts_out = b->max_timestamp;
    if (b->attributes & BATCH_ATTR_LOG_APPEND_TIME)
        return 0;
    uint8_t *p = xmalloc(b->size_bytes);
    int rc = pread_exact(s->fd, p, b->size_bytes, t->pos);
    if (rc != 0) {
        free(p);
        return rc == -EIO ? STORAGE_ERR_CORRUPT : rc;
    }
    struct buf plain;
    buf_init(&plain);
    struct batch_info plain_info = *b;
    const uint8_t *records = p;
    if (batch_compression(b) != 0) {
        rc = batch_decompress(p, b, compress_decompressed_bound((int64_t)b->size_bytes), &plain,
                              &plain_info);
        records = plain.data;
    }
    if (rc != 0) {
        /* Written by a producer whose data never decompressed here: the batch answers. */
        say_warn_ratelimited(SUBSYS,
                             "partition %s: batch at offset %lld does not decompress "
                             "(%s); timestamp lookup answers its base offset",
                             l->name, (long long)b->base_offset, storage_strerror(rc));
    }
    struct record_iter it;
    struct record rec;
    if (rc == 0)
        record_iter_init(&it, records, &plain_info);
    while (rc == 0 && record_iter_next(&it, &rec) > 0) {
        if (rec.timestamp >= t->ts && rec.offset >= t->min_offset) {
            *offset_out = rec.offset;
            *ts_out = rec.timestamp;
            break;
        }
    }
    buf_free(&plain);
    free(p);
    return 0;
}

int log_offset_for_timestamp(struct log *l, int64_t ts, int64_t *offset_out, int64_t *ts_out)
{
    *offset_out = -1;
    *ts_out = -1;
    for (size_t i = 0; i < l->n_segs; i++) {
        struct segment *s = l->segs[i];
        if (s->max_timestamp < ts || s->next_offset <= l->log_start_offset || s->size_bytes == 0)
            continue;
        int rc = seg_acquire(s);
        if (rc != 0)
            return rc;
        int64_t from = MAX(seg_lookup_time(s, ts), l->log_start_offset);
        struct ts_scan t = {.ts = ts, .min_offset = l->log_start_offset, .pos = -1};
        int64_t bad_pos;
        rc = seg_scan(l, s, seg_lookup_position(s, from), s->size_bytes, ts_cb, &t, &bad_pos);
        if (rc < 0)
            return rc;
        if (t.pos >= 0)
            return find_record_by_ts(l, s, &t, offset_out, ts_out);
    }
    return 0;
}

int log_max_timestamp(struct log *l, int64_t *offset_out, int64_t *ts_out)
{
    int64_t max_ts = -1;
    for (size_t i = 0; i < l->n_segs; i++) {
        struct segment *s = l->segs[i];
        if (s->max_timestamp > max_ts && s->offset_of_max_timestamp >= l->log_start_offset)
            max_ts = s->max_timestamp;
    }
    *offset_out = -1;
    *ts_out = -1;
    if (max_ts < 0)
        return 0;
    /* Kafka (since 3.8) answers the record that carries the largest timestamp, not the
     * last offset of its batch: the first record at or after it is that record. */
    return log_offset_for_timestamp(l, max_ts, offset_out, ts_out);
}

/* ---- leader epochs ---- */

int32_t log_latest_epoch(const struct log *l)
{
    return l->n_epochs ? l->epochs[l->n_epochs - 1].epoch : -1;
}

int log_end_offset_for_epoch(struct log *l, int32_t epoch, int32_t *epoch_out,
                             int64_t *end_offset_out)
{
    *epoch_out = -1;
    *end_offset_out = -1;
    if (epoch < 0 || l->n_epochs == 0)
        return 0;
    if (epoch == log_latest_epoch(l)) {
        *epoch_out = epoch;
        *end_offset_out = l->log_end_offset;
        return 0;
    }
    size_t higher = 0; /* first entry with epoch > requested */
    while (higher < l->n_epochs && l->epochs[higher].epoch <= epoch)
        higher++;
    if (higher == l->n_epochs)
        return 0; /* requested epoch newer than anything we know */
    *end_offset_out = l->epochs[higher].start_offset;
    *epoch_out = higher == 0 ? epoch : l->epochs[higher - 1].epoch;
    return 0;
}

/* ---- truncation ---- */

struct trunc_scan {
    int64_t target;
    int64_t cut_pos;
    int64_t cut_base;
};

static int trunc_cb(void *arg, const struct batch_info *b, int64_t pos)
{
    struct trunc_scan *t = arg;
    if (batch_last_offset(b) < t->target)
        return 0;
    t->cut_pos = pos;
    t->cut_base = b->base_offset;
    return 1;
}

int log_truncate_to(struct log *l, int64_t offset)
{
    storage_read_turn_end();
    if (l->failed)
        return STORAGE_ERR_LOG_FAILED;
    if (offset >= l->log_end_offset)
        return 0;
    if (offset <= l->log_start_offset || offset <= l->segs[0]->base_offset)
        return truncate_fully_and_start_at(l, offset);
    /* Open the segment that becomes active before anything changes: out of descriptors
     * (EMFILE) the truncation fails and leaves the log as it was. */
    size_t n_keep = l->n_segs;
    while (n_keep > 1 && l->segs[n_keep - 1]->base_offset >= offset)
        n_keep--;
    int rc = seg_acquire(l->segs[n_keep - 1]);
    if (rc != 0)
        return rc;
    while (l->n_segs > n_keep)
        log_remove_segment_at(l, l->n_segs - 1);
    struct segment *s = log_active(l);
    rc = make_active(s);
    if (rc != 0)
        goto fail;
    struct trunc_scan t = {.target = offset, .cut_pos = s->size_bytes, .cut_base = -1};
    int64_t bad_pos;
    rc = seg_scan(l, s, seg_lookup_position(s, offset - 1), s->size_bytes, trunc_cb, &t, &bad_pos);
    if (rc < 0)
        goto fail;
    int64_t new_end = t.cut_base >= 0 ? t.cut_base : s->next_offset;
    ASSERT(s->fd >= 0); /* seg_scan acquired s, and nothing since */
    if (ftruncate(s->fd, (off_t)t.cut_pos) != 0) {
        rc = -errno;
        goto fail;
    }
    size_t keep = 0;
    const uint8_t *e = idx_entries(&s->oidx);
    while (keep < s->oidx.n &&
           (int64_t)be32_read(e + keep * OFFSET_INDEX_ENTRY_BYTES + 4) < t.cut_pos)
        keep++;
    idx_truncate(&s->oidx, keep);
    keep = 0;
    e = idx_entries(&s->tidx);
    while (keep < s->tidx.n &&
           s->base_offset + (int32_t)be32_read(e + keep * TIME_INDEX_ENTRY_BYTES + 8) < new_end)
        keep++;
    idx_truncate(&s->tidx, keep);
    rc = seg_load_clean(l, s);
    if (rc == STORAGE_ERR_CORRUPT) {
        bool truncated;
        int64_t expect = l->n_segs > 1 ? l->segs[l->n_segs - 2]->next_offset : 0;
        rc = seg_recover(l, s, expect, &truncated);
    }
    if (rc != 0)
        goto fail;
    l->log_end_offset = s->next_offset;
    l->durable_offset = MIN(l->durable_offset, s->base_offset);
    l->trunc_gen++;
    if (epoch_truncate_from_end(l, l->log_end_offset))
        epoch_persist(l);
    say_info(SUBSYS, "partition %s: truncated to offset %lld (requested %lld)", l->name,
             (long long)l->log_end_offset, (long long)offset);
    txnidx_truncated(l); /* a failure marks the log failed; the producers still rebuild */
    return producers_truncated(l);
fail:
    say_error(SUBSYS, "partition %s: truncation to %lld failed: %s; log failed", l->name,
              (long long)offset, storage_strerror(rc));
    l->failed = true;
    return rc;
}

int log_restart_at(struct log *l, int64_t offset)
{
    storage_read_turn_end();
    if (l->failed)
        return STORAGE_ERR_LOG_FAILED;
    if (offset < 0)
        return STORAGE_ERR_OUT_OF_RANGE;
    return truncate_fully_and_start_at(l, offset);
}

/* ---- start offset, retention ---- */

static int delete_below_start(struct log *l)
{
    int deleted = 0;
    while (l->n_segs > 1 && l->segs[1]->base_offset <= l->log_start_offset) {
        log_remove_segment_at(l, 0);
        deleted++;
    }
    txnidx_trim(l);
    return deleted;
}

int log_delete_records(struct log *l, int64_t offset)
{
    storage_read_turn_end();
    if (offset > l->log_end_offset || offset < 0)
        return STORAGE_ERR_OUT_OF_RANGE;
    if (offset <= l->log_start_offset)
        return 0;
    l->log_start_offset = offset;
    say_info(SUBSYS, "partition %s: log start offset raised to %lld", l->name, (long long)offset);
    delete_below_start(l);
    return 0;
}

int log_set_start_offset(struct log *l, int64_t offset)
{
    storage_read_turn_end();
    if (offset <= l->log_start_offset)
        return 0;
    if (offset > l->log_end_offset)
        return truncate_fully_and_start_at(l, offset);
    return log_delete_records(l, offset);
}

int log_enforce_retention(struct log *l, int64_t now_ms, int *deleted_segments)
{
    storage_read_turn_end();
    int deleted = 0;
    if (l->cfg.cleanup_delete && l->cfg.retention_ms >= 0) {
        while (l->n_segs > 1) {
            struct segment *s = l->segs[0];
            int64_t ts = s->max_timestamp >= 0 ? s->max_timestamp : s->last_modified_ms;
            if (now_ms - ts <= l->cfg.retention_ms)
                break;
            say_info(SUBSYS,
                     "partition %s: segment %lld expired by retention.ms (newest "
                     "timestamp %lld)",
                     l->name, (long long)s->base_offset, (long long)ts);
            log_remove_segment_at(l, 0);
            deleted++;
        }
    }
    if (l->cfg.cleanup_delete && l->cfg.retention_bytes >= 0) {
        int64_t excess = log_size_bytes(l) - l->cfg.retention_bytes;
        while (l->n_segs > 1 && excess - l->segs[0]->size_bytes >= 0) {
            excess -= l->segs[0]->size_bytes;
            say_info(SUBSYS, "partition %s: segment %lld deleted by retention.bytes", l->name,
                     (long long)l->segs[0]->base_offset);
            log_remove_segment_at(l, 0);
            deleted++;
        }
    }
    deleted += delete_below_start(l);
    l->log_start_offset = MAX(l->log_start_offset, l->segs[0]->base_offset);
    if (deleted_segments)
        *deleted_segments = deleted;
    return 0;
}

/* ---- close, delete ---- */

void log_close(struct log *l)
{
    if (!l)
        return;
    storage_read_turn_end();
    producers_close(l); /* before the directory's fsync below covers its rename */
    txnidx_close(l);
    for (size_t i = 0; i < l->n_segs; i++) {
        struct segment *s = l->segs[i];
        int sync_rc = 0;
        if (s->next_offset > l->durable_offset || s->base_offset >= l->durable_offset)
            sync_rc = seg_sync_data(s);
        if (sync_rc != 0)
            say_error(SUBSYS, "partition %s: fdatasync of segment %lld failed: %s", l->name,
                      (long long)s->base_offset, storage_strerror(sync_rc));
        if (s->active) {
            if (s->max_timestamp >= 0 && s->max_timestamp > s->last_index_ts)
                seg_seal(l, s); /* final timeindex entry, as Kafka writes at close */
            int rc = idx_sync(&s->oidx);
            if (rc == 0)
                rc = idx_sync(&s->tidx);
            if (rc != 0)
                say_error(SUBSYS, "partition %s: index sync failed: %s", l->name,
                          storage_strerror(rc));
        }
    }
    int rc = fsync_dir(l->dir);
    if (rc != 0)
        say_error(SUBSYS, "partition %s: fsync of directory failed: %s", l->name, strerror(-rc));
    rc = l->parent_unsynced ? fsync_parent_dir(l->dir) : 0;
    if (rc != 0)
        say_error(SUBSYS, "partition %s: fsync of the parent directory failed: %s", l->name,
                  strerror(-rc));
    log_free(l);
}

void log_discard(struct log *l)
{
    storage_read_turn_end();
    if (l)
        log_free(l);
}

/* Freeing a big file's blocks in one unlink is one big journal transaction, and every
 * fdatasync on the file system waits for it: shrink big files step by step first. */
#define REMOVE_STEP_BYTES (32ll << 20)

static void shrink_gradually(const char *path, int64_t size)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* remove() below reports what is wrong */
    for (int64_t at = size - REMOVE_STEP_BYTES; at > 0; at -= REMOVE_STEP_BYTES) {
        if (ftruncate(fd, (off_t)at) != 0)
            break;
    }
    close(fd);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && sb->st_size > REMOVE_STEP_BYTES)
        shrink_gradually(path, (int64_t)sb->st_size);
    if (remove(path) != 0)
        say_warn(SUBSYS, "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

int log_rename_for_delete(const char *dir, char **renamed_out)
{
    *renamed_out = NULL;
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        int64_t t = time_mono_ns();
        memcpy(rnd, &t, sizeof(t));
        memcpy(rnd + 8, &t, sizeof(t));
    }
    size_t n = strlen(dir) + 1 + 32 + 8;
    char *to = xmalloc(n);
    int k = snprintf(to, n, "%s.", dir);
    for (size_t i = 0; i < sizeof(rnd); i++)
        k += snprintf(to + k, n - (size_t)k, "%02x", rnd[i]);
    snprintf(to + k, n - (size_t)k, "-delete");
    if (rename(dir, to) != 0) {
        int err = -errno;
        say_error(SUBSYS, "cannot rename %s for deletion: %s", dir, strerror(errno));
        free(to);
        return err;
    }
    *renamed_out = to;
    return 0;
}

int log_remove_renamed(const char *renamed)
{
    return nftw(renamed, rm_cb, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -EIO;
}

int log_delete_dir(const char *dir)
{
    char *to;
    int rc = log_rename_for_delete(dir, &to);
    if (rc != 0)
        return rc;
    /* Make the rename durable before anything can reuse the name: otherwise a crash
     * could bring the old directory back under the name of a re-created topic. */
    rc = fsync_parent_dir(dir);
    if (rc != 0)
        say_warn(SUBSYS, "cannot fsync the parent of %s after renaming it: %s", dir, strerror(-rc));
    rc = log_remove_renamed(to);
    free(to);
    return rc;
}
