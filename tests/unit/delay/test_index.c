/* Unit tests for the due-time index (delay.h): buckets, scans of a time range, more
 * buckets than open files, dropping delivered buckets, the checkpoint across a reopen,
 * and torn or damaged entries counted, not handed out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delay/delay.h"

#define BUCKET 1000

struct fixture {
    char dir[64];
    char idx[96];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/samsa-delay-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->idx, sizeof f->idx, "%s/due", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

struct seen {
    int64_t due[4096], offset[4096];
    size_t n;
};

static void keep(void *arg, int64_t due, int64_t offset)
{
    struct seen *s = arg;
    assert_true(s->n < 4096);
    s->due[s->n] = due;
    s->offset[s->n++] = offset;
}

static size_t scan(struct delay_index *ix, int64_t from, int64_t to, struct seen *s,
                   size_t *damaged)
{
    s->n = 0;
    assert_int_equal(delay_index_scan(ix, from, to, keep, s, damaged), 0);
    return s->n;
}

static bool has(const struct seen *s, int64_t due, int64_t offset)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->due[i] == due && s->offset[i] == offset)
            return true;
    return false;
}

static void test_scan_by_time_range(void **state)
{
    struct fixture *f = *state;
    struct delay_index *ix = NULL;
    assert_int_equal(delay_index_open(f->idx, BUCKET, &ix), 0);
    size_t damaged;
    struct seen s;
    /* 40 buckets: more than the files kept open for appends. */
    for (int64_t off = 0; off < 400; off++)
        assert_int_equal(delay_index_add(ix, (off * 7919) % 40000, off), 0);
    assert_int_equal(delay_index_add(ix, -1500, 400), 0); /* before 1970: bucket -2000 */
    assert_int_equal(scan(ix, INT64_MIN, INT64_MAX, &s, &damaged), 401);
    assert_int_equal(damaged, 0);
    size_t n = scan(ix, 12000, 15500, &s, &damaged);
    size_t want = 0;
    for (int64_t off = 0; off < 400; off++) {
        int64_t due = (off * 7919) % 40000;
        if (due >= 12000 && due < 15500) {
            want++;
            assert_true(has(&s, due, off));
        }
    }
    assert_int_equal(n, want);
    assert_int_equal(scan(ix, -2000, -1000, &s, &damaged), 1);
    assert_true(has(&s, -1500, 400));
    assert_int_equal(delay_index_next_bucket(ix, -5000), -2000);
    assert_int_equal(delay_index_next_bucket(ix, 12345), 12000);
    assert_int_equal(delay_index_next_bucket(ix, 50000), INT64_MAX);
    /* Delivered buckets go; a bucket that ends after before_ms stays. */
    assert_int_equal(delay_index_drop_before(ix, 20500), 0);
    assert_int_equal(delay_index_next_bucket(ix, INT64_MIN), 20000);
    n = scan(ix, INT64_MIN, INT64_MAX, &s, &damaged);
    for (size_t i = 0; i < n; i++)
        assert_true(s.due[i] >= 20000);
    delay_index_close(ix);
    /* Reopened, the buckets are found again. */
    assert_int_equal(delay_index_open(f->idx, BUCKET, &ix), 0);
    assert_int_equal(scan(ix, INT64_MIN, INT64_MAX, &s, &damaged), n);
    assert_int_equal(delay_index_next_bucket(ix, INT64_MIN), 20000);
    delay_index_close(ix);
}

static void test_checkpoint_survives_reopen(void **state)
{
    struct fixture *f = *state;
    struct delay_index *ix = NULL;
    assert_int_equal(delay_index_open(f->idx, BUCKET, &ix), 0);
    assert_int_equal(delay_index_covered(ix), 0);
    assert_int_equal(delay_index_add(ix, 100, 0), 0);
    assert_int_equal(delay_index_checkpoint(ix, 1), 0);
    assert_int_equal(delay_index_add(ix, 2100, 1), 0);
    assert_int_equal(delay_index_checkpoint(ix, 2), 0);
    assert_int_equal(delay_index_covered(ix), 2);
    delay_index_close(ix);
    assert_int_equal(delay_index_open(f->idx, BUCKET, &ix), 0);
    assert_int_equal(delay_index_covered(ix), 2);
    delay_index_close(ix);
    /* A checkpoint file that does not read back counts as none. */
    char path[160];
    snprintf(path, sizeof path, "%s/covered", f->idx);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("garbage\n", fp);
    fclose(fp);
    assert_int_equal(delay_index_open(f->idx, BUCKET, &ix), 0);
    assert_int_equal(delay_index_covered(ix), 0);
    delay_index_close(ix);
}

static void append_raw(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void test_torn_and_damaged_entries(void **state)
{
    struct fixture *f = *state;
    struct delay_index *ix = NULL;
    assert_int_equal(delay_index_open(f->idx, BUCKET, &ix), 0);
    for (int64_t off = 0; off < 10; off++)
        assert_int_equal(delay_index_add(ix, 3000 + off, off), 0);
    char path[160];
    snprintf(path, sizeof path, "%s/3000.due", f->idx);
    append_raw(path, "\0\0\0\0\0\0\x0b\xb8\0\0", 10); /* a torn entry */
    size_t damaged;
    struct seen s;
    assert_int_equal(scan(ix, 0, 10000, &s, &damaged), 10);
    assert_int_equal(damaged, 1);
    /* A flipped bit in the 4th entry: skipped, counted. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, 3 * 24 + 15), 1);
    b ^= 1;
    assert_int_equal(pwrite(fd, &b, 1, 3 * 24 + 15), 1);
    close(fd);
    assert_int_equal(scan(ix, 0, 10000, &s, &damaged), 9);
    assert_int_equal(damaged, 2);
    assert_false(has(&s, 3003, 3));
    delay_index_close(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_by_time_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_and_damaged_entries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
