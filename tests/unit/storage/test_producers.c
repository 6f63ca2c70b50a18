/* Idempotent producers' state (producers.c): Kafka's sequence and epoch rules, the five
 * remembered batches, sequence wrap-around, expiry, and the producer snapshot format
 * (round trip, every single-byte corruption and truncation, and golden bytes). */
#include "helpers.h"

static struct pstate_batch mk(int64_t id, int16_t epoch, int32_t first_seq, int32_t records,
                              int64_t first_offset, int64_t ts_ms)
{
    return (struct pstate_batch){
        .producer_id = id,
        .epoch = epoch,
        .first_seq = first_seq,
        .last_seq = pstate_seq_add(first_seq, records - 1),
        .first_offset = first_offset,
        .last_offset = first_offset + records - 1,
        .timestamp_ms = ts_ms,
    };
}

static void assert_batch_equal(const struct pstate_batch *a, const struct pstate_batch *b)
{
    assert_int_equal(a->producer_id, b->producer_id);
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->first_seq, b->first_seq);
    assert_int_equal(a->last_seq, b->last_seq);
    assert_int_equal(a->first_offset, b->first_offset);
    assert_int_equal(a->last_offset, b->last_offset);
    assert_int_equal(a->timestamp_ms, b->timestamp_ms);
}

/* Checks b (must pass) and records it, as the log does for an append. */
static void append(struct producer_state *ps, const struct pstate_batch *b)
{
    assert_int_equal(pstate_check(ps, b, NULL), PSTATE_APPEND);
    pstate_update(ps, b);
}

static void test_seq_add_wraps(void **state)
{
    (void)state;
    assert_int_equal(pstate_seq_add(INT32_MAX, 1), 0);
    assert_int_equal(pstate_seq_add(INT32_MAX - 1, 3), 1);
    assert_int_equal(pstate_seq_add(5, 0), 5);
    assert_int_equal(pstate_seq_add(7, 10), 17);
    assert_int_equal(pstate_seq_add(INT32_MAX, INT32_MAX), INT32_MAX - 1);
}

static void test_unknown_producer(void **state)
{
    (void)state;
    struct producer_state *ps = pstate_new();
    struct pstate_batch b0 = mk(1, 0, 0, 1, 0, 0), b17 = mk(1, 0, 17, 1, 0, 0);
    assert_int_equal(pstate_check(ps, &b0, NULL), PSTATE_APPEND);
    assert_int_equal(pstate_check(ps, &b17, NULL), PSTATE_APPEND);
    assert_int_equal(pstate_count(ps), 0); /* check changes nothing */
    struct pstate_batch out;
    assert_false(pstate_last(ps, 1, &out));
    pstate_free(ps);
    pstate_free(NULL);
}

