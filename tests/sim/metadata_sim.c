/*
 * metadata_sim: deterministic simulation of the metadata quorum at the cluster/ level.
 *
 * Three or five voters, each a real `struct cluster` with its own metadata dir under
 * /tmp (every write really written and fdatasync'd), exchange the quorum's messages
 * through a simulated network that delays, drops, duplicates and reorders them and
 * partitions the nodes (symmetric and one-way), healing later. Clients submit changes
 * to random nodes (topic creations with unique names, with two or three replicas a
 * partition on some once three brokers are registered, partition additions, config
 * changes, partition changes, deletions, producer-id blocks, broker registrations and
 * heartbeats, so brokers are fenced as their sessions expire and unfenced again, moving
 * leaderships and ISRs); nodes crash (cluster_close,
 * sometimes without the clean-shutdown marker) and come back (cluster_open from the same
 * dir). On some runs writes go through a runner and take simulated time, as on the
 * broker's metadata thread, so the quorum holds the inputs that arrive meanwhile; on
 * some the snapshot threshold is tiny, so snapshots are written often and lagging
 * followers install the leader's.
 *
 * On some runs one to three observers run beside the voters: nodes with ids of their own
 * (OBSERVER_ID_BASE up) that controller.quorum.voters does not name, opened from
 * formatted dirs with the same voters list, as brokers without the controller role are.
 * Each gets the log only once the leader has added it (cluster_add_observer, submitted at
 * a random time to a random node, and submitted again after a refusal until
 * acknowledged; most runs add every observer, some leave one out), so observers added
 * once snapshots have dropped the early log catch up by installing one. They crash,
 * restart and sit behind partitions as voters do, their messages go through the same
 * network, and clients submit changes to them too.
 *
 * One seeded PRNG decides everything, and the fake clock (base.h) replaces the monotonic
 * one, so a seed replays a run exactly (topic ids come from /dev/urandom, but no decision
 * depends on them).
 *
 * Checked after every simulated millisecond:
 *   - one history: after each change a node applies (cluster_set_apply_hook), the digest
 *     of its image at that Raft index equals every other node's at that index; a node
 *     reopened from its dir, or one that installed a snapshot, stands where the history
 *     did at its applied index; a node's applied index only grows while it is up;
 *   - election safety: at most one leader per term, and every node that names a
 *     term's leader names the same one;
 *   - the listener's events (created, deleted, partitions added) describe the image:
 *     a mirror kept from them alone matches each node's topics and partition counts;
 *   - every partition as Kafka's controller keeps it, in every image a node holds (after
 *     each change it applies, a snapshot it installs, a reopen: the image changes only
 *     then): its replicas distinct, its ISR non-empty and among them, its leader -1 or in
 *     the ISR; a fenced broker never leads and is in an ISR only as its one member;
 *   - a change acknowledged (CLUSTER_OK) is visible in the acknowledging node's image
 *     at that moment, every change completes exactly once, and no change fails in a way
 *     its inputs rule out (a unique name that "exists", an I/O error without a crash);
 *   - observers: none leads or is named leader; every change submitted to one is refused
 *     with NOT_CONTROLLER (or fails with I/O as it crashes); every node that knows the
 *     quorum's configuration knows the configured voters, and as observers only nodes
 *     whose addition was submitted; an observer nobody added hears nothing; an
 *     acknowledged addition shows in the acknowledging node's configuration.
 * The one-history check above covers observers as every node: whatever an observer
 * applies, log or snapshot, is a prefix of the history.
 * Then everything heals, crashed nodes restart, and within a bounded simulated time one
 * leader must lead every voter and every observer added, and each must have applied the
 * same history; the final leader must count every added observer as a member. Their
 * images (topics with ids, partitions, configs, brokers, deleted ids) must be identical,
 * and hold every acknowledged change: an acknowledged creation's topic unless a deletion
 * of it was submitted, never an acknowledged deletion's, at least the partitions an
 * acknowledged addition asked for, and each config as its last acknowledged change set it
 * (or as a change whose outcome was unknown set it). Producer-id blocks acknowledged
 * never overlap. Last, every node is closed and reopened once more and must stand on the
 * history again.
 *
 * Usage: metadata_sim [--seeds N | --seed S | --from A --to B] [--trace] [--quiet]
 *        [--dir BASE] (where run dirs go; /tmp unless given, or MSIM_DIR)
 * Without a range, MSIM_SEEDS seeds (else 100; under ASan at most 60 unless MSIM_FULL).
 * A failure prints the one-line command that replays the seed with a full trace.
 */
#include "cluster/cluster.h"
#include "sim.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_VOTERS 5
#define MAX_OBSERVERS 3
#define MAX_NODES (MAX_VOTERS + MAX_OBSERVERS)
#define OBSERVER_ID_BASE 100 /* observers are nodes 101, 102, ... */
#define MAX_ADDS 200         /* cluster_add_observer submissions per run */
#define TICK_MS 10
#define ELECTION_TICKS 10
#define CHAOS_MIN_MS 1500
#define CHAOS_MAX_MS 4000
#define LIVENESS_MS 10000
#define MAX_OPS 400  /* the workload's changes; additions of observers come on top */
#define MAX_IDS 1024 /* topic ids the digest looks up for deletion records */
#define FAKE_MONO_START_MS 1000000
#define FAKE_WALL_START_MS 1800000000000ll

static const char *base_dir = "/tmp";

/* Brokers that send no heartbeat for a run's session timeout, drawn from this range, are
 * fenced: short ones fence often during the chaos, long ones rarely. */
#define SESSION_MIN_MS 300
#define SESSION_MAX_MS 3000

/* Brokers new replicas may go to: the unfenced ones; with none registered, the node
 * itself (cluster.h). */
static size_t placeable_brokers(const struct cluster *c)
{
    size_t n = cluster_broker_count(c), unfenced = 0;
    for (size_t i = 0; i < n; i++)
        unfenced += !cluster_broker_at(c, i)->fenced;
    return n == 0 ? 1 : unfenced;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    return mix(h, s ? hash_bytes(s, strlen(s)) : 0x5eedull);
}

/* ---- the workload's changes ---- */

enum op_kind {
    OP_CREATE,
    OP_DELETE,
    OP_PARTITIONS,
    OP_CONFIG,
    OP_LEADER,
    OP_PIDS,
    OP_BROKER,
    OP_HEARTBEAT, /* cluster_broker_heartbeat: unfences a fenced broker */
    OP_OBSERVER,  /* cluster_add_observer */
    OP_REASSIGN,  /* cluster_reassign_partition: to op->target, or (none) cancel */
};
static const char *const op_names[] = {"create",       "delete",  "partitions", "config",
                                       "leader",       "pids",    "broker",     "heartbeat",
                                       "add-observer", "reassign"};
static const char *const config_keys[] = {"retention.ms", "cleanup.policy"};

struct sim;

struct sim_op {
    struct sim *s;
    int no;
    enum op_kind kind;
    int node; /* index of the node it was submitted to */
    char name[32];
    int32_t count;   /* create: partitions; partitions: new total; leader: partition */
    int16_t rf;      /* create: the replication factor */
    int key;         /* config: index in config_keys; create: -1 or a config set */
    char value[32];  /* config (and create's config): the value set */
    bool value_null; /* config: deleted */
    /* leader: the leader asked for (-1: none); broker, heartbeat: its node id; observer:
     * the observer's node id */
    int32_t leader;
    int64_t pid_count;    /* pids */
    int32_t target[3];    /* reassign: the target replicas (count: the partition) */
    int32_t target_count; /* 0: cancel */
    /* outcome */
    int done_calls;
    int err;
    uint64_t index; /* acknowledged: the Raft index its entry was applied at */
    uint8_t id[16]; /* acknowledged create, partitions, config: the topic's id */
    int64_t first_pid;
};

/* ---- nodes ---- */

struct mirror_topic {
    uint8_t id[16];
    int32_t partitions;
};

struct node {
    struct sim *s;
    int index;
    int32_t id;
    bool observer; /* not among the voters */
    /* Observers: the next submission of its addition (0: none due), one in flight, it
     * was submitted at least once (so it may be a member), it was acknowledged. */
    int64_t add_at;
    bool add_inflight, add_submitted, added;
    char dir[320];
    struct cluster *c; /* NULL while down */
    int64_t restart_at;
    int tick_phase;
    int incarnation;
    bool closing;          /* cluster_close is on the stack: pending changes fail with IO */
    uint64_t last_applied; /* this incarnation's last index reported by the apply hook */
    /* A write handed to the runner (slow-disk runs): done at io_at. */
    bool io_busy;
    int64_t io_at;
    void (*io_work)(void *arg);
    void (*io_finished)(void *arg);
    void *io_arg;
    /* The topics as the listener's events alone describe them. */
    struct mirror_topic *mirror;
    size_t n_mirror, cap_mirror;
};

struct net_msg {
    int64_t at;
    uint64_t seq;
    int from, to; /* node indexes */
    uint8_t *bytes;
    size_t len;
};

struct hist {
    bool known;
    uint64_t digest;
};

