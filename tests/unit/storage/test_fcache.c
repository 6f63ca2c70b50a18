/* The open-file cache (fcache.c): many partitions under a small bound of open segment
 * files. Every test counts the process's descriptors (/proc/self/fd) and index mappings
 * (/proc/self/maps) and asserts that they stay within the bound plus a small constant,
 * whatever the logs do (append, roll, read, flush, retention, truncation, compaction,
 * close and reopen), and that every record is still there. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <sys/resource.h>

#include "helpers.h"

#define BOUND 8
#define NLOGS 100
#define ROUNDS 12
/* Beyond the bound: the descriptor that lists /proc/self/fd, an index file open for a
 * moment. Anything that held one descriptor per log would be far above. */
#define SLACK 3

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Mappings of files under root (the index files of open sealed segments). */
static int count_maps(const char *root)
{
    FILE *f = fopen("/proc/self/maps", "re");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, root) != NULL;
    fclose(f);
    return n;
}

struct fx {
    char *root;
    int base_fds;
    struct log_config cfg;
    struct log *logs[NLOGS];
    int64_t batches[NLOGS]; /* appended so far: batch k of log i has fill (i + k) % 251 */
};

static int max_seen;

static void check_bounds(struct fx *f)
{
    int fds = count_fds() - f->base_fds;
    if (fds > max_seen)
        max_seen = fds;
    assert_true(fds <= BOUND + SLACK);
    assert_true(count_maps(f->root) <= 2 * BOUND);
    struct storage_open_files_stats st;
    storage_open_files_stats(&st);
    assert_true(st.open <= BOUND);
}

static char *log_dir(struct fx *f, int i)
{
    char *p = malloc(strlen(f->root) + 32);
    sprintf(p, "%s/t-%d", f->root, i);
    return p;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char *unused;
    f->root = th_tmpdir(&unused);
    free(unused);
    th_small_cfg(&f->cfg);
    f->cfg.segment_bytes = 4096; /* a roll every few batches */
    f->cfg.index_interval_bytes = 256;
    storage_set_max_open_files(BOUND);
    assert_int_equal(storage_max_open_files(), BOUND);
    f->base_fds = count_fds();
    max_seen = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NLOGS; i++)
        log_close(f->logs[i]);
    storage_read_turn_end();
    th_rmrf(f->root);
    free(f->root);
    free(f);
    return 0;
}

static uint8_t fill_of(int log, int64_t batch)
{
    return (uint8_t)((log + batch) % 251);
}

static void append_one(struct fx *f, int i)
{
    struct buf b;
    buf_init(&b);
    th_batch(&b, 3, 1000 + f->batches[i], 200, fill_of(i, f->batches[i]));
    struct log_append_result r;
    assert_int_equal(log_append(f->logs[i], b.data, b.len, 0, 1000, &r), 0);
    assert_int_equal(r.base_offset, 3 * f->batches[i]);
    f->batches[i]++;
    buf_free(&b);
}

/* Reads log i from its start through log_read and checks every batch. end_turn: end the
 * read turn after each read, as the server's loop does between requests. */
static void check_log(struct fx *f, int i, int64_t first_batch)
{
    struct log *l = f->logs[i];
    int64_t offset = log_start_offset(l), k = first_batch;
    while (offset < log_end_offset(l)) {
        struct log_read_result r;
        assert_int_equal(log_read(l, offset, 1 << 20, INT64_MAX, &r), 0);
        assert_true(r.len > 0);
        uint8_t *p = th_pread(r.fd, r.file_pos, r.len);
        struct batch_iter it;
        struct batch_info b;
        batch_iter_init(&it, p, (size_t)r.len);
        int rc;
        while ((rc = batch_iter_next(&it, &b, true)) > 0) {
            assert_int_equal(b.base_offset, 3 * k);
            assert_int_equal(b.records_count, 3);
            struct record_iter ri;
            struct record rec;
            record_iter_init(&ri, p + it.batch_pos, &b);
            int n = 0;
            while (record_iter_next(&ri, &rec) > 0) {
                assert_int_equal(rec.value.len, 200);
                assert_int_equal(rec.value.ptr[0], fill_of(i, k));
                assert_int_equal(rec.value.ptr[199], fill_of(i, k));
                n++;
            }
            assert_int_equal(n, 3);
            k++;
        }
        assert_int_equal(rc, 0);
        free(p);
        offset = r.next_offset;
        storage_read_turn_end();
        check_bounds(f);
    }
    assert_int_equal(k, f->batches[i]);
}

