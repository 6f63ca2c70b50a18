/* The metadata log through the Raft core: see quorum.h.
 *
 * Files, all in the metadata dir: raft.log, snapshot and clean-shutdown (raft storage,
 * raft.h), meta.properties (cluster.c), and before the upgrade metadata.log (metalog.c).
 * Which one holds the log: raft storage once it has a snapshot or any record; else an old
 * metadata.log, which is upgraded; else nothing, a new node.
 *
 * The upgrade writes the snapshot (durable) before it moves metadata.log aside, so a
 * crash in between leaves both, and the next start takes the snapshot and moves the old
 * file then. metalog_open removes the old log's clean-shutdown marker before the raft
 * storage, which uses the same name, is opened; the old log is never closed with one.
 *
 * A strict open that refuses leaves every file as it was (docs/raft.md, "Recovery"): raft
 * storage opens read-only, and everything that can refuse the restored state runs before
 * raft_storage_accept writes its repairs (cuts a torn tail, completes a snapshot install):
 * applying the snapshot, the term order, raft_new, and the configuration. What runs after
 * accept (catch_up) cannot refuse what passed those checks, only fail to write. */
#include "cluster/quorum.h"
#include "cluster/metalog.h"
#include "raft/raft.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(CLUSTER_QUORUM_MAX_NODES == RAFT_MAX_NODES, "a quorum state holds every node");

/* Inputs that arrived while a write was pending: Raft takes no input between
 * raft_ready and raft_advance. Bounded: beyond it messages are dropped (Raft sends
 * again). */
#define QUORUM_MAX_HELD_MSGS 1024
#define FORMAT_MARKER "quorum.format"

struct quorum {
    char *dir;
    char *path; /* raft.log */
    struct raft_storage *store;
    struct raft *raft; /* NULL in salvage mode */
    int32_t node_id;
    bool alone;    /* the only voter */
    bool observer; /* not a voter: a learner once the leader adds it */
    quorum_apply_fn apply;
    quorum_reset_fn reset;
    void *apply_arg;
    quorum_send_fn send;
    void *send_arg;
    struct raft_ready rd; /* a ready that needs a write: quorum_persist, quorum_advance */
    bool rd_pending;
    bool failed;        /* a write failed: no more proposals until restart */
    bool format_marker; /* the dir was formatted and has not been written yet */
    struct buf held[QUORUM_MAX_HELD_MSGS];
    size_t n_held;
    uint32_t held_ticks;
    /* This node's last proposal: the entry it became and what became of it. */
    uint64_t prop_index, prop_term;
    enum quorum_outcome outcome;
    size_t applied_entries;
    uint64_t applied_index; /* the Raft index the image reflects (quorum_applied_index) */
    size_t stored_entries;  /* metadata entries in the restored snapshot and log */
    /* Snapshots (quorum.h). */
    struct quorum_snapshot_policy policy;
    bool unsnapshotted;             /* a change applied is in no snapshot yet... */
    int64_t unsnapshotted_since_ms; /* ...the oldest such was applied then (monotonic) */
    bool snapshots_off;             /* the image outgrew a snapshot: none until restart */
    struct raft_snapshot snap;      /* taken by quorum_snapshot_begin (data owned) */
    size_t snap_entries;
    bool snap_pending; /* between quorum_snapshot_begin and quorum_snapshot_done */
    /* The core's status as of its last change the caller's thread saw; what
     * quorum_describe reports. Raft forbids raft_status between raft_ready and
     * raft_advance, and a write runs on the runner's thread in that window, so the status
     * is taken whenever no ready is out instead of when asked. */
    struct raft_status status;
    struct arena arena; /* decoded messages */
    struct buf out;     /* encoded messages */
};

static bool file_has_bytes(const char *dir, const char *name)
{
    char *p = xpath_join(dir, name);
    struct stat st;
    bool yes = stat(p, &st) == 0 && st.st_size > 0;
    free(p);
    return yes;
}

static bool file_exists(const char *dir, const char *name)
{
    char *p = xpath_join(dir, name);
    bool yes = access(p, F_OK) == 0;
    free(p);
    return yes;
}

/* ---- snapshot data: a sequence of [u32 length][metadata-log entry] ---- */

static void snapshot_add(struct buf *b, struct slice entry)
{
    buf_put_u32(b, (uint32_t)entry.len);
    buf_append(b, entry.ptr, entry.len);
}

static int snapshot_apply(struct quorum *q, const uint8_t *data, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 4 || len - pos - 4 < be32_read(data + pos)) {
            say_error("cluster", "metadata snapshot in %s is malformed at byte %zu", q->dir, pos);
            return -EBADMSG;
        }
        uint32_t n = be32_read(data + pos);
        q->apply(q->apply_arg, (struct slice){data + pos + 4, n}, false);
        q->applied_entries++;
        pos += 4 + (size_t)n;
    }
    return 0;
}

/* An entry of the Raft log that carries a metadata change (not a configuration or a
 * leader's empty no-op). */
