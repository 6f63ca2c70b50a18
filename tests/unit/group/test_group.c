/*
 * Group coordinator unit tests: the state machine driven like a client would drive it,
 * with a fake clock and a fake durable log. Every completion is captured into the
 * result struct passed as the request's ctx; the harness checks that each request is
 * completed exactly once (a second completion fails the test, a missing one is caught
 * by the outstanding counter at teardown).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "group/group.h"

/* ---- captured results ---- */

struct join_res {
    int calls;
    int16_t error;
    int32_t generation;
    char member_id[256];
    char leader[256];
    char protocol[64];
    bool skip_assignment;
    size_t n_members;
    char members[8][256];
};

struct sync_res {
    int calls;
    int16_t error;
    char assignment[256];
};

struct commit_res {
    int calls;
    int16_t errors[16];
    size_t n;
};

struct fetch_res {
    int calls;
    int16_t group_error;
    size_t n_parts;
    char topic[16][64];
    int32_t partition[16];
    int64_t offset[16];
    char metadata[16][64];
};

struct simple_res { /* heartbeat, leave, offset delete, delete groups */
    int calls;
    int16_t error;
    int16_t errors[16];
    size_t n;
};

struct describe_res {
    int calls;
    int16_t error;
    char state[32];
    char protocol_type[32];
    char protocol[32];
    size_t n_members;
    char member_id[8][256];
    char assignment[8][64];
    char metadata[8][64];
};

struct list_res {
    int calls;
    int16_t error;
    size_t n;
    char ids[16][64];
    char states[16][32];
};

static int outstanding; /* requests sent minus completions */

static void copy_str(char *dst, size_t cap, struct slice s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = 0;
}

static void on_join(void *ctx, const struct grp_join_resp *r)
{
    struct join_res *j = ctx;
    assert_int_equal(j->calls, 0);
    j->calls++;
    outstanding--;
    j->error = r->error;
    j->generation = r->generation_id;
    copy_str(j->member_id, sizeof(j->member_id), r->member_id);
    copy_str(j->leader, sizeof(j->leader), r->leader);
    copy_str(j->protocol, sizeof(j->protocol), r->protocol_name);
    j->skip_assignment = r->skip_assignment;
    j->n_members = r->n_members;
    for (size_t i = 0; i < r->n_members && i < 8; i++)
        copy_str(j->members[i], sizeof(j->members[i]), r->members[i].member_id);
}

static void on_sync(void *ctx, const struct grp_sync_resp *r)
{
    struct sync_res *s = ctx;
    assert_int_equal(s->calls, 0);
    s->calls++;
    outstanding--;
    s->error = r->error;
    copy_str(s->assignment, sizeof(s->assignment), r->assignment);
}

static void on_heartbeat(void *ctx, const struct grp_heartbeat_resp *r)
{
    struct simple_res *s = ctx;
    assert_int_equal(s->calls, 0);
    s->calls++;
    outstanding--;
    s->error = r->error;
}

static void on_leave(void *ctx, const struct grp_leave_resp *r)
{
    struct simple_res *s = ctx;
    assert_int_equal(s->calls, 0);
    s->calls++;
    outstanding--;
    s->error = r->error;
    s->n = r->n_members;
    for (size_t i = 0; i < r->n_members && i < 16; i++)
        s->errors[i] = r->members[i].error;
}

static void on_commit(void *ctx, const struct grp_commit_resp *r)
{
    struct commit_res *s = ctx;
    assert_int_equal(s->calls, 0);
    s->calls++;
    outstanding--;
    s->n = 0;
    for (size_t t = 0; t < r->n_topics; t++)
        for (size_t p = 0; p < r->topics[t].n_partitions && s->n < 16; p++)
            s->errors[s->n++] = r->topics[t].partitions[p].error;
}

static void on_fetch(void *ctx, const struct grp_fetch_resp *r)
{
    struct fetch_res *f = ctx;
    assert_int_equal(f->calls, 0);
    f->calls++;
    outstanding--;
    assert_true(r->n_groups >= 1);
    f->group_error = r->groups[0].error;
    f->n_parts = 0;
    for (size_t g = 0; g < r->n_groups; g++) {
        for (size_t t = 0; t < r->groups[g].n_topics; t++) {
            const struct grp_fetch_resp_topic *rt = &r->groups[g].topics[t];
            for (size_t p = 0; p < rt->n_partitions && f->n_parts < 16; p++) {
                size_t i = f->n_parts++;
                copy_str(f->topic[i], sizeof(f->topic[i]), rt->name);
                f->partition[i] = rt->partitions[p].partition;
                f->offset[i] = rt->partitions[p].offset;
                copy_str(f->metadata[i], sizeof(f->metadata[i]), rt->partitions[p].metadata);
            }
        }
    }
}

static void on_describe(void *ctx, const struct grp_describe_resp *r)
{
    struct describe_res *d = ctx;
    assert_int_equal(d->calls, 0);
    d->calls++;
    outstanding--;
    assert_int_equal(r->n_groups, 1);
    const struct grp_describe_group *g = &r->groups[0];
    d->error = g->error;
    copy_str(d->state, sizeof(d->state), g->state);
    copy_str(d->protocol_type, sizeof(d->protocol_type), g->protocol_type);
    copy_str(d->protocol, sizeof(d->protocol), g->protocol);
    d->n_members = g->n_members;
    for (size_t i = 0; i < g->n_members && i < 8; i++) {
        copy_str(d->member_id[i], sizeof(d->member_id[i]), g->members[i].member_id);
        copy_str(d->assignment[i], sizeof(d->assignment[i]), g->members[i].assignment);
        copy_str(d->metadata[i], sizeof(d->metadata[i]), g->members[i].metadata);
    }
}

static void on_list(void *ctx, const struct grp_list_resp *r)
{
    struct list_res *l = ctx;
    assert_int_equal(l->calls, 0);
    l->calls++;
    outstanding--;
    l->error = r->error;
    l->n = r->n_groups;
    for (size_t i = 0; i < r->n_groups && i < 16; i++) {
        copy_str(l->ids[i], sizeof(l->ids[i]), r->groups[i].group_id);
        copy_str(l->states[i], sizeof(l->states[i]), r->groups[i].state);
    }
}

static void on_delete_groups(void *ctx, const struct grp_delete_groups_resp *r)
{
    struct simple_res *s = ctx;
    assert_int_equal(s->calls, 0);
    s->calls++;
    outstanding--;
    s->n = r->n_results;
    for (size_t i = 0; i < r->n_results && i < 16; i++)
        s->errors[i] = r->results[i].error;
}

static void on_offset_delete(void *ctx, const struct grp_offset_delete_resp *r)
{
    struct simple_res *s = ctx;
    assert_int_equal(s->calls, 0);
    s->calls++;
    outstanding--;
    s->error = r->error;
    s->n = 0;
    for (size_t t = 0; t < r->n_topics; t++)
        for (size_t p = 0; p < r->topics[t].n_partitions && s->n < 16; p++)
            s->errors[s->n++] = r->topics[t].partitions[p].error;
}

/* ---- fake durable log ---- */

struct logged {
    int32_t partition;
    struct buf key;
    struct buf value;
    bool tombstone;
};

struct pending_append {
    void *token;
    int32_t partition;
    size_t first, n; /* records in staged[] */
};

#define MAX_RECORDS 4096
static struct logged staged[MAX_RECORDS]; /* appended, maybe not yet durable */
static size_t n_staged;
static struct logged durable[MAX_RECORDS]; /* the log after successful appends */
static size_t n_durable;
static struct pending_append appends[256];
static size_t n_appends;

static void fake_append(void *arg, int32_t partition, const struct grp_record *recs, size_t n,
                        void *token)
{
    (void)arg;
    assert_true(n > 0);
    assert_true(n_appends < 256 && n_staged + n <= MAX_RECORDS);
    appends[n_appends++] = (struct pending_append){token, partition, n_staged, n};
    for (size_t i = 0; i < n; i++) {
        struct logged *l = &staged[n_staged++];
        l->partition = partition;
        buf_init(&l->key);
        buf_init(&l->value);
        buf_append(&l->key, recs[i].key.ptr, recs[i].key.len);
        l->tombstone = recs[i].value.ptr == NULL;
        if (!l->tombstone)
            buf_append(&l->value, recs[i].value.ptr, recs[i].value.len);
    }
}

/* ---- environment ---- */

static struct grp_coordinator *C;
static int64_t now;

