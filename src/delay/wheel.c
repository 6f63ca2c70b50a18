/* The timing wheel of delayed entries due soon (delay.h).
 *
 * Level L has 256 slots of 256^L ms each. An entry lives at the lowest level whose span
 * (256^(L+1) ms from the wheel's time) reaches its due time, in the slot its due time
 * falls in; beyond the last level's span it waits in that level's slot for its due time
 * and is looked at again each time the slot comes round. Every millisecond advanced
 * empties one level-0 slot, whose entries are all due in that very millisecond; when the
 * level-0 index wraps to 0 the next level's current slot is spread over the levels
 * below (a cascade), and so on up. Entries already due when added wait in a list of
 * their own, handed out first at the next advance.
 *
 * Big jumps (the broker was stopped for days) would cost a step per millisecond: past
 * REBUILD_MS, every entry is taken out and put back from the new time instead. */
#include "delay/delay.h"

#include <stdlib.h>
#include <string.h>

#define LEVELS 4
#define SLOT_BITS 8
#define SLOTS (1 << SLOT_BITS)
#define REBUILD_MS (1 << 20) /* about 17 minutes */

struct wentry {
    struct delay_entry e;
    struct wentry *prev, *next; /* in its slot (or the due list) */
    struct wentry **head;       /* the list it is in */
};

/* ref -> entry: open addressing, linear probing, backward-shift deletion. A slot keeps
 * the ref beside the entry, so that probing touches only the table (an add costs about
 * one cache miss, not one per slot probed). */
struct ref_slot {
    int64_t ref;
    struct wentry *we; /* NULL: free */
};
struct ref_index {
    struct ref_slot *slots;
    size_t cap, count; /* cap a power of two */
};

struct delay_wheel {
    int64_t now;
    struct wentry *slots[LEVELS][SLOTS];
    struct wentry *due; /* added already due */
    size_t count;
    bool indexed; /* keeps index, for delay_wheel_cancel */
    struct ref_index index;
};

/* ---- the ref index ---- */

/* Fibonacci hashing: the top bits of the product, which every bit of ref reaches (refs
 * are often consecutive offsets; the low and middle bits would cluster them). */
static size_t ref_hash(int64_t ref, size_t cap)
{
    uint64_t x = (uint64_t)ref * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> (64 - __builtin_ctzll((unsigned long long)cap)));
}

static void index_put(struct ref_index *ix, struct wentry *we);

static void index_grow(struct ref_index *ix)
{
    struct ref_index old = *ix;
    ix->cap = old.cap ? old.cap * 2 : 64;
    ix->slots = xcalloc(ix->cap, sizeof *ix->slots);
    ix->count = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].we)
            index_put(ix, old.slots[i].we);
    free(old.slots);
}

static void index_put(struct ref_index *ix, struct wentry *we)
{
    if ((ix->count + 1) * 4 > ix->cap * 3)
        index_grow(ix);
    size_t i = ref_hash(we->e.ref, ix->cap);
    while (ix->slots[i].we) {
        ASSERT(ix->slots[i].ref != we->e.ref); /* refs are unique among those held */
        i = (i + 1) & (ix->cap - 1);
    }
    ix->slots[i] = (struct ref_slot){we->e.ref, we};
    ix->count++;
}

/* The slot holding ref, or cap if none. */
static size_t index_find(const struct ref_index *ix, int64_t ref)
{
    if (!ix->cap)
        return 0;
    for (size_t i = ref_hash(ref, ix->cap); ix->slots[i].we; i = (i + 1) & (ix->cap - 1))
        if (ix->slots[i].ref == ref)
            return i;
    return ix->cap;
}

static void index_remove_at(struct ref_index *ix, size_t i)
{
    ix->slots[i].we = NULL;
    ix->count--;
    /* Backward shift: entries after the hole that would not be found past it move in. */
    for (size_t j = (i + 1) & (ix->cap - 1); ix->slots[j].we; j = (j + 1) & (ix->cap - 1)) {
        size_t home = ref_hash(ix->slots[j].ref, ix->cap);
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between)
            continue;
        ix->slots[i] = ix->slots[j];
        ix->slots[j].we = NULL;
        i = j;
    }
}

/* ---- lists ---- */

static void list_push(struct wentry **head, struct wentry *we)
{
    we->prev = NULL;
    we->next = *head;
    if (*head)
        (*head)->prev = we;
    *head = we;
    we->head = head;
}

static void list_unlink(struct wentry *we)
{
    if (we->prev)
        we->prev->next = we->next;
    else
        *we->head = we->next;
    if (we->next)
        we->next->prev = we->prev;
    we->head = NULL;
}

/* ---- placing ---- */

static size_t slot_of(int64_t due, int level)
{
    return (size_t)(due >> (SLOT_BITS * level)) & (SLOTS - 1);
}

static void place(struct delay_wheel *w, struct wentry *we)
{
    int64_t due = we->e.due_ms;
    if (due <= w->now) {
        list_push(&w->due, we);
        return;
    }
    /* The lowest level whose slots, from the current one on, reach the due time before
     * that level's index comes round to the same slot again. */
    int level = 0;
    while (level < LEVELS - 1 &&
           (due >> (SLOT_BITS * (level + 1))) != (w->now >> (SLOT_BITS * (level + 1))))
        level++;
    list_push(&w->slots[level][slot_of(due, level)], we);
}

/* ---- the interface ---- */

struct delay_wheel *delay_wheel_new(int64_t now_ms)
{
    struct delay_wheel *w = delay_wheel_new_no_cancel(now_ms);
    w->indexed = true;
    return w;
}

struct delay_wheel *delay_wheel_new_no_cancel(int64_t now_ms)
{
    struct delay_wheel *w = xcalloc(1, sizeof *w);
    w->now = now_ms;
    return w;
}

