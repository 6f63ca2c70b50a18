/*
 * group_interaction: data-driven tests of the group coordinator, in the style of the
 * raft interaction tests. A script (tests/unit/group/testdata/NAME.txt) is a list of
 * blocks, command then expected output (every completion and every append the command
 * caused), run by the shared script runner (tests/unit/support/script.h).
 *
 * `group_interaction --rewrite FILE...` regenerates the expected output in place; read
 * the diff before committing it. Member ids are shown by alias: a join's `as=A` binds
 * the member id it returns to A, and later commands say member=A.
 *
 * Commands (key=value arguments, any order):
 *   join NAME group=G [member=A] [as=A] [inst=I] [protos=range,rr] [md=X] [type=T]
 *        [session=MS] [rebalance=MS] [require]
 *   sync NAME group=G gen=N member=A [assign=A:x,B:y]
 *   hb group=G gen=N member=A [inst=I]
 *   leave group=G members=A,inst:I,...
 *   commit NAME group=G gen=N member=A [inst=I] [v9] [mdlen=BYTES] topic/partition=offset...
 *        (v9: a request of OffsetCommit v9+, see grp_commit_req.missing_group_not_found;
 *        mdlen: each partition's metadata is that many bytes, default none)
 *   fetch group=G [stable] [topic/partition...]  (no partitions: all; stable:
 *        RequireStable)
 *   commit ... pid=P [epoch=E]   a TxnOffsetCommit in producer P's transaction
 *   marker PARTITION pid=P commit|abort   P's transaction marker in that partition
 *   describe G | list [STATE...] | delete NAME G... | offset-delete NAME group=G t/p...
 *   tick MS          advance the clock, ticking at every deadline on the way
 *   budget BYTES     (first in a file) restart with max_total_member_bytes = BYTES
 *   close NAME       the connection of join NAME closes (grp_config.join_abandoned)
 *   bytes            print the member metadata bytes the coordinator holds
 *   append [ok|ERR]  complete the oldest pending append (default ok)
 *   append-all       complete every pending append successfully
 */
#include "group/group.h"
#include "script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- member aliases ---- */

#define MAX_ALIASES 64
static struct {
    char alias[32];
    char id[256];
} aliases[MAX_ALIASES];
static size_t n_aliases;

static void bind_alias(const char *alias, struct slice id)
{
    for (size_t i = 0; i < n_aliases; i++)
        if (strcmp(aliases[i].alias, alias) == 0) {
            snprintf(aliases[i].id, sizeof aliases[i].id, "%.*s", (int)id.len, id.ptr);
            return;
        }
    if (n_aliases < MAX_ALIASES) {
        snprintf(aliases[n_aliases].alias, sizeof aliases[0].alias, "%s", alias);
        snprintf(aliases[n_aliases].id, sizeof aliases[0].id, "%.*s", (int)id.len, id.ptr);
        n_aliases++;
    }
}

static const char *id_of(const char *alias)
{
    for (size_t i = 0; i < n_aliases; i++)
        if (strcmp(aliases[i].alias, alias) == 0)
            return aliases[i].id;
    return alias; /* a literal id */
}

/* Prints a member id ("" as -); substitute_aliases replaces ids by aliases once the
 * command is done, so that ids bound later in the same command still read as aliases. */
static void out_id(struct slice id)
{
    if (!id.ptr || id.len == 0)
        script_outf("-");
    else
        script_outf("%.*s", (int)id.len, id.ptr);
}

static void substitute_aliases(struct buf *out)
{
    for (size_t a = 0; a < n_aliases; a++) {
        size_t n = strlen(aliases[a].id);
        if (n == 0)
            continue;
        struct buf res;
        buf_init(&res);
        size_t i = 0;
        while (i < out->len) {
            if (out->len - i >= n && memcmp(out->data + i, aliases[a].id, n) == 0) {
                buf_append(&res, aliases[a].alias, strlen(aliases[a].alias));
                i += n;
            } else {
                buf_append(&res, out->data + i, 1);
                i++;
            }
        }
        buf_free(out);
        *out = res;
    }
}

