/*
 * One segment: a .log file of whole record batches plus its sparse .index and
 * .timeindex. Index entries follow Kafka: before appending a batch, if more than
 * index_interval_bytes were written since the last entry, add (lastOffset of this batch,
 * its position) to .index and, if the max timestamp grew, (max timestamp so far, offset
 * of it) to .timeindex. So every batch after the last index entry is reachable by a
 * scan from that entry's position, and the last timeindex entry plus a tail scan gives
 * the segment's max timestamp.
 *
 * A segment's files are opened lazily and closed by the open-file cache (fcache.c):
 * everything that reads or writes them calls seg_acquire first.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "storage/storage_internal.h"

#define SCAN_BUF_BYTES 16384

char *seg_path(const char *dir, int64_t base_offset, const char *suffix)
{
    size_t n = strlen(dir) + 1 + 20 + strlen(suffix) + 1;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%020lld%s", dir, (long long)base_offset, suffix);
    return p;
}

static struct segment *seg_alloc(const struct log *l, int64_t base_offset)
{
    struct segment *s = xcalloc(1, sizeof(*s));
    s->base_offset = base_offset;
    s->path = seg_path(l->dir, base_offset, ".log");
    s->fd = -1;
    s->next_offset = base_offset;
    s->max_timestamp = -1;
    s->offset_of_max_timestamp = -1;
    s->roll_base_ms = -1;
    s->last_index_ts = -1;
    s->damaged_from = -1;
    s->damaged_to = -1;
    idx_init(&s->oidx, seg_path(l->dir, base_offset, ".index"), OFFSET_INDEX_ENTRY_BYTES);
    idx_init(&s->tidx, seg_path(l->dir, base_offset, ".timeindex"), TIME_INDEX_ENTRY_BYTES);
    return s;
}

static int open_file(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = -errno;
        say_error_ratelimited(SUBSYS, "cannot open %s: %s", path, storage_strerror(err));
        return err;
    }
    return fd;
}

/* Creates the .log file (O_EXCL) and empty index files, so that the directory always
 * holds all three (the indexes are written to by path later). The new descriptor goes
 * into the open-file cache: a new segment is about to be appended to. */
int seg_create(struct log *l, int64_t base_offset, struct segment **out)
{
    struct segment *s = seg_alloc(l, base_offset);
    fcache_make_room();
    int rc = open_file(s->path, O_RDWR | O_CREAT | O_EXCL);
    if (rc < 0) {
        seg_free(s);
        return rc;
    }
    seg_adopt_fd(s, rc);
    for (int i = 0; i < 2; i++) {
        rc = open_file(i == 0 ? s->oidx.path : s->tidx.path, O_WRONLY | O_CREAT | O_TRUNC);
        if (rc < 0) {
            seg_free(s);
            return rc;
        }
        close(rc);
    }
    *out = s;
    s->active = true;
    idx_reset(&s->oidx);
    idx_reset(&s->tidx);
    l->dir_gen++;
    say_info(SUBSYS, "partition %s: created segment with base offset %lld", l->name,
             (long long)base_offset);
    return 0;
}

int seg_open_files(struct log *l, int64_t base_offset, struct segment **out)
{
    /* Nothing is opened here: loading acquires the segment, and the cache closes it
     * again when others need the room. */
    *out = seg_alloc(l, base_offset);
    return 0;
}

void seg_free(struct segment *s)
{
    if (!s)
        return;
    seg_close_files(s);
    idx_close(&s->oidx);
    idx_close(&s->tidx);
    free(s->path);
    free(s);
}

int seg_sync_data(struct segment *s)
{
    if (s->fd >= 0)
        return fdatasync(s->fd) == 0 ? 0 : -errno;
    /* Closed by the cache: sync through a descriptor of our own rather than evict
     * another segment for it (log_close syncs every partition at shutdown). A file that
     * is gone holds nothing to sync. */
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int rc = fdatasync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

void seg_unlink_files(struct log *l, int64_t base_offset)
{
    static const char *const suffixes[] = {".log", ".index", ".timeindex", ".txnindex"};
    for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
        char *p = seg_path(l->dir, base_offset, suffixes[i]);
        if (unlink(p) != 0 && errno != ENOENT)
            say_error(SUBSYS, "partition %s: cannot delete %s: %s", l->name, p, strerror(errno));
        free(p);
    }
    l->dir_gen++;
}

void seg_delete(struct log *l, struct segment *s)
{
    /* Unlink directly: readers holding a dup'd fd keep reading the data. */
    seg_unlink_files(l, s->base_offset);
    say_info(SUBSYS, "partition %s: deleted segment with base offset %lld (%lld bytes)", l->name,
             (long long)s->base_offset, (long long)s->size_bytes);
    seg_free(s);
}

static void time_entry_append(struct segment *s)
{
    uint8_t e[TIME_INDEX_ENTRY_BYTES];
    be64_write(e, (uint64_t)s->max_timestamp);
    be32_write(e + 8, (uint32_t)(s->offset_of_max_timestamp - s->base_offset));
    idx_append(&s->tidx, e);
    s->last_index_ts = s->max_timestamp;
}

