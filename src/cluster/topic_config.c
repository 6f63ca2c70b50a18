/* The per-topic configs Samsa knows, with Kafka's names, defaults and validation.
 * A name not listed here is refused (INVALID_CONFIG), and so is a value Samsa cannot
 * honour: accepting a setting and ignoring it would be lying to the operator. */
#include "cluster/cluster.h"
#include "storage/storage.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *check_long_min(const char *v, int64_t min, const char *msg)
{
    int64_t x;
    if (parse_i64(v, &x) != 0)
        return "value is not a valid long";
    return x < min ? msg : NULL;
}

static const char *check_int_min(const char *v, int64_t min, const char *msg)
{
    int64_t x;
    if (parse_i64(v, &x) != 0 || x > INT32_MAX || x < INT32_MIN)
        return "value is not a valid int";
    return x < min ? msg : NULL;
}

static const char *chk_long_m1(const char *v)
{
    return check_long_min(v, -1, "value must be >= -1");
}
static const char *chk_long_0(const char *v)
{
    return check_long_min(v, 0, "value must be >= 0");
}
static const char *chk_long_1(const char *v)
{
    return check_long_min(v, 1, "value must be >= 1");
}
static const char *chk_int_0(const char *v)
{
    return check_int_min(v, 0, "value must be >= 0");
}
static const char *chk_int_1(const char *v)
{
    return check_int_min(v, 1, "value must be >= 1");
}
static const char *chk_int_4(const char *v)
{
    return check_int_min(v, 4, "value must be >= 4");
}
static const char *chk_segment_bytes(const char *v)
{
    return check_int_min(v, 14, "value must be >= 14 (one record batch header)");
}

static const char *chk_bool(const char *v)
{
    bool b;
    return parse_bool(v, &b) == 0 ? NULL : "value must be true or false";
}

/* A list, as Kafka parses one: comma-separated items with blanks around them ignored,
 * each compact or delete. The empty list is allowed (Kafka 4: neither deletion nor
 * compaction, so records are kept for ever, which Samsa's log does when cleanup.policy
 * names neither); an empty item ("delete,") is not. */
static const char *chk_cleanup_policy(const char *v)
{
    const char *p = v;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        return NULL;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && isspace((unsigned char)*p))
            p++;
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        size_t n = (size_t)(end - p);
        if (n == 0)
            return "values must not be empty";
        bool is_delete = n == 6 && strncmp(p, "delete", 6) == 0;
        bool is_compact = n == 7 && strncmp(p, "compact", 7) == 0;
        if (!is_delete && !is_compact)
            return "String must be one of: compact, delete";
        if (!comma)
            return NULL;
        p = comma + 1;
    }
}

static const char *chk_timestamp_type(const char *v)
{
    if (strcmp(v, "CreateTime") == 0 || strcmp(v, "LogAppendTime") == 0)
        return NULL;
    return "value must be CreateTime or LogAppendTime";
}

/* compression.type and the levels, with Kafka's messages (ConfigDef.ValidString and
 * Range, and its gzip level validator). The names are those compress_type_parse
 * (storage) accepts. */
static const char *chk_compression(const char *v)
{
    static const char *const names[] = {"uncompressed", "zstd", "lz4",
                                        "snappy",       "gzip", "producer"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (strcmp(v, names[i]) == 0)
            return NULL;
    return "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer";
}

/* Levels: Kafka's ranges (KIP-390), which storage's codecs take as they are. */
static bool parse_int(const char *v, int64_t *x)
{
    return parse_i64(v, x) == 0 && *x <= INT32_MAX && *x >= INT32_MIN;
}
static const char *chk_gzip_level(const char *v)
{
    int64_t x;
    if (!parse_int(v, &x))
        return "value is not a valid int";
    if (x > COMPRESS_GZIP_MAX_LEVEL ||
        (x < COMPRESS_GZIP_MIN_LEVEL && x != COMPRESS_GZIP_DEFAULT_LEVEL))
        return "Value must be between 1 and 9 or equal to -1";
    return NULL;
}
static const char *chk_lz4_level(const char *v)
{
    int64_t x;
    if (!parse_int(v, &x))
        return "value is not a valid int";
    if (x < COMPRESS_LZ4_MIN_LEVEL)
        return "Value must be at least 1";
    return x > COMPRESS_LZ4_MAX_LEVEL ? "Value must be no more than 17" : NULL;
}
static const char *chk_zstd_level(const char *v)
{
    int64_t x;
    if (!parse_int(v, &x))
        return "value is not a valid int";
    if (x < COMPRESS_ZSTD_MIN_LEVEL)
        return "Value must be at least -131072";
    return x > COMPRESS_ZSTD_MAX_LEVEL ? "Value must be no more than 22" : NULL;
}
_Static_assert(COMPRESS_GZIP_MIN_LEVEL == 1 && COMPRESS_GZIP_MAX_LEVEL == 9 &&
                   COMPRESS_GZIP_DEFAULT_LEVEL == -1 && COMPRESS_LZ4_MIN_LEVEL == 1 &&
                   COMPRESS_LZ4_MAX_LEVEL == 17 && COMPRESS_ZSTD_MIN_LEVEL == -131072 &&
                   COMPRESS_ZSTD_MAX_LEVEL == 22,
               "the messages above name the ranges");

static const char *chk_ratio(const char *v)
{
    char *end;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || d < 0 || d > 1)
        return "value must be a number between 0 and 1";
    return NULL;
}

