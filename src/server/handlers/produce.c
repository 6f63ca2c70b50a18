/* Produce (key 0), v3-v11: validate and append record batches.
 *
 * Each partition's records are checked before anything is written, in Kafka's order:
 * every batch's framing and magic, the CRC32Cs, then per batch max.message.bytes, the
 * header fields, and the records (framing; keys in compacted topics; timestamps in
 * CreateTime topics against message.timestamp.before/after.max.ms, INVALID_TIMESTAMP).
 * A bad partition gets its error code (with RecordErrors naming refused records) and
 * nothing appended; the others in the request proceed, as in Kafka.
 * Batches of idempotent producers are checked by log_append (sequence, epoch; a retry
 * is answered with the stored batch's offsets, as in Kafka). A topic whose
 * compression.type names a codec gets every batch in that codec (recompressed here).
 * Records with a delivery header (samsa.deliver.*) go to the delay store instead
 * (server/delays.c), answered with its offset.
 * acks=0: no response. acks=1: answered once the batches are in the log (page cache).
 * acks=all (-1): answered once they are fdatasync'd (commit.c, group commit). */
#include "server/internal.h"

#include <string.h>

typedef struct produce_response_responses_partition_responses part_resp;
typedef struct produce_response_responses_partition_responses_record_errors record_error;

/* KIP-951 (v10+): with NOT_LEADER_OR_FOLLOWER, the partition's current leader and epoch,
 * and the endpoints of those leaders, so the client goes there without a Metadata round
 * trip. */
static void add_leader_hints(struct request *req, struct produce_response *resp)
{
    struct server *s = req->srv;
    size_t cap = 0;
    for (int32_t ti = 0; ti < resp->responses_count; ti++)
        cap += (size_t)MAX(resp->responses[ti].partition_responses_count, 0);
    struct produce_response_node_endpoints *eps =
        REQ_ALLOC(req, struct produce_response_node_endpoints, cap ? cap : 1);
    int32_t n = 0;
    for (int32_t ti = 0; ti < resp->responses_count; ti++) {
        struct produce_response_responses *tr = &resp->responses[ti];
        for (int32_t pi = 0; pi < tr->partition_responses_count; pi++) {
            part_resp *pr = &tr->partition_responses[pi];
            if (pr->error_code != KERR_NOT_LEADER_OR_FOLLOWER)
                continue;
            const struct mbroker *b =
                server_partition_leader(s, tr->name, pr->index, &pr->current_leader.leader_id,
                                        &pr->current_leader.leader_epoch);
            bool listed = !b;
            for (int32_t k = 0; k < n && !listed; k++)
                listed = eps[k].node_id == b->node_id;
            if (listed)
                continue;
            produce_response_node_endpoints_init(&eps[n]);
            eps[n].node_id = b->node_id;
            eps[n].host = slice_from_cstr(b->host);
            eps[n].port = b->port;
            eps[n].rack = b->rack ? slice_from_cstr(b->rack) : SLICE_NULL;
            n++;
        }
    }
    if (n > 0) {
        resp->node_endpoints = eps;
        resp->node_endpoints_count = n;
    }
}

/* A produce being answered: its response, and how many answers it still waits for (the
 * handler itself, the acks=all wait, partitions whose records went to another broker's
 * delay store). */
struct txn_check;

struct produce_state {
    struct produce_response resp;
    int16_t acks;
    int waiting;
    /* Partitions whose first transactional batch waits for the coordinator (KIP-890),
     * asked together once the request is read. */
    struct txn_check **checks;
    size_t n_checks, cap_checks;
};

/* No response to carry an error for acks=0: Kafka closes the connection instead, so the
 * client notices and refreshes its metadata. */
static void drop_acks0(struct request *req, struct produce_response *resp)
{
    bool failed = false;
    for (int32_t ti = 0; ti < resp->responses_count; ti++)
        for (int32_t pi = 0; pi < resp->responses[ti].partition_responses_count; pi++)
            failed |= resp->responses[ti].partition_responses[pi].error_code != KERR_NONE;
    struct net_conn *c = failed ? net_reply_conn(req->reply) : NULL;
    request_drop(req);
    if (c) {
        say_info("server", "closing connection from %s: an acks=0 produce failed",
                 net_conn_peer(c));
        net_conn_close(c);
    }
}

