/* `samsa delay stats` and `samsa delay list TOPIC`: what waits in Samsa's delay store
 * (delayed delivery, docs/architecture.md). Both read the store, __samsa_delay, over the
 * wire as a consumer, from its start to its end: its envelopes minus their tombstones
 * are the records pending, and each delay partition's counts record says what it has
 * delivered, late, cancelled and dropped. Reading costs about what the store holds. */
#include "cli.h"
#include "delay/delay.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A record pending delivery, as the listing needs it. */
struct held {
    int64_t offset; /* in its delay partition: the id a cancel takes */
    int64_t due_ms;
    int32_t topic; /* index into the store's topic names */
    int32_t partition;
    bool done;    /* a tombstone came after it */
    char key[33]; /* the record's key, printable, cut at 32 bytes */
};

/* One delay partition's records, in offset order (the order they are read). */
struct dlist {
    struct held *v;
    size_t n, cap;
};

struct store {
    int32_t partitions;
    struct dlist *held;
    struct delay_counts *counts; /* per delay partition: its latest counts record */
    char **topics;
    size_t ntopics;
};

static int32_t topic_index(struct store *st, struct slice name)
{
    for (size_t i = 0; i < st->ntopics; i++)
        if (strlen(st->topics[i]) == name.len && memcmp(st->topics[i], name.ptr, name.len) == 0)
            return (int32_t)i;
    st->topics = xrealloc(st->topics, (st->ntopics + 1) * sizeof *st->topics);
    st->topics[st->ntopics] = slice_to_cstr(name);
    return (int32_t)st->ntopics++;
}

static struct held *find_held(struct dlist *l, int64_t offset)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->n && l->v[lo].offset == offset ? &l->v[lo] : NULL;
}

static void printable_key(char out[33], struct slice key)
{
    if (!key.ptr) {
        strcpy(out, "(null)");
        return;
    }
    size_t n = key.len < 32 ? key.len : 32;
    for (size_t i = 0; i < n; i++)
        out[i] = key.ptr[i] >= 0x20 && key.ptr[i] < 0x7f ? (char)key.ptr[i] : '.';
    out[n] = '\0';
}

/* Takes one record of the store (partition p) into st. */
static void take(struct store *st, int32_t p, const rd_kafka_message_t *m)
{
    struct slice key = {m->key, m->key_len}, value = {m->payload, m->len};
    if (!m->payload)
        value = SLICE_NULL;
    struct delay_key k;
    struct dlist *l = &st->held[p];
    delay_key_decode(key, &k);
    switch (k.kind) {
    case DELAY_KEY_ENVELOPE: {
        if (!value.ptr) {
            struct held *h = find_held(l, k.offset);
            if (h)
                h->done = true;
            return;
        }
        struct delay_envelope e;
        if (delay_envelope_decode(value, &e) != 0)
            return;
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 256;
            l->v = xrealloc(l->v, l->cap * sizeof *l->v);
        }
        struct held *h = &l->v[l->n++];
        *h = (struct held){m->offset, e.due_ms, topic_index(st, e.topic), e.partition, false, ""};
        printable_key(h->key, e.key);
        return;
    }
    case DELAY_KEY_COUNTS: {
        struct delay_counts c;
        if (value.ptr && delay_counts_decode(value, &c) == 0)
            st->counts[p] = c; /* cumulative: the latest says it all */
        return;
    }
    case DELAY_KEY_SEQUENCE:
    case DELAY_KEY_UNKNOWN: return;
    }
}