static const char *err_name(int16_t e)
{
    static const struct {
        int16_t code;
        const char *name;
    } names[] = {
        {GRP_ERR_NONE, "NONE"},
        {GRP_ERR_UNKNOWN_SERVER_ERROR, "UNKNOWN_SERVER_ERROR"},
        {GRP_ERR_OFFSET_METADATA_TOO_LARGE, "OFFSET_METADATA_TOO_LARGE"},
        {GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS, "COORDINATOR_LOAD_IN_PROGRESS"},
        {GRP_ERR_COORDINATOR_NOT_AVAILABLE, "COORDINATOR_NOT_AVAILABLE"},
        {GRP_ERR_NOT_COORDINATOR, "NOT_COORDINATOR"},
        {GRP_ERR_ILLEGAL_GENERATION, "ILLEGAL_GENERATION"},
        {GRP_ERR_INCONSISTENT_GROUP_PROTOCOL, "INCONSISTENT_GROUP_PROTOCOL"},
        {GRP_ERR_INVALID_GROUP_ID, "INVALID_GROUP_ID"},
        {GRP_ERR_UNKNOWN_MEMBER_ID, "UNKNOWN_MEMBER_ID"},
        {GRP_ERR_INVALID_SESSION_TIMEOUT, "INVALID_SESSION_TIMEOUT"},
        {GRP_ERR_REBALANCE_IN_PROGRESS, "REBALANCE_IN_PROGRESS"},
        {GRP_ERR_INVALID_REQUEST, "INVALID_REQUEST"},
        {GRP_ERR_NON_EMPTY_GROUP, "NON_EMPTY_GROUP"},
        {GRP_ERR_GROUP_ID_NOT_FOUND, "GROUP_ID_NOT_FOUND"},
        {GRP_ERR_MEMBER_ID_REQUIRED, "MEMBER_ID_REQUIRED"},
        {GRP_ERR_GROUP_MAX_SIZE_REACHED, "GROUP_MAX_SIZE_REACHED"},
        {GRP_ERR_FENCED_INSTANCE_ID, "FENCED_INSTANCE_ID"},
        {GRP_ERR_GROUP_SUBSCRIBED_TO_TOPIC, "GROUP_SUBSCRIBED_TO_TOPIC"},
        {GRP_ERR_UNSTABLE_OFFSET_COMMIT, "UNSTABLE_OFFSET_COMMIT"},
    };
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (names[i].code == e)
            return names[i].name;
    static char tmp[16];
    snprintf(tmp, sizeof tmp, "%d", e);
    return tmp;
}

/* ---- requests in flight ---- */

struct ctx {
    char name[32];
    char as[32]; /* join: alias to bind */
    bool closed; /* `close NAME`: its connection is gone */
};

/* Joins not answered yet, for `close NAME`. */
#define MAX_JOINS 64
static struct ctx *joins[MAX_JOINS];

static void join_forget(struct ctx *c)
{
    for (size_t i = 0; i < MAX_JOINS; i++)
        if (joins[i] == c)
            joins[i] = NULL;
}

static bool join_abandoned(void *p)
{
    return ((struct ctx *)p)->closed;
}

static struct ctx *ctx_new(const char *name, const char *as)
{
    struct ctx *c = xcalloc(1, sizeof(*c));
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->as, sizeof c->as, "%s", as ? as : "");
    return c;
}

static void on_join(void *p, const struct grp_join_resp *r)
{
    struct ctx *c = p;
    if (c->as[0] && r->member_id.len &&
        (r->error == GRP_ERR_NONE || r->error == GRP_ERR_MEMBER_ID_REQUIRED))
        bind_alias(c->as, r->member_id);
    script_outf("%s: join %s member=", c->name, err_name(r->error));
    out_id(r->member_id);
    if (r->error == GRP_ERR_NONE) {
        script_outf(" gen=%d proto=%.*s leader=", r->generation_id, (int)r->protocol_name.len,
                    r->protocol_name.ptr);
        out_id(r->leader);
        if (r->n_members) {
            script_outf(" members=");
            for (size_t i = 0; i < r->n_members; i++) {
                script_outf(i ? "," : "");
                out_id(r->members[i].member_id);
            }
        }
        if (r->skip_assignment)
            script_outf(" skip-assignment");
    }
    script_outf("\n");
    join_forget(c);
    free(c);
}

