/* The metadata image and the records that change it.
 *
 * Every change is encoded as a group of KRaft-style records (type numbers as in
 * Kafka's metadata schema: RegisterBrokerRecord 0, TopicRecord 2, PartitionRecord 3,
 * ConfigRecord 4, RemoveTopicRecord 9, ProducerIdsRecord 15, BrokerRegistrationChange
 * 17), appended to the metadata
 * log as one entry, and only then applied to the image by the same code that replays the log at start-up.
 * So the image is always exactly "the log, applied", whether just written or replayed.
 *
 * Record encoding (our own, compact): uvarint type, uvarint version, then the fields
 * with base's writers; strings are uvarint (length + 1) then bytes, 0 meaning null. */
#include "cluster/cluster_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void complete(struct op *op);

/* ---- record encoding helpers ---- */

void cluster__put_str(struct buf *b, const char *s)
{
    if (!s) {
        buf_put_uvarint(b, 0);
        return;
    }
    size_t n = strlen(s);
    buf_put_uvarint(b, n + 1);
    buf_append(b, s, n);
}

static char *get_str(struct reader *r)
{
    uint64_t n = rd_uvarint(r);
    if (n == 0)
        return NULL;
    struct slice s = rd_bytes(r, n - 1);
    if (r->err)
        return NULL;
    return slice_to_cstr(s);
}

static void put_i32_array(struct buf *b, const int32_t *v, int32_t n)
{
    buf_put_uvarint(b, (uint64_t)n);
    for (int32_t i = 0; i < n; i++)
        buf_put_i32(b, v[i]);
}

static int32_t *get_i32_array(struct reader *r, int32_t *count)
{
    uint64_t n = rd_uvarint(r);
    if (n > rd_remaining(r) / 4) {
        r->err = -1;
        *count = 0;
        return NULL;
    }
    int32_t *v = xcalloc(n ? n : 1, sizeof *v);
    for (uint64_t i = 0; i < n; i++)
        v[i] = rd_i32(r);
    *count = (int32_t)n;
    return v;
}

/* ---- image ---- */

static void free_partition_lists(struct mpartition *p)
{
    free(p->replicas);
    free(p->isr);
    free(p->adding);
    free(p->removing);
}

static void free_topic(struct mtopic *t)
{
    for (int32_t i = 0; i < t->partition_count; i++)
        free_partition_lists(&t->partitions[i]);
    free(t->partitions);
    for (size_t i = 0; i < t->config_count; i++) {
        free(t->configs[i].name);
        free(t->configs[i].value);
    }
    free(t->configs);
    free(t->name);
    free(t);
}

static struct mtopic *topic_by_id(struct cluster *c, const uint8_t id[16], size_t *index)
{
    for (size_t i = 0; i < c->topic_count; i++) {
        if (memcmp(c->topics[i]->id, id, 16) == 0) {
            if (index)
                *index = i;
            return c->topics[i];
        }
    }
    return NULL;
}

static struct mtopic *topic_by_name(const struct cluster *c, struct slice name)
{
    return hmap_get(&c->by_name, name);
}

static void notify(struct cluster *c, enum cluster_event ev, const struct mtopic *t,
                   int32_t partition)
{
    if (c->listener && !c->installing)
        c->listener_rc = c->listener(c->listener_arg, ev, t, partition);
}

