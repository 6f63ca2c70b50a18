/*
 * Durable raft storage: one directory per raft group (format in docs/raft.md).
 *
 *   raft.log   append-only records [u32 len][u32 crc32c][u8 kind][payload], len counting
 *              kind + payload, crc over the same bytes. kind 1: an entry (u64 term,
 *              u64 index, u8 type, u32 len, data); an entry at index i supersedes every
 *              stored entry >= i, so a truncation is itself an appended record and replay
 *              can never resurrect a truncated suffix. kind 2: hard state (term, vote,
 *              commit).
 *   snapshot   [u32 magic][u32 crc32c of the rest][u64 index][u64 term][conf][u32 len][data],
 *              replaced atomically: snapshot.tmp, fdatasync, rename, fsync(dir).
 *   clean-shutdown  empty; written by a close after which raft.log is known to be whole
 *              records, removed (durably) by raft_storage_accept after the next strict open.
 *
 * Recovery, strict mode (the rules of src/cluster/metalog.c, for raft's framing). A save
 * writes its records (the hard state, then entries) in one write and one fdatasync, each
 * save after the previous one returned, so the only damage a crash can leave is the tail
 * of the one save being written, and nothing depending on that save was sent. Damage is
 * such a torn tail when no clean-shutdown marker is present, no intact record starts
 * after it, and its length fields run into the end of the file (fewer bytes than a header,
 * a record reaching or passing the end) or into zeros that last to the end; it is cut off.
 * Anything else is corruption, refused with -EBADMSG and nothing changed: a damaged record
 * with an intact record after it, a whole record (good CRC) that is malformed or does not
 * follow the log, any damage after a clean shutdown, a corrupt snapshot, raft.log missing
 * beside a snapshot or the marker. Cutting the log there would forget entries and votes
 * this node acknowledged; for the metadata log, topics whose partition directories are
 * still on disk. Also: an interrupted save of a received snapshot is completed (the old
 * log's entries after a snapshot they conflict with are dropped, the log rewritten), the
 * commit index is capped at the last recovered entry, leftover *.tmp files are deleted,
 * and the marker is removed durably.
 *
 * Refusing changes nothing, by construction: a strict open only reads. It decides the
 * repairs above and keeps them in the mirror and in `struct repairs`; raft_storage_accept,
 * called by the owner once it has checked the restore too (raft_new's term order, its own
 * configuration), is the only step that writes them, and no save is taken before it. An
 * open that the storage or its owner refuses is closed unaccepted, and a close without
 * accept writes nothing (no marker either). So a torn tail is never cut, nor a snapshot
 * install completed, by a start that then refuses.
 *
 * Salvage mode (offline recovery) writes nothing: it replays every intact record it can,
 * skipping damaged stretches and entries that no longer follow the log, so that what it
 * returns stays contiguous, and counts the bytes it skipped.
 *
 * The whole log is mirrored in memory: the metadata log is small and compacted by
 * snapshots, and the core keeps its own copy anyway.
 */
#include "raft/raft.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC_ENTRY 1
#define REC_HARD_STATE 2
#define REC_HEADER CRC_FRAME_HEADER
/* The largest record a save writes: kind, term, index, type, data length, data. */
#define REC_MAX_BYTES (1u + 8 + 8 + 1 + 4 + RAFT_MAX_ENTRY_BYTES)
#define SNAP_MAGIC 0x52534e50u /* "RSNP" */
#define CLEAN_MARKER "clean-shutdown"

/* Strict: what recovery decided the disk needs, written by raft_storage_accept only. */
struct repairs {
    bool create_log;      /* raft.log is missing (a new group): create it */
    bool cut_tail;        /* cut the torn tail at log_bytes (of file_bytes) */
    const char *tail_why; /* ... what the damage there is */
    size_t file_bytes;
    bool drop_conflict; /* complete an interrupted snapshot install: rewrite raft.log */
    bool remove_marker; /* the clean-shutdown marker is present */
};