static void test_sequence_and_duplicates(void **state)
{
    (void)state;
    struct producer_state *ps = pstate_new();
    /* seven batches of 3 records: sequences 0-2, 3-5, ..., 18-20; offsets 100.. */
    struct pstate_batch b[7];
    for (int i = 0; i < 7; i++) {
        b[i] = mk(42, 0, 3 * i, 3, 100 + 10 * i, 1000 + i);
        append(ps, &b[i]);
    }
    assert_int_equal(pstate_count(ps), 1);
    struct pstate_batch last;
    assert_true(pstate_last(ps, 42, &last));
    assert_batch_equal(&last, &b[6]);

    /* next in sequence (21) accepted; a gap (22) is not */
    struct pstate_batch next = mk(42, 0, 21, 2, 0, 0), gap = mk(42, 0, 22, 2, 0, 0);
    assert_int_equal(pstate_check(ps, &next, NULL), PSTATE_APPEND);
    assert_int_equal(pstate_check(ps, &gap, NULL), PSTATE_BAD_SEQUENCE);

    /* each of the newest five, re-sent (offsets unknown to the client), is a duplicate
     * answered with the stored offsets */
    for (int i = 2; i < 7; i++) {
        struct pstate_batch retry = b[i], dup;
        retry.first_offset = retry.last_offset = -1;
        memset(&dup, 0, sizeof dup);
        assert_int_equal(pstate_check(ps, &retry, &dup), PSTATE_DUPLICATE);
        assert_batch_equal(&dup, &b[i]);
        assert_int_equal(pstate_check(ps, &retry, NULL), PSTATE_DUPLICATE);
    }
    /* the sixth-newest and older are forgotten: not duplicates, not in sequence */
    assert_int_equal(pstate_check(ps, &b[1], NULL), PSTATE_BAD_SEQUENCE);
    assert_int_equal(pstate_check(ps, &b[0], NULL), PSTATE_BAD_SEQUENCE);

    /* overlapping a stored batch without being equal to it */
    struct pstate_batch same_first = mk(42, 0, 9, 2, 0, 0); /* 9-10 vs 9-11 */
    struct pstate_batch same_last = mk(42, 0, 10, 2, 0, 0); /* 10-11 vs 9-11 */
    struct pstate_batch spanning = mk(42, 0, 9, 6, 0, 0);   /* 9-14 vs 9-11, 12-14 */
    assert_int_equal(pstate_check(ps, &same_first, NULL), PSTATE_BAD_SEQUENCE);
    assert_int_equal(pstate_check(ps, &same_last, NULL), PSTATE_BAD_SEQUENCE);
    assert_int_equal(pstate_check(ps, &spanning, NULL), PSTATE_BAD_SEQUENCE);

    /* another producer is independent */
    struct pstate_batch other = mk(43, 0, 5, 1, 200, 0);
    append(ps, &other);
    assert_int_equal(pstate_count(ps), 2);
    assert_int_equal(pstate_check(ps, &next, NULL), PSTATE_APPEND);
    pstate_free(ps);
}

static void test_epochs(void **state)
{
    (void)state;
    struct producer_state *ps = pstate_new();
    struct pstate_batch e3a = mk(7, 3, 0, 3, 0, 0), e3b = mk(7, 3, 3, 3, 3, 0);
    append(ps, &e3a);
    append(ps, &e3b);

    /* an older epoch is fenced, whatever its sequence (even a stored batch's) */
    struct pstate_batch old_next = mk(7, 2, 6, 1, 0, 0), old_dup = e3b;
    old_dup.epoch = 2;
    assert_int_equal(pstate_check(ps, &old_next, NULL), PSTATE_BAD_EPOCH);
    assert_int_equal(pstate_check(ps, &old_dup, NULL), PSTATE_BAD_EPOCH);
    /* epochs are signed: -1 (none) is older than 3 */
    struct pstate_batch no_epoch = mk(7, -1, 6, 1, 0, 0);
    assert_int_equal(pstate_check(ps, &no_epoch, NULL), PSTATE_BAD_EPOCH);

    /* a newer epoch must restart at sequence 0 */
    struct pstate_batch e4_at3 = mk(7, 4, 3, 3, 0, 0), e4_at6 = mk(7, 4, 6, 1, 0, 0);
    assert_int_equal(pstate_check(ps, &e4_at3, NULL), PSTATE_BAD_SEQUENCE);
    assert_int_equal(pstate_check(ps, &e4_at6, NULL), PSTATE_BAD_SEQUENCE);
    struct pstate_batch e4 = mk(7, 4, 0, 1, 6, 0);
    append(ps, &e4);
    struct pstate_batch last;
    assert_true(pstate_last(ps, 7, &last));
    assert_int_equal(last.epoch, 4);

    /* the epoch-3 batches are gone: re-sent they are fenced, and their sequences under
     * epoch 4 are not duplicates */
    assert_int_equal(pstate_check(ps, &e3a, NULL), PSTATE_BAD_EPOCH);
    assert_int_equal(pstate_check(ps, &e3b, NULL), PSTATE_BAD_EPOCH);
    struct pstate_batch e4_0to2 = mk(7, 4, 0, 3, 0, 0), e4_3to5 = mk(7, 4, 3, 3, 0, 0);
    assert_int_equal(pstate_check(ps, &e4_0to2, NULL), PSTATE_BAD_SEQUENCE);
    assert_int_equal(pstate_check(ps, &e4_3to5, NULL), PSTATE_BAD_SEQUENCE);
    struct pstate_batch e4_next = mk(7, 4, 1, 1, 0, 0);
    assert_int_equal(pstate_check(ps, &e4_next, NULL), PSTATE_APPEND);

    /* replay takes the log as it is: an older epoch there resets the producer to it */
    struct pstate_batch replayed = mk(7, 2, 50, 1, 10, 0);
    pstate_update(ps, &replayed);
    assert_true(pstate_last(ps, 7, &last));
    assert_batch_equal(&last, &replayed);
    assert_int_equal(pstate_check(ps, &e4, NULL), PSTATE_APPEND); /* newer epoch, seq 0 */
    pstate_free(ps);
}

