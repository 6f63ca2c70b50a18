/* The due-time index of a delay partition (delay.h): one append-only file per bucket of
 * due time, a checkpoint file saying how far into the delay log the files reach. */
#include "delay/delay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENTRY_BYTES 24
#define OPEN_FILES 16 /* bucket files kept open for appends */
#define CHECKPOINT "covered"
#define SCAN_CHUNK 4096 /* entries read at a time */

struct open_bucket {
    int64_t start; /* INT64_MIN: unused */
    int fd;
    uint64_t used; /* for eviction: the add counter at its last use */
};

struct bucket {
    int64_t start;
    bool dirty; /* written since the last checkpoint */
};

struct delay_index {
    char *dir;
    int64_t bucket_ms;
    int64_t covered;
    struct bucket *buckets; /* those with a file, by start, ascending */
    size_t bucket_count, bucket_cap;
    struct open_bucket open[OPEN_FILES];
    uint64_t adds;
};

static int64_t bucket_of(const struct delay_index *ix, int64_t due)
{
    int64_t b = due / ix->bucket_ms;
    if (due % ix->bucket_ms < 0)
        b--; /* floor, for times before 1970 */
    return b < INT64_MIN / ix->bucket_ms ? INT64_MIN : b * ix->bucket_ms;
}

static void bucket_path(const struct delay_index *ix, int64_t start, char *out, size_t size)
{
    snprintf(out, size, "%s/%lld.due", ix->dir, (long long)start);
}