static void on_sync(void *p, const struct grp_sync_resp *r)
{
    struct ctx *c = p;
    script_outf("%s: sync %s assignment=%.*s\n", c->name, err_name(r->error),
                (int)r->assignment.len, r->assignment.ptr);
    free(c);
}

static void on_heartbeat(void *p, const struct grp_heartbeat_resp *r)
{
    (void)p;
    script_outf("heartbeat %s\n", err_name(r->error));
}

static void on_leave(void *p, const struct grp_leave_resp *r)
{
    (void)p;
    script_outf("leave %s", err_name(r->error));
    for (size_t i = 0; i < r->n_members; i++) {
        script_outf(" ");
        if (r->members[i].member_id.len)
            out_id(r->members[i].member_id);
        else
            script_outf("inst:%.*s", (int)r->members[i].group_instance_id.len,
                        r->members[i].group_instance_id.ptr);
        script_outf("=%s", err_name(r->members[i].error));
    }
    script_outf("\n");
}

static void on_commit(void *p, const struct grp_commit_resp *r)
{
    struct ctx *c = p;
    script_outf("%s: commit", c->name);
    for (size_t t = 0; t < r->n_topics; t++)
        for (size_t i = 0; i < r->topics[t].n_partitions; i++)
            script_outf(" %.*s/%d=%s", (int)r->topics[t].name.len, r->topics[t].name.ptr,
                        r->topics[t].partitions[i].partition,
                        err_name(r->topics[t].partitions[i].error));
    script_outf("\n");
    free(c);
}

static void on_fetch(void *p, const struct grp_fetch_resp *r)
{
    (void)p;
    for (size_t g = 0; g < r->n_groups; g++) {
        script_outf("fetch %.*s %s", (int)r->groups[g].group_id.len, r->groups[g].group_id.ptr,
                    err_name(r->groups[g].error));
        for (size_t t = 0; t < r->groups[g].n_topics; t++) {
            const struct grp_fetch_resp_topic *rt = &r->groups[g].topics[t];
            for (size_t i = 0; i < rt->n_partitions; i++) {
                script_outf(" %.*s/%d=%lld", (int)rt->name.len, rt->name.ptr,
                            rt->partitions[i].partition, (long long)rt->partitions[i].offset);
                if (rt->partitions[i].error != r->groups[g].error)
                    script_outf("(%s)", err_name(rt->partitions[i].error));
            }
        }
        script_outf("\n");
    }
}

static void on_describe(void *p, const struct grp_describe_resp *r)
{
    (void)p;
    for (size_t g = 0; g < r->n_groups; g++) {
        const struct grp_describe_group *d = &r->groups[g];
        script_outf("describe %.*s %s state=%.*s type=%.*s proto=%.*s", (int)d->group_id.len,
                    d->group_id.ptr, err_name(d->error), (int)d->state.len, d->state.ptr,
                    (int)d->protocol_type.len, d->protocol_type.ptr, (int)d->protocol.len,
                    d->protocol.ptr);
        for (size_t i = 0; i < d->n_members; i++) {
            script_outf(" ");
            out_id(d->members[i].member_id);
            if (d->members[i].group_instance_id.ptr)
                script_outf("(inst:%.*s)", (int)d->members[i].group_instance_id.len,
                            d->members[i].group_instance_id.ptr);
            if (d->members[i].assignment.len)
                script_outf(":%.*s", (int)d->members[i].assignment.len,
                            d->members[i].assignment.ptr);
        }
        script_outf("\n");
    }
}

static void on_list(void *p, const struct grp_list_resp *r)
{
    (void)p;
    script_outf("list %s", err_name(r->error));
    for (size_t i = 0; i < r->n_groups; i++)
        script_outf(" %.*s(%.*s)", (int)r->groups[i].group_id.len, r->groups[i].group_id.ptr,
                    (int)r->groups[i].state.len, r->groups[i].state.ptr);
    script_outf("\n");
}

static void on_delete_groups(void *p, const struct grp_delete_groups_resp *r)
{
    struct ctx *c = p;
    script_outf("%s: delete", c->name);
    for (size_t i = 0; i < r->n_results; i++)
        script_outf(" %.*s=%s", (int)r->results[i].group_id.len, r->results[i].group_id.ptr,
                    err_name(r->results[i].error));
    script_outf("\n");
    free(c);
}

