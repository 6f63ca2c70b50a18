/*
 * The open-file cache: one process-wide bound on the segments whose files are open.
 *
 * A segment is "open" when its .log descriptor is open and, if it is sealed, its two
 * index files are mapped. Nothing else holds a segment's files open: a partition that
 * nobody produces to or reads from costs no descriptor and no mapping, so a broker can
 * hold far more partitions than its open-file limit (and vm.max_map_count) allow files.
 * seg_acquire opens a segment on demand and makes it the most recently used; when the
 * cache is at its bound the least recently used open segments are closed first. The
 * active segment of a partition being produced to is used on every append, so it stays
 * open and the hot path pays nothing.
 *
 * Pinning. log_read hands out a borrowed descriptor that its caller uses after more
 * storage calls (the fetch handler locates every partition, then sends them all), so
 * the segment it reads from is lent: pinned, never closed, until the read turn ends
 * (storage_read_turn_end, which the server calls once per event-loop iteration, or the
 * next call that changes a log, which ends the turn too). Lent segments are off the LRU
 * list. When lent segments alone fill the bound, log_read of a partition with nothing
 * lent yet in this turn finds no data, as if the fetch budget were spent: the client
 * fetches again, and the bound holds.
 *
 * Threads. Only the thread that owns the logs (the event loop) calls in here. The sync
 * threads (flush.c) and the cleaner (cleaner.c) never touch the cache: they open files
 * by path themselves, a bounded few at a time, and close them at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "storage/storage_internal.h"

#define FCACHE_MIN_FILES 4
/* Without storage_set_max_open_files: half of the descriptor limit; the other half is
 * for connections and everything else. */
#define FCACHE_DEFAULT_SHARE 2

struct seg_list {
    struct segment *head, *tail; /* linked through lru_prev/lru_next */
};

struct fcache {
    size_t max_open; /* bound on open segments; 0 until first use (default) */
    size_t n_open;   /* open segments, lent ones included */
    size_t n_lent;
    uint64_t turn;             /* read turn, bumped by storage_read_turn_end */
    struct seg_list lru;       /* open, not lent: head most recently used */
    struct seg_list lent;      /* lent in this turn */
    uint64_t opens, evictions; /* for tests and logs */
    pthread_t owner;           /* the one thread that may use the cache (set on first use) */
    bool owned;
};

static struct fcache fc;

/* The cache has no lock: a second thread using it is a bug (the sync and cleaner
 * threads open their files themselves). */
static void check_owner(void)
{
    if (!fc.owned) {
        fc.owner = pthread_self();
        fc.owned = true;
    }
    ASSERT(pthread_equal(fc.owner, pthread_self()));
}

/* Each open sealed segment maps two index files; mappings count against
 * vm.max_map_count (65530 by default) with malloc's and the libraries'. Keep half of it
 * for the rest of the process. */
static size_t map_cap(void)
{
    static size_t cap;
    if (cap)
        return cap;
    unsigned long long max_maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f) {
        if (fscanf(f, "%llu", &max_maps) != 1)
            max_maps = 65530;
        fclose(f);
    }
    cap = (size_t)MAX(max_maps / 4, (unsigned long long)FCACHE_MIN_FILES);
    return cap;
}

static size_t clamp_bound(size_t n)
{
    return MIN(MAX(n, (size_t)FCACHE_MIN_FILES), map_cap());
}

static size_t default_bound(void)
{
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY)
        return clamp_bound(SIZE_MAX);
    return clamp_bound((size_t)nofile.rlim_cur / FCACHE_DEFAULT_SHARE);
}

static size_t bound(void)
{
    if (fc.max_open == 0)
        fc.max_open = default_bound();
    return fc.max_open;
}

static void list_unlink(struct seg_list *list, struct segment *s)
{
    if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
    else
        list->head = s->lru_next;
    if (s->lru_next)
        s->lru_next->lru_prev = s->lru_prev;
    else
        list->tail = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
}

static void list_push_front(struct seg_list *list, struct segment *s)
{
    s->lru_prev = NULL;
    s->lru_next = list->head;
    if (list->head)
        list->head->lru_prev = s;
    else
        list->tail = s;
    list->head = s;
}

