/*
 * txn_interaction: data-driven tests of the transaction coordinator (src/txn), run by
 * the shared script runner (tests/unit/support/script.h). Each command prints what the
 * coordinator did: records appended, producer ids asked for, markers written, answers.
 *
 * `txn_interaction --rewrite FILE...` regenerates the expected output in place; read the
 * diff before committing it.
 *
 * Commands (key=value arguments, any order):
 *   init NAME id=T [timeout=MS] [pid=P epoch=E]      InitProducerId
 *   add NAME id=T pid=P epoch=E [v=2] topic/partition...
 *                        AddPartitionsToTxn (v=2: from a partition's leader, version 2)
 *   end NAME id=T pid=P epoch=E [v=2] commit|abort   EndTxn (v=2: v5, epoch bumps)
 *   record id=T pid=P epoch=E state=S [v=2] [prev=P] [topic/partition...]
 *                        a durable record, as if written before (for `restart`)
 *   append [ok|ERR]      complete the oldest pending append (ERR: a Kafka error code)
 *   pid [P|error=ERR]    answer the oldest pending producer-id request (default: next id)
 *   markers              complete the oldest pending marker write
 *   tick MS              advance the clock by MS and tick at every deadline on the way
 *   restart              a new coordinator loads every partition from the durable records
 *   unload P             the coordinator loses partition P
 *   describe T           the metadata the coordinator holds for T
 *   verify id=T pid=P epoch=E topic/partition   may P open a transaction there (KIP-890)
 * Durable records are those whose append completed ok; `restart` replays them in order.
 */
#include "txn/txn.h"
#include "script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTITIONS 50
#define MAX_PENDING 64
#define MAX_RECORDS 1024

struct pending_append {
    int32_t partition;
    struct buf key, value;
    bool tombstone;
    void *token;
};

static struct txn_coordinator *coord;
static int64_t now_ms;
static int64_t next_pid;
static struct pending_append appends[MAX_PENDING];
static size_t n_appends;
static void *pid_waits[MAX_PENDING];
static size_t n_pid_waits;
static void *marker_waits[MAX_PENDING];
static size_t n_marker_waits;
static struct {
    int32_t partition;
    struct buf key, value;
    bool tombstone;
} durable[MAX_RECORDS];
static size_t n_durable;
static char names[MAX_PENDING][32]; /* ctx of a request: its NAME */
static size_t n_names;

static const char *error_name(int16_t e)
{
    switch (e) {
    case TXN_ERR_NONE: return "NONE";
    case TXN_ERR_COORDINATOR_LOAD_IN_PROGRESS: return "COORDINATOR_LOAD_IN_PROGRESS";
    case TXN_ERR_COORDINATOR_NOT_AVAILABLE: return "COORDINATOR_NOT_AVAILABLE";
    case TXN_ERR_NOT_COORDINATOR: return "NOT_COORDINATOR";
    case TXN_ERR_INVALID_REQUEST: return "INVALID_REQUEST";
    case TXN_ERR_INVALID_PRODUCER_EPOCH: return "INVALID_PRODUCER_EPOCH";
    case TXN_ERR_INVALID_TXN_STATE: return "INVALID_TXN_STATE";
    case TXN_ERR_INVALID_PRODUCER_ID_MAPPING: return "INVALID_PRODUCER_ID_MAPPING";
    case TXN_ERR_INVALID_TRANSACTION_TIMEOUT: return "INVALID_TRANSACTION_TIMEOUT";
    case TXN_ERR_CONCURRENT_TRANSACTIONS: return "CONCURRENT_TRANSACTIONS";
    case TXN_ERR_PRODUCER_FENCED: return "PRODUCER_FENCED";
    case TXN_ERR_TRANSACTIONAL_ID_NOT_FOUND: return "TRANSACTIONAL_ID_NOT_FOUND";
    default: return "OTHER";
    }
}

