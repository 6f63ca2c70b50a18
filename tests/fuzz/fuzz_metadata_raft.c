/*
 * fuzz_metadata_raft: libFuzzer target for the metadata log as Raft storage (raft.log,
 * snapshot, clean-shutdown in the metadata dir), as start-up (quorum_open, strict) and
 * `samsa metadata recover` (salvage, then quorum_replace) read it.
 *
 * Input: byte 0 flags (bit 0: write the clean-shutdown marker; bit 1: write a snapshot
 * file; bit 2: torn, cut the last raft.log record short; bit 3: no raft.log; bit 4: keep
 * the snapshot's magic and CRC as given), then u32 snapshot length and the snapshot bytes,
 * then raft.log. The harness writes the right CRC into each raft.log record
 * ([u32 len][u32 crc32c][body], src/raft/storage.c; the length is clamped to what is left)
 * and, unless bit 4, the snapshot's magic and CRC, so the fuzzer gets past the framing to
 * the records, the replay and the checks behind them.
 *
 * Properties (abort on violation):
 *   1. a strict open that fails leaves every file of the dir byte-identical;
 *   2. a strict open that succeeds, closed and opened again strictly, succeeds and applies
 *      the same entries (count and hash);
 *   3. a salvage open that succeeds, rewritten by quorum_replace, opens strictly with the
 *      same entries applied.
 * Build: cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON, target fuzz_metadata_raft; seeds:
 * make_seeds --raft DIR.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/quorum.h"
#include "fuzz_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_CLEAN 0x01
#define F_SNAPSHOT 0x02
#define F_TORN 0x04
#define F_NO_LOG 0x08
#define F_RAW_SNAPSHOT 0x10
#define SNAP_MAGIC 0x52534e50u /* storage.c's "RSNP" */
#define MAX_KEPT_ENTRIES 4096

/* What a quorum applied: a count, a hash of the sequence and (for a salvage) the entries. */
struct applied {
    size_t count;
    uint32_t hash;
    bool keep;
    struct slice *kept;
    size_t n_kept;
};

static void apply(void *arg, struct slice entry, bool own)
{
    (void)own;
    struct applied *a = arg;
    uint8_t len[4];
    be32_write(len, (uint32_t)entry.len);
    a->hash = crc32c(a->hash, len, 4);
    a->hash = crc32c(a->hash, entry.ptr, entry.len);
    a->count++;
    if (a->keep && a->n_kept < MAX_KEPT_ENTRIES) {
        uint8_t *copy = entry.len ? malloc(entry.len) : NULL;
        if (entry.len)
            memcpy(copy, entry.ptr, entry.len);
        a->kept[a->n_kept++] = (struct slice){copy, entry.len};
    }
}

static void applied_free(struct applied *a)
{
    for (size_t i = 0; i < a->n_kept; i++)
        free((void *)a->kept[i].ptr);
    free(a->kept);
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        abort();
}

/* Every file of the dir, sorted by name, with its length and contents. */
static void dir_image(struct buf *out)
{
    struct dirent **names;
    int n = scandir(fuzz_dir, &names, NULL, alphasort);
    if (n < 0)
        abort();
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            buf_append(out, name, strlen(name) + 1);
            char path[512];
            snprintf(path, sizeof path, "%s/%s", fuzz_dir, name);
            struct buf f;
            buf_init(&f);
            FILE *fp = fopen(path, "rb");
            if (!fp)
                abort();
            uint8_t chunk[4096];
            size_t r;
            while ((r = fread(chunk, 1, sizeof chunk, fp)) > 0)
                buf_append(&f, chunk, r);
            fclose(fp);
            buf_put_u32(out, (uint32_t)f.len);
            buf_append(out, f.data, f.len);
            buf_free(&f);
        }
        free(names[i]);
    }
    free(names);
}

/* The input's files, written into the (empty) dir. */
struct input {
    uint8_t flags;
    uint8_t *snap;
    size_t snap_len;
    uint8_t *log;
    size_t log_len;
};

static void write_input(const struct input *in)
{
    fuzz_dir_clear();
    if (in->flags & F_SNAPSHOT)
        write_file("snapshot", in->snap, in->snap_len);
    if (!(in->flags & F_NO_LOG))
        write_file("raft.log", in->log, in->log_len);
    if (in->flags & F_CLEAN)
        write_file("clean-shutdown", NULL, 0);
}

