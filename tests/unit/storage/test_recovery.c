/* Recovery at log_open: torn tails, corrupt batches, missing or garbage indexes. */
#include <fcntl.h>
#include <sys/stat.h>

#include "helpers.h"

struct fx {
    char *root, *dir;
    struct log_config cfg;
    struct log *log;
    int64_t batch_size; /* every test batch has the same size */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->root = th_tmpdir(&f->dir);
    th_small_cfg(&f->cfg);
    f->cfg.segment_bytes = 16 * 1024;
    f->cfg.index_interval_bytes = 512;
    assert_int_equal(log_open(f->dir, &f->cfg, 0, &f->log), 0);
    /* 100 batches of 2 records, ~500 bytes each: several segments */
    for (int i = 0; i < 100; i++)
        th_append(f->log, 2, 5000 + i, 200, 0, 5000 + i);
    struct log_read_result r;
    assert_int_equal(log_read(f->log, 0, 1, INT64_MAX, &r), 0);
    f->batch_size = r.len;
    log_close(f->log);
    f->log = NULL;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    log_close(f->log);
    th_rmrf(f->root);
    free(f->root);
    free(f->dir);
    free(f);
    return 0;
}

/* Name of the last segment file (highest base) with the given suffix. */
static char *last_segment(struct fx *f, const char *suffix, int64_t *base_out)
{
    int64_t best = -1;
    char name[64];
    for (int64_t b = 0; b <= 300; b++) {
        snprintf(name, sizeof(name), "%020lld.log", (long long)b);
        char *p = th_path(f->dir, name);
        if (th_file_size(p) >= 0)
            best = b;
        free(p);
    }
    *base_out = best;
    snprintf(name, sizeof(name), "%020lld%s", (long long)best, suffix);
    return th_path(f->dir, name);
}

static void check_all_readable(struct fx *f)
{
    int64_t off = log_start_offset(f->log);
    while (off < log_end_offset(f->log)) {
        struct log_read_result r;
        assert_int_equal(log_read(f->log, off, 1 << 20, INT64_MAX, &r), 0);
        assert_true(r.len > 0);
        uint8_t *p = th_pread(r.fd, r.file_pos, r.len);
        assert_int_equal(batch_validate_all(p, (size_t)r.len, true, NULL, NULL), 0);
        assert_int_equal(be64_read(p), r.first_batch_offset);
        free(p);
        off = r.next_offset;
    }
}

/* Reads every offset, skipping damaged ranges the way server_scan_partition does;
 * returns the number of STORAGE_ERR_CORRUPT answers met. */
static int read_around_damage(struct fx *f)
{
    int damaged = 0;
    int64_t off = log_start_offset(f->log);
    while (off < log_end_offset(f->log)) {
        struct log_read_result r;
        int rc = log_read(f->log, off, 1 << 20, INT64_MAX, &r);
        if (rc == STORAGE_ERR_CORRUPT) {
            damaged++;
            int64_t next = log_next_readable_offset(f->log, off);
            assert_true(next > off);
            off = next;
            continue;
        }
        assert_int_equal(rc, 0);
        assert_true(r.len > 0);
        uint8_t *p = th_pread(r.fd, r.file_pos, r.len);
        assert_int_equal(batch_validate_all(p, (size_t)r.len, true, NULL, NULL), 0);
        free(p);
        off = r.next_offset;
    }
    return damaged;
}

static void flip(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

/* After a crash with no recovery point, a last batch cut mid-way is the torn tail of
 * the last write: cut off. */
static void test_torn_tail(void **state)
{
    struct fx *f = *state;
    int64_t base;
    char *p = last_segment(f, ".log", &base);
    off_t size = th_file_size(p);
    assert_int_equal(truncate(p, size - 37), 0); /* cut the last batch mid-way */
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 198);
    assert_int_equal(th_file_size(p), size - f->batch_size);
    check_all_readable(f);
    /* appends continue at the recovered end */
    assert_int_equal(th_append(f->log, 2, 9000, 200, 0, 9000), 198);
    check_all_readable(f);
    free(p);
}

