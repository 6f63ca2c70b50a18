/*
 * server_interaction: the whole broker (server_create_with, dispatch, the handlers,
 * group commit, the fetch purgatory, metadata changes, topic deletion) driven by a script
 * in one thread, deterministically. Scripts are tests/unit/server/testdata/NAME.txt, run
 * by the shared runner (tests/unit/support/script.h); `server_interaction --rewrite
 * FILE...` regenerates their expected output (read the diff before committing it).
 *
 * The seams that make it deterministic, none of which changes what production runs:
 *   - the fake clock (base.h, time_set_fake): timers and deadlines move only when the
 *     script says `advance`;
 *   - the loop stepped by net_loop_run_once(loop, 0), never blocking: after every command
 *     the test runs iterations until one dispatches no event and fires no timer;
 *   - manual syncers (server_options.manual_io, storage.h syncer_create_manual): a
 *     group-commit round, a metadata log write (or checkpoint write), a directory
 *     removal or a cleaner run happens only when the script runs it, on the test's
 *     thread, and completes through the real eventfd and reap path;
 *   - clients are socketpairs handed to the server's listener (net_listener_adopt): the
 *     test writes Kafka frames built with the generated encoders and decodes the
 *     responses that arrived, without blocking.
 * The files are real (a temporary log dir per script): only when things happen is
 * scripted. The test is white-box where it must be: it reaches the loop, the listener,
 * the syncers and, for `state`, the topics through server/internal.h.
 *
 * Every command runs the loop until it is idle and then prints the responses clients
 * received meanwhile, one line each, client by client (a client's responses are in
 * request order: net sends them so):
 *     CLIENT: API #CORRELATION: per partition or topic results
 *
 * Commands (clients are named by a word and connect on first use):
 *   create-topics CLIENT NAME:PARTITIONS...   CreateTopics v5, timeout 60 s
 *   delete-topics CLIENT NAME...              DeleteTopics v4
 *   metadata CLIENT [NAME...]                 Metadata v12 (no names: every topic)
 *   produce CLIENT ACKS TOPIC:PARTITION:N...  Produce v9, one batch of N records per
 *                                             partition; ACKS is all, 1 or 0
 *   fetch CLIENT [max-wait=MS] [min-bytes=N] TOPIC:PARTITION:OFFSET...
 *                                             Fetch v12 (defaults 1000 ms and 1 byte)
 *   sync N|all         completes the next N queued group-commit rounds, each followed
 *                      by the loop (all: until none is queued, also rounds the
 *                      completions started)
 *   metadata-io N|all  the same for the metadata thread: metadata log writes and
 *                      checkpoint files, in the order submitted
 *   remover N|all      the same for directory removals of deleted topics
 *   advance MS         moves the fake clocks forward
 *   loop               only runs the loop (and prints what arrived)
 *   state              topics (not internal ones) with each partition's log end and
 *                      durable offsets, what waits in the purgatories, what is queued
 *                      on each syncer
 *   dirs               the partition directories in the log dir (internal topics' left
 *                      out), a directory renamed for deletion as NAME.*-delete
 *   block-dir NAME     puts a regular file where the partition directory NAME (say
 *                      t-0) must go, so that opening that partition fails
 *   partition-change TOPIC:PARTITION LEADER ISR
 *                      submits a partition change to the metadata (as the controller
 *                      will: cluster_change_partition); LEADER a node id or -1, ISR node
 *                      ids joined by commas, or - for none; its outcome is printed once
 *                      the metadata thread has written it
 */
#include "script.h"
#include "server/internal.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 8
#define MAX_PENDING 64
#define MAX_ITEMS 16
#define MAX_LOOP_ITERATIONS 1000
#define START_MONO_MS 1000000
#define START_WALL_MS 1700000000000LL

/* Versions spoken: flexible ones where the broker serves them, by topic name. */
#define V_PRODUCE 9
#define V_FETCH 12
#define V_METADATA 12
#define V_CREATE_TOPICS 5
#define V_DELETE_TOPICS 4

struct pending {
    int32_t correlation_id;
    int16_t api_key, api_version;
};

struct client {
    char name[16];
    int fd; /* the test's end of the socketpair */
    int32_t next_correlation_id;
    struct pending pending[MAX_PENDING]; /* requests not answered yet, oldest first */
    size_t pending_count;
    struct buf in; /* bytes received, not yet a whole frame */
    bool closed;   /* the server closed the connection */
};