static bool is_change(const struct raft_entry *e)
{
    return e->type == RAFT_ENTRY_NORMAL && e->len > 0;
}

static void apply_entries(struct quorum *q, const struct raft_entry *ents, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct raft_entry *e = &ents[i];
        bool own = q->outcome == QUORUM_PENDING && e->index == q->prop_index;
        if (own && e->term != q->prop_term) {
            /* Another leader's entry took the index: ours was never committed. */
            q->outcome = QUORUM_LOST;
            own = false;
        }
        if (own)
            q->outcome = QUORUM_APPLIED;
        q->applied_index = e->index;
        if (!is_change(e))
            continue;
        q->apply(q->apply_arg, (struct slice){e->data, e->len}, own);
        q->applied_entries++;
        if (!q->unsnapshotted) {
            q->unsnapshotted = true;
            q->unsnapshotted_since_ms = time_mono_ms();
        }
    }
}

/* ---- driving the core ---- */

static void send_msgs(struct quorum *q, const struct raft_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!q->send)
            continue;
        buf_reset(&q->out);
        raft_msg_encode(&msgs[i], &q->out);
        q->send(q->send_arg, (int32_t)msgs[i].to, q->out.data, q->out.len);
    }
    if (q->out.cap > (1u << 20))
        buf_free(&q->out); /* a snapshot's message: do not keep its memory */
}

/* A snapshot from the leader: the image becomes the snapshot's. */
static void install_snapshot(struct quorum *q, const struct raft_snapshot *snap)
{
    say_info("cluster", "installing the leader's metadata snapshot at index %llu (%u bytes)",
             (unsigned long long)snap->index, snap->len);
    if (q->outcome == QUORUM_PENDING && q->prop_index <= snap->index)
        q->outcome = QUORUM_LOST; /* whether it is in the snapshot cannot be told */
    if (q->reset)
        q->reset(q->apply_arg, false);
    q->applied_entries = 0;
    if (snapshot_apply(q, snap->data, snap->len) != 0)
        say_error("cluster", "the leader's snapshot was malformed; applied what could be read");
    q->applied_index = snap->index;
    if (q->reset)
        q->reset(q->apply_arg, true);
    q->unsnapshotted = false;
}

/* A ready needs a durable write before it is advanced when it holds entries, a
 * snapshot, or a new term or vote; a commit index alone may be persisted lazily (it is
 * learnt again from the leader, or re-committed by a quorum of one). */
static bool ready_needs_write(const struct quorum *q, const struct raft_ready *rd)
{
    struct raft_restore stored;
    raft_storage_restore(q->store, &stored);
    return rd->n_entries > 0 || rd->snapshot ||
           (rd->hs_changed && (rd->hs.term != stored.hs.term || rd->hs.vote != stored.hs.vote));
}

static void refresh_status(struct quorum *q)
{
    uint64_t leader = q->status.leader, term = q->status.term;
    raft_status(q->raft, &q->status);
    if (!q->alone && (q->status.leader != leader || (q->status.leader && q->status.term != term))) {
        if (q->status.leader)
            say_info("cluster", "metadata quorum: node %llu leads at term %llu%s",
                     (unsigned long long)q->status.leader, (unsigned long long)q->status.term,
                     q->status.leader == (uint64_t)q->node_id ? " (this node)" : "");
        else
            say_info("cluster", "metadata quorum: no leader at term %llu",
                     (unsigned long long)q->status.term);
    }
    if (q->outcome == QUORUM_PENDING && q->status.role != RAFT_LEADER)
        q->outcome = QUORUM_LOST;
}

/* Sends, applies and advances every ready that needs no write; takes the first that
 * does into q->rd. */
static void drain_ready(struct quorum *q)
{
    while (!q->rd_pending) {
        refresh_status(q);
        if (!raft_has_ready(q->raft))
            break;
        struct raft_ready rd;
        raft_ready(q->raft, &rd);
        if (ready_needs_write(q, &rd)) {
            q->rd = rd;
            q->rd_pending = true;
            return;
        }
        send_msgs(q, rd.msgs, rd.n_msgs);
        apply_entries(q, rd.committed, rd.n_committed);
        raft_advance(q->raft, &rd);
    }
}

static void step_encoded(struct quorum *q, const uint8_t *msg, size_t len)
{
    struct raft_msg m;
    if (raft_msg_decode(msg, len, &q->arena, &m) == 0 && m.to == (uint64_t)q->node_id)
        (void)raft_step(q->raft, &m); /* stale and invalid messages are simply ignored */
    arena_free(&q->arena);
}

void quorum_tick(struct quorum *q)
{
    if (!q->raft)
        return;
    if (q->rd_pending) {
        q->held_ticks++;
        return;
    }
    raft_tick(q->raft);
    drain_ready(q);
}