void produce_answer_pending(struct request *req)
{
    ((struct produce_state *)req->state)->waiting++;
}

void produce_answer_arrived(struct request *req)
{
    struct produce_state *st = req->state;
    if (--st->waiting > 0)
        return;
    if (st->acks == 0)
        drop_acks0(req, &st->resp);
    else
        REQUEST_RESPOND(req, produce_response, &st->resp);
}

static void acks_all_durable(void *arg)
{
    produce_answer_arrived(arg);
}

/* The timestamps a CreateTime topic accepts at `now`, as Kafka's LogValidator:
 * [now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms],
 * saturated at the int64 range. `on` is false for LogAppendTime topics. */
struct ts_bounds {
    bool on;
    int64_t lo, hi;
};

static struct ts_bounds ts_bounds(const struct topic_settings *cfg, int64_t now)
{
    ASSERT(now >= 0 && cfg->timestamp_before_max_ms >= 0 && cfg->timestamp_after_max_ms >= 0);
    struct ts_bounds b = {.on = cfg->create_time};
    b.lo = now - cfg->timestamp_before_max_ms; /* no overflow: both are >= 0 */
    b.hi = cfg->timestamp_after_max_ms > INT64_MAX - now ? INT64_MAX
                                                         : now + cfg->timestamp_after_max_ms;
    return b;
}

/* A record without a timestamp (-1) is not checked, as in Kafka. */
static bool ts_refused(const struct ts_bounds *b, int64_t ts)
{
    return b->on && ts != -1 && (ts < b->lo || ts > b->hi);
}

/* Whether any record of a batch whose records' timestamps span [min, max] may be
 * refused: the cheap test that keeps the per-record walk (record_errors) off the hot
 * path. */
static bool ts_range_crosses(const struct ts_bounds *b, int64_t min, int64_t max)
{
    return b->on && min <= max && (min < b->lo || max > b->hi);
}

/* The per-record checks of Kafka's LogValidator, on an uncompressed batch that passed
 * batch_scan_records: a compacted topic refuses records without a key (compaction keeps
 * the newest record per key); a CreateTime topic refuses timestamps outside the bounds.
 * Each refused record gets a RecordError (its index in the batch; the key error first,
 * as Kafka reports one per record), and the partition INVALID_TIMESTAMP if any
 * timestamp was refused, else INVALID_RECORD, with an ErrorMessage (v8+), so that
 * clients fail just those records. KERR_NONE when no record is refused: the callers'
 * cheap tests (all keyed, the timestamp range) can only say that one might be. */
static int16_t record_errors(struct request *req, struct partition *p, const uint8_t *batch,
                             const struct batch_info *info, bool check_keys,
                             const struct ts_bounds *bounds, part_resp *out)
{
    record_error *errs = REQ_ALLOC(req, record_error, info->records_count);
    int32_t n = 0, ts_errors = 0;
    struct record_iter it;
    struct record rec;
    record_iter_init(&it, batch, info);
    for (int32_t i = 0; record_iter_next(&it, &rec) > 0; i++) {
        const char *why;
        if (check_keys && !rec.key.ptr) {
            why = arena_printf(&req->arena,
                               "Compacted topic cannot accept message without "
                               "key in topic partition %s-%d.",
                               p->topic, p->index);
        } else if (ts_refused(bounds, rec.timestamp)) {
            why = arena_printf(&req->arena,
                               "Timestamp %lld of message with offset %lld is out "
                               "of range. The timestamp should be within [%lld, %lld]",
                               (long long)rec.timestamp, (long long)rec.offset,
                               (long long)bounds->lo, (long long)bounds->hi);
            ts_errors++;
        } else {
            continue;
        }
        record_error *e = &errs[n++];
        produce_response_responses_partition_responses_record_errors_init(e);
        e->batch_index = i;
        e->batch_index_error_message = slice_from_cstr(why);
    }
    if (n == 0)
        return KERR_NONE;
    out->record_errors = errs;
    out->record_errors_count = n;
    if (ts_errors) {
        out->error_message =
            slice_from_cstr("One or more records have been rejected due to invalid timestamp");
        return KERR_INVALID_TIMESTAMP;
    }
    out->error_message = slice_from_cstr(
        arena_printf(&req->arena,
                     "%d of %d records rejected: a compacted topic needs a key on every "
                     "record (%s-%d)",
                     n, info->records_count, p->topic, p->index));
    return KERR_INVALID_RECORD;
}

