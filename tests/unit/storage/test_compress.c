/* Compression codecs and broker-side recompression (compress.c): every codec pair round
 * trips with the batch header kept and a valid CRC, snappy reads both Xerial framing and
 * raw blocks, corrupt and truncated input is refused, decompression stops at its bound,
 * compacted topics' keys are checked inside compressed batches. */
#include "helpers.h"

#include <errno.h>
#include <snappy-c.h>
#include <zlib.h>

static const enum compress_codec CODECS[] = {COMPRESS_NONE, COMPRESS_GZIP, COMPRESS_SNAPPY,
                                             COMPRESS_LZ4, COMPRESS_ZSTD};

static int default_level(enum compress_codec c)
{
    switch (c) {
    case COMPRESS_GZIP: return COMPRESS_GZIP_DEFAULT_LEVEL;
    case COMPRESS_LZ4: return COMPRESS_LZ4_DEFAULT_LEVEL;
    case COMPRESS_ZSTD: return COMPRESS_ZSTD_DEFAULT_LEVEL;
    default: return 0;
    }
}

static void fix_crc(uint8_t *batch)
{
    size_t size = be32_read(batch + BATCH_OFF_LENGTH) + BATCH_LOG_OVERHEAD;
    be32_write(batch + BATCH_OFF_CRC,
               crc32c(0, batch + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES));
}

/* An uncompressed batch of n records (keys "k<i>" when keyed, else null keys; values of
 * value_len bytes of repetitive text), with distinctive header fields: an idempotent
 * transactional producer's, LogAppendTime, base offset 1000, leader epoch 7. */
static size_t make_batch(struct buf *b, int n, bool keyed, size_t value_len, int16_t extra_attrs)
{
    struct record_in *recs = calloc((size_t)n, sizeof *recs);
    char(*keys)[16] = calloc((size_t)n, sizeof *keys);
    uint8_t *val = malloc(value_len + 1);
    for (size_t i = 0; i < value_len; i++)
        val[i] = (uint8_t) "the quick brown fox jumps over the lazy dog "[i % 44];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(keys[i], sizeof keys[i], "k%d", i);
        recs[i].key = keyed ? (struct slice){(const uint8_t *)keys[i], (size_t)kl} : SLICE_NULL;
        recs[i].value = (struct slice){val, value_len};
    }
    size_t start = b->len;
    batch_encode(b, recs, (size_t)n, 1700000000000);
    uint8_t *h = b->data + start;
    be64_write(h + BATCH_OFF_BASE_OFFSET, 1000);
    be32_write(h + BATCH_OFF_LEADER_EPOCH, 7);
    be16_write(h + BATCH_OFF_ATTRIBUTES, (uint16_t)extra_attrs);
    be64_write(h + BATCH_OFF_MAX_TIMESTAMP, 1700000000999);
    be64_write(h + BATCH_OFF_PRODUCER_ID, 4242);
    be16_write(h + BATCH_OFF_PRODUCER_EPOCH, 3);
    be32_write(h + BATCH_OFF_BASE_SEQUENCE, 77);
    fix_crc(h);
    free(recs);
    free(keys);
    free(val);
    return start;
}

/* A batch with the records of `plain` (an uncompressed batch) compressed with `codec`
 * by compress_encode (or, for raw snappy, by libsnappy directly), built here without
 * batch_recompress. */
static void wrap(struct buf *out, const uint8_t *plain, enum compress_codec codec, bool raw_snappy)
{
    struct batch_info info;
    assert_int_equal(batch_validate(plain, SIZE_MAX / 4, &info), 0);
    size_t start = out->len;
    buf_append(out, plain, BATCH_HEADER_BYTES);
    const uint8_t *recs = plain + BATCH_HEADER_BYTES;
    size_t n = info.size_bytes - BATCH_HEADER_BYTES;
    if (raw_snappy) {
        size_t cap = snappy_max_compressed_length(n);
        buf_reserve(out, cap);
        assert_int_equal(snappy_compress((const char *)recs, n, (char *)out->data + out->len, &cap),
                         SNAPPY_OK);
        out->len += cap;
        codec = COMPRESS_SNAPPY;
    } else {
        assert_int_equal(compress_encode(codec, default_level(codec), recs, n, out), 0);
    }
    uint8_t *h = out->data + start;
    be32_write(h + BATCH_OFF_LENGTH, (uint32_t)(out->len - start - BATCH_LOG_OVERHEAD));
    uint16_t attrs = be16_read(h + BATCH_OFF_ATTRIBUTES);
    be16_write(h + BATCH_OFF_ATTRIBUTES, (uint16_t)((attrs & ~7) | codec));
    fix_crc(h);
}

