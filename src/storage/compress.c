/*
 * Record batch compression: Kafka's four codecs with the framing Kafka's clients write
 * and read, and the broker-side recompression behind the topic config compression.type
 * (what Kafka's LogValidator does on the produce path). docs/storage-format.md,
 * "Compression", describes the formats.
 *
 *   gzip    a gzip stream (RFC 1952; concatenated members are read as one stream).
 *   snappy  written Xerial-framed, as the Java client's SnappyOutputStream does: the
 *           16-byte header (0x82 "SNAPPY" 0, int32 version 1, int32 compatible 1),
 *           then blocks of [int32 length][raw snappy] of up to 32 KiB of input. Read
 *           both that framing and plain raw snappy, which librdkafka writes.
 *   lz4     an LZ4 frame (v1 frame format, independent 64 KiB blocks, no checksums:
 *           what Kafka's Java reader requires).
 *   zstd    one or more zstd frames.
 *
 * Decompression is bounded: the caller names the most bytes it accepts, and a stream
 * that would produce more is refused without producing it (a decompression bomb costs
 * at most that bound in memory, plus a zstd window of at most 128 MiB).
 *
 * Codec contexts (zstd, lz4) are cached per thread: the event loop compresses batch
 * after batch, and a fresh zstd context re-allocates its tables every time.
 */
#include "storage/storage_internal.h"

#include <errno.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* ---- names and levels (Kafka's BrokerCompressionType and CompressionType) ---- */

int compress_type_parse(const char *name, enum compress_codec *out)
{
    static const struct {
        const char *name;
        enum compress_codec codec;
    } types[] = {
        {"uncompressed", COMPRESS_NONE}, {"zstd", COMPRESS_ZSTD}, {"lz4", COMPRESS_LZ4},
        {"snappy", COMPRESS_SNAPPY},     {"gzip", COMPRESS_GZIP}, {"producer", COMPRESS_PRODUCER},
    };
    for (size_t i = 0; name && i < ARRAY_LEN(types); i++) {
        if (strcmp(name, types[i].name) == 0) {
            if (out)
                *out = types[i].codec;
            return 0;
        }
    }
    return -EINVAL;
}

const char *compress_codec_name(enum compress_codec codec)
{
    switch (codec) {
    case COMPRESS_NONE: return "none";
    case COMPRESS_GZIP: return "gzip";
    case COMPRESS_SNAPPY: return "snappy";
    case COMPRESS_LZ4: return "lz4";
    case COMPRESS_ZSTD: return "zstd";
    case COMPRESS_PRODUCER: return "producer";
    }
    return "unknown";
}

const char *compress_level_config(enum compress_codec codec)
{
    switch (codec) {
    case COMPRESS_GZIP: return "compression.gzip.level";
    case COMPRESS_LZ4: return "compression.lz4.level";
    case COMPRESS_ZSTD: return "compression.zstd.level";
    default: return NULL;
    }
}

size_t compress_decompressed_bound(int64_t max_batch_bytes)
{
    uint64_t m = max_batch_bytes > 0 ? (uint64_t)max_batch_bytes : 0;
    uint64_t bound = m > COMPRESS_MAX_BOUND_BYTES / COMPRESS_BOUND_RATIO ? COMPRESS_MAX_BOUND_BYTES
                                                                         : m * COMPRESS_BOUND_RATIO;
    return (size_t)MAX(bound, (uint64_t)COMPRESS_MIN_BOUND_BYTES);
}

/* ---- per-thread codec contexts ---- */

static _Thread_local ZSTD_CCtx *zstd_cctx;
static _Thread_local ZSTD_DCtx *zstd_dctx;
static _Thread_local LZ4F_cctx *lz4_cctx;
static _Thread_local LZ4F_dctx *lz4_dctx;

void compress_thread_cleanup(void)
{
    ZSTD_freeCCtx(zstd_cctx);
    ZSTD_freeDCtx(zstd_dctx);
    LZ4F_freeCompressionContext(lz4_cctx);
    LZ4F_freeDecompressionContext(lz4_dctx);
    zstd_cctx = NULL;
    zstd_dctx = NULL;
    lz4_cctx = NULL;
    lz4_dctx = NULL;
}