/* A producer may not choose LogAppendTime: in a LogAppendTime topic Kafka refuses such a
 * batch, every record of it (INVALID_TIMESTAMP with a RecordError each; at most one per
 * byte of the batch, so a forged record count cannot make the answer huge). */
static int16_t refuse_log_append_time(struct request *req, const struct batch_info *info,
                                      part_resp *out)
{
    int32_t n = (int32_t)MIN((int64_t)info->records_count, (int64_t)info->size_bytes);
    record_error *errs = REQ_ALLOC(req, record_error, n);
    for (int32_t i = 0; i < n; i++) {
        produce_response_responses_partition_responses_record_errors_init(&errs[i]);
        errs[i].batch_index = i;
        errs[i].batch_index_error_message =
            slice_from_cstr("Producer should not set timestamp type to LogAppendTime.");
    }
    out->record_errors = errs;
    out->record_errors_count = n;
    out->error_message =
        slice_from_cstr("One or more records have been rejected due to invalid timestamp");
    return KERR_INVALID_TIMESTAMP;
}

/* The per-record checks of one batch of the request. An uncompressed batch is scanned in
 * the one pass every produced batch gets (framing, keys, timestamp range), and walked
 * again only when that pass finds a keyless record in a compacted topic or a timestamp
 * range that crosses a bound. A compressed batch is judged by its header's first and
 * max timestamps and decompressed only when they cross a bound (its keys are checked
 * by apply_compression, which decompresses it anyway): a producer's header that
 * understates the range is believed, as Samsa otherwise stores compressed batches
 * without reading their records. */
static int16_t check_records(struct request *req, struct partition *p, const uint8_t *batch,
                             const struct batch_info *info, const struct ts_bounds *bounds,
                             bool *any_headers, part_resp *out)
{
    const struct topic_settings *cfg = p->settings;
    if (batch_compression(info) == 0) {
        struct batch_scan scan;
        if (batch_scan_records(batch, info, &scan) != 0)
            return KERR_CORRUPT_MESSAGE;
        *any_headers |= scan.any_headers;
        if ((cfg->compacted && !scan.all_keyed) ||
            ts_range_crosses(bounds, scan.min_timestamp, scan.max_timestamp))
            return record_errors(req, p, batch, info, cfg->compacted, bounds, out);
        return KERR_NONE;
    }
    if (!ts_range_crosses(bounds, MIN(info->first_timestamp, info->max_timestamp),
                          MAX(info->first_timestamp, info->max_timestamp)))
        return KERR_NONE;
    struct buf plain;
    buf_init(&plain);
    struct batch_info plain_info;
    int16_t err = KERR_CORRUPT_MESSAGE;
    int rc = batch_decompress(batch, info, compress_decompressed_bound(cfg->max_message_bytes),
                              &plain, &plain_info);
    if (rc == 0)
        err = record_errors(req, p, plain.data, &plain_info, cfg->compacted, bounds, out);
    else
        say_warn_ratelimited("server",
                             "rejecting produce to %s-%d: a compressed batch does "
                             "not decompress to valid records (%s)",
                             p->topic, p->index, storage_strerror(rc));
    buf_free(&plain);
    return err;
}

/* compression.type, as Kafka's LogValidator: a batch of another codec than the topic's
 * is rewritten with the topic's into *rewritten (left empty when nothing changes), and a
 * compacted topic's compressed batches are decompressed to check their keys. Keys of
 * uncompressed batches were checked by check_records' one pass: with no compressed
 * batch in the request, batch_recompress need not walk the records again. */
