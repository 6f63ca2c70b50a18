/*
 * Internal structures of the storage module: segments, their indexes, the log.
 * Not included outside src/storage/.
 */
#ifndef SAMSA_STORAGE_INTERNAL_H
#define SAMSA_STORAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "storage/storage.h"

#define SUBSYS "storage"

#define OFFSET_INDEX_ENTRY_BYTES 8 /* int32 relative offset, int32 position */
#define TIME_INDEX_ENTRY_BYTES 12  /* int64 timestamp, int32 relative offset */

/* A sparse index file (.index or .timeindex), kept exactly sized (no preallocation).
 * The active segment keeps a heap copy it appends to, written to the file when sealed,
 * closed or synced; sealed segments mmap the file read-only while the segment is open in
 * the file cache (fcache.c), and not otherwise. No descriptor stays open.
 * Entries are in file format (big-endian). */
struct seg_index {
    char *path; /* owned */
    size_t entry_bytes;
    size_t n;       /* entries */
    size_t written; /* entries the file holds (<= n); the rest are only in mem */
    uint8_t *mem;   /* heap copy while active, else NULL */
    size_t cap;     /* entries allocated in mem */
    uint8_t *map;   /* read-only mapping while sealed and open, else NULL */
    size_t map_len;
};

static inline const uint8_t *idx_entries(const struct seg_index *x)
{
    return x->mem ? x->mem : x->map;
}

/* Takes ownership of path. */
void idx_init(struct seg_index *x, char *path, size_t entry_bytes);
/* Loads the file (heap copy if active, else mmap), creating it empty if missing.
 * Returns 0 or -errno. Does NOT check content; a size not a multiple of the entry size
 * is reported as STORAGE_ERR_CORRUPT. */
int idx_load(struct seg_index *x, bool active);
/* Appends one entry to memory; the file gets it at seal, close or idx_sync. */
void idx_append(struct seg_index *x, const uint8_t *entry);
/* Writes pending entries and fdatasyncs the file. Returns 0 or -errno. */
int idx_sync(struct seg_index *x);
/* Writes pending entries and frees the heap copy: the file is mapped read-only when
 * needed (idx_map_lazy). */
int idx_seal(struct seg_index *x);
/* A sealed index with entries and no mapping gets mapped. 0, -errno, or
 * STORAGE_ERR_CORRUPT if the file is shorter than its entries (changed under us). */
int idx_map_lazy(struct seg_index *x);
/* Drops the mapping of a sealed index (the entries stay in the file). */
void idx_unmap(struct seg_index *x);
/* Drops all entries (file and memory) and makes it active. */
int idx_reset(struct seg_index *x);
/* Keeps the first n entries. */
int idx_truncate(struct seg_index *x, size_t n);
/* Frees memory and mapping; pending entries are NOT written (see idx_sync). */
void idx_close(struct seg_index *x);

/* A segment's files are open only while it is in the open-file cache (fcache.c): fd and
 * the sealed indexes' mappings are valid after seg_acquire until the next seg_acquire of
 * another segment (which may close this one), or, lent by log_read, until the read turn
 * ends. */
struct segment {
    int64_t base_offset;
    char *path;                          /* .log path, owned */
    int fd;                              /* .log, O_RDWR, while open in the cache; else -1 */
    struct segment *lru_prev, *lru_next; /* the cache's LRU or lent list while open */
    bool lent;                           /* pinned by log_read until the read turn ends */
    int64_t size_bytes;                  /* bytes of whole batches in the file */
    int64_t next_offset;                 /* last offset + 1; base_offset if empty */
    int64_t max_timestamp;               /* -1 if no batch */
    int64_t offset_of_max_timestamp;
    int64_t roll_base_ms;     /* first batch's max timestamp (Kafka) or append time; -1 empty */
    int64_t last_modified_ms; /* wall ms of last append (mtime after load) */
    int64_t bytes_since_index;
    int64_t last_index_ts; /* timestamp of the last timeindex entry, -1 if none */
    struct seg_index oidx;
    struct seg_index tidx;
    bool active;
    /* Damage kept on disk (recovery.c): offsets [damaged_from, damaged_to) cannot be
     * read; -1 when none is known. damaged_to is -1 when the extent is unknown (found by
     * a read, past the last index entry): up to the next segment. Reported once. */
    int64_t damaged_from, damaged_to;
    bool damage_reported;
};

struct epoch_entry {
    int32_t epoch;
    int64_t start_offset;
};