/* Room for the decoder's next output: at least `want` bytes (when the bound allows),
 * never more than one byte past `limit` total, so that output beyond the bound is seen
 * (the extra byte) but never held. Returns the bytes available at out->data + out->len. */
static size_t out_room(struct buf *out, size_t start, size_t limit, size_t want)
{
    ASSERT(want > 0);
    size_t produced = out->len - start;
    size_t allowed = limit + 1 - produced; /* produced <= limit while decoding */
    size_t n = MIN(want, allowed);
    buf_reserve(out, n);
    return MIN(out->cap - out->len, allowed);
}

/* ---- gzip ---- */

static int gzip_encode(int level, const uint8_t *in, size_t len, struct buf *out)
{
    if (len > UINT32_MAX / 2)
        return -EINVAL; /* batches are far smaller (int32 lengths) */
    z_stream z;
    memset(&z, 0, sizeof z);
    /* Kafka's -1 is zlib's Z_DEFAULT_COMPRESSION; 1..9 are the same in both. */
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16 /* gzip wrapper */, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -ENOMEM;
    /* deflateBound is enough for one Z_FINISH call to complete the stream. */
    size_t cap = deflateBound(&z, (uLong)len);
    buf_reserve(out, MAX(cap, (size_t)1));
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)MIN(out->cap - out->len, (size_t)UINT32_MAX);
    int zr = deflate(&z, Z_FINISH);
    if (zr == Z_STREAM_END)
        out->len += z.total_out;
    deflateEnd(&z);
    return zr == Z_STREAM_END ? 0 : -EIO;
}

/* Reads one or more concatenated gzip members; anything else is corrupt (zlib-wrapped
 * or raw deflate data is not what Kafka's gzip reader accepts), and so is anything after
 * the last member. */
static int gzip_decode(const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
    if (len == 0 || len > UINT32_MAX / 2)
        return STORAGE_ERR_CORRUPT;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return -ENOMEM;
    size_t start = out->len;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    int rc;
    for (;;) {
        size_t room = out_room(out, start, max_out, MAX((size_t)z.avail_in * 4, (size_t)16384));
        room = MIN(room, (size_t)UINT32_MAX);
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)room;
        int zr = inflate(&z, Z_NO_FLUSH);
        out->len += room - z.avail_out;
        if (out->len - start > max_out) {
            rc = STORAGE_ERR_DECOMPRESS_LIMIT;
            break;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0) {
                rc = 0;
                break;
            }
            inflateReset(&z); /* another member follows */
            continue;
        }
        if (zr == Z_OK)
            continue;
        /* Z_BUF_ERROR with output room left: the input ended inside a member. */
        rc = zr == Z_MEM_ERROR ? -ENOMEM : STORAGE_ERR_CORRUPT;
        break;
    }
    inflateEnd(&z);
    return rc;
}

/* ---- snappy ---- */

static const uint8_t XERIAL_MAGIC[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_BYTES 16
#define XERIAL_BLOCK_BYTES (32 * 1024) /* snappy-java's default block size */

static int snappy_encode_xerial(const uint8_t *in, size_t len, struct buf *out)
{
    buf_append(out, XERIAL_MAGIC, sizeof XERIAL_MAGIC);
    buf_put_i32(out, 1); /* version */
    buf_put_i32(out, 1); /* compatible version */
    for (size_t pos = 0; pos < len; pos += XERIAL_BLOCK_BYTES) {
        size_t n = MIN((size_t)XERIAL_BLOCK_BYTES, len - pos);
        size_t cap = snappy_max_compressed_length(n);
        size_t at = out->len;
        buf_put_i32(out, 0); /* block length, patched */
        buf_reserve(out, cap);
        size_t clen = cap;
        if (snappy_compress((const char *)in + pos, n, (char *)out->data + out->len, &clen) !=
            SNAPPY_OK)
            return -EIO;
        out->len += clen;
        be32_write(out->data + at, (uint32_t)clen);
    }
    return 0;
}

/* One raw snappy block; its announced length is checked against the bound before any
 * output is allocated. */
static int snappy_block(const uint8_t *in, size_t len, size_t start, size_t max_out,
                        struct buf *out)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)in, len, &n) != SNAPPY_OK)
        return STORAGE_ERR_CORRUPT;
    if (n > max_out - (out->len - start))
        return STORAGE_ERR_DECOMPRESS_LIMIT;
    buf_reserve(out, MAX(n, (size_t)1));
    size_t got = n;
    if (snappy_uncompress((const char *)in, len, (char *)out->data + out->len, &got) != SNAPPY_OK ||
        got != n)
        return STORAGE_ERR_CORRUPT;
    out->len += n;
    return 0;
}