struct sim {
    uint64_t seed;
    int64_t now;
    int n_nodes;  /* voters first, then observers */
    int n_voters; /* nodes[0 .. n_voters - 1] */
    struct node nodes[MAX_NODES];
    int32_t voter_ids[MAX_VOTERS];
    char run_dir[256];
    char cluster_id[CLUSTER_UUID_TEXT_BYTES];
    int64_t snapshot_max_bytes, snapshot_interval_ms;
    /* network */
    struct net_msg *net;
    size_t n_net, cap_net;
    uint64_t net_seq;
    bool blocked[MAX_NODES][MAX_NODES]; /* blocked[a][b]: a -> b is dropped */
    int64_t heal_at;                    /* the partition in place heals then; 0: none */
    uint32_t drop_pm, dup_pm;
    int64_t max_delay_ms;
    int64_t disk_ms; /* > 0: writes go through a runner and take up to this long */
    int64_t session_timeout_ms;
    /* faults and workload rates, per mille per ms */
    uint32_t crash_pm, partition_pm, op_pm;
    /* checks */
    struct hist *hist; /* by Raft index: the image digest after the change there */
    size_t cap_hist;
    int32_t *term_leader; /* by term: the leader, 0 if none known */
    size_t cap_term;
    uint8_t ids[MAX_IDS][16]; /* every topic id seen in an image */
    size_t n_ids;
    struct sim_op *ops[MAX_OPS + MAX_ADDS];
    int n_ops;
    int n_adds; /* of the ops, additions of observers */
    int next_topic;
    /* counters for the summary */
    uint64_t crashes, snapshots_installed, observer_installs, acked, delivered;
    uint64_t replicated;  /* acknowledged creations with two or three replicas */
    uint64_t unfenced_ok; /* acknowledged heartbeats */
    /* Seen in some image: an ISR shrunk by a fencing; a leader other than the first
     * replica (moved by one); a fenced broker as an ISR's last member, leaderless. */
    bool seen_shrunk, seen_moved, seen_waiting, seen_reassigning;
    uint64_t observer_refusals; /* changes submitted to observers and refused */
    const char *fail;
    char fail_buf[512];
};

/* ---- image digests ---- */

static void remember_id(struct sim *s, const uint8_t id[16])
{
    for (size_t i = 0; i < s->n_ids; i++)
        if (memcmp(s->ids[i], id, 16) == 0)
            return;
    if (s->n_ids < MAX_IDS)
        memcpy(s->ids[s->n_ids++], id, 16);
}

static uint64_t mix_ids(uint64_t h, const int32_t *v, int32_t n)
{
    h = mix(h, (uint64_t)n);
    for (int32_t i = 0; i < n; i++)
        h = mix(h, (uint64_t)(uint32_t)v[i]);
    return h;
}

/* Everything the image shows: topics in creation order with ids, partitions and configs
 * (as a set: their order in the image is not part of its meaning), brokers, and which of
 * the ids ever seen are recorded as deleted. */
static uint64_t image_digest(struct sim *s, const struct cluster *c)
{
    uint64_t h = mix(0, cluster_topic_count(c));
    for (size_t i = 0; i < cluster_topic_count(c); i++) {
        const struct mtopic *t = cluster_topic_at(c, i);
        remember_id(s, t->id);
        h = mix_str(h, t->name);
        h = mix(h, hash_bytes(t->id, 16));
        h = mix(h, t->internal);
        h = mix(h, (uint64_t)t->partition_count);
        for (int32_t p = 0; p < t->partition_count; p++) {
            const struct mpartition *mp = &t->partitions[p];
            h = mix(h, (uint64_t)mp->id);
            h = mix(h, (uint64_t)(uint32_t)mp->leader);
            h = mix(h, (uint64_t)mp->leader_epoch);
            h = mix(h, (uint64_t)mp->partition_epoch);
            h = mix_ids(h, mp->replicas, mp->replica_count);
            h = mix_ids(h, mp->isr, mp->isr_count);
            h = mix_ids(h, mp->adding, mp->adding_count);
            h = mix_ids(h, mp->removing, mp->removing_count);
        }
        uint64_t configs = 0;
        for (size_t k = 0; k < t->config_count; k++)
            configs += mix_str(mix_str(1, t->configs[k].name), t->configs[k].value);
        h = mix(mix(h, t->config_count), configs);
    }
    h = mix(h, cluster_broker_count(c));
    for (size_t i = 0; i < cluster_broker_count(c); i++) {
        const struct mbroker *b = cluster_broker_at(c, i);
        h = mix(mix(mix_str(mix_str(h, b->host), b->rack), (uint64_t)b->node_id),
                (uint64_t)b->port);
    }
    uint64_t deleted = 0;
    for (size_t i = 0; i < s->n_ids; i++)
        if (cluster_topic_id_deleted(c, s->ids[i]))
            deleted += mix(7, hash_bytes(s->ids[i], 16));
    return mix(h, deleted);
}

static void dump_image(const struct node *n)
{
    const struct cluster *c = n->c;
    fprintf(stderr, "  node %d image at index %llu: %zu topics\n", n->id,
            (unsigned long long)cluster_applied_index(c), cluster_topic_count(c));
    for (size_t i = 0; i < cluster_topic_count(c); i++) {
        const struct mtopic *t = cluster_topic_at(c, i);
        char id[CLUSTER_UUID_TEXT_BYTES];
        cluster_uuid_format(t->id, id);
        fprintf(stderr, "    %s %s partitions=%d configs=", t->name, id, t->partition_count);
        for (size_t k = 0; k < t->config_count; k++)
            fprintf(stderr, "%s=%s,", t->configs[k].name, t->configs[k].value);
        for (int32_t p = 0; p < t->partition_count; p++) {
            const struct mpartition *mp = &t->partitions[p];
            fprintf(stderr, " [%d leader=%d le=%d pe=%d replicas=", p, mp->leader, mp->leader_epoch,
                    mp->partition_epoch);
            for (int32_t r = 0; r < mp->replica_count; r++)
                fprintf(stderr, "%s%d", r ? "," : "", mp->replicas[r]);
            fprintf(stderr, " isr=");
            for (int32_t r = 0; r < mp->isr_count; r++)
                fprintf(stderr, "%s%d", r ? "," : "", mp->isr[r]);
            fprintf(stderr, "]");
        }
        fprintf(stderr, "\n");
    }
    for (size_t i = 0; i < cluster_broker_count(c); i++) {
        const struct mbroker *b = cluster_broker_at(c, i);
        fprintf(stderr, "    broker %d epoch %lld%s\n", b->node_id, (long long)b->epoch,
                b->fenced ? " fenced" : "");
    }
}

static struct hist *hist_at(struct sim *s, uint64_t index)
{
    if (index >= s->cap_hist) {
        size_t cap = s->cap_hist ? s->cap_hist : 256;
        while (cap <= index)
            cap *= 2;
        s->hist = xrealloc(s->hist, cap * sizeof *s->hist);
        memset(s->hist + s->cap_hist, 0, (cap - s->cap_hist) * sizeof *s->hist);
        s->cap_hist = cap;
    }
    return &s->hist[index];
}

/* The history's digest as of index: that of the last change at or before it (entries that
 * change nothing are not recorded). An empty image before any change. */
static bool hist_as_of(struct sim *s, uint64_t index, uint64_t *digest, uint64_t *at)
{
    for (uint64_t i = index; i > 0; i--) {
        if (i < s->cap_hist && s->hist[i].known) {
            *digest = s->hist[i].digest;
            *at = i;
            return true;
        }
    }
    return false;
}

/* A node's image stands at index (reopened, or a snapshot installed): it must be the
 * history's as of that index. */
static void check_stands_on_history(struct sim *s, struct node *n, const char *what)
{
    uint64_t index = cluster_applied_index(n->c);
    uint64_t want, at = 0;
    uint64_t got = image_digest(s, n->c);
    if (!hist_as_of(s, index, &want, &at)) {
        if (cluster_topic_count(n->c) != 0 || cluster_broker_count(n->c) != 0)
            SIM_FAILF(s, "node %d %s at index %llu holds topics, but no change is known there",
                      n->id, what, (unsigned long long)index);
        return;
    }
    if (got != want) {
        dump_image(n);
        SIM_FAILF(s, "node %d %s at index %llu: image differs from the history's as of index %llu",
                  n->id, what, (unsigned long long)index, (unsigned long long)at);
    }
}

