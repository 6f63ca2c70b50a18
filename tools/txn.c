/* `samsa txn list|describe|abort`: transactions as the Admin API sees them (what
 * kafka-transactions.sh does), so an operator sees at once what holds a partition's last
 * stable offset back and can end it. Sent over the wire with the broker's own codec
 * (librdkafka 2.0.2 has none of these APIs), to Samsa or Kafka alike:
 *   - list: ListTransactions to every broker (each lists the ids it coordinates);
 *   - describe: FindCoordinator (key type 1), then DescribeTransactions there;
 *   - abort: DescribeProducers to the partition's leader finds the producer whose
 *     transaction is open there (its epoch, coordinator epoch, first offset), then
 *     WriteTxnMarkers (ABORT) to that leader ends it in that partition: the way to end a
 *     hanging transaction its coordinator no longer knows. */
#include "cli.h"
#include "wire.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One request (body encoded for version v) on c to addr; the caller decodes the response
 * from *r, which borrows *frame. Returns 0, or an exit status after printing why. */
static int call(const char *addr, int16_t api_key, const char *api_name, struct wire_conn *c,
                int16_t v, const struct buf *body, struct buf *frame, struct reader *r)
{
    const char *why;
    if (wire_call(c, api_key, v, body, frame, r, &why) != 0)
        return cli_err("%s to %s: %s", api_name, addr, why);
    return 0;
}