struct raft_storage {
    char dir[PATH_MAX - 32];
    enum raft_storage_mode mode;
    struct repairs repairs;
    bool accepted;        /* strict: raft_storage_accept succeeded; saves are taken */
    int log_fd;           /* raft.log, for saves; -1 before accept and in salvage mode */
    uint64_t log_bytes;   /* whole records in raft.log: where the next save writes */
    bool unsynced;        /* a save with sync false wrote bytes not yet fdatasync'd */
    bool intact;          /* strict: raft.log is exactly log_bytes of whole records */
    bool failed;          /* a save or compaction failed: the mirror may be ahead of the disk */
    size_t skipped_bytes; /* salvage: bytes of raft.log that were not replayed */
    struct raft_hard_state hs;
    struct raft_snapshot snap;
    struct raft_entry *ents;
    size_t n, cap;
    /* Salvage: intact entries that did not follow the log (after a damaged stretch). */
    struct raft_entry *strays;
    size_t n_strays, cap_strays;
};

static void path_of(const struct raft_storage *s, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", s->dir, name);
}

static void mem_truncate_from(struct raft_storage *s, uint64_t idx)
{
    while (s->n && s->ents[s->n - 1].index >= idx)
        free(s->ents[--s->n].data);
}

/* *to becomes e with its own copy of the data. */
static void entry_copy(struct raft_entry *to, const struct raft_entry *e)
{
    *to = *e;
    to->data = e->len ? xmalloc(e->len) : NULL;
    if (e->len)
        memcpy(to->data, e->data, e->len);
}

static void mem_append(struct raft_storage *s, const struct raft_entry *e)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->ents = xrealloc(s->ents, s->cap * sizeof *s->ents);
    }
    entry_copy(&s->ents[s->n++], e);
}

/* Salvage: keeps an entry that does not follow the log, superseding strays >= its index. */
static void stray_append(struct raft_storage *s, const struct raft_entry *e)
{
    while (s->n_strays && s->strays[s->n_strays - 1].index >= e->index)
        free(s->strays[--s->n_strays].data);
    if (s->n_strays == s->cap_strays) {
        s->cap_strays = s->cap_strays ? s->cap_strays * 2 : 16;
        s->strays = xrealloc(s->strays, s->cap_strays * sizeof *s->strays);
    }
    entry_copy(&s->strays[s->n_strays++], e);
}

static uint64_t mem_last_index(const struct raft_storage *s)
{
    return s->n ? s->ents[s->n - 1].index : s->snap.index;
}

static int write_all(int fd, const uint8_t *p, size_t len, const char *what)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            say_error("raft", "write to %s failed: %s", what, strerror(err));
            return -err;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t at, const char *what)
{
    while (len) {
        ssize_t w = pwrite(fd, p, len, (off_t)at);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            say_error("raft", "write to %s failed: %s", what, strerror(err));
            return -err;
        }
        p += w;
        at += (uint64_t)w;
        len -= (size_t)w;
    }
    return 0;
}

static void rec_begin(struct buf *b, size_t *at)
{
    *at = b->len;
    buf_extend(b, REC_HEADER);
}

static void rec_end(struct buf *b, size_t at)
{
    size_t body = b->len - at - REC_HEADER;
    ASSERT(body > 0 && body <= REC_MAX_BYTES);
    be32_write(b->data + at, (uint32_t)body);
    be32_write(b->data + at + 4, crc32c(0, b->data + at + REC_HEADER, body));
}

static void put_entry(struct buf *b, const struct raft_entry *e)
{
    ASSERT(e->len <= RAFT_MAX_ENTRY_BYTES);
    size_t at;
    rec_begin(b, &at);
    buf_put_i8(b, REC_ENTRY);
    buf_put_i64(b, (int64_t)e->term);
    buf_put_i64(b, (int64_t)e->index);
    buf_put_i8(b, (int8_t)e->type);
    buf_put_u32(b, e->len);
    buf_append(b, e->data, e->len);
    rec_end(b, at);
}

static void put_hs(struct buf *b, const struct raft_hard_state *hs)
{
    size_t at;
    rec_begin(b, &at);
    buf_put_i8(b, REC_HARD_STATE);
    buf_put_i64(b, (int64_t)hs->term);
    buf_put_i64(b, (int64_t)hs->vote);
    buf_put_i64(b, (int64_t)hs->commit);
    rec_end(b, at);
}

/* Reads the whole file: 0, -ENOENT (not logged: a fresh directory), or -errno (logged). */
static int read_file(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err != ENOENT)
            say_error("raft", "cannot open %s: %s", path, strerror(err));
        return -err;
    }
    uint8_t chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            say_error("raft", "read of %s failed: %s", path, strerror(err));
            close(fd);
            return -err;
        }
        if (r == 0)
            break;
        buf_append(out, chunk, (size_t)r);
    }
    close(fd);
    return 0;
}