static void env_start(struct grp_config *cfg)
{
    cfg->append = fake_append;
    cfg->on_join_done = on_join;
    cfg->on_sync_done = on_sync;
    cfg->on_heartbeat_done = on_heartbeat;
    cfg->on_leave_done = on_leave;
    cfg->on_commit_done = on_commit;
    cfg->on_fetch_done = on_fetch;
    cfg->on_describe_done = on_describe;
    cfg->on_list_done = on_list;
    cfg->on_delete_groups_done = on_delete_groups;
    cfg->on_offset_delete_done = on_offset_delete;
    cfg->member_id_seed = 42;
    assert_int_equal(grp_coordinator_create(cfg, &C), 0);
}

static void load_all(void)
{
    for (int32_t p = 0; p < 50; p++) {
        grp_load_begin(C, now, p);
        grp_load_end(C, now, p);
    }
}

static int setup(void **state)
{
    (void)state;
    say_set_level(SAY_LEVEL_WARN);
    now = 1700000000000LL;
    outstanding = 0;
    n_staged = n_durable = n_appends = 0;
    struct grp_config cfg;
    grp_config_defaults(&cfg);
    env_start(&cfg);
    load_all();
    return 0;
}

static void free_log(void)
{
    for (size_t i = 0; i < n_staged; i++) {
        buf_free(&staged[i].key);
        buf_free(&staged[i].value);
    }
    for (size_t i = 0; i < n_durable; i++) {
        buf_free(&durable[i].key);
        buf_free(&durable[i].value);
    }
    n_staged = n_durable = n_appends = 0;
}

static int teardown(void **state)
{
    (void)state;
    grp_coordinator_destroy(C);
    C = NULL;
    assert_int_equal(outstanding, 0);
    free_log();
    return 0;
}

/* Completes the oldest pending append (records become durable on success). */
static void complete_append(int16_t error)
{
    assert_true(n_appends > 0);
    struct pending_append a = appends[0];
    memmove(&appends[0], &appends[1], (n_appends - 1) * sizeof(appends[0]));
    n_appends--;
    if (!error) {
        for (size_t i = 0; i < a.n; i++) {
            struct logged *l = &durable[n_durable++];
            *l = staged[a.first + i];
            buf_init(&l->key);
            buf_init(&l->value);
            buf_append(&l->key, staged[a.first + i].key.data, staged[a.first + i].key.len);
            if (!l->tombstone)
                buf_append(&l->value, staged[a.first + i].value.data,
                           staged[a.first + i].value.len);
        }
    }
    grp_append_done(C, now, a.token, error);
}

static void complete_all_appends(void)
{
    while (n_appends > 0)
        complete_append(0);
}

/* Moves the clock, ticking at every deadline on the way as a server would. */
static void advance(int64_t ms)
{
    int64_t target = now + ms;
    for (int guard = 0; guard < 10000; guard++) {
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

static struct slice S(const char *s) {
    return s ? slice_from_cstr(s) : SLICE_NULL;
}

/* ---- request helpers ---- */

struct join_opts {
    const char *instance;
    const char *type;
    const char *protocols[4]; /* names; metadata = "md-" + name, or consumer subscription */
    const char *metadata[4];
    int32_t session_ms;
    int32_t rebalance_ms;
    bool require_known;
};

static void join(const char *group, const char *member, const struct join_opts *o,
                 struct join_res *r)
{
    memset(r, 0, sizeof(*r));
    struct grp_protocol ps[4];
    size_t n = 0;
    char md[4][64];
    for (; n < 4 && o->protocols[n]; n++) {
        snprintf(md[n], sizeof(md[n]), "md-%s", o->protocols[n]);
        ps[n].name = S(o->protocols[n]);
        ps[n].metadata = o->metadata[n] ? S(o->metadata[n]) : S(md[n]);
    }
    struct grp_join_req req = {
        .group_id = S(group),
        .session_timeout_ms = o->session_ms ? o->session_ms : 10000,
        .rebalance_timeout_ms = o->rebalance_ms ? o->rebalance_ms : 20000,
        .member_id = S(member ? member : ""),
        .group_instance_id = S(o->instance),
        .protocol_type = S(o->type ? o->type : "consumer"),
        .protocols = ps,
        .n_protocols = n,
        .require_known_member_id = o->require_known,
        .client_id = S("client"),
        .client_host = S("/127.0.0.1"),
    };
    outstanding++;
    grp_join(C, now, &req, r);
}

static const struct join_opts RANGE = {.protocols = {"range"}};

/* New dynamic member without the MEMBER_ID_REQUIRED round. */
static void join_new(const char *group, struct join_res *r)
{
    join(group, "", &RANGE, r);
}

static void sync_req(const char *group, int32_t gen, const char *member, const char **ids,
                     const char **assigns, size_t n, struct sync_res *r)
{
    memset(r, 0, sizeof(*r));
    struct grp_assignment as[8];
    for (size_t i = 0; i < n; i++)
        as[i] = (struct grp_assignment){S(ids[i]), S(assigns[i])};
    struct grp_sync_req req = {.group_id = S(group),
                               .generation_id = gen,
                               .member_id = S(member),
                               .assignments = as,
                               .n_assignments = n};
    outstanding++;
    grp_sync(C, now, &req, r);
}

static int16_t heartbeat_inst(const char *group, int32_t gen, const char *member,
                              const char *instance)
{
    struct simple_res r = {0};
    struct grp_heartbeat_req req = {S(group), gen, S(member), S(instance)};
    outstanding++;
    grp_heartbeat(C, now, &req, &r);
    assert_int_equal(r.calls, 1);
    return r.error;
}

static int16_t heartbeat(const char *group, int32_t gen, const char *member)
{
    return heartbeat_inst(group, gen, member, NULL);
}

static void commit(const char *group, int32_t gen, const char *member, const char *topic,
                   int32_t partition, int64_t offset, struct commit_res *r)
{
    memset(r, 0, sizeof(*r));
    struct grp_commit_partition p = {partition, offset, 7, S("meta")};
    struct grp_commit_topic t = {S(topic), &p, 1};
    struct grp_commit_req req = {S(group), gen, S(member), SLICE_NULL, &t, 1, false};
    outstanding++;
    grp_commit(C, now, &req, r);
}

static int64_t fetch_offset(const char *group, const char *topic, int32_t partition)
{
    struct fetch_res r = {0};
    struct grp_fetch_topic t = {S(topic), &partition, 1};
    struct grp_fetch_group g = {S(group), &t, 1};
    struct grp_fetch_req req = {&g, 1, false};
    outstanding++;
    grp_fetch(C, now, &req, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.group_error, 0);
    assert_int_equal(r.n_parts, 1);
    return r.offset[0];
}

static void describe(const char *group, struct describe_res *r)
{
    memset(r, 0, sizeof(*r));
    struct slice id = S(group);
    struct grp_describe_req req = {&id, 1};
    outstanding++;
    grp_describe(C, now, &req, r);
    assert_int_equal(r->calls, 1);
}

static const char *state_of(const char *group)
{
    static struct describe_res d;
    describe(group, &d);
    return d.state;
}

/* Brings a group with members joined (dynamic, in order) to Stable, generation 1.
 * Returns the member ids in ids[]. */
static void stable_group(const char *group, size_t n, char ids[][256])
{
    struct join_res j[8];
    for (size_t i = 0; i < n; i++)
        join_new(group, &j[i]);
    advance(3000); /* initial delay */
    advance(3000); /* extended once because members were added meanwhile */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(j[i].calls, 1);
        assert_int_equal(j[i].error, 0);
        assert_int_equal(j[i].generation, 1);
        strcpy(ids[i], j[i].member_id);
    }
    const char *pids[8];
    const char *as[8];
    char abuf[8][32];
    for (size_t i = 0; i < n; i++) {
        pids[i] = ids[i];
        snprintf(abuf[i], sizeof(abuf[i]), "assign-%zu", i);
        as[i] = abuf[i];
    }
    struct sync_res s[8];
    for (size_t i = 1; i < n; i++)
        sync_req(group, 1, ids[i], NULL, NULL, 0, &s[i]);
    sync_req(group, 1, ids[0], pids, as, n, &s[0]);
    complete_all_appends();
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].error, 0);
        assert_string_equal(s[i].assignment, abuf[i]);
    }
    assert_string_equal(state_of(group), "Stable");
}

/* ---- tests: records ---- */