void quorum_receive(struct quorum *q, const uint8_t *msg, size_t len)
{
    if (!q->raft)
        return;
    if (q->rd_pending) {
        if (q->n_held < QUORUM_MAX_HELD_MSGS) {
            buf_init(&q->held[q->n_held]);
            buf_append(&q->held[q->n_held++], msg, len);
        }
        return;
    }
    step_encoded(q, msg, len);
    drain_ready(q);
}

static void step_held(struct quorum *q)
{
    for (size_t i = 0; i < q->n_held; i++) {
        step_encoded(q, q->held[i].data, q->held[i].len);
        buf_free(&q->held[i]);
    }
    q->n_held = 0;
    for (; q->held_ticks > 0; q->held_ticks--)
        raft_tick(q->raft);
}

bool quorum_write_pending(const struct quorum *q)
{
    return q->rd_pending && !q->failed;
}

int quorum_persist(struct quorum *q)
{
    ASSERT(q->rd_pending);
    return raft_storage_save(q->store, &q->rd, true);
}

/* The first durable save of a formatted dir: the log now vouches for this node, and the
 * marker must not outlive it (a marker beside a lost log would let the node vote again). */
static void drop_format_marker(struct quorum *q)
{
    char *p = xpath_join(q->dir, FORMAT_MARKER);
    if (unlink(p) != 0 && errno != ENOENT)
        say_error("cluster", "cannot remove %s: %s", p, strerror(errno));
    else
        (void)fsync_dir(q->dir);
    free(p);
    q->format_marker = false;
}

void quorum_advance(struct quorum *q, int persist_rc)
{
    ASSERT(q->rd_pending);
    if (persist_rc != 0) {
        /* The core's ready cannot be taken back: refuse every later change. */
        if (!q->failed)
            say_error("cluster",
                      "writing the metadata log %s failed; metadata changes are refused "
                      "until the broker restarts",
                      q->path);
        q->failed = true;
        if (q->outcome == QUORUM_PENDING)
            q->outcome = QUORUM_FAILED;
        return;
    }
    if (q->format_marker)
        drop_format_marker(q);
    q->rd_pending = false;
    send_msgs(q, q->rd.msgs, q->rd.n_msgs);
    if (q->rd.snapshot)
        install_snapshot(q, q->rd.snapshot);
    apply_entries(q, q->rd.committed, q->rd.n_committed);
    raft_advance(q->raft, &q->rd);
    step_held(q);
    drain_ready(q);
}

/* Start-up: writes and applies what the restored log holds; a quorum of one elects
 * itself and commits its whole log. */
static int catch_up(struct quorum *q)
{
    if (q->alone)
        raft_campaign(q->raft);
    for (;;) {
        drain_ready(q);
        if (!q->rd_pending)
            break;
        quorum_advance(q, quorum_persist(q));
        if (q->failed)
            return -EIO;
    }
    struct raft_status st;
    raft_status(q->raft, &st);
    if (q->alone && (st.role != RAFT_LEADER || st.applied < st.last_index)) {
        say_error("cluster", "metadata quorum in %s did not elect this node (role %s)", q->dir,
                  raft_role_name(st.role));
        return -EIO;
    }
    return 0;
}

bool quorum_can_propose(const struct quorum *q)
{
    const struct raft_status *st = &q->status;
    return q->raft && !q->failed && !q->rd_pending && !q->snap_pending && st->role == RAFT_LEADER &&
           st->applied == st->last_index && st->commit == st->last_index;
}

int quorum_propose(struct quorum *q, const uint8_t *entry, size_t len)
{
    ASSERT(quorum_can_propose(q));
    if (len > RAFT_MAX_ENTRY_BYTES) {
        say_error("cluster", "a metadata change of %zu bytes exceeds the entry limit", len);
        return -EFBIG;
    }
    uint64_t index;
    int rc = raft_propose(q->raft, entry, len, &index);
    if (rc != 0) {
        say_error("cluster", "the metadata quorum refused a change (%d)", rc);
        return -EIO;
    }
    q->prop_index = index;
    q->prop_term = q->status.term;
    q->outcome = QUORUM_PENDING;
    drain_ready(q);
    return 0;
}

int quorum_add_observer(struct quorum *q, int32_t node)
{
    ASSERT(quorum_can_propose(q));
    if (node <= 0 || raft_conf_is_voter(&q->status.conf, (uint64_t)node) ||
        raft_conf_is_learner(&q->status.conf, (uint64_t)node))
        return -EEXIST;
    uint64_t index;
    int rc = raft_propose_conf(q->raft, RAFT_CONF_ADD_LEARNER, (uint64_t)node, &index);
    if (rc != 0) {
        say_error("cluster", "the metadata quorum refused to add observer %d (%d)", node, rc);
        return -EIO;
    }
    say_info("cluster", "adding node %d to the metadata quorum as an observer", node);
    q->prop_index = index;
    q->prop_term = q->status.term;
    q->outcome = QUORUM_PENDING;
    drain_ready(q);
    return 0;
}

