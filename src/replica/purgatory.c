/*
 * The purgatory (replica.h): operations that wait on keys and deadlines until they can
 * complete. A waiting operation is held by up to four structures, all owned here:
 *
 *   watchers   hash map from a key's bytes (object address, kind) to the list of
 *              operations watching it. op->watches[] records, per key, the list and the
 *              op's slot in it, and each list slot records which of the op's watches it
 *              is, so an op leaves a list in O(1) by swap-remove. A list that empties
 *              leaves the map: a deleted partition leaves nothing behind.
 *   deadlines  min-heap by (deadline_ms, seq); op->heap_index makes removal O(log n).
 *              Operations without a deadline are not in it.
 *   arrivals   every waiting operation in seq order. seq only grows, so appending keeps
 *              it sorted and a binary search finds an op by seq. Removal blanks the slot;
 *              blanks are squeezed out once they outnumber the live slots.
 *   queue      min-heap of the seqs of notified operations. It holds seqs, not pointers:
 *              an operation cancelled or completed while queued is not found in arrivals
 *              when its seq comes up and is skipped, so nothing dangles and removal need
 *              not search the queue. Seqs are never reused, so a stale seq never finds a
 *              newer operation. Stale seqs are dropped once they outnumber the live ones.
 *
 * Re-entrancy: complete may add, notify and cancel other operations and free its own.
 * So every path detaches an operation from all four structures before calling complete
 * and never touches it afterwards, and every loop that calls out (run, expire,
 * complete_all, each) re-reads the structures after each call instead of holding an
 * index or pointer across it: run and expire pop from their heaps, complete_all and each
 * resume after the last seq they visited.
 */
#include "replica/replica.h"

#include "base/base.h"

#include <stdlib.h>
#include <string.h>

/* A key as the map sees it: the object's address, then its kind as 32 bits. Built by
 * memcpy so no padding byte is ever hashed. */
#define PURGATORY_KEY_BYTES (sizeof(const void *) + sizeof(uint32_t))

/* Blank arrival slots (and stale queued seqs) tolerated before compaction is even
 * considered, so that small purgatories do not compact on every other removal. */
#define PURGATORY_COMPACT_MIN 64

struct watch_list;

/* One key an operation watches (op->watches[i]). */
struct purgatory_watch {
    struct watch_list *list;
    size_t slot; /* this operation's index in list->items */
};

/* One operation in a key's list. */
struct watcher {
    struct delayed_op *op;
    size_t watch; /* index in op->watches of the entry naming this list */
};

/* The operations watching one key, in no particular order (swap-remove reorders). */
struct watch_list {
    uint8_t key[PURGATORY_KEY_BYTES]; /* the map's key, to remove the list when it empties */
    struct watcher *items;
    size_t count;
    size_t cap;
};

struct arrival {
    uint64_t seq;
    struct delayed_op *op; /* NULL: completed or cancelled; the slot awaits compaction */
};

struct purgatory {
    struct hmap watchers; /* key bytes -> struct watch_list * */

    struct delayed_op **heap; /* deadline min-heap */
    size_t heap_count;
    size_t heap_cap;

    struct arrival *arrivals; /* sorted by seq; live ones have op != NULL */
    size_t arrival_count;     /* slots, live or blank */
    size_t arrival_cap;
    size_t live; /* waiting operations: the live arrival slots */

    uint64_t *queue; /* min-heap of seqs of notified operations, some possibly stale */
    size_t queue_count;
    size_t queue_cap;

    uint64_t next_seq; /* starts at 1, so "after seq 0" means "from the start" */
    bool trying;       /* inside a try_complete, which must not call back */
};

/* Grows *p (an array of elem_bytes elements, *cap allocated) to hold need elements. */
static void grow_to(void **p, size_t *cap, size_t need, size_t elem_bytes)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    ASSERT(c <= SIZE_MAX / elem_bytes);
    *p = xrealloc(*p, c * elem_bytes);
    *cap = c;
}