static void test_records_roundtrip(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    grp_offset_key_encode(&b, S("g"), S("topic"), 3);
    struct grp_key k;
    assert_int_equal(grp_key_decode((struct slice){b.data, b.len}, &k), 0);
    assert_int_equal(k.kind, GRP_KEY_OFFSET);
    assert_int_equal(k.version, 1);
    assert_true(slice_eq_cstr(k.group, "g") && slice_eq_cstr(k.topic, "topic"));
    assert_int_equal(k.partition, 3);
    /* Exact bytes: version 1, "g", "topic", 3. */
    static const uint8_t want[] = {0, 1, 0, 1, 'g', 0, 5, 't', 'o', 'p', 'i', 'c', 0, 0, 0, 3};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    buf_reset(&b);
    struct grp_offset_value ov = {123456789012LL, 5, S("md"), 1700000000000LL, -1};
    grp_offset_value_encode(&b, &ov);
    struct grp_offset_value ov2;
    assert_int_equal(grp_offset_value_decode((struct slice){b.data, b.len}, &ov2), 0);
    assert_int_equal(ov2.offset, ov.offset);
    assert_int_equal(ov2.leader_epoch, 5);
    assert_true(slice_eq_cstr(ov2.metadata, "md"));
    assert_int_equal(ov2.commit_timestamp_ms, ov.commit_timestamp_ms);
    assert_int_equal(ov2.expire_timestamp_ms, -1);
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(grp_offset_value_decode((struct slice){b.data, cut}, &ov2), -1);

    /* A v1 offset value (as Kafka 2.0 wrote with an explicit retention). */
    buf_reset(&b);
    buf_put_i16(&b, 1);
    buf_put_i64(&b, 42);
    buf_put_i16(&b, 0);
    buf_put_i64(&b, 1000);
    buf_put_i64(&b, 2000);
    assert_int_equal(grp_offset_value_decode((struct slice){b.data, b.len}, &ov2), 0);
    assert_int_equal(ov2.offset, 42);
    assert_int_equal(ov2.leader_epoch, -1);
    assert_int_equal(ov2.expire_timestamp_ms, 2000);

    buf_reset(&b);
    grp_group_key_encode(&b, S("grp"));
    assert_int_equal(grp_key_decode((struct slice){b.data, b.len}, &k), 0);
    assert_int_equal(k.kind, GRP_KEY_GROUP);
    assert_true(slice_eq_cstr(k.group, "grp"));

    buf_reset(&b);
    struct grp_member_value mv[2] = {
        {S("m1"), S("inst-1"), S("c1"), S("/h1"), 30000, 10000, S("sub1"), S("as1")},
        {S("m2"), SLICE_NULL, S("c2"), S("/h2"), 40000, 12000, S(""), S("")},
    };
    struct grp_group_value gv = {S("consumer"), 7, S("range"), S("m1"), 99, mv, 2};
    grp_group_value_encode(&b, &gv);
    struct arena a;
    arena_init(&a);
    struct grp_group_value gv2;
    assert_int_equal(grp_group_value_decode((struct slice){b.data, b.len}, &a, &gv2), 0);
    assert_true(slice_eq_cstr(gv2.protocol_type, "consumer"));
    assert_int_equal(gv2.generation, 7);
    assert_true(slice_eq_cstr(gv2.protocol, "range") && slice_eq_cstr(gv2.leader, "m1"));
    assert_int_equal(gv2.current_state_timestamp_ms, 99);
    assert_int_equal(gv2.n_members, 2);
    assert_true(slice_eq_cstr(gv2.members[0].group_instance_id, "inst-1"));
    assert_null(gv2.members[1].group_instance_id.ptr);
    assert_int_equal(gv2.members[1].rebalance_timeout_ms, 40000);
    assert_int_equal(gv2.members[1].session_timeout_ms, 12000);
    assert_true(slice_eq_cstr(gv2.members[0].subscription, "sub1"));
    assert_true(slice_eq_cstr(gv2.members[0].assignment, "as1"));
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(grp_group_value_decode((struct slice){b.data, cut}, &a, &gv2), -1);

    /* Empty group (after everyone left): null protocol and leader, no members. */
    buf_reset(&b);
    struct grp_group_value empty = {S("consumer"), 8, SLICE_NULL, SLICE_NULL, 100, NULL, 0};
    grp_group_value_encode(&b, &empty);
    assert_int_equal(grp_group_value_decode((struct slice){b.data, b.len}, &a, &gv2), 0);
    assert_null(gv2.protocol.ptr);
    assert_null(gv2.leader.ptr);
    assert_int_equal(gv2.n_members, 0);

    /* Fuzz: random corruption never crashes a decoder (run under ASan). */
    srand(1);
    uint8_t tmp[512];
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)(rand() % (int)b.len + 1);
        memcpy(tmp, b.data, len);
        for (int f = 0; f < 3; f++)
            tmp[rand() % (int)len] = (uint8_t)rand();
        (void)grp_group_value_decode((struct slice){tmp, len}, &a, &gv2);
        (void)grp_offset_value_decode((struct slice){tmp, len}, &ov2);
        (void)grp_key_decode((struct slice){tmp, len}, &k);
        struct slice *topics;
        size_t nt;
        (void)grp_consumer_subscription_topics((struct slice){tmp, len}, &a, &topics, &nt);
    }
    /* Unknown key versions are other records, not errors. */
    uint8_t v3key[] = {0, 3, 0, 1, 'x'};
    assert_int_equal(grp_key_decode((struct slice){v3key, sizeof(v3key)}, &k), 0);
    assert_int_equal(k.kind, GRP_KEY_OTHER);
    uint8_t negkey[] = {0xff, 0xff};
    assert_int_equal(grp_key_decode((struct slice){negkey, 2}, &k), -1);
    arena_free(&a);
    buf_free(&b);
}

static void test_partition_for(void **state)
{
    (void)state;
    /* Expected values from Java: Utils.abs("...".hashCode()) % 50. */
    assert_int_equal(grp_partition_for_n(S("my-group"), 50), 12);
    assert_int_equal(grp_partition_for_n(S("test-group"), 50), 12);
    assert_int_equal(grp_partition_for_n(S("g1"), 50), 42);
    assert_int_equal(grp_partition_for_n(S(""), 50), 0);
    assert_int_equal(grp_partition_for_n(S("gr\xc3\xbcppe"), 50), 12);
    assert_int_equal(grp_partition_for_n(S("\xf0\x9f\x98\x80x"), 50), 39); /* surrogate pair */
    assert_int_equal(grp_partition_for_n(S("console-consumer-12345"), 50), 6);
    assert_int_equal(grp_partition_for(C, S("g1")), 42);
}

/* ---- tests: join / sync / heartbeat ---- */

static void test_member_id_required_and_first_generation(void **state)
{
    (void)state;
    struct join_opts o = RANGE;
    o.require_known = true;
    struct join_res j;
    join("g", "", &o, &j);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.error, GRP_ERR_MEMBER_ID_REQUIRED);
    assert_true(strncmp(j.member_id, "client-", 7) == 0);
    char id[256];
    strcpy(id, j.member_id);
    assert_string_equal(state_of("g"), "Empty");

    join("g", id, &o, &j);
    assert_int_equal(j.calls, 0); /* waits for the initial rebalance delay */
    assert_true(grp_next_deadline(C) <= now + 3000);
    assert_string_equal(state_of("g"), "PreparingRebalance");
    assert_int_equal(heartbeat("g", 0, id), GRP_ERR_REBALANCE_IN_PROGRESS);
    advance(2999);
    assert_int_equal(j.calls, 0);
    advance(1);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.error, 0);
    assert_int_equal(j.generation, 1);
    assert_string_equal(j.member_id, id);
    assert_string_equal(j.leader, id);
    assert_string_equal(j.protocol, "range");
    assert_int_equal(j.n_members, 1);
    assert_string_equal(state_of("g"), "CompletingRebalance");
    assert_int_equal(heartbeat("g", 1, id), 0); /* heartbeats allowed before sync */

    struct sync_res s;
    const char *ids[] = {id};
    const char *as[] = {"A0"};
    sync_req("g", 1, id, ids, as, 1, &s);
    assert_int_equal(s.calls, 0); /* waits for the group metadata to be durable */
    assert_int_equal(n_appends, 1);
    complete_append(0);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.error, 0);
    assert_string_equal(s.assignment, "A0");
    assert_string_equal(state_of("g"), "Stable");
    assert_int_equal(heartbeat("g", 1, id), 0);
    assert_int_equal(heartbeat("g", 0, id), GRP_ERR_ILLEGAL_GENERATION);
    assert_int_equal(heartbeat("g", 1, "nobody"), GRP_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(heartbeat("nogroup", 1, id), GRP_ERR_UNKNOWN_MEMBER_ID);

    /* The persisted group record describes the generation. */
    struct grp_key k;
    assert_int_equal(grp_key_decode((struct slice){durable[0].key.data, durable[0].key.len}, &k),
                     0);
    assert_int_equal(k.kind, GRP_KEY_GROUP);
    struct arena a;
    arena_init(&a);
    struct grp_group_value gv;
    assert_int_equal(grp_group_value_decode(
                         (struct slice){durable[0].value.data, durable[0].value.len}, &a, &gv),
                     0);
    assert_int_equal(gv.generation, 1);
    assert_int_equal(gv.n_members, 1);
    assert_true(slice_eq_cstr(gv.members[0].assignment, "A0"));
    assert_true(slice_eq_cstr(gv.members[0].subscription, "md-range"));
    assert_int_equal(durable[0].partition, grp_partition_for(C, S("g")));
    arena_free(&a);

    /* An unknown pending id that expires is forgotten. */
    join("g", "", &o, &j);
    assert_int_equal(j.error, GRP_ERR_MEMBER_ID_REQUIRED);
    char pending[256];
    strcpy(pending, j.member_id);
    advance(10000);
    join("g", pending, &o, &j);
    assert_int_equal(j.error, GRP_ERR_UNKNOWN_MEMBER_ID);
}