/* Index of the first bucket >= start. */
static size_t bucket_lower(const struct delay_index *ix, int64_t start)
{
    size_t lo = 0, hi = ix->bucket_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->buckets[mid].start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The bucket of that start, added if new. */
static struct bucket *bucket_insert(struct delay_index *ix, int64_t start)
{
    size_t at = bucket_lower(ix, start);
    if (at < ix->bucket_count && ix->buckets[at].start == start)
        return &ix->buckets[at];
    if (ix->bucket_count == ix->bucket_cap) {
        ix->bucket_cap = ix->bucket_cap ? 2 * ix->bucket_cap : 64;
        ix->buckets = xrealloc(ix->buckets, ix->bucket_cap * sizeof *ix->buckets);
    }
    memmove(&ix->buckets[at + 1], &ix->buckets[at], (ix->bucket_count - at) * sizeof *ix->buckets);
    ix->buckets[at] = (struct bucket){start, false};
    ix->bucket_count++;
    return &ix->buckets[at];
}

/* Forgets the first n buckets. */
static void bucket_remove_first(struct delay_index *ix, size_t n)
{
    memmove(ix->buckets, ix->buckets + n, (ix->bucket_count - n) * sizeof *ix->buckets);
    ix->bucket_count -= n;
}

static int read_checkpoint(struct delay_index *ix)
{
    char path[4096], text[64] = "";
    snprintf(path, sizeof path, "%s/" CHECKPOINT, ix->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    long n = pread_full(fd, text, sizeof text - 1, 0);
    close(fd);
    if (n < 0)
        return (int)n;
    int64_t v;
    text[n] = '\0';
    char *nl = strchr(text, '\n');
    if (nl)
        *nl = '\0';
    /* A checkpoint that does not read back is as good as none: everything is added again. */
    if (parse_i64(text, &v) == 0 && v >= 0)
        ix->covered = v;
    return 0;
}

int delay_index_open(const char *dir, int64_t bucket_ms, struct delay_index **out)
{
    ASSERT(bucket_ms > 0);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct delay_index *ix = xcalloc(1, sizeof *ix);
    ix->dir = xstrdup(dir);
    ix->bucket_ms = bucket_ms;
    for (size_t i = 0; i < OPEN_FILES; i++)
        ix->open[i] = (struct open_bucket){INT64_MIN, -1, 0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long start;
        char rest[8];
        if (sscanf(e->d_name, "%lld.du%1s", &start, rest) == 2 && rest[0] == 'e')
            bucket_insert(ix, (int64_t)start);
    }
    closedir(d);
    int rc = read_checkpoint(ix);
    if (rc != 0) {
        delay_index_close(ix);
        return rc;
    }
    *out = ix;
    return 0;
}

void delay_index_close(struct delay_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < OPEN_FILES; i++)
        if (ix->open[i].fd >= 0)
            close(ix->open[i].fd);
    free(ix->buckets);
    free(ix->dir);
    free(ix);
}

/* The open file of bucket start (opened, evicting the least recently used, if needed). */
static int bucket_fd(struct delay_index *ix, int64_t start)
{
    struct open_bucket *victim = NULL; /* a free slot, else the least recently used */
    for (size_t i = 0; i < OPEN_FILES; i++) {
        struct open_bucket *o = &ix->open[i];
        if (o->start == start) {
            o->used = ix->adds;
            return o->fd;
        }
        if (!victim || (victim->fd >= 0 && (o->fd < 0 || o->used < victim->used)))
            victim = o;
    }
    char path[4096];
    bucket_path(ix, start, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (victim->fd >= 0)
        close(victim->fd);
    *victim = (struct open_bucket){start, fd, ix->adds};
    bucket_insert(ix, start);
    return fd;
}

static void encode(uint8_t out[ENTRY_BYTES], int64_t due, int64_t offset)
{
    memset(out, 0, ENTRY_BYTES);
    be64_write(out, (uint64_t)due);
    be64_write(out + 8, (uint64_t)offset);
    be32_write(out + 16, crc32c(0, out, 16));
}

int delay_index_add(struct delay_index *ix, int64_t due_ms, int64_t offset)
{
    ix->adds++;
    int64_t start = bucket_of(ix, due_ms);
    int fd = bucket_fd(ix, start);
    if (fd < 0)
        return fd;
    bucket_insert(ix, start)->dirty = true;
    uint8_t e[ENTRY_BYTES];
    encode(e, due_ms, offset);
    ssize_t n;
    do
        n = write(fd, e, sizeof e);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof e ? 0 : -EIO;
}

/* Reads one bucket file's entries due in [from, to) into fn. */
static int scan_file(const struct delay_index *ix, int64_t start, int64_t from, int64_t to,
                     void (*fn)(void *arg, int64_t due_ms, int64_t offset), void *arg,
                     size_t *damaged)
{
    char path[4096];
    bucket_path(ix, start, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    uint8_t *chunk = xmalloc(SCAN_CHUNK * ENTRY_BYTES);
    int rc = 0;
    for (int64_t pos = 0;; pos += SCAN_CHUNK * ENTRY_BYTES) {
        long n = pread_full(fd, chunk, SCAN_CHUNK * ENTRY_BYTES, pos);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        size_t whole = (size_t)n / ENTRY_BYTES;
        for (size_t i = 0; i < whole; i++) {
            const uint8_t *e = chunk + i * ENTRY_BYTES;
            if (be32_read(e + 16) != crc32c(0, e, 16)) {
                (*damaged)++;
                continue;
            }
            int64_t due = (int64_t)be64_read(e);
            if (due >= from && due < to)
                fn(arg, due, (int64_t)be64_read(e + 8));
        }
        if ((size_t)n % ENTRY_BYTES)
            (*damaged)++; /* a torn entry at the end */
        if ((size_t)n < SCAN_CHUNK * ENTRY_BYTES)
            break;
    }
    free(chunk);
    close(fd);
    return rc;
}

int delay_index_scan(struct delay_index *ix, int64_t from_ms, int64_t to_ms,
                     void (*fn)(void *arg, int64_t due_ms, int64_t offset), void *arg,
                     size_t *damaged)
{
    *damaged = 0;
    for (size_t i = bucket_lower(ix, bucket_of(ix, from_ms));
         i < ix->bucket_count && ix->buckets[i].start < to_ms; i++) {
        int rc = scan_file(ix, ix->buckets[i].start, from_ms, to_ms, fn, arg, damaged);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int64_t delay_index_next_bucket(const struct delay_index *ix, int64_t from_ms)
{
    size_t i = bucket_lower(ix, bucket_of(ix, from_ms));
    return i < ix->bucket_count ? ix->buckets[i].start : INT64_MAX;
}

int delay_index_drop_before(struct delay_index *ix, int64_t before_ms)
{
    size_t gone = 0;
    int rc = 0;
    while (gone < ix->bucket_count && ix->buckets[gone].start + ix->bucket_ms <= before_ms) {
        int64_t start = ix->buckets[gone].start;
        for (size_t i = 0; i < OPEN_FILES; i++) {
            if (ix->open[i].start == start) {
                close(ix->open[i].fd);
                ix->open[i] = (struct open_bucket){INT64_MIN, -1, 0};
            }
        }
        char path[4096];
        bucket_path(ix, start, path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = -errno;
            break;
        }
        gone++;
    }
    bucket_remove_first(ix, gone);
    return rc;
}

int delay_index_checkpoint(struct delay_index *ix, int64_t covered)
{
    /* Every file written since the last checkpoint holds entries it now vouches for. */
    for (size_t i = 0; i < ix->bucket_count; i++) {
        if (!ix->buckets[i].dirty)
            continue;
        char path[4096];
        bucket_path(ix, ix->buckets[i].start, path, sizeof path);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        int rc = fsync(fd) == 0 ? 0 : -errno;
        close(fd);
        if (rc != 0)
            return rc;
        ix->buckets[i].dirty = false;
    }
    char path[4096], tmp[4096], text[32];
    snprintf(path, sizeof path, "%s/" CHECKPOINT, ix->dir);
    snprintf(tmp, sizeof tmp, "%s/" CHECKPOINT ".tmp", ix->dir);
    int len = snprintf(text, sizeof text, "%lld\n", (long long)covered);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = write(fd, text, (size_t)len) == len && fsync(fd) == 0 ? 0 : -(errno ? errno : EIO);
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_dir(ix->dir);
    if (rc == 0)
        ix->covered = covered;
    return rc;
}

int64_t delay_index_covered(const struct delay_index *ix)
{
    return ix->covered;
}
