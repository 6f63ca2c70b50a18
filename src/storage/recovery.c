/*
 * Loading and recovering segments at log_open.
 *
 * seg_load_clean: for segments wholly below the recovery point (known durable and
 * consistent at the last clean flush). Trusts the data but not the indexes: they are
 * checked (size a multiple of the entry size, strictly increasing offsets and positions,
 * positions inside the file, timestamps non-decreasing) and the tail after the last
 * index entry is scanned (headers only) to find the next offset and max timestamp. Any
 * inconsistency sends the segment to full recovery.
 *
 * seg_recover: reads every batch, checks framing, magic, CRC32C and that offsets grow;
 * truncates the file at the first bad batch and rebuilds both indexes from scratch (for
 * files the broker wrote itself and can throw away: compaction output, truncation).
 *
 * seg_recover_keeping (log_open): the same scan, but damage is cut off only when it can
 * be the torn tail of the last write before a crash: in the last segment, with no intact
 * batch after it, at or past the recovery point. Everything else is damage to data that
 * may have been acknowledged: kept on disk, skipped to the next intact batch, recorded
 * in the segment and reported once. The caller deletes later segments only after a
 * truncation, which now happens only in the last one.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_internal.h"

#define RECOVER_CHUNK_BYTES 65536

void seg_note_batch(struct log *l, struct segment *s, const struct batch_info *b, int64_t pos)
{
    int64_t last = batch_last_offset(b);
    if (b->max_timestamp > s->max_timestamp) {
        s->max_timestamp = b->max_timestamp;
        s->offset_of_max_timestamp = last;
    }
    if (s->roll_base_ms < 0)
        s->roll_base_ms = b->max_timestamp >= 0 ? b->max_timestamp : s->last_modified_ms;
    seg_index_batch(l, s, pos, last, (int64_t)b->size_bytes);
    s->next_offset = last + 1;
}

/* Whether an intact batch starts at pos: header, length inside the file, base offset
 * at least `expect` (relative offsets fitting an int32), CRC32C over the whole batch.
 * 0 with *b filled; 1 with *why when not; < 0 on an I/O error. chunk: a scratch
 * buffer of RECOVER_CHUNK_BYTES. */
static int check_batch(struct segment *s, int64_t pos, int64_t file_size, int64_t expect,
                       uint8_t *chunk, struct batch_info *b, const char **why)
{
    uint8_t hdr[BATCH_HEADER_BYTES];
    ssize_t r = file_size - pos < BATCH_HEADER_BYTES ? 0 : pread_full(s->fd, hdr, sizeof hdr, pos);
    if (r < 0)
        return (int)r;
    if (r < BATCH_HEADER_BYTES) {
        *why = "torn batch header";
        return 1;
    }
    int rc = batch_parse_header_only(hdr, b);
    if (rc != 0) {
        *why = rc == STORAGE_ERR_BAD_MAGIC ? "bad magic" : "bad batch header";
        return 1;
    }
    if ((int64_t)b->size_bytes > file_size - pos) {
        *why = "torn batch (file ends inside it)";
        return 1;
    }
    if (b->base_offset < expect || batch_last_offset(b) - s->base_offset > INT32_MAX) {
        *why = "offset out of order";
        return 1;
    }
    uint32_t crc = crc32c(0, hdr + BATCH_OFF_ATTRIBUTES, BATCH_HEADER_BYTES - BATCH_OFF_ATTRIBUTES);
    int64_t at = pos + BATCH_HEADER_BYTES, end = pos + (int64_t)b->size_bytes;
    while (at < end) {
        size_t n = (size_t)MIN((int64_t)RECOVER_CHUNK_BYTES, end - at);
        r = pread_full(s->fd, chunk, n, at);
        if (r < 0)
            return (int)r;
        if ((size_t)r < n) {
            *why = "torn batch (short read)";
            return 1;
        }
        crc = crc32c(crc, chunk, n);
        at += (int64_t)n;
    }
    if (crc != b->crc) {
        *why = "CRC mismatch";
        return 1;
    }
    return 0;
}

