/* Log compaction (cleaner.c): newest value per key, offsets preserved, tombstones and
 * their delete horizon, min.compaction.lag.ms, dirty ratio, the active segment, aborts,
 * transactions, and crashes at every step of the swap. Time is fake: every call takes
 * now_ms. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>

#include "helpers.h"

#define NKEYS 12
#define ROLL_MS 1000

struct fx {
    char *root, *dir;
    struct log_config cfg;
    struct log *log;
    int64_t now;
    /* model: newest value per key ("" = tombstone, NULL = never written) and its offset */
    char *latest[NKEYS];
    int64_t latest_off[NKEYS];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->root = th_tmpdir(&f->dir);
    th_small_cfg(&f->cfg);
    f->cfg.segment_ms = ROLL_MS;
    f->cfg.index_interval_bytes = 128;
    f->cfg.cleanup_compact = true;
    f->cfg.cleanup_delete = false;
    f->cfg.delete_retention_ms = 5000;
    f->now = 1000000;
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &f->log), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    log_close(f->log);
    th_rmrf(f->root);
    for (int i = 0; i < NKEYS; i++)
        free(f->latest[i]);
    free(f->root);
    free(f->dir);
    free(f);
    return 0;
}

struct kv {
    int key;           /* -1: null key */
    const char *value; /* NULL: tombstone */
};

/* Encodes one batch; record i has timestamp ts + i and offset delta 2 * i when `sparse`
 * (so the batch has gaps), else i. attrs are OR'ed in (fake compression, transactional,
 * control); such batches are written the same way, the cleaner must not read them. */
static void enc_batch(struct buf *b, const struct kv *recs, int n, int64_t ts, int16_t attrs)
{
    size_t start = b->len;
    buf_put_i64(b, 0);
    buf_put_i32(b, 0);
    buf_put_i32(b, -1);
    buf_put_i8(b, 2);
    buf_put_u32(b, 0);
    buf_put_i16(b, attrs);
    buf_put_i32(b, n - 1);
    buf_put_i64(b, ts);
    buf_put_i64(b, ts + n - 1);
    buf_put_i64(b, (attrs & BATCH_ATTR_TRANSACTIONAL) ? 7 : -1);
    buf_put_i16(b, (attrs & BATCH_ATTR_TRANSACTIONAL) ? 0 : -1);
    buf_put_i32(b, (attrs & BATCH_ATTR_TRANSACTIONAL) ? 0 : -1);
    buf_put_i32(b, n);
    for (int i = 0; i < n; i++) {
        char key[16];
        int klen = recs[i].key >= 0 ? snprintf(key, sizeof(key), "key-%d", recs[i].key) : -1;
        int vlen = recs[i].value ? (int)strlen(recs[i].value) : -1;
        size_t body = 1 + varlong_size(i) + varint_size(i) + varint_size(klen) +
                      (klen > 0 ? (size_t)klen : 0) + varint_size(vlen) +
                      (vlen > 0 ? (size_t)vlen : 0) + varint_size(1) + 1 + 1 + 1 + 1;
        buf_put_varint(b, (int32_t)body);
        buf_put_i8(b, 0);
        buf_put_varlong(b, i);
        buf_put_varint(b, i);
        buf_put_varint(b, klen);
        if (klen > 0)
            buf_append(b, key, (size_t)klen);
        buf_put_varint(b, vlen);
        if (vlen > 0)
            buf_append(b, recs[i].value, (size_t)vlen);
        buf_put_varint(b, 1); /* one header "h" = "x" */
        buf_put_varint(b, 1);
        buf_put_i8(b, 'h');
        buf_put_varint(b, 1);
        buf_put_i8(b, 'x');
    }
    be32_write(b->data + start + BATCH_OFF_LENGTH, (uint32_t)(b->len - start - 12));
    be32_write(b->data + start + BATCH_OFF_CRC, crc32c(0, b->data + start + BATCH_OFF_ATTRIBUTES,
                                                       b->len - start - BATCH_OFF_ATTRIBUTES));
}