static void parse(const uint8_t *data, size_t size, struct input *in)
{
    in->flags = data[0];
    size_t pos = 1;
    uint32_t want = size - pos >= 4 ? be32_read(data + pos) : 0;
    pos += size - pos >= 4 ? 4 : size - pos;
    in->snap_len = MIN((size_t)want, size - pos);
    in->snap = malloc(in->snap_len + 1);
    memcpy(in->snap, data + pos, in->snap_len);
    pos += in->snap_len;
    if (!(in->flags & F_RAW_SNAPSHOT) && in->snap_len >= 8) {
        be32_write(in->snap, SNAP_MAGIC);
        be32_write(in->snap + 4, crc32c(0, in->snap + 8, in->snap_len - 8));
    }
    in->log_len = size - pos;
    in->log = malloc(in->log_len + 1);
    memcpy(in->log, data + pos, in->log_len);
    /* Each record's CRC made right, its length clamped to what is left. */
    size_t last = SIZE_MAX, last_bytes = 0;
    for (size_t at = 0; at + 8 <= in->log_len;) {
        uint32_t n = be32_read(in->log + at) % (uint32_t)(in->log_len - at - 8 + 1);
        be32_write(in->log + at, n);
        be32_write(in->log + at + 4, crc32c(0, in->log + at + 8, n));
        last = at;
        last_bytes = 8 + (size_t)n;
        at += 8 + n;
    }
    if ((in->flags & F_TORN) && last != SIZE_MAX)
        in->log_len = last + MAX(last_bytes / 2, 1); /* inside the last record */
}

/* Strict open: properties 1 and 2. */
static void check_strict(const struct input *in)
{
    write_input(in);
    struct buf before, after;
    buf_init(&before);
    buf_init(&after);
    dir_image(&before);
    struct applied a = {0};
    struct quorum *q = NULL;
    int rc = quorum_open(
        fuzz_dir,
        &(struct quorum_config){.node_id = 1, .salvage = false, .apply = apply, .arg = &a}, &q,
        NULL);
    if (rc != 0) {
        dir_image(&after);
        if (after.len != before.len || memcmp(after.data, before.data, before.len) != 0)
            abort(); /* 1: refusing must change nothing */
    } else {
        quorum_close(q);
        struct applied again = {0};
        if (quorum_open(fuzz_dir,
                        &(struct quorum_config){
                            .node_id = 1, .salvage = false, .apply = apply, .arg = &again},
                        &q, NULL) != 0)
            abort(); /* 2: what opened once opens again */
        if (again.count != a.count || again.hash != a.hash)
            abort(); /* 2: ... with the same entries */
        quorum_close(q);
    }
    buf_free(&before);
    buf_free(&after);
}

/* Salvage, then quorum_replace, then strict: property 3. */
static void check_salvage(const struct input *in)
{
    write_input(in);
    struct applied a = {.keep = true, .kept = calloc(MAX_KEPT_ENTRIES, sizeof(struct slice))};
    struct quorum *q = NULL;
    if (quorum_open(
            fuzz_dir,
            &(struct quorum_config){.node_id = 1, .salvage = true, .apply = apply, .arg = &a}, &q,
            NULL) != 0) {
        applied_free(&a);
        return; /* a corrupt snapshot: salvage refuses it too */
    }
    if (a.count > MAX_KEPT_ENTRIES) {
        quorum_close(q);
        applied_free(&a);
        return;
    }
    char *kept = NULL;
    if (quorum_replace(q, a.kept, a.n_kept, &kept) != 0)
        abort();
    free(kept);
    quorum_close(q);
    struct applied b = {0};
    if (quorum_open(
            fuzz_dir,
            &(struct quorum_config){.node_id = 1, .salvage = false, .apply = apply, .arg = &b}, &q,
            NULL) != 0)
        abort(); /* 3: the rewritten log opens */
    if (b.count != a.count || b.hash != a.hash)
        abort(); /* 3: ... with what salvage read */
    quorum_close(q);
    applied_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_dir[0]) {
        fuzz_dir_init("raft");
        say_set_level(SAY_LEVEL_ERROR + 1);
    }
    if (size < 1)
        return 0;
    struct input in;
    parse(data, size, &in);
    check_strict(&in);
    check_salvage(&in);
    free(in.snap);
    free(in.log);
    return 0;
}
