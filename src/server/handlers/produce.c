/* Produce (key 0), v3-v11: validate and append record batches.
 *
 * Each partition's records are checked before anything is written: every batch's
 * framing, magic, CRC32C and record framing, then each batch against max.message.bytes.
 * A bad partition gets
 * its error code and nothing appended; the others in the request proceed, as in Kafka.
 * Batches of idempotent producers are checked by log_append (sequence, epoch; a retry
 * is answered with the stored batch's offsets, as in Kafka). A topic whose
 * compression.type names a codec gets every batch in that codec (recompressed here).
 * acks=0: no response. acks=1: answered once the batches are in the log (page cache).
 * acks=all (-1): answered once they are fdatasync'd (commit.c, group commit). */
#include "server/internal.h"

#include <string.h>

typedef struct produce_response_responses_partition_responses part_resp;
typedef struct produce_response_responses_partition_responses_record_errors record_error;

static void finish_produce(void *arg) {
    struct request *req = arg;
    REQUEST_RESPOND(req, produce_response, (struct produce_response *)req->state);
}

/* Compaction keeps the newest record per key, so a compacted topic refuses records
 * without one, as Kafka does: INVALID_RECORD for the partition, with a RecordError (the
 * record's index in its batch) per keyless record of the first batch that has any, and
 * an ErrorMessage (v8+), so that clients fail just those records. The fast one-pass
 * check runs on every batch; the records are walked only once one lacks a key.
 * Compressed batches are checked on their decompressed copy (apply_compression). */
static int16_t check_keys(struct request *req, struct partition *p, const uint8_t *batch,
                          const struct batch_info *info, part_resp *out) {
    bool keyed = false;
    if (batch_check_records(batch, info, &keyed) != 0)
        return KERR_CORRUPT_MESSAGE;
    if (keyed)
        return KERR_NONE;
    out->record_errors = REQ_ALLOC(req, record_error, info->records_count);
    out->record_errors_count = 0;
    struct record_iter it;
    struct record rec;
    record_iter_init(&it, batch, info);
    for (int32_t i = 0; record_iter_next(&it, &rec) > 0; i++) {
        if (rec.key.ptr)
            continue;
        record_error *e = &out->record_errors[out->record_errors_count++];
        produce_response_responses_partition_responses_record_errors_init(e);
        e->batch_index = i;
        e->batch_index_error_message = slice_from_cstr(arena_printf(
            &req->arena, "Compacted topic cannot accept message without key in topic partition "
            "%s-%d.", p->topic->name, p->index));
    }
    out->error_message = slice_from_cstr(arena_printf(
        &req->arena, "%d of %d records rejected: a compacted topic needs a key on every "
        "record (%s-%d)", out->record_errors_count, info->records_count, p->topic->name,
        p->index));
    return KERR_INVALID_RECORD;
}

/* compression.type, as Kafka's LogValidator: a batch of another codec than the topic's
 * is rewritten with the topic's into *rewritten (left empty when nothing changes), and a
 * compacted topic's compressed batches are decompressed to check their keys. */
static int16_t apply_compression(struct request *req, struct partition *p,
                                 struct slice records, struct buf *rewritten, part_resp *out) {
    const struct topic_settings *cfg = &p->topic->settings;
    struct buf keyless;
    buf_init(&keyless);
    struct batch_recompress_opts rw = {.target = cfg->compression,
                                       .level = cfg->compression_level,
                                       .check_keys = cfg->compacted,
                                       .max_batch_bytes = cfg->max_message_bytes,
                                       .keyless = &keyless};
    int rc = batch_recompress(records.ptr, records.len, &rw, rewritten);
    int16_t err = KERR_NONE;
    if (rc == STORAGE_ERR_NO_KEY) {
        struct batch_info plain;
        err = batch_validate(keyless.data, keyless.len, &plain) == 0
                  ? check_keys(req, p, keyless.data, &plain, out)
                  : KERR_INVALID_RECORD;
    } else if (rc != 0) {
        log_warn_ratelimited("server", "rejecting produce to %s-%d (compression.type %s): %s",
                             p->topic->name, p->index, compress_codec_name(rw.target),
                             storage_strerror(rc));
        err = rc == STORAGE_ERR_BATCH_TOO_LARGE ? KERR_MESSAGE_TOO_LARGE : KERR_CORRUPT_MESSAGE;
    }
    buf_free(&keyless);
    return err;
}