/* Reads one partition:broker entry (blanks already trimmed): false unless both are
 * ASCII digits (no sign), as Kafka's pattern [0-9]+:[0-9]+ has it. Numbers past
 * INT32_MAX come out as -1: Kafka's validator takes any length of digits, and such an
 * entry names no replica that can exist. */
static bool replica_entry(const char *p, const char *end, int32_t *partition, int32_t *broker)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (!colon)
        return false;
    const char *from[2] = {p, colon + 1}, *to[2] = {colon, end};
    int64_t num[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        if (from[k] == to[k])
            return false;
        for (const char *d = from[k]; d < to[k]; d++) {
            if (!isdigit((unsigned char)*d))
                return false;
            if (num[k] >= 0)
                num[k] = num[k] * 10 + (*d - '0');
            if (num[k] > INT32_MAX)
                num[k] = -1;
        }
    }
    *partition = (int32_t)num[0];
    *broker = (int32_t)num[1];
    return true;
}

/* leader.|follower.replication.throttled.replicas (KIP-73), as Kafka 4.4 accepts them:
 * comma-separated entries, blanks around each ignored, every one empty or
 * partition:broker; or entries that join to "*" ("*", " * ", "*,"). */
static int replica_list_scan(const char *value,
                             void (*each)(void *arg, int32_t partition, int32_t broker), void *arg)
{
    bool valid = true;
    size_t stars = 0, others = 0; /* non-empty entries that are / are not "*" */
    for (const char *p = value;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && isspace((unsigned char)*p))
            p++;
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        int32_t partition, broker;
        if (end - p == 1 && *p == '*') {
            stars++;
        } else if (end > p) {
            others++;
            if (!replica_entry(p, end, &partition, &broker))
                valid = false;
            else if (each && partition >= 0 && broker >= 0)
                each(arg, partition, broker);
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (stars == 1 && others == 0)
        return 1;
    return valid && stars == 0 ? 0 : -1;
}

int tcfg_replica_list_parse(const char *value,
                            void (*each)(void *arg, int32_t partition, int32_t broker), void *arg)
{
    int rc = replica_list_scan(value, NULL, NULL);
    return rc == 0 && each ? replica_list_scan(value, each, arg) : rc;
}

static const char *chk_leader_throttled(const char *v)
{
    return tcfg_replica_list_parse(v, NULL, NULL) < 0
               ? "leader.replication.throttled.replicas must be the literal '*' or a list of "
                 "replicas in the following format: [partitionId]:[brokerId],[partitionId]:"
                 "[brokerId],..."
               : NULL;
}
static const char *chk_follower_throttled(const char *v)
{
    return tcfg_replica_list_parse(v, NULL, NULL) < 0
               ? "follower.replication.throttled.replicas must be the literal '*' or a list of "
                 "replicas in the following format: [partitionId]:[brokerId],[partitionId]:"
                 "[brokerId],..."
               : NULL;
}

/* Defaults here are Kafka's; a broker property named in broker_key overrides them
 * for every topic that does not set its own value. */
static const struct tcfg_def defs[] = {
    {"cleanup.policy", "log.cleanup.policy", TCFG_LIST, "delete", chk_cleanup_policy,
     "delete: drop old segments by retention; compact: keep the newest record per key"},
    {"compression.gzip.level", "compression.gzip.level", TCFG_INT, "-1", chk_gzip_level,
     "gzip level when compression.type is gzip (-1: zlib's default, 6)"},
    {"compression.lz4.level", "compression.lz4.level", TCFG_INT, "9", chk_lz4_level,
     "lz4 level when compression.type is lz4 (9: lz4's fast mode, as Kafka)"},
    {"compression.type", "compression.type", TCFG_STRING, "producer", chk_compression,
     "Codec batches are stored with: uncompressed, zstd, lz4, snappy, gzip, or producer "
     "(as the producer sent them); others are recompressed on produce"},
    {"compression.zstd.level", "compression.zstd.level", TCFG_INT, "3", chk_zstd_level,
     "zstd level when compression.type is zstd"},
    {"delete.retention.ms", "log.cleaner.delete.retention.ms", TCFG_LONG, "86400000", chk_long_0,
     "How long tombstones of compacted topics are kept after cleaning"},
    {"file.delete.delay.ms", "log.segment.delete.delay.ms", TCFG_LONG, "60000", chk_long_0,
     "Delay before a deleted segment's file is removed"},
    {"flush.messages", "log.flush.interval.messages", TCFG_LONG, "9223372036854775807", chk_long_1,
     "Force an fsync after this many messages (acks=0/1 durability)"},
    {"flush.ms", "log.flush.interval.ms", TCFG_LONG, "9223372036854775807", chk_long_0,
     "Force an fsync after this many milliseconds (acks=0/1 durability)"},
    {"follower.replication.throttled.replicas", NULL, TCFG_LIST, "", chk_follower_throttled,
     "Replicas that copy their leader's log at most at follower.replication.throttled.rate "
     "(of the broker copying): partition:broker entries, broker being the follower, or * for "
     "every replica of the topic; a replica in sync is not throttled"},
    {"index.interval.bytes", "log.index.interval.bytes", TCFG_INT, "4096", chk_int_0,
     "Bytes between offset index entries"},
    {"leader.replication.throttled.replicas", NULL, TCFG_LIST, "", chk_leader_throttled,
     "Partitions whose leader serves followers' fetches at most at "
     "leader.replication.throttled.rate (of the leader): partition:broker entries, broker "
     "being the leader, or * for every replica of the topic; a follower in the ISR is not "
     "throttled"},
    {"max.message.bytes", "message.max.bytes", TCFG_INT, "1048588", chk_int_0,
     "Largest record batch accepted"},
    {"message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", TCFG_LONG, "3600000",
     chk_long_0,
     "CreateTime topics refuse a record stamped more than this many ms after the broker's "
     "clock (INVALID_TIMESTAMP)"},
    {"message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", TCFG_LONG,
     "9223372036854775807", chk_long_0,
     "CreateTime topics refuse a record stamped more than this many ms before the broker's "
     "clock (INVALID_TIMESTAMP)"},
    {"message.timestamp.type", "log.message.timestamp.type", TCFG_STRING, "CreateTime",
     chk_timestamp_type, "CreateTime or LogAppendTime"},
    {"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", TCFG_DOUBLE, "0.5", chk_ratio,
     "Share of not-yet-cleaned bytes that triggers a compaction"},
    {"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", TCFG_LONG, "0", chk_long_0,
     "Records younger than this are not compacted"},
    {"min.insync.replicas", "min.insync.replicas", TCFG_INT, "1", chk_int_1,
     "Replicas that must have a batch before acks=all succeeds"},
    {"preallocate", "log.preallocate", TCFG_BOOL, "false", chk_bool, "Accepted; no effect"},
    {"retention.bytes", "log.retention.bytes", TCFG_LONG, "-1", chk_long_m1,
     "Largest size of a partition's log before old segments are deleted (-1: no limit)"},
    {"retention.ms", "log.retention.ms", TCFG_LONG, "604800000", chk_long_m1,
     "Age after which segments are deleted (-1: forever)"},
    {"samsa.delay.enable", NULL, TCFG_BOOL, "true", chk_bool,
     "Records with a samsa.deliver.at or samsa.deliver.after header are held and delivered "
     "at that time (Samsa's delayed delivery); false: headers are stored as they are"},
    {"samsa.delay.max.ms", NULL, TCFG_LONG, "9223372036854775807", chk_long_0,
     "The furthest ahead a delivery header may ask for, in ms (INVALID_RECORD beyond)"},
    {"segment.bytes", "log.segment.bytes", TCFG_INT, "1073741824", chk_segment_bytes,
     "Segment file size at which a new segment is rolled"},
    {"segment.index.bytes", "log.index.size.max.bytes", TCFG_INT, "10485760", chk_int_4,
     "Largest offset index file"},
    {"segment.ms", "log.roll.ms", TCFG_LONG, "604800000", chk_long_1,
     "Age at which a new segment is rolled"},
    {"unclean.leader.election.enable", "unclean.leader.election.enable", TCFG_BOOL, "false",
     chk_bool,
     "A leaderless partition may elect a replica that is not in sync, losing what only the "
     "in-sync replicas had"},
};

size_t tcfg_count(void)
{
    return ARRAY_LEN(defs);
}
const struct tcfg_def *tcfg_at(size_t i)
{
    return i < ARRAY_LEN(defs) ? &defs[i] : NULL;
}

const struct tcfg_def *tcfg_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(defs); i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

const char *tcfg_validate(const char *name, const char *value)
{
    const struct tcfg_def *d = tcfg_find(name);
    if (!d)
        return "unknown topic config";
    if (!value)
        return "value must not be null";
    return d->check ? d->check(value) : NULL;
}