/* Appends a batch and updates the model. */
static int64_t put_batch(struct fx *f, const struct kv *recs, int n, int16_t attrs)
{
    struct buf b;
    buf_init(&b);
    enc_batch(&b, recs, n, f->now, attrs);
    struct log_append_result r;
    assert_int_equal(log_append(f->log, b.data, b.len, 0, f->now, &r), 0);
    buf_free(&b);
    if (!(attrs & BATCH_ATTR_CONTROL)) {
        for (int i = 0; i < n; i++) {
            int k = recs[i].key;
            if (k < 0)
                continue;
            free(f->latest[k]);
            f->latest[k] = strdup(recs[i].value ? recs[i].value : "");
            f->latest_off[k] = r.base_offset + i;
        }
    }
    return r.base_offset;
}

static int64_t put(struct fx *f, int key, const char *value)
{
    struct kv r = {key, value};
    return put_batch(f, &r, 1, 0);
}

/* The next append rolls a new segment. */
static void next_segment(struct fx *f)
{
    f->now += ROLL_MS + 1;
}

/* Fills `segs` closed segments, each with every key once (values "s<seg>-k<key>"), then
 * one more record in the active segment. */
static void fill(struct fx *f, int segs)
{
    char v[32];
    for (int s = 0; s < segs; s++) {
        for (int k = 0; k < NKEYS; k++) {
            snprintf(v, sizeof(v), "s%d-k%d", s, k);
            put(f, k, v);
        }
        next_segment(f);
    }
    put(f, 0, "active-0");
}

struct scan {
    int64_t records;
    int64_t tombstones;
    int count[NKEYS];  /* records per key */
    char *last[NKEYS]; /* newest value seen ("" tombstone) */
    int64_t last_off[NKEYS];
    int64_t last_ts[NKEYS];
    int16_t last_attrs[NKEYS];
    int64_t keyless;
};

static void scan_free(struct scan *s)
{
    for (int i = 0; i < NKEYS; i++)
        free(s->last[i]);
}

/* Reads the whole log with log_read, validating every batch (CRC, record framing,
 * increasing offsets). */
static void scan_log(struct log *l, struct scan *s)
{
    memset(s, 0, sizeof(*s));
    int64_t off = log_start_offset(l), prev = -1;
    while (off < log_end_offset(l)) {
        struct log_read_result r;
        assert_int_equal(log_read(l, off, 1 << 20, INT64_MAX, &r), 0);
        if (r.len == 0)
            break;
        uint8_t *p = th_pread(r.fd, r.file_pos, r.len);
        assert_int_equal(batch_validate_all(p, (size_t)r.len, true, NULL, NULL), 0);
        struct batch_iter it;
        struct batch_info b;
        batch_iter_init(&it, p, (size_t)r.len);
        while (batch_iter_next(&it, &b, true) > 0) {
            assert_true(b.base_offset > prev);
            prev = batch_last_offset(&b);
            if ((b.attributes & (BATCH_ATTR_CONTROL | 0x07)) != 0) {
                s->records += b.records_count;
                continue;
            }
            struct record_iter ri;
            struct record rec;
            record_iter_init(&ri, it.p + it.batch_pos, &b);
            while (record_iter_next(&ri, &rec) > 0) {
                s->records++;
                if (!rec.key.ptr) {
                    s->keyless++;
                    continue;
                }
                int k = atoi((const char *)rec.key.ptr + 4);
                assert_true(k >= 0 && k < NKEYS);
                s->count[k]++;
                free(s->last[k]);
                s->last[k] = rec.value.ptr ? strndup((const char *)rec.value.ptr, rec.value.len)
                                           : strdup("");
                s->last_off[k] = rec.offset;
                s->last_ts[k] = rec.timestamp;
                s->last_attrs[k] = b.attributes;
                s->tombstones += rec.value.ptr == NULL;
                assert_int_equal(rec.header_count, 1);
            }
        }
        free(p);
        off = r.next_offset;
    }
}

/* Every key's newest value (model) is in the log, at its original offset. */
static void check_latest(struct fx *f, const struct scan *s)
{
    for (int k = 0; k < NKEYS; k++) {
        if (!f->latest[k])
            continue;
        if (f->latest[k][0] == '\0' && !s->last[k])
            continue; /* tombstone removed */
        assert_non_null(s->last[k]);
        assert_string_equal(s->last[k], f->latest[k]);
        assert_int_equal(s->last_off[k], f->latest_off[k]);
    }
}