enum quorum_outcome quorum_take_outcome(struct quorum *q)
{
    enum quorum_outcome o = q->outcome;
    if (o != QUORUM_PENDING)
        q->outcome = QUORUM_NONE;
    return o;
}

uint64_t quorum_applied_index(const struct quorum *q)
{
    return q->applied_index;
}

bool quorum_leading(const struct quorum *q)
{
    return q->raft && q->status.role == RAFT_LEADER;
}

bool quorum_failed(const struct quorum *q)
{
    return q->failed;
}

int32_t quorum_leader(const struct quorum *q)
{
    return q->status.leader ? (int32_t)q->status.leader : -1;
}

void quorum_set_transport(struct quorum *q, quorum_send_fn send, void *arg)
{
    q->send = send;
    q->send_arg = arg;
}

/* ---- snapshots of the image (quorum.h) ----
 *
 * Taken only while no write is pending, at the applied index: everything applied is
 * durable (applied never passes what this node stored), and the entries after it, stored
 * and perhaps not yet committed, stay in raft.log (raft_storage_snapshot). Ordering: the
 * snapshot is durable under its name before raft.log is replaced, so every crash point
 * leaves a snapshot and a log that together hold every acknowledged change (recovery
 * skips log entries a snapshot covers). The encoding and the core's bookkeeping run on
 * the caller's thread, the writes and fsyncs wherever the caller runs
 * quorum_snapshot_write (the broker: its metadata thread). */

void quorum_set_snapshot_policy(struct quorum *q, const struct quorum_snapshot_policy *p)
{
    q->policy = *p;
}

bool quorum_snapshot_due(const struct quorum *q)
{
    if (!q->raft || q->failed || q->rd_pending || q->snap_pending || q->snapshots_off)
        return false;
    const struct raft_status *st = &q->status;
    if (st->applied <= st->snapshot_index)
        return false;
    if (q->policy.max_log_bytes && raft_storage_log_bytes(q->store) >= q->policy.max_log_bytes)
        return true;
    return q->policy.max_interval_ms > 0 && q->unsnapshotted &&
           time_mono_ms() - q->unsnapshotted_since_ms >= q->policy.max_interval_ms;
}

int quorum_snapshot_begin(struct quorum *q, const struct slice *entries, size_t n)
{
    ASSERT(q->raft && !q->rd_pending && !q->snap_pending && !q->failed);
    struct raft_status st;
    raft_status(q->raft, &st);
    ASSERT(st.applied > st.snapshot_index && st.applied <= st.stable_index);
    struct buf data;
    buf_init(&data);
    for (size_t i = 0; i < n; i++)
        snapshot_add(&data, entries[i]);
    uint64_t term = 0;
    bool known = raft_term_at(q->raft, st.applied, &term);
    ASSERT(known);
    /* Keeps a copy to send to followers; drops every entry it covers from memory. */
    if (raft_snapshot_create(q->raft, data.data, data.len, 0) != 0) {
        ASSERT(data.len > RAFT_MAX_SNAPSHOT_BYTES); /* the only other refusals are asserted */
        say_error("cluster",
                  "the metadata image (%zu bytes) does not fit a snapshot (at most %u bytes): "
                  "no more snapshots until the broker restarts, and %s keeps growing",
                  data.len, RAFT_MAX_SNAPSHOT_BYTES, q->path);
        q->snapshots_off = true;
        buf_free(&data);
        return -EFBIG;
    }
    q->snap = (struct raft_snapshot){
        .index = st.applied,
        .term = term,
        .conf = st.conf,
        .len = (uint32_t)data.len,
        .data = data.data}; /* the buffer is handed over; freed by quorum_snapshot_done */
    q->snap_entries = n;
    q->snap_pending = true;
    return 0;
}

int quorum_snapshot_write(struct quorum *q)
{
    ASSERT(q->snap_pending);
    return raft_storage_snapshot(q->store, &q->snap);
}

void quorum_snapshot_done(struct quorum *q, int write_rc)
{
    ASSERT(q->snap_pending);
    q->snap_pending = false;
    if (write_rc != 0) {
        /* The storage takes no more saves; the files hold a whole snapshot and log. */
        q->failed = true;
        say_error("cluster",
                  "writing a snapshot of the metadata log %s failed; metadata changes are "
                  "refused until the broker restarts (nothing written before is lost)",
                  q->path);
    } else {
        q->unsnapshotted = false;
        say_info("cluster",
                 "wrote a metadata snapshot at index %llu (%zu entries, %u bytes); %s is now "
                 "%llu bytes",
                 (unsigned long long)q->snap.index, q->snap_entries, q->snap.len, q->path,
                 (unsigned long long)raft_storage_log_bytes(q->store));
    }
    free(q->snap.data);
    q->snap = (struct raft_snapshot){0};
    refresh_status(q);
}

/* ---- opening ---- */

