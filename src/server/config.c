/* Broker configuration table and parsing. Every key Samsa reads is in `keys` with its
 * Kafka type and default; keys that Kafka has but Samsa does not use yet are accepted
 * quietly when listed in `accepted`, so Kafka config files carry over; anything else
 * warns. DescribeConfigs of the broker reports the table as Kafka would: types, null for
 * a key that is unset and has no default, and Kafka's synonym lists. */
#include "server/config.h"
#include "cluster/cluster.h"
#include "replica/replica.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kafka's ConfigDef types; K_LIST values are comma-separated strings to Samsa. */
enum key_type { K_INT, K_LONG, K_BOOL, K_STRING, K_DOUBLE, K_LIST, K_SHORT };

struct key_def {
    const char *name;
    enum key_type type;
    const char *default_value; /* NULL: none (Kafka's null), the key is unset unless given */
    int64_t min;
};

static const struct key_def keys[] = {
    {"node.id", K_INT, "1", 0},
    {"process.roles", K_LIST, "broker,controller", 0},
    {"listeners", K_LIST, "PLAINTEXT://:9092", 0},
    {"advertised.listeners", K_LIST, NULL, 0},
    {"controller.listener.names", K_LIST, "CONTROLLER", 0},
    {"controller.quorum.voters", K_LIST, "", 0},
    {"controller.quorum.election.timeout.ms", K_INT, "1000", 10},
    {"controller.quorum.fetch.timeout.ms", K_INT, "2000", 10},
    {"broker.heartbeat.interval.ms", K_INT, "2000", 1},
    {"broker.session.timeout.ms", K_INT, "9000", 1},
    {"samsa.broker.disconnect.fence.ms", K_INT, "1000", 0},
    {"samsa.delay.window.ms", K_INT, "3600000", 100},
    {"replica.fetch.wait.max.ms", K_INT, "500", 0},
    {"replica.fetch.min.bytes", K_INT, "1", 1},
    {"replica.fetch.max.bytes", K_INT, "1048576", 0},
    {"replica.fetch.response.max.bytes", K_INT, "10485760", 0},
    {"replica.fetch.backoff.ms", K_INT, "1000", 0},
    {"replica.lag.time.max.ms", K_LONG, "30000", 1},
    {"offsets.topic.replication.factor", K_SHORT, "3", 1},
    {"auto.leader.rebalance.enable", K_BOOL, "true", 0},
    {"leader.imbalance.check.interval.seconds", K_LONG, "300", 1},
    {"samsa.replica.fetch.sync", K_BOOL, "true", 0},
    /* Replication quotas (KIP-73). Kafka takes the rates only as dynamic broker configs;
     * here they are read from the file (docs/configuration.md). */
    {"leader.replication.throttled.rate", K_LONG, "9223372036854775807", 0},
    {"follower.replication.throttled.rate", K_LONG, "9223372036854775807", 0},
    {"replication.quota.window.num", K_INT, "11", 1},
    {"replication.quota.window.size.seconds", K_INT, "1", 1},
    {"log.dirs", K_LIST, NULL, 0},
    {"log.dir", K_LIST, "/tmp/kafka-logs", 0},
    {"broker.rack", K_STRING, NULL, 0},
    {"num.partitions", K_INT, "1", 1},
    {"default.replication.factor", K_INT, "1", 1},
    {"auto.create.topics.enable", K_BOOL, "true", 0},
    {"log.segment.bytes", K_INT, "1073741824", 14},
    {"log.roll.hours", K_INT, "168", 1},
    {"log.roll.ms", K_LONG, NULL, 1},
    {"log.retention.hours", K_INT, "168", -1},
    {"log.retention.minutes", K_INT, NULL, -1},
    {"log.retention.ms", K_LONG, NULL, -1},
    {"log.retention.bytes", K_LONG, "-1", -1},
    {"log.retention.check.interval.ms", K_LONG, "300000", 1},
    {"log.flush.interval.messages", K_LONG, "9223372036854775807", 1},
    {"log.flush.interval.ms", K_LONG, NULL, 0},
    /* Kafka's default is Long.MAX_VALUE, which leaves a topic's flush.ms unchecked unless
     * this is lowered too; Samsa checks every second so that flush.ms works when set. */
    {"log.flush.scheduler.interval.ms", K_LONG, "1000", 1},
    {"log.flush.offset.checkpoint.interval.ms", K_INT, "60000", 1},
    {"log.index.interval.bytes", K_INT, "4096", 0},
    {"log.index.size.max.bytes", K_INT, "10485760", 4},
    {"log.segment.delete.delay.ms", K_LONG, "60000", 0},
    {"log.preallocate", K_BOOL, "false", 0},
    {"log.message.timestamp.type", K_STRING, "CreateTime", 0},
    {"log.message.timestamp.after.max.ms", K_LONG, "3600000", 0},
    {"log.message.timestamp.before.max.ms", K_LONG, "9223372036854775807", 0},
    {"message.max.bytes", K_INT, "1048588", 0},
    {"socket.request.max.bytes", K_INT, "104857600", 1},
    {"connections.max.idle.ms", K_LONG, "600000", 1},
    {"max.connections", K_INT, "10000", 1},
    {"samsa.max.partitions", K_LONG, NULL, 1},
    {"metadata.log.max.record.bytes.between.snapshots", K_LONG, "20971520", 1},
    {"metadata.log.max.snapshot.interval.ms", K_LONG, "3600000", 0},
    {"max.connections.per.ip", K_INT, "2147483647", 0},
    {"max.connections.per.ip.overrides", K_STRING, "", 0},
    {"queued.max.requests", K_INT, "500", 1},
    {"samsa.connection.max.unsent.bytes", K_LONG, "16777216", 65536},
    {"queued.max.request.bytes", K_LONG, "-1", -1},
    {"samsa.queued.max.response.bytes", K_LONG, "268435456", -1},
    {"samsa.queued.max.response.files", K_INT, "1024", -1},
    {"min.insync.replicas", K_INT, "1", 1},
    {"fetch.max.bytes", K_INT, "1048576", 1024},
    {"samsa.fetch.sendfile", K_BOOL, "false", 0},
    {"samsa.sync.threads", K_INT, "4", 1},
    {"samsa.sync.syncfs.partitions", K_INT, "4", 0},
    {"log.level", K_STRING, "INFO", 0},
    {"log.cleanup.policy", K_LIST, "delete", 0},
    {"log.cleaner.enable", K_BOOL, "true", 0},
    {"log.cleaner.backoff.ms", K_LONG, "15000", 1},
    {"log.cleaner.delete.retention.ms", K_LONG, "86400000", 0},
    {"log.cleaner.min.compaction.lag.ms", K_LONG, "0", 0},
    {"log.cleaner.min.cleanable.ratio", K_DOUBLE, "0.5", 0},
    {"group.min.session.timeout.ms", K_INT, "6000", 1},
    {"group.max.session.timeout.ms", K_INT, "1800000", 1},
    {"group.initial.rebalance.delay.ms", K_INT, "3000", 0},
    {"group.max.size", K_INT, "2147483647", 1},
    {"samsa.group.max.member.metadata.bytes", K_LONG, "134217728", 1048576},
    {"offsets.retention.minutes", K_INT, "10080", 1},
    {"offsets.retention.check.interval.ms", K_LONG, "600000", 1},
    {"offsets.topic.num.partitions", K_INT, "50", 1},
    {"offset.metadata.max.bytes", K_INT, "4096", 0},
    {"producer.id.expiration.ms", K_INT, "86400000", 1},
    {"producer.id.expiration.check.interval.ms", K_INT, "600000", 1},
    {"transaction.state.log.num.partitions", K_INT, "50", 1},
    {"transaction.state.log.replication.factor", K_SHORT, "3", 1},
    {"transaction.state.log.min.isr", K_INT, "2", 1},
    {"transaction.state.log.segment.bytes", K_INT, "104857600", 1},
    {"transaction.max.timeout.ms", K_INT, "900000", 1},
    {"transactional.id.expiration.ms", K_INT, "604800000", 1},
    {"transaction.abort.timed.out.transaction.cleanup.interval.ms", K_INT, "10000", 1},
    {"transaction.remove.expired.transaction.cleanup.interval.ms", K_INT, "3600000", 1},
    /* The level of the transaction.version feature ApiVersions reports finalized (Kafka
     * sets it with kafka-features.sh or at format time): 2 lets the Java client use
     * transaction version 2. Requests of both versions are served whatever it is. */
    {"samsa.transaction.version", K_SHORT, "2", 0},
    /* Defaults of the topic configs of the same names; checked by their rules below. */
    {"compression.type", K_STRING, "producer", 0},
    {"compression.gzip.level", K_INT, "-1", -1},
    {"compression.lz4.level", K_INT, "9", 1},
    {"compression.zstd.level", K_INT, "3", -131072},
    {"unclean.leader.election.enable", K_BOOL, "false", 0},
};

