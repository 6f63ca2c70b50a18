/* The partition log: append, read, roll, reopen, timestamps, epochs, retention. */
#include <fcntl.h>

#include "helpers.h"

struct fixture {
    char *root;
    char *dir;
    struct log_config cfg;
    struct log *log;
    struct buf expect; /* every appended batch as patched, in order */
    int64_t ts;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->root = th_tmpdir(&f->dir);
    th_small_cfg(&f->cfg);
    buf_init(&f->expect);
    f->ts = 1700000000000LL;
    assert_int_equal(log_open(f->dir, &f->cfg, 0, &f->log), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    log_close(f->log);
    th_rmrf(f->root);
    free(f->root);
    free(f->dir);
    buf_free(&f->expect);
    free(f);
    return 0;
}

/* Appends a batch of n records and remembers its patched bytes. */
static int64_t append_n(struct fixture *f, int n, size_t value_len, int32_t epoch)
{
    struct buf b;
    buf_init(&b);
    th_batch(&b, n, f->ts, value_len, (uint8_t)('a' + n % 26));
    struct log_append_result r;
    int64_t leo = log_end_offset(f->log);
    assert_int_equal(log_append(f->log, b.data, b.len, epoch, f->ts, &r), 0);
    assert_int_equal(r.base_offset, leo);
    assert_int_equal(r.last_offset, leo + n - 1);
    assert_int_equal(r.log_append_time, -1);
    assert_int_equal(be64_read(b.data), leo);
    assert_int_equal(batch_validate(b.data, b.len, NULL), 0);
    buf_append(&f->expect, b.data, b.len);
    buf_free(&b);
    f->ts += 10;
    return r.base_offset;
}

/* Reads the whole log from `from` and compares with the expected bytes. */
static void read_all_and_compare(struct fixture *f)
{
    struct buf got;
    buf_init(&got);
    int64_t off = log_start_offset(f->log);
    int calls = 0;
    while (off < log_end_offset(f->log)) {
        struct log_read_result r;
        assert_int_equal(log_read(f->log, off, 1 << 20, INT64_MAX, &r), 0);
        assert_true(r.len > 0);
        assert_int_equal(r.first_batch_offset, off);
        uint8_t *p = th_pread(r.fd, r.file_pos, r.len);
        buf_append(&got, p, (size_t)r.len);
        free(p);
        off = r.next_offset;
        calls++;
    }
    assert_int_equal(got.len, f->expect.len);
    assert_memory_equal(got.data, f->expect.data, got.len);
    buf_free(&got);
}

static void test_append_read_many(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(log_end_offset(f->log), 0);
    assert_int_equal(log_segment_count(f->log), 1);
    for (int i = 0; i < 300; i++)
        append_n(f, 1 + i % 7, (size_t)(i * 13 % 500), 0);
    assert_true(log_segment_count(f->log) > 2); /* 64 KiB segments */
    read_all_and_compare(f);
    assert_int_equal(log_size_bytes(f->log), (int64_t)f->expect.len);

    /* Reopen cleanly (recovery point = log end): same content, same offsets. */
    int64_t leo = log_end_offset(f->log);
    int segs = log_segment_count(f->log);
    log_close(f->log);
    assert_int_equal(log_open(f->dir, &f->cfg, leo, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), leo);
    assert_int_equal(log_segment_count(f->log), segs);
    read_all_and_compare(f);
    /* And appends continue after reopen. */
    assert_int_equal(append_n(f, 3, 10, 0), leo);
    read_all_and_compare(f);
}

static void test_read_inside_batch_and_limits(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 20; i++)
        append_n(f, 10, 100, 0); /* batch i holds offsets 10i..10i+9 */
    struct batch_info info;
    assert_int_equal(batch_validate(f->expect.data, f->expect.len, &info), 0);
    int64_t bsize = (int64_t)info.size_bytes;

