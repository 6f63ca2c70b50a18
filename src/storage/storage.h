/*
 * storage: the partition log, in Kafka's on-disk format (docs/storage-format.md).
 *
 * A `struct log` is one partition directory `<log.dir>/<topic>-<partition>/` holding
 * segments (`<base offset>.log` + `.index` + `.timeindex`) and a leader-epoch-checkpoint.
 * Record batches (magic 2) are stored byte-for-byte as produced; only baseOffset,
 * partitionLeaderEpoch and, for LogAppendTime topics, maxTimestamp + attributes + CRC
 * are patched.
 *
 * Threading: every function here runs on the thread that owns the log (the event loop),
 * except log_flush_execute(), log_clean_execute() and the helper threads running them,
 * which open the files they need themselves and never touch the open-file cache.
 * Nothing here calls fsync on the owner thread except log_close().
 *
 * Open files: a segment's files are open only while a process-wide cache keeps them
 * (storage_set_max_open_files below); idle partitions hold no descriptor and no mapping.
 *
 * Errors: 0 on success, a negative errno (-EIO, -ENOSPC, ...) or a STORAGE_ERR_* code.
 * Kafka error codes are produced by the server, never here.
 */
#ifndef SAMSA_STORAGE_H
#define SAMSA_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Project error codes (negative, away from errno values). */
#define STORAGE_ERR_CORRUPT (-2001)      /* bad CRC, bad framing, bad record layout */
#define STORAGE_ERR_BAD_MAGIC (-2002)    /* magic != 2 */
#define STORAGE_ERR_SHORT (-2003)        /* buffer ends before the batch does */
#define STORAGE_ERR_OUT_OF_RANGE (-2004) /* offset < log start or > log end */
#define STORAGE_ERR_BATCH_TOO_LARGE                                                                \
    (-2005)                            /* larger than log.segment.bytes (or, from
                                              batch_recompress, than max_batch_bytes) */
#define STORAGE_ERR_LOG_FAILED (-2006) /* an earlier fsync/truncate failed; log unusable */
/* Idempotent producers (log_append): */
#define STORAGE_ERR_OUT_OF_ORDER_SEQUENCE (-2008)  /* a gap, or a new epoch not at sequence 0 */
#define STORAGE_ERR_INVALID_PRODUCER_EPOCH (-2009) /* older than the producer's epoch */
#define STORAGE_DUPLICATE 1 /* a retry of a batch already in the log: nothing appended */
/* Compression (compress.c): */
#define STORAGE_ERR_DECOMPRESS_LIMIT (-2010) /* decompresses to more than the bound */
#define STORAGE_ERR_NO_KEY (-2011) /* a record without a key (compacted topics need keys) */
/* Transactions (log_append): */
#define STORAGE_ERR_INVALID_TXN_STATE (-2012)  /* not transactional inside a transaction */
#define STORAGE_ERR_COORDINATOR_FENCED (-2013) /* a marker from an older coordinator */

/* Human-readable name for a storage return code (errno values via strerror; EMFILE and
 * ENFILE say which limit was hit). */
const char *storage_strerror(int err);

/* ------------------------------------------------------------------------------------
 * The open-file cache (fcache.c). Segment files are opened when a segment is read,
 * appended to, synced or loaded, and the least recently used are closed (their index
 * mappings dropped) beyond a process-wide bound, so that any number of partitions works
 * under a fixed open-file limit. The active segment of a partition being produced to is
 * the most recently used and stays open. All of it runs on the owner thread.
 * ---------------------------------------------------------------------------------- */
/* Bound on segments with open files (each: one descriptor, and up to two index
 * mappings). Without a call: half of the RLIMIT_NOFILE soft limit. Clamped to at least
 * 4 and to a quarter of vm.max_map_count. Lowering it closes the surplus at once
 * (except segments lent by log_read). */
void storage_set_max_open_files(size_t n);
size_t storage_max_open_files(void);
struct storage_open_files_stats {
    size_t max_open;    /* the bound */
    size_t open;        /* segments with open files now */
    size_t lent;        /* of which lent by log_read in this read turn */
    uint64_t opens;     /* segment files opened so far */
    uint64_t evictions; /* closed to make room */
};
void storage_open_files_stats(struct storage_open_files_stats *out);
/* Ends the read turn: segments lent by log_read may be closed again. The server calls it
 * once per event-loop iteration; every storage call that changes a log (append, flush
 * prepare, truncation, retention, open, close, cleaning) ends the turn too. */
void storage_read_turn_end(void);

/* ------------------------------------------------------------------------------------
 * Record batches (magic 2)
 *
 * baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 |
 * crc uint32 | attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 |
 * maxTimestamp int64 | producerId int64 | producerEpoch int16 | baseSequence int32 |
 * recordsCount int32 | records...      CRC32C covers attributes..end.
 * ---------------------------------------------------------------------------------- */
#define BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define BATCH_HEADER_BYTES 61 /* everything before the records */
#define BATCH_MIN_LENGTH 49   /* minimum batchLength value (header after the length) */
#define BATCH_OFF_BASE_OFFSET 0
#define BATCH_OFF_LENGTH 8
#define BATCH_OFF_LEADER_EPOCH 12
#define BATCH_OFF_MAGIC 16
#define BATCH_OFF_CRC 17
#define BATCH_OFF_ATTRIBUTES 21
#define BATCH_OFF_LAST_OFFSET_DELTA 23
#define BATCH_OFF_BASE_TIMESTAMP 27
#define BATCH_OFF_MAX_TIMESTAMP 35
#define BATCH_OFF_PRODUCER_ID 43
#define BATCH_OFF_PRODUCER_EPOCH 51
#define BATCH_OFF_BASE_SEQUENCE 53
#define BATCH_OFF_RECORDS_COUNT 57

#define BATCH_ATTR_COMPRESSION_MASK 0x07 /* 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd */
#define BATCH_ATTR_LOG_APPEND_TIME 0x08  /* timestamp type bit */
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

struct batch_info {
    int64_t base_offset;
    int32_t batch_length; /* the field: bytes after the length field */
    size_t size_bytes;    /* whole batch: batch_length + BATCH_LOG_OVERHEAD */
    int32_t partition_leader_epoch;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t first_timestamp; /* baseTimestamp */
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
};

