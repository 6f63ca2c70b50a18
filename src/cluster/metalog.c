/* Local metadata log. Entry framing: u32 payload length, u32 CRC32C of the payload,
 * payload; all big-endian. Each entry is one atomic change (a topic with its
 * partitions and configs), so replay never sees half a change.
 *
 * Metadata changes are rare (topic creation, config changes), so the append fsyncs
 * synchronously; this is the one place the event loop waits for the disk, and it goes
 * away when the cluster issue moves the metadata log into the Raft quorum. */
#include "cluster/metalog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define METALOG_MAX_ENTRY_BYTES (64u << 20)

struct metalog {
    int fd;
    char *path;
    off_t end; /* byte length of the valid log */
};

static int read_all(int fd, struct buf *b, const char *path) {
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            log_error("cluster", "reading metadata log %s failed: %s", path, strerror(e));
            return -e;
        }
        if (n == 0)
            return 0;
        buf_append(b, chunk, (size_t)n);
    }
}

int metalog_open(const char *dir, void (*apply)(void *arg, struct slice payload), void *arg,
                 struct metalog **out) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        log_error("cluster", "cannot create metadata dir %s: %s", dir, strerror(e));
        return -e;
    }
    struct metalog *m = xcalloc(1, sizeof *m);
    size_t plen = strlen(dir) + 32;
    m->path = xmalloc(plen);
    snprintf(m->path, plen, "%s/metadata.log", dir);
    m->fd = open(m->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (m->fd < 0) {
        int e = errno;
        log_error("cluster", "cannot open metadata log %s: %s", m->path, strerror(e));
        free(m->path);
        free(m);
        return -e;
    }
    struct buf b;
    buf_init(&b);
    int rc = read_all(m->fd, &b, m->path);
    if (rc != 0) {
        buf_free(&b);
        metalog_close(m);
        return rc;
    }
    size_t pos = 0, entries = 0;
    while (b.len - pos >= 8) {
        uint32_t len = be32_read(b.data + pos);
        uint32_t crc = be32_read(b.data + pos + 4);
        if (len > METALOG_MAX_ENTRY_BYTES || b.len - pos - 8 < len)
            break;
        if (crc32c(0, b.data + pos + 8, len) != crc)
            break;
        apply(arg, (struct slice){b.data + pos + 8, len});
        pos += 8 + len;
        entries++;
    }
    if (pos != b.len) {
        log_warn("cluster",
                 "metadata log %s has a torn or corrupt tail at byte %zu of %zu; truncating "
                 "(the change being written at the crash was never acknowledged)",
                 m->path, pos, b.len);
        if (ftruncate(m->fd, (off_t)pos) != 0 || fdatasync(m->fd) != 0) {
            int e = errno;
            log_error("cluster", "cannot truncate metadata log %s: %s", m->path, strerror(e));
            buf_free(&b);
            metalog_close(m);
            return -e;
        }
    }
    m->end = (off_t)pos;
    buf_free(&b);
    log_info("cluster", "replayed %zu metadata log entries from %s", entries, m->path);
    *out = m;
    return 0;
}

int metalog_append(struct metalog *m, const uint8_t *payload, size_t len) {
    ASSERT(len <= METALOG_MAX_ENTRY_BYTES);
    struct buf b;
    buf_init(&b);
    buf_put_u32(&b, (uint32_t)len);
    buf_put_u32(&b, crc32c(0, payload, len));
    buf_append(&b, payload, len);
    size_t done = 0;
    int rc = 0;
    while (done < b.len) {
        ssize_t n = pwrite(m->fd, b.data + done, b.len - done, m->end + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        done += (size_t)n;
    }
    if (rc == 0 && fdatasync(m->fd) != 0)
        rc = -errno;
    if (rc != 0) {
        log_error("cluster", "writing metadata log %s failed: %s", m->path, strerror(-rc));
        /* Cut off whatever part reached the file so the next append starts clean. */
        if (ftruncate(m->fd, m->end) != 0)
            log_error("cluster", "cannot truncate metadata log %s: %s", m->path, strerror(errno));
    } else {
        m->end += (off_t)b.len;
    }
    buf_free(&b);
    return rc;
}

void metalog_close(struct metalog *m) {
    if (!m)
        return;
    if (m->fd >= 0)
        close(m->fd);
    free(m->path);
    free(m);
}