/* One full clean: prepare, execute, complete. Returns whether a job ran. */
static bool clean(struct fx *f, struct log_clean_job *job)
{
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, job), 0);
    if (!job->ready)
        return false;
    log_clean_execute(job);
    assert_int_equal(job->err, 0);
    assert_int_equal(log_clean_complete(f->log, job), 0);
    return true;
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t a = strlen(de->d_name), b = strlen(suffix);
        n += a >= b && strcmp(de->d_name + a - b, suffix) == 0;
    }
    closedir(d);
    return n;
}

static void reopen(struct fx *f, int64_t recovery_point)
{
    log_close(f->log);
    f->log = NULL;
    assert_int_equal(log_open(f->dir, &f->cfg, recovery_point, &f->log), 0);
}

static void test_newest_value_kept(void **state)
{
    struct fx *f = *state;
    fill(f, 4);
    int64_t end = log_end_offset(f->log);
    int segs = log_segment_count(f->log);
    assert_int_equal(segs, 5);
    struct log_read_result ar;
    assert_int_equal(log_read(f->log, end - 1, 1 << 20, INT64_MAX, &ar), 0);
    uint8_t *active_before = th_pread(ar.fd, ar.file_pos, ar.len);
    int64_t active_base = end - 1;

    struct log_clean_job job = {0};
    assert_true(clean(f, &job));
    assert_int_equal(job.stats.records_read, 4 * NKEYS);
    assert_int_equal(job.stats.records_removed, 3 * NKEYS); /* key 0's newest is active */
    assert_int_equal(log_cleaner_checkpoint(f->log), active_base);
    assert_int_equal(log_end_offset(f->log), end);
    assert_int_equal(log_start_offset(f->log), 0);
    assert_true(log_segment_count(f->log) < segs); /* merged */
    assert_int_equal(count_files(f->dir, ".cleaned") + count_files(f->dir, ".swap"), 0);

    struct scan s;
    scan_log(f->log, &s);
    check_latest(f, &s);
    for (int k = 0; k < NKEYS; k++)
        assert_int_equal(s.count[k], k == 0 ? 2 : 1); /* key 0: closed + active */
    scan_free(&s);

    /* the active segment is byte-identical */
    assert_int_equal(log_read(f->log, active_base, 1 << 20, INT64_MAX, &ar), 0);
    uint8_t *active_after = th_pread(ar.fd, ar.file_pos, ar.len);
    assert_memory_equal(active_before, active_after, (size_t)ar.len);
    free(active_before);
    free(active_after);

    /* nothing dirty now: no job; appends keep working after the clean */
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_false(job.ready);
    put(f, 3, "after");

    /* persisted: reopen (clean and unclean) gives the same content and checkpoint */
    for (int pass = 0; pass < 2; pass++) {
        reopen(f, pass ? -1 : log_end_offset(f->log));
        assert_int_equal(log_cleaner_checkpoint(f->log), active_base);
        scan_log(f->log, &s);
        check_latest(f, &s);
        scan_free(&s);
    }
}