static int16_t apply_compression(struct request *req, struct partition *p, struct slice records,
                                 bool any_compressed, const struct ts_bounds *bounds,
                                 struct buf *rewritten, part_resp *out)
{
    const struct topic_settings *cfg = p->settings;
    struct buf keyless;
    buf_init(&keyless);
    struct batch_recompress_opts rw = {.target = cfg->compression,
                                       .level = cfg->compression_level,
                                       .check_keys = cfg->compacted && any_compressed,
                                       .max_batch_bytes = cfg->max_message_bytes,
                                       .keyless = &keyless};
    int rc = batch_recompress(records.ptr, records.len, &rw, rewritten);
    int16_t err = KERR_NONE;
    if (rc == STORAGE_ERR_NO_KEY) {
        struct batch_info plain;
        err = batch_validate(keyless.data, keyless.len, &plain) == 0 &&
                      batch_check_records(keyless.data, &plain, NULL) == 0
                  ? record_errors(req, p, keyless.data, &plain, true, bounds, out)
                  : KERR_INVALID_RECORD;
        if (err == KERR_NONE) /* cannot be: batch_recompress found a keyless record */
            err = KERR_INVALID_RECORD;
    } else if (rc != 0) {
        say_warn_ratelimited("server", "rejecting produce to %s-%d (compression.type %s): %s",
                             p->topic, p->index, compress_codec_name(rw.target),
                             storage_strerror(rc));
        err = rc == STORAGE_ERR_BATCH_TOO_LARGE ? KERR_MESSAGE_TOO_LARGE : KERR_CORRUPT_MESSAGE;
    }
    buf_free(&keyless);
    return err;
}

/* Kafka's first look at a partition's records, before its log sees them
 * (ProduceRequest.validateRecords and the framing of its batch reader), applied to each
 * batch since Samsa takes several: a record set that does not hold a whole batch, or
 * whose batch is of the legacy formats (magic 0 or 1), is INVALID_RECORD; a size below
 * the smallest legacy message or a magic no format has is CORRUPT_MESSAGE. */
static int16_t check_framing(struct slice records)
{
    enum { SIZE_AT = 8, HEADER_UP_TO_MAGIC = 17, MIN_LEGACY_SIZE = 14 };
    size_t pos = 0;
    do {
        const uint8_t *b = records.ptr + pos;
        size_t left = records.len - pos;
        if (left < BATCH_LOG_OVERHEAD)
            return KERR_INVALID_RECORD;
        int32_t size = (int32_t)be32_read(b + SIZE_AT);
        if (size < MIN_LEGACY_SIZE)
            return KERR_CORRUPT_MESSAGE;
        if (left < HEADER_UP_TO_MAGIC)
            return KERR_INVALID_RECORD;
        int8_t magic = (int8_t)b[BATCH_OFF_MAGIC];
        if (magic < 0 || magic > 2)
            return KERR_CORRUPT_MESSAGE;
        if (left - BATCH_LOG_OVERHEAD < (size_t)size || magic != 2)
            return KERR_INVALID_RECORD;
        pos += (size_t)size + BATCH_LOG_OVERHEAD;
    } while (pos < records.len);
    return KERR_NONE;
}

/* Errors Kafka answers without the partition's log start offset (-1): those found
 * before the log is reached, and the exceptions its ReplicaManager names as expected
 * (unknown partition, not leader, too large, corrupt, storage). Every other error of a
 * partition that exists carries it. */
static bool error_has_log_start(int16_t err)
{
    switch (err) {
    case KERR_NONE:
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_RECORD_LIST_TOO_LARGE:
    case KERR_CORRUPT_MESSAGE:
    case KERR_KAFKA_STORAGE_ERROR: return false;
    default: return true;
    }
}

/* Validates and appends one partition's records; the checks come in Kafka's order (the
 * request's framing, the partition, acks against min.insync.replicas, then the log's
 * own checks), so that a request with several faults gets Kafka's error. */
/* KIP-890 part 1: a transactional batch that would open its producer's transaction in p
 * is first checked with the transaction coordinator, so that a late batch of a
 * transaction that has ended (a retry stuck in the network, a zombie) cannot open one
 * nobody will ever end: a hanging transaction that would hold the partition's last
 * stable offset back for good. As Kafka, a coordinator that cannot answer makes the batch
 * NOT_ENOUGH_REPLICAS, which producers retry.
 *
 * Produce v12+ is transaction version 2 (KIP-890 part 2): the client did not add the
 * partition, so the coordinator adds it instead of checking it.
 *
 * Either way the coordinator is asked once for all such partitions of the request
 * (server_txn_add_partitions: on this node, or another broker's with AddPartitionsToTxn),
 * while their answers wait (coordinator_answered). */
