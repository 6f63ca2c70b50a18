/* The partitions this node hosts: opening their logs at start-up and when topics are
 * created, closing and deleting them, and the effective per-topic configuration
 * (topic setting, else broker property, else Kafka's default). */
#include "server/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct topic_state *server_topic(struct server *s, struct slice topic)
{
    return hmap_get(&s->topics, topic);
}

struct partition *server_partition(struct server *s, struct slice topic, int32_t index)
{
    struct topic_state *t = hmap_get(&s->topics, topic);
    if (!t || index < 0 || index >= t->partition_count)
        return NULL;
    return t->partitions[index];
}

int16_t server_partition_absent(struct server *s, struct slice topic, int32_t index)
{
    const struct mtopic *t = cluster_topic_find(s->cluster, topic);
    struct topic_state *ts = hmap_get(&s->topics, topic);
    if (t && ts && index >= 0 && index < ts->partition_count && !ts->partitions[index])
        return KERR_NOT_LEADER_OR_FOLLOWER; /* another broker's: the client asks it */
    return KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

const struct mbroker *server_partition_leader(struct server *s, struct slice topic, int32_t index,
                                              int32_t *leader, int32_t *leader_epoch)
{
    const struct mtopic *t = cluster_topic_find(s->cluster, topic);
    *leader = *leader_epoch = -1;
    if (!t || index < 0 || index >= t->partition_count)
        return NULL;
    *leader = t->partitions[index].leader;
    *leader_epoch = t->partitions[index].leader_epoch;
    const struct mbroker *b = *leader >= 0 ? cluster_broker_find(s->cluster, *leader) : NULL;
    return b && !b->fenced ? b : NULL;
}

struct partition *server_partition_at_epoch(struct server *s, struct slice topic, int32_t index,
                                            int32_t current_leader_epoch, int16_t *error)
{
    struct partition *p = server_partition(s, topic, index);
    int16_t err = p ? partition_check_leader(p, current_leader_epoch)
                    : server_partition_absent(s, topic, index);
    if (err != KERR_NONE) {
        *error = err;
        return NULL;
    }
    return p;
}

const char *server_topic_config_value(const struct server *s, const struct mtopic *t,
                                      const char *name, int8_t *source)
{
    const char *v = t ? cluster_topic_config(t, name) : NULL;
    if (v) {
        *source = 1; /* DYNAMIC_TOPIC_CONFIG */
        return v;
    }
    const struct tcfg_def *d = tcfg_find(name);
    if (!d)
        return NULL;
    /* Kafka derives retention.ms/segment.ms from the hours/minutes keys too; the parsed
     * broker config already did that, so report its number when the file set any. */
    static char num[32];
    if (strcmp(name, "retention.ms") == 0 && (props_get(&s->cfg->props, "log.retention.ms") ||
                                              props_get(&s->cfg->props, "log.retention.minutes") ||
                                              props_get(&s->cfg->props, "log.retention.hours"))) {
        snprintf(num, sizeof num, "%lld", (long long)s->cfg->retention_ms);
        *source = 4;
        return num;
    }
    if (strcmp(name, "segment.ms") == 0 &&
        (props_get(&s->cfg->props, "log.roll.ms") || props_get(&s->cfg->props, "log.roll.hours"))) {
        snprintf(num, sizeof num, "%lld", (long long)s->cfg->roll_ms);
        *source = 4;
        return num;
    }
    if (d->broker_key && props_get(&s->cfg->props, d->broker_key)) {
        *source = 4; /* STATIC_BROKER_CONFIG */
        return props_get(&s->cfg->props, d->broker_key);
    }
    *source = 5; /* DEFAULT_CONFIG */
    return d->default_value;
}

static int64_t topic_num(const struct server *s, const struct mtopic *t, const char *name)
{
    int8_t source;
    const char *v = server_topic_config_value(s, t, name, &source);
    int64_t x = 0;
    if (!v || parse_i64(v, &x) != 0)
        ASSERT(!"topic config values are validated before they are stored");
    return x;
}

void server_topic_log_config(const struct server *s, const struct mtopic *t, struct log_config *out)
{
    log_config_default(out);
    out->segment_bytes = topic_num(s, t, "segment.bytes");
    out->segment_ms = topic_num(s, t, "segment.ms");
    out->retention_bytes = topic_num(s, t, "retention.bytes");
    out->retention_ms = topic_num(s, t, "retention.ms");
    out->index_interval_bytes = topic_num(s, t, "index.interval.bytes");
    out->max_index_bytes = topic_num(s, t, "segment.index.bytes");
    out->flush_interval_messages = topic_num(s, t, "flush.messages");
    out->flush_interval_ms = topic_num(s, t, "flush.ms");
    int8_t source;
    const char *policy = server_topic_config_value(s, t, "cleanup.policy", &source);
    out->cleanup_compact = strstr(policy, "compact") != NULL;
    out->cleanup_delete = strstr(policy, "delete") != NULL;
    out->delete_retention_ms = topic_num(s, t, "delete.retention.ms");
    out->min_compaction_lag_ms = topic_num(s, t, "min.compaction.lag.ms");
    out->min_cleanable_dirty_ratio =
        strtod(server_topic_config_value(s, t, "min.cleanable.dirty.ratio", &source), NULL);
    const char *ts = server_topic_config_value(s, t, "message.timestamp.type", &source);
    out->timestamp_type = strcmp(ts, "LogAppendTime") == 0 ? LOG_TIMESTAMP_LOG_APPEND_TIME
                                                           : LOG_TIMESTAMP_CREATE_TIME;
}

static int64_t checkpoint_lookup(struct hmap *m, const char *topic, int32_t index, int64_t missing)
{
    char key[300];
    int n = snprintf(key, sizeof key, "%s-%d", topic, index);
    int64_t *v = hmap_get(m, (struct slice){(const uint8_t *)key, (size_t)n});
    return v ? *v : missing;
}

/* Takes the role the metadata gives this node, for a partition it holds a replica of:
 * leader (once it may lead: server_may_lead), or follower of another broker or of none
 * (its leader was fenced, or it is this node's from before a restart). A demoted
 * partition's parked fetches are retried, so they answer now instead of at their
 * deadline. */
static void follow_metadata(struct server *s, struct partition *p, const struct mpartition *mp)
{
    int32_t self = s->cfg->node_id;
    if (mp->leader == self && server_may_lead(s)) {
        /* An unclean election (and only it) makes a replica that was out of sync the one
         * member of the ISR without changing the replicas; the completion of a
         * reassignment, which may also make a replica that just joined lead, drops some. */
        bool was_in_sync = p->isr_count == 0; /* unknown: not a change seen here */
        for (int32_t i = 0; i < p->isr_count; i++)
            was_in_sync |= p->isr[i] == self;
        if (!was_in_sync && p->role != PARTITION_LEADER && mp->isr_count == 1 &&
            mp->replica_count == p->replica_count)
            say_warn("server",
                     "partition %s-%d: this replica leads after an UNCLEAN election "
                     "(unclean.leader.election.enable), from its log end %lld; records the "
                     "in-sync replicas had beyond it are lost",
                     p->topic, p->index, (long long)log_end_offset(p->log));
        partition_become_leader(p, mp->leader_epoch);
        if (partition_set_assignment(p, self, mp->leader, mp->partition_epoch, mp->replicas,
                                     mp->replica_count, mp->isr, mp->isr_count))
            server_high_watermark_moved(s, p);
        return;
    }
    bool was_leader = p->role == PARTITION_LEADER;
    partition_become_follower(p, mp->leader_epoch);
    partition_set_assignment(p, self, mp->leader, mp->partition_epoch, mp->replicas,
                             mp->replica_count, mp->isr, mp->isr_count);
    if (was_leader)
        server_partition_demoted(s, p);
    /* At start-up, before the loop exists, server_replication_start does it. */
    if (mp->leader >= 0 && mp->leader != self && s->loop)
        server_replication_follow(s, p);
}

/* Whether this node holds a replica of the partition (the others are other brokers'). */
static bool hosted_here(const struct server *s, const struct mpartition *mp)
{
    for (int32_t i = 0; i < mp->replica_count; i++)
        if (mp->replicas[i] == s->cfg->node_id)
            return true;
    return false;
}

static struct partition *open_partition(struct server *s, struct topic_state *ts,
                                        const struct mtopic *t, int32_t index)
{
    char dir[4096], id[CLUSTER_UUID_TEXT_BYTES];
    snprintf(dir, sizeof dir, "%s/%s-%d", s->log_dir, t->name, index);
    cluster_uuid_format(t->id, id);
    struct partition_spec spec = {
        .dir = dir,
        .topic = ts->name,
        .settings = &ts->settings,
        .index = index,
        .topic_id = id,
        .recovery_point = checkpoint_lookup(&s->recovery_points, t->name, index, -1),
        .start_offset = checkpoint_lookup(&s->start_offsets, t->name, index, -1),
    };
    server_topic_log_config(s, t, &spec.log);
    struct partition *p = NULL;
    int rc = partition_open(&spec, &p);
    if (rc != 0) {
        say_error("server", "cannot open partition %s-%d in %s: %s", t->name, index, dir,
                  storage_strerror(rc));
        return NULL;
    }
    follow_metadata(s, p, &t->partitions[index]);
    return p;
}

static void grow_to(struct topic_state *ts, const struct mtopic *t)
{
    ts->partitions = xrealloc(ts->partitions, (size_t)t->partition_count * sizeof *ts->partitions);
    ts->target_count = t->partition_count;
}

/* Opens partitions [ts->partition_count, t->partition_count) now. */
static int open_new_partitions(struct server *s, struct topic_state *ts, const struct mtopic *t)
{
    grow_to(ts, t);
    for (int32_t i = ts->partition_count; i < t->partition_count; i++) {
        struct partition *p = NULL;
        if (hosted_here(s, &t->partitions[i]) && !(p = open_partition(s, ts, t, i)))
            return -1;
        ts->partitions[i] = p;
        ts->partition_count = i + 1;
    }
    return 0;
}

/* ---- opening new partitions a slice at a time ----
 * Creating 10,000 partitions is seconds of mkdir, open and index set-up; done at once
 * it would stall every client for that long (a Metadata request waited 2-38 s). Once
 * the broker serves, partitions of new topics and added partitions are opened at most
 * OPEN_SLICE_MS per loop iteration (a zero-delay timer), with the loop serving in
 * between. Until all are open, Metadata reports the rest LEADER_NOT_AVAILABLE,
 * produce and fetch get UNKNOWN_TOPIC_OR_PARTITION (both retriable), and CreateTopics
 * waits to answer (server_topic_wait_open). At start-up, before the broker serves,
 * everything is opened at once. */
#define OPEN_SLICE_MS 5

struct open_waiter {
    void (*done)(void *arg, int16_t error);
    void *arg;
    struct open_waiter *next;
};

static bool serving(const struct server *s)
{
    return s->listener && !s->stopping;
}

/* Takes ts out of the queue of topics being opened (if queued). */
static void opening_dequeue(struct server *s, struct topic_state *ts)
{
    for (size_t i = 0; i < s->opening_count; i++) {
        if (s->opening[i] == ts) {
            memmove(&s->opening[i], &s->opening[i + 1],
                    (s->opening_count - i - 1) * sizeof s->opening[0]);
            s->opening_count--;
            return;
        }
    }
}

/* Takes ts out of the queue (if queued) and tells its waiters how the opening ended. */
static void opening_end(struct server *s, struct topic_state *ts, int16_t error)
{
    opening_dequeue(s, ts);
    ts->opening_created = false;
    struct open_waiter *w = ts->waiters;
    ts->waiters = NULL;
    while (w) {
        struct open_waiter *next = w->next;
        w->done(w->arg, error);
        free(w);
        w = next;
    }
}

static void open_slice(struct net_loop *loop, void *arg);

struct take_back {
    struct server *srv;
    char *topic;
};

/* The deletion of a topic that could not be opened is done. If it failed, the topic is
 * still there: its waiters are told now. */
static void taken_back(void *arg, const struct cluster_result *res)
{
    struct take_back *tb = arg;
    struct topic_state *ts = hmap_get(&tb->srv->topics, slice_from_cstr(tb->topic));
    if (res->err != CLUSTER_OK && ts && ts->taking_back) {
        say_error("server", "topic %s could not be removed again: %s", tb->topic,
                  res->why ? res->why : "metadata log error");
        ts->taking_back = false;
        opening_end(tb->srv, ts, KERR_KAFKA_STORAGE_ERROR);
    }
    free(tb->topic);
    free(tb);
}

static void opening_schedule(struct server *s)
{
    if (s->open_timer == 0 && s->opening_count > 0)
        s->open_timer = net_timer_add(s->loop, 0, open_slice, s);
}

static void opening_add(struct server *s, struct topic_state *ts, const struct mtopic *t)
{
    grow_to(ts, t);
    for (size_t i = 0; i < s->opening_count; i++)
        if (s->opening[i] == ts)
            return;
    if (s->opening_count == s->opening_cap) {
        s->opening_cap = s->opening_cap ? 2 * s->opening_cap : 16;
        s->opening = xrealloc(s->opening, s->opening_cap * sizeof *s->opening);
    }
    s->opening[s->opening_count++] = ts;
    opening_schedule(s);
}

static void open_slice(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct server *s = arg;
    s->open_timer = 0;
    int64_t deadline = time_mono_ms() + OPEN_SLICE_MS;
    while (s->opening_count > 0 && time_mono_ms() < deadline) {
        struct topic_state *ts = s->opening[0];
        const struct mtopic *t = cluster_topic_find(s->cluster, slice_from_cstr(ts->name));
        ASSERT(t); /* a deleted topic leaves the queue in remove_topic */
        if (ts->partition_count == ts->target_count) {
            opening_end(s, ts, KERR_NONE);
            continue;
        }
        if (!hosted_here(s, &t->partitions[ts->partition_count])) {
            ts->partitions[ts->partition_count++] = NULL; /* another broker's */
            continue;
        }
        struct partition *p = open_partition(s, ts, t, ts->partition_count);
        if (p) {
            ts->partitions[ts->partition_count++] = p;
            continue;
        }
        if (ts->opening_created) {
            /* No topic is listed that producers would find broken: take it back (the
             * deletion closes and removes what was opened). Whoever waits for the
             * opening hears of the failure once the topic is gone from the metadata
             * (remove_topic), so that nobody told "it failed" can still find it. */
            say_error("server", "topic %s could not be opened; removing it again", t->name);
            ts->taking_back = true;
            opening_dequeue(s, ts);
            struct take_back *tb = xcalloc(1, sizeof *tb);
            *tb = (struct take_back){s, xstrdup(t->name)};
            cluster_delete_topic(s->cluster, slice_from_cstr(t->name), taken_back, tb);
        } else {
            opening_end(s, ts, KERR_KAFKA_STORAGE_ERROR);
            say_error("server", "new partitions of %s could not all be opened", t->name);
        }
    }
    opening_schedule(s);
}

void server_topic_wait_cancel(struct server *s, struct slice topic, void *arg)
{
    struct topic_state *ts = hmap_get(&s->topics, topic);
    for (struct open_waiter **w = ts ? &ts->waiters : NULL; w && *w; w = &(*w)->next) {
        if ((*w)->arg == arg) {
            struct open_waiter *gone = *w;
            *w = gone->next;
            free(gone);
            return;
        }
    }
}

bool server_topic_wait_open(struct server *s, struct slice topic,
                            void (*done)(void *arg, int16_t error), void *arg)
{
    struct topic_state *ts = hmap_get(&s->topics, topic);
    if (!ts || ts->partition_count == ts->target_count)
        return false;
    struct open_waiter *w = xcalloc(1, sizeof *w);
    *w = (struct open_waiter){done, arg, ts->waiters};
    ts->waiters = w;
    return true;
}

struct throttled_ids {
    int32_t self;
    int32_t *ids;
    size_t n, cap;
};

static void add_throttled(void *arg, int32_t partition, int32_t broker)
{
    struct throttled_ids *c = arg;
    if (broker != c->self)
        return;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->ids = xrealloc(c->ids, c->cap * sizeof *c->ids);
    }
    c->ids[c->n++] = partition;
}