static void test_offsets_and_gaps(void **state)
{
    struct fx *f = *state;
    /* batches of 3 records: k1,k2,k3 then k2 again later so the middle record of the
     * first batch goes */
    struct kv b1[] = {{1, "a1"}, {2, "a2"}, {3, "a3"}};
    int64_t base1 = put_batch(f, b1, 3, 0);
    struct kv b2[] = {{4, "b4"}, {5, "b5"}};
    int64_t base2 = put_batch(f, b2, 2, 0);
    next_segment(f);
    put(f, 2, "new2");
    put(f, 4, "new4");
    put(f, 5, "new5"); /* batch 2 disappears entirely */
    next_segment(f);
    put(f, 9, "active");
    struct log_clean_job job = {0};
    assert_true(clean(f, &job));
    assert_int_equal(job.stats.records_removed, 3);

    /* offset base1+1 was removed: the read returns its batch (base1, last delta kept) */
    struct log_read_result r;
    assert_int_equal(log_read(f->log, base1 + 1, 1, INT64_MAX, &r), 0);
    assert_int_equal(r.first_batch_offset, base1);
    uint8_t *p = th_pread(r.fd, r.file_pos, r.len);
    struct batch_info bi;
    assert_int_equal(batch_validate(p, (size_t)r.len, &bi), 0);
    assert_int_equal(bi.records_count, 2);
    assert_int_equal(bi.last_offset_delta, 2); /* as produced */
    assert_int_equal(batch_count_records_check(p, &bi), 0);
    struct record_iter it;
    struct record rec;
    record_iter_init(&it, p, &bi);
    assert_int_equal(record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.offset, base1);
    assert_int_equal(record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.offset, base1 + 2);
    assert_int_equal(rec.timestamp, 1000000 + 2);
    free(p);
    assert_int_equal(r.next_offset, base1 + 3);
    /* the offsets of batch 2 are gone: reading them returns the next kept batch */
    assert_int_equal(log_read(f->log, base2, 1, INT64_MAX, &r), 0);
    assert_int_equal(r.first_batch_offset, base2 + 2);
    assert_int_equal(log_read(f->log, base2 + 1, 1, INT64_MAX, &r), 0);
    assert_int_equal(r.first_batch_offset, base2 + 2);

    struct scan s;
    scan_log(f->log, &s);
    check_latest(f, &s);
    scan_free(&s);
}

static void test_tombstones(void **state)
{
    struct fx *f = *state;
    fill(f, 2);
    int64_t t0 = f->now;
    put(f, 5, NULL); /* tombstone for key 5 */
    int64_t tomb_off = f->latest_off[5];
    put(f, 6, NULL);
    put(f, 6, "6-back"); /* key 6 deleted then written again */
    next_segment(f);
    put(f, 1, "active");

    struct log_clean_job job = {0};
    assert_true(clean(f, &job));
    struct scan s;
    scan_log(f->log, &s);
    check_latest(f, &s);
    assert_int_equal(s.count[5], 1); /* only the tombstone */
    assert_string_equal(s.last[5], "");
    assert_int_equal(s.last_off[5], tomb_off);
    assert_int_equal(s.last_ts[5], t0); /* record timestamp survives the horizon stamp */
    assert_true(s.last_attrs[5] & 0x40);
    assert_int_equal(s.count[6], 1);
    assert_int_equal(s.tombstones, 1);
    scan_free(&s);

    /* just before the horizon: a tombstone-only pass is not due */
    f->now += f->cfg.delete_retention_ms - 1;
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_false(job.ready);
    /* a dirty pass before the horizon keeps it */
    put(f, 7, "x");
    next_segment(f);
    put(f, 7, "y");
    next_segment(f);
    put(f, 8, "active2");
    f->cfg.min_cleanable_dirty_ratio = 0.01;
    log_set_config(f->log, &f->cfg);
    f->now = t0 + f->cfg.delete_retention_ms - 10;
    assert_true(clean(f, &job));
    scan_log(f->log, &s);
    assert_int_equal(s.count[5], 1);
    scan_free(&s);

    /* at the horizon the pass is due without dirty data and drops the tombstone */
    f->now = t0 + 2 * f->cfg.delete_retention_ms;
    assert_true(clean(f, &job));
    assert_int_equal(job.stats.tombstones_removed, 1);
    scan_log(f->log, &s);
    assert_int_equal(s.count[5], 0);
    assert_int_equal(s.tombstones, 0);
    check_latest(f, &s);
    scan_free(&s);
    /* nothing left to drop: no further pass */
    f->now += 100 * f->cfg.delete_retention_ms;
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_false(job.ready);
}

