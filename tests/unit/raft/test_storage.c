/* Durable raft storage: round trip, torn and corrupt tails, truncation that must not be
 * resurrected, atomic snapshots and compaction; plus the message codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/raft.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/raft-storage-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static struct raft_entry ent(uint64_t idx, uint64_t term, const char *data)
{
    return (struct raft_entry){
        .index = idx, .term = term, .len = (uint32_t)strlen(data), .data = (uint8_t *)data};
}

static void save(struct raft_storage *s, struct raft_entry *e, size_t n, uint64_t term,
                 uint64_t commit)
{
    struct raft_ready rd = {
        .hs_changed = true, .hs = {term, 1, commit}, .entries = e, .n_entries = n};
    assert_int_equal(raft_storage_save(s, &rd, true), 0);
}

static struct raft_restore reopen(struct raft_storage **s)
{
    raft_storage_close(*s);
    assert_int_equal(raft_storage_open(dir, s), 0);
    struct raft_restore r;
    raft_storage_restore(*s, &r);
    return r;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(raft_storage_open(dir, &s), 0);
    struct raft_entry e[3] = {ent(1, 1, "a"), ent(2, 1, "bb"), ent(3, 2, "")};
    save(s, e, 3, 2, 2);
    struct raft_restore r = reopen(&s);
    assert_int_equal(r.n_entries, 3);
    assert_int_equal(r.hs.term, 2);
    assert_int_equal(r.hs.commit, 2);
    assert_int_equal(r.entries[1].len, 2);
    assert_memory_equal(r.entries[1].data, "bb", 2);
    assert_int_equal(r.entries[2].term, 2);
    assert_null(r.snapshot);
    raft_storage_close(s);
}

static void test_torn_tail(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(raft_storage_open(dir, &s), 0);
    struct raft_entry e[2] = {ent(1, 1, "first"), ent(2, 1, "second")};
    save(s, e, 2, 1, 0);
    uint64_t good = raft_storage_log_bytes(s);
    struct raft_entry e3 = ent(3, 1, "third-entry-that-gets-torn");
    save(s, &e3, 1, 1, 0);
    raft_storage_close(s);
    /* A torn write: only part of the last record reached the disk. */
    char path[300];
    snprintf(path, sizeof path, "%s/raft.log", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* The save wrote the entry record, then a 33-byte hard-state record: cut into the
     * entry record. */
    assert_int_equal(truncate(path, st.st_size - 33 - 7), 0);
    assert_int_equal(raft_storage_open(dir, &s), 0);
    struct raft_restore r;
    raft_storage_restore(s, &r);
    /* Entry 3's record is torn; the hard state after it is lost with it. */
    assert_int_equal(r.n_entries, 2);
    assert_int_equal(r.entries[1].index, 2);
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size <= raft_storage_log_bytes(s));
    assert_true(raft_storage_log_bytes(s) >= good);
    /* Appending after recovery works and survives another reopen. */
    struct raft_entry e3b = ent(3, 2, "again");
    save(s, &e3b, 1, 2, 3);
    r = reopen(&s);
    assert_int_equal(r.n_entries, 3);
    assert_int_equal(r.entries[2].term, 2);
    assert_int_equal(r.hs.commit, 3);
    raft_storage_close(s);
}