/* A throttled-replicas config as it applies to this node, as Kafka's broker reads it
 * (TopicConfigHandler): "*" throttles every partition of the topic, an entry only when
 * it names this node. Logged when what this node throttles changes. */
static void read_throttled(const struct server *s, const struct mtopic *t, const char *name,
                           struct throttled_partitions *out)
{
    int8_t source;
    const char *v = server_topic_config_value(s, t, name, &source);
    struct throttled_ids c = {.self = s->cfg->node_id};
    int rc = tcfg_replica_list_parse(v, add_throttled, &c);
    ASSERT(rc >= 0 && "topic config values are validated before they are stored");
    struct throttled_partitions old = *out;
    *out = (struct throttled_partitions){0};
    throttled_set(out, rc == 1, c.ids, c.n);
    free(c.ids);
    bool same =
        old.all == out->all && old.count == out->count &&
        (old.count == 0 || memcmp(old.ids, out->ids, (size_t)old.count * sizeof *old.ids) == 0);
    if (!same && out->all)
        say_info("server", "topic %s: %s throttles every partition's replication on this node",
                 t->name, name);
    else if (!same && out->count > 0)
        say_info("server", "topic %s: %s throttles %d partitions' replication on this node",
                 t->name, name, out->count);
    else if (!same)
        say_info("server", "topic %s: %s throttles nothing on this node any more", t->name, name);
    throttled_free(&old);
}