int seg_seal(struct log *l, struct segment *s)
{
    if (!s->active)
        return 0;
    if (s->max_timestamp >= 0 && s->max_timestamp > s->last_index_ts)
        time_entry_append(s);
    s->active = false;
    int rc = idx_seal(&s->oidx);
    int rc2 = idx_seal(&s->tidx);
    return rc ? rc : rc2;
}

void seg_index_batch(struct log *l, struct segment *s, int64_t pos, int64_t last_offset,
                     int64_t size_bytes)
{
    if (s->bytes_since_index > l->cfg.index_interval_bytes) {
        uint8_t e[OFFSET_INDEX_ENTRY_BYTES];
        be32_write(e, (uint32_t)(last_offset - s->base_offset));
        be32_write(e + 4, (uint32_t)pos);
        idx_append(&s->oidx, e);
        if (s->max_timestamp > s->last_index_ts)
            time_entry_append(s);
        s->bytes_since_index = 0;
    }
    s->bytes_since_index += size_bytes;
}

int64_t seg_index_position_covering(const struct segment *s, int64_t target_offset)
{
    const uint8_t *e = idx_entries(&s->oidx);
    int64_t rel = target_offset - s->base_offset;
    for (size_t i = 0; i < s->oidx.n; i++) {
        if ((int32_t)be32_read(e + i * OFFSET_INDEX_ENTRY_BYTES) >= rel)
            return (int64_t)be32_read(e + i * OFFSET_INDEX_ENTRY_BYTES + 4);
    }
    return -1;
}

int64_t seg_lookup_position(const struct segment *s, int64_t target_offset)
{
    const uint8_t *e = idx_entries(&s->oidx);
    ASSERT(e != NULL || s->oidx.n == 0); /* acquired: sealed indexes are mapped */
    int64_t rel = target_offset - s->base_offset;
    size_t lo = 0, hi = s->oidx.n; /* find first entry with offset > rel */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t off = (int32_t)be32_read(e + mid * OFFSET_INDEX_ENTRY_BYTES);
        if (off <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    return (int64_t)be32_read(e + (lo - 1) * OFFSET_INDEX_ENTRY_BYTES + 4);
}

int64_t seg_lookup_time(const struct segment *s, int64_t ts)
{
    const uint8_t *e = idx_entries(&s->tidx);
    ASSERT(e != NULL || s->tidx.n == 0); /* acquired: sealed indexes are mapped */
    size_t lo = 0, hi = s->tidx.n;       /* first entry with timestamp > ts */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t t = (int64_t)be64_read(e + mid * TIME_INDEX_ENTRY_BYTES);
        if (t <= ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return s->base_offset;
    return s->base_offset + (int32_t)be32_read(e + (lo - 1) * TIME_INDEX_ENTRY_BYTES + 8);
}

int seg_scan(struct log *l, struct segment *s, int64_t pos, int64_t end, seg_scan_fn fn, void *arg,
             int64_t *bad_pos)
{
    /* One buffer per thread (the loop, the cleaner), not per log: 10,000 partitions
     * each keeping a scan buffer would hold 160 MB. Callbacks never scan again. */
    static _Thread_local uint8_t buf[SCAN_BUF_BYTES];
    int rc = seg_acquire(s);
    if (rc != 0)
        return rc;
    int64_t buf_start = 0;
    size_t buf_len = 0;
    while (pos < end) {
        if (end - pos < BATCH_HEADER_BYTES) {
            *bad_pos = pos;
            return STORAGE_ERR_SHORT;
        }
        if (pos < buf_start || pos + BATCH_HEADER_BYTES > buf_start + (int64_t)buf_len) {
            size_t want = (size_t)MIN((int64_t)SCAN_BUF_BYTES, end - pos);
            ssize_t r = pread_full(s->fd, buf, want, pos);
            if (r < 0) {
                say_error_ratelimited(SUBSYS,
                                      "partition %s: read of segment %lld at %lld "
                                      "failed: %s",
                                      l->name, (long long)s->base_offset, (long long)pos,
                                      strerror((int)-r));
                return (int)r;
            }
            buf_start = pos;
            buf_len = (size_t)r;
            if (buf_len < BATCH_HEADER_BYTES) {
                *bad_pos = pos;
                return STORAGE_ERR_SHORT;
            }
        }
        struct batch_info b;
        rc = batch_parse_header_only(buf + (pos - buf_start), &b);
        if (rc != 0) {
            *bad_pos = pos;
            return rc;
        }
        if ((int64_t)b.size_bytes > end - pos) {
            *bad_pos = pos;
            return STORAGE_ERR_SHORT;
        }
        rc = fn(arg, &b, pos);
        if (rc != 0)
            return rc;
        pos += (int64_t)b.size_bytes;
    }
    return 0;
}
