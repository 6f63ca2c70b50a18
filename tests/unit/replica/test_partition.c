/* Unit tests for a hosted partition (replica.h): open, the roles and the one leader-epoch
 * check, appends stamped with the leader's epoch, the high watermark, close and reopen,
 * delete, and the lifetime under background holders (ASan checks that the last holder,
 * and only it, frees a closed partition). */
#include "../storage/helpers.h"
#include "proto/proto.h"
#include "replica/replica.h"

static const struct topic_settings settings = {.max_message_bytes = 1 << 20};

struct fixture {
    char *root;
    char *dir;
    struct partition_spec spec;
    struct partition *p;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->root = th_tmpdir(&f->dir);
    f->spec = (struct partition_spec){
        .dir = f->dir,
        .topic = "topic",
        .settings = &settings,
        .index = 0,
        .topic_id = "AAAAAAAAAAAAAAAAAAAAAQ",
        .recovery_point = -1,
        .start_offset = -1,
    };
    th_small_cfg(&f->spec.log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->p)
        partition_close(f->p);
    th_rmrf(f->root);
    free(f->root);
    free(f->dir);
    free(f);
    return 0;
}

/* Appends one batch of n records as the leader; returns its base offset. */
static int64_t append(struct partition *p, int n)
{
    struct record_in recs[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++)
        recs[i] = (struct record_in){slice_from_cstr("k"), slice_from_cstr("value")};
    struct buf b;
    buf_init(&b);
    batch_encode(&b, recs, (size_t)n, 1700000000000LL);
    struct log_append_result res;
    assert_int_equal(partition_append_as_leader(p, b.data, b.len, 1700000000000LL, &res), 0);
    buf_free(&b);
    return res.base_offset;
}

static void test_open_as_follower(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    assert_string_equal(f->p->topic, "topic");
    assert_ptr_equal(f->p->settings, &settings);
    assert_int_equal(f->p->role, PARTITION_FOLLOWER);
    assert_int_equal(f->p->leader_epoch, -1);
    /* Not told it leads: clients are sent elsewhere. */
    assert_int_equal(partition_check_leader(f->p, -1), KERR_NOT_LEADER_OR_FOLLOWER);
    assert_int_equal(partition_high_watermark(f->p), 0);
    /* A new directory records its topic's id (Kafka's partition.metadata). */
    char id[64];
    assert_int_equal(log_dir_read_topic_id(f->dir, id, sizeof id), 0);
    assert_string_equal(id, "AAAAAAAAAAAAAAAAAAAAAQ");
}

static void test_leader_epoch_check(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    partition_become_leader(f->p, 3);
    assert_int_equal(partition_check_leader(f->p, -1), KERR_NONE);
    assert_int_equal(partition_check_leader(f->p, 3), KERR_NONE);
    assert_int_equal(partition_check_leader(f->p, 2), KERR_FENCED_LEADER_EPOCH);
    assert_int_equal(partition_check_leader(f->p, 0), KERR_FENCED_LEADER_EPOCH);
    assert_int_equal(partition_check_leader(f->p, 4), KERR_UNKNOWN_LEADER_EPOCH);

    /* Demoted at a later epoch: an up-to-date client learns it must go elsewhere, a
     * client still at the old epoch that it is behind. */
    partition_become_follower(f->p, 4);
    assert_int_equal(partition_check_leader(f->p, 4), KERR_NOT_LEADER_OR_FOLLOWER);
    assert_int_equal(partition_check_leader(f->p, -1), KERR_NOT_LEADER_OR_FOLLOWER);
    assert_int_equal(partition_check_leader(f->p, 3), KERR_FENCED_LEADER_EPOCH);
    assert_int_equal(partition_check_leader(f->p, 5), KERR_UNKNOWN_LEADER_EPOCH);

    /* Leading again at the same epoch (a restart applying the same metadata). */
    partition_become_leader(f->p, 4);
    assert_int_equal(partition_check_leader(f->p, 4), KERR_NONE);
}

static void test_append_stamps_epoch_and_moves_high_watermark(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    partition_become_leader(f->p, 0);
    assert_int_equal(append(f->p, 3), 0);
    partition_become_leader(f->p, 2);
    assert_int_equal(append(f->p, 2), 3);
    assert_int_equal(partition_high_watermark(f->p), 5);
    /* The epoch cache knows where each epoch began, from the stamps. */
    assert_int_equal(log_latest_epoch(f->p->log), 2);
    int32_t epoch;
    int64_t end;
    assert_int_equal(log_end_offset_for_epoch(f->p->log, 0, &epoch, &end), 0);
    assert_int_equal(epoch, 0);
    assert_int_equal(end, 3);
}