static void read_settings(const struct server *s, const struct mtopic *t,
                          struct topic_settings *out)
{
    int8_t source;
    out->internal = t->internal;
    out->compacted =
        strstr(server_topic_config_value(s, t, "cleanup.policy", &source), "compact") != NULL;
    out->max_message_bytes = topic_num(s, t, "max.message.bytes");
    out->min_insync_replicas = topic_num(s, t, "min.insync.replicas");
    out->flush_messages = topic_num(s, t, "flush.messages");
    out->flush_ms = topic_num(s, t, "flush.ms");
    if (compress_type_parse(server_topic_config_value(s, t, "compression.type", &source),
                            &out->compression) != 0)
        ASSERT(!"topic config values are validated before they are stored");
    const char *level = compress_level_config(out->compression);
    out->compression_level = level ? (int)topic_num(s, t, level) : 0;
    out->create_time = strcmp(server_topic_config_value(s, t, "message.timestamp.type", &source),
                              "CreateTime") == 0;
    out->timestamp_before_max_ms = topic_num(s, t, "message.timestamp.before.max.ms");
    out->timestamp_after_max_ms = topic_num(s, t, "message.timestamp.after.max.ms");
    read_throttled(s, t, "leader.replication.throttled.replicas", &out->leader_throttled);
    read_throttled(s, t, "follower.replication.throttled.replicas", &out->follower_throttled);
    out->delay_enabled =
        strcmp(server_topic_config_value(s, t, "samsa.delay.enable", &source), "true") == 0;
    out->delay_max_ms = topic_num(s, t, "samsa.delay.max.ms");
}

