/*
 * raft_interaction: data-driven tests in the style of etcd/raft's interaction tests.
 *
 * A script (tests/unit/raft/testdata/NAME.txt) is a list of blocks, command then expected
 * output, run by the shared script runner (tests/unit/support/script.h). Each command runs
 * against in-process nodes connected by a scripted network and prints what the nodes did
 * (messages, persisted entries, applied entries, state). `raft_interaction --rewrite
 * FILE...` regenerates the expected output in place; read the diff before committing it.
 *
 * Commands:
 *   bootstrap ID... [learners=ID,..] [prevote=0] [checkquorum=0] [maxentries=N]
 *   add-node ID                 an empty node that joins later (no bootstrap)
 *   campaign ID | tick ID [N] | propose ID DATA | conf ID add-voter|add-learner|remove N
 *   transfer ID TO | read-index ID CTX | snapshot ID [KEEP]
 *   ready ID                    persist, queue messages, apply; prints the ready
 *   deliver ID [N]              step the first N (default all) queued messages to ID
 *   drop ID                     discard messages queued to ID
 *   partition ID...             only the listed nodes can reach each other
 *   heal | stabilize | crash ID | restart ID | status [ID] | log ID | raw-step ID LINE
 */
#include "raft/raft.h"
#include "script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 8
#define MAXQ 4096

struct disk {
    struct raft_hard_state hs;
    struct raft_snapshot snap;
    struct raft_entry ents[1024];
    size_t n;
};

struct node {
    uint64_t id;
    bool exists, up, founder;
    struct raft *r;
    struct disk disk;
    struct raft_conf boot;
};

struct qmsg {
    struct buf bytes;
};

static struct node nodes[MAXN + 1];
static struct qmsg queue[MAXN + 1][MAXQ];
static size_t qlen[MAXN + 1];
static bool in_partition[MAXN + 1];
static bool partitioned;
static struct raft_config base_cfg;

static void fmt_data(char *dst, size_t cap, const struct raft_entry *e)
{
    if (e->type == RAFT_ENTRY_CONF) {
        struct raft_conf c;
        size_t n = 0;
        if (raft_conf_decode(e->data, e->len, &c) != 0) {
            snprintf(dst, cap, "conf(bad)");
            return;
        }
        n += (size_t)snprintf(dst + n, cap - n, "conf(v=");
        for (uint32_t i = 0; i < c.n_voters && n < cap; i++)
            n += (size_t)snprintf(dst + n, cap - n, "%s%llu", i ? "," : "",
                                  (unsigned long long)c.voters[i]);
        if (c.n_learners && n < cap)
            n += (size_t)snprintf(dst + n, cap - n, " l=");
        for (uint32_t i = 0; i < c.n_learners && n < cap; i++)
            n += (size_t)snprintf(dst + n, cap - n, "%s%llu", i ? "," : "",
                                  (unsigned long long)c.learners[i]);
        if (n < cap)
            snprintf(dst + n, cap - n, ")");
    } else if (e->len == 0) {
        snprintf(dst, cap, "noop");
    } else {
        snprintf(dst, cap, "%.*s", (int)MIN(e->len, 40u), (const char *)e->data);
    }
}