static void test_min_compaction_lag(void **state)
{
    struct fx *f = *state;
    f->cfg.min_compaction_lag_ms = 10 * ROLL_MS;
    log_set_config(f->log, &f->cfg);
    fill(f, 3); /* segments newest at about now - 3, -2, -1 roll periods */
    struct log_clean_job job = {0};
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_false(job.ready);
    /* move time so only the first two segments are old enough */
    f->now += 10 * ROLL_MS - 2 * (ROLL_MS + 1) + 1;
    assert_true(clean(f, &job));
    assert_int_equal(job.stats.segments_in, 2);
    assert_int_equal(job.end_offset, 2 * NKEYS);
    assert_int_equal(log_cleaner_checkpoint(f->log), 2 * NKEYS);
    struct scan s;
    scan_log(f->log, &s);
    check_latest(f, &s);
    for (int k = 1; k < NKEYS; k++)
        assert_int_equal(s.count[k], 2); /* segment 3 not cleaned yet */
    scan_free(&s);
    /* the high watermark bounds cleaning too */
    f->now += 100 * ROLL_MS;
    assert_int_equal(log_clean_prepare(f->log, f->now, 2 * NKEYS, &job), 0);
    assert_false(job.ready);
}

static void test_dirty_ratio(void **state)
{
    struct fx *f = *state;
    fill(f, 4);
    struct log_clean_job job = {0};
    assert_true(clean(f, &job));
    /* clean section ~ NKEYS records; one small dirty segment is below 0.5 */
    put(f, 1, "d1");
    next_segment(f);
    put(f, 2, "active");
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_false(job.ready);
    assert_true(job.dirty_ratio > 0.0 && job.dirty_ratio < 0.5);
    /* enough dirty bytes cross the ratio */
    for (int k = 0; k < NKEYS; k++)
        put(f, k, "d2");
    next_segment(f);
    put(f, 3, "active2");
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_true(job.ready);
    assert_true(job.dirty_ratio >= 0.5);
    log_clean_execute(&job);
    assert_int_equal(log_clean_complete(f->log, &job), 0);
    struct scan s;
    scan_log(f->log, &s);
    check_latest(f, &s);
    scan_free(&s);
    /* not compacted: never */
    f->cfg.cleanup_compact = false;
    log_set_config(f->log, &f->cfg);
    for (int k = 0; k < NKEYS; k++)
        put(f, k, "d3");
    next_segment(f);
    put(f, 3, "active3");
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_false(job.ready);
}

static void test_special_batches(void **state)
{
    struct fx *f = *state;
    put(f, 1, "old1");
    struct kv c[] = {{1, "compressed-bytes"}};
    put_batch(f, c, 1, 1 /* "gzip": kept whole, never read */);
    struct buf marker;
    buf_init(&marker);
    batch_encode_marker(&marker, 7, 0, TXN_MARKER_COMMIT, 0, f->now);
    assert_int_equal(log_append(f->log, marker.data, marker.len, 0, f->now, NULL), 0);
    buf_free(&marker);
    struct kv txn[] = {{2, "txn2"}, {3, NULL}};
    put_batch(f, txn, 2, BATCH_ATTR_TRANSACTIONAL);
    /* Committed: an open transaction would keep the cleaner out of this segment. */
    buf_init(&marker);
    batch_encode_marker(&marker, 7, 0, TXN_MARKER_COMMIT, 0, f->now);
    assert_int_equal(log_append(f->log, marker.data, marker.len, 0, f->now, NULL), 0);
    buf_free(&marker);
    struct kv keyless[] = {{-1, "nokey"}, {4, "v4"}};
    put_batch(f, keyless, 2, 0);
    put(f, 4, NULL);
    next_segment(f);
    put(f, 2, "plain2"); /* supersedes the transactional record */
    next_segment(f);
    put(f, 9, "active");
    struct log_clean_job job = {0};
    assert_true(clean(f, &job));
    struct scan s;
    scan_log(f->log, &s);
    assert_int_equal(s.keyless, 0);
    assert_int_equal(s.count[1], 1); /* old1 removed... by the plain scan only */
    assert_int_equal(s.count[2], 1); /* txn2 superseded by plain2 */
    assert_string_equal(s.last[2], "plain2");
    assert_int_equal(s.count[3], 1); /* transactional tombstone kept */
    assert_int_equal(s.count[4], 1); /* v4 superseded by the tombstone */
    /* compressed + two control batches kept: 1 + 2 records, plus 1,2,3,4(tomb),9 */
    assert_int_equal(s.records, 3 + 5);
    scan_free(&s);
    /* long after the horizon the tombstone of key 4 still stays: an unread (compressed)
     * batch lies before it and could hold an older value */
    f->now += 100 * f->cfg.delete_retention_ms;
    put(f, 8, "x");
    next_segment(f);
    put(f, 8, "y");
    f->cfg.min_cleanable_dirty_ratio = 0.0;
    log_set_config(f->log, &f->cfg);
    assert_true(clean(f, &job));
    scan_log(f->log, &s);
    assert_int_equal(s.count[4], 1);
    scan_free(&s);
}

