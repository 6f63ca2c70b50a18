/* Durable raft storage: round trip, torn tails (cut off) against corruption (refused,
 * nothing changed), the clean-shutdown marker, salvage mode, truncation that must not be
 * resurrected, atomic snapshots and compaction; plus the message codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* A strict open that goes ahead: open (which only reads), then accept (which writes what
 * recovery decided). */
static int open_strict(const char *d, struct raft_storage **s)
{
    int rc = raft_storage_open(d, RAFT_STORAGE_STRICT, s);
    if (rc == 0 && (rc = raft_storage_accept(*s)) != 0) {
        raft_storage_close(*s);
        *s = NULL;
    }
    return rc;
}

static struct raft_restore reopen(struct raft_storage **s)
{
    raft_storage_close(*s);
    assert_int_equal(open_strict(dir, s), 0);
    struct raft_restore r;
    raft_storage_restore(*s, &r);
    return r;
}

/* ---- files ---- */

static void path_in(const char *d, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", d, name);
}

static bool exists_in(const char *d, const char *name)
{
    char p[512];
    path_in(d, name, p, sizeof p);
    return access(p, F_OK) == 0;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* The whole file, malloc'd (*len bytes). */
static uint8_t *slurp(const char *path, size_t *len)
{
    *len = (size_t)file_size(path);
    uint8_t *p = malloc(*len + 1);
    assert_non_null(p);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, p, *len, 0), (ssize_t)*len);
    close(fd);
    return p;
}

static void spit(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void pwrite_at(const char *path, const void *data, size_t len, uint64_t at)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, (off_t)at), (ssize_t)len);
    close(fd);
}

/* What a crash leaves: every save returned after its fdatasync, but no clean-shutdown
 * marker. (Closing frees the memory; the marker it writes is taken away again.) */
static void crash_close(struct raft_storage *s, const char *d)
{
    raft_storage_close(s);
    char p[512];
    path_in(d, "clean-shutdown", p, sizeof p);
    assert_int_equal(unlink(p), 0);
}

/* ---- a log to damage: three saves, the last one writing several records ----
 *   save 1: entry 1, hard state      save 2: entry 2, hard state
 *   save 3: entries 3 and 4, hard state (one write, one fdatasync) */
/* End offsets in raft.log. A save writes its hard state, then its entries. */
enum { AT_SAVE1, AT_SAVE2, AT_HS3, AT_E3, AT_E4, AT_END, AT_N };
#define ENTRY_REC_BYTES(data_len) (8 + 22 + (data_len))
#define HS_REC_BYTES 33

static void build_log(const char *d, uint64_t at[AT_N], bool clean)
{
    struct raft_storage *s;
    assert_int_equal(open_strict(d, &s), 0);
    struct raft_entry e1 = ent(1, 1, "first"), e2 = ent(2, 1, "second");
    struct raft_entry e34[2] = {ent(3, 1, "third"), ent(4, 1, "fourth")};
    save(s, &e1, 1, 1, 0);
    at[AT_SAVE1] = raft_storage_log_bytes(s);
    save(s, &e2, 1, 1, 1);
    at[AT_SAVE2] = raft_storage_log_bytes(s);
    save(s, e34, 2, 1, 2);
    at[AT_END] = raft_storage_log_bytes(s);
    at[AT_HS3] = at[AT_SAVE2] + HS_REC_BYTES;
    at[AT_E3] = at[AT_HS3] + ENTRY_REC_BYTES(5);
    at[AT_E4] = at[AT_E3] + ENTRY_REC_BYTES(6);
    assert_int_equal(at[AT_E4], at[AT_END]);
    if (clean)
        raft_storage_close(s);
    else
        crash_close(s, d);
}

enum op {
    OP_NONE,
    OP_TRUNCATE,      /* to at + delta */
    OP_FLIP,          /* one byte at at + delta */
    OP_ZERO_TO_END,   /* zeros from at + delta to the end of the file */
    OP_ZERO_RANGE,    /* zeros over [at, to) */
    OP_SPLICE,        /* removes [at, to) */
    OP_APPEND_ZEROS,  /* delta zeros at the end (blocks allocated, never written) */
    OP_APPEND_RECORD, /* a well-framed record of kind delta at the end */
};
struct edit {
    enum op op;
    int at;
    int64_t delta;
    int to;
};