static void print_msg(const char *prefix, const struct raft_msg *m)
{
    script_outf("%s%llu->%llu %s term=%llu", prefix, (unsigned long long)m->from,
                (unsigned long long)m->to, raft_msg_type_name(m->type),
                (unsigned long long)m->term);
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        script_outf(" last=%llu/%llu%s", (unsigned long long)m->index,
                    (unsigned long long)m->log_term,
                    m->flags & RAFT_FLAG_TRANSFER ? " transfer" : "");
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: script_outf("%s", m->reject ? " reject" : " grant"); break;
    case RAFT_MSG_APPEND:
        script_outf(" prev=%llu/%llu commit=%llu entries=[", (unsigned long long)m->index,
                    (unsigned long long)m->log_term, (unsigned long long)m->commit);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            char d[128];
            fmt_data(d, sizeof d, &m->entries[i]);
            script_outf("%s%llu/%llu %s", i ? " " : "", (unsigned long long)m->entries[i].index,
                        (unsigned long long)m->entries[i].term, d);
        }
        script_outf("]");
        break;
    case RAFT_MSG_APPEND_RESP:
        script_outf(" index=%llu", (unsigned long long)m->index);
        if (m->reject)
            script_outf(" reject hint=%llu/%llu", (unsigned long long)m->hint_index,
                        (unsigned long long)m->hint_term);
        break;
    case RAFT_MSG_HEARTBEAT:
        script_outf(" commit=%llu", (unsigned long long)m->commit);
        if (m->context)
            script_outf(" ctx=%llu", (unsigned long long)m->context);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        if (m->context)
            script_outf(" ctx=%llu", (unsigned long long)m->context);
        break;
    case RAFT_MSG_SNAPSHOT:
        script_outf(" snap=%llu/%llu", (unsigned long long)m->snapshot.index,
                    (unsigned long long)m->snapshot.term);
        break;
    }
    script_outf("\n");
}

static bool connected(uint64_t a, uint64_t b)
{
    return !partitioned || (in_partition[a] == in_partition[b]);
}

static void node_start(struct node *n)
{
    struct raft_config cfg = base_cfg;
    cfg.id = n->id;
    cfg.seed = n->id;
    struct raft_restore rs = {.hs = n->disk.hs,
                              .snapshot = n->disk.snap.index ? &n->disk.snap : NULL,
                              .entries = n->disk.ents,
                              .n_entries = n->disk.n};
    int rc = raft_new(&cfg, &rs, n->founder ? &n->boot : NULL, &n->r);
    ASSERT(rc == 0);
    n->up = true;
}

static void disk_put(struct disk *d, const struct raft_entry *e)
{
    while (d->n && d->ents[d->n - 1].index >= e->index)
        free(d->ents[--d->n].data);
    ASSERT(d->n < ARRAY_LEN(d->ents));
    struct raft_entry *c = &d->ents[d->n++];
    *c = *e;
    c->data = e->len ? xmalloc(e->len) : NULL;
    if (e->len)
        memcpy(c->data, e->data, e->len);
}

static void do_ready(struct node *n)
{
    struct raft_ready rd;
    raft_ready(n->r, &rd);
    script_outf("n%llu ready:\n", (unsigned long long)n->id);
    if (rd.hs_changed) {
        script_outf("  hs term=%llu vote=%llu commit=%llu\n", (unsigned long long)rd.hs.term,
                    (unsigned long long)rd.hs.vote, (unsigned long long)rd.hs.commit);
        n->disk.hs = rd.hs;
    }
    if (rd.snapshot) {
        script_outf("  persist snapshot %llu/%llu\n", (unsigned long long)rd.snapshot->index,
                    (unsigned long long)rd.snapshot->term);
        free(n->disk.snap.data);
        n->disk.snap = *rd.snapshot;
        n->disk.snap.data = xmalloc(rd.snapshot->len + 1);
        memcpy(n->disk.snap.data, rd.snapshot->data, rd.snapshot->len);
        while (n->disk.n)
            free(n->disk.ents[--n->disk.n].data);
    }
    for (size_t i = 0; i < rd.n_entries; i++) {
        char d[128];
        fmt_data(d, sizeof d, &rd.entries[i]);
        script_outf("  persist %llu/%llu %s\n", (unsigned long long)rd.entries[i].index,
                    (unsigned long long)rd.entries[i].term, d);
        disk_put(&n->disk, &rd.entries[i]);
    }
    for (size_t i = 0; i < rd.n_msgs; i++) {
        const struct raft_msg *m = &rd.msgs[i];
        bool ok = m->to <= MAXN && nodes[m->to].exists && connected(m->from, m->to);
        print_msg(ok ? "  send " : "  lost ", m);
        if (ok) {
            ASSERT(qlen[m->to] < MAXQ);
            struct buf *b = &queue[m->to][qlen[m->to]++].bytes;
            buf_init(b);
            raft_msg_encode(m, b);
        }
    }
    for (size_t i = 0; i < rd.n_committed; i++) {
        char d[128];
        fmt_data(d, sizeof d, &rd.committed[i]);
        script_outf("  apply %llu/%llu %s\n", (unsigned long long)rd.committed[i].index,
                    (unsigned long long)rd.committed[i].term, d);
    }
    for (size_t i = 0; i < rd.n_reads; i++)
        script_outf("  read ctx=%llu index=%llu\n", (unsigned long long)rd.reads[i].context,
                    (unsigned long long)rd.reads[i].index);
    raft_advance(n->r, &rd);
}