static inline int64_t batch_last_offset(const struct batch_info *b)
{
    return b->base_offset + b->last_offset_delta;
}
static inline int batch_compression(const struct batch_info *b)
{
    return b->attributes & BATCH_ATTR_COMPRESSION_MASK;
}

/* Validates ONE batch at the start of p[0..len): length consistency, whole batch present,
 * magic 2, CRC32C, recordsCount >= 0, lastOffsetDelta >= 0. Fills *out (may be NULL).
 * Returns 0, STORAGE_ERR_SHORT (len too small for the batch it announces),
 * STORAGE_ERR_BAD_MAGIC or STORAGE_ERR_CORRUPT. */
int batch_validate(const uint8_t *p, size_t len, struct batch_info *out);

/* Parses only the header fields (no CRC check). Same return codes except CRC. */
int batch_parse_header(const uint8_t *p, size_t len, struct batch_info *out);

/* Walks the records of an uncompressed batch (p is the whole batch, info from
 * batch_validate) checking varint framing: exactly records_count records that end exactly
 * at the end of the batch, offset deltas increasing and <= lastOffsetDelta.
 * Compressed batches return 0 without looking. 0 or STORAGE_ERR_CORRUPT. */
int batch_count_records_check(const uint8_t *p, const struct batch_info *info);
/* The same check for an uncompressed batch, also telling whether every record has a
 * key (*all_keyed, may be NULL; set only on success). One pass without building
 * records: this runs on every produced batch. 0 or STORAGE_ERR_CORRUPT. */
int batch_check_records(const uint8_t *p, const struct batch_info *info, bool *all_keyed);
/* What batch_scan_records learns in its one pass over a batch's records. */
struct batch_scan {
    bool all_keyed;        /* every record has a key */
    int64_t min_timestamp; /* smallest record timestamp (first + delta, wrapping as Java's */
    int64_t max_timestamp; /* longs); INT64_MAX and INT64_MIN when there are no records */
    bool any_headers;      /* some record has a header (delayed delivery looks closer) */
};
/* batch_check_records's check (0 or STORAGE_ERR_CORRUPT), also filling *out on success:
 * the produce path's one pass over each uncompressed batch. */
int batch_scan_records(const uint8_t *p, const struct batch_info *info, struct batch_scan *out);

/* Iterates a records blob holding several concatenated batches.
 *   struct batch_iter it; batch_iter_init(&it, p, len);
 *   while ((rc = batch_iter_next(&it, &info, true)) > 0) { batch at it.p + it.batch_pos }
 * batch_iter_next returns 1 with a batch, 0 at the clean end, or a negative code
 * (batch_validate's codes) at the first bad batch; it.pos then points at that batch. */
struct batch_iter {
    const uint8_t *p;
    size_t len;
    size_t pos;       /* start of the next batch */
    size_t batch_pos; /* start of the batch last returned */
};
void batch_iter_init(struct batch_iter *it, const uint8_t *p, size_t len);
int batch_iter_next(struct batch_iter *it, struct batch_info *out, bool check_crc);

/* Makes a producer's batch (whole, validated; info its header) CreateTime: clears the
 * LogAppendTime attribute bit and recomputes the CRC, in place (Kafka does not let a
 * producer choose LogAppendTime). */
void batch_clear_log_append_time(uint8_t *batch, const struct batch_info *info);

/* Validates every batch of a produce blob (at least one batch, no trailing bytes) and,
 * when check_records, the record framing of uncompressed ones. Counts are optional. */
int batch_validate_all(const uint8_t *p, size_t len, bool check_records, int *batches_out,
                       int64_t *records_out);

/* Records of an uncompressed batch (record.c). Slices borrow the batch's memory. */
struct record {
    int8_t attributes;
    int32_t offset_delta;
    int64_t offset;     /* absolute: batch base offset + delta */
    int64_t timestamp;  /* absolute: batch first timestamp + delta */
    struct slice key;   /* ptr NULL: null key */
    struct slice value; /* ptr NULL: null value (a tombstone) */
    int32_t header_count;
    struct slice headers; /* the raw header section */
};
struct record_iter {
    struct reader r;
    struct batch_info info;
    int32_t remaining;
    int32_t prev_delta;
};
/* batch is a whole batch (validated), info its header; compression must be none. */
void record_iter_init(struct record_iter *it, const uint8_t *batch, const struct batch_info *info);
/* 1 with a record, 0 at the end, STORAGE_ERR_CORRUPT if the framing is wrong (records
 * that overrun, offset deltas not increasing, bytes left over, count mismatch). */
int record_iter_next(struct record_iter *it, struct record *out);

/* Appends one uncompressed magic-2 batch of n records, all with the given timestamp, no
 * producer id; base offset and leader epoch are assigned by log_append. For records the
 * broker writes itself (internal topics). */
struct record_in {
    struct slice key;   /* ptr NULL: null */
    struct slice value; /* ptr NULL: null (tombstone) */
};
void batch_encode(struct buf *out, const struct record_in *recs, size_t n, int64_t timestamp);
/* The same with headers and, when producer is not NULL, as an idempotent producer's batch
 * (its id, epoch and the sequence number of the first record): for records the broker
 * delivers for someone else (delayed delivery). headers is a record's raw header section
 * (header_count entries, as struct record gives them). */
struct record_out {
    struct slice key, value; /* ptr NULL: null */
    int32_t header_count;
    struct slice headers;
};
struct batch_producer {
    int64_t id;
    int16_t epoch;
    int32_t base_sequence;
};
void batch_encode_records(struct buf *out, const struct record_out *recs, size_t n,
                          int64_t timestamp, const struct batch_producer *producer);

/* Marks a batch batch_encode_records made (whole, batch[0..len)) as transactional: the
 * attribute bit and a new CRC. */
void batch_set_transactional(uint8_t *batch, size_t len);

/* Transaction markers (KIP-98): a control batch (attributes control + transactional) of
 * one record whose key is Version int16 = 0, Type int16 (0 ABORT, 1 COMMIT) and whose
 * value is Version int16 = 0, CoordinatorEpoch int32. */
enum txn_marker_type { TXN_MARKER_ABORT = 0, TXN_MARKER_COMMIT = 1 };
void batch_encode_marker(struct buf *out, int64_t producer_id, int16_t producer_epoch,
                         enum txn_marker_type type, int32_t coordinator_epoch, int64_t timestamp);
