/*
 * The record formats of __consumer_offsets, byte-compatible with Kafka so that its
 * tools (kafka-console-consumer --formatter GroupMetadataMessageFormatter, ...) can
 * read a Samsa log and vice versa. Non-flexible encoding throughout: int16-length
 * strings and int32-length bytes, -1 meaning null.
 *
 *   key   := version:int16 fields
 *     v0,v1 offset commit:  group:string topic:string partition:int32
 *     v2    group metadata: group:string
 *     v3+   records of the KIP-848 protocol: not ours, skipped on load
 *   offset commit value := version:int16
 *     offset:int64 [leader_epoch:int32 (v3+)] metadata:string commit_ts:int64
 *     [expire_ts:int64 (v1 only)]
 *   group metadata value := version:int16
 *     protocol_type:string generation:int32 protocol:string? leader:string?
 *     [current_state_ts:int64 (v2+)] members:int32 count, each:
 *       member_id:string [group_instance_id:string? (v3+)] client_id:string
 *       client_host:string [rebalance_timeout:int32 (v1+)] session_timeout:int32
 *       subscription:bytes assignment:bytes
 *   A null value (tombstone) deletes the key.
 *
 * We write key v1 / offset value v3 / group value v3, as Kafka 2.3+ does.
 * Decoders are for untrusted bytes: every length is checked against what is left.
 */
#include "group/group.h"

#include <string.h>

static void put_str(struct buf *b, struct slice s)
{
    if (!s.ptr) {
        buf_put_i16(b, -1);
        return;
    }
    ASSERT(s.len <= INT16_MAX);
    buf_put_i16(b, (int16_t)s.len);
    buf_append(b, s.ptr, s.len);
}

static void put_bytes(struct buf *b, struct slice s)
{
    if (!s.ptr) {
        buf_put_i32(b, -1);
        return;
    }
    ASSERT(s.len <= INT32_MAX);
    buf_put_i32(b, (int32_t)s.len);
    buf_append(b, s.ptr, s.len);
}

/* A non-null empty slice for "" so that encoders never write null where Kafka
 * requires a string. */
static struct slice nonnull(struct slice s)
{
    return s.ptr ? s : (struct slice){(const uint8_t *)"", 0};
}

/* The body of a string or bytes field once its length (int16 or int32) has been read:
 * -1 is null, allowed only where nullable; any other negative length is corrupt. */
static struct slice get_sized(struct reader *r, int32_t len, bool nullable)
{
    if (r->err)
        return SLICE_NULL;
    if (len < 0) {
        if (len != -1 || !nullable)
            r->err = -1;
        return SLICE_NULL;
    }
    struct slice s = rd_bytes(r, (size_t)len);
    if (!r->err && !s.ptr)
        s.ptr = (const uint8_t *)""; /* a present empty value is not null */
    return s;
}

static struct slice get_str(struct reader *r, bool nullable)
{
    return get_sized(r, rd_i16(r), nullable);
}

static struct slice get_bytes(struct reader *r, bool nullable)
{
    return get_sized(r, rd_i32(r), nullable);
}

void grp_offset_key_encode(struct buf *b, struct slice group, struct slice topic, int32_t partition)
{
    buf_put_i16(b, 1);
    put_str(b, nonnull(group));
    put_str(b, nonnull(topic));
    buf_put_i32(b, partition);
}

void grp_group_key_encode(struct buf *b, struct slice group)
{
    buf_put_i16(b, 2);
    put_str(b, nonnull(group));
}

void grp_offset_value_encode(struct buf *b, const struct grp_offset_value *v)
{
    buf_put_i16(b, 3);
    buf_put_i64(b, v->offset);
    buf_put_i32(b, v->leader_epoch);
    put_str(b, nonnull(v->metadata));
    buf_put_i64(b, v->commit_timestamp_ms);
}

void grp_group_value_encode(struct buf *b, const struct grp_group_value *v)
{
    buf_put_i16(b, 3);
    put_str(b, nonnull(v->protocol_type));
    buf_put_i32(b, v->generation);
    put_str(b, v->protocol);
    put_str(b, v->leader);
    buf_put_i64(b, v->current_state_timestamp_ms);
    ASSERT(v->n_members <= INT32_MAX);
    buf_put_i32(b, (int32_t)v->n_members);
    for (size_t i = 0; i < v->n_members; i++) {
        const struct grp_member_value *m = &v->members[i];
        put_str(b, nonnull(m->member_id));
        put_str(b, m->group_instance_id);
        put_str(b, nonnull(m->client_id));
        put_str(b, nonnull(m->client_host));
        buf_put_i32(b, m->rebalance_timeout_ms);
        buf_put_i32(b, m->session_timeout_ms);
        put_bytes(b, nonnull(m->subscription));
        put_bytes(b, nonnull(m->assignment));
    }
}