static void on_offset_delete(void *p, const struct grp_offset_delete_resp *r)
{
    struct ctx *c = p;
    script_outf("%s: offset-delete %s", c->name, err_name(r->error));
    for (size_t t = 0; t < r->n_topics; t++)
        for (size_t i = 0; i < r->topics[t].n_partitions; i++)
            script_outf(" %.*s/%d=%s", (int)r->topics[t].name.len, r->topics[t].name.ptr,
                        r->topics[t].partitions[i].partition,
                        err_name(r->topics[t].partitions[i].error));
    script_outf("\n");
    free(c);
}

/* ---- appends: printed as they are requested, completed by `append` ---- */

static void *pending[256];
static size_t n_pending;

static void print_record(const struct grp_record *rec)
{
    struct grp_key k;
    if (grp_key_decode(rec->key, &k) != 0) {
        script_outf("  malformed key\n");
        return;
    }
    if (k.kind == GRP_KEY_OFFSET) {
        script_outf("  offset %.*s %.*s/%d", (int)k.group.len, k.group.ptr, (int)k.topic.len,
                    k.topic.ptr, k.partition);
        struct grp_offset_value v;
        if (!rec->value.ptr)
            script_outf(" tombstone\n");
        else if (grp_offset_value_decode(rec->value, &v) == 0)
            script_outf(" = %lld\n", (long long)v.offset);
        else
            script_outf(" malformed\n");
        return;
    }
    script_outf("  group %.*s", (int)k.group.len, k.group.ptr);
    if (!rec->value.ptr) {
        script_outf(" tombstone\n");
        return;
    }
    struct arena a;
    arena_init(&a);
    struct grp_group_value v;
    if (grp_group_value_decode(rec->value, &a, &v) == 0) {
        script_outf(" gen=%d proto=%.*s leader=", v.generation, (int)v.protocol.len,
                    v.protocol.ptr);
        out_id(v.leader);
        script_outf(" members=[");
        for (size_t i = 0; i < v.n_members; i++) {
            script_outf(i ? " " : "");
            out_id(v.members[i].member_id);
            script_outf(":%.*s", (int)v.members[i].assignment.len, v.members[i].assignment.ptr);
        }
        script_outf("]\n");
    } else {
        script_outf(" malformed\n");
    }
    arena_free(&a);
}

static void fake_append(void *arg, int32_t partition, const struct grp_record *recs, size_t n,
                        void *token)
{
    (void)arg;
    script_outf("append __consumer_offsets-%d:\n", partition);
    for (size_t i = 0; i < n; i++)
        print_record(&recs[i]);
    if (n_pending < ARRAY_LEN(pending))
        pending[n_pending++] = token;
}

static void fake_append_txn(void *arg, int32_t partition, const struct grp_record *recs, size_t n,
                            int64_t producer_id, int16_t producer_epoch, void *token)
{
    script_outf("append txn pid=%lld epoch=%d ", (long long)producer_id, producer_epoch);
    fake_append(arg, partition, recs, n, token);
}

/* ---- world ---- */

static struct grp_coordinator *C;
static int64_t now;
static int64_t member_budget = -1; /* `budget`: -1 keeps the default */

static void reset_world(void)
{
    if (C)
        grp_coordinator_destroy(C);
    C = NULL;
    n_pending = 0;
    n_aliases = 0;
    now = 1700000000000LL;
    struct grp_config cfg;
    grp_config_defaults(&cfg);
    cfg.append = fake_append;
    cfg.append_txn = fake_append_txn;
    cfg.on_join_done = on_join;
    cfg.on_sync_done = on_sync;
    cfg.on_heartbeat_done = on_heartbeat;
    cfg.on_leave_done = on_leave;
    cfg.on_commit_done = on_commit;
    cfg.on_fetch_done = on_fetch;
    cfg.on_describe_done = on_describe;
    cfg.on_list_done = on_list;
    cfg.on_delete_groups_done = on_delete_groups;
    cfg.on_offset_delete_done = on_offset_delete;
    cfg.member_id_seed = 7;
    cfg.join_abandoned = join_abandoned;
    if (member_budget >= 0)
        cfg.max_total_member_bytes = member_budget;
    ASSERT(grp_coordinator_create(&cfg, &C) == 0);
    for (int32_t p = 0; p < cfg.offsets_num_partitions; p++) {
        grp_load_begin(C, now, p);
        grp_load_end(C, now, p);
    }
}

