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
    };
    return cmocka_run_group_tests_name("partition", tests, NULL, NULL);
}
