/*
 * replication_sim: deterministic simulation of partition replication at the replica/
 * level (issue #15).
 *
 * Three (sometimes five) nodes host one to three partitions, each a real `struct
 * partition` over a real log in a temp dir under /tmp (storage's log_* functions, real
 * segment files, real fdatasync). Around them the simulator plays, one simulated
 * millisecond at a time:
 *   - the controller: each partition's leader, leader epoch, partition epoch, replicas and
 *     ISR, kept by Kafka's rules as src/cluster keeps them (brokers.c add_fencing_change,
 *     cluster.c check_alter_partition): AlterPartition accepted only from the leader at
 *     the current leader and partition epochs, with unfenced replicas as members; a node
 *     whose heartbeats stop for the session timeout is fenced (out of every ISR unless
 *     its last member; if it led, the first ISR replica in replica order that is
 *     unfenced leads); a restarted node registers fenced, then its heartbeats unfence it
 *     (electing it where a leaderless ISR holds it). Leader epoch +1 on a leader change,
 *     partition epoch +1 on every change. Every change is a metadata version; each node
 *     applies versions in order, each after its own random delay, as the metadata log
 *     delivers them, and takes its role as server/partitions.c follow_metadata does.
 *   - followers (server/replication.c): one fetch source per leader, one Fetch at a time
 *     carrying fetch offset (the log end), last fetched epoch and current leader epoch;
 *     answers truncate on DivergingEpoch (partition_truncation_offset, partition_
 *     truncate), append whole batches (partition_append_fetched), take the high
 *     watermark, and the next Fetch waits until the appended data is synced (a durable
 *     wait, as samsa.replica.fetch.sync=true); errors rest the partition; a lost answer
 *     closes the connection (a timeout) and the source rests.
 *   - leaders (server/handlers/fetch.c follower_fetch): partition_check_leader,
 *     partition_diverging, the offset range, partition_follower_fetched, an ISR check,
 *     then a read up to the log end; an empty answer parks until data arrives, the high
 *     watermark moves, or replica.fetch.wait.max.ms. ISR checks also on a timer every
 *     replica.lag.time.max.ms / 2; AlterPartition (server/alter_partition.c) with the
 *     answer, or a timeout when none comes, ending the request (partition_isr_answered).
 *   - group commit (server/commit.c): appends want a sync; one round at a time per node
 *     (log_flush_prepare, then after a random disk time log_flush_execute and
 *     log_flush_complete).
 *   - producers: acks=all produces at whoever the controller names leader (some at
 *     random nodes); NOT_ENOUGH_REPLICAS below min.insync.replicas (2); appended with
 *     partition_append_as_leader; acknowledged exactly by commit.c's rule: the leader's
 *     log durable past the batch and partition_high_watermark past it, and then
 *     isr_count >= 2 (else NOT_ENOUGH_REPLICAS_AFTER_APPEND); a demoted leader fails its
 *     waits. Every acknowledged batch is recorded (offsets -> bytes).
 *   - faults: crashes and restarts of any node, sometimes of all at once; a network that
 *     delays, drops, duplicates and reorders messages between every pair (nodes and the
 *     controller) and partitions them (symmetric and one-way), healing later; forward
 *     jumps of a node's clock (a VM pause: the monotonic clock never goes back).
 *
 * Crashes and durability. Storage has no way to drop unsynced bytes, so the simulator
 * keeps, per node and partition, the offset up to which the log's bytes are on stable
 * storage: raised when a sync round completes (log_durable_offset after log_flush_
 * complete), lowered by truncation. A crash is either a process kill (kill -9: the page
 * cache survives, every byte stays) or a power loss: the log is dropped without a sync
 * (log_discard), and its segment files are cut at a batch boundary between the stable
 * offset and the log end (usually the stable offset itself; sometimes with a torn
 * partial batch after it), later segments deleted. The restart reopens the directory
 * with an unknown recovery point, so storage's recovery runs over what is left. Not
 * modelled: the leader-epoch-checkpoint file and directory entries reverting to older
 * versions, or a truncation's shrink being lost (the cut always keeps a prefix of the
 * current bytes).
 *
 * Each node's log is mirrored in memory (every batch's offsets, epoch and a hash of its
 * records); the mirror is checked against the log read back from disk every 97 ms and
 * after every restart. Checked after every simulated millisecond:
 *   1. every acknowledged batch is in the log of the acting leader (the node the
 *      controller names, leading at the controller's epoch) and of every live member of
 *      the controller's ISR, at its offsets with its bytes;
 *   2. no offset with two values below the high watermark: each leader's log and the log
 *      of every live replica it counts in sync agree below min(high watermark, its end);
 *   3. a leader's high watermark never goes back while it leads one epoch, and never
 *      exceeds the log end of a live replica it counts in sync (the code bounds it by
 *      the log ends followers reported);
 *   4. leader epochs in every log never decrease with offsets;
 *   5. a node leads only at an epoch the controller gave it: at most one leader per
 *      epoch.
 * Then faults stop, everything heals and restarts, and within a bounded simulated time
 * every partition must have its whole replica set in sync, all replicas identical (the
 * high watermark at the log end everywhere) and every acknowledged batch present.
 *
 * One seeded PRNG decides everything and the fake clock (base.h) replaces the clocks, so
 * a seed replays a run exactly.
 *
 * Two bugs it found in src/server are fixed and modelled as the code now is:
 *   - a restarted node opened its partitions with the roles of its metadata from before
 *     the crash and served produce as leader at its old epoch until its registration
 *     fenced it; after a power loss that wrote a second history under one leader epoch
 *     (seeds 49, 5188, 5222). Now it leads nothing until the metadata holds its new
 *     registration unfenced (server_may_lead), and leaderships come back at new epochs;
 *   - an AlterPartition answer ended whatever ISR request was pending, and a lost
 *     answer ended it too, so the controller could take an ISR the leader's high
 *     watermark did not wait for (seeds 55, 113, 148). Now only the newest request's
 *     answer counts, a request without one goes again, and a refusal at a partition
 *     epoch newer than the leader knows keeps the pending ISR until the metadata says.
 *
 * Usage: replication_sim [--seeds N] [--first S | --from A] [--seed S | --to B] [--trace]
 *        [--quiet] [--dir BASE]
 * Without a count, RSIM_SEEDS seeds (else 100; under ASan at most 20 unless RSIM_FULL).
 * RSIM_DIR sets the base dir (/tmp). A failure prints the command that replays it.
 */
#include "proto/proto.h"
#include "replica/replica.h"
#include "sim.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 5
#define MAX_PARTS 3
#define CTRL MAX_NODES /* the controller's index in the link table */
#define CLIENT (-1)    /* producers: their links never break */
#define MIN_INSYNC 2
#define CHAOS_MIN_MS 2000
#define CHAOS_MAX_MS 5000
#define CONVERGE_MS 30000
#define HEARTBEAT_MS 50
#define MAX_WAIT_MS 50       /* replica.fetch.wait.max.ms */
#define FETCH_TIMEOUT_MS 300 /* an unanswered Fetch: the connection is given up */
#define ALTER_TIMEOUT_MS 300 /* an unanswered AlterPartition: answered as failed */
#define MAX_JUMP_MS 300
#define MAX_PARKED 16
#define MAX_ALTERS 16
#define VERIFY_EVERY_MS 97
#define FAKE_MONO_START_MS 1000000
#define FAKE_WALL_START_MS 1800000000000ll

static const char *base_dir = "/tmp";

static const struct topic_settings settings = {
    .max_message_bytes = 1 << 20,
    .min_insync_replicas = MIN_INSYNC,
    .flush_messages = INT64_MAX,
    .flush_ms = INT64_MAX,
    .compression = COMPRESS_PRODUCER,
};

/* ---- a log's mirror ---- */

struct entry {
    int64_t base, last;
    int32_t epoch;
    uint64_t hash; /* of the records (what follows the batch header) */
};

struct shadow {
    struct entry *e;
    size_t n, cap;
    uint64_t gen; /* moves whenever entries go (truncation, a restart) */
};

static int64_t shadow_end(const struct shadow *sh)
{
    return sh->n ? sh->e[sh->n - 1].last + 1 : 0;
}

/* The entry holding offset, or NULL. */
static const struct entry *shadow_find(const struct shadow *sh, int64_t offset)
{
    size_t lo = 0, hi = sh->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sh->e[mid].last < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sh->n && sh->e[lo].base <= offset ? &sh->e[lo] : NULL;
}