_Static_assert(ARRAY_LEN(keys) <= BROKER_CONFIG_MAX_ITEMS, "DescribeConfigs lists every key");

/* Kafka keys accepted without effect today (later issues give them meaning). */
static const char *accepted[] = {
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
    "zookeeper.connect",
    "broker.id",
    "controller.quorum.bootstrap.servers",
    "delete.topic.enable",
};

static const struct key_def *find_key(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

const char *broker_config_value(const struct broker_config *c, const char *key)
{
    const char *v = props_get(&c->props, key);
    if (v)
        return v;
    const struct key_def *k = find_key(key);
    return k ? k->default_value : NULL;
}

static int bad(const char *key, const char *value, const char *why)
{
    say_error("config", "invalid value \"%s\" for %s: %s", value, key, why);
    return -1;
}

/* Splits "host:port" (host may be [v6]) into its parts; 0 or -1. */
static int split_host_port(const char *hp, size_t len, char **host, int32_t *port)
{
    char *s = xstrndup(hp, len);
    char *colon = strrchr(s, ':');
    int64_t p;
    if (!colon || parse_i64(colon + 1, &p) != 0 || p < 0 || p > 65535) {
        free(s);
        return -1;
    }
    *colon = '\0';
    char *h = s;
    if (h[0] == '[') { /* [::1] */
        h++;
        char *rb = strchr(h, ']');
        if (rb)
            *rb = '\0';
    }
    *host = xstrdup(h);
    *port = (int32_t)p;
    free(s);
    return 0;
}

/* controller.quorum.voters, Kafka's "id@host:port,..." list: the controllers that vote
 * in the metadata quorum and where their controller listeners are. */
static int parse_quorum_voters(struct broker_config *c)
{
    const char *v = props_get(&c->props, "controller.quorum.voters");
    if (!v || !*v)
        return 0;
    const char *p = v;
    bool self = false;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        const char *at = memchr(p, '@', len);
        char idtext[16] = "";
        int64_t id = -1;
        if (at && (size_t)(at - p) < sizeof idtext)
            memcpy(idtext, p, (size_t)(at - p));
        struct quorum_voter q = {0};
        if (!at || parse_i64(idtext, &id) != 0 || id < 0 || id > INT32_MAX ||
            split_host_port(at + 1, len - (size_t)(at + 1 - p), &q.host, &q.port) != 0 ||
            q.port < 1) {
            free(q.host);
            return bad("controller.quorum.voters", v, "expected node.id@host:port,...");
        }
        q.id = (int32_t)id;
        for (size_t i = 0; i < c->voter_count; i++) {
            if (c->voters[i].id == q.id) {
                free(q.host);
                return bad("controller.quorum.voters", v, "a node.id appears twice");
            }
        }
        if (c->voter_count == BROKER_MAX_VOTERS) {
            free(q.host);
            return bad("controller.quorum.voters", v, "at most 16 voters");
        }
        self |= q.id == c->node_id;
        c->voters[c->voter_count++] = q;
        p = end ? end + 1 : p + len;
    }
    if (c->controller && !self)
        return bad("controller.quorum.voters", v,
                   "this node has the controller role (process.roles), so it must be one of "
                   "the voters");
    if (!c->controller && self)
        return bad("controller.quorum.voters", v,
                   "this node is a broker only (process.roles=broker): it must not be a voter");
    return 0;
}