/* Reads a control batch's marker (batch whole, info its header): 0, or
 * STORAGE_ERR_CORRUPT when it is not an uncompressed batch of one well-formed marker. */
int batch_parse_marker(const uint8_t *batch, const struct batch_info *info,
                       enum txn_marker_type *type, int32_t *coordinator_epoch);

/* ------------------------------------------------------------------------------------
 * Compression (compress.c): Kafka's batch codecs with the framing Kafka's clients write
 * (docs/storage-format.md, "Compression"), and the broker-side recompression behind the
 * topic config compression.type, as Kafka's LogValidator does it on produce.
 * Owner thread (codec contexts are cached per thread).
 * ---------------------------------------------------------------------------------- */
enum compress_codec {
    COMPRESS_PRODUCER = -1, /* compression.type=producer: batches keep the producer's codec */
    COMPRESS_NONE = 0,      /* the attribute values (BATCH_ATTR_COMPRESSION_MASK) */
    COMPRESS_GZIP = 1,
    COMPRESS_SNAPPY = 2,
    COMPRESS_LZ4 = 3,
    COMPRESS_ZSTD = 4,
};
/* Kafka's level ranges (KIP-390) and defaults; gzip's -1 is zlib's default (6). */
#define COMPRESS_GZIP_MIN_LEVEL 1
#define COMPRESS_GZIP_MAX_LEVEL 9
#define COMPRESS_GZIP_DEFAULT_LEVEL (-1)
#define COMPRESS_LZ4_MIN_LEVEL 1
#define COMPRESS_LZ4_MAX_LEVEL 17
#define COMPRESS_LZ4_DEFAULT_LEVEL 9
#define COMPRESS_ZSTD_MIN_LEVEL (-131072)
#define COMPRESS_ZSTD_MAX_LEVEL 22
#define COMPRESS_ZSTD_DEFAULT_LEVEL 3

/* Parses a compression.type value, Kafka's names exactly (case-sensitive, as Kafka's
 * validator): uncompressed, zstd, lz4, snappy, gzip, producer. 0 or -EINVAL. */
int compress_type_parse(const char *name, enum compress_codec *out);
/* "none", "gzip", ... "producer" (for log lines). */
const char *compress_codec_name(enum compress_codec codec);
/* The config naming a codec's level ("compression.zstd.level"), NULL if it has none. */
const char *compress_level_config(enum compress_codec codec);

/* Appends the compressed form of in[0..len) to out (caller-owned). level is Kafka's for
 * the codec (ignored by none and snappy). 0, or a negative errno when the library fails
 * (-ENOMEM, -EIO) or the codec is unknown (-EINVAL). */
int compress_encode(enum compress_codec codec, int level, const uint8_t *in, size_t len,
                    struct buf *out);
/* Appends the decompressed form of in[0..len) to out, at most max_out bytes (at most
 * SIZE_MAX / 2): more is STORAGE_ERR_DECOMPRESS_LIMIT, found without holding more than
 * max_out + 1 bytes of output. Malformed, truncated or trailing data, and codecs 5..7,
 * are STORAGE_ERR_CORRUPT. On error out is as it was. Snappy: Xerial-framed or raw. */
int compress_decode(enum compress_codec codec, const uint8_t *in, size_t len, size_t max_out,
                    struct buf *out);
/* Frees this thread's cached codec contexts (tests, thread exit). */
void compress_thread_cleanup(void);

/* The decompression bound for one produce request's batches of one partition, from the
 * topic's max.message.bytes: 16 times it, at least 64 MiB (64 times Kafka's default:
 * room for the best compression ratios of real data, since the limit applies to
 * compressed batches), at most 1 GiB (batch lengths are int32, and the broker holds it
 * in memory while it recompresses). */
#define COMPRESS_BOUND_RATIO 16
#define COMPRESS_MIN_BOUND_BYTES ((size_t)64 << 20)
#define COMPRESS_MAX_BOUND_BYTES ((size_t)1 << 30)
size_t compress_decompressed_bound(int64_t max_batch_bytes);

struct batch_recompress_opts {
    enum compress_codec target; /* the topic's compression.type */
    int level;                  /* Kafka's level for target (compression.<codec>.level) */
    bool check_keys;            /* compacted topic: every record must have a key */
    int64_t max_batch_bytes;    /* max.message.bytes: a rewritten batch must fit */
    struct buf *keyless;        /* optional: on STORAGE_ERR_NO_KEY, the uncompressed form
                                   of the first batch with a keyless record (valid CRC),
                                   to name the records (RecordErrors); caller-owned */
};
/* Applies a topic's compression.type to a produce blob p[0..len) that passed
 * batch_validate_all (Kafka's LogValidator): every batch whose codec is not the target
 * (and not a control batch) is rewritten with the target codec, keeping baseOffset,
 * partitionLeaderEpoch, the attributes but for the codec bits, lastOffsetDelta, both
 * timestamps, producer id, epoch, base sequence, recordsCount and the records
 * themselves, with a new batchLength and CRC. With check_keys, every record of every
 * batch (compressed ones decompressed) must have a key. Decompressed bytes of all the
 * batches together are bounded by compress_decompressed_bound(max_batch_bytes).
 * out must be empty; it is left empty when the blob is to be stored as it is, else it
 * holds the whole rewritten blob (every batch, in order; caller-owned).
 * Returns 0, STORAGE_ERR_CORRUPT (compressed data or records malformed),
 * STORAGE_ERR_DECOMPRESS_LIMIT, STORAGE_ERR_NO_KEY, STORAGE_ERR_BATCH_TOO_LARGE (a
 * rewritten batch above max_batch_bytes: Kafka's RecordTooLargeException), or a
 * negative errno from a codec library; on error out is empty. */
int batch_recompress(const uint8_t *p, size_t len, const struct batch_recompress_opts *o,
                     struct buf *out);
/* The uncompressed form of one compressed batch (info: batch_validate's) into plain
 * (replacing what it held): the header as is, then the records, at most max_out bytes of
 * them; *plain_info describes it (no codec bits; the header's length and CRC are the
 * compressed batch's, so it is for reading records, not for storing). 0, or
 * compress_decode's errors, or STORAGE_ERR_CORRUPT when the records' framing is bad. */