/* ---- argument parsing ---- */

/* The words of the command being run (script.h). */
static char **argv_;
static int argc_;

static const char *arg(const char *key)
{
    size_t n = strlen(key);
    for (int i = 1; i < argc_; i++)
        if (strncmp(argv_[i], key, n) == 0 && argv_[i][n] == '=')
            return argv_[i] + n + 1;
    return NULL;
}

static bool flag(const char *key)
{
    for (int i = 1; i < argc_; i++)
        if (strcmp(argv_[i], key) == 0)
            return true;
    return false;
}

static int32_t arg_i32(const char *key, int32_t dflt)
{
    const char *v = arg(key);
    return v ? (int32_t)strtol(v, NULL, 10) : dflt;
}

static struct slice S(const char *s) {
    return s ? slice_from_cstr(s) : SLICE_NULL;
}

/* Splits a comma list in place. */
static size_t
split(char *s, char **parts, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ","))
        parts[n++] = tok;
    return n;
}

static int cmd_join(void)
{
    char protos_buf[256];
    snprintf(protos_buf, sizeof protos_buf, "%s", arg("protos") ? arg("protos") : "range");
    char *names[8];
    size_t n = split(protos_buf, names, 8);
    struct grp_protocol ps[8];
    char md[8][64];
    for (size_t i = 0; i < n; i++) {
        snprintf(md[i], sizeof md[i], "%s", arg("md") ? arg("md") : names[i]);
        ps[i] = (struct grp_protocol){S(names[i]), S(md[i])};
    }
    const char *member = arg("member");
    struct grp_join_req req = {
        .group_id = S(arg("group")),
        .session_timeout_ms = arg_i32("session", 10000),
        .rebalance_timeout_ms = arg_i32("rebalance", 20000),
        .member_id = S(member ? id_of(member) : ""),
        .group_instance_id = S(arg("inst")),
        .protocol_type = S(arg("type") ? arg("type") : "consumer"),
        .protocols = ps,
        .n_protocols = n,
        .require_known_member_id = flag("require"),
        .client_id = S("client"),
        .client_host = S("/10.0.0.1"),
    };
    struct ctx *ctx = ctx_new(argv_[1], arg("as"));
    for (size_t i = 0; i < MAX_JOINS; i++) {
        if (!joins[i]) {
            joins[i] = ctx;
            break;
        }
    }
    grp_join(C, now, &req, ctx);
    return 0;
}

static int cmd_sync(void)
{
    struct grp_assignment as[16];
    size_t n = 0;
    char buf[512];
    char *parts[16];
    if (arg("assign")) {
        snprintf(buf, sizeof buf, "%s", arg("assign"));
        size_t np = split(buf, parts, 16);
        for (size_t i = 0; i < np; i++) {
            char *colon = strchr(parts[i], ':');
            if (!colon)
                return -1;
            *colon = 0;
            as[n++] = (struct grp_assignment){S(id_of(parts[i])), S(colon + 1)};
        }
    }
    struct grp_sync_req req = {.group_id = S(arg("group")),
                               .generation_id = arg_i32("gen", -1),
                               .member_id = S(id_of(arg("member") ? arg("member") : "")),
                               .assignments = as,
                               .n_assignments = n};
    grp_sync(C, now, &req, ctx_new(argv_[1], NULL));
    return 0;
}

/* topic/partition[=offset] */
static int parse_tp(const char *s, char *topic, size_t cap, int32_t *partition, int64_t *offset)
{
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= cap)
        return -1;
    memcpy(topic, s, (size_t)(slash - s));
    topic[slash - s] = 0;
    *partition = (int32_t)strtol(slash + 1, NULL, 10);
    const char *eq = strchr(slash, '=');
    if (offset)
        *offset = eq ? strtoll(eq + 1, NULL, 10) : 0;
    return 0;
}