struct log {
    char *dir;
    char *name; /* basename, for log lines */
    struct log_config cfg;
    struct segment **segs; /* sorted by base_offset; last is active */
    size_t n_segs, cap_segs;
    int64_t log_start_offset;
    int64_t log_end_offset;
    bool parent_unsynced;      /* dir was created and its parent not fsync'd yet */
    int64_t durable_offset;    /* recovery point */
    int64_t appended_messages; /* monotonic counter of records appended */
    int64_t flushed_messages;  /* counter value at the last successful flush */
    int64_t last_flush_ms;
    uint64_t dir_gen; /* bumped when files are created/renamed/deleted */
    uint64_t dir_synced_gen;
    uint64_t trunc_gen; /* bumped by every truncation of written data */
    struct epoch_entry *epochs;
    size_t n_epochs, cap_epochs;
    bool failed;        /* an I/O error left state uncertain */
    uint64_t lent_turn; /* read turn in which log_read last lent a segment */
    /* compaction (cleaner.c) */
    int64_t clean_checkpoint; /* first dirty offset (cleaner-checkpoint) */
    int64_t clean_horizon_ms; /* earliest delete horizon of a removable tombstone, -1 */
    uint64_t clean_trunc_gen; /* trunc_gen the checkpoint is valid for */
    bool cleaning;            /* a clean job is in flight */
    /* idempotent producers (producer_snapshots.c) */
    struct producer_state *producers;
    bool snap_exists;     /* a producer snapshot file is on disk */
    int64_t snap_pending; /* offset of a snapshot not fsync'd yet, -1 none */
    /* aborted transactions (txn_index.c): ascending last_offset */
    struct pstate_txn *aborted;
    size_t n_aborted, cap_aborted;
    int64_t *txnidx_unsynced; /* bases of .txnindex files written and not yet in a job */
    size_t n_txnidx_unsynced, cap_txnidx_unsynced;
};

/* ---- batch.c ---- */
/* Parses a header from BATCH_HEADER_BYTES available bytes without requiring the rest of
 * the batch: 0, STORAGE_ERR_CORRUPT or STORAGE_ERR_BAD_MAGIC. */
int batch_parse_header_only(const uint8_t *p, struct batch_info *out);

/* ---- fcache.c (the open-file cache; owner thread only) ---- */
/* Opens s's .log (and maps its sealed indexes) if the cache closed them, closing the
 * least recently used open segments beyond the bound; marks s most recently used.
 * Returns 0 or -errno (-EMFILE/-ENFILE when the process or system is out of files). */
int seg_acquire(struct segment *s);
/* Closes room for one more open file (before creating one). */
void fcache_make_room(void);
/* Enters a freshly created segment's descriptor (owned by the cache from now on). */
void seg_adopt_fd(struct segment *s, int fd);
/* Pins an open segment until the read turn ends; records the turn in *lent_turn. */
void seg_lend(struct segment *s, uint64_t *lent_turn);
/* Lent segments fill the bound: log_read lends no more segments of other logs. */
bool fcache_lend_full(void);
uint64_t fcache_turn(void);
/* Closes s's files if open (lent or not): for a segment being freed. */
void seg_close_files(struct segment *s);

/* ---- segment.c ---- */
/* Formats "<dir>/<20-digit base><suffix>" into a malloc'd string. */
char *seg_path(const char *dir, int64_t base_offset, const char *suffix);
/* Creates a new empty active segment (O_EXCL). */
int seg_create(struct log *l, int64_t base_offset, struct segment **out);
/* Opens the files of an existing segment (indexes created if missing). Loads nothing. */
int seg_open_files(struct log *l, int64_t base_offset, struct segment **out);
void seg_free(struct segment *s);
/* Unlinks the segment's files and frees the segment. */
void seg_delete(struct log *l, struct segment *s);
void seg_unlink_files(struct log *l, int64_t base_offset);
/* Writes the final timeindex entry and maps the indexes read-only. */
int seg_seal(struct log *l, struct segment *s);
/* Adds index entries for a batch written at `pos` (call before size grows). */
void seg_index_batch(struct log *l, struct segment *s, int64_t pos, int64_t last_offset,
                     int64_t size_bytes);
/* Index lookups (s acquired): largest entry with offset <= target (position, 0 if none). */
int64_t seg_lookup_position(const struct segment *s, int64_t target_offset);
/* Largest timeindex entry with timestamp <= ts: its offset (base_offset if none). */
int64_t seg_lookup_time(const struct segment *s, int64_t ts);
/* fdatasync of the .log (through a short-lived descriptor if the cache closed it; a
 * deleted file is fine). Returns 0 or -errno. */
int seg_sync_data(struct segment *s);
/* Reads headers sequentially from pos (acquires s). Calls fn for each whole batch header
 * (hdr points at BATCH_HEADER_BYTES bytes); fn returns 0 to go on, 1 to stop.
 * Stops at end of file. Returns 0, 1 if fn stopped, STORAGE_ERR_* on bad framing
 * (*bad_pos set), or -errno. */
typedef int (*seg_scan_fn)(void *arg, const struct batch_info *b, int64_t pos);
int seg_scan(struct log *l, struct segment *s, int64_t pos, int64_t end, seg_scan_fn fn, void *arg,
             int64_t *bad_pos);

/* The position of the first indexed batch whose last offset is target_offset or more,
 * or -1: where a read can pick up again past damage (log_read). */
int64_t seg_index_position_covering(const struct segment *s, int64_t target_offset);

/* ---- recovery.c ---- */
/* Full scan of a segment: validates every batch (CRC), truncates at the first bad one,
 * rebuilds both indexes. *truncated set if bytes were cut. */
