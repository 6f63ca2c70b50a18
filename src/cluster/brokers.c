/* Brokers in the metadata (cluster_int.h): registration and fencing records, the active
 * controller's broker sessions, and where new partitions go. */
#include "cluster/cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cluster__add_broker_record(struct change *ch, const struct mbroker *b)
{
    cluster__change_record_v(ch, REC_REGISTER_BROKER, 1);
    buf_put_i32(&ch->body, b->node_id);
    cluster__put_str(&ch->body, b->host);
    buf_put_i32(&ch->body, b->port);
    cluster__put_str(&ch->body, b->rack);
    buf_put_i64(&ch->body, b->epoch);
    buf_append(&ch->body, b->incarnation, 16);
    buf_put_i8(&ch->body, b->fenced ? 1 : 0);
}

/* ---- placement ----
 * Each new partition gets rf distinct replicas among the unfenced brokers, spread as
 * Kafka's placer spreads them. The first, its leader, goes to the broker that leads the
 * fewest partitions (those of the change being built counted too) in the rack
 * (broker.rack) that leads the fewest, ties going round the brokers from where the last
 * placement stopped. Each follower then goes to another broker: in a rack this partition
 * does not use yet while one is left, the one holding the fewest replicas (leaders and
 * followers alike), ties going round the brokers from the leader on, so that a partition's
 * replicas are neighbours and the followers of one leader spread over the others. The
 * ISR is every replica. Until any broker is registered (a node on its own, tools) the one
 * replica is this node, unless this node is controller-only
 * (cluster_options.controller_only). */
struct placement {
    size_t n;
    int32_t *ids;         /* unfenced brokers */
    int64_t *counts;      /* partitions each leads */
    int64_t *held;        /* replicas each holds, leaders included */
    const char **racks;   /* each one's broker.rack, NULL if none */
    int64_t *rack_counts; /* partitions led in each one's rack (its own if none) */
    size_t *chosen;       /* the partition being placed: its replicas' indexes so far */
};