    /* Every offset inside a batch returns that whole batch first. */
    for (int64_t off = 0; off < 200; off++) {
        struct log_read_result r;
        assert_int_equal(log_read(f->log, off, (int32_t)bsize, INT64_MAX, &r), 0);
        assert_int_equal(r.first_batch_offset, off / 10 * 10);
        assert_int_equal(r.file_pos, off / 10 * bsize);
        assert_int_equal(r.len, bsize);
        assert_int_equal(r.next_offset, off / 10 * 10 + 10);
    }
    struct log_read_result r;
    /* max_bytes: whole batches only */
    assert_int_equal(log_read(f->log, 25, (int32_t)(3 * bsize + 7), INT64_MAX, &r), 0);
    assert_int_equal(r.len, 3 * bsize);
    assert_int_equal(r.next_offset, 50);
    /* KIP-74: a first batch bigger than max_bytes is returned whole */
    assert_int_equal(log_read(f->log, 25, 1, INT64_MAX, &r), 0);
    assert_int_equal(r.len, bsize);
    /* high watermark: only batches wholly below it */
    assert_int_equal(log_read(f->log, 0, 1 << 20, 45, &r), 0);
    assert_int_equal(r.len, 4 * bsize);
    assert_int_equal(r.next_offset, 40);
    assert_int_equal(log_read(f->log, 40, 1 << 20, 45, &r), 0);
    assert_int_equal(r.len, 0);
    /* log end: empty; beyond and below: out of range */
    assert_int_equal(log_read(f->log, 200, 1 << 20, INT64_MAX, &r), 0);
    assert_int_equal(r.len, 0);
    assert_int_equal(log_read(f->log, 201, 1 << 20, INT64_MAX, &r), STORAGE_ERR_OUT_OF_RANGE);
    assert_int_equal(log_read(f->log, -1, 1 << 20, INT64_MAX, &r), STORAGE_ERR_OUT_OF_RANGE);
}

static void test_roll_by_size_and_time(void **state)
{
    struct fixture *f = *state;
    f->cfg.segment_bytes = 4096;
    f->cfg.segment_ms = 1000;
    log_set_config(f->log, &f->cfg);
    /* batches of ~1.1 KiB: 3 fit in 4 KiB */
    for (int i = 0; i < 9; i++)
        append_n(f, 1, 1100, 0);
    assert_int_equal(log_segment_count(f->log), 3);
    char *p = th_path(f->dir, "00000000000000000003.log");
    assert_true(th_file_size(p) > 0);
    free(p);
    /* one small batch, then time passes beyond segment_ms: next append rolls */
    f->cfg.segment_bytes = 1 << 20;
    log_set_config(f->log, &f->cfg);
    append_n(f, 1, 10, 0);
    int before = log_segment_count(f->log);
    f->ts += 500;
    append_n(f, 1, 10, 0);
    assert_int_equal(log_segment_count(f->log), before);
    f->ts += 1000;
    int64_t off = append_n(f, 1, 10, 0);
    assert_int_equal(log_segment_count(f->log), before + 1);
    char name[64];
    snprintf(name, sizeof(name), "%020lld.log", (long long)off);
    p = th_path(f->dir, name);
    assert_true(th_file_size(p) > 0);
    free(p);
    read_all_and_compare(f);
    /* too large for a segment */
    f->cfg.segment_bytes = 200;
    log_set_config(f->log, &f->cfg);
    struct buf b;
    buf_init(&b);
    th_batch(&b, 1, f->ts, 300, 'z');
    assert_int_equal(log_append(f->log, b.data, b.len, 0, f->ts, NULL),
                     STORAGE_ERR_BATCH_TOO_LARGE);
    buf_free(&b);
}

static void test_index_after_roll_and_reopen(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 400; i++)
        append_n(f, 2, 300, 0);
    char *p = th_path(f->dir, "00000000000000000000.index");
    off_t isz = th_file_size(p);
    free(p);
    assert_true(isz > 0);
    assert_int_equal(isz % 8, 0);
    for (int round = 0; round < 2; round++) {
        for (int64_t off = 0; off < 800; off += 7) {
            struct log_read_result r;
            assert_int_equal(log_read(f->log, off, 1, INT64_MAX, &r), 0);
            assert_int_equal(r.first_batch_offset, off / 2 * 2);
            uint8_t *b = th_pread(r.fd, r.file_pos, r.len);
            assert_int_equal(be64_read(b), off / 2 * 2);
            assert_int_equal(batch_validate(b, (size_t)r.len, NULL), 0);
            free(b);
        }
        log_close(f->log);
        assert_int_equal(log_open(f->dir, &f->cfg, 800, &f->log), 0);
        assert_int_equal(log_end_offset(f->log), 800);
    }
    /* the index of a sealed segment was not rewritten (loaded clean) */
    p = th_path(f->dir, "00000000000000000000.index");
    assert_int_equal(th_file_size(p), isz);
    free(p);
}

