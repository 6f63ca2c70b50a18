/* Internal topics: records the broker writes and reads itself (__consumer_offsets).
 * They go through the ordinary partition log, with acks=all durability, and are read
 * back at start-up to rebuild in-memory state.
 *
 * The state kept in them belongs to pure state machines (the group coordinator today),
 * which this file hosts: it creates the topic, loads every partition into the machine,
 * queues the machine's appends and starts them from the idle hook, delivers their
 * completions, and keeps one loop timer armed for the machine's next deadline. The host
 * knows nothing of what the machine is; the machine knows nothing of the server. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct internal_append {
    void (*done)(void *arg, int16_t error);
    void *arg;
    int16_t error;
};

static void internal_append_durable(void *arg)
{
    struct internal_append *a = arg;
    a->done(a->arg, a->error);
    free(a);
}

void server_append_durable(struct server *s, struct partition *p, uint8_t *batch, size_t len,
                           void (*done)(void *arg, int16_t error), void *arg)
{
    struct log_append_result res;
    int rc = partition_append_as_leader(p, batch, len, time_wall_ms(), &res);
    if (rc != 0) {
        say_error("server", "append of the broker's own records to %s-%d failed: %s", p->topic,
                  p->index, storage_strerror(rc));
        done(arg, kerr_from_storage(rc));
        return;
    }
    server_after_append(s, p, true);
    struct internal_append *a = xcalloc(1, sizeof *a);
    a->done = done;
    a->arg = arg;
    struct durable_wait *w = durable_wait_new(internal_append_durable, a);
    durable_wait_add_acked(w, p, res.last_offset + 1, &a->error);
    durable_wait_submit(s, w);
}

/* Appends records to p and calls done(arg, error) once they are durable, and on the
 * in-sync replicas of a replicated topic (or failed): as Kafka writes its internal
 * topics with acks=all, so a committed offset survives the leader's loss. */
static void append_internal(struct server *s, struct partition *p, const struct record_in *recs,
                            size_t n, void (*done)(void *arg, int16_t error), void *arg)
{
    struct buf batch;
    buf_init(&batch);
    batch_encode(&batch, recs, n, time_wall_ms());
    server_append_durable(s, p, batch.data, batch.len, done, arg);
    buf_free(&batch);
}

/* Calls fn for every record of p from its log start, in offset order (start-up only:
 * reads synchronously), with the producer id of its batch when the batch is
 * transactional (else -1), and marker for every transaction marker. what names the state
 * in log lines ("group"). 0 or a storage error. */
static int scan_partition(struct partition *p, const char *what,
                          void (*fn)(void *arg, const struct record *r, int64_t txn_producer_id),
                          void (*marker)(void *arg, int64_t producer_id, bool commit), void *arg)
{
    int64_t offset = log_start_offset(p->log);
    int64_t end = log_end_offset(p->log);
    struct buf data;
    buf_init(&data);
    int rc = 0;
    while (offset < end && rc == 0) {
        struct log_read_result rr;
        rc = log_read(p->log, offset, 1 << 20, end, &rr);
        if (rc == STORAGE_ERR_CORRUPT) {
            /* Damage kept on disk: load what is around it, the same after a clean stop
             * as after a crash, and say what was lost. */
            int64_t next = log_next_readable_offset(p->log, offset);
            say_error("server",
                      "internal partition %s-%d: offsets %lld to %lld are damaged "
                      "and skipped; the %s state they recorded is lost (later records "
                      "of the same keys still apply)",
                      p->topic, p->index, (long long)offset, (long long)(next - 1), what);
            storage_read_turn_end();
            offset = next;
            rc = 0;
            continue;
        }
        if (rc != 0 || rr.len == 0)
            break;
        buf_reset(&data);
        rc = pread_exact(rr.fd, buf_extend(&data, (size_t)rr.len), (size_t)rr.len, rr.file_pos);
        /* The segment was lent until the read turn ends; a scan of many partitions at
         * start-up must not hold them all (storage's open-file bound). */
        storage_read_turn_end();
        if (rc != 0)
            break;
        struct batch_iter it;
        struct batch_info info;
        batch_iter_init(&it, data.data, (size_t)rr.len);
        int more = 0;
        while (rc == 0 && (more = batch_iter_next(&it, &info, true)) > 0) {
            offset = batch_last_offset(&info) + 1;
            enum txn_marker_type type;
            int32_t coordinator_epoch;
            if ((info.attributes & BATCH_ATTR_CONTROL) && info.producer_id >= 0 &&
                batch_parse_marker(data.data + it.batch_pos, &info, &type, &coordinator_epoch) == 0)
                marker(arg, info.producer_id, type == TXN_MARKER_COMMIT);
            if (batch_compression(&info) != 0 || (info.attributes & BATCH_ATTR_CONTROL))
                continue; /* the broker writes its internal records uncompressed */
            int64_t txn_producer_id =
                (info.attributes & BATCH_ATTR_TRANSACTIONAL) ? info.producer_id : -1;
            struct record_iter ri;
            struct record r;
            record_iter_init(&ri, data.data + it.batch_pos, &info);
            int got;
            while ((got = record_iter_next(&ri, &r)) > 0)
                if (r.offset >= log_start_offset(p->log))
                    fn(arg, &r, txn_producer_id);
            if (got < 0)
                rc = got;
        }
        if (rc == 0 && more < 0)
            rc = more;
    }
    buf_free(&data);
    if (rc != 0)
        say_error("server", "reading internal partition %s-%d at offset %lld failed: %s", p->topic,
                  p->index, (long long)offset, storage_strerror(rc));
    return rc;
}