static size_t shadow_index(const struct shadow *sh, int64_t offset)
{
    size_t lo = 0, hi = sh->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sh->e[mid].last < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- the controller's partitions and the metadata versions ---- */

struct meta {
    int32_t leader, leader_epoch, partition_epoch;
    int32_t n_replicas, replicas[MAX_NODES];
    int32_t n_isr, isr[MAX_NODES];
};

struct version {
    struct meta parts[MAX_PARTS];
    bool fenced[MAX_NODES];
    int32_t incarnation[MAX_NODES]; /* each broker's registration (its process) */
    int64_t deliver_at[MAX_NODES];
};

/* ---- messages ---- */

enum msg_kind { M_FETCH, M_FETCH_RESP, M_ALTER, M_ALTER_RESP, M_HEARTBEAT, M_PRODUCE };
static const char *const msg_names[] = {"fetch",        "fetch-answer", "alter-partition",
                                        "alter-answer", "heartbeat",    "produce"};

struct fetch_part {
    int32_t part, current_epoch, last_fetched_epoch;
    int64_t fetch_offset;
};

struct fetch_answer {
    int32_t part;
    int16_t error;
    int32_t div_epoch;
    int64_t div_end;
    int64_t hw;
    uint8_t *records; /* owned */
    size_t len;
};

struct msg {
    int64_t at;
    uint64_t seq;
    enum msg_kind kind;
    int from, to; /* node indexes, CTRL or CLIENT */
    uint64_t id;  /* a request's; echoed by its answer */
    int incarnation;
    int32_t n; /* fetch parts / answers */
    struct fetch_part fp[MAX_PARTS];
    struct fetch_answer fa[MAX_PARTS];
    /* AlterPartition and its answer */
    int32_t part, leader_epoch, partition_epoch, n_isr, isr[MAX_NODES];
    bool ok;
    /* produce */
    uint64_t value_no;
};

/* ---- nodes ---- */

/* A fetch source (replication.c's struct fetch_source): one per leader node. */
struct source {
    bool followed[MAX_PARTS];
    int64_t rest_until[MAX_PARTS];
    bool in_flight;
    uint64_t req_id;
    int64_t timeout_at;
    bool syncing; /* the last answer's data is being made durable */
    bool wait_on[MAX_PARTS];
    int64_t wait_offset[MAX_PARTS];
    int64_t timer_at; /* a rest: the next attempt; 0 none */
};

/* A follower's Fetch parked at the leader (fetch.c's fetch_wait). */
struct parked {
    bool used;
    struct msg req;
    int64_t deadline;
    uint64_t data_gen[MAX_PARTS];
};

struct produce_wait {
    int32_t part;
    int64_t base, end;
    uint64_t hash, value_no;
    bool failed; /* the node was demoted */
};

struct alter_out {
    bool used;
    uint64_t id;
    int32_t part;
    int64_t timeout_at;
};

struct agree {
    uint64_t lgen, mgen;
    int32_t epoch;
    int64_t to; /* checked below this */
};

struct node {
    int index;
    int32_t id;
    bool up;
    int64_t restart_at;
    int incarnation;
    int64_t skew; /* the node's clock runs this far ahead */
    char dir[300];
    struct partition *p[MAX_PARTS];
    struct shadow sh[MAX_PARTS];
    int64_t stable[MAX_PARTS]; /* bytes below this offset are on stable storage */
    size_t version;            /* metadata versions applied: [0, version) */
    bool fenced_view[MAX_NODES];
    int32_t incarnation_view[MAX_NODES];
    uint64_t data_gen[MAX_PARTS]; /* PURGATORY_DATA notifications */
    bool sync_wanted[MAX_PARTS];
    bool round_in_flight;
    int64_t round_done_at;
    bool job_on[MAX_PARTS];
    struct log_flush_job job[MAX_PARTS];
    struct source src[MAX_NODES];
    struct parked parked[MAX_PARKED];
    struct produce_wait *waits;
    size_t n_waits, cap_waits;
    struct alter_out alters[MAX_ALTERS];
    int64_t next_isr_check, next_heartbeat;
    /* checks */
    size_t ack_checked[MAX_PARTS];
    uint64_t ack_gen[MAX_PARTS];
    int32_t hw_epoch[MAX_PARTS];
    int64_t hw_seen[MAX_PARTS];
    struct agree agree[MAX_PARTS][MAX_NODES];
};

struct acked {
    int64_t base, last;
    uint64_t hash, value_no;
};

struct sim {
    uint64_t seed;
    int64_t now;
    int n_nodes, n_parts;
    struct node nodes[MAX_NODES];
    char run_dir[256];
    struct log_config log_cfg;
    /* the controller */
    struct meta ctl[MAX_PARTS];
    bool fenced[MAX_NODES];
    int64_t last_hb[MAX_NODES];
    int ctl_incarnation[MAX_NODES];
    int32_t *epoch_leader[MAX_PARTS]; /* by leader epoch: the leader given it (-2: none) */
    size_t cap_epoch[MAX_PARTS];
    struct version *versions;
    size_t n_versions, cap_versions;
    /* the network */
    struct msg *net;
    size_t n_net, cap_net;
    uint64_t seq, next_id;
    uint64_t gens;                              /* mirror generations */
    bool blocked[MAX_NODES + 1][MAX_NODES + 1]; /* [a][b]: a -> b is dropped */
    int64_t heal_at;
    /* the run's parameters */
    uint32_t drop_pm, dup_pm, crash_pm, power_all_pm, partition_pm, produce_pm, jump_pm;
    int64_t max_delay_ms, meta_delay_ms, disk_max_ms, session_ms, lag_max_ms, backoff_ms;
    int32_t fetch_max_bytes;
    /* the workload */
    uint64_t next_value;
    struct acked *acked[MAX_PARTS];
    size_t n_acked[MAX_PARTS], cap_acked[MAX_PARTS];
    /* counters */
    uint64_t produced, n_acks, not_enough, not_enough_after, not_leader, lost_waits, crashes,
        power_losses, elections, isr_shrinks, isr_expands, truncations, truncated_batches, messages,
        syncs;
    const char *fail;
    char fail_buf[512];
};

static int64_t node_now(const struct sim *s, const struct node *n)
{
    return s->now + n->skew;
}

static struct node *node_by_id(struct sim *s, int32_t id)
{
    return id >= 1 && id <= s->n_nodes ? &s->nodes[id - 1] : NULL;
}

static bool has_id(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static const char *ids_str(const int32_t *ids, int32_t n, char *out, size_t size)
{
    size_t at = 0;
    out[0] = '\0';
    for (int32_t i = 0; i < n && at + 8 < size; i++)
        at += (size_t)snprintf(out + at, size - at, "%s%d", i ? "," : "", ids[i]);
    return out;
}

/* ---- the mirror, from appended bytes and from disk ---- */

/* Adds the batches of records (whole, validated) to n's mirror of part. */
static void shadow_push(struct sim *s, struct node *n, int part, const uint8_t *records, size_t len)
{
    struct shadow *sh = &n->sh[part];
    struct batch_iter it;
    struct batch_info bi;
    batch_iter_init(&it, records, len);
    int rc;
    while ((rc = batch_iter_next(&it, &bi, true)) > 0) {
        const uint8_t *b = records + it.batch_pos;
        struct entry e = {bi.base_offset, batch_last_offset(&bi), bi.partition_leader_epoch,
                          hash_bytes(b + BATCH_HEADER_BYTES, bi.size_bytes - BATCH_HEADER_BYTES)};
        if (e.base != shadow_end(sh))
            SIM_FAILF(s, "node %d p%d: a batch at %lld where the log ends at %lld", n->id, part,
                      (long long)e.base, (long long)shadow_end(sh));
        if (sh->n && e.epoch < sh->e[sh->n - 1].epoch) /* invariant 4 */
            SIM_FAILF(s, "node %d p%d: leader epoch %d at offset %lld after epoch %d", n->id, part,
                      e.epoch, (long long)e.base, sh->e[sh->n - 1].epoch);
        if (sh->n == sh->cap) {
            sh->cap = sh->cap ? sh->cap * 2 : 64;
            sh->e = xrealloc(sh->e, sh->cap * sizeof *sh->e);
        }
        sh->e[sh->n++] = e;
    }
    if (rc < 0)
        SIM_FAILF(s, "node %d p%d: appended bytes do not parse (%d)", n->id, part, rc);
}

/* Reads n's whole log of part from disk into a fresh mirror. */
static void read_log(struct sim *s, struct node *n, int part, struct shadow *out)
{
    struct log *l = n->p[part]->log;
    int64_t off = log_start_offset(l), end = log_end_offset(l);
    struct shadow *keep = &n->sh[part];
    struct shadow tmp = *keep;
    *keep = (struct shadow){0};
    while (off < end && !s->fail) {
        struct log_read_result rr;
        int rc = log_read(l, off, 1 << 20, INT64_MAX, &rr);
        if (rc != 0 || rr.len <= 0) {
            SIM_FAILF(s, "node %d p%d: reading the log at %lld: %s", n->id, part, (long long)off,
                      rc ? storage_strerror(rc) : "nothing");
            break;
        }
        uint8_t *buf = xmalloc((size_t)rr.len);
        rc = pread_exact(rr.fd, buf, (size_t)rr.len, rr.file_pos);
        if (rc != 0)
            SIM_FAILF(s, "node %d p%d: pread: %s", n->id, part, strerror(-rc));
        else
            shadow_push(s, n, part, buf, (size_t)rr.len);
        free(buf);
        off = rr.next_offset;
        storage_read_turn_end();
    }
    *out = *keep;
    *keep = tmp;
}

static bool same_entry(const struct entry *x, const struct entry *y)
{
    return x->base == y->base && x->last == y->last && x->epoch == y->epoch && x->hash == y->hash;
}

static bool same_entries(const struct shadow *a, const struct shadow *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!same_entry(&a->e[i], &b->e[i]))
            return false;
    return true;
}

/* The mirror against the log on disk. */
static void verify_shadow(struct sim *s, struct node *n, int part)
{
    struct shadow disk;
    read_log(s, n, part, &disk);
    if (!s->fail && (!same_entries(&disk, &n->sh[part]) ||
                     shadow_end(&disk) != log_end_offset(n->p[part]->log)))
        SIM_FAILF(s,
                  "node %d p%d: the log on disk (%zu batches, end %lld) is not what was "
                  "appended (%zu batches, end %lld)",
                  n->id, part, disk.n, (long long)log_end_offset(n->p[part]->log), n->sh[part].n,
                  (long long)shadow_end(&n->sh[part]));
    free(disk.e);
}

/* ---- the controller ---- */

static void publish(struct sim *s, const char *why)
{
    if (s->n_versions == s->cap_versions) {
        s->cap_versions = s->cap_versions ? s->cap_versions * 2 : 64;
        s->versions = xrealloc(s->versions, s->cap_versions * sizeof *s->versions);
    }
    struct version *v = &s->versions[s->n_versions++];
    memcpy(v->parts, s->ctl, sizeof v->parts);
    memcpy(v->fenced, s->fenced, sizeof v->fenced);
    memcpy(v->incarnation, s->ctl_incarnation, sizeof v->incarnation);
    for (int i = 0; i < s->n_nodes; i++) {
        int64_t prev = s->n_versions > 1 ? v[-1].deliver_at[i] : 0;
        v->deliver_at[i] = MAX(prev, s->now + rnd_range(0, s->meta_delay_ms));
    }
    for (int k = 0; k < s->n_parts; k++) {
        const struct meta *m = &s->ctl[k];
        size_t e = (size_t)m->leader_epoch;
        if (e >= s->cap_epoch[k]) {
            size_t cap = s->cap_epoch[k] ? s->cap_epoch[k] : 16;
            while (cap <= e)
                cap *= 2;
            s->epoch_leader[k] = xrealloc(s->epoch_leader[k], cap * sizeof(int32_t));
            for (size_t i = s->cap_epoch[k]; i < cap; i++)
                s->epoch_leader[k][i] = -2;
            s->cap_epoch[k] = cap;
        }
        if (s->epoch_leader[k][e] == -2)
            s->epoch_leader[k][e] = m->leader;
        else if (s->epoch_leader[k][e] != m->leader)
            SIM_FAILF(s, "simulator: controller gave p%d epoch %zu to %d and %d", k, e,
                      s->epoch_leader[k][e], m->leader);
        char isr[64];
        TRACE(s, "  v%zu p%d: leader %d epoch %d pe %d isr %s", s->n_versions - 1, k, m->leader,
              m->leader_epoch, m->partition_epoch, ids_str(m->isr, m->n_isr, isr, sizeof isr));
    }
    TRACE(s, "metadata v%zu: %s", s->n_versions - 1, why);
}

static bool may_lead(const struct sim *s, int32_t id, int32_t node, bool fenced)
{
    if (id == node)
        return !fenced;
    return !s->fenced[id - 1];
}

/* brokers.c add_fencing_change, for the simulator's controller. */
static bool fencing_change(struct sim *s, struct meta *p, int32_t node, bool fenced)
{
    bool in_isr = has_id(p->isr, p->n_isr, node);
    if (fenced ? !in_isr && p->leader != node : !in_isr || p->leader != -1)
        return false;
    struct meta np = *p;
    np.n_isr = 0;
    for (int32_t i = 0; i < p->n_isr; i++)
        if (!fenced || p->isr[i] != node || p->n_isr == 1)
            np.isr[np.n_isr++] = p->isr[i];
    if (p->leader == -1 || (fenced && p->leader == node)) {
        np.leader = -1;
        for (int32_t r = 0; r < p->n_replicas && np.leader == -1; r++)
            if (has_id(np.isr, np.n_isr, p->replicas[r]) &&
                may_lead(s, p->replicas[r], node, fenced))
                np.leader = p->replicas[r];
    }
    bool new_isr = np.n_isr != p->n_isr;
    if (np.leader == p->leader && !new_isr)
        return false;
    if (np.leader != p->leader) {
        np.leader_epoch = p->leader_epoch + 1;
        s->elections++;
    }
    np.partition_epoch = p->partition_epoch + 1;
    if (new_isr)
        s->isr_shrinks++;
    *p = np;
    return true;
}

static void set_fenced(struct sim *s, int i, bool fenced, const char *why)
{
    bool was = s->fenced[i];
    s->fenced[i] = fenced;
    bool any = false;
    for (int k = 0; k < s->n_parts; k++)
        if (has_id(s->ctl[k].replicas, s->ctl[k].n_replicas, i + 1))
            any |= fencing_change(s, &s->ctl[k], i + 1, fenced);
    if (was != fenced || any) {
        char line[96];
        snprintf(line, sizeof line, "node %d %s (%s)", i + 1, fenced ? "fenced" : "unfenced", why);
        publish(s, line);
    }
}

static void send_msg(struct sim *s, const struct msg *m);

/* A heartbeat; one from a new incarnation registers it, fenced (brokers.c). */
static void ctl_heartbeat(struct sim *s, const struct msg *m)
{
    int i = m->from;
    if (m->incarnation < s->ctl_incarnation[i])
        return;
    s->last_hb[i] = s->now;
    if (m->incarnation > s->ctl_incarnation[i]) {
        s->ctl_incarnation[i] = m->incarnation;
        set_fenced(s, i, true, "registers again");
        return;
    }
    if (s->fenced[i])
        set_fenced(s, i, false, "heartbeat");
}

/* cluster.c check_alter_partition and build_change_partition, for the simulator. */
static void ctl_alter(struct sim *s, const struct msg *m)
{
    struct msg r = {
        .kind = M_ALTER_RESP, .from = CTRL, .to = m->from, .id = m->id, .part = m->part};
    struct meta *p = &s->ctl[m->part];
    int32_t id = m->from + 1;
    const char *why = NULL;
    r.partition_epoch = INT32_MAX;
    if (m->incarnation != s->ctl_incarnation[m->from]) {
        why = "stale broker epoch";
    } else {
        r.partition_epoch = p->partition_epoch;
        if (p->leader != id || p->leader_epoch != m->leader_epoch)
            why = "not the leader at that epoch";
        else if (p->partition_epoch != m->partition_epoch)
            why = "partition epoch moved on";
        for (int32_t i = 0; i < m->n_isr && !why; i++)
            if (s->fenced[m->isr[i] - 1] || !has_id(p->replicas, p->n_replicas, m->isr[i]))
                why = "ineligible replica";
        if (!why && !has_id(m->isr, m->n_isr, p->leader))
            why = "the leader must be in sync";
    }
    r.ok = why == NULL;
    if (!why &&
        (m->n_isr != p->n_isr || memcmp(m->isr, p->isr, sizeof(int32_t) * (size_t)m->n_isr))) {
        if (m->n_isr < p->n_isr)
            s->isr_shrinks++;
        else
            s->isr_expands++;
        p->n_isr = m->n_isr;
        memcpy(p->isr, m->isr, sizeof(int32_t) * (size_t)m->n_isr);
        p->partition_epoch++;
        r.partition_epoch = p->partition_epoch;
        char line[96], isr[64];
        snprintf(line, sizeof line, "AlterPartition from node %d: p%d isr %s", id, m->part,
                 ids_str(m->isr, m->n_isr, isr, sizeof isr));
        publish(s, line);
    } else if (why) {
        TRACE(s, "controller refuses AlterPartition of node %d for p%d: %s", id, m->part, why);
    }
    send_msg(s, &r);
}

static void ctl_expire_sessions(struct sim *s)
{
    for (int i = 0; i < s->n_nodes; i++)
        if (!s->fenced[i] && s->now - s->last_hb[i] > s->session_ms)
            set_fenced(s, i, true, "session expired");
}

/* ---- the network ---- */

static bool link_blocked(const struct sim *s, int from, int to)
{
    return from != CLIENT && to != CLIENT && s->blocked[from][to];
}

static void copy_msg(struct msg *dst, const struct msg *src)
{
    *dst = *src;
    for (int32_t i = 0; i < src->n && src->kind == M_FETCH_RESP; i++) {
        if (src->fa[i].len) {
            dst->fa[i].records = xmalloc(src->fa[i].len);
            memcpy(dst->fa[i].records, src->fa[i].records, src->fa[i].len);
        }
    }
}

static void free_msg(struct msg *m)
{
    for (int32_t i = 0; i < m->n && m->kind == M_FETCH_RESP; i++)
        free(m->fa[i].records);
}

static void push_msg(struct sim *s, const struct msg *m)
{
    if (s->n_net == s->cap_net) {
        s->cap_net = s->cap_net ? s->cap_net * 2 : 64;
        s->net = xrealloc(s->net, s->cap_net * sizeof *s->net);
    }
    struct msg *q = &s->net[s->n_net++];
    copy_msg(q, m);
    q->at = s->now + rnd_range(1, s->max_delay_ms);
    q->seq = s->seq++;
}

/* Sends a copy of m (m stays the caller's): dropped, delayed, sometimes twice. */
static void send_msg(struct sim *s, const struct msg *m)
{
    if (link_blocked(s, m->from, m->to) || chance(s->drop_pm))
        return;
    push_msg(s, m);
    if (chance(s->dup_pm))
        push_msg(s, m);
}

/* ---- nodes: sync rounds ---- */

static void want_sync(struct node *n, int part)
{
    n->sync_wanted[part] = true;
}

/* commit.c server_after_append: fetches waiting for data retry; a leader's high
 * watermark may move; the data wants a sync (acks=all, and followers). */
static void after_append(struct node *n, int part)
{
    struct partition *p = n->p[part];
    n->data_gen[part]++;
    if (p->role == PARTITION_LEADER && partition_leader_appended(p))
        n->data_gen[part]++;
    want_sync(n, part);
}

static void round_start(struct sim *s, struct node *n)
{
    if (n->round_in_flight)
        return;
    bool any = false;
    for (int k = 0; k < s->n_parts; k++) {
        if (!n->sync_wanted[k] || !n->p[k])
            continue;
        n->sync_wanted[k] = false;
        int rc = log_flush_prepare(n->p[k]->log, &n->job[k]);
        if (rc != 0) {
            SIM_FAILF(s, "node %d p%d: log_flush_prepare: %s", n->id, k, storage_strerror(rc));
            return;
        }
        n->job_on[k] = true;
        any = true;
    }
    if (any) {
        n->round_in_flight = true;
        n->round_done_at = s->now + rnd_range(1, s->disk_max_ms);
    }
}

static void round_done(struct sim *s, struct node *n)
{
    n->round_in_flight = false;
    for (int k = 0; k < s->n_parts; k++) {
        if (!n->job_on[k])
            continue;
        n->job_on[k] = false;
        log_flush_execute(&n->job[k]);
        int rc = log_flush_complete(n->p[k]->log, &n->job[k]);
        if (rc != 0) {
            SIM_FAILF(s, "node %d p%d: sync failed: %s", n->id, k, storage_strerror(rc));
            return;
        }
        n->stable[k] = MAX(n->stable[k], log_durable_offset(n->p[k]->log));
        s->syncs++;
    }
}

/* ---- nodes: following (replication.c) ---- */

static void rest(struct sim *s, struct source *src, int64_t ms)
{
    if (!src->timer_at)
        src->timer_at = s->now + MAX(ms, 1);
}

static struct partition *followed_partition(struct node *n, int leader, int part)
{
    struct partition *p = n->p[part];
    return p && p->role == PARTITION_FOLLOWER && p->leader_id == leader + 1 ? p : NULL;
}

static void source_fetch(struct sim *s, struct node *n, int leader)
{
    struct source *src = &n->src[leader];
    if (src->in_flight || src->syncing || src->timer_at)
        return;
    int64_t now = node_now(s, n);
    int64_t next_rest = INT64_MAX;
    struct msg m = {.kind = M_FETCH, .from = n->index, .to = leader, .incarnation = n->incarnation};
    for (int k = 0; k < s->n_parts; k++) {
        if (!src->followed[k])
            continue;
        struct partition *p = followed_partition(n, leader, k);
        if (!p) {
            src->followed[k] = false;
            continue;
        }
        if (src->rest_until[k] > now) {
            next_rest = MIN(next_rest, src->rest_until[k]);
            continue;
        }
        m.fp[m.n++] = (struct fetch_part){k, p->leader_epoch, log_latest_epoch(p->log),
                                          log_end_offset(p->log)};
    }
    if (m.n == 0) {
        if (next_rest != INT64_MAX)
            rest(s, src, next_rest - now);
        return;
    }
    if (n->fenced_view[leader]) { /* connect_source: no address for a fenced broker */
        rest(s, src, s->backoff_ms);
        return;
    }
    m.id = ++s->next_id;
    src->in_flight = true;
    src->req_id = m.id;
    src->timeout_at = s->now + FETCH_TIMEOUT_MS;
    send_msg(s, &m);
}

static void replication_follow(struct sim *s, struct node *n, int part)
{
    struct partition *p = n->p[part];
    int leader = p->leader_id - 1;
    struct source *src = &n->src[leader];
    src->followed[part] = true;
    src->rest_until[part] = 0;
    if (src->timer_at && !src->in_flight && !src->syncing)
        src->timer_at = 0;
    rest(s, src, 1);
}

/* replication.c append_records: what the records add at the log end
 * (partition_append_fetched), kept in the node's shadow too. */
static int append_records(struct sim *s, struct node *n, int part, const uint8_t *records,
                          size_t len, bool *appended)
{
    struct slice done;
    int rc = partition_append_fetched(n->p[part], records, len, node_now(s, n), &done);
    if (rc != 0 || done.len == 0)
        return rc;
    shadow_push(s, n, part, done.ptr, done.len);
    *appended = true;
    after_append(n, part);
    return 0;
}

static void truncate_shadow(struct sim *s, struct node *n, int part)
{
    struct shadow *sh = &n->sh[part];
    int64_t end = log_end_offset(n->p[part]->log);
    size_t before = sh->n;
    while (sh->n > 0 && sh->e[sh->n - 1].last >= end)
        sh->n--;
    if (shadow_end(sh) != end)
        SIM_FAILF(s, "node %d p%d: truncated to %lld, not a batch boundary of the log", n->id, part,
                  (long long)end);
    if (sh->n != before) {
        sh->gen = ++s->gens;
        s->truncated_batches += before - sh->n;
    }
    n->stable[part] = MIN(n->stable[part], end);
}

/* replication.c take_partition. Returns true when p took records. */
static bool take_partition(struct sim *s, struct node *n, int leader, const struct fetch_answer *fa)
{
    struct source *src = &n->src[leader];
    struct partition *p = n->p[fa->part];
    int64_t now = node_now(s, n);
    if (fa->error != KERR_NONE) {
        src->rest_until[fa->part] = now + s->backoff_ms;
        return false;
    }
    if (fa->div_epoch >= 0 || fa->div_end >= 0) {
        int64_t to = partition_truncation_offset(p, fa->div_epoch, fa->div_end);
        TRACE(s,
              "node %d p%d: diverges from leader %d after epoch %d (ends at %lld there); "
              "truncating from %lld to %lld",
              n->id, fa->part, leader + 1, fa->div_epoch, (long long)fa->div_end,
              (long long)log_end_offset(p->log), (long long)to);
        int rc = partition_truncate(p, to);
        if (rc != 0)
            SIM_FAILF(s, "node %d p%d: truncating to %lld: %s", n->id, fa->part, (long long)to,
                      storage_strerror(rc));
        s->truncations++;
        truncate_shadow(s, n, fa->part);
        return false;
    }
    bool appended = false;
    int rc = fa->len > 0 ? append_records(s, n, fa->part, fa->records, fa->len, &appended) : 0;
    if (rc != 0) {
        TRACE(s, "node %d p%d: appending from leader %d failed: %s", n->id, fa->part, leader + 1,
              storage_strerror(rc));
        src->rest_until[fa->part] = now + s->backoff_ms;
    }
    partition_follower_high_watermark(p, fa->hw);
    return appended;
}

static void on_fetch_answer(struct sim *s, struct node *n, const struct msg *m)
{
    int leader = m->from;
    struct source *src = &n->src[leader];
    if (!src->in_flight || src->req_id != m->id)
        return; /* an answer on a connection given up, or a duplicate */
    src->in_flight = false;
    bool wait = false;
    for (int32_t i = 0; i < m->n && !s->fail; i++) {
        const struct fetch_answer *fa = &m->fa[i];
        if (!src->followed[fa->part] || !followed_partition(n, leader, fa->part))
            continue;
        if (!take_partition(s, n, leader, fa))
            continue;
        src->wait_on[fa->part] = true;
        src->wait_offset[fa->part] = log_end_offset(n->p[fa->part]->log);
        wait = true;
    }
    if (wait) {
        src->syncing = true;
        return;
    }
    source_fetch(s, n, leader);
}

/* commit.c item_done for a source's durable wait. */
static void source_synced_check(struct sim *s, struct node *n, int leader)
{
    struct source *src = &n->src[leader];
    if (!src->syncing)
        return;
    for (int k = 0; k < s->n_parts; k++)
        if (src->wait_on[k] && n->p[k] && log_durable_offset(n->p[k]->log) < src->wait_offset[k])
            return;
    for (int k = 0; k < s->n_parts; k++)
        src->wait_on[k] = false;
    src->syncing = false;
    source_fetch(s, n, leader);
}

/* ---- nodes: ISR (alter_partition.c) ---- */

#define ISR_RESEND_MS 1000 /* alter_partition.c */

enum isr_outcome { ISR_WRITTEN, ISR_REFUSED, ISR_NO_ANSWER };

/* alter_partition.c isr_answered: only the newest request's answer counts; a refusal at
 * a newer partition epoch than this node knows keeps the pending ISR until the metadata
 * says what became of it; no answer resends the same request later. */
static void isr_answered(struct sim *s, struct node *n, int part, uint64_t id, enum isr_outcome how,
                         int32_t partition_epoch)
{
    struct partition *p = n->p[part];
    if (!p || p->isr_request_id != id || p->pending_isr_count == 0)
        return;
    int64_t now = node_now(s, n);
    if (how == ISR_NO_ANSWER) {
        p->isr_retry_at_ms = now + ISR_RESEND_MS;
    } else if (how == ISR_WRITTEN || partition_epoch > p->partition_epoch) {
        if (p->partition_epoch >= partition_epoch)
            partition_isr_answered(p);
    } else {
        partition_isr_answered(p);
        p->isr_retry_at_ms = now + s->backoff_ms;
    }
}

/* alter_partition.c send_pending: p's pending ISR to the controller. */
static void send_pending(struct sim *s, struct node *n, int part)
{
    struct partition *p = n->p[part];
    uint64_t id = ++s->next_id;
    p->isr_request_id = id;
    p->isr_retry_at_ms = 0;
    struct alter_out *slot = NULL;
    for (int i = 0; i < MAX_ALTERS && !slot; i++)
        if (!n->alters[i].used)
            slot = &n->alters[i];
    if (!slot || link_blocked(s, n->index, CTRL)) { /* not sent: no connection */
        isr_answered(s, n, part, id, ISR_NO_ANSWER, -1);
        return;
    }
    struct msg m = {.kind = M_ALTER,
                    .from = n->index,
                    .to = CTRL,
                    .id = id,
                    .incarnation = n->incarnation,
                    .part = part,
                    .leader_epoch = p->leader_epoch,
                    .partition_epoch = p->partition_epoch,
                    .n_isr = p->pending_isr_count};
    memcpy(m.isr, p->pending_isr, sizeof(int32_t) * (size_t)p->pending_isr_count);
    *slot = (struct alter_out){true, m.id, part, s->now + ALTER_TIMEOUT_MS};
    send_msg(s, &m);
}

/* alter_partition.c server_isr_check. */
static void isr_check(struct sim *s, struct node *n, int part, int32_t fetched_from)
{
    struct partition *p = n->p[part];
    int64_t now = node_now(s, n);
    if (p->pending_isr_count > 0) {
        if (p->isr_retry_at_ms && now >= p->isr_retry_at_ms)
            send_pending(s, n, part);
        return;
    }
    if (p->isr_retry_at_ms && now < p->isr_retry_at_ms)
        return;
    int32_t isr[MAX_NODES], count = 0;
    if (!partition_isr_change(p, now, s->lag_max_ms, fetched_from, isr, &count))
        return;
    char line[64];
    TRACE(s, "node %d p%d: asks for isr %s (now %d, epochs %d/%d)", n->id, part,
          ids_str(isr, count, line, sizeof line), p->isr_count, p->leader_epoch,
          p->partition_epoch);
    partition_isr_requested(p, isr, count);
    send_pending(s, n, part);
}

static void on_alter_answer(struct sim *s, struct node *n, const struct msg *m)
{
    for (int i = 0; i < MAX_ALTERS; i++) {
        struct alter_out *a = &n->alters[i];
        if (a->used && a->id == m->id) {
            a->used = false;
            /* A stale broker epoch is a top-level error: as no answer. */
            enum isr_outcome how = m->partition_epoch == INT32_MAX ? ISR_NO_ANSWER
                                   : m->ok                         ? ISR_WRITTEN
                                                                   : ISR_REFUSED;
            isr_answered(s, n, a->part, m->id, how, m->partition_epoch);
            return;
        }
    }
}

/* ---- nodes: the leader's side of Fetch (fetch.c) ---- */

/* fetch.c attempt: answers the Fetch (true) or leaves it to be parked (false). */
static bool leader_fetch(struct sim *s, struct node *n, const struct msg *req, bool final)
{
    struct msg r = {
        .kind = M_FETCH_RESP, .from = n->index, .to = req->from, .id = req->id, .n = req->n};
    int64_t total = 0;
    bool any_error = false;
    struct log_read_result rr[MAX_PARTS];
    int32_t replica_id = req->from + 1;
    for (int32_t i = 0; i < req->n; i++) {
        const struct fetch_part *fp = &req->fp[i];
        struct fetch_answer *fa = &r.fa[i];
        *fa = (struct fetch_answer){.part = fp->part, .div_epoch = -1, .div_end = -1, .hw = -1};
        rr[i] = (struct log_read_result){.fd = -1};
        struct partition *p = n->p[fp->part];
        if (!p) {
            fa->error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        } else if ((fa->error = partition_check_leader(p, fp->current_epoch)) == KERR_NONE) {
            /* follower_fetch */
            if (replica_id == n->id || !partition_has_replica(p, replica_id)) {
                fa->error = KERR_NOT_LEADER_OR_FOLLOWER;
            } else if (partition_diverging(p, fp->fetch_offset, fp->last_fetched_epoch,
                                           &fa->div_epoch, &fa->div_end)) {
                any_error = true;
                continue;
            } else if (fp->fetch_offset < log_start_offset(p->log) ||
                       fp->fetch_offset > log_end_offset(p->log)) {
                fa->error = KERR_OFFSET_OUT_OF_RANGE;
            } else {
                if (partition_follower_fetched(p, replica_id, fp->fetch_offset, node_now(s, n)))
                    n->data_gen[fp->part]++;
                isr_check(s, n, fp->part, replica_id);
                int rc = log_read(p->log, fp->fetch_offset, s->fetch_max_bytes,
                                  log_end_offset(p->log), &rr[i]);
                if (rc != 0)
                    SIM_FAILF(s, "node %d p%d: log_read at %lld: %s", n->id, fp->part,
                              (long long)fp->fetch_offset, storage_strerror(rc));
                total += rr[i].len;
            }
        }
        any_error |= fa->error != KERR_NONE;
    }
    if (!(final || total > 0 || any_error))
        return false;
    for (int32_t i = 0; i < req->n; i++) {
        struct fetch_answer *fa = &r.fa[i];
        if (fa->error != KERR_NONE)
            continue;
        struct partition *p = n->p[fa->part];
        fa->hw = partition_high_watermark(p);
        if (rr[i].len > 0) {
            fa->len = (size_t)rr[i].len;
            fa->records = xmalloc(fa->len);
            int rc = pread_exact(rr[i].fd, fa->records, fa->len, rr[i].file_pos);
            if (rc != 0)
                SIM_FAILF(s, "node %d p%d: pread: %s", n->id, fa->part, strerror(-rc));
        }
    }
    storage_read_turn_end();
    send_msg(s, &r);
    free_msg(&r);
    return true;
}

static void on_fetch(struct sim *s, struct node *n, const struct msg *m)
{
    if (leader_fetch(s, n, m, false))
        return;
    for (int i = 0; i < MAX_PARKED; i++) {
        struct parked *pk = &n->parked[i];
        if (pk->used)
            continue;
        pk->used = true;
        pk->req = *m;
        pk->deadline = s->now + MAX_WAIT_MS;
        memcpy(pk->data_gen, n->data_gen, sizeof pk->data_gen);
        return;
    }
    leader_fetch(s, n, m, true); /* no room to park: an empty answer now */
}

static void parked_retry(struct sim *s, struct node *n)
{
    for (int i = 0; i < MAX_PARKED && !s->fail; i++) {
        struct parked *pk = &n->parked[i];
        if (!pk->used)
            continue;
        bool notified = false;
        for (int32_t k = 0; k < pk->req.n; k++)
            notified |= pk->data_gen[pk->req.fp[k].part] != n->data_gen[pk->req.fp[k].part];
        bool final = s->now >= pk->deadline;
        if (!notified && !final)
            continue;
        memcpy(pk->data_gen, n->data_gen, sizeof pk->data_gen);
        if (leader_fetch(s, n, &pk->req, final))
            pk->used = false;
    }
}

/* ---- nodes: produce (produce.c, commit.c) ---- */

static void on_produce(struct sim *s, struct node *n, const struct msg *m)
{
    struct partition *p = n->p[m->part];
    if (!p || partition_check_leader(p, -1) != KERR_NONE) {
        s->not_leader++;
        return;
    }
    if (MAX(p->isr_count, 1) < settings.min_insync_replicas) {
        s->not_enough++;
        return;
    }
    char values[3][48];
    struct record_in recs[3];
    int count = (int)rnd_range(1, 3);
    for (int i = 0; i < count; i++) {
        snprintf(values[i], sizeof values[i], "p%d-value-%llu-%d", m->part,
                 (unsigned long long)m->value_no, i);
        recs[i] = (struct record_in){slice_from_cstr("key"), slice_from_cstr(values[i])};
    }
    struct buf b;
    buf_init(&b);
    batch_encode(&b, recs, (size_t)count, FAKE_WALL_START_MS + s->now);
    struct log_append_result res;
    int rc = partition_append_as_leader(p, b.data, b.len, node_now(s, n), &res);
    if (rc != 0) {
        SIM_FAILF(s, "node %d p%d: append as leader: %s", n->id, m->part, storage_strerror(rc));
        buf_free(&b);
        return;
    }
    shadow_push(s, n, m->part, b.data, b.len);
    const struct entry *e = &n->sh[m->part].e[n->sh[m->part].n - 1];
    if (n->n_waits == n->cap_waits) {
        n->cap_waits = n->cap_waits ? n->cap_waits * 2 : 32;
        n->waits = xrealloc(n->waits, n->cap_waits * sizeof *n->waits);
    }
    n->waits[n->n_waits++] = (struct produce_wait){m->part, res.base_offset, res.last_offset + 1,
                                                   e->hash, m->value_no,     false};
    s->produced++;
    TRACE(s, "node %d p%d: value %llu appended at %lld..%lld, epoch %d", n->id, m->part,
          (unsigned long long)m->value_no, (long long)res.base_offset, (long long)res.last_offset,
          p->leader_epoch);
    buf_free(&b);
    after_append(n, m->part);
}

/* commit.c item_done and wait_finish, each produce wait. */
static void produce_waits(struct sim *s, struct node *n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n->n_waits; i++) {
        struct produce_wait *w = &n->waits[i];
        struct partition *p = n->p[w->part];
        if (w->failed) {
            s->not_leader++;
            continue;
        }
        if (log_durable_offset(p->log) < w->end || partition_high_watermark(p) < w->end) {
            n->waits[kept++] = *w;
            continue;
        }
        if (p->isr_count < settings.min_insync_replicas) {
            s->not_enough_after++;
            continue;
        }
        size_t *na = &s->n_acked[w->part];
        if (*na == s->cap_acked[w->part]) {
            s->cap_acked[w->part] = s->cap_acked[w->part] ? s->cap_acked[w->part] * 2 : 64;
            s->acked[w->part] =
                xrealloc(s->acked[w->part], s->cap_acked[w->part] * sizeof *s->acked[w->part]);
        }
        s->acked[w->part][(*na)++] = (struct acked){w->base, w->end - 1, w->hash, w->value_no};
        s->n_acks++;
        TRACE(s, "node %d p%d: value %llu at %lld..%lld acknowledged (hw %lld, isr %d, epoch %d)",
              n->id, w->part, (unsigned long long)w->value_no, (long long)w->base,
              (long long)(w->end - 1), (long long)partition_high_watermark(p), p->isr_count,
              p->leader_epoch);
    }
    n->n_waits = kept;
}

