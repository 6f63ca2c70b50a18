/* Transactions at the log level: transactional batches open a transaction, markers end
 * it; the first unstable offset; the aborted-transaction index (.txnindex) across rolls,
 * clean and unclean restarts, lost index files, truncation and retention; the checks a
 * marker and a batch inside a transaction get (txn_index.c, producer_snapshots.c). */
#include <dirent.h>

#include "helpers.h"

/* One batch of n records from producer pid/epoch at sequence seq, transactional or not. */
static void txn_batch(struct buf *b, int n, int64_t pid, int16_t epoch, int32_t seq, bool txn)
{
    size_t start = th_batch(b, n, 1000, 50, (uint8_t)seq);
    uint8_t *p = b->data + start;
    be16_write(p + BATCH_OFF_ATTRIBUTES, txn ? BATCH_ATTR_TRANSACTIONAL : 0);
    be64_write(p + BATCH_OFF_PRODUCER_ID, (uint64_t)pid);
    be16_write(p + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)epoch);
    be32_write(p + BATCH_OFF_BASE_SEQUENCE, (uint32_t)seq);
    size_t len = b->len - start;
    be32_write(p + BATCH_OFF_CRC, crc32c(0, p + BATCH_OFF_ATTRIBUTES, len - BATCH_OFF_ATTRIBUTES));
}

static int append_txn(struct log *l, int n, int64_t pid, int16_t epoch, int32_t seq, bool txn,
                      int64_t *base)
{
    struct buf b;
    buf_init(&b);
    txn_batch(&b, n, pid, epoch, seq, txn);
    struct log_append_result r = {.base_offset = -1};
    int rc = log_append(l, b.data, b.len, 0, 5000, &r);
    if (base)
        *base = r.base_offset;
    buf_free(&b);
    return rc;
}

static int append_marker(struct log *l, int64_t pid, int16_t epoch, enum txn_marker_type type,
                         int32_t coordinator_epoch, int64_t *offset)
{
    struct buf b;
    buf_init(&b);
    batch_encode_marker(&b, pid, epoch, type, coordinator_epoch, 6000);
    assert_int_equal(batch_validate_all(b.data, b.len, true, NULL, NULL), 0);
    struct log_append_result r = {.base_offset = -1};
    int rc = log_append(l, b.data, b.len, 0, 6000, &r);
    if (offset)
        *offset = r.base_offset;
    buf_free(&b);
    return rc;
}

/* The aborted transactions a read from `from` to the log end must skip. */
static size_t aborted(struct log *l, int64_t from, struct pstate_txn *out)
{
    return log_aborted_txns(l, from, log_end_offset(l), out, 16);
}

static void flush_now(struct log *l)
{
    struct log_flush_job job = {0};
    assert_int_equal(log_flush_prepare(l, &job), 0);
    log_flush_execute(&job);
    assert_int_equal(log_flush_complete(l, &job), 0);
}

static void remove_files_ending(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    size_t slen = strlen(suffix);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > slen && strcmp(de->d_name + len - slen, suffix) == 0) {
            char *p = th_path(dir, de->d_name);
            assert_int_equal(unlink(p), 0);
            free(p);
        }
    }
    closedir(d);
}

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

static void test_marker_round_trip(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    batch_encode_marker(&b, 77, 3, TXN_MARKER_COMMIT, 9, 1234);
    struct batch_info info;
    assert_int_equal(batch_validate(b.data, b.len, &info), 0);
    assert_int_equal(info.attributes, BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL);
    assert_int_equal(info.producer_id, 77);
    assert_int_equal(info.producer_epoch, 3);
    assert_int_equal(info.base_sequence, -1);
    assert_int_equal(info.records_count, 1);
    enum txn_marker_type type;
    int32_t coordinator_epoch;
    assert_int_equal(batch_parse_marker(b.data, &info, &type, &coordinator_epoch), 0);
    assert_int_equal(type, TXN_MARKER_COMMIT);
    assert_int_equal(coordinator_epoch, 9);
    /* A data batch is not a marker. */
    struct buf d;
    buf_init(&d);
    txn_batch(&d, 1, 77, 3, 0, true);
    assert_int_equal(batch_validate(d.data, d.len, &info), 0);
    assert_int_equal(batch_parse_marker(d.data, &info, &type, &coordinator_epoch),
                     STORAGE_ERR_CORRUPT);
    buf_free(&d);
    buf_free(&b);
}

/* Open transactions hold the first unstable offset; markers release it; aborts are
 * indexed with Kafka's last stable offset. */
