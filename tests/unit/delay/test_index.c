/* Unit tests for the due-time index (delay.h): buckets, scans of a time range, more
 * buckets than open files, more entries than the write buffer, dropping taken buckets
 * (written or not yet), a reopen starting empty, and torn or damaged entries counted, not
 * handed out. */
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

#define SEEN_MAX 40000

struct seen {
    int64_t due[SEEN_MAX], offset[SEEN_MAX];
    uint32_t tag[SEEN_MAX];
    size_t n;
};

static void keep(void *arg, int64_t due, int64_t offset, uint32_t tag)
{
    struct seen *s = arg;
    assert_true(s->n < SEEN_MAX);
    s->due[s->n] = due;
    s->tag[s->n] = tag;
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
    static struct seen s;
    /* 40 buckets: more than the files kept open for appends. */
    for (int64_t off = 0; off < 400; off++)
        assert_int_equal(delay_index_add(ix, (off * 7919) % 40000, off, (uint32_t)off * 3), 0);
    assert_int_equal(delay_index_add(ix, -1500, 400, 0), 0); /* before 1970: bucket -2000 */
    assert_int_equal(scan(ix, INT64_MIN, INT64_MAX, &s, &damaged), 401);
    assert_int_equal(damaged, 0);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(s.tag[i], s.offset[i] == 400 ? 0 : (uint32_t)s.offset[i] * 3);
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
    want = 0;
    for (int64_t off = 0; off < 400; off++)
        want += (off * 7919) % 40000 >= 20000;
    assert_int_equal(n, want);
    for (size_t i = 0; i < n; i++)
        assert_true(s.due[i] >= 20000);
    delay_index_close(ix);
}

static size_t due_files(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '\\.due$'", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return (size_t)n;
}

static void test_buffered_entries_and_a_fresh_reopen(void **state)
{
    struct fixture *f = *state;
    struct delay_index *ix = NULL;
    static struct seen s;
    size_t damaged;
    assert_int_equal(delay_index_open(f->idx, BUCKET, &ix), 0);
    /* Buckets of entries not written yet count. */
    assert_int_equal(delay_index_add(ix, 9500, 1, 0), 0);
    assert_int_equal(delay_index_next_bucket(ix, 0), 9000);
    assert_int_equal(delay_index_add(ix, 2500, 2, 0), 0);
    assert_int_equal(delay_index_next_bucket(ix, 0), 2000);
    assert_int_equal(delay_index_next_bucket(ix, 5000), 9000);
    assert_int_equal(delay_index_next_bucket(ix, 9999), 9000);
    assert_int_equal(delay_index_next_bucket(ix, 10000), INT64_MAX);
    assert_int_equal(due_files(f->idx), 0);
    assert_int_equal(delay_index_drop_before(ix, INT64_MAX), 0);
    assert_int_equal(delay_index_next_bucket(ix, INT64_MIN), INT64_MAX);
    /* More than the write buffer holds, over three buckets. */
    for (int64_t off = 0; off < 30000; off++)
        assert_int_equal(delay_index_add(ix, 5000 + (off % 3) * BUCKET, off, (uint32_t)(off % 7)),
                         0);
    assert_int_equal(scan(ix, 6000, 7000, &s, &damaged), 10000);
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.offset[i] % 3, 1);
        assert_int_equal(s.tag[i], (uint32_t)(s.offset[i] % 7));
    }
    /* Entries not written yet of a dropped bucket go with it. */
    assert_int_equal(delay_index_add(ix, 5500, 30000, 0), 0);
    assert_int_equal(delay_index_add(ix, 7500, 30001, 0), 0);
    assert_int_equal(delay_index_drop_before(ix, 7000), 0);
    assert_int_equal(scan(ix, INT64_MIN, INT64_MAX, &s, &damaged), 10001);
    assert_int_equal(delay_index_next_bucket(ix, INT64_MIN), 7000);
    assert_int_equal(due_files(f->idx), 1);
    delay_index_close(ix);
    /* Reopened, the index is empty again and the old files are gone. */
    assert_int_equal(delay_index_open(f->idx, BUCKET, &ix), 0);
    assert_int_equal(due_files(f->idx), 0);
    assert_int_equal(scan(ix, INT64_MIN, INT64_MAX, &s, &damaged), 0);
    assert_int_equal(delay_index_next_bucket(ix, INT64_MIN), INT64_MAX);
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
        assert_int_equal(delay_index_add(ix, 3000 + off, off, 1), 0);
    size_t damaged;
    static struct seen s;
    assert_int_equal(scan(ix, 0, 10000, &s, &damaged), 10); /* written out */
    char path[160];
    snprintf(path, sizeof path, "%s/3000.due", f->idx);
    append_raw(path, "\0\0\0\0\0\0\x0b\xb8\0\0", 10); /* a torn entry */
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
        cmocka_unit_test_setup_teardown(test_buffered_entries_and_a_fresh_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_and_damaged_entries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