int16_t server_internal_replication_factor(struct server *s)
{
    int16_t unfenced = 0;
    for (size_t i = 0; i < cluster_broker_count(s->cluster); i++)
        unfenced += !cluster_broker_at(s->cluster, i)->fenced;
    return (int16_t)MAX(MIN(s->cfg->offsets_topic_replication_factor, unfenced), 1);
}

int server_ensure_internal_topic(struct server *s, const char *name, int32_t partitions,
                                 const struct config_entry *configs, size_t config_count)
{
    if (cluster_topic_find(s->cluster, slice_from_cstr(name)))
        return 0;
    /* Start-up: the change completes inside the call. */
    struct change_outcome out = {0};
    cluster_create_topic(s->cluster, slice_from_cstr(name), partitions, 1, configs, config_count,
                         false, change_outcome_keep, &out);
    ASSERT(out.done);
    if (out.err != CLUSTER_OK) {
        say_error("server", "cannot create internal topic %s: %s", name, out.why);
        return -1;
    }
    say_info("server", "created internal topic %s with %d partitions", name, partitions);
    return 0;
}

/* ---- the state-machine host ---- */

/* One append the machine asked for: queued until the idle hook starts it, then in
 * flight until the log says it is durable (or failed). */
struct itopic_append {
    struct itopic_append *next;
    struct itopic_host *host;
    int32_t partition;
    struct record_in *records; /* slices into bytes */
    size_t n;
    struct buf bytes;    /* keys and values of records, copied */
    void *token;         /* the machine's, handed back to m.append_done */
    int64_t producer_id; /* a transactional batch of this producer, else -1 */
    int16_t producer_epoch;
};

struct itopic_host {
    struct server *srv;
    char *topic;
    int32_t partitions; /* the topic's count: an existing topic keeps its own */
    struct itopic_machine m;
    bool has_machine;       /* set by itopic_host_load; from then until stop the host calls m */
    bool stopped;           /* the owner let go: freed when in_flight drops to 0 */
    bool in_machine;        /* inside a call into m made by the host */
    uint64_t timer;         /* 0: not armed */
    int64_t timer_deadline; /* what timer is armed for */
    /* Appends not started yet, in order; and those started whose completion has not
     * arrived (they hold the host). */
    struct itopic_append *queue, *queue_tail;
    size_t in_flight;
    bool *loaded; /* per partition: loaded into the machine (this node leads it) */
    bool *reload; /* per partition: itopic_host_reload asked for it */
    bool reload_wanted;
};

struct topic_ask {
    char *name;
    bool *asked;
};

static void topic_ask_answered(void *arg, int err, struct reader *body)
{
    struct topic_ask *a = arg;
    (void)body;
    *a->asked = false; /* asked again by the next caller if need be */
    if (err != 0)
        say_warn_ratelimited("server", "asking for %s to be created: %s", a->name, strerror(-err));
    free(a->name);
    free(a);
}