static void apply_edit(const char *log, const uint64_t at[AT_N], const struct edit *e)
{
    uint64_t pos = at[e->at] + (uint64_t)e->delta;
    size_t len;
    uint8_t *data = slurp(log, &len);
    switch (e->op) {
    case OP_NONE: break;
    case OP_TRUNCATE: assert_int_equal(truncate(log, (off_t)pos), 0); break;
    case OP_FLIP:
        data[pos] ^= 0x5a;
        pwrite_at(log, data + pos, 1, pos);
        break;
    case OP_ZERO_TO_END:
        memset(data + pos, 0, len - pos);
        spit(log, data, len);
        break;
    case OP_ZERO_RANGE:
        memset(data + pos, 0, at[e->to] - pos);
        spit(log, data, len);
        break;
    case OP_SPLICE:
        memmove(data + pos, data + at[e->to], len - at[e->to]);
        spit(log, data, len - (at[e->to] - pos));
        break;
    case OP_APPEND_ZEROS:
        assert_int_equal(truncate(log, (off_t)(len + (size_t)e->delta)), 0);
        break;
    case OP_APPEND_RECORD: {
        uint8_t rec[8 + 9] = {0};
        rec[8] = (uint8_t)e->delta;
        memcpy(rec + 9, "payload!", 8);
        be32_write(rec, 9);
        be32_write(rec + 4, crc32c(0, rec + 8, 9));
        pwrite_at(log, rec, sizeof rec, len);
        break;
    }
    }
    free(data);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(open_strict(dir, &s), 0);
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
    assert_int_equal(open_strict(dir, &s), 0);
    struct raft_entry e[2] = {ent(1, 1, "first"), ent(2, 1, "second")};
    save(s, e, 2, 1, 0);
    uint64_t good = raft_storage_log_bytes(s);
    struct raft_entry e3 = ent(3, 1, "third-entry-that-gets-torn");
    save(s, &e3, 1, 1, 0);
    crash_close(s, dir);
    /* A torn write: only part of the last record reached the disk. */
    char path[300];
    snprintf(path, sizeof path, "%s/raft.log", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* The save wrote the entry record, then a 33-byte hard-state record: cut into the
     * entry record. */
    assert_int_equal(truncate(path, st.st_size - 33 - 7), 0);
    assert_int_equal(open_strict(dir, &s), 0);
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

/* A damaged record with intact records after it is not a torn write: refused, and the
 * file is left exactly as it was (truncating would forget entries 2 and 3). */
static void test_corrupt_middle(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(open_strict(dir, &s), 0);
    struct raft_entry e1 = ent(1, 1, "aaaa"), e2 = ent(2, 1, "bbbb"), e3 = ent(3, 1, "cccc");
    save(s, &e1, 1, 1, 0);
    uint64_t after1 = raft_storage_log_bytes(s);
    save(s, &e2, 1, 1, 0);
    save(s, &e3, 1, 1, 3);
    crash_close(s, dir);
    char path[300];
    snprintf(path, sizeof path, "%s/raft.log", dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t x = 0xff;
    /* inside entry 2 (its save writes the hard state first) */
    assert_int_equal(pwrite(fd, &x, 1, (off_t)(after1 + HS_REC_BYTES + 12)), 1);
    close(fd);
    size_t len_before, len_after;
    uint8_t *before = slurp(path, &len_before);
    s = (struct raft_storage *)1;
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_STRICT, &s), -EBADMSG);
    assert_null(s);
    uint8_t *after = slurp(path, &len_after);
    assert_int_equal(len_after, len_before);
    assert_memory_equal(after, before, len_before);
    assert_false(exists_in(dir, "clean-shutdown"));
    free(after);
    /* Salvage reads what it can: entry 1; entry 2 is damaged and entry 3 no longer follows
     * the log, so both are skipped and the commit index is capped at what survived. */
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_SALVAGE, &s), 0);
    struct raft_restore r;
    raft_storage_restore(s, &r);
    assert_int_equal(r.n_entries, 1);
    assert_memory_equal(r.entries[0].data, "aaaa", 4);
    assert_int_equal(r.hs.commit, 1);
    assert_int_equal(raft_storage_skipped_bytes(s), 2 * ENTRY_REC_BYTES(4));
    raft_storage_close(s);
    after = slurp(path, &len_after);
    assert_int_equal(len_after, len_before);
    assert_memory_equal(after, before, len_before);
    assert_false(exists_in(dir, "clean-shutdown"));
    free(after);
    free(before);
}