/* The same cut below the recovery point is damage to synced data, not a torn write:
 * nothing is cut, its offsets are never handed out again, appends go on after them. */
static void test_short_tail_below_recovery_point_is_kept(void **state)
{
    struct fx *f = *state;
    int64_t base;
    char *p = last_segment(f, ".log", &base);
    off_t size = th_file_size(p);
    assert_int_equal(truncate(p, size - 37), 0);
    assert_int_equal(log_open(f->dir, &f->cfg, 200, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 200);
    assert_int_equal(th_file_size(p), size - 37);
    assert_int_equal(read_around_damage(f), 1);
    assert_int_equal(th_append(f->log, 2, 9000, 200, 0, 9000), 200);
    struct log_read_result r;
    assert_int_equal(log_read(f->log, 200, 1 << 20, INT64_MAX, &r), 0);
    assert_int_equal(r.first_batch_offset, 200);
    free(p);
}

/* A bad batch in the middle of a segment, with intact ones after it, is never a torn
 * write: nothing is truncated or deleted; reads get everything but that batch. */
static void test_flipped_byte_mid_log(void **state)
{
    struct fx *f = *state;
    char *p = th_path(f->dir, "00000000000000000000.log");
    off_t size = th_file_size(p);
    int64_t segs_before;
    char *last = last_segment(f, ".log", &segs_before);
    free(last);
    flip(p, 10 * f->batch_size + 100);
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 200);
    assert_int_equal(th_file_size(p), size);
    int64_t base;
    last = last_segment(f, ".log", &base);
    assert_int_equal(base, segs_before); /* later segments kept */
    free(last);
    struct log_read_result r;
    assert_int_equal(log_read(f->log, 20, 1 << 20, INT64_MAX, &r), STORAGE_ERR_CORRUPT);
    assert_int_equal(log_next_readable_offset(f->log, 20), 22);
    assert_int_equal(read_around_damage(f), 1);
    assert_int_equal(th_append(f->log, 2, 9000, 200, 0, 9000), 200);
    free(p);
}

/* In the last segment, past the recovery point, a bad batch with an intact one after
 * it is kept too (only an incomplete final write is torn). */