static void test_lso_and_aborted_index(void **state)
{
    struct fx *f = *state;
    struct log *l;
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &l), 0);
    th_append(l, 2, 1000, 10, 0, 5000); /* 0..1, plain */
    assert_int_equal(log_first_unstable_offset(l), -1);
    int64_t base, m;
    assert_int_equal(append_txn(l, 3, 5, 0, 0, true, &base), 0); /* 2..4: pid 5 opens */
    assert_int_equal(base, 2);
    assert_int_equal(append_txn(l, 2, 6, 0, 0, true, &base), 0); /* 5..6: pid 6 opens */
    assert_int_equal(append_txn(l, 1, 5, 0, 3, true, &base), 0); /* 7: pid 5 goes on */
    assert_int_equal(log_first_unstable_offset(l), 2);
    struct pstate_txn open[4];
    assert_int_equal(log_open_txns(l, open, 4), 2);
    assert_int_equal(open[0].producer_id, 5);
    assert_int_equal(open[0].first_offset, 2);
    assert_int_equal(open[1].producer_id, 6);

    /* pid 5 aborts: its entry's last stable offset is where pid 6's transaction starts. */
    assert_int_equal(append_marker(l, 5, 0, TXN_MARKER_ABORT, 0, &m), 0);
    assert_int_equal(m, 8);
    assert_int_equal(log_first_unstable_offset(l), 5);
    struct pstate_txn a[16];
    assert_int_equal(aborted(l, 0, a), 1);
    assert_int_equal(a[0].producer_id, 5);
    assert_int_equal(a[0].first_offset, 2);
    assert_int_equal(a[0].last_offset, 8);
    assert_int_equal(a[0].last_stable_offset, 5);
    /* pid 6 commits: nothing more is indexed, nothing is open. */
    assert_int_equal(append_marker(l, 6, 0, TXN_MARKER_COMMIT, 0, &m), 0);
    assert_int_equal(log_first_unstable_offset(l), -1);
    assert_int_equal(aborted(l, 0, a), 1);
    /* A read starting after the abort marker needs no entry; one ending before the
     * transaction began needs none either. */
    assert_int_equal(aborted(l, 9, a), 0);
    assert_int_equal(log_aborted_txns(l, 0, 2, a, 16), 0);
    assert_int_equal(log_aborted_txns(l, 0, 3, a, 16), 1);

    /* pid 5's next transaction continues its sequence (same epoch) and aborts alone:
     * its last stable offset is past its own marker. */
    assert_int_equal(append_txn(l, 2, 5, 0, 4, true, &base), 0);          /* 10..11 */
    assert_int_equal(append_marker(l, 5, 0, TXN_MARKER_ABORT, 0, &m), 0); /* 12 */
    assert_int_equal(aborted(l, 0, a), 2);
    assert_int_equal(a[1].first_offset, 10);
    assert_int_equal(a[1].last_offset, 12);
    assert_int_equal(a[1].last_stable_offset, 13);
    log_close(l);

    /* A clean restart keeps both, from the .txnindex file. */
    assert_int_equal(log_open(f->dir, &f->cfg, 13, &l), 0);
    assert_int_equal(aborted(l, 0, a), 2);
    assert_int_equal(a[0].last_offset, 8);
    assert_int_equal(a[1].last_offset, 12);
    char *idx = th_path(f->dir, "00000000000000000000.txnindex");
    assert_int_equal(th_file_size(idx), 2 * 34);
    free(idx);
    log_close(l);
}

static void test_checks(void **state)
{
    struct fx *f = *state;
    struct log *l;
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &l), 0);
    assert_int_equal(append_txn(l, 2, 5, 1, 0, true, NULL), 0);
    /* Inside its transaction a producer writes only transactional batches. */
    assert_int_equal(append_txn(l, 1, 5, 1, 2, false, NULL), STORAGE_ERR_INVALID_TXN_STATE);
    /* A retry of the transactional batch is still a duplicate. */
    assert_int_equal(append_txn(l, 2, 5, 1, 0, true, NULL), STORAGE_DUPLICATE);
    /* Markers: an older producer epoch, then an older coordinator epoch, are refused. */
    assert_int_equal(append_marker(l, 5, 0, TXN_MARKER_COMMIT, 0, NULL),
                     STORAGE_ERR_INVALID_PRODUCER_EPOCH);
    assert_int_equal(append_marker(l, 5, 1, TXN_MARKER_COMMIT, 4, NULL), 0);
    assert_int_equal(append_txn(l, 1, 5, 1, 2, true, NULL), 0);
    assert_int_equal(append_marker(l, 5, 1, TXN_MARKER_ABORT, 3, NULL),
                     STORAGE_ERR_COORDINATOR_FENCED);
    /* Fencing: the coordinator aborts with a bumped epoch; the zombie's batches at the
     * old epoch are refused, the new producer starts at sequence 0. */
    assert_int_equal(append_marker(l, 5, 2, TXN_MARKER_ABORT, 4, NULL), 0);
    assert_int_equal(log_first_unstable_offset(l), -1);
    assert_int_equal(append_txn(l, 1, 5, 1, 3, true, NULL), STORAGE_ERR_INVALID_PRODUCER_EPOCH);
    assert_int_equal(append_txn(l, 1, 5, 2, 1, true, NULL), STORAGE_ERR_OUT_OF_ORDER_SEQUENCE);
    assert_int_equal(append_txn(l, 1, 5, 2, 0, true, NULL), 0);
    /* A marker for a producer this partition never saw ends nothing and indexes nothing. */
    assert_int_equal(append_marker(l, 99, 0, TXN_MARKER_ABORT, 0, NULL), 0);
    struct pstate_txn a[4];
    assert_int_equal(aborted(l, 0, a), 1); /* the fencing abort */
    /* Clients' control batches go through the server's refusal, but the log refuses a
     * marker appended with other batches. */
    struct buf b;
    buf_init(&b);
    batch_encode_marker(&b, 5, 2, TXN_MARKER_COMMIT, 4, 1);
    th_batch(&b, 1, 1000, 5, 1);
    assert_int_equal(log_append(l, b.data, b.len, 0, 1, NULL), STORAGE_ERR_CORRUPT);
    buf_free(&b);
    log_close(l);
}