static bool has_id(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static bool broker_fenced(const struct cluster *c, int32_t id)
{
    const struct mbroker *b = cluster_broker_find(c, id);
    return b && b->fenced;
}

/* Every partition of a node's image as Kafka's controller keeps it (see the top of the
 * file). Checked whenever the image changes: nothing else changes it. */
static void check_partitions(struct sim *s, const struct node *n, const char *when)
{
    const struct cluster *c = n->c;
    for (size_t i = 0; i < cluster_topic_count(c) && !s->fail; i++) {
        const struct mtopic *t = cluster_topic_at(c, i);
        for (int32_t k = 0; k < t->partition_count && !s->fail; k++) {
            const struct mpartition *p = &t->partitions[k];
            const char *bad = NULL;
            if (p->replica_count < 1 || p->isr_count < 1)
                bad = "no replicas or an empty ISR";
            for (int32_t r = 0; r < p->replica_count && !bad; r++)
                if (has_id(p->replicas, r, p->replicas[r]))
                    bad = "a replica named twice";
            for (int32_t r = 0; r < p->isr_count && !bad; r++) {
                if (has_id(p->isr, r, p->isr[r]) ||
                    !has_id(p->replicas, p->replica_count, p->isr[r]))
                    bad = "an ISR member twice, or not a replica";
                else if (p->isr_count > 1 && broker_fenced(c, p->isr[r]))
                    bad = "a fenced broker in an ISR of several";
            }
            if (!bad && p->leader != -1 && !has_id(p->isr, p->isr_count, p->leader))
                bad = "a leader outside the ISR";
            if (!bad && p->leader != -1 && broker_fenced(c, p->leader))
                bad = "a fenced leader";
            for (int32_t r = 0; r < p->adding_count && !bad; r++)
                if (!has_id(p->replicas, p->replica_count, p->adding[r]) ||
                    has_id(p->removing, p->removing_count, p->adding[r]))
                    bad = "a replica being added that is no replica, or also being removed";
            for (int32_t r = 0; r < p->removing_count && !bad; r++)
                if (!has_id(p->replicas, p->replica_count, p->removing[r]))
                    bad = "a replica being removed that is no replica";
            s->seen_reassigning |= p->adding_count > 0;
            s->seen_shrunk |= p->isr_count < p->replica_count;
            s->seen_moved |= p->leader != -1 && p->leader != p->replicas[0];
            s->seen_waiting |= p->leader == -1 && p->replica_count > 1 && p->isr_count == 1 &&
                               broker_fenced(c, p->isr[0]);
            if (bad) {
                dump_image(n);
                SIM_FAILF(s, "node %d %s: %s-%d has %s (leader %d, %d replicas, ISR of %d)", n->id,
                          when, t->name, k, bad, p->leader, p->replica_count, p->isr_count);
            }
        }
    }
}

/* ---- callbacks from the clusters ---- */

static void on_apply(void *arg, uint64_t index, bool snapshot)
{
    struct node *n = arg;
    struct sim *s = n->s;
    if (index <= n->last_applied)
        SIM_FAILF(s, "node %d applied index %llu after index %llu", n->id,
                  (unsigned long long)index, (unsigned long long)n->last_applied);
    n->last_applied = index;
    if (snapshot) {
        /* The snapshot's index may be a no-op's: the history as of it, not at it. */
        TRACE(s, "node %d installed a snapshot at index %llu", n->id, (unsigned long long)index);
        s->snapshots_installed++;
        s->observer_installs += n->observer;
        check_stands_on_history(s, n, "installed a snapshot");
        check_partitions(s, n, "installed a snapshot");
        return;
    }
    check_partitions(s, n, "applied a change");
    uint64_t d = image_digest(s, n->c);
    struct hist *h = hist_at(s, index);
    /* Digests are not traced: topic ids are random, so they differ between replays. */
    TRACE(s, "node %d applied index %llu (%zu topics)", n->id, (unsigned long long)index,
          cluster_topic_count(n->c));
    if (!h->known) {
        h->known = true;
        h->digest = d;
    } else if (h->digest != d) {
        dump_image(n);
        SIM_FAILF(s, "node %d: image after index %llu differs from another node's there", n->id,
                  (unsigned long long)index);
    }
}

static struct mirror_topic *mirror_find(struct node *n, const uint8_t id[16])
{
    for (size_t i = 0; i < n->n_mirror; i++)
        if (memcmp(n->mirror[i].id, id, 16) == 0)
            return &n->mirror[i];
    return NULL;
}

static int on_event(void *arg, enum cluster_event ev, const struct mtopic *t, int32_t partition)
{
    struct node *n = arg;
    struct sim *s = n->s;
    struct mirror_topic *m = mirror_find(n, t->id);
    switch (ev) {
    case CLUSTER_TOPIC_CREATED:
        if (m) {
            SIM_FAILF(s, "node %d: topic %s created twice", n->id, t->name);
            break;
        }
        if (n->n_mirror == n->cap_mirror) {
            n->cap_mirror = n->cap_mirror ? 2 * n->cap_mirror : 16;
            n->mirror = xrealloc(n->mirror, n->cap_mirror * sizeof *n->mirror);
        }
        m = &n->mirror[n->n_mirror++];
        memcpy(m->id, t->id, 16);
        m->partitions = t->partition_count;
        break;
    case CLUSTER_TOPIC_DELETED:
        if (!m) {
            SIM_FAILF(s, "node %d: unknown topic %s deleted", n->id, t->name);
            break;
        }
        *m = n->mirror[--n->n_mirror];
        break;
    case CLUSTER_PARTITIONS_ADDED:
        if (!m || t->partition_count <= m->partitions) {
            SIM_FAILF(s, "node %d: partitions added to topic %s, which the listener %s", n->id,
                      t->name, m ? "saw with as many" : "never saw created");
            break;
        }
        m->partitions = t->partition_count;
        break;
    case CLUSTER_CONFIG_CHANGED:
        if (!m)
            SIM_FAILF(s, "node %d: configs of unknown topic %s changed", n->id, t->name);
        break;
    case CLUSTER_PARTITION_CHANGED:
        if (!m || partition < 0 || partition >= t->partition_count)
            SIM_FAILF(s, "node %d: partition %d of topic %s changed, unknown to the listener",
                      n->id, partition, t->name);
        break;
    }
    return 0;
}

/* The mirror (from events) against the image: the same topics, partition counts. */
static void check_mirror(struct sim *s, struct node *n)
{
    const struct cluster *c = n->c;
    if (cluster_topic_count(c) != n->n_mirror) {
        SIM_FAILF(s, "node %d: the listener heard of %zu topics, the image has %zu", n->id,
                  n->n_mirror, cluster_topic_count(c));
        return;
    }
    for (size_t i = 0; i < cluster_topic_count(c); i++) {
        const struct mtopic *t = cluster_topic_at(c, i);
        struct mirror_topic *m = mirror_find(n, t->id);
        if (!m || m->partitions != t->partition_count) {
            SIM_FAILF(s, "node %d: topic %s (%d partitions) is %s to the listener", n->id, t->name,
                      t->partition_count, m ? "of another size" : "unknown");
            return;
        }
    }
}

/* Resets the mirror to the image: what a broker learns when it opens its metadata. */
static void mirror_from_image(struct node *n)
{
    n->n_mirror = 0;
    for (size_t i = 0; i < cluster_topic_count(n->c); i++) {
        const struct mtopic *t = cluster_topic_at(n->c, i);
        if (n->n_mirror == n->cap_mirror) {
            n->cap_mirror = n->cap_mirror ? 2 * n->cap_mirror : 16;
            n->mirror = xrealloc(n->mirror, n->cap_mirror * sizeof *n->mirror);
        }
        memcpy(n->mirror[n->n_mirror].id, t->id, 16);
        n->mirror[n->n_mirror++].partitions = t->partition_count;
    }
}

static const char *config_value(const struct mtopic *t, const char *name)
{
    return cluster_topic_config(t, name);
}

static bool same_value(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static struct node *node_by_id(struct sim *s, int32_t id)
{
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].id == id)
            return &s->nodes[i];
    return NULL;
}

/* An addition of an observer has an outcome. Acknowledged: the acknowledging node counts
 * it a member now. Refused (not the leader, or it lost leadership first, in which case the
 * addition may still be committed) or cut short by a crash: submitted again later. */
static void observer_added(struct sim *s, struct sim_op *op, const struct cluster_result *res)
{
    struct node *n = &s->nodes[op->node];
    struct node *o = node_by_id(s, op->leader);
    ASSERT(o && o->observer && o->add_inflight);
    o->add_inflight = false;
    if (res->err == CLUSTER_OK) {
        s->acked++;
        if (!n->c || !cluster_quorum_member(n->c, o->id))
            SIM_FAILF(s,
                      "op %d: addition of observer %d acknowledged by node %d, not a member there",
                      op->no, o->id, n->id);
        if (!o->added) {
            o->added = true;
            /* Now and then the leader is asked again: a member already, CLUSTER_OK. */
            if (chance(300))
                o->add_at = s->now + rnd_range(100, 2000);
        }
        return;
    }
    if (res->err != CLUSTER_ERR_NOT_CONTROLLER && !(res->err == CLUSTER_ERR_IO && n->closing)) {
        SIM_FAILF(s, "op %d: addition of observer %d failed with %d: %s", op->no, o->id, res->err,
                  res->why ? res->why : "");
        return;
    }
    if (!o->added)
        o->add_at = s->now + rnd_range(30, 300);
}

/* A change's outcome. An acknowledged one must show in this node's image right now: the
 * image is the history as of the change's own entry. */
