/* Unit tests for base: varints, big-endian readers, CRC32C, arena, properties. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

static void test_uvarint_roundtrip(void **state)
{
    uint64_t values[] = {0, 1, 127, 128, 255, 300, 16383, 16384, UINT32_MAX, UINT64_MAX};
    for (size_t i = 0; i < ARRAY_LEN(values); i++) {
        struct buf b;
        buf_init(&b);
        buf_put_uvarint(&b, values[i]);
        assert_int_equal(b.len, uvarint_size(values[i]));
        struct reader r;
        rd_init(&r, b.data, b.len);
        assert_true(rd_uvarint(&r) == values[i]);
        assert_int_equal(r.err, 0);
        assert_int_equal(rd_remaining(&r), 0);
        buf_free(&b);
    }
}

static void test_zigzag(void **state)
{
    int32_t v32[] = {0, -1, 1, -2, 63, -64, 64, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < ARRAY_LEN(v32); i++) {
        struct buf b;
        buf_init(&b);
        buf_put_varint(&b, v32[i]);
        assert_int_equal(b.len, varint_size(v32[i]));
        struct reader r;
        rd_init(&r, b.data, b.len);
        assert_int_equal(rd_varint(&r), v32[i]);
        buf_free(&b);
    }
    int64_t v64[] = {0, -1, 1, INT64_MAX, INT64_MIN, 1234567890123LL};
    for (size_t i = 0; i < ARRAY_LEN(v64); i++) {
        struct buf b;
        buf_init(&b);
        buf_put_varlong(&b, v64[i]);
        assert_int_equal(b.len, varlong_size(v64[i]));
        struct reader r;
        rd_init(&r, b.data, b.len);
        assert_true(rd_varlong(&r) == v64[i]);
        buf_free(&b);
    }
    /* Known encodings from the Kafka protocol guide: -1 -> 0x01, 1 -> 0x02. */
    struct buf b;
    buf_init(&b);
    buf_put_varint(&b, -1);
    buf_put_varint(&b, 1);
    assert_int_equal(b.data[0], 0x01);
    assert_int_equal(b.data[1], 0x02);
    buf_free(&b);
}

static void test_varint_malformed(void **state)
{
    uint8_t too_long[11];
    memset(too_long, 0xff, sizeof too_long);
    struct reader r;
    rd_init(&r, too_long, sizeof too_long);
    (void)rd_uvarint(&r);
    assert_int_not_equal(r.err, 0);
    rd_init(&r, too_long, 6);
    (void)rd_varint(&r);
    assert_int_not_equal(r.err, 0);
    uint8_t truncated[] = {0x80};
    rd_init(&r, truncated, 1);
    (void)rd_uvarint(&r);
    assert_int_not_equal(r.err, 0);
}

static void test_reader_sticky(void **state)
{
    uint8_t data[] = {0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0xAA};
    struct reader r;
    rd_init(&r, data, sizeof data);
    assert_int_equal(rd_i16(&r), 1);
    assert_int_equal(rd_i32(&r), 2);
    assert_int_equal(rd_i32(&r), 0); /* only one byte left */
    assert_int_not_equal(r.err, 0);
    assert_int_equal(rd_i8(&r), 0); /* sticky: nothing more is read */
    assert_int_equal(rd_remaining(&r), 0);
    struct slice s = rd_bytes(&r, 1);
    assert_null(s.ptr);
}

static void test_bigendian(void **state)
{
    struct buf b;
    buf_init(&b);
    buf_put_i16(&b, -2);
    buf_put_i32(&b, 0x01020304);
    buf_put_i64(&b, -5);
    buf_put_f64(&b, 1.5);
    assert_int_equal(b.data[2], 0x01);
    assert_int_equal(b.data[5], 0x04);
    struct reader r;
    rd_init(&r, b.data, b.len);
    assert_int_equal(rd_i16(&r), -2);
    assert_int_equal(rd_i32(&r), 0x01020304);
    assert_true(rd_i64(&r) == -5);
    assert_true(rd_f64(&r) == 1.5);
    buf_patch_i32(&b, 2, 7);
    rd_init(&r, b.data + 2, 4);
    assert_int_equal(rd_i32(&r), 7);
    buf_free(&b);
}

