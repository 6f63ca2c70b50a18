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
 *
 * Recovery replays raft.log and truncates the file at the first record that is short,
 * fails its CRC or does not follow the log (a torn or corrupt tail); everything before it
 * was fdatasync'd before anything depending on it was sent.
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
#define REC_HEADER 8
#define SNAP_MAGIC 0x52534e50u /* "RSNP" */

struct raft_storage {
    char dir[PATH_MAX - 32];
    int log_fd;
    uint64_t log_bytes;
    struct raft_hard_state hs;
    struct raft_snapshot snap;
    struct raft_entry *ents;
    size_t n, cap;
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

static void mem_append(struct raft_storage *s, const struct raft_entry *e)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->ents = xrealloc(s->ents, s->cap * sizeof *s->ents);
    }
    struct raft_entry *c = &s->ents[s->n++];
    *c = *e;
    c->data = e->len ? xmalloc(e->len) : NULL;
    if (e->len)
        memcpy(c->data, e->data, e->len);
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
            log_error("raft", "write to %s failed: %s", what, strerror(err));
            return -err;
        }
        p += w;
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
    be32_write(b->data + at, (uint32_t)body);
    be32_write(b->data + at + 4, crc32c(0, b->data + at + REC_HEADER, body));
}

static void put_entry(struct buf *b, const struct raft_entry *e)
{
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

static int read_file(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    uint8_t chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            log_error("raft", "read of %s failed: %s", path, strerror(err));
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
        uint32_t conf_len = 2 + 8 * (uint32_t)RAFT_MAX_NODES;
        size_t before = rd.pos;
        uint8_t nv = (uint8_t)rd_i8(&rd), nl = (uint8_t)rd_i8(&rd);
        conf_len = 2 + 8u * (nv + nl);
        rd.pos = before;
        struct slice cs = rd_bytes(&rd, conf_len);
        s->snap.len = rd_u32(&rd);
        struct slice data = rd_bytes(&rd, s->snap.len);
        ok = !rd.err && rd_remaining(&rd) == 0 &&
             raft_conf_decode(cs.ptr, cs.len, &s->snap.conf) == 0;
        if (ok && s->snap.len) {
            s->snap.data = xmalloc(s->snap.len);
            memcpy(s->snap.data, data.ptr, s->snap.len);
        }
    }
    buf_free(&b);
    if (!ok) {
        /* The rename is atomic, so a bad snapshot file is corruption, not a torn write. */
        log_error("raft", "snapshot file %s is corrupt; refusing to start", path);
        memset(&s->snap, 0, sizeof s->snap);
        return -EIO;
    }
    return 0;
}

static int replay_log(struct raft_storage *s)
{
    char path[PATH_MAX];
    path_of(s, "raft.log", path, sizeof path);
    struct buf b;
    buf_init(&b);
    int rc = read_file(path, &b);
    if (rc != 0 && rc != -ENOENT) {
        buf_free(&b);
        return rc;
    }
    size_t pos = 0;
    const char *why = NULL;
    while (pos < b.len) {
        if (b.len - pos < REC_HEADER) {
            why = "short header";
            break;
        }
        uint32_t len = be32_read(b.data + pos), crc = be32_read(b.data + pos + 4);
        if (len == 0 || len > b.len - pos - REC_HEADER) {
            why = "short record";
            break;
        }
        const uint8_t *body = b.data + pos + REC_HEADER;
        if (crc32c(0, body, len) != crc) {
            why = "checksum mismatch";
            break;
        }
        struct reader rd;
        rd_init(&rd, body + 1, len - 1);
        if (body[0] == REC_ENTRY) {
            struct raft_entry e;
            e.term = (uint64_t)rd_i64(&rd);
            e.index = (uint64_t)rd_i64(&rd);
            e.type = (uint8_t)rd_i8(&rd);
            e.len = rd_u32(&rd);
            struct slice d = rd_bytes(&rd, e.len);
            e.data = (uint8_t *)d.ptr;
            if (rd.err || rd_remaining(&rd) || e.index == 0 || e.index > mem_last_index(s) + 1) {
                why = "entry does not follow the log";
                break;
            }
            if (e.index > s->snap.index) {
                mem_truncate_from(s, e.index);
                mem_append(s, &e);
            }
        } else if (body[0] == REC_HARD_STATE) {
            s->hs.term = (uint64_t)rd_i64(&rd);
            s->hs.vote = (uint64_t)rd_i64(&rd);
            s->hs.commit = (uint64_t)rd_i64(&rd);
            if (rd.err || rd_remaining(&rd)) {
                why = "malformed hard state";
                break;
            }
        } else {
            why = "unknown record kind";
            break;
        }
        pos += REC_HEADER + len;
    }
    buf_free(&b);
    s->log_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (s->log_fd < 0) {
        int err = errno;
        log_error("raft", "cannot open %s: %s", path, strerror(err));
        return -err;
    }
    if (why) {
        log_warn("raft", "%s: %s at byte %zu; truncating the tail", path, why, pos);
        if (ftruncate(s->log_fd, (off_t)pos) != 0 || fdatasync(s->log_fd) != 0) {
            int err = errno;
            log_error("raft", "cannot truncate %s: %s", path, strerror(err));
            return -err;
        }
    }
    if (lseek(s->log_fd, (off_t)pos, SEEK_SET) < 0)
        return -errno;
    s->log_bytes = pos;
    /* A commit index beyond what survived would make the core refuse to start; what was
     * committed is on a quorum anyway and will be learned again. */
    s->hs.commit = MIN(s->hs.commit, mem_last_index(s));
    return 0;
}

