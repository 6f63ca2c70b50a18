/*
 * delay: durable delayed delivery (issue #16, DESIGN.md "Durable delayed delivery").
 *
 * A producer asks for a record to appear in its partition at a later time with a record
 * header: samsa.deliver.at (epoch milliseconds, or an RFC 3339 timestamp) or
 * samsa.deliver.after (milliseconds from the broker's append time), and takes a pending
 * record back with samsa.deliver.cancel. The records wait in an internal topic; memory
 * holds only what is due soon, in a timing wheel.
 *
 * This header has the parts that know nothing of the broker:
 *   - reading a record's delivery headers (delay_parse);
 *   - the timing wheel of entries due soon (delay_wheel_*), which hands them out in
 *     due-time order, entries due in the same millisecond in the order they were added;
 *   - the due-time index on disk (delay_index_*), from which the wheel is refilled.
 * The first two do no I/O and read no clock. docs/architecture.md ("Delayed delivery")
 * has the design they are part of.
 *
 * Errors: delay_parse returns -1 and writes why; the wheel has none (it asserts its
 * invariants); the index returns 0 or -errno. Single-threaded: the caller owns each
 * object.
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
/* The same without an index of refs: adds cost no hash-table insert (a cache miss per
 * entry among millions), delay_wheel_cancel may not be called, and refs need not be
 * unique. For a caller that tells cancelled entries apart itself when they come out. */
struct delay_wheel *delay_wheel_new_no_cancel(int64_t now_ms);
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

/* ---- the due-time index ----
 * One per delay partition: an entry (due time, delay-log offset, and a 32-bit tag of the
 * caller's) per record due beyond the wheel's window, in append-only files in dir, one
 * per due-time bucket of bucket_ms ("<bucket start>.due"), so that taking the next
 * stretch of time into the wheel reads only the files of that stretch. Entries are 24
 * bytes: due, offset, tag (big-endian), a CRC32C of those 20 bytes. Nothing is made
 * durable: the index is derived, rebuilt from the delay log whenever the partition is
 * loaded, so that no crash, damage or stale file can make it lose a record. */

struct delay_index;

/* Opens an empty index in dir (created if missing; bucket files an earlier run left are
 * removed). 0 or -errno. */
int delay_index_open(const char *dir, int64_t bucket_ms, struct delay_index **out);
void delay_index_close(struct delay_index *ix);
/* Adds an entry. Buffered: written to its bucket's file in a batch (a write error may
 * come from a later add, and is for the entries of that batch). 0 or -errno. */
int delay_index_add(struct delay_index *ix, int64_t due_ms, int64_t offset, uint32_t tag);
/* Hands fn every entry due in [from_ms, to_ms), file by file (within a file in no
 * particular order). Entries whose CRC does not match (damage) are skipped and counted
 * in *damaged: a caller that finds any rebuilds the index from the log. 0 or -errno. */
int delay_index_scan(struct delay_index *ix, int64_t from_ms, int64_t to_ms,
                     void (*fn)(void *arg, int64_t due_ms, int64_t offset, uint32_t tag), void *arg,
                     size_t *damaged);
/* The start of the first bucket at or after from_ms's that has entries; INT64_MAX if
 * none (the next stretch worth reading, however far off). */
int64_t delay_index_next_bucket(const struct delay_index *ix, int64_t from_ms);
/* Removes the buckets that end at or before before_ms (their entries were taken). */
int delay_index_drop_before(struct delay_index *ix, int64_t before_ms);

