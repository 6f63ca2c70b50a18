/*
 * fuzz_decompress: libFuzzer target for the decoders of compressed batch payloads — the
 * bytes a producer sends inside a gzip, snappy (raw or Xerial-framed), lz4 or zstd
 * batch, which the broker decompresses to recompress them or to check their keys.
 *
 * The first input byte picks the mode, the rest is the data:
 *   bit 3 clear: compress_decode(codec = bits 0-2, data, bound = 64 KiB << bits 4-5).
 *       Whatever decodes must fit the bound, and re-encoding and decoding it again
 *       must give the same bytes; a failure must leave the output untouched.
 *   bit 3 set: the data is a produce blob. When batch_validate_all accepts it,
 *       batch_recompress(target = bits 4-6 (5..7: producer), check_keys = bit 7)
 *       must either fail cleanly or produce a blob that validates with its records,
 *       every batch in the target codec (control batches aside) and every batch it
 *       rewrote decoding to well-framed records.
 * Build: cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON, target fuzz_decompress; seeds
 * from `make_seeds --compress DIR`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_mode(uint8_t mode, const uint8_t *p, size_t n)
{
    enum compress_codec codec = (enum compress_codec)(mode & 7);
    size_t bound = (size_t)65536 << ((mode >> 4) & 3);
    struct buf out, again, re;
    buf_init(&out);
    buf_init(&again);
    buf_init(&re);
    buf_put_i32(&out, 0x5a5a5a5a); /* output is appended after what is there */
    int rc = compress_decode(codec, p, n, bound, &out);
    if (rc != 0) {
        if (out.len != 4 || be32_read(out.data) != 0x5a5a5a5a)
            abort(); /* a failed decode must leave out as it was */
        if (codec > COMPRESS_ZSTD && rc != STORAGE_ERR_CORRUPT)
            abort();
    } else {
        if (codec > COMPRESS_ZSTD || out.len - 4 > bound)
            abort();
        int level = codec == COMPRESS_GZIP ? 1 : codec == COMPRESS_ZSTD ? 1 : 9;
        if (compress_encode(codec, level, out.data + 4, out.len - 4, &re) != 0)
            abort();
        if (compress_decode(codec, re.data, re.len, out.len - 4, &again) != 0 ||
            again.len != out.len - 4 ||
            (again.len > 0 && memcmp(again.data, out.data + 4, again.len) != 0))
            abort();
    }
    buf_free(&out);
    buf_free(&again);
    buf_free(&re);
}

static void batch_mode(uint8_t mode, const uint8_t *p, size_t n)
{
    if (batch_validate_all(p, n, true, NULL, NULL) != 0)
        return;
    int t = (mode >> 4) & 7;
    struct batch_recompress_opts o = {
        .target = t > COMPRESS_ZSTD ? COMPRESS_PRODUCER : (enum compress_codec)t,
        .level = t == COMPRESS_LZ4 ? 9 : 1,
        .check_keys = (mode & 0x80) != 0,
        .max_batch_bytes = 1 << 20,
    };
    struct buf out, keyless;
    buf_init(&out);
    buf_init(&keyless);
    o.keyless = &keyless;
    int rc = batch_recompress(p, n, &o, &out);
    if (rc != 0) {
        if (out.len != 0)
            abort();
        if (rc == STORAGE_ERR_NO_KEY) {
            /* The keyless batch is handed back plain and valid. */
            struct batch_info info;
            bool keyed = true;
            if (batch_validate(keyless.data, keyless.len, &info) != 0 ||
                batch_compression(&info) != 0 || info.size_bytes != keyless.len ||
                batch_check_records(keyless.data, &info, &keyed) != 0 || keyed)
                abort();
        }
    } else if (out.len > 0) {
        if (batch_validate_all(out.data, out.len, true, NULL, NULL) != 0)
            abort();
        /* The output holds the input's batches in order, one for one. */
        struct batch_iter it, in_it;
        struct batch_info info, in_info;
        batch_iter_init(&it, out.data, out.len);
        batch_iter_init(&in_it, p, n);
        while (batch_iter_next(&it, &info, true) > 0) {
            if (batch_iter_next(&in_it, &in_info, true) <= 0)
                abort();
            if (o.target == COMPRESS_PRODUCER || (info.attributes & BATCH_ATTR_CONTROL))
                continue;
            if (batch_compression(&info) != (int)o.target)
                abort();
            /* A batch already in the target codec is passed on as it came, its records
             * unread unless keys were checked: only the others must decode. */
            if (batch_compression(&in_info) == (int)o.target && !o.check_keys)
                continue;
            /* The records of a rewritten batch decode and are well framed. */
            struct buf plain;
            buf_init(&plain);
            buf_append(&plain, out.data + it.batch_pos, BATCH_HEADER_BYTES);
            if (compress_decode(o.target, out.data + it.batch_pos + BATCH_HEADER_BYTES,
                                info.size_bytes - BATCH_HEADER_BYTES, COMPRESS_MAX_BOUND_BYTES,
                                &plain) != 0)
                abort();
            struct batch_info pi = info;
            pi.attributes = (int16_t)(info.attributes & ~BATCH_ATTR_COMPRESSION_MASK);
            pi.size_bytes = plain.len;
            if (batch_check_records(plain.data, &pi, NULL) != 0)
                abort();
            buf_free(&plain);
        }
    }
    buf_free(&out);
    buf_free(&keyless);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 0x08)
        batch_mode(data[0], data + 1, size - 1);
    else
        decode_mode(data[0], data + 1, size - 1);
    return 0;
}