/* Whether name is one of controller.listener.names (default CONTROLLER). */
static bool is_controller_listener(const struct broker_config *c, const char *name, size_t len)
{
    const char *names = props_get(&c->props, "controller.listener.names");
    if (!names || !*names)
        names = "CONTROLLER";
    for (const char *p = names; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n && n == len && strncmp(p, name, n) == 0)
            return true;
        p += n;
    }
    return false;
}

/* listeners: NAME://host:port,...: the first one that is not a controller listener
 * serves clients; the controller listener takes the other voters' Raft messages. */
static int parse_listeners(struct broker_config *c)
{
    const char *value = broker_config_value(c, "listeners");
    for (const char *p = value; *p;) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, ",");
        const char *sep = strstr(p, "://");
        char *host = NULL;
        int32_t port = 0;
        if (!sep || sep >= p + len ||
            split_host_port(sep + 3, len - (size_t)(sep + 3 - p), &host, &port) != 0)
            return bad("listeners", value, "expected NAME://host:port,...");
        size_t name_len = (size_t)(sep - p);
        if (is_controller_listener(c, p, name_len) && !c->controller_host) {
            c->controller_listener_name = xstrndup(p, name_len);
            c->controller_host = host;
            c->controller_port = port;
        } else if (!is_controller_listener(c, p, name_len) && !c->listener_host) {
            c->listener_name = xstrndup(p, name_len);
            c->listener_host = host;
            c->listener_port = port;
        } else {
            free(host);
            return bad("listeners", value,
                       "one client listener and at most one controller listener are "
                       "supported");
        }
        p += len;
    }
    if (!c->listener_host && c->broker)
        return bad("listeners", value, "no listener for clients");
    if (!c->broker && !c->controller_host)
        return bad("listeners", value,
                   "a controller-only node needs a controller listener (one named in "
                   "controller.listener.names, default CONTROLLER)");
    if (c->controller && c->voter_count > 1 && !c->controller_host)
        return bad("listeners", value,
                   "a quorum of several voters needs a controller listener (one named in "
                   "controller.listener.names, default CONTROLLER)");
    return 0;
}