static void on_done(void *arg, const struct cluster_result *res)
{
    struct sim_op *op = arg;
    struct sim *s = op->s;
    struct node *n = &s->nodes[op->node];
    op->done_calls++;
    op->err = res->err;
    TRACE(s, "op %d (%s %s) on node %d: %d%s%s", op->no, op_names[op->kind], op->name, n->id,
          res->err, res->why ? " " : "", res->why ? res->why : "");
    if (op->done_calls > 1) {
        SIM_FAILF(s, "op %d completed %d times", op->no, op->done_calls);
        return;
    }
    if (n->observer) {
        /* An observer takes no change: it is no controller, whatever it knows. */
        if (res->err == CLUSTER_ERR_NOT_CONTROLLER)
            s->observer_refusals++;
        else if (res->err != CLUSTER_ERR_IO || !n->closing)
            SIM_FAILF(s, "op %d (%s %s) submitted to observer %d completed with %d, not refused",
                      op->no, op_names[op->kind], op->name, n->id, res->err);
    }
    if (op->kind == OP_OBSERVER) {
        observer_added(s, op, res);
        return;
    }
    if (res->err == CLUSTER_ERR_IO && !n->closing)
        SIM_FAILF(s, "op %d (%s) failed with an I/O error, no crash", op->no, op_names[op->kind]);
    if (res->err == CLUSTER_ERR_TOPIC_EXISTS)
        SIM_FAILF(s, "op %d: creation of unique name %s found it existing", op->no, op->name);
    /* A partition's new leader may not be registered yet as a broker, or be fenced or out
     * of the ISR, and new partitions have nowhere to go while fewer brokers than they
     * have replicas are unfenced: the only refusals of these that the workload's inputs
     * allow. A refusal completes as the change is checked, so this node's image is the
     * one it was checked against. */
    bool placeable = true;
    if (n->c && op->kind == OP_CREATE) {
        placeable = placeable_brokers(n->c) >= (size_t)op->rf;
    } else if (n->c && op->kind == OP_PARTITIONS) {
        const struct mtopic *t = cluster_topic_find(n->c, slice_from_cstr(op->name));
        placeable = !t || t->partition_count == 0 ||
                    placeable_brokers(n->c) >= (size_t)t->partitions[0].replica_count;
    }
    if (res->err == CLUSTER_ERR_INVALID_CONFIG || res->err == CLUSTER_ERR_INVALID_TOPIC ||
        (res->err == CLUSTER_ERR_INVALID_REPLICATION && op->kind != OP_LEADER && placeable) ||
        (res->err == CLUSTER_ERR_INVALID_ASSIGNMENT && op->kind != OP_REASSIGN) ||
        res->err == CLUSTER_ERR_LIMIT || res->err == CLUSTER_ERR_CORRUPT ||
        (res->err == CLUSTER_ERR_STALE_BROKER_EPOCH && op->kind != OP_HEARTBEAT) ||
        (res->err == CLUSTER_ERR_NO_REASSIGNMENT && op->target_count > 0))
        SIM_FAILF(s, "op %d (%s %s) refused with %d: %s", op->no, op_names[op->kind], op->name,
                  res->err, res->why ? res->why : "");
    if (res->err != CLUSTER_OK)
        return;
    s->acked++;
    struct cluster *c = n->c;
    if (!c) {
        SIM_FAILF(s, "op %d acknowledged by a closed node", op->no);
        return;
    }
    /* The change's own entry, or where the image stood when a change that changes
     * nothing was acknowledged without an entry. */
    op->index = cluster_applied_index(c);
    check_stands_on_history(s, n, "acknowledged a change");
    if (op->kind == OP_BROKER) {
        const struct mbroker *b = cluster_broker_find(c, op->leader);
        if (!b || b->port != op->count)
            SIM_FAILF(s, "op %d: broker %d not registered with port %d", op->no, op->leader,
                      op->count);
        return;
    }
    if (op->kind == OP_HEARTBEAT) {
        /* Acknowledged: unfenced, at once or by the change it made. */
        const struct mbroker *b = cluster_broker_find(c, op->leader);
        s->unfenced_ok++;
        if (!b || b->fenced || res->fenced)
            SIM_FAILF(s, "op %d: heartbeat of broker %d acknowledged, but it is %s", op->no,
                      op->leader, b ? "fenced" : "unknown");
        return;
    }
    if (op->kind == OP_PIDS) {
        op->first_pid = res->first_producer_id;
        if (op->first_pid < 0)
            SIM_FAILF(s, "op %d: producer ids from %lld", op->no, (long long)op->first_pid);
        return;
    }
    const struct mtopic *t = cluster_topic_find(c, slice_from_cstr(op->name));
    if (op->kind == OP_DELETE) {
        if (t)
            SIM_FAILF(s, "op %d: topic %s deleted, but still in node %d's image", op->no, op->name,
                      n->id);
        return;
    }
    if (!t) {
        SIM_FAILF(s, "op %d (%s): topic %s not in node %d's image", op->no, op_names[op->kind],
                  op->name, n->id);
        return;
    }
    memcpy(op->id, t->id, 16);
    switch (op->kind) {
    case OP_CREATE:
        if (t->partition_count != op->count)
            SIM_FAILF(s, "op %d: topic %s created with %d partitions, image has %d", op->no,
                      op->name, op->count, t->partition_count);
        /* Its own entry: nothing has changed its partitions yet. */
        for (int32_t p = 0; p < t->partition_count; p++)
            if (t->partitions[p].replica_count != op->rf || t->partitions[p].isr_count != op->rf ||
                t->partitions[p].leader != t->partitions[p].replicas[0])
                SIM_FAILF(s, "op %d: topic %s-%d created with %d replicas, %d in sync, leader %d",
                          op->no, op->name, p, t->partitions[p].replica_count,
                          t->partitions[p].isr_count, t->partitions[p].leader);
        s->replicated += op->rf > 1;
        if (op->key >= 0 && !same_value(config_value(t, config_keys[op->key]), op->value))
            SIM_FAILF(s, "op %d: topic %s created without its config", op->no, op->name);
        break;
    case OP_PARTITIONS:
        if (t->partition_count != op->count)
            SIM_FAILF(s, "op %d: topic %s grown to %d partitions, image has %d", op->no, op->name,
                      op->count, t->partition_count);
        /* The new ones as partition 0 (reassignments may have changed the others). */
        if (t->partitions[op->count - 1].replica_count !=
            t->partitions[0].replica_count - t->partitions[0].removing_count)
            SIM_FAILF(s, "op %d: %s-%d has %d replicas, partition 0 %d", op->no, op->name,
                      op->count - 1, t->partitions[op->count - 1].replica_count,
                      t->partitions[0].replica_count);
        break;
    case OP_CONFIG:
        if (!same_value(config_value(t, config_keys[op->key]), op->value_null ? NULL : op->value))
            SIM_FAILF(s, "op %d: config %s of %s not as set", op->no, config_keys[op->key],
                      op->name);
        break;
    case OP_LEADER:
        if (op->count >= t->partition_count || t->partitions[op->count].leader != op->leader)
            SIM_FAILF(s, "op %d: leader of %s-%d not as set", op->no, op->name, op->count);
        break;
    case OP_REASSIGN: {
        /* Its own entry: the target leads the replicas (all of them once complete); a
         * cancel leaves none being added. */
        const struct mpartition *p =
            op->count < t->partition_count ? &t->partitions[op->count] : NULL;
        bool ok =
            p && (op->target_count ? p->replica_count >= op->target_count &&
                                         !memcmp(p->replicas, op->target,
                                                 (size_t)op->target_count * sizeof *op->target)
                                   : p->adding_count == 0 && p->removing_count == 0);
        if (!ok)
            SIM_FAILF(s, "op %d: %s-%d not reassigned as asked", op->no, op->name, op->count);
        break;
    }
    default: break;
    }
}

/* ---- the network ---- */

static void net_send(void *arg, int32_t to, const uint8_t *msg, size_t len)
{
    struct node *n = arg;
    struct sim *s = n->s;
    int dst = -1;
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].id == to)
            dst = i;
    if (dst < 0) {
        SIM_FAILF(s, "node %d sent a message to unknown node %d", n->id, to);
        return;
    }
    if (s->blocked[n->index][dst] || chance(s->drop_pm))
        return;
    int copies = chance(s->dup_pm) ? 2 : 1;
    for (int k = 0; k < copies; k++) {
        if (s->n_net == s->cap_net) {
            s->cap_net = s->cap_net ? 2 * s->cap_net : 64;
            s->net = xrealloc(s->net, s->cap_net * sizeof *s->net);
        }
        struct net_msg *m = &s->net[s->n_net++];
        m->at = s->now + rnd_range(1, s->max_delay_ms);
        m->seq = s->net_seq++;
        m->from = n->index;
        m->to = dst;
        m->bytes = xmalloc(len ? len : 1);
        memcpy(m->bytes, msg, len);
        m->len = len;
    }
}

/* Delivers every message due, earliest first (ties in sending order). A message to a
 * node that is down is lost. Deliveries send more; those come later (delay >= 1). */
static void net_deliver(struct sim *s)
{
    for (;;) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < s->n_net; i++) {
            const struct net_msg *m = &s->net[i];
            if (m->at > s->now)
                continue;
            if (best == SIZE_MAX || m->at < s->net[best].at ||
                (m->at == s->net[best].at && m->seq < s->net[best].seq))
                best = i;
        }
        if (best == SIZE_MAX)
            return;
        struct net_msg m = s->net[best];
        s->net[best] = s->net[--s->n_net];
        struct node *dst = &s->nodes[m.to];
        if (dst->c) {
            s->delivered++;
            cluster_receive(dst->c, m.bytes, m.len);
        }
        free(m.bytes);
        if (s->fail)
            return;
    }
}

/* ---- the disk ----
 * On some runs writes run through a runner, as in the broker (where they run on the
 * metadata thread): each takes 0..disk_ms, and the messages and ticks that arrive
 * meanwhile are held by the quorum. */