static int load_snapshot(struct raft_storage *s)
{
    char path[PATH_MAX];
    path_of(s, "snapshot", path, sizeof path);
    struct buf b;
    buf_init(&b);
    int rc = read_file(path, &b);
    if (rc == -ENOENT) {
        buf_free(&b);
        return 0;
    }
    if (rc != 0) {
        buf_free(&b);
        return rc;
    }
    struct reader rd;
    rd_init(&rd, b.data, b.len);
    uint32_t magic = rd_u32(&rd), crc = rd_u32(&rd);
    bool ok = !rd.err && magic == SNAP_MAGIC && crc == crc32c(0, b.data + 8, b.len - 8);
    if (ok) {
        s->snap.index = (uint64_t)rd_i64(&rd);
        s->snap.term = (uint64_t)rd_i64(&rd);
        size_t before = rd.pos;
        uint8_t nv = (uint8_t)rd_i8(&rd), nl = (uint8_t)rd_i8(&rd);
        uint32_t conf_len = 2 + 8u * (nv + nl);
        rd.pos = before;
        struct slice cs = rd_bytes(&rd, conf_len);
        s->snap.len = rd_u32(&rd);
        struct slice data = rd_bytes(&rd, s->snap.len);
        ok = !rd.err && rd_remaining(&rd) == 0 && s->snap.index <= RAFT_MAX_INDEX &&
             s->snap.term <= RAFT_MAX_INDEX && raft_conf_decode(cs.ptr, cs.len, &s->snap.conf) == 0;
        if (ok && s->snap.len) {
            s->snap.data = xmalloc(s->snap.len);
            memcpy(s->snap.data, data.ptr, s->snap.len);
        }
    }
    size_t len = b.len;
    buf_free(&b);
    if (!ok) {
        /* The rename is atomic, so a bad snapshot file is corruption, not a torn write; and
         * without it the log that follows it means nothing, in salvage mode too. */
        say_error("raft",
                  "snapshot file %s (%zu bytes) is corrupt: bad magic, checksum or contents. "
                  "Not starting; nothing has been changed",
                  path, len);
        memset(&s->snap, 0, sizeof s->snap);
        return -EBADMSG;
    }
    return 0;
}

/* The byte length of the whole, intact record at data[pos, len), or 0 if there is none
 * (base's CRC frame: every record has at least its kind byte). */
static size_t rec_at(const uint8_t *data, size_t len, size_t pos)
{
    return crc_frame_at(data, len, pos, REC_MAX_BYTES);
}

/* What is wrong with the framing at pos, where rec_at found no record. */
static const char *damage_at(const uint8_t *data, size_t len, size_t pos)
{
    if (len - pos < REC_HEADER)
        return "fewer bytes than a record header";
    uint32_t n = be32_read(data + pos);
    if (n == 0)
        return "a record length of zero";
    if (n > REC_MAX_BYTES)
        return "an impossible record length";
    if (len - pos - REC_HEADER < n)
        return "a record that runs past the end of the file";
    return "a checksum mismatch";
}

/* The next position after `from` where an intact record starts, or len. Recovery only: it
 * may compute a CRC at many positions (only where the length field fits the file). */