static int refuse(const struct quorum *q)
{
    const char *slash = strrchr(q->dir, '/');
    int parent_len = slash && slash != q->dir ? (int)(slash - q->dir) : 1;
    say_error("cluster",
              "the metadata log in %s is damaged (see above). Not starting: cutting it would "
              "forget topics whose partition directories are still on disk. To recover this "
              "single node, stop it and run `samsa metadata recover --log-dir %.*s` "
              "(docs/operations.md, \"Damaged metadata\")",
              q->dir, parent_len, slash && slash != q->dir ? q->dir : ".");
    return -EBADMSG;
}

struct collect {
    struct buf snap;
    size_t entries;
};

static void collect_entry(void *arg, struct slice entry)
{
    struct collect *c = arg;
    snapshot_add(&c->snap, entry);
    c->entries++;
}

/* Writes a snapshot holding `data` as the whole log of a one-voter quorum. */
static int write_snapshot(struct raft_storage *store, int32_t node_id, struct buf *data)
{
    struct raft_snapshot snap = {
        .index = 1, .term = 1, .len = (uint32_t)data->len, .data = data->data};
    snap.conf.n_voters = 1;
    snap.conf.voters[0] = (uint64_t)node_id;
    struct raft_ready rd = {
        .hs_changed = true, .hs = {.term = 1, .vote = 0, .commit = 1}, .snapshot = &snap};
    return raft_storage_save(store, &rd, true);
}

/* Moves dir/name aside as name.<what>-<ms>; *kept gets the new path (malloc'd). */
static int keep_aside(const char *dir, const char *name, const char *what, char **kept)
{
    char *from = xpath_join(dir, name);
    char suffix[96];
    snprintf(suffix, sizeof suffix, "%s.%s-%lld", name, what, (long long)time_wall_ms());
    char *to = xpath_join(dir, suffix);
    int rc = rename(from, to) == 0 ? fsync_dir(dir) : -errno;
    if (rc != 0)
        say_error("cluster", "cannot move %s to %s: %s", from, to, strerror(-rc));
    free(from);
    if (rc == 0 && kept)
        *kept = to;
    else
        free(to);
    return rc;
}

/* The configured voters (controller.quorum.voters, or this node alone). */
struct voters {
    size_t n;
    uint64_t ids[RAFT_MAX_NODES];
};

/* The quorum is static (no voter is added or removed at run time): every configuration
 * in the log must have exactly the configured voters. Learners may come and go. */
static bool conf_matches(const struct raft_conf *c, const struct voters *v)
{
    if (c->n_voters != v->n)
        return false;
    for (size_t i = 0; i < v->n; i++)
        if (!raft_conf_is_voter(c, v->ids[i]))
            return false;
    return true;
}

static int refuse_conf(const struct quorum *q, const struct raft_conf *c, const char *where)
{
    char ids[RAFT_MAX_NODES * 24] = "";
    size_t len = 0;
    for (uint32_t i = 0; i < c->n_voters && len < sizeof ids; i++)
        len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%llu", i ? "," : "",
                                (unsigned long long)c->voters[i]);
    if (raft_conf_is_voter(c, (uint64_t)q->node_id))
        say_error("cluster",
                  "the metadata quorum in %s has the voters %s (%s), which "
                  "controller.quorum.voters does not name: the voters cannot be changed by "
                  "editing the configuration",
                  q->dir, ids, where);
    else
        say_error("cluster",
                  "node.id %d is not a voter of the metadata quorum in %s (voters %s, %s): "
                  "was node.id changed?",
                  q->node_id, q->dir, ids, where);
    return -EINVAL;
}

/*
 * Applies the restored state and creates the core from it, refusing what it cannot start
 * from; writes nothing. The core's own checks (raft_new: entry terms that go backwards)
 * and what it would trip over rather than refuse (an assertion): a hard state older than
 * the log it vouches for. And the configuration: every configuration in the log may take
 * effect (a quorum of one commits its whole log when it elects itself), so each must have
 * the configured voters, or the node would refuse after the repairs were written.
 */