static void test_crc32c(void **state)
{
    const char *check = "123456789";
    assert_int_equal(crc32c(0, check, 9), 0xE3069283u);
    assert_int_equal(crc32c_sw(0, check, 9), 0xE3069283u);
    /* Hardware and table paths agree on every length and alignment. */
    uint8_t data[1024];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len + off <= sizeof data; len += 37)
            assert_int_equal(crc32c(0, data + off, len), crc32c_sw(0, data + off, len));
    /* Incremental equals one-shot. */
    uint32_t part = crc32c(0, data, 100);
    assert_int_equal(crc32c(part, data + 100, 200), crc32c(0, data, 300));
}

/* Deterministic bytes (xorshift64) so a failing length reproduces. */
static void fill_pseudo_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 32);
    }
}

static void assert_crc_matches_sw(uint32_t init, const uint8_t *p, size_t len)
{
    uint32_t got = crc32c(init, p, len), want = crc32c_sw(init, p, len);
    if (got != want)
        fail_msg("crc32c(0x%08x, addr%%8=%u, len=%zu) = 0x%08x, table reference 0x%08x", init,
                 (unsigned)((uintptr_t)p % 8), len, got, want);
}

/* The hardware path splits inputs into three-lane blocks (3 x 256 and 3 x 64 bytes) and
 * combines the lanes with precomputed shift operators; it must equal the table reference
 * for every length across those block and tail boundaries, at every alignment, from any
 * initial crc, on large buffers, and when a message is fed in pieces. */
static void test_crc32c_long(void **state)
{
    enum { SWEEP_LEN = 5000, BIG_LEN = (1 << 20) + 13 };
    uint8_t *data = malloc(BIG_LEN + 8);
    assert_non_null(data);
    fill_pseudo_random(data, BIG_LEN + 8, 42);

    for (size_t len = 0; len <= SWEEP_LEN; len++) {
        size_t off = (len * 3 + len / 8) % 8; /* every alignment for every length mod 8 */
        assert_crc_matches_sw((uint32_t)len * 0x9E3779B9u, data + off, len);
    }

    const size_t big[] = {64 * 1024, 64 * 1024 + 1, 1 << 20, BIG_LEN};
    const size_t offs[] = {0, 1, 3, 7};
    const uint32_t inits[] = {0, 0xFFFFFFFFu, 0x12345678u};
    for (size_t i = 0; i < ARRAY_LEN(big); i++)
        for (size_t k = 0; k < ARRAY_LEN(offs); k++)
            assert_crc_matches_sw(inits[(i + k) % ARRAY_LEN(inits)], data + offs[k], big[i]);

    /* crc of A then B equals crc of A||B, for splits at and around block boundaries. */
    const size_t splits[] = {0, 1, 7, 63, 64, 191, 192, 193, 767, 768, 769, 1000, 2500, 4999};
    uint32_t whole = crc32c_sw(0xDEADBEEFu, data + 5, SWEEP_LEN);
    assert_int_equal(crc32c(0xDEADBEEFu, data + 5, SWEEP_LEN), whole);
    for (size_t i = 0; i < ARRAY_LEN(splits); i++) {
        size_t a = splits[i];
        uint32_t part = crc32c(0xDEADBEEFu, data + 5, a);
        assert_int_equal(crc32c(part, data + 5 + a, SWEEP_LEN - a), whole);
    }

    /* A large buffer fed in uneven pieces (0..3071 bytes) equals the one-shot value. */
    uint32_t chained = 0x0BADF00Du;
    size_t pos = 0, piece = 0;
    while (pos < BIG_LEN) {
        piece = (piece * 1103515245u + 12345u) % 3072;
        size_t n = piece < BIG_LEN - pos ? piece : BIG_LEN - pos;
        chained = crc32c(chained, data + 1 + pos, n);
        pos += n;
    }
    assert_int_equal(chained, crc32c_sw(0x0BADF00Du, data + 1, BIG_LEN));
    free(data);
}

static void test_arena(void **state)
{
    struct arena a;
    arena_init(&a);
    for (int i = 0; i < 1000; i++) {
        uint8_t *p = arena_alloc(&a, (size_t)i + 1);
        assert_true(((uintptr_t)p & 7) == 0);
        for (int k = 0; k <= i; k++)
            assert_int_equal(p[k], 0);
        memset(p, 0xab, (size_t)i + 1);
    }
    void *big = arena_alloc(&a, 100000);
    assert_non_null(big);
    char *s = arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    assert_string_equal(arena_printf(&a, "%s-%d", "topic", 7), "topic-7");
    char wide[300];
    memset(wide, 'x', sizeof wide - 1);
    wide[sizeof wide - 1] = '\0';
    assert_int_equal(strlen(arena_printf(&a, "%s.", wide)), sizeof wide); /* no fixed buffer */
    arena_free(&a);
    arena_free(&a); /* idempotent */
}