static size_t next_record(const uint8_t *data, size_t len, size_t from)
{
    for (size_t p = from + 1; p + REC_HEADER < len; p++)
        if (rec_at(data, len, p) > 0)
            return p;
    return len;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/*
 * NULL if the damaged bytes data[pos, len) can be what a crash left of the last save, else
 * why not. The save wrote whole records from pos on; a crash leaves a prefix of them, the
 * rest missing or zeros, and the record the write stopped in may hold anything. So follow
 * the length fields from pos: torn if they run into the end of the file (fewer bytes than
 * a header, or a record reaching or passing the end) or into zeros that last to the end.
 * An intact record anywhere after pos (in particular one ending exactly at the end of the
 * file, metalog.c's test) means the last write completed after the damage: not torn.
 */
static const char *not_torn_because(const uint8_t *data, size_t len, size_t pos)
{
    if (next_record(data, len, pos) < len)
        return "intact records follow it";
    for (size_t q = pos;;) {
        size_t left = len - q;
        if (left < REC_HEADER)
            return NULL;
        uint32_t claimed = be32_read(data + q);
        if (claimed == 0)
            return all_zero(data + q, left) ? NULL : "zeros are followed by other data";
        if (claimed > REC_MAX_BYTES)
            return "it is followed by a record header with an impossible length";
        if (left <= REC_HEADER + (size_t)claimed)
            return NULL;
        q += REC_HEADER + claimed;
    }
}

enum rec_verdict { REC_OK, REC_MALFORMED, REC_UNKNOWN_KIND, REC_GAP };
static const char *const verdict_name[] = {
    [REC_OK] = "ok",
    [REC_MALFORMED] = "a malformed record",
    [REC_UNKNOWN_KIND] = "a record of unknown kind",
    [REC_GAP] = "an entry that does not follow the log (an index gap)",
};

/* What replaying raft.log found. */
struct replay {
    size_t pos;             /* end of the last record replayed (strict: where damage starts) */
    size_t records;         /* intact records replayed */
    const char *damage;     /* strict: what stopped the replay at pos, or NULL */
    bool whole_record;      /* ... and it is a whole record (good CRC): never a torn write */
    bool boundary_known;    /* the log holds an entry at the snapshot's index... */
    uint64_t boundary_term; /* ...with this term */
    uint64_t dropped, dropped_first, dropped_last; /* salvage: entries not following the log */
};

/* Applies the intact record body[0, len) to the mirror, or says why it cannot. */
static enum rec_verdict apply_record(struct raft_storage *s, const uint8_t *body, size_t len,
                                     struct replay *rp, uint64_t *index)
{
    struct reader rd;
    rd_init(&rd, body + 1, len - 1);
    if (body[0] == REC_HARD_STATE) {
        struct raft_hard_state hs;
        hs.term = (uint64_t)rd_i64(&rd);
        hs.vote = (uint64_t)rd_i64(&rd);
        hs.commit = (uint64_t)rd_i64(&rd);
        /* Terms and indexes past RAFT_MAX_INDEX are malformed, as in messages: the core
         * counts up from them (a campaign's term + 1) without room to overflow. */
        if (rd.err || rd_remaining(&rd) || hs.term > RAFT_MAX_INDEX)
            return REC_MALFORMED;
        s->hs = hs;
        return REC_OK;
    }
    if (body[0] != REC_ENTRY)
        return REC_UNKNOWN_KIND;
    struct raft_entry e;
    e.term = (uint64_t)rd_i64(&rd);
    e.index = (uint64_t)rd_i64(&rd);
    e.type = (uint8_t)rd_i8(&rd);
    e.len = rd_u32(&rd);
    struct slice d = rd_bytes(&rd, e.len);
    e.data = (uint8_t *)d.ptr;
    *index = e.index;
    if (rd.err || rd_remaining(&rd) || e.index == 0 || e.index > RAFT_MAX_INDEX ||
        e.term > RAFT_MAX_INDEX)
        return REC_MALFORMED;
    if (e.index > mem_last_index(s) + 1) {
        if (s->mode == RAFT_STORAGE_SALVAGE)
            stray_append(s, &e);
        return REC_GAP;
    }
    /* Supersedes every stored entry >= e.index, also when the snapshot covers e.index:
     * the log may still hold entries from before the snapshot was saved. */
    mem_truncate_from(s, e.index);
    if (e.index > s->snap.index) {
        mem_append(s, &e);
    } else if (e.index == s->snap.index) {
        rp->boundary_known = true;
        rp->boundary_term = e.term;
    } else {
        rp->boundary_known = false;
    }
    return REC_OK;
}

/* Replays b into the mirror. Strict: stops at the first damage (rp->damage). Salvage:
 * skips damaged stretches to the next intact record, and intact records that cannot be
 * applied, counting their bytes in s->skipped_bytes. */
static void replay_log(struct raft_storage *s, const char *path, const struct buf *b,
                       struct replay *rp)
{
    bool strict = s->mode == RAFT_STORAGE_STRICT;
    size_t pos = 0;
    while (pos < b->len) {
        size_t n = rec_at(b->data, b->len, pos);
        uint64_t index = 0;
        enum rec_verdict v = REC_OK;
        if (n > 0) {
            v = apply_record(s, b->data + pos + REC_HEADER, n - REC_HEADER, rp, &index);
            if (v == REC_OK) {
                pos += n;
                rp->records++;
                continue;
            }
        }
        if (strict) {
            rp->damage = n > 0 ? verdict_name[v] : damage_at(b->data, b->len, pos);
            rp->whole_record = n > 0;
            break;
        }
        size_t next;
        if (n == 0) {
            next = next_record(b->data, b->len, pos);
            say_warn("raft", "%s: skipping damaged bytes %zu..%zu (%s)", path, pos, next,
                     damage_at(b->data, b->len, pos));
        } else if (v == REC_GAP) {
            next = pos + n;
            rp->dropped_first = rp->dropped ? rp->dropped_first : index;
            rp->dropped_last = index;
            rp->dropped++;
        } else {
            next = pos + n;
            say_warn("raft", "%s: skipping %s at byte %zu", path, verdict_name[v], pos);
        }
        s->skipped_bytes += next - pos;
        pos = next;
    }
    rp->pos = pos;
}

static void refuse_damaged(const char *path, const struct buf *b, const struct replay *rp,
                           const char *why_not_torn)
{
    say_error("raft",
              "raft log %s is damaged at byte %zu of %zu (after %zu intact records): %s, and %s, "
              "so this is not a write cut short by a crash. Not starting: cutting the log there "
              "could forget entries and votes this node acknowledged. Nothing has been changed. "
              "Stop the node and recover it offline (raft storage salvage mode reads every "
              "intact record without writing)",
              path, rp->pos, b->len, rp->records, rp->damage, why_not_torn);
}

/* Removes leftovers of a crash during write_snapshot or rewrite_log; neither was in use.
 * Returns whether one was removed. */
static bool remove_leftover(const struct raft_storage *s, const char *name)
{
    char path[PATH_MAX];
    path_of(s, name, path, sizeof path);
    if (unlink(path) == 0) {
        say_info("raft", "removed %s, left over from an interrupted write", path);
        return true;
    }
    if (errno != ENOENT)
        say_warn("raft", "cannot remove %s: %s", path, strerror(errno));
    return false;
}

/* Recovers raft.log (see the top of the file) into the mirror, writing nothing. Strict: on
 * success the mirror is what the file will hold once s->repairs are written. */
static int recover_log(struct raft_storage *s)
{
    bool strict = s->mode == RAFT_STORAGE_STRICT;
    char path[PATH_MAX], marker[PATH_MAX];
    path_of(s, "raft.log", path, sizeof path);
    path_of(s, CLEAN_MARKER, marker, sizeof marker);
    bool clean = strict && access(marker, F_OK) == 0;
    struct buf b;
    buf_init(&b);
    int rc = read_file(path, &b);
    bool existed = rc != -ENOENT;
    if (rc != 0 && rc != -ENOENT) {
        buf_free(&b);
        return rc;
    }
    if (!existed && strict && (s->snap.index || clean)) {
        /* raft.log is created (and the directory fsync'd) by the first open, before any
         * snapshot or marker is written: without it the hard state (the vote) is gone. */
        say_error("raft",
                  "%s is missing although %s. Not starting: the term and vote this node "
                  "promised are lost. Nothing has been changed",
                  path, s->snap.index ? "a snapshot exists" : "the node was shut down cleanly");
        buf_free(&b);
        return -EBADMSG;
    }
    struct replay rp = {0};
    replay_log(s, path, &b, &rp);
    ASSERT(rp.pos <= b.len && (rp.damage != NULL) == (rp.pos < b.len));
    if (rp.damage) {
        ASSERT(strict);
        const char *why_not_torn = clean ? "the node was shut down cleanly (" CLEAN_MARKER
                                           " is present)"
                                   : rp.whole_record ? "the record is whole (its checksum is valid)"
                                                     : not_torn_because(b.data, b.len, rp.pos);
        if (why_not_torn) {
            refuse_damaged(path, &b, &rp, why_not_torn);
            buf_free(&b);
            return -EBADMSG;
        }
    }
    size_t file_bytes = b.len;
    buf_free(&b);
    /* A crash between writing a received snapshot and rewriting the log (raft_storage_save)
     * leaves the old log, whose entries after the snapshot conflict with it when its entry
     * at the snapshot's index has another term. The save would have dropped them. */
    bool conflict = rp.boundary_known && rp.boundary_term != s->snap.term;
    if (conflict) {
        say_warn("raft",
                 "%s: the entry at the snapshot's index %llu has term %llu, not %llu; dropping "
                 "the %zu entries after it (a save of a received snapshot was interrupted)",
                 path, (unsigned long long)s->snap.index, (unsigned long long)rp.boundary_term,
                 (unsigned long long)s->snap.term, s->n);
        mem_truncate_from(s, 0);
    }
    /* A commit index beyond what survived would make the core refuse to start; what was
     * committed is on a quorum anyway and will be learned again. */
    s->hs.commit = MIN(s->hs.commit, mem_last_index(s));
    s->log_bytes = rp.pos;
    if (!strict) {
        if (s->skipped_bytes || rp.dropped)
            say_warn("raft",
                     "%s (salvage): replayed %zu intact records of %zu bytes, skipped %zu "
                     "bytes; dropped %llu entries that did not follow the log (%llu..%llu)",
                     path, rp.records, file_bytes, s->skipped_bytes, (unsigned long long)rp.dropped,
                     (unsigned long long)rp.dropped_first, (unsigned long long)rp.dropped_last);
        return 0;
    }
    /* Strict and acceptable to the storage: what the disk needs is only decided here. */
    s->repairs = (struct repairs){.create_log = !existed,
                                  .cut_tail = rp.damage != NULL,
                                  .tail_why = rp.damage,
                                  .file_bytes = file_bytes,
                                  .drop_conflict = conflict,
                                  .remove_marker = clean};
    say_info("raft", "%s: recovered %zu entries after snapshot %llu, term %llu, from %zu records",
             path, s->n, (unsigned long long)s->snap.index, (unsigned long long)s->hs.term,
             rp.records);
    return 0;
}

int raft_storage_open(const char *dir, enum raft_storage_mode mode, struct raft_storage **out)
{
    *out = NULL;
    ASSERT(mode == RAFT_STORAGE_STRICT || mode == RAFT_STORAGE_SALVAGE);
    if (strlen(dir) >= sizeof(((struct raft_storage *)0)->dir))
        return -ENAMETOOLONG;
    /* Strict: a missing directory is a new group, created by raft_storage_accept. */
    if (mode == RAFT_STORAGE_SALVAGE) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            int err = errno ? errno : ENOTDIR;
            say_error("raft", "cannot salvage %s: %s", dir, strerror(err));
            return -err;
        }
    }
    struct raft_storage *s = xcalloc(1, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->mode = mode;
    s->log_fd = -1;
    int rc = load_snapshot(s);
    if (rc == 0)
        rc = recover_log(s);
    if (rc != 0) {
        raft_storage_close(s); /* unaccepted: writes nothing */
        return rc;
    }
    *out = s;
    return 0;
}