/* Finds the next intact batch in s after `from` whose base offset is at least `expect`:
 * its position in *pos_out (-1 if there is none) and base offset in *base_out. 0, or a
 * negative errno. Recovery of a damaged segment only: reads the rest of the file a
 * window at a time and checks only the positions whose magic byte is 2. */
static int find_next_batch(struct segment *s, int64_t from, int64_t file_size, int64_t expect,
                           uint8_t *chunk, int64_t *pos_out, int64_t *base_out)
{
    /* Candidate starts p in (from, file_size - header]: their magic bytes at p + 16. */
    const int64_t last_magic = file_size - BATCH_HEADER_BYTES + BATCH_OFF_MAGIC;
    uint8_t *window = xmalloc(RECOVER_CHUNK_BYTES);
    int rc = 0;
    *pos_out = -1;
    for (int64_t w = from + 1 + BATCH_OFF_MAGIC; rc == 0 && *pos_out < 0 && w <= last_magic;
         w += RECOVER_CHUNK_BYTES) {
        size_t n = (size_t)MIN((int64_t)RECOVER_CHUNK_BYTES, last_magic - w + 1);
        ssize_t r = pread_full(s->fd, window, n, w);
        if (r < 0)
            rc = (int)r;
        for (size_t i = 0; rc == 0 && *pos_out < 0 && i < (size_t)MAX(r, 0); i++) {
            if (window[i] != 2)
                continue;
            struct batch_info b;
            const char *why;
            int64_t p = w + (int64_t)i - BATCH_OFF_MAGIC;
            int got = check_batch(s, p, file_size, expect, chunk, &b, &why);
            if (got < 0) {
                rc = got;
            } else if (got == 0) {
                *pos_out = p;
                *base_out = b.base_offset;
            }
        }
    }
    free(window);
    return rc;
}

static int recover(struct log *l, struct segment *s, int64_t expect_min_offset, bool keep_damage,
                   bool tail, int64_t synced_offset, bool *truncated);

int seg_recover(struct log *l, struct segment *s, int64_t expect_min_offset, bool *truncated)
{
    return recover(l, s, expect_min_offset, false, true, 0, truncated);
}

int seg_recover_keeping(struct log *l, struct segment *s, int64_t expect_min_offset, bool tail,
                        int64_t synced_offset, bool *truncated)
{
    return recover(l, s, expect_min_offset, true, tail, synced_offset, truncated);
}

