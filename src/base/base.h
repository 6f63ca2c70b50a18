/*
 * base: the bottom layer every other module builds on. Byte slices and growable
 * buffers, big-endian and varint encoding/decoding with a sticky-error reader,
 * CRC32C, clocks, logging with levels and subsystem tags, always-on assertions,
 * a per-request arena allocator, and a Java-properties parser for config files.
 *
 * Nothing here allocates silently on failure: allocation failure aborts with a
 * log line (a broker that cannot allocate a few bytes cannot make progress).
 *
 * Errors: functions that can fail return 0 (or a count) or a negative errno
 * (pread_exact, fsync_dir, parse_i64, props_load_file, ...); the one exception,
 * open_parent_dir, returns an fd like open(2): -1 and errno. Readers (struct reader)
 * instead set a sticky err flag, checked once at the end of a decode.
 */
#ifndef SAMSA_BASE_H
#define SAMSA_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- assertions: stay on in release builds; for invariants, not bad input ---- */
#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            base_assert_fail(#cond, __FILE__, __LINE__);                                           \
    } while (0)
_Noreturn void base_assert_fail(const char *expr, const char *file, int line);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- memory: abort on exhaustion ---- */
void *xmalloc(size_t size_bytes);
void *xcalloc(size_t count, size_t size_bytes);
void *xrealloc(void *ptr, size_t size_bytes);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);
/* "dir/name", malloc'd. */
char *xpath_join(const char *dir, const char *name);

/* ---- slices: borrowed byte ranges; never NUL-terminated by contract ---- */
struct slice {
    const uint8_t *ptr;
    size_t len;
};
#define SLICE_NULL ((struct slice){NULL, 0})
struct slice slice_from_cstr(const char *s);
bool slice_eq(struct slice a, struct slice b);
bool slice_eq_cstr(struct slice a, const char *s);
/* Returns a malloc'd NUL-terminated copy (caller frees). */
char *slice_to_cstr(struct slice s);

/* ---- growable buffer ---- */
struct buf {
    uint8_t *data;
    size_t len; /* bytes written */
    size_t cap; /* bytes allocated */
};
void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory */
/* Makes room for extra_bytes more. Inline: every buf_put_* asks, and only growth needs
 * the call (buf_grow). */
void buf_grow(struct buf *b, size_t extra_bytes);
static inline void buf_reserve(struct buf *b, size_t extra_bytes)
{
    if (b->cap - b->len < extra_bytes)
        buf_grow(b, extra_bytes);
}
void buf_append(struct buf *b, const void *data, size_t len);
/* Appends len zero bytes and returns a pointer to them (valid until next growth). */
uint8_t *buf_extend(struct buf *b, size_t len);
void buf_put_i8(struct buf *b, int8_t v);
void buf_put_i16(struct buf *b, int16_t v);
void buf_put_i32(struct buf *b, int32_t v);
void buf_put_i64(struct buf *b, int64_t v);
void buf_put_u32(struct buf *b, uint32_t v);
void buf_put_f64(struct buf *b, double v);
void buf_put_uvarint(struct buf *b, uint64_t v); /* unsigned LEB128 */
void buf_put_varint(struct buf *b, int32_t v);   /* zigzag */
void buf_put_varlong(struct buf *b, int64_t v);  /* zigzag */
/* Patch a big-endian value at an absolute offset already written. */
void buf_patch_i32(struct buf *b, size_t at, int32_t v);