#define PRODUCE_VERIFYING INT16_MIN /* append_partition: answered later */

/* The first transactional batch's producer (*b), and whether its transaction is open in
 * p already (then there is nothing to ask). */
static bool txn_open_here(struct partition *p, struct slice records, struct batch_info *b)
{
    struct batch_iter it;
    batch_iter_init(&it, records.ptr, records.len);
    while (batch_iter_next(&it, b, false) > 0 && !(b->attributes & BATCH_ATTR_TRANSACTIONAL))
        ;
    struct pstate_batch last;
    return log_producer_last(p->log, b->producer_id, &last) && last.txn_first_offset >= 0 &&
           last.epoch == b->producer_epoch;
}

/* The coordinator's verdict as a produce error (server_txn_ask_error); any other refusal
 * of a verification is INVALID_TXN_STATE, as Kafka's ReplicaManager answers. */
static int16_t verdict(struct partition *p, const struct batch_info *b, int16_t error,
                       bool version2)
{
    int16_t e = server_txn_ask_error(error, version2 ? TXN_ASK_ADD : TXN_ASK_VERIFY);
    switch (e) {
    case KERR_NONE:
    case KERR_NOT_ENOUGH_REPLICAS:
    case KERR_CONCURRENT_TRANSACTIONS:
    case KERR_INVALID_PRODUCER_EPOCH: return e;
    case KERR_INVALID_PRODUCER_ID_MAPPING:
        if (version2)
            return e;
        break;
    default: break;
    }
    say_info_ratelimited("server",
                         "produce to %s-%d: producer %lld (epoch %d) has no ongoing "
                         "transaction with this partition; refused (KIP-890)",
                         p->topic, p->index, (long long)b->producer_id, b->producer_epoch);
    return KERR_INVALID_TXN_STATE;
}

/* A partition's produce waiting for the coordinator's verdict; every pointer is into the
 * request, which waits with it (produce_answer_pending). */
struct txn_check {
    struct request *req;
    struct slice topic, transactional_id;
    int16_t acks;
    int32_t timeout_ms;
    const struct produce_request_topic_data_partition_data *in;
    part_resp *out;
    struct batch_info batch;
};

static int16_t append_partition(struct request *req, struct slice topic, int16_t acks,
                                int32_t timeout_ms, struct slice transactional_id, bool verified,
                                const struct produce_request_topic_data_partition_data *in,
                                part_resp *out, struct partition **appended);
static void partition_answered(struct request *req, int16_t acks, part_resp *pr,
                               struct partition *p, struct durable_wait *wait);

/* The coordinator's answer (a Kafka error) for v's partition: appended now, or
 * refused. */
static void checked(struct txn_check *v, int16_t error)
{
    struct request *req = v->req;
    struct server *s = req->srv;
    struct partition *p = server_partition(s, v->topic, v->in->index);
    if (p)
        error = verdict(p, &v->batch, error, req->hdr.api_version >= 12);
    struct partition *appended = NULL;
    v->out->error_code =
        error != KERR_NONE ? error
                           : append_partition(req, v->topic, v->acks, v->timeout_ms,
                                              v->transactional_id, true, v->in, v->out, &appended);
    struct durable_wait *wait = NULL;
    if (v->acks == -1 && v->out->error_code == KERR_NONE && appended) {
        produce_answer_pending(req);
        wait = durable_wait_new(acks_all_durable, req);
    }
    partition_answered(req, v->acks, v->out, appended, wait);
    if (wait)
        durable_wait_submit(s, wait);
    produce_answer_arrived(req);
}

/* The coordinator's answers for the request's partitions (st->checks, in order). */
static void coordinator_answered(void *arg, const int16_t *errors)
{
    struct request *req = arg;
    struct produce_state *st = req->state;
    for (size_t i = 0; i < st->n_checks; i++)
        checked(st->checks[i], errors[i]);
    produce_answer_arrived(req); /* the wait of ask_coordinator */
}

/* After the request's partitions were tried: asks the coordinator about those whose
 * transaction is not open yet, to verify them (v11 and older) or to add them (v12+).
 * All come from the request's one producer; a batch of another producer or epoch is
 * refused. */
