/* Idempotent producers at the log level: log_append's checks, and the producer state
 * surviving a clean restart, a crash (with and without a flush), truncation, rolls and
 * a corrupt snapshot (producer_snapshots.c). */
#include <dirent.h>

#include "helpers.h"

/* One batch of n records from producer pid/epoch starting at sequence seq. */
static void idem_batch(struct buf *b, int n, int64_t pid, int16_t epoch, int32_t seq)
{
    size_t start = th_batch(b, n, 1000, 100, (uint8_t)seq);
    uint8_t *p = b->data + start;
    be64_write(p + BATCH_OFF_PRODUCER_ID, (uint64_t)pid);
    be16_write(p + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)epoch);
    be32_write(p + BATCH_OFF_BASE_SEQUENCE, (uint32_t)seq);
    size_t len = b->len - start;
    be32_write(p + BATCH_OFF_CRC, crc32c(0, p + BATCH_OFF_ATTRIBUTES, len - BATCH_OFF_ATTRIBUTES));
}

/* Appends one idempotent batch; returns log_append's code, *base the offset it reports. */
static int idem_append(struct log *l, int n, int64_t pid, int16_t epoch, int32_t seq, int64_t *base)
{
    struct buf b;
    buf_init(&b);
    idem_batch(&b, n, pid, epoch, seq);
    struct log_append_result r = {.base_offset = -1};
    int rc = log_append(l, b.data, b.len, 0, 5000, &r);
    if (base)
        *base = r.base_offset;
    buf_free(&b);
    return rc;
}

#define MAX_FILES 64
typedef char file_name[64];

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Names of the files in dir ending in suffix, sorted (offset order for ours). */
static size_t files_ending(const char *dir, const char *suffix, file_name *names)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0, slen = strlen(suffix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > slen && len < sizeof(file_name) && strcmp(de->d_name + len - slen, suffix) == 0) {
            assert_true(n < MAX_FILES);
            memcpy(names[n++], de->d_name, len + 1); /* len < sizeof(file_name) */
        }
    }
    closedir(d);
    qsort(names, n, sizeof(file_name), cmp_name);
    return n;
}

static size_t count_snapshots(const char *dir)
{
    file_name names[MAX_FILES];
    return files_ending(dir, ".snapshot", names);
}

/* Overwrites byte `at` of dir/name with `byte`. */
static void damage_file(const char *dir, const char *name, long at, int byte)
{
    char *p = th_path(dir, name);
    FILE *fp = fopen(p, "r+b");
    assert_non_null(fp);
    fseek(fp, at, SEEK_SET);
    fputc(byte, fp);
    fclose(fp);
    free(p);
}

static void flush_now(struct log *l)
{
    struct log_flush_job job = {0};
    assert_int_equal(log_flush_prepare(l, &job), 0);
    log_flush_execute(&job);
    assert_int_equal(log_flush_complete(l, &job), 0);
}