static int restore_core(struct quorum *q, const struct voters *v, const struct raft_config *cfg)
{
    struct raft_restore restore;
    raft_storage_restore(q->store, &restore);
    for (size_t i = 0; i < restore.n_entries; i++)
        q->stored_entries += is_change(&restore.entries[i]);
    if (restore.snapshot) {
        int rc = snapshot_apply(q, restore.snapshot->data, restore.snapshot->len);
        if (rc != 0)
            return rc;
        q->applied_index = restore.snapshot->index;
        q->stored_entries += q->applied_entries;
        if (!conf_matches(&restore.snapshot->conf, v))
            return refuse_conf(q, &restore.snapshot->conf, "in its snapshot");
    }
    for (size_t i = 0; i < restore.n_entries; i++) {
        const struct raft_entry *e = &restore.entries[i];
        if (e->type != RAFT_ENTRY_CONF)
            continue;
        struct raft_conf c;
        if (raft_conf_decode(e->data, e->len, &c) != 0) {
            say_error("cluster",
                      "the metadata log in %s is damaged: entry %llu holds a malformed "
                      "configuration",
                      q->dir, (unsigned long long)e->index);
            return -EBADMSG;
        }
        if (!conf_matches(&c, v))
            return refuse_conf(q, &c, "in its log");
    }
    uint64_t last_term = restore.n_entries  ? restore.entries[restore.n_entries - 1].term
                         : restore.snapshot ? restore.snapshot->term
                                            : 0;
    if (restore.hs.term < last_term) {
        say_error("cluster",
                  "the metadata log in %s is damaged: its term %llu is older than its "
                  "last entry's (%llu)",
                  q->dir, (unsigned long long)restore.hs.term, (unsigned long long)last_term);
        return -EBADMSG;
    }
    struct raft_conf founders = {.n_voters = (uint32_t)v->n};
    memcpy(founders.voters, v->ids, v->n * sizeof v->ids[0]);
    int rc = raft_new(cfg, &restore, &founders, &q->raft);
    if (rc != 0) {
        say_error("cluster", "the metadata log in %s cannot be restored (%d)", q->dir, rc);
        return -EBADMSG;
    }
    raft_status(q->raft, &q->status);
    if (q->status.conf.n_voters == 0) {
        /* Neither a snapshot nor a committed configuration entry: the log does not begin
         * as a quorum's log begins (entry 1 is the founders' configuration). */
        say_error("cluster", "the metadata log in %s is damaged: it holds no configuration",
                  q->dir);
        return -EBADMSG;
    }
    if (!conf_matches(&q->status.conf, v))
        return refuse_conf(q, &q->status.conf, "committed");
    return 0;
}

/* An observer's restore: no founders (it is not one); a log it holds (from a leader) must
 * have the configured voters and must not count this node among them. */
static int restore_observer(struct quorum *q, const struct voters *v, const struct raft_config *cfg)
{
    struct raft_restore restore;
    raft_storage_restore(q->store, &restore);
    for (size_t i = 0; i < restore.n_entries; i++)
        q->stored_entries += is_change(&restore.entries[i]);
    if (restore.snapshot) {
        int rc = snapshot_apply(q, restore.snapshot->data, restore.snapshot->len);
        if (rc != 0)
            return rc;
        q->applied_index = restore.snapshot->index;
        q->stored_entries += q->applied_entries;
    }
    int rc = raft_new(cfg, &restore, NULL, &q->raft);
    if (rc != 0) {
        say_error("cluster", "the metadata log in %s cannot be restored (%d)", q->dir, rc);
        return -EBADMSG;
    }
    raft_status(q->raft, &q->status);
    if (q->status.conf.n_voters > 0 && !conf_matches(&q->status.conf, v))
        return refuse_conf(q, &q->status.conf, "committed");
    return 0;
}

/* Moves the entries of an old metadata.log into new Raft storage files as their snapshot,
 * then moves the old file aside. Nothing in a new Raft log can refuse. */
static int upgrade(const char *dir, int32_t node_id)
{
    struct collect col;
    buf_init(&col.snap);
    col.entries = 0;
    struct metalog *old = NULL;
    struct raft_storage *store = NULL;
    int rc = metalog_open(dir, METALOG_STRICT, collect_entry, &col, &old, NULL);
    if (rc == 0)
        rc = raft_storage_open(dir, RAFT_STORAGE_STRICT, &store);
    if (rc == 0)
        rc = raft_storage_accept(store);
    if (rc == 0)
        rc = write_snapshot(store, node_id, &col.snap);
    raft_storage_close(store);
    metalog_forget(old);
    if (rc == 0)
        rc = keep_aside(dir, "metadata.log", "migrated", NULL);
    if (rc == 0)
        say_info("cluster", "moved %zu entries of %s/metadata.log into the Raft log", col.entries,
                 dir);
    buf_free(&col.snap);
    return rc;
}

/* The voters from the configuration; none means this node alone. */
static int configured_voters(const struct quorum_config *cfg, struct voters *v)
{
    v->n = 0;
    if (cfg->voter_count == 0) {
        v->ids[v->n++] = (uint64_t)cfg->node_id;
        return 0;
    }
    if (cfg->voter_count > RAFT_MAX_NODES) {
        say_error("cluster", "controller.quorum.voters names %zu voters; at most %d",
                  cfg->voter_count, RAFT_MAX_NODES);
        return -EINVAL;
    }
    for (size_t i = 0; i < cfg->voter_count; i++) {
        if (cfg->voters[i] <= 0) {
            say_error("cluster", "voter id %d: ids of voters must be positive", cfg->voters[i]);
            return -EINVAL;
        }
        v->ids[v->n++] = (uint64_t)cfg->voters[i];
    }
    return 0;
}