int raft_storage_open(const char *dir, struct raft_storage **out)
{
    *out = NULL;
    if (strlen(dir) >= sizeof(((struct raft_storage *)0)->dir))
        return -ENAMETOOLONG;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int err = errno;
        log_error("raft", "cannot create %s: %s", dir, strerror(err));
        return -err;
    }
    struct raft_storage *s = xcalloc(1, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->log_fd = -1;
    int rc = load_snapshot(s);
    if (rc == 0)
        rc = replay_log(s);
    if (rc != 0) {
        raft_storage_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void raft_storage_close(struct raft_storage *s)
{
    if (!s)
        return;
    if (s->log_fd >= 0)
        close(s->log_fd);
    mem_truncate_from(s, 0);
    free(s->ents);
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

uint64_t raft_storage_log_bytes(const struct raft_storage *s)
{
    return s->log_bytes;
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
        log_error("raft", "writing snapshot %s failed: %s", path, strerror(-rc));
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
        log_error("raft", "rewriting %s failed: %s", path, strerror(-rc));
        if (fd >= 0)
            close(fd);
        buf_free(&b);
        return rc;
    }
    close(s->log_fd);
    s->log_fd = fd;
    s->log_bytes = b.len;
    buf_free(&b);
    size_t k = 0;
    while (k < s->n && s->ents[k].index <= index)
        free(s->ents[k++].data);
    memmove(s->ents, s->ents + k, (s->n - k) * sizeof *s->ents);
    s->n -= k;
    return 0;
}

int raft_storage_save(struct raft_storage *s, const struct raft_ready *rd, bool sync)
{
    int rc;
    if (rd->snapshot) {
        /* Snapshot first: if we crash after it, the log replay drops what it covers. */
        rc = write_snapshot(s, rd->snapshot);
        if (rc != 0)
            return rc;
        mem_truncate_from(s, 0);
        if (rd->hs_changed)
            s->hs = rd->hs;
        rc = rewrite_log(s, rd->snapshot->index);
        if (rc != 0)
            return rc;
    }
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *e = &rd->entries[i];
        if (e->index > mem_last_index(s) + 1) {
            log_error("raft", "storage: entry %llu leaves a gap after %llu",
                      (unsigned long long)e->index, (unsigned long long)mem_last_index(s));
            buf_free(&b);
            return -EINVAL;
        }
        put_entry(&b, e);
        mem_truncate_from(s, e->index);
        mem_append(s, e);
    }
    if (rd->hs_changed) {
        put_hs(&b, &rd->hs);
        s->hs = rd->hs;
    }
    rc = write_all(s->log_fd, b.data, b.len, "raft.log");
    if (rc == 0)
        s->log_bytes += b.len;
    buf_free(&b);
    if (rc == 0 && sync && (rd->n_entries || rd->hs_changed) && fdatasync(s->log_fd) != 0) {
        rc = -errno;
        log_error("raft", "fdatasync of %s/raft.log failed: %s", s->dir, strerror(-rc));
    }
    return rc;
}

int raft_storage_compact(struct raft_storage *s, uint64_t index)
{
    if (index > s->snap.index)
        return -EINVAL; /* only what a durable snapshot covers may go */
    return rewrite_log(s, index);
}
