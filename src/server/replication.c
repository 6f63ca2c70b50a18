/* Follower fetchers: this node copies the partitions it follows from their leaders
 * (internal.h, "follower fetchers").
 *
 * One fetch source per leader broker: a connection to its client listener and one Fetch
 * (v12, with this node's id as replica id) at a time for every partition followed from
 * it. For each partition of the answer:
 *   - DivergingEpoch: this log has a suffix the leader's does not (it led, or followed a
 *     leader, that lost records never committed): truncate it, exactly as far as the
 *     leader's epoch cache says, and fetch again from there (KIP-101/279/595);
 *   - records: appended as they are, offsets and leader epochs kept;
 *   - errors: the partition rests for replica.fetch.backoff.ms, the others go on; a new
 *     leader or epoch in the metadata ends the rest (server_replication_follow).
 * With samsa.replica.fetch.sync (the default) appended data is made durable (the group
 * commit's rounds) before the next Fetch, whose offsets tell the leader what this node
 * holds: so the high watermark, and acks=all, only count records on disk on every
 * in-sync replica. Off, the next Fetch goes at once, as Kafka's followers do.
 *
 * Throttled replicas (KIP-73, follower.replication.throttled.replicas naming this node):
 * while what this node copied for them is over follower.replication.throttled.rate
 * (s->follower_quota, measured as Kafka does), they are left out of the Fetch and the
 * others go on; with nothing else to fetch, the source rests until the quota has room.
 * A replica that had caught up with the leader's high watermark at its last answer is
 * in sync and not throttled (Kafka's ReplicaFetcherThread.shouldFollowerThrottle), so
 * the throttle slows catching up, not keeping up. The bytes of throttled partitions
 * are recorded as they arrive, in sync or not, as Kafka records them.
 *
 * A source keeps (topic, index) pairs, not partition pointers: each use looks the
 * partition up and drops it if it no longer follows this source's broker. */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>

#define API_FETCH 1
#define FETCH_VERSION 12
#define CONNECT_TIMEOUT_MS 5000
/* A response may exceed replica.fetch.response.max.bytes by one batch (KIP-74). */
#define MAX_RESPONSE_SLACK (64 * 1024 * 1024)

struct followed {
    char *topic;
    int32_t index;
    int64_t rest_until_ms; /* after an error: not fetched before then */
    /* At the leader's last answer this log reached its high watermark (Kafka's
     * PartitionFetchState.isReplicaInSync): not throttled. False until an answer. */
    bool in_sync;
};

struct fetch_source {
    struct server *s;
    int32_t leader; /* node id */
    struct net_client *client;
    struct followed *parts;
    size_t count, cap;
    bool in_flight; /* a Fetch is out */
    bool syncing;   /* the last answer's data is being made durable */
    /* A partition was added while a Fetch was out: that Fetch is given up (its
     * connection closed) and the next names the new partition at once. The one out may
     * wait replica.fetch.wait.max.ms at the leader on partitions with nothing new, while
     * the added one (a new leader's, whose acks=all wait for this node) has writes. */
    bool restart;
    int16_t sync_error;
    uint64_t timer; /* a rest: the next attempt */
    int32_t correlation_id;
    struct buf frame;
};

static void source_fetch(struct fetch_source *src);

/* The partition f names, if it still follows this source's broker. */
static struct partition *followed_partition(struct fetch_source *src, const struct followed *f)
{
    struct partition *p = server_partition(src->s, slice_from_cstr(f->topic), f->index);
    return p && p->role == PARTITION_FOLLOWER && p->leader_id == src->leader ? p : NULL;
}

/* src->parts is kept sorted by (topic, index): lookups are binary searches, and a
 * topic's partitions are next to each other when a request is built. */
static int cmp_followed(const char *topic, int32_t index, const struct followed *f)
{
    int c = strcmp(topic, f->topic);
    return c ? c : (index > f->index) - (index < f->index);
}