static void test_log_append_time(void **state)
{
    struct fixture *f = *state;
    f->cfg.timestamp_type = LOG_TIMESTAMP_LOG_APPEND_TIME;
    log_set_config(f->log, &f->cfg);
    struct buf b;
    buf_init(&b);
    th_batch(&b, 4, 1000, 10, 'q');
    th_batch(&b, 2, 1000, 10, 'r');
    struct log_append_result r;
    assert_int_equal(log_append(f->log, b.data, b.len, 3, 999999, &r), 0);
    assert_int_equal(r.log_append_time, 999999);
    assert_int_equal(r.base_offset, 0);
    assert_int_equal(r.last_offset, 5);
    struct batch_iter it;
    struct batch_info info;
    batch_iter_init(&it, b.data, b.len);
    int n = 0;
    while (batch_iter_next(&it, &info, true) > 0) {
        assert_true(info.attributes & BATCH_ATTR_LOG_APPEND_TIME);
        assert_int_equal(info.max_timestamp, 999999);
        assert_int_equal(info.partition_leader_epoch, 3);
        n++;
    }
    assert_int_equal(n, 2);
    assert_int_equal(batch_validate_all(b.data, b.len, true, NULL, NULL), 0);
    /* the stored copy too */
    struct log_read_result rr;
    assert_int_equal(log_read(f->log, 0, 1 << 20, INT64_MAX, &rr), 0);
    uint8_t *p = th_pread(rr.fd, rr.file_pos, rr.len);
    assert_int_equal(rr.len, (int64_t)b.len);
    assert_memory_equal(p, b.data, b.len);
    free(p);
    buf_free(&b);
}

static void test_offset_for_timestamp(void **state)
{
    struct fixture *f = *state;
    f->ts = 10000;
    for (int i = 0; i < 200; i++)
        append_n(f, 5, 200, 0); /* batch i: offsets 5i.., timestamps 10000+10i+j */
    int64_t off, ts;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(log_offset_for_timestamp(f->log, 0, &off, &ts), 0);
        assert_int_equal(off, 0);
        assert_int_equal(ts, 10000);
        /* record level: ts 10000+10*37+3 is record 3 of batch 37 */
        assert_int_equal(log_offset_for_timestamp(f->log, 10373, &off, &ts), 0);
        assert_int_equal(off, 37 * 5 + 3);
        assert_int_equal(ts, 10373);
        /* between batches: first record of the next batch */
        assert_int_equal(log_offset_for_timestamp(f->log, 10376, &off, &ts), 0);
        assert_int_equal(off, 38 * 5);
        assert_int_equal(ts, 10380);
        assert_int_equal(log_offset_for_timestamp(f->log, 99999, &off, &ts), 0);
        assert_int_equal(off, -1);
        assert_int_equal(log_max_timestamp(f->log, &off, &ts), 0);
        assert_int_equal(ts, 10000 + 10 * 199 + 4);
        assert_int_equal(off, 999);
        /* same answers after a clean reopen (timeindex loaded from disk) */
        log_close(f->log);
        assert_int_equal(log_open(f->dir, &f->cfg, 1000, &f->log), 0);
    }
    /* respects the log start offset */
    assert_int_equal(log_delete_records(f->log, 187), 0);
    assert_int_equal(log_offset_for_timestamp(f->log, 10000, &off, &ts), 0);
    assert_int_equal(off, 187);
    assert_int_equal(ts, 10372);
}

