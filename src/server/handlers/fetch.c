/* Fetch (key 1), v4-v12: read record batches, with long poll.
 *
 * A fetch first locates data in every requested partition (log_read: positions only).
 * If at least min_bytes are available, or max_wait_ms is 0, it is answered at once.
 * Otherwise it is parked in the fetch purgatory (s->fetch_waits), watching "data
 * arrived" on each of its partitions, with max_wait_ms as its deadline. An append to any
 * of them queues it for a retry in the idle hook (so a burst of appends causes one retry,
 * not one per append); the deadline answers with whatever is there. Record data is read
 * from the segment files with pread into the response (the copy path) or, with
 * samsa.fetch.sendfile=true, sent by sendfile(2) straight from the page cache (the
 * zero-copy path).
 *
 * Memory and descriptors: what a response may hold is bounded broker-wide (net's
 * budgets, samsa.queued.max.response.bytes and samsa.queued.max.response.files), since
 * a client that stops reading keeps its unsent responses queued. Each partition's range
 * is granted in order: as a file chunk while descriptors are left (preferred with
 * sendfile; with the copy path only once memory is short, net then reads the file
 * while writing), else copied while memory is left, else not at all. A response that
 * is first in its connection's queue may always carry its first range, as a file
 * chunk (KIP-74's "at least one batch", at the price of one descriptor per such
 * connection), so a client that keeps up is never starved by slow ones; any other
 * response gets what the budgets allow, which can be nothing: then it waits like a
 * fetch that found no data, and answers empty at max_wait_ms (legal; clients retry).
 *
 * Replication quotas (KIP-73): a follower's fetch of a partition this node throttles as
 * its leader (leader.replication.throttled.replicas naming this node, or "*") is answered
 * with no records while what this node sent its throttled followers is over
 * leader.replication.throttled.rate (s->leader_quota), unless the follower is in the ISR
 * (Kafka's ReplicaManager.shouldLeaderThrottle); the follower asks again. The records of
 * throttled partitions sent to followers are recorded as the response goes, in sync or
 * not, as Kafka records them. Nothing throttled costs two field tests per partition.
 *
 * Sessions (KIP-227) are not kept: every response has session id 0, which tells
 * clients that ask for a session to go on sending full fetch requests. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fetch_response_responses_partitions part_resp;

/* A fetch parked in s->fetch_waits, keyed on its partitions' PURGATORY_DATA. */
struct fetch_wait {
    struct delayed_op op; /* first: the purgatory hands back &op */
    struct request *req;
    struct fetch_request in;
};

/* Where one partition's data is, from the locating pass. */
struct located {
    struct partition *p;
    int16_t error;
    struct log_read_result rr; /* rr.len 0 if nothing, or nothing granted */
    bool as_file;              /* granted as a file chunk (else copied) */
    /* A follower whose log diverges from this one: where this log ends its epoch. */
    bool diverging;
    int32_t diverging_epoch;
    int64_t diverging_end;
};

/* What one response may still take of the broker-wide budgets, handed out range by
 * range in request order (see the top of the file). */
struct grant {
    int64_t mem_left;   /* memory for copied record bytes */
    int64_t files_left; /* file chunks (descriptors) */
    bool prefer_file;   /* samsa.fetch.sendfile */
    bool minimum;       /* first in its connection's queue: the first range always goes */
    size_t granted;     /* ranges granted so far */
};

static void grant_init(struct server *s, struct request *req, struct grant *g)
{
    g->mem_left = net_response_bytes_left(s->loop);
    g->files_left = net_response_files_left(s->loop);
    g->prefer_file = s->cfg->fetch_sendfile;
    g->minimum = net_reply_is_head(req->reply);
    g->granted = 0;
}

/* Decides how a range of len bytes goes, or false if it does not. Only the first
 * FETCH_MAX_FILE_RANGES ranges can be file chunks (markers); later ones are copied. */