/* A new topic: its partitions are opened now before the broker serves, else a slice
 * at a time. */
static int add_topic(struct server *s, const struct mtopic *t)
{
    struct topic_state *ts = xcalloc(1, sizeof *ts);
    ts->name = xstrdup(t->name);
    read_settings(s, t, &ts->settings);
    hmap_put(&s->topics, slice_from_cstr(ts->name), ts);
    if (!serving(s))
        return open_new_partitions(s, ts, t);
    ts->opening_created = true;
    opening_add(s, ts, t);
    return 0;
}

/* Directories of a deleted topic (or of replicas a reassignment moved away), renamed on
 * the loop and removed on the remover thread. */
struct dir_removal {
    struct server *srv;
    char *topic;             /* what they held, for the log: "topic t", "partition t-3" */
    const atomic_bool *stop; /* the server is shutting down: leave the rest to start-up */
    size_t n;
    char *paths[]; /* owned */
};

static void remove_dirs(void *arg)
{
    struct dir_removal *r = arg;
    for (size_t i = 0; i < r->n; i++) {
        if (atomic_load(r->stop)) {
            say_info("server", "shutting down: the rest of %s is removed at the next start",
                     r->topic);
            return;
        }
        int rc = log_remove_renamed(r->paths[i]);
        if (rc != 0)
            say_warn("server", "cannot remove %s (removed at the next start): %s", r->paths[i],
                     storage_strerror(rc));
    }
}