static void test_wrap(void **state)
{
    (void)state;
    struct producer_state *ps = pstate_new();
    struct pstate_batch top = mk(1, 0, INT32_MAX - 2, 3, 0, 0);
    assert_int_equal(top.last_seq, INT32_MAX);
    append(ps, &top);
    struct pstate_batch zero = mk(1, 0, 0, 2, 3, 0), one = mk(1, 0, 1, 1, 3, 0);
    assert_int_equal(pstate_check(ps, &one, NULL), PSTATE_BAD_SEQUENCE);
    append(ps, &zero);
    /* a batch that itself wraps: INT32_MAX-1 .. 1 after 2 .. INT32_MAX-2 */
    struct producer_state *ps2 = pstate_new();
    struct pstate_batch before = mk(2, 0, 2, INT32_MAX - 3, 0, 0);
    assert_int_equal(before.last_seq, INT32_MAX - 2);
    append(ps2, &before);
    struct pstate_batch wraps = mk(2, 0, INT32_MAX - 1, 4, INT32_MAX, 0);
    assert_int_equal(wraps.last_seq, 1);
    append(ps2, &wraps);
    struct pstate_batch after = mk(2, 0, 2, 1, 0, 0), not_after = mk(2, 0, INT32_MAX, 1, 0, 0);
    assert_int_equal(pstate_check(ps2, &after, NULL), PSTATE_APPEND);
    assert_int_equal(pstate_check(ps2, &not_after, NULL), PSTATE_BAD_SEQUENCE);
    assert_int_equal(pstate_check(ps2, &wraps, NULL), PSTATE_DUPLICATE);
    pstate_free(ps);
    pstate_free(ps2);
}

static void test_expire(void **state)
{
    (void)state;
    struct producer_state *ps = pstate_new();
    struct pstate_batch a = mk(1, 0, 0, 1, 0, 1000), b = mk(2, 0, 0, 1, 1, 5000);
    /* the newest batch's timestamp counts, not the oldest's */
    struct pstate_batch a_old = mk(3, 0, 0, 1, 2, 100), a_new = mk(3, 0, 1, 1, 3, 6000);
    pstate_update(ps, &a);
    pstate_update(ps, &b);
    pstate_update(ps, &a_old);
    pstate_update(ps, &a_new);
    assert_int_equal(pstate_expire(ps, 7000, 3000), 1);
    struct pstate_batch out;
    assert_false(pstate_last(ps, 1, &out));
    assert_true(pstate_last(ps, 2, &out));
    assert_batch_equal(&out, &b);
    assert_true(pstate_last(ps, 3, &out));
    assert_int_equal(pstate_count(ps), 2);
    /* expired means unknown: any sequence is accepted again */
    struct pstate_batch a_again = mk(1, 0, 99, 1, 0, 0);
    assert_int_equal(pstate_check(ps, &a_again, NULL), PSTATE_APPEND);
    /* "older than now - expiration": exactly at the cutoff stays */
    assert_int_equal(pstate_expire(ps, 8000, 3000), 0);
    assert_int_equal(pstate_expire(ps, 8001, 3000), 1);
    assert_false(pstate_last(ps, 2, &out));
    assert_int_equal(pstate_expire(ps, INT64_MIN, INT64_MAX), 0); /* no overflow */
    assert_int_equal(pstate_expire(ps, INT64_MAX, 0), 1);
    assert_int_equal(pstate_count(ps), 0);
    pstate_free(ps);
}