static struct slice key_bytes(struct purgatory_key key, uint8_t out[PURGATORY_KEY_BYTES])
{
    uint32_t kind = (uint32_t)key.kind;
    memcpy(out, &key.object, sizeof key.object);
    memcpy(out + sizeof key.object, &kind, sizeof kind);
    return (struct slice){out, PURGATORY_KEY_BYTES};
}

/* ---- arrivals ---- */

/* The first slot whose seq is >= seq (arrival_count if none). */
static size_t arrival_lower_bound(const struct purgatory *pg, uint64_t seq)
{
    size_t lo = 0, hi = pg->arrival_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pg->arrivals[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The waiting operation with this seq, or NULL if it has gone. */
static struct delayed_op *arrival_find(const struct purgatory *pg, uint64_t seq)
{
    size_t i = arrival_lower_bound(pg, seq);
    if (i < pg->arrival_count && pg->arrivals[i].seq == seq)
        return pg->arrivals[i].op;
    return NULL;
}

/* The oldest waiting operation that arrived after seq, or NULL. */
static struct delayed_op *arrival_next(const struct purgatory *pg, uint64_t seq)
{
    for (size_t i = arrival_lower_bound(pg, seq + 1); i < pg->arrival_count; i++)
        if (pg->arrivals[i].op)
            return pg->arrivals[i].op;
    return NULL;
}

static void arrival_append(struct purgatory *pg, struct delayed_op *op)
{
    ASSERT(pg->arrival_count == 0 || pg->arrivals[pg->arrival_count - 1].seq < op->seq);
    grow_to((void **)&pg->arrivals, &pg->arrival_cap, pg->arrival_count + 1, sizeof *pg->arrivals);
    pg->arrivals[pg->arrival_count++] = (struct arrival){op->seq, op};
    pg->live++;
}

static void arrival_remove(struct purgatory *pg, struct delayed_op *op)
{
    size_t i = arrival_lower_bound(pg, op->seq);
    ASSERT(i < pg->arrival_count && pg->arrivals[i].op == op);
    ASSERT(pg->live > 0);
    pg->arrivals[i].op = NULL;
    pg->live--;
    if (pg->live == 0) {
        /* Nothing waits, so every seq left in the queue is stale. */
        pg->arrival_count = 0;
        pg->queue_count = 0;
        return;
    }
    /* The newest operations are often the first to go (a fetch answered at once). */
    while (pg->arrival_count > 0 && pg->arrivals[pg->arrival_count - 1].op == NULL)
        pg->arrival_count--;
    size_t blank = pg->arrival_count - pg->live;
    if (blank >= PURGATORY_COMPACT_MIN && blank > pg->live) {
        size_t j = 0;
        for (size_t k = 0; k < pg->arrival_count; k++)
            if (pg->arrivals[k].op)
                pg->arrivals[j++] = pg->arrivals[k];
        ASSERT(j == pg->live);
        pg->arrival_count = j;
    }
}

/* ---- deadline heap ---- */

static bool deadline_before(const struct delayed_op *a, const struct delayed_op *b)
{
    if (a->deadline_ms != b->deadline_ms)
        return a->deadline_ms < b->deadline_ms;
    return a->seq < b->seq;
}

static void heap_place(struct purgatory *pg, size_t i, struct delayed_op *op)
{
    pg->heap[i] = op;
    op->heap_index = i;
}

static void heap_sift_up(struct purgatory *pg, size_t i)
{
    struct delayed_op *op = pg->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!deadline_before(op, pg->heap[parent]))
            break;
        heap_place(pg, i, pg->heap[parent]);
        i = parent;
    }
    heap_place(pg, i, op);
}