void server_ask_for_topic(struct server *s, const char *name, int32_t partitions, int16_t rf,
                          const struct config_entry *configs, size_t config_count, bool *asked)
{
    if (*asked)
        return;
    struct create_topics_request_topics_configs *cc = xcalloc(config_count + 1, sizeof *cc);
    for (size_t i = 0; i < config_count; i++) {
        create_topics_request_topics_configs_init(&cc[i]);
        cc[i].name = slice_from_cstr(configs[i].name);
        cc[i].value = slice_from_cstr(configs[i].value);
    }
    struct create_topics_request_topics t;
    create_topics_request_topics_init(&t);
    t.name = slice_from_cstr(name);
    t.num_partitions = partitions;
    t.replication_factor = rf;
    t.assignments_count = 0;
    t.configs = cc;
    t.configs_count = (int32_t)config_count;
    struct create_topics_request req;
    create_topics_request_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    struct buf frame;
    buf_init(&frame);
    proto_request_header_encode(&frame,
                                &(struct request_header){.api_key = API_KEY_CREATE_TOPICS,
                                                         .api_version = 4,
                                                         .client_id = slice_from_cstr("samsa")});
    create_topics_request_encode(&frame, 4, &req);
    free(cc);
    struct topic_ask *a = xcalloc(1, sizeof *a);
    a->name = xstrdup(name);
    a->asked = asked;
    *asked = server_peer_send(s, s->cfg->node_id, &frame, 30000, topic_ask_answered, a) == 0;
    if (!*asked) {
        free(a->name);
        free(a);
    }
    buf_free(&frame);
}

int itopic_host_open(struct server *s, const char *topic, int32_t partitions,
                     const struct config_entry *configs, size_t config_count,
                     struct itopic_host **out)
{
    /* An existing topic keeps its partition count (as in Kafka: changing it would move
     * the machine's keys to other partitions). */
    const struct mtopic *t = cluster_topic_find(s->cluster, slice_from_cstr(topic));
    if (!t) {
        if (server_ensure_internal_topic(s, topic, partitions, configs, config_count) != 0)
            return -1;
        t = cluster_topic_find(s->cluster, slice_from_cstr(topic));
        ASSERT(t);
    }
    struct itopic_host *h = xcalloc(1, sizeof *h);
    h->srv = s;
    h->topic = xstrdup(topic);
    h->partitions = t->partition_count;
    h->loaded = xcalloc((size_t)MAX(h->partitions, 1), sizeof *h->loaded);
    h->reload = xcalloc((size_t)MAX(h->partitions, 1), sizeof *h->reload);
    h->timer_deadline = INT64_MAX;
    *out = h;
    return 0;
}

int32_t itopic_host_partitions(const struct itopic_host *h)
{
    return h->partitions;
}

static void host_free(struct itopic_host *h)
{
    ASSERT(h->stopped && h->in_flight == 0 && !h->queue && !h->timer);
    free(h->topic);
    free(h->loaded);
    free(h->reload);
    free(h);
}

static void append_free(struct itopic_append *a)
{
    buf_free(&a->bytes);
    free(a->records);
    free(a);
}

static void on_timer(struct net_loop *loop, void *arg);

/* Re-arms the timer for the machine's next deadline; after every call into it. */
static void arm_timer(struct itopic_host *h)
{
    if (!h->has_machine || h->stopped)
        return;
    int64_t deadline = h->m.next_deadline(h->m.sm);
    if (h->timer) {
        if (deadline == h->timer_deadline)
            return;
        net_timer_cancel(h->srv->loop, h->timer);
        h->timer = 0;
    }
    if (deadline == INT64_MAX)
        return;
    h->timer_deadline = deadline;
    h->timer = net_timer_add(h->srv->loop, deadline - time_wall_ms(), on_timer, h);
}

static void on_timer(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct itopic_host *h = arg;
    h->timer = 0;
    h->in_machine = true;
    h->m.tick(h->m.sm, time_wall_ms());
    h->in_machine = false;
    arm_timer(h);
}

void itopic_host_called(struct itopic_host *h)
{
    if (h)
        arm_timer(h);
}

/* The log's completion of an append (also its refusal, and the partition being gone). */
static void append_done(void *arg, int16_t error)
{
    struct itopic_append *a = arg;
    struct itopic_host *h = a->host;
    ASSERT(h->in_flight > 0);
    h->in_flight--;
    if (h->has_machine && !h->stopped) {
        h->in_machine = true;
        h->m.append_done(h->m.sm, time_wall_ms(), a->token, error);
        h->in_machine = false;
    }
    append_free(a);
    if (h->stopped) {
        if (h->in_flight == 0)
            host_free(h);
        return;
    }
    arm_timer(h);
}

/* Appends bytes to b (which has room: no reallocation) and returns them as a non-null
 * slice, even when empty. */