static void test_epochs(void **state)
{
    struct fixture *f = *state;
    int32_t e;
    int64_t end;
    assert_int_equal(log_end_offset_for_epoch(f->log, 0, &e, &end), 0);
    assert_int_equal(e, -1);
    assert_int_equal(end, -1);
    append_n(f, 5, 10, 1); /* epoch 1 at 0 */
    append_n(f, 5, 10, 1);
    append_n(f, 5, 10, 3); /* epoch 3 at 10 */
    append_n(f, 5, 10, 4); /* epoch 4 at 15 */
    assert_int_equal(log_latest_epoch(f->log), 4);
    assert_int_equal(log_end_offset_for_epoch(f->log, 4, &e, &end), 0);
    assert_int_equal(e, 4);
    assert_int_equal(end, 20);
    assert_int_equal(log_end_offset_for_epoch(f->log, 1, &e, &end), 0);
    assert_int_equal(e, 1);
    assert_int_equal(end, 10);
    assert_int_equal(log_end_offset_for_epoch(f->log, 2, &e, &end), 0);
    assert_int_equal(e, 1);
    assert_int_equal(end, 10);
    assert_int_equal(log_end_offset_for_epoch(f->log, 0, &e, &end), 0);
    assert_int_equal(e, 0);
    assert_int_equal(end, 0);
    assert_int_equal(log_end_offset_for_epoch(f->log, 9, &e, &end), 0);
    assert_int_equal(e, -1);
    assert_int_equal(end, -1);
    /* persisted */
    char *p = th_path(f->dir, "leader-epoch-checkpoint");
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    char text[256] = {0};
    assert_true(fread(text, 1, sizeof(text) - 1, fp) > 0);
    fclose(fp);
    assert_string_equal(text, "0\n3\n1 0\n3 10\n4 15\n");
    /* truncation drops epochs that start at or after the new end */
    assert_int_equal(log_truncate_to(f->log, 12), 0);
    assert_int_equal(log_end_offset(f->log), 10);
    assert_int_equal(log_latest_epoch(f->log), 1);
    assert_int_equal(log_end_offset_for_epoch(f->log, 1, &e, &end), 0);
    assert_int_equal(end, 10);
    /* reopen keeps the cache */
    log_close(f->log);
    assert_int_equal(log_open(f->dir, &f->cfg, 10, &f->log), 0);
    assert_int_equal(log_latest_epoch(f->log), 1);
    /* unclean reopen rebuilds it from the batches */
    log_close(f->log);
    unlink(p);
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &f->log), 0);
    assert_int_equal(log_latest_epoch(f->log), 1);
    assert_int_equal(log_end_offset(f->log), 10);
    free(p);
}

static void test_truncate_to(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 300; i++)
        append_n(f, 2, 400, 0);
    int segs = log_segment_count(f->log);
    assert_true(segs > 3);
    assert_int_equal(log_truncate_to(f->log, 301), 0); /* inside batch 300..301 */
    assert_int_equal(log_end_offset(f->log), 300);
    assert_true(log_segment_count(f->log) < segs);
    /* expected bytes: first 150 batches */
    struct batch_info info;
    assert_int_equal(batch_validate(f->expect.data, f->expect.len, &info), 0);
    f->expect.len = 150 * info.size_bytes;
    read_all_and_compare(f);
    int64_t off = append_n(f, 2, 400, 0);
    assert_int_equal(off, 300);
    read_all_and_compare(f);
    log_close(f->log);
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 302);
    read_all_and_compare(f);
    /* truncate below the start: restart empty at that offset */
    assert_int_equal(log_truncate_to(f->log, 0), 0);
    assert_int_equal(log_end_offset(f->log), 0);
    assert_int_equal(log_segment_count(f->log), 1);
}

