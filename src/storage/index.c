/*
 * Sparse index files (.index, .timeindex). We keep them exactly sized instead of
 * preallocating like Kafka. The active segment's entries live in a heap copy that is
 * appended to; the file gets the new entries when the segment is sealed or closed (and
 * idx_sync); a sealed segment's heap copy is freed and its file mapped read-only while
 * the segment is open in the file cache (fcache.c), so closed segments cost page cache,
 * not heap, and idle ones not even a mapping (each counts against vm.max_map_count).
 *
 * No file descriptor is kept open: a broker holds one segment per partition active, so
 * two index descriptors each would triple the descriptors 10,000 partitions need. The
 * mapping outlives the descriptor it was made from.
 *
 * Index files are not needed for durability: after a crash the file may lack the
 * newest entries of the active segment, which load detects (a batch more than an index
 * interval past the last entry) and answers by rebuilding the index from the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_internal.h"

void idx_init(struct seg_index *x, char *path, size_t entry_bytes)
{
    x->path = path;
    x->entry_bytes = entry_bytes;
    x->n = 0;
    x->written = 0;
    x->mem = NULL;
    x->cap = 0;
    x->map = NULL;
    x->map_len = 0;
}

void idx_unmap(struct seg_index *x)
{
    if (x->map) {
        munmap(x->map, x->map_len);
        x->map = NULL;
        x->map_len = 0;
    }
}

static void idx_grow(struct seg_index *x, size_t need)
{
    if (need <= x->cap)
        return;
    size_t cap = x->cap ? x->cap * 2 : 64;
    while (cap < need)
        cap *= 2;
    x->mem = xrealloc(x->mem, cap * x->entry_bytes);
    x->cap = cap;
}

static int open_index(const struct seg_index *x, int flags)
{
    int fd;
    do {
        fd = open(x->path, flags | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

/* Maps the first n entries of the file read-only. A file shorter than that (changed
 * behind our back) would fault on access: refuse it. */
static int idx_map(struct seg_index *x, size_t n)
{
    size_t size = n * x->entry_bytes;
    if (size == 0)
        return 0;
    int fd = open_index(x, O_RDONLY);
    if (fd < 0)
        return fd;
    struct stat st;
    int err = fstat(fd, &st) != 0 ? -errno : (size_t)st.st_size < size ? STORAGE_ERR_CORRUPT : 0;
    if (err) {
        close(fd);
        return err;
    }
    void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    err = m == MAP_FAILED ? -errno : 0;
    close(fd);
    if (err)
        return err;
    x->map = m;
    x->map_len = size;
    return 0;
}

int idx_load(struct seg_index *x, bool active)
{
    int fd = open_index(x, O_RDONLY | O_CREAT);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    size_t size = (size_t)st.st_size;
    if (size % x->entry_bytes != 0) {
        close(fd);
        return STORAGE_ERR_CORRUPT;
    }
    idx_unmap(x);
    free(x->mem);
    x->mem = NULL;
    x->cap = 0;
    x->n = x->written = size / x->entry_bytes;
    int rc = 0;
    if (active) {
        idx_grow(x, x->n + 1);
        rc = pread_exact(fd, x->mem, size, 0);
    }
    close(fd);
    if (rc == 0 && !active)
        rc = idx_map(x, x->n);
    return rc;
}

void idx_append(struct seg_index *x, const uint8_t *entry)
{
    ASSERT(x->map == NULL);
    idx_grow(x, x->n + 1);
    memcpy(x->mem + x->n * x->entry_bytes, entry, x->entry_bytes);
    x->n++;
}

/* Writes the entries appended since the last write to the file. */
static int idx_write_pending(struct seg_index *x)
{
    if (x->written >= x->n || x->mem == NULL)
        return 0;
    int fd = open_index(x, O_WRONLY | O_CREAT);
    if (fd < 0)
        return fd;
    size_t from = x->written * x->entry_bytes, len = (x->n - x->written) * x->entry_bytes;
    int rc = 0;
    for (size_t done = 0; done < len && rc == 0;) {
        ssize_t w = pwrite(fd, x->mem + from + done, len - done, (off_t)(from + done));
        if (w > 0)
            done += (size_t)w;
        else if (w < 0 && errno != EINTR)
            rc = -errno;
        else if (w == 0)
            rc = -EIO;
    }
    close(fd);
    if (rc == 0)
        x->written = x->n;
    return rc;
}

int idx_sync(struct seg_index *x)
{
    int rc = idx_write_pending(x);
    if (rc != 0)
        return rc;
    int fd = open_index(x, O_RDONLY);
    if (fd < 0)
        return fd;
    rc = fdatasync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int idx_seal(struct seg_index *x)
{
    if (x->map || x->mem == NULL)
        return 0;
    int rc = idx_write_pending(x);
    if (rc != 0)
        return rc; /* keep the heap copy so lookups go on working */
    free(x->mem);
    x->mem = NULL;
    x->cap = 0;
    return 0;
}

int idx_map_lazy(struct seg_index *x)
{
    if (x->mem || x->map || x->n == 0)
        return 0;
    return idx_map(x, x->n);
}

int idx_reset(struct seg_index *x)
{
    idx_unmap(x);
    x->n = x->written = 0;
    idx_grow(x, 1);
    return truncate(x->path, 0) == 0 ? 0 : -errno;
}

int idx_truncate(struct seg_index *x, size_t n)
{
    if (n >= x->n)
        return 0;
    if (x->mem == NULL) {
        /* Sealed segments only get truncated when they become active again. */
        int rc = idx_load(x, true);
        if (rc != 0)
            return rc;
    }
    x->n = n;
    if (x->written <= n)
        return 0; /* the file holds no entry past n */
    x->written = n;
    return truncate(x->path, (off_t)(n * x->entry_bytes)) == 0 ? 0 : -errno;
}

void idx_close(struct seg_index *x)
{
    idx_unmap(x);
    free(x->mem);
    x->mem = NULL;
    free(x->path);
    x->path = NULL;
}