int batch_decompress(const uint8_t *batch, const struct batch_info *info, size_t max_out,
                     struct buf *plain, struct batch_info *plain_info);

/* ------------------------------------------------------------------------------------
 * The partition log
 * ---------------------------------------------------------------------------------- */
enum log_timestamp_type {
    LOG_TIMESTAMP_CREATE_TIME = 0,
    LOG_TIMESTAMP_LOG_APPEND_TIME = 1,
};

struct log_config {
    int64_t segment_bytes;           /* log.segment.bytes (1 GiB) */
    int64_t segment_ms;              /* log.roll.ms (7 days) */
    int64_t retention_bytes;         /* log.retention.bytes (-1 = unlimited) */
    int64_t retention_ms;            /* log.retention.ms (7 days; -1 = infinite) */
    int64_t index_interval_bytes;    /* log.index.interval.bytes (4096) */
    int64_t max_index_bytes;         /* log.index.size.max.bytes (10 MiB); roll when full */
    int64_t flush_interval_messages; /* log.flush.interval.messages (INT64_MAX); caller applies */
    int64_t flush_interval_ms;       /* log.flush.interval.ms (INT64_MAX); caller applies */
    enum log_timestamp_type timestamp_type;
    /* compaction (see the "compaction" section below) */
    bool cleanup_compact;             /* cleanup.policy contains compact (false) */
    bool cleanup_delete;              /* cleanup.policy contains delete (true): retention.ms
                                      and retention.bytes apply only when set */
    int64_t delete_retention_ms;      /* delete.retention.ms (1 day) */
    int64_t min_compaction_lag_ms;    /* min.compaction.lag.ms (0) */
    double min_cleanable_dirty_ratio; /* min.cleanable.dirty.ratio (0.5) */
};

/* Fills Kafka's defaults. */
void log_config_default(struct log_config *cfg);

struct log;

/* Opens (creating the directory if missing) the partition log in `dir`, loads its
 * segments and recovers those that may hold data past `recovery_point` (all of them when
 * recovery_point < 0, i.e. unclean shutdown / unknown): batches are re-validated, the log
 * is truncated at the first torn or corrupt batch and every later segment is deleted;
 * indexes are rebuilt when missing, mis-sized or inconsistent. cfg is copied.
 * *out is owned by the caller (log_close). */
int log_open(const char *dir, const struct log_config *cfg, int64_t recovery_point,
             struct log **out);

/* Applies altered configs (copied). Takes effect at the next append/retention pass. */
void log_set_config(struct log *l, const struct log_config *cfg);

/* Restores the log start offset from log-start-offset-checkpoint after log_open:
 * raises the start offset (deleting segments wholly below it); an offset beyond the log
 * end empties the log and restarts it at `offset` (as Kafka does). Lower values are
 * ignored. */
int log_set_start_offset(struct log *l, int64_t offset);

struct log_append_result {
    int64_t base_offset;     /* offset assigned to the first record */
    int64_t last_offset;     /* offset of the last record */
    int64_t log_append_time; /* broker time used for LogAppendTime topics, else -1 */
    int64_t log_start_offset;
    int64_t records_count;
};

/* Appends one or more batches already validated by the caller (batch_validate_all).
 * Batches with a producer id (idempotent producers) are first checked against the
 * producers' state, as Kafka's leader does: STORAGE_ERR_INVALID_PRODUCER_EPOCH,
 * STORAGE_ERR_OUT_OF_ORDER_SEQUENCE, or STORAGE_DUPLICATE when the (single) batch is
 * one of the producer's last five, already appended: nothing is written and *out
 * describes the stored batch. The caller's buffer is patched in place (baseOffset, partitionLeaderEpoch; for
 * LogAppendTime also attributes, maxTimestamp and CRC) and stays owned by the caller.
 * Rolls first when the active segment would exceed segment_bytes, is older than
 * segment_ms or its index is full. Writes to the page cache only (no fsync). On any write
 * failure the segment is truncated back and nothing is appended. leader_epoch < 0 leaves
 * the batches' epoch and the epoch cache untouched (follower appends keep theirs). */
int log_append(struct log *l, uint8_t *records, size_t len, int32_t leader_epoch, int64_t now_ms,
               struct log_append_result *out);

/* Follower append: like log_append but keeps the batches' own base offsets (which must
 * start at the log end offset and be contiguous) and leader epochs; the epoch cache
 * learns new epochs from the batches. records is only read (nothing is patched), so a
 * fetch response's bytes are appended where they are. */
int log_append_as_follower(struct log *l, const uint8_t *records, size_t len, int64_t now_ms,
                           struct log_append_result *out);

/* Forgets idempotent producers whose newest batch is older than expiration_ms
 * (producer.id.expiration.ms); returns how many. */
size_t log_expire_producers(struct log *l, int64_t now_ms, int64_t expiration_ms);
size_t log_producer_count(const struct log *l); /* idempotent producers known */
struct pstate_batch;                            /* the producer-state section below */
/* Each idempotent producer's newest batch, ascending producer id (DescribeProducers):
 * up to max into out; returns how many producers there are. */
size_t log_producers(const struct log *l, struct pstate_batch *out, size_t max);

/* Transactions of the log. The first offset of its oldest open transaction (the last
 * stable offset is the smaller of it and the high watermark), or -1 when none is open. */
int64_t log_first_unstable_offset(const struct log *l);
struct pstate_txn; /* the producer-state section below */
/* The open transactions, oldest first: up to max into out; returns how many there are. */
size_t log_open_txns(const struct log *l, struct pstate_txn *out, size_t max);
/* The aborted transactions a read of [from_offset, upper_offset) must skip (Fetch's
 * AbortedTransactions): those whose marker is at or after from_offset and which began
 * before upper_offset, ascending marker offset; up to max into out; returns how many. */
size_t log_aborted_txns(const struct log *l, int64_t from_offset, int64_t upper_offset,
                        struct pstate_txn *out, size_t max);