static void free_list(struct wentry *we)
{
    while (we) {
        struct wentry *next = we->next;
        free(we);
        we = next;
    }
}

void delay_wheel_free(struct delay_wheel *w)
{
    if (!w)
        return;
    for (int l = 0; l < LEVELS; l++)
        for (size_t s = 0; s < SLOTS; s++)
            free_list(w->slots[l][s]);
    free_list(w->due);
    free(w->index.slots);
    free(w);
}

void delay_wheel_add(struct delay_wheel *w, const struct delay_entry *e)
{
    struct wentry *we = xcalloc(1, sizeof *we);
    we->e = *e;
    if (w->indexed)
        index_put(&w->index, we);
    place(w, we);
    w->count++;
}

bool delay_wheel_cancel(struct delay_wheel *w, int64_t ref)
{
    ASSERT(w->indexed);
    size_t i = index_find(&w->index, ref);
    if (i >= w->index.cap)
        return false;
    struct wentry *we = w->index.slots[i].we;
    index_remove_at(&w->index, i);
    list_unlink(we);
    free(we);
    w->count--;
    return true;
}

int64_t delay_wheel_now(const struct delay_wheel *w)
{
    return w->now;
}

size_t delay_wheel_count(const struct delay_wheel *w)
{
    return w->count;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct delay_entry *x = &(*(struct wentry *const *)a)->e;
    const struct delay_entry *y = &(*(struct wentry *const *)b)->e;
    if (x->due_ms != y->due_ms)
        return x->due_ms < y->due_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hands out every entry of the list at *head, in (due, seq) order. They are no longer
 * held when fn runs: a cancel from fn does not find them, an add goes on the lists. */
static size_t hand_out(struct delay_wheel *w, struct wentry **head,
                       void (*fn)(void *arg, const struct delay_entry *e), void *arg)
{
    size_t n = 0;
    for (struct wentry *we = *head; we; we = we->next)
        n++;
    if (n == 0)
        return 0;
    struct delay_entry *all = xcalloc(n, sizeof *all);
    struct wentry **sorted = xcalloc(n, sizeof *sorted);
    size_t k = 0;
    for (struct wentry *we = *head; we; we = we->next)
        sorted[k++] = we;
    *head = NULL;
    qsort(sorted, n, sizeof *sorted, cmp_entry);
    for (size_t i = 0; i < n; i++) {
        all[i] = sorted[i]->e;
        if (w->indexed) {
            size_t at = index_find(&w->index, all[i].ref);
            ASSERT(at < w->index.cap && w->index.slots[at].we == sorted[i]);
            index_remove_at(&w->index, at);
        }
        free(sorted[i]);
    }
    w->count -= n;
    free(sorted);
    for (size_t i = 0; i < n; i++)
        fn(arg, &all[i]);
    free(all);
    return n;
}

/* Moves every entry of list *from onto list *to. */
static void splice(struct wentry **to, struct wentry **from)
{
    while (*from) {
        struct wentry *we = *from;
        list_unlink(we);
        list_push(to, we);
    }
}

/* Spreads the entries of a slot over the levels below, from the wheel's time. */
static void cascade(struct delay_wheel *w, int level, size_t slot)
{
    struct wentry *we = w->slots[level][slot];
    w->slots[level][slot] = NULL;
    while (we) {
        struct wentry *next = we->next;
        place(w, we);
        we = next;
    }
}

/* Every entry taken out and placed again from the wheel's time (after a big jump). */
static void rebuild(struct delay_wheel *w)
{
    for (int l = 0; l < LEVELS; l++)
        for (size_t s = 0; s < SLOTS; s++)
            cascade(w, l, s);
}

size_t delay_wheel_advance(struct delay_wheel *w, int64_t now_ms,
                           void (*fn)(void *arg, const struct delay_entry *e), void *arg)
{
    size_t n = hand_out(w, &w->due, fn, arg);
    if (now_ms <= w->now)
        return n;
    if (now_ms - w->now > REBUILD_MS || w->count == 0) {
        w->now = now_ms;
        rebuild(w);
        return n + hand_out(w, &w->due, fn, arg);
    }
    while (w->now < now_ms) {
        int64_t t = ++w->now;
        /* At a level-0 wrap the next level's current slot comes down, and at its wrap the
         * one above's too; place() spreads each entry from the new time, so what is due
         * in the current 256 ms lands in level 0 straight away. */
        int top = 0;
        while (top + 1 < LEVELS && slot_of(t, top) == 0)
            top++;
        for (int l = top; l >= 1; l--)
            cascade(w, l, slot_of(t, l));
        /* What is due now: the level-0 slot, and what came down exactly due, together so
         * that the same millisecond keeps the order of arrival. */
        splice(&w->due, &w->slots[0][slot_of(t, 0)]);
        n += hand_out(w, &w->due, fn, arg);
    }
    return n;
}

int64_t delay_wheel_next_due(const struct delay_wheel *w)
{
    if (w->due)
        return w->now;
    if (w->count == 0)
        return INT64_MAX;
    /* The first non-empty slot from the current one, lowest level first: at level 0 it
     * is the due time itself; higher, the start of that slot's span. */
    for (int l = 0; l < LEVELS; l++) {
        int shift = SLOT_BITS * l;
        int64_t base = (w->now >> shift) + 1;
        for (int64_t k = 0; k < SLOTS; k++) {
            int64_t unit = base + k;
            if (w->slots[l][(size_t)unit & (SLOTS - 1)]) {
                int64_t start = unit << shift;
                return start > w->now ? start : w->now + 1;
            }
        }
    }
    return w->now + 1;
}