/* ---- torn tails: cut off, and the log takes saves again ---- */

static const struct torn_case {
    const char *name;
    struct edit edits[2];
    int kept;       /* raft.log after recovery ends at at[kept] */
    size_t entries; /* entries recovered */
} torn_cases[] = {
    {"fewer bytes than a header", {{OP_TRUNCATE, AT_SAVE2, 5, 0}}, AT_SAVE2, 2},
    {"hard state (the save's first record) cut short", {{OP_TRUNCATE, AT_HS3, -3, 0}}, AT_SAVE2, 2},
    {"first entry of the save cut short", {{OP_TRUNCATE, AT_HS3, 20, 0}}, AT_HS3, 2},
    {"second entry of the save cut short", {{OP_TRUNCATE, AT_E3, 10, 0}}, AT_E3, 3},
    {"last record full length, bad CRC", {{OP_FLIP, AT_END, -1, 0}}, AT_E3, 3},
    {"the whole save zeros", {{OP_ZERO_TO_END, AT_SAVE2, 0, 0}}, AT_SAVE2, 2},
    {"part of the save, then zeros", {{OP_ZERO_TO_END, AT_SAVE2, 20, 0}}, AT_SAVE2, 2},
    {"zeros past the end of the save", {{OP_APPEND_ZEROS, AT_END, 4096, 0}}, AT_END, 4},
    {"first entry garbled, the rest of the save cut short",
     {{OP_FLIP, AT_HS3, 12, 0}, {OP_TRUNCATE, AT_E4, -5, 0}},
     AT_HS3,
     2},
};

static void test_torn_shapes(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(torn_cases); i++) {
        const struct torn_case *c = &torn_cases[i];
        char d[300], log[512];
        snprintf(d, sizeof d, "%s/torn-%zu", dir, i);
        path_in(d, "raft.log", log, sizeof log);
        uint64_t at[AT_N];
        build_log(d, at, false);
        for (size_t k = 0; k < ARRAY_LEN(c->edits); k++)
            apply_edit(log, at, &c->edits[k]);
        struct raft_storage *s;
        if (open_strict(d, &s) != 0)
            fail_msg("torn case \"%s\" was refused", c->name);
        struct raft_restore r;
        raft_storage_restore(s, &r);
        assert_int_equal(r.n_entries, c->entries);
        assert_int_equal(r.entries[r.n_entries - 1].index, c->entries);
        assert_int_equal(raft_storage_log_bytes(s), at[c->kept]);
        assert_int_equal(file_size(log), at[c->kept]);
        assert_false(exists_in(d, "clean-shutdown"));
        /* The log takes saves after the cut, and they survive a crash. */
        struct raft_entry next = ent(c->entries + 1, 2, "after the cut");
        save(s, &next, 1, 2, 1);
        crash_close(s, d);
        assert_int_equal(open_strict(d, &s), 0);
        raft_storage_restore(s, &r);
        assert_int_equal(r.n_entries, c->entries + 1);
        assert_memory_equal(r.entries[c->entries].data, "after the cut", 13);
        assert_int_equal(r.hs.term, 2);
        raft_storage_close(s);
    }
}

/* ---- corruption: refused with -EBADMSG, nothing changed; salvage still reads ---- */