static bool grant_range(struct grant *g, int64_t len, bool *as_file)
{
    bool marker = g->granted < FETCH_MAX_FILE_RANGES;
    if (marker && g->prefer_file && g->files_left > 0) {
        g->files_left--;
        *as_file = true;
    } else if (len <= g->mem_left) {
        g->mem_left -= len;
        *as_file = false;
    } else if (marker && g->files_left > 0) {
        g->files_left--;
        *as_file = true;
    } else if (g->granted == 0 && g->minimum) {
        *as_file = true; /* over the descriptor budget by one for this connection */
    } else {
        return false;
    }
    g->granted++;
    return true;
}

/* A follower's fetch (replica id set, as Kafka's followers send it before v15): checks
 * that it is one of the partition's replicas and that its log has not diverged from
 * this one, then records how far it has got. false when l is answered without data
 * (an error, or DivergingEpoch for the follower to truncate). */
static bool follower_fetch(struct server *s, struct located *l, int32_t replica_id,
                           const struct fetch_request_topics_partitions *fp)
{
    struct partition *p = l->p;
    if (replica_id == s->cfg->node_id || !partition_has_replica(p, replica_id)) {
        l->error = KERR_NOT_LEADER_OR_FOLLOWER;
        return false;
    }
    if (partition_diverging(p, fp->fetch_offset, fp->last_fetched_epoch, &l->diverging_epoch,
                            &l->diverging_end)) {
        l->diverging = true;
        return false;
    }
    if (fp->fetch_offset < log_start_offset(p->log) || fp->fetch_offset > log_end_offset(p->log)) {
        l->error = KERR_OFFSET_OUT_OF_RANGE;
        return false;
    }
    if (partition_follower_fetched(p, replica_id, fp->fetch_offset, net_loop_now_ms(s->loop)))
        server_high_watermark_moved(s, p);
    server_isr_check(s, p, replica_id); /* a follower that caught up joins the ISR */
    return true;
}

/* A follower's fetch of p gets no records this time (Kafka: an empty read): p is
 * throttled here as its leader, the follower is not in sync, and the leader quota is
 * exceeded. *over caches the quota's answer for the request (-1: not asked yet). */
static bool leader_throttled(struct server *s, const struct partition *p, int32_t replica_id,
                             int *over)
{
    if (!throttled_has(&p->settings->leader_throttled, p->index) || partition_in_isr(p, replica_id))
        return false;
    if (*over < 0)
        *over = repl_quota_exceeded(&s->leader_quota, net_loop_now_ms(s->loop));
    return *over;
}

/* Locates data for every partition and grants it a way into the response; returns the
 * total bytes granted. */
static int64_t locate_all(struct server *s, struct request *req, const struct fetch_request *in,
                          struct located *loc)
{
    int64_t total = 0;
    struct grant g;
    grant_init(s, req, &g);
    /* The broker's fetch.max.bytes caps what the client asks for (Kafka's rule). */
    int64_t budget =
        MIN(in->max_bytes > 0 ? in->max_bytes : INT32_MAX, (int64_t)s->cfg->fetch_max_bytes);
    int over = -1; /* the leader quota, asked once per attempt */
    size_t k = 0;
    for (int32_t ti = 0; ti < in->topics_count; ti++) {
        const struct fetch_request_topics *t = &in->topics[ti];
        for (int32_t pi = 0; pi < t->partitions_count; pi++, k++) {
            const struct fetch_request_topics_partitions *fp = &t->partitions[pi];
            struct located *l = &loc[k];
            memset(l, 0, sizeof *l);
            l->rr.fd = -1;
            l->p = server_partition(s, t->topic, fp->partition);
            if (!l->p) {
                l->error = server_partition_absent(s, t->topic, fp->partition);
                continue;
            }
            l->error = partition_check_leader(l->p, fp->current_leader_epoch);
            if (l->error != KERR_NONE)
                continue;
            /* A consumer reads up to the high watermark (read_committed: the last stable
             * offset), a follower up to the log end. */
            int64_t hw = in->isolation_level == 1 ? partition_last_stable_offset(l->p)
                                                  : partition_high_watermark(l->p);
            if (in->replica_id >= 0) {
                if (!follower_fetch(s, l, in->replica_id, fp))
                    continue;
                if (leader_throttled(s, l->p, in->replica_id, &over))
                    continue; /* no records: rr.len stays 0 */
                hw = log_end_offset(l->p->log);
            }
            /* KIP-74: once something was found, later partitions get only what remains
             * of the response budget; the first non-empty one may exceed it. */
            int64_t limit = MIN((int64_t)fp->partition_max_bytes, budget);
            if (limit <= 0 && total > 0)
                continue;
            if (limit <= 0)
                limit = 1;
            int rc =
                log_read(l->p->log, fp->fetch_offset, (int32_t)MIN(limit, INT32_MAX), hw, &l->rr);
            if (rc != 0) {
                l->error = kerr_from_storage(rc);
                l->rr.len = 0;
                continue;
            }
            /* log_read always returns the first batch whole. Only the first partition
             * with data may exceed the limits with it; for a later one Kafka answers
             * no records (v3+ replaces an incomplete first batch by nothing), so the
             * response stays within max_bytes and partition_max_bytes. */
            if (total > 0 && l->rr.len > limit)
                l->rr.len = 0;
            if (l->rr.len > 0 && !grant_range(&g, l->rr.len, &l->as_file))
                l->rr.len = 0; /* the broker-wide budgets are used up: no data this time */
            total += l->rr.len;
            budget -= l->rr.len;
        }
    }
    return total;
}

