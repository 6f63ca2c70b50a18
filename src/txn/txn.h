/*
 * txn: Kafka's transaction coordinator (KIP-98) as a pure state machine. No I/O, no
 * clock, no threads: the server decodes a request into the plain structs below and calls
 * txn_<api>(c, now_ms, req, ctx); the coordinator answers, at once or later, by calling
 * cfg->answer(ctx, answer) exactly once per request (also when its partition is unloaded
 * and when the coordinator is destroyed).
 *
 * Each transactional id's metadata lives in the internal topic __transaction_state, in
 * partition txn_partition_for(id), as Kafka's records (txn_records.c): the coordinator
 * asks cfg->append for one record per transition and applies the transition once
 * txn_append_done says it is durable. One transition per id is in flight at a time; a
 * request that needs another meanwhile gets CONCURRENT_TRANSACTIONS, which clients retry.
 *
 * The life of a transaction (transaction version 1: the client adds partitions):
 *
 *   InitProducerId   -> Empty (a new producer id, or the epoch bumped: zombies fenced)
 *   AddPartitions    -> Ongoing (partitions recorded before the client writes to them)
 *   EndTxn           -> PrepareCommit / PrepareAbort, answered once durable; then
 *                       cfg->write_markers writes the markers to every partition, and
 *                       txn_markers_done -> CompleteCommit / CompleteAbort.
 *
 * Transaction version 2 (KIP-890 part 2: EndTxn v5, client_version 2): the partitions'
 * leaders add them (txn_add_partitions from a broker, as the client's first batch or
 * transactional offsets arrive), and every EndTxn bumps the epoch: the Prepare state,
 * its markers and the Complete state carry epoch + 1, which the answer hands to the
 * client for its next transaction. A retried EndTxn comes with the epoch before the
 * bump. An abort may also end no transaction at all (a client's way to a new epoch). An
 * epoch that would pass 32767 moves the id to a new producer id (next_producer_id in the
 * Prepare state, the producer id from Complete on; the old one stays prev_producer_id).
 *
 * An Ongoing transaction older than its timeout is aborted by txn_tick with the epoch
 * bumped (the producer is fenced: Kafka's behaviour); an InitProducerId finding one
 * Ongoing does the same and answers CONCURRENT_TRANSACTIONS until it is complete. A
 * partition loaded with transactions in PrepareCommit/PrepareAbort writes their markers
 * again (markers are idempotent for the partitions). Ids idle for
 * transactional.id.expiration.ms are removed (a tombstone).
 *
 * Asynchronous services the server provides, each answered exactly once, never from
 * inside the call that asked (the server queues): cfg->append -> txn_append_done,
 * cfg->new_producer_id -> txn_producer_id_done, cfg->write_markers -> txn_markers_done.
 * Tokens are the coordinator's; after txn_coordinator_destroy none may be answered.
 *
 * Ownership: requests and their bytes are borrowed for the call; answers point into
 * coordinator memory valid during the callback. Error codes are Kafka's numbers.
 */
#ifndef SAMSA_TXN_H
#define SAMSA_TXN_H

#include "base/base.h"

enum {
    TXN_ERR_NONE = 0,
    TXN_ERR_UNKNOWN_SERVER_ERROR = -1,
    TXN_ERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    TXN_ERR_COORDINATOR_NOT_AVAILABLE = 15,
    TXN_ERR_NOT_COORDINATOR = 16,
    TXN_ERR_INVALID_REQUEST = 42,
    TXN_ERR_INVALID_PRODUCER_EPOCH = 47,
    TXN_ERR_INVALID_TXN_STATE = 48,
    TXN_ERR_INVALID_PRODUCER_ID_MAPPING = 49,
    TXN_ERR_INVALID_TRANSACTION_TIMEOUT = 50,
    TXN_ERR_CONCURRENT_TRANSACTIONS = 51,
    TXN_ERR_PRODUCER_FENCED = 90,
    TXN_ERR_TRANSACTIONAL_ID_NOT_FOUND = 105,
};