int grp_key_decode(struct slice key, struct grp_key *out)
{
    memset(out, 0, sizeof(*out));
    struct reader r;
    rd_init(&r, key.ptr, key.len);
    out->version = rd_i16(&r);
    if (r.err || out->version < 0)
        return -1;
    if (out->version <= 1) {
        out->kind = GRP_KEY_OFFSET;
        out->group = get_str(&r, false);
        out->topic = get_str(&r, false);
        out->partition = rd_i32(&r);
    } else if (out->version == 2) {
        out->kind = GRP_KEY_GROUP;
        out->group = get_str(&r, false);
    } else {
        out->kind = GRP_KEY_OTHER;
        return 0;
    }
    return r.err ? -1 : 0;
}

int grp_offset_value_decode(struct slice value, struct grp_offset_value *out)
{
    memset(out, 0, sizeof(*out));
    out->leader_epoch = -1;
    out->expire_timestamp_ms = -1;
    struct reader r;
    rd_init(&r, value.ptr, value.len);
    int16_t version = rd_i16(&r);
    if (r.err || version < 0 || version > 3)
        return -1;
    out->offset = rd_i64(&r);
    if (version >= 3)
        out->leader_epoch = rd_i32(&r);
    out->metadata = get_str(&r, false);
    out->commit_timestamp_ms = rd_i64(&r);
    if (version == 1)
        out->expire_timestamp_ms = rd_i64(&r);
    return r.err ? -1 : 0;
}

/* Smallest encoding of one member at any version: four empty strings (2 bytes each),
 * one int32 and two empty bytes (4 each). Bounds the array allocation. */
#define MIN_MEMBER_BYTES (4 * 2 + 4 + 2 * 4)

int grp_group_value_decode(struct slice value, struct arena *a, struct grp_group_value *out)
{
    memset(out, 0, sizeof(*out));
    out->current_state_timestamp_ms = -1;
    struct reader r;
    rd_init(&r, value.ptr, value.len);
    int16_t version = rd_i16(&r);
    if (r.err || version < 0 || version > 3)
        return -1;
    out->protocol_type = get_str(&r, false);
    out->generation = rd_i32(&r);
    out->protocol = get_str(&r, true);
    out->leader = get_str(&r, true);
    if (version >= 2)
        out->current_state_timestamp_ms = rd_i64(&r);
    int32_t n = rd_i32(&r);
    if (r.err || n < 0 || (size_t)n > rd_remaining(&r) / MIN_MEMBER_BYTES)
        return -1;
    struct grp_member_value *members = n ? arena_alloc(a, (size_t)n * sizeof(*members)) : NULL;
    for (int32_t i = 0; i < n && !r.err; i++) {
        struct grp_member_value *m = &members[i];
        m->member_id = get_str(&r, false);
        m->group_instance_id = version >= 3 ? get_str(&r, true) : SLICE_NULL;
        m->client_id = get_str(&r, false);
        m->client_host = get_str(&r, false);
        m->session_timeout_ms = 0;
        int32_t rebalance = version >= 1 ? rd_i32(&r) : -1;
        m->session_timeout_ms = rd_i32(&r);
        m->rebalance_timeout_ms = version >= 1 ? rebalance : m->session_timeout_ms;
        m->subscription = get_bytes(&r, false);
        m->assignment = get_bytes(&r, false);
    }
    if (r.err)
        return -1;
    out->members = members;
    out->n_members = (size_t)n;
    return 0;
}

int grp_consumer_subscription_topics(struct slice metadata, struct arena *a, struct slice **topics,
                                     size_t *n_topics)
{
    *topics = NULL;
    *n_topics = 0;
    struct reader r;
    rd_init(&r, metadata.ptr, metadata.len);
    int16_t version = rd_i16(&r);
    if (r.err || version < 0)
        return -1;
    int32_t n = rd_i32(&r);
    if (r.err || n < 0 || (size_t)n > rd_remaining(&r) / 2)
        return -1;
    struct slice *t = n ? arena_alloc(a, (size_t)n * sizeof(*t)) : NULL;
    for (int32_t i = 0; i < n; i++)
        t[i] = get_str(&r, false);
    if (r.err)
        return -1;
    /* User data and later fields are not needed; their absence is tolerated only for
     * the trailing user data, which Kafka always writes, so require it. */
    (void)get_bytes(&r, true);
    if (r.err)
        return -1;
    *topics = t;
    *n_topics = (size_t)n;
    return 0;
}