static size_t partition_count(const struct fetch_request *in)
{
    size_t n = 0;
    for (int32_t ti = 0; ti < in->topics_count; ti++)
        n += (size_t)MAX(in->topics[ti].partitions_count, 0);
    return n;
}

/* Reads len bytes at pos of fd into memory from the arena. */
static int read_range(struct arena *a, int fd, int64_t pos, int64_t len, struct slice *out)
{
    uint8_t *data = arena_alloc(a, (size_t)len);
    int rc = pread_exact(fd, data, (size_t)len, pos);
    *out = (struct slice){data, (size_t)len};
    return rc;
}

/* A follower's answer: the record bytes of partitions throttled here as their leader
 * count against the leader quota (Kafka counts the throttled partitions of the response,
 * followers in sync included). */
static void record_throttled(struct server *s, const struct fetch_request *in,
                             const struct located *loc)
{
    int64_t bytes = 0;
    size_t n = partition_count(in);
    for (size_t i = 0; i < n; i++)
        if (loc[i].p && loc[i].error == KERR_NONE && loc[i].rr.len > 0 &&
            throttled_has(&loc[i].p->settings->leader_throttled, loc[i].p->index))
            bytes += loc[i].rr.len;
    if (bytes > 0)
        repl_quota_record(&s->leader_quota, bytes, net_loop_now_ms(s->loop));
}

/* read_committed: the aborted transactions the records returned overlap, which the
 * consumer skips (KIP-98). An empty list when there are none (Kafka's answer), or no
 * records. */
static void aborted_transactions(struct request *req, const struct located *l, part_resp *pr)
{
    pr->aborted_transactions_count = 0;
    if (l->rr.len == 0)
        return;
    int64_t from = l->rr.first_batch_offset, upper = l->rr.next_offset;
    size_t n = log_aborted_txns(l->p->log, from, upper, NULL, 0);
    if (n == 0)
        return;
    struct pstate_txn *t = REQ_ALLOC(req, struct pstate_txn, n);
    log_aborted_txns(l->p->log, from, upper, t, n);
    pr->aborted_transactions =
        REQ_ALLOC(req, struct fetch_response_responses_partitions_aborted_transactions, n);
    for (size_t i = 0; i < n; i++) {
        fetch_response_responses_partitions_aborted_transactions_init(&pr->aborted_transactions[i]);
        pr->aborted_transactions[i].producer_id = t[i].producer_id;
        pr->aborted_transactions[i].first_offset = t[i].first_offset;
    }
    pr->aborted_transactions_count = (int32_t)n;
}

/* Builds and sends the response from the located ranges: the encoded response carries a
 * marker per records field, replaced on the way out by the file range itself
 * (fetch_sendfile.c), so record data is copied at most once, straight into the reply. */