static void test_initial_delay_collects_members(void **state)
{
    (void)state;
    struct join_res a, b, c;
    join_new("g", &a);
    advance(1000);
    join_new("g", &b);
    advance(2000); /* first delay over; B arrived meanwhile: wait another delay */
    assert_int_equal(a.calls, 0);
    advance(1000);
    join_new("g", &c);
    advance(2000);
    assert_int_equal(a.calls, 0); /* C arrived in the second delay: a third one */
    advance(3000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(a.generation, 1);
    assert_int_equal(c.generation, 1);
    assert_string_equal(a.leader, a.member_id);
    assert_int_equal(a.n_members, 3);
    assert_int_equal(b.n_members, 0);
    assert_string_equal(b.leader, a.member_id);
}

static void test_initial_delay_bounded_by_rebalance_timeout(void **state)
{
    (void)state;
    struct join_opts o = RANGE;
    o.rebalance_ms = 5000; /* 3000 delay + at most 2000 more */
    struct join_res a, b;
    join("g", "", &o, &a);
    advance(1000);
    join("g", "", &o, &b);
    advance(2000);
    assert_int_equal(a.calls, 0);
    advance(2000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
}

static void test_protocol_selection(void **state)
{
    (void)state;
    struct join_opts o1 = {.protocols = {"range", "roundrobin"}};
    struct join_opts o2 = {.protocols = {"roundrobin", "range"}};
    struct join_opts o3 = {.protocols = {"roundrobin", "sticky"}};
    struct join_res a, b, c, d, e;
    join("g", "", &o1, &a);
    join("g", "", &o2, &b);
    join("g", "", &o3, &c); /* range is not common: roundrobin is the only candidate */
    struct join_opts bad = {.protocols = {"sticky"}};
    join("g", "", &bad, &d);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    struct join_opts badtype = {.type = "connect", .protocols = {"range"}};
    join("g", "", &badtype, &e);
    assert_int_equal(e.error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    advance(6000);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.protocol, "roundrobin");
    assert_string_equal(c.protocol, "roundrobin");

    /* Votes: two prefer range, one roundrobin; both common. */
    struct join_res x, y, z;
    join("h", "", &o1, &x);
    join("h", "", &o1, &y);
    join("h", "", &o2, &z);
    advance(6000);
    assert_string_equal(x.protocol, "range");

    /* Empty protocol type or list: inconsistent from the start. */
    struct join_opts none = {.protocols = {NULL}};
    join("i", "", &none, &e);
    assert_int_equal(e.error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
}

static void test_rebalance_when_member_joins_stable_group(void **state)
{
    (void)state;
    char ids[3][256];
    stable_group("g", 2, ids);
    struct join_res c;
    join_new("g", &c);
    assert_string_equal(state_of("g"), "PreparingRebalance");
    assert_int_equal(heartbeat("g", 1, ids[0]), GRP_ERR_REBALANCE_IN_PROGRESS);
    struct sync_res s;
    sync_req("g", 1, ids[1], NULL, NULL, 0, &s);
    assert_int_equal(s.error, GRP_ERR_REBALANCE_IN_PROGRESS);
    /* Commits still work during PreparingRebalance. */
    struct commit_res cr;
    commit("g", 1, ids[0], "t", 0, 5, &cr);
    complete_all_appends();
    assert_int_equal(cr.errors[0], 0);

    struct join_res a, b;
    join("g", ids[0], &RANGE, &a);
    assert_int_equal(a.calls, 0);
    join("g", ids[1], &RANGE, &b);
    /* Everybody is in: generation 2 completes without waiting for a timeout. */
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(a.generation, 2);
    assert_int_equal(a.n_members, 3);
    assert_string_equal(a.leader, ids[0]);

    /* A member that lost its JoinGroup answer rejoins with the same metadata while
     * CompletingRebalance: it gets the same generation again, no new rebalance. */
    struct join_res again;
    join("g", c.member_id, &RANGE, &again);
    assert_int_equal(again.calls, 1);
    assert_int_equal(again.generation, 2);
    assert_int_equal(again.n_members, 0);
    assert_string_equal(state_of("g"), "CompletingRebalance");

    /* Followers wait for the leader's assignment. */
    struct sync_res sb, sc, sa;
    sync_req("g", 2, ids[1], NULL, NULL, 0, &sb);
    sync_req("g", 2, c.member_id, NULL, NULL, 0, &sc);
    assert_int_equal(sb.calls + sc.calls, 0);
    const char *pids[] = {ids[0], ids[1]}; /* C gets nothing: empty assignment */
    const char *as[] = {"x", "y"};
    sync_req("g", 2, ids[0], pids, as, 2, &sa);
    assert_int_equal(sa.calls, 0);
    complete_append(0);
    assert_int_equal(sa.calls + sb.calls + sc.calls, 3);
    assert_string_equal(sa.assignment, "x");
    assert_string_equal(sb.assignment, "y");
    assert_string_equal(sc.assignment, "");
    assert_string_equal(state_of("g"), "Stable");

    /* A follower rejoining with unchanged metadata in Stable gets the current generation. */
    join("g", ids[1], &RANGE, &b);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.generation, 2);
    assert_string_equal(state_of("g"), "Stable");
    /* The leader rejoining forces a rebalance. */
    join("g", ids[0], &RANGE, &a);
    assert_int_equal(a.calls, 0);
    assert_string_equal(state_of("g"), "PreparingRebalance");
    advance(20000); /* rebalance timeout: B and C did not rejoin and are removed */
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.generation, 3);
    assert_int_equal(a.n_members, 1);
    assert_int_equal(heartbeat("g", 2, ids[1]), GRP_ERR_UNKNOWN_MEMBER_ID);
}

static void test_session_timeout_removes_member(void **state)
{
    (void)state;
    char ids[2][256];
    stable_group("g", 2, ids);
    for (int i = 0; i < 2; i++) {
        advance(4000);
        assert_int_equal(heartbeat("g", 1, ids[1]), 0);
    }
    assert_string_equal(state_of("g"), "Stable");
    advance(2000); /* ids[0] never heartbeat: its 10 s session expires */
    assert_string_equal(state_of("g"), "PreparingRebalance");
    assert_int_equal(heartbeat("g", 1, ids[0]), GRP_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(heartbeat("g", 1, ids[1]), GRP_ERR_REBALANCE_IN_PROGRESS);
    struct join_res b;
    join("g", ids[1], &RANGE, &b);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.generation, 2);
    assert_string_equal(b.leader, ids[1]); /* leadership moved */
    assert_int_equal(b.n_members, 1);
}

static void test_rebalance_timeout_and_sync_timeout(void **state)
{
    (void)state;
    char ids[2][256];
    stable_group("g", 2, ids);
    struct join_res a;
    join("g", ids[0], &RANGE, &a); /* leader forces a rebalance */
    for (int i = 0; i < 3; i++) {  /* B keeps heartbeating but never rejoins */
        advance(5000);
        assert_int_equal(heartbeat("g", 1, ids[1]), GRP_ERR_REBALANCE_IN_PROGRESS);
    }
    advance(4999);
    assert_int_equal(a.calls, 0);
    advance(1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.generation, 2);
    assert_int_equal(a.n_members, 1);
    assert_string_equal(state_of("g"), "CompletingRebalance");
    /* A never sends SyncGroup: after the rebalance timeout it is removed. */
    advance(20000);
    assert_string_equal(state_of("g"), "Empty");
    struct describe_res d;
    describe("g", &d);
    assert_int_equal(d.n_members, 0);
    complete_all_appends();
}

static void test_new_member_join_expires(void **state)
{
    (void)state;
    char ids[1][256];
    stable_group("g", 1, ids);
    struct join_res b;
    join_new("g", &b); /* rebalance; A stops responding but its join is not pending */
    /* A is removed at the rebalance timeout since it did not rejoin; B completes. */
    advance(20000);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.error, 0);
    assert_int_equal(b.n_members, 1);
}