static void test_delete_records_and_retention(void **state)
{
    struct fixture *f = *state;
    f->cfg.segment_bytes = 4096;
    log_set_config(f->log, &f->cfg);
    for (int i = 0; i < 30; i++)
        append_n(f, 1, 1100, 0); /* 3 batches per segment -> 10 segments */
    assert_int_equal(log_segment_count(f->log), 10);
    assert_int_equal(log_delete_records(f->log, 31), STORAGE_ERR_OUT_OF_RANGE);
    assert_int_equal(log_delete_records(f->log, 7), 0);
    assert_int_equal(log_start_offset(f->log), 7);
    assert_int_equal(log_segment_count(f->log), 8); /* segments 0 and 3 gone */
    struct log_read_result r;
    assert_int_equal(log_read(f->log, 6, 100, INT64_MAX, &r), STORAGE_ERR_OUT_OF_RANGE);
    assert_int_equal(log_read(f->log, 7, 100, INT64_MAX, &r), 0);
    assert_int_equal(r.first_batch_offset, 7);
    /* start offset comes back via log_set_start_offset after reopen */
    log_close(f->log);
    assert_int_equal(log_open(f->dir, &f->cfg, 30, &f->log), 0);
    assert_int_equal(log_start_offset(f->log), 6);
    assert_int_equal(log_set_start_offset(f->log, 7), 0);
    assert_int_equal(log_start_offset(f->log), 7);

    /* retention by bytes: keep at most ~4 segments' worth */
    int deleted = 0;
    f->cfg.retention_bytes = 4 * 3 * 1200;
    log_set_config(f->log, &f->cfg);
    assert_int_equal(log_enforce_retention(f->log, f->ts, &deleted), 0);
    assert_true(deleted >= 3);
    /* Kafka semantics: delete only while what remains stays >= retention.bytes */
    assert_true(log_size_bytes(f->log) >= f->cfg.retention_bytes);
    assert_true(log_size_bytes(f->log) < f->cfg.retention_bytes + 3 * 1200);
    assert_int_equal(log_start_offset(f->log), 30 - 3 * log_segment_count(f->log));

    /* retention by time: timestamps were f->ts at append (10 ms apart per batch) */
    f->cfg.retention_bytes = -1;
    f->cfg.retention_ms = 1000;
    log_set_config(f->log, &f->cfg);
    assert_int_equal(log_enforce_retention(f->log, f->ts + 500, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(log_enforce_retention(f->log, f->ts + 100000, &deleted), 0);
    assert_int_equal(log_segment_count(f->log), 1); /* never the active segment */
    assert_int_equal(log_start_offset(f->log), 27);
    /* delete_records up to the end; then the log start survives a restart beyond it */
    assert_int_equal(log_delete_records(f->log, 30), 0);
    assert_int_equal(log_read(f->log, 30, 100, INT64_MAX, &r), 0);
    assert_int_equal(r.len, 0);
    log_close(f->log);
    assert_int_equal(log_open(f->dir, &f->cfg, 30, &f->log), 0);
    assert_int_equal(log_set_start_offset(f->log, 40), 0); /* checkpoint beyond the end */
    assert_int_equal(log_start_offset(f->log), 40);
    assert_int_equal(log_end_offset(f->log), 40);
    f->ts += 1;
    assert_int_equal(th_append(f->log, 1, f->ts, 10, 0, f->ts), 40);
}

static void test_checkpoint_files(void **state)
{
    struct fixture *f = *state;
    char *p = th_path(f->root, "recovery-point-offset-checkpoint");
    struct ckpt_entry in[3] = {{"orders", 0, 42}, {"orders", 11, 7}, {"a-b.c_d", 3, 0}};
    assert_int_equal(ckpt_write(p, in, 3), 0);
    FILE *fp = fopen(p, "r");
    char text[256] = {0};
    assert_true(fread(text, 1, sizeof(text) - 1, fp) > 0);
    fclose(fp);
    assert_string_equal(text, "0\n3\norders 0 42\norders 11 7\na-b.c_d 3 0\n");
    struct ckpt_entry *out;
    size_t n;
    assert_int_equal(ckpt_read(p, &out, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(out[i].topic, in[i].topic);
        assert_int_equal(out[i].partition, in[i].partition);
        assert_int_equal(out[i].offset, in[i].offset);
    }
    ckpt_free_entries(out, n);
    fp = fopen(p, "w");
    fputs("0\n2\norders 0 1\n", fp);
    fclose(fp);
    assert_int_equal(ckpt_read(p, &out, &n), STORAGE_ERR_CORRUPT);
    unlink(p);
    assert_int_equal(ckpt_read(p, &out, &n), 0);
    assert_int_equal(n, 0);
    free(p);
}

static void test_delete_dir(void **state)
{
    struct fixture *f = *state;
    append_n(f, 3, 10, 0);
    log_close(f->log);
    f->log = NULL;
    assert_int_equal(log_delete_dir(f->dir), 0);
    struct stat st;
    assert_int_not_equal(stat(f->dir, &st), 0);
    /* In two steps (the server removes on a helper thread): the name is free at once,
     * the renamed directory holds the files until it is removed. */
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &f->log), 0);
    append_n(f, 3, 10, 0);
    log_close(f->log);
    f->log = NULL;
    char *renamed = NULL;
    assert_int_equal(log_rename_for_delete(f->dir, &renamed), 0);
    assert_int_not_equal(stat(f->dir, &st), 0);
    assert_int_equal(stat(renamed, &st), 0);
    assert_non_null(strstr(renamed, "-delete"));
    /* A big file is shrunk step by step before it goes (sparse here: no disk used). */
    char *big = th_path(renamed, "00000000000000000099.log");
    int fd = open(big, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 100 << 20), 0);
    close(fd);
    free(big);
    assert_int_equal(log_remove_renamed(renamed), 0);
    assert_int_not_equal(stat(renamed, &st), 0);
    free(renamed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_inside_batch_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_by_size_and_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_after_roll_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_append_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_for_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_to, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_records_and_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