/* Closes the descriptor and unmaps the sealed indexes. The active segment's index
 * entries are a heap copy and stay (they are small, and appends need them). */
static void close_files(struct segment *s)
{
    ASSERT(s->fd >= 0);
    close(s->fd);
    s->fd = -1;
    idx_unmap(&s->oidx);
    idx_unmap(&s->tidx);
    fc.n_open--;
}

static void evict_to(size_t target)
{
    while (fc.n_open > target && fc.lru.tail) {
        struct segment *victim = fc.lru.tail;
        list_unlink(&fc.lru, victim);
        close_files(victim);
        fc.evictions++;
    }
}

void storage_set_max_open_files(size_t n)
{
    fc.max_open = clamp_bound(n);
    evict_to(fc.max_open);
}

size_t storage_max_open_files(void)
{
    return bound();
}

void storage_open_files_stats(struct storage_open_files_stats *out)
{
    *out = (struct storage_open_files_stats){.max_open = bound(),
                                             .open = fc.n_open,
                                             .lent = fc.n_lent,
                                             .opens = fc.opens,
                                             .evictions = fc.evictions};
}

void storage_read_turn_end(void)
{
    check_owner();
    fc.turn++;
    while (fc.lent.head) {
        struct segment *s = fc.lent.head;
        list_unlink(&fc.lent, s);
        s->lent = false;
        fc.n_lent--;
        list_push_front(&fc.lru, s);
    }
    ASSERT(fc.n_lent == 0);
    evict_to(bound());
}

uint64_t fcache_turn(void)
{
    return fc.turn;
}

bool fcache_lend_full(void)
{
    return fc.n_lent >= bound();
}

static int open_log_file(struct segment *s)
{
    int fd;
    do {
        fd = open(s->path, O_RDWR | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd >= 0)
        return fd;
    int err = -errno;
    if (err == -EMFILE || err == -ENFILE)
        say_error_ratelimited(SUBSYS,
                              "cannot open %s: %s (%zu segment files open, bound "
                              "%zu)",
                              s->path, storage_strerror(err), fc.n_open, bound());
    else
        say_error_ratelimited(SUBSYS, "cannot open %s: %s", s->path, strerror(-err));
    return err;
}

int seg_acquire(struct segment *s)
{
    check_owner();
    if (s->fd >= 0) {
        if (!s->lent && fc.lru.head != s) {
            list_unlink(&fc.lru, s);
            list_push_front(&fc.lru, s);
        }
    } else {
        /* Make room first, so that the new descriptor never takes the limit's last. */
        evict_to(bound() - 1);
        int fd = open_log_file(s);
        if (fd < 0)
            return fd;
        s->fd = fd;
        fc.n_open++;
        fc.opens++;
        list_push_front(&fc.lru, s);
    }
    /* Sealed indexes are mapped only while open; the active one lives on the heap. */
    int rc = idx_map_lazy(&s->oidx);
    if (rc == 0)
        rc = idx_map_lazy(&s->tidx);
    if (rc != 0)
        say_error_ratelimited(SUBSYS, "cannot map the indexes of %s: %s", s->path,
                              storage_strerror(rc));
    return rc;
}

void fcache_make_room(void)
{
    evict_to(bound() - 1);
}

void seg_adopt_fd(struct segment *s, int fd)
{
    ASSERT(s->fd < 0 && fd >= 0);
    s->fd = fd;
    fc.n_open++;
    fc.opens++;
    list_push_front(&fc.lru, s);
    evict_to(bound());
}

void seg_lend(struct segment *s, uint64_t *lent_turn)
{
    ASSERT(s->fd >= 0);
    *lent_turn = fc.turn;
    if (s->lent)
        return;
    list_unlink(&fc.lru, s);
    s->lent = true;
    list_push_front(&fc.lent, s);
    fc.n_lent++;
}

void seg_close_files(struct segment *s)
{
    if (s->fd < 0)
        return;
    if (s->lent) {
        /* Deleting a segment ends what was lent from it (storage.h, log_read). */
        list_unlink(&fc.lent, s);
        s->lent = false;
        fc.n_lent--;
    } else {
        list_unlink(&fc.lru, s);
    }
    close_files(s);
}