int seg_recover(struct log *l, struct segment *s, int64_t expect_min_offset, bool *truncated);
/* log_open's recovery: damage is cut off only when it can be the torn tail of the last
 * write (tail: the last segment; nothing intact after it; at or past synced_offset,
 * the offset known durable). Any other damage is kept on disk and skipped: the scan
 * resumes at the next intact batch, the unreadable offsets are recorded in
 * s->damaged_from/to and reported once. */
int seg_recover_keeping(struct log *l, struct segment *s, int64_t expect_min_offset, bool tail,
                        int64_t synced_offset, bool *truncated);
/* Cheap load for a cleanly shut down segment: checks the indexes and scans the tail
 * after the last index entry. Returns STORAGE_ERR_CORRUPT if the segment needs recovery. */
int seg_load_clean(struct log *l, struct segment *s);
/* Updates a segment's next offset, max timestamp and indexes for a batch at pos. */
void seg_note_batch(struct log *l, struct segment *s, const struct batch_info *b, int64_t pos);

/* ---- epoch.c ---- */
int epoch_load(struct log *l);
/* Records that `epoch` starts at start_offset if it is newer than the latest. Returns 1
 * if the cache changed (caller persists with epoch_persist). */
int epoch_assign(struct log *l, int32_t epoch, int64_t start_offset);
/* Drops entries with start_offset >= end_offset. Returns 1 if changed. */
int epoch_truncate_from_end(struct log *l, int64_t end_offset);
/* Writes leader-epoch-checkpoint atomically (tmp + rename; fsync'd by the next flush via
 * the directory generation). */
int epoch_persist(struct log *l);

/* ---- checkpoint.c ---- */
/* Writes data to path atomically: tmp, (fsync if do_sync), rename, (fsync dir). */
int atomic_write_file(const char *path, const char *data, size_t len, bool do_sync);

/* ---- cleaner.c ---- */
/* At log_open, before segments are listed: finishes (roll forward) or rolls back a swap
 * interrupted by a crash and loads the cleaner checkpoint. */
int cleaner_open(struct log *l);

/* ---- producer_snapshots.c (idempotent producers' state of the log) ---- */
/* At the end of log_open: loads the newest valid snapshot, replays the batches after it. */
int producers_open(struct log *l);
/* After a truncation: drops snapshots beyond the new end and rebuilds the state. */
int producers_truncated(struct log *l);
/* Before an append with assigned offsets: 0 (append), STORAGE_DUPLICATE (*dup filled),
 * STORAGE_ERR_OUT_OF_ORDER_SEQUENCE, STORAGE_ERR_INVALID_PRODUCER_EPOCH, or an I/O error
 * writing the log's first snapshot. */
int producers_check(struct log *l, const uint8_t *records, size_t len,
                    struct log_append_result *dup);
/* After a successful write (offsets assigned): records the batches' producers. */
void producers_appended(struct log *l, const uint8_t *records, size_t len);
/* After a roll: a snapshot at the new segment's base, if the log has producers. */
void producers_rolled(struct log *l);
/* Clean close: a durable snapshot at the log end; frees the state. */
void producers_close(struct log *l);
/* Flush job: the pending snapshot's path (malloc'd; NULL none) to fdatasync with the
 * segments. */
int producers_flush_prepare(struct log *l, char **path_out, int64_t *offset_out);
void producers_flush_done(struct log *l, int64_t offset, uint64_t trunc_gen);

/* ---- txn_index.c (aborted transactions of the log) ---- */
/* At log_open, after the segments and before producers_open: loads the files. */
int txnidx_open(struct log *l);
/* An aborted transaction whose marker is in the log now (append or replay; one already
 * indexed is not added again). Marks the log failed when it cannot be written. */
void txnidx_add(struct log *l, const struct pstate_txn *t);
/* After a truncation (before producers_truncated's replay): forgets entries past the
 * new log end. */
int txnidx_truncated(struct log *l);
/* After the log start rose: forgets entries wholly below it. */
void txnidx_trim(struct log *l);
/* Flush job: the .txnindex files to sync (malloc'd paths into paths, which has room for
 * txnidx_unsynced_count(l)); returns how many. */
static inline size_t txnidx_unsynced_count(const struct log *l)
{
    return l->n_txnidx_unsynced;
}
size_t txnidx_flush_prepare(struct log *l, char **paths);
/* A job whose files could not be opened: its .txnindex paths go to the next job. */
void txnidx_flush_not_done(struct log *l, char *const *paths, size_t n);
/* Clean close: syncs the files not yet synced. */
void txnidx_close(struct log *l);
void txnidx_free(struct log *l);

/* ---- log.c ---- */
/* "<20-digit offset><suffix>" -> the offset, -1 if the name is not one. */
int64_t parse_segment_name(const char *name, const char *suffix);
/* Offsets of the files "<20-digit offset><suffix>" in dir, ascending (*out malloc'd). */
int list_offset_files(const char *dir, const char *suffix, int64_t **out, size_t *n_out);
static inline struct segment *log_active(const struct log *l)
{
    return l->segs[l->n_segs - 1];
}
void log_remove_segment_at(struct log *l, size_t i); /* deletes files, shifts array */

#endif