/* The records of a batch, decompressed, appended to out. */
static void records_of(const uint8_t *batch, struct buf *out)
{
    struct batch_info info;
    assert_int_equal(batch_validate(batch, SIZE_MAX / 4, &info), 0);
    assert_int_equal(compress_decode((enum compress_codec)batch_compression(&info),
                                     batch + BATCH_HEADER_BYTES,
                                     info.size_bytes - BATCH_HEADER_BYTES, 1 << 26, out),
                     0);
}

static void assert_same_header(const struct batch_info *a, const struct batch_info *b)
{
    assert_int_equal(a->base_offset, b->base_offset);
    assert_int_equal(a->partition_leader_epoch, b->partition_leader_epoch);
    assert_int_equal(a->attributes & ~7, b->attributes & ~7);
    assert_int_equal(a->last_offset_delta, b->last_offset_delta);
    assert_int_equal(a->first_timestamp, b->first_timestamp);
    assert_int_equal(a->max_timestamp, b->max_timestamp);
    assert_int_equal(a->producer_id, b->producer_id);
    assert_int_equal(a->producer_epoch, b->producer_epoch);
    assert_int_equal(a->base_sequence, b->base_sequence);
    assert_int_equal(a->records_count, b->records_count);
}

static int recompress(const struct buf *in, enum compress_codec target, bool check_keys,
                      struct buf *out)
{
    struct batch_recompress_opts o = {.target = target,
                                      .level = default_level(target),
                                      .check_keys = check_keys,
                                      .max_batch_bytes = 1 << 20};
    assert_int_equal(batch_validate_all(in->data, in->len, true, NULL, NULL), 0);
    return batch_recompress(in->data, in->len, &o, out);
}

static void test_type_names(void **state)
{
    (void)state;
    enum compress_codec c;
    const char *names[] = {"uncompressed", "gzip", "snappy", "lz4", "zstd", "producer"};
    const enum compress_codec want[] = {COMPRESS_NONE, COMPRESS_GZIP, COMPRESS_SNAPPY,
                                        COMPRESS_LZ4,  COMPRESS_ZSTD, COMPRESS_PRODUCER};
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        assert_int_equal(compress_type_parse(names[i], &c), 0);
        assert_int_equal(c, want[i]);
    }
    /* Kafka's validator is case-sensitive, and "none" is the producer's name, not the
     * topic's. */
    assert_int_equal(compress_type_parse("ZSTD", &c), -EINVAL);
    assert_int_equal(compress_type_parse("none", &c), -EINVAL);
    assert_int_equal(compress_type_parse("", &c), -EINVAL);
    assert_string_equal(compress_level_config(COMPRESS_ZSTD), "compression.zstd.level");
    assert_null(compress_level_config(COMPRESS_SNAPPY));
    assert_null(compress_level_config(COMPRESS_NONE));
}

/* Every source codec to every target codec: the records come back byte for byte, the
 * header keeps every field but length, codec and CRC, and the CRC is valid. */