/* Reads a numeric key (set or default) into *out; "" means unset (returns 1). */
static int get_num(const struct broker_config *c, const char *key, int64_t *out)
{
    const struct key_def *k = find_key(key);
    ASSERT(k != NULL);
    const char *v = broker_config_value(c, key);
    if (!v || !*v)
        return 1;
    int64_t x;
    if (parse_i64(v, &x) != 0)
        return bad(key, v, "not a number");
    if (k->type == K_INT && (x > INT32_MAX || x < INT32_MIN))
        return bad(key, v, "out of range for an int");
    if (k->type == K_SHORT && (x > INT16_MAX || x < INT16_MIN))
        return bad(key, v, "out of range for a short");
    if (x < k->min) {
        char why[64];
        snprintf(why, sizeof why, "must be at least %lld", (long long)k->min);
        return bad(key, v, why);
    }
    *out = x;
    return 0;
}

static int get_bool(const struct broker_config *c, const char *key, bool *out)
{
    const char *v = broker_config_value(c, key);
    if (parse_bool(v, out) != 0)
        return bad(key, v, "must be true or false");
    return 0;
}

/* Parses "PLAINTEXT://host:port" (the first listener of a comma-separated list); name
 * may be NULL. */
static int parse_listener(const char *key, const char *value, char **name, char **host,
                          int32_t *port)
{
    const char *sep = strstr(value, "://");
    if (!sep)
        return bad(key, value, "expected NAME://host:port");
    const char *hp = sep + 3;
    const char *end = strchr(hp, ',');
    size_t len = end ? (size_t)(end - hp) : strlen(hp);
    char *s = xstrndup(hp, len);
    char *colon = strrchr(s, ':');
    if (!colon) {
        free(s);
        return bad(key, value, "expected NAME://host:port");
    }
    *colon = '\0';
    int64_t p;
    if (parse_i64(colon + 1, &p) != 0 || p < 0 || p > 65535) {
        free(s);
        return bad(key, value, "port must be 0..65535");
    }
    char *h = s;
    if (h[0] == '[') { /* [::1] */
        h++;
        char *rb = strchr(h, ']');
        if (rb)
            *rb = '\0';
    }
    *host = xstrdup(h);
    *port = (int32_t)p;
    if (name) {
        const char *start = value;
        while (isspace((unsigned char)*start))
            start++;
        *name = xstrndup(start, (size_t)(sep - start));
    }
    free(s);
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* max.connections.per.ip.overrides in Kafka's format: "address:count,address:count",
 * blanks around the separators allowed, the count after the last colon (so "::1:5" is
 * ::1 with 5). Addresses must be IP literals: Samsa does no DNS, where Kafka would
 * resolve a host name once at start-up. Counts are 0..2147483647 (0 refuses the
 * address). A repeated address keeps its last count, as in Kafka. */
static int parse_ip_limits(const char *key, const char *value, struct net_ip_limit **out,
                           size_t *count)
{
    *out = NULL;
    *count = 0;
    char *copy = xstrdup(value);
    if (*trim(copy) == '\0') {
        free(copy);
        return 0;
    }
    size_t cap = 1;
    for (const char *q = value; *q; q++)
        cap += *q == ',';
    struct net_ip_limit *v = xcalloc(cap, sizeof *v);
    size_t n = 0;
    int rc = 0;
    char why[192];
    for (char *p = copy;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        char *entry = trim(p);
        if (*entry == '\0') {
            rc = bad(key, value, "empty entry between commas or at either end");
            break;
        }
        char *colon = strrchr(entry, ':');
        if (!colon) {
            snprintf(why, sizeof why, "entry \"%s\" is not address:count", entry);
            rc = bad(key, value, why);
            break;
        }
        *colon = '\0';
        char *host = trim(entry), *num = trim(colon + 1);
        int64_t x;
        if (parse_i64(num, &x) != 0 || x < 0 || x > INT32_MAX) {
            snprintf(why, sizeof why, "count \"%s\" of %s is not a number 0..2147483647", num,
                     host);
            rc = bad(key, value, why);
            break;
        }
        if (net_ip_parse(host, v[n].addr) != 0) {
            snprintf(why, sizeof why,
                     "\"%s\" is not an IP address (host names are not supported: no DNS)", host);
            rc = bad(key, value, why);
            break;
        }
        v[n++].max_connections = (uint32_t)x;
        if (!comma)
            break;
        p = comma + 1;
    }
    free(copy);
    if (rc != 0) {
        free(v);
        return rc;
    }
    ASSERT(n <= cap);
    *out = v;
    *count = n;
    return 0;
}

int broker_config_load(struct broker_config *c, const char *file, char **overrides,
                       size_t override_count)
{
    memset(c, 0, sizeof *c);
    if (file && props_load_file(&c->props, file) != 0)
        return -1;
    for (size_t i = 0; i < override_count; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (!eq || eq == overrides[i]) {
            say_error("config", "--override expects key=value, got \"%s\"", overrides[i]);
            return -1;
        }
        char *k = xstrndup(overrides[i], (size_t)(eq - overrides[i]));
        props_set(&c->props, k, eq + 1);
        free(k);
    }
    for (size_t i = 0; i < c->props.count; i++) {
        const char *k = c->props.entries[i].key;
        bool known = find_key(k) != NULL;
        for (size_t a = 0; !known && a < ARRAY_LEN(accepted); a++)
            known = strcmp(accepted[a], k) == 0;
        if (!known)
            say_warn("config", "unknown configuration key %s (line %d) is ignored", k,
                     c->props.entries[i].line);
    }

    const char *lvl = broker_config_value(c, "log.level");
    if (say_level_parse(lvl, &c->log_level) != 0)
        return bad("log.level", lvl, "must be DEBUG, INFO, WARN or ERROR");
    say_set_level(c->log_level);

    int64_t v;
    int rc = 0;
#define NUM(key, field, type)                                                                      \
    do {                                                                                           \
        int r_ = get_num(c, key, &v);                                                              \
        if (r_ < 0)                                                                                \
            rc = -1;                                                                               \
        else if (r_ == 0)                                                                          \
            c->field = (type)v;                                                                    \
    } while (0)
    NUM("node.id", node_id, int32_t);
    NUM("num.partitions", num_partitions, int32_t);
    NUM("default.replication.factor", default_replication_factor, int16_t);
    NUM("log.segment.bytes", segment_bytes, int64_t);
    NUM("log.retention.bytes", retention_bytes, int64_t);
    NUM("log.retention.check.interval.ms", retention_check_interval_ms, int64_t);
    NUM("log.flush.interval.messages", flush_interval_messages, int64_t);
    NUM("log.flush.scheduler.interval.ms", flush_scheduler_interval_ms, int64_t);
    NUM("log.flush.offset.checkpoint.interval.ms", flush_offset_checkpoint_interval_ms, int64_t);
    NUM("log.index.interval.bytes", index_interval_bytes, int32_t);
    NUM("message.max.bytes", message_max_bytes, int32_t);
    NUM("socket.request.max.bytes", socket_request_max_bytes, int32_t);
    NUM("fetch.max.bytes", fetch_max_bytes, int32_t);
    NUM("samsa.sync.syncfs.partitions", syncfs_partitions, int32_t);
    NUM("connections.max.idle.ms", connections_max_idle_ms, int64_t);
    NUM("max.connections", max_connections, int32_t);
    c->max_partitions = 0; /* unset: server_default_max_partitions() */
    NUM("samsa.max.partitions", max_partitions, int64_t);
    NUM("metadata.log.max.record.bytes.between.snapshots", metadata_snapshot_max_bytes, int64_t);
    NUM("controller.quorum.election.timeout.ms", election_timeout_ms, int64_t);
    NUM("controller.quorum.fetch.timeout.ms", fetch_timeout_ms, int64_t);
    NUM("broker.heartbeat.interval.ms", broker_heartbeat_interval_ms, int64_t);
    NUM("broker.session.timeout.ms", broker_session_timeout_ms, int64_t);
    NUM("samsa.broker.disconnect.fence.ms", broker_disconnect_fence_ms, int64_t);
    NUM("samsa.delay.window.ms", delay_window_ms, int64_t);
    NUM("replica.fetch.wait.max.ms", replica_fetch_wait_max_ms, int32_t);
    NUM("replica.fetch.min.bytes", replica_fetch_min_bytes, int32_t);
    NUM("replica.fetch.max.bytes", replica_fetch_max_bytes, int32_t);
    NUM("replica.fetch.response.max.bytes", replica_fetch_response_max_bytes, int32_t);
    NUM("replica.fetch.backoff.ms", replica_fetch_backoff_ms, int64_t);
    NUM("replica.lag.time.max.ms", replica_lag_time_max_ms, int64_t);
    NUM("offsets.topic.replication.factor", offsets_topic_replication_factor, int16_t);
    NUM("leader.replication.throttled.rate", leader_replication_throttled_rate, int64_t);
    NUM("follower.replication.throttled.rate", follower_replication_throttled_rate, int64_t);
    NUM("replication.quota.window.num", replication_quota_window_num, int32_t);
    if (c->replication_quota_window_num > REPL_QUOTA_MAX_SAMPLES)
        rc = bad("replication.quota.window.num",
                 broker_config_value(c, "replication.quota.window.num"), "must be at most 100");
    int64_t window_s = 1;
    if (get_num(c, "replication.quota.window.size.seconds", &window_s) < 0)
        rc = -1;
    c->replication_quota_window_ms = window_s * 1000;
    int64_t imbalance_s = 300;
    if (get_num(c, "leader.imbalance.check.interval.seconds", &imbalance_s) < 0)
        rc = -1;
    c->leader_imbalance_check_interval_ms = imbalance_s * 1000;
    NUM("metadata.log.max.snapshot.interval.ms", metadata_snapshot_interval_ms, int64_t);
    c->max_connections_per_ip = INT32_MAX; /* stays so when set to "" or invalid */
    NUM("max.connections.per.ip", max_connections_per_ip, int32_t);
    NUM("queued.max.requests", queued_max_requests, int32_t);
    NUM("samsa.connection.max.unsent.bytes", max_unsent_bytes, int64_t);
    NUM("queued.max.request.bytes", queued_max_request_bytes, int64_t);
    NUM("samsa.queued.max.response.bytes", queued_max_response_bytes, int64_t);
    NUM("samsa.queued.max.response.files", queued_max_response_files, int32_t);
    /* -1 is "no bound", as in Kafka; 0 would stop every connection for good. */
    static const char *const budgets[] = {"queued.max.request.bytes",
                                          "samsa.queued.max.response.bytes",
                                          "samsa.queued.max.response.files"};
    for (size_t i = 0; i < ARRAY_LEN(budgets); i++) {
        const char *bv = broker_config_value(c, budgets[i]);
        if (bv && strcmp(bv, "0") == 0)
            rc = bad(budgets[i], bv, "must be -1 (no bound) or positive");
    }
    NUM("min.insync.replicas", min_insync_replicas, int32_t);
    NUM("group.min.session.timeout.ms", group_min_session_timeout_ms, int32_t);
    NUM("group.max.session.timeout.ms", group_max_session_timeout_ms, int32_t);
    NUM("group.initial.rebalance.delay.ms", group_initial_rebalance_delay_ms, int32_t);
    NUM("group.max.size", group_max_size, int32_t);
    NUM("samsa.group.max.member.metadata.bytes", group_max_member_metadata_bytes, int64_t);
    NUM("offsets.retention.minutes", offsets_retention_minutes, int64_t);
    NUM("offsets.retention.check.interval.ms", offsets_retention_check_interval_ms, int64_t);
    NUM("offsets.topic.num.partitions", offsets_topic_num_partitions, int32_t);
    NUM("offset.metadata.max.bytes", offset_metadata_max_bytes, int32_t);
    NUM("log.cleaner.backoff.ms", cleaner_backoff_ms, int64_t);
    NUM("producer.id.expiration.ms", producer_id_expiration_ms, int64_t);
    NUM("producer.id.expiration.check.interval.ms", producer_id_expiration_check_interval_ms,
        int64_t);
    NUM("transaction.state.log.num.partitions", txn_state_num_partitions, int32_t);
    NUM("transaction.state.log.replication.factor", txn_state_replication_factor, int16_t);
    NUM("transaction.state.log.min.isr", txn_state_min_isr, int32_t);
    NUM("transaction.state.log.segment.bytes", txn_state_segment_bytes, int32_t);
    NUM("transaction.max.timeout.ms", txn_max_timeout_ms, int32_t);
    NUM("transactional.id.expiration.ms", txn_id_expiration_ms, int64_t);
    NUM("transaction.abort.timed.out.transaction.cleanup.interval.ms", txn_abort_check_interval_ms,
        int64_t);
    NUM("transaction.remove.expired.transaction.cleanup.interval.ms",
        txn_expiration_check_interval_ms, int64_t);
    NUM("samsa.transaction.version", txn_version, int16_t);
    if (c->txn_version > 2)
        rc = bad("samsa.transaction.version", broker_config_value(c, "samsa.transaction.version"),
                 "must be 0, 1 or 2");
    NUM("samsa.sync.threads", sync_threads, int32_t);
    if (c->sync_threads > 16)
        rc = bad("samsa.sync.threads", broker_config_value(c, "samsa.sync.threads"),
                 "must be at most 16");

    /* Kafka's precedence: ms over minutes over hours. */
    c->roll_ms = -1;
    NUM("log.roll.hours", roll_ms, int64_t);
    c->roll_ms *= 3600000;
    NUM("log.roll.ms", roll_ms, int64_t);
    NUM("log.retention.hours", retention_ms, int64_t);
    c->retention_ms = c->retention_ms < 0 ? -1 : c->retention_ms * 3600000;
    int64_t minutes = 0;
    if (get_num(c, "log.retention.minutes", &minutes) == 0)
        c->retention_ms = minutes < 0 ? -1 : minutes * 60000;
    NUM("log.retention.ms", retention_ms, int64_t);
    c->flush_interval_ms = INT64_MAX;
    NUM("log.flush.interval.ms", flush_interval_ms, int64_t);
#undef NUM

    if (get_bool(c, "auto.create.topics.enable", &c->auto_create_topics) != 0 ||
        get_bool(c, "log.cleaner.enable", &c->cleaner_enable) != 0 ||
        get_bool(c, "samsa.fetch.sendfile", &c->fetch_sendfile) != 0 ||
        get_bool(c, "samsa.replica.fetch.sync", &c->replica_fetch_sync) != 0 ||
        get_bool(c, "auto.leader.rebalance.enable", &c->auto_leader_rebalance) != 0 ||
        get_bool(c, "unclean.leader.election.enable", &c->unclean_leader_election) != 0)
        rc = -1;

    const char *ts = broker_config_value(c, "log.message.timestamp.type");
    if (strcmp(ts, "CreateTime") == 0)
        c->log_append_time = false;
    else if (strcmp(ts, "LogAppendTime") == 0)
        c->log_append_time = true;
    else
        rc = bad("log.message.timestamp.type", ts, "must be CreateTime or LogAppendTime");

    const char *ipo = broker_config_value(c, "max.connections.per.ip.overrides");
    if (parse_ip_limits("max.connections.per.ip.overrides", ipo, &c->ip_limits,
                        &c->ip_limit_count) != 0)
        rc = -1;
    else if (c->ip_limit_count == 0 && c->max_connections_per_ip == 0)
        rc = bad("max.connections.per.ip", "0",
                 "can be 0 only if max.connections.per.ip.overrides is set (as in Kafka)");

    if (c->group_min_session_timeout_ms > c->group_max_session_timeout_ms)
        rc = bad("group.min.session.timeout.ms",
                 broker_config_value(c, "group.min.session.timeout.ms"),
                 "must not exceed group.max.session.timeout.ms");
    /* A broker property that is the default of a topic config follows that config's
     * rules: checked here, so a bad value stops start-up instead of a later assertion. */
    for (size_t i = 0; i < tcfg_count(); i++) {
        const struct tcfg_def *d = tcfg_at(i);
        const char *value = d->broker_key ? props_get(&c->props, d->broker_key) : NULL;
        const char *why = value ? tcfg_validate(d->name, value) : NULL;
        if (why)
            rc = bad(d->broker_key, value, why);
    }

    /* process.roles: broker,controller (the default, every node of a small cluster),
     * broker (an observer of the metadata quorum: controller.quorum.voters names the
     * controllers, not this node) or controller (a voter that hosts no partitions and
     * serves clients only what the controller listener answers). */
    const char *roles = broker_config_value(c, "process.roles");
    c->controller = c->broker = true;
    if (strcmp(roles, "broker") == 0)
        c->controller = false;
    else if (strcmp(roles, "controller") == 0)
        c->broker = false;
    else if (strcmp(roles, "broker,controller") != 0 && strcmp(roles, "controller,broker") != 0)
        rc = bad("process.roles", roles, "use broker,controller, broker or controller");
    if (!c->controller && !props_get(&c->props, "controller.quorum.voters"))
        rc = bad("process.roles", roles,
                 "a broker-only node needs controller.quorum.voters to find the controllers");
    if (parse_quorum_voters(c) != 0)
        rc = -1;

    if (parse_listeners(c) != 0)
        rc = -1;
    const char *adv = broker_config_value(c, "advertised.listeners");
    if (adv && *adv) {
        if (parse_listener("advertised.listeners", adv, NULL, &c->advertised_host,
                           &c->advertised_port) != 0)
            rc = -1;
    } else if (c->listener_host) {
        bool wildcard = !*c->listener_host || !strcmp(c->listener_host, "0.0.0.0") ||
                        !strcmp(c->listener_host, "::");
        c->advertised_host = xstrdup(wildcard ? "localhost" : c->listener_host);
        c->advertised_port = c->listener_port;
    }
    const char *dirs = broker_config_value(c, "log.dirs");
    if (!dirs || !*dirs)
        dirs = broker_config_value(c, "log.dir");
    const char *comma = strchr(dirs, ',');
    if (comma)
        say_warn("config", "log.dirs lists several directories; only the first, %.*s, is used",
                 (int)(comma - dirs), dirs);
    c->log_dir = comma ? xstrndup(dirs, (size_t)(comma - dirs)) : xstrdup(dirs);
    const char *rack = broker_config_value(c, "broker.rack");
    c->rack = rack && *rack ? xstrdup(rack) : NULL;
    return rc;
}

void broker_config_free(struct broker_config *c)
{
    props_free(&c->props);
    free(c->listener_name);
    free(c->listener_host);
    free(c->controller_host);
    free(c->controller_listener_name);
    for (size_t i = 0; i < c->voter_count; i++)
        free(c->voters[i].host);
    free(c->advertised_host);
    free(c->log_dir);
    free(c->rack);
    free(c->ip_limits);
    memset(c, 0, sizeof *c);
}

static enum tcfg_type item_type(enum key_type t)
{
    switch (t) {
    case K_INT: return TCFG_INT;
    case K_SHORT: return TCFG_SHORT;
    case K_LONG: return TCFG_LONG;
    case K_BOOL: return TCFG_BOOL;
    case K_STRING: return TCFG_STRING;
    case K_DOUBLE: return TCFG_DOUBLE;
    case K_LIST: return TCFG_LIST;
    }
    ASSERT(!"every key type maps to a config type");
    return TCFG_STRING;
}

size_t broker_config_items(const struct broker_config *c, struct broker_config_item *out,
                           size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(keys) && n < max; i++) {
        const char *set = props_get(&c->props, keys[i].name);
        out[n++] = (struct broker_config_item){
            .name = keys[i].name,
            .value = set ? set : keys[i].default_value,
            .type = item_type(keys[i].type),
            .is_default = set == NULL,
            .sensitive = false,
            .read_only = true,
        };
    }
    return n;
}