/* A transactional batch of producer pid (sequence seq), not in the model. */
static void put_txn(struct fx *f, const struct kv *recs, int n, int64_t pid, int32_t seq)
{
    struct buf b;
    buf_init(&b);
    enc_batch(&b, recs, n, f->now, BATCH_ATTR_TRANSACTIONAL);
    be64_write(b.data + BATCH_OFF_PRODUCER_ID, (uint64_t)pid);
    be32_write(b.data + BATCH_OFF_BASE_SEQUENCE, (uint32_t)seq);
    be32_write(b.data + BATCH_OFF_CRC,
               crc32c(0, b.data + BATCH_OFF_ATTRIBUTES, b.len - BATCH_OFF_ATTRIBUTES));
    assert_int_equal(log_append(f->log, b.data, b.len, 0, f->now, NULL), 0);
    buf_free(&b);
}

static void put_marker(struct fx *f, int64_t pid, enum txn_marker_type type)
{
    struct buf b;
    buf_init(&b);
    batch_encode_marker(&b, pid, 0, type, 0, f->now);
    assert_int_equal(log_append(f->log, b.data, b.len, 0, f->now, NULL), 0);
    buf_free(&b);
}

/* Aborted transactions' batches are removed and supersede nothing; a committed
 * transaction's records supersede older ones; markers stay; a segment holding an open
 * transaction is not cleaned until it ends. */
static void test_transactions(void **state)
{
    struct fx *f = *state;
    put(f, 1, "v1");
    put(f, 2, "v2");
    struct kv a1[] = {{1, "aborted1"}, {3, "aborted3"}};
    put_txn(f, a1, 2, 100, 0);
    struct kv b1[] = {{2, "committed2"}};
    put_txn(f, b1, 1, 200, 0);
    struct kv a2[] = {{4, "aborted4"}};
    put_txn(f, a2, 1, 100, 2);
    put_marker(f, 100, TXN_MARKER_ABORT);
    struct kv c1[] = {{5, "open5"}};
    put_txn(f, c1, 1, 300, 0); /* open: holds the cleaner back */
    next_segment(f);
    put(f, 6, "v6");
    put_marker(f, 200, TXN_MARKER_COMMIT);
    next_segment(f);
    put(f, 9, "active");
    struct log_clean_job job = {0};
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_false(job.ready); /* the first segment holds pid 300's open transaction */

    put_marker(f, 300, TXN_MARKER_COMMIT);
    next_segment(f);
    put(f, 9, "active2");
    f->cfg.min_cleanable_dirty_ratio = 0.0;
    log_set_config(f->log, &f->cfg);
    assert_true(clean(f, &job));
    assert_int_equal(job.stats.aborted_batches_removed, 2);
    for (int round = 0; round < 2; round++) { /* as cleaned, then after a restart */
        struct scan s;
        scan_log(f->log, &s);
        assert_int_equal(s.count[1], 1);
        assert_string_equal(s.last[1], "v1"); /* not superseded by the aborted record */
        assert_int_equal(s.count[3], 0);
        assert_int_equal(s.count[4], 0);
        assert_int_equal(s.count[2], 1);
        assert_string_equal(s.last[2], "committed2"); /* v2 superseded */
        assert_string_equal(s.last[5], "open5");      /* committed later */
        /* v1, committed2, open5, v6, active, active2 and the three markers */
        assert_int_equal(s.records, 6 + 3);
        scan_free(&s);
        reopen(f, log_end_offset(f->log));
    }

    /* Markers go once their transaction has no record left and their delete horizon has
     * passed: pid 100's (aborted: nothing left) at once, pid 200's once a plain record
     * supersedes its only one; pid 300's stays with open5. */
    put(f, 2, "plain2");
    next_segment(f);
    put(f, 9, "active3");
    assert_true(clean(f, &job)); /* stamps pid 200's marker */
    assert_int_equal(job.stats.markers_removed, 0);
    f->now += f->cfg.delete_retention_ms + 1;
    next_segment(f);
    put(f, 9, "active4");
    assert_true(clean(f, &job));
    assert_int_equal(job.stats.markers_removed, 2);
    for (int round = 0; round < 2; round++) {
        struct scan s;
        scan_log(f->log, &s);
        assert_string_equal(s.last[2], "plain2");
        assert_string_equal(s.last[5], "open5");
        /* v1, open5, v6, plain2, active3 (active4 is in the active segment, out of the
         * key map) and active4, and pid 300's marker */
        assert_int_equal(s.records, 6 + 1);
        assert_int_equal(log_first_unstable_offset(f->log), -1); /* nothing looks open */
        scan_free(&s);
        reopen(f, log_end_offset(f->log));
    }
}