static int open_strict(struct quorum *q, const struct voters *v, const struct raft_config *rc_cfg)
{
    const char *dir = q->dir;
    bool have_raft = file_has_bytes(dir, "raft.log") || file_exists(dir, "snapshot");
    bool have_old = file_exists(dir, "metadata.log");
    q->format_marker = file_exists(dir, FORMAT_MARKER);
    int rc = 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = -errno;
        say_error("cluster", "cannot create metadata dir %s: %s", dir, strerror(-rc));
        return rc;
    }
    if (!have_raft && !have_old && !q->alone && !q->format_marker) {
        /* A voter without a log: a new node that was not formatted, or one whose log was
         * lost. Either way it must not vote (quorum.h). */
        say_error("cluster",
                  "no metadata log in %s, and the dir was not formatted for this quorum of "
                  "%zu voters. A controller that lost its log must not vote: if this is a "
                  "new node, format it with `samsa-server format --cluster-id ID -c FILE` "
                  "(docs/operations.md, \"Starting a cluster\"); if its log was lost, its "
                  "data must be rebuilt from the other voters, which this version cannot do",
                  dir, v->n);
        return -EINVAL;
    }
    if (have_raft && q->format_marker)
        drop_format_marker(q); /* a crash came between the first save and the removal */
    if (!have_raft && !have_old && q->alone) {
        /* No log at all: a new node, or one whose log was emptied or deleted. A marker
         * left by the lost log's clean stop vouches for nothing; the broker refuses a
         * new log beside data it cannot account for (log_dir.c). */
        char *marker = xpath_join(dir, "clean-shutdown");
        if (unlink(marker) == 0) {
            say_warn("cluster", "no metadata log in %s: starting a new one", dir);
            rc = fsync_dir(dir);
        }
        free(marker);
    }
    if (rc == 0 && !have_raft && have_old)
        rc = upgrade(dir, q->node_id);
    if (rc == 0)
        rc = raft_storage_open(dir, RAFT_STORAGE_STRICT, &q->store);
    if (rc == 0)
        rc = q->observer ? restore_observer(q, v, rc_cfg) : restore_core(q, v, rc_cfg);
    /* Only now may the directory change: see the top of the file. */
    if (rc == 0)
        rc = raft_storage_accept(q->store);
    if (rc == 0 && have_raft && have_old) /* a crash ended an upgrade after its snapshot */
        rc = keep_aside(dir, "metadata.log", "migrated", NULL);
    if (rc == 0)
        rc = catch_up(q);
    return rc;
}

/* An entry of an old metadata.log read in salvage mode. */
static void apply_old_entry(void *arg, struct slice entry)
{
    struct quorum *q = arg;
    q->apply(q->apply_arg, entry, false);
}

static int open_salvage(struct quorum *q, struct quorum_stats *st)
{
    const char *dir = q->dir;
    int rc = 0;
    if (file_has_bytes(dir, "raft.log") || file_exists(dir, "snapshot")) {
        rc = raft_storage_open(dir, RAFT_STORAGE_SALVAGE, &q->store);
        if (rc == 0) {
            struct raft_restore r;
            raft_storage_restore(q->store, &r);
            if (r.snapshot)
                rc = snapshot_apply(q, r.snapshot->data, r.snapshot->len);
            apply_entries(q, r.entries, r.n_entries);
            const struct raft_entry *strays;
            size_t n_strays;
            raft_storage_strays(q->store, &strays, &n_strays);
            apply_entries(q, strays, n_strays);
            st->skipped_bytes = raft_storage_skipped_bytes(q->store);
        }
    } else {
        struct metalog *old = NULL;
        struct metalog_stats ms = {0};
        rc = metalog_open(dir, METALOG_SALVAGE, apply_old_entry, q, &old, &ms);
        metalog_forget(old);
        q->applied_entries = ms.entries;
        st->skipped_bytes = ms.skipped_bytes;
    }
    return rc;
}

int quorum_open(const char *dir, const struct quorum_config *cfg, struct quorum **out,
                struct quorum_stats *stats)
{
    struct quorum *q = xcalloc(1, sizeof *q);
    q->dir = xstrdup(dir);
    q->path = xpath_join(dir, "raft.log");
    q->node_id = cfg->node_id;
    q->apply = cfg->apply;
    q->reset = cfg->reset;
    q->apply_arg = cfg->arg;
    arena_init(&q->arena);
    buf_init(&q->out);
    struct quorum_stats st = {0};
    struct voters v;
    int rc = configured_voters(cfg, &v);
    q->alone = v.n == 1 && v.ids[0] == (uint64_t)cfg->node_id;
    q->observer = true;
    for (size_t i = 0; i < v.n; i++)
        q->observer &= v.ids[i] != (uint64_t)cfg->node_id;
    if (rc == 0 && cfg->salvage) {
        ASSERT(q->alone);
        rc = open_salvage(q, &st);
    } else if (rc == 0) {
        struct raft_config rcfg;
        raft_config_default(&rcfg, (uint64_t)cfg->node_id);
        if (cfg->election_ticks)
            rcfg.election_ticks = cfg->election_ticks;
        rcfg.seed = cfg->seed;
        rc = open_strict(q, &v, &rcfg);
    }
    st.entries = q->applied_entries;
    st.stored_entries = MAX(q->applied_entries, q->stored_entries);
    if (rc == -EBADMSG && !cfg->salvage)
        refuse(q);
    if (rc != 0) {
        quorum_close(q);
        return rc;
    }
    say_info("cluster", "replayed %zu metadata entries from %s", st.entries, q->path);
    if (stats)
        *stats = st;
    *out = q;
    return 0;
}