static const struct refused_case {
    const char *name;
    bool clean; /* closed cleanly before the damage (the marker is present) */
    struct edit edits[2];
} refused_cases[] = {
    {"bad CRC in the middle", false, {{OP_FLIP, AT_SAVE1, 12, 0}}},
    {"impossible length in the middle", false, {{OP_FLIP, AT_SAVE1, 0, 0}}},
    {"zeros in the middle", false, {{OP_ZERO_RANGE, AT_SAVE1, 0, AT_SAVE2}}},
    {"damage in the middle and a torn tail",
     false,
     {{OP_FLIP, AT_SAVE1, 12, 0}, {OP_TRUNCATE, AT_END, -3, 0}}},
    /* The first record of the last save damaged while the records after it are whole: a
     * crash can leave that too (pages written out of order), but it cannot be told from
     * a damaged middle, so it is refused rather than guessed. */
    {"damaged record followed by records that end the file", false, {{OP_FLIP, AT_SAVE2, 12, 0}}},
    {"index gap", false, {{OP_SPLICE, AT_SAVE1, 0, AT_SAVE2}}},
    {"whole record of unknown kind at the end", false, {{OP_APPEND_RECORD, AT_END, 9, 0}}},
    {"torn tail after a clean shutdown", true, {{OP_TRUNCATE, AT_END, -3, 0}}},
    {"zeros after a clean shutdown", true, {{OP_APPEND_ZEROS, AT_END, 4096, 0}}},
};

static void test_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(refused_cases); i++) {
        const struct refused_case *c = &refused_cases[i];
        char d[300], log[512];
        snprintf(d, sizeof d, "%s/refused-%zu", dir, i);
        path_in(d, "raft.log", log, sizeof log);
        uint64_t at[AT_N];
        build_log(d, at, c->clean);
        for (size_t k = 0; k < ARRAY_LEN(c->edits); k++)
            apply_edit(log, at, &c->edits[k]);
        size_t len_before, len_after;
        uint8_t *before = slurp(log, &len_before);
        struct raft_storage *s;
        int rc = raft_storage_open(d, RAFT_STORAGE_STRICT, &s);
        if (rc != -EBADMSG)
            fail_msg("case \"%s\": open returned %d, not -EBADMSG", c->name, rc);
        assert_null(s);
        assert_int_equal(exists_in(d, "clean-shutdown"), c->clean);
        /* Salvage opens it, writes nothing, and leaves the marker as it was. */
        assert_int_equal(raft_storage_open(d, RAFT_STORAGE_SALVAGE, &s), 0);
        struct raft_restore r;
        raft_storage_restore(s, &r);
        for (size_t k = 0; k < r.n_entries; k++)
            assert_int_equal(r.entries[k].index, k + 1);
        raft_storage_close(s);
        assert_int_equal(exists_in(d, "clean-shutdown"), c->clean);
        uint8_t *after = slurp(log, &len_after);
        assert_int_equal(len_after, len_before);
        assert_memory_equal(after, before, len_before);
        free(after);
        free(before);
    }
}

/* A whole record with a term or index past RAFT_MAX_INDEX is malformed, as in messages:
 * started from a hard state at term 2^64 - 1, the core's next campaign overflowed the term
 * and tripped an assertion instead of the start being refused. */