static int rewrite_log(struct raft_storage *s, uint64_t index);

/* The only step of a strict open that writes: see "Refusing changes nothing" at the top. */
int raft_storage_accept(struct raft_storage *s)
{
    ASSERT(s->mode == RAFT_STORAGE_STRICT && !s->accepted && s->log_fd < 0 && !s->failed);
    const struct repairs *fix = &s->repairs;
    char path[PATH_MAX], marker[PATH_MAX];
    path_of(s, "raft.log", path, sizeof path);
    path_of(s, CLEAN_MARKER, marker, sizeof marker);
    int rc = 0;
    bool dir_changed = false;
    if (mkdir(s->dir, 0755) == 0) {
        dir_changed = true;
    } else if (errno != EEXIST) {
        rc = -errno;
        say_error("raft", "cannot create %s: %s", s->dir, strerror(-rc));
        goto failed;
    }
    s->log_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (s->log_fd < 0) {
        rc = -errno;
        say_error("raft", "cannot open %s: %s", path, strerror(-rc));
        goto failed;
    }
    dir_changed |= fix->create_log;
    if (fix->cut_tail) {
        say_warn("raft",
                 "%s has a torn tail at byte %llu of %zu (%s); truncating (the save being "
                 "written at the crash never returned, so nothing depending on it was sent)",
                 path, (unsigned long long)s->log_bytes, fix->file_bytes, fix->tail_why);
        if (ftruncate(s->log_fd, (off_t)s->log_bytes) != 0 || fdatasync(s->log_fd) != 0) {
            rc = -errno;
            say_error("raft", "cannot truncate %s: %s", path, strerror(-rc));
            goto failed;
        }
    }
    if (fix->drop_conflict && (rc = rewrite_log(s, s->snap.index)) != 0)
        goto failed;
    dir_changed |= remove_leftover(s, "snapshot.tmp");
    dir_changed |= remove_leftover(s, "raft.log.tmp");
    /* From the first save on, a crash may tear the tail again: the marker must be gone
     * (durably) before anything is appended. */
    if (fix->remove_marker) {
        if (unlink(marker) != 0) {
            rc = -errno;
            say_error("raft", "cannot remove %s: %s", marker, strerror(-rc));
            goto failed;
        }
        dir_changed = true;
    }
    if (dir_changed && (rc = fsync_dir(s->dir)) != 0) {
        say_error("raft", "fsync of directory %s failed: %s", s->dir, strerror(-rc));
        goto failed;
    }
    s->accepted = true;
    s->intact = true;
    return 0;
failed:
    s->failed = true; /* the repairs are half done: close (no marker) and start again */
    return rc;
}

