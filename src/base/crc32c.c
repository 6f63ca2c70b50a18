/* CRC32C (Castagnoli), as used by Kafka record batches (magic 2). Uses the SSE4.2
 * crc32 instruction when the CPU has it (checked once), else a slicing-by-8 table.
 *
 * The crc32 instruction has a latency of ~3 cycles but the CPU can start one every cycle
 * (two on Zen 5), so a single dependent chain leaves most of it idle. For longer inputs the
 * hardware path cuts the data into blocks of three equal lanes A, B, C, runs three
 * independent chains over them interleaved, and combines the three results (as in Intel's
 * "Fast CRC Computation for iSCSI Polynomial Using CRC32 Instruction", 2011).
 *
 * Why combining works. Let crc(c, M) be the raw register (no pre- or post-inversion) after
 * feeding message M from register c, in the reflected bit order the instruction uses: bit
 * 31-i holds the coefficient of x^i. One byte turns c into (c + B) * x^8 mod P, where B is
 * the byte placed at coefficients x^24..x^31. That is linear over GF(2) in (c, B), and a
 * zero byte just multiplies by x^8. So, mod P and with + as XOR, for n = |M|:
 *     crc(c, M)       = c * x^(8n) + crc(0, M)
 *     crc(0, X || Y)  = crc(0, X) * x^(8|Y|) + crc(0, Y)
 * and for a block of three lanes of L bytes each:
 *     crc(c, A||B||C) = c * x^(24L) + crc(0, A) * x^(16L) + crc(0, B) * x^(8L) + crc(0, C).
 * Every lane starts from 0, so no chain waits for the previous block to be combined and the
 * CPU can also overlap consecutive blocks. Multiplying a register by a fixed x^(8n) ("shift
 * past n zero bytes") is linear in its 32 bits, so it is the XOR of four byte-indexed table
 * lookups; those tables are built at start-up for 1, 2 and 3 lanes of each lane length. */
#include "base/base.h"

#include <pthread.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u /* P without its x^32 term, reflected */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static bool have_hw;

#if defined(__x86_64__)
/* The map v -> v * x^(8n) mod P for one fixed n: t[k][b] is the image of byte b sitting at
 * bits 8k..8k+7 of v, and by linearity the image of v is the XOR of its four bytes'. */
struct crc_shift {
    uint32_t t[4][256];
};

/* Lane lengths of the three-way path (multiples of 8: a lane is whole 8-byte steps).
 * 256-byte lanes: a 768-byte block's 32 steps per chain outweigh the 12 lookups that
 * combine it, and in a 16 KiB batch the CPU overlaps consecutive blocks. Then 64-byte
 * lanes, so that the tail after the long blocks (< 768 bytes; 256 of a 1 KiB batch) runs
 * three-way too and at most 191 bytes are left for a single chain. */
#define CRC_LONG_LANE_BYTES 256
#define CRC_SHORT_LANE_BYTES 64

/* by_long[k] multiplies by x^(8 * (k + 1) * CRC_LONG_LANE_BYTES), i.e. shifts a register
 * past k + 1 long lanes of zero bytes; likewise by_short. 12 KiB each. */
static struct crc_shift by_long[3];
static struct crc_shift by_short[3];

/* v * x mod P: the x^31 coefficient is bit 0; shifted out it becomes x^32 = the rest of P. */
static uint32_t mul_x(uint32_t v)
{
    return (v >> 1) ^ ((v & 1) ? CRC32C_POLY : 0);
}

/* a * b mod P: the sum of b * x^i over the coefficients x^i present in a. */
static uint32_t mul_mod(uint32_t a, uint32_t b)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i++) {
        if (a & (0x80000000u >> i))
            r ^= b;
        b = mul_x(b);
    }
    return r;
}

static void shift_init(struct crc_shift *s, size_t zero_bytes)
{
    uint32_t xn = 0x80000000u; /* x^0, then x^(8 * zero_bytes) */
    for (size_t i = 0; i < 8 * zero_bytes; i++)
        xn = mul_x(xn);
    for (uint32_t k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++)
            s->t[k][b] = mul_mod(b << (8 * k), xn);
}

static void lanes_init(struct crc_shift by[3], size_t lane_bytes)
{
    for (size_t k = 0; k < 3; k++)
        shift_init(&by[k], (k + 1) * lane_bytes);
}

static inline uint32_t shift_apply(const struct crc_shift *s, uint32_t v)
{
    return s->t[0][v & 0xff] ^ s->t[1][(v >> 8) & 0xff] ^ s->t[2][(v >> 16) & 0xff] ^
           s->t[3][v >> 24];
}
#endif

static void init_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d))
        have_hw = (c & bit_SSE4_2) != 0;
    if (have_hw) {
        lanes_init(by_long, CRC_LONG_LANE_BYTES);
        lanes_init(by_short, CRC_SHORT_LANE_BYTES);
    }
#endif
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, init_tables);
    const uint8_t *p = data;
    crc = ~crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
              table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
              table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
static inline uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* Feeds the raw register c with as many whole blocks of three lane_bytes lanes as *len
 * holds, advancing *p and *len past them; by are the operators for lane_bytes. Inlined so
 * that lane_bytes is a constant. */
__attribute__((target("sse4.2"), always_inline)) static inline uint64_t
crc32c_hw_blocks(uint64_t c, const uint8_t **p, size_t *len, size_t lane_bytes,
                 const struct crc_shift by[3])
{
    const uint8_t *q = *p;
    size_t n = *len;
    while (n >= 3 * lane_bytes) {
        uint64_t crc_a = 0, crc_b = 0, crc_c = 0; /* crc(0, lane) of lanes A, B, C */
        for (const uint8_t *end = q + lane_bytes; q < end; q += 8) {
            crc_a = _mm_crc32_u64(crc_a, load64(q));
            crc_b = _mm_crc32_u64(crc_b, load64(q + lane_bytes));
            crc_c = _mm_crc32_u64(crc_c, load64(q + 2 * lane_bytes));
        }
        c = shift_apply(&by[2], (uint32_t)c) ^ shift_apply(&by[1], (uint32_t)crc_a) ^
            shift_apply(&by[0], (uint32_t)crc_b) ^ crc_c;
        q += 2 * lane_bytes;
        n -= 3 * lane_bytes;
    }
    *p = q;
    *len = n;
    return c;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                            size_t len)
{
    uint64_t c = ~crc;
    c = crc32c_hw_blocks(c, &p, &len, CRC_LONG_LANE_BYTES, by_long);
    c = crc32c_hw_blocks(c, &p, &len, CRC_SHORT_LANE_BYTES, by_short);
    while (len >= 8) {
        c = _mm_crc32_u64(c, load64(p));
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, init_tables);
#if defined(__x86_64__)
    if (have_hw)
        return crc32c_hw(crc, data, len);
#endif
    return crc32c_sw(crc, data, len);
}

size_t crc_frame_at(const uint8_t *data, size_t len, size_t pos, uint32_t max_payload)
{
    if (len - pos < CRC_FRAME_HEADER)
        return 0;
    uint32_t n = be32_read(data + pos);
    if (n == 0 || n > max_payload || len - pos - CRC_FRAME_HEADER < n)
        return 0;
    if (crc32c(0, data + pos + CRC_FRAME_HEADER, n) != be32_read(data + pos + 4))
        return 0;
    return CRC_FRAME_HEADER + n;
}