static void sim_run(void *runner_arg, void (*work)(void *arg), void (*finished)(void *arg),
                    void *arg)
{
    struct node *n = runner_arg;
    ASSERT(!n->io_busy);
    n->io_busy = true;
    n->io_at = n->s->now + rnd_range(0, n->s->disk_ms);
    n->io_work = work;
    n->io_finished = finished;
    n->io_arg = arg;
}

/* The write finishes: work on "the runner's thread", then finished on the node's. The
 * latter may start the next write. */
static void io_complete(struct node *n)
{
    ASSERT(n->io_busy);
    n->io_busy = false;
    n->io_work(n->io_arg);
    n->io_finished(n->io_arg);
}

/* ---- nodes up and down ---- */

static bool node_open(struct sim *s, struct node *n)
{
    struct cluster_options o = {
        .metadata_dir = n->dir,
        .node_id = n->id,
        .cluster_id = s->cluster_id,
        .snapshot_max_bytes = s->snapshot_max_bytes,
        .snapshot_interval_ms = s->snapshot_interval_ms,
        .voters = s->voter_ids,
        .voter_count = (size_t)s->n_voters,
        .election_ticks = ELECTION_TICKS,
        .seed = mix(mix(s->seed, (uint64_t)n->id), (uint64_t)n->incarnation),
    };
    n->incarnation++;
    int rc = cluster_open(&o, &n->c);
    if (rc != CLUSTER_OK) {
        n->c = NULL;
        SIM_FAILF(s, "node %d cannot open %s: %d", n->id, n->dir, rc);
        return false;
    }
    cluster_set_transport(n->c, net_send, n);
    if (s->disk_ms > 0)
        cluster_set_runner(n->c, &(struct cluster_runner){sim_run, n});
    cluster_set_listener(n->c, on_event, n);
    cluster_set_apply_hook(n->c, on_apply, n);
    n->last_applied = cluster_applied_index(n->c);
    mirror_from_image(n);
    TRACE(s, "%s %d up (applied index %llu, %zu topics)", n->observer ? "observer" : "node", n->id,
          (unsigned long long)n->last_applied, cluster_topic_count(n->c));
    check_stands_on_history(s, n, "reopened");
    check_partitions(s, n, "reopened");
    return true;
}

/* A crash: every write was fdatasync'd before any message depending on it was sent, so
 * closing loses nothing saved. Half the time the clean-shutdown marker is removed as
 * well, so the storage recovers as after a power cut. Pending changes fail (I/O). */
static void node_crash(struct sim *s, struct node *n, bool hard)
{
    /* A write in flight completes first (the owner of a runner waits for it before it
     * closes): a crash just after it, its messages sent. */
    while (n->io_busy)
        io_complete(n);
    n->closing = true;
    cluster_close(n->c);
    n->closing = false;
    n->c = NULL;
    if (hard) {
        char *marker = xpath_join(n->dir, "clean-shutdown");
        if (unlink(marker) != 0 && errno != ENOENT)
            SIM_FAILF(s, "cannot remove %s: %s", marker, strerror(errno));
        free(marker);
    }
}

/* ---- the workload ---- */

static struct sim_op *op_new(struct sim *s, enum op_kind kind, int node)
{
    struct sim_op *op = xcalloc(1, sizeof *op);
    op->s = s;
    op->no = s->n_ops;
    op->kind = kind;
    op->node = node;
    op->key = -1;
    s->ops[s->n_ops++] = op;
    TRACE(s, "op %d submitted to node %d: %s", op->no, s->nodes[node].id, op_names[kind]);
    return op;
}

/* A name some creation used (it may never have been created, or be deleted). */
static void pick_name(struct sim *s, char *out, size_t size)
{
    snprintf(out, size, "t%d", (int)rnd_n((uint64_t)(s->next_topic ? s->next_topic : 1)));
}

static void random_config(int *key, char *value, size_t size)
{
    *key = (int)rnd_n(ARRAY_LEN(config_keys));
    if (*key == 0) {
        snprintf(value, size, "%d", (int)rnd_range(1000, 999999));
    } else {
        static const char *const policies[] = {"delete", "compact", "compact,delete"};
        snprintf(value, size, "%s", policies[rnd_n(ARRAY_LEN(policies))]);
    }
}

/* The node a client sends a change to (-1: every node is down): a random one, or half
 * the time the one some node says is the controller, as Kafka's clients do. */
static int pick_target(struct sim *s)
{
    int up[MAX_NODES], n_up = 0;
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].c)
            up[n_up++] = i;
    if (n_up == 0)
        return -1;
    int ni = up[rnd_n((uint64_t)n_up)];
    struct node *controller = node_by_id(s, cluster_controller_id(s->nodes[ni].c));
    if (controller && chance(500) && controller->c)
        ni = controller->index;
    return ni;
}

/* Submits the additions of observers that are due (see observer_added for when). */
static void add_observers(struct sim *s)
{
    for (int i = s->n_voters; i < s->n_nodes; i++) {
        struct node *o = &s->nodes[i];
        if (!o->add_at || s->now < o->add_at || o->add_inflight)
            continue;
        o->add_at = 0;
        int ni = s->n_adds < MAX_ADDS ? pick_target(s) : -1;
        if (ni < 0) {
            if (s->n_adds < MAX_ADDS)
                o->add_at = s->now + rnd_range(30, 300);
            continue;
        }
        s->n_adds++;
        struct sim_op *op = op_new(s, OP_OBSERVER, ni);
        op->leader = o->id;
        snprintf(op->name, sizeof op->name, "observer%d", o->id);
        o->add_inflight = o->add_submitted = true;
        cluster_add_observer(s->nodes[ni].c, o->id, on_done, op);
    }
}

static void submit_op(struct sim *s)
{
    if (s->n_ops - s->n_adds >= MAX_OPS)
        return;
    int ni = pick_target(s);
    if (ni < 0)
        return;
    struct cluster *c = s->nodes[ni].c;
    uint64_t r = rnd_n(100);
    enum op_kind kind = r < 32   ? OP_CREATE
                        : r < 46 ? OP_DELETE
                        : r < 60 ? OP_PARTITIONS
                        : r < 76 ? OP_CONFIG
                        : r < 85 ? OP_LEADER
                        : r < 89 ? OP_PIDS
                        : r < 94 ? OP_BROKER
                        : r < 97 ? OP_HEARTBEAT
                                 : OP_REASSIGN;
    /* Brokers register early on most runs, so that topics with replicas are created
     * while the chaos has time to fence and unfence them. */
    if ((kind == OP_HEARTBEAT && cluster_broker_count(c) == 0) ||
        (cluster_broker_count(c) < 3 && chance(100)))
        kind = OP_BROKER;
    if (kind != OP_CREATE && kind != OP_PIDS && kind != OP_BROKER && kind != OP_HEARTBEAT &&
        s->next_topic == 0)
        kind = OP_CREATE;
    struct sim_op *op = op_new(s, kind, ni);
    switch (kind) {
    case OP_CREATE: {
        snprintf(op->name, sizeof op->name, "t%d", s->next_topic++);
        op->count = (int32_t)rnd_range(1, 3);
        /* Two or three replicas on some, once this node knows of three brokers (fenced
         * or not: a refusal for too few unfenced ones is part of the test). */
        op->rf = cluster_broker_count(c) >= 3 && chance(600) ? (int16_t)rnd_range(2, 3) : 1;
        struct config_entry cfg = {0};
        if (chance(500)) {
            random_config(&op->key, op->value, sizeof op->value);
            cfg = (struct config_entry){(char *)config_keys[op->key], op->value};
        }
        cluster_create_topic(c, slice_from_cstr(op->name), op->count, op->rf, &cfg, op->key >= 0,
                             false, on_done, op);
        break;
    }
    case OP_DELETE:
        pick_name(s, op->name, sizeof op->name);
        cluster_delete_topic(c, slice_from_cstr(op->name), on_done, op);
        break;
    case OP_PARTITIONS:
        pick_name(s, op->name, sizeof op->name);
        op->count = (int32_t)rnd_range(2, 8);
        cluster_create_partitions(c, slice_from_cstr(op->name), op->count, NULL, 0, 0, false,
                                  on_done, op);
        break;
    case OP_CONFIG: {
        pick_name(s, op->name, sizeof op->name);
        random_config(&op->key, op->value, sizeof op->value);
        op->value_null = chance(250);
        struct config_change ch = {config_keys[op->key], op->value_null ? NULL : op->value,
                                   op->value_null ? CFG_OP_DELETE : CFG_OP_SET};
        cluster_alter_topic_configs(c, slice_from_cstr(op->name), &ch, 1, false, false, on_done,
                                    op);
        break;
    }
    case OP_LEADER: {
        /* Moves a partition's leadership between none and a member of its ISR, as this
         * node's image knows it (perhaps stale: the check at the leader decides, and
         * refuses a fenced one). */
        pick_name(s, op->name, sizeof op->name);
        const struct mtopic *t = cluster_topic_find(c, slice_from_cstr(op->name));
        op->count = t ? (int32_t)rnd_n((uint64_t)t->partition_count) : 0;
        const struct mpartition *p = t ? &t->partitions[op->count] : NULL;
        op->leader =
            p && p->leader < 0 && p->isr_count > 0 ? p->isr[rnd_n((uint64_t)p->isr_count)] : -1;
        struct cluster_partition_change ch = {.leader = op->leader};
        cluster_change_partition(c, slice_from_cstr(op->name), op->count, &ch, on_done, op);
        break;
    }
    case OP_REASSIGN: {
        /* To one to three distinct brokers this node knows (fenced or not), or a cancel. */
        pick_name(s, op->name, sizeof op->name);
        const struct mtopic *t = cluster_topic_find(c, slice_from_cstr(op->name));
        op->count = t ? (int32_t)rnd_n((uint64_t)t->partition_count) : 0;
        size_t brokers = cluster_broker_count(c);
        op->target_count = chance(250) || brokers == 0 ? 0 : (int32_t)rnd_range(1, MIN(3, brokers));
        for (int32_t i = 0; i < op->target_count; i++) {
            int32_t id;
            do
                id = cluster_broker_at(c, rnd_n(brokers))->node_id;
            while (has_id(op->target, i, id));
            op->target[i] = id;
        }
        cluster_reassign_partition(c, slice_from_cstr(op->name), op->count,
                                   op->target_count ? op->target : NULL, op->target_count, true,
                                   on_done, op);
        break;
    }
    case OP_PIDS:
        op->pid_count = rnd_range(1, 1000);
        cluster_allocate_producer_ids(c, s->nodes[ni].id, op->pid_count, on_done, op);
        break;
    case OP_BROKER: {
        op->leader = s->nodes[rnd_n((uint64_t)s->n_nodes)].id;
        op->count = (int32_t)rnd_range(9000, 9999);
        char host[16];
        snprintf(host, sizeof host, "h%d", op->leader);
        snprintf(op->name, sizeof op->name, "broker%d", op->leader);
        /* Half register as a new process, fenced: the session check below fences brokers
         * too (nobody heartbeats here), so fencing records and leaderless partitions are
         * part of the history. */
        uint8_t incarnation[16] = {0};
        bool fenced = chance(500);
        if (fenced)
            for (size_t b = 0; b < sizeof incarnation; b++)
                incarnation[b] = (uint8_t)rnd();
        cluster_register_broker(c, op->leader, host, op->count, chance(500) ? "r1" : NULL,
                                fenced ? incarnation : NULL, fenced, on_done, op);
        break;
    }
    case OP_HEARTBEAT: {
        /* A registered broker (as this node knows them) heartbeats at its epoch: a fenced
         * one is unfenced and leads again what waited for it. */
        const struct mbroker *b = cluster_broker_at(c, rnd_n(cluster_broker_count(c)));
        op->leader = b->node_id;
        snprintf(op->name, sizeof op->name, "broker%d", b->node_id);
        cluster_broker_heartbeat(c, b->node_id, b->epoch, s->now, on_done, op);
        break;
    }
    case OP_OBSERVER: ASSERT(!"additions of observers are add_observers'"); break;
    }
}