static void test_close_and_reopen_keep_data(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    partition_become_leader(f->p, 0);
    append(f->p, 4);
    append(f->p, 4);
    partition_close(f->p);
    f->p = NULL;

    /* Reopened with a checkpointed log start offset (DeleteRecords before the stop). */
    f->spec.start_offset = 4;
    f->spec.recovery_point = 8;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    assert_int_equal(log_end_offset(f->p->log), 8);
    assert_int_equal(log_start_offset(f->p->log), 4);
    assert_int_equal(f->p->role, PARTITION_FOLLOWER); /* until the metadata says */
}

static void test_open_failure_opens_nothing(void **state)
{
    struct fixture *f = *state;
    /* A regular file where the directory should be (the root exists). */
    FILE *fp = fopen(f->dir, "w");
    assert_non_null(fp);
    fclose(fp);
    struct partition *p = NULL;
    assert_int_not_equal(partition_open(&f->spec, &p), 0);
    assert_null(p);
}

static void test_holders_outlive_close(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    partition_become_leader(f->p, 0);
    struct partition *p = f->p;
    f->p = NULL;

    /* A holder that finishes while p is open finds it open. */
    partition_hold(p);
    assert_true(partition_release(p));

    /* Two holders over a close: the log goes at once, p with the last holder. */
    partition_hold(p);
    partition_hold(p);
    partition_close(p);
    assert_true(p->closed);
    assert_null(p->log);
    assert_false(partition_release(p)); /* still held: not freed yet */
    assert_true(p->closed);
    assert_false(partition_release(p)); /* freed here (ASan: no leak, no later use) */
}

static void test_delete_renames_the_directory(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    partition_become_leader(f->p, 0);
    append(f->p, 2);
    struct partition *p = f->p;
    f->p = NULL;
    partition_hold(p); /* a sync round in flight */
    char *renamed = NULL;
    assert_int_equal(partition_delete(p, f->dir, &renamed), 0);
    assert_non_null(renamed);
    assert_int_equal(access(f->dir, F_OK), -1); /* the name is free for a new topic */
    assert_int_equal(access(renamed, F_OK), 0);
    assert_non_null(strstr(renamed, "-delete"));
    assert_false(partition_release(p));

    /* A topic re-created under the name starts empty. */
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    assert_int_equal(log_end_offset(f->p->log), 0);
    assert_int_equal(log_remove_renamed(renamed), 0);
    free(renamed);
}

/* ---- replication: a leader and a follower, each with its own log ---- */

static const int32_t three[] = {1, 2, 3};

/* Opens a second partition (another node's replica) beside f's. */
static struct partition *open_other(struct fixture *f, const char *name)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", f->root, name);
    struct partition_spec spec = f->spec;
    spec.dir = dir;
    struct partition *p = NULL;
    assert_int_equal(partition_open(&spec, &p), 0);
    return p;
}

/* What a follower's fetch does: reads the leader's log from the follower's log end,
 * appends it as it is; returns the records copied. */
static int64_t copy_from(struct partition *leader, struct partition *follower)
{
    int64_t from = log_end_offset(follower->log);
    struct log_read_result rr;
    assert_int_equal(log_read(leader->log, from, 1 << 20, log_end_offset(leader->log), &rr), 0);
    if (rr.len == 0)
        return 0;
    uint8_t *data = malloc((size_t)rr.len);
    assert_int_equal(pread_exact(rr.fd, data, (size_t)rr.len, rr.file_pos), 0);
    struct log_append_result res;
    assert_int_equal(partition_append_as_follower(follower, data, (size_t)rr.len, 1, &res), 0);
    free(data);
    return log_end_offset(follower->log) - from;
}

static void test_high_watermark_waits_for_the_in_sync_replicas(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    struct partition *p = f->p;
    partition_become_leader(p, 0);
    assert_false(partition_set_assignment(p, 1, 1, 0, three, 3, three, 3));
    assert_true(partition_replicated(p));
    assert_true(partition_has_replica(p, 3));
    assert_false(partition_has_replica(p, 4));
    append(p, 4);
    assert_false(partition_leader_appended(p)); /* followers not heard from yet */
    assert_int_equal(partition_high_watermark(p), 0);
    assert_false(partition_follower_fetched(p, 2, 4, 10));
    assert_int_equal(partition_high_watermark(p), 0); /* node 3 still unknown */
    assert_true(partition_follower_fetched(p, 3, 2, 10));
    assert_int_equal(partition_high_watermark(p), 2);
    assert_true(partition_follower_fetched(p, 3, 4, 11));
    assert_int_equal(partition_high_watermark(p), 4);
    /* A follower behind does not take it back. */
    assert_false(partition_follower_fetched(p, 2, 1, 12));
    assert_int_equal(partition_high_watermark(p), 4);

    /* Node 2 leaves the ISR (fenced): the leader and node 3 decide alone. */
    append(p, 2);
    assert_false(partition_follower_fetched(p, 3, 6, 13));
    assert_int_equal(partition_high_watermark(p), 4);
    static const int32_t isr13[] = {1, 3};
    assert_true(partition_set_assignment(p, 1, 1, 0, three, 3, isr13, 2));
    assert_int_equal(partition_high_watermark(p), 6);

    /* Alone in the ISR: the log end. */
    static const int32_t isr1[] = {1};
    partition_set_assignment(p, 1, 1, 0, three, 3, isr1, 1);
    append(p, 1);
    assert_true(partition_leader_appended(p));
    assert_int_equal(partition_high_watermark(p), 7);

    /* A new leader term forgets what followers said to the old one. */
    partition_set_assignment(p, 1, 1, 0, three, 3, three, 3);
    partition_become_leader(p, 1);
    append(p, 1);
    assert_false(partition_follower_fetched(p, 2, 8, 14));
    assert_int_equal(partition_high_watermark(p), 7);
    assert_true(partition_follower_fetched(p, 3, 8, 14));
    assert_int_equal(partition_high_watermark(p), 8);
}