/* ---- the delay store's records ----
 * DELAY_TOPIC, compacted, holds per delay partition:
 *   - an envelope per pending record: key 'E', the envelope's own offset and the
 *     record's due time (8 bytes each, big-endian: the broker appends envelopes itself,
 *     so it knows their offsets), the value below; once the record is delivered or
 *     cancelled, a tombstone of that key, so that compaction removes both (and a load
 *     can tell from the tombstone alone whether it is one of the records waiting beyond
 *     the window). Stores written before the due time was in the key have 9-byte
 *     envelope keys ('E' and the offset): read, and their tombstones written alike;
 *   - per target partition, how many records this delay partition has delivered to it:
 *     key 'S', the partition (4 bytes) and the topic; value the count (4 bytes): the
 *     next sequence number of the delay partition's own idempotent producer there;
 *   - its counts (struct delay_counts), key 'C'.
 * Envelope value, version 0 (big-endian): version int8 | due_ms int64 | partition int32 |
 * topic int16 length + bytes | topic_id 16 bytes | producer_id int64 | producer_epoch int16 | first_sequence
 * int32 | last_sequence int32 | timestamp int64 | key int32 length (-1 null) + bytes |
 * value the same | header_count int32 | headers int32 length + bytes (the record's raw
 * header section). */

#define DELAY_TOPIC "__samsa_delay"
/* The header a delivered record carries: the envelope's offset in its delay partition,
 * decimal ASCII (what samsa.deliver.cancel takes while it is pending). */
#define DELAY_HEADER_ID "samsa.delay.id"

struct delay_envelope {
    int64_t due_ms;
    struct slice topic;      /* the target partition */
    const uint8_t *topic_id; /* 16 bytes: a topic deleted and created again is another */
    int32_t partition;
    /* The producer's batch, when an idempotent producer sent it (producer_id -1: not):
     * rebuilds the target partition's memory of that producer at start-up. */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t first_sequence, last_sequence;
    int64_t timestamp;       /* the record's own */
    struct slice key, value; /* ptr NULL: null */
    int32_t header_count;
    struct slice headers; /* raw header section */
};

void delay_envelope_encode(struct buf *out, const struct delay_envelope *e);
/* Reads an envelope (slices borrowed from value): 0, or -1 when it is malformed. */
int delay_envelope_decode(struct slice value, struct delay_envelope *out);

#define DELAY_ENVELOPE_KEY_BYTES 17
#define DELAY_ENVELOPE_KEY_BYTES_V0 9 /* without the due time */
#define DELAY_DUE_UNKNOWN INT64_MIN   /* the due time of a 9-byte key */
/* Writes an envelope's key: its length (the 9-byte form when due_ms is
 * DELAY_DUE_UNKNOWN, the key of a store written before the due time was in it). */
size_t delay_key_envelope(uint8_t out[DELAY_ENVELOPE_KEY_BYTES], int64_t offset, int64_t due_ms);
void delay_key_sequence(struct buf *out, struct slice topic, int32_t partition);
/* What the delay partition has done so far, kept with its marks (key 'C'): value the
 * four counts, int64 each, in this order. */
struct delay_counts {
    int64_t delivered, late, cancelled, dropped;
};
#define DELAY_COUNTS_KEY "C"
#define DELAY_COUNTS_BYTES 32
void delay_counts_encode(uint8_t out[DELAY_COUNTS_BYTES], const struct delay_counts *c);
int delay_counts_decode(struct slice value, struct delay_counts *out); /* 0 or -1 */
enum delay_key_kind {
    DELAY_KEY_ENVELOPE, /* offset, due_ms */
    DELAY_KEY_SEQUENCE, /* topic (borrowed), partition */
    DELAY_KEY_COUNTS,
    DELAY_KEY_UNKNOWN, /* a newer broker's record, or damage: skipped */
};
struct delay_key {
    enum delay_key_kind kind;
    int64_t offset, due_ms; /* due_ms DELAY_DUE_UNKNOWN: a 9-byte key */
    struct slice topic;
    int32_t partition;
};
void delay_key_decode(struct slice key, struct delay_key *out);

/* Reads a record's raw header section of count headers into out (at most max): how
 * many, or -1 when it is malformed or holds more than max. */
int delay_headers_read(struct slice raw, int32_t count, struct delay_header *out, size_t max);

#endif