static int16_t append_partition(struct request *req, struct slice topic,
                                const struct produce_request_topic_data_partition_data *in,
                                part_resp *out, struct partition **appended) {
    struct server *s = req->srv;
    struct partition *p = server_partition(s, topic, in->index);
    if (!p)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    const struct topic_settings *cfg = &p->topic->settings;
    if (cfg->internal)
        return KERR_INVALID_TOPIC_EXCEPTION; /* clients may not write internal topics */
    if (!in->records.ptr || in->records.len == 0)
        return KERR_INVALID_RECORD; /* Kafka: a produce must carry at least one batch */
    int64_t max_bytes = cfg->max_message_bytes;
    bool compacted = cfg->compacted;
    int batches = 0;
    int64_t records = 0;
    int rc = batch_validate_all(in->records.ptr, in->records.len, true, &batches, &records);
    if (rc != 0) {
        log_warn_ratelimited("server", "rejecting produce to %s-%d: %s", p->topic->name,
                             p->index, storage_strerror(rc));
        return rc == STORAGE_ERR_BAD_MAGIC ? KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT
                                           : KERR_CORRUPT_MESSAGE;
    }
    /* Kafka checks each batch against max.message.bytes; a multi-batch request is
     * checked per batch the same way. */
    struct batch_iter it;
    struct batch_info info;
    batch_iter_init(&it, in->records.ptr, in->records.len);
    while (batch_iter_next(&it, &info, false) > 0) {
        if ((int64_t)info.size_bytes > max_bytes)
            return KERR_MESSAGE_TOO_LARGE;
        if (info.attributes & BATCH_ATTR_TRANSACTIONAL)
            return KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED; /* no transactions yet */
        if (info.attributes & BATCH_ATTR_CONTROL)
            return KERR_INVALID_RECORD;
        /* As Kafka: an idempotent producer's batch carries a sequence number. */
        if (info.producer_id >= 0 && info.base_sequence < 0)
            return KERR_INVALID_RECORD;
        /* As Kafka: a producer's batch holds exactly lastOffsetDelta + 1 records (gaps
         * appear only later, by compaction). */
        if (info.records_count != info.last_offset_delta + 1)
            return KERR_INVALID_RECORD;
        if (compacted && batch_compression(&info) == 0) {
            int16_t err = check_keys(req, p, in->records.ptr + it.batch_pos, &info, out);
            if (err != KERR_NONE)
                return err;
        }
    }
    struct buf rewritten;
    buf_init(&rewritten);
    int16_t err = apply_compression(req, p, in->records, &rewritten, out);
    if (err != KERR_NONE) {
        buf_free(&rewritten);
        return err;
    }
    /* The frame copy (or the rewritten blob) is ours, so the batches are patched in place
     * (base offset). */
    uint8_t *data = rewritten.len ? rewritten.data : (uint8_t *)in->records.ptr;
    size_t data_len = rewritten.len ? rewritten.len : in->records.len;
    struct log_append_result res;
    rc = log_append(p->log, data, data_len, 0, time_wall_ms(), &res);
    buf_free(&rewritten);
    if (rc == STORAGE_ERR_OUT_OF_ORDER_SEQUENCE || rc == STORAGE_ERR_INVALID_PRODUCER_EPOCH) {
        log_debug("server", "produce to %s-%d refused: %s", p->topic->name, p->index,
                  storage_strerror(rc));
        return kerr_from_storage(rc);
    }
    if (rc < 0) {
        /* Per request while a condition lasts (a full disk): rate-limited. */
        log_error_ratelimited("server", "append to %s-%d failed: %s", p->topic->name, p->index,
                              storage_strerror(rc));
        return kerr_from_storage(rc);
    }
    /* STORAGE_DUPLICATE: a retry of a batch already appended. Kafka answers it with the
     * stored batch's offsets and no error; with acks=all it still waits until the log
     * is durable up to there (below, like a new append). */
    if (rc == STORAGE_DUPLICATE)
        log_debug("server", "produce to %s-%d: a retry of the batch at offset %lld, answered "
                  "from the log", p->topic->name, p->index, (long long)res.base_offset);
    out->base_offset = res.base_offset;
    out->log_append_time_ms = res.log_append_time;
    out->log_start_offset = res.log_start_offset;
    *appended = p;
    return KERR_NONE;
}