static void test_a_reopened_replica_shows_nothing_unconfirmed(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    partition_become_leader(f->p, 0);
    append(f->p, 5);
    partition_close(f->p);
    f->p = NULL;
    f->spec.recovery_point = 5;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    partition_become_leader(f->p, 1);
    partition_set_assignment(f->p, 1, 1, 0, three, 3, three, 3);
    /* Its tail may never have reached the others: hidden until they fetch. */
    assert_int_equal(partition_high_watermark(f->p), 0);
    partition_follower_fetched(f->p, 2, 5, 1);
    partition_follower_fetched(f->p, 3, 5, 1);
    assert_int_equal(partition_high_watermark(f->p), 5);
}

static void test_follower_copies_and_truncates_a_divergent_suffix(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    struct partition *a = f->p, *b = open_other(f, "topic-b");
    /* a leads epoch 0; b follows and copies everything. */
    partition_become_leader(a, 0);
    partition_set_assignment(a, 1, 1, 0, three, 2, three, 2);
    partition_become_follower(b, 0);
    partition_set_assignment(b, 2, 1, 0, three, 2, three, 2);
    append(a, 3);
    assert_int_equal(copy_from(a, b), 3);
    int32_t epoch;
    int64_t end;
    assert_false(partition_diverging(a, 3, log_latest_epoch(b->log), &epoch, &end));
    partition_follower_fetched(a, 2, 3, 1);
    partition_follower_high_watermark(b, partition_high_watermark(a));
    assert_int_equal(b->high_watermark, 3);

    /* a appends two more that b never gets, then b leads epoch 1 and appends its own. */
    append(a, 2);
    partition_become_follower(a, 1);
    partition_become_leader(b, 1);
    append(b, 1);
    append(b, 1);
    /* a asks to go on from offset 5 after epoch 0: b's epoch 0 ended at 3. */
    assert_true(partition_diverging(b, 5, log_latest_epoch(a->log), &epoch, &end));
    assert_int_equal(epoch, 0);
    assert_int_equal(end, 3);
    int64_t to = partition_truncation_offset(a, epoch, end);
    assert_int_equal(to, 3);
    assert_int_equal(partition_truncate(a, to), 0);
    assert_int_equal(log_end_offset(a->log), 3);
    /* Now a is a prefix of b: no divergence, and it copies b's epoch-1 records. */
    assert_false(partition_diverging(b, 3, log_latest_epoch(a->log), &epoch, &end));
    assert_int_equal(copy_from(b, a), 2);
    assert_int_equal(log_latest_epoch(a->log), 1);
    assert_false(partition_diverging(b, 5, 1, &epoch, &end));
    /* A follower that never fetched anything does not diverge. */
    assert_false(partition_diverging(b, 0, -1, &epoch, &end));
    partition_close(b);
}

/* A leader that has appended nothing in its own epoch, asked by a follower holding an
 * epoch it never saw (written by a leader in between whose records never reached it):
 * its last epoch ends at its log end, so the follower truncates there instead of asking
 * again and again (found by tests/sim/replication_sim). An empty leader log likewise. */
static void test_diverging_past_the_leaders_last_epoch(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    struct partition *a = f->p, *b = open_other(f, "topic-b"), *c = open_other(f, "topic-c");
    partition_become_leader(a, 0);
    partition_set_assignment(a, 1, 1, 0, three, 3, three, 3);
    partition_become_follower(b, 0);
    partition_set_assignment(b, 2, 1, 0, three, 3, three, 3);
    append(a, 3);
    assert_int_equal(copy_from(a, b), 3);
    /* b leads epoch 1 and appends two that a never gets; then a leads epoch 2. */
    partition_become_follower(a, 1);
    partition_become_leader(b, 1);
    append(b, 2);
    partition_become_follower(b, 2);
    partition_become_leader(a, 2);
    int32_t epoch;
    int64_t end;
    assert_true(partition_diverging(a, 5, 1, &epoch, &end));
    assert_int_equal(epoch, 0);
    assert_int_equal(end, 3);
    assert_int_equal(partition_truncation_offset(b, epoch, end), 3);
    /* A leader with an empty log: everything the follower has goes. */
    partition_become_leader(c, 3);
    assert_true(partition_diverging(c, 5, 1, &epoch, &end));
    assert_int_equal(epoch, -1);
    assert_int_equal(end, 0);
    assert_int_equal(partition_truncation_offset(b, epoch, end), 0);
    partition_close(b);
    partition_close(c);
}

