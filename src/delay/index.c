/* The due-time index of a delay partition (delay.h): one append-only file per bucket of
 * due time, written through a buffer. */
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
#define OPEN_FILES 16   /* bucket files kept open for appends */
#define SCAN_CHUNK 4096 /* entries read at a time */
/* Entries added but not written yet: written out bucket by bucket when full, so that
 * records spread over many buckets cost a write per bucket per this many, not one each. */
#define BUFFERED 32768

struct open_bucket {
    int64_t start; /* INT64_MIN: unused */
    int fd;
    uint64_t used; /* for eviction: the add counter at its last use */
};

struct bucket {
    int64_t start;
};

struct buffered {
    int64_t bucket, due, offset;
    uint32_t tag;
};

struct delay_index {
    char *dir;
    int64_t bucket_ms;
    struct bucket *buckets; /* those with a file, by start, ascending */
    size_t bucket_count, bucket_cap;
    struct open_bucket open[OPEN_FILES];
    uint64_t adds;
    struct buffered *buffer; /* BUFFERED entries, allocated on the first add */
    size_t buffered;
    int64_t buffered_first; /* the earliest bucket among them */
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
    ix->buckets[at] = (struct bucket){start};
    ix->bucket_count++;
    return &ix->buckets[at];
}

/* Forgets the first n buckets. */
static void bucket_remove_first(struct delay_index *ix, size_t n)
{
    if (n == 0)
        return;
    memmove(ix->buckets, ix->buckets + n, (ix->bucket_count - n) * sizeof *ix->buckets);
    ix->bucket_count -= n;
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
    /* What an earlier run left is not trusted, whatever it holds: the index is rebuilt
     * from the delay log at every load. */
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && rc == 0) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".due") == 0 &&
            unlinkat(dirfd(d), e->d_name, 0) != 0)
            rc = -errno;
    }
    closedir(d);
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
    free(ix->buffer);
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

static void encode(uint8_t out[ENTRY_BYTES], int64_t due, int64_t offset, uint32_t tag)
{
    be64_write(out, (uint64_t)due);
    be64_write(out + 8, (uint64_t)offset);
    be32_write(out + 16, tag);
    be32_write(out + 20, crc32c(0, out, 20));
}

static int by_bucket(const void *a, const void *b)
{
    const struct buffered *x = a, *y = b;
    return (x->bucket > y->bucket) - (x->bucket < y->bucket);
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The buffered entries in bucket order (a new array): counted into place when the
 * buckets they span are not many more than they are (due times within months: the usual
 * case, and linear), else sorted. */
static struct buffered *by_bucket_order(const struct delay_index *ix)
{
    size_t n = ix->buffered;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        lo = MIN(lo, ix->buffer[i].bucket);
        hi = MAX(hi, ix->buffer[i].bucket);
    }
    uint64_t span = ((uint64_t)hi - (uint64_t)lo) / (uint64_t)ix->bucket_ms + 1;
    struct buffered *out = xmalloc(n * sizeof *out);
    if (span > 4 * (uint64_t)n + 1024) {
        memcpy(out, ix->buffer, n * sizeof *out);
        qsort(out, n, sizeof *out, by_bucket);
        return out;
    }
    size_t *at = xcalloc(span + 1, sizeof *at);
    for (size_t i = 0; i < n; i++)
        at[((uint64_t)ix->buffer[i].bucket - (uint64_t)lo) / (uint64_t)ix->bucket_ms + 1]++;
    for (size_t k = 1; k <= span; k++)
        at[k] += at[k - 1];
    for (size_t i = 0; i < n; i++)
        out[at[((uint64_t)ix->buffer[i].bucket - (uint64_t)lo) / (uint64_t)ix->bucket_ms]++] =
            ix->buffer[i];
    free(at);
    return out;
}

