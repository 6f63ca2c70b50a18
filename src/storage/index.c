/*
 * Sparse index files (.index, .timeindex). We keep them exactly sized instead of
 * preallocating like Kafka: the active segment's entries live in a heap copy that is
 * appended to (and pwrite()n to the file); when the segment is sealed the file is mapped
 * read-only and the heap copy freed, so closed segments cost page cache, not heap.
 * Index files are not needed for durability: recovery rebuilds them.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_internal.h"

void idx_init(struct seg_index *x, int fd, size_t entry_bytes) {
    x->fd = fd;
    x->entry_bytes = entry_bytes;
    x->n = 0;
    x->mem = NULL;
    x->cap = 0;
    x->map = NULL;
    x->map_len = 0;
}

static void idx_unmap(struct seg_index *x) {
    if (x->map) {
        munmap(x->map, x->map_len);
        x->map = NULL;
        x->map_len = 0;
    }
}

static void idx_grow(struct seg_index *x, size_t need) {
    if (need <= x->cap)
        return;
    size_t cap = x->cap ? x->cap * 2 : 64;
    while (cap < need)
        cap *= 2;
    x->mem = xrealloc(x->mem, cap * x->entry_bytes);
    x->cap = cap;
}

int idx_load(struct seg_index *x, bool active) {
    struct stat st;
    if (fstat(x->fd, &st) != 0)
        return -errno;
    size_t size = (size_t)st.st_size;
    if (size % x->entry_bytes != 0)
        return STORAGE_ERR_CORRUPT;
    idx_unmap(x);
    free(x->mem);
    x->mem = NULL;
    x->cap = 0;
    x->n = size / x->entry_bytes;
    if (active) {
        idx_grow(x, x->n + 1);
        int rc = pread_exact(x->fd, x->mem, size, 0);
        if (rc != 0)
            return rc;
    } else if (size > 0) {
        void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, x->fd, 0);
        if (m == MAP_FAILED)
            return -errno;
        x->map = m;
        x->map_len = size;
    }
    return 0;
}

int idx_append(struct seg_index *x, const uint8_t *entry) {
    ASSERT(x->map == NULL);
    idx_grow(x, x->n + 1);
    memcpy(x->mem + x->n * x->entry_bytes, entry, x->entry_bytes);
    off_t at = (off_t)(x->n * x->entry_bytes);
    x->n++;
    ssize_t w;
    do {
        w = pwrite(x->fd, entry, x->entry_bytes, at);
    } while (w < 0 && errno == EINTR);
    if (w != (ssize_t)x->entry_bytes)
        return w < 0 ? -errno : -EIO;
    return 0;
}

int idx_seal(struct seg_index *x) {
    if (x->map)
        return 0;
    free(x->mem);
    x->mem = NULL;
    x->cap = 0;
    size_t size = x->n * x->entry_bytes;
    if (size == 0)
        return 0;
    void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, x->fd, 0);
    if (m == MAP_FAILED) {
        int err = -errno;
        /* Fall back to a heap copy so lookups keep working. */
        x->n = 0;
        (void)idx_load(x, true);
        return err;
    }
    x->map = m;
    x->map_len = size;
    return 0;
}

int idx_reset(struct seg_index *x) {
    idx_unmap(x);
    x->n = 0;
    idx_grow(x, 1);
    if (ftruncate(x->fd, 0) != 0)
        return -errno;
    return 0;
}

int idx_truncate(struct seg_index *x, size_t n) {
    if (n >= x->n)
        return 0;
    if (x->map) {
        /* Sealed segments only get truncated when they become active again. */
        int rc = idx_load(x, true);
        if (rc != 0)
            return rc;
    }
    x->n = n;
    if (ftruncate(x->fd, (off_t)(n * x->entry_bytes)) != 0)
        return -errno;
    return 0;
}

void idx_close(struct seg_index *x) {
    idx_unmap(x);
    free(x->mem);
    x->mem = NULL;
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
}