static void test_every_codec_pair(void **state)
{
    (void)state;
    struct buf plain;
    buf_init(&plain);
    make_batch(&plain, 50, true, 300, BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_LOG_APPEND_TIME);
    struct batch_info plain_info;
    assert_int_equal(batch_validate(plain.data, plain.len, &plain_info), 0);
    for (size_t s = 0; s < ARRAY_LEN(CODECS); s++) {
        struct buf src;
        buf_init(&src);
        if (CODECS[s] == COMPRESS_NONE)
            buf_append(&src, plain.data, plain.len);
        else
            wrap(&src, plain.data, CODECS[s], false);
        for (size_t t = 0; t < ARRAY_LEN(CODECS); t++) {
            struct buf out;
            buf_init(&out);
            assert_int_equal(recompress(&src, CODECS[t], false, &out), 0);
            if (s == t) {
                assert_int_equal(out.len, 0); /* stored as sent */
                buf_free(&out);
                continue;
            }
            struct batch_info info;
            assert_int_equal(batch_validate(out.data, out.len, &info), 0); /* CRC valid */
            assert_int_equal(info.size_bytes, out.len);
            assert_int_equal(batch_compression(&info), CODECS[t]);
            assert_same_header(&info, &plain_info);
            assert_int_equal(batch_validate_all(out.data, out.len, true, NULL, NULL), 0);
            struct buf recs;
            buf_init(&recs);
            records_of(out.data, &recs);
            assert_int_equal(recs.len, plain.len - BATCH_HEADER_BYTES);
            assert_memory_equal(recs.data, plain.data + BATCH_HEADER_BYTES, recs.len);
            if (CODECS[t] != COMPRESS_NONE)
                assert_true(out.len < plain.len); /* compressible values did compress */
            buf_free(&recs);
            buf_free(&out);
        }
        /* producer: nothing changes. */
        struct buf out;
        buf_init(&out);
        assert_int_equal(recompress(&src, COMPRESS_PRODUCER, false, &out), 0);
        assert_int_equal(out.len, 0);
        buf_free(&src);
    }
    buf_free(&plain);
}

/* Several batches of different codecs in one blob: each is converted, in order; a
 * control batch is left as it is (Kafka does not compress control records). */
static void test_mixed_blob_and_control(void **state)
{
    (void)state;
    struct buf plain1, plain2, ctrl, blob, out;
    buf_init(&plain1);
    buf_init(&plain2);
    buf_init(&ctrl);
    buf_init(&blob);
    buf_init(&out);
    make_batch(&plain1, 3, true, 100, 0);
    make_batch(&plain2, 5, false, 200, 0);
    make_batch(&ctrl, 1, true, 0, BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL);
    wrap(&blob, plain1.data, COMPRESS_GZIP, false);
    buf_append(&blob, plain2.data, plain2.len);
    buf_append(&blob, ctrl.data, ctrl.len);
    wrap(&blob, plain2.data, COMPRESS_ZSTD, false); /* already the target */
    assert_int_equal(recompress(&blob, COMPRESS_ZSTD, false, &out), 0);
    struct batch_iter it;
    struct batch_info info;
    int n = 0;
    batch_iter_init(&it, out.data, out.len);
    while (batch_iter_next(&it, &info, true) > 0) {
        int want = n == 2 ? COMPRESS_NONE : COMPRESS_ZSTD;
        assert_int_equal(batch_compression(&info), want);
        struct buf recs;
        buf_init(&recs);
        records_of(out.data + it.batch_pos, &recs);
        const struct buf *src = n == 0 ? &plain1 : n == 2 ? &ctrl : &plain2;
        assert_int_equal(recs.len, src->len - BATCH_HEADER_BYTES);
        assert_memory_equal(recs.data, src->data + BATCH_HEADER_BYTES, recs.len);
        if (n == 2) { /* the control batch, byte for byte */
            assert_int_equal(info.size_bytes, ctrl.len);
            assert_memory_equal(out.data + it.batch_pos, ctrl.data, ctrl.len);
        }
        buf_free(&recs);
        n++;
    }
    assert_int_equal(n, 4);
    assert_int_equal(it.pos, out.len);
    buf_free(&plain1);
    buf_free(&plain2);
    buf_free(&ctrl);
    buf_free(&blob);
    buf_free(&out);
}

static void test_levels(void **state)
{
    (void)state;
    struct buf plain;
    buf_init(&plain);
    make_batch(&plain, 20, true, 500, 0);
    const struct {
        enum compress_codec codec;
        int level;
    } cases[] = {
        {COMPRESS_GZIP, 1},  {COMPRESS_GZIP, 9}, {COMPRESS_GZIP, -1}, {COMPRESS_LZ4, 1},
        {COMPRESS_LZ4, 9},   {COMPRESS_LZ4, 12}, {COMPRESS_LZ4, 17},  {COMPRESS_ZSTD, -131072},
        {COMPRESS_ZSTD, -5}, {COMPRESS_ZSTD, 1}, {COMPRESS_ZSTD, 22},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct batch_recompress_opts o = {
            .target = cases[i].codec, .level = cases[i].level, .max_batch_bytes = 1 << 20};
        struct buf out, recs;
        buf_init(&out);
        buf_init(&recs);
        assert_int_equal(batch_recompress(plain.data, plain.len, &o, &out), 0);
        struct batch_info info;
        assert_int_equal(batch_validate(out.data, out.len, &info), 0);
        assert_int_equal(batch_compression(&info), cases[i].codec);
        records_of(out.data, &recs);
        assert_int_equal(recs.len, plain.len - BATCH_HEADER_BYTES);
        assert_memory_equal(recs.data, plain.data + BATCH_HEADER_BYTES, recs.len);
        buf_free(&out);
        buf_free(&recs);
    }
    buf_free(&plain);
}