/* kill -9: the state comes back from the snapshot and a replay; with every snapshot and
 * index file lost, the replay from the log start rebuilds the aborted index. */
static void test_unclean_restarts(void **state)
{
    struct fx *f = *state;
    struct log *l;
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &l), 0);
    assert_int_equal(append_txn(l, 2, 5, 0, 0, true, NULL), 0);             /* 0..1 */
    assert_int_equal(append_marker(l, 5, 0, TXN_MARKER_ABORT, 0, NULL), 0); /* 2 */
    assert_int_equal(append_txn(l, 2, 5, 0, 2, true, NULL), 0);             /* 3..4 open */
    flush_now(l);
    assert_int_equal(append_txn(l, 1, 6, 0, 0, true, NULL), 0);             /* 5 */
    assert_int_equal(append_marker(l, 6, 0, TXN_MARKER_ABORT, 0, NULL), 0); /* 6 */
    int64_t rp = log_durable_offset(l);
    log_discard(l);
    assert_int_equal(log_open(f->dir, &f->cfg, rp, &l), 0);
    struct pstate_txn a[4];
    assert_int_equal(aborted(l, 0, a), 2);
    assert_int_equal(a[0].last_offset, 2);
    assert_int_equal(a[1].last_offset, 6);
    assert_int_equal(log_first_unstable_offset(l), 3); /* pid 5's second, still open */
    log_discard(l);

    remove_files_ending(f->dir, ".txnindex");
    remove_files_ending(f->dir, ".snapshot");
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &l), 0);
    assert_int_equal(aborted(l, 0, a), 2);
    assert_int_equal(a[0].first_offset, 0);
    assert_int_equal(a[0].last_stable_offset, 3); /* pid 5's next was open then */
    assert_int_equal(a[1].first_offset, 5);
    assert_int_equal(log_first_unstable_offset(l), 3);
    assert_int_equal(append_marker(l, 5, 0, TXN_MARKER_COMMIT, 0, NULL), 0);
    assert_int_equal(log_first_unstable_offset(l), -1);
    log_close(l);
}

/* Entries live in the file of their marker's segment; truncation and retention drop
 * them with the offsets. */
static void test_rolls_truncation_retention(void **state)
{
    struct fx *f = *state;
    f->cfg.segment_bytes = 1024; /* a few batches per segment */
    struct log *l;
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &l), 0);
    int32_t seq = 0;
    int64_t markers[6];
    for (int i = 0; i < 6; i++) {
        assert_int_equal(append_txn(l, 4, 5, 0, seq, true, NULL), 0);
        seq += 4;
        th_append(l, 3, 1000, 60, 0, 5000);
        assert_int_equal(
            append_marker(l, 5, 0, i % 2 ? TXN_MARKER_COMMIT : TXN_MARKER_ABORT, 0, &markers[i]),
            0);
    }
    assert_true(log_segment_count(l) > 2);
    struct pstate_txn a[8];
    assert_int_equal(aborted(l, 0, a), 3);
    int64_t end = log_end_offset(l);
    log_close(l);
    assert_int_equal(log_open(f->dir, &f->cfg, end, &l), 0);
    assert_int_equal(aborted(l, 0, a), 3);

    /* Truncation into the last aborted transaction drops its entry and reopens it. */
    assert_int_equal(log_truncate_to(l, markers[4]), 0);
    assert_int_equal(aborted(l, 0, a), 2);
    assert_int_equal(log_first_unstable_offset(l), markers[3] + 1);
    log_close(l);
    assert_int_equal(log_open(f->dir, &f->cfg, -1, &l), 0);
    assert_int_equal(aborted(l, 0, a), 2);
    assert_int_equal(log_first_unstable_offset(l), markers[3] + 1);

    /* Deleting records past the first abort forgets its entry. */
    assert_int_equal(log_delete_records(l, markers[1]), 0);
    assert_int_equal(log_aborted_txns(l, 0, INT64_MAX, a, 8), 1);
    assert_int_equal(a[0].last_offset, markers[2]);
    log_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marker_round_trip),
        cmocka_unit_test_setup_teardown(test_lso_and_aborted_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclean_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rolls_truncation_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