static struct dir_removal *dir_removal_new(struct server *s, const char *what, size_t cap)
{
    struct dir_removal *r = xcalloc(1, sizeof *r + cap * sizeof r->paths[0]);
    r->srv = s;
    r->topic = xstrdup(what);
    r->stop = &s->removal_stop;
    return r;
}

static void dir_removal_free(struct dir_removal *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->paths[i]);
    free(r->topic);
    free(r);
}

static void dirs_removed(void *arg, struct log_flush_job **jobs, size_t n)
{
    (void)jobs;
    (void)n;
    struct dir_removal *r = arg;
    say_info("server", "removed the %zu partition directories of %s", r->n, r->topic);
    dir_removal_free(r);
}

/* The renames are durable and the checkpoints no longer name the partitions: their
 * directories can go (on the remover thread). */
static void renames_durable(void *arg, int rc)
{
    (void)rc; /* logged; the directories are removed all the same, or at the next start */
    struct dir_removal *r = arg;
    struct server *s = r->srv;
    if (r->n > 0)
        syncer_submit_work(s->remover, remove_dirs, dirs_removed, r);
    else
        dir_removal_free(r);
}

/* The renames of r are made durable by one fsync of the log dir, and the checkpoints
 * rewritten without the partitions, on the metadata thread; the files go only after. */
static void dir_removal_start(struct server *s, struct dir_removal *r)
{
    server_write_checkpoints(s, CHECKPOINT_RECOVERY_POINTS | CHECKPOINT_START_OFFSETS, r->n > 0,
                             renames_durable, r);
}

/* Closes a partition; with delete_files, renames its directory out of the way into
 * *renamed (replica.h). Its waiters first learn it is gone. */