static void ask_coordinator(struct request *req, struct slice transactional_id)
{
    struct produce_state *st = req->state;
    if (st->n_checks == 0)
        return;
    const struct batch_info *first = &st->checks[0]->batch;
    struct txn_partition *parts = REQ_ALLOC(req, struct txn_partition, st->n_checks);
    size_t n = 0;
    for (size_t i = 0; i < st->n_checks; i++) {
        struct txn_check *v = st->checks[i];
        if (v->batch.producer_id != first->producer_id ||
            v->batch.producer_epoch != first->producer_epoch) {
            v->out->error_code = KERR_INVALID_TXN_STATE;
            partition_answered(req, v->acks, v->out, NULL, NULL);
            produce_answer_arrived(req);
            continue;
        }
        st->checks[n] = v;
        parts[n++] = (struct txn_partition){v->topic, v->in->index};
    }
    st->n_checks = n;
    produce_answer_pending(req);
    server_txn_add_partitions(req->srv, transactional_id, first->producer_id, first->producer_epoch,
                              parts, n, req->hdr.api_version >= 12 ? TXN_ASK_ADD : TXN_ASK_VERIFY,
                              coordinator_answered, req);
}

/* KERR_NONE when the batch may go on now (no transaction to open, or open already),
 * else PRODUCE_VERIFYING: it waits for ask_coordinator. */
static int16_t check_transaction(struct request *req, struct slice topic, int16_t acks,
                                 int32_t timeout_ms, struct slice transactional_id,
                                 struct partition *p,
                                 const struct produce_request_topic_data_partition_data *in,
                                 part_resp *out)
{
    struct batch_info b;
    if (txn_open_here(p, in->records, &b) || !transactional_id.ptr)
        return KERR_NONE; /* open already, or no id to ask about */
    struct produce_state *st = req->state;
    struct txn_check *v = REQ_ALLOC(req, struct txn_check, 1);
    *v = (struct txn_check){req, topic, transactional_id, acks, timeout_ms, in, out, b};
    if (st->n_checks == st->cap_checks) {
        size_t cap = st->cap_checks ? 2 * st->cap_checks : 8;
        struct txn_check **checks = REQ_ALLOC(req, struct txn_check *, cap);
        if (st->n_checks)
            memcpy(checks, st->checks, st->n_checks * sizeof *checks);
        st->checks = checks;
        st->cap_checks = cap;
    }
    st->checks[st->n_checks++] = v;
    produce_answer_pending(req);
    return PRODUCE_VERIFYING;
}