static void respond(struct server *s, struct request *req, const struct fetch_request *in,
                    struct located *loc)
{
    struct fetch_response resp;
    fetch_response_init(&resp);
    resp.session_id = 0;
    resp.responses_count = in->topics_count;
    resp.responses = REQ_ALLOC(req, struct fetch_response_responses, in->topics_count);
    size_t n_files = 0;
    struct log_read_result *files = REQ_ALLOC(req, struct log_read_result, partition_count(in));
    bool *as_file = REQ_ALLOC(req, bool, partition_count(in));
    size_t k = 0;
    for (int32_t ti = 0; ti < in->topics_count; ti++) {
        const struct fetch_request_topics *t = &in->topics[ti];
        struct fetch_response_responses *tr = &resp.responses[ti];
        fetch_response_responses_init(tr);
        tr->topic = t->topic;
        tr->partitions_count = t->partitions_count;
        tr->partitions = REQ_ALLOC(req, part_resp, t->partitions_count);
        for (int32_t pi = 0; pi < t->partitions_count; pi++, k++) {
            part_resp *pr = &tr->partitions[pi];
            struct located *l = &loc[k];
            fetch_response_responses_partitions_init(pr);
            pr->partition_index = t->partitions[pi].partition;
            pr->error_code = l->error;
            pr->records = (struct slice){(const uint8_t *)"", 0};
            if (l->error == KERR_NOT_LEADER_OR_FOLLOWER) /* v12+ carry it: the leader now */
                server_partition_leader(s, t->topic, pr->partition_index,
                                        &pr->current_leader.leader_id,
                                        &pr->current_leader.leader_epoch);
            if (l->error != KERR_NONE) {
                /* As Kafka: a partition answered with an error carries no offsets (-1).
                 * One it does not know is answered before any read, with an empty list
                 * of aborted transactions; a read that failed (offset out of range, a
                 * leader epoch) has none (null). */
                pr->high_watermark = pr->last_stable_offset = pr->log_start_offset = -1;
                pr->aborted_transactions_count = l->p ? -1 : 0;
                if (l->error == KERR_OFFSET_OUT_OF_RANGE && in->replica_id >= 0) {
                    /* *Differs*: a follower is told where this log starts and how far
                     * it is committed, so it can start over (Kafka's follower asks
                     * ListOffsets instead). */
                    pr->log_start_offset = log_start_offset(l->p->log);
                    pr->high_watermark = partition_high_watermark(l->p);
                }
                continue;
            }
            pr->high_watermark = partition_high_watermark(l->p);
            if (l->diverging) {
                pr->diverging_epoch.epoch = l->diverging_epoch;
                pr->diverging_epoch.end_offset = l->diverging_end;
            }
            pr->last_stable_offset = partition_last_stable_offset(l->p);
            pr->log_start_offset = log_start_offset(l->p->log);
            pr->aborted_transactions_count = -1;
            if (in->isolation_level == 1)
                aborted_transactions(req, l, pr);
            if (l->rr.len > 0 && n_files < FETCH_MAX_FILE_RANGES) {
                pr->records = fetch_file_marker(n_files);
                as_file[n_files] = l->as_file;
                files[n_files++] = l->rr;
            } else if (l->rr.len > 0) {
                int rc = read_range(&req->arena, l->rr.fd, l->rr.file_pos, l->rr.len, &pr->records);
                if (rc != 0) {
                    say_error("server", "reading %s-%d for a fetch failed: %s", l->p->topic,
                              l->p->index, strerror(-rc));
                    pr->error_code = KERR_KAFKA_STORAGE_ERROR;
                    pr->high_watermark = pr->last_stable_offset = pr->log_start_offset = -1;
                    pr->aborted_transactions_count = -1;
                    pr->records = (struct slice){(const uint8_t *)"", 0};
                }
            }
        }
    }
    if (in->replica_id >= 0)
        record_throttled(s, in, loc);
    struct buf encoded;
    buf_init(&encoded);
    fetch_response_encode(&encoded, req->hdr.api_version, &resp);
    fetch_send_with_files(req, &encoded, files, as_file, n_files);
    buf_free(&encoded);
}