static int recover(struct log *l, struct segment *s, int64_t expect_min_offset, bool keep_damage,
                   bool tail, int64_t synced_offset, bool *truncated)
{
    *truncated = false;
    /* Only seg_note_batch runs between reads, which opens nothing: s stays open. */
    int rc = seg_acquire(s);
    if (rc != 0)
        return rc;
    struct stat st;
    if (fstat(s->fd, &st) != 0)
        return -errno;
    int64_t file_size = st.st_size;
    s->last_modified_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    rc = idx_reset(&s->oidx);
    if (rc == 0)
        rc = idx_reset(&s->tidx);
    if (rc != 0)
        return rc;
    s->bytes_since_index = 0;
    s->max_timestamp = -1;
    s->offset_of_max_timestamp = -1;
    s->last_index_ts = -1;
    s->roll_base_ms = -1;
    s->next_offset = s->base_offset;
    int64_t expect = MAX(expect_min_offset, s->base_offset);

    uint8_t *chunk = xmalloc(RECOVER_CHUNK_BYTES);
    int64_t pos = 0;
    const char *why = NULL;
again:
    while (pos < file_size) {
        struct batch_info b;
        rc = check_batch(s, pos, file_size, expect, chunk, &b, &why);
        if (rc < 0) {
            free(chunk);
            return rc;
        }
        if (rc > 0)
            break;
        seg_note_batch(l, s, &b, pos);
        if (b.partition_leader_epoch >= 0)
            epoch_assign(l, b.partition_leader_epoch, b.base_offset);
        expect = batch_last_offset(&b) + 1;
        pos += (int64_t)b.size_bytes;
    }
    if (why && keep_damage) {
        int64_t next = -1, next_base = -1;
        rc = find_next_batch(s, pos, file_size, expect, chunk, &next, &next_base);
        if (rc != 0) {
            free(chunk);
            return rc;
        }
        if (!(tail && next < 0 && expect >= synced_offset)) {
            /* Not the torn tail of the last write: keep it, skip it, say so once. */
            int64_t to = next >= 0 ? next_base : tail ? MAX(expect, synced_offset) : -1;
            if (s->damaged_from < 0) {
                s->damaged_from = expect;
                s->damaged_to = to;
            }
            s->damage_reported = true;
            char to_text[24] = "the end of the segment";
            if (to >= 0)
                snprintf(to_text, sizeof to_text, "%lld", (long long)(to - 1));
            say_error(SUBSYS,
                      "partition %s: segment %lld damaged at byte %lld (%s): offsets %lld to "
                      "%s cannot be read. Kept on disk, nothing truncated; the rest of the "
                      "log is served and a fetch inside the damage gets CORRUPT_MESSAGE "
                      "(docs/operations.md, \"Damaged segments\")",
                      l->name, (long long)s->base_offset, (long long)pos, why, (long long)expect,
                      to_text);
            if (next >= 0) {
                why = NULL;
                pos = next;
                expect = next_base;
                /* Index the first batch after the damage, so reads can reach it. */
                s->bytes_since_index = INT64_MAX / 2;
                goto again;
            }
            s->size_bytes = file_size;
            if (to > s->next_offset)
                s->next_offset = to;
            s->bytes_since_index = INT64_MAX / 2;
            free(chunk);
            return 0;
        }
    }
    free(chunk);
    s->size_bytes = pos;
    if (why) {
        say_warn(SUBSYS,
                 "partition %s: %s in segment %lld at byte %lld (next offset %lld); "
                 "truncating %lld bytes",
                 l->name, why, (long long)s->base_offset, (long long)pos, (long long)expect,
                 (long long)(file_size - pos));
        if (ftruncate(s->fd, (off_t)pos) != 0) {
            int err = -errno;
            say_error(SUBSYS, "partition %s: cannot truncate segment %lld: %s", l->name,
                      (long long)s->base_offset, strerror(errno));
            return err;
        }
        *truncated = true;
    }
    return 0;
}

/* Tail scan state for seg_load_clean. */
struct tail_scan {
    struct log *l;
    struct segment *s;
    int64_t start_pos;   /* position of the last index entry (0 if none) */
    int64_t expect_last; /* last offset the first batch must have, or -1 */
    int64_t prev_next;
    bool bad;
};

static int tail_cb(void *arg, const struct batch_info *b, int64_t pos)
{
    struct tail_scan *t = arg;
    if (t->expect_last >= 0 && batch_last_offset(b) != t->expect_last) {
        t->bad = true;
        return 1;
    }
    t->expect_last = -1;
    /* A batch starting more than an interval past the last entry means entries are
     * missing (e.g. a deleted .index recreated empty, or a smaller interval): rebuild. */
    if (pos - t->start_pos > t->l->cfg.index_interval_bytes) {
        t->bad = true;
        return 1;
    }
    if (b->base_offset < t->prev_next) {
        t->bad = true;
        return 1;
    }
    t->prev_next = batch_last_offset(b) + 1;
    struct segment *s = t->s;
    if (b->max_timestamp > s->max_timestamp) {
        s->max_timestamp = b->max_timestamp;
        s->offset_of_max_timestamp = batch_last_offset(b);
    }
    s->next_offset = batch_last_offset(b) + 1;
    return 0;
}