struct log_read_result {
    int fd;                     /* borrowed segment fd (-1 when len is 0), lent by the
                                   open-file cache: valid until the read turn ends
                                   (storage_read_turn_end, or any call that changes a
                                   log) or a call deletes the segment; dup() it to keep
                                   it longer */
    int64_t file_pos;           /* byte position of the first batch in fd */
    int64_t len;                /* bytes of whole batches, 0 if nothing to return */
    int64_t first_batch_offset; /* base offset of the first batch returned (-1 if none) */
    int64_t next_offset;        /* last offset returned + 1 (== requested offset if none) */
};

/* Locates whole batches starting with the one containing `offset`, from ONE segment:
 * only batches whose last offset < max_offset_exclusive (the high watermark); at most
 * max_bytes, except that a first batch larger than max_bytes is returned whole (KIP-74).
 * Returns STORAGE_ERR_OUT_OF_RANGE if offset < log start or > log end; offset == log end
 * gives len 0. When segments lent in this read turn fill the open-file bound and this
 * log has lent none yet, it finds nothing (len 0), like a spent fetch budget: a fetch of
 * more partitions than files may be open returns data for some, and the next fetch for
 * the rest. */
int log_read(struct log *l, int64_t offset, int32_t max_bytes, int64_t max_offset_exclusive,
             struct log_read_result *out);

int64_t log_start_offset(const struct log *l);
int64_t log_end_offset(const struct log *l);
int64_t log_size_bytes(const struct log *l);
int log_segment_count(const struct log *l);
/* Largest offset known durable (the recovery point to checkpoint). */
int64_t log_durable_offset(const struct log *l);
const char *log_name(const struct log *l); /* directory basename, e.g. "orders-3" */

/* ListOffsets by timestamp: offset and timestamp of the first record with timestamp >= ts
 * at or after the log start (record-level for uncompressed batches; for compressed ones
 * the batch base offset and its max timestamp). *offset_out = -1 when there is none. */
int log_offset_for_timestamp(struct log *l, int64_t ts, int64_t *offset_out, int64_t *ts_out);
/* ListOffsets MAX_TIMESTAMP (-3): the largest timestamp in the log and the offset of the
 * first record carrying it (as log_offset_for_timestamp finds records); -1/-1 for an
 * empty log. */
int log_max_timestamp(struct log *l, int64_t *offset_out, int64_t *ts_out);

/* OffsetForLeaderEpoch (Kafka semantics): the largest epoch <= `epoch` and the start
 * offset of the next greater epoch, or the log end offset if `epoch` is the latest.
 * Unknown (empty cache, epoch < 0, or epoch above all known) gives -1/-1. */
int log_end_offset_for_epoch(struct log *l, int32_t epoch, int32_t *epoch_out,
                             int64_t *end_offset_out);
int32_t log_latest_epoch(const struct log *l); /* -1 if none */

/* Truncates the log so that its end offset is <= offset (whole batches: the batch
 * containing `offset` goes too). For follower truncation. Epoch cache follows. */
int log_truncate_to(struct log *l, int64_t offset);
/* Drops the whole log and restarts it, empty, at offset (a follower whose leader's log
 * now starts beyond this log's end). Epoch cache and producers' state are emptied. */
int log_restart_at(struct log *l, int64_t offset);

/* DeleteRecords: raises the log start offset to `offset` (<= log end offset, else
 * STORAGE_ERR_OUT_OF_RANGE) and deletes closed segments wholly below it. The caller
 * persists log_start_offset() in log-start-offset-checkpoint. */
int log_delete_records(struct log *l, int64_t offset);

/* Deletes closed segments (never the active one) whose newest timestamp is older than
 * retention_ms, then oldest segments while the log exceeds retention_bytes (both only
 * when cfg.cleanup_delete), then those wholly below the log start offset. Raises the log
 * start offset. */
int log_enforce_retention(struct log *l, int64_t now_ms, int *deleted_segments);

/* ---- flush / group commit ----
 * prepare (owner thread) -> execute (any thread; opens, syncs and closes the job's
 * files by path, one at a time) -> complete (owner thread). A job is caller-owned
 * storage; prepare fills it, complete releases what prepare allocated. Several jobs per
 * log may be in flight. A job holds no descriptor between prepare and execute: a round
 * of 100,000 logs must not need 100,000 of them. */
struct log_flush_job {
    struct log *log; /* for complete(); not touched by execute() */
    char **paths;    /* files to fdatasync (segments with unsynced data, the pending
                               producer snapshot); owned by the job */
    size_t n_paths;
    char *dir;                 /* the log directory to fsync (owned), or NULL */
    char *parent;              /* the parent of a newly created log dir, to fsync (owned),
                               or NULL */
    int64_t durable_offset;    /* log end offset captured at prepare */
    int64_t appended_messages; /* message counter captured at prepare */
    uint64_t dir_gen;          /* directory-change generation captured at prepare */
    uint64_t trunc_gen;        /* truncation generation captured at prepare */
    int64_t snapshot_offset;   /* producer snapshot among the paths, -1 none */
    int err;                   /* 0, or -errno of the first failed open/sync (set by execute) */
    bool sync_failed;          /* an fsync itself failed (not just an open): set by execute */
    void *user;                /* free for the caller */
};

/* Captures what must be synced to make everything appended so far durable. Returns 0
 * (job->n_paths may be 0 and dir NULL if nothing is pending: execute is then a no-op). */
int log_flush_prepare(struct log *l, struct log_flush_job *job);
/* fdatasync each file, fsync the directories. A file deleted since prepare (retention,
 * truncation, compaction) is skipped: its data needs no durability. Touches only the
 * job, never the open-file cache. */
void log_flush_execute(struct log_flush_job *job);
/* Frees the job's paths; on success raises log_durable_offset() to the captured offset.
 * When a sync failed (job->sync_failed) marks the log failed (every later append returns
 * STORAGE_ERR_LOG_FAILED: a failed fsync may have dropped dirty pages) and returns
 * job->err. When only an open failed (out of descriptors: EMFILE/ENFILE), nothing was
 * synced and nothing lost: returns job->err, the log stays usable and a later job
 * syncs the same data. */
int log_flush_complete(struct log *l, struct log_flush_job *job);
/* Drops a prepared job without executing it (frees its paths). */
void log_flush_abandon(struct log_flush_job *job);

int64_t log_unflushed_messages(const struct log *l);
int64_t log_last_flush_ms(const struct log *l); /* time_mono_ms() of the last success */