/* Writes the clean-shutdown marker: raft.log is whole records and durable. */
static void write_marker(struct raft_storage *s)
{
    char marker[PATH_MAX];
    path_of(s, CLEAN_MARKER, marker, sizeof marker);
    int err = 0;
    if (s->unsynced && fdatasync(s->log_fd) != 0) {
        err = errno;
    } else {
        int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || close(fd) != 0)
            err = errno;
        else
            err = -fsync_dir(s->dir);
    }
    if (err)
        say_warn("raft", "cannot write %s (the next start treats raft.log as after a crash): %s",
                 marker, strerror(err));
}

void raft_storage_close(struct raft_storage *s)
{
    if (!s)
        return;
    if (s->log_fd >= 0) {
        if (s->accepted && s->intact)
            write_marker(s);
        close(s->log_fd);
    }
    mem_truncate_from(s, 0);
    free(s->ents);
    for (size_t i = 0; i < s->n_strays; i++)
        free(s->strays[i].data);
    free(s->strays);
    free(s->snap.data);
    free(s);
}

void raft_storage_restore(struct raft_storage *s, struct raft_restore *out)
{
    out->hs = s->hs;
    out->snapshot = s->snap.index ? &s->snap : NULL;
    out->entries = s->ents;
    out->n_entries = s->n;
}