static void test_duplicate_join_and_sync_answered(void **state)
{
    (void)state;
    char ids[2][256];
    stable_group("g", 2, ids);
    struct join_res a1, a2, b;
    join("g", ids[0], &RANGE, &a1);
    join("g", ids[0], &RANGE, &a2);
    assert_int_equal(a1.calls, 1);
    assert_int_equal(a1.error, GRP_ERR_REBALANCE_IN_PROGRESS);
    assert_int_equal(a2.calls, 0);
    join("g", ids[1], &RANGE, &b);
    assert_int_equal(a2.calls, 1);
    struct sync_res s1, s2;
    sync_req("g", 2, ids[1], NULL, NULL, 0, &s1);
    sync_req("g", 2, ids[1], NULL, NULL, 0, &s2);
    assert_int_equal(s1.calls, 1);
    assert_int_equal(s1.error, GRP_ERR_REBALANCE_IN_PROGRESS);
    /* A new member joining while B waits in SyncGroup: B is told to rejoin. */
    struct join_res c;
    join_new("g", &c);
    assert_int_equal(s2.calls, 1);
    assert_int_equal(s2.error, GRP_ERR_REBALANCE_IN_PROGRESS);
    struct join_res r1, r2;
    join("g", ids[0], &RANGE, &r1);
    join("g", ids[1], &RANGE, &r2);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.generation, 3);
}

static void test_sync_errors(void **state)
{
    (void)state;
    char ids[2][256];
    stable_group("g", 2, ids);
    struct sync_res s;
    sync_req("g", 5, ids[0], NULL, NULL, 0, &s);
    assert_int_equal(s.error, GRP_ERR_ILLEGAL_GENERATION);
    sync_req("g", 1, "ghost", NULL, NULL, 0, &s);
    assert_int_equal(s.error, GRP_ERR_UNKNOWN_MEMBER_ID);
    sync_req("nogroup", 1, "ghost", NULL, NULL, 0, &s);
    assert_int_equal(s.error, GRP_ERR_UNKNOWN_MEMBER_ID);
    sync_req("", 1, "ghost", NULL, NULL, 0, &s);
    assert_int_equal(s.error, GRP_ERR_INVALID_GROUP_ID);
    /* Stable: a late SyncGroup returns the member's assignment. */
    sync_req("g", 1, ids[1], NULL, NULL, 0, &s);
    assert_int_equal(s.error, 0);
    assert_string_equal(s.assignment, "assign-1");
}

static void test_sync_append_failure(void **state)
{
    (void)state;
    struct join_res a, b;
    join_new("g", &a);
    join_new("g", &b);
    advance(6000);
    struct sync_res sa, sb;
    sync_req("g", 1, b.member_id, NULL, NULL, 0, &sb);
    const char *pids[] = {a.member_id, b.member_id};
    const char *as[] = {"x", "y"};
    sync_req("g", 1, a.member_id, pids, as, 2, &sa);
    complete_append(GRP_ERR_NOT_ENOUGH_REPLICAS);
    assert_int_equal(sa.error, GRP_ERR_COORDINATOR_NOT_AVAILABLE);
    assert_int_equal(sb.error, GRP_ERR_COORDINATOR_NOT_AVAILABLE);
    assert_string_equal(state_of("g"), "PreparingRebalance");
}

static void test_leave_batched(void **state)
{
    (void)state;
    struct join_opts st = RANGE;
    st.instance = "inst-c";
    struct join_res a, b, c;
    join_new("g", &a);
    join_new("g", &b);
    join("g", "", &st, &c);
    advance(6000);
    assert_int_equal(c.calls, 1);
    assert_true(strncmp(c.member_id, "inst-c-", 7) == 0);
    struct sync_res s[3];
    sync_req("g", 1, b.member_id, NULL, NULL, 0, &s[1]);
    sync_req("g", 1, c.member_id, NULL, NULL, 0, &s[2]);
    sync_req("g", 1, a.member_id, NULL, NULL, 0, &s[0]);
    complete_all_appends();

    struct grp_member_identity who[4] = {
        {S(b.member_id), SLICE_NULL},
        {S("ghost"), SLICE_NULL},
        {S(""), S("inst-c")}, /* admin removal by instance id */
        {S(""), S("inst-unknown")},
    };
    struct simple_res r = {0};
    struct grp_leave_req req = {S("g"), who, 4};
    outstanding++;
    grp_leave(C, now, &req, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.errors[0], 0);
    assert_int_equal(r.errors[1], GRP_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(r.errors[2], 0);
    assert_int_equal(r.errors[3], GRP_ERR_UNKNOWN_MEMBER_ID);
    assert_string_equal(state_of("g"), "PreparingRebalance");
    struct join_res a2;
    join("g", a.member_id, &RANGE, &a2);
    assert_int_equal(a2.calls, 1);
    assert_int_equal(a2.generation, 2);
    assert_int_equal(a2.n_members, 1);

    /* The last member leaving empties the group (and persists that). */
    struct grp_member_identity last = {S(a.member_id), SLICE_NULL};
    struct grp_leave_req req2 = {S("g"), &last, 1};
    memset(&r, 0, sizeof(r));
    outstanding++;
    grp_leave(C, now, &req2, &r);
    assert_int_equal(r.errors[0], 0);
    assert_string_equal(state_of("g"), "Empty");
    assert_int_equal(n_appends, 1);
    complete_all_appends();

    /* Unknown group: per-member UNKNOWN_MEMBER_ID. */
    memset(&r, 0, sizeof(r));
    struct grp_leave_req req3 = {S("nogroup"), &last, 1};
    outstanding++;
    grp_leave(C, now, &req3, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.errors[0], GRP_ERR_UNKNOWN_MEMBER_ID);
}

static void test_static_membership(void **state)
{
    (void)state;
    struct join_opts sa = RANGE, sb = RANGE;
    sa.instance = "inst-a";
    sb.instance = "inst-b";
    struct join_res a, b;
    join("g", "", &sa, &a);
    join("g", "", &sb, &b);
    advance(6000);
    assert_int_equal(a.generation, 1);
    struct sync_res s1, s2;
    sync_req("g", 1, b.member_id, NULL, NULL, 0, &s2);
    const char *pids[] = {a.member_id, b.member_id};
    const char *as[] = {"pa", "pb"};
    sync_req("g", 1, a.member_id, pids, as, 2, &s1);
    complete_all_appends();
    assert_string_equal(s2.assignment, "pb");

    /* B restarts: same instance id, no member id, same metadata. No rebalance. */
    struct join_res b2;
    join("g", "", &sb, &b2);
    assert_int_equal(b2.calls, 0); /* waits for the new member id to be persisted */
    assert_int_equal(n_appends, 1);
    complete_append(0);
    assert_int_equal(b2.calls, 1);
    assert_int_equal(b2.error, 0);
    assert_int_equal(b2.generation, 1);
    assert_string_not_equal(b2.member_id, b.member_id);
    assert_string_equal(b2.leader, a.member_id);
    assert_false(b2.skip_assignment);
    assert_string_equal(state_of("g"), "Stable");
    struct sync_res s3;
    sync_req("g", 1, b2.member_id, NULL, NULL, 0, &s3);
    assert_int_equal(s3.error, 0);
    assert_string_equal(s3.assignment, "pb"); /* its previous assignment */

    /* The old incarnation is fenced everywhere. */
    assert_int_equal(heartbeat_inst("g", 1, b.member_id, "inst-b"), GRP_ERR_FENCED_INSTANCE_ID);
    struct join_res old;
    join("g", b.member_id, &sb, &old);
    assert_int_equal(old.error, GRP_ERR_FENCED_INSTANCE_ID);
    struct commit_res cr = {0};
    struct grp_commit_partition p = {0, 1, -1, SLICE_NULL};
    struct grp_commit_topic t = {S("t"), &p, 1};
    struct grp_commit_req creq = {S("g"), 1, S(b.member_id), S("inst-b"), &t, 1, false};
    outstanding++;
    grp_commit(C, now, &creq, &cr);
    assert_int_equal(cr.errors[0], GRP_ERR_FENCED_INSTANCE_ID);
    struct grp_member_identity who = {S(b.member_id), S("inst-b")};
    struct grp_leave_req lreq = {S("g"), &who, 1};
    struct simple_res lr = {0};
    outstanding++;
    grp_leave(C, now, &lreq, &lr);
    assert_int_equal(lr.errors[0], GRP_ERR_FENCED_INSTANCE_ID);
    assert_int_equal(heartbeat_inst("g", 1, b2.member_id, "inst-b"), 0);

    /* The static leader restarting learns it leads but need not assign (KIP-814). */
    struct join_res a2;
    join("g", "", &sa, &a2);
    complete_all_appends();
    assert_int_equal(a2.calls, 1);
    assert_string_equal(a2.leader, a2.member_id);
    assert_true(a2.skip_assignment);
    assert_int_equal(a2.n_members, 2);
    assert_string_equal(state_of("g"), "Stable");

    /* Changed metadata: the replacement triggers a rebalance instead. */
    struct join_opts sb2 = {.instance = "inst-b", .protocols = {"roundrobin"}};
    struct join_res b3;
    join("g", "", &sb2, &b3);
    assert_int_equal(b3.calls, 1);
    assert_int_equal(b3.error, GRP_ERR_INCONSISTENT_GROUP_PROTOCOL);
    struct join_opts sb3 = {.instance = "inst-b", .protocols = {"range"}, .metadata = {"new-md"}};
    join("g", "", &sb3, &b3);
    complete_all_appends();
    assert_int_equal(b3.calls, 1); /* same protocol selected: still no rebalance */
    assert_int_equal(b3.generation, 1);
    assert_string_equal(state_of("g"), "Stable");

    /* A static member that is gone is only removed by its session timeout. */
    advance(10001 - 0);
    assert_string_not_equal(state_of("g"), "Stable");
}

static void test_static_member_not_rejoining_stays(void **state)
{
    (void)state;
    struct join_opts sa = RANGE;
    sa.instance = "inst-a";
    sa.session_ms = 60000;
    struct join_res a, b;
    join("g", "", &sa, &a);
    join_new("g", &b);
    advance(6000);
    struct sync_res s1, s2;
    sync_req("g", 1, a.member_id, NULL, NULL, 0, &s1);
    sync_req("g", 1, b.member_id, NULL, NULL, 0, &s2);
    complete_all_appends();
    struct join_res b2;
    join("g", b.member_id, &RANGE, &b2); /* metadata same, follower: no rebalance */
    assert_int_equal(b2.calls, 1);
    /* A new member forces a rebalance; the static member does not rejoin in time. */
    struct join_res c, b3;
    join_new("g", &c);
    join("g", b.member_id, &RANGE, &b3);
    advance(20000);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.n_members + b3.n_members, 3); /* the static member is kept */
}