void handle_produce(struct request *req) {
    struct server *s = req->srv;
    struct produce_request in;
    if (produce_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    int16_t acks = in.acks;
    struct produce_response *resp = REQ_ALLOC(req, struct produce_response, 1);
    produce_response_init(resp);
    resp->responses_count = in.topic_data_count < 0 ? 0 : in.topic_data_count;
    resp->responses = REQ_ALLOC(req, struct produce_response_responses, resp->responses_count);

    int16_t global_err = KERR_NONE;
    if (acks != 0 && acks != 1 && acks != -1)
        global_err = KERR_INVALID_REQUIRED_ACKS;
    else if (in.transactional_id.ptr)
        global_err = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED; /* no transactions yet */

    req->state = resp;
    struct durable_wait *wait = acks == -1 ? durable_wait_new(finish_produce, req) : NULL;
    for (int32_t ti = 0; ti < resp->responses_count; ti++) {
        const struct produce_request_topic_data *td = &in.topic_data[ti];
        struct produce_response_responses *tr = &resp->responses[ti];
        produce_response_responses_init(tr);
        tr->name = td->name;
        int32_t np = td->partition_data_count < 0 ? 0 : td->partition_data_count;
        tr->partition_responses_count = np;
        tr->partition_responses = REQ_ALLOC(req, part_resp, np);
        const struct topic_state *ts = server_topic(s, td->name);
        for (int32_t pi = 0; pi < np; pi++) {
            part_resp *pr = &tr->partition_responses[pi];
            produce_response_responses_partition_responses_init(pr);
            pr->index = td->partition_data[pi].index;
            pr->base_offset = -1;
            if (global_err != KERR_NONE) {
                pr->error_code = global_err;
                continue;
            }
            if (acks == -1 && ts && server_partition(s, td->name, pr->index)) {
                /* One replica is all a single node has: acks=all with
                 * min.insync.replicas above 1 cannot be satisfied. */
                if (ts->settings.min_insync_replicas > 1) {
                    pr->error_code = KERR_NOT_ENOUGH_REPLICAS;
                    continue;
                }
            }
            struct partition *p = NULL;
            pr->error_code = append_partition(req, td->name, &td->partition_data[pi], pr, &p);
            if (pr->error_code == KERR_NONE) {
                server_after_append(s, p, acks == -1);
                if (wait)
                    durable_wait_add(wait, p, log_end_offset(p->log), &pr->error_code);
            }
        }
    }
    if (acks == 0) {
        /* No response to carry an error: Kafka closes the connection instead, so the
         * client notices and refreshes its metadata. */
        bool failed = false;
        for (int32_t ti = 0; ti < resp->responses_count; ti++)
            for (int32_t pi = 0; pi < resp->responses[ti].partition_responses_count; pi++)
                failed |= resp->responses[ti].partition_responses[pi].error_code != KERR_NONE;
        struct net_conn *c = failed ? net_reply_conn(req->reply) : NULL;
        request_drop(req);
        if (c) {
            log_info("server", "closing connection from %s: an acks=0 produce failed",
                     net_conn_peer(c));
            net_conn_close(c);
        }
        return;
    }
    if (wait) {
        durable_wait_submit(s, wait);
        return;
    }
    finish_produce(req);
}