static void heap_sift_down(struct purgatory *pg, size_t i)
{
    struct delayed_op *op = pg->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= pg->heap_count)
            break;
        if (child + 1 < pg->heap_count && deadline_before(pg->heap[child + 1], pg->heap[child]))
            child++;
        if (!deadline_before(pg->heap[child], op))
            break;
        heap_place(pg, i, pg->heap[child]);
        i = child;
    }
    heap_place(pg, i, op);
}

static void heap_insert(struct purgatory *pg, struct delayed_op *op)
{
    grow_to((void **)&pg->heap, &pg->heap_cap, pg->heap_count + 1, sizeof *pg->heap);
    pg->heap[pg->heap_count] = op;
    heap_sift_up(pg, pg->heap_count++);
}

static void heap_remove(struct purgatory *pg, struct delayed_op *op)
{
    size_t i = op->heap_index;
    ASSERT(i < pg->heap_count && pg->heap[i] == op);
    op->heap_index = SIZE_MAX;
    struct delayed_op *last = pg->heap[--pg->heap_count];
    if (i == pg->heap_count)
        return;
    /* last takes the hole and moves whichever way its deadline says. */
    heap_place(pg, i, last);
    heap_sift_up(pg, i);
    heap_sift_down(pg, last->heap_index);
}

/* ---- notified queue ---- */

/* Moves v down from the hole at i to where the heap order allows. */
static void queue_sift_down(struct purgatory *pg, size_t i, uint64_t v)
{
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= pg->queue_count)
            break;
        if (child + 1 < pg->queue_count && pg->queue[child + 1] < pg->queue[child])
            child++;
        if (pg->queue[child] >= v)
            break;
        pg->queue[i] = pg->queue[child];
        i = child;
    }
    pg->queue[i] = v;
}

/* Drops the seqs of operations that have gone (run would skip them), so that a host
 * cancelling much between runs cannot grow the queue without bound. */
static void queue_compact(struct purgatory *pg)
{
    size_t j = 0;
    for (size_t i = 0; i < pg->queue_count; i++)
        if (arrival_find(pg, pg->queue[i]))
            pg->queue[j++] = pg->queue[i];
    ASSERT(j <= pg->live);
    pg->queue_count = j;
    for (size_t i = j / 2; i-- > 0;)
        queue_sift_down(pg, i, pg->queue[i]);
}