/* Several producers, added in no particular id order, with several batches each. */
static struct producer_state *sample_state(void)
{
    struct producer_state *ps = pstate_new();
    struct pstate_batch batches[] = {
        mk(9, 0, 0, 3, 0, 1000),
        mk(1, 5, 0, 1, 3, 1001),
        mk(9, 0, 3, 3, 4, 1002),
        mk((int64_t)1 << 40, 32767, INT32_MAX - 1, 4, 7, -1), /* wraps to 1 */
        mk(0, 0, 10, 5, 11, INT64_MAX),
        mk(1, 5, 1, 2, 16, 1003),
        mk(INT64_MAX, -1, 0, 1, 18, 0),
    };
    for (size_t i = 0; i < ARRAY_LEN(batches); i++)
        pstate_update(ps, &batches[i]);
    return ps;
}

static const int64_t sample_ids[] = {0, 1, 9, (int64_t)1 << 40, INT64_MAX};

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    struct producer_state *ps = sample_state();
    struct buf enc;
    buf_init(&enc);
    pstate_encode_snapshot(ps, &enc);
    assert_int_equal(enc.len, 10 + 46 * ARRAY_LEN(sample_ids));
    /* entries in ascending producer id */
    for (size_t i = 0; i < ARRAY_LEN(sample_ids); i++)
        assert_int_equal((int64_t)be64_read(enc.data + 10 + 46 * i), sample_ids[i]);

    /* decoding replaces what was there */
    struct producer_state *back = pstate_new();
    struct pstate_batch stale = mk(555, 0, 0, 1, 0, 0);
    pstate_update(back, &stale);
    assert_int_equal(pstate_decode_snapshot(back, enc.data, enc.len), 0);
    assert_int_equal(pstate_count(back), ARRAY_LEN(sample_ids));
    struct pstate_batch x, y;
    assert_false(pstate_last(back, 555, &x));
    for (size_t i = 0; i < ARRAY_LEN(sample_ids); i++) {
        assert_true(pstate_last(ps, sample_ids[i], &x));
        assert_true(pstate_last(back, sample_ids[i], &y));
        assert_batch_equal(&x, &y);
        /* a retry of the newest batch is still recognised, with its offsets */
        struct pstate_batch dup;
        assert_int_equal(pstate_check(back, &x, &dup), PSTATE_DUPLICATE);
        assert_batch_equal(&dup, &x);
    }
    /* only the newest batch survives a snapshot (as in Kafka) */
    struct pstate_batch older = mk(9, 0, 0, 3, 0, 1000);
    assert_int_equal(pstate_check(ps, &older, NULL), PSTATE_DUPLICATE);
    assert_int_equal(pstate_check(back, &older, NULL), PSTATE_BAD_SEQUENCE);

    /* re-encoding gives the same bytes, appended after what the buffer holds */
    struct buf again;
    buf_init(&again);
    buf_append(&again, "xy", 2);
    pstate_encode_snapshot(back, &again);
    assert_int_equal(again.len, enc.len + 2);
    assert_memory_equal(again.data + 2, enc.data, enc.len);

    /* an empty state round-trips too */
    struct producer_state *empty = pstate_new();
    buf_reset(&again);
    pstate_encode_snapshot(empty, &again);
    assert_int_equal(again.len, 10);
    assert_int_equal(pstate_decode_snapshot(back, again.data, again.len), 0);
    assert_int_equal(pstate_count(back), 0);

    buf_free(&enc);
    buf_free(&again);
    pstate_free(ps);
    pstate_free(back);
    pstate_free(empty);
}