static void print_meta(const struct txn_meta *m)
{
    script_outf("%.*s %s pid=%lld epoch=%d timeout=%d", (int)m->transactional_id.len,
                m->transactional_id.ptr, txn_state_name(m->state), (long long)m->producer_id,
                m->producer_epoch, m->timeout_ms);
    if (m->start_ms >= 0)
        script_outf(" start=%lld", (long long)m->start_ms);
    if (m->client_version != 0)
        script_outf(" v=%d", m->client_version);
    if (m->prev_producer_id != -1)
        script_outf(" prev=%lld", (long long)m->prev_producer_id);
    if (m->next_producer_id != -1)
        script_outf(" next=%lld", (long long)m->next_producer_id);
    for (size_t i = 0; i < m->n_partitions; i++)
        script_outf(" %.*s/%d", (int)m->partitions[i].topic.len, m->partitions[i].topic.ptr,
                    m->partitions[i].partition);
    script_outf("\n");
}

/* ---- the coordinator's services ---- */

static void cb_append(void *arg, int32_t partition, struct slice key, struct slice value,
                      void *token)
{
    (void)arg;
    ASSERT(n_appends < MAX_PENDING);
    struct pending_append *a = &appends[n_appends++];
    a->partition = partition;
    buf_init(&a->key);
    buf_init(&a->value);
    buf_append(&a->key, key.ptr, key.len);
    a->tombstone = value.ptr == NULL;
    if (value.ptr)
        buf_append(&a->value, value.ptr, value.len);
    a->token = token;
    struct slice id;
    ASSERT(txn_record_decode_key(key, &id) == 0);
    script_outf("append __transaction_state-%d: ", partition);
    if (a->tombstone) {
        script_outf("%.*s tombstone\n", (int)id.len, id.ptr);
        return;
    }
    struct txn_meta m;
    struct txn_partition *parts;
    ASSERT(txn_record_decode_value(value, &m, &parts) == 0);
    m.transactional_id = id;
    m.last_update_ms = 0;
    print_meta(&m);
    free(parts);
}

static void cb_new_producer_id(void *arg, void *token)
{
    (void)arg;
    ASSERT(n_pid_waits < MAX_PENDING);
    pid_waits[n_pid_waits++] = token;
    script_outf("new producer id asked\n");
}

static void cb_write_markers(void *arg, int32_t state_partition, int64_t producer_id,
                             int16_t producer_epoch, bool commit, int16_t client_version,
                             const struct txn_partition *parts, size_t n, void *token)
{
    (void)arg;
    ASSERT(n_marker_waits < MAX_PENDING);
    marker_waits[n_marker_waits++] = token;
    script_outf("markers from %d: %s pid=%lld epoch=%d", state_partition,
                commit ? "COMMIT" : "ABORT", (long long)producer_id, producer_epoch);
    if (client_version != 0)
        script_outf(" v=%d", client_version);
    for (size_t i = 0; i < n; i++)
        script_outf(" %.*s/%d", (int)parts[i].topic.len, parts[i].topic.ptr, parts[i].partition);
    script_outf("\n");
}

static void cb_answer(void *ctx, const struct txn_answer *a)
{
    script_outf("%s: %s", (const char *)ctx, error_name(a->error));
    if (a->error == TXN_ERR_NONE && a->producer_id >= 0)
        script_outf(" pid=%lld epoch=%d", (long long)a->producer_id, a->producer_epoch);
    script_outf("\n");
}

static void new_coordinator(void)
{
    struct txn_config cfg = {
        .partitions = PARTITIONS,
        .max_timeout_ms = 900000,
        .id_expiration_ms = 604800000,
        .abort_check_interval_ms = 10000,
        .expiration_check_interval_ms = 3600000,
        .append = cb_append,
        .new_producer_id = cb_new_producer_id,
        .write_markers = cb_write_markers,
        .answer = cb_answer,
    };
    coord = txn_coordinator_new(&cfg);
}

static void load_all(void)
{
    for (int32_t p = 0; p < PARTITIONS; p++) {
        txn_load_begin(coord, p);
        for (size_t i = 0; i < n_durable; i++) {
            if (durable[i].partition != p)
                continue;
            struct slice v = durable[i].tombstone
                                 ? (struct slice){NULL, 0}
                                 : (struct slice){durable[i].value.data, durable[i].value.len};
            ASSERT(txn_load_record(
                       coord, p, (struct slice){durable[i].key.data, durable[i].key.len}, v) == 0);
        }
        txn_load_end(coord, now_ms, p);
    }
}

static void drop_pending(void)
{
    for (size_t i = 0; i < n_appends; i++) {
        buf_free(&appends[i].key);
        buf_free(&appends[i].value);
    }
    n_appends = n_pid_waits = n_marker_waits = 0;
}