static bool same_ids(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

static bool same_partition(const struct mpartition *a, const struct mpartition *b)
{
    return a->leader == b->leader && a->leader_epoch == b->leader_epoch &&
           a->partition_epoch == b->partition_epoch &&
           same_ids(a->replicas, a->replica_count, b->replicas, b->replica_count) &&
           same_ids(a->isr, a->isr_count, b->isr, b->isr_count) &&
           same_ids(a->adding, a->adding_count, b->adding, b->adding_count) &&
           same_ids(a->removing, a->removing_count, b->removing, b->removing_count);
}

static void set_topic_config(struct mtopic *t, const char *name, const char *value)
{
    for (size_t i = 0; i < t->config_count; i++) {
        if (strcmp(t->configs[i].name, name) != 0)
            continue;
        free(t->configs[i].value);
        if (value) {
            t->configs[i].value = xstrdup(value);
        } else {
            free(t->configs[i].name);
            t->configs[i] = t->configs[--t->config_count];
        }
        return;
    }
    if (!value)
        return;
    t->configs = xrealloc(t->configs, (t->config_count + 1) * sizeof *t->configs);
    t->configs[t->config_count++] = (struct config_entry){xstrdup(name), xstrdup(value)};
}

/* Applies one decoded record. Unknown types and references are logged and skipped:
 * a newer writer's records must not stop an older reader from starting. */
static void apply_record(struct cluster *c, uint64_t type, uint64_t version, struct reader *r,
                         struct mtopic **touched, enum cluster_event *ev)
{
    switch (type) {
    case REC_REGISTER_BROKER: {
        int32_t id = rd_i32(r);
        char *host = get_str(r);
        int32_t port = rd_i32(r);
        char *rack = get_str(r);
        /* Version 1 adds the epoch, the incarnation and whether it starts fenced. */
        int64_t epoch = version >= 1 ? rd_i64(r) : 0;
        struct slice incarnation = version >= 1 ? rd_bytes(r, 16) : (struct slice){0};
        bool fenced = version >= 1 && rd_i8(r) != 0;
        if (r->err) {
            free(host);
            free(rack);
            return;
        }
        struct mbroker *b = NULL;
        for (size_t i = 0; i < c->broker_count; i++)
            if (c->brokers[i].node_id == id)
                b = &c->brokers[i];
        if (!b) {
            c->brokers = xrealloc(c->brokers, (c->broker_count + 1) * sizeof *c->brokers);
            b = &c->brokers[c->broker_count++];
        } else {
            free(b->host);
            free(b->rack);
        }
        *b = (struct mbroker){
            .node_id = id, .host = host ? host : xstrdup(""), .port = port, .rack = rack};
        b->epoch = epoch;
        b->fenced = fenced;
        if (incarnation.len == 16)
            memcpy(b->incarnation, incarnation.ptr, 16);
        c->last_broker_epoch = MAX(c->last_broker_epoch, epoch);
        return;
    }
    case REC_BROKER_CHANGE: {
        int32_t id = rd_i32(r);
        int64_t epoch = rd_i64(r);
        bool fenced = rd_i8(r) != 0;
        struct mbroker *b = r->err ? NULL : (struct mbroker *)cluster_broker_find(c, id);
        if (b && b->epoch == epoch)
            b->fenced = fenced;
        return;
    }
    case REC_PRODUCER_IDS: {
        int32_t broker = rd_i32(r);
        int64_t next = rd_i64(r);
        (void)broker;
        if (!r->err && next > c->next_producer_id)
            c->next_producer_id = next;
        return;
    }
    case REC_TOPIC: {
        char *name = get_str(r);
        struct slice id = rd_bytes(r, 16);
        if (r->err || !name) {
            free(name);
            r->err = -1;
            return;
        }
        struct mtopic *t = xcalloc(1, sizeof *t);
        t->name = name;
        memcpy(t->id, id.ptr, 16);
        /* Kafka's internal topics and Samsa's delay store (delayed delivery); other names
         * starting with "__" are ordinary. */
        t->internal = !strcmp(name, "__consumer_offsets") || !strcmp(name, "__transaction_state") ||
                      !strcmp(name, "__samsa_delay");
        if (c->topic_count == c->topic_cap) {
            c->topic_cap = c->topic_cap ? c->topic_cap * 2 : 16;
            c->topics = xrealloc(c->topics, c->topic_cap * sizeof *c->topics);
        }
        c->topics[c->topic_count++] = t;
        hmap_put(&c->by_name, slice_from_cstr(t->name), t);
        *touched = t;
        *ev = CLUSTER_TOPIC_CREATED;
        return;
    }
    case REC_PARTITION: {
        struct slice id = rd_bytes(r, 16);
        int32_t pid = rd_i32(r);
        int32_t leader = rd_i32(r);
        int32_t leader_epoch = rd_i32(r);
        int32_t partition_epoch = rd_i32(r);
        int32_t nrep = 0, nisr = 0;
        int32_t *rep = get_i32_array(r, &nrep);
        int32_t *isr = get_i32_array(r, &nisr);
        struct mpartition now = {.id = pid,
                                 .leader = leader,
                                 .leader_epoch = leader_epoch,
                                 .partition_epoch = partition_epoch,
                                 .replica_count = nrep,
                                 .replicas = rep,
                                 .isr_count = nisr,
                                 .isr = isr};
        /* Version 1: a reassignment under way (written only while one is). */
        if (version >= 1) {
            now.adding = get_i32_array(r, &now.adding_count);
            now.removing = get_i32_array(r, &now.removing_count);
        }
        struct mtopic *t = r->err ? NULL : topic_by_id(c, id.ptr, NULL);
        if (!t || pid < 0 || pid > t->partition_count || pid >= MAX_PARTITIONS_PER_TOPIC) {
            if (!r->err)
                say_warn("cluster",
                         "skipping PartitionRecord %d for an unknown topic or out of "
                         "order",
                         pid);
            free_partition_lists(&now);
            return;
        }
        if (pid == t->partition_count) {
            if (pid == t->partition_cap) { /* doubling: a topic's creation adds them one by one */
                t->partition_cap = t->partition_cap ? 2 * t->partition_cap : 8;
                t->partitions =
                    xrealloc(t->partitions, (size_t)t->partition_cap * sizeof *t->partitions);
            }
            t->partitions[pid] = now;
            t->partition_count++;
            c->partition_total++;
            if (*ev != CLUSTER_TOPIC_CREATED || *touched != t) {
                *touched = t;
                *ev = CLUSTER_PARTITIONS_ADDED;
            }
            return;
        }
        /* A partition that exists changes (leader, epochs, replicas, ISR): the listener
         * hears of it at once, with the partition. */
        bool changed = !same_partition(&t->partitions[pid], &now);
        free_partition_lists(&t->partitions[pid]);
        t->partitions[pid] = now;
        if (changed)
            notify(c, CLUSTER_PARTITION_CHANGED, t, pid);
        return;
    }
    case REC_CONFIG: {
        int8_t rtype = rd_i8(r);
        char *rname = get_str(r);
        char *name = get_str(r);
        char *value = get_str(r);
        struct mtopic *t = NULL;
        if (!r->err && rtype == CONFIG_RESOURCE_TOPIC && rname && name)
            t = topic_by_name(c, slice_from_cstr(rname));
        if (t) {
            set_topic_config(t, name, value);
            if (*touched != t) {
                *touched = t;
                *ev = CLUSTER_CONFIG_CHANGED;
            }
        }
        free(rname);
        free(name);
        free(value);
        return;
    }
    case REC_REMOVE_TOPIC: {
        struct slice id = rd_bytes(r, 16);
        size_t index;
        struct mtopic *t = r->err ? NULL : topic_by_id(c, id.ptr, &index);
        if (!t) {
            /* A snapshot (image_encode) lists the ids of deleted topics this way. */
            if (!r->err)
                hmap_put(&c->deleted_ids, id, c);
            return;
        }
        notify(c, CLUSTER_TOPIC_DELETED, t, -1);
        hmap_put(&c->deleted_ids, (struct slice){t->id, 16}, c);
        c->partition_total -= t->partition_count;
        hmap_remove(&c->by_name, slice_from_cstr(t->name));
        memmove(&c->topics[index], &c->topics[index + 1],
                (c->topic_count - index - 1) * sizeof *c->topics);
        c->topic_count--;
        free_topic(t);
        return;
    }
    default:
        say_warn("cluster", "skipping metadata record of unknown type %llu",
                 (unsigned long long)type);
        r->err = -1; /* cannot know its length: skip the rest of this entry */
        return;
    }
}

/* Applies one metadata log entry (a group of records), then tells the listener. */
static void apply_entry(void *arg, struct slice payload)
{
    struct cluster *c = arg;
    struct reader r;
    rd_init(&r, payload.ptr, payload.len);
    uint64_t n = rd_uvarint(&r);
    struct mtopic *touched = NULL;
    enum cluster_event ev = CLUSTER_CONFIG_CHANGED;
    for (uint64_t i = 0; i < n && !r.err; i++) {
        uint64_t type = rd_uvarint(&r);
        uint64_t version = rd_uvarint(&r);
        if (r.err)
            break;
        apply_record(c, type, version, &r, &touched, &ev);
    }
    if (r.err)
        say_warn("cluster", "metadata log entry is malformed; applied what could be read");
    if (touched)
        notify(c, ev, touched, -1);
}

static void change_init(struct change *ch)
{
    buf_init(&ch->body);
    ch->count = 0;
}

void cluster__change_record_v(struct change *ch, uint64_t type, uint64_t version)
{
    buf_put_uvarint(&ch->body, type);
    buf_put_uvarint(&ch->body, version);
    ch->count++;
}

void cluster__change_record(struct change *ch, uint64_t type)
{
    cluster__change_record_v(ch, type, 0);
}

/* The log entry of a change: its record count, then its records. Frees the change. */
static void change_finish(struct change *ch, struct buf *entry)
{
    buf_init(entry);
    buf_put_uvarint(entry, ch->count);
    buf_append(entry, ch->body.data, ch->body.len);
    buf_free(&ch->body);
}

void cluster__add_partition_state(struct change *ch, const uint8_t id[16],
                                  const struct mpartition *p)
{
    /* Version 0 unless a reassignment is under way, so that logs written without one
     * stay readable by the versions before reassignments. */
    bool reassigning = p->adding_count > 0 || p->removing_count > 0;
    cluster__change_record_v(ch, REC_PARTITION, reassigning ? 1 : 0);
    buf_append(&ch->body, id, 16);
    buf_put_i32(&ch->body, p->id);
    buf_put_i32(&ch->body, p->leader);
    buf_put_i32(&ch->body, p->leader_epoch);
    buf_put_i32(&ch->body, p->partition_epoch);
    put_i32_array(&ch->body, p->replicas, p->replica_count);
    put_i32_array(&ch->body, p->isr, p->isr_count);
    if (reassigning) {
        put_i32_array(&ch->body, p->adding, p->adding_count);
        put_i32_array(&ch->body, p->removing, p->removing_count);
    }
}

/* A new partition led by `node`, its only replica. */
static void add_partition_record(struct change *ch, const uint8_t id[16], int32_t pid, int32_t node)
{
    struct mpartition p = {.id = pid,
                           .leader = node,
                           .replica_count = 1,
                           .replicas = &node,
                           .isr_count = 1,
                           .isr = &node};
    cluster__add_partition_state(ch, id, &p);
}

/* New partitions as placed or assigned: each led by its ISR's first member, both epochs 0,
 * as Kafka's controller creates them. */
static void add_new_partitions(struct change *ch, const uint8_t id[16],
                               const struct new_partitions *np)
{
    for (int32_t p = 0; p < np->n; p++) {
        size_t at = (size_t)p * (size_t)np->rf;
        int32_t *replicas = &np->replicas[at], *isr = &np->isr[at];
        ASSERT(np->isr_counts[p] >= 1);
        struct mpartition mp = {.id = np->first + p,
                                .leader = isr[0],
                                .replica_count = np->rf,
                                .replicas = replicas,
                                .isr_count = np->isr_counts[p],
                                .isr = isr};
        cluster__add_partition_state(ch, id, &mp);
    }
}

static void add_config_record(struct change *ch, const char *topic, const char *name,
                              const char *value)
{
    cluster__change_record(ch, REC_CONFIG);
    buf_put_i8(&ch->body, CONFIG_RESOURCE_TOPIC);
    cluster__put_str(&ch->body, topic);
    cluster__put_str(&ch->body, name);
    cluster__put_str(&ch->body, value);
}

/*
 * The image as log entries, for a snapshot (and recovery's rewrite): replayed in order by
 * apply_entry into an empty image, they rebuild this one, so encode and decode are one
 * record format. Entry 0: the brokers and the producer-id block (moved on by
 * producer_id_gap); then, if any topic was ever deleted, one entry of RemoveTopicRecords
 * naming the deleted ids (applied to an image without such a topic, each only records
 * the deletion, which start-up uses to remove directories a crash left behind); then one
 * entry per topic, in creation order: TopicRecord, its ConfigRecords in order, and a
 * PartitionRecord per partition with its whole state. *out (malloc'd, each buf owned)
 * gets the entries; returns how many.
 */
static size_t image_encode(const struct cluster *c, int64_t producer_id_gap, struct buf **out)
{
    ASSERT(producer_id_gap >= 0 && c->next_producer_id <= INT64_MAX - producer_id_gap);
    size_t n = 0;
    struct buf *entries = xcalloc(c->topic_count + 2, sizeof *entries);
    struct change ch;
    change_init(&ch);
    for (size_t i = 0; i < c->broker_count; i++) {
        cluster__add_broker_record(&ch, &c->brokers[i]);
    }
    cluster__change_record(&ch, REC_PRODUCER_IDS);
    buf_put_i32(&ch.body, c->node_id);
    buf_put_i64(&ch.body, c->next_producer_id + producer_id_gap);
    change_finish(&ch, &entries[n++]);
    if (c->deleted_ids.count > 0) {
        change_init(&ch);
        struct slice id;
        void *unused;
        for (size_t it = 0; hmap_next(&c->deleted_ids, &it, &id, &unused);) {
            ASSERT(id.len == 16);
            cluster__change_record(&ch, REC_REMOVE_TOPIC);
            buf_append(&ch.body, id.ptr, 16);
        }
        change_finish(&ch, &entries[n++]);
    }
    for (size_t i = 0; i < c->topic_count; i++) {
        const struct mtopic *t = c->topics[i];
        change_init(&ch);
        cluster__change_record(&ch, REC_TOPIC);
        cluster__put_str(&ch.body, t->name);
        buf_append(&ch.body, t->id, 16);
        for (size_t k = 0; k < t->config_count; k++)
            add_config_record(&ch, t->name, t->configs[k].name, t->configs[k].value);
        for (int32_t p = 0; p < t->partition_count; p++)
            cluster__add_partition_state(&ch, t->id, &t->partitions[p]);
        change_finish(&ch, &entries[n++]);
    }
    *out = entries;
    return n;
}

static void image_entries_free(struct buf *entries, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_free(&entries[i]);
    free(entries);
}

/* Slices over entries, for the quorum (malloc'd). */
static struct slice *image_slices(const struct buf *entries, size_t n)
{
    struct slice *s = xcalloc(n ? n : 1, sizeof *s);
    for (size_t i = 0; i < n; i++)
        s[i] = (struct slice){entries[i].data, entries[i].len};
    return s;
}

/* ---- cluster id and meta.properties ---- */

/* Fills buf from /dev/urandom; falls back to clock bits, which is enough for ids
 * that only need to be unique on this machine. */
static void random_bytes(uint8_t *raw, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, raw, n) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)n) {
        uint64_t t = (uint64_t)time_mono_ns() ^ ((uint64_t)time_wall_ms() << 20);
        for (size_t i = 0; i < n; i++)
            raw[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)(i * 37);
    }
}

