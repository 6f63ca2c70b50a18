/*
 * The log cleaner (compaction) for cleanup.policy=compact: rewrites the closed segments
 * of a log keeping, for every key, only the record with the highest offset. Format,
 * swap protocol and simplifications: docs/storage-format.md, "Compaction".
 *
 * One pass (Kafka's): the records of the dirty section [cleaner checkpoint, end) go into
 * a map key -> newest offset; then every cleanable segment from the log start to `end`
 * is rewritten, dropping records whose key has a newer offset in the map, records
 * without a key, and tombstones whose delete horizon has passed. Offsets never change:
 * a batch that loses records is rewritten with the same base offset, lastOffsetDelta,
 * producer fields and the kept records' offset deltas, and a new CRC.
 *
 * Transactions: only segments below the last stable offset are cleaned, so every
 * transactional batch there belongs to a decided transaction. A batch of an aborted one
 * (the aborted-transaction index, captured at prepare) is dropped whole and supersedes
 * nothing; a committed one's records supersede and are superseded like any others.
 * A marker stays while any record of its transaction does; then, as Kafka, it gets a
 * delete horizon as tombstones do, and goes with the first pass after it
 * (clean_marker). Transactional tombstones are kept.
 *
 * Tombstones follow KIP-534: the first pass that keeps a tombstone stamps its batch with
 * a delete horizon (attribute bit 6, baseTimestamp = now + delete.retention.ms, record
 * timestamp deltas re-based so record timestamps are unchanged); a later pass after the
 * horizon drops it. A tombstone is stamped only while it is in the dirty section, i.e.
 * in the pass that also removed every older record of its key, so dropping it later can
 * never resurrect an older value.
 *
 * Threads: log_clean_prepare and log_clean_complete run on the thread that owns the log;
 * log_clean_execute only touches the job (a directory fd, files it creates with a
 * .cleaned suffix) and the input segments, which it opens itself one at a time by name
 * (never through the open-file cache, which belongs to the owner thread) and checks to
 * be the very files prepare saw (device and inode). So one clean holds at most five
 * descriptors, however many segments the log has.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_internal.h"

#define CLEAN_MAP_MAX_BYTES (128LL << 20) /* key map memory before a pass is cut short */
#define CLEAN_READ_CHUNK_BYTES (1 << 20)  /* input read-ahead */
#define CLEAN_WRITE_CHUNK_BYTES (1 << 20) /* output buffered before a pwrite */
#define BATCH_ATTR_DELETE_HORIZON 0x40    /* KIP-534: baseTimestamp is the delete horizon */
#define CKPT_NAME "cleaner-checkpoint"

static const char *const seg_suffixes[] = {".index", ".timeindex", ".log"}; /* .log last */

struct clean_input {
    int64_t base;
    int64_t size_bytes;
    int64_t next_offset;
    size_t oidx_n, tidx_n;
    dev_t dev; /* of the .log prepare saw: execute reads only that file */
    ino_t ino;
};

/* One cleaned segment replacing inputs [first_in, first_in + n_in). Its base is the first
 * input's base, so its final name replaces that input's files by rename; the other
 * inputs are deleted. Invariant used by recovery: an output that replaces more than one
 * input holds a batch of its last input, so the inputs it replaces are exactly the
 * segments whose base lies in [base, next_offset). */
struct clean_output {
    int64_t base;
    size_t first_in, n_in;
    int64_t size_bytes;
    size_t last_contrib; /* last input that contributed a batch, or SIZE_MAX */
};

struct clean_plan {
    char *name;
    int dir_fd;
    struct log_config cfg;
    int64_t now_ms;
    uint64_t trunc_gen;
    struct clean_input *in;
    size_t n_in;   /* captured */
    size_t n_used; /* cleaned (a prefix when the key map filled up) */
    struct clean_output *out;
    size_t n_out, cap_out;
    int64_t new_checkpoint;
    int64_t next_horizon_ms;
    bool wrote_files;
    struct pstate_txn *aborted; /* ascending producer id, then first offset */
    size_t n_aborted;
};

/* ---- small file helpers ---- */

static char *name_of(int64_t base, const char *suffix, const char *state)
{
    char buf[96];
    snprintf(buf, sizeof(buf), "%020" PRId64 "%s%s", base, suffix, state);
    return xstrdup(buf);
}

static int write_at(int fd, const void *p, size_t len, int64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, (const uint8_t *)p + done, len - done, (off_t)(pos + (int64_t)done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        done += (size_t)w;
    }
    return 0;
}