/* Tries to answer; returns true if it did (and freed the request). */
static bool attempt(struct server *s, struct request *req, const struct fetch_request *in,
                    bool final)
{
    size_t n = partition_count(in);
    struct located *loc = xcalloc(n ? n : 1, sizeof *loc);
    int64_t total = locate_all(s, req, in, loc);
    bool any_error = false;
    for (size_t i = 0; i < n; i++)
        any_error |= loc[i].error != KERR_NONE || loc[i].diverging;
    bool answer = final || in->max_wait_ms <= 0 || total >= (int64_t)MAX(in->min_bytes, 1) ||
                  any_error || s->stopping;
    if (answer)
        respond(s, req, in, loc);
    free(loc);
    return answer;
}

/* The fetch purgatory's one timer, armed for its earliest deadline. */
static void on_deadline(struct net_loop *loop, void *arg);

static void arm_deadline(struct server *s)
{
    int64_t next = purgatory_next_deadline(s->fetch_waits);
    if (next == s->fetch_timer_deadline)
        return;
    if (s->fetch_timer)
        net_timer_cancel(s->loop, s->fetch_timer);
    s->fetch_timer = 0;
    s->fetch_timer_deadline = next;
    if (next != INT64_MAX)
        s->fetch_timer = net_timer_add(s->loop, next - net_loop_now_ms(s->loop), on_deadline, s);
}

static void on_deadline(struct net_loop *loop, void *arg)
{
    struct server *s = arg;
    s->fetch_timer = 0;
    s->fetch_timer_deadline = INT64_MAX;
    purgatory_expire(s->fetch_waits, net_loop_now_ms(loop));
    arm_deadline(s);
}

static bool wait_try(struct delayed_op *op)
{
    struct fetch_wait *w = (struct fetch_wait *)op;
    return attempt(w->req->srv, w->req, &w->in, false);
}

/* Answered by wait_try already (ready), or now with whatever is there (the deadline
 * passed, or the broker is stopping). */
static void wait_complete(struct delayed_op *op, enum delayed_outcome how)
{
    struct fetch_wait *w = (struct fetch_wait *)op;
    if (how != DELAYED_READY)
        attempt(w->req->srv, w->req, &w->in, true);
    free(w);
}

/* Waits in the purgatory for data on any of the partitions, or for max_wait_ms. */
static void park(struct server *s, struct request *req, const struct fetch_request *in)
{
    struct fetch_wait *w = xcalloc(1, sizeof *w);
    w->op.try_complete = wait_try;
    w->op.complete = wait_complete;
    w->req = req;
    w->in = *in;
    size_t n = 0;
    struct purgatory_key *keys = REQ_ALLOC(req, struct purgatory_key, partition_count(in));
    for (int32_t ti = 0; ti < in->topics_count; ti++) {
        const struct fetch_request_topics *t = &in->topics[ti];
        for (int32_t pi = 0; pi < t->partitions_count; pi++) {
            struct partition *p = server_partition(s, t->topic, t->partitions[pi].partition);
            if (p)
                keys[n++] = (struct purgatory_key){p, PURGATORY_DATA};
        }
    }
    purgatory_add(s->fetch_waits, &w->op, keys, n, net_loop_now_ms(s->loop) + in->max_wait_ms);
    arm_deadline(s);
}

void handle_fetch(struct request *req)
{
    struct server *s = req->srv;
    struct fetch_request in;
    if (fetch_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    if (in.topics_count < 0)
        in.topics_count = 0;
    if (!attempt(s, req, &in, false))
        park(s, req, &in);
}

static void drop_if_orphaned(void *arg, struct delayed_op *op)
{
    struct fetch_wait *w = (struct fetch_wait *)op;
    int *dropped = arg;
    if (net_reply_orphaned(w->req->reply)) {
        purgatory_cancel(w->req->srv->fetch_waits, op);
        request_drop(w->req);
        free(w);
        (*dropped)++;
    }
}

void fetch_drop_orphans(struct server *s)
{
    if (!s->fetch_orphans)
        return;
    s->fetch_orphans = false;
    int dropped = 0;
    purgatory_each(s->fetch_waits, drop_if_orphaned, &dropped);
    if (dropped)
        say_debug("server", "dropped %d parked fetches of closed connections", dropped);
}