/* Where (topic, index) is in src->parts, or would be inserted; *found says which. */
static size_t followed_position(const struct fetch_source *src, const char *topic, int32_t index,
                                bool *found)
{
    size_t lo = 0, hi = src->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_followed(topic, index, &src->parts[mid]);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

static void drop_followed(struct fetch_source *src, size_t i)
{
    free(src->parts[i].topic);
    memmove(&src->parts[i], &src->parts[i + 1], (src->count - i - 1) * sizeof *src->parts);
    src->count--;
}

static void on_timer(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct fetch_source *src = arg;
    src->timer = 0;
    if (src->restart && src->in_flight && src->client) {
        net_client_close(src->client); /* on_close fetches again at once */
        return;
    }
    src->restart = false;
    source_fetch(src);
}

static void rest(struct fetch_source *src, int64_t ms)
{
    if (!src->timer && !src->s->stopping)
        src->timer = net_timer_add(src->s->loop, MAX(ms, 1), on_timer, src);
}

static void on_close(struct net_client *cl, int err, void *arg)
{
    (void)cl;
    struct fetch_source *src = arg;
    src->client = NULL;
    src->in_flight = false;
    if (src->s->stopping)
        return;
    if (src->restart) {
        src->restart = false;
        source_fetch(src);
        return;
    }
    say_warn_ratelimited(
        "replica", "connection to leader %d closed (%s); fetching again in %lld ms", src->leader,
        err ? strerror(-err) : "by the peer", (long long)src->s->cfg->replica_fetch_backoff_ms);
    rest(src, src->s->cfg->replica_fetch_backoff_ms);
}

static void on_frame(struct net_client *cl, struct slice frame, void *arg);

static bool connect_source(struct fetch_source *src)
{
    struct server *s = src->s;
    const struct mbroker *b = cluster_broker_find(s->cluster, src->leader);
    if (!b || b->fenced)
        return false;
    static const struct net_client_handler h = {.on_frame = on_frame, .on_close = on_close};
    int64_t max_frame = (int64_t)s->cfg->replica_fetch_response_max_bytes + MAX_RESPONSE_SLACK;
    if (net_client_connect(s->loop, b->host, b->port, CONNECT_TIMEOUT_MS, MIN(max_frame, INT32_MAX),
                           &h, src, &src->client) != 0) {
        src->client = NULL;
        return false;
    }
    return true;
}

/* Adds partition p (src->parts[i]) to the request: to the last topic entry if it is
 * p's topic (the parts are sorted by topic), else to a new one, sized for the partitions
 * of that topic from i on. */
static void add_to_request(struct fetch_source *src, struct fetch_request *req, struct arena *a,
                           size_t i, struct partition *p)
{
    const struct followed *f = &src->parts[i];
    struct fetch_request_topics *t = req->topics_count ? &req->topics[req->topics_count - 1] : NULL;
    if (!t || !slice_eq_cstr(t->topic, f->topic)) {
        size_t n = 1;
        while (i + n < src->count && strcmp(src->parts[i + n].topic, f->topic) == 0)
            n++;
        t = &req->topics[req->topics_count++];
        fetch_request_topics_init(t);
        t->topic = slice_from_cstr(f->topic);
        t->partitions = arena_alloc(a, n * sizeof *t->partitions);
        t->partitions_count = 0;
    }
    struct fetch_request_topics_partitions *fp = &t->partitions[t->partitions_count++];
    fetch_request_topics_partitions_init(fp);
    fp->partition = f->index;
    fp->current_leader_epoch = p->leader_epoch;
    fp->fetch_offset = log_end_offset(p->log);
    fp->last_fetched_epoch = log_latest_epoch(p->log);
    fp->log_start_offset = log_start_offset(p->log);
    fp->partition_max_bytes = src->s->cfg->replica_fetch_max_bytes;
}

/* Whether f is left out of this Fetch by the throttle. *over caches the quota's answer
 * for the request being built (-1: not asked yet), so the common case, nothing
 * throttled, costs two field tests per partition. */
static bool held_back(struct server *s, const struct followed *f, const struct partition *p,
                      int64_t now, int *over)
{
    if (f->in_sync || !throttled_has(&p->settings->follower_throttled, p->index))
        return false;
    if (*over < 0)
        *over = repl_quota_exceeded(&s->follower_quota, now);
    return *over;
}

/* Sends the next Fetch, unless one is out, data is being synced, the source rests, or
 * nothing is left to follow from this broker. */
static void source_fetch(struct fetch_source *src)
{
    struct server *s = src->s;
    if (src->in_flight || src->syncing || src->timer || s->stopping)
        return;
    int64_t now = net_loop_now_ms(s->loop);
    int64_t next_rest = INT64_MAX;
    int over = -1;
    size_t throttled = 0; /* partitions held back by the throttle */
    struct arena a;
    arena_init(&a);
    struct fetch_request req;
    fetch_request_init(&req);
    req.replica_id = s->cfg->node_id;
    req.max_wait_ms = s->cfg->replica_fetch_wait_max_ms;
    req.min_bytes = s->cfg->replica_fetch_min_bytes;
    req.max_bytes = s->cfg->replica_fetch_response_max_bytes;
    req.session_id = 0;
    req.session_epoch = -1; /* no fetch session: every request is full */
    req.topics = arena_alloc(&a, MAX(src->count, 1) * sizeof *req.topics);
    req.topics_count = 0;
    req.forgotten_topics_data_count = 0;
    for (size_t i = 0; i < src->count;) {
        struct followed *f = &src->parts[i];
        struct partition *p = followed_partition(src, f);
        if (!p) {
            drop_followed(src, i);
            continue;
        }
        if (f->rest_until_ms > now)
            next_rest = MIN(next_rest, f->rest_until_ms);
        else if (held_back(s, f, p, now, &over))
            throttled++;
        else
            add_to_request(src, &req, &a, i, p);
        i++;
    }
    if (throttled > 0) {
        /* The others' Fetch comes back by the time the quota has room, instead of
         * waiting replica.fetch.wait.max.ms at the leader for their data. */
        int64_t wait_ms = repl_quota_wait_ms(&s->follower_quota, now);
        next_rest = MIN(next_rest, now + wait_ms);
        req.max_wait_ms = (int32_t)MIN(req.max_wait_ms, wait_ms);
        say_debug("replica",
                  "%zu partitions from leader %d held back by follower.replication.throttled."
                  "rate for %lld ms",
                  throttled, src->leader, (long long)wait_ms);
    }
    if (req.topics_count == 0) {
        if (next_rest != INT64_MAX)
            rest(src, next_rest - now);
        else if (src->client) /* nothing followed from this broker any more */
            net_client_close(src->client);
        arena_free(&a);
        return;
    }
    if (!src->client && !connect_source(src)) {
        arena_free(&a);
        rest(src, s->cfg->replica_fetch_backoff_ms);
        return;
    }
    char client_id[32];
    snprintf(client_id, sizeof client_id, "samsa-replica-%d", s->cfg->node_id);
    struct request_header h = {.api_key = API_FETCH,
                               .api_version = FETCH_VERSION,
                               .correlation_id = src->correlation_id++,
                               .client_id = slice_from_cstr(client_id)};
    buf_reset(&src->frame);
    proto_request_header_encode(&src->frame, &h);
    fetch_request_encode(&src->frame, FETCH_VERSION, &req);
    arena_free(&a);
    if (net_client_send(src->client, src->frame.data, src->frame.len) != 0) {
        net_client_close(src->client); /* on_close rests */
        return;
    }
    src->in_flight = true;
}

static struct followed *find_followed(struct fetch_source *src, struct slice topic, int32_t index)
{
    char name[256]; /* topic names are at most 249 bytes */
    if (topic.len >= sizeof name)
        return NULL;
    memcpy(name, topic.ptr, topic.len);
    name[topic.len] = '\0';
    bool found;
    size_t at = followed_position(src, name, index, &found);
    return found ? &src->parts[at] : NULL;
}

/* Appends what records add at p's log end (partition_append_fetched). 0, or a storage
 * error. */
static int append_records(struct fetch_source *src, struct partition *p, struct slice records,
                          bool *appended)
{
    struct slice done;
    int rc = partition_append_fetched(p, records.ptr, records.len, time_wall_ms(), &done);
    if (rc != 0 || done.len == 0)
        return rc;
    *appended = true;
    server_after_append(src->s, p, src->s->cfg->replica_fetch_sync);
    return 0;
}

/* The leader's log no longer holds this log's end: it starts later (retention or
 * DeleteRecords went past it while this node was away), or it ends earlier. Starts
 * over at the leader's log start, or truncates to its high watermark, and returns true;
 * false when the answer does not say (an older leader): the partition rests. */
static bool out_of_range(struct fetch_source *src, struct followed *f, struct partition *p,
                         const struct fetch_response_responses_partitions *pr)
{
    int64_t end = log_end_offset(p->log);
    int rc = 0;
    if (pr->log_start_offset > end) {
        say_warn("replica",
                 "partition %s-%d: leader %d's log starts at %lld, after this log's end %lld; "
                 "starting over there",
                 f->topic, f->index, src->leader, (long long)pr->log_start_offset, (long long)end);
        rc = partition_restart_at(p, pr->log_start_offset);
    } else if (pr->high_watermark >= 0 && pr->high_watermark < end) {
        say_warn("replica",
                 "partition %s-%d: this log ends at %lld, beyond leader %d's; truncating to its "
                 "high watermark %lld",
                 f->topic, f->index, (long long)end, src->leader, (long long)pr->high_watermark);
        rc = partition_truncate(p, pr->high_watermark);
    } else {
        return false;
    }
    if (rc != 0) {
        say_error("replica", "partition %s-%d: %s", f->topic, f->index, storage_strerror(rc));
        f->rest_until_ms = net_loop_now_ms(src->s->loop) + src->s->cfg->replica_fetch_backoff_ms;
    }
    return true;
}

/* One partition of a Fetch answer. Returns true when p took records (to be synced). */
static bool take_partition(struct fetch_source *src, struct followed *f, struct partition *p,
                           const struct fetch_response_responses_partitions *pr)
{
    struct server *s = src->s;
    int64_t now = net_loop_now_ms(s->loop);
    if (pr->error_code == KERR_OFFSET_OUT_OF_RANGE && out_of_range(src, f, p, pr)) {
        f->in_sync = false;
        return false;
    }
    if (pr->error_code != KERR_NONE) {
        say_info_ratelimited("replica", "fetching %s-%d from leader %d: %s; again in %lld ms",
                             f->topic, f->index, src->leader, kafka_error_name(pr->error_code),
                             (long long)s->cfg->replica_fetch_backoff_ms);
        f->rest_until_ms = now + s->cfg->replica_fetch_backoff_ms;
        return false;
    }
    if (pr->diverging_epoch.epoch >= 0 || pr->diverging_epoch.end_offset >= 0) {
        int64_t to = partition_truncation_offset(p, pr->diverging_epoch.epoch,
                                                 pr->diverging_epoch.end_offset);
        say_info("replica",
                 "partition %s-%d: log diverges from leader %d's after epoch %d (ends at %lld "
                 "there); truncating from %lld to %lld",
                 f->topic, f->index, src->leader, pr->diverging_epoch.epoch,
                 (long long)pr->diverging_epoch.end_offset, (long long)log_end_offset(p->log),
                 (long long)to);
        int rc = partition_truncate(p, to);
        if (rc != 0) {
            say_error("replica", "truncating %s-%d failed: %s", f->topic, f->index,
                      storage_strerror(rc));
            f->rest_until_ms = now + s->cfg->replica_fetch_backoff_ms;
        }
        f->in_sync = false;
        return false;
    }
    bool appended = false;
    int rc = pr->records.len > 0 ? append_records(src, p, pr->records, &appended) : 0;
    if (rc != 0) {
        say_error_ratelimited("replica", "appending to %s-%d from leader %d failed: %s", f->topic,
                              f->index, src->leader, storage_strerror(rc));
        f->rest_until_ms = now + s->cfg->replica_fetch_backoff_ms;
    }
    partition_follower_high_watermark(p, pr->high_watermark);
    f->in_sync = rc == 0 && log_end_offset(p->log) >= pr->high_watermark;
    return appended;
}

static void synced(void *arg)
{
    struct fetch_source *src = arg;
    src->syncing = false;
    if (src->sync_error != KERR_NONE)
        say_error_ratelimited("replica", "making data from leader %d durable failed: %s",
                              src->leader, kafka_error_name(src->sync_error));
    src->sync_error = KERR_NONE;
    source_fetch(src);
}

static void on_frame(struct net_client *cl, struct slice frame, void *arg)
{
    struct fetch_source *src = arg;
    struct server *s = src->s;
    src->in_flight = false;
    struct reader r;
    rd_init(&r, frame.ptr, frame.len);
    struct arena a;
    arena_init(&a);
    struct fetch_response resp;
    (void)proto_response_header_decode(&r, API_FETCH, FETCH_VERSION);
    if (r.err || fetch_response_decode(&r, FETCH_VERSION, &a, &resp) != 0) {
        say_error("replica", "leader %d sent a Fetch response that does not decode; reconnecting",
                  src->leader);
        arena_free(&a);
        net_client_close(cl);
        return;
    }
    struct durable_wait *w = NULL;
    for (int32_t ti = 0; ti < resp.responses_count; ti++) {
        const struct fetch_response_responses *t = &resp.responses[ti];
        for (int32_t pi = 0; pi < t->partitions_count; pi++) {
            const struct fetch_response_responses_partitions *pr = &t->partitions[pi];
            struct followed *f = find_followed(src, t->topic, pr->partition_index);
            struct partition *p = f ? followed_partition(src, f) : NULL;
            if (p && pr->records.len > 0 &&
                throttled_has(&p->settings->follower_throttled, p->index))
                repl_quota_record(&s->follower_quota, (int64_t)pr->records.len,
                                  net_loop_now_ms(s->loop));
            if (!p || !take_partition(src, f, p, pr))
                continue;
            if (!s->cfg->replica_fetch_sync)
                continue;
            if (!w)
                w = durable_wait_new(synced, src);
            durable_wait_add(w, p, log_end_offset(p->log), &src->sync_error);
        }
    }
    arena_free(&a);
    if (w) {
        src->syncing = true;
        durable_wait_submit(s, w);
        return;
    }
    source_fetch(src);
}

void server_replication_follow(struct server *s, struct partition *p)
{
    ASSERT(p->role == PARTITION_FOLLOWER && p->leader_id >= 0);
    struct fetch_source *src = NULL;
    for (size_t i = 0; i < s->fetch_source_count && !src; i++)
        if (s->fetch_sources[i]->leader == p->leader_id)
            src = s->fetch_sources[i];
    if (!src) {
        src = xcalloc(1, sizeof *src);
        src->s = s;
        src->leader = p->leader_id;
        buf_init(&src->frame);
        s->fetch_sources =
            xrealloc(s->fetch_sources, (s->fetch_source_count + 1) * sizeof *s->fetch_sources);
        s->fetch_sources[s->fetch_source_count++] = src;
    }
    bool found;
    size_t at = followed_position(src, p->topic, p->index, &found);
    if (!found) {
        if (src->count == src->cap) {
            src->cap = src->cap ? src->cap * 2 : 16;
            src->parts = xrealloc(src->parts, src->cap * sizeof *src->parts);
        }
        memmove(&src->parts[at + 1], &src->parts[at], (src->count - at) * sizeof *src->parts);
        src->count++;
        src->parts[at] = (struct followed){xstrdup(p->topic), p->index, 0, false};
        src->restart |= src->in_flight;
    }
    struct followed *f = &src->parts[at];
    f->rest_until_ms = 0; /* a new leader or epoch: no reason to wait */
    /* Not at once: p may still be being opened (not yet found by name), and the other
     * partitions of the same metadata change join the same request. */
    if (src->timer && !src->in_flight && !src->syncing) {
        net_timer_cancel(s->loop, src->timer); /* a rest: end it */
        src->timer = 0;
    }
    rest(src, 1);
}

void server_replication_start(struct server *s)
{
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(&s->topics, &it, &k, &v)) {
        struct topic_state *ts = v;
        for (int32_t i = 0; i < ts->partition_count; i++) {
            struct partition *p = ts->partitions[i];
            if (p && p->role == PARTITION_FOLLOWER && p->leader_id >= 0 &&
                p->leader_id != s->cfg->node_id)
                server_replication_follow(s, p);
        }
    }
}

void server_replication_stop(struct server *s)
{
    s->stopping = true; /* a sync finishing later sends no new Fetch */
    for (size_t i = 0; i < s->fetch_source_count; i++) {
        struct fetch_source *src = s->fetch_sources[i];
        if (src->timer)
            net_timer_cancel(s->loop, src->timer);
        src->timer = 0;
        if (src->client)
            net_client_close(src->client);
    }
}

void server_replication_free(struct server *s)
{
    for (size_t i = 0; i < s->fetch_source_count; i++) {
        struct fetch_source *src = s->fetch_sources[i];
        for (size_t k = 0; k < src->count; k++)
            free(src->parts[k].topic);
        free(src->parts);
        buf_free(&src->frame);
        free(src);
    }
    free(s->fetch_sources);
    s->fetch_sources = NULL;
    s->fetch_source_count = 0;
}