static void test_huge_terms_refused(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t kind;
        uint64_t term, index;
    } cases[] = {
        {"hard state at term 2^64 - 1", 2, UINT64_MAX, 0},
        {"hard state just past the bound", 2, RAFT_MAX_INDEX + 1, 0},
        {"entry at term 2^64 - 1", 1, UINT64_MAX, 5},
        {"entry at an index past the bound", 1, 1, RAFT_MAX_INDEX + 1},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char d[300], log[512];
        snprintf(d, sizeof d, "%s/huge-%zu", dir, i);
        path_in(d, "raft.log", log, sizeof log);
        uint64_t at[AT_N];
        build_log(d, at, false);
        uint8_t rec[8 + 25] = {0};
        rec[8] = cases[i].kind;
        be64_write(rec + 9, cases[i].term);
        be64_write(rec + 17, cases[i].index);       /* an entry's index; a hard state's vote */
        size_t body = cases[i].kind == 2 ? 25 : 22; /* an entry: type 0, no data */
        be32_write(rec, (uint32_t)body);
        be32_write(rec + 4, crc32c(0, rec + 8, body));
        pwrite_at(log, rec, 8 + body, at[AT_END]);
        size_t len_before, len_after;
        uint8_t *before = slurp(log, &len_before);
        struct raft_storage *s;
        int rc = raft_storage_open(d, RAFT_STORAGE_STRICT, &s);
        if (rc != -EBADMSG)
            fail_msg("case \"%s\": open returned %d, not -EBADMSG", cases[i].name, rc);
        uint8_t *after = slurp(log, &len_after);
        assert_int_equal(len_after, len_before);
        assert_memory_equal(after, before, len_before);
        free(after);
        free(before);
        /* Salvage skips the record and restores what the core accepts. */
        assert_int_equal(raft_storage_open(d, RAFT_STORAGE_SALVAGE, &s), 0);
        struct raft_restore r;
        raft_storage_restore(s, &r);
        assert_int_equal(r.n_entries, 4);
        assert_int_equal(r.hs.term, 1);
        assert_int_equal(raft_storage_skipped_bytes(s), 8 + body);
        raft_storage_close(s);
    }
}

/* ---- salvage ---- */

/* Salvage skips a damaged record and replays the intact ones after it; it reports the
 * bytes it skipped and leaves every file as it was, leftovers included. */
static void test_salvage_reads_past_damage(void **state)
{
    (void)state;
    uint64_t at[AT_N];
    char log[512];
    path_in(dir, "raft.log", log, sizeof log);
    build_log(dir, at, false);
    /* save 1's hard state, before its entry "first" */
    apply_edit(log, at, &(struct edit){OP_FLIP, AT_SAVE1, -(int64_t)ENTRY_REC_BYTES(5) - 3, 0});
    char tmp[512];
    path_in(dir, "snapshot.tmp", tmp, sizeof tmp);
    spit(tmp, "garbage", 7);
    size_t len_before, len_after;
    uint8_t *before = slurp(log, &len_before);
    struct raft_storage *s;
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_STRICT, &s), -EBADMSG);
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_SALVAGE, &s), 0);
    struct raft_restore r;
    raft_storage_restore(s, &r);
    assert_int_equal(r.n_entries, 4);
    assert_memory_equal(r.entries[3].data, "fourth", 6);
    assert_int_equal(r.hs.commit, 2);
    assert_int_equal(raft_storage_skipped_bytes(s), HS_REC_BYTES);
    raft_storage_close(s);
    uint8_t *after = slurp(log, &len_after);
    assert_int_equal(len_after, len_before);
    assert_memory_equal(after, before, len_before);
    assert_false(exists_in(dir, "clean-shutdown"));
    assert_true(exists_in(dir, "snapshot.tmp"));
    free(after);
    free(before);
}

/* After a skipped stretch, entries that no longer follow the log are dropped so that the
 * restore stays contiguous, and the core accepts it. */
static void test_salvage_index_gap(void **state)
{
    (void)state;
    uint64_t at[AT_N];
    char log[512];
    path_in(dir, "raft.log", log, sizeof log);
    build_log(dir, at, false);
    apply_edit(log, at, &(struct edit){OP_SPLICE, AT_SAVE1, 0, AT_SAVE2}); /* save 2 gone */
    struct raft_storage *s;
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_STRICT, &s), -EBADMSG);
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_SALVAGE, &s), 0);
    struct raft_restore r;
    raft_storage_restore(s, &r);
    assert_int_equal(r.n_entries, 1);
    assert_int_equal(r.hs.commit, 1);
    assert_int_equal(raft_storage_skipped_bytes(s), ENTRY_REC_BYTES(5) + ENTRY_REC_BYTES(6));
    struct raft_config cfg;
    raft_config_default(&cfg, 1);
    struct raft *node;
    assert_int_equal(raft_new(&cfg, &r, NULL, &node), 0);
    raft_free(node);
    raft_storage_close(s);
}