/* After log_read returned STORAGE_ERR_CORRUPT at offset (damage kept on disk, see
 * docs/operations.md): the first offset after the damage where reading can go on (the
 * end of the damaged range when recovery measured it, else the next segment). */
int64_t log_next_readable_offset(const struct log *l, int64_t offset);

/* Final fsync of data, indexes and directory, then frees. NULL is a no-op. */
void log_close(struct log *l);
/* Frees the log without syncing anything: for a log about to be deleted. */
void log_discard(struct log *l);
/* Deletes a partition directory (the log must be closed): log_rename_for_delete, an
 * fsync of the parent directory, then log_remove_renamed. Blocking. */
int log_delete_dir(const char *dir);
/* Renames a partition directory to `<dir>.<random hex>-delete` (*renamed_out, malloc'd),
 * so the name is free at once; not durable until the parent directory is fsync'd.
 * log_open ignores such directories; the server removes leftovers at start-up. */
int log_rename_for_delete(const char *dir, char **renamed_out);
/* Removes a renamed directory recursively. Blocking (unlinking big segments takes
 * time): call it from a helper thread. */
int log_remove_renamed(const char *renamed);

/* Partition directories are named `<topic>-<index>` (index as "%d"). Parses a
 * directory name: the topic is name[0, *topic_len). Delete-marked names do not parse. */
bool log_dir_name_parse(const char *name, size_t *topic_len, int32_t *index);
/* The name was given by log_rename_for_delete: the deletion protocol marked it. */
bool log_dir_name_deleted(const char *name);
/* Records the owning topic's id in the directory (Kafka's partition.metadata), so that
 * start-up can tell a directory of a deleted topic from one of a live topic of the same
 * name. Not fsync'd: a missing file means "no id recorded". */
int log_dir_write_topic_id(const char *dir, const char *topic_id);
/* Reads it into out (cap bytes): 0, -ENOENT, or -EBADMSG if unreadable. */
int log_dir_read_topic_id(const char *dir, char *out, size_t cap);
/* Moves log_dir/name to log_dir/quarantine/ (a new name there if taken; *moved_to,
 * malloc'd) and makes the move durable: for directories start-up does not recognise,
 * which it must never delete. */
int log_dir_quarantine(const char *log_dir, const char *name, char **moved_to);

/* ------------------------------------------------------------------------------------
 * syncer: a helper thread that runs log_flush_execute for rounds of jobs (group commit)
 * and reports completion through an eventfd the event loop watches.
 * ---------------------------------------------------------------------------------- */
struct syncer;
typedef void (*syncer_done_fn)(void *arg, struct log_flush_job **jobs, size_t n);

/* threads (1..16): how many syncs of one round may run at once (the thread that takes
 * rounds plus threads-1 helpers). */
int syncer_create(struct syncer **out, int threads);
/* A syncer without threads, for deterministic tests (tests/unit/server): submitted
 * rounds and work wait until syncer_run_pending runs them on the calling thread; each
 * then completes as on a threaded syncer (the eventfd turns readable, `done` runs from
 * syncer_reap). syncer_destroy runs whatever is still queued. */
int syncer_create_manual(struct syncer **out);
/* Manual syncers: runs up to max queued rounds (SIZE_MAX: all), oldest first; returns
 * how many ran. */
size_t syncer_run_pending(struct syncer *s, size_t max);
/* Rounds queued and not started (on a threaded syncer, a moment's answer). */
size_t syncer_pending(struct syncer *s);
/* Rounds of at least min_jobs logs, all on one file system, are made durable by one
 * syncfs(2) instead of an fdatasync per log (0: never). Set before the first round. */
void syncer_set_syncfs(struct syncer *s, size_t min_jobs);
/* How many rounds syncfs made durable so far. */
size_t syncer_syncfs_rounds(struct syncer *s);
int syncer_event_fd(struct syncer *s);
/* Queues one round. The jobs array is copied; the jobs themselves stay owned by the
 * caller and must live until `done` runs (on the loop thread, from syncer_reap). */
void syncer_submit(struct syncer *s, struct log_flush_job **jobs, size_t n, syncer_done_fn done,
                   void *arg);
/* Queues other blocking work (a checkpoint file write) on the same thread, in order with
 * the sync rounds: work(arg) runs there, then done(arg, NULL, 0) on the loop thread. */
void syncer_submit_work(struct syncer *s, void (*work)(void *arg), syncer_done_fn done, void *arg);
/* Loop thread, when the eventfd is readable: runs `done` for finished rounds in
 * submission order. */
void syncer_reap(struct syncer *s);
/* Finishes queued rounds, joins the thread, runs the remaining `done` callbacks on the
 * calling thread, frees. */
void syncer_destroy(struct syncer *s);

/* ------------------------------------------------------------------------------------
 * Checkpoint files (Kafka text format): "0\n<count>\n<topic> <partition> <offset>\n..."
 * Used for recovery-point-offset-checkpoint and log-start-offset-checkpoint.
 * ---------------------------------------------------------------------------------- */
struct ckpt_entry {
    char *topic; /* ckpt_read: malloc'd (ckpt_free_entries); ckpt_write: borrowed */
    int32_t partition;
    int64_t offset;
};
/* Atomic: write <path>.tmp, fsync, rename, fsync the directory. Blocking: call it from a
 * helper thread or at start-up/shutdown. */
int ckpt_write(const char *path, const struct ckpt_entry *entries, size_t n);
/* Missing file: 0 with *n_out = 0. Malformed: STORAGE_ERR_CORRUPT. */
int ckpt_read(const char *path, struct ckpt_entry **entries_out, size_t *n_out);
void ckpt_free_entries(struct ckpt_entry *entries, size_t n);

/* ------------------------------------------------------------------------------------
 * Compaction (log cleaner) for cleanup.policy=compact: keeps, in the closed segments,
 * the newest record of every key (docs/storage-format.md, "Compaction").
 *
 * prepare (owner thread) -> execute (any thread; file I/O on the job only) ->
 * complete (owner thread), like the flush job. prepare decides whether the log needs
 * cleaning (dirty ratio, min.compaction.lag.ms, tombstones due) and captures the closed
 * segments to rewrite (names, sizes, inodes; no descriptors); execute builds
 * `<base>.log.cleaned` (+ indexes) and fsyncs them; complete checks that those segments
 * were neither deleted nor changed in the meantime and swaps the cleaned segments in
 * (rename .cleaned -> .swap, delete the replaced segments, rename .swap -> final).
 * log_open finishes or rolls back a swap interrupted by a crash. One job per log at a
 * time.
 * ---------------------------------------------------------------------------------- */
