/* Growable byte buffer with big-endian and varint writers (Kafka wire encodings). */
#include "base/base.h"

#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
    *b = (struct buf){0};
}

void buf_free(struct buf *b)
{
    free(b->data);
    *b = (struct buf){0};
}

void buf_reset(struct buf *b)
{
    b->len = 0;
}

void buf_grow(struct buf *b, size_t extra_bytes)
{
    if (b->cap - b->len >= extra_bytes)
        return;
    size_t need = b->len + extra_bytes;
    ASSERT(need >= b->len); /* overflow */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
    if (len == 0)
        return;
    buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

uint8_t *buf_extend(struct buf *b, size_t len)
{
    buf_reserve(b, len ? len : 1); /* never hand out a NULL pointer */
    uint8_t *p = b->data + b->len;
    memset(p, 0, len);
    b->len += len;
    return p;
}

void buf_put_i8(struct buf *b, int8_t v)
{
    buf_reserve(b, 1);
    b->data[b->len++] = (uint8_t)v;
}

void buf_put_i16(struct buf *b, int16_t v)
{
    buf_reserve(b, 2);
    be16_write(b->data + b->len, (uint16_t)v);
    b->len += 2;
}

void buf_put_i32(struct buf *b, int32_t v)
{
    buf_put_u32(b, (uint32_t)v);
}

void buf_put_u32(struct buf *b, uint32_t v)
{
    buf_reserve(b, 4);
    be32_write(b->data + b->len, v);
    b->len += 4;
}

void buf_put_i64(struct buf *b, int64_t v)
{
    buf_reserve(b, 8);
    be64_write(b->data + b->len, (uint64_t)v);
    b->len += 8;
}

void buf_put_f64(struct buf *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    buf_put_i64(b, (int64_t)bits);
}

void buf_put_uvarint(struct buf *b, uint64_t v)
{
    buf_reserve(b, 10);
    while (v >= 0x80) {
        b->data[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (uint8_t)v;
}

void buf_put_varint(struct buf *b, int32_t v)
{
    buf_put_uvarint(b, (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}

void buf_put_varlong(struct buf *b, int64_t v)
{
    buf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void buf_patch_i32(struct buf *b, size_t at, int32_t v)
{
    ASSERT(at + 4 <= b->len);
    be32_write(b->data + at, (uint32_t)v);
}

size_t uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t varint_size(int32_t v)
{
    return uvarint_size((uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}

size_t varlong_size(int64_t v)
{
    return uvarint_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