static void reset_world(void)
{
    now_ms = 1000;
    next_pid = 1000;
    n_durable = n_names = 0;
    new_coordinator();
    load_all();
}

static void end_world(void)
{
    txn_coordinator_destroy(coord);
    coord = NULL;
    drop_pending();
    for (size_t i = 0; i < n_durable; i++) {
        buf_free(&durable[i].key);
        buf_free(&durable[i].value);
    }
    n_durable = 0;
}

/* ---- arguments ---- */

static const char *arg(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
            return argv[i] + n + 1;
    return NULL;
}

static long long arg_num(int argc, char **argv, const char *name, long long dflt)
{
    const char *v = arg(argc, argv, name);
    return v ? atoll(v) : dflt;
}

static void *ctx_named(const char *name)
{
    ASSERT(n_names < MAX_PENDING);
    snprintf(names[n_names], sizeof names[0], "%s", name);
    return names[n_names++];
}

static struct slice id_arg(int argc, char **argv)
{
    const char *id = arg(argc, argv, "id");
    return id ? (struct slice){(const uint8_t *)id, strlen(id)} : (struct slice){NULL, 0};
}

/* topic/partition words. */
static size_t parts_arg(int argc, char **argv, struct txn_partition *out, size_t max)
{
    size_t n = 0;
    for (int i = 1; i < argc && n < max; i++) {
        char *slash = strchr(argv[i], '/');
        if (!slash || strchr(argv[i], '='))
            continue;
        out[n++] = (struct txn_partition){{(const uint8_t *)argv[i], (size_t)(slash - argv[i])},
                                          atoi(slash + 1)};
    }
    return n;
}

static void describe_cb(void *a, const struct txn_meta *m)
{
    (void)a;
    print_meta(m);
}