/* Each test: a fresh partition directory and a small-segment config. */
struct fx {
    char *root, *dir;
    struct log_config cfg;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->root = th_tmpdir(&f->dir);
    th_small_cfg(&f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    th_rmrf(f->root);
    free(f->root);
    free(f->dir);
    free(f);
    return 0;
}

static void test_checks_on_append(void **state)
{
    struct fx *f = *state;
    const char *dir = f->dir;
    struct log_config cfg = f->cfg;
    struct log *l;
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    int64_t base;
    assert_int_equal(idem_append(l, 3, 7, 0, 0, &base), 0); /* seq 0..2 at 0..2 */
    assert_int_equal(base, 0);
    assert_int_equal(idem_append(l, 2, 7, 0, 3, &base), 0); /* seq 3..4 at 3..4 */
    assert_int_equal(base, 3);
    assert_int_equal(log_producer_count(l), 1);
    /* A retry of either batch: nothing written, the stored offsets reported. */
    assert_int_equal(idem_append(l, 3, 7, 0, 0, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 0);
    assert_int_equal(idem_append(l, 2, 7, 0, 3, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 3);
    assert_int_equal(log_end_offset(l), 5);
    /* A gap, an older epoch, a new epoch not at 0: refused, nothing written. */
    assert_int_equal(idem_append(l, 1, 7, 0, 9, NULL), STORAGE_ERR_OUT_OF_ORDER_SEQUENCE);
    assert_int_equal(idem_append(l, 1, 7, 1, 4, NULL), STORAGE_ERR_OUT_OF_ORDER_SEQUENCE);
    assert_int_equal(log_end_offset(l), 5);
    /* A new epoch from 0 is accepted; the old epoch is then fenced. */
    assert_int_equal(idem_append(l, 1, 7, 1, 0, &base), 0);
    assert_int_equal(base, 5);
    assert_int_equal(idem_append(l, 1, 7, 0, 5, NULL), STORAGE_ERR_INVALID_PRODUCER_EPOCH);
    /* Batches without a producer id are never checked. */
    th_append(l, 1, 1000, 10, 0, 5000);
    th_append(l, 1, 1000, 10, 0, 5000);
    /* Two batches of one producer in one append must continue each other. */
    struct buf b;
    buf_init(&b);
    idem_batch(&b, 1, 9, 0, 0);
    idem_batch(&b, 1, 9, 0, 2); /* skips sequence 1 */
    assert_int_equal(log_append(l, b.data, b.len, 0, 5000, NULL),
                     STORAGE_ERR_OUT_OF_ORDER_SEQUENCE);
    buf_free(&b);
    buf_init(&b);
    idem_batch(&b, 1, 9, 0, 0);
    idem_batch(&b, 1, 9, 0, 1);
    assert_int_equal(log_append(l, b.data, b.len, 0, 5000, NULL), 0);
    buf_free(&b);
    assert_int_equal(idem_append(l, 1, 9, 0, 1, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 9);
    log_close(l);
}

/* A log that never saw a producer id writes no snapshot, so opening it never replays. */
static void test_no_producers_no_snapshot(void **state)
{
    struct fx *f = *state;
    const char *dir = f->dir;
    struct log_config cfg = f->cfg;
    cfg.segment_bytes = 4096;
    struct log *l;
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    for (int i = 0; i < 10; i++)
        th_append(l, 5, 1000, 100, 0, 5000); /* rolls */
    flush_now(l);
    log_close(l);
    assert_int_equal(count_snapshots(dir), 0);
}

static void test_clean_restart_keeps_state(void **state)
{
    struct fx *f = *state;
    const char *dir = f->dir;
    struct log_config cfg = f->cfg;
    struct log *l;
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    assert_int_equal(idem_append(l, 2, 42, 3, 0, NULL), 0);
    assert_int_equal(idem_append(l, 2, 42, 3, 2, NULL), 0);
    int64_t end = log_end_offset(l);
    log_close(l);
    char name[64];
    snprintf(name, sizeof name, "%020lld.snapshot", (long long)end);
    char *snap = th_path(dir, name);
    assert_true(th_file_size(snap) > 0); /* written at close, at the log end */
    free(snap);
    assert_int_equal(log_open(dir, &cfg, end, &l), 0);
    assert_int_equal(log_producer_count(l), 1);
    int64_t base;
    assert_int_equal(idem_append(l, 2, 42, 3, 2, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 2);
    assert_int_equal(idem_append(l, 1, 42, 3, 5, NULL), STORAGE_ERR_OUT_OF_ORDER_SEQUENCE);
    assert_int_equal(idem_append(l, 1, 42, 3, 4, NULL), 0);
    log_close(l);
}

/* kill -9 after a flush: the flush synced the first snapshot with the data; the batches
 * after it are replayed from the log at open. */
static void test_crash_after_flush_replays(void **state)
{
    struct fx *f = *state;
    const char *dir = f->dir;
    struct log_config cfg = f->cfg;
    struct log *l;
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    th_append(l, 3, 1000, 10, 0, 5000);                    /* offsets 0..2, no producer */
    assert_int_equal(idem_append(l, 2, 5, 0, 0, NULL), 0); /* 3..4 */
    struct log_flush_job job = {0};
    assert_int_equal(log_flush_prepare(l, &job), 0);
    assert_int_equal(job.snapshot_offset, 3); /* the marker, before the first batch */
    log_flush_execute(&job);
    assert_int_equal(log_flush_complete(l, &job), 0);
    assert_int_equal(log_flush_prepare(l, &job), 0);
    assert_int_equal(job.snapshot_offset, -1); /* synced once */
    log_flush_abandon(&job);
    assert_int_equal(idem_append(l, 2, 5, 0, 2, NULL), 0); /* 5..6, synced below */
    flush_now(l);
    int64_t rp = log_durable_offset(l);
    assert_int_equal(rp, 7);
    log_discard(l); /* no close: no snapshot at the end */
    assert_int_equal(log_open(dir, &cfg, rp, &l), 0);
    int64_t base;
    assert_int_equal(idem_append(l, 2, 5, 0, 2, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 5);
    assert_int_equal(idem_append(l, 2, 5, 0, 0, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 3);
    log_close(l);
}

/* kill -9 with nothing flushed (recovery point unknown): recovery keeps what is in the
 * files, and the producer state is replayed from them. */
static void test_crash_without_flush_replays(void **state)
{
    struct fx *f = *state;
    const char *dir = f->dir;
    struct log_config cfg = f->cfg;
    struct log *l;
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    assert_int_equal(idem_append(l, 4, 11, 0, 0, NULL), 0);
    assert_int_equal(idem_append(l, 4, 11, 0, 4, NULL), 0);
    log_discard(l);
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    assert_int_equal(log_end_offset(l), 8);
    int64_t base;
    assert_int_equal(idem_append(l, 4, 11, 0, 4, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 4);
    log_close(l);
}

/* Rolls write snapshots and keep at most three; a corrupt newest one falls back to an
 * older one plus a longer replay. */
static void test_rolls_and_corrupt_snapshot(void **state)
{
    struct fx *f = *state;
    const char *dir = f->dir;
    struct log_config cfg = f->cfg;
    cfg.segment_bytes = 2048; /* ~5 batches of 3 x 100 B per segment */
    struct log *l;
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    for (int32_t i = 0; i < 40; i++)
        assert_int_equal(idem_append(l, 3, 77, 0, 3 * i, NULL), 0);
    assert_true(log_segment_count(l) > 5);
    assert_true(count_snapshots(dir) <= 3);
    assert_true(count_snapshots(dir) >= 1);
    flush_now(l);
    int64_t rp = log_durable_offset(l);
    log_discard(l);
    file_name snaps[MAX_FILES];
    size_t n = files_ending(dir, ".snapshot", snaps);
    damage_file(dir, snaps[n - 1], 8, 0x5a); /* the newest */
    assert_int_equal(log_open(dir, &cfg, rp, &l), 0);
    int64_t base;
    assert_int_equal(idem_append(l, 3, 77, 0, 3 * 39, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 3 * 39);
    assert_int_equal(idem_append(l, 3, 77, 0, 3 * 40, NULL), 0);
    log_close(l);
}

/* Every snapshot unreadable, so the state is replayed from the log start, and the
 * replay meets a damaged batch header inside a sealed segment (which a clean load does
 * not read): the partition still opens, with the state read up to there. */
static void test_damaged_log_still_opens(void **state)
{
    struct fx *f = *state;
    struct log_config cfg = f->cfg;
    cfg.segment_bytes = 2048;
    struct log *l;
    assert_int_equal(log_open(f->dir, &cfg, -1, &l), 0);
    for (int32_t i = 0; i < 20; i++)
        assert_int_equal(idem_append(l, 3, 5, 0, 3 * i, NULL), 0);
    int64_t end = log_end_offset(l);
    log_close(l);
    file_name snaps[MAX_FILES];
    for (size_t i = 0, n = files_ending(f->dir, ".snapshot", snaps); i < n; i++)
        damage_file(f->dir, snaps[i], 8, 0x33);
    char *seg = th_path(f->dir, "00000000000000000000.log");
    FILE *s = fopen(seg, "r+b");
    assert_non_null(s);
    /* The second batch: before the first index entry, so a clean load reads past it. */
    uint8_t len[4];
    fseek(s, BATCH_OFF_LENGTH, SEEK_SET);
    assert_int_equal(fread(len, 1, 4, s), 4);
    long second = (long)be32_read(len) + BATCH_LOG_OVERHEAD;
    fseek(s, second + BATCH_OFF_MAGIC, SEEK_SET);
    fputc(7, s); /* a bad magic */
    fclose(s);
    free(seg);
    assert_int_equal(log_open(f->dir, &cfg, end, &l), 0);
    assert_int_equal(log_end_offset(l), end);
    log_close(l);
}

/* A power loss after acks=1 traffic rolled past the last flush (found by review): the
 * durable marker was pruned by the rolls, the newer snapshots describe offsets the
 * recovered log no longer has, so every snapshot is gone at open. The log had
 * producers, so the state is replayed from the log start, not only from the recovery
 * point: the acknowledged batch's retry is still recognised. */
static void test_power_loss_after_pruned_snapshots(void **state)
{
    struct fx *f = *state;
    struct log_config cfg = f->cfg;
    cfg.segment_bytes = 4096;
    struct log *l;
    assert_int_equal(log_open(f->dir, &cfg, -1, &l), 0);
    assert_int_equal(idem_append(l, 3, 7, 0, 0, NULL), 0); /* G: offsets 0..2 */
    flush_now(l); /* acknowledged with acks=all: G and the marker durable */
    int64_t recovery_point = log_durable_offset(l);
    char *seg0 = th_path(f->dir, "00000000000000000000.log");
    off_t g_bytes = th_file_size(seg0);
    for (int i = 0; i < 40; i++) /* acks=1 traffic, never flushed: rolls, prunes */
        th_append(l, 5, 1000, 100, 0, 5000);
    assert_true(log_segment_count(l) > 4);
    log_discard(l);
    /* The power loss: directory changes reached the disk (the journal), the unflushed
     * data did not: the first segment ends after G, the later ones read as zeros. */
    assert_int_equal(truncate(seg0, g_bytes), 0);
    free(seg0);
    file_name segs[MAX_FILES];
    for (size_t i = 1, n = files_ending(f->dir, ".log", segs); i < n; i++) {
        char *p = th_path(f->dir, segs[i]);
        off_t size = th_file_size(p);
        assert_int_equal(truncate(p, 0), 0);
        assert_int_equal(truncate(p, size), 0);
        free(p);
    }
    assert_int_equal(log_open(f->dir, &cfg, recovery_point, &l), 0);
    int64_t base;
    assert_int_equal(idem_append(l, 3, 7, 0, 0, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 0);
    log_close(l);
}

/* A flush job prepared with pending snapshot X completes after a truncation deleted X
 * and a roll wrote a new X (found by review): the new file is still pending. */
static void test_rewritten_snapshot_stays_pending(void **state)
{
    struct fx *f = *state;
    struct log_config cfg = f->cfg;
    cfg.segment_bytes = 4096;
    struct log *l;
    assert_int_equal(log_open(f->dir, &cfg, -1, &l), 0);
    assert_int_equal(idem_append(l, 3, 7, 0, 0, NULL), 0);
    int64_t x = -1;
    for (;;) { /* until the first roll writes a snapshot at the new segment's base */
        int64_t b = th_append(l, 5, 1000, 100, 0, 5000);
        struct log_flush_job j = {0};
        assert_int_equal(log_flush_prepare(l, &j), 0);
        int64_t so = j.snapshot_offset;
        log_flush_abandon(&j);
        if (so > 0) {
            x = b;
            break;
        }
    }
    struct log_flush_job j1 = {0};
    assert_int_equal(log_flush_prepare(l, &j1), 0);
    assert_int_equal(j1.snapshot_offset, x);
    assert_int_equal(log_truncate_to(l, x - 5), 0); /* deletes segment and snapshot X */
    th_append(l, 5, 1000, 100, 0, 5000);
    assert_int_equal(th_append(l, 5, 1000, 100, 0, 5000), x); /* rolls at X again */
    log_flush_execute(&j1);
    assert_int_equal(log_flush_complete(l, &j1), 0);
    struct log_flush_job j2 = {0};
    assert_int_equal(log_flush_prepare(l, &j2), 0);
    assert_int_equal(j2.snapshot_offset, x);
    log_flush_abandon(&j2);
    log_close(l);
}

/* Truncation below a producer's batches forgets them: re-sending is a new append. */
static void test_truncation_rebuilds(void **state)
{
    struct fx *f = *state;
    const char *dir = f->dir;
    struct log_config cfg = f->cfg;
    struct log *l;
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    assert_int_equal(idem_append(l, 2, 3, 0, 0, NULL), 0); /* 0..1 */
    assert_int_equal(idem_append(l, 2, 3, 0, 2, NULL), 0); /* 2..3 */
    flush_now(l);
    assert_int_equal(log_truncate_to(l, 2), 0);
    assert_int_equal(log_end_offset(l), 2);
    int64_t base;
    assert_int_equal(idem_append(l, 2, 3, 0, 2, &base), 0); /* appended again */
    assert_int_equal(base, 2);
    assert_int_equal(idem_append(l, 2, 3, 0, 0, &base), STORAGE_DUPLICATE);
    assert_int_equal(base, 0);
    log_close(l);
}

static void test_expiry(void **state)
{
    struct fx *f = *state;
    const char *dir = f->dir;
    struct log_config cfg = f->cfg;
    struct log *l;
    assert_int_equal(log_open(dir, &cfg, -1, &l), 0);
    assert_int_equal(idem_append(l, 1, 1, 0, 0, NULL), 0); /* max timestamp 1000 */
    assert_int_equal(log_expire_producers(l, 1500, 1000), 0);
    assert_int_equal(log_expire_producers(l, 2500, 1000), 1);
    assert_int_equal(log_producer_count(l), 0);
    /* Forgotten: any sequence is accepted from it again, as from a new producer. */
    assert_int_equal(idem_append(l, 1, 1, 0, 9, NULL), 0);
    log_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_checks_on_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_producers_no_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_restart_keeps_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_flush_replays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_without_flush_replays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rolls_and_corrupt_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_log_still_opens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_loss_after_pruned_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewritten_snapshot_stays_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_rebuilds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