static void step_one(struct node *n, struct buf *b)
{
    struct arena a;
    arena_init(&a);
    struct raft_msg m;
    int rc = raft_msg_decode(b->data, b->len, &a, &m);
    ASSERT(rc == 0);
    print_msg("  ", &m);
    rc = raft_step(n->r, &m);
    if (rc == -RAFT_ESTALE)
        script_outf("    (ignored: stale)\n");
    else if (rc != 0)
        script_outf("    (rejected: %d)\n", rc);
    arena_free(&a);
    buf_free(b);
}

static void deliver(struct node *n, size_t count)
{
    size_t k = MIN(count, qlen[n->id]);
    if (k == 0)
        return;
    script_outf("n%llu receives:\n", (unsigned long long)n->id);
    for (size_t i = 0; i < k; i++) {
        if (n->up)
            step_one(n, &queue[n->id][i].bytes);
        else
            buf_free(&queue[n->id][i].bytes);
    }
    memmove(queue[n->id], queue[n->id] + k, (qlen[n->id] - k) * sizeof queue[0][0]);
    qlen[n->id] -= k;
}

static void print_status(struct node *n)
{
    if (!n->up) {
        script_outf("n%llu: down\n", (unsigned long long)n->id);
        return;
    }
    struct raft_status st;
    raft_status(n->r, &st);
    script_outf("n%llu: %s term=%llu vote=%llu leader=%llu commit=%llu applied=%llu last=%llu",
                (unsigned long long)n->id, raft_role_name(st.role), (unsigned long long)st.term,
                (unsigned long long)st.vote, (unsigned long long)st.leader,
                (unsigned long long)st.commit, (unsigned long long)st.applied,
                (unsigned long long)st.last_index);
    if (st.snapshot_index)
        script_outf(" snap=%llu", (unsigned long long)st.snapshot_index);
    script_outf(" voters=");
    for (uint32_t i = 0; i < st.conf.n_voters; i++)
        script_outf("%s%llu", i ? "," : "", (unsigned long long)st.conf.voters[i]);
    if (st.conf.n_learners) {
        script_outf(" learners=");
        for (uint32_t i = 0; i < st.conf.n_learners; i++)
            script_outf("%s%llu", i ? "," : "", (unsigned long long)st.conf.learners[i]);
    }
    script_outf("\n");
}

static struct node *arg_node(char **argv, int argc, int i)
{
    if (i >= argc)
        return NULL;
    long id = strtol(argv[i], NULL, 10);
    if (id < 1 || id > MAXN || !nodes[id].exists)
        return NULL;
    return &nodes[id];
}

static void reset_world(void)
{
    for (int i = 0; i <= MAXN; i++) {
        raft_free(nodes[i].r);
        while (nodes[i].disk.n)
            free(nodes[i].disk.ents[--nodes[i].disk.n].data);
        free(nodes[i].disk.snap.data);
        for (size_t k = 0; k < qlen[i]; k++)
            buf_free(&queue[i][k].bytes);
        qlen[i] = 0;
    }
    memset(nodes, 0, sizeof nodes);
    partitioned = false;
    raft_config_default(&base_cfg, 1);
}

