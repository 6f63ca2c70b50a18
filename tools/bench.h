/* Internals of `samsa bench` shared by bench.c (options, producers, the run and its
 * closing line) and bench_consume.c (reading back and checking every record). */
#ifndef SAMSA_TOOLS_BENCH_H
#define SAMSA_TOOLS_BENCH_H

#include "bench_stats.h"
#include "cli.h"

#include <pthread.h>
#include <stdatomic.h>

/* Bounds: the sequence word has 16 bits for the producer, 48 for the record number;
 * per-(partition, producer) order state is npart * BENCH_MAX_PRODUCERS words. */
#define BENCH_MAX_PRODUCERS 64
#define BENCH_MAX_PARTITIONS 100000
#define BENCH_MAX_RECORDS (INT64_C(1) << 40)
#define BENCH_MAX_RECORD_BYTES (16 << 20)
#define BENCH_MAX_X 32

struct bench_args {
    const char *topic; /* NULL: a fresh topic with a generated name, deleted afterwards */
    int64_t records, record_bytes, partitions, replication, producers;
    int64_t linger_ms, batch_bytes, rate, mock_brokers, broker_pid;
    int64_t deliver_after_ms;  /* -1; else each record asks for delivery then (Samsa) */
    int64_t deliver_spread_ms; /* and that much later still, spread over the records */
    int64_t txn_records;       /* 0; else each producer is transactional, committing every
                                  txn_records of its records */
    const char *acks, *compression;
    bool concurrent, produce_only, verify, compressible, spread_records;
    const char *xk[BENCH_MAX_X], *xv[BENCH_MAX_X]; /* -X client settings, from argv */
    char xbuf[BENCH_MAX_X][256];
    int nx;
};

struct consumer {
    struct bench *b;
    rd_kafka_t *rk;
    uint8_t *seen;        /* one bit per record number */
    int64_t *last_seq;    /* [partition][producer]: last record number, -1 none */
    int64_t *next_offset; /* per partition: one past the highest offset read */
    int64_t got, distinct, duplicated, disordered, corrupted;
    struct hist e2e;
    struct hist late; /* --deliver-after: end-to-end latency past the delay */
    uint64_t start_ns, last_ns;
    bool gave_up;
    atomic_int ready; /* set once partitions are assigned (concurrent mode) */
    pthread_t thread;
};

struct bench {
    struct bench_args a;
    struct cli_opts o; /* bootstrap replaced by the mock cluster's, if any */
    struct bench_pool pool;
    int npart;
    int64_t run_records;      /* consecutive records per partition: see bench_partition_of */
    int64_t *start_offset;    /* per partition: where this run's records begin */
    int64_t *end_offset;      /* per partition: one past the last acknowledged record */
    bool end_exact;           /* end_offset bounds every record we wait for */
    atomic_bool produce_done; /* end_offset is final once this is set (release) */
    uint64_t produce_done_ns;
    atomic_bool reported[4]; /* first-error-of-a-kind messages, once each */
};

/* The partition of record number seq: runs of b->run_records (one batch.size worth)
 * consecutive records per partition, partitions in turn, the way a Kafka producer's
 * sticky partitioner sends keyless records one batch at a time. (Routing record by
 * record makes the client fill npart batches at once; on 8 partitions that cost
 * librdkafka a third of its throughput on this machine.) The consumer checks it. */
static inline int32_t bench_partition_of(const struct bench *b, uint64_t seq)
{
    return (int32_t)((seq / (uint64_t)b->run_records) % (uint64_t)b->npart);
}

/* Prints "samsa: bench: " and the message on stderr for the first error of a kind
 * (kinds: 0 delivery, 1 consume, 2 record check, 3 produce call); later ones of the
 * same kind are only counted, and the closing line has the total. Thread-safe. */
void bench_report_once(struct bench *b, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Client settings: base (nbase strings, key/value pairs) followed by the user's -X
 * pairs, so those win; written into buf (room for nbase + 2 * BENCH_MAX_X + 1 entries),
 * NULL-terminated, and returned. The strings are borrowed. */
const char **bench_client_settings(const struct bench *b, const char **base, int nbase,
                                   const char **buf);

/* Creates c's consumer and assigns every partition at b->start_offset. Returns 0 or -1
 * (reason printed). c->rk is owned by the caller afterwards, even on failure. */
int bench_consumer_open(struct bench *b, struct consumer *c);

/* Reads and checks records until every partition is read up to b->end_offset (once
 * b->produce_done is set) or nothing arrives for 10 s; a pthread start routine taking
 * the consumer, also called directly for the sequential mode. */
void *bench_consumer_run(void *consumer);

#endif