static void test_truncation_offset_cases(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    struct partition *p = f->p;
    partition_become_leader(p, 2);
    append(p, 3); /* epoch 2: 0..2 */
    partition_become_leader(p, 5);
    append(p, 3); /* epoch 5: 3..5 */
    partition_become_follower(p, 6);
    p->high_watermark = 2;
    /* The leader knows no epoch this early: keep what it confirmed (the HW). */
    assert_int_equal(partition_truncation_offset(p, -1, -1), 2);
    /* Same epoch here: the lesser end. */
    assert_int_equal(partition_truncation_offset(p, 5, 4), 4);
    assert_int_equal(partition_truncation_offset(p, 5, 9), 6);
    /* The leader's epoch 4 is unknown here; this log has epoch 2 up to 3: go to 3 and ask
     * again. */
    assert_int_equal(partition_truncation_offset(p, 4, 5), 3);
    /* An epoch older than any here: this log has nothing of it (Kafka's cache answers
     * the epoch with the start of the first one it knows), so all goes. */
    assert_int_equal(partition_truncation_offset(p, 1, 1), 0);
}

static void test_isr_shrinks_and_expands(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(partition_open(&f->spec, &f->p), 0);
    struct partition *p = f->p;
    partition_become_leader(p, 1);
    partition_set_assignment(p, 1, 1, 0, three, 3, three, 3);
    int32_t isr[3], n = 0;
    /* The term's first check gives every in-sync follower its time. */
    assert_false(partition_isr_change(p, 1000, 500, -1, isr, &n));
    append(p, 4);
    partition_follower_fetched(p, 2, 4, 1100); /* caught up */
    partition_follower_fetched(p, 3, 0, 1100); /* behind */
    assert_false(partition_isr_change(p, 1400, 500, -1, isr, &n));
    /* Node 3 has not caught up for longer than the lag allows: it leaves. */
    assert_true(partition_isr_change(p, 1501, 500, -1, isr, &n));
    assert_int_equal(n, 2);
    assert_int_equal(isr[0], 1);
    assert_int_equal(isr[1], 2);
    /* One request at a time; the pending ISR counts for the high watermark. */
    partition_isr_requested(p, isr, n);
    assert_false(partition_isr_change(p, 1600, 500, -1, isr, &n));
    partition_isr_answered(p);
    static const int32_t isr12[] = {1, 2};
    assert_true(partition_set_assignment(p, 1, 1, 1, three, 3, isr12, 2));
    assert_int_equal(partition_high_watermark(p), 4);
    /* Node 3 catches up to the high watermark: it joins again. */
    partition_follower_fetched(p, 2, 4, 1700);
    partition_follower_fetched(p, 3, 3, 1700);
    assert_false(partition_isr_change(p, 1700, 500, 3, isr, &n));
    partition_follower_fetched(p, 3, 4, 1800);
    /* Only on its own fetch: a check for another follower's (or the timer's) does not. */
    assert_false(partition_isr_change(p, 1800, 500, 2, isr, &n));
    assert_false(partition_isr_change(p, 1800, 500, -1, isr, &n));
    assert_true(partition_isr_change(p, 1800, 500, 3, isr, &n));
    assert_int_equal(n, 3);
    /* While that expansion is pending, the high watermark waits for node 3 too. */
    partition_isr_requested(p, isr, n);
    append(p, 1);
    partition_follower_fetched(p, 2, 5, 1900);
    assert_int_equal(partition_high_watermark(p), 4);
    partition_follower_fetched(p, 3, 5, 1900);
    assert_int_equal(partition_high_watermark(p), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_as_follower, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader_epoch_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_stamps_epoch_and_moves_high_watermark, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_and_reopen_keep_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failure_opens_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holders_outlive_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_renames_the_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_high_watermark_waits_for_the_in_sync_replicas, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_reopened_replica_shows_nothing_unconfirmed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_follower_copies_and_truncates_a_divergent_suffix,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_diverging_past_the_leaders_last_epoch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_truncation_offset_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isr_shrinks_and_expands, setup, teardown),
    };
    return cmocka_run_group_tests_name("partition", tests, NULL, NULL);
}