int seg_load_clean(struct log *l, struct segment *s)
{
    int rc = seg_acquire(s); /* idx_load maps sealed indexes: only while open */
    if (rc != 0)
        return rc;
    struct stat st;
    if (fstat(s->fd, &st) != 0)
        return -errno;
    s->size_bytes = st.st_size;
    s->last_modified_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    rc = idx_load(&s->oidx, s->active);
    if (rc == 0)
        rc = idx_load(&s->tidx, s->active);
    if (rc != 0)
        return rc; /* STORAGE_ERR_CORRUPT for a mis-sized index: caller recovers */

    /* Offset index: strictly increasing offsets and positions, inside the file. */
    const uint8_t *e = idx_entries(&s->oidx);
    int64_t prev_off = -1, prev_pos = -1;
    for (size_t i = 0; i < s->oidx.n; i++) {
        int64_t off = (int32_t)be32_read(e + i * OFFSET_INDEX_ENTRY_BYTES);
        int64_t p = (int32_t)be32_read(e + i * OFFSET_INDEX_ENTRY_BYTES + 4);
        if (off <= prev_off || p <= prev_pos || p >= s->size_bytes)
            return STORAGE_ERR_CORRUPT;
        prev_off = off;
        prev_pos = p;
    }
    /* Time index: non-decreasing timestamps and offsets. */
    const uint8_t *t = idx_entries(&s->tidx);
    int64_t prev_ts = INT64_MIN, prev_rel = -1;
    for (size_t i = 0; i < s->tidx.n; i++) {
        int64_t ts = (int64_t)be64_read(t + i * TIME_INDEX_ENTRY_BYTES);
        int64_t rel = (int32_t)be32_read(t + i * TIME_INDEX_ENTRY_BYTES + 8);
        if (ts < prev_ts || rel < prev_rel || rel < 0)
            return STORAGE_ERR_CORRUPT;
        prev_ts = ts;
        prev_rel = rel;
    }
    s->max_timestamp = -1;
    s->offset_of_max_timestamp = -1;
    s->last_index_ts = -1;
    if (s->tidx.n > 0) {
        s->max_timestamp = prev_ts;
        s->offset_of_max_timestamp = s->base_offset + prev_rel;
        s->last_index_ts = prev_ts;
    }

    struct tail_scan ts_state = {.l = l, .s = s, .expect_last = -1, .prev_next = s->base_offset};
    int64_t start = 0;
    if (s->oidx.n > 0) {
        start = prev_pos;
        ts_state.expect_last = s->base_offset + prev_off;
        ts_state.start_pos = start;
    }
    s->next_offset = s->base_offset;
    int64_t bad_pos = -1;
    rc = seg_scan(l, s, start, s->size_bytes, tail_cb, &ts_state, &bad_pos);
    if (rc < 0 && rc != STORAGE_ERR_CORRUPT && rc != STORAGE_ERR_SHORT &&
        rc != STORAGE_ERR_BAD_MAGIC)
        return rc;
    if (rc != 0 || ts_state.bad)
        return STORAGE_ERR_CORRUPT;
    if (s->oidx.n > 0 && s->next_offset <= s->base_offset + prev_off)
        return STORAGE_ERR_CORRUPT;
    if (s->tidx.n > 0 && s->base_offset + prev_rel >= s->next_offset)
        return STORAGE_ERR_CORRUPT;
    s->bytes_since_index = s->size_bytes - start;

    if (s->size_bytes > 0) {
        uint8_t hdr[BATCH_HEADER_BYTES];
        ssize_t r = pread_full(s->fd, hdr, sizeof(hdr), 0);
        if (r < 0)
            return (int)r;
        struct batch_info b;
        if (r < BATCH_HEADER_BYTES || batch_parse_header_only(hdr, &b) != 0)
            return STORAGE_ERR_CORRUPT;
        s->roll_base_ms = b.max_timestamp >= 0 ? b.max_timestamp : s->last_modified_ms;
    }
    return 0;
}