/* ---- faults ---- */

static void start_partition(struct sim *s)
{
    memset(s->blocked, 0, sizeof s->blocked);
    int kind = (int)rnd_n(3);
    if (kind == 0) { /* one node cut off both ways */
        int a = (int)rnd_n((uint64_t)s->n_nodes);
        for (int b = 0; b < s->n_nodes; b++)
            s->blocked[a][b] = s->blocked[b][a] = a != b;
        TRACE(s, "partition: node %d isolated", s->nodes[a].id);
    } else if (kind == 1) { /* two groups */
        bool side[MAX_NODES];
        for (int i = 0; i < s->n_nodes; i++)
            side[i] = chance(500);
        for (int a = 0; a < s->n_nodes; a++)
            for (int b = 0; b < s->n_nodes; b++)
                s->blocked[a][b] = side[a] != side[b];
        TRACE(s, "partition: two groups");
    } else { /* one-way links */
        int links = (int)rnd_range(1, s->n_nodes);
        for (int k = 0; k < links; k++) {
            int a = (int)rnd_n((uint64_t)s->n_nodes), b = (int)rnd_n((uint64_t)s->n_nodes);
            if (a != b) {
                s->blocked[a][b] = true;
                TRACE(s, "partition: %d -> %d drops", s->nodes[a].id, s->nodes[b].id);
            }
        }
    }
    s->heal_at = s->now + rnd_range(50, 1500);
}

static void heal(struct sim *s)
{
    memset(s->blocked, 0, sizeof s->blocked);
    s->heal_at = 0;
    TRACE(s, "network healed");
}

/* ---- checks ---- */

static int32_t *term_slot(struct sim *s, uint64_t term)
{
    if (term >= s->cap_term) {
        size_t cap = s->cap_term ? s->cap_term : 64;
        while (cap <= term)
            cap *= 2;
        s->term_leader = xrealloc(s->term_leader, cap * sizeof *s->term_leader);
        memset(s->term_leader + s->cap_term, 0, (cap - s->cap_term) * sizeof *s->term_leader);
        s->cap_term = cap;
    }
    return &s->term_leader[term];
}

/* What a node knows of the quorum's members: the configured voters (an observer may know
 * none yet), as observers only nodes whose addition was submitted, and never an observer
 * in the lead. An observer nobody added has heard nothing at all. */
static void check_membership(struct sim *s, struct node *n, const struct cluster_quorum_state *q)
{
    if (q->leading && n->observer)
        SIM_FAILF(s, "observer %d leads (term %d)", n->id, q->leader_epoch);
    const struct node *leader = node_by_id(s, q->leader_id);
    if (leader && leader->observer)
        SIM_FAILF(s, "node %d names observer %d the leader (term %d)", n->id, leader->id,
                  q->leader_epoch);
    if (q->voter_count != (size_t)s->n_voters && !(n->observer && q->voter_count == 0))
        SIM_FAILF(s, "node %d knows %zu voters, not %d", n->id, q->voter_count, s->n_voters);
    for (size_t k = 0; k < q->voter_count; k++) {
        const struct node *v = node_by_id(s, q->voters[k].node_id);
        if (!v || v->observer)
            SIM_FAILF(s, "node %d counts node %d among the voters", n->id, q->voters[k].node_id);
    }
    for (size_t k = 0; k < q->observer_count; k++) {
        const struct node *o = node_by_id(s, q->observers[k].node_id);
        if (!o || !o->observer || !o->add_submitted)
            SIM_FAILF(s, "node %d counts node %d among the observers, which nobody added", n->id,
                      q->observers[k].node_id);
    }
    if (n->observer && !n->add_submitted &&
        (q->voter_count || q->leader_id >= 0 || cluster_applied_index(n->c) || n->last_applied))
        SIM_FAILF(s,
                  "observer %d, which nobody added, heard from the quorum (leader %d, applied "
                  "index %llu)",
                  n->id, q->leader_id, (unsigned long long)cluster_applied_index(n->c));
}

static void check_step(struct sim *s)
{
    for (int i = 0; i < s->n_nodes && !s->fail; i++) {
        struct node *n = &s->nodes[i];
        if (!n->c)
            continue;
        struct cluster_quorum_state q;
        cluster_quorum_state(n->c, &q);
        int32_t leader = q.leading ? n->id : q.leader_id;
        if (q.leading && q.leader_id != n->id)
            SIM_FAILF(s, "node %d leads but names %d the leader", n->id, q.leader_id);
        if (leader > 0) {
            int32_t *slot = term_slot(s, (uint64_t)q.leader_epoch);
            if (*slot == 0) {
                *slot = leader;
                TRACE(s, "term %d: node %d leads", q.leader_epoch, leader);
            } else if (*slot != leader) {
                SIM_FAILF(s, "term %d has two leaders: %d and %d (node %d's view)", q.leader_epoch,
                          *slot, leader, n->id);
            }
        }
        if (q.high_watermark > q.log_end_offset)
            SIM_FAILF(s, "node %d: high watermark %lld past its log end %lld", n->id,
                      (long long)q.high_watermark, (long long)q.log_end_offset);
        check_membership(s, n, &q);
        check_mirror(s, n);
    }
}

/* Heal-time convergence: every node up; every voter and every observer whose addition
 * was submitted added (acknowledged), following one leader of one term, every log equal
 * and committed, every image applied through it, nothing pending. */
static bool converged(struct sim *s)
{
    struct cluster_quorum_state first = {0};
    int leaders = 0;
    for (int i = 0; i < s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        if (!n->c || cluster_busy(n->c) || (n->add_submitted && !n->added))
            return false;
        if (n->observer && !n->add_submitted)
            continue;
        struct cluster_quorum_state q;
        cluster_quorum_state(n->c, &q);
        if (i == 0)
            first = q;
        leaders += q.leading;
        if (q.leader_id < 0 || q.leader_id != first.leader_id ||
            q.leader_epoch != first.leader_epoch || q.high_watermark != q.log_end_offset ||
            q.log_end_offset != first.log_end_offset ||
            cluster_applied_index(n->c) != cluster_applied_index(s->nodes[0].c))
            return false;
    }
    return leaders == 1;
}