/* Positional topic/partition arguments grouped one topic each (fine for tests). */
struct tps {
    char topics[16][64];
    int32_t parts[16];
    int64_t offsets[16];
    size_t n;
};

static int collect_tps(struct tps *t, int from)
{
    t->n = 0;
    for (int i = from; i < argc_ && t->n < 16; i++) {
        if (!strchr(argv_[i], '/'))
            continue;
        if (parse_tp(argv_[i], t->topics[t->n], 64, &t->parts[t->n], &t->offsets[t->n]) != 0)
            return -1;
        t->n++;
    }
    return 0;
}

static int cmd_commit(void)
{
    struct tps t;
    if (collect_tps(&t, 2) != 0)
        return -1;
    struct grp_commit_partition ps[16];
    struct grp_commit_topic ts[16];
    static uint8_t md[8192];
    int32_t mdlen = arg_i32("mdlen", 0);
    if (mdlen < 0 || (size_t)mdlen > sizeof md)
        return -1;
    memset(md, 'x', (size_t)mdlen);
    for (size_t i = 0; i < t.n; i++) {
        ps[i] = (struct grp_commit_partition){t.parts[i], t.offsets[i], -1,
                                              (struct slice){md, (size_t)mdlen}};
        ts[i] = (struct grp_commit_topic){S(t.topics[i]), &ps[i], 1};
    }
    const char *member = arg("member");
    struct grp_commit_req req = {S(arg("group")),
                                 arg_i32("gen", -1),
                                 S(member ? id_of(member) : ""),
                                 S(arg("inst")),
                                 ts,
                                 t.n,
                                 flag("v9")};
    if (arg("pid"))
        grp_txn_commit(C, now, &req, strtoll(arg("pid"), NULL, 10), (int16_t)arg_i32("epoch", 0),
                       ctx_new(argv_[1], NULL));
    else
        grp_commit(C, now, &req, ctx_new(argv_[1], NULL));
    return 0;
}

static int cmd_fetch(void)
{
    struct tps t;
    if (collect_tps(&t, 1) != 0)
        return -1;
    struct grp_fetch_topic ts[16];
    for (size_t i = 0; i < t.n; i++)
        ts[i] = (struct grp_fetch_topic){S(t.topics[i]), &t.parts[i], 1};
    struct grp_fetch_group g = {S(arg("group")), t.n ? ts : NULL, t.n};
    struct grp_fetch_req req = {&g, 1, flag("stable")};
    grp_fetch(C, now, &req, NULL);
    return 0;
}

static int cmd_offset_delete(void)
{
    struct tps t;
    if (collect_tps(&t, 2) != 0)
        return -1;
    struct grp_fetch_topic ts[16];
    for (size_t i = 0; i < t.n; i++)
        ts[i] = (struct grp_fetch_topic){S(t.topics[i]), &t.parts[i], 1};
    struct grp_offset_delete_req req = {S(arg("group")), ts, t.n};
    grp_offset_delete(C, now, &req, ctx_new(argv_[1], NULL));
    return 0;
}

static int cmd_leave(void)
{
    char buf[512];
    char *parts[16];
    snprintf(buf, sizeof buf, "%s", arg("members") ? arg("members") : "");
    size_t n = split(buf, parts, 16);
    struct grp_member_identity who[16];
    for (size_t i = 0; i < n; i++) {
        if (strncmp(parts[i], "inst:", 5) == 0)
            who[i] = (struct grp_member_identity){S(""), S(parts[i] + 5)};
        else
            who[i] = (struct grp_member_identity){S(id_of(parts[i])), SLICE_NULL};
    }
    struct grp_leave_req req = {S(arg("group")), who, n};
    grp_leave(C, now, &req, NULL);
    return 0;
}

static void tick(int64_t ms)
{
    int64_t target = now + ms;
    for (int guard = 0; guard < 100000; guard++) {
        int64_t d = grp_next_deadline(C);
        if (d > target)
            break;
        if (d > now)
            now = d;
        grp_tick(C, now);
    }
    now = target;
    grp_tick(C, now);
}

static void complete_append(int16_t error)
{
    void *tok = pending[0];
    memmove(&pending[0], &pending[1], (n_pending - 1) * sizeof(pending[0]));
    n_pending--;
    grp_append_done(C, now, tok, error);
}