/* Big-endian helpers on raw memory. */
static inline uint16_t be16_read(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t be32_read(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64_read(const uint8_t *p)
{
    return ((uint64_t)be32_read(p) << 32) | be32_read(p + 4);
}
static inline void be16_write(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void be32_write(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void be64_write(uint8_t *p, uint64_t v)
{
    be32_write(p, (uint32_t)(v >> 32));
    be32_write(p + 4, (uint32_t)v);
}

/* ---- reader: bounds-checked decoding with a sticky error flag ----
 * Every rd_* call on a reader whose err is set returns 0/empty and does nothing,
 * so a decoder can read a whole structure and check err once at the end. */
struct reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err; /* 0, or -1 once any read ran past the end or was malformed */
};
void rd_init(struct reader *r, const void *data, size_t len);
static inline size_t rd_remaining(const struct reader *r)
{
    return r->err ? 0 : r->len - r->pos;
}
int8_t rd_i8(struct reader *r);
int16_t rd_i16(struct reader *r);
int32_t rd_i32(struct reader *r);
int64_t rd_i64(struct reader *r);
uint32_t rd_u32(struct reader *r);
double rd_f64(struct reader *r);
uint64_t rd_uvarint(struct reader *r); /* at most 10 bytes, else err */
int32_t rd_varint(struct reader *r);   /* zigzag, at most 5 bytes */
int64_t rd_varlong(struct reader *r);  /* zigzag, at most 10 bytes */
/* Borrow the next n bytes as a slice (points into the reader's memory). */
struct slice rd_bytes(struct reader *r, size_t n);
void rd_skip(struct reader *r, size_t n);

/* Size in bytes of the varint encodings, for computing lengths before writing. */
size_t uvarint_size(uint64_t v);
/* Decodes an unsigned varint of at most max_bytes at *p (before end) and advances *p;
 * false if it is cut short or longer. A 5-byte varint read as 32 bits keeps its low
 * 32 bits, as Kafka's readVarint does. Inline: per-record checks on produce use it. */
static inline bool uvarint_take(const uint8_t **p, const uint8_t *end, int max_bytes, uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *q = *p;
    for (int i = 0; i < max_bytes && q < end; i++) {
        uint8_t b = *q++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *p = q;
            *out = v;
            return true;
        }
    }
    return false;
}
size_t varint_size(int32_t v);
size_t varlong_size(int64_t v);

/* ---- file reads that retry short reads and EINTR ---- */
/* Reads up to len bytes at pos: returns the count (less than len only at end of file)
 * or -errno. */
long pread_full(int fd, void *buf, size_t len, int64_t pos);
/* Reads exactly len bytes at pos: 0, -errno, or -EIO if the file ends first. */
int pread_exact(int fd, void *buf, size_t len, int64_t pos);

/* Opens the directory that holds path (O_RDONLY, for fsync): the fd, or -1 and errno. */
int open_parent_dir(const char *path);
/* fsyncs a directory (its entries: created, renamed, deleted files), or the directory
 * holding path: 0 or -errno. Blocking. */
int fsync_dir(const char *dir);
int fsync_parent_dir(const char *path);

/* ---- CRC32C (Castagnoli), hardware SSE4.2 instruction when available ---- */
/* A CRC-framed record, as both metadata logs (cluster/metalog.c, raft/storage.c) write
 * them: u32 payload length (big-endian), u32 crc32c of the payload, the payload. Returns
 * the byte length of the whole, intact record at data[pos, len), or 0 if there is none:
 * too few bytes, a length of 0 or above max_payload, or a CRC mismatch. (No writer
 * writes an empty payload, so a header of zeros is never a record.) */
#define CRC_FRAME_HEADER 8u
size_t crc_frame_at(const uint8_t *data, size_t len, size_t pos, uint32_t max_payload);
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* Same polynomial, always the portable table path (for tests). */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

/* ---- time ---- */
int64_t time_wall_ms(void); /* CLOCK_REALTIME, ms since the epoch */
int64_t time_mono_ms(void); /* CLOCK_MONOTONIC */
int64_t time_mono_ns(void);
/* A fake clock, for deterministic tests only (tests/unit/server/interaction.c,
 * tests/unit/cluster): from time_set_fake on, the three clocks above return the values
 * set, moved only by time_advance_fake (both clocks by ms), in every thread of the
 * process, until time_clear_fake. Nothing in the broker calls these. */
void time_set_fake(int64_t mono_ms, int64_t wall_ms);
void time_advance_fake(int64_t ms);
void time_clear_fake(void);

/* ---- logging: say_info("storage", "...", ...) ----
 * (say_, because log_ is the partition log: storage.h) */
enum say_level { SAY_LEVEL_DEBUG = 0, SAY_LEVEL_INFO, SAY_LEVEL_WARN, SAY_LEVEL_ERROR };
void say_set_level(enum say_level level);
enum say_level say_get_level(void);
/* Parses "DEBUG", "INFO", "WARN", "ERROR" (any case); returns -1 if unknown. */
int say_level_parse(const char *s, enum say_level *out);
void say_msg(enum say_level level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define say_debug(subsys, ...)                                                                     \
    do {                                                                                           \
        if (say_get_level() <= SAY_LEVEL_DEBUG)                                                    \
            say_msg(SAY_LEVEL_DEBUG, subsys, __VA_ARGS__);                                         \
    } while (0)
#define say_info(subsys, ...) say_msg(SAY_LEVEL_INFO, subsys, __VA_ARGS__)
#define say_warn(subsys, ...) say_msg(SAY_LEVEL_WARN, subsys, __VA_ARGS__)
#define say_error(subsys, ...) say_msg(SAY_LEVEL_ERROR, subsys, __VA_ARGS__)

/* Rate-limited lines, for call sites that can fire per request or per connection while
 * a condition persists (disk full, out of fds, a flood of connections): at most one
 * line per interval per call site; the next line let through ends with
 * " (and N more like this in the last S s)". The state is a static per call site
 * (zero-initialised: nothing logged yet), updated with atomics, so helper threads may
 * log through the same site. Lines below the log level are neither written nor counted. */
struct say_ratelimit {
    _Atomic int64_t last_ms;     /* time_mono_ms of the last line let through; 0: none */
    _Atomic uint64_t suppressed; /* lines held back since then */
};
#define SAY_RATELIMIT_INTERVAL_MS 1000
void say_msg_ratelimited(struct say_ratelimit *rl, int64_t interval_ms, enum say_level level,
                         const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define say_ratelimited(interval_ms, level, subsys, ...)                                           \
    do {                                                                                           \
        static struct say_ratelimit say_rl_;                                                       \
        say_msg_ratelimited(&say_rl_, interval_ms, level, subsys, __VA_ARGS__);                    \
    } while (0)
#define say_info_ratelimited(subsys, ...)                                                          \
    say_ratelimited(SAY_RATELIMIT_INTERVAL_MS, SAY_LEVEL_INFO, subsys, __VA_ARGS__)
#define say_warn_ratelimited(subsys, ...)                                                          \
    say_ratelimited(SAY_RATELIMIT_INTERVAL_MS, SAY_LEVEL_WARN, subsys, __VA_ARGS__)
#define say_error_ratelimited(subsys, ...)                                                         \
    say_ratelimited(SAY_RATELIMIT_INTERVAL_MS, SAY_LEVEL_ERROR, subsys, __VA_ARGS__)

/* ---- arena: bump allocator for per-request data; one free at the end ---- */
struct arena_chunk;
struct arena {
    struct arena_chunk *head;
    size_t total_bytes; /* bytes handed out, for limits */
};
void arena_init(struct arena *a);
void *arena_alloc(struct arena *a, size_t size_bytes); /* zeroed, 8-byte aligned */
void *arena_memdup(struct arena *a, const void *p, size_t len);
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(struct arena *a); /* frees everything; arena can be reused after */

/* ---- hash map from byte-string keys to pointers (open addressing) ----
 * Keys are copied; values are borrowed. For topic and partition lookups. */
struct hmap_slot;
struct hmap {
    struct hmap_slot *slots;
    size_t cap;   /* power of two */
    size_t count; /* live entries */
    size_t used;  /* live + deleted slots */
};
void hmap_init(struct hmap *m);
void hmap_free(struct hmap *m);
void *hmap_get(const struct hmap *m, struct slice key);
void hmap_put(struct hmap *m, struct slice key, void *value); /* replaces */
void *hmap_remove(struct hmap *m, struct slice key);          /* returns old value */
/* Iteration: for (size_t i = 0; hmap_next(m, &i, &k, &v);) */
bool hmap_next(const struct hmap *m, size_t *iter, struct slice *key, void **value);
uint64_t hash_bytes(const void *data, size_t len); /* FNV-1a 64 */
/* Java's String.hashCode of the UTF-8 text s (Kafka's partitionFor of group and
 * transactional ids). */
int32_t java_string_hash(struct slice s);
/* Kafka's partitionFor of a group or transactional id among n (> 0) partitions of its
 * internal topic: abs(java_string_hash(key)) % n, with abs(INT32_MIN) taken as 0. */
int32_t kafka_partition_for(struct slice key, int32_t n);

/* ---- Java-style properties (key=value, # and ! comments, backslash continuations) ---- */
struct props_entry {
    char *key;
    char *value;
    int line; /* 1-based line in the source, 0 for overrides */
};
struct props {
    struct props_entry *entries;
    size_t count;
};
/* Parses a file; on error returns -errno and logs. Later keys override earlier ones. */
int props_load_file(struct props *p, const char *path);
int props_parse(struct props *p, const char *text, size_t len);
/* Sets (or replaces) key; used for --override key=value. */
void props_set(struct props *p, const char *key, const char *value);
const char *props_get(const struct props *p, const char *key);
void props_free(struct props *p);

/* Strict number parsing: whole string must be a number in range. 0 or -EINVAL/-ERANGE. */
int parse_i64(const char *s, int64_t *out);
int parse_bool(const char *s, bool *out); /* "true"/"false" */

#endif