static int run_command(int argc, char **argv)
{
    if (argc == 0)
        return 0;
    const char *cmd = argv[0];
    struct node *n = arg_node(argv, argc, 1);
    if (strcmp(cmd, "bootstrap") == 0) {
        struct raft_conf boot = {0};
        for (int i = 1; i < argc; i++) {
            if (strncmp(argv[i], "learners=", 9) == 0) {
                for (char *p = argv[i] + 9; *p;) {
                    boot.learners[boot.n_learners++] = strtoull(p, &p, 10);
                    if (*p == ',')
                        p++;
                }
            } else if (strncmp(argv[i], "prevote=", 8) == 0) {
                base_cfg.pre_vote = atoi(argv[i] + 8);
            } else if (strncmp(argv[i], "checkquorum=", 12) == 0) {
                base_cfg.check_quorum = atoi(argv[i] + 12);
            } else if (strncmp(argv[i], "maxentries=", 11) == 0) {
                base_cfg.max_msg_entries = (uint32_t)atoi(argv[i] + 11);
            } else {
                boot.voters[boot.n_voters++] = strtoull(argv[i], NULL, 10);
            }
        }
        for (int pass = 0; pass < 2; pass++) {
            const uint64_t *ids = pass ? boot.learners : boot.voters;
            uint32_t cnt = pass ? boot.n_learners : boot.n_voters;
            for (uint32_t i = 0; i < cnt; i++) {
                struct node *nn = &nodes[ids[i]];
                nn->id = ids[i];
                nn->exists = nn->founder = true;
                nn->boot = boot;
                node_start(nn);
            }
        }
        return 0;
    }
    if (strcmp(cmd, "add-node") == 0 && argc == 2) {
        long id = strtol(argv[1], NULL, 10);
        if (id < 1 || id > MAXN)
            return -1;
        nodes[id].id = (uint64_t)id;
        nodes[id].exists = true;
        node_start(&nodes[id]);
        return 0;
    }
    if (strcmp(cmd, "heal") == 0) {
        partitioned = false;
        return 0;
    }
    if (strcmp(cmd, "partition") == 0) {
        partitioned = true;
        memset(in_partition, 0, sizeof in_partition);
        for (int i = 1; i < argc; i++) {
            long id = strtol(argv[i], NULL, 10);
            if (id < 1 || id > MAXN)
                return -1;
            in_partition[id] = true;
        }
        return 0;
    }
    if (strcmp(cmd, "stabilize") == 0) {
        for (int round = 0; round < 100; round++) {
            bool any = false;
            for (int i = 1; i <= MAXN; i++)
                if (nodes[i].exists && nodes[i].up && raft_has_ready(nodes[i].r)) {
                    do_ready(&nodes[i]);
                    any = true;
                }
            for (int i = 1; i <= MAXN; i++)
                if (nodes[i].exists && qlen[i]) {
                    deliver(&nodes[i], SIZE_MAX);
                    any = true;
                }
            if (!any)
                return 0;
        }
        script_outf("stabilize: did not settle\n");
        return 0;
    }
    if (strcmp(cmd, "status") == 0) {
        for (int i = 1; i <= MAXN; i++)
            if (nodes[i].exists && (!n || n == &nodes[i]))
                print_status(&nodes[i]);
        return 0;
    }
    if (!n)
        return -1;
    if (!n->up && strcmp(cmd, "restart") != 0 && strcmp(cmd, "deliver") != 0 &&
        strcmp(cmd, "drop") != 0) {
        script_outf("n%llu is down\n", (unsigned long long)n->id);
        return 0;
    }
    int rc = 0;
    uint64_t idx = 0;
    if (strcmp(cmd, "campaign") == 0) {
        raft_campaign(n->r);
    } else if (strcmp(cmd, "tick") == 0) {
        int count = argc > 2 ? atoi(argv[2]) : 1;
        for (int i = 0; i < count; i++)
            raft_tick(n->r);
    } else if (strcmp(cmd, "propose") == 0 && argc == 3) {
        rc = raft_propose(n->r, argv[2], strlen(argv[2]), &idx);
    } else if (strcmp(cmd, "conf") == 0 && argc == 4) {
        enum raft_conf_op op = strcmp(argv[2], "add-voter") == 0     ? RAFT_CONF_ADD_VOTER
                               : strcmp(argv[2], "add-learner") == 0 ? RAFT_CONF_ADD_LEARNER
                                                                     : RAFT_CONF_REMOVE;
        rc = raft_propose_conf(n->r, op, strtoull(argv[3], NULL, 10), &idx);
    } else if (strcmp(cmd, "transfer") == 0 && argc == 3) {
        rc = raft_transfer_leader(n->r, strtoull(argv[2], NULL, 10));
    } else if (strcmp(cmd, "read-index") == 0 && argc == 3) {
        rc = raft_read_index(n->r, strtoull(argv[2], NULL, 10));
    } else if (strcmp(cmd, "snapshot") == 0) {
        struct raft_status st;
        raft_status(n->r, &st);
        char data[32];
        int len = snprintf(data, sizeof data, "state@%llu", (unsigned long long)st.applied);
        rc = raft_snapshot_create(n->r, data, (size_t)len,
                                  argc > 2 ? strtoull(argv[2], NULL, 10) : 0);
        if (rc == 0) {
            script_outf("snapshot at %llu\n", (unsigned long long)st.applied);
            /* Persist it the way storage would: snapshot first, then drop entries. */
            free(n->disk.snap.data);
            n->disk.snap =
                (struct raft_snapshot){.index = st.applied, .conf = st.conf, .len = (uint32_t)len};
            raft_term_at(n->r, st.applied, &n->disk.snap.term);
            n->disk.snap.data = xmalloc((size_t)len);
            memcpy(n->disk.snap.data, data, (size_t)len);
        }
    } else if (strcmp(cmd, "ready") == 0) {
        if (raft_has_ready(n->r))
            do_ready(n);
        else
            script_outf("n%llu: nothing ready\n", (unsigned long long)n->id);
    } else if (strcmp(cmd, "deliver") == 0) {
        deliver(n, argc > 2 ? (size_t)atoi(argv[2]) : SIZE_MAX);
    } else if (strcmp(cmd, "drop") == 0) {
        for (size_t k = 0; k < qlen[n->id]; k++)
            buf_free(&queue[n->id][k].bytes);
        if (qlen[n->id])
            script_outf("dropped %zu messages to n%llu\n", qlen[n->id], (unsigned long long)n->id);
        qlen[n->id] = 0;
    } else if (strcmp(cmd, "crash") == 0) {
        raft_free(n->r);
        n->r = NULL;
        n->up = false;
    } else if (strcmp(cmd, "restart") == 0) {
        if (!n->up)
            node_start(n);
        print_status(n);
    } else if (strcmp(cmd, "log") == 0) {
        struct raft_status st;
        raft_status(n->r, &st);
        for (uint64_t i = st.first_index; i <= st.last_index; i++) {
            uint64_t t = 0;
            raft_term_at(n->r, i, &t);
            script_outf("%llu/%llu ", (unsigned long long)i, (unsigned long long)t);
        }
        script_outf("(commit=%llu)\n", (unsigned long long)st.commit);
    } else {
        return -1;
    }
    if (rc != 0)
        script_outf("error %d\n", rc);
    else if (idx)
        script_outf("index %llu\n", (unsigned long long)idx);
    return 0;
}

int main(int argc, char **argv)
{
    /* reset_world both sets up a file's nodes and frees them afterwards. */
    static const struct script_ops ops = {
        .begin = reset_world,
        .run = run_command,
        .end = reset_world,
    };
    return script_main(argc, argv, &ops);
}