static void test_corrupt_middle(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(raft_storage_open(dir, &s), 0);
    struct raft_entry e1 = ent(1, 1, "aaaa"), e2 = ent(2, 1, "bbbb"), e3 = ent(3, 1, "cccc");
    save(s, &e1, 1, 1, 0);
    uint64_t after1 = raft_storage_log_bytes(s);
    save(s, &e2, 1, 1, 0);
    save(s, &e3, 1, 1, 0);
    raft_storage_close(s);
    char path[300];
    snprintf(path, sizeof path, "%s/raft.log", dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t x = 0xff;
    assert_int_equal(pwrite(fd, &x, 1, (off_t)after1 + 12), 1); /* inside entry 2 */
    close(fd);
    assert_int_equal(raft_storage_open(dir, &s), 0);
    struct raft_restore r;
    raft_storage_restore(s, &r);
    assert_int_equal(r.n_entries, 1); /* everything from the corrupt record on is gone */
    assert_int_equal(raft_storage_log_bytes(s), after1);
    raft_storage_close(s);
}

static void test_truncation_not_resurrected(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(raft_storage_open(dir, &s), 0);
    struct raft_entry e[5] = {ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c"), ent(4, 1, "d"),
                              ent(5, 1, "e")};
    save(s, e, 5, 1, 2);
    struct raft_entry c = ent(3, 2, "C"); /* a new leader overwrites from 3 on */
    save(s, &c, 1, 2, 2);
    struct raft_restore r = reopen(&s);
    assert_int_equal(r.n_entries, 3);
    assert_int_equal(r.entries[2].term, 2);
    assert_memory_equal(r.entries[2].data, "C", 1);
    raft_storage_close(s);
}

static void test_snapshot_and_compact(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(raft_storage_open(dir, &s), 0);
    struct raft_entry e[4] = {ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c"), ent(4, 1, "d")};
    save(s, e, 4, 1, 4);
    /* A snapshot received from the leader at 10 replaces the whole log. */
    struct raft_snapshot snap = {.index = 10, .term = 3, .len = 5, .data = (uint8_t *)"state"};
    snap.conf.voters[snap.conf.n_voters++] = 1;
    snap.conf.learners[snap.conf.n_learners++] = 7;
    struct raft_entry e11 = ent(11, 3, "after");
    struct raft_ready rd = {
        .hs_changed = true, .hs = {3, 0, 10}, .snapshot = &snap, .entries = &e11, .n_entries = 1};
    assert_int_equal(raft_storage_save(s, &rd, true), 0);
    /* A stale temporary file from a crash mid-write is ignored. */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/snapshot.tmp", dir);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs("garbage", f);
    fclose(f);
    struct raft_restore r = reopen(&s);
    assert_non_null(r.snapshot);
    assert_int_equal(r.snapshot->index, 10);
    assert_int_equal(r.snapshot->conf.n_learners, 1);
    assert_memory_equal(r.snapshot->data, "state", 5);
    assert_int_equal(r.n_entries, 1);
    assert_int_equal(r.entries[0].index, 11);
    assert_int_equal(r.hs.commit, 10);
    /* Compaction beyond the snapshot is refused. */
    assert_int_not_equal(raft_storage_compact(s, 11), 0);
    assert_int_equal(raft_storage_compact(s, 10), 0);
    r = reopen(&s);
    assert_int_equal(r.n_entries, 1);
    raft_storage_close(s);
}

/* The storage restores a node that the core accepts. */
static void test_restore_into_core(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(raft_storage_open(dir, &s), 0);
    struct raft_config cfg;
    raft_config_default(&cfg, 1);
    struct raft_conf boot = {.n_voters = 1, .voters = {1}};
    struct raft *r;
    assert_int_equal(raft_new(&cfg, NULL, &boot, &r), 0);
    raft_campaign(r);
    assert_int_equal(raft_propose(r, "x", 1, NULL), 0);
    for (int i = 0; i < 4 && raft_has_ready(r); i++) {
        struct raft_ready rd;
        raft_ready(r, &rd);
        assert_int_equal(raft_storage_save(s, &rd, true), 0);
        raft_advance(r, &rd);
    }
    struct raft_status st;
    raft_status(r, &st);
    assert_int_equal(st.commit, 3);
    raft_free(r);
    struct raft_restore rs = reopen(&s);
    assert_int_equal(raft_new(&cfg, &rs, &boot, &r), 0);
    raft_status(r, &st);
    assert_int_equal(st.last_index, 3);
    assert_int_equal(st.term, 2);
    assert_int_equal(st.conf.n_voters, 1);
    raft_free(r);
    raft_storage_close(s);
}

static void test_codec(void **state)
{
    (void)state;
    struct raft_entry e[2] = {ent(5, 2, "hello"), ent(6, 3, "")};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 3,
                         .index = 4,
                         .log_term = 2,
                         .commit = 4,
                         .n_entries = 2,
                         .entries = e};
    struct buf b;
    buf_init(&b);
    raft_msg_encode(&m, &b);
    struct arena a;
    arena_init(&a);
    struct raft_msg d;
    assert_int_equal(raft_msg_decode(b.data, b.len, &a, &d), 0);
    assert_int_equal(d.n_entries, 2);
    assert_memory_equal(d.entries[0].data, "hello", 5);
    assert_int_equal(d.entries[1].term, 3);
    /* Every truncation of a valid message is rejected, never read past its end. */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(raft_msg_decode(b.data, n, &a, &d), -RAFT_EINVAL);
    /* A huge entry count in a short message is rejected before allocating. */
    be32_write(b.data + 4 + 9 * 8, 1000);
    assert_int_equal(raft_msg_decode(b.data, b.len, &a, &d), -RAFT_EINVAL);
    arena_free(&a);
    buf_free(&b);
}

/* Bad input to the core: never a crash, never applied. */
static void test_bad_messages(void **state)
{
    (void)state;
    struct raft_config cfg;
    raft_config_default(&cfg, 1);
    struct raft_conf boot = {.n_voters = 3, .voters = {1, 2, 3}};
    struct raft *r;
    assert_int_equal(raft_new(&cfg, NULL, &boot, &r), 0);
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 2,
                         .to = 1,
                         .term = 5,
                         .index = 1,
                         .log_term = 1,
                         .commit = 99};
    struct raft_entry bad = ent(7, 5, "gap"); /* not at index+1 */
    m.entries = &bad;
    m.n_entries = 1;
    assert_int_equal(raft_step(r, &m), -RAFT_EINVAL);
    m.n_entries = 0;
    m.to = 9; /* not us */
    assert_int_equal(raft_step(r, &m), -RAFT_EINVAL);
    m.to = 1;
    m.from = 0;
    assert_int_equal(raft_step(r, &m), -RAFT_EINVAL);
    m.from = 2;
    m.type = 99;
    assert_int_equal(raft_step(r, &m), -RAFT_EINVAL);
    /* A valid append with a commit index past its entries only commits what matched. */
    m.type = RAFT_MSG_APPEND;
    assert_int_equal(raft_step(r, &m), 0);
    struct raft_status st;
    raft_status(r, &st);
    assert_int_equal(st.commit, 1);
    assert_int_equal(st.term, 5);
    raft_free(r);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_not_resurrected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_into_core, setup, teardown),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_bad_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
