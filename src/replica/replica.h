/*
 * replica: what this node keeps per partition it hosts, and the operations that wait on
 * partitions (DESIGN.md, "replica/").
 *
 * The purgatory (Kafka's DelayedOperationPurgatory): one keyed facility for operations
 * that complete later. An operation watches keys — "partition P became durable further",
 * "data arrived at P", "P's high watermark moved" — and may have a deadline.
 *
 *   add       try the operation at once; if it cannot complete, it waits on its keys.
 *   notify    whoever changed what a key stands for queues the operations watching it.
 *   run       (the event loop's idle hook) retries the queued operations, oldest first,
 *             so a burst of appends costs one retry per waiting operation, not one each.
 *   expire    completes, as expired, every operation whose deadline has passed.
 *
 * An operation is completed exactly once — because its try_complete said it can, because
 * its deadline passed, or because the host forces it (shutdown) — or cancelled, which
 * calls nothing. The purgatory never touches an operation after completing or cancelling
 * it, so complete may free it, and complete may add, notify or cancel other
 * operations (it runs with the purgatory in a consistent state).
 *
 * No clock, no timers, no I/O: time arrives as now_ms arguments and the host arms one
 * timer for purgatory_next_deadline(), so tests drive the purgatory with a fake clock.
 * Loop thread only.
 *
 * Errors: functions that can fail return 0 or a negative errno; the purgatory itself
 * cannot fail (allocation failure aborts, as everywhere in Samsa).
 */
#ifndef SAMSA_REPLICA_H
#define SAMSA_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a key stands for: an object (a partition) and which of its changes. */
enum purgatory_kind {
    PURGATORY_DURABLE = 1,    /* the object's log is durable up to a further offset */
    PURGATORY_DATA,           /* records were appended to the object's log */
    PURGATORY_HIGH_WATERMARK, /* the object's high watermark moved */
};

struct purgatory_key {
    const void *object; /* compared by address only, never dereferenced */
    enum purgatory_kind kind;
};

enum delayed_outcome {
    DELAYED_READY,   /* try_complete returned true */
    DELAYED_EXPIRED, /* the deadline passed */
    DELAYED_FORCED,  /* purgatory_complete_all: the host is stopping */
};

/* An operation that completes later. Embed it in the owner's struct, zeroed, fill the two
 * callbacks, and hand it to purgatory_add; the rest is the purgatory's. Once completed or
 * cancelled it may be added again. */
struct delayed_op {
    /* True when the operation can complete now. Called by add and run; must not call
     * back into the purgatory. */
    bool (*try_complete)(struct delayed_op *op);
    /* Called exactly once, after the purgatory has let go of op (op may be freed). */
    void (*complete)(struct delayed_op *op, enum delayed_outcome how);

    /* The purgatory's. */
    uint64_t seq;                    /* arrival order */
    int64_t deadline_ms;             /* INT64_MAX: none */
    size_t heap_index;               /* in the deadline heap; SIZE_MAX when not there */
    bool queued;                     /* notified, waiting for run */
    bool waiting;                    /* added and not yet completed or cancelled */
    struct purgatory_watch *watches; /* one per key watched */
    size_t watch_count;
};

struct purgatory;

struct purgatory *purgatory_new(void);
/* Frees the purgatory. Operations still waiting are forgotten without a callback: the
 * host completes or cancels them first (purgatory_complete_all). */
void purgatory_free(struct purgatory *pg);

/* Tries op once: if try_complete says it can, completes it (DELAYED_READY) before
 * returning true. Otherwise op waits on keys[0..n) (duplicates watched once) until
 * deadline_ms (INT64_MAX: no deadline) and false is returned. op is borrowed until it
 * is completed or cancelled. */
bool purgatory_add(struct purgatory *pg, struct delayed_op *op, const struct purgatory_key *keys,
                   size_t n, int64_t deadline_ms);
/* Queues every operation watching key for the next purgatory_run. Cheap; does not call
 * any operation. */
void purgatory_notify(struct purgatory *pg, struct purgatory_key key);
/* Retries the queued operations in arrival order, completing those that can; operations
 * queued while it runs are tried in the same call. Returns how many completed. */
size_t purgatory_run(struct purgatory *pg);
/* Completes (DELAYED_EXPIRED) every waiting operation whose deadline is <= now_ms, the
 * earliest deadline first (ties: arrival order). Returns how many. */
size_t purgatory_expire(struct purgatory *pg, int64_t now_ms);
/* The earliest deadline of a waiting operation, or INT64_MAX. */
int64_t purgatory_next_deadline(const struct purgatory *pg);
/* Removes op without calling it (its requester went away). No-op if op is not waiting. */
void purgatory_cancel(struct purgatory *pg, struct delayed_op *op);
/* The object of key goes away: every operation watching it stops watching it and is
 * queued for the next run (where it finds the object gone by its own lookup). */
void purgatory_forget(struct purgatory *pg, struct purgatory_key key);
/* Completes every waiting operation with DELAYED_FORCED, in arrival order. */
void purgatory_complete_all(struct purgatory *pg);
/* Operations waiting. */
size_t purgatory_size(const struct purgatory *pg);
/* Calls fn for every waiting operation, in arrival order; fn may cancel or complete
 * the operation it is given (and no other). */
void purgatory_each(struct purgatory *pg, void (*fn)(void *arg, struct delayed_op *op), void *arg);

#endif
