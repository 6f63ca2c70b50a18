/* ListOffsets (key 2), v1-v10: offsets by timestamp. Special timestamps: -1 latest
 * (the high watermark), -2 earliest (log start), -3 the record with the largest
 * timestamp (v7+), -4 earliest local (= earliest: no tiered storage), -5 latest tiered
 * (none: -1); each only from the version that defines it, and any other negative
 * timestamp, as in Kafka, UNSUPPORTED_VERSION for the partition. read_committed (v2+)
 * sees latest as the last stable offset. */
#include "server/internal.h"

#include <string.h>

typedef struct list_offsets_response_topics_partitions part_resp;

static void lookup(struct partition *p, int64_t ts, bool read_committed, part_resp *out)
{
    int rc = 0;
    int64_t offset = -1, found_ts = -1;
    switch (ts) {
    case -1:
        offset = read_committed ? partition_last_stable_offset(p) : partition_high_watermark(p);
        break;
    case -2:
    case -4: offset = log_start_offset(p->log); break;
    case -3: rc = log_max_timestamp(p->log, &offset, &found_ts); break;
    case -5: offset = -1; break;
    default:
        ASSERT(ts >= 0); /* other special values were refused by the caller */
        rc = log_offset_for_timestamp(p->log, ts, &offset, &found_ts);
        break;
    }
    if (rc != 0) {
        out->error_code = kerr_from_storage(rc);
        return;
    }
    out->offset = offset;
    out->timestamp = found_ts;
    out->leader_epoch = offset >= 0 ? 0 : -1;
}

/* The version that defines each special timestamp (-1 ... -5); others are unsupported. */
static bool special_timestamp_supported(int64_t ts, int16_t version)
{
    static const int16_t since[] = {1, 1, 7, 8, 9}; /* -1, -2, -3, -4, -5 */
    return ts >= -5 && version >= since[-ts - 1];
}

/* Kafka answers each topic-partition once, grouped by topic: a topic named in several
 * entries gets one, and a partition named more than once gets a single INVALID_REQUEST
 * answer. Both are found with two maps (names, and (topic, partition) pairs); the
 * answers keep the order of first mention. */
struct lo_topic {
    int32_t at;    /* its index in the response */
    int32_t parts; /* distinct partitions named */
    bool ready;    /* its response entry is initialised */
};
struct lo_part {
    int32_t count;  /* times named */
    part_resp *out; /* its answer, once placed */
};

static struct slice part_key(uint8_t key[8], int32_t topic_at, int32_t partition)
{
    memcpy(key, &topic_at, 4);
    memcpy(key + 4, &partition, 4);
    return (struct slice){key, 8};
}

void handle_list_offsets(struct request *req)
{
    struct server *s = req->srv;
    int16_t version = req->hdr.api_version;
    struct list_offsets_request in;
    if (list_offsets_request_decode(&req->body, version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct list_offsets_response resp;
    list_offsets_response_init(&resp);
    int32_t nt = MAX(in.topics_count, 0);
    struct hmap topics, parts;
    hmap_init(&topics);
    hmap_init(&parts);
    uint8_t key[8];
    for (int32_t ti = 0; ti < nt; ti++) {
        const struct list_offsets_request_topics *t = &in.topics[ti];
        struct lo_topic *lt = hmap_get(&topics, t->name);
        if (!lt) {
            lt = REQ_ALLOC(req, struct lo_topic, 1);
            lt->at = resp.topics_count++;
            hmap_put(&topics, t->name, lt);
        }
        for (int32_t pi = 0; pi < t->partitions_count; pi++) {
            struct slice k = part_key(key, lt->at, t->partitions[pi].partition_index);
            struct lo_part *lp = hmap_get(&parts, k);
            if (!lp) {
                lp = REQ_ALLOC(req, struct lo_part, 1);
                hmap_put(&parts, k, lp);
                lt->parts++;
            }
            lp->count++;
        }
    }
    resp.topics = REQ_ALLOC(req, struct list_offsets_response_topics, resp.topics_count);
    for (int32_t ti = 0; ti < nt; ti++) {
        const struct list_offsets_request_topics *t = &in.topics[ti];
        struct lo_topic *lt = hmap_get(&topics, t->name);
        struct list_offsets_response_topics *tr = &resp.topics[lt->at];
        if (!lt->ready) {
            lt->ready = true;
            list_offsets_response_topics_init(tr);
            tr->name = t->name;
            tr->partitions = REQ_ALLOC(req, part_resp, lt->parts);
        }
        for (int32_t pi = 0; pi < t->partitions_count; pi++) {
            const struct list_offsets_request_topics_partitions *rp = &t->partitions[pi];
            struct lo_part *lp = hmap_get(&parts, part_key(key, lt->at, rp->partition_index));
            if (lp->out)
                continue; /* a repeat: answered at its first mention */
            part_resp *pr = lp->out = &tr->partitions[tr->partitions_count++];
            list_offsets_response_topics_partitions_init(pr);
            pr->partition_index = rp->partition_index;
            pr->offset = -1;
            pr->timestamp = -1;
            /* Kafka's order of checks: duplicates, then the timestamp, then the
             * partition. */
            if (lp->count > 1) {
                pr->error_code = KERR_INVALID_REQUEST;
                continue;
            }
            if (rp->timestamp < 0 && !special_timestamp_supported(rp->timestamp, version)) {
                pr->error_code = KERR_UNSUPPORTED_VERSION;
                continue;
            }
            struct partition *p = server_partition_at_epoch(
                s, t->name, rp->partition_index, rp->current_leader_epoch, &pr->error_code);
            if (!p)
                continue;
            lookup(p, rp->timestamp, in.isolation_level == 1, pr);
        }
    }
    hmap_free(&parts);
    hmap_free(&topics);
    REQUEST_RESPOND(req, list_offsets_response, &resp);
}