static int open_conn(const char *addr, int16_t api_key, const char *api_name, struct wire_conn *c,
                     int16_t *v)
{
    const char *why;
    if (wire_connect(c, addr, &why) != 0)
        return cli_err("cannot connect to %s: %s", addr, why);
    *v = wire_version(c, api_key);
    if (*v < 0) {
        cli_err("%s does not offer %s", c->peer, api_name);
        wire_close(c);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

/* The cluster's metadata through a client made for it: 0 (the caller destroys both), or
 * an exit status after printing why. */
static int metadata(const struct cli_opts *o, rd_kafka_t **rk, const struct rd_kafka_metadata **md)
{
    *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (!*rk)
        return CLI_EXIT_FAIL;
    if (cli_metadata(*rk, md) != 0) {
        rd_kafka_destroy(*rk);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

/* "host:port" of every broker, from the bootstrap server's metadata (caller frees). */
static int broker_addrs(const struct cli_opts *o, char ***addrs, int32_t **ids, int *n)
{
    rd_kafka_t *rk;
    const struct rd_kafka_metadata *md;
    if (metadata(o, &rk, &md) != 0)
        return CLI_EXIT_FAIL;
    *n = md->broker_cnt;
    *addrs = xcalloc((size_t)MAX(*n, 1), sizeof **addrs);
    *ids = xcalloc((size_t)MAX(*n, 1), sizeof **ids);
    for (int i = 0; i < *n; i++) {
        char buf[300];
        snprintf(buf, sizeof buf, "%s:%d", md->brokers[i].host, md->brokers[i].port);
        (*addrs)[i] = xstrdup(buf);
        (*ids)[i] = md->brokers[i].id;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return 0;
}

static void free_addrs(char **addrs, int32_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        free(addrs[i]);
    free(addrs);
    free(ids);
}

static char *str(struct slice s)
{
    return xstrndup((const char *)s.ptr, s.len);
}

/* One partition's producers as its leader (addr) describes them (DescribeProducers):
 * 0 with *out pointing into a (and frame, which the caller frees), or an exit status
 * after printing why (quiet: without printing). */
static int partition_producers(const char *addr, const char *topic, int32_t partition, bool quiet,
                               struct arena *a, struct buf *frame,
                               const struct describe_producers_response_topics_partitions **out)
{
    struct wire_conn c;
    int16_t v;
    const char *why;
    if (quiet ? wire_connect(&c, addr, &why) != 0
              : open_conn(addr, API_KEY_DESCRIBE_PRODUCERS, "DescribeProducers", &c, &v) != 0)
        return CLI_EXIT_FAIL;
    if (quiet && (v = wire_version(&c, API_KEY_DESCRIBE_PRODUCERS)) < 0) {
        wire_close(&c);
        return CLI_EXIT_FAIL;
    }
    struct describe_producers_request req;
    describe_producers_request_init(&req);
    struct describe_producers_request_topics t;
    describe_producers_request_topics_init(&t);
    t.name = slice_from_cstr(topic);
    t.partition_indexes = &partition;
    t.partition_indexes_count = 1;
    req.topics = &t;
    req.topics_count = 1;
    struct buf body;
    buf_init(&body);
    describe_producers_request_encode(&body, v, &req);
    struct reader r;
    struct describe_producers_response resp;
    int rc = 0;
    if (wire_call(&c, API_KEY_DESCRIBE_PRODUCERS, v, &body, frame, &r, &why) != 0)
        rc = quiet ? CLI_EXIT_FAIL : cli_err("DescribeProducers to %s: %s", addr, why);
    else if (describe_producers_response_decode(&r, v, a, &resp) != 0 || resp.topics_count != 1 ||
             resp.topics[0].partitions_count != 1)
        rc = quiet ? CLI_EXIT_FAIL : cli_err("DescribeProducers: malformed response");
    else if (resp.topics[0].partitions[0].error_code != KERR_NONE)
        rc = quiet ? CLI_EXIT_FAIL
                   : cli_err("DescribeProducers of %s-%d: %s", topic, partition,
                             kafka_error_name(resp.topics[0].partitions[0].error_code));
    if (rc == 0)
        *out = &resp.topics[0].partitions[0];
    buf_free(&body);
    wire_close(&c);
    return rc;
}

/* ---- list ---- */

static int txn_list(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {{"state", required_argument, NULL, 's'},
                                             {"min-age", required_argument, NULL, 'a'},
                                             {"bootstrap-server", required_argument, NULL, 'b'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {NULL, 0, NULL, 0}};
    struct slice states[16];
    int32_t n_states = 0;
    int64_t min_age_ms = -1;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:a:b:v", longopts, NULL)) != -1) {
        if (cli_common_opt((struct cli_opts *)o, ch, optarg))
            continue;
        if (ch == 's' && n_states < 16)
            states[n_states++] = slice_from_cstr(optarg);
        else if (ch == 'a' && cli_parse_i64(optarg, 0, INT64_MAX, "--min-age", &min_age_ms) == 0)
            continue;
        else
            return CLI_EXIT_USAGE;
    }
    char **addrs;
    int32_t *ids;
    int nb;
    if (broker_addrs(o, &addrs, &ids, &nb) != 0)
        return CLI_EXIT_FAIL;
    struct table *t = table_new(4, "TRANSACTIONAL-ID", "PRODUCER-ID", "STATE", "COORDINATOR");
    int rc = 0;
    for (int b = 0; b < nb && rc == 0; b++) {
        struct wire_conn c;
        int16_t v;
        if ((rc = open_conn(addrs[b], API_KEY_LIST_TRANSACTIONS, "ListTransactions", &c, &v)) != 0)
            break;
        struct list_transactions_request req;
        list_transactions_request_init(&req);
        req.state_filters = states;
        req.state_filters_count = n_states;
        req.duration_filter = min_age_ms;
        if (min_age_ms >= 0 && v < 1)
            rc = cli_err("%s does not filter by age (ListTransactions v1)", addrs[b]);
        struct buf body, frame;
        buf_init(&body);
        buf_init(&frame);
        list_transactions_request_encode(&body, v, &req);
        struct reader r;
        struct arena a;
        arena_init(&a);
        struct list_transactions_response resp;
        if (rc == 0)
            rc = call(addrs[b], API_KEY_LIST_TRANSACTIONS, "ListTransactions", &c, v, &body, &frame,
                      &r);
        if (rc == 0 && list_transactions_response_decode(&r, v, &a, &resp) != 0)
            rc = cli_err("ListTransactions from %s: malformed response", addrs[b]);
        if (rc == 0 && resp.error_code != KERR_NONE)
            rc = cli_err("ListTransactions from %s: %s", addrs[b],
                         kafka_error_name(resp.error_code));
        for (int32_t i = 0; rc == 0 && i < resp.unknown_state_filters_count; i++)
            rc = cli_err("unknown transaction state '%.*s'", (int)resp.unknown_state_filters[i].len,
                         (const char *)resp.unknown_state_filters[i].ptr);
        for (int32_t i = 0; rc == 0 && i < resp.transaction_states_count; i++) {
            const struct list_transactions_response_transaction_states *e =
                &resp.transaction_states[i];
            char *id = str(e->transactional_id), *state = str(e->transaction_state);
            char pid[24], node[16];
            snprintf(pid, sizeof pid, "%" PRId64, e->producer_id);
            snprintf(node, sizeof node, "%d", ids[b]);
            table_add(t, id, pid, state, node);
            free(id);
            free(state);
        }
        arena_free(&a);
        buf_free(&body);
        buf_free(&frame);
        wire_close(&c);
    }
    if (rc == 0)
        table_print(t);
    table_free(t);
    free_addrs(addrs, ids, nb);
    return rc;
}

/* ---- describe ---- */

/* The coordinator of a transactional id: 0 with addr filled, or an exit status. */
static int find_coordinator(const struct cli_opts *o, const char *id, char *addr, size_t cap)
{
    struct wire_conn c;
    int16_t v;
    const char *boot = o->bootstrap ? o->bootstrap : CLI_DEFAULT_BOOTSTRAP;
    if (open_conn(boot, API_KEY_FIND_COORDINATOR, "FindCoordinator", &c, &v) != 0)
        return CLI_EXIT_FAIL;
    struct find_coordinator_request req;
    find_coordinator_request_init(&req);
    req.key_type = 1;
    struct slice key = slice_from_cstr(id);
    req.key = key;
    req.coordinator_keys = &key;
    req.coordinator_keys_count = 1;
    int rc = 0;
    /* COORDINATOR_NOT_AVAILABLE while __transaction_state is created: ask again. */
    for (int attempt = 0; attempt < 50; attempt++) {
        struct buf body, frame;
        buf_init(&body);
        buf_init(&frame);
        find_coordinator_request_encode(&body, v, &req);
        struct reader r;
        struct arena a;
        arena_init(&a);
        struct find_coordinator_response resp;
        int16_t err = KERR_NONE;
        rc = call(boot, API_KEY_FIND_COORDINATOR, "FindCoordinator", &c, v, &body, &frame, &r);
        if (rc == 0 && find_coordinator_response_decode(&r, v, &a, &resp) != 0)
            rc = cli_err("FindCoordinator: malformed response");
        if (rc == 0) {
            bool batched = v >= 4 && resp.coordinators_count == 1;
            err = batched ? resp.coordinators[0].error_code : resp.error_code;
            struct slice host = batched ? resp.coordinators[0].host : resp.host;
            int32_t port = batched ? resp.coordinators[0].port : resp.port;
            if (err == KERR_NONE)
                snprintf(addr, cap, "%.*s:%d", (int)host.len, (const char *)host.ptr, port);
            else if (err != KERR_COORDINATOR_NOT_AVAILABLE || attempt == 49)
                rc = cli_err("FindCoordinator for '%s': %s", id, kafka_error_name(err));
        }
        arena_free(&a);
        buf_free(&body);
        buf_free(&frame);
        if (rc != 0 || err == KERR_NONE)
            break;
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
    }
    wire_close(&c);
    return rc;
}

static int txn_describe(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {{"bootstrap-server", required_argument, NULL, 'b'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "b:v", longopts, NULL)) != -1)
        if (!cli_common_opt((struct cli_opts *)o, ch, optarg))
            return CLI_EXIT_USAGE;
    if (optind + 1 != argc) {
        cli_err("usage: samsa txn describe TRANSACTIONAL-ID");
        return CLI_EXIT_USAGE;
    }
    const char *id = argv[optind];
    char addr[300];
    if (find_coordinator(o, id, addr, sizeof addr) != 0)
        return CLI_EXIT_FAIL;
    struct wire_conn c;
    int16_t v;
    if (open_conn(addr, API_KEY_DESCRIBE_TRANSACTIONS, "DescribeTransactions", &c, &v) != 0)
        return CLI_EXIT_FAIL;
    struct describe_transactions_request req;
    describe_transactions_request_init(&req);
    struct slice key = slice_from_cstr(id);
    req.transactional_ids = &key;
    req.transactional_ids_count = 1;
    struct buf body, frame;
    buf_init(&body);
    buf_init(&frame);
    describe_transactions_request_encode(&body, v, &req);
    struct reader r;
    struct arena a;
    arena_init(&a);
    struct describe_transactions_response resp;
    int rc =
        call(addr, API_KEY_DESCRIBE_TRANSACTIONS, "DescribeTransactions", &c, v, &body, &frame, &r);
    if (rc == 0 && (describe_transactions_response_decode(&r, v, &a, &resp) != 0 ||
                    resp.transaction_states_count != 1))
        rc = cli_err("DescribeTransactions: malformed response");
    const struct describe_transactions_response_transaction_states *d =
        rc == 0 ? &resp.transaction_states[0] : NULL;
    if (rc == 0 && d->error_code != KERR_NONE)
        rc = cli_err("transactional id '%s': %s", id, kafka_error_name(d->error_code));
    if (rc == 0) {
        printf("transactional id  %s\n", id);
        printf("coordinator       %s\n", addr);
        printf("state             %.*s\n", (int)d->transaction_state.len,
               (const char *)d->transaction_state.ptr);
        printf("producer          id %" PRId64 ", epoch %d\n", d->producer_id, d->producer_epoch);
        printf("timeout           %d ms\n", d->transaction_timeout_ms);
        if (d->transaction_start_time_ms >= 0)
            printf("started           %" PRId64 " (%" PRId64 " ms ago)\n",
                   d->transaction_start_time_ms, wall_ms() - d->transaction_start_time_ms);
        printf("partitions       ");
        for (int32_t i = 0; i < d->topics_count; i++)
            for (int32_t k = 0; k < d->topics[i].partitions_count; k++)
                printf(" %.*s-%d", (int)d->topics[i].topic.len,
                       (const char *)d->topics[i].topic.ptr, d->topics[i].partitions[k]);
        printf("\n");
    }
    arena_free(&a);
    buf_free(&body);
    buf_free(&frame);
    wire_close(&c);
    return rc;
}

/* ---- abort ---- */

/* The leader's address of topic/partition, from metadata: 0, or an exit status. */
static int leader_addr(const struct cli_opts *o, const char *topic, int32_t partition, char *addr,
                       size_t cap)
{
    rd_kafka_t *rk;
    const struct rd_kafka_metadata *md;
    if (metadata(o, &rk, &md) != 0)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_FAIL;
    const struct rd_kafka_metadata_topic *t = cli_require_topic(md, topic);
    int32_t leader = -1;
    for (int i = 0; t && i < t->partition_cnt; i++)
        if (t->partitions[i].id == partition)
            leader = t->partitions[i].leader;
    for (int i = 0; i < md->broker_cnt && leader >= 0; i++)
        if (md->brokers[i].id == leader) {
            snprintf(addr, cap, "%s:%d", md->brokers[i].host, md->brokers[i].port);
            rc = 0;
        }
    if (t && rc != 0)
        cli_err("partition %s-%d has no leader now", topic, partition);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

static int txn_abort(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {{"topic", required_argument, NULL, 't'},
                                             {"partition", required_argument, NULL, 'p'},
                                             {"producer-id", required_argument, NULL, 'i'},
                                             {"bootstrap-server", required_argument, NULL, 'b'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {NULL, 0, NULL, 0}};
    const char *topic = NULL;
    int64_t partition = -1, want_pid = -1;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "t:p:i:b:v", longopts, NULL)) != -1) {
        if (cli_common_opt((struct cli_opts *)o, ch, optarg))
            continue;
        if (ch == 't')
            topic = optarg;
        else if (ch == 'p' && cli_parse_i64(optarg, 0, INT32_MAX, "--partition", &partition) == 0)
            continue;
        else if (ch == 'i' && cli_parse_i64(optarg, 0, INT64_MAX, "--producer-id", &want_pid) == 0)
            continue;
        else
            return CLI_EXIT_USAGE;
    }
    if (!topic || partition < 0) {
        cli_err("usage: samsa txn abort --topic TOPIC --partition N [--producer-id ID]");
        return CLI_EXIT_USAGE;
    }
    char addr[300];
    if (leader_addr(o, topic, (int32_t)partition, addr, sizeof addr) != 0)
        return CLI_EXIT_FAIL;
    /* The open transactions there. */
    int32_t pidx = (int32_t)partition;
    struct arena a;
    arena_init(&a);
    struct buf body, frame;
    buf_init(&frame);
    const struct describe_producers_response_topics_partitions *dp = NULL;
    int rc = partition_producers(addr, topic, pidx, false, &a, &frame, &dp);
    const struct describe_producers_response_topics_partitions_active_producers *victim = NULL;
    int open = 0;
    for (int32_t i = 0; rc == 0 && i < dp->active_producers_count; i++) {
        const struct describe_producers_response_topics_partitions_active_producers *ap =
            &dp->active_producers[i];
        if (ap->current_txn_start_offset < 0 || (want_pid >= 0 && ap->producer_id != want_pid))
            continue;
        open++;
        victim = ap;
    }
    if (rc == 0 && open == 0)
        rc = cli_err("no open transaction in %s-%d%s", topic, pidx,
                     want_pid >= 0 ? " for that producer" : "");
    if (rc == 0 && open > 1) {
        rc = cli_err("%d open transactions in %s-%d; name one with --producer-id:", open, topic,
                     pidx);
        for (int32_t i = 0; i < dp->active_producers_count; i++)
            if (dp->active_producers[i].current_txn_start_offset >= 0)
                fprintf(stderr, "  producer %" PRId64 " from offset %" PRId64 "\n",
                        dp->active_producers[i].producer_id,
                        dp->active_producers[i].current_txn_start_offset);
    }
    buf_free(&frame);
    if (rc != 0) {
        arena_free(&a);
        return rc;
    }
    /* ABORT marker with the producer's epoch and its coordinator's epoch, as
     * kafka-transactions.sh abort sends it. */
    struct wire_conn m;
    int16_t v;
    if (open_conn(addr, API_KEY_WRITE_TXN_MARKERS, "WriteTxnMarkers", &m, &v) != 0) {
        arena_free(&a);
        return CLI_EXIT_FAIL;
    }
    struct write_txn_markers_request_markers_topics mt;
    write_txn_markers_request_markers_topics_init(&mt);
    mt.name = slice_from_cstr(topic);
    mt.partition_indexes = &pidx;
    mt.partition_indexes_count = 1;
    struct write_txn_markers_request_markers mk;
    write_txn_markers_request_markers_init(&mk);
    mk.producer_id = victim->producer_id;
    mk.producer_epoch = (int16_t)victim->producer_epoch;
    mk.transaction_result = false;
    mk.topics = &mt;
    mk.topics_count = 1;
    mk.coordinator_epoch = victim->coordinator_epoch;
    struct write_txn_markers_request mreq;
    write_txn_markers_request_init(&mreq);
    mreq.markers = &mk;
    mreq.markers_count = 1;
    buf_init(&body);
    buf_init(&frame);
    write_txn_markers_request_encode(&body, v, &mreq);
    struct write_txn_markers_response mresp;
    struct reader r;
    rc = call(addr, API_KEY_WRITE_TXN_MARKERS, "WriteTxnMarkers", &m, v, &body, &frame, &r);
    if (rc == 0 &&
        (write_txn_markers_response_decode(&r, v, &a, &mresp) != 0 || mresp.markers_count != 1 ||
         mresp.markers[0].topics_count != 1 || mresp.markers[0].topics[0].partitions_count != 1))
        rc = cli_err("WriteTxnMarkers: malformed response");
    int16_t err = rc == 0 ? mresp.markers[0].topics[0].partitions[0].error_code : KERR_NONE;
    if (rc == 0 && err != KERR_NONE)
        rc = cli_err("abort in %s-%d: %s", topic, pidx, kafka_error_name(err));
    if (rc == 0)
        printf("aborted the transaction of producer %" PRId64 " (epoch %d) in %s-%d, open from "
               "offset %" PRId64 "\n",
               victim->producer_id, victim->producer_epoch, topic, pidx,
               victim->current_txn_start_offset);
    arena_free(&a);
    buf_free(&body);
    buf_free(&frame);
    wire_close(&m);
    return rc;
}

int txn_oldest_open(const char *leader_addr, const char *topic, int32_t partition,
                    struct txn_open *out)
{
    *out = (struct txn_open){.first_offset = -1, .producer_id = -1, .last_timestamp_ms = -1};
    struct arena a;
    arena_init(&a);
    struct buf frame;
    buf_init(&frame);
    const struct describe_producers_response_topics_partitions *dp;
    int rc = partition_producers(leader_addr, topic, partition, true, &a, &frame, &dp) ? -1 : 0;
    for (int32_t i = 0; rc == 0 && i < dp->active_producers_count; i++) {
        const struct describe_producers_response_topics_partitions_active_producers *ap =
            &dp->active_producers[i];
        if (ap->current_txn_start_offset < 0)
            continue;
        out->count++;
        if (out->first_offset < 0 || ap->current_txn_start_offset < out->first_offset) {
            out->first_offset = ap->current_txn_start_offset;
            out->producer_id = ap->producer_id;
            out->last_timestamp_ms = ap->last_timestamp;
        }
    }
    arena_free(&a);
    buf_free(&frame);
    return rc;
}

int txn_main(struct cli_opts *o, int argc, char **argv)
{
    if (argc < 2) {
        cli_err("usage: samsa txn list|describe|abort ...");
        return CLI_EXIT_USAGE;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "list") == 0)
        return txn_list(o, argc - 1, argv + 1);
    if (strcmp(verb, "describe") == 0)
        return txn_describe(o, argc - 1, argv + 1);
    if (strcmp(verb, "abort") == 0)
        return txn_abort(o, argc - 1, argv + 1);
    cli_err("unknown txn command '%s' (list, describe, abort)", verb);
    return CLI_EXIT_USAGE;
}