static void open_all(struct fx *f, bool clean)
{
    for (int i = 0; i < NLOGS; i++) {
        char *d = log_dir(f, i);
        /* odd logs: recovery point -1, so every segment is scanned and CRC-checked */
        int64_t rp = clean && i % 2 == 0 ? 3 * f->batches[i] : -1;
        assert_int_equal(log_open(d, &f->cfg, rp, &f->logs[i]), 0);
        free(d);
        check_bounds(f);
    }
}

static void close_all(struct fx *f)
{
    for (int i = 0; i < NLOGS; i++) {
        log_close(f->logs[i]);
        f->logs[i] = NULL;
        check_bounds(f);
    }
}

struct flush_round {
    bool done;
    size_t n;
};

static void on_round_done(void *arg, struct log_flush_job **jobs, size_t n)
{
    struct flush_round *r = arg;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(log_flush_complete(jobs[i]->log, jobs[i]), 0);
    r->done = true;
    r->n = n;
}

/* One group-commit round over every log, as the server runs it: prepare on this
 * thread, execute on the syncer's threads, complete here. */
static void flush_all(struct fx *f)
{
    static struct log_flush_job jobs[NLOGS];
    struct log_flush_job *ptrs[NLOGS];
    for (int i = 0; i < NLOGS; i++) {
        assert_int_equal(log_flush_prepare(f->logs[i], &jobs[i]), 0);
        ptrs[i] = &jobs[i];
        check_bounds(f); /* prepared jobs hold no descriptors */
    }
    struct syncer *s;
    assert_int_equal(syncer_create(&s, 4), 0);
    struct flush_round r = {0};
    syncer_submit(s, ptrs, NLOGS, on_round_done, &r);
    while (!r.done) {
        struct pollfd pfd = {.fd = syncer_event_fd(s), .events = POLLIN};
        assert_true(poll(&pfd, 1, 10000) > 0);
        syncer_reap(s);
    }
    syncer_destroy(s);
    assert_int_equal(r.n, NLOGS);
    for (int i = 0; i < NLOGS; i++) {
        assert_int_equal(log_durable_offset(f->logs[i]), log_end_offset(f->logs[i]));
        assert_int_equal(log_unflushed_messages(f->logs[i]), 0);
    }
    check_bounds(f);
}

static void test_many_partitions(void **state)
{
    struct fx *f = *state;
    open_all(f, false);
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < NLOGS; i++) {
            append_one(f, i);
            check_bounds(f);
        }
    }
    assert_true(log_segment_count(f->logs[0]) >= 2); /* sealed segments with indexes */
    for (int i = 0; i < NLOGS; i++)
        check_log(f, i, 0);
    flush_all(f);
    /* clean close and reopen (even logs load from their indexes, odd ones recover) */
    close_all(f);
    open_all(f, true);
    for (int i = 0; i < NLOGS; i++) {
        assert_int_equal(log_end_offset(f->logs[i]), 3 * f->batches[i]);
        check_log(f, i, 0);
    }
    /* appends after the reopen continue every log */
    for (int i = 0; i < NLOGS; i++)
        append_one(f, i);
    for (int i = NLOGS - 1; i >= 0; i--)
        check_log(f, i, 0);
    struct storage_open_files_stats st;
    storage_open_files_stats(&st);
    assert_true(st.evictions > 0);
    print_message("max descriptors above the start: %d (bound %d), %llu opens, %llu "
                  "evictions\n",
                  max_seen, BOUND, (unsigned long long)st.opens, (unsigned long long)st.evictions);
}

/* A fetch locates data in every partition before it sends any: descriptors lent by
 * log_read stay open for the rest of the read turn, however many other logs are read,
 * and once lent files fill the bound other logs find nothing until the turn ends. */
static void test_lent_reads(void **state)
{
    struct fx *f = *state;
    enum { N = 3 * BOUND };
    open_all(f, false);
    for (int i = 0; i < N; i++)
        append_one(f, i);
    storage_read_turn_end();
    struct log_read_result rr[N];
    int with_data = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(log_read(f->logs[i], 0, 1 << 20, INT64_MAX, &rr[i]), 0);
        with_data += rr[i].len > 0;
        if (rr[i].len == 0)
            assert_int_equal(rr[i].fd, -1);
        check_bounds(f);
    }
    assert_true(with_data >= BOUND);
    assert_true(with_data < N);
    /* every descriptor handed out is still the right file */
    for (int i = 0; i < N; i++) {
        if (rr[i].len == 0)
            continue;
        uint8_t *p = th_pread(rr[i].fd, rr[i].file_pos, rr[i].len);
        assert_int_equal(p[rr[i].len - 2], fill_of(i, 0)); /* last value byte */
        free(p);
    }
    /* the next turn serves the others */
    storage_read_turn_end();
    for (int i = 0; i < N; i++) {
        if (rr[i].len > 0)
            continue;
        struct log_read_result r;
        assert_int_equal(log_read(f->logs[i], 0, 1 << 20, INT64_MAX, &r), 0);
        assert_true(r.len > 0);
        storage_read_turn_end();
    }
    /* nothing read: no descriptor */
    struct log_read_result r;
    assert_int_equal(log_read(f->logs[N], 0, 1 << 20, INT64_MAX, &r), 0);
    assert_int_equal(r.len, 0);
    assert_int_equal(r.fd, -1);
    check_bounds(f);
}