/* Creates (truncating) dir/name, writes data, fsyncs, closes. */
static int write_file_synced(int dir_fd, const char *name, const void *data, size_t len)
{
    int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = len ? write_at(fd, data, len, 0) : 0;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* "<20 digits><suffix>" -> base, else -1. */
static int64_t parse_base(const char *name, const char *suffix)
{
    if (strlen(name) != 20 + strlen(suffix) || !has_suffix(name, suffix))
        return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

/* ---- sequential batch reader over one input segment ---- */

struct in_reader {
    int fd;
    int64_t size;
    int64_t pos; /* next batch */
    uint8_t *buf;
    size_t cap;
    int64_t buf_start;
    size_t buf_len;
};

/* Makes [pos, pos + need) available in r->buf. */
static int in_fill(struct in_reader *r, int64_t pos, size_t need)
{
    if (pos >= r->buf_start && pos + (int64_t)need <= r->buf_start + (int64_t)r->buf_len)
        return 0;
    size_t want = MAX(need, (size_t)CLEAN_READ_CHUNK_BYTES);
    want = (size_t)MIN((int64_t)want, r->size - pos);
    if (want < need)
        return STORAGE_ERR_SHORT;
    if (want > r->cap) {
        r->buf = xrealloc(r->buf, want);
        r->cap = want;
    }
    int rc = pread_exact(r->fd, r->buf, want, pos);
    if (rc != 0)
        return rc;
    r->buf_start = pos;
    r->buf_len = want;
    return 0;
}

/* 1 with a CRC-checked batch at *p, 0 at the end, or a negative code. */
static int in_next(struct in_reader *r, const uint8_t **p, struct batch_info *b)
{
    if (r->pos >= r->size)
        return 0;
    int rc = in_fill(r, r->pos, BATCH_HEADER_BYTES);
    if (rc != 0)
        return rc;
    rc = batch_parse_header_only(r->buf + (r->pos - r->buf_start), b);
    if (rc != 0)
        return rc;
    rc = in_fill(r, r->pos, b->size_bytes);
    if (rc != 0)
        return rc;
    *p = r->buf + (r->pos - r->buf_start);
    rc = batch_validate(*p, b->size_bytes, b);
    if (rc != 0)
        return rc;
    r->pos += (int64_t)b->size_bytes;
    return 1;
}

static int cmp_txn(const void *a, const void *b)
{
    const struct pstate_txn *x = a, *y = b;
    if (x->producer_id != y->producer_id)
        return x->producer_id < y->producer_id ? -1 : 1;
    return (x->first_offset > y->first_offset) - (x->first_offset < y->first_offset);
}

/* Whether b is a transactional batch of an aborted transaction: one of its producer that
 * began at or before it and whose marker comes after it. */
static bool batch_aborted(const struct clean_plan *plan, const struct batch_info *b)
{
    if (!(b->attributes & BATCH_ATTR_TRANSACTIONAL) || (b->attributes & BATCH_ATTR_CONTROL))
        return false;
    size_t lo = 0, hi = plan->n_aborted; /* the last entry <= (producer, base offset) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct pstate_txn *t = &plan->aborted[mid];
        if (t->producer_id < b->producer_id ||
            (t->producer_id == b->producer_id && t->first_offset <= b->base_offset))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return false;
    const struct pstate_txn *t = &plan->aborted[lo - 1];
    return t->producer_id == b->producer_id && b->base_offset < t->last_offset;
}

/* A batch whose records are read: neither a marker, nor compressed, nor aborted. */
static bool batch_is_readable(const struct clean_plan *plan, const struct batch_info *b)
{
    return (b->attributes & BATCH_ATTR_CONTROL) == 0 && batch_compression(b) == 0 &&
           !batch_aborted(plan, b);
}

/* ---- pass 1: key -> newest offset over the dirty section ---- */

struct key_map {
    struct hmap m;
    int64_t bytes;
};

static int64_t map_get(const struct key_map *km, struct slice key)
{
    void *v = hmap_get(&km->m, key);
    return v ? (int64_t)(intptr_t)v - 1 : -1;
}

static int map_input_read(struct key_map *km, const struct clean_plan *plan, int64_t first_dirty,
                          struct in_reader *r)
{
    const uint8_t *p;
    struct batch_info b;
    int rc;
    while ((rc = in_next(r, &p, &b)) > 0) {
        /* Records of aborted transactions never supersede; compressed batches are kept
         * whole, unread. */
        if (batch_last_offset(&b) < first_dirty || !batch_is_readable(plan, &b))
            continue;
        struct record_iter it;
        struct record rec;
        record_iter_init(&it, p, &b);
        while ((rc = record_iter_next(&it, &rec)) > 0) {
            if (rec.offset < first_dirty || !rec.key.ptr)
                continue;
            if (!hmap_get(&km->m, rec.key))
                km->bytes += (int64_t)rec.key.len + 48;
            hmap_put(&km->m, rec.key, (void *)(intptr_t)(rec.offset + 1));
        }
        if (rc < 0)
            return rc;
    }
    return rc;
}

/* Opens an input segment's .log by name; STORAGE_ERR_CLEAN_ABORTED if it is gone or
 * is another file now (deleted or replaced since prepare: complete aborts anyway). */
static int open_input(const struct clean_plan *plan, const struct clean_input *in)
{
    char *nm = name_of(in->base, ".log", "");
    int fd = openat(plan->dir_fd, nm, O_RDONLY | O_CLOEXEC);
    int err = fd < 0 ? -errno : 0;
    free(nm);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) != 0)
        err = -errno;
    else if (fd >= 0 && (st.st_dev != in->dev || st.st_ino != in->ino))
        err = STORAGE_ERR_CLEAN_ABORTED;
    if (err == -ENOENT)
        err = STORAGE_ERR_CLEAN_ABORTED;
    if (err != 0) {
        if (fd >= 0)
            close(fd);
        return err;
    }
    return fd;
}

static int map_input(struct key_map *km, const struct clean_plan *plan,
                     const struct clean_input *in, int64_t first_dirty, struct in_reader *r)
{
    int fd = open_input(plan, in);
    if (fd < 0)
        return fd;
    *r = (struct in_reader){
        .fd = fd, .size = in->size_bytes, .buf = r->buf, .cap = r->cap, .buf_start = -1};
    int rc = map_input_read(km, plan, first_dirty, r);
    close(fd);
    r->fd = -1;
    return rc;
}

/* ---- pass 2: rewrite ---- */

struct out_writer {
    int fd_log, fd_oidx, fd_tidx;
    struct buf logbuf; /* not yet written */
    int64_t written;   /* bytes of .log already written */
    struct buf oidx, tidx;
    int64_t bytes_since_index;
    int64_t max_ts, off_of_max, last_index_ts;
};

struct clean_ctx {
    struct log_clean_job *job;
    struct clean_plan *plan;
    struct key_map map;
    struct in_reader rd;
    struct out_writer w;
    struct buf scratch;
    struct hmap txns; /* producers whose transaction has records kept (txn_data_kept) */
    bool seen_opaque; /* an unread (compressed) batch precedes: keep every tombstone */
    int64_t first_dirty;
};

static int64_t out_size(const struct out_writer *w)
{
    return w->written + (int64_t)w->logbuf.len;
}

static int out_flush(struct out_writer *w)
{
    if (w->logbuf.len == 0)
        return 0;
    int rc = write_at(w->fd_log, w->logbuf.data, w->logbuf.len, w->written);
    w->written += (int64_t)w->logbuf.len;
    buf_reset(&w->logbuf);
    return rc;
}

static void out_time_entry(struct out_writer *w, int64_t base)
{
    uint8_t *e = buf_extend(&w->tidx, TIME_INDEX_ENTRY_BYTES);
    be64_write(e, (uint64_t)w->max_ts);
    be32_write(e + 8, (uint32_t)(w->off_of_max - base));
    w->last_index_ts = w->max_ts;
}

/* Appends one output batch (whole, valid) with the index rules of seg_note_batch and
 * seg_index_batch, so that seg_load_clean accepts the result. */
static int out_batch(struct clean_ctx *c, struct clean_output *o, const uint8_t *p, size_t len)
{
    struct out_writer *w = &c->w;
    struct batch_info b;
    int rc = batch_parse_header(p, len, &b);
    ASSERT(rc == 0 && b.size_bytes == len);
    int64_t pos = out_size(w);
    int64_t last = batch_last_offset(&b);
    ASSERT(last - o->base <= INT32_MAX && pos + (int64_t)len <= INT32_MAX);
    if (b.max_timestamp > w->max_ts) {
        w->max_ts = b.max_timestamp;
        w->off_of_max = last;
    }
    if (w->bytes_since_index > c->plan->cfg.index_interval_bytes) {
        uint8_t *e = buf_extend(&w->oidx, OFFSET_INDEX_ENTRY_BYTES);
        be32_write(e, (uint32_t)(last - o->base));
        be32_write(e + 4, (uint32_t)pos);
        if (w->max_ts > w->last_index_ts)
            out_time_entry(w, o->base);
        w->bytes_since_index = 0;
    }
    w->bytes_since_index += (int64_t)len;
    buf_append(&w->logbuf, p, len);
    c->job->stats.bytes_written += (int64_t)len;
    if (w->logbuf.len >= CLEAN_WRITE_CHUNK_BYTES)
        return out_flush(w);
    return 0;
}

/* Rewrites batch p keeping the records flagged in keep (NULL: all of them; kept of them),
 * with the same header, the kept records re-encoded (timestamp deltas relative to the
 * new base timestamp when stamping a delete horizon), a new length, count and CRC. */
static int rebuild_batch(struct clean_ctx *c, struct clean_output *o, size_t in_idx,
                         const uint8_t *p, const struct batch_info *b, const uint8_t *keep,
                         int32_t kept, bool stamp, int64_t new_horizon)
{
    int64_t base_ts = stamp ? new_horizon : b->first_timestamp;
    struct buf *out = &c->scratch;
    buf_reset(out);
    buf_append(out, p, BATCH_HEADER_BYTES);
    struct record_iter it;
    struct record rec;
    record_iter_init(&it, p, b);
    size_t i = 0;
    while (record_iter_next(&it, &rec) > 0) {
        if (keep && !keep[i++])
            continue;
        int64_t ts_delta = rec.timestamp - base_ts;
        size_t body = 1 + varlong_size(ts_delta) + varint_size(rec.offset_delta) +
                      (rec.key.ptr ? varint_size((int32_t)rec.key.len) + rec.key.len : 1) +
                      (rec.value.ptr ? varint_size((int32_t)rec.value.len) + rec.value.len : 1) +
                      varint_size(rec.header_count) + rec.headers.len;
        buf_put_varint(out, (int32_t)body);
        buf_put_i8(out, rec.attributes);
        buf_put_varlong(out, ts_delta);
        buf_put_varint(out, rec.offset_delta);
        buf_put_varint(out, rec.key.ptr ? (int32_t)rec.key.len : -1);
        if (rec.key.ptr)
            buf_append(out, rec.key.ptr, rec.key.len);
        buf_put_varint(out, rec.value.ptr ? (int32_t)rec.value.len : -1);
        if (rec.value.ptr)
            buf_append(out, rec.value.ptr, rec.value.len);
        buf_put_varint(out, rec.header_count);
        buf_append(out, rec.headers.ptr, rec.headers.len);
    }
    uint8_t *h = out->data;
    be32_write(h + BATCH_OFF_LENGTH, (uint32_t)(out->len - BATCH_LOG_OVERHEAD));
    uint16_t attrs = (uint16_t)b->attributes | (stamp ? BATCH_ATTR_DELETE_HORIZON : 0);
    be16_write(h + BATCH_OFF_ATTRIBUTES, attrs);
    be64_write(h + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
    be32_write(h + BATCH_OFF_RECORDS_COUNT, (uint32_t)kept);
    be32_write(h + BATCH_OFF_CRC,
               crc32c(0, h + BATCH_OFF_ATTRIBUTES, out->len - BATCH_OFF_ATTRIBUTES));
    ASSERT(batch_validate(out->data, out->len, NULL) == 0);
    c->job->stats.batches_rewritten++;
    o->last_contrib = in_idx;
    return out_batch(c, o, out->data, out->len);
}

/* A record of producer_id's transaction is kept: its marker, further on, must stay
 * (c->txns holds the producers whose transaction so far in the pass has kept records;
 * the marker takes the entry out). */
static void txn_data_kept(struct clean_ctx *c, int64_t producer_id)
{
    struct slice k = {(const uint8_t *)&producer_id, sizeof producer_id};
    hmap_put(&c->txns, k, (void *)1);
}

/* Notes a horizon the log must be cleaned again at. */
static void plan_horizon(struct clean_plan *plan, int64_t horizon)
{
    if (plan->next_horizon_ms < 0 || horizon < plan->next_horizon_ms)
        plan->next_horizon_ms = horizon;
}

/* A transaction marker: kept while any record of its transaction is (Kafka's rule: a
 * read_committed reader, or a rebuilt producer state, would otherwise take them for an
 * open transaction's); once none is, stamped with a delete horizon, and dropped by the
 * first pass after it. */
static int clean_marker(struct clean_ctx *c, struct clean_output *o, size_t in_idx,
                        const uint8_t *p, const struct batch_info *b)
{
    struct slice k = {(const uint8_t *)&b->producer_id, sizeof b->producer_id};
    bool data_kept = hmap_remove(&c->txns, k) != NULL;
    bool has_horizon = (b->attributes & BATCH_ATTR_DELETE_HORIZON) != 0;
    int64_t now = c->plan->now_ms;
    if (!data_kept && has_horizon && now >= b->first_timestamp) {
        c->job->stats.records_removed += b->records_count;
        c->job->stats.markers_removed++;
        return 0;
    }
    if (!data_kept && has_horizon)
        plan_horizon(c->plan, b->first_timestamp);
    if (data_kept || has_horizon) {
        o->last_contrib = in_idx;
        return out_batch(c, o, p, b->size_bytes);
    }
    int64_t horizon = now + c->plan->cfg.delete_retention_ms;
    plan_horizon(c->plan, horizon);
    return rebuild_batch(c, o, in_idx, p, b, NULL, b->records_count, true, horizon);
}

/* Filters one batch of input `in_idx` into the current output. */
static int clean_batch(struct clean_ctx *c, struct clean_output *o, size_t in_idx, const uint8_t *p,
                       const struct batch_info *b)
{
    struct log_clean_job *job = c->job;
    job->stats.records_read += b->records_count;
    bool txn = (b->attributes & BATCH_ATTR_TRANSACTIONAL) != 0;
    if (batch_aborted(c->plan, b)) { /* read_committed never shows it: gone */
        job->stats.records_removed += b->records_count;
        job->stats.aborted_batches_removed++;
        return 0;
    }
    if (b->attributes & BATCH_ATTR_CONTROL)
        return clean_marker(c, o, in_idx, p, b);
    if (batch_compression(b) != 0 || b->records_count == 0) {
        /* Compressed batches are kept whole without reading them (docs: simplifications). */
        if (batch_compression(b) != 0)
            c->seen_opaque = true;
        if (txn)
            txn_data_kept(c, b->producer_id);
        o->last_contrib = in_idx;
        return out_batch(c, o, p, b->size_bytes);
    }
    bool has_horizon = (b->attributes & BATCH_ATTR_DELETE_HORIZON) != 0;
    int64_t horizon = has_horizon ? b->first_timestamp : -1;
    int64_t now = c->plan->now_ms;
    int64_t new_horizon = now + c->plan->cfg.delete_retention_ms;

    /* First walk: decide. Keep flags in a small bitmap sized by records_count. */
    size_t n = (size_t)b->records_count;
    uint8_t *keep = xcalloc(n, 1);
    bool stamp = false;
    int32_t kept = 0, removed_tombstones = 0;
    int64_t kept_horizon = -1; /* horizon of a droppable tombstone we keep */
    struct record_iter it;
    struct record rec;
    record_iter_init(&it, p, b);
    int rc;
    size_t i = 0;
    while ((rc = record_iter_next(&it, &rec)) > 0) {
        ASSERT(i < n);
        bool k = true;
        if (!rec.key.ptr) {
            k = false; /* keyless records are invalid in a compacted topic */
        } else if (map_get(&c->map, rec.key) > rec.offset) {
            k = false; /* superseded */
        } else if (!rec.value.ptr && !txn) {
            if (has_horizon && now >= horizon && !c->seen_opaque) {
                k = false;
                removed_tombstones++;
            } else {
                if (!has_horizon && rec.offset >= c->first_dirty)
                    stamp = true;
                if (!c->seen_opaque && (has_horizon || rec.offset >= c->first_dirty))
                    kept_horizon = has_horizon ? horizon : new_horizon;
            }
        }
        keep[i++] = k;
        kept += k;
    }
    if (rc < 0) {
        free(keep);
        return rc;
    }
    if (txn && kept > 0)
        txn_data_kept(c, b->producer_id);
    if (kept_horizon >= 0)
        plan_horizon(c->plan, kept_horizon);
    job->stats.records_removed += b->records_count - kept;
    job->stats.tombstones_removed += removed_tombstones;
    if (kept == b->records_count && !stamp) {
        free(keep);
        o->last_contrib = in_idx;
        return out_batch(c, o, p, b->size_bytes);
    }
    if (kept == 0) {
        free(keep);
        return 0;
    }
    rc = rebuild_batch(c, o, in_idx, p, b, keep, kept, stamp, new_horizon);
    free(keep);
    return rc;
}

static struct clean_output *plan_add_output(struct clean_plan *plan, size_t first_in)
{
    if (plan->n_out == plan->cap_out) {
        plan->cap_out = plan->cap_out ? plan->cap_out * 2 : 8;
        plan->out = xrealloc(plan->out, plan->cap_out * sizeof(*plan->out));
    }
    struct clean_output *o = &plan->out[plan->n_out++];
    *o = (struct clean_output){
        .base = plan->in[first_in].base, .first_in = first_in, .last_contrib = SIZE_MAX};
    return o;
}

static int open_output(struct clean_ctx *c, struct clean_output *o)
{
    struct out_writer *w = &c->w;
    int *fds[] = {&w->fd_oidx, &w->fd_tidx, &w->fd_log};
    for (size_t i = 0; i < ARRAY_LEN(seg_suffixes); i++) {
        char *nm = name_of(o->base, seg_suffixes[i], ".cleaned");
        int fd = openat(c->plan->dir_fd, nm, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        free(nm);
        if (fd < 0)
            return -errno;
        *fds[i] = fd;
    }
    c->plan->wrote_files = true;
    w->written = 0;
    buf_reset(&w->logbuf);
    buf_reset(&w->oidx);
    buf_reset(&w->tidx);
    w->bytes_since_index = 0;
    w->max_ts = -1;
    w->off_of_max = -1;
    w->last_index_ts = -1;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Writes the indexes, fsyncs and closes the three files of the current output. */
static int finish_output(struct clean_ctx *c, struct clean_output *o)
{
    struct out_writer *w = &c->w;
    if (w->max_ts >= 0 && w->max_ts > w->last_index_ts)
        out_time_entry(w, o->base); /* as seg_seal */
    int rc = out_flush(w);
    if (rc == 0 && w->oidx.len)
        rc = write_at(w->fd_oidx, w->oidx.data, w->oidx.len, 0);
    if (rc == 0 && w->tidx.len)
        rc = write_at(w->fd_tidx, w->tidx.data, w->tidx.len, 0);
    int *fds[] = {&w->fd_oidx, &w->fd_tidx, &w->fd_log};
    for (size_t i = 0; i < ARRAY_LEN(fds); i++) {
        if (rc == 0 && *fds[i] >= 0 && fsync(*fds[i]) != 0)
            rc = -errno;
        close_fd(fds[i]);
    }
    o->size_bytes = w->written;
    c->job->stats.segments_out++;
    return rc;
}

/* Closes the current output. Inputs after the last one that contributed a batch are
 * split off into outputs of their own (empty), keeping the recovery invariant of
 * struct clean_output. */
static int close_group(struct clean_ctx *c)
{
    struct clean_plan *plan = c->plan;
    size_t gi = plan->n_out - 1;
    int rc = finish_output(c, &plan->out[gi]);
    if (rc != 0)
        return rc;
    struct clean_output *o = &plan->out[gi];
    size_t end = o->first_in + o->n_in;
    size_t keep_to = o->last_contrib == SIZE_MAX ? o->first_in + 1 : o->last_contrib + 1;
    o->n_in = keep_to - o->first_in;
    for (size_t j = keep_to; j < end; j++) {
        struct clean_output *e = plan_add_output(plan, j);
        e->n_in = 1;
        rc = open_output(c, e);
        if (rc == 0)
            rc = finish_output(c, e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int clean_input(struct clean_ctx *c, size_t idx)
{
    struct clean_plan *plan = c->plan;
    const struct clean_input *in = &plan->in[idx];
    struct clean_output *o = &plan->out[plan->n_out - 1];
    int fd = open_input(plan, in);
    if (fd < 0)
        return fd;
    c->rd = (struct in_reader){
        .fd = fd, .size = in->size_bytes, .buf = c->rd.buf, .cap = c->rd.cap, .buf_start = -1};
    const uint8_t *p;
    struct batch_info b;
    int rc;
    while ((rc = in_next(&c->rd, &p, &b)) > 0) {
        rc = clean_batch(c, o, idx, p, &b);
        if (rc != 0)
            break;
    }
    close(fd);
    c->rd.fd = -1;
    if (rc != 0)
        return rc;
    c->job->stats.bytes_read += in->size_bytes;
    c->job->stats.segments_in++;
    return rc;
}

static int execute_impl(struct clean_ctx *c)
{
    struct clean_plan *plan = c->plan;
    int rc;
    /* Pass 1: the key map over the dirty section; stop at a segment boundary when the
     * map is full (the first dirty segment always goes in whole). */
    plan->n_used = plan->n_in;
    bool any_dirty = false;
    for (size_t i = 0; i < plan->n_in; i++) {
        if (plan->in[i].next_offset <= c->first_dirty)
            continue;
        if (any_dirty && c->map.bytes > CLEAN_MAP_MAX_BYTES) {
            plan->n_used = i;
            say_info(SUBSYS,
                     "partition %s: cleaner key map full (%" PRId64 " bytes); "
                     "cleaning up to offset %" PRId64 " this pass",
                     plan->name, c->map.bytes, plan->in[i].base);
            break;
        }
        any_dirty = true;
        rc = map_input(&c->map, plan, &plan->in[i], c->first_dirty, &c->rd);
        if (rc != 0)
            return rc;
    }
    plan->new_checkpoint = MAX(c->first_dirty, plan->in[plan->n_used - 1].next_offset);
    c->job->end_offset = plan->new_checkpoint;

    /* Pass 2: rewrite [0, n_used) into groups that fit a segment. The open group is
     * always the last output. */
    bool group_open = false;
    for (size_t i = 0; i < plan->n_used; i++) {
        const struct clean_input *in = &plan->in[i];
        if (group_open) {
            const struct clean_output *o = &plan->out[plan->n_out - 1];
            size_t oidx_n = c->w.oidx.len / OFFSET_INDEX_ENTRY_BYTES + in->oidx_n + 1;
            size_t tidx_n = c->w.tidx.len / TIME_INDEX_ENTRY_BYTES + in->tidx_n + 2;
            bool fits = out_size(&c->w) + in->size_bytes <= plan->cfg.segment_bytes &&
                        in->next_offset - 1 - o->base <= INT32_MAX &&
                        (int64_t)(oidx_n * OFFSET_INDEX_ENTRY_BYTES) <= plan->cfg.max_index_bytes &&
                        (int64_t)(tidx_n * TIME_INDEX_ENTRY_BYTES) <= plan->cfg.max_index_bytes;
            if (!fits) {
                rc = close_group(c);
                if (rc != 0)
                    return rc;
                group_open = false;
            }
        }
        if (!group_open) {
            rc = open_output(c, plan_add_output(plan, i));
            if (rc != 0)
                return rc;
            group_open = true;
        }
        plan->out[plan->n_out - 1].n_in++;
        rc = clean_input(c, i);
        if (rc != 0)
            return rc;
    }
    rc = close_group(c);
    if (rc != 0)
        return rc;

    char text[96];
    int len = snprintf(text, sizeof(text), "0\n%" PRId64 " %" PRId64 "\n", plan->new_checkpoint,
                       plan->next_horizon_ms);
    rc = write_file_synced(plan->dir_fd, CKPT_NAME ".cleaned", text, (size_t)len);
    if (rc == 0 && fsync(plan->dir_fd) != 0)
        rc = -errno;
    return rc;
}

void log_clean_execute(struct log_clean_job *job)
{
    if (!job->ready)
        return;
    struct clean_plan *plan = job->plan;
    struct clean_ctx c = {.job = job, .plan = plan, .first_dirty = job->first_dirty_offset};
    c.w.fd_log = c.w.fd_oidx = c.w.fd_tidx = -1;
    hmap_init(&c.map.m);
    hmap_init(&c.txns);
    buf_init(&c.w.logbuf);
    buf_init(&c.w.oidx);
    buf_init(&c.w.tidx);
    buf_init(&c.scratch);
    plan->next_horizon_ms = -1;
    int rc = execute_impl(&c);
    close_fd(&c.w.fd_log);
    close_fd(&c.w.fd_oidx);
    close_fd(&c.w.fd_tidx);
    hmap_free(&c.map.m);
    hmap_free(&c.txns);
    buf_free(&c.w.logbuf);
    buf_free(&c.w.oidx);
    buf_free(&c.w.tidx);
    buf_free(&c.scratch);
    free(c.rd.buf);
    if (rc == STORAGE_ERR_CLEAN_ABORTED)
        say_info(SUBSYS,
                 "partition %s: segments deleted or replaced while cleaning; "
                 "cleaning aborted",
                 plan->name);
    else if (rc != 0)
        say_error(SUBSYS, "partition %s: cleaning failed: %s", plan->name, storage_strerror(rc));
    job->err = rc;
}

/* ---- prepare ---- */

static int64_t seg_newest_ms(const struct segment *s)
{
    return s->max_timestamp >= 0 ? s->max_timestamp : s->last_modified_ms;
}

static void plan_free(struct clean_plan *plan)
{
    if (!plan)
        return;
    if (plan->dir_fd >= 0)
        close(plan->dir_fd);
    free(plan->in);
    free(plan->out);
    free(plan->aborted);
    free(plan->name);
    free(plan);
}

int log_clean_prepare(struct log *l, int64_t now_ms, int64_t max_offset_exclusive,
                      struct log_clean_job *job)
{
    void *user = job->user;
    *job = (struct log_clean_job){
        .log = l, .test_crash_at_op = -1, .user = user, .first_dirty_offset = -1, .end_offset = -1};
    storage_read_turn_end();
    if (l->failed)
        return STORAGE_ERR_LOG_FAILED;
    if (!l->cfg.cleanup_compact)
        return 0;
    if (l->cleaning)
        return -EBUSY;
    /* A truncation may have replaced data below the checkpoint: treat all as dirty. */
    if (l->clean_trunc_gen != l->trunc_gen) {
        l->clean_checkpoint = l->segs[0]->base_offset;
        l->clean_trunc_gen = l->trunc_gen;
    }
    int64_t first_dirty = l->clean_checkpoint;
    if (first_dirty < l->segs[0]->base_offset || first_dirty > l->log_end_offset)
        first_dirty = l->segs[0]->base_offset;
    /* Not past an open transaction: whether its records count is not decided yet. */
    int64_t unstable = log_first_unstable_offset(l);
    if (unstable >= 0 && unstable < max_offset_exclusive)
        max_offset_exclusive = unstable;

    size_t e = 0; /* cleanable: closed segments [0, e) */
    while (e + 1 < l->n_segs) {
        const struct segment *s = l->segs[e];
        if (s->next_offset > max_offset_exclusive)
            break;
        if (l->cfg.min_compaction_lag_ms > 0 &&
            seg_newest_ms(s) > now_ms - l->cfg.min_compaction_lag_ms)
            break;
        e++;
    }
    int64_t dirty = 0, total = 0;
    for (size_t i = 0; i < e; i++) {
        total += l->segs[i]->size_bytes;
        if (l->segs[i]->next_offset > first_dirty)
            dirty += l->segs[i]->size_bytes;
    }
    job->dirty_ratio = total > 0 ? (double)dirty / (double)total : 0.0;
    job->first_dirty_offset = first_dirty;
    bool tombstones_due = l->clean_horizon_ms >= 0 && now_ms >= l->clean_horizon_ms;
    if (e == 0 || total == 0)
        return 0;
    if (!(dirty > 0 && job->dirty_ratio >= l->cfg.min_cleanable_dirty_ratio) && !tombstones_due)
        return 0;

    struct clean_plan *plan = xcalloc(1, sizeof(*plan));
    plan->name = xstrdup(l->name);
    plan->cfg = l->cfg;
    plan->now_ms = now_ms;
    plan->trunc_gen = l->trunc_gen;
    plan->in = xcalloc(e, sizeof(*plan->in));
    plan->dir_fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = plan->dir_fd < 0 ? -errno : 0;
    for (size_t i = 0; i < e && rc == 0; i++) {
        const struct segment *s = l->segs[i];
        struct clean_input *in = &plan->in[plan->n_in];
        struct stat st;
        if (stat(s->path, &st) != 0) {
            rc = -errno;
            break;
        }
        plan->n_in++;
        in->base = s->base_offset;
        in->size_bytes = s->size_bytes;
        in->next_offset = s->next_offset;
        in->oidx_n = s->oidx.n;
        in->tidx_n = s->tidx.n;
        in->dev = st.st_dev;
        in->ino = st.st_ino;
    }
    if (rc != 0) {
        say_error(SUBSYS, "partition %s: cannot prepare cleaning: %s", l->name, strerror(-rc));
        plan_free(plan);
        return rc;
    }
    /* The aborted transactions with records in the cleaned range (their markers may lie
     * beyond it). */
    int64_t from = l->segs[0]->base_offset, upper = l->segs[e - 1]->next_offset;
    plan->n_aborted = log_aborted_txns(l, from, upper, NULL, 0);
    if (plan->n_aborted > 0) {
        plan->aborted = xcalloc(plan->n_aborted, sizeof *plan->aborted);
        plan->n_aborted = log_aborted_txns(l, from, upper, plan->aborted, plan->n_aborted);
        qsort(plan->aborted, plan->n_aborted, sizeof *plan->aborted, cmp_txn);
    }
    job->plan = plan;
    job->ready = true;
    l->cleaning = true;
    say_info(SUBSYS,
             "partition %s: cleaning %zu segments (dirty ratio %.2f, first dirty "
             "offset %" PRId64 "%s)",
             l->name, e, job->dirty_ratio, first_dirty, tombstones_due ? ", tombstones due" : "");
    return 0;
}

/* ---- complete ---- */

/* Unlinks every file the job may have created (.cleaned and .swap). */
static void remove_job_files(struct clean_plan *plan)
{
    if (!plan->wrote_files)
        return;
    static const char *const states[] = {".cleaned", ".swap"};
    for (size_t k = 0; k < ARRAY_LEN(states); k++) {
        for (size_t i = 0; i < plan->n_out; i++) {
            for (size_t j = 0; j < ARRAY_LEN(seg_suffixes); j++) {
                char *nm = name_of(plan->out[i].base, seg_suffixes[j], states[k]);
                if (unlinkat(plan->dir_fd, nm, 0) != 0 && errno != ENOENT)
                    say_warn(SUBSYS, "partition %s: cannot remove %s: %s", plan->name, nm,
                             strerror(errno));
                free(nm);
            }
        }
        char nm[64];
        snprintf(nm, sizeof(nm), "%s%s", CKPT_NAME, states[k]);
        (void)unlinkat(plan->dir_fd, nm, 0);
    }
}

static void job_release(struct log *l, struct log_clean_job *job)
{
    plan_free(job->plan);
    job->plan = NULL;
    job->ready = false;
    if (l)
        l->cleaning = false;
}

/* The segments the job read must still be the log's first closed segments, unchanged. */
static bool inputs_unchanged(const struct log *l, const struct clean_plan *plan)
{
    if (l->trunc_gen != plan->trunc_gen || l->failed || plan->n_used + 1 > l->n_segs)
        return false;
    for (size_t i = 0; i < plan->n_used; i++) {
        const struct segment *s = l->segs[i];
        const struct clean_input *in = &plan->in[i];
        struct stat st;
        if (s->active || s->base_offset != in->base || s->size_bytes != in->size_bytes ||
            stat(s->path, &st) != 0 || st.st_dev != in->dev || st.st_ino != in->ino)
            return false;
    }
    return true;
}

struct swap_state {
    struct log_clean_job *job;
    int ops;
};

/* Counts a swap file operation; true when the test hook says the process "dies" here. */
static bool crash_here(struct swap_state *st)
{
    return st->job->test_crash_at_op >= 0 && st->ops++ >= st->job->test_crash_at_op;
}

static int rename_state(struct clean_plan *plan, const char *from_nm, const char *to_nm)
{
    if (renameat(plan->dir_fd, from_nm, plan->dir_fd, to_nm) != 0) {
        int err = -errno;
        say_error(SUBSYS, "partition %s: cannot rename %s to %s: %s", plan->name, from_nm, to_nm,
                  strerror(errno));
        return err;
    }
    return 0;
}

/* Renames the files of every output (index files first, .log last) and then the
 * checkpoint from state `from` to state `to` ("" = final name). */
static int rename_all(struct swap_state *st, const char *from, const char *to)
{
    struct clean_plan *plan = st->job->plan;
    for (size_t i = 0; i < plan->n_out; i++) {
        for (size_t j = 0; j < ARRAY_LEN(seg_suffixes); j++) {
            if (crash_here(st))
                return -EINTR;
            char *a = name_of(plan->out[i].base, seg_suffixes[j], from);
            char *b = name_of(plan->out[i].base, seg_suffixes[j], to);
            int rc = rename_state(plan, a, b);
            free(a);
            free(b);
            if (rc != 0)
                return rc;
        }
    }
    if (crash_here(st))
        return -EINTR;
    char a[64], b[64];
    snprintf(a, sizeof(a), "%s%s", CKPT_NAME, from);
    snprintf(b, sizeof(b), "%s%s", CKPT_NAME, to);
    return rename_state(plan, a, b);
}

/* Opens a swapped-in segment (closed). Its indexes were written by execute; if they do
 * not check out (config changed meanwhile) they are rebuilt. */
static int open_cleaned_segment(struct log *l, int64_t base, int64_t expect, struct segment **out)
{
    struct segment *s;
    int rc = seg_open_files(l, base, &s);
    if (rc != 0)
        return rc;
    rc = seg_load_clean(l, s);
    if (rc == STORAGE_ERR_CORRUPT) {
        say_warn(SUBSYS, "partition %s: rebuilding indexes of cleaned segment %" PRId64, l->name,
                 base);
        bool truncated = false;
        s->active = true;
        rc = seg_recover(l, s, expect, &truncated);
        if (rc == 0 && truncated)
            rc = STORAGE_ERR_CORRUPT;
        if (rc == 0)
            rc = seg_seal(l, s);
    }
    if (rc != 0) {
        seg_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int swap_in(struct log *l, struct log_clean_job *job)
{
    struct clean_plan *plan = job->plan;
    struct swap_state st = {.job = job};
    /* 1. .cleaned -> .swap. Until the last of these renames a crash rolls back. */
    int rc = rename_all(&st, ".cleaned", ".swap");
    if (rc == -EINTR)
        return rc;
    if (rc != 0) {
        remove_job_files(plan);
        return rc;
    }
    /* Point of no return: from here log_open rolls forward. */
    /* 2. delete the inputs that are not replaced by a rename. */
    for (size_t i = 0; i < plan->n_out && rc == 0; i++) {
        const struct clean_output *o = &plan->out[i];
        for (size_t k = o->first_in + 1; k < o->first_in + o->n_in && rc == 0; k++) {
            for (size_t j = 0; j < ARRAY_LEN(seg_suffixes); j++) {
                if (crash_here(&st))
                    return -EINTR;
                char *nm = name_of(plan->in[k].base, seg_suffixes[2 - j], "");
                if (unlinkat(plan->dir_fd, nm, 0) != 0 && errno != ENOENT) {
                    rc = -errno;
                    say_error(SUBSYS, "partition %s: cannot delete %s: %s", l->name, nm,
                              strerror(errno));
                }
                free(nm);
            }
        }
    }
    /* 3. .swap -> final (replaces the first input of each output). */
    if (rc == 0)
        rc = rename_all(&st, ".swap", "");
    if (rc == -EINTR)
        return rc;
    l->dir_gen++; /* the next flush fsyncs the directory */
    if (rc != 0)
        goto failed;

    /* In memory: replace segs[0, n_used) by the outputs. */
    size_t n_new = plan->n_out, rest = l->n_segs - plan->n_used;
    struct segment **segs = xcalloc(n_new + rest, sizeof(*segs));
    int64_t expect = 0;
    for (size_t i = 0; i < n_new; i++) {
        rc = open_cleaned_segment(l, plan->out[i].base, expect, &segs[i]);
        if (rc != 0) {
            for (size_t k = 0; k < i; k++)
                seg_free(segs[k]);
            free(segs);
            goto failed;
        }
        expect = segs[i]->next_offset;
    }
    for (size_t i = 0; i < plan->n_used; i++)
        seg_free(l->segs[i]);
    memcpy(segs + n_new, l->segs + plan->n_used, rest * sizeof(*segs));
    free(l->segs);
    l->segs = segs;
    l->n_segs = l->cap_segs = n_new + rest;
    /* Empty cleaned segments hold nothing: drop them (never the first, which carries the
     * log start offset). */
    for (size_t i = 1; i < n_new && i + 1 < l->n_segs;) {
        if (l->segs[i]->size_bytes == 0) {
            log_remove_segment_at(l, i);
            n_new--;
        } else {
            i++;
        }
    }
    l->clean_checkpoint = plan->new_checkpoint;
    l->clean_horizon_ms = plan->next_horizon_ms;
    l->clean_trunc_gen = l->trunc_gen;
    return 0;
failed:
    say_error(SUBSYS,
              "partition %s: compaction swap failed after the point of no return: "
              "%s; log marked failed (reopening completes the swap)",
              l->name, storage_strerror(rc));
    l->failed = true;
    return rc;
}

int log_clean_complete(struct log *l, struct log_clean_job *job)
{
    ASSERT(job->log == l);
    storage_read_turn_end();
    if (!job->ready)
        return 0;
    struct clean_plan *plan = job->plan;
    int rc = job->err;
    if (rc == 0 && !inputs_unchanged(l, plan)) {
        say_info(SUBSYS,
                 "partition %s: segments changed while cleaning; discarding the "
                 "cleaned files",
                 l->name);
        rc = STORAGE_ERR_CLEAN_ABORTED;
    }
    if (rc != 0) {
        remove_job_files(plan);
        job_release(l, job);
        return rc;
    }
    rc = swap_in(l, job);
    if (rc == 0)
        say_info(SUBSYS,
                 "partition %s: cleaned up to offset %" PRId64 ": %d segments "
                 "(%" PRId64 " bytes) -> %d (%" PRId64 " bytes), %" PRId64 " of %" PRId64
                 " records removed (%" PRId64 " tombstones)",
                 l->name, plan->new_checkpoint, job->stats.segments_in, job->stats.bytes_read,
                 job->stats.segments_out, job->stats.bytes_written, job->stats.records_removed,
                 job->stats.records_read, job->stats.tombstones_removed);
    job_release(l, job);
    return rc;
}

void log_clean_abandon(struct log *l, struct log_clean_job *job)
{
    if (!job->ready)
        return;
    remove_job_files(job->plan);
    job_release(l, job);
}

int64_t log_cleaner_checkpoint(const struct log *l)
{
    return l->clean_checkpoint;
}

/* ---- recovery at log_open ---- */

/* Offset after the last whole batch of a cleaned file (its base if empty). */
static int64_t swap_next_offset(int dir_fd, const char *nm, int64_t base)
{
    int fd = openat(dir_fd, nm, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return base;
    struct stat st;
    int64_t next = base, pos = 0;
    if (fstat(fd, &st) == 0) {
        uint8_t hdr[BATCH_HEADER_BYTES];
        struct batch_info b;
        while (pos + BATCH_HEADER_BYTES <= st.st_size &&
               pread_exact(fd, hdr, sizeof(hdr), pos) == 0 &&
               batch_parse_header_only(hdr, &b) == 0 && pos + (int64_t)b.size_bytes <= st.st_size) {
            next = batch_last_offset(&b) + 1;
            pos += (int64_t)b.size_bytes;
        }
    }
    close(fd);
    return next;
}

struct name_list {
    char **v;
    size_t n, cap;
};

static void names_push(struct name_list *nl, const char *s)
{
    if (nl->n == nl->cap) {
        nl->cap = nl->cap ? nl->cap * 2 : 16;
        nl->v = xrealloc(nl->v, nl->cap * sizeof(*nl->v));
    }
    nl->v[nl->n++] = xstrdup(s);
}

static void names_free(struct name_list *nl)
{
    for (size_t i = 0; i < nl->n; i++)
        free(nl->v[i]);
    free(nl->v);
}

static int rename_to_final(struct log *l, int dir_fd, const char *nm)
{
    char *to = xstrndup(nm, strlen(nm) - strlen(".swap"));
    int rc = 0;
    if (renameat(dir_fd, nm, dir_fd, to) != 0) {
        rc = -errno;
        say_error(SUBSYS, "partition %s: cannot rename %s to %s: %s", l->name, nm, to,
                  strerror(errno));
    }
    free(to);
    return rc;
}

static int finish_interrupted_swap(struct log *l, int dir_fd, struct name_list *all,
                                   struct name_list *cleaned, struct name_list *swap)
{
    int rc = 0;
    if (cleaned->n > 0) {
        /* The .cleaned -> .swap renames did not all happen: nothing old was touched. */
        say_warn(SUBSYS,
                 "partition %s: rolling back an interrupted compaction (%zu "
                 ".cleaned, %zu .swap files)",
                 l->name, cleaned->n, swap->n);
        for (size_t k = 0; k < 2; k++) {
            struct name_list *nl = k ? swap : cleaned;
            for (size_t i = 0; i < nl->n; i++)
                if (unlinkat(dir_fd, nl->v[i], 0) != 0 && errno != ENOENT)
                    rc = -errno;
        }
        return rc;
    }
    say_warn(SUBSYS, "partition %s: completing an interrupted compaction swap (%zu files)", l->name,
             swap->n);
    /* Delete the segments each swapped-in segment replaces, then rename. */
    for (size_t i = 0; i < swap->n; i++) {
        int64_t base = parse_base(swap->v[i], ".log.swap");
        if (base < 0)
            continue;
        int64_t next = swap_next_offset(dir_fd, swap->v[i], base);
        for (size_t k = 0; k < all->n; k++) {
            int64_t b = parse_base(all->v[k], ".log");
            if (b <= base || b >= next)
                continue;
            for (size_t j = 0; j < ARRAY_LEN(seg_suffixes); j++) {
                char *nm = name_of(b, seg_suffixes[2 - j], "");
                if (unlinkat(dir_fd, nm, 0) != 0 && errno != ENOENT)
                    rc = -errno;
                free(nm);
            }
            say_info(SUBSYS,
                     "partition %s: deleted segment %" PRId64 " replaced by cleaned "
                     "segment %" PRId64,
                     l->name, b, base);
        }
    }
    if (rc != 0)
        return rc;
    /* Index files, then logs, then the checkpoint (the order of the live swap). */
    for (int pass = 0; pass < 3 && rc == 0; pass++) {
        for (size_t i = 0; i < swap->n && rc == 0; i++) {
            const char *nm = swap->v[i];
            bool is_log = parse_base(nm, ".log.swap") >= 0;
            bool is_ckpt = strcmp(nm, CKPT_NAME ".swap") == 0;
            if ((pass == 0 && !is_log && !is_ckpt) || (pass == 1 && is_log) ||
                (pass == 2 && is_ckpt))
                rc = rename_to_final(l, dir_fd, nm);
        }
    }
    return rc;
}

static void load_checkpoint(struct log *l, int dir_fd)
{
    l->clean_checkpoint = 0;
    l->clean_horizon_ms = -1;
    int fd = openat(dir_fd, CKPT_NAME, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char text[128] = {0};
    long n = pread_full(fd, text, sizeof(text) - 1, 0);
    close(fd);
    long long ckpt, horizon;
    if (n <= 0 || sscanf(text, "0\n%lld %lld\n", &ckpt, &horizon) != 2 || ckpt < 0) {
        say_warn(SUBSYS, "partition %s: unreadable %s; the whole log counts as dirty", l->name,
                 CKPT_NAME);
        return;
    }
    l->clean_checkpoint = ckpt;
    l->clean_horizon_ms = horizon;
}

int cleaner_open(struct log *l)
{
    l->clean_trunc_gen = l->trunc_gen;
    int dir_fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return -errno;
    DIR *d = fdopendir(dup(dir_fd));
    if (!d) {
        int err = -errno;
        close(dir_fd);
        return err;
    }
    struct name_list all = {0}, cleaned = {0}, swap = {0};
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        names_push(&all, de->d_name);
        if (has_suffix(de->d_name, ".cleaned"))
            names_push(&cleaned, de->d_name);
        else if (has_suffix(de->d_name, ".swap"))
            names_push(&swap, de->d_name);
    }
    closedir(d);
    int rc = 0;
    if (cleaned.n + swap.n > 0) {
        rc = finish_interrupted_swap(l, dir_fd, &all, &cleaned, &swap);
        if (rc == 0 && fsync(dir_fd) != 0)
            rc = -errno;
        if (rc != 0)
            say_error(SUBSYS, "partition %s: cannot finish an interrupted compaction: %s", l->name,
                      storage_strerror(rc));
    }
    if (rc == 0)
        load_checkpoint(l, dir_fd);
    names_free(&all);
    names_free(&cleaned);
    names_free(&swap);
    close(dir_fd);
    return rc;
}