/* ---- nodes: metadata (partitions.c follow_metadata) ---- */

/* quorum_link.c server_may_lead: this process's registration, unfenced, is in the
 * metadata this node has applied. */
static bool node_may_lead(const struct node *n)
{
    return !n->fenced_view[n->index] && n->incarnation_view[n->index] == n->incarnation;
}

static void follow_metadata(struct sim *s, struct node *n, int part, const struct meta *mp)
{
    struct partition *p = n->p[part];
    int32_t self = n->id;
    if (mp->leader == self && node_may_lead(n)) {
        bool new_term = p->role != PARTITION_LEADER || p->leader_epoch != mp->leader_epoch;
        partition_become_leader(p, mp->leader_epoch);
        if (partition_set_assignment(p, self, mp->leader, mp->partition_epoch, mp->replicas,
                                     mp->n_replicas, mp->isr, mp->n_isr))
            n->data_gen[part]++;
        if (new_term)
            TRACE(s, "node %d p%d: leads at epoch %d (log end %lld, hw %lld)", n->id, part,
                  mp->leader_epoch, (long long)log_end_offset(p->log),
                  (long long)partition_high_watermark(p));
        return;
    }
    bool was_leader = p->role == PARTITION_LEADER;
    partition_become_follower(p, mp->leader_epoch);
    partition_set_assignment(p, self, mp->leader, mp->partition_epoch, mp->replicas, mp->n_replicas,
                             mp->isr, mp->n_isr);
    if (was_leader) {
        for (size_t i = 0; i < n->n_waits; i++)
            if (n->waits[i].part == part)
                n->waits[i].failed = true;
        n->data_gen[part]++;
        TRACE(s, "node %d p%d: follows %d at epoch %d", n->id, part, mp->leader, mp->leader_epoch);
    }
    if (mp->leader >= 0 && mp->leader != self)
        replication_follow(s, n, part);
}

