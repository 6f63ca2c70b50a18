/* Local metadata log. Entry framing: u32 payload length, u32 CRC32C of the payload,
 * payload; all big-endian. Each entry is one atomic change (a topic with its
 * partitions and configs), so replay never sees half a change.
 *
 * Appends are synchronous (write, then fdatasync) and one at a time; the broker calls
 * them on its metadata thread (cluster.c's runner), never on the event loop.
 *
 * Damage. Appends are strictly one after the other, each fsync'd before the next, so
 * the only damage a crash can leave is the tail of the one entry being written: fewer
 * bytes than its header says, or all of them but not all written (a bad CRC on an
 * entry that ends the file), or zeros. That entry was never acknowledged, so it is cut
 * off. Anything else — a bad entry with more data after it, or any damage at all
 * after a clean shutdown (the clean-shutdown marker) — is corruption: truncating there
 * would forget every later topic while its partition directories stay on disk, so
 * start-up refuses and says how to recover instead (docs/operations.md). */
#include "cluster/metalog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define METALOG_MAX_ENTRY_BYTES (64u << 20)
#define METALOG_HEADER_BYTES CRC_FRAME_HEADER
#define CLEAN_MARKER "clean-shutdown"

struct metalog {
    int fd;
    char *dir;
    char *path;
    off_t end;     /* byte length of the valid log */
    bool writable; /* METALOG_SALVAGE opens read-only until metalog_replace */
    bool intact;   /* the file is exactly [0, end) of whole entries */
};

static int read_all(int fd, struct buf *b, const char *path)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            say_error("cluster", "reading metadata log %s failed: %s", path, strerror(e));
            return -e;
        }
        if (n == 0)
            return 0;
        buf_append(b, chunk, (size_t)n);
    }
}

/* The byte length of the whole, intact entry at data[pos..len), or 0 if there is none
 * (base's CRC frame: an entry counts its records, so it is never empty). */
static size_t entry_at(const uint8_t *data, size_t len, size_t pos)
{
    return crc_frame_at(data, len, pos, METALOG_MAX_ENTRY_BYTES);
}

/* Whether an intact entry ends exactly at the end of the file somewhere after `from`:
 * then the damage at `from` cannot be the torn tail of the last write. Only positions
 * whose length field points exactly at the end are checksummed, so this is cheap. */
static bool intact_entry_ends_file(const uint8_t *data, size_t len, size_t from)
{
    for (size_t p = from + 1; p + METALOG_HEADER_BYTES < len; p++)
        if (p + METALOG_HEADER_BYTES + be32_read(data + p) == len && entry_at(data, len, p) > 0)
            return true;
    return false;
}

/* Whether the bytes of data[pos, len) after the last whole entry can be what a crash
 * leaves of the one entry being appended: less than a header; a header whose entry
 * reaches or passes the end of the file (cut short, or complete in length but not all
 * written) with no intact entry after it; or zeros (blocks allocated, never written). */
static bool looks_torn(const uint8_t *data, size_t len, size_t pos)
{
    size_t n = len - pos;
    if (n < METALOG_HEADER_BYTES)
        return true;
    uint32_t claimed = be32_read(data + pos);
    if (claimed > 0 && claimed <= METALOG_MAX_ENTRY_BYTES &&
        n <= METALOG_HEADER_BYTES + (size_t)claimed)
        return !intact_entry_ends_file(data, len, pos);
    for (size_t i = pos; i < len; i++)
        if (data[i] != 0)
            return false;
    return true;
}

/* The next position after `from` where an intact entry starts, or len. Recovery only:
 * it may compute a CRC at many positions. */
static size_t next_entry(const uint8_t *data, size_t len, size_t from)
{
    for (size_t p = from + 1; p + METALOG_HEADER_BYTES <= len; p++)
        if (entry_at(data, len, p) > 0)
            return p;
    return len;
}