static char log_dir[256];
static struct broker_config cfg;
static struct server *srv;
static struct client clients[MAX_CLIENTS];
static size_t client_count;

/* ---- set-up and tear-down ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void begin(void)
{
    time_set_fake(START_MONO_MS, START_WALL_MS);
    snprintf(log_dir, sizeof log_dir, "/tmp/samsa-server-script-XXXXXX");
    ASSERT(mkdtemp(log_dir) != NULL);
    char dirs[300];
    snprintf(dirs, sizeof dirs, "log.dirs=%s", log_dir);
    /* Periodic checkpoint writes would queue on the metadata thread whenever a script
     * advances the clock past them: out of the way, so metadata-io counts only what the
     * script's requests cause. */
    char *overrides[] = {
        "listeners=PLAINTEXT://127.0.0.1:0",
        dirs,
        "log.level=WARN",
        "offsets.topic.num.partitions=1",
        "log.flush.offset.checkpoint.interval.ms=86400000",
    };
    ASSERT(broker_config_load(&cfg, NULL, overrides, sizeof overrides / sizeof *overrides) == 0);
    struct server_options opt = {.manual_io = true};
    ASSERT(server_create_with(&cfg, &opt, &srv) == 0);
    client_count = 0;
}

static void settle(void);

static void end(void)
{
    /* Clients go (their parked fetches are dropped), then everything queued runs: no
     * acks=all produce or metadata change is left waiting when the server goes. */
    for (size_t i = 0; i < client_count; i++) {
        close(clients[i].fd);
        buf_free(&clients[i].in);
    }
    client_count = 0;
    settle();
    struct syncer *all[] = {srv->syncer, srv->metadata_io, srv->remover, srv->cleaner};
    for (bool ran = true; ran;) {
        ran = false;
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            if (all[i] && syncer_run_pending(all[i], SIZE_MAX) > 0)
                ran = true;
        settle();
    }
    server_destroy(srv);
    srv = NULL;
    broker_config_free(&cfg);
    nftw(log_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the loop ---- */

/* Runs loop iterations until one has nothing to do: no fd event, no timer due. */
static void settle(void)
{
    for (int i = 0; i < MAX_LOOP_ITERATIONS; i++) {
        int rc = net_loop_run_once(srv->loop, 0);
        ASSERT(rc >= 0);
        if (rc == 0)
            return;
    }
    script_outf("the loop did not settle in %d iterations\n", MAX_LOOP_ITERATIONS);
}

/* ---- clients ---- */

static struct client *client_named(const char *name)
{
    for (size_t i = 0; i < client_count; i++)
        if (strcmp(clients[i].name, name) == 0)
            return &clients[i];
    if (client_count == MAX_CLIENTS || strlen(name) >= sizeof clients[0].name)
        return NULL;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    ASSERT(net_listener_adopt(srv->listener, sv[1]) == 0);
    struct client *c = &clients[client_count++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->fd = sv[0];
    c->next_correlation_id = 1;
    buf_init(&c->in);
    return c;
}

/* Sends one request: header, then body (encoded by the caller into body). An acks=0
 * produce expects no response. */
static void client_send(struct client *c, int16_t api_key, int16_t version, const struct buf *body,
                        bool expect_response)
{
    ASSERT(c->pending_count < MAX_PENDING);
    struct request_header h = {
        .api_key = api_key,
        .api_version = version,
        .correlation_id = c->next_correlation_id++,
        .client_id = slice_from_cstr(c->name),
    };
    struct buf frame;
    buf_init(&frame);
    buf_put_i32(&frame, 0);
    proto_request_header_encode(&frame, &h);
    buf_append(&frame, body->data, body->len);
    buf_patch_i32(&frame, 0, (int32_t)(frame.len - 4));
    ASSERT(write(c->fd, frame.data, frame.len) == (ssize_t)frame.len);
    buf_free(&frame);
    if (expect_response)
        c->pending[c->pending_count++] = (struct pending){h.correlation_id, api_key, version};
}

/* ---- printing responses ---- */

static const char *err_name(int16_t code)
{
    return code == KERR_NONE ? "ok" : kafka_error_name(code);
}

static void print_produce(struct reader *r, int16_t v, struct arena *a)
{
    struct produce_response m;
    ASSERT(produce_response_decode(r, v, a, &m) == 0);
    const char *sep = "";
    for (int32_t i = 0; i < m.responses_count; i++) {
        const struct produce_response_responses *t = &m.responses[i];
        for (int32_t j = 0; j < t->partition_responses_count; j++) {
            const struct produce_response_responses_partition_responses *p =
                &t->partition_responses[j];
            script_outf("%s%.*s-%d %s", sep, (int)t->name.len, (const char *)t->name.ptr, p->index,
                        err_name(p->error_code));
            if (p->error_code == KERR_NONE)
                script_outf(" base=%lld", (long long)p->base_offset);
            sep = "; ";
        }
    }
}

/* The offsets of the record batches in records: "none", or "FIRST..LAST". */
static void print_records(struct slice records)
{
    int64_t first = -1, last = -1;
    struct reader r;
    rd_init(&r, records.ptr, records.len);
    while (rd_remaining(&r) >= 61) {
        int64_t base = rd_i64(&r);
        int32_t len = rd_i32(&r);
        struct slice rest = rd_bytes(&r, (size_t)len);
        if (r.err || rest.len < 15)
            break; /* a partial batch at the end: Kafka lets the client skip it */
        struct reader h;
        rd_init(&h, rest.ptr + 11, 4); /* epoch 4, magic 1, crc 4, attributes 2 */
        int32_t last_delta = rd_i32(&h);
        if (first < 0)
            first = base;
        last = base + last_delta;
    }
    if (first < 0)
        script_outf(" records=none");
    else
        script_outf(" records=%lld..%lld", (long long)first, (long long)last);
}

static void print_fetch(struct reader *r, int16_t v, struct arena *a)
{
    struct fetch_response m;
    ASSERT(fetch_response_decode(r, v, a, &m) == 0);
    if (m.error_code != KERR_NONE)
        script_outf("%s", err_name(m.error_code));
    const char *sep = "";
    for (int32_t i = 0; i < m.responses_count; i++) {
        const struct fetch_response_responses *t = &m.responses[i];
        for (int32_t j = 0; j < t->partitions_count; j++) {
            const struct fetch_response_responses_partitions *p = &t->partitions[j];
            script_outf("%s%.*s-%d %s", sep, (int)t->topic.len, (const char *)t->topic.ptr,
                        p->partition_index, err_name(p->error_code));
            if (p->error_code == KERR_NONE) {
                script_outf(" hw=%lld", (long long)p->high_watermark);
                print_records(p->records);
            }
            sep = "; ";
        }
    }
}

static void print_create_topics(struct reader *r, int16_t v, struct arena *a)
{
    struct create_topics_response m;
    ASSERT(create_topics_response_decode(r, v, a, &m) == 0);
    for (int32_t i = 0; i < m.topics_count; i++)
        script_outf("%s%.*s %s", i ? "; " : "", (int)m.topics[i].name.len,
                    (const char *)m.topics[i].name.ptr, err_name(m.topics[i].error_code));
}

static void print_delete_topics(struct reader *r, int16_t v, struct arena *a)
{
    struct delete_topics_response m;
    ASSERT(delete_topics_response_decode(r, v, a, &m) == 0);
    for (int32_t i = 0; i < m.responses_count; i++)
        script_outf("%s%.*s %s", i ? "; " : "", (int)m.responses[i].name.len,
                    (const char *)m.responses[i].name.ptr, err_name(m.responses[i].error_code));
}

static int cmp_topics(const void *a, const void *b)
{
    const struct metadata_response_topics *x = a, *y = b;
    size_t n = MIN(x->name.len, y->name.len);
    int c = memcmp(x->name.ptr, y->name.ptr, n);
    return c ? c : (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

/* Topics by name (the broker lists them in its own order), each with its partition
 * count or its error; internal topics left out. */
static void print_metadata(struct reader *r, int16_t v, struct arena *a)
{
    struct metadata_response m;
    ASSERT(metadata_response_decode(r, v, a, &m) == 0);
    if (m.topics_count > 0)
        qsort(m.topics, (size_t)m.topics_count, sizeof *m.topics, cmp_topics);
    script_outf("topics [");
    const char *sep = "";
    for (int32_t i = 0; i < m.topics_count; i++) {
        const struct metadata_response_topics *t = &m.topics[i];
        if (t->is_internal)
            continue;
        script_outf("%s%.*s", sep, (int)t->name.len, (const char *)t->name.ptr);
        if (t->error_code != KERR_NONE)
            script_outf(" %s", err_name(t->error_code));
        else
            script_outf("(%d)", t->partitions_count);
        sep = " ";
    }
    script_outf("]");
}

static const char *api_name(int16_t key)
{
    switch (key) {
    case API_KEY_PRODUCE: return "produce";
    case API_KEY_FETCH: return "fetch";
    case API_KEY_METADATA: return "metadata";
    case API_KEY_CREATE_TOPICS: return "create-topics";
    case API_KEY_DELETE_TOPICS: return "delete-topics";
    }
    return "?";
}

/* One whole response frame (without its length) to the client's oldest request. */
static void print_response(struct client *c, const uint8_t *frame, size_t len)
{
    ASSERT(c->pending_count > 0);
    struct pending p = c->pending[0];
    memmove(&c->pending[0], &c->pending[1], --c->pending_count * sizeof c->pending[0]);
    struct reader r;
    rd_init(&r, frame, len);
    int32_t correlation_id = rd_i32(&r);
    if (proto_is_flexible(p.api_key, p.api_version))
        rd_uvarint(&r); /* the header's tagged fields: none */
    script_outf("%s: %s #%d: ", c->name, api_name(p.api_key), correlation_id);
    if (correlation_id != p.correlation_id)
        script_outf("(expected #%d) ", p.correlation_id);
    struct arena a;
    arena_init(&a);
    switch (p.api_key) {
    case API_KEY_PRODUCE: print_produce(&r, p.api_version, &a); break;
    case API_KEY_FETCH: print_fetch(&r, p.api_version, &a); break;
    case API_KEY_METADATA: print_metadata(&r, p.api_version, &a); break;
    case API_KEY_CREATE_TOPICS: print_create_topics(&r, p.api_version, &a); break;
    case API_KEY_DELETE_TOPICS: print_delete_topics(&r, p.api_version, &a); break;
    }
    arena_free(&a);
    script_outf("\n");
}

/* Reads what every client has received, without blocking, and prints each whole
 * response. */
static void print_responses(void)
{
    for (size_t i = 0; i < client_count; i++) {
        struct client *c = &clients[i];
        uint8_t chunk[65536];
        ssize_t n;
        while ((n = recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
            buf_append(&c->in, chunk, (size_t)n);
        if (n == 0 && !c->closed) {
            c->closed = true;
            script_outf("%s: connection closed by the server\n", c->name);
        }
        size_t used = 0;
        while (c->in.len - used >= 4) {
            struct reader r;
            rd_init(&r, c->in.data + used, 4);
            size_t len = (size_t)rd_i32(&r);
            if (c->in.len - used - 4 < len)
                break;
            print_response(c, c->in.data + used + 4, len);
            used += 4 + len;
        }
        if (used > 0) {
            memmove(c->in.data, c->in.data + used, c->in.len - used);
            c->in.len -= used;
        }
    }
}

/* ---- commands ---- */

/* Splits "a:b[:c]" into its parts; the numbers must parse. */
static bool parse_item(const char *text, char *name, size_t cap, int64_t *n1, int64_t *n2)
{
    const char *colon = strchr(text, ':');
    if (!colon || colon == text || (size_t)(colon - text) >= cap)
        return false;
    memcpy(name, text, (size_t)(colon - text));
    name[colon - text] = '\0';
    char *end;
    errno = 0;
    *n1 = strtoll(colon + 1, &end, 10);
    if (errno || end == colon + 1)
        return false;
    if (!n2)
        return *end == '\0';
    if (*end != ':')
        return false;
    const char *third = end + 1;
    *n2 = strtoll(third, &end, 10);
    return !errno && end != third && *end == '\0';
}

static int cmd_create_topics(int argc, char **argv)
{
    struct client *c = argc >= 3 ? client_named(argv[1]) : NULL;
    if (!c || argc - 2 > MAX_ITEMS)
        return -1;
    char names[MAX_ITEMS][64];
    struct create_topics_request_topics topics[MAX_ITEMS];
    for (int i = 2; i < argc; i++) {
        int64_t parts;
        if (!parse_item(argv[i], names[i - 2], sizeof names[0], &parts, NULL))
            return -1;
        struct create_topics_request_topics *t = &topics[i - 2];
        create_topics_request_topics_init(t);
        t->name = slice_from_cstr(names[i - 2]);
        t->num_partitions = (int32_t)parts;
        t->replication_factor = 1;
        t->assignments_count = 0;
        t->configs_count = 0;
    }
    struct create_topics_request m;
    create_topics_request_init(&m);
    m.topics_count = argc - 2;
    m.topics = topics;
    m.timeout_ms = 60000;
    struct buf b;
    buf_init(&b);
    create_topics_request_encode(&b, V_CREATE_TOPICS, &m);
    client_send(c, API_KEY_CREATE_TOPICS, V_CREATE_TOPICS, &b, true);
    buf_free(&b);
    return 0;
}

static int cmd_delete_topics(int argc, char **argv)
{
    struct client *c = argc >= 3 ? client_named(argv[1]) : NULL;
    if (!c || argc - 2 > MAX_ITEMS)
        return -1;
    struct slice names[MAX_ITEMS];
    for (int i = 2; i < argc; i++)
        names[i - 2] = slice_from_cstr(argv[i]);
    struct delete_topics_request m;
    delete_topics_request_init(&m);
    m.topic_names_count = argc - 2;
    m.topic_names = names;
    m.timeout_ms = 60000;
    struct buf b;
    buf_init(&b);
    delete_topics_request_encode(&b, V_DELETE_TOPICS, &m);
    client_send(c, API_KEY_DELETE_TOPICS, V_DELETE_TOPICS, &b, true);
    buf_free(&b);
    return 0;
}

static int cmd_metadata(int argc, char **argv)
{
    struct client *c = argc >= 2 ? client_named(argv[1]) : NULL;
    if (!c || argc - 2 > MAX_ITEMS)
        return -1;
    struct metadata_request_topics topics[MAX_ITEMS];
    for (int i = 2; i < argc; i++) {
        metadata_request_topics_init(&topics[i - 2]);
        topics[i - 2].name = slice_from_cstr(argv[i]);
    }
    struct metadata_request m;
    metadata_request_init(&m);
    m.topics_count = argc > 2 ? argc - 2 : -1;
    m.topics = topics;
    m.allow_auto_topic_creation = false;
    struct buf b;
    buf_init(&b);
    metadata_request_encode(&b, V_METADATA, &m);
    client_send(c, API_KEY_METADATA, V_METADATA, &b, true);
    buf_free(&b);
    return 0;
}

static int cmd_produce(int argc, char **argv)
{
    struct client *c = argc >= 4 ? client_named(argv[1]) : NULL;
    if (!c || argc - 3 > MAX_ITEMS)
        return -1;
    int16_t acks;
    if (strcmp(argv[2], "all") == 0)
        acks = -1;
    else if (strcmp(argv[2], "1") == 0 || strcmp(argv[2], "0") == 0)
        acks = (int16_t)atoi(argv[2]);
    else
        return -1;
    /* One topic entry per partition: Kafka allows a topic to appear more than once, and
     * the response lists them in request order. */
    char names[MAX_ITEMS][64];
    struct produce_request_topic_data topics[MAX_ITEMS];
    struct produce_request_topic_data_partition_data parts[MAX_ITEMS];
    struct buf batches[MAX_ITEMS];
    int n = argc - 3;
    for (int i = 0; i < n; i++) {
        int64_t index, count;
        if (!parse_item(argv[i + 3], names[i], sizeof names[0], &index, &count) || count < 1 ||
            count > 100) {
            for (int j = 0; j < i; j++)
                buf_free(&batches[j]);
            return -1;
        }
        struct record_in recs[100];
        for (int64_t k = 0; k < count; k++)
            recs[k] = (struct record_in){{NULL, 0}, slice_from_cstr("v")};
        buf_init(&batches[i]);
        batch_encode(&batches[i], recs, (size_t)count, time_wall_ms());
        produce_request_topic_data_partition_data_init(&parts[i]);
        parts[i].index = (int32_t)index;
        parts[i].records = (struct slice){batches[i].data, batches[i].len};
        produce_request_topic_data_init(&topics[i]);
        topics[i].name = slice_from_cstr(names[i]);
        topics[i].partition_data_count = 1;
        topics[i].partition_data = &parts[i];
    }
    struct produce_request m;
    produce_request_init(&m);
    m.acks = acks;
    m.timeout_ms = 30000;
    m.topic_data_count = n;
    m.topic_data = topics;
    struct buf b;
    buf_init(&b);
    produce_request_encode(&b, V_PRODUCE, &m);
    client_send(c, API_KEY_PRODUCE, V_PRODUCE, &b, acks != 0);
    buf_free(&b);
    for (int i = 0; i < n; i++)
        buf_free(&batches[i]);
    return 0;
}

static int cmd_fetch(int argc, char **argv)
{
    struct client *c = argc >= 3 ? client_named(argv[1]) : NULL;
    if (!c)
        return -1;
    int32_t max_wait_ms = 1000, min_bytes = 1;
    char names[MAX_ITEMS][64];
    struct fetch_request_topics topics[MAX_ITEMS];
    struct fetch_request_topics_partitions parts[MAX_ITEMS];
    int n = 0;
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "max-wait=", 9) == 0) {
            max_wait_ms = atoi(argv[i] + 9);
            continue;
        }
        if (strncmp(argv[i], "min-bytes=", 10) == 0) {
            min_bytes = atoi(argv[i] + 10);
            continue;
        }
        int64_t index, offset;
        if (n == MAX_ITEMS || !parse_item(argv[i], names[n], sizeof names[0], &index, &offset))
            return -1;
        fetch_request_topics_partitions_init(&parts[n]);
        parts[n].partition = (int32_t)index;
        parts[n].fetch_offset = offset;
        parts[n].partition_max_bytes = 1 << 20;
        fetch_request_topics_init(&topics[n]);
        topics[n].topic = slice_from_cstr(names[n]);
        topics[n].partitions_count = 1;
        topics[n].partitions = &parts[n];
        n++;
    }
    if (n == 0)
        return -1;
    struct fetch_request m;
    fetch_request_init(&m);
    m.max_wait_ms = max_wait_ms;
    m.min_bytes = min_bytes;
    m.topics_count = n;
    m.topics = topics;
    m.forgotten_topics_data_count = 0;
    struct buf b;
    buf_init(&b);
    fetch_request_encode(&b, V_FETCH, &m);
    client_send(c, API_KEY_FETCH, V_FETCH, &b, true);
    buf_free(&b);
    return 0;
}

/* sync / metadata-io / remover: runs N queued items one at a time, the loop after each
 * (all: until none is queued). */
static int cmd_io(int argc, char **argv, struct syncer *sy)
{
    if (argc != 2 || !sy)
        return -1;
    bool all = strcmp(argv[1], "all") == 0;
    long n = all ? -1 : atol(argv[1]);
    if (!all && n < 1)
        return -1;
    long ran = 0;
    while ((all || ran < n) && syncer_run_pending(sy, 1) == 1) {
        ran++;
        settle();
    }
    script_outf("%s: ran %ld\n", argv[0], ran);
    return 0;
}

static int cmd_advance(int argc, char **argv)
{
    if (argc != 2 || atol(argv[1]) < 0)
        return -1;
    time_advance_fake(atol(argv[1]));
    script_outf("clock: +%lld ms\n", (long long)(time_mono_ms() - START_MONO_MS));
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_state(void)
{
    char *names[64];
    size_t n = 0;
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(&srv->topics, &it, &k, &v) && n < 64) {
        struct topic_state *ts = v;
        if (!ts->settings.internal)
            names[n++] = ts->name;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        struct topic_state *ts = server_topic(srv, slice_from_cstr(names[i]));
        script_outf("topic %s:", ts->name);
        for (int32_t p = 0; p < ts->partition_count; p++) {
            const struct partition *pp = ts->partitions[p];
            script_outf(" %d(end=%lld durable=%lld %s@%d)", p, (long long)log_end_offset(pp->log),
                        (long long)log_durable_offset(pp->log),
                        pp->role == PARTITION_LEADER ? "leader" : "follower", pp->leader_epoch);
        }
        if (ts->partition_count < ts->target_count)
            script_outf(" opening %d more", ts->target_count - ts->partition_count);
        script_outf("\n");
    }
    script_outf("waiting: acks=all %zu, fetches %zu\n", purgatory_size(srv->durable_waits),
                purgatory_size(srv->fetch_waits));
    script_outf("queued: sync %zu, metadata-io %zu, remover %zu\n", syncer_pending(srv->syncer),
                syncer_pending(srv->metadata_io), syncer_pending(srv->remover));
}

/* The partition directories, sorted; a renamed one without its random part. */
static void print_dirs(void)
{
    DIR *d = opendir(log_dir);
    ASSERT(d);
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        size_t topic_len;
        int32_t index;
        bool deleted = log_dir_name_deleted(e->d_name);
        if (!deleted && !log_dir_name_parse(e->d_name, &topic_len, &index))
            continue;
        if (strncmp(e->d_name, "__", 2) == 0)
            continue; /* __consumer_offsets, __cluster_metadata */
        if (deleted) {
            char *dot = strrchr(e->d_name, '.');
            ASSERT(dot);
            *dot = '\0';
            names[n] = xmalloc(strlen(e->d_name) + 16);
            sprintf(names[n], "%s.*-delete", e->d_name);
        } else {
            names[n] = xstrdup(e->d_name);
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    script_outf("dirs [");
    for (size_t i = 0; i < n; i++) {
        script_outf("%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
    script_outf("]\n");
}

static void partition_changed(void *arg, const struct cluster_result *res)
{
    (void)arg;
    if (res->err == CLUSTER_OK)
        script_outf("partition-change: ok\n");
    else
        script_outf("partition-change: error %d (%s)\n", res->err, res->why ? res->why : "");
}

static int cmd_partition_change(int argc, char **argv)
{
    char topic[64];
    int64_t index;
    if (argc != 4 || !parse_item(argv[1], topic, sizeof topic, &index, NULL))
        return -1;
    int32_t isr[8];
    int32_t n = 0;
    if (strcmp(argv[3], "-") != 0) {
        char copy[64];
        snprintf(copy, sizeof copy, "%s", argv[3]);
        for (char *id = strtok(copy, ","); id && n < 8; id = strtok(NULL, ","))
            isr[n++] = atoi(id);
    }
    struct cluster_partition_change ch = {
        .leader = atoi(argv[2]), .replicas = NULL, .isr = isr, .isr_count = n};
    cluster_change_partition(srv->cluster, slice_from_cstr(topic), (int32_t)index, &ch,
                             partition_changed, NULL);
    return 0;
}

static int cmd_block_dir(int argc, char **argv)
{
    if (argc != 2)
        return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", log_dir, argv[1]);
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs("not a directory\n", f);
    fclose(f);
    return 0;
}

static int run(int argc, char **argv)
{
    if (argc == 0)
        return -1;
    const char *cmd = argv[0];
    int rc;
    if (strcmp(cmd, "create-topics") == 0)
        rc = cmd_create_topics(argc, argv);
    else if (strcmp(cmd, "delete-topics") == 0)
        rc = cmd_delete_topics(argc, argv);
    else if (strcmp(cmd, "metadata") == 0)
        rc = cmd_metadata(argc, argv);
    else if (strcmp(cmd, "produce") == 0)
        rc = cmd_produce(argc, argv);
    else if (strcmp(cmd, "fetch") == 0)
        rc = cmd_fetch(argc, argv);
    else if (strcmp(cmd, "sync") == 0)
        rc = cmd_io(argc, argv, srv->syncer);
    else if (strcmp(cmd, "metadata-io") == 0)
        rc = cmd_io(argc, argv, srv->metadata_io);
    else if (strcmp(cmd, "remover") == 0)
        rc = cmd_io(argc, argv, srv->remover);
    else if (strcmp(cmd, "advance") == 0)
        rc = cmd_advance(argc, argv);
    else if (strcmp(cmd, "block-dir") == 0)
        rc = cmd_block_dir(argc, argv);
    else if (strcmp(cmd, "partition-change") == 0)
        rc = cmd_partition_change(argc, argv);
    else if (strcmp(cmd, "loop") == 0)
        rc = argc == 1 ? 0 : -1;
    else if (strcmp(cmd, "state") == 0 || strcmp(cmd, "dirs") == 0)
        rc = argc == 1 ? 0 : -1;
    else
        return -1;
    if (rc != 0)
        return rc;
    settle();
    print_responses();
    if (strcmp(cmd, "state") == 0)
        print_state();
    if (strcmp(cmd, "dirs") == 0)
        print_dirs();
    return 0;
}

int main(int argc, char **argv)
{
    struct script_ops ops = {.begin = begin, .run = run, .end = end};
    return script_main(argc, argv, &ops);
}