/* Kafka's groups of broker properties that give one value, highest precedence first
 * (DynamicBrokerConfig.brokerConfigSynonyms). Kafka also makes log.flush.interval.ms
 * fall back to log.flush.scheduler.interval.ms; Samsa does not (an unset
 * log.flush.interval.ms is "never"), so that pair is not synonyms here. */
static const char *const synonym_groups[][3] = {
    {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
    {"log.roll.ms", "log.roll.hours", NULL},
};

size_t broker_config_synonyms(const struct broker_config *c, const char *key,
                              struct broker_config_synonym *out, size_t max)
{
    ASSERT(max >= BROKER_CONFIG_MAX_SYNONYMS);
    const char *const *group = NULL;
    for (size_t g = 0; g < ARRAY_LEN(synonym_groups) && !group; g++)
        for (size_t i = 0; i < 3 && synonym_groups[g][i]; i++)
            if (strcmp(synonym_groups[g][i], key) == 0)
                group = synonym_groups[g];
    const char *alone[3] = {key, NULL, NULL};
    if (!group)
        group = alone;
    /* Every file setting of the group, then every default, as Kafka lists them; then
     * the entries before the key's own first one are dropped. So log.retention.ms,
     * unset and without a default, has no synonyms even when log.retention.hours is
     * set: Kafka 4.4 answers so, and clients read the source from the first entry. */
    struct broker_config_synonym all[BROKER_CONFIG_MAX_SYNONYMS];
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < 3 && group[i]; i++) {
            const struct key_def *k = find_key(group[i]);
            if (!k)
                continue;
            const char *v = pass == 0 ? props_get(&c->props, k->name) : k->default_value;
            if (!v)
                continue;
            ASSERT(n < BROKER_CONFIG_MAX_SYNONYMS);
            all[n++] = (struct broker_config_synonym){k->name, v, pass == 1};
        }
    }
    size_t first = 0;
    while (first < n && strcmp(all[first].name, key) != 0)
        first++;
    size_t out_n = 0;
    for (size_t i = first; i < n; i++)
        out[out_n++] = all[i];
    return out_n;
}