/* Retention, DeleteRecords, truncation and rolls delete and create segments of logs
 * whose files the cache closed and reopened. */
static void test_retention_roll_delete(void **state)
{
    struct fx *f = *state;
    f->cfg.segment_bytes = 1024; /* one batch per segment */
    f->cfg.retention_bytes = 4 * 1024;
    open_all(f, false);
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < NLOGS; i++)
            append_one(f, i);
    assert_int_equal(log_segment_count(f->logs[0]), ROUNDS);
    int64_t first[NLOGS];
    for (int i = 0; i < NLOGS; i++) {
        struct log *l = f->logs[i];
        int deleted = 0;
        assert_int_equal(log_enforce_retention(l, 2000, &deleted), 0);
        assert_true(deleted > 0);
        check_bounds(f);
        if (i % 3 == 1) {
            assert_int_equal(log_delete_records(l, log_start_offset(l) + 3), 0);
        } else if (i % 3 == 2) {
            assert_int_equal(log_truncate_to(l, log_end_offset(l) - 3), 0);
            f->batches[i]--;
        }
        check_bounds(f);
        first[i] = log_start_offset(l) / 3;
    }
    for (int i = 0; i < NLOGS; i++)
        check_log(f, i, first[i]);
    /* appends after truncation roll on; the files on disk match the logs */
    for (int i = 0; i < NLOGS; i++) {
        append_one(f, i);
        check_bounds(f);
    }
    flush_all(f);
    close_all(f);
    open_all(f, true);
    for (int i = 0; i < NLOGS; i++) {
        int64_t start = log_start_offset(f->logs[i]);
        assert_true(start / 3 <= first[i]);
        if (start / 3 < first[i]) /* DeleteRecords' start is the server's checkpoint */
            assert_int_equal(log_set_start_offset(f->logs[i], 3 * first[i]), 0);
        check_log(f, i, first[i]);
    }
}

/* ---- compaction ---- */

/* One batch of one record with key "k<key>" and an 8-byte value of `fill`. */
static void keyed_batch(struct buf *b, int key, uint8_t fill, int64_t ts)
{
    size_t start = b->len;
    char k[16];
    int klen = snprintf(k, sizeof(k), "k%d", key);
    uint8_t v[8];
    memset(v, fill, sizeof(v));
    buf_put_i64(b, 0);
    buf_put_i32(b, 0);
    buf_put_i32(b, -1);
    buf_put_i8(b, 2);
    buf_put_u32(b, 0);
    buf_put_i16(b, 0);
    buf_put_i32(b, 0);
    buf_put_i64(b, ts);
    buf_put_i64(b, ts);
    buf_put_i64(b, -1);
    buf_put_i16(b, -1);
    buf_put_i32(b, -1);
    buf_put_i32(b, 1);
    size_t body = 1 + varlong_size(0) + varint_size(0) + varint_size(klen) + (size_t)klen +
                  varint_size(8) + 8 + varint_size(0);
    buf_put_varint(b, (int32_t)body);
    buf_put_i8(b, 0);
    buf_put_varlong(b, 0);
    buf_put_varint(b, 0);
    buf_put_varint(b, klen);
    buf_append(b, k, (size_t)klen);
    buf_put_varint(b, 8);
    buf_append(b, v, 8);
    buf_put_varint(b, 0);
    be32_write(b->data + start + BATCH_OFF_LENGTH, (uint32_t)(b->len - start - 12));
    be32_write(b->data + start + BATCH_OFF_CRC, crc32c(0, b->data + start + BATCH_OFF_ATTRIBUTES,
                                                       b->len - start - BATCH_OFF_ATTRIBUTES));
}

/* The cleaner reads a log's segments on its own thread: one at a time, by name, never
 * through the cache, while the owner thread goes on using (and evicting) other logs. */