#define STORAGE_ERR_CLEAN_ABORTED (-2007) /* segments changed while the job ran */

struct clean_plan; /* cleaner.c */

struct log_clean_stats {
    int64_t bytes_read;    /* input segment bytes */
    int64_t bytes_written; /* output segment bytes */
    int64_t records_read;
    int64_t records_removed; /* superseded, keyless, expired tombstones or aborted */
    int64_t tombstones_removed;
    int64_t aborted_batches_removed; /* of aborted transactions */
    int64_t markers_removed;         /* transaction markers past their delete horizon */
    int64_t batches_rewritten;       /* batches written with fewer records or a new horizon */
    int segments_in;
    int segments_out;
};

struct log_clean_job {
    struct log *log;              /* for complete(); not touched by execute() */
    bool ready;                   /* false: nothing to clean; execute/complete are no-ops */
    double dirty_ratio;           /* at prepare */
    int64_t first_dirty_offset;   /* cleaner checkpoint at prepare */
    int64_t end_offset;           /* cleaned range is [log start, end_offset) (set by
                                  execute; may be below the prepared range when the key
                                  map fills up) */
    struct log_clean_stats stats; /* filled by execute */
    int err;                      /* 0 or the first error of execute */
    int test_crash_at_op;         /* testing only: -1 (set by prepare) = off; k >= 0 makes
                                  complete stop after k swap file operations, as if the
                                  process had died there (returns -EINTR) */
    struct clean_plan *plan;      /* internal */
    void *user;                   /* free for the caller */
};

/* Decides whether the log needs cleaning at wall time now_ms and captures the job.
 * Only closed segments wholly below max_offset_exclusive (the high watermark; INT64_MAX
 * for none) and below the first offset of an open transaction, and, with
 * min_compaction_lag_ms > 0, whose newest
 * timestamp is at least that old, are cleanable. The log is cleaned when the dirty ratio
 * (bytes of cleanable segments at or after the cleaner checkpoint / bytes of all
 * cleanable segments) is >= min_cleanable_dirty_ratio, or when retained tombstones have
 * reached their delete horizon. Returns 0 (job->ready tells whether there is work; when
 * not, nothing needs releasing) or a negative code. */
int log_clean_prepare(struct log *l, int64_t now_ms, int64_t max_offset_exclusive,
                      struct log_clean_job *job);
/* Builds and fsyncs the cleaned files. Touches only the job; sets job->err. */
void log_clean_execute(struct log_clean_job *job);
/* Swaps the cleaned segments in and releases the job. Returns 0, job->err,
 * STORAGE_ERR_CLEAN_ABORTED (segments deleted/truncated/changed since prepare: cleaned
 * files removed, log untouched), or an I/O error (if it happens after the point of no
 * return the log is marked failed; log_open completes the swap). Like retention, it
 * deletes segments: fds borrowed from log_read become invalid. */
int log_clean_complete(struct log *l, struct log_clean_job *job);
/* Drops a prepared (possibly executed) job: removes its files, closes its fds. l may be
 * NULL when the log was closed while the job ran (its topic was deleted). */
void log_clean_abandon(struct log *l, struct log_clean_job *job);

/* First offset not yet cleaned (the cleaner checkpoint), kept in the partition directory
 * in `cleaner-checkpoint`. */
int64_t log_cleaner_checkpoint(const struct log *l);

/* ------------------------------------------------------------------------------------
 * Producer state (producers.c): one partition's memory of idempotent producers, as
 * Kafka's ProducerStateManager / ProducerAppendInfo keep it. producer id -> its epoch and
 * the metadata of its newest PSTATE_MAX_BATCHES batches, used to reject out-of-order or
 * fenced appends and to answer retries of batches already appended. A pure data
 * structure: no I/O, no clock (time is passed in), no locking (the log's owner thread).
 * Snapshot body: Kafka's ProducerSnapshot version 1 (docs/storage-format.md).
 * ---------------------------------------------------------------------------------- */
#define PSTATE_MAX_BATCHES 5 /* batches remembered per producer (max.in.flight for idempotence) */

struct pstate_batch {
    int64_t producer_id;
    int16_t epoch;
    int32_t first_seq,
        last_seq; /* last_seq = first_seq + lastOffsetDelta, wrapping past INT32_MAX to 0.. as Kafka */
    int64_t first_offset, last_offset;
    int64_t timestamp_ms; /* the batch's max timestamp (for expiry) */
    bool transactional;   /* in: part of a transaction; out (last, list): one is open */
    /* Out only (pstate_last, pstate_list): the producer's open transaction's first offset
     * (-1 none) and the coordinator epoch of its last marker (-1 none). */
    int64_t txn_first_offset;
    int32_t coordinator_epoch;
};

enum pstate_verdict {
    PSTATE_APPEND = 0,     /* new and in sequence: append it */
    PSTATE_DUPLICATE = 1,  /* already appended: *dup has the stored batch */
    PSTATE_BAD_EPOCH = -1, /* epoch older than the producer's: Kafka INVALID_PRODUCER_EPOCH */
    PSTATE_BAD_SEQUENCE =
        -2, /* gap or a new epoch not starting at 0: OUT_OF_ORDER_SEQUENCE_NUMBER */
    PSTATE_BAD_TXN_STATE = -3, /* not transactional while the producer's transaction is open:
                                  INVALID_TXN_STATE */
    PSTATE_BAD_COORDINATOR_EPOCH = -4, /* a marker from an older transaction coordinator:
                                          TRANSACTION_COORDINATOR_FENCED */
};

struct producer_state;

/* A new empty state, owned by the caller (pstate_free). */
struct producer_state *pstate_new(void);
void pstate_free(struct producer_state *ps);          /* NULL ok */
size_t pstate_count(const struct producer_state *ps); /* producers known */

/* Sequence number after `seq` advanced by `delta` (>= 0) (Kafka's incrementSequence: wraps
 * past INT32_MAX to 0). */