/* ---- tests: offsets ---- */

static void test_commit_and_fetch(void **state)
{
    (void)state;
    char ids[1][256];
    stable_group("g", 1, ids);
    struct commit_res r;
    commit("g", 1, ids[0], "t", 0, 100, &r);
    assert_int_equal(r.calls, 0); /* waits for durability */
    assert_int_equal(fetch_offset("g", "t", 0), -1);
    complete_append(0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.errors[0], 0);
    assert_int_equal(fetch_offset("g", "t", 0), 100);

    commit("g", 0, ids[0], "t", 0, 200, &r);
    assert_int_equal(r.errors[0], GRP_ERR_ILLEGAL_GENERATION);
    commit("g", 1, "ghost", "t", 0, 200, &r);
    assert_int_equal(r.errors[0], GRP_ERR_UNKNOWN_MEMBER_ID);
    commit("g", -1, "", "t", 0, 200, &r); /* simple commit into a live group */
    assert_int_equal(r.errors[0], GRP_ERR_UNKNOWN_MEMBER_ID);
    commit("other", 3, "m", "t", 0, 200, &r); /* no such group, real generation */
    assert_int_equal(r.errors[0], GRP_ERR_ILLEGAL_GENERATION);
    assert_int_equal(n_appends, 0);

    /* Append failure: mapped error, nothing changes. */
    commit("g", 1, ids[0], "t", 0, 300, &r);
    complete_append(GRP_ERR_NOT_ENOUGH_REPLICAS);
    assert_int_equal(r.errors[0], GRP_ERR_COORDINATOR_NOT_AVAILABLE);
    assert_int_equal(fetch_offset("g", "t", 0), 100);
    commit("g", 1, ids[0], "t", 0, 300, &r);
    complete_append(GRP_ERR_NOT_LEADER_OR_FOLLOWER);
    assert_int_equal(r.errors[0], GRP_ERR_NOT_COORDINATOR);

    /* Metadata too large: that partition fails, others commit. */
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    struct grp_commit_partition ps[2] = {{1, 10, -1, S(big)}, {2, 20, -1, S("ok")}};
    struct grp_commit_topic t = {S("t"), ps, 2};
    struct grp_commit_req req = {S("g"), 1, S(ids[0]), SLICE_NULL, &t, 1, false};
    memset(&r, 0, sizeof(r));
    outstanding++;
    grp_commit(C, now, &req, &r);
    complete_all_appends();
    assert_int_equal(r.n, 2);
    assert_int_equal(r.errors[0], GRP_ERR_OFFSET_METADATA_TOO_LARGE);
    assert_int_equal(r.errors[1], 0);

    /* Simple consumer group: generation -1, no member id. */
    commit("simple", -1, "", "u", 3, 33, &r);
    complete_all_appends();
    assert_int_equal(r.errors[0], 0);
    assert_string_equal(state_of("simple"), "Empty");
    assert_int_equal(fetch_offset("simple", "u", 3), 33);
    assert_int_equal(fetch_offset("simple", "u", 4), -1);
    assert_int_equal(fetch_offset("nogroup", "u", 4), -1);

    /* Fetch all partitions (topics null): sorted by topic and partition. */
    commit("g", 1, ids[0], "a", 5, 55, &r);
    complete_all_appends();
    struct fetch_res f = {0};
    struct grp_fetch_group fg[2] = {{S("g"), NULL, 0}, {S("nogroup"), NULL, 0}};
    struct grp_fetch_req freq = {fg, 2, true};
    outstanding++;
    grp_fetch(C, now, &freq, &f);
    assert_int_equal(f.n_parts, 3);
    assert_string_equal(f.topic[0], "a");
    assert_int_equal(f.offset[0], 55);
    assert_string_equal(f.topic[1], "t");
    assert_int_equal(f.partition[1], 0);
    assert_int_equal(f.partition[2], 2);
    assert_string_equal(f.metadata[2], "ok");

    /* Commits while CompletingRebalance: REBALANCE_IN_PROGRESS. */
    struct join_res j;
    join("g", ids[0], &RANGE, &j); /* sole member and leader: completes at once */
    assert_int_equal(j.generation, 2);
    commit("g", 2, ids[0], "t", 0, 1, &r);
    assert_int_equal(r.errors[0], GRP_ERR_REBALANCE_IN_PROGRESS);
}

static void test_invalid_requests(void **state)
{
    (void)state;
    struct join_res j;
    join("", "", &RANGE, &j);
    assert_int_equal(j.error, GRP_ERR_INVALID_GROUP_ID);
    struct join_opts o = RANGE;
    o.session_ms = 1000;
    join("g", "", &o, &j);
    assert_int_equal(j.error, GRP_ERR_INVALID_SESSION_TIMEOUT);
    o.session_ms = 1800001;
    join("g", "", &o, &j);
    assert_int_equal(j.error, GRP_ERR_INVALID_SESSION_TIMEOUT);
    join("g", "unknown-member", &RANGE, &j);
    assert_int_equal(j.error, GRP_ERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(grp_group_count(C), 0);
    static char huge[(1 << 20) + 10];
    memset(huge, 'x', sizeof(huge) - 1);
    struct join_opts big = {.protocols = {"range"}, .metadata = {huge}};
    join("g", "", &big, &j);
    assert_int_equal(j.error, GRP_ERR_INVALID_REQUEST);
    assert_int_equal(heartbeat("", 1, "m"), GRP_ERR_INVALID_GROUP_ID);
    /* Empty group id is valid for offset APIs (Kafka's backward compatibility). */
    struct commit_res r;
    commit("", -1, "", "t", 0, 1, &r);
    complete_all_appends();
    assert_int_equal(r.errors[0], 0);
    assert_int_equal(fetch_offset("", "t", 0), 1);
}

static void test_group_max_size(void **state)
{
    (void)state;
    grp_coordinator_destroy(C);
    struct grp_config cfg;
    grp_config_defaults(&cfg);
    cfg.max_group_size = 2;
    env_start(&cfg);
    load_all();
    struct join_res a, b, c;
    join_new("g", &a);
    join_new("g", &b);
    join_new("g", &c);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.error, GRP_ERR_GROUP_MAX_SIZE_REACHED);
    advance(6000);
    assert_int_equal(a.n_members, 2);
    struct sync_res s1, s2;
    sync_req("g", 1, a.member_id, NULL, NULL, 0, &s1);
    sync_req("g", 1, b.member_id, NULL, NULL, 0, &s2);
    complete_all_appends();
    join_new("g", &c); /* Stable and full */
    assert_int_equal(c.error, GRP_ERR_GROUP_MAX_SIZE_REACHED);
    assert_string_equal(state_of("g"), "Stable");
}