static bool xerial_header_at(const uint8_t *in, size_t left)
{
    return left >= sizeof XERIAL_MAGIC && memcmp(in, XERIAL_MAGIC, sizeof XERIAL_MAGIC) == 0;
}

static int snappy_decode(const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
    size_t start = out->len;
    if (!xerial_header_at(in, len))
        return snappy_block(in, len, start, max_out, out); /* raw (librdkafka) */
    size_t pos = 0;
    while (pos < len) {
        /* snappy-java also reads streams written one after the other: a header may
         * follow a block. */
        if (xerial_header_at(in + pos, len - pos)) {
            if (len - pos < XERIAL_HEADER_BYTES)
                return STORAGE_ERR_CORRUPT;
            pos += XERIAL_HEADER_BYTES;
            continue;
        }
        if (len - pos < 4)
            return STORAGE_ERR_CORRUPT;
        uint32_t n = be32_read(in + pos);
        pos += 4;
        if (n > len - pos || n > INT32_MAX)
            return STORAGE_ERR_CORRUPT;
        int rc = snappy_block(in + pos, n, start, max_out, out);
        if (rc != 0)
            return rc;
        pos += n;
    }
    return 0;
}

/* ---- lz4 ---- */

/* Kafka's lz4 levels are lz4-java's (1..17). Kafka's default, 9, selects lz4-java's fast
 * compressor (its historic behaviour); other levels its high-compression one. liblz4's
 * frame API is fast below 3 and high-compression from 3 up to 12 (higher count as 12). */
static int lz4_level(int level)
{
    return level == COMPRESS_LZ4_DEFAULT_LEVEL ? 0 : level;
}

static int lz4_encode(int level, const uint8_t *in, size_t len, struct buf *out)
{
    if (!lz4_cctx && LZ4F_isError(LZ4F_createCompressionContext(&lz4_cctx, LZ4F_VERSION)))
        return -ENOMEM;
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent; /* Kafka's reader needs it */
    prefs.compressionLevel = lz4_level(level);
    buf_reserve(out, LZ4F_HEADER_SIZE_MAX + LZ4F_compressBound(len, &prefs));
    uint8_t *dst = out->data + out->len;
    size_t cap = out->cap - out->len;
    size_t n = LZ4F_compressBegin(lz4_cctx, dst, cap, &prefs);
    if (LZ4F_isError(n))
        return -EIO;
    size_t used = n;
    n = LZ4F_compressUpdate(lz4_cctx, dst + used, cap - used, in, len, NULL);
    if (LZ4F_isError(n))
        return -EIO;
    used += n;
    n = LZ4F_compressEnd(lz4_cctx, dst + used, cap - used, NULL);
    if (LZ4F_isError(n))
        return -EIO;
    out->len += used + n;
    return 0;
}