static int16_t append_partition(struct request *req, struct slice topic, int16_t acks,
                                int32_t timeout_ms, struct slice transactional_id, bool verified,
                                const struct produce_request_topic_data_partition_data *in,
                                part_resp *out, struct partition **appended)
{
    struct server *s = req->srv;
    struct partition *p = server_partition(s, topic, in->index);
    if (!p)
        return server_partition_absent(s, topic, in->index);
    int16_t lead = partition_check_leader(p, -1);
    if (lead != KERR_NONE)
        return lead;
    const struct topic_settings *cfg = p->settings;
    if (!in->records.ptr)
        return KERR_INVALID_RECORD; /* Kafka: a produce must carry at least one batch */
    int16_t err = check_framing(in->records);
    if (err != KERR_NONE) {
        say_warn_ratelimited("server", "rejecting produce to %s-%d: %s", p->topic, p->index,
                             err == KERR_INVALID_RECORD ? "no whole record batch of magic 2"
                                                        : "record batch framing is corrupt");
        return err;
    }
    if (cfg->internal)
        return KERR_INVALID_TOPIC_EXCEPTION; /* clients may not write internal topics */
    /* From here on Kafka reports the log start offset with an error (see
     * error_has_log_start). */
    out->log_start_offset = log_start_offset(p->log);
    /* acks=all needs min.insync.replicas in sync before the append (a node on its own
     * has one replica). */
    if (acks == -1 && MAX(p->isr_count, 1) < cfg->min_insync_replicas)
        return KERR_NOT_ENOUGH_REPLICAS;
    int64_t max_bytes = cfg->max_message_bytes;
    int rc = batch_validate_all(in->records.ptr, in->records.len, false, NULL, NULL);
    if (rc != 0) {
        say_warn_ratelimited("server", "rejecting produce to %s-%d: %s", p->topic, p->index,
                             storage_strerror(rc));
        return KERR_CORRUPT_MESSAGE;
    }
    int64_t now = time_wall_ms();
    struct ts_bounds bounds = ts_bounds(cfg, now);
    /* Kafka checks each batch against max.message.bytes; a multi-batch request is
     * checked per batch the same way. */
    struct batch_iter it;
    struct batch_info info;
    bool any_compressed = false, any_headers = false, any_transactional = false;
    batch_iter_init(&it, in->records.ptr, in->records.len);
    while (batch_iter_next(&it, &info, false) > 0) {
        any_compressed |= batch_compression(&info) != 0;
        if ((int64_t)info.size_bytes > max_bytes)
            return KERR_MESSAGE_TOO_LARGE;
        if (info.attributes & BATCH_ATTR_CONTROL)
            return KERR_INVALID_RECORD; /* markers are the coordinator's */
        any_transactional |= (info.attributes & BATCH_ATTR_TRANSACTIONAL) != 0;
        /* As Kafka: an idempotent producer's batch carries a sequence number. */
        if (info.producer_id >= 0 && info.base_sequence < 0)
            return KERR_INVALID_RECORD;
        /* As Kafka: a producer's batch holds exactly lastOffsetDelta + 1 records (gaps
         * appear only later, by compaction). */
        if (info.records_count != info.last_offset_delta + 1)
            return KERR_INVALID_RECORD;
        /* As Kafka: a producer's LogAppendTime bit is refused by a LogAppendTime topic
         * and dropped by a CreateTime one (the frame copy is ours to patch). */
        if ((info.attributes & BATCH_ATTR_LOG_APPEND_TIME) && !cfg->create_time)
            return refuse_log_append_time(req, &info, out);
        if (info.attributes & BATCH_ATTR_LOG_APPEND_TIME)
            batch_clear_log_append_time((uint8_t *)in->records.ptr + it.batch_pos, &info);
        err = check_records(req, p, in->records.ptr + it.batch_pos, &info, &bounds, &any_headers,
                            out);
        if (err != KERR_NONE)
            return err;
    }
    if (any_transactional && !verified) {
        err = check_transaction(req, topic, acks, timeout_ms, transactional_id, p, in, out);
        if (err != KERR_NONE)
            return err;
    }
    /* Delayed delivery: records with a delivery header go to the delay store. Only
     * batches with headers can have one; a compressed batch is decompressed to look.
     * *Differs*: a transaction's records are appended as they are, delivery headers and
     * all (a delay store outside the transaction could not be atomic with it;
     * docs/compatibility.md). */
    if (cfg->delay_enabled && !any_transactional && (any_headers || any_compressed) &&
        server_delay_produce(req, p, acks, timeout_ms, in->records, out, appended, &err))
        return err;
    struct buf rewritten;
    buf_init(&rewritten);
    err = apply_compression(req, p, in->records, any_compressed, &bounds, &rewritten, out);
    if (err != KERR_NONE) {
        buf_free(&rewritten);
        return err;
    }
    /* The frame copy (or the rewritten blob) is ours, so the batches are patched in place
     * (base offset). */
    uint8_t *data = rewritten.len ? rewritten.data : (uint8_t *)in->records.ptr;
    size_t data_len = rewritten.len ? rewritten.len : in->records.len;
    struct log_append_result res;
    rc = partition_append_as_leader(p, data, data_len, now, &res);
    buf_free(&rewritten);
    if (rc == STORAGE_ERR_OUT_OF_ORDER_SEQUENCE || rc == STORAGE_ERR_INVALID_PRODUCER_EPOCH ||
        rc == STORAGE_ERR_INVALID_TXN_STATE) {
        struct batch_info first = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
        struct pstate_batch last = {.epoch = -1, .last_seq = -1};
        batch_iter_init(&it, in->records.ptr, in->records.len); /* data may be freed */
        if (batch_iter_next(&it, &first, false) > 0)
            log_producer_last(p->log, first.producer_id, &last);
        say_debug("server",
                  "produce to %s-%d refused: %s (producer %lld epoch %d sequence %d; the "
                  "partition has epoch %d sequence %d)",
                  p->topic, p->index, storage_strerror(rc), (long long)first.producer_id,
                  first.producer_epoch, first.base_sequence, last.epoch, last.last_seq);
        return kerr_from_storage(rc);
    }
    if (rc < 0) {
        /* Per request while a condition lasts (a full disk): rate-limited. */
        say_error_ratelimited("server", "append to %s-%d failed: %s", p->topic, p->index,
                              storage_strerror(rc));
        return kerr_from_storage(rc);
    }
    /* STORAGE_DUPLICATE: a retry of a batch already appended. Kafka answers it with the
     * stored batch's offsets and no error; with acks=all it still waits until the log
     * is durable up to there (below, like a new append). */
    if (rc == STORAGE_DUPLICATE)
        say_debug("server",
                  "produce to %s-%d: a retry of the batch at offset %lld, answered "
                  "from the log",
                  p->topic, p->index, (long long)res.base_offset);
    out->base_offset = res.base_offset;
    out->log_append_time_ms = res.log_append_time;
    out->log_start_offset = res.log_start_offset;
    *appended = p;
    return KERR_NONE;
}