/* Kafka writes UUIDs (cluster ids, topic ids) as url-safe base64 without padding. */
static const char uuid_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void cluster_uuid_format(const uint8_t id[16], char out[CLUSTER_UUID_TEXT_BYTES])
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        acc = (acc << 8) | id[i];
        bits += 8;
        while (bits >= 6) {
            out[o++] = uuid_alphabet[(acc >> (bits - 6)) & 63];
            bits -= 6;
        }
    }
    out[o++] = uuid_alphabet[(acc << (6 - bits)) & 63]; /* the last 2 bits */
    out[o] = '\0';
    ASSERT(o == CLUSTER_UUID_TEXT_BYTES - 1);
}

int cluster_uuid_parse(const char *text, uint8_t id[16])
{
    if (strlen(text) != CLUSTER_UUID_TEXT_BYTES - 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *p = text; *p; p++) {
        const char *at = strchr(uuid_alphabet, *p);
        if (!at)
            return -1;
        acc = (acc << 6) | (uint32_t)(at - uuid_alphabet);
        bits += 6;
        if (bits >= 8) {
            if (o < 16)
                id[o++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    return o == 16 ? 0 : -1;
}

static char *generate_cluster_id(void)
{
    uint8_t raw[16];
    random_bytes(raw, sizeof raw);
    char *s = xmalloc(CLUSTER_UUID_TEXT_BYTES);
    cluster_uuid_format(raw, s);
    return s;
}

/* Writes dir/meta.properties, durably. 0 or CLUSTER_ERR_IO (logged). */
static int write_meta(const char *dir, int32_t node_id, const char *cluster_id)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/meta.properties", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        say_error("cluster", "cannot write %s: %s", tmp, strerror(errno));
        return CLUSTER_ERR_IO;
    }
    fprintf(f, "#\n#Written by samsa-server\nversion=1\ncluster.id=%s\nnode.id=%d\n", cluster_id,
            node_id);
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0 || fsync_dir(dir) != 0) {
        say_error("cluster", "cannot write %s: %s", path, strerror(errno));
        return CLUSTER_ERR_IO;
    }
    return 0;
}

static int load_or_create_meta(struct cluster *c, const char *dir, const char *want_id)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.properties", dir);
    struct props p = {0};
    if (access(path, F_OK) == 0) {
        if (props_load_file(&p, path) != 0)
            return CLUSTER_ERR_IO;
        const char *id = props_get(&p, "cluster.id");
        const char *node = props_get(&p, "node.id");
        int64_t nid;
        if (!id || !node || parse_i64(node, &nid) != 0) {
            say_error("cluster", "%s is missing cluster.id or node.id", path);
            props_free(&p);
            return CLUSTER_ERR_IO;
        }
        if (nid != c->node_id) {
            say_error("cluster", "%s belongs to node.id %lld, but this node is node.id %d", path,
                      (long long)nid, c->node_id);
            props_free(&p);
            return CLUSTER_ERR_IO;
        }
        c->cluster_id = xstrdup(id);
        props_free(&p);
        return 0;
    }
    c->cluster_id = want_id ? xstrdup(want_id) : generate_cluster_id();
    return write_meta(dir, c->node_id, c->cluster_id);
}

/* ---- what the quorum calls ---- */

/* A committed entry. The listener's answer to this node's own change is kept for the
 * change's report (finish_change). */
static void apply_committed(void *arg, struct slice entry, bool own)
{
    struct cluster *c = arg;
    c->listener_rc = 0;
    apply_entry(c, entry);
    if (own)
        c->own_listener_rc = c->listener_rc;
    if (c->apply_hook && !c->installing)
        c->apply_hook(c->apply_hook_arg, quorum_applied_index(c->log), false);
}

/* The image a leader's snapshot replaces, kept until the snapshot is applied so that the
 * listener hears the difference, as if the changes had come one by one. */
struct image_saved {
    struct mtopic **topics;
    size_t topic_count;
    struct hmap by_name, deleted_ids;
    struct mbroker *brokers;
    size_t broker_count;
};

static void free_brokers(struct mbroker *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(b[i].host);
        free(b[i].rack);
    }
    free(b);
}

static const struct mtopic *saved_topic(const struct image_saved *old, const uint8_t id[16])
{
    for (size_t i = 0; i < old->topic_count; i++)
        if (memcmp(old->topics[i]->id, id, 16) == 0)
            return old->topics[i];
    return NULL;
}

static void tell_difference(struct cluster *c, const struct image_saved *old)
{
    for (size_t i = 0; i < old->topic_count; i++)
        if (!topic_by_id(c, old->topics[i]->id, NULL))
            notify(c, CLUSTER_TOPIC_DELETED, old->topics[i], -1);
    for (size_t i = 0; i < c->topic_count; i++) {
        const struct mtopic *t = c->topics[i];
        const struct mtopic *was = saved_topic(old, t->id);
        if (!was) {
            notify(c, CLUSTER_TOPIC_CREATED, t, -1);
            continue;
        }
        notify(c, CLUSTER_CONFIG_CHANGED, t, -1);
        for (int32_t p = 0; p < was->partition_count && p < t->partition_count; p++)
            if (!same_partition(&was->partitions[p], &t->partitions[p]))
                notify(c, CLUSTER_PARTITION_CHANGED, t, p);
        if (t->partition_count > was->partition_count)
            notify(c, CLUSTER_PARTITIONS_ADDED, t, -1);
    }
}

static void install_image(void *arg, bool done)
{
    struct cluster *c = arg;
    if (!done) {
        struct image_saved *old = xcalloc(1, sizeof *old);
        *old = (struct image_saved){.topics = c->topics,
                                    .topic_count = c->topic_count,
                                    .by_name = c->by_name,
                                    .deleted_ids = c->deleted_ids,
                                    .brokers = c->brokers,
                                    .broker_count = c->broker_count};
        c->topics = NULL;
        c->topic_count = c->topic_cap = 0;
        c->brokers = NULL;
        c->broker_count = 0;
        c->partition_total = 0;
        c->next_producer_id = 0;
        c->last_broker_epoch = 0;
        hmap_init(&c->by_name);
        hmap_init(&c->deleted_ids);
        c->before_install = old;
        c->installing = true;
        return;
    }
    struct image_saved *old = c->before_install;
    c->installing = false;
    c->before_install = NULL;
    tell_difference(c, old);
    if (c->apply_hook)
        c->apply_hook(c->apply_hook_arg, quorum_applied_index(c->log), true);
    for (size_t i = 0; i < old->topic_count; i++)
        free_topic(old->topics[i]);
    free(old->topics);
    hmap_free(&old->by_name);
    hmap_free(&old->deleted_ids);
    free_brokers(old->brokers, old->broker_count);
    free(old);
}

/* ---- public interface ---- */

int cluster_open(const struct cluster_options *opts, struct cluster **out)
{
    struct cluster *c = xcalloc(1, sizeof *c);
    c->node_id = opts->node_id;
    c->controller_only = opts->controller_only;
    c->unclean_default = opts->unclean_leader_election;
    c->max_partitions = opts->max_partitions > 0 ? opts->max_partitions : INT64_MAX;
    hmap_init(&c->by_name);
    hmap_init(&c->deleted_ids);
    struct quorum_config qc = {
        .node_id = opts->node_id,
        .voters = opts->voters,
        .voter_count = opts->voter_count,
        .salvage = opts->salvage,
        .election_ticks = opts->election_ticks,
        .seed = opts->seed,
        .apply = apply_committed,
        .reset = install_image,
        .arg = c,
    };
    int rc = quorum_open(opts->metadata_dir, &qc, &c->log, &c->log_stats);
    if (rc != 0) {
        cluster_close(c);
        return rc == -EBADMSG ? CLUSTER_ERR_CORRUPT : CLUSTER_ERR_IO; /* rc is a -errno */
    }
    if (!opts->salvage) {
        struct quorum_snapshot_policy policy = {
            .max_log_bytes = opts->snapshot_max_bytes > 0 ? (uint64_t)opts->snapshot_max_bytes
                                                          : CLUSTER_SNAPSHOT_MAX_BYTES_DEFAULT,
            .max_interval_ms = MAX(opts->snapshot_interval_ms, 0),
        };
        quorum_set_snapshot_policy(c->log, &policy);
        rc = load_or_create_meta(c, opts->metadata_dir, opts->cluster_id);
    }
    if (rc != 0) {
        cluster_close(c);
        return rc < 0 && rc >= CLUSTER_ERR_LIMIT ? rc : CLUSTER_ERR_IO;
    }
    *out = c;
    return 0;
}

void cluster_close(struct cluster *c)
{
    if (!c)
        return;
    /* The runner finished every write before its owner let the cluster go; what never
     * had its turn, or was not committed yet, is refused. */
    ASSERT(!c->io);
    if (c->writing) {
        c->writing->next = c->queue;
        c->queue = c->writing;
        c->writing = NULL;
    }
    while (c->queue) {
        struct op *op = c->queue;
        c->queue = op->next;
        op->res.err = CLUSTER_ERR_IO;
        op->res.why = "the broker is shutting down";
        complete(op);
    }
    for (size_t i = 0; i < c->topic_count; i++)
        free_topic(c->topics[i]);
    free(c->topics);
    hmap_free(&c->by_name);
    hmap_free(&c->deleted_ids);
    free_brokers(c->brokers, c->broker_count);
    free(c->sessions);
    quorum_close(c->log);
    free(c->cluster_id);
    free(c);
}