static void test_compaction(void **state)
{
    struct fx *f = *state;
    enum { KEYS = 5, WRITES = 90 };
    open_all(f, false);
    struct log_config cc = f->cfg;
    cc.segment_bytes = 256; /* a few records per segment: many segments to clean */
    cc.cleanup_compact = true;
    cc.cleanup_delete = false;
    log_set_config(f->logs[0], &cc);
    struct log *l = f->logs[0];
    for (int w = 0; w < WRITES; w++) {
        struct buf b;
        buf_init(&b);
        keyed_batch(&b, w % KEYS, (uint8_t)w, 1000 + w);
        assert_int_equal(log_append(l, b.data, b.len, 0, 1000, NULL), 0);
        buf_free(&b);
    }
    int segs = log_segment_count(l);
    assert_true(segs > 2 * BOUND);
    struct log_clean_job job = {0};
    assert_int_equal(log_clean_prepare(l, 100000, INT64_MAX, &job), 0);
    assert_true(job.ready);
    check_bounds(f); /* the job holds no segment descriptors */
    /* the loop goes on with other logs meanwhile */
    for (int i = 1; i < NLOGS; i++)
        append_one(f, i);
    check_bounds(f);
    log_clean_execute(&job);
    assert_int_equal(job.err, 0);
    check_bounds(f);
    assert_int_equal(log_clean_complete(l, &job), 0);
    assert_true(log_segment_count(l) < segs);
    check_bounds(f);
    /* the newest value of every key is there, older ones of the cleaned part gone */
    int64_t offset = log_start_offset(l);
    int seen[KEYS] = {0};
    int records = 0;
    while (offset < log_end_offset(l)) {
        struct log_read_result r;
        assert_int_equal(log_read(l, offset, 1 << 20, INT64_MAX, &r), 0);
        assert_true(r.len > 0);
        uint8_t *p = th_pread(r.fd, r.file_pos, r.len);
        struct batch_iter it;
        struct batch_info b;
        batch_iter_init(&it, p, (size_t)r.len);
        while (batch_iter_next(&it, &b, true) > 0) {
            struct record_iter ri;
            struct record rec;
            record_iter_init(&ri, p + it.batch_pos, &b);
            while (record_iter_next(&ri, &rec) > 0) {
                int key = atoi((const char *)rec.key.ptr + 1);
                assert_int_equal(rec.value.ptr[0], (uint8_t)rec.offset);
                assert_int_equal(rec.offset % KEYS, key);
                seen[key]++;
                records++;
            }
        }
        free(p);
        offset = r.next_offset;
        storage_read_turn_end();
    }
    for (int k = 0; k < KEYS; k++)
        assert_true(seen[k] >= 1);
    assert_true(records < WRITES);
    for (int i = 1; i < NLOGS; i++)
        check_log(f, i, 0);
}

/* Out of descriptors: the error says so, nothing is appended or damaged, and all works
 * again once descriptors are free. */
static void test_emfile(void **state)
{
    struct fx *f = *state;
    f->cfg.segment_bytes = 1024;
    open_all(f, false);
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < NLOGS; i++)
            append_one(f, i);
    struct log_flush_job job = {0};
    assert_int_equal(log_flush_prepare(f->logs[1], &job), 0);
    assert_true(job.n_paths > 0);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 3; /* no new descriptor at all */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    log_flush_execute(&job); /* as the sync thread would, out of descriptors */
    /* log 0's first segment and its active one were closed long ago */
    struct log_read_result r;
    int rc_read = log_read(f->logs[0], 0, 1 << 20, INT64_MAX, &r);
    struct buf b;
    buf_init(&b);
    th_batch(&b, 3, 5000, 200, 7);
    int rc_append = log_append(f->logs[0], b.data, b.len, 0, 1000, NULL);
    buf_free(&b);
    int rc_truncate = log_truncate_to(f->logs[2], log_end_offset(f->logs[2]) - 3);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc_truncate, -EMFILE); /* and the log is as it was, not failed */
    assert_int_equal(log_end_offset(f->logs[2]), 3 * f->batches[2]);
    assert_int_equal(rc_read, -EMFILE);
    assert_int_equal(rc_append, -EMFILE);
    assert_non_null(strstr(storage_strerror(rc_read), "too many open files"));
    assert_int_equal(log_end_offset(f->logs[0]), 3 * f->batches[0]);
    /* the flush that could not open its files did not sync, and does not fail the log */
    assert_int_equal(job.err, -EMFILE);
    assert_false(job.sync_failed);
    assert_int_equal(log_flush_complete(f->logs[1], &job), -EMFILE);
    assert_int_equal(log_durable_offset(f->logs[1]), 0);
    append_one(f, 1);
    assert_int_equal(log_flush_prepare(f->logs[1], &job), 0);
    log_flush_execute(&job);
    assert_int_equal(log_flush_complete(f->logs[1], &job), 0);
    assert_int_equal(log_durable_offset(f->logs[1]), log_end_offset(f->logs[1]));
    for (int i = 0; i < NLOGS; i++)
        check_log(f, i, 0);
    append_one(f, 0);
    append_one(f, 2);
    check_log(f, 0, 0);
    check_log(f, 2, 0);
}

int main(void)
{
    say_set_level(SAY_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lent_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_roll_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emfile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