static struct slice copy_bytes(struct buf *b, struct slice src)
{
    ASSERT(b->cap - b->len >= src.len);
    uint8_t *at = b->data + b->len;
    buf_append(b, src.ptr, src.len);
    return (struct slice){at, src.len};
}

void itopic_host_append(struct itopic_host *h, int32_t partition, const struct record_in *recs,
                        size_t n, void *token)
{
    itopic_host_append_txn(h, partition, recs, n, -1, -1, token);
}

void itopic_host_append_txn(struct itopic_host *h, int32_t partition, const struct record_in *recs,
                            size_t n, int64_t producer_id, int16_t producer_epoch, void *token)
{
    ASSERT(!h->stopped);
    ASSERT(partition >= 0 && partition < h->partitions);
    struct itopic_append *a = xcalloc(1, sizeof *a);
    a->host = h;
    a->partition = partition;
    a->token = token;
    a->producer_id = producer_id;
    a->producer_epoch = producer_epoch;
    a->n = n;
    a->records = xcalloc(n ? n : 1, sizeof *a->records);
    buf_init(&a->bytes);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += recs[i].key.len + recs[i].value.len;
    buf_reserve(&a->bytes, total + 1); /* no growth below: slices stay valid */
    for (size_t i = 0; i < n; i++) {
        a->records[i].key = recs[i].key.ptr ? copy_bytes(&a->bytes, recs[i].key) : SLICE_NULL;
        a->records[i].value = recs[i].value.ptr ? copy_bytes(&a->bytes, recs[i].value) : SLICE_NULL;
    }
    if (h->queue_tail)
        h->queue_tail->next = a;
    else
        h->queue = a;
    h->queue_tail = a;
}

static void reload_partitions(struct itopic_host *h);

/* A's records as one transactional batch of its producer. Kafka's coordinator skips the
 * sequence check for its own transactional writes; here the batch continues the
 * producer's sequence in this partition instead (the log checks it), which comes to the
 * same: its records are written once and ended by the producer's marker. */
static void append_txn_internal(struct server *s, struct partition *p, struct itopic_append *a,
                                void (*done)(void *arg, int16_t error))
{
    struct pstate_batch last;
    int32_t seq = 0;
    if (log_producer_last(p->log, a->producer_id, &last) && last.epoch == a->producer_epoch)
        seq = pstate_seq_add(last.last_seq, 1);
    struct record_out *recs = xcalloc(a->n ? a->n : 1, sizeof *recs);
    for (size_t i = 0; i < a->n; i++)
        recs[i] = (struct record_out){.key = a->records[i].key, .value = a->records[i].value};
    struct batch_producer producer = {a->producer_id, a->producer_epoch, seq};
    struct buf batch;
    buf_init(&batch);
    batch_encode_records(&batch, recs, a->n, time_wall_ms(), &producer);
    batch_set_transactional(batch.data, batch.len);
    server_append_durable(s, p, batch.data, batch.len, done, a);
    buf_free(&batch);
    free(recs);
}

void itopic_host_idle(struct itopic_host *h)
{
    if (!h)
        return;
    if (h->reload_wanted && !h->stopped)
        reload_partitions(h);
    while (h->queue) {
        struct itopic_append *a = h->queue;
        h->queue = a->next;
        if (!h->queue)
            h->queue_tail = NULL;
        a->next = NULL;
        h->in_flight++;
        struct partition *p = server_partition(h->srv, slice_from_cstr(h->topic), a->partition);
        if (!p || partition_check_leader(p, -1) != KERR_NONE) {
            /* The topic was deleted under the machine, or this node no longer leads the
             * partition: whoever waits on this append goes to look for its coordinator
             * again. */
            append_done(a, KERR_NOT_COORDINATOR);
            continue;
        }
        if (a->producer_id >= 0)
            append_txn_internal(h->srv, p, a, append_done);
        else
            append_internal(h->srv, p, a->records, a->n, append_done, a);
    }
}

struct load_ctx {
    struct itopic_host *h;
    int32_t partition;
    size_t records;
    size_t bad;
};

static void load_one(void *arg, const struct record *r, int64_t txn_producer_id)
{
    struct load_ctx *l = arg;
    l->records++;
    if (!r->key.ptr)
        return;
    const struct itopic_machine *m = &l->h->m;
    int rc = txn_producer_id >= 0 && m->load_txn_record
                 ? m->load_txn_record(m->sm, l->partition, r->key, r->value, txn_producer_id)
                 : m->load_record(m->sm, l->partition, r->offset, r->key, r->value);
    if (rc != 0)
        l->bad++;
}