/* Saving through a salvage-mode storage is a bug: the assertion stops the process. */
static void test_salvage_save_asserts(void **state)
{
    (void)state;
    uint64_t at[AT_N];
    build_log(dir, at, false);
    struct raft_storage *s;
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_SALVAGE, &s), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(STDERR_FILENO); /* the assertion message is expected */
        struct raft_entry e = ent(5, 1, "x");
        struct raft_ready rd = {.entries = &e, .n_entries = 1};
        raft_storage_save(s, &rd, true);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    raft_storage_close(s);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no-such-dir", dir);
    assert_int_equal(raft_storage_open(missing, RAFT_STORAGE_SALVAGE, &s), -ENOENT);
    assert_false(exists_in(dir, "no-such-dir"));
}

/* ---- the clean-shutdown marker ---- */

static void test_clean_marker(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(open_strict(dir, &s), 0);
    assert_false(exists_in(dir, "clean-shutdown"));
    struct raft_entry e1 = ent(1, 1, "a");
    struct raft_ready rd = {.hs_changed = true, .hs = {1, 1, 1}, .entries = &e1, .n_entries = 1};
    assert_int_equal(raft_storage_save(s, &rd, false), 0); /* close syncs it */
    raft_storage_close(s);
    assert_true(exists_in(dir, "clean-shutdown"));
    /* A strict open takes the marker away: the next crash may tear the tail again. */
    assert_int_equal(open_strict(dir, &s), 0);
    assert_false(exists_in(dir, "clean-shutdown"));
    raft_storage_close(s);
    assert_true(exists_in(dir, "clean-shutdown"));
    /* Salvage neither takes it away nor writes one. */
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_SALVAGE, &s), 0);
    raft_storage_close(s);
    assert_true(exists_in(dir, "clean-shutdown"));
    /* raft.log gone although the node was shut down cleanly: refused, not recreated. */
    char log[512];
    path_in(dir, "raft.log", log, sizeof log);
    size_t len;
    uint8_t *saved = slurp(log, &len);
    assert_int_equal(unlink(log), 0);
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_STRICT, &s), -EBADMSG);
    assert_false(exists_in(dir, "raft.log"));
    spit(log, saved, len);
    free(saved);
    char marker[512];
    path_in(dir, "clean-shutdown", marker, sizeof marker);
    assert_int_equal(unlink(marker), 0);
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_SALVAGE, &s), 0);
    raft_storage_close(s);
    assert_false(exists_in(dir, "clean-shutdown"));
    /* A refused open writes none either. */
    apply_edit(log, (uint64_t[AT_N]){0}, &(struct edit){OP_APPEND_RECORD, AT_SAVE1, 9, 0});
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_STRICT, &s), -EBADMSG);
    assert_false(exists_in(dir, "clean-shutdown"));
}

/* ---- snapshots ---- */

/* The bytes of a snapshot file at (index, term), written through the storage. */
static uint8_t *snapshot_file(uint64_t index, uint64_t term, size_t *len)
{
    char d[300], p[512];
    snprintf(d, sizeof d, "%s/snap-%llu-%llu", dir, (unsigned long long)index,
             (unsigned long long)term);
    struct raft_storage *s;
    assert_int_equal(open_strict(d, &s), 0);
    struct raft_snapshot snap = {
        .index = index, .term = term, .len = 5, .data = (uint8_t *)"state"};
    snap.conf.voters[snap.conf.n_voters++] = 1;
    struct raft_ready rd = {.hs_changed = true, .hs = {term, 0, index}, .snapshot = &snap};
    assert_int_equal(raft_storage_save(s, &rd, true), 0);
    raft_storage_close(s);
    path_in(d, "snapshot", p, sizeof p);
    return slurp(p, len);
}