int quorum_format(const char *dir)
{
    if (file_has_bytes(dir, "raft.log") || file_exists(dir, "snapshot") ||
        file_exists(dir, "metadata.log")) {
        say_error("cluster", "%s holds a metadata log already: not formatting it", dir);
        return -EEXIST;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int rc = -errno;
        say_error("cluster", "cannot create metadata dir %s: %s", dir, strerror(-rc));
        return rc;
    }
    char *p = xpath_join(dir, FORMAT_MARKER);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int rc = fd < 0 || fsync(fd) != 0 ? -errno : 0;
    if (fd >= 0)
        close(fd);
    if (rc == 0)
        rc = fsync_dir(dir);
    if (rc != 0)
        say_error("cluster", "cannot write %s: %s", p, strerror(-rc));
    free(p);
    return rc;
}

int quorum_replace(struct quorum *q, const struct slice *entries, size_t n, char **kept_path)
{
    *kept_path = NULL;
    raft_free(q->raft);
    q->raft = NULL;
    raft_storage_close(q->store);
    q->store = NULL;
    if (mkdir(q->dir, 0755) != 0 && errno != EEXIST) {
        int rc = -errno;
        say_error("cluster", "cannot create metadata dir %s: %s", q->dir, strerror(-rc));
        return rc;
    }
    /* The damaged files stay beside the new log; the first one kept is reported. */
    static const char *const old_files[] = {"raft.log", "snapshot", "metadata.log"};
    char *marker = xpath_join(q->dir, "clean-shutdown");
    int gone = unlink(marker) == 0 || errno == ENOENT ? 0 : -errno;
    free(marker);
    if (gone != 0)
        return gone;
    for (size_t i = 0; i < ARRAY_LEN(old_files); i++) {
        if (!file_exists(q->dir, old_files[i]))
            continue;
        int rc = keep_aside(q->dir, old_files[i], "damaged", *kept_path ? NULL : kept_path);
        if (rc != 0)
            return rc;
    }
    struct buf data;
    buf_init(&data);
    for (size_t i = 0; i < n; i++)
        snapshot_add(&data, entries[i]);
    struct raft_storage *store = NULL;
    int rc = raft_storage_open(q->dir, RAFT_STORAGE_STRICT, &store);
    if (rc == 0)
        rc = raft_storage_accept(store);
    if (rc == 0)
        rc = write_snapshot(store, q->node_id, &data);
    raft_storage_close(store);
    buf_free(&data);
    return rc;
}

void quorum_describe(const struct quorum *q, struct cluster_quorum_state *out)
{
    /* Zeroed in salvage mode, where there is no core: no leader, no voters. */
    const struct raft_status *st = &q->status;
    *out = (struct cluster_quorum_state){.leader_id = st->leader ? (int32_t)st->leader : -1,
                                         .leading = q->raft && st->role == RAFT_LEADER};
    /* Terms grow by one per election: far from INT32_MAX; saturate rather than wrap all
     * the same. */
    out->leader_epoch = st->term > INT32_MAX ? INT32_MAX : (int32_t)st->term;
    out->high_watermark = (int64_t)st->commit;
    out->log_end_offset = (int64_t)st->last_index;
    /* A leader knows how far each peer's log matches its own; others know only theirs. */
    bool leading = out->leading;
    for (uint32_t i = 0; i < st->conf.n_voters; i++) {
        uint64_t id = st->conf.voters[i];
        out->voters[i] = (struct cluster_quorum_replica){.node_id = (int32_t)id,
                                                         .log_end_offset =
                                                             id == st->id ? out->log_end_offset
                                                             : leading ? (int64_t)st->voter_match[i]
                                                                       : -1};
    }
    out->voter_count = st->conf.n_voters;
    for (uint32_t i = 0; i < st->conf.n_learners; i++)
        out->observers[i] = (struct cluster_quorum_replica){
            .node_id = (int32_t)st->conf.learners[i],
            .log_end_offset = leading ? (int64_t)st->learner_match[i] : -1};
    out->observer_count = st->conf.n_learners;
}

const char *quorum_path(const struct quorum *q)
{
    return q->path;
}

void quorum_close(struct quorum *q)
{
    if (!q)
        return;
    ASSERT(!q->snap_pending || q->failed);
    for (size_t i = 0; i < q->n_held; i++)
        buf_free(&q->held[i]);
    arena_free(&q->arena);
    buf_free(&q->out);
    free(q->snap.data);
    raft_free(q->raft);
    raft_storage_close(q->store);
    free(q->dir);
    free(q->path);
    free(q);
}
