/* `samsa topic reassign`, `samsa topic reassignments` and `samsa cluster drain`: moving
 * partitions between brokers (KIP-455). librdkafka 2.0.2 has no reassignment API, so
 * AlterPartitionReassignments and ListPartitionReassignments go over a connection of our
 * own (wire.h); any broker forwards them to the active controller, in Kafka as in Samsa,
 * so these commands work against both. Drain reads the replicas from Metadata
 * (librdkafka). */
#include "cli.h"
#include "wire.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_WAIT_SECONDS 600
#define POLL_MS 500
#define MAX_REPLICAS 64

static const char reassign_usage[] =
    "usage: samsa topic reassign NAME PARTITION=BROKER,BROKER,... ... [--wait] [--timeout "
    "SECONDS]\n"
    "       samsa topic reassign NAME --cancel PARTITION ...\n"
    "       samsa topic reassignments [NAME]\n"
    "       samsa cluster drain NODE [--wait] [--timeout SECONDS]\n"
    "  reassign moves partitions to the brokers given (the first is the preferred leader);\n"
    "  the new replicas copy the data, join the in-sync replicas, then the old ones leave.\n"
    "  reassignments lists the reassignments under way. drain moves every replica off\n"
    "  NODE to the brokers holding the fewest. --wait returns once they are done.\n"
    "  (every command also takes -b HOST:PORT)\n";

/* One partition to move (replica_count -1: cancel its reassignment). */
struct move {
    const char *topic; /* borrowed */
    int32_t partition;
    int32_t replica_count;
    int32_t replicas[MAX_REPLICAS];
};