/* One or more LZ4 frames (skippable frames allowed, as liblz4 reads them). */
static int lz4_decode(const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
    if (len == 0)
        return STORAGE_ERR_CORRUPT;
    if (!lz4_dctx && LZ4F_isError(LZ4F_createDecompressionContext(&lz4_dctx, LZ4F_VERSION)))
        return -ENOMEM;
    /* Every decode starts from a clean context: liblz4 keeps the previous frame's
     * dictionary (a linked-block frame's history) across frames, and a fuzz run showed a
     * valid frame failing to decode after some earlier inputs. */
    LZ4F_resetDecompressionContext(lz4_dctx);
    size_t start = out->len, pos = 0, hint = 1;
    int rc = 0;
    while (pos < len) {
        size_t room = out_room(out, start, max_out, MAX((len - pos) * 4, (size_t)65536));
        size_t dst_n = room, src_n = len - pos;
        hint = LZ4F_decompress(lz4_dctx, out->data + out->len, &dst_n, in + pos, &src_n, NULL);
        pos += src_n;
        out->len += dst_n;
        if (LZ4F_isError(hint)) {
            rc = STORAGE_ERR_CORRUPT;
            break;
        }
        if (out->len - start > max_out) {
            rc = STORAGE_ERR_DECOMPRESS_LIMIT;
            break;
        }
        if (src_n == 0 && dst_n == 0 && hint != 0) {
            rc = STORAGE_ERR_CORRUPT; /* no progress: cannot happen with room left */
            break;
        }
    }
    /* Output still buffered in the context after the input ended: drain it. */
    while (rc == 0 && hint != 0) {
        size_t room = out_room(out, start, max_out, 65536);
        size_t dst_n = room, src_n = 0;
        hint = LZ4F_decompress(lz4_dctx, out->data + out->len, &dst_n, in + pos, &src_n, NULL);
        out->len += dst_n;
        if (LZ4F_isError(hint) || (dst_n == 0 && hint != 0))
            rc = STORAGE_ERR_CORRUPT; /* the frame is truncated */
        else if (out->len - start > max_out)
            rc = STORAGE_ERR_DECOMPRESS_LIMIT;
    }
    if (rc != 0)
        LZ4F_resetDecompressionContext(lz4_dctx);
    return rc;
}

/* ---- zstd ---- */

#define ZSTD_WINDOW_LOG_MAX 27 /* libzstd's default limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT) */

static int zstd_encode(int level, const uint8_t *in, size_t len, struct buf *out)
{
    if (!zstd_cctx && !(zstd_cctx = ZSTD_createCCtx()))
        return -ENOMEM;
    ZSTD_CCtx_reset(zstd_cctx, ZSTD_reset_session_and_parameters);
    if (ZSTD_isError(ZSTD_CCtx_setParameter(zstd_cctx, ZSTD_c_compressionLevel, level)))
        return -EINVAL;
    size_t cap = ZSTD_compressBound(len);
    buf_reserve(out, cap);
    size_t n = ZSTD_compress2(zstd_cctx, out->data + out->len, cap, in, len);
    if (ZSTD_isError(n))
        return -EIO;
    out->len += n;
    return 0;
}