static void test_corrupt_snapshot(void **state)
{
    (void)state;
    size_t len;
    uint8_t *good = snapshot_file(10, 3, &len);
    char snap[512], log[512];
    path_in(dir, "snapshot", snap, sizeof snap);
    path_in(dir, "raft.log", log, sizeof log);
    struct raft_storage *s;
    assert_int_equal(open_strict(dir, &s), 0);
    raft_storage_close(s);
    for (size_t at = 0; at < len; at += 7) {
        good[at] ^= 0x01; /* magic, checksum, or anything the checksum covers */
        spit(snap, good, len);
        good[at] ^= 0x01;
        assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_STRICT, &s), -EBADMSG);
        assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_SALVAGE, &s), -EBADMSG);
        assert_int_equal(file_size(snap), len);
    }
    spit(snap, good, len / 2); /* cut short: the rename is atomic, so not a torn write */
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_STRICT, &s), -EBADMSG);
    assert_true(exists_in(dir, "clean-shutdown"));
    /* The intact snapshot opens; without raft.log beside it the vote is lost: refused. */
    spit(snap, good, len);
    assert_int_equal(open_strict(dir, &s), 0);
    struct raft_restore r;
    raft_storage_restore(s, &r);
    assert_non_null(r.snapshot);
    assert_int_equal(r.snapshot->index, 10);
    raft_storage_close(s);
    assert_int_equal(unlink(log), 0);
    assert_int_equal(raft_storage_open(dir, RAFT_STORAGE_STRICT, &s), -EBADMSG);
    assert_false(exists_in(dir, "raft.log"));
    free(good);
}

/* A crash between writing a received snapshot and rewriting the log leaves the old log
 * beside the new snapshot. Its entries after the snapshot are kept only if its entry at
 * the snapshot's index has the snapshot's term; an entry superseded below the snapshot
 * takes its suffix with it. */
static void test_interrupted_snapshot_save(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint64_t snap_term;
        bool overwrite_from_5; /* a later save replaced entries 5.. with 5 at term 2 */
        size_t entries;        /* recovered after the snapshot at 10 */
    } cases[] = {
        {"entry 10 has the snapshot's term", 1, false, 2},
        {"entry 10 has another term", 2, false, 0},
        {"entries from 5 on were superseded", 1, true, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char d[300], snap[512];
        snprintf(d, sizeof d, "%s/interrupted-%zu", dir, i);
        path_in(d, "snapshot", snap, sizeof snap);
        struct raft_storage *s;
        assert_int_equal(open_strict(d, &s), 0);
        struct raft_entry e[12];
        for (int k = 0; k < 12; k++)
            e[k] = ent((uint64_t)k + 1, 1, "old");
        save(s, e, 12, 1, 4);
        if (cases[i].overwrite_from_5) {
            struct raft_entry e5 = ent(5, 2, "new");
            save(s, &e5, 1, 2, 4);
        }
        crash_close(s, d);
        size_t len;
        uint8_t *bytes = snapshot_file(10, cases[i].snap_term, &len);
        spit(snap, bytes, len);
        free(bytes);
        assert_int_equal(open_strict(d, &s), 0);
        struct raft_restore r;
        raft_storage_restore(s, &r);
        if (r.n_entries != cases[i].entries)
            fail_msg("case \"%s\": %zu entries recovered", cases[i].name, r.n_entries);
        struct raft_config cfg;
        raft_config_default(&cfg, 1);
        struct raft *node;
        assert_int_equal(raft_new(&cfg, &r, NULL, &node), 0);
        raft_free(node);
        /* The recovered state is what the next start sees too, after more saves. */
        struct raft_entry next = ent(11 + cases[i].entries, 2, "next");
        save(s, &next, 1, 2, 10);
        crash_close(s, d);
        assert_int_equal(open_strict(d, &s), 0);
        raft_storage_restore(s, &r);
        assert_int_equal(r.n_entries, cases[i].entries + 1);
        assert_memory_equal(r.entries[r.n_entries - 1].data, "next", 4);
        raft_storage_close(s);
    }
}

/* Every file of d, sorted by name, with its contents, in one buffer: what an unaccepted
 * open must leave as it found it. */
static void dir_image(const char *d, struct buf *out)
{
    struct dirent **names;
    int n = scandir(d, &names, NULL, alphasort);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char p[512];
            path_in(d, names[i]->d_name, p, sizeof p);
            size_t len;
            uint8_t *data = slurp(p, &len);
            buf_append(out, names[i]->d_name, strlen(names[i]->d_name) + 1);
            buf_put_u32(out, (uint32_t)len);
            buf_append(out, data, len);
            free(data);
        }
        free(names[i]);
    }
    free(names);
}

