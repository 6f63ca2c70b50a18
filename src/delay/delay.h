/*
 * delay: durable delayed delivery (issue #16, DESIGN.md "Durable delayed delivery").
 *
 * A producer asks for a record to appear in its partition at a later time with a record
 * header: samsa.deliver.at (epoch milliseconds, or an RFC 3339 timestamp) or
 * samsa.deliver.after (milliseconds from the broker's append time), and takes a pending
 * record back with samsa.deliver.cancel. The records wait in an internal topic; memory
 * holds only what is due soon, in a timing wheel.
 *
 * This header has the two pure parts, with no I/O and no clock of their own:
 *   - reading a record's delivery headers (delay_parse);
 *   - the timing wheel of entries due soon (delay_wheel_*), which hands them out in
 *     due-time order, entries due in the same millisecond in the order they were added.
 *
 * Errors: delay_parse returns -1 and writes why; the wheel has none (it asserts its
 * invariants). Single-threaded: the caller owns each object.
 */
#ifndef SAMSA_DELAY_H
#define SAMSA_DELAY_H

#include "base/base.h"

/* ---- delivery headers ---- */

#define DELAY_HEADER_AT "samsa.deliver.at"
#define DELAY_HEADER_AFTER "samsa.deliver.after"
#define DELAY_HEADER_CANCEL "samsa.deliver.cancel"

/* One record header (borrowed bytes). */
struct delay_header {
    struct slice key;
    struct slice value; /* ptr NULL: a null value */
};

enum delay_kind {
    DELAY_NONE,    /* an ordinary record */
    DELAY_DELIVER, /* hold it until due_ms */
    DELAY_CANCEL,  /* take back the pending record cancel_id names */
};

struct delay_request {
    enum delay_kind kind;
    int64_t due_ms;         /* DELAY_DELIVER: epoch ms; at or before the append: at once */
    struct slice cancel_id; /* DELAY_CANCEL: the id, as given (borrowed from the header) */
};

/* Reads the delivery headers among a record's n headers. append_ms is the broker's append
 * time (what samsa.deliver.after counts from); a due time more than max_delay_ms after it
 * is refused (samsa.delay.max.ms; INT64_MAX: no bound). Values are ASCII:
 *   samsa.deliver.at     decimal epoch milliseconds, or an RFC 3339 timestamp
 *                        (2026-12-07T10:15:00Z, 2026-12-07T10:15:00.250+01:00; digits of
 *                        a second beyond the millisecond are dropped);
 *   samsa.deliver.after  decimal milliseconds;
 *   samsa.deliver.cancel the id of a pending record (not empty).
 * Returns 0 with *out set (DELAY_NONE when none of them is there), or -1 with a message
 * naming the header in why (why_size bytes) when a value is malformed, negative, beyond
 * 64 bits or a representable time, or too far off, when at and after come together, when
 * one comes twice, or when cancel comes with either. */
int delay_parse(const struct delay_header *headers, size_t n, int64_t append_ms,
                int64_t max_delay_ms, struct delay_request *out, char *why, size_t why_size);

/* ---- the timing wheel ----
 * Entries (a due time, an arrival sequence number, and the caller's ref, unique among
 * those held) wait until the wheel's time passes their due time. Four levels of 256
 * slots (1 ms, 256 ms, 65.5 s and 4.7 h wide: 49.7 days in all) take any due time; an
 * entry further off goes round the last level until it comes near. Adding, cancelling
 * and each millisecond advanced cost O(1); an entry is moved at most once per level. */

struct delay_entry {
    int64_t due_ms;
    uint64_t seq; /* order among entries due in the same millisecond */
    int64_t ref;  /* the caller's: e.g. the record's offset in the delay store */
};

struct delay_wheel;

/* A wheel whose time is now_ms: entries due at or before it are due at once. */
struct delay_wheel *delay_wheel_new(int64_t now_ms);
void delay_wheel_free(struct delay_wheel *w);
/* Adds an entry (ref not held yet). One due at or before the wheel's time comes out at
 * the next advance, before the entries that falls due. */
void delay_wheel_add(struct delay_wheel *w, const struct delay_entry *e);
/* Takes out the entry with this ref; false if the wheel does not hold it. */
bool delay_wheel_cancel(struct delay_wheel *w, int64_t ref);
/* Moves the wheel's time to now_ms and hands every entry due by then to fn, in (due,
 * seq) order, each once; they are no longer held when fn runs. The time never goes back:
 * an earlier now_ms hands out only what was added already due (a clock stepped back
 * delays nothing that is due). Returns how many were handed out. */
size_t delay_wheel_advance(struct delay_wheel *w, int64_t now_ms,
                           void (*fn)(void *arg, const struct delay_entry *e), void *arg);
/* The wheel's time: every entry due at or before it has been handed out. */
int64_t delay_wheel_now(const struct delay_wheel *w);
/* Entries held. */
size_t delay_wheel_count(const struct delay_wheel *w);
/* A time at or before the earliest due time held (exact when that is within 256 ms),
 * never before the wheel's time unless an entry is already due; INT64_MAX when empty.
 * For a timer: advancing to it hands out the earliest entries or moves them nearer. */
int64_t delay_wheel_next_due(const struct delay_wheel *w);

#endif