static void apply_version(struct sim *s, struct node *n, size_t v, bool all)
{
    const struct version *ver = &s->versions[v];
    memcpy(n->fenced_view, ver->fenced, sizeof n->fenced_view);
    memcpy(n->incarnation_view, ver->incarnation, sizeof n->incarnation_view);
    for (int k = 0; k < s->n_parts; k++) {
        if (!n->p[k])
            continue;
        if (!all && v > 0 &&
            memcmp(&ver->parts[k], &s->versions[v - 1].parts[k], sizeof ver->parts[k]) == 0)
            continue;
        follow_metadata(s, n, k, &ver->parts[k]);
    }
}

static void deliver_metadata(struct sim *s, struct node *n)
{
    while (n->version < s->n_versions && !s->fail) {
        const struct version *v = &s->versions[n->version];
        if (v->deliver_at[n->index] > s->now || link_blocked(s, CTRL, n->index))
            return;
        apply_version(s, n, n->version++, false);
    }
}

/* ---- nodes: start, crash ---- */

static void open_partitions(struct sim *s, struct node *n)
{
    for (int k = 0; k < s->n_parts; k++) {
        if (!has_id(s->ctl[k].replicas, s->ctl[k].n_replicas, n->id))
            continue;
        char dir[400], id[32];
        snprintf(dir, sizeof dir, "%s/t-%d", n->dir, k);
        snprintf(id, sizeof id, "AAAAAAAAAAAAAAAAAAAAA%c", 'A' + k);
        struct partition_spec spec = {.dir = dir,
                                      .topic = "t",
                                      .settings = &settings,
                                      .index = k,
                                      .topic_id = id,
                                      .log = s->log_cfg,
                                      .recovery_point = -1,
                                      .start_offset = -1};
        int rc = partition_open(&spec, &n->p[k]);
        if (rc != 0) {
            SIM_FAILF(s, "node %d p%d: partition_open: %s", n->id, k, storage_strerror(rc));
            return;
        }
        struct shadow disk;
        read_log(s, n, k, &disk);
        free(n->sh[k].e);
        n->sh[k] = disk;
        n->sh[k].gen = ++s->gens;
        if (n->stable[k] > shadow_end(&disk))
            SIM_FAILF(s, "node %d p%d: reopened with log end %lld, below its stable %lld", n->id, k,
                      (long long)shadow_end(&disk), (long long)n->stable[k]);
        n->hw_epoch[k] = -1;
    }
}