/* Kafka's TransactionState ids (the TransactionStatus byte of the record). */
enum txn_state {
    TXN_EMPTY = 0,
    TXN_ONGOING = 1,
    TXN_PREPARE_COMMIT = 2,
    TXN_PREPARE_ABORT = 3,
    TXN_COMPLETE_COMMIT = 4,
    TXN_COMPLETE_ABORT = 5,
    TXN_DEAD = 6,
    TXN_PREPARE_EPOCH_FENCE = 7,
};
/* "Empty", "Ongoing", "PrepareCommit", ... as DescribeTransactions reports them. */
const char *txn_state_name(enum txn_state s);

struct txn_partition {
    struct slice topic;
    int32_t partition;
};

/* One transactional id's metadata: what a record of __transaction_state holds. */
struct txn_meta {
    struct slice transactional_id;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    enum txn_state state;
    const struct txn_partition *partitions; /* sorted by topic, then partition */
    size_t n_partitions;
    int64_t last_update_ms;
    int64_t start_ms;         /* of the transaction, -1 when none */
    int64_t prev_producer_id; /* before the last epoch overflow, else -1 */
    int64_t next_producer_id; /* a Prepare state's id from Complete on (overflow), else -1 */
    int16_t client_version;   /* the transaction version its client uses (2: epoch bumps) */
};

/* ---- records of __transaction_state (txn_records.c) ----
 * Key: Version int16 = 0, TransactionalId string.
 * Value, version 0 or 1 (flexible: written when a tagged field is needed):
 *   ProducerId int64, ProducerEpoch int16, TransactionTimeoutMs int32,
 *   TransactionStatus int8, TransactionPartitions [Topic string, PartitionIds [int32]]
 *   (nullable), TransactionLastUpdateTimestampMs int64, TransactionStartTimestampMs int64;
 *   v1 tagged: 0 PreviousProducerId int64, 1 NextProducerId int64,
 *   2 ClientTransactionVersion int16 (3, NextProducerEpoch, is read past). */
void txn_record_encode(struct buf *key, struct buf *value, const struct txn_meta *m);
/* Decodes a key: 0 or -1 (malformed). id borrows key's bytes. */
int txn_record_decode_key(struct slice key, struct slice *transactional_id);
/* Decodes a value into m (transactional_id not set). Partitions are allocated in *parts
 * (caller frees; NULL when none). 0 or -1 (malformed). */
int txn_record_decode_value(struct slice value, struct txn_meta *m, struct txn_partition **parts);

/* ---- requests ---- */
struct txn_init_req {
    struct slice transactional_id;
    int32_t timeout_ms;
    int64_t producer_id; /* v3+ (KIP-360): the producer's current id and epoch, or -1/-1 */
    int16_t producer_epoch;
};
/* AddPartitionsToTxn v0-v3 and AddOffsetsToTxn's one partition (client_version 0), or a
 * partition's leader adding it for a transaction version 2 client (client_version 2:
 * AddPartitionsToTxn v4+ without VerifyOnly). */
struct txn_add_req {
    struct slice transactional_id;
    int64_t producer_id;
    int16_t producer_epoch;
    const struct txn_partition *partitions;
    size_t n_partitions;
    int16_t client_version;
};
struct txn_end_req {
    struct slice transactional_id;
    int64_t producer_id;
    int16_t producer_epoch;
    bool commit;
    int16_t client_version; /* 2 from EndTxn v5+: the epoch is bumped */
};

struct txn_answer {
    int16_t error;
    int64_t producer_id; /* InitProducerId, EndTxn of transaction version 2; else -1 */
    int16_t producer_epoch;
};

struct txn_config {
    int32_t partitions;       /* of __transaction_state */
    int32_t max_timeout_ms;   /* transaction.max.timeout.ms */
    int64_t id_expiration_ms; /* transactional.id.expiration.ms */
    int64_t
        abort_check_interval_ms; /* transaction.abort.timed.out.transaction.cleanup.interval.ms */
    int64_t
        expiration_check_interval_ms; /* transaction.remove.expired.transaction.cleanup.interval.ms */
    void *arg;
    /* One record (key/value borrowed for the call; value.ptr NULL: a tombstone) for
     * partition of __transaction_state. */
    void (*append)(void *arg, int32_t partition, struct slice key, struct slice value, void *token);
    /* A fresh producer id, from the broker's blocks. */
    void (*new_producer_id)(void *arg, void *token);
    /* Markers ending producer_id's transaction (epoch, commit or abort, the client's
     * transaction version) in each of parts (borrowed for the call), written by the
     * coordinator of state_partition: the server retries what fails until each is
     * written or its topic is gone, then calls txn_markers_done. */
    void (*write_markers)(void *arg, int32_t state_partition, int64_t producer_id,
                          int16_t producer_epoch, bool commit, int16_t client_version,
                          const struct txn_partition *parts, size_t n, void *token);
    void (*answer)(void *ctx, const struct txn_answer *a);
};