/* Reads the whole store into st: 0, 1 when there is no store, or CLI_EXIT_FAIL. */
static int read_store(struct cli_opts *o, struct store *st)
{
    const char *extra[] = {
        "group.id", "samsa-cli-unused", "enable.auto.commit", "false", "enable.partition.eof",
        "true",     "client.id",        "samsa-cli",          NULL};
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_CONSUMER, extra, NULL);
    if (rk == NULL)
        return CLI_EXIT_FAIL;
    rd_kafka_poll_set_consumer(rk);
    const struct rd_kafka_metadata *md;
    if (cli_metadata(rk, &md) != 0) {
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    const struct rd_kafka_metadata_topic *t = cli_find_topic(md, DELAY_TOPIC);
    if (t == NULL) {
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return 1;
    }
    st->partitions = t->partition_cnt;
    st->held = xcalloc((size_t)(st->partitions > 0 ? st->partitions : 1), sizeof *st->held);
    st->counts = xcalloc((size_t)(st->partitions > 0 ? st->partitions : 1), sizeof *st->counts);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(st->partitions);
    for (int i = 0; i < st->partitions; i++)
        rd_kafka_topic_partition_list_add(parts, DELAY_TOPIC, t->partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int rc = 0, at_end = 0;
    bool *eof = xcalloc((size_t)(st->partitions > 0 ? st->partitions : 1), sizeof *eof);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = cli_err("reading %s: %s", DELAY_TOPIC, rd_kafka_err2str(err));
    struct timespec last;
    clock_gettime(CLOCK_MONOTONIC, &last);
    while (rc == 0 && at_end < st->partitions) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (m == NULL) {
            if (now.tv_sec - last.tv_sec > CLI_TIMEOUT_MS / 1000)
                rc =
                    cli_err("reading %s: nothing for %d s (%s)", DELAY_TOPIC, CLI_TIMEOUT_MS / 1000,
                            cli_last_transport_error() ? cli_last_transport_error() : "no answer");
            continue;
        }
        last = now;
        int32_t p = m->partition;
        if (p < 0 || p >= st->partitions) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_end += !eof[p];
            eof[p] = true;
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = cli_err("reading %s: %s", DELAY_TOPIC, rd_kafka_message_errstr(m));
        } else {
            take(st, p, m);
        }
        rd_kafka_message_destroy(m);
    }
    free(eof);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