struct wait_opts {
    bool wait;
    int64_t timeout_s;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int connect_to(const struct cli_opts *o, struct wire_conn *c, int16_t api_key,
                      int16_t *version)
{
    const char *why;
    const char *boot = o->bootstrap ? o->bootstrap : CLI_DEFAULT_BOOTSTRAP;
    if (wire_connect(c, boot, &why) != 0)
        return cli_err("cannot connect to %s: %s", boot, why);
    *version = wire_version(c, api_key);
    if (*version < 0) {
        cli_err("%s does not offer %s", c->peer,
                api_key == API_KEY_ALTER_PARTITION_REASSIGNMENTS ? "AlterPartitionReassignments"
                                                                 : "ListPartitionReassignments");
        wire_close(c);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

static void print_ids(FILE *f, const int32_t *ids, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? "," : "", ids[i]);
}

/* Sends the moves (grouped by topic in the order given) in one request and prints each
 * partition's outcome, except that moves refused with NOT_CONTROLLER (the controller
 * changed under the request: an election) go to retry[*nretry] when retry is not NULL.
 * Returns 0 if every one was accepted or is to be retried. */
static int send_moves_once(const struct cli_opts *o, const struct move *moves, size_t n,
                           struct move *retry, size_t *nretry)
{
    struct wire_conn c;
    int16_t v;
    if (connect_to(o, &c, API_KEY_ALTER_PARTITION_REASSIGNMENTS, &v) != 0)
        return CLI_EXIT_FAIL;
    struct arena a;
    arena_init(&a);
    struct alter_partition_reassignments_request req;
    alter_partition_reassignments_request_init(&req);
    req.timeout_ms = CLI_TIMEOUT_MS;
    req.topics = arena_alloc(&a, (n ? n : 1) * sizeof *req.topics);
    req.topics_count = 0;
    for (size_t i = 0; i < n; i++) {
        struct alter_partition_reassignments_request_topics *t =
            req.topics_count ? &req.topics[req.topics_count - 1] : NULL;
        if (!t || strcmp((const char *)t->name.ptr, moves[i].topic) != 0) {
            t = &req.topics[req.topics_count++];
            alter_partition_reassignments_request_topics_init(t);
            t->name = slice_from_cstr(moves[i].topic);
            t->partitions = arena_alloc(&a, n * sizeof *t->partitions);
            t->partitions_count = 0;
        }
        struct alter_partition_reassignments_request_topics_partitions *p =
            &t->partitions[t->partitions_count++];
        alter_partition_reassignments_request_topics_partitions_init(p);
        p->partition_index = moves[i].partition;
        p->replicas_count = moves[i].replica_count;
        p->replicas = (int32_t *)moves[i].replicas;
    }
    struct buf body, frame;
    buf_init(&body);
    buf_init(&frame);
    alter_partition_reassignments_request_encode(&body, v, &req);
    struct reader r;
    const char *why;
    int failed = 0;
    struct alter_partition_reassignments_response resp;
    if (wire_call(&c, API_KEY_ALTER_PARTITION_REASSIGNMENTS, v, &body, &frame, &r, &why) != 0) {
        failed = cli_err("AlterPartitionReassignments: %s", why);
    } else if (alter_partition_reassignments_response_decode(&r, v, &a, &resp) != 0) {
        failed = cli_err("AlterPartitionReassignments: malformed response");
    } else if (resp.error_code != KERR_NONE) {
        failed = cli_err("AlterPartitionReassignments: %s%s%.*s", kafka_error_name(resp.error_code),
                         resp.error_message.len ? ": " : "", (int)resp.error_message.len,
                         (const char *)resp.error_message.ptr);
    } else {
        for (int32_t ti = 0; ti < resp.responses_count; ti++) {
            const struct alter_partition_reassignments_response_responses *t = &resp.responses[ti];
            for (int32_t pi = 0; pi < t->partitions_count; pi++) {
                const struct alter_partition_reassignments_response_responses_partitions *p =
                    &t->partitions[pi];
                if (p->error_code == KERR_NONE) {
                    printf("%.*s-%d: accepted\n", (int)t->name.len, (const char *)t->name.ptr,
                           p->partition_index);
                    continue;
                }
                if (p->error_code == KERR_NOT_CONTROLLER && retry) {
                    for (size_t i = 0; i < n; i++)
                        if (moves[i].partition == p->partition_index &&
                            slice_eq_cstr(t->name, moves[i].topic))
                            retry[(*nretry)++] = moves[i];
                    continue;
                }
                failed = CLI_EXIT_FAIL;
                fprintf(stderr, "samsa: %.*s-%d: %s%s%.*s\n", (int)t->name.len,
                        (const char *)t->name.ptr, p->partition_index,
                        kafka_error_name(p->error_code), p->error_message.len ? ": " : "",
                        (int)p->error_message.len, (const char *)p->error_message.ptr);
            }
        }
    }
    buf_free(&body);
    buf_free(&frame);
    arena_free(&a);
    wire_close(&c);
    return failed;
}

/* Sends the moves and prints each partition's outcome; those refused because the
 * controller changed under the request are sent again, as Kafka's admin client retries
 * NOT_CONTROLLER, for up to CLI_TIMEOUT_MS. Returns 0 if every one was accepted. */
#define RETRY_PAUSE_MS 250
static int send_moves(const struct cli_opts *o, const struct move *moves, size_t n)
{
    struct move *left = xcalloc(n ? n : 1, sizeof *left),
                *retry = xcalloc(n ? n : 1, sizeof *retry);
    memcpy(left, moves, n * sizeof *left);
    int failed = 0;
    for (int tries = CLI_TIMEOUT_MS / RETRY_PAUSE_MS; n > 0; tries--) {
        size_t nretry = 0;
        failed |= send_moves_once(o, left, n, tries > 1 ? retry : NULL, &nretry);
        memcpy(left, retry, nretry * sizeof *left);
        n = nretry;
        if (n > 0)
            usleep(RETRY_PAUSE_MS * 1000);
    }
    free(left);
    free(retry);
    return failed;
}

/* The reassignments under way (of `topic` only, if not NULL), decoded into a; *frame
 * holds what they borrow. Returns 0, or an exit status after printing why. */
static int list_under_way(const struct cli_opts *o, const char *topic, struct arena *a,
                          struct buf *frame, struct list_partition_reassignments_response *out)
{
    struct wire_conn c;
    int16_t v;
    if (connect_to(o, &c, API_KEY_LIST_PARTITION_REASSIGNMENTS, &v) != 0)
        return CLI_EXIT_FAIL;
    struct list_partition_reassignments_request req;
    list_partition_reassignments_request_init(&req);
    req.timeout_ms = CLI_TIMEOUT_MS;
    req.topics_count = -1; /* every topic; filtered below, so that NAME needs no partitions */
    struct buf body;
    buf_init(&body);
    list_partition_reassignments_request_encode(&body, v, &req);
    struct reader r;
    const char *why;
    int rc = 0;
    if (wire_call(&c, API_KEY_LIST_PARTITION_REASSIGNMENTS, v, &body, frame, &r, &why) != 0)
        rc = cli_err("ListPartitionReassignments: %s", why);
    else if (list_partition_reassignments_response_decode(&r, v, a, out) != 0)
        rc = cli_err("ListPartitionReassignments: malformed response");
    else if (out->error_code != KERR_NONE)
        rc = cli_err("ListPartitionReassignments: %s%s%.*s", kafka_error_name(out->error_code),
                     out->error_message.len ? ": " : "", (int)out->error_message.len,
                     (const char *)out->error_message.ptr);
    buf_free(&body);
    wire_close(&c);
    if (rc == 0 && topic) {
        int32_t kept = 0;
        for (int32_t i = 0; i < out->topics_count; i++)
            if (out->topics[i].name.len == strlen(topic) &&
                memcmp(out->topics[i].name.ptr, topic, strlen(topic)) == 0)
                out->topics[kept++] = out->topics[i];
        out->topics_count = kept;
    }
    return rc;
}

static bool listed(const struct list_partition_reassignments_response *l, const char *topic,
                   int32_t partition)
{
    for (int32_t i = 0; i < l->topics_count; i++) {
        const struct list_partition_reassignments_response_topics *t = &l->topics[i];
        if (t->name.len != strlen(topic) || memcmp(t->name.ptr, topic, t->name.len) != 0)
            continue;
        for (int32_t k = 0; k < t->partitions_count; k++)
            if (t->partitions[k].partition_index == partition)
                return true;
    }
    return false;
}

/* Waits until none of the moves is under way any more, printing how many remain as
 * that changes. Returns 0, or an exit status after the timeout. */
static int wait_done(const struct cli_opts *o, const struct move *moves, size_t n,
                     int64_t timeout_s)
{
    int64_t deadline = mono_ms() + timeout_s * 1000;
    size_t last = n + 1;
    for (;;) {
        struct arena a;
        struct buf frame;
        arena_init(&a);
        buf_init(&frame);
        struct list_partition_reassignments_response l;
        int rc = list_under_way(o, NULL, &a, &frame, &l);
        size_t left = 0;
        for (size_t i = 0; rc == 0 && i < n; i++)
            left += listed(&l, moves[i].topic, moves[i].partition);
        buf_free(&frame);
        arena_free(&a);
        if (rc != 0)
            return rc;
        if (left == 0) {
            printf("all %zu reassignments are done\n", n);
            return 0;
        }
        if (left != last)
            printf("%zu of %zu reassignments under way\n", left, n);
        fflush(stdout);
        last = left;
        if (mono_ms() >= deadline)
            return cli_err("%zu reassignments still under way after %lld s", left,
                           (long long)timeout_s);
        sleep_ms(POLL_MS);
    }
}

/* Parses "PARTITION=B,B,..." into m. Returns 0, or -1 after printing why. */
static int parse_move(const char *arg, const char *topic, struct move *m)
{
    *m = (struct move){.topic = topic};
    char *end;
    long p = strtol(arg, &end, 10);
    if (end == arg || *end != '=' || p < 0 || p > INT32_MAX) {
        cli_err("'%s' is not PARTITION=BROKER,BROKER,...", arg);
        return -1;
    }
    m->partition = (int32_t)p;
    const char *at = end + 1;
    while (*at) {
        long b = strtol(at, &end, 10);
        if (end == at || (*end != ',' && *end != '\0') || b < 0 || b > INT32_MAX) {
            cli_err("'%s': the brokers must be node ids separated by commas", arg);
            return -1;
        }
        if (m->replica_count == MAX_REPLICAS) {
            cli_err("'%s': more than %d replicas", arg, MAX_REPLICAS);
            return -1;
        }
        m->replicas[m->replica_count++] = (int32_t)b;
        at = *end ? end + 1 : end;
    }
    if (m->replica_count == 0) {
        cli_err("'%s' names no broker", arg);
        return -1;
    }
    return 0;
}

static const struct option reassign_longopts[] = {
    {"bootstrap-server", required_argument, NULL, 'b'},
    {"verbose", no_argument, NULL, 'v'},
    {"wait", no_argument, NULL, 'w'},
    {"timeout", required_argument, NULL, 't'},
    {"cancel", no_argument, NULL, 'x'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Options of the three commands; argv[0] is the verb. Returns 0 or an exit status. */
static int parse_opts(struct cli_opts *o, int argc, char **argv, struct wait_opts *w, bool *cancel)
{
    *w = (struct wait_opts){.timeout_s = DEFAULT_WAIT_SECONDS};
    if (cancel)
        *cancel = false;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:vh", reassign_longopts, NULL)) != -1) {
        if (cli_common_opt(o, c, optarg))
            continue;
        switch (c) {
        case 'w': w->wait = true; break;
        case 't':
            if (cli_parse_i64(optarg, 1, 86400 * 7, "--timeout", &w->timeout_s) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'x':
            if (!cancel) {
                cli_err("%s does not take --cancel", argv[0]);
                return CLI_EXIT_USAGE;
            }
            *cancel = true;
            break;
        case 'h': fputs(reassign_usage, stdout); exit(0);
        default: fputs(reassign_usage, stderr); return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

int topic_reassign_main(struct cli_opts *o, int argc, char **argv)
{
    struct wait_opts w;
    bool cancel;
    int rc = parse_opts(o, argc, argv, &w, &cancel);
    if (rc != 0)
        return rc;
    if (argc - optind < 2) {
        fputs(reassign_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *topic = argv[optind++];
    size_t n = (size_t)(argc - optind);
    struct move *moves = xcalloc(n, sizeof *moves);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *arg = argv[optind + (int)i];
        if (cancel) {
            int64_t p;
            rc = cli_parse_i64(arg, 0, INT32_MAX, "PARTITION", &p) != 0 ? CLI_EXIT_USAGE : 0;
            moves[i] = (struct move){.topic = topic, .partition = (int32_t)p, .replica_count = -1};
        } else if (parse_move(arg, topic, &moves[i]) != 0) {
            rc = CLI_EXIT_USAGE;
        }
    }
    if (rc == 0)
        rc = send_moves(o, moves, n);
    if (rc == 0 && w.wait && !cancel)
        rc = wait_done(o, moves, n, w.timeout_s);
    free(moves);
    return rc;
}

int topic_reassignments_main(struct cli_opts *o, int argc, char **argv)
{
    struct wait_opts w;
    int rc = parse_opts(o, argc, argv, &w, NULL);
    if (rc != 0)
        return rc;
    if (argc - optind > 1) {
        fputs(reassign_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *topic = optind < argc ? argv[optind] : NULL;
    struct arena a;
    struct buf frame;
    arena_init(&a);
    buf_init(&frame);
    struct list_partition_reassignments_response l;
    rc = list_under_way(o, topic, &a, &frame, &l);
    if (rc == 0 && l.topics_count == 0)
        printf("no reassignment is under way\n");
    for (int32_t i = 0; rc == 0 && i < l.topics_count; i++) {
        const struct list_partition_reassignments_response_topics *t = &l.topics[i];
        for (int32_t k = 0; k < t->partitions_count; k++) {
            const struct list_partition_reassignments_response_topics_partitions *p =
                &t->partitions[k];
            printf("%.*s-%d replicas ", (int)t->name.len, (const char *)t->name.ptr,
                   p->partition_index);
            print_ids(stdout, p->replicas, p->replicas_count);
            printf(" adding ");
            print_ids(stdout, p->adding_replicas, p->adding_replicas_count);
            printf(" removing ");
            print_ids(stdout, p->removing_replicas, p->removing_replicas_count);
            printf("\n");
        }
    }
    buf_free(&frame);
    arena_free(&a);
    return rc;
}

/* ---- drain ---- */

static bool has_id(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* The broker listed in md, not among `replicas` nor `node`, holding the fewest replicas
 * (load, indexed like md->brokers); ties go to the lower index. -1: none. */
static int least_loaded(const struct rd_kafka_metadata *md, const int *load,
                        const int32_t *replicas, int n, int32_t node)
{
    int best = -1;
    for (int i = 0; i < md->broker_cnt; i++) {
        int32_t id = md->brokers[i].id;
        if (id == node || has_id(replicas, n, id))
            continue;
        if (best < 0 || load[i] < load[best])
            best = i;
    }
    return best;
}

/* Plans the moves of every replica on `node` in md: the replica is replaced, in place (so
 * a preferred leader's place goes to its replacement), by the broker holding the
 * fewest. Partitions with a reassignment under way are left (counted in *skipped).
 * Returns the number of moves, or -1 after printing why (nothing is sent then). */
static int plan_drain(const struct rd_kafka_metadata *md,
                      const struct list_partition_reassignments_response *under_way, int32_t node,
                      struct move **out, int *skipped)
{
    int *load = xcalloc((size_t)md->broker_cnt + 1, sizeof *load);
    size_t cap = 0, n = 0;
    struct move *moves = NULL;
    *skipped = 0;
    for (int t = 0; t < md->topic_cnt; t++)
        for (int p = 0; p < md->topics[t].partition_cnt; p++)
            for (int r = 0; r < md->topics[t].partitions[p].replica_cnt; r++)
                for (int b = 0; b < md->broker_cnt; b++)
                    load[b] += md->brokers[b].id == md->topics[t].partitions[p].replicas[r];
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        for (int p = 0; p < mt->partition_cnt; p++) {
            const struct rd_kafka_metadata_partition *mp = &mt->partitions[p];
            if (!has_id(mp->replicas, mp->replica_cnt, node))
                continue;
            if (listed(under_way, mt->topic, mp->id)) {
                (*skipped)++;
                continue;
            }
            int b = least_loaded(md, load, mp->replicas, mp->replica_cnt, node);
            if (b < 0 || mp->replica_cnt > MAX_REPLICAS) {
                cli_err("cannot drain node %d: partition %s-%d has %d replicas and no other "
                        "broker is available to take node %d's",
                        node, mt->topic, mp->id, mp->replica_cnt, node);
                free(load);
                free(moves);
                return -1;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                moves = xrealloc(moves, cap * sizeof *moves);
            }
            struct move *m = &moves[n++];
            *m = (struct move){.topic = mt->topic, .partition = mp->id};
            for (int r = 0; r < mp->replica_cnt; r++)
                m->replicas[m->replica_count++] =
                    mp->replicas[r] == node ? md->brokers[b].id : mp->replicas[r];
            load[b]++;
        }
    }
    free(load);
    *out = moves;
    return (int)n;
}

int cluster_drain_main(struct cli_opts *o, int argc, char **argv)
{
    struct wait_opts w;
    int rc = parse_opts(o, argc - 1, argv + 1, &w, NULL);
    if (rc != 0)
        return rc;
    if (argc - 1 - optind != 1) {
        fputs(reassign_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    int64_t node;
    if (cli_parse_i64(argv[1 + optind], 0, INT32_MAX, "NODE", &node) != 0)
        return CLI_EXIT_USAGE;
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (!rk)
        return CLI_EXIT_FAIL;
    const struct rd_kafka_metadata *md = NULL;
    struct arena a;
    struct buf frame;
    arena_init(&a);
    buf_init(&frame);
    struct list_partition_reassignments_response under_way;
    struct move *moves = NULL;
    int skipped = 0, n = -1;
    if (cli_metadata(rk, &md) == 0 && (rc = list_under_way(o, NULL, &a, &frame, &under_way)) == 0)
        n = plan_drain(md, &under_way, (int32_t)node, &moves, &skipped);
    if (n < 0) {
        rc = CLI_EXIT_FAIL;
    } else {
        printf("node %lld: %d replicas to move", (long long)node, n);
        if (skipped)
            printf(", %d in partitions already being reassigned (left as they are)", skipped);
        printf("\n");
        for (int i = 0; i < n; i++) {
            printf("%s-%d -> ", moves[i].topic, moves[i].partition);
            print_ids(stdout, moves[i].replicas, moves[i].replica_count);
            printf("\n");
        }
        rc = n > 0 ? send_moves(o, moves, (size_t)n) : 0;
        if (rc == 0 && w.wait && n > 0)
            rc = wait_done(o, moves, (size_t)n, w.timeout_s);
    }
    free(moves);
    buf_free(&frame);
    arena_free(&a);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}