static void node_start(struct sim *s, struct node *n)
{
    n->up = true;
    n->restart_at = 0;
    n->incarnation++;
    open_partitions(s, n);
    if (s->fail)
        return;
    /* The metadata this node had applied before it went down (its metadata log), as
     * server.c opens partitions at start-up: roles included, but no leadership until
     * its new registration is in the metadata, unfenced (may_lead). */
    if (n->version > 0)
        apply_version(s, n, n->version - 1, true);
    n->next_heartbeat = s->now;
    n->next_isr_check = node_now(s, n) + s->lag_max_ms / 2;
    TRACE(s, "node %d starts (incarnation %d, metadata v%zu)", n->id, n->incarnation,
          n->version ? n->version - 1 : 0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void unlink_segment(const char *dir, int64_t base)
{
    static const char *const suffixes[] = {".log", ".index", ".timeindex", ".snapshot"};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%020lld%s", dir, (long long)base, suffixes[i]);
        unlink(path);
    }
}

/* What a power loss leaves of a log dir whose bytes below keep are on stable storage
 * (and, past keep, torn bytes of the next batch when torn > 0): the segment holding keep
 * cut there, later ones gone. */
static void cut_log_files(struct sim *s, const char *dir, int64_t keep, bool torn)
{
    DIR *d = opendir(dir);
    if (!d) {
        SIM_FAILF(s, "opendir %.300s: %s", dir, strerror(errno));
        return;
    }
    int64_t bases[4096];
    size_t nb = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nb < 4096) {
        size_t len = strlen(de->d_name);
        if (len == 24 && strcmp(de->d_name + 20, ".log") == 0)
            bases[nb++] = strtoll(de->d_name, NULL, 10);
    }
    closedir(d);
    qsort(bases, nb, sizeof *bases, cmp_i64);
    bool cut = false;
    for (size_t i = 0; i < nb; i++) {
        if (cut || (bases[i] >= keep && bases[i] > 0)) {
            unlink_segment(dir, bases[i]);
            cut = true;
            continue;
        }
        char path[600];
        snprintf(path, sizeof path, "%s/%020lld.log", dir, (long long)bases[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            SIM_FAILF(s, "fopen %.300s: %s", path, strerror(errno));
            return;
        }
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = xmalloc((size_t)MAX(size, 1));
        size_t got = fread(buf, 1, (size_t)size, f);
        fclose(f);
        size_t pos = 0;
        while (pos + BATCH_LOG_OVERHEAD <= got) {
            struct batch_info bi;
            if (batch_parse_header(buf + pos, got - pos, &bi) != 0)
                break;
            if (bi.base_offset >= keep) {
                size_t to = pos;
                if (torn && bi.size_bytes > 1)
                    to += (size_t)rnd_range(1, (int64_t)bi.size_bytes - 1);
                if (truncate(path, (off_t)to) != 0)
                    SIM_FAILF(s, "truncate %.300s: %s", path, strerror(errno));
                cut = true;
                break;
            }
            pos += bi.size_bytes;
        }
        free(buf);
    }
}

/* Frees p without syncing anything (partition_close would fsync). */
static void drop_partition(struct partition *p)
{
    log_discard(p->log);
    free(p->replicas);
    free(p->isr);
    free(p->followers);
    free(p->pending_isr);
    free(p);
}

/* kill -9 (power false: the page cache survives) or a power loss. */
static void node_crash(struct sim *s, struct node *n, bool power)
{
    TRACE(s, "node %d %s", n->id, power ? "loses power" : "is killed");
    for (int k = 0; k < s->n_parts; k++) {
        struct partition *p = n->p[k];
        if (!p)
            continue;
        if (n->job_on[k])
            log_flush_abandon(&n->job[k]);
        n->job_on[k] = false;
        int64_t end = log_end_offset(p->log);
        int64_t keep = end;
        bool torn = false;
        if (power) {
            /* Usually only what was synced; sometimes more of the page cache made it to
             * the disk, a prefix of whole batches, maybe with a torn one after it. */
            keep = n->stable[k];
            if (chance(400)) {
                size_t from = shadow_index(&n->sh[k], keep);
                size_t extra = from < n->sh[k].n ? (size_t)rnd_n(n->sh[k].n - from + 1) : 0;
                if (extra > 0)
                    keep = n->sh[k].e[from + extra - 1].last + 1;
            }
            torn = keep < end && chance(300);
            TRACE(s, "  p%d: log end %lld, stable %lld, keeps %lld%s", k, (long long)end,
                  (long long)n->stable[k], (long long)keep, torn ? " and a torn batch" : "");
            n->stable[k] = keep;
        }
        drop_partition(p);
        n->p[k] = NULL;
        if (power) {
            char dir[400];
            snprintf(dir, sizeof dir, "%s/t-%d", n->dir, k);
            cut_log_files(s, dir, keep, torn);
        }
        n->sync_wanted[k] = false;
    }
    s->lost_waits += n->n_waits;
    n->n_waits = 0;
    n->round_in_flight = false;
    memset(n->src, 0, sizeof n->src);
    memset(n->parked, 0, sizeof n->parked);
    memset(n->alters, 0, sizeof n->alters);
    n->up = false;
    s->crashes++;
    s->power_losses += power;
}

/* ---- delivery ---- */

static int cmp_msg(const void *a, const void *b)
{
    const struct msg *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void deliver(struct sim *s, struct msg *m)
{
    if (link_blocked(s, m->from, m->to))
        return; /* a partition that began while it travelled */
    s->messages++;
    if (m->to == CTRL) {
        if (m->kind == M_HEARTBEAT)
            ctl_heartbeat(s, m);
        else if (m->kind == M_ALTER)
            ctl_alter(s, m);
        return;
    }
    struct node *n = &s->nodes[m->to];
    if (!n->up)
        return;
    switch (m->kind) {
    case M_FETCH: on_fetch(s, n, m); break;
    case M_FETCH_RESP: on_fetch_answer(s, n, m); break;
    case M_ALTER_RESP: on_alter_answer(s, n, m); break;
    case M_PRODUCE: on_produce(s, n, m); break;
    default: SIM_FAILF(s, "simulator: %s delivered to node %d", msg_names[m->kind], n->id);
    }
}

static void net_deliver(struct sim *s)
{
    size_t due = 0;
    for (size_t i = 0; i < s->n_net; i++)
        due += s->net[i].at <= s->now;
    if (!due)
        return;
    struct msg *batch = xmalloc(due * sizeof *batch);
    size_t nb = 0, kept = 0;
    for (size_t i = 0; i < s->n_net; i++) {
        if (s->net[i].at <= s->now)
            batch[nb++] = s->net[i];
        else
            s->net[kept++] = s->net[i];
    }
    s->n_net = kept;
    qsort(batch, nb, sizeof *batch, cmp_msg);
    for (size_t i = 0; i < nb; i++) {
        if (!s->fail)
            deliver(s, &batch[i]);
        free_msg(&batch[i]);
    }
    free(batch);
}

/* ---- a node's turn ---- */

static void node_tick(struct sim *s, struct node *n)
{
    int64_t now = node_now(s, n);
    if (n->round_in_flight && s->now >= n->round_done_at)
        round_done(s, n);
    for (int l = 0; l < s->n_nodes && !s->fail; l++) {
        struct source *src = &n->src[l];
        source_synced_check(s, n, l);
        if (src->in_flight && s->now >= src->timeout_at) { /* on_close */
            src->in_flight = false;
            rest(s, src, s->backoff_ms);
        }
        if (src->timer_at && s->now >= src->timer_at) {
            src->timer_at = 0;
            source_fetch(s, n, l);
        }
    }
    parked_retry(s, n);
    for (int i = 0; i < MAX_ALTERS; i++) {
        struct alter_out *a = &n->alters[i];
        if (!a->used || s->now < a->timeout_at)
            continue;
        a->used = false; /* the link closes an unanswered request: no answer */
        isr_answered(s, n, a->part, a->id, ISR_NO_ANSWER, -1);
    }
    if (now >= n->next_isr_check) {
        n->next_isr_check = now + MAX(s->lag_max_ms / 2, 1);
        for (int k = 0; k < s->n_parts; k++) {
            struct partition *p = n->p[k];
            if (p && p->role == PARTITION_LEADER && partition_replicated(p))
                isr_check(s, n, k, -1);
        }
    }
    if (now >= n->next_heartbeat) {
        n->next_heartbeat = now + HEARTBEAT_MS;
        struct msg m = {
            .kind = M_HEARTBEAT, .from = n->index, .to = CTRL, .incarnation = n->incarnation};
        send_msg(s, &m);
    }
    produce_waits(s, n);
    round_start(s, n);
}

/* ---- checks ---- */

/* Invariant 1 for node n: every acknowledged batch of part is in its log. */
static void check_acked_in(struct sim *s, struct node *n, int part, const char *role)
{
    const struct shadow *sh = &n->sh[part];
    if (n->ack_gen[part] != sh->gen) {
        n->ack_gen[part] = sh->gen;
        n->ack_checked[part] = 0;
    }
    for (size_t i = n->ack_checked[part]; i < s->n_acked[part]; i++) {
        const struct acked *a = &s->acked[part][i];
        const struct entry *e = shadow_find(sh, a->base);
        if (!e || e->base != a->base || e->last != a->last || e->hash != a->hash) {
            SIM_FAILF(s,
                      "invariant 1: acknowledged value %llu at p%d %lld..%lld is %s in the log "
                      "of node %d (%s; log end %lld)",
                      (unsigned long long)a->value_no, part, (long long)a->base, (long long)a->last,
                      e ? "different" : "missing", n->id, role, (long long)shadow_end(sh));
            return;
        }
    }
    n->ack_checked[part] = s->n_acked[part];
}

/* Invariant 2: leader l and replica m agree below min(l's high watermark, m's end). */
static void check_agree(struct sim *s, struct node *l, struct node *m, int part, int64_t hw)
{
    struct agree *a = &l->agree[part][m->index];
    const struct shadow *ls = &l->sh[part], *ms = &m->sh[part];
    if (a->lgen != ls->gen || a->mgen != ms->gen || a->epoch != l->p[part]->leader_epoch)
        *a = (struct agree){ls->gen, ms->gen, l->p[part]->leader_epoch, 0};
    int64_t limit = MIN(hw, shadow_end(ms));
    size_t i = shadow_index(ls, a->to), j = shadow_index(ms, a->to);
    while (i < ls->n && j < ms->n && ls->e[i].last < limit) {
        const struct entry *x = &ls->e[i], *y = &ms->e[j];
        if (!same_entry(x, y)) {
            SIM_FAILF(s,
                      "invariant 2: below leader %d's high watermark %lld (epoch %d), p%d at "
                      "%lld holds %lld..%lld epoch %d on the leader but %lld..%lld epoch %d on "
                      "in-sync replica %d",
                      l->id, (long long)hw, l->p[part]->leader_epoch, part, (long long)x->base,
                      (long long)x->base, (long long)x->last, x->epoch, (long long)y->base,
                      (long long)y->last, y->epoch, m->id);
            return;
        }
        a->to = x->last + 1;
        i++;
        j++;
    }
}

static void check_leader(struct sim *s, struct node *n, int part)
{
    struct partition *p = n->p[part];
    int32_t e = p->leader_epoch;
    /* 5: the controller gave this epoch to this node. */
    if ((size_t)e >= s->cap_epoch[part] || s->epoch_leader[part][e] != n->id) {
        SIM_FAILF(s, "invariant 5: node %d leads p%d at epoch %d, which the controller gave %d",
                  n->id, part, e, (size_t)e < s->cap_epoch[part] ? s->epoch_leader[part][e] : -2);
        return;
    }
    /* 3: the high watermark never goes back within a term... */
    int64_t hw = partition_high_watermark(p);
    if (n->hw_epoch[part] == e && hw < n->hw_seen[part])
        SIM_FAILF(s,
                  "invariant 3: node %d's high watermark of p%d went back from %lld to %lld "
                  "at epoch %d",
                  n->id, part, (long long)n->hw_seen[part], (long long)hw, e);
    n->hw_epoch[part] = e;
    n->hw_seen[part] = hw;
    /* ... nor passes the log of a live replica the leader counts in sync; and (2) they
     * agree below it. */
    for (int32_t i = 0; i < p->isr_count + p->pending_isr_count && !s->fail; i++) {
        int32_t id = i < p->isr_count ? p->isr[i] : p->pending_isr[i - p->isr_count];
        struct node *m = node_by_id(s, id);
        if (!m || m == n || !m->up || !m->p[part])
            continue;
        if (hw > shadow_end(&m->sh[part]))
            SIM_FAILF(s,
                      "invariant 3: node %d's high watermark of p%d (%lld, epoch %d) is past "
                      "the log end of in-sync replica %d (%lld)",
                      n->id, part, (long long)hw, e, id, (long long)shadow_end(&m->sh[part]));
        else
            check_agree(s, n, m, part, hw);
    }
}

static void check_step(struct sim *s)
{
    for (int k = 0; k < s->n_parts && !s->fail; k++) {
        const struct meta *c = &s->ctl[k];
        for (int i = 0; i < s->n_nodes && !s->fail; i++) {
            struct node *n = &s->nodes[i];
            struct partition *p = n->p[k];
            if (!n->up || !p)
                continue;
            if (p->role == PARTITION_LEADER)
                check_leader(s, n, k);
            bool acting = p->role == PARTITION_LEADER && c->leader == n->id &&
                          p->leader_epoch == c->leader_epoch;
            if (!s->fail && (acting || has_id(c->isr, c->n_isr, n->id)))
                check_acked_in(s, n, k, acting ? "acting leader" : "in the controller's ISR");
        }
    }
    if (s->now % VERIFY_EVERY_MS == 0) {
        for (int i = 0; i < s->n_nodes && !s->fail; i++)
            for (int k = 0; k < s->n_parts && !s->fail; k++)
                if (s->nodes[i].up && s->nodes[i].p[k])
                    verify_shadow(s, &s->nodes[i], k);
    }
}

/* Healed: every partition led, its whole replica set in sync, every log the same, the
 * high watermark at the log end everywhere. */
static bool converged(struct sim *s)
{
    for (int i = 0; i < s->n_nodes; i++)
        if (!s->nodes[i].up || s->fenced[i] || s->nodes[i].version < s->n_versions)
            return false;
    for (int k = 0; k < s->n_parts; k++) {
        const struct meta *c = &s->ctl[k];
        if (c->leader < 0 || c->n_isr != c->n_replicas)
            return false;
        struct node *l = node_by_id(s, c->leader);
        struct partition *lp = l->p[k];
        if (lp->role != PARTITION_LEADER || lp->leader_epoch != c->leader_epoch)
            return false;
        int64_t end = log_end_offset(lp->log);
        for (int32_t r = 0; r < c->n_replicas; r++) {
            struct node *m = node_by_id(s, c->replicas[r]);
            struct partition *mp = m->p[k];
            if (log_end_offset(mp->log) != end || partition_high_watermark(mp) != end ||
                !same_entries(&m->sh[k], &l->sh[k]))
                return false;
        }
    }
    return true;
}

static void dump_state(struct sim *s)
{
    for (int k = 0; k < s->n_parts; k++) {
        const struct meta *c = &s->ctl[k];
        char isr[64], reps[64];
        fprintf(stderr, "  p%d controller: leader %d epoch %d pe %d replicas %s isr %s\n", k,
                c->leader, c->leader_epoch, c->partition_epoch,
                ids_str(c->replicas, c->n_replicas, reps, sizeof reps),
                ids_str(c->isr, c->n_isr, isr, sizeof isr));
        for (int i = 0; i < s->n_nodes; i++) {
            struct node *n = &s->nodes[i];
            struct partition *p = n->p[k];
            if (!n->up || !p) {
                fprintf(stderr, "    node %d: %s\n", n->id, n->up ? "not a replica" : "down");
                continue;
            }
            fprintf(stderr,
                    "    node %d: %s epoch %d pe %d leader %d isr %s pending %d, log end %lld "
                    "durable %lld hw %lld latest epoch %d, metadata v%zu of %zu%s\n",
                    n->id, p->role == PARTITION_LEADER ? "leader" : "follower", p->leader_epoch,
                    p->partition_epoch, p->leader_id,
                    ids_str(p->isr, p->isr_count, isr, sizeof isr), p->pending_isr_count,
                    (long long)log_end_offset(p->log), (long long)log_durable_offset(p->log),
                    (long long)partition_high_watermark(p), log_latest_epoch(p->log), n->version,
                    s->n_versions, s->fenced[i] ? ", fenced" : "");
            for (int l = 0; l < s->n_nodes; l++) {
                const struct source *src = &n->src[l];
                if (src->followed[k])
                    fprintf(stderr, "      source %d: in flight %d syncing %d timer %lld\n", l + 1,
                            src->in_flight, src->syncing, (long long)src->timer_at);
            }
        }
    }
}

/* ---- faults ---- */

static void start_partition(struct sim *s)
{
    /* A random side A of nodes (and maybe the controller) cut from the rest; sometimes
     * only one way. */
    bool side[MAX_NODES + 1];
    int in = 0;
    for (int i = 0; i <= CTRL; i++) {
        side[i] = (i < s->n_nodes || i == CTRL) && chance(400);
        in += side[i];
    }
    if (in == 0)
        side[rnd_n((uint64_t)s->n_nodes)] = true;
    int way = (int)rnd_n(3); /* 0 both, 1 A -> B only, 2 B -> A only */
    for (int a = 0; a <= CTRL; a++) {
        for (int b = 0; b <= CTRL; b++) {
            if ((a >= s->n_nodes && a != CTRL) || (b >= s->n_nodes && b != CTRL) ||
                side[a] == side[b])
                continue;
            if (way == 0 || (way == 1 && side[a]) || (way == 2 && side[b]))
                s->blocked[a][b] = true;
        }
    }
    s->heal_at = s->now + rnd_range(50, 2000);
    char line[64];
    size_t at = 0;
    for (int i = 0; i <= CTRL; i++)
        if (side[i] && (i < s->n_nodes || i == CTRL))
            at += (size_t)snprintf(line + at, sizeof line - at, i == CTRL ? "ctl " : "%d ", i + 1);
    TRACE(s, "network partition: {%s} %s the rest, until %lld", line,
          way == 0   ? "<-/->"
          : way == 1 ? "-/->"
                     : "<-/-",
          (long long)s->heal_at);
}

static void heal(struct sim *s)
{
    memset(s->blocked, 0, sizeof s->blocked);
    s->heal_at = 0;
    TRACE(s, "network healed");
}

static void submit_produce(struct sim *s)
{
    int part = (int)rnd_n((uint64_t)s->n_parts);
    int32_t leader = s->ctl[part].leader;
    int to = leader > 0 && !chance(150) ? leader - 1 : (int)rnd_n((uint64_t)s->n_nodes);
    struct msg m = {
        .kind = M_PRODUCE, .from = CLIENT, .to = to, .part = part, .value_no = ++s->next_value};
    send_msg(s, &m);
}

static void faults(struct sim *s)
{
    if (s->heal_at && s->now >= s->heal_at)
        heal(s);
    if (!s->heal_at && chance(s->partition_pm))
        start_partition(s);
    if (chance(s->crash_pm)) {
        struct node *n = &s->nodes[rnd_n((uint64_t)s->n_nodes)];
        if (n->up) {
            node_crash(s, n, chance(600));
            n->restart_at = s->now + rnd_range(20, 1500);
        }
    }
    if (chance(s->power_all_pm)) {
        TRACE(s, "every node loses power");
        for (int i = 0; i < s->n_nodes && !s->fail; i++) {
            struct node *n = &s->nodes[i];
            if (n->up) {
                node_crash(s, n, true);
                n->restart_at = s->now + rnd_range(20, 800);
            }
        }
    }
    if (chance(s->jump_pm)) {
        struct node *n = &s->nodes[rnd_n((uint64_t)s->n_nodes)];
        int64_t jump = rnd_range(1, MAX_JUMP_MS);
        n->skew += jump;
        TRACE(s, "node %d's clock jumps %lld ms", n->id, (long long)jump);
    }
    if (chance(s->produce_pm))
        submit_produce(s);
}

static void step(struct sim *s, bool chaos)
{
    s->now++;
    time_advance_fake(1);
    storage_read_turn_end();
    for (int i = 0; i < s->n_nodes && !s->fail; i++) {
        struct node *n = &s->nodes[i];
        if (!n->up && n->restart_at && s->now >= n->restart_at)
            node_start(s, n);
    }
    if (!s->fail)
        ctl_expire_sessions(s);
    for (int i = 0; i < s->n_nodes && !s->fail; i++)
        if (s->nodes[i].up)
            deliver_metadata(s, &s->nodes[i]);
    if (!s->fail)
        net_deliver(s);
    for (int i = 0; i < s->n_nodes && !s->fail; i++)
        if (s->nodes[i].up)
            node_tick(s, &s->nodes[i]);
    if (chaos && !s->fail)
        faults(s);
    if (!s->fail)
        check_step(s);
}

/* ---- a run ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void sim_free(struct sim *s)
{
    for (int i = 0; i < s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        for (int k = 0; k < MAX_PARTS; k++) {
            if (n->p[k]) {
                if (n->job_on[k])
                    log_flush_abandon(&n->job[k]);
                drop_partition(n->p[k]);
            }
            free(n->sh[k].e);
        }
        free(n->waits);
    }
    if (s->run_dir[0] && nftw(s->run_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "cannot remove %s: %s\n", s->run_dir, strerror(errno));
    for (size_t i = 0; i < s->n_net; i++)
        free_msg(&s->net[i]);
    free(s->net);
    free(s->versions);
    for (int k = 0; k < MAX_PARTS; k++) {
        free(s->acked[k]);
        free(s->epoch_leader[k]);
    }
    free(s);
    time_clear_fake();
}

static int run_seed(uint64_t seed, struct sim **out)
{
    struct sim *s = xcalloc(1, sizeof *s);
    *out = s;
    s->seed = seed;
    rng_state = mix(seed, 0x7273696dull) | 1;
    time_set_fake(FAKE_MONO_START_MS, FAKE_WALL_START_MS);
    s->n_nodes = chance(750) ? 3 : 5;
    s->n_parts = (int)rnd_range(1, MAX_PARTS);
    s->drop_pm = (uint32_t)rnd_n(60);
    s->dup_pm = (uint32_t)rnd_n(30);
    s->max_delay_ms = rnd_range(1, 20);
    s->meta_delay_ms = rnd_range(0, 60);
    s->disk_max_ms = rnd_range(1, 10);
    s->session_ms = rnd_range(150, 700);
    s->lag_max_ms = rnd_range(100, 600);
    s->backoff_ms = rnd_range(5, 60);
    s->fetch_max_bytes = (int32_t)rnd_range(100, 4000);
    s->crash_pm = (uint32_t)rnd_range(0, 3);
    s->power_all_pm = chance(200) ? 1 : 0;
    s->partition_pm = (uint32_t)rnd_range(0, 3);
    s->produce_pm = (uint32_t)rnd_range(30, 250);
    s->jump_pm = (uint32_t)rnd_range(0, 1);
    log_config_default(&s->log_cfg);
    s->log_cfg.segment_bytes = rnd_range(600, 16384);
    s->log_cfg.index_interval_bytes = 256;
    s->log_cfg.retention_ms = -1;
    int64_t chaos_ms = rnd_range(CHAOS_MIN_MS, CHAOS_MAX_MS);
    TRACE(s,
          "seed %llu: %d nodes, %d partitions, drop %u/1000, dup %u/1000, delay <= %lld ms, "
          "metadata delay <= %lld ms, disk <= %lld ms, session %lld ms, lag max %lld ms, backoff "
          "%lld ms, fetch max %d bytes, segments %lld bytes, crash %u/1000, all lose power "
          "%u/1000, partition %u/1000, produce %u/1000, clock jumps %u/1000 per ms; chaos %lld ms",
          (unsigned long long)seed, s->n_nodes, s->n_parts, s->drop_pm, s->dup_pm,
          (long long)s->max_delay_ms, (long long)s->meta_delay_ms, (long long)s->disk_max_ms,
          (long long)s->session_ms, (long long)s->lag_max_ms, (long long)s->backoff_ms,
          s->fetch_max_bytes, (long long)s->log_cfg.segment_bytes, s->crash_pm, s->power_all_pm,
          s->partition_pm, s->produce_pm, s->jump_pm, (long long)chaos_ms);

    snprintf(s->run_dir, sizeof s->run_dir, "%s/samsa-rsim-XXXXXX", base_dir);
    if (!mkdtemp(s->run_dir)) {
        SIM_FAILF(s, "mkdtemp %s: %s", s->run_dir, strerror(errno));
        s->run_dir[0] = '\0';
        return 1;
    }
    /* The controller's start: every node registered and unfenced; each partition's
     * replicas in a random order (three of five, or all), the first leading at epoch 0. */
    for (int k = 0; k < s->n_parts; k++) {
        struct meta *m = &s->ctl[k];
        int32_t ids[MAX_NODES];
        for (int i = 0; i < s->n_nodes; i++)
            ids[i] = i + 1;
        for (int i = s->n_nodes - 1; i > 0; i--) {
            int j = (int)rnd_n((uint64_t)i + 1);
            int32_t t = ids[i];
            ids[i] = ids[j];
            ids[j] = t;
        }
        m->n_replicas = s->n_nodes == 5 && chance(500) ? 3 : s->n_nodes;
        memcpy(m->replicas, ids, sizeof(int32_t) * (size_t)m->n_replicas);
        memcpy(m->isr, ids, sizeof(int32_t) * (size_t)m->n_replicas);
        m->n_isr = m->n_replicas;
        m->leader = ids[0];
    }
    for (int i = 0; i < s->n_nodes; i++) {
        s->ctl_incarnation[i] = 1;
        s->last_hb[i] = 0;
    }
    publish(s, "the topic is created");
    for (int i = 0; i < s->n_nodes && !s->fail; i++) {
        struct node *n = &s->nodes[i];
        n->index = i;
        n->id = i + 1;
        snprintf(n->dir, sizeof n->dir, "%s/node%d", s->run_dir, n->id);
        n->version = 1; /* created with the topic: it knows version 0 */
        n->incarnation = 0;
        node_start(s, n);
        n->incarnation = 1; /* its registration is the controller's start */
    }

    while (!s->fail && s->now < chaos_ms)
        step(s, true);

    /* Heal: no more faults, every node back; then everything in sync. */
    heal(s);
    s->drop_pm = s->dup_pm = 0;
    for (int i = 0; i < s->n_nodes; i++)
        if (!s->nodes[i].up)
            s->nodes[i].restart_at = s->now + 1;
    int64_t deadline = s->now + CONVERGE_MS;
    bool ok = false;
    while (!s->fail && s->now < deadline && !(ok = converged(s)))
        step(s, false);
    if (!s->fail && !ok) {
        dump_state(s);
        SIM_FAILF(s, "liveness: not every replica in sync and identical %d ms after healing",
                  CONVERGE_MS);
    }
    for (int k = 0; k < s->n_parts && !s->fail; k++) {
        for (int i = 0; i < s->n_nodes && !s->fail; i++) {
            struct node *n = &s->nodes[i];
            if (n->p[k]) {
                verify_shadow(s, n, k);
                check_acked_in(s, n, k, "after healing");
            }
        }
    }
    TRACE(s,
          "end: %llu produced, %llu acknowledged, %llu refused NOT_ENOUGH_REPLICAS, %llu "
          "NOT_ENOUGH_REPLICAS_AFTER_APPEND, %llu not leader, %llu lost in crashes; %llu crashes "
          "(%llu power losses), %llu elections, %llu ISR shrinks, %llu expansions, %llu "
          "truncations (%llu batches), %llu syncs, %llu messages",
          (unsigned long long)s->produced, (unsigned long long)s->n_acks,
          (unsigned long long)s->not_enough, (unsigned long long)s->not_enough_after,
          (unsigned long long)s->not_leader, (unsigned long long)s->lost_waits,
          (unsigned long long)s->crashes, (unsigned long long)s->power_losses,
          (unsigned long long)s->elections, (unsigned long long)s->isr_shrinks,
          (unsigned long long)s->isr_expands, (unsigned long long)s->truncations,
          (unsigned long long)s->truncated_batches, (unsigned long long)s->syncs,
          (unsigned long long)s->messages);
    return s->fail != NULL;
}

int main(int argc, char **argv)
{
    uint64_t from = 1, count = 100;
    bool explicit_count = false, quiet = false;
    const char *dir_env = getenv("RSIM_DIR");
    if (dir_env && *dir_env)
        base_dir = dir_env;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
            count = strtoull(argv[++i], NULL, 10);
            explicit_count = true;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            from = strtoull(argv[++i], NULL, 10);
            count = 1;
            explicit_count = true;
        } else if ((strcmp(argv[i], "--first") == 0 || strcmp(argv[i], "--from") == 0) &&
                   i + 1 < argc) {
            from = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
            uint64_t to = strtoull(argv[++i], NULL, 10);
            count = to >= from ? to - from + 1 : 0;
            explicit_count = true;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            base_dir = argv[++i];
        } else if (strcmp(argv[i], "--trace") == 0) {
            trace = true;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
        } else {
            fprintf(stderr,
                    "usage: %s [--seeds N] [--first S | --from A] [--seed S | --to B] [--trace] "
                    "[--quiet] [--dir BASE]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *env = getenv("RSIM_SEEDS");
    if (env && !explicit_count)
        count = strtoull(env, NULL, 10);
#if defined(__SANITIZE_ADDRESS__)
    /* Sanitized builds run several times slower: a fifth of the seeds keeps ctest bounded. */
    if (!env && !getenv("RSIM_FULL") && count > 20)
        count = 20;
#endif
    say_set_level(trace ? SAY_LEVEL_INFO : SAY_LEVEL_ERROR);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t failures = 0, produced = 0, acks = 0, crashes = 0, power = 0, elections = 0,
             shrinks = 0, expands = 0, truncations = 0, truncated = 0, not_enough = 0,
             not_enough_after = 0;
    uint64_t to = from + count - 1;
    for (uint64_t seed = from; count > 0 && seed <= to; seed++) {
        struct sim *s = NULL;
        if (run_seed(seed, &s)) {
            failures++;
            fprintf(stderr, "FAIL seed %llu: %s\n", (unsigned long long)seed, s->fail);
            fprintf(stderr, "replay: %s --seed %llu --trace\n", argv[0], (unsigned long long)seed);
        }
        produced += s->produced;
        acks += s->n_acks;
        crashes += s->crashes;
        power += s->power_losses;
        elections += s->elections;
        shrinks += s->isr_shrinks;
        expands += s->isr_expands;
        truncations += s->truncations;
        truncated += s->truncated_batches;
        not_enough += s->not_enough;
        not_enough_after += s->not_enough_after;
        sim_free(s);
        if (failures >= 5)
            break;
        if (!quiet && (seed - from + 1) % 100 == 0)
            fprintf(stderr, "%llu seeds...\n", (unsigned long long)(seed - from + 1));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("replication_sim: seeds %llu..%llu, %llu failed; %llu batches produced, %llu "
           "acknowledged, %llu refused NOT_ENOUGH_REPLICAS, %llu NOT_ENOUGH_REPLICAS_AFTER_APPEND; "
           "%llu crashes (%llu power losses), %llu elections, %llu ISR shrinks, %llu expansions, "
           "%llu truncations of %llu batches; %.1f s\n",
           (unsigned long long)from, (unsigned long long)to, (unsigned long long)failures,
           (unsigned long long)produced, (unsigned long long)acks, (unsigned long long)not_enough,
           (unsigned long long)not_enough_after, (unsigned long long)crashes,
           (unsigned long long)power, (unsigned long long)elections, (unsigned long long)shrinks,
           (unsigned long long)expands, (unsigned long long)truncations,
           (unsigned long long)truncated, secs);
    return failures ? 1 : 0;
}