static void format_time(char *out, size_t n, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03dZ", (int)(ms % 1000));
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "in 1h 2m 3s" or "3s ago" */
static void format_from_now(char *out, size_t n, int64_t due_ms)
{
    int64_t d = due_ms - wall_ms(), a = d < 0 ? -d : d;
    int64_t s = a / 1000, days = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
    char span[64];
    if (days > 0)
        snprintf(span, sizeof span, "%lldd %lldh", (long long)days, (long long)h);
    else if (h > 0)
        snprintf(span, sizeof span, "%lldh %lldm", (long long)h, (long long)m);
    else if (m > 0)
        snprintf(span, sizeof span, "%lldm %llds", (long long)m, (long long)(s % 60));
    else
        snprintf(span, sizeof span, "%lld.%03llds", (long long)s, (long long)(a % 1000));
    snprintf(out, n, d >= 0 ? "in %s" : "%s ago", span);
}

static void store_free(struct store *st)
{
    for (int32_t i = 0; i < st->partitions; i++)
        free(st->held[i].v);
    free(st->held);
    free(st->counts);
    for (size_t i = 0; i < st->ntopics; i++)
        free(st->topics[i]);
    free(st->topics);
}

static const char delay_usage[] =
    "usage: samsa delay stats [-b HOST:PORT]\n"
    "       samsa delay list TOPIC [-b HOST:PORT]\n"
    "  stats: records pending delivery (in all, and per topic, with the next due time),\n"
    "  and what the delay store has delivered (how many late: a second or more after\n"
    "  due), cancelled and dropped (their topic deleted). list: TOPIC's pending records in\n"
    "  due order: due time, partition, id (what samsa.deliver.cancel takes) and key.\n"
    "  Both read __samsa_delay from its start: the cost grows with what it holds.\n";

static int stats(const struct store *st)
{
    size_t nt = st->ntopics ? st->ntopics : 1;
    int64_t *count = xcalloc(nt, sizeof *count), *next = xcalloc(nt, sizeof *next);
    int64_t total = 0, first = INT64_MAX;
    for (size_t i = 0; i < st->ntopics; i++)
        next[i] = INT64_MAX;
    for (int32_t p = 0; p < st->partitions; p++)
        for (size_t i = 0; i < st->held[p].n; i++) {
            const struct held *h = &st->held[p].v[i];
            if (h->done)
                continue;
            total++;
            count[h->topic]++;
            next[h->topic] = next[h->topic] < h->due_ms ? next[h->topic] : h->due_ms;
            first = first < h->due_ms ? first : h->due_ms;
        }
    struct delay_counts sum = {0};
    for (int32_t p = 0; p < st->partitions; p++) {
        sum.delivered += st->counts[p].delivered;
        sum.late += st->counts[p].late;
        sum.cancelled += st->counts[p].cancelled;
        sum.dropped += st->counts[p].dropped;
    }
    char at[40], rel[64];
    printf("pending    %lld\n", (long long)total);
    if (total > 0) {
        format_time(at, sizeof at, first);
        format_from_now(rel, sizeof rel, first);
        printf("next due   %s (%s)\n", at, rel);
    }
    printf("delivered  %lld (late: %lld)\n", (long long)sum.delivered, (long long)sum.late);
    printf("cancelled  %lld\n", (long long)sum.cancelled);
    printf("dropped    %lld\n", (long long)sum.dropped);
    if (total > 0) {
        printf("\n%-32s %10s  %s\n", "TOPIC", "PENDING", "NEXT DUE");
        for (size_t i = 0; i < st->ntopics; i++)
            if (count[i] > 0) {
                format_time(at, sizeof at, next[i]);
                printf("%-32s %10lld  %s\n", st->topics[i], (long long)count[i], at);
            }
    }
    free(count);
    free(next);
    return 0;
}

struct listed {
    const struct held *h;
    int32_t delay_partition;
};

static int cmp_listed(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    if (x->h->due_ms != y->h->due_ms)
        return x->h->due_ms < y->h->due_ms ? -1 : 1;
    if (x->delay_partition != y->delay_partition)
        return x->delay_partition < y->delay_partition ? -1 : 1;
    return x->h->offset < y->h->offset ? -1 : x->h->offset > y->h->offset;
}

static int list(const struct store *st, const char *topic)
{
    size_t n = 0;
    for (int32_t p = 0; p < st->partitions; p++)
        n += st->held[p].n;
    struct listed *all = xcalloc(n ? n : 1, sizeof *all);
    size_t k = 0;
    for (int32_t p = 0; p < st->partitions; p++)
        for (size_t i = 0; i < st->held[p].n; i++) {
            const struct held *h = &st->held[p].v[i];
            if (!h->done && strcmp(st->topics[h->topic], topic) == 0)
                all[k++] = (struct listed){h, p};
        }
    qsort(all, k, sizeof *all, cmp_listed);
    printf("%-24s %9s %12s  %s\n", "DUE", "PARTITION", "ID", "KEY");
    for (size_t i = 0; i < k; i++) {
        char at[40];
        format_time(at, sizeof at, all[i].h->due_ms);
        printf("%-24s %9d %12lld  %s\n", at, all[i].h->partition, (long long)all[i].h->offset,
               all[i].h->key);
    }
    fprintf(stderr, "samsa: %zu record(s) of %s pending delivery\n", k, topic);
    free(all);
    return 0;
}

int delay_main(struct cli_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"bootstrap-server", required_argument, NULL, 'b'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        fputs(delay_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "b:vh", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(delay_usage, stdout);
            return 0;
        }
        if (!cli_common_opt(o, c, optarg)) {
            fputs(delay_usage, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    bool is_stats = strcmp(sub, "stats") == 0, is_list = strcmp(sub, "list") == 0;
    if ((!is_stats && !is_list) || argc - optind != (is_list ? 1 : 0)) {
        fputs(delay_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    struct store st = {0};
    int rc = read_store(o, &st);
    if (rc == 1) {
        /* No store: nothing was ever delayed here (or this is Kafka). */
        if (is_stats)
            fputs("pending    0\n(no delay store: no record was ever delayed)\n", stdout);
        else
            fputs("samsa: no delay store: no record was ever delayed\n", stderr);
        return 0;
    }
    if (rc == 0)
        rc = is_stats ? stats(&st) : list(&st, argv[optind]);
    store_free(&st);
    return rc;
}