/* Writes the buffered entries out, a write per bucket. */
static int flush(struct delay_index *ix)
{
    if (ix->buffered == 0)
        return 0;
    struct buffered *v = by_bucket_order(ix);
    uint8_t *bytes = xmalloc(ix->buffered * ENTRY_BYTES);
    int rc = 0;
    for (size_t first = 0, end; first < ix->buffered && rc == 0; first = end) {
        int64_t bucket = v[first].bucket;
        for (end = first; end < ix->buffered && v[end].bucket == bucket; end++)
            encode(bytes + (end - first) * ENTRY_BYTES, v[end].due, v[end].offset, v[end].tag);
        ix->adds++;
        int fd = bucket_fd(ix, bucket);
        rc = fd < 0 ? fd : write_all(fd, bytes, (end - first) * ENTRY_BYTES);
    }
    free(bytes);
    free(v);
    ix->buffered = 0;
    return rc;
}

int delay_index_add(struct delay_index *ix, int64_t due_ms, int64_t offset, uint32_t tag)
{
    if (!ix->buffer)
        ix->buffer = xmalloc(BUFFERED * sizeof *ix->buffer);
    int64_t bucket = bucket_of(ix, due_ms);
    if (ix->buffered == 0 || bucket < ix->buffered_first)
        ix->buffered_first = bucket;
    ix->buffer[ix->buffered++] = (struct buffered){bucket, due_ms, offset, tag};
    return ix->buffered == BUFFERED ? flush(ix) : 0;
}

/* Reads one bucket file's entries due in [from, to) into fn. */
static int scan_file(const struct delay_index *ix, int64_t start, int64_t from, int64_t to,
                     void (*fn)(void *arg, int64_t due_ms, int64_t offset, uint32_t tag), void *arg,
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
            if (be32_read(e + 20) != crc32c(0, e, 20)) {
                (*damaged)++;
                continue;
            }
            int64_t due = (int64_t)be64_read(e);
            if (due >= from && due < to)
                fn(arg, due, (int64_t)be64_read(e + 8), be32_read(e + 16));
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
                     void (*fn)(void *arg, int64_t due_ms, int64_t offset, uint32_t tag), void *arg,
                     size_t *damaged)
{
    *damaged = 0;
    int rc = flush(ix);
    if (rc != 0)
        return rc;
    for (size_t i = bucket_lower(ix, bucket_of(ix, from_ms));
         i < ix->bucket_count && ix->buckets[i].start < to_ms; i++) {
        rc = scan_file(ix, ix->buckets[i].start, from_ms, to_ms, fn, arg, damaged);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int64_t delay_index_next_bucket(const struct delay_index *ix, int64_t from_ms)
{
    int64_t from = bucket_of(ix, from_ms);
    size_t i = bucket_lower(ix, from);
    int64_t next = i < ix->bucket_count ? ix->buckets[i].start : INT64_MAX;
    if (ix->buffered == 0 || ix->buffered_first >= next)
        return next;
    if (ix->buffered_first >= from)
        return ix->buffered_first;
    /* Some buffered entries are before from (rare: the caller's from moved past them):
     * look at each. */
    for (size_t k = 0; k < ix->buffered; k++)
        if (ix->buffer[k].bucket >= from)
            next = MIN(next, ix->buffer[k].bucket);
    return next;
}

/* Whether the bucket that starts at start ends at or before t (without overflow: a due
 * time may be as late as INT64_MAX). */
static bool ends_by(const struct delay_index *ix, int64_t start, int64_t t)
{
    return t >= INT64_MIN + ix->bucket_ms && start <= t - ix->bucket_ms;
}

int delay_index_drop_before(struct delay_index *ix, int64_t before_ms)
{
    size_t gone = 0;
    int rc = 0;
    while (gone < ix->bucket_count && ends_by(ix, ix->buckets[gone].start, before_ms)) {
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
    /* Entries of those buckets not written yet go with them. */
    size_t kept = 0;
    for (size_t i = 0; i < ix->buffered; i++) {
        if (rc == 0 && ends_by(ix, ix->buffer[i].bucket, before_ms))
            continue;
        if (kept == 0 || ix->buffer[i].bucket < ix->buffered_first)
            ix->buffered_first = ix->buffer[i].bucket;
        ix->buffer[kept++] = ix->buffer[i];
    }
    ix->buffered = kept;
    bucket_remove_first(ix, gone);
    return rc;
}