/* Decodes into a state that holds something, so that "left empty" is observable. */
static int decode_into_full(const uint8_t *p, size_t len)
{
    struct producer_state *ps = sample_state();
    int rc = pstate_decode_snapshot(ps, p, len);
    if (rc != 0)
        assert_int_equal(pstate_count(ps), 0);
    pstate_free(ps);
    return rc;
}

/* Rewrites the CRC so that only the semantic checks can catch an edit. */
static void fix_crc(uint8_t *p, size_t len)
{
    be32_write(p + 2, crc32c(0, p + 6, len - 6));
}

static void test_snapshot_corruption(void **state)
{
    (void)state;
    struct producer_state *ps = sample_state();
    struct buf enc;
    buf_init(&enc);
    pstate_encode_snapshot(ps, &enc);
    uint8_t *copy = malloc(enc.len + 1);

    static const uint8_t flips[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
    for (size_t i = 0; i < enc.len; i++) {
        for (size_t f = 0; f < ARRAY_LEN(flips); f++) {
            memcpy(copy, enc.data, enc.len);
            copy[i] ^= flips[f];
            assert_int_equal(decode_into_full(copy, enc.len), STORAGE_ERR_CORRUPT);
        }
    }
    for (size_t n = 0; n < enc.len; n++)
        assert_int_equal(decode_into_full(enc.data, n), STORAGE_ERR_CORRUPT);
    assert_int_equal(decode_into_full(NULL, 0), STORAGE_ERR_CORRUPT);
    memcpy(copy, enc.data, enc.len);
    copy[enc.len] = 0;
    assert_int_equal(decode_into_full(copy, enc.len + 1), STORAGE_ERR_CORRUPT);
    assert_int_equal(decode_into_full(enc.data, enc.len), 0); /* the copy itself is fine */

    /* Edits with a matching CRC. Entry 0 (producer 0) starts at 10: ProducerId +0,
     * Epoch +8, LastSequence +10, LastOffset +14, OffsetDelta +22. */
    struct {
        size_t at;
        int width; /* 2, 4 or 8 bytes */
        int64_t value;
        int rc;
    } edits[] = {
        {0, 2, 2, STORAGE_ERR_CORRUPT},                   /* version 2 */
        {0, 2, 0, STORAGE_ERR_CORRUPT},                   /* version 0 */
        {6, 4, -1, STORAGE_ERR_CORRUPT},                  /* negative count */
        {6, 4, 4, STORAGE_ERR_CORRUPT},                   /* count short of entries */
        {6, 4, 6, STORAGE_ERR_CORRUPT},                   /* count past the end */
        {10, 8, -1, STORAGE_ERR_CORRUPT},                 /* producer id < 0 */
        {10, 8, 1, STORAGE_ERR_CORRUPT},                  /* producer 1 twice */
        {10 + 22, 4, -1, STORAGE_ERR_CORRUPT},            /* negative OffsetDelta */
        {10 + 14, 8, INT64_MIN + 2, STORAGE_ERR_CORRUPT}, /* first offset overflows */
        {10 + 10, 4, INT32_MIN, STORAGE_ERR_CORRUPT},     /* no sequence reaches it */
        {10 + 8, 2, -7, 0},                               /* any epoch is fine */
        {10, 8, 12345, 0},                                /* unsorted ids are fine */
    };
    for (size_t e = 0; e < ARRAY_LEN(edits); e++) {
        memcpy(copy, enc.data, enc.len);
        uint8_t *at = copy + edits[e].at;
        if (edits[e].width == 2)
            be16_write(at, (uint16_t)edits[e].value);
        else if (edits[e].width == 4)
            be32_write(at, (uint32_t)edits[e].value);
        else
            be64_write(at, (uint64_t)edits[e].value);
        fix_crc(copy, enc.len);
        assert_int_equal(decode_into_full(copy, enc.len), edits[e].rc);
    }
    free(copy);
    buf_free(&enc);
    pstate_free(ps);
}

static void test_snapshot_golden(void **state)
{
    (void)state;
    struct producer_state *ps = pstate_new();
    struct pstate_batch b = {
        .producer_id = 7,
        .epoch = 2,
        .first_seq = 10,
        .last_seq = 14,
        .first_offset = 100,
        .last_offset = 104,
        .timestamp_ms = 123456,
    };
    pstate_update(ps, &b);
    uint8_t expected[] = {
        0x00, 0x01,                                     /* Version 1 */
        0x00, 0x00, 0x00, 0x00,                         /* Crc, filled below */
        0x00, 0x00, 0x00, 0x01,                         /* Count 1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, /* ProducerId 7 */
        0x00, 0x02,                                     /* Epoch 2 */
        0x00, 0x00, 0x00, 0x0e,                         /* LastSequence 14 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, /* LastOffset 104 */
        0x00, 0x00, 0x00, 0x04,                         /* OffsetDelta 4 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xe2, 0x40, /* Timestamp 123456 */
        0xff, 0xff, 0xff, 0xff,                         /* CoordinatorEpoch -1 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* CurrentTxnFirstOffset -1 */
    };
    be32_write(expected + 2, crc32c(0, expected + 6, sizeof expected - 6));
    struct buf enc;
    buf_init(&enc);
    pstate_encode_snapshot(ps, &enc);
    assert_int_equal(enc.len, sizeof expected);
    assert_memory_equal(enc.data, expected, sizeof expected);

    /* and the hand-written bytes decode to the batch */
    struct producer_state *back = pstate_new();
    assert_int_equal(pstate_decode_snapshot(back, expected, sizeof expected), 0);
    struct pstate_batch out;
    assert_true(pstate_last(back, 7, &out));
    assert_batch_equal(&out, &b);
    buf_free(&enc);
    pstate_free(ps);
    pstate_free(back);
}

static void test_clear(void **state)
{
    (void)state;
    struct producer_state *ps = sample_state();
    assert_int_equal(pstate_count(ps), ARRAY_LEN(sample_ids));
    pstate_clear(ps);
    assert_int_equal(pstate_count(ps), 0);
    struct pstate_batch out, again = mk(9, 0, 77, 1, 0, 0);
    assert_false(pstate_last(ps, 9, &out));
    assert_int_equal(pstate_check(ps, &again, NULL), PSTATE_APPEND);
    append(ps, &again); /* usable after clearing */
    assert_int_equal(pstate_count(ps), 1);
    pstate_free(ps);
}

/* pstate_list: each producer's newest batch, ascending id, at most max copied. */
static void test_list(void **state)
{
    (void)state;
    struct producer_state *ps = pstate_new();
    struct pstate_batch b9 = mk(9, 1, 0, 2, 0, 10), b3 = mk(3, 0, 0, 1, 2, 20),
                        b3n = mk(3, 0, 1, 4, 3, 30);
    append(ps, &b9);
    append(ps, &b3);
    append(ps, &b3n);
    struct pstate_batch out[2];
    assert_int_equal(pstate_list(ps, out, 2), 2);
    assert_batch_equal(&out[0], &b3n);
    assert_batch_equal(&out[1], &b9);
    assert_int_equal(pstate_list(ps, out, 1), 2);
    assert_batch_equal(&out[0], &b3n);
    assert_int_equal(pstate_list(ps, NULL, 0), 2);
    pstate_free(ps);
}

/* Transactions: open ones ordered by first offset, markers ending them, the epoch a
 * marker sets, expiry sparing open ones, and the snapshot keeping them. */
static void test_transactions(void **state)
{
    (void)state;
    struct producer_state *ps = pstate_new();
    struct pstate_batch a = mk(1, 0, 0, 2, 10, 100), b = mk(2, 0, 0, 1, 12, 100);
    a.transactional = b.transactional = true;
    append(ps, &a);
    append(ps, &b);
    struct pstate_batch a2 = mk(1, 0, 2, 1, 13, 100);
    a2.transactional = true;
    append(ps, &a2); /* still the transaction opened at 10 */
    assert_int_equal(pstate_first_unstable_offset(ps), 10);
    struct pstate_txn open[4];
    assert_int_equal(pstate_open_txns(ps, open, 4), 2);
    assert_int_equal(open[0].producer_id, 1);
    assert_int_equal(open[1].first_offset, 12);
    struct pstate_batch plain = mk(1, 0, 3, 1, 0, 0);
    assert_int_equal(pstate_check(ps, &plain, NULL), PSTATE_BAD_TXN_STATE);

    /* The snapshot keeps open transactions and coordinator epochs. */
    struct buf snap;
    buf_init(&snap);
    pstate_encode_snapshot(ps, &snap);
    struct producer_state *back = pstate_new();
    assert_int_equal(pstate_decode_snapshot(back, snap.data, snap.len), 0);
    assert_int_equal(pstate_first_unstable_offset(back), 10);
    assert_int_equal(pstate_open_txns(back, open, 4), 2);
    assert_int_equal(open[1].producer_id, 2);
    pstate_free(back);
    buf_free(&snap);

    /* Expiry spares producers in a transaction. */
    assert_int_equal(pstate_expire(ps, 1000000, 10), 0);

    struct pstate_marker m = {
        .producer_id = 1, .epoch = 0, .coordinator_epoch = 3, .offset = 14, .timestamp_ms = 200};
    assert_int_equal(pstate_check_marker(ps, &m), PSTATE_APPEND);
    struct pstate_txn ended;
    assert_true(pstate_end_txn(ps, &m, &ended));
    assert_int_equal(ended.first_offset, 10);
    assert_int_equal(ended.last_offset, 14);
    assert_int_equal(ended.last_stable_offset, 12); /* producer 2's is still open */
    assert_int_equal(pstate_first_unstable_offset(ps), 12);
    assert_false(pstate_end_txn(ps, &m, &ended)); /* nothing open any more */
    struct pstate_batch last;
    assert_true(pstate_last(ps, 1, &last));
    assert_int_equal(last.coordinator_epoch, 3);
    assert_int_equal(last.txn_first_offset, -1);
    assert_int_equal(last.last_seq, 2); /* same epoch: the sequence goes on */
    m.coordinator_epoch = 2;
    assert_int_equal(pstate_check_marker(ps, &m), PSTATE_BAD_COORDINATOR_EPOCH);

    /* A marker with a bumped epoch (fencing) restarts producer 2 at sequence 0. */
    struct pstate_marker fence = {
        .producer_id = 2, .epoch = 1, .coordinator_epoch = 3, .offset = 15, .timestamp_ms = 300};
    assert_true(pstate_end_txn(ps, &fence, &ended));
    assert_int_equal(ended.last_stable_offset, 16);
    assert_int_equal(pstate_first_unstable_offset(ps), -1);
    struct pstate_batch zombie = mk(2, 0, 1, 1, 0, 0), fresh = mk(2, 1, 0, 1, 0, 0),
                        gap = mk(2, 1, 1, 1, 0, 0);
    assert_int_equal(pstate_check(ps, &zombie, NULL), PSTATE_BAD_EPOCH);
    assert_int_equal(pstate_check(ps, &gap, NULL), PSTATE_BAD_SEQUENCE);
    assert_int_equal(pstate_check(ps, &fresh, NULL), PSTATE_APPEND);
    /* ... also after a snapshot round trip of that state. */
    buf_init(&snap);
    pstate_encode_snapshot(ps, &snap);
    back = pstate_new();
    assert_int_equal(pstate_decode_snapshot(back, snap.data, snap.len), 0);
    assert_int_equal(pstate_check(back, &gap, NULL), PSTATE_BAD_SEQUENCE);
    assert_int_equal(pstate_check(back, &fresh, NULL), PSTATE_APPEND);
    pstate_free(back);
    buf_free(&snap);
    pstate_free(ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_add_wraps),
        cmocka_unit_test(test_unknown_producer),
        cmocka_unit_test(test_sequence_and_duplicates),
        cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_corruption),
        cmocka_unit_test(test_snapshot_golden),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_transactions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