static bool same_rack(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Counts what each broker's rack leads, from the brokers' counts. */
static void count_racks(struct placement *pl)
{
    for (size_t b = 0; b < pl->n; b++) {
        pl->rack_counts[b] = pl->racks[b] ? 0 : pl->counts[b];
        for (size_t o = 0; pl->racks[b] && o < pl->n; o++)
            if (same_rack(pl->racks[b], pl->racks[o]))
                pl->rack_counts[b] += pl->counts[o];
    }
}

/* The index of an unfenced broker in pl, or SIZE_MAX. */
static size_t placement_index(const struct placement *pl, int32_t id)
{
    for (size_t b = 0; b < pl->n; b++)
        if (pl->ids[b] == id)
            return b;
    return SIZE_MAX;
}

static void placement_init(struct cluster *c, struct placement *pl)
{
    pl->ids = xcalloc(c->broker_count + 1, sizeof *pl->ids);
    pl->counts = xcalloc(c->broker_count + 1, sizeof *pl->counts);
    pl->held = xcalloc(c->broker_count + 1, sizeof *pl->held);
    pl->racks = xcalloc(c->broker_count + 1, sizeof *pl->racks);
    pl->rack_counts = xcalloc(c->broker_count + 1, sizeof *pl->rack_counts);
    pl->chosen = xcalloc(c->broker_count + 1, sizeof *pl->chosen);
    pl->n = 0;
    for (size_t i = 0; i < c->broker_count; i++) {
        if (c->brokers[i].fenced)
            continue;
        pl->racks[pl->n] = c->brokers[i].rack;
        pl->ids[pl->n++] = c->brokers[i].node_id;
    }
    for (size_t i = 0; i < c->topic_count; i++) {
        for (int32_t k = 0; k < c->topics[i]->partition_count; k++) {
            const struct mpartition *p = &c->topics[i]->partitions[k];
            size_t b = placement_index(pl, p->leader);
            if (b != SIZE_MAX)
                pl->counts[b]++;
            for (int32_t r = 0; r < p->replica_count; r++)
                if ((b = placement_index(pl, p->replicas[r])) != SIZE_MAX)
                    pl->held[b]++;
        }
    }
    count_racks(pl);
}

static void placement_free(struct placement *pl)
{
    free(pl->ids);
    free(pl->counts);
    free(pl->held);
    free(pl->racks);
    free(pl->rack_counts);
    free(pl->chosen);
}

/* Why rf replicas cannot be placed (in op->why), or NULL when they can. Kafka's words. */
static const char *cannot_place(struct cluster *c, struct op *op, const struct placement *pl,
                                int32_t rf)
{
    size_t usable = c->broker_count == 0 && !c->controller_only ? 1 : pl->n;
    size_t registered = c->broker_count == 0 ? usable : c->broker_count;
    if ((size_t)rf <= usable)
        return NULL;
    int len =
        snprintf(op->why, sizeof op->why, "Unable to replicate the partition %d time(s): ", rf);
    size_t at = (size_t)MAX(len, 0);
    if (usable == 0 && registered > 0)
        snprintf(op->why + at, sizeof op->why - at, "All brokers are currently fenced.");
    else if (usable == registered)
        snprintf(op->why + at, sizeof op->why - at,
                 "The target replication factor of %d cannot be reached because only %zu "
                 "broker(s) are registered.",
                 rf, registered);
    else
        snprintf(op->why + at, sizeof op->why - at,
                 "The target replication factor of %d cannot be reached because only %zu of "
                 "the %zu registered broker(s) are unfenced.",
                 rf, usable, registered);
    return op->why;
}

/* Places one partition's rf replicas in out[rf] (pl holds at least rf brokers). */
static void place_one(struct cluster *c, struct placement *pl, int32_t rf, int32_t *out)
{
    /* The leader: the least loaded rack first (a broker without broker.rack is a rack of
     * its own), then the least loaded broker in it. */
    size_t best = SIZE_MAX;
    for (size_t k = 0; k < pl->n; k++) {
        size_t b = (c->placement_cursor + k) % pl->n;
        if (best == SIZE_MAX || pl->rack_counts[b] < pl->rack_counts[best] ||
            (pl->rack_counts[b] == pl->rack_counts[best] && pl->counts[b] < pl->counts[best]))
            best = b;
    }
    c->placement_cursor = (best + 1) % pl->n;
    pl->counts[best]++;
    pl->held[best]++;
    for (size_t o = 0; o < pl->n; o++)
        if (o == best || same_rack(pl->racks[o], pl->racks[best]))
            pl->rack_counts[o]++;
    size_t *chosen = pl->chosen;
    ASSERT((size_t)rf <= pl->n);
    chosen[0] = best;
    out[0] = pl->ids[best];
    /* The followers: other brokers, a rack not used yet by this partition first, then
     * the fewest replicas held. */
    for (int32_t r = 1; r < rf; r++) {
        size_t pick = SIZE_MAX;
        bool pick_new_rack = false;
        for (size_t k = 1; k < pl->n; k++) {
            size_t b = (chosen[0] + k) % pl->n;
            bool taken = false, rack_used = false;
            for (int32_t q = 0; q < r; q++) {
                taken |= chosen[q] == b;
                rack_used |= same_rack(pl->racks[chosen[q]], pl->racks[b]);
            }
            if (taken)
                continue;
            bool new_rack = !rack_used;
            if (pick == SIZE_MAX || (new_rack && !pick_new_rack) ||
                (new_rack == pick_new_rack && pl->held[b] < pl->held[pick])) {
                pick = b;
                pick_new_rack = new_rack;
            }
        }
        ASSERT(pick != SIZE_MAX);
        pl->held[pick]++;
        chosen[r] = pick;
        out[r] = pl->ids[pick];
    }
}

static bool broker_known(const struct cluster *c, int32_t id)
{
    return cluster_broker_find(c, id) ||
           (c->broker_count == 0 && !c->controller_only && id == c->node_id);
}

static bool broker_unfenced(const struct cluster *c, int32_t id)
{
    const struct mbroker *b = cluster_broker_find(c, id);
    return b ? !b->fenced : c->broker_count == 0 && !c->controller_only && id == c->node_id;
}

/* np's arrays, for n partitions of rf replicas each. */
static void new_partitions_alloc(struct new_partitions *np)
{
    ASSERT(np->n >= 0 && np->rf >= 1);
    size_t cells = (size_t)MAX(np->n, 1) * (size_t)np->rf;
    np->replicas = xcalloc(cells, sizeof *np->replicas);
    np->isr = xcalloc(cells, sizeof *np->isr);
    np->isr_counts = xcalloc((size_t)MAX(np->n, 1), sizeof *np->isr_counts);
}

/* Brokers a partition may name: the registered ones, or this node while none is. */
static size_t known_brokers(const struct cluster *c)
{
    return c->broker_count ? c->broker_count : !c->controller_only;
}

int cluster__check_replica_list(const struct cluster *c, const int32_t *ids, int32_t n, char *why,
                                size_t why_size)
{
    if (n <= 0) {
        snprintf(why, why_size, "The manual partition assignment includes an empty replica list.");
        return CLUSTER_ERR_INVALID_ASSIGNMENT;
    }
    for (int32_t r = 0; r < n; r++) {
        if (!broker_known(c, ids[r])) {
            snprintf(why, why_size,
                     "The manual partition assignment includes broker %d, but no such broker is "
                     "registered.",
                     ids[r]);
            return CLUSTER_ERR_INVALID_ASSIGNMENT;
        }
        for (int32_t q = 0; q < r; q++) {
            if (ids[q] == ids[r]) {
                snprintf(why, why_size,
                         "The manual partition assignment includes the broker %d more than once.",
                         ids[r]);
                return CLUSTER_ERR_INVALID_ASSIGNMENT;
            }
        }
    }
    return 0;
}

/* A manual assignment, checked as Kafka's controller checks one: as many partitions as
 * are created, each with the topic's number of replicas, registered brokers named once,
 * not all of them fenced. Everything is checked before anything is allocated for it. */
static int check_assignment(struct cluster *c, struct op *op, const struct new_partitions *np)
{
    if (op->assigned != np->n) {
        snprintf(op->why, sizeof op->why,
                 "Attempted to add %d additional partition(s), but only %d assignment(s) were "
                 "specified.",
                 np->n, op->assigned);
        return CLUSTER_ERR_INVALID_ASSIGNMENT;
    }
    if (op->replication_factor <= 0)
        return cluster__check_replica_list(c, NULL, 0, op->why, sizeof op->why);
    if (op->replication_factor != np->rf) {
        snprintf(op->why, sizeof op->why,
                 "The manual partition assignment includes a partition with %d replica(s), but "
                 "this is not consistent with previous partitions, which have %d replica(s).",
                 op->replication_factor, np->rf);
        return CLUSTER_ERR_INVALID_ASSIGNMENT;
    }
    int32_t rf = op->replication_factor;
    /* More replicas than brokers: the first partition names one twice or one unknown, and
     * the check stops there (the repeat check is quadratic in the replicas). */
    int32_t checked = (size_t)rf > known_brokers(c) ? MIN(np->n, 1) : np->n;
    for (int32_t p = 0; p < checked; p++) {
        const int32_t *want = &op->replicas[(size_t)p * (size_t)rf];
        int rc = cluster__check_replica_list(c, want, rf, op->why, sizeof op->why);
        if (rc != 0)
            return rc;
        bool any_unfenced = false;
        for (int32_t r = 0; r < rf; r++)
            any_unfenced |= broker_unfenced(c, want[r]);
        if (!any_unfenced) {
            snprintf(op->why, sizeof op->why,
                     "All brokers specified in the manual partition assignment for partition %d "
                     "are fenced or in controlled shutdown.",
                     np->first + p);
            return CLUSTER_ERR_INVALID_ASSIGNMENT;
        }
    }
    ASSERT(checked == np->n); /* rf distinct known brokers cannot outnumber them */
    return 0;
}

/* The checked assignment into np: the replicas as given, the unfenced ones the ISR, in
 * the order given, the first of them leading. */
static void assign_manually(const struct cluster *c, const struct op *op, struct new_partitions *np)
{
    size_t rf = (size_t)np->rf;
    new_partitions_alloc(np);
    memcpy(np->replicas, op->replicas, (size_t)np->n * rf * sizeof *np->replicas);
    for (int32_t p = 0; p < np->n; p++) {
        const int32_t *replicas = &np->replicas[(size_t)p * rf];
        int32_t *isr = &np->isr[(size_t)p * rf];
        for (size_t r = 0; r < rf; r++)
            if (broker_unfenced(c, replicas[r]))
                isr[np->isr_counts[p]++] = replicas[r];
    }
}

void cluster__new_partitions_free(struct new_partitions *np)
{
    free(np->replicas);
    free(np->isr);
    free(np->isr_counts);
    *np = (struct new_partitions){0};
}

int cluster__place_partitions(struct cluster *c, struct op *op, int32_t first, int32_t n,
                              int32_t rf, struct new_partitions *np)
{
    *np = (struct new_partitions){.first = first, .n = n, .rf = rf};
    int rc;
    if (op->replicas) {
        if ((rc = check_assignment(c, op, np)) != 0) {
            op->res.why = op->why;
            return rc;
        }
        assign_manually(c, op, np);
        return 0;
    }
    struct placement pl;
    placement_init(c, &pl);
    if ((op->res.why = cannot_place(c, op, &pl, rf)) != NULL) {
        placement_free(&pl);
        return CLUSTER_ERR_INVALID_REPLICATION;
    }
    new_partitions_alloc(np);
    if (pl.n == 0) {
        /* No broker registered yet: this node, the one replica. */
        ASSERT(rf == 1);
        for (int32_t p = 0; p < n; p++)
            np->replicas[p] = c->node_id;
    } else {
        for (int32_t p = 0; p < n; p++)
            place_one(c, &pl, rf, &np->replicas[(size_t)p * (size_t)rf]);
    }
    placement_free(&pl);
    /* Every placed replica is unfenced: the ISR is all of them. */
    memcpy(np->isr, np->replicas, (size_t)n * (size_t)rf * sizeof *np->isr);
    for (int32_t p = 0; p < n; p++)
        np->isr_counts[p] = rf;
    return 0;
}

static bool in_ids(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Whether broker id may lead, once broker `node` is fenced or unfenced (`fenced`): it is
 * registered and unfenced as the change leaves it. */
static bool may_lead(const struct cluster *c, int32_t id, int32_t node, bool fenced)
{
    if (id == node)
        return !fenced;
    const struct mbroker *b = cluster_broker_find(c, id);
    return b && !b->fenced;
}

bool cluster__unclean_enabled(const struct cluster *c, const struct mtopic *t)
{
    const char *v = cluster_topic_config(t, "unclean.leader.election.enable");
    return v ? strcasecmp(v, "true") == 0 : c->unclean_default;
}

int32_t cluster__unclean_leader(const struct cluster *c, const struct mtopic *t,
                                const struct mpartition *p, int32_t node, bool fenced)
{
    for (int32_t r = 0; r < p->replica_count; r++) {
        int32_t id = p->replicas[r];
        if (!may_lead(c, id, node, fenced))
            continue;
        char isr[128] = "";
        for (int32_t i = 0, at = 0; i < p->isr_count && at < (int)sizeof isr - 12; i++)
            at += snprintf(isr + at, sizeof isr - (size_t)at, "%s%d", i ? "," : "", p->isr[i]);
        say_warn("cluster",
                 "UNCLEAN leader election for %s-%d: replica %d, not in sync, leads and becomes "
                 "the only in-sync replica; records only the in-sync replicas (%s) had beyond "
                 "its log end are lost (each one's truncation, when it returns, names the "
                 "offsets)",
                 t->name, p->id, id, isr);
        return id;
    }
    return -1;
}

void cluster__add_unclean_elections(const struct cluster *c, struct change *ch,
                                    const struct mtopic *t)
{
    for (int32_t k = 0; k < t->partition_count; k++) {
        const struct mpartition *p = &t->partitions[k];
        if (p->leader != -1)
            continue;
        int32_t leader = cluster__unclean_leader(c, t, p, -1, false);
        if (leader < 0)
            continue;
        struct mpartition np = *p;
        np.leader = leader;
        np.isr = &leader;
        np.isr_count = 1;
        np.leader_epoch = p->leader_epoch + 1;
        np.partition_epoch = p->partition_epoch + 1;
        cluster__add_partition_state(ch, t->id, &np);
    }
}

/*
 * What broker `node` being fenced (or unfenced) does to partition p, as Kafka's controller
 * does it (ReplicationControlManager's handleBrokerFenced and handleBrokerUnfenced):
 *   - fenced: it leaves the ISR, unless it is the ISR's last member (the ISR is never
 *     emptied: the last member is the one replica known to hold every acknowledged
 *     record, so it is the one that may lead again, and no unclean choice is made). If it
 *     led (or nobody did), the first replica, in replica order, that is in the new ISR and
 *     unfenced leads; none: leader -1 until one returns.
 *   - unfenced: a partition without a leader whose ISR holds it gets a leader again: the
 *     first replica, in replica order, in the ISR and unfenced (it, unless another member
 *     returned first).
 * It stays a replica either way. With unclean leader election (cluster__unclean_enabled), a
 * partition that would be left without a leader gets the first replica that may lead as
 * leader and only in-sync replica, and a returning broker leads a leaderless partition it
 * is a replica of even out of its ISR. The leader epoch grows when the leader changes (followers
 * and clients fence by it); the partition epoch with every change (AlterPartition requests
 * fence by it). An ISR that shrinks under the same leader moves only the partition epoch.
 * Adds p's new state to ch if anything changes.
 */
static void add_fencing_change(const struct cluster *c, struct change *ch, const struct mtopic *t,
                               const struct mpartition *p, int32_t node, bool fenced)
{
    bool in_isr = in_ids(p->isr, p->isr_count, node);
    bool unclean = cluster__unclean_enabled(c, t);
    bool returns_unclean =
        !fenced && unclean && p->leader == -1 && in_ids(p->replicas, p->replica_count, node);
    if (fenced ? !in_isr && p->leader != node : (!in_isr || p->leader != -1) && !returns_unclean)
        return;
    struct mpartition np = *p;
    int32_t *isr = xcalloc((size_t)MAX(p->isr_count, 1), sizeof *isr);
    np.isr = isr;
    np.isr_count = 0;
    for (int32_t i = 0; i < p->isr_count; i++)
        if (!fenced || p->isr[i] != node || p->isr_count == 1)
            isr[np.isr_count++] = p->isr[i];
    if (p->leader == -1 || (fenced && p->leader == node)) {
        np.leader = -1;
        for (int32_t r = 0; r < p->replica_count && np.leader == -1; r++)
            if (in_ids(np.isr, np.isr_count, p->replicas[r]) &&
                may_lead(c, p->replicas[r], node, fenced))
                np.leader = p->replicas[r];
        if (np.leader == -1 && unclean &&
            (np.leader = cluster__unclean_leader(c, t, p, node, fenced)) >= 0) {
            isr[0] = np.leader;
            np.isr_count = 1;
        }
    }
    bool new_isr = np.isr_count != p->isr_count ||
                   memcmp(np.isr, p->isr, (size_t)np.isr_count * sizeof *isr) != 0;
    if (np.leader != p->leader || new_isr) {
        if (np.leader != p->leader)
            np.leader_epoch = p->leader_epoch + 1;
        np.partition_epoch = p->partition_epoch + 1;
        cluster__add_partition_state(ch, t->id, &np);
    }
    free(isr);
}

/* The partition changes of broker `node` being fenced or unfenced, for every partition. */
static void add_fencing_changes(const struct cluster *c, struct change *ch, int32_t node,
                                bool fenced)
{
    for (size_t i = 0; i < c->topic_count; i++) {
        const struct mtopic *t = c->topics[i];
        for (int32_t k = 0; k < t->partition_count; k++)
            add_fencing_change(c, ch, t, &t->partitions[k], node, fenced);
    }
}

int cluster__build_register_broker(struct cluster *c, struct op *op, struct change *ch)
{
    const struct mbroker *b = cluster_broker_find(c, op->node_id);
    const char *rack = op->rack;
    if (b && strcmp(b->host, op->name) == 0 && b->port == op->count &&
        ((!b->rack && !rack) || (b->rack && rack && strcmp(b->rack, rack) == 0)) &&
        memcmp(b->incarnation, op->incarnation, 16) == 0) {
        /* The same process again (or a single node restarted): nothing to write. */
        op->res.broker_epoch = b->epoch;
        op->res.fenced = b->fenced;
        return 0;
    }
    struct mbroker nb = {.node_id = op->node_id,
                         .host = op->name,
                         .port = op->count,
                         .rack = op->rack,
                         .epoch = c->last_broker_epoch + 1,
                         .fenced = op->fenced};
    memcpy(nb.incarnation, op->incarnation, 16);
    cluster__add_broker_record(ch, &nb);
    /* A new process registers fenced: the old one's leaderships and ISR places go as for
     * any fencing (it may have lost what it had not synced, and it leads nothing until
     * its first heartbeat); one registering unfenced (a single node) leads again what
     * waited for it. */
    add_fencing_changes(c, ch, nb.node_id, nb.fenced);
    op->res.broker_epoch = nb.epoch;
    op->res.fenced = nb.fenced;
    return 0;
}

/* Fences or unfences a broker (op->fenced), moving the leadership of its partitions. */
int cluster__build_broker_change(struct cluster *c, struct op *op, struct change *ch)
{
    const struct mbroker *b = cluster_broker_find(c, op->node_id);
    if (!b || b->epoch != op->id_count) {
        op->res.why = "unknown broker or broker epoch";
        return CLUSTER_ERR_STALE_BROKER_EPOCH;
    }
    op->res.broker_epoch = b->epoch;
    op->res.fenced = op->fenced;
    if (b->fenced == op->fenced)
        return 0;
    cluster__change_record(ch, REC_BROKER_CHANGE);
    buf_put_i32(&ch->body, b->node_id);
    buf_put_i64(&ch->body, b->epoch);
    buf_put_i8(&ch->body, op->fenced ? 1 : 0);
    add_fencing_changes(c, ch, b->node_id, op->fenced);
    return 0;
}

void cluster_register_broker(struct cluster *c, int32_t node_id, const char *host, int32_t port,
                             const char *rack, const uint8_t *incarnation, bool fenced,
                             cluster_done_fn done, void *arg)
{
    struct op *op = cluster__op_new(c, OP_REGISTER_BROKER, done, arg);
    op->node_id = node_id;
    op->name = xstrdup(host);
    op->count = port;
    op->rack = rack ? xstrdup(rack) : NULL;
    op->fenced = fenced;
    if (incarnation)
        memcpy(op->incarnation, incarnation, 16);
    cluster__submit(op);
}

void cluster_add_observer(struct cluster *c, int32_t node_id, cluster_done_fn done, void *arg)
{
    struct op *op = cluster__op_new(c, OP_ADD_OBSERVER, done, arg);
    op->node_id = node_id;
    cluster__submit(op);
}

bool cluster_quorum_member(const struct cluster *c, int32_t node_id)
{
    struct cluster_quorum_state qs;
    quorum_describe(c->log, &qs);
    for (size_t i = 0; i < qs.voter_count; i++)
        if (qs.voters[i].node_id == node_id)
            return true;
    for (size_t i = 0; i < qs.observer_count; i++)
        if (qs.observers[i].node_id == node_id)
            return true;
    return false;
}

/* ---- broker sessions (cluster.h) ---- */

struct broker_session {
    int32_t node_id;
    int64_t last_ms;         /* the last heartbeat, or when this controller took over */
    int64_t disconnected_ms; /* when its connection last closed (cluster_broker_disconnected) */
    bool fence_asked;        /* a fencing change is on its way */
};

/* The sessions of this leader's term; a new term starts them all afresh (a controller
 * that just took over has heard from nobody yet). */
static void sessions_sync(struct cluster *c, int64_t now_ms)
{
    struct cluster_quorum_state qs;
    quorum_describe(c->log, &qs);
    uint64_t term = (uint64_t)qs.leader_epoch;
    if (term != c->sessions_term) {
        c->sessions_term = term;
        c->session_count = 0;
    }
    for (size_t i = 0; i < c->broker_count; i++) {
        bool known = false;
        for (size_t k = 0; k < c->session_count && !known; k++)
            known = c->sessions[k].node_id == c->brokers[i].node_id;
        if (known)
            continue;
        c->sessions = xrealloc(c->sessions, (c->session_count + 1) * sizeof *c->sessions);
        c->sessions[c->session_count++] =
            (struct broker_session){.node_id = c->brokers[i].node_id, .last_ms = now_ms};
    }
}

static struct broker_session *session_of(struct cluster *c, int32_t node_id)
{
    for (size_t k = 0; k < c->session_count; k++)
        if (c->sessions[k].node_id == node_id)
            return &c->sessions[k];
    return NULL;
}

static void submit_broker_change(struct cluster *c, const struct mbroker *b, bool fenced,
                                 cluster_done_fn done, void *arg)
{
    struct op *op = cluster__op_new(c, OP_BROKER_CHANGE, done, arg);
    op->node_id = b->node_id;
    op->id_count = b->epoch;
    op->fenced = fenced;
    cluster__submit(op);
}

/* A heartbeat's broker, its session renewed; NULL, with done told why, when this node is
 * not the active controller or the broker is not registered at that epoch. */
static const struct mbroker *heartbeat_from(struct cluster *c, int32_t node_id, int64_t epoch,
                                            int64_t now_ms, cluster_done_fn done, void *arg)
{
    struct cluster_result res = {.broker_epoch = epoch};
    const struct mbroker *b = cluster_broker_find(c, node_id);
    if (!quorum_leading(c->log)) {
        res.err = CLUSTER_ERR_NOT_CONTROLLER;
        res.why = "this node is not the active controller";
    } else if (!b || b->epoch != epoch) {
        res.err = CLUSTER_ERR_STALE_BROKER_EPOCH;
        res.why = "the broker is not registered at this epoch";
    }
    if (res.err != CLUSTER_OK) {
        if (done)
            done(arg, &res);
        return NULL;
    }
    sessions_sync(c, now_ms);
    session_of(c, node_id)->last_ms = now_ms;
    return b;
}

void cluster_broker_heartbeat(struct cluster *c, int32_t node_id, int64_t epoch, int64_t now_ms,
                              cluster_done_fn done, void *arg)
{
    const struct mbroker *b = heartbeat_from(c, node_id, epoch, now_ms, done, arg);
    if (!b)
        return;
    session_of(c, node_id)->fence_asked = false;
    if (b->fenced) {
        submit_broker_change(c, b, false, done, arg);
        return;
    }
    if (done)
        done(arg, &(struct cluster_result){.broker_epoch = epoch});
}

void cluster_broker_controlled_shutdown(struct cluster *c, int32_t node_id, int64_t epoch,
                                        int64_t now_ms, cluster_done_fn done, void *arg)
{
    const struct mbroker *b = heartbeat_from(c, node_id, epoch, now_ms, done, arg);
    if (!b)
        return;
    if (!b->fenced) {
        submit_broker_change(c, b, true, done, arg);
        return;
    }
    if (done)
        done(arg, &(struct cluster_result){.broker_epoch = epoch, .fenced = true});
}

void cluster_broker_disconnected(struct cluster *c, int32_t node_id, int64_t epoch, int64_t now_ms)
{
    const struct mbroker *b = cluster_broker_find(c, node_id);
    if (!quorum_leading(c->log) || !b || b->epoch != epoch || b->fenced)
        return;
    sessions_sync(c, now_ms);
    /* The first close since its last heartbeat counts: the grace runs from it, however
     * often a dead broker's connection is refused again meanwhile. */
    struct broker_session *s = session_of(c, node_id);
    if (s->disconnected_ms <= s->last_ms)
        s->disconnected_ms = now_ms;
}

void cluster_expire_sessions(struct cluster *c, int64_t now_ms, int64_t session_timeout_ms,
                             int64_t disconnect_grace_ms)
{
    if (!quorum_leading(c->log))
        return;
    sessions_sync(c, now_ms);
    for (size_t i = 0; i < c->broker_count; i++) {
        const struct mbroker *b = &c->brokers[i];
        struct broker_session *s = session_of(c, b->node_id);
        if (b->fenced || s->fence_asked)
            continue;
        /* Gone: its connection closed after its last heartbeat, and none came since. */
        bool gone = disconnect_grace_ms > 0 && s->disconnected_ms > s->last_ms &&
                    now_ms - s->disconnected_ms >= disconnect_grace_ms;
        if (gone)
            say_warn("cluster",
                     "broker %d's connection closed %lld ms ago and it has not heartbeated "
                     "since: fencing it",
                     b->node_id, (long long)(now_ms - s->disconnected_ms));
        else if (now_ms - s->last_ms >= session_timeout_ms)
            say_warn("cluster",
                     "broker %d sent no heartbeat for %lld ms (broker.session.timeout.ms %lld): "
                     "fencing it",
                     b->node_id, (long long)(now_ms - s->last_ms), (long long)session_timeout_ms);
        else
            continue;
        s->fence_asked = true;
        submit_broker_change(c, b, true, NULL, NULL);
    }
}