static void test_abort_on_change(void **state)
{
    struct fx *f = *state;
    fill(f, 3);
    int64_t end = log_end_offset(f->log);
    struct log_clean_job job = {0};
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_true(job.ready);
    /* one job at a time */
    struct log_clean_job other = {0};
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &other), -EBUSY);
    log_clean_execute(&job);
    assert_true(count_files(f->dir, ".cleaned") > 0);
    /* DeleteRecords removes the first segment meanwhile */
    assert_int_equal(log_delete_records(f->log, NKEYS), 0);
    assert_int_equal(log_clean_complete(f->log, &job), STORAGE_ERR_CLEAN_ABORTED);
    assert_int_equal(count_files(f->dir, ".cleaned") + count_files(f->dir, ".swap"), 0);
    assert_int_equal(log_end_offset(f->log), end);
    /* a follower truncation aborts too, and the next pass still works */
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_true(job.ready);
    log_clean_execute(&job);
    assert_int_equal(log_truncate_to(f->log, end - 1), 0);
    assert_int_equal(log_clean_complete(f->log, &job), STORAGE_ERR_CLEAN_ABORTED);
    put(f, 0, "again");
    assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
    assert_true(job.ready);
    log_clean_abandon(f->log, &job);
    assert_int_equal(count_files(f->dir, ".cleaned"), 0);
    assert_true(clean(f, &job));
    struct scan s;
    scan_log(f->log, &s);
    check_latest(f, &s);
    scan_free(&s);
}

static void test_retention_only_with_delete(void **state)
{
    struct fx *f = *state;
    f->cfg.retention_ms = 10;
    f->cfg.retention_bytes = 1;
    log_set_config(f->log, &f->cfg);
    fill(f, 3);
    int deleted = -1;
    assert_int_equal(log_enforce_retention(f->log, f->now + 100000, &deleted), 0);
    assert_int_equal(deleted, 0);
    f->cfg.cleanup_delete = true;
    log_set_config(f->log, &f->cfg);
    assert_int_equal(log_enforce_retention(f->log, f->now + 100000, &deleted), 0);
    assert_int_equal(deleted, 3);
}

/* Two layouts for the crash test. 0: five segments merged into one cleaned segment,
 * with a tombstone. 1: small segments, so several cleaned segments; segment B is wholly
 * superseded by a later, larger segment C that does not fit B's group, so B's group
 * ends with an input that contributes nothing (split off as an empty segment). */
static void build_layout(struct fx *f, int layout)
{
    char v[64];
    if (layout == 0) {
        for (int s = 0; s < 5; s++) {
            for (int key = 0; key < NKEYS; key += 1 + s % 2) {
                snprintf(v, sizeof(v), "s%d-k%d", s, key);
                put(f, key, v);
            }
            if (s == 3)
                put(f, 7, NULL);
            next_segment(f);
        }
    } else {
        for (int key = 0; key < 6; key++)
            put(f, key, "A"); /* A: kept */
        next_segment(f);
        for (int key = 6; key < NKEYS; key++)
            put(f, key, "B"); /* B: all superseded by C */
        next_segment(f);
        for (int key = 6; key < NKEYS; key++)
            put(f, key, "C-a-much-longer-value-that-makes-this-segment-bigger-than-B");
        next_segment(f);
        for (int key = 6; key < 8; key++)
            put(f, key, "D"); /* D: supersedes part of C */
        next_segment(f);
    }
    put(f, 0, "active");
}