static void close_partition(struct server *s, struct partition *p, bool delete_files,
                            char **renamed)
{
    server_partition_forget(s, p);
    /* Parked fetches on p are retried: they now answer UNKNOWN_TOPIC_OR_PARTITION. */
    purgatory_forget(s->fetch_waits, (struct purgatory_key){p, PURGATORY_DATA});
    if (!delete_files) {
        partition_close(p);
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s-%d", s->log_dir, p->topic, p->index);
    int rc = partition_delete(p, dir, renamed);
    if (rc != 0)
        say_warn("server", "cannot delete %s: %s", dir, storage_strerror(rc));
}

/* Deleting a topic: its directories are renamed on the loop, then ONE fsync of the log
 * dir makes every rename durable before anything can reuse the names (otherwise a crash
 * could bring an old directory back under a re-created topic's name). Removing the
 * files, which takes long for big segments, runs on the remover thread (not the sync
 * thread: acks=all rounds would wait behind it). */
static void remove_topic(struct server *s, struct topic_state *ts, bool delete_files)
{
    opening_end(s, ts,
                ts->taking_back ? KERR_KAFKA_STORAGE_ERROR : KERR_UNKNOWN_TOPIC_OR_PARTITION);
    hmap_remove(&s->topics, slice_from_cstr(ts->name));
    struct dir_removal *r = NULL;
    if (delete_files) {
        char what[300];
        snprintf(what, sizeof what, "deleted topic %s", ts->name);
        r = dir_removal_new(s, what, (size_t)ts->partition_count);
    }
    for (int32_t i = 0; i < ts->partition_count; i++) {
        char *renamed = NULL;
        if (!ts->partitions[i])
            continue; /* another broker's */
        close_partition(s, ts->partitions[i], delete_files, &renamed);
        if (renamed)
            r->paths[r->n++] = renamed;
    }
    free(ts->partitions);
    throttled_free(&ts->settings.leader_throttled);
    throttled_free(&ts->settings.follower_throttled);
    free(ts->name);
    free(ts);
    if (delete_files)
        dir_removal_start(s, r);
}

/* ---- replicas a reassignment adds or removes ---- */

/* This node became a replica of a partition it did not hold: its log is opened (made
 * empty if new) and it follows the leader, from its log end. A directory already there
 * (left when this node last held the partition) is kept if it records this topic's id:
 * the leader's epochs truncate whatever in it diverges. One of another topic (an older
 * one of the same name) is moved to quarantine first; nothing is deleted. */
static void start_hosting(struct server *s, struct topic_state *ts, const struct mtopic *t,
                          int32_t index)
{
    char name[300], dir[4096], had[64], id[CLUSTER_UUID_TEXT_BYTES];
    snprintf(name, sizeof name, "%s-%d", t->name, index);
    snprintf(dir, sizeof dir, "%s/%s", s->log_dir, name);
    cluster_uuid_format(t->id, id);
    if (access(dir, F_OK) == 0 &&
        (log_dir_read_topic_id(dir, had, sizeof had) != 0 || strcmp(had, id) != 0)) {
        char *moved = NULL;
        int rc = log_dir_quarantine(s->log_dir, name, &moved);
        if (rc != 0) {
            say_error("server",
                      "%s holds data of another topic and cannot be moved to quarantine (%s): "
                      "not hosting partition %s",
                      dir, strerror(-rc), name);
            return;
        }
        say_warn("server", "%s held data of another topic: moved to %s, nothing deleted", dir,
                 moved);
        free(moved);
    }
    say_info("server", "partition %s: this node is a new replica", name);
    ts->partitions[index] = open_partition(s, ts, t, index);
}

/* This node is no longer a replica of partition `index`: produce requests waiting on it
 * are answered NOT_LEADER_OR_FOLLOWER (the producer finds the new leader), its log is
 * closed and its directory renamed, made durable with checkpoints that no longer name it,
 * then removed on the remover thread. */
static void stop_hosting(struct server *s, struct topic_state *ts, int32_t index)
{
    struct partition *p = ts->partitions[index];
    ts->partitions[index] = NULL;
    char what[300];
    snprintf(what, sizeof what, "partition %s-%d, no longer a replica here", ts->name, index);
    say_info("server", "%s: removing its log", what);
    server_partition_demoted(s, p);
    struct dir_removal *r = dir_removal_new(s, what, 1);
    char *renamed = NULL;
    close_partition(s, p, true, &renamed);
    if (renamed)
        r->paths[r->n++] = renamed;
    dir_removal_start(s, r);
}

int server_cluster_event(void *arg, enum cluster_event ev, const struct mtopic *t,
                         int32_t partition)
{
    struct server *s = arg;
    struct topic_state *ts = hmap_get(&s->topics, slice_from_cstr(t->name));
    switch (ev) {
    case CLUSTER_TOPIC_CREATED:
        if (!ts && add_topic(s, t) != 0) {
            say_error("server",
                      "topic %s was recorded but not all its partitions could be "
                      "opened",
                      t->name);
            return -1; /* the cluster takes the topic back */
        }
        break;
    case CLUSTER_PARTITIONS_ADDED:
        if (ts && serving(s)) {
            opening_add(s, ts, t);
        } else if (ts && open_new_partitions(s, ts, t) != 0) {
            say_error("server", "new partitions of %s could not all be opened", t->name);
            return -1;
        }
        break;
    case CLUSTER_CONFIG_CHANGED:
        if (ts) {
            read_settings(s, t, &ts->settings);
            struct log_config lc;
            server_topic_log_config(s, t, &lc);
            for (int32_t i = 0; i < ts->partition_count; i++)
                if (ts->partitions[i])
                    log_set_config(ts->partitions[i]->log, &lc);
        }
        break;
    case CLUSTER_PARTITION_CHANGED:
        /* A partition still being opened takes its role from the metadata then. */
        if (ts && partition < ts->partition_count) {
            const struct mpartition *mp = &t->partitions[partition];
            say_info("server", "partition %s-%d: leader %d at epoch %d, %d replicas, %d in sync",
                     t->name, partition, mp->leader, mp->leader_epoch, mp->replica_count,
                     mp->isr_count);
            bool here = hosted_here(s, mp);
            if (ts->partitions[partition] && here)
                follow_metadata(s, ts->partitions[partition], mp);
            else if (here)
                start_hosting(s, ts, t, partition);
            else if (ts->partitions[partition])
                stop_hosting(s, ts, partition);
        }
        break;
    case CLUSTER_TOPIC_DELETED:
        if (ts) {
            say_info("server", "deleting topic %s (%d partitions)", t->name, ts->partition_count);
            remove_topic(s, ts, true);
        }
        break;
    }
    return 0;
}

static void load_checkpoint(struct server *s, const char *file, struct hmap *into)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->log_dir, file);
    struct ckpt_entry *e = NULL;
    size_t n = 0;
    int rc = ckpt_read(path, &e, &n);
    if (rc != 0) {
        say_warn("server", "ignoring unreadable %s: %s", path, storage_strerror(rc));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char key[300];
        int len = snprintf(key, sizeof key, "%s-%d", e[i].topic, e[i].partition);
        int64_t *v = xmalloc(sizeof *v);
        *v = e[i].offset;
        int64_t *old = hmap_get(into, (struct slice){(const uint8_t *)key, (size_t)len});
        free(old);
        hmap_put(into, (struct slice){(const uint8_t *)key, (size_t)len}, v);
    }
    ckpt_free_entries(e, n);
}