void raft_storage_strays(const struct raft_storage *s, const struct raft_entry **entries, size_t *n)
{
    *entries = s->strays;
    *n = s->n_strays;
}

uint64_t raft_storage_log_bytes(const struct raft_storage *s)
{
    return s->log_bytes;
}

size_t raft_storage_skipped_bytes(const struct raft_storage *s)
{
    return s->skipped_bytes;
}

static int write_snapshot(struct raft_storage *s, const struct raft_snapshot *snap)
{
    struct buf b;
    buf_init(&b);
    buf_put_u32(&b, SNAP_MAGIC);
    buf_put_u32(&b, 0);
    buf_put_i64(&b, (int64_t)snap->index);
    buf_put_i64(&b, (int64_t)snap->term);
    raft_conf_encode(&snap->conf, &b);
    buf_put_u32(&b, snap->len);
    buf_append(&b, snap->data, snap->len);
    be32_write(b.data + 4, crc32c(0, b.data + 8, b.len - 8));
    char tmp[PATH_MAX], path[PATH_MAX];
    path_of(s, "snapshot.tmp", tmp, sizeof tmp);
    path_of(s, "snapshot", path, sizeof path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : write_all(fd, b.data, b.len, tmp);
    buf_free(&b);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_dir(s->dir);
    if (rc != 0) {
        say_error("raft", "writing snapshot %s failed: %s", path, strerror(-rc));
        return rc;
    }
    free(s->snap.data);
    s->snap = *snap;
    s->snap.data = snap->len ? xmalloc(snap->len) : NULL;
    if (snap->len)
        memcpy(s->snap.data, snap->data, snap->len);
    return 0;
}

/* Rewrites raft.log with the hard state and the entries after index (atomically). */
static int rewrite_log(struct raft_storage *s, uint64_t index)
{
    ASSERT(s->mode == RAFT_STORAGE_STRICT && s->log_fd >= 0);
    struct buf b;
    buf_init(&b);
    put_hs(&b, &s->hs);
    for (size_t i = 0; i < s->n; i++)
        if (s->ents[i].index > index)
            put_entry(&b, &s->ents[i]);
    char tmp[PATH_MAX], path[PATH_MAX];
    path_of(s, "raft.log.tmp", tmp, sizeof tmp);
    path_of(s, "raft.log", path, sizeof path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : write_all(fd, b.data, b.len, tmp);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_dir(s->dir);
    if (rc != 0) {
        say_error("raft", "rewriting %s failed: %s", path, strerror(-rc));
        if (fd >= 0)
            close(fd);
        buf_free(&b);
        return rc;
    }
    close(s->log_fd);
    s->log_fd = fd;
    s->log_bytes = b.len;
    s->unsynced = false;
    buf_free(&b);
    size_t k = 0;
    while (k < s->n && s->ents[k].index <= index)
        free(s->ents[k++].data);
    if (k > 0)
        memmove(s->ents, s->ents + k, (s->n - k) * sizeof *s->ents);
    s->n -= k;
    return 0;
}

/* A failed write leaves the mirror ahead of the file (and after a failed fdatasync the
 * kernel may have dropped the dirty pages): the storage takes no further saves. Cut off
 * whatever part of the save reached the file, so that the file stays whole records. */
static int save_failed(struct raft_storage *s, int rc)
{
    s->failed = true;
    if (ftruncate(s->log_fd, (off_t)s->log_bytes) != 0) {
        say_error("raft", "cannot truncate %s/raft.log back to %llu bytes: %s", s->dir,
                  (unsigned long long)s->log_bytes, strerror(errno));
        s->intact = false;
    }
    return rc;
}

int raft_storage_save(struct raft_storage *s, const struct raft_ready *rd, bool sync)
{
    /* A salvaged log is read, never written; a strict one only once accepted. */
    ASSERT(s->mode == RAFT_STORAGE_STRICT && (s->accepted || s->failed));
    if (s->failed) {
        say_error("raft", "%s: an earlier save failed; reopen the storage", s->dir);
        return -EIO;
    }
    int rc;
    if (rd->snapshot) {
        /* Snapshot first: if we crash after it, the log replay drops what it covers. */
        rc = write_snapshot(s, rd->snapshot);
        if (rc != 0) {
            s->failed = true;
            return rc;
        }
        mem_truncate_from(s, 0);
        if (rd->hs_changed)
            s->hs = rd->hs;
        rc = rewrite_log(s, rd->snapshot->index);
        if (rc != 0) {
            s->failed = true;
            return rc;
        }
    }
    struct buf b;
    buf_init(&b);
    /* The hard state goes first: a crash that tears this write then keeps a prefix in
     * which the stored term is never behind an entry's (every entry of a ready has a
     * term at most the ready's hard state's), so what recovery finds always passes the
     * start-up checks. Entries first could keep a new term's entry without the term:
     * a normal crash would leave a node that refuses to start. A commit index ahead of
     * the entries that survived is capped at recovery. */
    if (rd->hs_changed) {
        put_hs(&b, &rd->hs);
        s->hs = rd->hs;
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *e = &rd->entries[i];
        if (e->index > mem_last_index(s) + 1) {
            say_error("raft", "storage: entry %llu leaves a gap after %llu",
                      (unsigned long long)e->index, (unsigned long long)mem_last_index(s));
            buf_free(&b);
            s->failed = true; /* earlier entries of this ready are in the mirror only */
            return -EINVAL;
        }
        put_entry(&b, e);
        mem_truncate_from(s, e->index);
        mem_append(s, e);
    }
    rc = pwrite_all(s->log_fd, b.data, b.len, s->log_bytes, "raft.log");
    if (rc == 0 && sync && (b.len || s->unsynced) && fdatasync(s->log_fd) != 0) {
        rc = -errno;
        say_error("raft", "fdatasync of %s/raft.log failed: %s", s->dir, strerror(-rc));
    }
    size_t written = b.len;
    buf_free(&b);
    if (rc != 0)
        return save_failed(s, rc);
    s->log_bytes += written;
    s->unsynced = sync ? false : s->unsynced || written > 0;
    return 0;
}

int raft_storage_snapshot(struct raft_storage *s, const struct raft_snapshot *snap)
{
    ASSERT(s->mode == RAFT_STORAGE_STRICT && (s->accepted || s->failed));
    ASSERT(snap->index > 0 && snap->index <= mem_last_index(s));
    if (s->failed)
        return -EIO;
    /* Snapshot first, as in a save: a crash before the log is rewritten leaves entries
     * the snapshot covers, which recovery skips. */
    int rc = write_snapshot(s, snap);
    if (rc == 0)
        rc = rewrite_log(s, snap->index);
    if (rc != 0)
        s->failed = true;
    return rc;
}

int raft_storage_compact(struct raft_storage *s, uint64_t index)
{
    ASSERT(s->mode == RAFT_STORAGE_STRICT && (s->accepted || s->failed));
    if (index > s->snap.index)
        return -EINVAL; /* only what a durable snapshot covers may go */
    if (s->failed)
        return -EIO;
    int rc = rewrite_log(s, index);
    if (rc != 0)
        s->failed = true;
    return rc;
}
