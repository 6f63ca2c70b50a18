/* `samsa bench`, reading back: one consumer assigned to every partition checks each
 * record it reads against the payload format (bench_stats.h): written by this workload
 * and intact, routed to partition record mod partitions, seen once (a bitmap over record
 * numbers), in order per partition and producer; and, with --concurrent, measures
 * end-to-end latency from the send time in the payload. */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages per rd_kafka_consume_batch_queue call. */
#define CONSUME_BATCH 1024
/* After producing is over, a consumer that receives nothing for this long gives up and
 * counts what it has not seen as missing. It is only a fallback: normally the consumer
 * stops as soon as it has read every partition up to the offsets the broker acknowledged. */
#define IDLE_GIVE_UP_NS (10ull * 1000000000ull)

static void check_record(struct consumer *c, const rd_kafka_message_t *m, uint64_t now)
{
    struct bench *b = c->b;
    int32_t part = m->partition;
    if (part < 0 || part >= b->npart) {
        return; /* only our partitions are assigned */
    }
    if (m->offset >= c->next_offset[part]) {
        c->next_offset[part] = m->offset + 1;
    }
    c->got++;
    if (m->payload == NULL || m->len != (size_t)b->a.record_bytes) {
        c->corrupted++;
        bench_report_once(b, 2, "partition %d offset %lld: value of %zu bytes, expected %lld",
                          (int)part, (long long)m->offset, m->len, (long long)b->a.record_bytes);
        return;
    }
    uint64_t word = bench_payload_seq_word(m->payload);
    uint64_t seq = word & BENCH_SEQ_MASK, producer = word >> BENCH_SEQ_BITS;
    if (producer == BENCH_WARMUP_PRODUCER) {
        c->got--; /* not part of the workload */
        return;
    }
    if (seq >= (uint64_t)b->a.records || producer >= BENCH_MAX_PRODUCERS ||
        bench_partition_of(b, seq) != part || !bench_payload_body_ok(&b->pool, m->payload, seq)) {
        c->corrupted++;
        bench_report_once(b, 2,
                          "partition %d offset %lld: record %llu (producer %llu) is not one "
                          "this workload wrote, or its bytes differ",
                          (int)part, (long long)m->offset, (unsigned long long)seq,
                          (unsigned long long)producer);
        return;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (c->seen[seq >> 3] & bit) {
        c->duplicated++;
        bench_report_once(b, 2, "partition %d offset %lld: record %llu read twice", (int)part,
                          (long long)m->offset, (unsigned long long)seq);
        return;
    }
    c->seen[seq >> 3] |= bit;
    c->distinct++;
    if (b->a.concurrent) {
        uint64_t sent = bench_payload_send_ns(m->payload);
        hist_record(&c->e2e, now > sent ? now - sent : 0);
        if (b->a.deliver_after_ms >= 0) {
            uint64_t due = sent + (uint64_t)b->a.deliver_after_ms * 1000000u;
            hist_record(&c->late, now > due ? now - due : 0);
        }
    }
    int64_t *last = &c->last_seq[(size_t)part * BENCH_MAX_PRODUCERS + producer];
    if ((int64_t)seq < *last) {
        c->disordered++;
        bench_report_once(b, 2,
                          "partition %d offset %lld: record %llu after record %lld of the "
                          "same producer",
                          (int)part, (long long)m->offset, (unsigned long long)seq,
                          (long long)*last);
    } else {
        *last = (int64_t)seq;
    }
}

/* True once every partition has been read up to end_offset and, unless end_offset is
 * known to cover every acknowledged record, every record has been seen. */
static bool consumer_done(const struct consumer *c)
{
    const struct bench *b = c->b;
    if (!b->end_exact && c->distinct < b->a.records) {
        return false;
    }
    for (int i = 0; i < b->npart; i++) {
        if (c->next_offset[i] < b->end_offset[i]) {
            return false;
        }
    }
    return true;
}

int bench_consumer_open(struct bench *b, struct consumer *c)
{
    /* No group: partitions are assign()ed at explicit offsets, nothing is committed.
     * librdkafka still wants a group.id for the consumer queue. auto.offset.reset=error
     * makes a start offset the broker no longer has an error, not a silent skip. */
    const char *base[] = {
        "client.id",
        "samsa-bench",
        "group.id",
        "samsa-bench-unused",
        "enable.auto.commit",
        "false",
        "enable.auto.offset.store",
        "false",
        "enable.partition.eof",
        "true",
        "auto.offset.reset",
        "error",
    };
    const char *settings[sizeof base / sizeof base[0] + 2 * BENCH_MAX_X + 1];
    c->rk = cli_client(
        &b->o, RD_KAFKA_CONSUMER,
        bench_client_settings(b, base, (int)(sizeof base / sizeof base[0]), settings), NULL);
    if (c->rk == NULL) {
        return -1;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(b->npart);
    for (int i = 0; i < b->npart; i++) {
        rd_kafka_topic_partition_list_add(parts, b->a.topic, i)->offset = b->start_offset[i];
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return cli_err("bench: assigning %s: %s", b->a.topic, rd_kafka_err2str(err)), -1;
    }
    return 0;
}

void *bench_consumer_run(void *arg)
{
    struct consumer *c = arg;
    struct bench *b = c->b;
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_message_t *batch[CONSUME_BATCH];
    c->start_ns = c->last_ns = bench_now_ns();
    atomic_store(&c->ready, 1);
    for (;;) {
        /* consume_batch_queue waits until the batch is full or the timeout passes, which
         * at a fixed rate would add up to a whole batch's arrival time to the end-to-end
         * latency. So wait for the first message alone, then take what else is ready. */
        ssize_t n = 0;
        rd_kafka_message_t *first = rd_kafka_consume_queue(q, 100);
        if (first != NULL) {
            batch[0] = first;
            ssize_t more = rd_kafka_consume_batch_queue(q, 0, batch + 1, CONSUME_BATCH - 1);
            n = 1 + (more > 0 ? more : 0);
        }
        /* One reading for the batch: its messages arrived together. */
        uint64_t now = bench_now_ns();
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (m->partition >= 0 && m->partition < b->npart &&
                    m->offset > c->next_offset[m->partition]) {
                    c->next_offset[m->partition] = m->offset;
                }
            } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                bench_report_once(b, 1, "consuming partition %d: %s", (int)m->partition,
                                  rd_kafka_message_errstr(m));
            } else {
                check_record(c, m, now);
                c->last_ns = now;
            }
            rd_kafka_message_destroy(m);
        }
        if (!atomic_load_explicit(&b->produce_done, memory_order_acquire)) {
            continue;
        }
        if (consumer_done(c)) {
            break;
        }
        uint64_t since = c->last_ns > b->produce_done_ns ? c->last_ns : b->produce_done_ns;
        if (now > since && now - since > IDLE_GIVE_UP_NS) {
            c->gave_up = true;
            break;
        }
    }
    rd_kafka_queue_destroy(q);
    return NULL;
}