/* ---- tests: admin ---- */

static void test_describe_list(void **state)
{
    (void)state;
    char ids[2][256];
    stable_group("stable", 2, ids);
    struct join_res j;
    join_new("preparing", &j);
    struct commit_res r;
    commit("simple", -1, "", "t", 0, 1, &r);
    complete_all_appends();

    struct describe_res d;
    describe("stable", &d);
    assert_int_equal(d.error, 0);
    assert_string_equal(d.state, "Stable");
    assert_string_equal(d.protocol_type, "consumer");
    assert_string_equal(d.protocol, "range");
    assert_int_equal(d.n_members, 2);
    assert_string_equal(d.member_id[0], ids[0]);
    assert_string_equal(d.assignment[1], "assign-1");
    assert_string_equal(d.metadata[0], "md-range");
    describe("preparing", &d);
    assert_string_equal(d.state, "PreparingRebalance");
    assert_string_equal(d.protocol, "");
    assert_string_equal(d.metadata[0], "");
    describe("nope", &d);
    assert_int_equal(d.error, 0);
    assert_string_equal(d.state, "Dead");

    struct list_res l = {0};
    struct grp_list_req lreq = {NULL, 0};
    outstanding++;
    grp_list(C, now, &lreq, &l);
    assert_int_equal(l.error, 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.ids[0], "preparing");
    assert_string_equal(l.ids[1], "simple");
    assert_string_equal(l.ids[2], "stable");
    struct slice filter[2] = {S("stable"), S("Empty")};
    struct grp_list_req lreq2 = {filter, 2};
    memset(&l, 0, sizeof(l));
    outstanding++;
    grp_list(C, now, &lreq2, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[0], "simple");
    assert_string_equal(l.states[0], "Empty");
    assert_string_equal(l.ids[1], "stable");
    advance(6000);
}

static void test_delete_groups(void **state)
{
    (void)state;
    char ids[1][256];
    stable_group("live", 1, ids);
    struct commit_res r;
    commit("simple", -1, "", "t", 0, 1, &r);
    complete_all_appends();
    commit("simple", -1, "", "t", 1, 2, &r);
    complete_all_appends();
    size_t before = n_staged;

    struct slice gids[4] = {S("live"), S("simple"), S("missing"), S("simple")};
    struct grp_delete_groups_req req = {gids, 4};
    struct simple_res d = {0};
    outstanding++;
    grp_delete_groups(C, now, &req, &d);
    assert_int_equal(d.calls, 0);           /* waits for the tombstones */
    assert_int_equal(n_staged - before, 3); /* 2 offsets + group */
    for (size_t i = before; i < n_staged; i++)
        assert_true(staged[i].tombstone);
    assert_int_equal(fetch_offset("simple", "t", 0), -1);
    complete_all_appends();
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.errors[0], GRP_ERR_NON_EMPTY_GROUP);
    assert_int_equal(d.errors[1], 0);
    assert_int_equal(d.errors[2], GRP_ERR_GROUP_ID_NOT_FOUND);
    assert_int_equal(d.errors[3], GRP_ERR_GROUP_ID_NOT_FOUND);
    assert_string_equal(state_of("simple"), "Dead");
}

/* ConsumerProtocolSubscription v0 with the given topics and null user data. */
static void consumer_subscription(struct buf *b, const char **topics, size_t n)
{
    buf_reset(b);
    buf_put_i16(b, 0);
    buf_put_i32(b, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        buf_put_i16(b, (int16_t)strlen(topics[i]));
        buf_append(b, topics[i], strlen(topics[i]));
    }
    buf_put_i32(b, -1);
}

static void test_offset_delete(void **state)
{
    (void)state;
    struct buf sub;
    buf_init(&sub);
    const char *topics[] = {"t1"};
    consumer_subscription(&sub, topics, 1);
    /* The metadata contains zero bytes, so build the JoinGroup by hand. */
    struct grp_protocol p = {S("range"), {sub.data, sub.len}};
    struct grp_join_req jreq = {.group_id = S("g"),
                                .session_timeout_ms = 10000,
                                .rebalance_timeout_ms = 20000,
                                .member_id = S(""),
                                .protocol_type = S("consumer"),
                                .protocols = &p,
                                .n_protocols = 1,
                                .client_id = S("c"),
                                .client_host = S("h")};
    struct join_res j = {0};
    outstanding++;
    grp_join(C, now, &jreq, &j);
    advance(3000);
    assert_int_equal(j.generation, 1);
    struct sync_res s;
    sync_req("g", 1, j.member_id, NULL, NULL, 0, &s);
    complete_all_appends();
    struct commit_res r1, r2;
    commit("g", 1, j.member_id, "t1", 0, 10, &r1);
    commit("g", 1, j.member_id, "t2", 0, 20, &r2);
    complete_all_appends();

    int32_t p0 = 0;
    struct grp_fetch_topic ts[2] = {{S("t1"), &p0, 1}, {S("t2"), &p0, 1}};
    struct grp_offset_delete_req dreq = {S("g"), ts, 2};
    struct simple_res d = {0};
    outstanding++;
    grp_offset_delete(C, now, &dreq, &d);
    assert_int_equal(d.calls, 0);
    complete_all_appends();
    assert_int_equal(d.error, 0);
    assert_int_equal(d.errors[0], GRP_ERR_GROUP_SUBSCRIBED_TO_TOPIC);
    assert_int_equal(d.errors[1], 0);
    assert_true(staged[n_staged - 1].tombstone);
    assert_int_equal(fetch_offset("g", "t1", 0), 10);
    assert_int_equal(fetch_offset("g", "t2", 0), -1);

    /* Non-consumer protocol type with members: NON_EMPTY_GROUP. */
    struct join_opts conn = {.type = "connect", .protocols = {"default"}};
    struct join_res cj;
    join("connect-g", "", &conn, &cj);
    struct grp_offset_delete_req dreq2 = {S("connect-g"), ts, 2};
    memset(&d, 0, sizeof(d));
    outstanding++;
    grp_offset_delete(C, now, &dreq2, &d);
    assert_int_equal(d.error, GRP_ERR_NON_EMPTY_GROUP);
    struct grp_offset_delete_req dreq3 = {S("missing"), ts, 2};
    memset(&d, 0, sizeof(d));
    outstanding++;
    grp_offset_delete(C, now, &dreq3, &d);
    assert_int_equal(d.error, GRP_ERR_GROUP_ID_NOT_FOUND);
    advance(6000);
    buf_free(&sub);
}

/* ---- tests: persistence ---- */

static void reload_from_durable_log(void)
{
    grp_coordinator_destroy(C);
    struct grp_config cfg;
    grp_config_defaults(&cfg);
    env_start(&cfg);
    for (int32_t p = 0; p < 50; p++) {
        grp_load_begin(C, now, p);
        for (size_t i = 0; i < n_durable; i++)
            if (durable[i].partition == p)
                assert_int_equal(
                    grp_load_record(C, p, (struct slice){durable[i].key.data, durable[i].key.len},
                                    durable[i].tombstone ? SLICE_NULL
                                                         : (struct slice){durable[i].value.data,
                                                                          durable[i].value.len}),
                    0);
        grp_load_end(C, now, p);
    }
}