static void load_marker(void *arg, int64_t producer_id, bool commit)
{
    struct load_ctx *l = arg;
    if (l->h->m.load_marker)
        l->h->m.load_marker(l->h->m.sm, l->partition, producer_id, commit);
}

/* The partition, if this node hosts and leads it. */
static struct partition *led_here(struct itopic_host *h, int32_t i)
{
    struct partition *p = server_partition(h->srv, slice_from_cstr(h->topic), i);
    return p && p->role == PARTITION_LEADER ? p : NULL;
}

/* Loads partition i into the machine; records read in *records. 0 or -1 (logged). */
static int load_partition(struct itopic_host *h, struct partition *p, int32_t i, size_t *records)
{
    struct load_ctx l = {h, i, 0, 0};
    h->in_machine = true;
    h->m.load_begin(h->m.sm, i, time_wall_ms());
    int rc = scan_partition(p, h->m.what, load_one, load_marker, &l);
    h->m.load_end(h->m.sm, i, time_wall_ms());
    h->in_machine = false;
    h->loaded[i] = true;
    if (l.bad)
        say_warn("server", "%s-%d: skipped %zu malformed records while loading %s state", h->topic,
                 i, l.bad, h->m.what);
    *records += l.records;
    return rc == 0 ? 0 : -1;
}

void itopic_host_leadership(struct itopic_host *h, int32_t partition)
{
    if (!h || !h->has_machine || h->stopped || partition < 0 || partition >= h->partitions)
        return;
    struct partition *p = led_here(h, partition);
    size_t records = 0;
    if (p && !h->loaded[partition]) {
        say_info("server", "%s-%d: this node leads it now; loading its %s state", h->topic,
                 partition, h->m.what);
        if (load_partition(h, p, partition, &records) != 0)
            say_error("server", "%s-%d: loading %s state failed", h->topic, partition, h->m.what);
    } else if (!p && h->loaded[partition]) {
        say_info("server", "%s-%d: this node no longer leads it; dropping its %s state", h->topic,
                 partition, h->m.what);
        h->loaded[partition] = false;
        h->in_machine = true;
        h->m.unload(h->m.sm, partition);
        h->in_machine = false;
    }
    arm_timer(h);
}

void itopic_host_reload(struct itopic_host *h, int32_t partition)
{
    ASSERT(partition >= 0 && partition < h->partitions);
    h->reload[partition] = true;
    h->reload_wanted = true;
}

static void reload_partitions(struct itopic_host *h)
{
    h->reload_wanted = false;
    for (int32_t i = 0; i < h->partitions; i++) {
        if (!h->reload[i])
            continue;
        h->reload[i] = false;
        if (!h->loaded[i])
            continue; /* unloaded since: loaded afresh when this node leads it again */
        say_info("server", "%s-%d: loading its %s state again from the log", h->topic, i,
                 h->m.what);
        h->loaded[i] = false;
        h->in_machine = true;
        h->m.unload(h->m.sm, i);
        h->in_machine = false;
        struct partition *p = led_here(h, i);
        size_t records = 0;
        if (p && load_partition(h, p, i, &records) != 0)
            say_error("server", "%s-%d: loading %s state failed", h->topic, i, h->m.what);
    }
    arm_timer(h);
}

int itopic_host_load(struct itopic_host *h, const struct itopic_machine *m,
                     struct itopic_load_stats *stats)
{
    ASSERT(!h->has_machine && !h->stopped);
    h->m = *m;
    h->has_machine = true;
    int64_t t0 = time_mono_ms();
    size_t total = 0;
    for (int32_t i = 0; i < h->partitions; i++) {
        struct partition *p = led_here(h, i);
        if (p && load_partition(h, p, i, &total) != 0)
            return -1;
    }
    if (stats) {
        stats->records = total;
        stats->elapsed_ms = time_mono_ms() - t0;
    }
    arm_timer(h);
    return 0;
}

void itopic_host_stop(struct itopic_host *h)
{
    if (!h)
        return;
    ASSERT(!h->in_machine && !h->stopped);
    h->stopped = true;
    if (h->timer)
        net_timer_cancel(h->srv->loop, h->timer);
    h->timer = 0;
    if (h->has_machine)
        h->m.destroy(h->m.sm); /* may answer what waits on it; appends nothing */
    while (h->queue) {
        struct itopic_append *a = h->queue;
        h->queue = a->next;
        append_free(a);
    }
    h->queue_tail = NULL;
    if (h->in_flight == 0)
        host_free(h);
}