/* After a partition's append (or its refusal): what its answer carries, and, for
 * acks=all, the wait for its durability. */
static void partition_answered(struct request *req, int16_t acks, part_resp *pr,
                               struct partition *p, struct durable_wait *wait)
{
    if (pr->error_code != KERR_NONE && !error_has_log_start(pr->error_code))
        pr->log_start_offset = -1;
    if (pr->error_code == KERR_NONE && p) {
        server_after_append(req->srv, p, acks == -1);
        if (wait)
            durable_wait_add_acked(wait, p, log_end_offset(p->log), &pr->error_code);
    }
}

void handle_produce(struct request *req)
{
    struct server *s = req->srv;
    struct produce_request in;
    if (produce_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    int16_t acks = in.acks;
    struct produce_state *st = REQ_ALLOC(req, struct produce_state, 1);
    st->acks = acks;
    st->waiting = 1; /* this handler's own answer, given at its end */
    struct produce_response *resp = &st->resp;
    produce_response_init(resp);
    resp->responses_count = in.topic_data_count < 0 ? 0 : in.topic_data_count;
    resp->responses = REQ_ALLOC(req, struct produce_response_responses, resp->responses_count);

    int16_t global_err = KERR_NONE;
    if (acks != 0 && acks != 1 && acks != -1)
        global_err = KERR_INVALID_REQUIRED_ACKS;

    req->state = st;
    struct durable_wait *wait = acks == -1 ? durable_wait_new(acks_all_durable, req) : NULL;
    for (int32_t ti = 0; ti < resp->responses_count; ti++) {
        const struct produce_request_topic_data *td = &in.topic_data[ti];
        struct produce_response_responses *tr = &resp->responses[ti];
        produce_response_responses_init(tr);
        tr->name = td->name;
        int32_t np = td->partition_data_count < 0 ? 0 : td->partition_data_count;
        tr->partition_responses_count = np;
        tr->partition_responses = REQ_ALLOC(req, part_resp, np);
        for (int32_t pi = 0; pi < np; pi++) {
            part_resp *pr = &tr->partition_responses[pi];
            produce_response_responses_partition_responses_init(pr);
            pr->index = td->partition_data[pi].index;
            pr->base_offset = -1;
            if (global_err != KERR_NONE) {
                pr->error_code = global_err;
                continue;
            }
            struct partition *p = NULL;
            int16_t err = append_partition(req, td->name, acks, in.timeout_ms, in.transactional_id,
                                           false, &td->partition_data[pi], pr, &p);
            if (err == PRODUCE_VERIFYING)
                continue; /* answered by checked */
            pr->error_code = err;
            partition_answered(req, acks, pr, p, wait);
        }
    }
    ask_coordinator(req, in.transactional_id);
    if (req->hdr.api_version >= 10)
        add_leader_hints(req, resp);
    if (wait) {
        st->waiting++;
        durable_wait_submit(s, wait);
    }
    produce_answer_arrived(req);
}