static void refuse_damaged(const struct metalog *m, size_t pos, size_t len, size_t entries,
                           bool clean)
{
    /* The metadata dir is <log.dirs>/__cluster_metadata-0: name the log dir. */
    const char *slash = strrchr(m->dir, '/');
    const char *parent = slash && slash != m->dir ? m->dir : ".";
    int parent_len = slash && slash != m->dir ? (int)(slash - m->dir) : 1;
    say_error("cluster",
              "metadata log %s is damaged at byte %zu of %zu (after %zu intact entries): %s. "
              "Not starting: cutting the log there would forget every topic recorded after "
              "that point while its partition directories are still on disk. Nothing has "
              "been changed. To recover this single node, stop it and run "
              "`samsa metadata recover --log-dir %.*s`, which keeps the damaged file aside "
              "and rebuilds the metadata from its intact entries and the partition "
              "directories (docs/operations.md, \"Damaged metadata\")",
              m->path, pos, len, entries,
              clean ? "the broker was stopped cleanly, so this is not a write cut short by a "
                      "crash"
                    : "an entry with a bad length or checksum is followed by more data, so "
                      "this is not a write cut short by a crash",
              parent_len, parent);
}

/* Applies the entries of b; in salvage mode skips damaged stretches. Returns the end of
 * the last whole entry reached without damage (strict) or b->len (salvage). */
static size_t replay(struct metalog *m, const struct buf *b, enum metalog_mode mode,
                     void (*apply)(void *arg, struct slice payload), void *arg,
                     struct metalog_stats *st)
{
    size_t pos = 0;
    while (pos < b->len) {
        size_t n = entry_at(b->data, b->len, pos);
        if (n == 0) {
            if (mode == METALOG_STRICT)
                return pos;
            size_t next = next_entry(b->data, b->len, pos);
            say_warn("cluster", "metadata log %s: skipping damaged bytes %zu..%zu", m->path, pos,
                     next);
            st->skipped_bytes += next - pos;
            pos = next;
            continue;
        }
        apply(arg, (struct slice){b->data + pos + METALOG_HEADER_BYTES, n - METALOG_HEADER_BYTES});
        pos += n;
        st->entries++;
    }
    return pos;
}

static struct metalog *metalog_new(const char *dir)
{
    struct metalog *m = xcalloc(1, sizeof *m);
    m->fd = -1;
    m->dir = xstrdup(dir);
    m->path = xpath_join(dir, "metadata.log");
    return m;
}

int metalog_open(const char *dir, enum metalog_mode mode,
                 void (*apply)(void *arg, struct slice payload), void *arg, struct metalog **out,
                 struct metalog_stats *stats)
{
    struct metalog_stats st = {0};
    if (mode == METALOG_STRICT && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        say_error("cluster", "cannot create metadata dir %s: %s", dir, strerror(e));
        return -e;
    }
    struct metalog *m = metalog_new(dir);
    char *marker = xpath_join(dir, CLEAN_MARKER);
    bool clean = access(marker, F_OK) == 0;
    m->writable = mode == METALOG_STRICT;
    m->fd = open(m->path, m->writable ? O_RDWR | O_CREAT | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0644);
    int rc = 0;
    if (m->fd < 0 && !(mode == METALOG_SALVAGE && errno == ENOENT)) {
        rc = -errno;
        say_error("cluster", "cannot open metadata log %s: %s", m->path, strerror(-rc));
        goto out;
    }
    struct buf b;
    buf_init(&b);
    if (m->fd >= 0 && (rc = read_all(m->fd, &b, m->path)) != 0) {
        buf_free(&b);
        goto out;
    }
    size_t pos = replay(m, &b, mode, apply, arg, &st);
    if (pos != b.len) {
        ASSERT(mode == METALOG_STRICT);
        if (clean || !looks_torn(b.data, b.len, pos)) {
            refuse_damaged(m, pos, b.len, st.entries, clean);
            buf_free(&b);
            rc = -EBADMSG;
            goto out;
        }
        say_warn("cluster",
                 "metadata log %s has a torn tail at byte %zu of %zu; truncating (the change "
                 "being written at the crash was never acknowledged)",
                 m->path, pos, b.len);
        if (ftruncate(m->fd, (off_t)pos) != 0 || fdatasync(m->fd) != 0) {
            rc = -errno;
            say_error("cluster", "cannot truncate metadata log %s: %s", m->path, strerror(-rc));
            buf_free(&b);
            goto out;
        }
    }
    buf_free(&b);
    m->end = (off_t)pos;
    m->intact = mode == METALOG_STRICT;
    /* From the first append on, a crash may tear the tail again: the marker must be gone
     * (durably) before anything is written. */
    if (clean && mode == METALOG_STRICT) {
        if (unlink(marker) != 0 || (rc = fsync_dir(dir)) != 0) {
            rc = rc ? rc : -errno;
            say_error("cluster", "cannot remove %s: %s", marker, strerror(-rc));
            goto out;
        }
    }
    st.was_empty = st.entries == 0;
    say_info("cluster", "replayed %zu metadata log entries from %s", st.entries, m->path);
out:
    free(marker);
    if (rc != 0) {
        m->intact = false; /* leave no marker: nothing about the file is known */
        metalog_close(m);
        return rc;
    }
    if (stats)
        *stats = st;
    *out = m;
    return 0;
}

