/* Bounds-checked reader with a sticky error flag: decoders read a whole structure
 * and check r->err once, instead of testing every field. */
#include "base/base.h"

#include <string.h>

void rd_init(struct reader *r, const void *data, size_t len)
{
    *r = (struct reader){.p = data, .len = len, .pos = 0, .err = 0};
}

/* Returns a pointer to n readable bytes and advances, or NULL and sets err. */
static const uint8_t *take(struct reader *r, size_t n)
{
    if (r->err || r->len - r->pos < n) {
        r->err = -1;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

int8_t rd_i8(struct reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? (int8_t)p[0] : 0;
}

int16_t rd_i16(struct reader *r)
{
    const uint8_t *p = take(r, 2);
    return p ? (int16_t)be16_read(p) : 0;
}

int32_t rd_i32(struct reader *r)
{
    return (int32_t)rd_u32(r);
}

uint32_t rd_u32(struct reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? be32_read(p) : 0;
}

int64_t rd_i64(struct reader *r)
{
    const uint8_t *p = take(r, 8);
    return p ? (int64_t)be64_read(p) : 0;
}

double rd_f64(struct reader *r)
{
    uint64_t bits = (uint64_t)rd_i64(r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static uint64_t rd_uvarint_max(struct reader *r, int max_bytes)
{
    const uint8_t *p = r->p + r->pos;
    uint64_t v;
    if (r->err || !uvarint_take(&p, r->p + r->len, max_bytes, &v)) {
        r->err = -1; /* cut short, or too long: malformed */
        return 0;
    }
    r->pos = (size_t)(p - r->p);
    return v;
}

uint64_t rd_uvarint(struct reader *r)
{
    return rd_uvarint_max(r, 10);
}

int32_t rd_varint(struct reader *r)
{
    uint32_t u = (uint32_t)rd_uvarint_max(r, 5);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

int64_t rd_varlong(struct reader *r)
{
    uint64_t u = rd_uvarint_max(r, 10);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

struct slice rd_bytes(struct reader *r, size_t n)
{
    const uint8_t *p = take(r, n);
    if (!p)
        return SLICE_NULL;
    return (struct slice){p, n};
}

void rd_skip(struct reader *r, size_t n)
{
    (void)take(r, n);
}