static void test_props(void **state)
{
    const char *text = "# comment\n"
                       "! also comment\n"
                       "node.id=1\n"
                       "  listeners = PLAINTEXT://localhost:9092  \n"
                       "log.dirs: /tmp/a\n"
                       "multi=one,\\\n"
                       "     two\n"
                       "spaced value\n"
                       "node.id=2\n"
                       "empty=\n";
    struct props p = {0};
    assert_int_equal(props_parse(&p, text, strlen(text)), 0);
    assert_string_equal(props_get(&p, "node.id"), "2");
    assert_string_equal(props_get(&p, "listeners"), "PLAINTEXT://localhost:9092");
    assert_string_equal(props_get(&p, "log.dirs"), "/tmp/a");
    assert_string_equal(props_get(&p, "multi"), "one,two");
    assert_string_equal(props_get(&p, "spaced"), "value");
    assert_string_equal(props_get(&p, "empty"), "");
    assert_null(props_get(&p, "missing"));
    props_set(&p, "node.id", "3");
    assert_string_equal(props_get(&p, "node.id"), "3");
    props_free(&p);
}

static void test_parse_numbers(void **state)
{
    int64_t v;
    assert_int_equal(parse_i64("123", &v), 0);
    assert_true(v == 123);
    assert_int_equal(parse_i64("-9223372036854775808", &v), 0);
    assert_true(parse_i64("12x", &v) < 0);
    assert_true(parse_i64("", &v) < 0);
    assert_true(parse_i64("99999999999999999999", &v) < 0);
    bool b;
    assert_int_equal(parse_bool("TRUE", &b), 0);
    assert_true(b);
    assert_true(parse_bool("yes", &b) < 0);
}

static void test_hmap(void **state)
{
    struct hmap m;
    hmap_init(&m);
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "topic-%d", i);
        hmap_put(&m, slice_from_cstr(key), (void *)(intptr_t)(i + 1));
    }
    assert_int_equal(m.count, 2000);
    for (int i = 0; i < 2000; i += 2) {
        snprintf(key, sizeof key, "topic-%d", i);
        assert_int_equal((intptr_t)hmap_remove(&m, slice_from_cstr(key)), i + 1);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "topic-%d", i);
        void *v = hmap_get(&m, slice_from_cstr(key));
        if (i % 2)
            assert_int_equal((intptr_t)v, i + 1);
        else
            assert_null(v);
    }
    hmap_put(&m, slice_from_cstr("topic-1"), (void *)(intptr_t)7);
    assert_int_equal((intptr_t)hmap_get(&m, slice_from_cstr("topic-1")), 7);
    size_t it = 0, seen = 0;
    struct slice k;
    void *v;
    while (hmap_next(&m, &it, &k, &v))
        seen++;
    assert_int_equal(seen, 1000);
    hmap_free(&m);
}

/* open_parent_dir opens the directory holding a path, whether or not the path exists. */
static void check_parent(const char *path, const char *parent)
{
    int fd = open_parent_dir(path);
    assert_true(fd >= 0);
    struct stat a, b;
    assert_int_equal(fstat(fd, &a), 0);
    assert_int_equal(stat(parent, &b), 0);
    assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    close(fd);
}

static void test_open_parent_dir(void **state)
{
    (void)state;
    check_parent("/tmp/samsa-no-such-file", "/tmp");
    check_parent("/tmp", "/");
    check_parent("no-such-relative-name", ".");
    assert_int_equal(open_parent_dir("/no-such-dir-samsa/x"), -1);
    assert_int_equal(fsync_dir("/tmp"), 0);
    assert_int_equal(fsync_parent_dir("/tmp/samsa-no-such-file"), 0);
    assert_int_equal(fsync_dir("/no-such-dir-samsa"), -ENOENT);
    assert_int_equal(fsync_parent_dir("/no-such-dir-samsa/x"), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uvarint_roundtrip),
        cmocka_unit_test(test_zigzag),
        cmocka_unit_test(test_varint_malformed),
        cmocka_unit_test(test_reader_sticky),
        cmocka_unit_test(test_bigendian),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_open_parent_dir),
        cmocka_unit_test(test_crc32c_long),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_props),
        cmocka_unit_test(test_parse_numbers),
        cmocka_unit_test(test_hmap),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