static void queue_push(struct purgatory *pg, struct delayed_op *op)
{
    if (op->queued)
        return; /* a burst of notifications costs one retry */
    op->queued = true;
    /* A waiting operation has at most one seq queued, so beyond 2 * live most are stale. */
    if (pg->queue_count >= 2 * pg->live + PURGATORY_COMPACT_MIN)
        queue_compact(pg);
    grow_to((void **)&pg->queue, &pg->queue_cap, pg->queue_count + 1, sizeof *pg->queue);
    size_t i = pg->queue_count++;
    while (i > 0 && pg->queue[(i - 1) / 2] > op->seq) {
        pg->queue[i] = pg->queue[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    pg->queue[i] = op->seq;
}

static uint64_t queue_pop(struct purgatory *pg)
{
    ASSERT(pg->queue_count > 0);
    uint64_t top = pg->queue[0];
    uint64_t last = pg->queue[--pg->queue_count];
    if (pg->queue_count > 0)
        queue_sift_down(pg, 0, last);
    return top;
}

/* ---- key lists ---- */

static void watch(struct purgatory *pg, struct delayed_op *op, struct purgatory_key key)
{
    uint8_t kb[PURGATORY_KEY_BYTES];
    struct slice k = key_bytes(key, kb);
    struct watch_list *l = hmap_get(&pg->watchers, k);
    if (!l) {
        l = xcalloc(1, sizeof *l);
        memcpy(l->key, kb, sizeof l->key);
        hmap_put(&pg->watchers, k, l);
    } else if (l->count > 0 && l->items[l->count - 1].op == op) {
        /* A duplicate key in this add: op was appended to this list moments ago and
         * nothing else can have touched the list since (try_complete has already run). */
        return;
    }
    grow_to((void **)&l->items, &l->cap, l->count + 1, sizeof *l->items);
    l->items[l->count] = (struct watcher){op, op->watch_count};
    op->watches[op->watch_count++] = (struct purgatory_watch){l, l->count};
    l->count++;
}

static void list_free(struct watch_list *l)
{
    free(l->items);
    free(l);
}

/* Takes op->watches[w] out of its key's list; op->watches itself is left alone. */
static void unwatch(struct purgatory *pg, struct delayed_op *op, size_t w)
{
    struct watch_list *l = op->watches[w].list;
    size_t slot = op->watches[w].slot;
    ASSERT(slot < l->count && l->items[slot].op == op && l->items[slot].watch == w);
    struct watcher moved = l->items[--l->count];
    if (slot != l->count) {
        l->items[slot] = moved;
        moved.op->watches[moved.watch].slot = slot;
    }
    if (l->count == 0) {
        void *was = hmap_remove(&pg->watchers, (struct slice){l->key, sizeof l->key});
        ASSERT(was == l);
        list_free(l);
    }
}

/* Lets go of op everywhere, so that complete (or the host, after a cancel) owns it
 * outright. A seq of op left in the queue is skipped by run: it is no longer found. */
static void detach(struct purgatory *pg, struct delayed_op *op)
{
    ASSERT(op->waiting);
    for (size_t w = 0; w < op->watch_count; w++)
        unwatch(pg, op, w);
    free(op->watches);
    op->watches = NULL;
    op->watch_count = 0;
    if (op->heap_index != SIZE_MAX)
        heap_remove(pg, op);
    arrival_remove(pg, op);
    op->queued = false;
    op->waiting = false;
}

/* ---- the interface ---- */

struct purgatory *purgatory_new(void)
{
    struct purgatory *pg = xcalloc(1, sizeof *pg);
    hmap_init(&pg->watchers);
    pg->next_seq = 1;
    return pg;
}

void purgatory_free(struct purgatory *pg)
{
    if (!pg)
        return;
    /* Operations still waiting go back to the host as if cancelled, minus our memory. */
    for (size_t i = 0; i < pg->arrival_count; i++) {
        struct delayed_op *op = pg->arrivals[i].op;
        if (!op)
            continue;
        free(op->watches);
        op->watches = NULL;
        op->watch_count = 0;
        op->heap_index = SIZE_MAX;
        op->queued = false;
        op->waiting = false;
    }
    struct slice k;
    void *v;
    for (size_t it = 0; hmap_next(&pg->watchers, &it, &k, &v);)
        list_free(v);
    hmap_free(&pg->watchers);
    free(pg->heap);
    free(pg->arrivals);
    free(pg->queue);
    free(pg);
}

bool purgatory_add(struct purgatory *pg, struct delayed_op *op, const struct purgatory_key *keys,
                   size_t n, int64_t deadline_ms)
{
    ASSERT(!pg->trying);
    ASSERT(op->try_complete && op->complete);
    ASSERT(!op->waiting); /* added twice, or not zeroed before its first add */
    ASSERT(n == 0 || keys);
    op->heap_index = SIZE_MAX;
    op->queued = false;
    op->watches = NULL;
    op->watch_count = 0;
    op->deadline_ms = deadline_ms;

    pg->trying = true;
    bool ready = op->try_complete(op);
    pg->trying = false;
    if (ready) {
        op->seq = 0; /* never waited: no arrival */
        op->complete(op, DELAYED_READY);
        return true;
    }

    op->seq = pg->next_seq++;
    op->waiting = true;
    if (n > 0)
        op->watches = xcalloc(n, sizeof *op->watches);
    for (size_t i = 0; i < n; i++)
        watch(pg, op, keys[i]);
    arrival_append(pg, op);
    if (deadline_ms != INT64_MAX)
        heap_insert(pg, op);
    return false;
}

void purgatory_notify(struct purgatory *pg, struct purgatory_key key)
{
    ASSERT(!pg->trying);
    uint8_t kb[PURGATORY_KEY_BYTES];
    struct watch_list *l = hmap_get(&pg->watchers, key_bytes(key, kb));
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        queue_push(pg, l->items[i].op);
}

size_t purgatory_run(struct purgatory *pg)
{
    ASSERT(!pg->trying);
    size_t completed = 0;
    /* Popping lowest seq first is arrival order; complete may queue more (or cancel
     * what is queued), and the loop sees both since it re-reads the queue each turn. */
    while (pg->queue_count > 0) {
        struct delayed_op *op = arrival_find(pg, queue_pop(pg));
        if (!op)
            continue; /* completed or cancelled since it was queued */
        ASSERT(op->waiting && op->queued);
        op->queued = false;
        pg->trying = true;
        bool ready = op->try_complete(op);
        pg->trying = false;
        if (!ready)
            continue;
        detach(pg, op);
        op->complete(op, DELAYED_READY);
        completed++;
    }
    return completed;
}

size_t purgatory_expire(struct purgatory *pg, int64_t now_ms)
{
    ASSERT(!pg->trying);
    size_t expired = 0;
    /* An operation that complete adds with a deadline already past expires here too. */
    while (pg->heap_count > 0 && pg->heap[0]->deadline_ms <= now_ms) {
        struct delayed_op *op = pg->heap[0];
        detach(pg, op);
        op->complete(op, DELAYED_EXPIRED);
        expired++;
    }
    return expired;
}

int64_t purgatory_next_deadline(const struct purgatory *pg)
{
    return pg->heap_count > 0 ? pg->heap[0]->deadline_ms : INT64_MAX;
}

void purgatory_cancel(struct purgatory *pg, struct delayed_op *op)
{
    ASSERT(!pg->trying);
    if (!op->waiting)
        return;
    detach(pg, op);
}

void purgatory_forget(struct purgatory *pg, struct purgatory_key key)
{
    ASSERT(!pg->trying);
    uint8_t kb[PURGATORY_KEY_BYTES];
    struct watch_list *l = hmap_remove(&pg->watchers, key_bytes(key, kb));
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++) {
        struct delayed_op *op = l->items[i].op;
        size_t w = l->items[i].watch;
        ASSERT(w < op->watch_count && op->watches[w].list == l && op->watches[w].slot == i);
        /* Swap-remove the watch from op; the moved watch names another list (op watches
         * each key once), whose slot must learn the watch's new index. */
        size_t last = --op->watch_count;
        if (w != last) {
            struct purgatory_watch *m = &op->watches[w];
            *m = op->watches[last];
            ASSERT(m->list != l);
            m->list->items[m->slot].watch = w;
        }
        queue_push(pg, op);
    }
    list_free(l);
}

void purgatory_complete_all(struct purgatory *pg)
{
    ASSERT(!pg->trying);
    /* Operations that complete adds arrive later, so they are reached and forced too; a
     * complete that adds an operation every time would never let this return. */
    uint64_t after = 0;
    struct delayed_op *op;
    while ((op = arrival_next(pg, after)) != NULL) {
        after = op->seq;
        detach(pg, op);
        op->complete(op, DELAYED_FORCED);
    }
    ASSERT(pg->live == 0 && pg->heap_count == 0);
}

size_t purgatory_size(const struct purgatory *pg)
{
    return pg->live;
}

void purgatory_each(struct purgatory *pg, void (*fn)(void *arg, struct delayed_op *op), void *arg)
{
    ASSERT(!pg->trying);
    /* fn may cancel and free op, so resume from its seq rather than from op. */
    uint64_t after = 0;
    struct delayed_op *op;
    while ((op = arrival_next(pg, after)) != NULL) {
        after = op->seq;
        fn(arg, op);
    }
}