/* Every acknowledged change holds in the final image (identical on every node). */
static void check_acknowledged(struct sim *s, const struct cluster *c)
{
    for (int i = 0; i < s->n_ops && !s->fail; i++) {
        const struct sim_op *op = s->ops[i];
        if (op->err != CLUSTER_OK || op->done_calls == 0)
            continue;
        const struct mtopic *by_name = cluster_topic_find(c, slice_from_cstr(op->name));
        const struct mtopic *t = cluster_topic_find_id(c, op->id);
        switch (op->kind) {
        case OP_CREATE: {
            if (t) {
                if (strcmp(t->name, op->name) != 0)
                    SIM_FAILF(s, "op %d: topic id of %s now names %s", op->no, op->name, t->name);
                break;
            }
            /* Gone: only a deletion that may have happened explains it. */
            bool deletion = false;
            for (int k = 0; k < s->n_ops; k++)
                deletion |=
                    s->ops[k]->kind == OP_DELETE && !strcmp(s->ops[k]->name, op->name) &&
                    (s->ops[k]->err == CLUSTER_OK || s->ops[k]->err == CLUSTER_ERR_NOT_CONTROLLER ||
                     s->ops[k]->err == CLUSTER_ERR_IO);
            if (!deletion || !cluster_topic_id_deleted(c, op->id))
                SIM_FAILF(s, "op %d: acknowledged topic %s is gone%s", op->no, op->name,
                          deletion ? " but not recorded deleted" : " and was never deleted");
            break;
        }
        case OP_DELETE:
            if (by_name)
                SIM_FAILF(s, "op %d: acknowledged deletion of %s, still there", op->no, op->name);
            break;
        case OP_PARTITIONS:
            if (t && t->partition_count < op->count)
                SIM_FAILF(s, "op %d: %s grown to %d partitions, now %d", op->no, op->name,
                          op->count, t->partition_count);
            break;
        case OP_CONFIG: {
            if (!t)
                break;
            /* The last acknowledged setting of this key (creation's included) stands,
             * unless a change whose outcome is unknown came after it. */
            const struct sim_op *last = op;
            for (int k = 0; k < s->n_ops; k++) {
                const struct sim_op *o = s->ops[k];
                if (o->err == CLUSTER_OK && o->key == op->key &&
                    (o->kind == OP_CONFIG || o->kind == OP_CREATE) && !strcmp(o->name, op->name) &&
                    o->index > last->index)
                    last = o;
            }
            if (last != op)
                break;
            const char *now = config_value(t, config_keys[op->key]);
            bool ok = same_value(now, op->value_null ? NULL : op->value);
            for (int k = 0; k < s->n_ops && !ok; k++) {
                const struct sim_op *o = s->ops[k];
                ok = o->kind == OP_CONFIG && o->key == op->key && !strcmp(o->name, op->name) &&
                     (o->err == CLUSTER_ERR_NOT_CONTROLLER || o->err == CLUSTER_ERR_IO) &&
                     same_value(now, o->value_null ? NULL : o->value);
            }
            if (!ok)
                SIM_FAILF(s, "op %d: %s of %s is %s, acknowledged as %s", op->no,
                          config_keys[op->key], op->name, now ? now : "(default)",
                          op->value_null ? "(default)" : op->value);
            break;
        }
        case OP_BROKER: {
            const struct mbroker *b = cluster_broker_find(c, op->leader);
            bool ok = b && b->port == op->count;
            for (int k = 0; k < s->n_ops && !ok; k++) {
                const struct sim_op *o = s->ops[k];
                ok = o->kind == OP_BROKER && o != op && o->leader == op->leader &&
                     (o->index > op->index || o->err == CLUSTER_ERR_NOT_CONTROLLER ||
                      o->err == CLUSTER_ERR_IO);
            }
            if (!ok)
                SIM_FAILF(s, "op %d: acknowledged registration of broker %d lost", op->no,
                          op->leader);
            break;
        }
        case OP_PIDS:
            for (int k = 0; k < i; k++) {
                const struct sim_op *o = s->ops[k];
                if (o->kind == OP_PIDS && o->err == CLUSTER_OK &&
                    o->first_pid < op->first_pid + op->pid_count &&
                    op->first_pid < o->first_pid + o->pid_count)
                    SIM_FAILF(s, "ops %d and %d were given overlapping producer ids", o->no,
                              op->no);
            }
            break;
        default: break;
        }
    }
}

/* After convergence: the leader counts exactly the observers whose addition was
 * submitted (each acknowledged by now) as members, and no other node. */
static void check_final_members(struct sim *s)
{
    struct node *leader = NULL;
    for (int i = 0; i < s->n_voters; i++)
        if (cluster_controller_id(s->nodes[i].c) == s->nodes[i].id)
            leader = &s->nodes[i];
    if (!leader) {
        SIM_FAILF(s, "converged without a leader among the voters");
        return;
    }
    struct cluster_quorum_state q;
    cluster_quorum_state(leader->c, &q);
    size_t added = 0;
    for (int i = 0; i < s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        added += n->added;
        if (cluster_quorum_member(leader->c, n->id) != (!n->observer || n->added))
            SIM_FAILF(s, "the final leader %d %s node %d a member", leader->id,
                      cluster_quorum_member(leader->c, n->id) ? "counts" : "does not count", n->id);
    }
    if (q.observer_count != added)
        SIM_FAILF(s, "the final leader %d knows %zu observers, %zu were added", leader->id,
                  q.observer_count, added);
    TRACE(s, "final leader %d: %zu voters, %zu observers", leader->id, q.voter_count,
          q.observer_count);
}