static void reset_fx(struct fx *f, int layout)
{
    if (f->log)
        log_close(f->log);
    f->log = NULL;
    th_rmrf(f->dir);
    for (int i = 0; i < NKEYS; i++) {
        free(f->latest[i]);
        f->latest[i] = NULL;
    }
    f->now = 1000000;
    if (layout == 1) {
        f->cfg.segment_bytes = 1200;
        f->cfg.index_interval_bytes = 100;
    }
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &f->log), 0);
    build_layout(f, layout);
}

static int64_t count_records(struct fx *f)
{
    struct scan s;
    scan_log(f->log, &s);
    check_latest(f, &s);
    int64_t n = s.records;
    scan_free(&s);
    return n;
}

static void test_split_empty_group(void **state)
{
    struct fx *f = *state;
    reset_fx(f, 1);
    int before = log_segment_count(f->log);
    assert_int_equal(before, 5);
    struct log_clean_job job = {0};
    assert_true(clean(f, &job));
    assert_int_equal(job.stats.segments_in, 4);
    assert_int_equal(job.stats.segments_out, 3); /* {A, B} split: A, empty B, {C, D} */
    /* the empty cleaned segment B was dropped from the log */
    assert_true(log_segment_count(f->log) < before);
    assert_int_equal(log_segment_count(f->log), 3); /* A, {C, D}, active */
    assert_int_equal(count_records(f), 6 + 4 + 2 + 1);
    reopen(f, log_end_offset(f->log));
    assert_int_equal(count_records(f), 13);
}

/* Crash at every step of the swap (k = 0: right after execute wrote the .cleaned files),
 * then reopen: the log holds either all old or all new segments (record counts equal
 * one or the other), every latest value at its offset, valid CRCs, no leftover files. */
static void crash_case(struct fx *f, int layout)
{
    int64_t old_records, new_records;
    reset_fx(f, layout);
    old_records = count_records(f);
    struct log_clean_job job = {0};
    assert_true(clean(f, &job));
    new_records = count_records(f);
    assert_true(new_records < old_records);
    bool finished = false;
    for (int k = 0; !finished; k++) {
        assert_true(k < 400);
        reset_fx(f, layout);
        int64_t end = log_end_offset(f->log);
        assert_int_equal(log_clean_prepare(f->log, f->now, INT64_MAX, &job), 0);
        assert_true(job.ready);
        log_clean_execute(&job);
        assert_int_equal(job.err, 0);
        job.test_crash_at_op = k;
        int rc = log_clean_complete(f->log, &job);
        if (rc == 0)
            finished = true; /* k is past the last operation */
        else
            assert_int_equal(rc, -EINTR);
        /* "crash", then recover, alternately with and without a recovery point */
        log_close(f->log);
        f->log = NULL;
        assert_int_equal(log_open(f->dir, &f->cfg, k % 2 ? -1 : end, &f->log), 0);
        assert_int_equal(count_files(f->dir, ".cleaned") + count_files(f->dir, ".swap"), 0);
        assert_int_equal(log_end_offset(f->log), end);
        assert_int_equal(log_start_offset(f->log), 0);
        int64_t got = count_records(f);
        bool rolled_forward = log_cleaner_checkpoint(f->log) > 0;
        assert_int_equal(got, rolled_forward ? new_records : old_records);
        /* and the next pass gets to the cleaned result either way */
        if (!rolled_forward)
            assert_true(clean(f, &job));
        assert_int_equal(count_records(f), new_records);
    }
}

static void test_crash_during_swap(void **state)
{
    struct fx *f = *state;
    crash_case(f, 0);
    crash_case(f, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_newest_value_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets_and_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_min_compaction_lag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_ratio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_on_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_only_with_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_empty_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_during_swap, setup, teardown),
    };
    say_set_level(SAY_LEVEL_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
