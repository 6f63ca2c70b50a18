/*
 * Test helpers for storage: encode magic-2 record batches with uncompressed records and
 * a correct CRC32C, and temporary directories removed at the end of each test.
 */
#ifndef SAMSA_TEST_STORAGE_HELPERS_H
#define SAMSA_TEST_STORAGE_HELPERS_H

#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/base.h"
#include "storage/storage.h"

/* Appends one batch of n records (values of value_len bytes filled with `fill`), record i
 * having timestamp base_ts + i. Returns the batch's offset in b. */
static inline size_t th_batch(struct buf *b, int n, int64_t base_ts, size_t value_len, uint8_t fill)
{
    size_t start = b->len;
    buf_put_i64(b, 0);     /* baseOffset */
    buf_put_i32(b, 0);     /* batchLength, patched */
    buf_put_i32(b, -1);    /* partitionLeaderEpoch */
    buf_put_i8(b, 2);      /* magic */
    buf_put_u32(b, 0);     /* crc, patched */
    buf_put_i16(b, 0);     /* attributes */
    buf_put_i32(b, n - 1); /* lastOffsetDelta */
    buf_put_i64(b, base_ts);
    buf_put_i64(b, base_ts + n - 1);
    buf_put_i64(b, -1); /* producerId */
    buf_put_i16(b, -1);
    buf_put_i32(b, -1);
    buf_put_i32(b, n);
    uint8_t *val = malloc(value_len ? value_len : 1);
    memset(val, fill, value_len);
    for (int i = 0; i < n; i++) {
        size_t body = 1 + varlong_size(i) + varint_size(i) + varint_size(-1) +
                      varint_size((int32_t)value_len) + value_len + varint_size(0);
        buf_put_varint(b, (int32_t)body);
        buf_put_i8(b, 0);
        buf_put_varlong(b, i);
        buf_put_varint(b, i);
        buf_put_varint(b, -1);
        buf_put_varint(b, (int32_t)value_len);
        buf_append(b, val, value_len);
        buf_put_varint(b, 0);
    }
    free(val);
    be32_write(b->data + start + BATCH_OFF_LENGTH, (uint32_t)(b->len - start - 12));
    uint32_t crc =
        crc32c(0, b->data + start + BATCH_OFF_ATTRIBUTES, b->len - start - BATCH_OFF_ATTRIBUTES);
    be32_write(b->data + start + BATCH_OFF_CRC, crc);
    return start;
}

static inline int th_rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    remove(p);
    return 0;
}

static inline void th_rmrf(const char *dir)
{
    nftw(dir, th_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates /tmp/samsa-storage-XXXXXX and returns "<it>/topic-0" (malloc'd) in *part. */
static inline char *th_tmpdir(char **part)
{
    char *root = strdup("/tmp/samsa-storage-XXXXXX");
    assert_non_null(mkdtemp(root));
    *part = malloc(strlen(root) + 16);
    sprintf(*part, "%s/topic-0", root);
    return root;
}

static inline void th_small_cfg(struct log_config *c)
{
    log_config_default(c);
    c->segment_bytes = 64 * 1024;
    c->index_interval_bytes = 1024;
    c->retention_ms = -1;
}

static inline char *th_path(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static inline off_t th_file_size(const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0)
        return -1;
    return st.st_size;
}

/* Appends one batch of n records of value_len bytes; returns the base offset. */
static inline int64_t th_append(struct log *l, int n, int64_t ts, size_t value_len, int32_t epoch,
                                int64_t now_ms)
{
    struct buf b;
    buf_init(&b);
    th_batch(&b, n, ts, value_len, (uint8_t)n);
    struct log_append_result r;
    assert_int_equal(log_append(l, b.data, b.len, epoch, now_ms, &r), 0);
    buf_free(&b);
    return r.base_offset;
}

/* Reads [pos, pos+len) of fd into a malloc'd buffer. */
static inline uint8_t *th_pread(int fd, int64_t pos, int64_t len)
{
    uint8_t *p = malloc((size_t)len + 1);
    assert_int_equal(pread(fd, p, (size_t)len, pos), len);
    return p;
}

#endif