static int run_command(int argc, char **argv)
{
    argc_ = argc;
    argv_ = argv;
    if (argc_ == 0)
        return -1;
    const char *cmd = argv_[0];
    if (strcmp(cmd, "join") == 0 && argc_ >= 2)
        return cmd_join();
    if (strcmp(cmd, "sync") == 0 && argc_ >= 2)
        return cmd_sync();
    if (strcmp(cmd, "commit") == 0 && argc_ >= 2)
        return cmd_commit();
    if (strcmp(cmd, "fetch") == 0)
        return cmd_fetch();
    if (strcmp(cmd, "offset-delete") == 0 && argc_ >= 2)
        return cmd_offset_delete();
    if (strcmp(cmd, "marker") == 0 && argc_ >= 3 && arg("pid")) {
        grp_txn_marker(C, (int32_t)strtol(argv_[1], NULL, 10), strtoll(arg("pid"), NULL, 10),
                       flag("commit"));
        return 0;
    }
    if (strcmp(cmd, "leave") == 0)
        return cmd_leave();
    if (strcmp(cmd, "hb") == 0) {
        const char *member = arg("member");
        struct grp_heartbeat_req req = {S(arg("group")), arg_i32("gen", -1),
                                        S(member ? id_of(member) : ""), S(arg("inst"))};
        grp_heartbeat(C, now, &req, NULL);
        return 0;
    }
    if (strcmp(cmd, "describe") == 0 && argc_ >= 2) {
        struct slice ids[16];
        size_t n = 0;
        for (int i = 1; i < argc_ && n < 16; i++)
            ids[n++] = S(argv_[i]);
        struct grp_describe_req req = {ids, n};
        grp_describe(C, now, &req, NULL);
        return 0;
    }
    if (strcmp(cmd, "list") == 0) {
        struct slice states[8];
        size_t n = 0;
        for (int i = 1; i < argc_ && n < 8; i++)
            states[n++] = S(argv_[i]);
        struct grp_list_req req = {states, n};
        grp_list(C, now, &req, NULL);
        return 0;
    }
    if (strcmp(cmd, "delete") == 0 && argc_ >= 3) {
        struct slice ids[16];
        size_t n = 0;
        for (int i = 2; i < argc_ && n < 16; i++)
            ids[n++] = S(argv_[i]);
        struct grp_delete_groups_req req = {ids, n};
        grp_delete_groups(C, now, &req, ctx_new(argv_[1], NULL));
        return 0;
    }
    if (strcmp(cmd, "budget") == 0 && argc_ == 2) {
        member_budget = strtoll(argv_[1], NULL, 10);
        reset_world();
        return 0;
    }
    if (strcmp(cmd, "close") == 0 && argc_ == 2) {
        for (size_t i = 0; i < MAX_JOINS; i++)
            if (joins[i] && strcmp(joins[i]->name, argv_[1]) == 0)
                joins[i]->closed = true;
        return 0;
    }
    if (strcmp(cmd, "bytes") == 0) {
        script_outf("member bytes %zu\n", grp_member_bytes(C));
        return 0;
    }
    if (strcmp(cmd, "tick") == 0 && argc_ == 2) {
        tick(strtoll(argv_[1], NULL, 10));
        return 0;
    }
    if (strcmp(cmd, "append") == 0) {
        if (n_pending == 0) {
            script_outf("no pending append\n");
            return 0;
        }
        int16_t e = 0;
        if (argc_ >= 2 && strcmp(argv_[1], "ok") != 0)
            e = (int16_t)strtol(argv_[1], NULL, 10);
        complete_append(e);
        return 0;
    }
    if (strcmp(cmd, "append-all") == 0) {
        while (n_pending > 0)
            complete_append(0);
        return 0;
    }
    return -1;
}

/* Destroying the coordinator answers whatever still waits; the runner drops that output. */
static void end_world(void)
{
    grp_coordinator_destroy(C);
    C = NULL;
    member_budget = -1;
    memset(joins, 0, sizeof joins);
}

int main(int argc, char **argv)
{
    static const struct script_ops ops = {
        .begin = reset_world,
        .run = run_command,
        .finish = substitute_aliases,
        .end = end_world,
    };
    return script_main(argc, argv, &ops);
}