static int zstd_decode(const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
    if (len == 0)
        return STORAGE_ERR_CORRUPT;
    if (!zstd_dctx && !(zstd_dctx = ZSTD_createDCtx()))
        return -ENOMEM;
    ZSTD_DCtx_reset(zstd_dctx, ZSTD_reset_session_and_parameters);
    /* Windows up to 128 MiB (libzstd's default limit): Kafka allows level 22, whose
     * streaming frames use that window. With the output bound this caps what one hostile
     * frame can make the decoder allocate. */
    ZSTD_DCtx_setParameter(zstd_dctx, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
    size_t start = out->len;
    ZSTD_inBuffer ib = {in, len, 0};
    for (;;) {
        size_t room = out_room(out, start, max_out, MAX((len - ib.pos) * 4, (size_t)65536));
        ZSTD_outBuffer ob = {out->data + out->len, room, 0};
        size_t in_before = ib.pos;
        size_t ret = ZSTD_decompressStream(zstd_dctx, &ob, &ib);
        out->len += ob.pos;
        if (ZSTD_isError(ret))
            return ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation ? -ENOMEM
                                                                          : STORAGE_ERR_CORRUPT;
        if (out->len - start > max_out)
            return STORAGE_ERR_DECOMPRESS_LIMIT;
        /* ret 0: a frame ended, all of it flushed; more input is another frame. */
        if (ret == 0 && ib.pos == ib.size)
            return 0;
        /* With output room, a call that moves nothing wants input there is not. */
        if (ob.pos == 0 && ib.pos == in_before)
            return STORAGE_ERR_CORRUPT; /* truncated */
    }
}

/* ---- dispatch ---- */

int compress_encode(enum compress_codec codec, int level, const uint8_t *in, size_t len,
                    struct buf *out)
{
    switch (codec) {
    case COMPRESS_NONE: buf_append(out, in, len); return 0;
    case COMPRESS_GZIP: return gzip_encode(level, in, len, out);
    case COMPRESS_SNAPPY: return snappy_encode_xerial(in, len, out);
    case COMPRESS_LZ4: return lz4_encode(level, in, len, out);
    case COMPRESS_ZSTD: return zstd_encode(level, in, len, out);
    default: return -EINVAL;
    }
}

int compress_decode(enum compress_codec codec, const uint8_t *in, size_t len, size_t max_out,
                    struct buf *out)
{
    ASSERT(max_out <= SIZE_MAX / 2);
    size_t start = out->len;
    int rc;
    switch (codec) {
    case COMPRESS_NONE:
        if (len > max_out)
            return STORAGE_ERR_DECOMPRESS_LIMIT;
        buf_append(out, in, len);
        return 0;
    case COMPRESS_GZIP: rc = gzip_decode(in, len, max_out, out); break;
    case COMPRESS_SNAPPY: rc = snappy_decode(in, len, max_out, out); break;
    case COMPRESS_LZ4: rc = lz4_decode(in, len, max_out, out); break;
    case COMPRESS_ZSTD: rc = zstd_decode(in, len, max_out, out); break;
    default: return STORAGE_ERR_CORRUPT; /* codecs 5..7 do not exist */
    }
    if (rc != 0)
        out->len = start;
    ASSERT(out->len - start <= max_out);
    return rc;
}

/* ---- batches ---- */

/* What the rewrite does to one batch. Control batches are never rewritten: Kafka does
 * not compress control records that were written uncompressed. */
static bool needs_recode(const struct batch_info *info, const struct batch_recompress_opts *o)
{
    return o->target != COMPRESS_PRODUCER && batch_compression(info) != (int)o->target &&
           !(info->attributes & BATCH_ATTR_CONTROL);
}

/* Writes [header][records] of the uncompressed form of one batch into `plain` (replacing
 * what it held) and checks the records' framing, and keys when asked. *budget is the
 * decompressed bytes the call may still produce. */
static int plain_batch(const uint8_t *batch, const struct batch_info *info, bool check_keys,
                       size_t *budget, struct buf *plain, struct batch_info *plain_info)
{
    buf_reset(plain);
    buf_append(plain, batch, BATCH_HEADER_BYTES);
    const uint8_t *payload = batch + BATCH_HEADER_BYTES;
    size_t payload_len = info->size_bytes - BATCH_HEADER_BYTES;
    int rc = compress_decode((enum compress_codec)batch_compression(info), payload, payload_len,
                             *budget, plain);
    if (rc != 0)
        return rc;
    *budget -= plain->len - BATCH_HEADER_BYTES;
    *plain_info = *info;
    plain_info->attributes = (int16_t)(info->attributes & ~BATCH_ATTR_COMPRESSION_MASK);
    plain_info->size_bytes = plain->len;
    bool keyed = true;
    rc = batch_check_records(plain->data, plain_info, &keyed);
    if (rc != 0)
        return rc;
    return check_keys && !keyed ? STORAGE_ERR_NO_KEY : 0;
}

int batch_decompress(const uint8_t *batch, const struct batch_info *info, size_t max_out,
                     struct buf *plain, struct batch_info *plain_info)
{
    size_t budget = max_out;
    return plain_batch(batch, info, false, &budget, plain, plain_info);
}

/* Appends to out the batch with header `header` (BATCH_HEADER_BYTES, taken as is but for
 * length, attributes and CRC) and records `records` (uncompressed) encoded with the
 * target codec. */
static int encode_batch(const uint8_t *header, const uint8_t *records, size_t records_len,
                        const struct batch_recompress_opts *o, struct buf *out)
{
    size_t start = out->len;
    buf_append(out, header, BATCH_HEADER_BYTES);
    int rc = compress_encode(o->target, o->level, records, records_len, out);
    if (rc != 0) {
        out->len = start;
        return rc;
    }
    size_t size = out->len - start;
    if (size > (size_t)o->max_batch_bytes || size - BATCH_LOG_OVERHEAD > INT32_MAX) {
        out->len = start;
        return STORAGE_ERR_BATCH_TOO_LARGE;
    }
    uint8_t *h = out->data + start;
    uint16_t attrs = be16_read(h + BATCH_OFF_ATTRIBUTES);
    attrs = (uint16_t)((attrs & ~BATCH_ATTR_COMPRESSION_MASK) | (uint16_t)o->target);
    be32_write(h + BATCH_OFF_LENGTH, (uint32_t)(size - BATCH_LOG_OVERHEAD));
    be16_write(h + BATCH_OFF_ATTRIBUTES, attrs);
    be32_write(h + BATCH_OFF_CRC, crc32c(0, h + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES));
    return 0;
}

/* Copies an uncompressed batch (whose header may still carry its compressed form's
 * length and codec) to out as a valid uncompressed batch. */
static void keep_plain(struct buf *out, const uint8_t *batch, size_t size)
{
    buf_reset(out);
    buf_append(out, batch, size);
    uint8_t *h = out->data;
    be32_write(h + BATCH_OFF_LENGTH, (uint32_t)(size - BATCH_LOG_OVERHEAD));
    uint16_t attrs = be16_read(h + BATCH_OFF_ATTRIBUTES);
    be16_write(h + BATCH_OFF_ATTRIBUTES, (uint16_t)(attrs & ~BATCH_ATTR_COMPRESSION_MASK));
    be32_write(h + BATCH_OFF_CRC, crc32c(0, h + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES));
}

int batch_recompress(const uint8_t *p, size_t len, const struct batch_recompress_opts *o,
                     struct buf *out)
{
    ASSERT(o->target == COMPRESS_PRODUCER ||
           (o->target >= COMPRESS_NONE && o->target <= COMPRESS_ZSTD));
    ASSERT(out->len == 0);
    struct batch_iter it;
    struct batch_info info;
    bool rewrite = false;
    int rc;
    /* A first pass over the headers: most produce requests need nothing. */
    batch_iter_init(&it, p, len);
    while ((rc = batch_iter_next(&it, &info, false)) > 0)
        rewrite |= needs_recode(&info, o);
    if (rc < 0)
        return rc;
    if (!rewrite && !o->check_keys)
        return 0;
    size_t budget = compress_decompressed_bound(o->max_batch_bytes);
    struct buf plain;
    buf_init(&plain);
    batch_iter_init(&it, p, len);
    while ((rc = batch_iter_next(&it, &info, false)) > 0) {
        const uint8_t *batch = p + it.batch_pos;
        bool recode = needs_recode(&info, o);
        if (!recode && !o->check_keys) {
            buf_append(out, batch, info.size_bytes); /* rewrite is true here */
            continue;
        }
        if (batch_compression(&info) == 0) {
            /* The records are already plain: check them in place. */
            bool keyed = true;
            rc = batch_check_records(batch, &info, &keyed);
            if (rc == 0 && o->check_keys && !keyed)
                rc = STORAGE_ERR_NO_KEY;
            if (rc == 0 && recode)
                rc = encode_batch(batch, batch + BATCH_HEADER_BYTES,
                                  info.size_bytes - BATCH_HEADER_BYTES, o, out);
            else if (rc == 0 && rewrite)
                buf_append(out, batch, info.size_bytes);
        } else {
            struct batch_info plain_info;
            rc = plain_batch(batch, &info, o->check_keys, &budget, &plain, &plain_info);
            if (rc == 0 && recode)
                rc = encode_batch(plain.data, plain.data + BATCH_HEADER_BYTES,
                                  plain.len - BATCH_HEADER_BYTES, o, out);
            else if (rc == 0 && rewrite)
                buf_append(out, batch, info.size_bytes);
        }
        if (rc == STORAGE_ERR_NO_KEY && o->keyless)
            keep_plain(o->keyless, batch_compression(&info) == 0 ? batch : plain.data,
                       batch_compression(&info) == 0 ? info.size_bytes : plain.len);
        if (rc != 0)
            break;
    }
    buf_free(&plain);
    if (rc < 0 || !rewrite) {
        buf_free(out);
        return rc < 0 ? rc : 0;
    }
    return 0;
}