struct txn_coordinator;
/* cfg is copied. */
struct txn_coordinator *txn_coordinator_new(const struct txn_config *cfg);
/* Answers every waiting request with NOT_COORDINATOR and frees. NULL ok. */
void txn_coordinator_destroy(struct txn_coordinator *c);

/* cfg->arg, as given at creation. */
void *txn_coordinator_arg(const struct txn_coordinator *c);

/* Kafka's partitionFor: abs(javaHashCode(id)) % partitions. */
int32_t txn_partition_for(const struct txn_coordinator *c, struct slice transactional_id);

void txn_init_producer_id(struct txn_coordinator *c, int64_t now_ms, const struct txn_init_req *r,
                          void *ctx);
void txn_add_partitions(struct txn_coordinator *c, int64_t now_ms, const struct txn_add_req *r,
                        void *ctx);
void txn_end(struct txn_coordinator *c, int64_t now_ms, const struct txn_end_req *r, void *ctx);

/* Asynchronous completions (see the top). error: Kafka's code of the append. */
void txn_append_done(struct txn_coordinator *c, int64_t now_ms, void *token, int16_t error);
/* producer_id < 0 with an error: none could be had (the request is answered with it). */
void txn_producer_id_done(struct txn_coordinator *c, int64_t now_ms, void *token, int16_t error,
                          int64_t producer_id);
void txn_markers_done(struct txn_coordinator *c, int64_t now_ms, void *token);

/* Loading a partition of __transaction_state this node now leads: begin, every record
 * in offset order (value.ptr NULL: tombstone), end. load_record returns -1 for a
 * malformed record (skipped). */
void txn_load_begin(struct txn_coordinator *c, int32_t partition);
int txn_load_record(struct txn_coordinator *c, int32_t partition, struct slice key,
                    struct slice value);
void txn_load_end(struct txn_coordinator *c, int64_t now_ms, int32_t partition);
/* No longer the partition's leader: its ids are forgotten and their waiting requests
 * answered NOT_COORDINATOR. */
void txn_unload(struct txn_coordinator *c, int32_t partition);

void txn_tick(struct txn_coordinator *c, int64_t now_ms);
int64_t txn_next_deadline(const struct txn_coordinator *c);

/* KIP-890 part 1: may producer (id, epoch) of transactional_id write a transactional
 * batch that opens its transaction in partition? TXN_ERR_NONE when the id's transaction
 * is Ongoing with that partition added; INVALID_PRODUCER_ID_MAPPING / PRODUCER_FENCED
 * when the producer is not the id's; INVALID_TXN_STATE otherwise (a late batch of a
 * transaction that ended: it would open one nobody will end); NOT_COORDINATOR /
 * COORDINATOR_LOAD_IN_PROGRESS when this coordinator cannot say. */
int16_t txn_verify(const struct txn_coordinator *c, struct slice transactional_id,
                   int64_t producer_id, int16_t producer_epoch, struct txn_partition partition);

/* Inspection (DescribeTransactions, ListTransactions, tests): the metadata of an id this
 * coordinator holds (TXN_ERR_NONE), TRANSACTIONAL_ID_NOT_FOUND, or NOT_COORDINATOR /
 * COORDINATOR_LOAD_IN_PROGRESS. *out borrows coordinator memory until the next call. */
int16_t txn_describe(const struct txn_coordinator *c, struct slice transactional_id,
                     struct txn_meta *out);
/* Calls fn for every id held (any order). */
void txn_each(const struct txn_coordinator *c, void (*fn)(void *arg, const struct txn_meta *m),
              void *arg);

#endif