const char *cluster_id(const struct cluster *c)
{
    return c->cluster_id;
}
bool cluster_log_was_empty(const struct cluster *c)
{
    return c->log_stats.stored_entries == 0;
}
const char *cluster_log_path(const struct cluster *c)
{
    return quorum_path(c->log);
}
size_t cluster_log_skipped_bytes(const struct cluster *c)
{
    return c->log_stats.skipped_bytes;
}
bool cluster_topic_id_deleted(const struct cluster *c, const uint8_t id[16])
{
    return hmap_get(&c->deleted_ids, (struct slice){id, 16}) != NULL;
}
int32_t cluster_controller_id(const struct cluster *c)
{
    return quorum_leader(c->log);
}

int cluster_format(const char *metadata_dir, int32_t node_id, const char *cluster_id)
{
    uint8_t raw[16];
    if (cluster_uuid_parse(cluster_id, raw) != 0) {
        say_error("cluster",
                  "cluster id \"%s\" is not a uuid as Kafka writes them (22 characters of "
                  "url-safe base64; `samsa-server random-uuid` makes one)",
                  cluster_id);
        return CLUSTER_ERR_INVALID_CONFIG;
    }
    int rc = quorum_format(metadata_dir);
    if (rc == 0)
        rc = write_meta(metadata_dir, node_id, cluster_id);
    return rc == 0 ? CLUSTER_OK : CLUSTER_ERR_IO;
}

void cluster_quorum_state(const struct cluster *c, struct cluster_quorum_state *out)
{
    quorum_describe(c->log, out);
}

void cluster_set_listener(struct cluster *c, cluster_listener_fn fn, void *arg)
{
    c->listener = fn;
    c->listener_arg = arg;
}

void cluster_set_apply_hook(struct cluster *c, cluster_apply_hook_fn fn, void *arg)
{
    c->apply_hook = fn;
    c->apply_hook_arg = arg;
}

uint64_t cluster_applied_index(const struct cluster *c)
{
    return quorum_applied_index(c->log);
}

/* Each build_* checks a change against the image as it stands when the change's turn
 * comes (every change before it applied) and adds its records to ch; adding none means
 * there is nothing to write (validate_only, or no difference). Returns CLUSTER_OK or the
 * error, with op->res.why saying why. */

static int build_producer_ids(struct cluster *c, struct op *op, struct change *ch)
{
    if (op->id_count <= 0 || c->next_producer_id > INT64_MAX - op->id_count) {
        op->res.why = "producer ids exhausted";
        return CLUSTER_ERR_LIMIT;
    }
    op->res.first_producer_id = c->next_producer_id;
    cluster__change_record(ch, REC_PRODUCER_IDS);
    buf_put_i32(&ch->body, op->node_id);
    buf_put_i64(&ch->body, c->next_producer_id + op->id_count);
    return 0;
}

size_t cluster_broker_count(const struct cluster *c)
{
    return c->broker_count;
}
const struct mbroker *cluster_broker_at(const struct cluster *c, size_t i)
{
    return i < c->broker_count ? &c->brokers[i] : NULL;
}
const struct mbroker *cluster_broker_find(const struct cluster *c, int32_t node_id)
{
    for (size_t i = 0; i < c->broker_count; i++)
        if (c->brokers[i].node_id == node_id)
            return &c->brokers[i];
    return NULL;
}

const struct mtopic *cluster_topic_find(const struct cluster *c, struct slice name)
{
    return topic_by_name(c, name);
}
const struct mtopic *cluster_topic_find_id(const struct cluster *c, const uint8_t id[16])
{
    return topic_by_id((struct cluster *)c, id, NULL);
}
size_t cluster_topic_count(const struct cluster *c)
{
    return c->topic_count;
}
const struct mtopic *cluster_topic_at(const struct cluster *c, size_t i)
{
    return i < c->topic_count ? c->topics[i] : NULL;
}

const char *cluster_topic_config(const struct mtopic *t, const char *name)
{
    for (size_t i = 0; i < t->config_count; i++)
        if (strcmp(t->configs[i].name, name) == 0)
            return t->configs[i].value;
    return NULL;
}