static void test_flipped_byte_last_segment_clean_point(void **state)
{
    struct fx *f = *state;
    int64_t base;
    char *p = last_segment(f, ".log", &base);
    off_t size = th_file_size(p);
    int fd = open(p, O_RDWR);
    uint8_t c = 0xff;
    off_t at = size - f->batch_size - f->batch_size / 2; /* in the second-to-last batch */
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
    assert_int_equal(log_open(f->dir, &f->cfg, base + 2, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 200);
    assert_int_equal(th_file_size(p), size);
    assert_int_equal(read_around_damage(f), 1);
    free(p);
}

static void test_missing_and_garbage_index(void **state)
{
    struct fx *f = *state;
    char *idx0 = th_path(f->dir, "00000000000000000000.index");
    char *tidx0 = th_path(f->dir, "00000000000000000000.timeindex");
    off_t isz = th_file_size(idx0), tsz = th_file_size(tidx0);
    assert_true(isz > 0 && tsz > 0);
    unlink(idx0);
    /* garbage timeindex (right size, decreasing timestamps) */
    int fd = open(tidx0, O_WRONLY | O_TRUNC);
    uint8_t junk[24];
    memset(junk, 0x7f, 12);
    memset(junk + 12, 0x01, 12);
    assert_int_equal(write(fd, junk, sizeof(junk)), 24);
    close(fd);
    /* mis-sized index in the last segment */
    int64_t base;
    char *idxl = last_segment(f, ".index", &base);
    fd = open(idxl, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    assert_int_equal(log_open(f->dir, &f->cfg, 200, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 200);
    assert_int_equal(th_file_size(idx0), isz);
    assert_int_equal(th_file_size(tidx0), tsz);
    assert_int_equal(th_file_size(idxl) % 8, 0);
    check_all_readable(f);
    int64_t off, ts;
    assert_int_equal(log_offset_for_timestamp(f->log, 5050, &off, &ts), 0);
    assert_int_equal(off, 99); /* batch 49 record 1: ts 5049 + 1 */
    free(idx0);
    free(tidx0);
    free(idxl);
}

static void test_index_pointing_past_end(void **state)
{
    struct fx *f = *state;
    /* shrink a clean segment behind the index's back: index now points past the end */
    int64_t base;
    char *p = last_segment(f, ".log", &base);
    off_t size = th_file_size(p);
    assert_int_equal(truncate(p, size - 3 * f->batch_size), 0);
    assert_int_equal(log_open(f->dir, &f->cfg, 200, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 194);
    check_all_readable(f);
    free(p);
}

/* Index entries of the active segment reach the file only when it is sealed or closed.
 * After a crash (no close) the file lacks the newest ones even where the recovery point
 * says the data is clean: loading must notice and rebuild, and every lookup must work. */
static void test_active_index_lost_in_crash(void **state)
{
    struct fx *f = *state;
    assert_int_equal(log_open(f->dir, &f->cfg, 200, &f->log), 0);
    /* 12 batches (~6 KB): the last segment fills up and a new active one takes the
     * rest, more than one index interval of it */
    for (int i = 0; i < 12; i++)
        th_append(f->log, 2, 6000 + i, 200, 0, 6000 + i);
    assert_int_equal(log_end_offset(f->log), 224);
    int64_t base;
    char *idxl = last_segment(f, ".index", &base);
    assert_true(base > 200 && (224 - base) * f->batch_size / 2 > 2 * f->cfg.index_interval_bytes);
    off_t before = th_file_size(idxl);
    assert_int_equal(before, 0); /* its entries are only in memory */
    log_discard(f->log);         /* the process dies: nothing written at close */
    f->log = NULL;
    assert_int_equal(log_open(f->dir, &f->cfg, 224, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 224);
    check_all_readable(f);
    for (int64_t off = base; off < 224; off++) {
        struct log_read_result r;
        assert_int_equal(log_read(f->log, off, 1, INT64_MAX, &r), 0);
        assert_int_equal(r.first_batch_offset, off / 2 * 2);
    }
    int64_t off, ts;
    assert_int_equal(log_offset_for_timestamp(f->log, 6011, &off, &ts), 0);
    assert_int_equal(off, 221); /* batch 10 record 1: ts 6010 + 1 */
    /* a clean close writes the rebuilt entries */
    log_close(f->log);
    f->log = NULL;
    assert_true(th_file_size(idxl) > before);
    free(idxl);
}

/* After a clean shutdown (recovery point = log end) nothing is rescanned or rewritten:
 * start-up with thousands of partitions must not fsync anything per partition. A
 * recovery would rewrite the leader-epoch checkpoint; its inode must stay the same. */
static void test_clean_reopen_rewrites_nothing(void **state)
{
    struct fx *f = *state;
    char *epochs = th_path(f->dir, "leader-epoch-checkpoint");
    assert_int_equal(log_open(f->dir, &f->cfg, 200, &f->log), 0);
    log_close(f->log); /* writes the file once if it did not exist */
    f->log = NULL;
    struct stat before, after;
    assert_int_equal(stat(epochs, &before), 0);
    assert_int_equal(log_open(f->dir, &f->cfg, 200, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 200);
    check_all_readable(f);
    assert_int_equal(stat(epochs, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    /* with the recovery point before the end, the last segment is scanned again */
    log_close(f->log);
    f->log = NULL;
    assert_int_equal(log_open(f->dir, &f->cfg, 199, &f->log), 0);
    assert_int_equal(log_end_offset(f->log), 200);
    assert_int_equal(stat(epochs, &after), 0);
    assert_true(after.st_ino != before.st_ino);
    free(epochs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_short_tail_below_recovery_point_is_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_mid_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_last_segment_clean_point, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_garbage_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_pointing_past_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_index_lost_in_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_reopen_rewrites_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