static void free_checkpoint_map(struct hmap *m)
{
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(m, &it, &k, &v))
        free(v);
    hmap_free(m);
}

/* samsa.max.partitions when unset. Partitions do not each hold descriptors or mappings
 * (storage's file cache bounds the open segments), so what remains per partition is
 * memory for its state and files on disk: a fixed ceiling, the figure `make bench`
 * measures (bench/limits.py, idle partitions). */
#define DEFAULT_MAX_PARTITIONS 100000

int64_t server_default_max_partitions(void)
{
    return DEFAULT_MAX_PARTITIONS;
}

int server_open_all_partitions(struct server *s)
{
    hmap_init(&s->recovery_points);
    hmap_init(&s->start_offsets);
    load_checkpoint(s, "recovery-point-offset-checkpoint", &s->recovery_points);
    load_checkpoint(s, "log-start-offset-checkpoint", &s->start_offsets);
    int rc = 0;
    int64_t t0 = time_mono_ms();
    size_t partitions = 0;
    for (size_t i = 0; i < cluster_topic_count(s->cluster) && rc == 0; i++) {
        const struct mtopic *t = cluster_topic_at(s->cluster, i);
        rc = add_topic(s, t);
        partitions += (size_t)t->partition_count;
    }
    free_checkpoint_map(&s->recovery_points);
    free_checkpoint_map(&s->start_offsets);
    /* From now on the checkpoint files name only partitions that exist: entries of
     * deleted topics must never apply to a topic later created under the same name. */
    if (rc == 0) {
        server_sort_out_unknown_dirs(s);
        if (server_write_checkpoints_now(s, CHECKPOINT_RECOVERY_POINTS |
                                                CHECKPOINT_START_OFFSETS) != 0)
            rc = -1;
    }
    say_info("server", "opened %zu topics with %zu partitions in %lld ms",
             cluster_topic_count(s->cluster), partitions, (long long)(time_mono_ms() - t0));
    return rc;
}

void server_close_all_partitions(struct server *s)
{
    size_t it = 0;
    struct slice k;
    void *v;
    struct topic_state **all = xcalloc(s->topics.count + 1, sizeof *all);
    size_t n = 0;
    while (hmap_next(&s->topics, &it, &k, &v))
        all[n++] = v;
    for (size_t i = 0; i < n; i++)
        remove_topic(s, all[i], false); /* answers whoever waits for an opening */
    free(all);
    hmap_free(&s->topics);
    ASSERT(s->opening_count == 0);
    free(s->opening);
    s->opening = NULL;
}

/* ---- checkpoint files ----
 * recovery-point-offset-checkpoint and log-start-offset-checkpoint name every hosted
 * partition. Their content is collected on the loop (topic names copied) and written
 * (write, fsync, rename, fsync) on the metadata thread while the broker serves, inline
 * before and after. One thread, in submission order, for every checkpoint write and
 * every metadata change: a write collected later is written later, and a topic deleted
 * and re-created under its name is written to the metadata log only after the deletion's
 * checkpoints, which no longer name its partitions (else the new topic could inherit
 * their recovery points or log start offsets). */