const char *cluster_topic_name_error(struct slice name)
{
    if (name.ptr == NULL || name.len == 0)
        return "topic name is empty";
    if (name.len > 249)
        return "topic name is longer than 249 characters";
    if ((name.len == 1 && name.ptr[0] == '.') ||
        (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
        return "topic name cannot be \".\" or \"..\"";
    for (size_t i = 0; i < name.len; i++) {
        uint8_t ch = name.ptr[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return "topic name contains a character other than ASCII alphanumerics, '.', '_' "
                   "and '-'";
    }
    return NULL;
}

void cluster_uuid_random(uint8_t id[16])
{
    random_bytes(id, 16);
    id[6] = (id[6] & 0x0f) | 0x40; /* version 4 */
    id[8] = (id[8] & 0x3f) | 0x80;
}

static int check_configs(const struct config_entry *configs, size_t n, const char **why)
{
    for (size_t i = 0; i < n; i++) {
        const char *err = tcfg_validate(configs[i].name, configs[i].value);
        if (err) {
            *why = err;
            return CLUSTER_ERR_INVALID_CONFIG;
        }
    }
    return 0;
}

/* NULL if `more` partitions fit within max_partitions, else why not (a static buffer:
 * valid until the next call, on the one thread that changes metadata). */
static const char *partitions_over_limit(const struct cluster *c, int64_t more)
{
    if (c->partition_total + more <= c->max_partitions)
        return NULL;
    static char why[160];
    snprintf(why, sizeof why,
             "this broker hosts %lld partitions and samsa.max.partitions is %lld: %lld more "
             "do not fit",
             (long long)c->partition_total, (long long)c->max_partitions, (long long)more);
    return why;
}

int64_t cluster_partition_count(const struct cluster *c)
{
    return c->partition_total;
}

static int build_create_topic(struct cluster *c, struct op *op, struct change *ch)
{
    const char **why = &op->res.why;
    struct slice name = slice_from_cstr(op->name);
    if ((*why = cluster_topic_name_error(name)) != NULL)
        return CLUSTER_ERR_INVALID_TOPIC;
    if (topic_by_name(c, name)) {
        *why = "topic already exists";
        return CLUSTER_ERR_TOPIC_EXISTS;
    }
    if (op->count <= 0 || op->count > MAX_PARTITIONS_PER_TOPIC) {
        *why = "number of partitions must be between 1 and 100000";
        return CLUSTER_ERR_INVALID_PARTITIONS;
    }
    if (op->replication_factor <= 0) {
        if (op->replicas) {
            *why = "The manual partition assignment includes an empty replica list.";
            return CLUSTER_ERR_INVALID_ASSIGNMENT;
        }
        *why = "replication factor must be larger than 0";
        return CLUSTER_ERR_INVALID_REPLICATION;
    }
    if (c->topic_count >= MAX_TOPICS) {
        *why = "too many topics";
        return CLUSTER_ERR_LIMIT;
    }
    if ((*why = partitions_over_limit(c, op->count)) != NULL)
        return CLUSTER_ERR_LIMIT;
    int rc = check_configs(op->configs, op->config_count, why);
    if (rc != 0)
        return rc;
    struct new_partitions np;
    rc = cluster__place_partitions(c, op, 0, op->count, op->replication_factor, &np);
    if (rc != 0 || op->validate_only) {
        cluster__new_partitions_free(&np);
        return rc;
    }
    uint8_t id[16];
    cluster_uuid_random(id);
    cluster__change_record(ch, REC_TOPIC);
    cluster__put_str(&ch->body, op->name);
    buf_append(&ch->body, id, 16);
    /* Configs before partitions, so the listener that opens partition logs on
     * TOPIC_CREATED already sees the topic's settings. */
    for (size_t i = 0; i < op->config_count; i++)
        add_config_record(ch, op->name, op->configs[i].name, op->configs[i].value);
    add_new_partitions(ch, id, &np);
    cluster__new_partitions_free(&np);
    return 0;
}

/* The topic a change names, or NULL with the change refused (CLUSTER_ERR_UNKNOWN_TOPIC). */
static struct mtopic *op_topic(struct cluster *c, struct op *op)
{
    struct mtopic *t = topic_by_name(c, slice_from_cstr(op->name));
    if (!t)
        op->res.why = "topic does not exist";
    return t;
}

static int build_delete_topic(struct cluster *c, struct op *op, struct change *ch)
{
    struct mtopic *t = op_topic(c, op);
    if (!t)
        return CLUSTER_ERR_UNKNOWN_TOPIC;
    cluster__change_record(ch, REC_REMOVE_TOPIC);
    buf_append(&ch->body, t->id, 16);
    return 0;
}

static int build_create_partitions(struct cluster *c, struct op *op, struct change *ch)
{
    const char **why = &op->res.why;
    struct mtopic *t = op_topic(c, op);
    if (!t)
        return CLUSTER_ERR_UNKNOWN_TOPIC;
    int32_t new_total = op->count;
    if (new_total <= t->partition_count) {
        *why = new_total == t->partition_count ? "topic already has that many partitions"
                                               : "the number of partitions can only grow";
        return CLUSTER_ERR_INVALID_PARTITIONS;
    }
    if (new_total > MAX_PARTITIONS_PER_TOPIC) {
        *why = "number of partitions must be at most 100000";
        return CLUSTER_ERR_INVALID_PARTITIONS;
    }
    if ((*why = partitions_over_limit(c, new_total - t->partition_count)) != NULL)
        return CLUSTER_ERR_LIMIT;
    /* The new partitions have as many replicas as the first one, as in Kafka (as it will
     * have them, if a reassignment is under way). */
    const struct mpartition *first = t->partition_count > 0 ? &t->partitions[0] : NULL;
    int32_t rf = first ? MAX(first->replica_count - first->removing_count, 1) : 1;
    struct new_partitions np;
    int rc = cluster__place_partitions(c, op, t->partition_count, new_total - t->partition_count,
                                       rf, &np);
    if (rc == 0 && !op->validate_only)
        add_new_partitions(ch, t->id, &np);
    cluster__new_partitions_free(&np);
    return rc;
}

/* Computes a list value after APPEND/SUBTRACT on a comma-separated list. */
static char *list_op(const char *current, const char *item, enum cluster_config_op op)
{
    struct buf out;
    buf_init(&out);
    bool present = false;
    const char *p = current ? current : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        bool same = n == strlen(item) && strncmp(p, item, n) == 0;
        present |= same;
        if (n > 0 && !(same && op == CFG_OP_SUBTRACT)) {
            if (out.len)
                buf_append(&out, ",", 1);
            buf_append(&out, p, n);
        }
        p += n + (comma ? 1 : 0);
    }
    if (op == CFG_OP_APPEND && !present) {
        if (out.len)
            buf_append(&out, ",", 1);
        buf_append(&out, item, strlen(item));
    }
    char *s = xstrndup(out.len ? (const char *)out.data : "", out.len);
    buf_free(&out);
    return s;
}

static int build_alter_configs(struct cluster *c, struct op *op, struct change *ch)
{
    const char **why = &op->res.why;
    struct mtopic *t = op_topic(c, op);
    if (!t)
        return CLUSTER_ERR_UNKNOWN_TOPIC;
    const struct config_change *changes = op->changes;
    size_t n = op->change_count;
    /* Resolve every change to a final (name, value-or-NULL) first; validate all. */
    struct config_entry *final = xcalloc(n + t->config_count + 1, sizeof *final);
    size_t nf = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct config_change *chg = &changes[i];
        const struct tcfg_def *d = tcfg_find(chg->name);
        if (!d) {
            *why = "unknown topic config";
            rc = CLUSTER_ERR_INVALID_CONFIG;
            break;
        }
        char *value = NULL;
        if (chg->op == CFG_OP_SET) {
            if (!chg->value) {
                *why = "value must not be null";
                rc = CLUSTER_ERR_INVALID_CONFIG;
                break;
            }
            value = xstrdup(chg->value);
        } else if (chg->op == CFG_OP_APPEND || chg->op == CFG_OP_SUBTRACT) {
            if (d->type != TCFG_LIST || !chg->value) {
                *why = "APPEND and SUBTRACT apply only to list configs";
                rc = CLUSTER_ERR_INVALID_CONFIG;
                break;
            }
            const char *cur = cluster_topic_config(t, chg->name);
            value = list_op(cur ? cur : d->default_value, chg->value, chg->op);
        } else if (chg->op != CFG_OP_DELETE) {
            *why = "unknown config operation";
            rc = CLUSTER_ERR_INVALID_CONFIG;
            break;
        }
        if (value && (*why = tcfg_validate(chg->name, value)) != NULL) {
            free(value);
            rc = CLUSTER_ERR_INVALID_CONFIG;
            break;
        }
        final[nf++] = (struct config_entry){xstrdup(chg->name), value};
    }
    if (rc == 0 && op->replace_all) {
        /* Legacy AlterConfigs: every existing setting not named goes back to default. */
        for (size_t i = 0; i < t->config_count; i++) {
            bool named = false;
            for (size_t k = 0; k < n; k++)
                named |= strcmp(changes[k].name, t->configs[i].name) == 0;
            if (!named)
                final[nf++] = (struct config_entry){xstrdup(t->configs[i].name), NULL};
        }
    }
    /* unclean.leader.election.enable as the change leaves it: turned on, it elects a
     * leader for the partitions left without one, in the same change, as Kafka does. */
    bool unclean = cluster__unclean_enabled(c, t);
    for (size_t i = 0; i < nf; i++)
        if (strcmp(final[i].name, "unclean.leader.election.enable") == 0)
            unclean = final[i].value ? strcasecmp(final[i].value, "true") == 0 : c->unclean_default;
    if (rc == 0 && !op->validate_only) {
        for (size_t i = 0; i < nf; i++)
            add_config_record(ch, t->name, final[i].name, final[i].value);
        if (unclean)
            cluster__add_unclean_elections(c, ch, t);
    }
    for (size_t i = 0; i < nf; i++) {
        free(final[i].name);
        free(final[i].value);
    }
    free(final);
    return rc;
}

static bool has_id(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static bool has_repeats(const int32_t *ids, int32_t n)
{
    for (int32_t i = 1; i < n; i++)
        if (has_id(ids, i, ids[i]))
            return true;
    return false;
}

/* AlterPartition's checks, as Kafka's controller makes them: the sender must still lead
 * at the epochs it saw, and every replica it wants in sync must be an unfenced replica
 * (a fenced one would be elected from the ISR although it cannot serve). */
static int check_alter_partition(struct cluster *c, struct op *op, const struct mpartition *old)
{
    const char **why = &op->res.why;
    if (old->leader != op->leader || old->leader_epoch != op->leader_epoch) {
        *why = "the sender does not lead the partition at that leader epoch";
        return CLUSTER_ERR_FENCED_LEADER_EPOCH;
    }
    if (old->partition_epoch != op->partition_epoch) {
        *why = "the partition epoch has moved on";
        return CLUSTER_ERR_INVALID_UPDATE_VERSION;
    }
    for (int32_t i = 0; i < op->isr_count; i++) {
        const struct mbroker *b = cluster_broker_find(c, op->isr[i]);
        if (!b || b->fenced || !has_id(old->replicas, old->replica_count, op->isr[i])) {
            *why = "an in-sync replica must be an unfenced replica";
            return CLUSTER_ERR_INELIGIBLE_REPLICA;
        }
    }
    return 0;
}

static int32_t *copy_ids(const int32_t *ids, int32_t n)
{
    int32_t *out = xcalloc((size_t)(n > 0 ? n : 1), sizeof *out);
    if (n > 0)
        memcpy(out, ids, (size_t)n * sizeof *ids);
    return out;
}

static bool unfenced(struct cluster *c, int32_t id)
{
    const struct mbroker *b = cluster_broker_find(c, id);
    return b && !b->fenced;
}

/* ElectLeaders' choice (cluster_elect_leader), into op->leader (and op->isr when
 * unclean), from the image as it is when the change is built. */
static int elect(struct cluster *c, struct op *op, const struct mtopic *t,
                 const struct mpartition *old)
{
    const char **why = &op->res.why;
    op->leader = CLUSTER_KEEP_LEADER;
    if (op->election == CLUSTER_ELECT_PREFERRED) {
        int32_t preferred = old->replicas[0];
        if (old->leader == preferred) {
            *why = "the preferred replica leads already";
            return CLUSTER_ERR_ELECTION_NOT_NEEDED;
        }
        if (!unfenced(c, preferred) || !has_id(old->isr, old->isr_count, preferred)) {
            *why = "the preferred replica is fenced or not in sync";
            return CLUSTER_ERR_PREFERRED_NOT_AVAILABLE;
        }
        op->leader = preferred;
        return 0;
    }
    if (old->leader >= 0) {
        *why = "the partition has a leader";
        return CLUSTER_ERR_ELECTION_NOT_NEEDED;
    }
    for (int32_t i = 0; i < old->replica_count; i++) {
        int32_t id = old->replicas[i];
        if (unfenced(c, id) && has_id(old->isr, old->isr_count, id)) {
            op->leader = id; /* a clean choice after all */
            return 0;
        }
    }
    int32_t id = cluster__unclean_leader(c, t, old, -1, false);
    if (id < 0) {
        *why = "no replica is unfenced";
        return CLUSTER_ERR_NO_ELIGIBLE_LEADER;
    }
    op->leader = id;
    free(op->isr);
    op->isr = copy_ids(&id, 1);
    op->isr_count = 1;
    return 0;
}

/* ---- reassignments (KIP-455) ---- */

/* The ids of a that are not in b, in a's order (a new array; *n their number). */
static int32_t *ids_minus(const int32_t *a, int32_t na, const int32_t *b, int32_t nb, int32_t *n)
{
    int32_t *out = xcalloc((size_t)MAX(na, 1), sizeof *out);
    *n = 0;
    for (int32_t i = 0; i < na; i++)
        if (!has_id(b, nb, a[i]))
            out[(*n)++] = a[i];
    return out;
}

/* Replaces *owned (an op's array) with v. */
static void own_ids(int32_t **owned, int32_t *v)
{
    free(*owned);
    *owned = v;
}

/* The first replica, in replica order, in the ISR and unfenced; -1 if none. */
static int32_t first_eligible(struct cluster *c, const struct mpartition *p)
{
    for (int32_t i = 0; i < p->replica_count; i++)
        if (has_id(p->isr, p->isr_count, p->replicas[i]) && unfenced(c, p->replicas[i]))
            return p->replicas[i];
    return -1;
}

/* Cancelling: back to the replicas before the reassignment (those being added leave the
 * replicas and the ISR, and the lead if they had it). */
static int reassign_cancel(struct cluster *c, struct op *op, const struct mpartition *old,
                           struct mpartition *now)
{
    if (old->adding_count == 0 && old->removing_count == 0) {
        op->res.why = "No reassignment is in progress for this partition.";
        return CLUSTER_ERR_NO_REASSIGNMENT;
    }
    own_ids(&op->replicas, ids_minus(old->replicas, old->replica_count, old->adding,
                                     old->adding_count, &op->replica_count));
    own_ids(&op->isr,
            ids_minus(old->isr, old->isr_count, old->adding, old->adding_count, &op->isr_count));
    if (op->isr_count == 0) {
        /* Kafka would elect uncleanly here; Samsa leaves the reassignment to finish. */
        op->res.why = "Cancelling would leave none of the partition's replicas in sync.";
        return CLUSTER_ERR_INVALID_ASSIGNMENT;
    }
    *now = *old;
    now->replicas = op->replicas;
    now->replica_count = op->replica_count;
    now->isr = op->isr;
    now->isr_count = op->isr_count;
    now->adding = now->removing = NULL;
    now->adding_count = now->removing_count = 0;
    if (!has_id(now->isr, now->isr_count, now->leader))
        now->leader = first_eligible(c, now);
    return 0;
}

/* Starting (or replacing) a reassignment to the target in op->replicas. */
static int reassign_start(struct cluster *c, struct op *op, const struct mpartition *old,
                          struct mpartition *now)
{
    const int32_t *target = op->replicas;
    int32_t n = op->replica_count;
    int rc = cluster__check_replica_list(c, target, n, op->why, sizeof op->why);
    if (rc != 0) {
        op->res.why = op->why;
        return rc;
    }
    int32_t current = old->replica_count - old->adding_count;
    if (!op->allow_rf_change && n != current) {
        snprintf(op->why, sizeof op->why,
                 "The replication factor is changed from %d to %d but changing the replication "
                 "factor is not allowed.",
                 current, n);
        op->res.why = op->why;
        return CLUSTER_ERR_INVALID_REPLICATION;
    }
    /* As Kafka's controller: the target, then the current replicas not in it. */
    int32_t rest_n = 0;
    int32_t *rest = ids_minus(old->replicas, old->replica_count, target, n, &rest_n);
    int32_t *all = xcalloc((size_t)(n + rest_n), sizeof *all);
    memcpy(all, target, (size_t)n * sizeof *all);
    memcpy(all + n, rest, (size_t)rest_n * sizeof *all);
    op->adding = ids_minus(target, n, old->replicas, old->replica_count, &op->adding_count);
    op->removing = rest;
    op->removing_count = rest_n;
    own_ids(&op->replicas, all);
    op->replica_count = n + rest_n;
    *now = *old;
    now->replicas = op->replicas;
    now->replica_count = op->replica_count;
    now->adding = op->adding;
    now->adding_count = op->adding_count;
    now->removing = op->removing;
    now->removing_count = op->removing_count;
    return 0;
}

/* A reassignment under way completes once every target replica (the replicas not being
 * removed) is in sync, in the change that makes it so: those being removed leave the
 * replicas and the ISR, and if one of them led, the first target replica in sync and
 * unfenced leads. */
static void maybe_complete_reassignment(struct cluster *c, struct op *op, struct mpartition *now)
{
    if (now->adding_count == 0 && now->removing_count == 0)
        return;
    for (int32_t i = 0; i < now->replica_count; i++)
        if (!has_id(now->removing, now->removing_count, now->replicas[i]) &&
            !has_id(now->isr, now->isr_count, now->replicas[i]))
            return;
    int32_t nr = 0, ni = 0;
    int32_t *replicas =
        ids_minus(now->replicas, now->replica_count, now->removing, now->removing_count, &nr);
    int32_t *isr = ids_minus(now->isr, now->isr_count, now->removing, now->removing_count, &ni);
    own_ids(&op->replicas, replicas);
    own_ids(&op->isr, isr);
    now->replicas = replicas;
    now->replica_count = nr;
    now->isr = isr;
    now->isr_count = ni;
    now->adding = now->removing = NULL;
    now->adding_count = now->removing_count = 0;
    if (!has_id(now->isr, now->isr_count, now->leader))
        now->leader = first_eligible(c, now);
}

static int build_change_partition(struct cluster *c, struct op *op, struct change *ch)
{
    const char **why = &op->res.why;
    struct mtopic *t = op_topic(c, op);
    if (!t)
        return CLUSTER_ERR_UNKNOWN_TOPIC;
    if (op->partition < 0 || op->partition >= t->partition_count) {
        *why = "the topic has no such partition";
        return CLUSTER_ERR_INVALID_PARTITIONS;
    }
    const struct mpartition *old = &t->partitions[op->partition];
    op->res.partition_epoch = old->partition_epoch;
    if (op->from_leader) {
        int rc = check_alter_partition(c, op, old);
        if (rc != 0)
            return rc;
    }
    if (op->election != CLUSTER_ELECT_NONE) {
        int rc = elect(c, op, t, old);
        if (rc != 0)
            return rc;
    }
    struct mpartition now = *old;
    if (op->reassign != REASSIGN_NONE) {
        int rc = op->reassign == REASSIGN_TO ? reassign_start(c, op, old, &now)
                                             : reassign_cancel(c, op, old, &now);
        if (rc != 0)
            return rc;
    } else {
        if (op->replica_count >= 0) {
            now.replicas = op->replicas;
            now.replica_count = op->replica_count;
            now.adding_count = now.removing_count = 0; /* a reassignment under way ends */
        }
        if (op->isr_count >= 0) {
            now.isr = op->isr;
            now.isr_count = op->isr_count;
        }
        if (op->leader != CLUSTER_KEEP_LEADER)
            now.leader = op->leader;
    }
    maybe_complete_reassignment(c, op, &now);
    if (now.replica_count == 0 || has_repeats(now.replicas, now.replica_count)) {
        *why = "the replicas must be at least one broker, each named once";
        return CLUSTER_ERR_INVALID_REPLICATION;
    }
    for (int32_t i = 0; i < now.replica_count; i++) {
        /* A replica it has already is kept as it is (a node's own, on a single node whose
         * topics were made before it registered). */
        if (!cluster_broker_find(c, now.replicas[i]) &&
            !has_id(old->replicas, old->replica_count, now.replicas[i])) {
            *why = "a new replica is not a registered broker";
            return CLUSTER_ERR_INVALID_REPLICATION;
        }
    }
    if (has_repeats(now.isr, now.isr_count)) {
        *why = "the in-sync replicas name a broker twice";
        return CLUSTER_ERR_INVALID_REPLICATION;
    }
    for (int32_t i = 0; i < now.isr_count; i++) {
        if (!has_id(now.replicas, now.replica_count, now.isr[i])) {
            *why = "an in-sync replica is not a replica";
            return CLUSTER_ERR_INVALID_REPLICATION;
        }
    }
    if (now.leader != -1 && !has_id(now.isr, now.isr_count, now.leader)) {
        *why = "the leader must be an in-sync replica";
        return CLUSTER_ERR_INVALID_REPLICATION;
    }
    /* A fenced broker leads nothing and joins no ISR (Kafka: INELIGIBLE_REPLICA); it may
     * stay in one only as its last member, as fencing leaves it. */
    if (now.leader != -1 && now.leader != old->leader && !unfenced(c, now.leader)) {
        *why = "the new leader is a fenced broker";
        return CLUSTER_ERR_INVALID_REPLICATION;
    }
    for (int32_t i = 0; op->isr_count >= 0 && i < now.isr_count; i++) {
        const struct mbroker *b = cluster_broker_find(c, now.isr[i]);
        bool fenced = b && b->fenced; /* unregistered: a member it has already */
        if (fenced && !has_id(old->isr, old->isr_count, now.isr[i])) {
            *why = "an in-sync replica to add is a fenced broker";
            return CLUSTER_ERR_INVALID_REPLICATION;
        }
        if (fenced && now.isr_count > 1) {
            *why = "a fenced broker stays in the in-sync replicas only as their last member";
            return CLUSTER_ERR_INVALID_REPLICATION;
        }
    }
    bool new_replicas =
        !same_ids(now.replicas, now.replica_count, old->replicas, old->replica_count);
    bool new_isr = !same_ids(now.isr, now.isr_count, old->isr, old->isr_count);
    bool new_reassignment =
        !same_ids(now.adding, now.adding_count, old->adding, old->adding_count) ||
        !same_ids(now.removing, now.removing_count, old->removing, old->removing_count);
    if (now.leader == old->leader && !new_replicas && !new_isr && !new_reassignment)
        return 0; /* nothing changes: nothing is written */
    /* Kafka's rule (PartitionChangeBuilder): followers and clients fence by the leader
     * epoch, so it moves when the leader changes, and when a replica is removed (which
     * must stop fetching); not when the ISR alone changes or replicas are only added. The
     * partition epoch fences stale AlterPartition requests, so it moves with every change. */
    bool replica_removed = false;
    for (int32_t i = 0; i < old->replica_count; i++)
        replica_removed |= !has_id(now.replicas, now.replica_count, old->replicas[i]);
    if (now.leader != old->leader || replica_removed)
        now.leader_epoch = old->leader_epoch + 1;
    now.partition_epoch = old->partition_epoch + 1;
    op->res.partition_epoch = now.partition_epoch;
    cluster__add_partition_state(ch, t->id, &now);
    return 0;
}

static int build(struct cluster *c, struct op *op, struct change *ch)
{
    switch (op->kind) {
    case OP_REGISTER_BROKER: return cluster__build_register_broker(c, op, ch);
    case OP_BROKER_CHANGE: return cluster__build_broker_change(c, op, ch);
    case OP_ADD_OBSERVER: break; /* not records: see propose_next */
    case OP_PRODUCER_IDS: return build_producer_ids(c, op, ch);
    case OP_CREATE_TOPIC: return build_create_topic(c, op, ch);
    case OP_DELETE_TOPIC:
    case OP_TAKE_BACK: return build_delete_topic(c, op, ch);
    case OP_CREATE_PARTITIONS: return build_create_partitions(c, op, ch);
    case OP_ALTER_CONFIGS: return build_alter_configs(c, op, ch);
    case OP_CHANGE_PARTITION: return build_change_partition(c, op, ch);
    }
    ASSERT(!"unknown change kind");
    return CLUSTER_ERR_IO;
}

/* ---- changes: checked, proposed and applied one at a time ----
 *
 * A change waits in c->queue until the one before it is applied and this node leads
 * a quorum whose whole log it has applied; then it is checked against the image (so two
 * changes never both pass a check only one may pass, such as two creations of one name),
 * encoded and proposed. Once the quorum has committed it, it is applied to the image
 * (the listener runs) and done is told. A node that does not lead refuses changes with
 * CLUSTER_ERR_NOT_CONTROLLER, and so does a leader that loses its leadership before its
 * change is committed (the change may still be committed by the next leader).
 *
 * Writes: whatever the quorum needs written (a change's entry, a vote, entries from the
 * leader) runs through the runner, one write at a time: quorum_persist (the write and
 * its fdatasync) on the runner's thread, never on the caller's, then quorum_advance here.
 * Snapshots are written the same way, between two writes. */

static void free_op(struct op *op)
{
    free(op->name);
    free(op->rack);
    for (size_t i = 0; i < op->config_count; i++) {
        free(op->configs[i].name);
        free(op->configs[i].value);
    }
    free(op->configs);
    for (size_t i = 0; i < op->change_count; i++) {
        free((char *)op->changes[i].name);
        free((char *)op->changes[i].value);
    }
    free(op->changes);
    free(op->replicas);
    free(op->isr);
    free(op->adding);
    free(op->removing);
    buf_free(&op->entry);
    free(op);
}

static void complete(struct op *op)
{
    if (op->done)
        op->done(op->arg, &op->res);
    free_op(op);
}

static void refuse_not_controller(struct op *op)
{
    op->res.err = CLUSTER_ERR_NOT_CONTROLLER;
    op->res.why = "this node is not the active controller";
    complete(op);
}

/* The change being proposed has an outcome: report it (or take a creation back). */
static void finish_change(struct cluster *c, enum quorum_outcome outcome)
{
    struct op *op = c->writing;
    c->writing = NULL;
    if (outcome == QUORUM_LOST) {
        refuse_not_controller(op);
        return;
    }
    if (outcome == QUORUM_FAILED) {
        op->res.err = CLUSTER_ERR_IO;
        op->res.why = "the metadata log could not be written (the broker's log says why)";
        complete(op);
        return;
    }
    if (c->own_listener_rc != 0 && op->kind == OP_CREATE_TOPIC) {
        /* Recorded, but the broker cannot serve it: take it back, before anything else,
         * so that no topic stays listed that producers would find broken. The caller
         * hears of it when the removal is applied. */
        say_error("cluster", "topic %s could not be opened; removing it again", op->name);
        op->kind = OP_TAKE_BACK;
        op->next = c->queue;
        c->queue = op;
        if (!c->queue_tail)
            c->queue_tail = op;
        return;
    }
    if (op->kind == OP_TAKE_BACK) {
        op->res.err = CLUSTER_ERR_IO;
        op->res.why = "the broker could not open the topic's partitions (its log says why); "
                      "nothing was created";
    } else if (c->own_listener_rc != 0 && op->kind == OP_CREATE_PARTITIONS) {
        op->res.err = CLUSTER_ERR_IO;
        op->res.why = "the broker could not open all the new partitions (its log says why)";
    }
    complete(op);
}

static void kick(struct cluster *c);

/* The runner's thread: the one place the metadata log is written. */
static void io_work(void *arg)
{
    struct cluster *c = arg;
    c->io_rc = c->io_snapshot ? quorum_snapshot_write(c->log) : quorum_persist(c->log);
}

/* The caller's thread, once the write is durable (or failed). */
static void io_finish(struct cluster *c)
{
    ASSERT(c->io);
    c->io = false;
    if (c->io_snapshot) {
        c->io_snapshot = false;
        quorum_snapshot_done(c->log, c->io_rc);
    } else {
        quorum_advance(c->log, c->io_rc); /* applies what is committed: the listener runs */
    }
}

static void io_done(void *arg)
{
    struct cluster *c = arg;
    io_finish(c);
    kick(c);
}

/* Runs the write on the runner's thread, or here when there is none. */
static void start_io(struct cluster *c, bool snapshot)
{
    ASSERT(!c->io);
    c->io = true;
    c->io_snapshot = snapshot;
    if (c->runner.run) {
        c->runner.run(c->runner.runner_arg, io_work, io_done, c);
    } else {
        io_work(c);
        io_finish(c);
    }
}

/* ---- snapshots: written between two writes, where changes are written ----
 *
 * When the quorum says a snapshot is due (quorum.h: the log's size or the age of the
 * oldest change in no snapshot), the image is encoded here, on the caller's thread that
 * owns it, and handed to the quorum; the write (snapshot, then the log without what it
 * covers, each with its fsyncs) runs on the runner's thread like any other, so the
 * storage is never written from two threads. */
static bool start_snapshot(struct cluster *c)
{
    struct buf *entries;
    size_t n = image_encode(c, 0, &entries);
    struct slice *payloads = image_slices(entries, n);
    int rc = quorum_snapshot_begin(c->log, payloads, n);
    image_entries_free(entries, n);
    free(payloads);
    if (rc != 0)
        return false; /* logged; the quorum takes no more snapshots */
    start_io(c, true);
    return true;
}

/* Proposes the next change, if this node may. Returns false when nothing more can
 * happen until the next input (a write finishing, a message, a tick). */
static bool propose_next(struct cluster *c)
{
    bool can = quorum_can_propose(c->log);
    if (!can && quorum_leading(c->log) && !quorum_failed(c->log))
        return false; /* a leader catching up, or a write or snapshot in flight: wait */
    struct op *op = c->queue;
    c->queue = op->next;
    if (!c->queue)
        c->queue_tail = NULL;
    op->next = NULL;
    if (quorum_failed(c->log)) {
        op->res.err = CLUSTER_ERR_IO;
        op->res.why = "the metadata log refuses changes (the broker's log says why)";
        complete(op);
        return true;
    }
    if (!can) {
        refuse_not_controller(op);
        return true;
    }
    if (op->kind == OP_ADD_OBSERVER) {
        int rc = quorum_add_observer(c->log, op->node_id);
        if (rc == 0) {
            c->writing = op;
        } else {
            op->res.err = rc == -EEXIST ? CLUSTER_OK : CLUSTER_ERR_IO;
            complete(op);
        }
        return true;
    }
    struct change ch;
    change_init(&ch);
    op->res.err = build(c, op, &ch);
    if (op->res.err != 0 || ch.count == 0) {
        buf_free(&ch.body);
        complete(op);
        return true;
    }
    buf_free(&op->entry);
    change_finish(&ch, &op->entry);
    c->own_listener_rc = 0;
    int rc = quorum_propose(c->log, op->entry.data, op->entry.len);
    buf_free(&op->entry);
    if (rc != 0) {
        op->res.err = CLUSTER_ERR_IO;
        op->res.why = "the metadata log refuses changes (the broker's log says why)";
        complete(op);
        return true;
    }
    c->writing = op;
    return true;
}

/* Moves everything on that can move: reports the change whose fate is known, starts the
 * write the quorum needs, a snapshot when one is due, the next change. Not re-entered: a
 * change submitted from a done callback is picked up by the loop already running. */
static void kick(struct cluster *c)
{
    if (c->pumping)
        return;
    c->pumping = true;
    for (;;) {
        if (c->writing) {
            enum quorum_outcome o = quorum_take_outcome(c->log);
            if (o != QUORUM_PENDING) {
                ASSERT(o != QUORUM_NONE);
                finish_change(c, o);
                continue;
            }
        }
        if (c->io)
            break;
        if (quorum_write_pending(c->log)) {
            start_io(c, false);
            continue;
        }
        if (quorum_snapshot_due(c->log) && start_snapshot(c))
            continue;
        if (c->writing || !c->queue || !propose_next(c))
            break;
    }
    c->pumping = false;
}

struct op *cluster__op_new(struct cluster *c, enum op_kind kind, cluster_done_fn done, void *arg)
{
    struct op *op = xcalloc(1, sizeof *op);
    op->c = c;
    op->kind = kind;
    op->done = done;
    op->arg = arg;
    buf_init(&op->entry);
    return op;
}

void cluster__submit(struct op *op)
{
    struct cluster *c = op->c;
    if (c->queue_tail)
        c->queue_tail->next = op;
    else
        c->queue = op;
    c->queue_tail = op;
    kick(c);
}

void cluster_set_runner(struct cluster *c, const struct cluster_runner *runner)
{
    c->runner = runner ? *runner : (struct cluster_runner){0};
}

bool cluster_busy(const struct cluster *c)
{
    return c->writing || c->io || c->queue;
}

void cluster_tick(struct cluster *c)
{
    quorum_tick(c->log);
    kick(c);
}

void cluster_receive(struct cluster *c, const uint8_t *msg, size_t len)
{
    quorum_receive(c->log, msg, len);
    kick(c);
}

void cluster_set_transport(struct cluster *c, cluster_send_fn send, void *arg)
{
    quorum_set_transport(c->log, send, arg);
}

void cluster_forget(struct cluster *c, void *arg)
{
    if (c->writing && c->writing->arg == arg)
        c->writing->done = NULL;
    for (struct op *op = c->queue; op; op = op->next)
        if (op->arg == arg)
            op->done = NULL;
}

void cluster_allocate_producer_ids(struct cluster *c, int32_t node_id, int64_t count,
                                   cluster_done_fn done, void *arg)
{
    struct op *op = cluster__op_new(c, OP_PRODUCER_IDS, done, arg);
    op->node_id = node_id;
    op->id_count = count;
    cluster__submit(op);
}

/* A topic creation's op: everything but the placement. */
static struct op *create_topic_op(struct cluster *c, struct slice name, int32_t partitions,
                                  int16_t replication_factor, const struct config_entry *configs,
                                  size_t config_count, bool validate_only, cluster_done_fn done,
                                  void *arg)
{
    struct op *op = cluster__op_new(c, OP_CREATE_TOPIC, done, arg);
    op->name = slice_to_cstr(name);
    op->count = partitions;
    op->replication_factor = replication_factor;
    op->validate_only = validate_only;
    op->configs = xcalloc(config_count + 1, sizeof *op->configs);
    op->config_count = config_count;
    for (size_t i = 0; i < config_count; i++) {
        op->configs[i].name = xstrdup(configs[i].name);
        op->configs[i].value = configs[i].value ? xstrdup(configs[i].value) : NULL;
    }
    return op;
}

void cluster_create_topic(struct cluster *c, struct slice name, int32_t partitions,
                          int16_t replication_factor, const struct config_entry *configs,
                          size_t config_count, bool validate_only, cluster_done_fn done, void *arg)
{
    cluster__submit(create_topic_op(c, name, partitions, replication_factor, configs, config_count,
                                    validate_only, done, arg));
}

/* A manual assignment's copy in op: `partitions` partitions of rf brokers each. */
static void set_assignment(struct op *op, const int32_t *brokers, int32_t partitions, int16_t rf)
{
    size_t cells = (size_t)MAX(partitions, 0) * (size_t)MAX(rf, 0);
    op->replicas = xcalloc(MAX(cells, 1), sizeof *op->replicas);
    if (cells > 0)
        memcpy(op->replicas, brokers, cells * sizeof *brokers);
    op->replica_count = (int32_t)MIN(cells, (size_t)INT32_MAX);
    op->assigned = MAX(partitions, 0);
    op->replication_factor = rf;
}

void cluster_create_topic_assigned(struct cluster *c, struct slice name, const int32_t *brokers,
                                   int32_t partitions, int16_t replication_factor,
                                   const struct config_entry *configs, size_t config_count,
                                   bool validate_only, cluster_done_fn done, void *arg)
{
    struct op *op = create_topic_op(c, name, partitions, replication_factor, configs, config_count,
                                    validate_only, done, arg);
    set_assignment(op, brokers, partitions, replication_factor);
    cluster__submit(op);
}

void cluster_delete_topic(struct cluster *c, struct slice name, cluster_done_fn done, void *arg)
{
    struct op *op = cluster__op_new(c, OP_DELETE_TOPIC, done, arg);
    op->name = slice_to_cstr(name);
    cluster__submit(op);
}

void cluster_create_partitions(struct cluster *c, struct slice name, int32_t new_total,
                               const int32_t *brokers, int32_t assigned, int16_t replication_factor,
                               bool validate_only, cluster_done_fn done, void *arg)
{
    struct op *op = cluster__op_new(c, OP_CREATE_PARTITIONS, done, arg);
    op->name = slice_to_cstr(name);
    op->count = new_total;
    op->validate_only = validate_only;
    if (brokers)
        set_assignment(op, brokers, assigned, replication_factor);
    cluster__submit(op);
}

/* A partition change op (cluster_change_partition's), not yet submitted. */
static struct op *partition_change_op(struct cluster *c, struct slice topic, int32_t partition,
                                      const struct cluster_partition_change *change,
                                      cluster_done_fn done, void *arg)
{
    struct op *op = cluster__op_new(c, OP_CHANGE_PARTITION, done, arg);
    op->name = slice_to_cstr(topic);
    op->partition = partition;
    op->leader = change->leader;
    op->replica_count = op->isr_count = -1;
    if (change->replicas) {
        op->replicas = copy_ids(change->replicas, change->replica_count);
        op->replica_count = MAX(change->replica_count, 0);
    }
    if (change->isr) {
        op->isr = copy_ids(change->isr, change->isr_count);
        op->isr_count = MAX(change->isr_count, 0);
    }
    return op;
}

void cluster_change_partition(struct cluster *c, struct slice topic, int32_t partition,
                              const struct cluster_partition_change *change, cluster_done_fn done,
                              void *arg)
{
    cluster__submit(partition_change_op(c, topic, partition, change, done, arg));
}

void cluster_alter_partition(struct cluster *c, struct slice topic, int32_t partition,
                             const struct cluster_isr_change *change, cluster_done_fn done,
                             void *arg)
{
    /* The leader is kept: the sender leads (checked at build). An empty ISR is still an
     * ISR asked for (and refused: the leader must be in it), not "unchanged". */
    static const int32_t none[1];
    const struct cluster_partition_change isr = {.leader = change->leader,
                                                 .isr = change->isr ? change->isr : none,
                                                 .isr_count = change->isr_count};
    struct op *op = partition_change_op(c, topic, partition, &isr, done, arg);
    op->from_leader = true;
    op->leader_epoch = change->leader_epoch;
    op->partition_epoch = change->partition_epoch;
    cluster__submit(op);
}

void cluster_elect_leader(struct cluster *c, struct slice topic, int32_t partition,
                          enum cluster_election how, cluster_done_fn done, void *arg)
{
    const struct cluster_partition_change none = {.leader = CLUSTER_KEEP_LEADER};
    struct op *op = partition_change_op(c, topic, partition, &none, done, arg);
    op->election = how;
    cluster__submit(op);
}

void cluster_reassign_partition(struct cluster *c, struct slice topic, int32_t partition,
                                const int32_t *target, int32_t target_count, bool allow_rf_change,
                                cluster_done_fn done, void *arg)
{
    const struct cluster_partition_change to = {
        .leader = CLUSTER_KEEP_LEADER, .replicas = target, .replica_count = target_count};
    struct op *op = partition_change_op(c, topic, partition, &to, done, arg);
    op->reassign = target ? REASSIGN_TO : REASSIGN_CANCEL;
    op->allow_rf_change = allow_rf_change;
    cluster__submit(op);
}

void cluster_alter_topic_configs(struct cluster *c, struct slice name,
                                 const struct config_change *changes, size_t n, bool replace_all,
                                 bool validate_only, cluster_done_fn done, void *arg)
{
    struct op *op = cluster__op_new(c, OP_ALTER_CONFIGS, done, arg);
    op->name = slice_to_cstr(name);
    op->replace_all = replace_all;
    op->validate_only = validate_only;
    op->changes = xcalloc(n + 1, sizeof *op->changes);
    op->change_count = n;
    for (size_t i = 0; i < n; i++) {
        op->changes[i].name = xstrdup(changes[i].name);
        op->changes[i].value = changes[i].value ? xstrdup(changes[i].value) : NULL;
        op->changes[i].op = changes[i].op;
    }
    cluster__submit(op);
}

/* ---- recovery (`samsa metadata recover`) ---- */

int cluster_recover_topic(struct cluster *c, const char *name, const uint8_t *id,
                          int32_t partitions, const struct config_entry *configs, size_t n)
{
    if (cluster_topic_name_error(slice_from_cstr(name)))
        return CLUSTER_ERR_INVALID_TOPIC;
    if (partitions <= 0 || partitions > MAX_PARTITIONS_PER_TOPIC)
        return CLUSTER_ERR_INVALID_PARTITIONS;
    struct mtopic *t = topic_by_name(c, slice_from_cstr(name));
    struct change ch;
    change_init(&ch);
    if (!t) {
        uint8_t fresh[16];
        if (!id || topic_by_id(c, id, NULL) || cluster_topic_id_deleted(c, id)) {
            cluster_uuid_random(fresh);
            id = fresh;
        }
        cluster__change_record(&ch, REC_TOPIC);
        cluster__put_str(&ch.body, name);
        buf_append(&ch.body, id, 16);
        for (size_t i = 0; i < n; i++)
            add_config_record(&ch, name, configs[i].name, configs[i].value);
        for (int32_t p = 0; p < partitions; p++)
            add_partition_record(&ch, id, p, c->node_id);
    } else {
        for (int32_t p = t->partition_count; p < partitions; p++)
            add_partition_record(&ch, t->id, p, c->node_id);
    }
    struct buf entry;
    change_finish(&ch, &entry);
    if (ch.count > 0)
        apply_entry(c, (struct slice){entry.data, entry.len});
    buf_free(&entry);
    return 0;
}

int cluster_rewrite_log(struct cluster *c, int64_t producer_id_gap, char **kept_path)
{
    struct buf *entries;
    size_t n = image_encode(c, producer_id_gap, &entries);
    struct slice *payloads = image_slices(entries, n);
    int rc = quorum_replace(c->log, payloads, n, kept_path);
    if (rc == 0)
        c->next_producer_id += producer_id_gap;
    image_entries_free(entries, n);
    free(payloads);
    return rc == 0 ? 0 : CLUSTER_ERR_IO;
}