static int run_command(int argc, char **argv)
{
    if (argc == 0)
        return 1;
    const char *cmd = argv[0];
    if (strcmp(cmd, "init") == 0 && argc >= 2) {
        struct txn_init_req r = {.transactional_id = id_arg(argc, argv),
                                 .timeout_ms = (int32_t)arg_num(argc, argv, "timeout", 60000),
                                 .producer_id = arg_num(argc, argv, "pid", -1),
                                 .producer_epoch = (int16_t)arg_num(argc, argv, "epoch", -1)};
        txn_init_producer_id(coord, now_ms, &r, ctx_named(argv[1]));
    } else if (strcmp(cmd, "add") == 0 && argc >= 2) {
        struct txn_partition parts[16];
        struct txn_add_req r = {.transactional_id = id_arg(argc, argv),
                                .producer_id = arg_num(argc, argv, "pid", -1),
                                .producer_epoch = (int16_t)arg_num(argc, argv, "epoch", -1),
                                .partitions = parts,
                                .n_partitions = parts_arg(argc, argv, parts, 16),
                                .client_version = (int16_t)arg_num(argc, argv, "v", 0)};
        txn_add_partitions(coord, now_ms, &r, ctx_named(argv[1]));
    } else if (strcmp(cmd, "end") == 0 && argc >= 2) {
        bool commit = false;
        for (int i = 2; i < argc; i++)
            commit |= strcmp(argv[i], "commit") == 0;
        struct txn_end_req r = {.transactional_id = id_arg(argc, argv),
                                .producer_id = arg_num(argc, argv, "pid", -1),
                                .producer_epoch = (int16_t)arg_num(argc, argv, "epoch", -1),
                                .commit = commit,
                                .client_version = (int16_t)arg_num(argc, argv, "v", 0)};
        txn_end(coord, now_ms, &r, ctx_named(argv[1]));
    } else if (strcmp(cmd, "record") == 0) {
        struct txn_partition parts[16];
        const char *state = arg(argc, argv, "state");
        struct txn_meta m = {.transactional_id = id_arg(argc, argv),
                             .producer_id = arg_num(argc, argv, "pid", -1),
                             .producer_epoch = (int16_t)arg_num(argc, argv, "epoch", -1),
                             .timeout_ms = 60000,
                             .state = TXN_DEAD,
                             .partitions = parts,
                             .n_partitions = parts_arg(argc, argv, parts, 16),
                             .last_update_ms = now_ms,
                             .start_ms = -1,
                             .prev_producer_id = arg_num(argc, argv, "prev", -1),
                             .next_producer_id = -1,
                             .client_version = (int16_t)arg_num(argc, argv, "v", 0)};
        for (int s = TXN_EMPTY; s <= TXN_PREPARE_EPOCH_FENCE && state; s++)
            if (strcmp(txn_state_name((enum txn_state)s), state) == 0)
                m.state = (enum txn_state)s;
        if (m.state == TXN_ONGOING)
            m.start_ms = now_ms;
        ASSERT(n_durable < MAX_RECORDS && m.transactional_id.len > 0);
        durable[n_durable].partition = txn_partition_for(coord, m.transactional_id);
        buf_init(&durable[n_durable].key);
        buf_init(&durable[n_durable].value);
        txn_record_encode(&durable[n_durable].key, &durable[n_durable].value, &m);
        durable[n_durable].tombstone = false;
        n_durable++;
    } else if (strcmp(cmd, "append") == 0) {
        if (n_appends == 0)
            return 1;
        struct pending_append a = appends[0];
        memmove(&appends[0], &appends[1], (--n_appends) * sizeof appends[0]);
        int16_t err = argc > 1 && strcmp(argv[1], "ok") != 0 ? (int16_t)atoi(argv[1]) : 0;
        if (err == 0) {
            ASSERT(n_durable < MAX_RECORDS);
            durable[n_durable].partition = a.partition;
            durable[n_durable].key = a.key;
            durable[n_durable].value = a.value;
            durable[n_durable].tombstone = a.tombstone;
            n_durable++;
        } else {
            buf_free(&a.key);
            buf_free(&a.value);
        }
        txn_append_done(coord, now_ms, a.token, err);
    } else if (strcmp(cmd, "pid") == 0) {
        if (n_pid_waits == 0)
            return 1;
        void *token = pid_waits[0];
        memmove(&pid_waits[0], &pid_waits[1], (--n_pid_waits) * sizeof pid_waits[0]);
        int16_t err = (int16_t)arg_num(argc, argv, "error", 0);
        int64_t pid =
            err ? -1 : (argc > 1 && !arg(argc, argv, "error") ? atoll(argv[1]) : next_pid++);
        txn_producer_id_done(coord, now_ms, token, err, pid);
    } else if (strcmp(cmd, "markers") == 0) {
        if (n_marker_waits == 0)
            return 1;
        void *token = marker_waits[0];
        memmove(&marker_waits[0], &marker_waits[1], (--n_marker_waits) * sizeof marker_waits[0]);
        txn_markers_done(coord, now_ms, token);
    } else if (strcmp(cmd, "tick") == 0 && argc == 2) {
        int64_t until = now_ms + atoll(argv[1]);
        for (;;) {
            int64_t d = txn_next_deadline(coord);
            if (d > until)
                break;
            now_ms = MAX(now_ms, d);
            txn_tick(coord, now_ms);
        }
        now_ms = until;
        script_outf("now %lld\n", (long long)now_ms);
    } else if (strcmp(cmd, "restart") == 0) {
        txn_coordinator_destroy(coord);
        drop_pending();
        new_coordinator();
        load_all();
    } else if (strcmp(cmd, "unload") == 0 && argc == 2) {
        txn_unload(coord, atoi(argv[1]));
    } else if (strcmp(cmd, "describe") == 0 && argc == 2) {
        struct txn_meta m;
        int16_t e =
            txn_describe(coord, (struct slice){(const uint8_t *)argv[1], strlen(argv[1])}, &m);
        if (e != TXN_ERR_NONE)
            script_outf("describe %s: %s\n", argv[1], error_name(e));
        else
            print_meta(&m);
    } else if (strcmp(cmd, "verify") == 0) {
        struct txn_partition part[1];
        if (parts_arg(argc, argv, part, 1) != 1)
            return 1;
        int16_t e = txn_verify(coord, id_arg(argc, argv), arg_num(argc, argv, "pid", -1),
                               (int16_t)arg_num(argc, argv, "epoch", -1), part[0]);
        script_outf("verify: %s\n", error_name(e));
    } else if (strcmp(cmd, "list") == 0) {
        txn_each(coord, describe_cb, NULL);
    } else {
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct script_ops ops = {
        .begin = reset_world,
        .run = run_command,
        .end = end_world,
    };
    return script_main(argc, argv, &ops);
}