int32_t pstate_seq_add(int32_t seq, int32_t delta);

/* Checks a batch a client produced (b->first_offset/last_offset ignored). Does not change
 * ps. Rules (Kafka's, in this order): an unknown producer is accepted at any sequence; an
 * older epoch is BAD_EPOCH; the same epoch with first_seq and last_seq equal to one of the
 * remembered batches is DUPLICATE (*dup = that batch, copied; dup may be NULL); a newer
 * epoch must start at sequence 0; the same epoch must continue the newest batch
 * (pstate_seq_add(newest.last_seq, 1)). Anything else is BAD_SEQUENCE. Then a batch that
 * is not transactional from a producer with an open transaction is BAD_TXN_STATE.
 * Epochs compare as signed int16. b and dup are borrowed; b->producer_id must be >= 0. */
enum pstate_verdict pstate_check(const struct producer_state *ps, const struct pstate_batch *b,
                                 struct pstate_batch *dup);

/* Records a batch that is now in the log (after a check passed, or replayed from the log
 * at open, where no check applies). A newer epoch replaces the producer's batches; the
 * oldest of more than PSTATE_MAX_BATCHES is forgotten. A transactional batch of a
 * producer without an open transaction opens one at b->first_offset.
 * b->producer_id must be >= 0.
 * b is copied. Any epoch change (an older one too, which only a replayed or replicated
 * log can carry) resets the producer to b's epoch, as Kafka's ProducerStateEntry does.
 * b->first_offset <= b->last_offset, at most INT32_MAX apart (one batch). */
void pstate_update(struct producer_state *ps, const struct pstate_batch *b);

/* The newest batch of each producer, ascending producer id: the first max of them go to
 * out (caller-owned); returns how many producers there are. */
size_t pstate_list(const struct producer_state *ps, struct pstate_batch *out, size_t max);

/* The newest batch of a producer (copied to *out), false if unknown. */
bool pstate_last(const struct producer_state *ps, int64_t producer_id, struct pstate_batch *out);

/* Transactions (KIP-98). A transaction marker (a control batch, batch_encode_marker)
 * ends the producer's open transaction in this partition. */
struct pstate_marker {
    int64_t producer_id;
    int16_t epoch;
    int32_t coordinator_epoch;
    int64_t offset;       /* the marker's offset */
    int64_t timestamp_ms; /* its timestamp */
};
/* A transaction of one producer in this partition: [first_offset, last_offset], where
 * last_offset is its marker's offset (-1 while open), and last_stable_offset the
 * partition's last stable offset once it ended (Kafka's AbortedTxn fields). */
struct pstate_txn {
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset;
    int64_t last_stable_offset;
};
/* Checks a marker before it is appended (as Kafka's appendEndTxnMarker): BAD_EPOCH when
 * its epoch is older than the producer's, BAD_COORDINATOR_EPOCH when its coordinator
 * epoch is older than that of the producer's last marker, else APPEND (an unknown
 * producer too: a transaction that wrote nothing here). */
enum pstate_verdict pstate_check_marker(const struct producer_state *ps,
                                        const struct pstate_marker *m);
/* Records a marker now in the log: the producer takes its epoch (a newer epoch forgets
 * the batches: the next starts at sequence 0) and coordinator epoch, and its open
 * transaction, if any, ends: true with *ended filled, else false. */
bool pstate_end_txn(struct producer_state *ps, const struct pstate_marker *m,
                    struct pstate_txn *ended);
/* The first offset of the oldest open transaction (what bounds the last stable offset),
 * -1 when none is open. */
int64_t pstate_first_unstable_offset(const struct producer_state *ps);
/* The open transactions, oldest first (last_offset -1): up to max into out; returns how
 * many are open. */
size_t pstate_open_txns(const struct producer_state *ps, struct pstate_txn *out, size_t max);

/* Forgets producers whose newest batch timestamp is older than now_ms - expiration_ms
 * (producer.id.expiration.ms, >= 0), except those in an open transaction; returns how
 * many. */
size_t pstate_expire(struct producer_state *ps, int64_t now_ms, int64_t expiration_ms);

/* Forgets everything (truncation / full rebuild). */
void pstate_clear(struct producer_state *ps);

/* A producer's batch that went elsewhere than this log but counts in its sequence
 * (delayed delivery stores it in the delay store): pstate_check against this log's
 * producers, and pstate_update once it is stored, so that the producer's next batch
 * here continues from it. Memory only: the delay store replays it after a restart. */
enum pstate_verdict log_producer_check(const struct log *l, const struct pstate_batch *b,
                                       struct pstate_batch *dup);
void log_producer_record(struct log *l, const struct pstate_batch *b);
/* The producer's newest batch here (pstate_last); false if unknown. */
bool log_producer_last(const struct log *l, int64_t producer_id, struct pstate_batch *out);

/* Snapshot file body, Kafka's producer snapshot layout (version 1, big-endian):
 *   Version int16 = 1 | Crc uint32 (CRC32C of everything after it) | Count int32 |
 *   Count x { ProducerId int64 | Epoch int16 | LastSequence int32 | LastOffset int64 |
 *             OffsetDelta int32 (last - first offset) | Timestamp int64 |
 *             CoordinatorEpoch int32 | CurrentTxnFirstOffset int64 (-1: none open) }
 * of the NEWEST batch of each producer, in ascending producer id (deterministic bytes),
 * appended to out (caller-owned). */
void pstate_encode_snapshot(const struct producer_state *ps, struct buf *out);

/* Replaces ps's content with a snapshot body (p[0..len), borrowed): one batch per
 * producer, first_seq the sequence that pstate_seq_add(first_seq, OffsetDelta) turns into
 * LastSequence, first_offset = LastOffset - OffsetDelta. Returns 0 or STORAGE_ERR_CORRUPT
 * (bad version, CRC mismatch, truncated, trailing bytes, negative count, a producer id
 * < 0; also a producer id twice, a negative OffsetDelta, or a LastSequence no sequence
 * reaches, which no encoder writes) and then leaves ps empty. When 0 <= LastSequence <
 * OffsetDelta the batch wrapped (Kafka's decrementSequence). */
int pstate_decode_snapshot(struct producer_state *ps, const uint8_t *p, size_t len);

#endif