/* A strict open only reads: every repair it decides (the torn tail, the snapshot install a
 * crash interrupted, a leftover snapshot.tmp, the marker) waits for raft_storage_accept,
 * so an owner that refuses what was restored closes it with every file as it was. */
static void test_open_writes_nothing_until_accepted(void **state)
{
    (void)state;
    char d[300], snap[512], log[512], tmp[512];
    snprintf(d, sizeof d, "%s/unaccepted", dir);
    path_in(d, "snapshot", snap, sizeof snap);
    path_in(d, "raft.log", log, sizeof log);
    path_in(d, "snapshot.tmp", tmp, sizeof tmp);
    struct raft_storage *s;
    assert_int_equal(open_strict(d, &s), 0);
    struct raft_entry e[12];
    for (int k = 0; k < 12; k++)
        e[k] = ent((uint64_t)k + 1, 1, "old");
    save(s, e, 12, 1, 4);
    crash_close(s, d);
    size_t len;
    uint8_t *bytes = snapshot_file(10, 2, &len); /* entry 10 has term 1: a conflict */
    spit(snap, bytes, len);
    free(bytes);
    spit(tmp, "leftover", 8);
    uint64_t whole = file_size(log);
    assert_int_equal(truncate(log, (off_t)whole + 5), 0); /* a torn tail of zeros */
    struct buf before, after;
    buf_init(&before);
    buf_init(&after);
    dir_image(d, &before);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(raft_storage_open(d, RAFT_STORAGE_STRICT, &s), 0);
        struct raft_restore r;
        raft_storage_restore(s, &r);
        assert_int_equal(r.n_entries, 0); /* decided: the conflicting entries go */
        raft_storage_close(s);
        buf_reset(&after);
        dir_image(d, &after);
        assert_int_equal(after.len, before.len);
        assert_memory_equal(after.data, before.data, before.len);
    }
    /* Accepted, the repairs are written, and the storage takes saves. */
    assert_int_equal(open_strict(d, &s), 0);
    assert_false(exists_in(d, "snapshot.tmp"));
    assert_true(file_size(log) < whole);
    struct raft_entry next = ent(11, 2, "next");
    save(s, &next, 1, 2, 10);
    crash_close(s, d);
    assert_int_equal(open_strict(d, &s), 0);
    struct raft_restore r;
    raft_storage_restore(s, &r);
    assert_int_equal(r.n_entries, 1);
    raft_storage_close(s);
    /* A new group's directory is created by accept, not by open. */
    char fresh[300];
    snprintf(fresh, sizeof fresh, "%s/fresh", dir);
    assert_int_equal(raft_storage_open(fresh, RAFT_STORAGE_STRICT, &s), 0);
    raft_storage_close(s);
    assert_false(exists_in(dir, "fresh"));
    assert_int_equal(open_strict(fresh, &s), 0);
    raft_storage_close(s);
    assert_true(exists_in(fresh, "raft.log"));
    assert_true(exists_in(fresh, "clean-shutdown"));
    buf_free(&before);
    buf_free(&after);
}

static void test_truncation_not_resurrected(void **state)
{
    (void)state;
    struct raft_storage *s;
    assert_int_equal(open_strict(dir, &s), 0);
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
    assert_int_equal(open_strict(dir, &s), 0);
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
    /* A stale temporary file from a crash mid-write is ignored, then removed. */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/snapshot.tmp", dir);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs("garbage", f);
    fclose(f);
    struct raft_restore r = reopen(&s);
    assert_false(exists_in(dir, "snapshot.tmp")); /* a strict open removes it */
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
    assert_int_equal(open_strict(dir, &s), 0);
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
    say_set_level(SAY_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_terms_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_salvage_reads_past_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_salvage_index_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_salvage_save_asserts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_snapshot_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_writes_nothing_until_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_not_resurrected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_into_core, setup, teardown),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_bad_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