/* Snappy: written Xerial-framed (magic, version 1, compatible 1, 32 KiB blocks); read
 * Xerial, raw (librdkafka) and concatenated Xerial streams. */
static void test_snappy_framing(void **state)
{
    (void)state;
    size_t n = 100000; /* four Xerial blocks */
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)((i * 7) ^ (i >> 9));
    struct buf x, out;
    buf_init(&x);
    buf_init(&out);
    assert_int_equal(compress_encode(COMPRESS_SNAPPY, 0, data, n, &x), 0);
    static const uint8_t header[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0,
                                       0,    0,   0,   1,   0,   0,   0,   1};
    assert_memory_equal(x.data, header, sizeof header);
    /* Blocks: [int32 length][raw snappy of <= 32 KiB]. */
    size_t pos = 16, blocks = 0, total = 0;
    while (pos < x.len) {
        uint32_t len = be32_read(x.data + pos);
        size_t ulen;
        assert_int_equal(snappy_uncompressed_length((const char *)x.data + pos + 4, len, &ulen),
                         SNAPPY_OK);
        assert_true(ulen <= 32768);
        total += ulen;
        pos += 4 + len;
        blocks++;
    }
    assert_int_equal(pos, x.len);
    assert_int_equal(blocks, 4);
    assert_int_equal(total, n);
    assert_int_equal(compress_decode(COMPRESS_SNAPPY, x.data, x.len, n, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, data, n);

    /* Two Xerial streams back to back read as one (snappy-java does). */
    buf_reset(&out);
    struct buf two;
    buf_init(&two);
    buf_append(&two, x.data, x.len);
    buf_append(&two, x.data, x.len);
    assert_int_equal(compress_decode(COMPRESS_SNAPPY, two.data, two.len, 2 * n, &out), 0);
    assert_int_equal(out.len, 2 * n);
    assert_memory_equal(out.data + n, data, n);

    /* Raw snappy, as librdkafka writes it. */
    size_t cap = snappy_max_compressed_length(n);
    char *raw = malloc(cap);
    assert_int_equal(snappy_compress((const char *)data, n, raw, &cap), SNAPPY_OK);
    buf_reset(&out);
    assert_int_equal(compress_decode(COMPRESS_SNAPPY, (uint8_t *)raw, cap, n, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, data, n);

    /* Truncated framing and blocks; a block length past the end. */
    buf_reset(&out);
    assert_int_equal(compress_decode(COMPRESS_SNAPPY, x.data, 12, n, &out), STORAGE_ERR_CORRUPT);
    assert_int_equal(compress_decode(COMPRESS_SNAPPY, x.data, 18, n, &out), STORAGE_ERR_CORRUPT);
    assert_int_equal(compress_decode(COMPRESS_SNAPPY, x.data, x.len - 1, n, &out),
                     STORAGE_ERR_CORRUPT);
    assert_int_equal(compress_decode(COMPRESS_SNAPPY, (uint8_t *)raw, cap - 3, n, &out),
                     STORAGE_ERR_CORRUPT);
    x.data[17] ^= 0x40; /* first block's length */
    assert_int_equal(compress_decode(COMPRESS_SNAPPY, x.data, x.len, n, &out), STORAGE_ERR_CORRUPT);
    assert_int_equal(out.len, 0);

    /* A batch carrying raw snappy is recompressed like any other. */
    struct buf plain, batch, rewritten, recs;
    buf_init(&plain);
    buf_init(&batch);
    buf_init(&rewritten);
    buf_init(&recs);
    make_batch(&plain, 10, true, 1000, 0);
    wrap(&batch, plain.data, COMPRESS_SNAPPY, true);
    assert_int_equal(recompress(&batch, COMPRESS_LZ4, true, &rewritten), 0);
    records_of(rewritten.data, &recs);
    assert_int_equal(recs.len, plain.len - BATCH_HEADER_BYTES);
    assert_memory_equal(recs.data, plain.data + BATCH_HEADER_BYTES, recs.len);

    free(raw);
    free(data);
    buf_free(&x);
    buf_free(&two);
    buf_free(&out);
    buf_free(&plain);
    buf_free(&batch);
    buf_free(&rewritten);
    buf_free(&recs);
}

/* gzip: a gzip header is required (zlib-wrapped data is refused); concatenated members
 * are one stream; bytes after the last member are refused. */
static void test_gzip_framing(void **state)
{
    (void)state;
    const char *text = "gzip members are read one after another as a single stream";
    size_t n = strlen(text);
    struct buf g, out;
    buf_init(&g);
    buf_init(&out);
    assert_int_equal(compress_encode(COMPRESS_GZIP, 6, (const uint8_t *)text, n, &g), 0);
    assert_int_equal(g.data[0], 0x1f);
    assert_int_equal(g.data[1], 0x8b);
    size_t one = g.len;
    buf_append(&g, g.data, one);
    assert_int_equal(compress_decode(COMPRESS_GZIP, g.data, g.len, 1000, &out), 0);
    assert_int_equal(out.len, 2 * n);
    assert_memory_equal(out.data + n, text, n);
    buf_reset(&out);
    uint8_t junk[4] = {0, 0, 0, 0};
    buf_append(&g, junk, sizeof junk);
    assert_int_equal(compress_decode(COMPRESS_GZIP, g.data, g.len, 1000, &out),
                     STORAGE_ERR_CORRUPT);
    uint8_t z[256];
    uLongf zlen = sizeof z;
    assert_int_equal(compress2(z, &zlen, (const Bytef *)text, n, 6), Z_OK);
    assert_int_equal(compress_decode(COMPRESS_GZIP, z, zlen, 1000, &out), STORAGE_ERR_CORRUPT);
    assert_int_equal(out.len, 0);
    buf_free(&g);
    buf_free(&out);
}

/* Truncated, bit-flipped and random input: an error, never a crash or a wrong success
 * that passes the records check. */
static void test_corrupt_input(void **state)
{
    (void)state;
    struct buf plain;
    buf_init(&plain);
    make_batch(&plain, 30, true, 200, 0);
    size_t rec_len = plain.len - BATCH_HEADER_BYTES;
    for (size_t c = 1; c < ARRAY_LEN(CODECS); c++) {
        struct buf enc, out;
        buf_init(&enc);
        buf_init(&out);
        assert_int_equal(compress_encode(CODECS[c], default_level(CODECS[c]),
                                         plain.data + BATCH_HEADER_BYTES, rec_len, &enc),
                         0);
        for (size_t cut = 0; cut < enc.len; cut += 1 + cut / 3) {
            if (CODECS[c] == COMPRESS_SNAPPY && cut == 16)
                continue; /* a Xerial header alone is a valid empty stream */
            int rc = compress_decode(CODECS[c], enc.data, cut, 1 << 20, &out);
            assert_int_equal(rc, STORAGE_ERR_CORRUPT);
            assert_int_equal(out.len, 0);
        }
        uint8_t noise[300];
        for (size_t i = 0; i < sizeof noise; i++)
            noise[i] = (uint8_t)(i * 131 + c * 17);
        assert_int_equal(compress_decode(CODECS[c], noise, sizeof noise, 1 << 20, &out),
                         STORAGE_ERR_CORRUPT);

        /* A corrupt payload inside a batch with a valid CRC: refused by the rewrite. */
        struct buf batch, rewritten;
        buf_init(&batch);
        buf_init(&rewritten);
        wrap(&batch, plain.data, CODECS[c], false);
        size_t cut_at = batch.len - 9;
        be32_write(batch.data + BATCH_OFF_LENGTH, (uint32_t)(cut_at - BATCH_LOG_OVERHEAD));
        batch.len = cut_at;
        fix_crc(batch.data);
        assert_int_equal(recompress(&batch, COMPRESS_NONE, false, &rewritten), STORAGE_ERR_CORRUPT);
        assert_int_equal(rewritten.len, 0);
        assert_int_equal(recompress(&batch, COMPRESS_PRODUCER, true, &rewritten),
                         STORAGE_ERR_CORRUPT);
        /* Decompressing to bytes that are not records is refused too. */
        buf_reset(&batch);
        buf_append(&batch, plain.data, BATCH_HEADER_BYTES);
        assert_int_equal(compress_encode(CODECS[c], default_level(CODECS[c]),
                                         (const uint8_t *)"not records", 11, &batch),
                         0);
        be32_write(batch.data + BATCH_OFF_LENGTH, (uint32_t)(batch.len - BATCH_LOG_OVERHEAD));
        be16_write(batch.data + BATCH_OFF_ATTRIBUTES, (uint16_t)CODECS[c]);
        fix_crc(batch.data);
        enum compress_codec other = CODECS[c] == COMPRESS_ZSTD ? COMPRESS_LZ4 : COMPRESS_ZSTD;
        assert_int_equal(recompress(&batch, other, false, &rewritten), STORAGE_ERR_CORRUPT);
        buf_free(&batch);
        buf_free(&rewritten);
        buf_free(&enc);
        buf_free(&out);
    }
    /* Codecs 5..7 do not exist. */
    struct buf out;
    buf_init(&out);
    assert_int_equal(compress_decode((enum compress_codec)5, plain.data, 10, 100, &out),
                     STORAGE_ERR_CORRUPT);
    buf_free(&out);
    buf_free(&plain);
}

/* Decompression stops at its bound, without holding more than the bound. */
static void test_bomb_bound(void **state)
{
    (void)state;
    assert_int_equal(compress_decompressed_bound(1048588), COMPRESS_MIN_BOUND_BYTES);
    assert_int_equal(compress_decompressed_bound(0), COMPRESS_MIN_BOUND_BYTES);
    assert_int_equal(compress_decompressed_bound(10 << 20), (size_t)160 << 20);
    assert_int_equal(compress_decompressed_bound(INT32_MAX), COMPRESS_MAX_BOUND_BYTES);

    size_t n = 1 << 20;
    uint8_t *zeros = calloc(1, n);
    for (size_t c = 0; c < ARRAY_LEN(CODECS); c++) {
        struct buf enc, out;
        buf_init(&enc);
        buf_init(&out);
        assert_int_equal(compress_encode(CODECS[c], default_level(CODECS[c]), zeros, n, &enc), 0);
        assert_int_equal(compress_decode(CODECS[c], enc.data, enc.len, n - 1, &out),
                         STORAGE_ERR_DECOMPRESS_LIMIT);
        assert_int_equal(out.len, 0);
        assert_true(out.cap <= n + 65536); /* never grew much past the bound */
        assert_int_equal(compress_decode(CODECS[c], enc.data, enc.len, n, &out), 0);
        assert_int_equal(out.len, n);
        buf_free(&enc);
        buf_free(&out);
    }
    free(zeros);

    /* A batch whose one record decompresses past the bound for max.message.bytes. */
    size_t big = COMPRESS_MIN_BOUND_BYTES + 1000;
    struct buf plain, batch, out;
    buf_init(&plain);
    buf_init(&batch);
    buf_init(&out);
    uint8_t *val = calloc(1, big);
    struct record_in r = {.key = {(const uint8_t *)"k", 1}, .value = {val, big}};
    batch_encode(&plain, &r, 1, 1);
    free(val);
    wrap(&batch, plain.data, COMPRESS_ZSTD, false);
    buf_free(&plain);
    assert_true(batch.len < 1 << 20);
    struct batch_recompress_opts o = {
        .target = COMPRESS_LZ4, .level = 9, .max_batch_bytes = 1 << 20};
    assert_int_equal(batch_recompress(batch.data, batch.len, &o, &out),
                     STORAGE_ERR_DECOMPRESS_LIMIT);
    o = (struct batch_recompress_opts){
        .target = COMPRESS_PRODUCER, .check_keys = true, .max_batch_bytes = 1 << 20};
    assert_int_equal(batch_recompress(batch.data, batch.len, &o, &out),
                     STORAGE_ERR_DECOMPRESS_LIMIT);
    assert_int_equal(out.len, 0);
    /* The bound covers the request's batches together, not each one. */
    buf_free(&batch);
    buf_init(&plain);
    val = calloc(1, 40 << 20);
    r.value = (struct slice){val, 40 << 20};
    batch_encode(&plain, &r, 1, 1);
    free(val);
    wrap(&batch, plain.data, COMPRESS_LZ4, false);
    buf_free(&plain);
    o = (struct batch_recompress_opts){
        .target = COMPRESS_ZSTD, .level = 3, .max_batch_bytes = 1 << 20};
    assert_int_equal(batch_recompress(batch.data, batch.len, &o, &out), 0);
    buf_free(&out);
    buf_init(&out);
    buf_append(&batch, batch.data, batch.len);
    assert_int_equal(batch_recompress(batch.data, batch.len, &o, &out),
                     STORAGE_ERR_DECOMPRESS_LIMIT);
    buf_free(&batch);
    buf_free(&out);
}

/* A rewritten batch above max.message.bytes is refused (Kafka: RecordTooLargeException). */
static void test_rewritten_too_large(void **state)
{
    (void)state;
    struct buf plain, batch, out;
    buf_init(&plain);
    buf_init(&batch);
    buf_init(&out);
    make_batch(&plain, 100, true, 1000, 0);
    wrap(&batch, plain.data, COMPRESS_ZSTD, false);
    struct batch_recompress_opts o = {.target = COMPRESS_NONE,
                                      .max_batch_bytes = (int64_t)plain.len - 1};
    assert_int_equal(batch_recompress(batch.data, batch.len, &o, &out),
                     STORAGE_ERR_BATCH_TOO_LARGE);
    assert_int_equal(out.len, 0);
    o.max_batch_bytes = (int64_t)plain.len;
    assert_int_equal(batch_recompress(batch.data, batch.len, &o, &out), 0);
    assert_int_equal(out.len, plain.len);
    assert_memory_equal(out.data + BATCH_HEADER_BYTES, plain.data + BATCH_HEADER_BYTES,
                        plain.len - BATCH_HEADER_BYTES);
    buf_free(&plain);
    buf_free(&batch);
    buf_free(&out);
}

/* Compacted topics: keys are checked inside compressed batches too. */
static void test_keys_in_compressed_batches(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(CODECS); c++) {
        struct buf keyed, keyless, a, b, out;
        buf_init(&keyed);
        buf_init(&keyless);
        buf_init(&a);
        buf_init(&b);
        buf_init(&out);
        make_batch(&keyed, 10, true, 50, 0);
        make_batch(&keyless, 10, false, 50, 0);
        if (CODECS[c] == COMPRESS_NONE) {
            buf_append(&a, keyed.data, keyed.len);
            buf_append(&b, keyless.data, keyless.len);
        } else {
            wrap(&a, keyed.data, CODECS[c], false);
            wrap(&b, keyless.data, CODECS[c], false);
        }
        /* Same codec (stored as sent) and another codec alike. */
        assert_int_equal(recompress(&a, COMPRESS_PRODUCER, true, &out), 0);
        assert_int_equal(out.len, 0);
        assert_int_equal(recompress(&b, COMPRESS_PRODUCER, true, &out), STORAGE_ERR_NO_KEY);
        assert_int_equal(recompress(&b, CODECS[c], true, &out), STORAGE_ERR_NO_KEY);
        assert_int_equal(recompress(&b, CODECS[(c + 1) % 5], true, &out), STORAGE_ERR_NO_KEY);
        assert_int_equal(out.len, 0);
        /* Not compacted: keyless records are fine. */
        assert_int_equal(recompress(&b, COMPRESS_PRODUCER, false, &out), 0);
        /* A keyless batch after a good one fails the whole blob. */
        buf_append(&a, b.data, b.len);
        assert_int_equal(recompress(&a, COMPRESS_PRODUCER, true, &out), STORAGE_ERR_NO_KEY);
        assert_int_equal(recompress(&a, COMPRESS_ZSTD, true, &out), STORAGE_ERR_NO_KEY);
        assert_int_equal(out.len, 0);
        buf_free(&keyed);
        buf_free(&keyless);
        buf_free(&a);
        buf_free(&b);
        buf_free(&out);
    }
}

static int teardown(void **state)
{
    (void)state;
    compress_thread_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_every_codec_pair),
        cmocka_unit_test(test_mixed_blob_and_control),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_snappy_framing),
        cmocka_unit_test(test_gzip_framing),
        cmocka_unit_test(test_corrupt_input),
        cmocka_unit_test(test_bomb_bound),
        cmocka_unit_test(test_rewritten_too_large),
        cmocka_unit_test(test_keys_in_compressed_batches),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