static void test_load_then_serve(void **state)
{
    (void)state;
    char ids[2][256];
    stable_group("g", 2, ids);
    struct commit_res r;
    commit("g", 1, ids[0], "t", 0, 100, &r);
    complete_all_appends();
    commit("g", 1, ids[1], "t", 0, 150, &r);
    complete_all_appends();
    commit("gone", -1, "", "t", 0, 1, &r);
    complete_all_appends();
    struct slice gone = S("gone");
    struct grp_delete_groups_req dreq = {&gone, 1};
    struct simple_res d = {0};
    outstanding++;
    grp_delete_groups(C, now, &dreq, &d);
    complete_all_appends();
    commit("simple", -1, "", "u", 1, 7, &r);
    complete_all_appends();

    reload_from_durable_log();
    struct describe_res desc;
    describe("g", &desc);
    assert_string_equal(desc.state, "Stable");
    assert_int_equal(desc.n_members, 2);
    assert_string_equal(desc.assignment[0], "assign-0");
    assert_int_equal(fetch_offset("g", "t", 0), 150);
    assert_int_equal(fetch_offset("simple", "u", 1), 7);
    assert_string_equal(state_of("gone"), "Dead");
    assert_int_equal(grp_group_count(C), 2);
    /* Members carry on: heartbeat and sync in the loaded generation. */
    assert_int_equal(heartbeat("g", 1, ids[1]), 0);
    struct sync_res s;
    sync_req("g", 1, ids[1], NULL, NULL, 0, &s);
    assert_string_equal(s.assignment, "assign-1");
    /* ids[0] went silent across the failover: its session expires. */
    advance(9000);
    assert_int_equal(heartbeat("g", 1, ids[1]), 0);
    advance(1001);
    assert_string_equal(state_of("g"), "PreparingRebalance");
    advance(20000);
}

static void test_load_over_capacity_rebalances(void **state)
{
    (void)state;
    char ids[3][256];
    stable_group("g", 3, ids);
    grp_coordinator_destroy(C);
    struct grp_config cfg;
    grp_config_defaults(&cfg);
    cfg.max_group_size = 2;
    env_start(&cfg);
    int32_t p = grp_partition_for(C, S("g"));
    grp_load_begin(C, now, p);
    for (size_t i = 0; i < n_durable; i++)
        grp_load_record(C, p, (struct slice){durable[i].key.data, durable[i].key.len},
                        (struct slice){durable[i].value.data, durable[i].value.len});
    grp_load_end(C, now, p);
    assert_string_equal(state_of("g"), "PreparingRebalance");
    struct join_res a, b, c;
    join("g", ids[0], &RANGE, &a);
    join("g", ids[1], &RANGE, &b);
    join("g", ids[2], &RANGE, &c);
    assert_int_equal(c.error, GRP_ERR_GROUP_MAX_SIZE_REACHED);
    assert_int_equal(a.calls, 1); /* the third was removed, the other two had joined */
    assert_int_equal(a.generation, 2);
    assert_int_equal(a.n_members, 2);
}

static void test_loading_and_not_coordinator(void **state)
{
    (void)state;
    int32_t p = grp_partition_for(C, S("g"));
    grp_unload(C, p);
    struct join_res j;
    join_new("g", &j);
    assert_int_equal(j.error, GRP_ERR_NOT_COORDINATOR);
    grp_load_begin(C, now, p);
    join_new("g", &j);
    assert_int_equal(j.error, GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    struct list_res l = {0};
    struct grp_list_req lreq = {NULL, 0};
    outstanding++;
    grp_list(C, now, &lreq, &l);
    assert_int_equal(l.error, GRP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    /* Malformed records are skipped, loading continues. */
    uint8_t junk[] = {0, 1, 0x7f};
    assert_int_equal(grp_load_record(C, p, (struct slice){junk, 3}, SLICE_NULL), -1);
    struct buf k, v;
    buf_init(&k);
    buf_init(&v);
    grp_offset_key_encode(&k, S("g"), S("t"), 0);
    assert_int_equal(grp_load_record(C, p, (struct slice){k.data, k.len}, (struct slice){junk, 3}),
                     -1);
    struct grp_offset_value ov = {5, -1, S(""), now, -1};
    grp_offset_value_encode(&v, &ov);
    assert_int_equal(
        grp_load_record(C, p, (struct slice){k.data, k.len}, (struct slice){v.data, v.len}), 0);
    /* A record for a group of another partition is refused. */
    buf_reset(&k);
    grp_offset_key_encode(&k, S("g1"), S("t"), 0);
    assert_int_equal(
        grp_load_record(C, p, (struct slice){k.data, k.len}, (struct slice){v.data, v.len}), -1);
    grp_load_end(C, now, p);
    assert_int_equal(fetch_offset("g", "t", 0), 5);
    buf_free(&k);
    buf_free(&v);

    /* Unload answers waiting requests with NOT_COORDINATOR. */
    struct join_res a;
    join_new("g", &a);
    assert_int_equal(a.calls, 0);
    grp_unload(C, p);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.error, GRP_ERR_NOT_COORDINATOR);
    grp_load_begin(C, now, p);
    grp_load_end(C, now, p);
}

/* Corrupted values for keys of the right partition: loading skips or applies them,
 * never crashes (run under ASan), and the coordinator serves afterwards. */
static void test_load_fuzz(void **state)
{
    (void)state;
    char ids[2][256];
    stable_group("g", 2, ids);
    struct commit_res r;
    commit("g", 1, ids[0], "t", 0, 9, &r);
    complete_all_appends();
    int32_t p = grp_partition_for(C, S("g"));
    srand(7);
    uint8_t tmp[1024];
    static struct join_res js[300]; /* joins stay pending until the next unload */
    for (int round = 0; round < 300; round++) {
        grp_load_begin(C, now, p);
        for (size_t i = 0; i < n_durable; i++) {
            size_t len = durable[i].value.len;
            if (durable[i].tombstone || len == 0 || len > sizeof(tmp))
                continue;
            memcpy(tmp, durable[i].value.data, len);
            tmp[rand() % (int)len] = (uint8_t)rand();
            size_t cut = (size_t)(rand() % 4 == 0 ? rand() % (int)len : (int)len);
            (void)grp_load_record(C, p, (struct slice){durable[i].key.data, durable[i].key.len},
                                  (struct slice){tmp, cut});
        }
        grp_load_end(C, now, p);
        struct describe_res d;
        describe("g", &d);
        assert_int_equal(d.error, 0);
        assert_int_equal(heartbeat("g", 1, ids[0]) >= 0, 1);
        join_new("g", &js[round]);
        advance(1);
    }
    advance(60000);
    complete_all_appends();
}

static void test_destroy_answers_everything(void **state)
{
    (void)state;
    char ids[2][256];
    stable_group("g", 2, ids);
    struct join_res c;
    join_new("g", &c);
    struct join_res a;
    join("g", ids[0], &RANGE, &a);
    struct commit_res r;
    commit("simple", -1, "", "t", 0, 1, &r);
    assert_int_equal(r.calls, 0);
    /* teardown destroys: the waiting join and commit must be answered */
    grp_coordinator_destroy(C);
    C = NULL;
    assert_int_equal(c.error, GRP_ERR_NOT_COORDINATOR);
    assert_int_equal(a.error, GRP_ERR_NOT_COORDINATOR);
    assert_int_equal(r.errors[0], GRP_ERR_NOT_COORDINATOR);
    struct grp_config cfg;
    grp_config_defaults(&cfg);
    env_start(&cfg);
}

/* ---- tests: expiry ---- */

static void test_offset_expiry(void **state)
{
    (void)state;
    const int64_t day = 24LL * 3600 * 1000;
    struct commit_res r;
    commit("simple", -1, "", "t", 0, 1, &r);
    complete_all_appends();
    char ids[1][256];
    stable_group("g", 1, ids);
    commit("g", 1, ids[0], "t", 0, 5, &r);
    complete_all_appends();
    /* The member leaves: the group is Empty from now on. */
    struct grp_member_identity who = {S(ids[0]), SLICE_NULL};
    struct grp_leave_req lreq = {S("g"), &who, 1};
    struct simple_res lr = {0};
    outstanding++;
    grp_leave(C, now, &lreq, &lr);
    complete_all_appends();
    advance(6 * day);
    assert_int_equal(fetch_offset("simple", "t", 0), 1);
    assert_int_equal(n_appends, 0);
    advance(1 * day + 600000); /* 7 days passed; the next check expires them */
    assert_int_equal(n_appends, 2);
    complete_all_appends();
    assert_int_equal(fetch_offset("simple", "t", 0), -1);
    assert_int_equal(fetch_offset("g", "t", 0), -1);
    assert_int_equal(grp_group_count(C), 0);
    /* The log now says so too: reloading gives nothing. */
    reload_from_durable_log();
    assert_int_equal(grp_group_count(C), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_records_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partition_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_id_required_and_first_generation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_initial_delay_collects_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initial_delay_bounded_by_rebalance_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_protocol_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebalance_when_member_joins_stable_group, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_timeout_removes_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebalance_timeout_and_sync_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_member_join_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_join_and_sync_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_append_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_batched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_membership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_member_not_rejoining_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_and_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_max_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_then_serve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_over_capacity_rebalances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loading_and_not_coordinator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_fuzz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_answers_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_expiry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