static void frame(struct buf *b, const uint8_t *payload, size_t len)
{
    ASSERT(len > 0 && len <= METALOG_MAX_ENTRY_BYTES);
    buf_put_u32(b, (uint32_t)len);
    buf_put_u32(b, crc32c(0, payload, len));
    buf_append(b, payload, len);
}

static int pwrite_all(int fd, const uint8_t *data, size_t len, off_t at)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, data + done, len - done, at + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}

int metalog_append(struct metalog *m, const uint8_t *payload, size_t len)
{
    ASSERT(m->writable);
    struct buf b;
    buf_init(&b);
    frame(&b, payload, len);
    int rc = pwrite_all(m->fd, b.data, b.len, m->end);
    if (rc == 0 && fdatasync(m->fd) != 0)
        rc = -errno;
    if (rc != 0) {
        say_error("cluster", "writing metadata log %s failed: %s", m->path, strerror(-rc));
        /* Cut off whatever part reached the file so the next append starts clean. */
        if (ftruncate(m->fd, m->end) != 0) {
            say_error("cluster", "cannot truncate metadata log %s: %s", m->path, strerror(errno));
            m->intact = false;
        }
    } else {
        m->end += (off_t)b.len;
    }
    buf_free(&b);
    return rc;
}

int metalog_replace(struct metalog *m, const struct slice *payloads, size_t n, char **kept_path)
{
    *kept_path = NULL;
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < n; i++)
        frame(&b, payloads[i].ptr, payloads[i].len);
    if (mkdir(m->dir, 0755) != 0 && errno != EEXIST) {
        int rc = -errno;
        say_error("cluster", "cannot create metadata dir %s: %s", m->dir, strerror(-rc));
        buf_free(&b);
        return rc;
    }
    char *tmp = xpath_join(m->dir, "metadata.log.new");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : pwrite_all(fd, b.data, b.len, 0);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    buf_free(&b);
    if (rc != 0) {
        say_error("cluster", "cannot write %s: %s", tmp, strerror(-rc));
        free(tmp);
        return rc;
    }
    if (access(m->path, F_OK) == 0) {
        char name[64];
        snprintf(name, sizeof name, "metadata.log.damaged-%lld", (long long)time_wall_ms());
        *kept_path = xpath_join(m->dir, name);
        if (rename(m->path, *kept_path) != 0) {
            rc = -errno;
            say_error("cluster", "cannot move %s to %s: %s", m->path, *kept_path, strerror(-rc));
            free(*kept_path);
            *kept_path = NULL;
            free(tmp);
            return rc;
        }
    }
    if (rename(tmp, m->path) != 0)
        rc = -errno;
    free(tmp);
    if (rc == 0)
        rc = fsync_dir(m->dir);
    if (rc != 0) {
        say_error("cluster", "cannot put the new metadata log in place at %s: %s", m->path,
                  strerror(-rc));
        return rc;
    }
    if (m->fd >= 0)
        close(m->fd);
    m->fd = open(m->path, O_RDWR | O_CLOEXEC);
    if (m->fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(m->fd, &sb) != 0)
        return -errno;
    m->end = sb.st_size;
    m->writable = true;
    m->intact = true;
    return 0;
}

const char *metalog_path(const struct metalog *m)
{
    return m->path;
}

void metalog_forget(struct metalog *m)
{
    if (m)
        m->intact = false; /* no clean-shutdown marker */
    metalog_close(m);
}

void metalog_close(struct metalog *m)
{
    if (!m)
        return;
    if (m->fd >= 0) {
        if (m->writable && m->intact) {
            char *marker = xpath_join(m->dir, CLEAN_MARKER);
            int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0 || close(fd) != 0 || fsync_dir(m->dir) != 0)
                say_warn("cluster",
                         "cannot write %s (the next start treats the metadata log "
                         "as after a crash): %s",
                         marker, strerror(errno));
            free(marker);
        }
        close(m->fd);
    }
    free(m->dir);
    free(m->path);
    free(m);
}