/* ---- one run ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void remove_run_dir(struct sim *s)
{
    if (s->run_dir[0] && nftw(s->run_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "cannot remove %s: %s\n", s->run_dir, strerror(errno));
}

static void step(struct sim *s, bool chaos)
{
    s->now++;
    time_advance_fake(1);
    for (int i = 0; i < s->n_nodes && !s->fail; i++) {
        struct node *n = &s->nodes[i];
        if (!n->c && n->restart_at && s->now >= n->restart_at) {
            n->restart_at = 0;
            node_open(s, n);
        }
        if (n->c && n->io_busy && s->now >= n->io_at)
            io_complete(n);
        if (n->c && s->now % TICK_MS == n->tick_phase) {
            cluster_tick(n->c);
            cluster_expire_sessions(n->c, (int64_t)s->now, s->session_timeout_ms, 0);
        }
    }
    if (!s->fail)
        net_deliver(s);
    if (!s->fail)
        add_observers(s);
    if (chaos && !s->fail) {
        if (s->heal_at && s->now >= s->heal_at)
            heal(s);
        if (!s->heal_at && chance(s->partition_pm))
            start_partition(s);
        if (chance(s->crash_pm)) {
            struct node *n = &s->nodes[rnd_n((uint64_t)s->n_nodes)];
            if (n->c) {
                bool hard = chance(500);
                TRACE(s, "node %d crashes%s", n->id, hard ? " (no clean-shutdown marker)" : "");
                node_crash(s, n, hard);
                n->restart_at = s->now + rnd_range(20, 1500);
                s->crashes++;
            }
        }
        if (chance(s->op_pm))
            submit_op(s);
    }
    if (!s->fail)
        check_step(s);
}

static int run_seed(uint64_t seed, struct sim **out)
{
    struct sim *s = xcalloc(1, sizeof *s);
    *out = s;
    s->seed = seed;
    rng_state = mix(seed, 0x6d73696dull) | 1;
    time_set_fake(FAKE_MONO_START_MS, FAKE_WALL_START_MS);
    s->n_voters = chance(500) ? 3 : 5;
    s->n_nodes = s->n_voters + (chance(500) ? (int)rnd_range(1, MAX_OBSERVERS) : 0);
    s->drop_pm = (uint32_t)rnd_n(120);
    s->dup_pm = (uint32_t)rnd_n(60);
    s->max_delay_ms = rnd_range(1, 30);
    s->crash_pm = (uint32_t)rnd_range(0, 3);
    s->partition_pm = (uint32_t)rnd_range(0, 4);
    s->op_pm = (uint32_t)rnd_range(10, 80);
    /* Snapshots: often tiny thresholds, so they are taken and sent to lagging followers;
     * sometimes by age too (the fake clock keeps that deterministic). */
    if (chance(600))
        s->snapshot_max_bytes = rnd_range(300, 6000);
    if (chance(200))
        s->snapshot_interval_ms = rnd_range(100, 2000);
    if (chance(500))
        s->disk_ms = rnd_range(1, 8);
    s->session_timeout_ms = rnd_range(SESSION_MIN_MS, SESSION_MAX_MS);
    uint8_t raw[16];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)rnd();
    cluster_uuid_format(raw, s->cluster_id);
    int64_t chaos_ms = rnd_range(CHAOS_MIN_MS, CHAOS_MAX_MS);
    TRACE(s,
          "seed %llu: %d voters, %d observers, drop %u/1000, dup %u/1000, delay <= %lld ms, crash "
          "%u/1000, "
          "partition %u/1000, ops %u/1000 per ms, snapshot at %lld bytes / %lld ms, disk <= "
          "%lld ms, broker sessions %lld ms, chaos %lld ms",
          (unsigned long long)seed, s->n_voters, s->n_nodes - s->n_voters, s->drop_pm, s->dup_pm,
          (long long)s->max_delay_ms, s->crash_pm, s->partition_pm, s->op_pm,
          (long long)s->snapshot_max_bytes, (long long)s->snapshot_interval_ms,
          (long long)s->disk_ms, (long long)s->session_timeout_ms, (long long)chaos_ms);

    snprintf(s->run_dir, sizeof s->run_dir, "%s/samsa-msim-XXXXXX", base_dir);
    if (!mkdtemp(s->run_dir)) {
        SIM_FAILF(s, "mkdtemp %s: %s", s->run_dir, strerror(errno));
        s->run_dir[0] = '\0';
        return 1;
    }
    for (int i = 0; i < s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        n->s = s;
        n->index = i;
        n->observer = i >= s->n_voters;
        n->id = n->observer ? OBSERVER_ID_BASE + i - s->n_voters + 1 : i + 1;
        if (!n->observer)
            s->voter_ids[i] = n->id;
        n->tick_phase = (int)rnd_n(TICK_MS);
        /* Most observers are added, at any time of the chaos, before the first snapshot or
         * long after; one in eight never is. */
        if (n->observer && !chance(125))
            n->add_at = rnd_range(1, chaos_ms);
        if (n->observer)
            TRACE(s, "observer %d: added from %lld ms", n->id, (long long)n->add_at);
        snprintf(n->dir, sizeof n->dir, "%s/node%d", s->run_dir, n->id);
        if (cluster_format(n->dir, n->id, s->cluster_id) != CLUSTER_OK)
            SIM_FAILF(s, "cannot format %s", n->dir);
    }
    for (int i = 0; i < s->n_nodes && !s->fail; i++)
        node_open(s, &s->nodes[i]);

    while (!s->fail && s->now < chaos_ms)
        step(s, true);

    /* Heal: no more faults, every node back up; then one leader and one history. */
    heal(s);
    s->drop_pm = s->dup_pm = 0;
    for (int i = 0; i < s->n_nodes; i++)
        if (!s->nodes[i].c && !s->nodes[i].restart_at)
            s->nodes[i].restart_at = s->now + 1;
    int64_t deadline = s->now + LIVENESS_MS;
    bool ok = false;
    while (!s->fail && s->now < deadline) {
        step(s, false);
        if ((ok = converged(s)))
            break;
    }
    if (!s->fail && !ok) {
        for (int i = 0; i < s->n_nodes; i++) {
            struct node *n = &s->nodes[i];
            if (!n->c) {
                fprintf(stderr, "  node %d: down\n", n->id);
                continue;
            }
            struct cluster_quorum_state q;
            cluster_quorum_state(n->c, &q);
            fprintf(stderr,
                    "  node %d: leader %d leading %d epoch %d hw %lld leo %lld applied %llu "
                    "busy %d%s\n",
                    n->id, q.leader_id, q.leading, q.leader_epoch, (long long)q.high_watermark,
                    (long long)q.log_end_offset, (unsigned long long)cluster_applied_index(n->c),
                    cluster_busy(n->c),
                    !n->observer       ? ""
                    : n->added         ? " (observer, added)"
                    : n->add_submitted ? " (observer, addition not acknowledged)"
                                       : " (observer, never added)");
        }
        SIM_FAILF(s, "liveness: no single leader with one applied history %d ms after healing",
                  LIVENESS_MS);
    }
    if (!s->fail) {
        check_final_members(s);
        uint64_t d0 = image_digest(s, s->nodes[0].c);
        for (int i = 1; i < s->n_nodes && !s->fail; i++) {
            if (s->nodes[i].observer && !s->nodes[i].added)
                continue; /* never added: check_membership saw it hear nothing */
            if (image_digest(s, s->nodes[i].c) != d0) {
                dump_image(&s->nodes[0]);
                dump_image(&s->nodes[i]);
                SIM_FAILF(s, "final images of nodes %d and %d differ", s->nodes[0].id,
                          s->nodes[i].id);
            }
        }
        check_acknowledged(s, s->nodes[0].c);
    }
    /* Close and reopen every node: each stands on the history again. */
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].c)
            node_crash(s, &s->nodes[i], chance(500));
    for (int i = 0; i < s->n_nodes && !s->fail; i++) {
        node_open(s, &s->nodes[i]);
        if (s->nodes[i].c)
            node_crash(s, &s->nodes[i], false);
    }
    for (int i = 0; i < s->n_ops && !s->fail; i++)
        if (s->ops[i]->done_calls != 1)
            SIM_FAILF(s, "op %d (%s %s) completed %d times", i, op_names[s->ops[i]->kind],
                      s->ops[i]->name, s->ops[i]->done_calls);
    TRACE(s,
          "end: %d ops (%d additions of observers), %llu acknowledged (%llu topics with 2 or 3 "
          "replicas, %llu heartbeats), %llu refused by "
          "observers, %llu crashes, %llu snapshots installed (%llu by observers), %llu messages "
          "delivered",
          s->n_ops, s->n_adds, (unsigned long long)s->acked, (unsigned long long)s->replicated,
          (unsigned long long)s->unfenced_ok, (unsigned long long)s->observer_refusals,
          (unsigned long long)s->crashes, (unsigned long long)s->snapshots_installed,
          (unsigned long long)s->observer_installs, (unsigned long long)s->delivered);
    return s->fail != NULL;
}

static void sim_free(struct sim *s)
{
    for (int i = 0; i < s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        if (n->c)
            node_crash(s, n, false);
        free(n->mirror);
    }
    remove_run_dir(s);
    for (size_t i = 0; i < s->n_net; i++)
        free(s->net[i].bytes);
    free(s->net);
    for (int i = 0; i < s->n_ops; i++)
        free(s->ops[i]);
    free(s->hist);
    free(s->term_leader);
    free(s);
    time_clear_fake();
}

int main(int argc, char **argv)
{
    uint64_t from = 1, to = 100;
    bool explicit_range = false, quiet = false;
    const char *dir_env = getenv("MSIM_DIR");
    if (dir_env && *dir_env)
        base_dir = dir_env;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
            to = from + strtoull(argv[++i], NULL, 10) - 1;
            explicit_range = true;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            from = to = strtoull(argv[++i], NULL, 10);
            explicit_range = true;
        } else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            from = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
            to = strtoull(argv[++i], NULL, 10);
            explicit_range = true;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            base_dir = argv[++i];
        } else if (strcmp(argv[i], "--trace") == 0) {
            trace = true;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
        } else {
            fprintf(stderr,
                    "usage: %s [--seeds N | --seed S | --from A --to B] [--trace] [--quiet] "
                    "[--dir BASE]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *env = getenv("MSIM_SEEDS");
    if (env && !explicit_range)
        to = from + strtoull(env, NULL, 10) - 1;
#if defined(__SANITIZE_ADDRESS__)
    /* Sanitized builds run several times slower: a fifth of the seeds keeps ctest bounded. */
    if (!env && !getenv("MSIM_FULL") && to - from + 1 > 60)
        to = from + 59;
#endif
    say_set_level(trace ? SAY_LEVEL_INFO : SAY_LEVEL_ERROR);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t failures = 0, acked = 0, ops = 0, crashes = 0, installs = 0, observer_runs = 0,
             observers = 0, observer_installs = 0, observer_refusals = 0, replicated = 0,
             unfenced = 0, shrunk = 0, moved = 0, waiting = 0, reassigning = 0;
    for (uint64_t seed = from; seed <= to; seed++) {
        struct sim *s = NULL;
        if (run_seed(seed, &s)) {
            failures++;
            fprintf(stderr, "FAIL seed %llu: %s\n", (unsigned long long)seed, s->fail);
            fprintf(stderr, "replay: %s --seed %llu --trace\n", argv[0], (unsigned long long)seed);
        }
        acked += s->acked;
        ops += (uint64_t)s->n_ops;
        crashes += s->crashes;
        installs += s->snapshots_installed;
        observer_runs += s->n_nodes > s->n_voters;
        observers += (uint64_t)(s->n_nodes - s->n_voters);
        observer_installs += s->observer_installs;
        observer_refusals += s->observer_refusals;
        replicated += s->replicated;
        unfenced += s->unfenced_ok;
        shrunk += s->seen_shrunk;
        moved += s->seen_moved;
        waiting += s->seen_waiting;
        reassigning += s->seen_reassigning;
        sim_free(s);
        if (failures >= 5)
            break;
        if (!quiet && (seed - from + 1) % 100 == 0)
            fprintf(stderr, "%llu seeds...\n", (unsigned long long)(seed - from + 1));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("metadata_sim: seeds %llu..%llu, %llu failed, %llu changes submitted, %llu "
           "acknowledged (%llu topics with 2 or 3 replicas, %llu heartbeats), %llu crashes, %llu "
           "snapshots installed; %llu runs with %llu observers, %llu snapshots installed by "
           "observers, %llu changes refused by observers; runs where fencing shrank an ISR "
           "%llu, moved a leader %llu, left one waiting for its last in-sync replica %llu; "
           "runs with a reassignment under way %llu; %.1f s\n",
           (unsigned long long)from, (unsigned long long)to, (unsigned long long)failures,
           (unsigned long long)ops, (unsigned long long)acked, (unsigned long long)replicated,
           (unsigned long long)unfenced, (unsigned long long)crashes, (unsigned long long)installs,
           (unsigned long long)observer_runs, (unsigned long long)observers,
           (unsigned long long)observer_installs, (unsigned long long)observer_refusals,
           (unsigned long long)shrunk, (unsigned long long)moved, (unsigned long long)waiting,
           (unsigned long long)reassigning, secs);
    return failures ? 1 : 0;
}