struct checkpoint_file {
    char path[4096];
    struct ckpt_entry *entries;
    size_t n;
};

struct checkpoint_write {
    char log_dir_to_sync[4096]; /* "": none */
    struct checkpoint_file files[2];
    size_t file_count;
    int rc; /* the first failure */
    void (*done)(void *arg, int rc);
    void *arg;
};

static void collect_file(struct server *s, struct checkpoint_file *f, const char *file,
                         int64_t (*offset_of)(const struct log *))
{
    snprintf(f->path, sizeof f->path, "%s/%s", s->log_dir, file);
    size_t cap = 64;
    f->entries = xcalloc(cap, sizeof *f->entries);
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(&s->topics, &it, &k, &v)) {
        struct topic_state *ts = v;
        for (int32_t i = 0; i < ts->partition_count; i++) {
            if (!ts->partitions[i])
                continue; /* another broker's */
            if (f->n == cap) {
                cap *= 2;
                f->entries = xrealloc(f->entries, cap * sizeof *f->entries);
            }
            int64_t offset = offset_of(ts->partitions[i]->log);
            ASSERT(offset >= 0); /* a checkpoint names real offsets: start-up trusts them */
            f->entries[f->n++] = (struct ckpt_entry){xstrdup(ts->name), i, offset};
        }
    }
}

/* The metadata thread (or the loop, when not serving). */
static void write_checkpoints(void *arg)
{
    struct checkpoint_write *w = arg;
    if (w->log_dir_to_sync[0]) {
        int rc = fsync_dir(w->log_dir_to_sync);
        if (rc != 0) {
            say_warn("server", "cannot fsync %s after renaming deleted partitions: %s",
                     w->log_dir_to_sync, strerror(-rc));
            w->rc = rc;
        }
    }
    for (size_t i = 0; i < w->file_count; i++) {
        int rc = ckpt_write(w->files[i].path, w->files[i].entries, w->files[i].n);
        if (rc != 0) {
            say_error("server", "cannot write %s: %s", w->files[i].path, storage_strerror(rc));
            if (w->rc == 0)
                w->rc = rc;
        }
    }
}

static void checkpoints_written(void *arg, struct log_flush_job **jobs, size_t n)
{
    (void)jobs;
    (void)n;
    struct checkpoint_write *w = arg;
    if (w->done)
        w->done(w->arg, w->rc);
    for (size_t i = 0; i < w->file_count; i++)
        ckpt_free_entries(w->files[i].entries, w->files[i].n);
    free(w);
}

void server_write_checkpoints(struct server *s, unsigned which, bool sync_log_dir,
                              void (*done)(void *arg, int rc), void *arg)
{
    struct checkpoint_write *w = xcalloc(1, sizeof *w);
    w->done = done;
    w->arg = arg;
    if (sync_log_dir)
        snprintf(w->log_dir_to_sync, sizeof w->log_dir_to_sync, "%s", s->log_dir);
    if (which & CHECKPOINT_RECOVERY_POINTS)
        collect_file(s, &w->files[w->file_count++], "recovery-point-offset-checkpoint",
                     log_durable_offset);
    if (which & CHECKPOINT_START_OFFSETS)
        collect_file(s, &w->files[w->file_count++], "log-start-offset-checkpoint",
                     log_start_offset);
    if (s->metadata_io) {
        syncer_submit_work(s->metadata_io, write_checkpoints, checkpoints_written, w);
        return;
    }
    write_checkpoints(w);
    checkpoints_written(w, NULL, 0);
}

static void keep_rc(void *arg, int rc)
{
    *(int *)arg = rc;
}

int server_write_checkpoints_now(struct server *s, unsigned which)
{
    ASSERT(!s->metadata_io); /* else the write would not be done on return */
    int rc = 0;
    server_write_checkpoints(s, which, false, keep_rc, &rc);
    return rc;
}

static void auto_created(void *arg, const struct cluster_result *res)
{
    char *name = arg;
    if (res->err == CLUSTER_OK)
        say_info("server", "auto-created topic %s", name);
    else if (res->err != CLUSTER_ERR_TOPIC_EXISTS)
        say_warn("server", "auto-creating topic %s failed: %s", name,
                 res->why ? res->why : "metadata log error");
    free(name);
}

void server_auto_create_topic(struct server *s, struct slice name)
{
    /* __consumer_offsets is created by the active controller with its own partitions,
     * replication factor and configs (groups.c), never as an ordinary topic. */
    if (slice_eq_cstr(name, "__consumer_offsets") || slice_eq_cstr(name, "__samsa_delay"))
        return;
    cluster_create_topic(s->cluster, name, s->cfg->num_partitions,
                         s->cfg->default_replication_factor, NULL, 0, false, auto_created,
                         slice_to_cstr(name));
}
