/* `samsa group ...`: list consumer groups, describe one with its members and per-partition
 * lag, move a stopped group's committed offsets (seek), and delete a group.
 *
 * Lag is log-end offset (high watermark) minus committed offset, per partition. The high
 * watermark is what a consumer can read, so lag counts records the group has yet to see. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char group_usage[] =
    "usage: samsa group list\n"
    "       samsa group describe GROUP\n"
    "       samsa group seek GROUP --topic TOPIC --to earliest|latest|timestamp:MS|offset:N\n"
    "                              [--dry-run]\n"
    "       samsa group delete GROUP\n"
    "  (every command also takes -b HOST:PORT)\n";

static const struct option group_longopts[] = {
    {"bootstrap-server", required_argument, NULL, 'b'},
    {"verbose", no_argument, NULL, 'v'},
    {"topic", required_argument, NULL, 't'},
    {"to", required_argument, NULL, 'T'},
    {"dry-run", no_argument, NULL, 'n'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct group_args {
    const char *group; /* borrowed from argv */
    const char *topic;
    const char *to;
    bool dry_run;
};

/* Parses argv (argv[0] = the verb); seek options are accepted only when `seek`. */
static int parse_group_args(struct cli_opts *o, int argc, char **argv, bool want_group, bool seek,
                            struct group_args *a)
{
    *a = (struct group_args){0};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:vt:h", group_longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(group_usage, stdout);
            exit(0);
        }
        if (c == '?') {
            fputs(group_usage, stderr);
            return CLI_EXIT_USAGE;
        }
        if (cli_common_opt(o, c, optarg)) {
            continue;
        }
        if (!seek) {
            cli_err("group %s does not take option %s", argv[0], argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
        if (c == 't') {
            a->topic = optarg;
        } else if (c == 'T') {
            a->to = optarg;
        } else if (c == 'n') {
            a->dry_run = true;
        }
    }
    int npos = argc - optind;
    if (npos != (want_group ? 1 : 0)) {
        cli_err(want_group ? "group %s needs exactly one group id" : "group %s takes no arguments",
                argv[0]);
        fputs(group_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    a->group = want_group ? argv[optind] : NULL;
    return 0;
}

static int cmp_listing(const void *x, const void *y)
{
    const rd_kafka_ConsumerGroupListing_t *const *a = x, *const *b = y;
    return strcmp(rd_kafka_ConsumerGroupListing_group_id(*a),
                  rd_kafka_ConsumerGroupListing_group_id(*b));
}

static int group_list(struct cli_opts *o, const struct group_args *a)
{
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_ListConsumerGroups(rk, req.opt, req.q);
    rd_kafka_event_t *ev =
        cli_admin_result(&req, RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT, "group list");
    int rc = CLI_EXIT_FAIL;
    if (ev != NULL) {
        const rd_kafka_ListConsumerGroups_result_t *res =
            rd_kafka_event_ListConsumerGroups_result(ev);
        size_t n, nerr;
        const rd_kafka_ConsumerGroupListing_t **valid =
            rd_kafka_ListConsumerGroups_result_valid(res, &n);
        const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
        /* Sort a copy: the result's array belongs to the event. */
        const rd_kafka_ConsumerGroupListing_t **sorted = calloc(n + 1, sizeof *sorted);
        if (nerr > 0 && n == 0) {
            cli_err("group list failed: %s", rd_kafka_error_string(errs[0]));
        } else if (sorted != NULL) {
            if (n > 0) { /* valid may be NULL when there are no groups */
                memcpy(sorted, valid, n * sizeof *sorted);
            }
            qsort(sorted, n, sizeof *sorted, cmp_listing);
            struct table *t = table_new(3, "GROUP", "STATE", "TYPE");
            for (size_t i = 0; i < n; i++) {
                table_add(t, rd_kafka_ConsumerGroupListing_group_id(sorted[i]),
                          rd_kafka_consumer_group_state_name(
                              rd_kafka_ConsumerGroupListing_state(sorted[i])),
                          rd_kafka_ConsumerGroupListing_is_simple_consumer_group(sorted[i])
                              ? "simple"
                              : "consumer");
            }
            table_print(t);
            table_free(t);
            rc = 0;
        } else {
            cli_err("out of memory");
        }
        free(sorted);
        /* With several brokers some may fail to answer; the listing is then partial. */
        for (size_t i = 0; n > 0 && i < nerr; i++) {
            cli_err("group list incomplete: %s", rd_kafka_error_string(errs[i]));
            rc = CLI_EXIT_FAIL;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_destroy(rk);
    return rc;
}

/* True if a request about one group got exactly one result, without an error; otherwise
 * prints "<what> '<group>': <why>". */
static bool group_result_ok(const rd_kafka_group_result_t **gr, size_t n, const char *what,
                            const char *group)
{
    const rd_kafka_error_t *err = n == 1 ? rd_kafka_group_result_error(gr[0]) : NULL;
    if (n == 1 && err == NULL) {
        return true;
    }
    cli_err("%s '%s': %s", what, group, err != NULL ? rd_kafka_error_string(err) : "no result");
    return false;
}

/* Describes one group. On success *out is the result event (caller destroys; *desc lives
 * as long as it). */
static int describe_group(rd_kafka_t *rk, const char *group, rd_kafka_event_t **out,
                          const rd_kafka_ConsumerGroupDescription_t **desc)
{
    struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    rd_kafka_DescribeConsumerGroups(rk, &group, 1, req.opt, req.q);
    rd_kafka_event_t *ev =
        cli_admin_result(&req, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT, "group describe");
    if (ev == NULL) {
        return -1;
    }
    size_t n;
    const rd_kafka_ConsumerGroupDescription_t **gs = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    const rd_kafka_error_t *err = n == 1 ? rd_kafka_ConsumerGroupDescription_error(gs[0]) : NULL;
    if (n != 1 || err != NULL) {
        if (err != NULL && rd_kafka_error_code(err) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
            cli_err("group '%s' does not exist", group);
        } else {
            cli_err("group describe '%s': %s", group,
                    err != NULL ? rd_kafka_error_string(err) : "no result");
        }
        rd_kafka_event_destroy(ev);
        return -1;
    }
    *out = ev;
    *desc = gs[0];
    return 0;
}

/* The group's committed offsets: for `only` (topic/partition pairs) or, if NULL, for every
 * partition it has committed. Returns a list the caller destroys, or NULL (printed). */
static rd_kafka_topic_partition_list_t *
committed_offsets(rd_kafka_t *rk, const char *group, const rd_kafka_topic_partition_list_t *only)
{
    rd_kafka_ListConsumerGroupOffsets_t *lo = rd_kafka_ListConsumerGroupOffsets_new(group, only);
    struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets(rk, &lo, 1, req.opt, req.q);
    rd_kafka_event_t *ev =
        cli_admin_result(&req, RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT, "committed offsets");
    rd_kafka_topic_partition_list_t *out = NULL;
    if (ev != NULL) {
        size_t n;
        const rd_kafka_group_result_t **gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        if (group_result_ok(gr, n, "committed offsets of", group)) {
            out = rd_kafka_topic_partition_list_copy(rd_kafka_group_result_partitions(gr[0]));
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_ListConsumerGroupOffsets_destroy(lo);
    return out;
}

/* "t1:0,1,2 t2:0" for a member's assignment (list sorted by topic, partition). */
static void format_assignment(const rd_kafka_topic_partition_list_t *l, char *buf, size_t bufsz)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; l != NULL && i < l->cnt && len < bufsz; i++) {
        bool same = i > 0 && strcmp(l->elems[i - 1].topic, l->elems[i].topic) == 0;
        int w = same ? snprintf(buf + len, bufsz - len, ",%d", l->elems[i].partition)
                     : snprintf(buf + len, bufsz - len, "%s%s:%d", i ? " " : "", l->elems[i].topic,
                                l->elems[i].partition);
        len += w > 0 ? (size_t)w : 0;
    }
    if (buf[0] == '\0') {
        snprintf(buf, bufsz, "-");
    }
}

static int group_describe(struct cli_opts *o, const struct group_args *a)
{
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    rd_kafka_event_t *dev;
    const rd_kafka_ConsumerGroupDescription_t *d;
    if (describe_group(rk, a->group, &dev, &d) != 0) {
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_topic_partition_list_t *rows = committed_offsets(rk, a->group, NULL);
    if (rows == NULL) {
        rd_kafka_event_destroy(dev);
        rd_kafka_destroy(rk);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupDescription_state(d);
    size_t nmembers = rd_kafka_ConsumerGroupDescription_member_count(d);
    int rc = 0;
    /* Kafka answers DescribeGroups for an unknown id with state Dead and no error. */
    if (state == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD && nmembers == 0 && rows->cnt == 0) {
        rc = cli_err("group '%s' does not exist", a->group);
        goto out;
    }
    const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(d);
    const char *assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
    printf("Group:        %s\n", a->group);
    printf("State:        %s\n", rd_kafka_consumer_group_state_name(state));
    printf("Type:         %s\n",
           rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(d) ? "simple" : "consumer");
    printf("Protocol:     %s\n", assignor != NULL && assignor[0] ? assignor : "-");
    if (coord != NULL) {
        printf("Coordinator:  %d (%s:%u)\n", rd_kafka_Node_id(coord), rd_kafka_Node_host(coord),
               (unsigned)rd_kafka_Node_port(coord));
    }
    printf("Members:      %zu\n", nmembers);

    /* Members, and the rows for partitions assigned but never committed: those get the
     * "invalid" offset and show a lag of "-". Each row's opaque names its owner. */
    if (nmembers > 0) {
        struct table *mt = table_new(4, "MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT");
        for (size_t i = 0; i < nmembers; i++) {
            const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
            const rd_kafka_topic_partition_list_t *asg =
                rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
            rd_kafka_topic_partition_list_t *sorted =
                asg != NULL ? rd_kafka_topic_partition_list_copy(asg) : NULL;
            if (sorted != NULL) {
                rd_kafka_topic_partition_list_sort(sorted, NULL, NULL);
            }
            char abuf[1024];
            format_assignment(sorted, abuf, sizeof abuf);
            table_add(mt, rd_kafka_MemberDescription_consumer_id(m),
                      rd_kafka_MemberDescription_client_id(m), rd_kafka_MemberDescription_host(m),
                      abuf);
            for (int p = 0; sorted != NULL && p < sorted->cnt; p++) {
                rd_kafka_topic_partition_t *row = rd_kafka_topic_partition_list_find(
                    rows, sorted->elems[p].topic, sorted->elems[p].partition);
                if (row == NULL) {
                    row = rd_kafka_topic_partition_list_add(rows, sorted->elems[p].topic,
                                                            sorted->elems[p].partition);
                    row->offset = RD_KAFKA_OFFSET_INVALID;
                }
                row->opaque = (void *)m;
            }
            if (sorted != NULL) {
                rd_kafka_topic_partition_list_destroy(sorted);
            }
        }
        printf("\n");
        table_print(mt);
        table_free(mt);
    }

    /* Every partition of a topic the group reads, not only those with a commit: a
     * partition the group has not reached yet still holds records it has to read. */
    const struct rd_kafka_metadata *md = NULL;
    if (rows->cnt > 0 && cli_metadata(rk, &md) == 0) {
        int n = rows->cnt; /* rows grows below; only the original entries name topics */
        for (int i = 0; i < n; i++) {
            const struct rd_kafka_metadata_topic *mt = cli_find_topic(md, rows->elems[i].topic);
            for (int p = 0; mt != NULL && p < mt->partition_cnt; p++) {
                if (rd_kafka_topic_partition_list_find(rows, mt->topic, mt->partitions[p].id) ==
                    NULL) {
                    rd_kafka_topic_partition_list_add(rows, mt->topic, mt->partitions[p].id)
                        ->offset = RD_KAFKA_OFFSET_INVALID;
                }
            }
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_partition_list_sort(rows, NULL, NULL);
    int uncommitted = 0;
    struct table *t =
        table_new(7, "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER-ID", "HOST");
    int64_t total_end = 0, total_lag = 0, total_committed = 0;
    for (int i = 0; i < rows->cnt; i++) {
        const rd_kafka_topic_partition_t *r = &rows->elems[i];
        const rd_kafka_MemberDescription_t *m = r->opaque;
        char part[16], com[24], end_s[24], lag_s[24];
        int64_t lo, hi = -1, lag = -1;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, r->topic, r->partition, &lo, &hi, CLI_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* E.g. a deleted topic the group still has offsets for: show the row anyway. */
            cli_err("log-end offset of %s/%d: %s", r->topic, r->partition, rd_kafka_err2str(err));
            hi = -1;
        } else {
            total_end += hi;
        }
        if (r->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cli_err("committed offset of %s/%d: %s", r->topic, r->partition,
                    rd_kafka_err2str(r->err));
        }
        if (r->offset < 0) {
            uncommitted++;
        } else {
            total_committed += r->offset;
            if (hi >= 0) {
                /* A committed offset past the end (after truncation) is not negative lag. */
                lag = hi > r->offset ? hi - r->offset : 0;
                total_lag += lag;
            }
        }
        snprintf(part, sizeof part, "%d", r->partition);
        table_add(t, r->topic, part, fmt_offset(com, sizeof com, r->offset),
                  fmt_offset(end_s, sizeof end_s, hi), fmt_offset(lag_s, sizeof lag_s, lag),
                  m ? rd_kafka_MemberDescription_consumer_id(m) : NULL,
                  m ? rd_kafka_MemberDescription_host(m) : NULL);
    }
    printf("\n");
    if (rows->cnt == 0) {
        printf("No committed offsets and no assigned partitions.\n");
    } else {
        char com[24], end_s[24], lag_s[24];
        snprintf(com, sizeof com, "%lld", (long long)total_committed);
        snprintf(end_s, sizeof end_s, "%lld", (long long)total_end);
        snprintf(lag_s, sizeof lag_s, "%lld", (long long)total_lag);
        table_add(t, "TOTAL", NULL, com, end_s, lag_s, NULL, NULL);
        table_print(t);
        if (uncommitted > 0) {
            /* As in Kafka's tool: without a commit, where the group starts depends on
             * its consumers' auto.offset.reset, so the lag is unknown, not zero. */
            printf("\n%d partition(s) have no committed offset: their lag (-) is unknown "
                   "and not in the total.\n",
                   uncommitted);
        }
    }
    table_free(t);
out:
    rd_kafka_topic_partition_list_destroy(rows);
    rd_kafka_event_destroy(dev);
    rd_kafka_destroy(rk);
    return rc;
}

/* Fills each element's offset with the target of `to` for that partition. Returns 0, or
 * -1 after printing why. */
static int resolve_targets(rd_kafka_t *rk, const char *to, rd_kafka_topic_partition_list_t *l)
{
    enum { EARLIEST, LATEST, TIMESTAMP, OFFSET } kind;
    int64_t arg = 0;
    if (strcmp(to, "earliest") == 0) {
        kind = EARLIEST;
    } else if (strcmp(to, "latest") == 0) {
        kind = LATEST;
    } else if (strncmp(to, "timestamp:", 10) == 0) {
        kind = TIMESTAMP;
        if (cli_parse_i64(to + 10, 0, INT64_MAX, "--to timestamp", &arg) != 0) {
            return -1;
        }
    } else if (strncmp(to, "offset:", 7) == 0) {
        kind = OFFSET;
        if (cli_parse_i64(to + 7, 0, INT64_MAX, "--to offset", &arg) != 0) {
            return -1;
        }
    } else {
        cli_err("--to '%s': expected earliest, latest, timestamp:MS or offset:N", to);
        return -1;
    }
    if (kind == TIMESTAMP) {
        for (int i = 0; i < l->cnt; i++) {
            l->elems[i].offset = arg; /* offsets_for_times takes the timestamp here */
        }
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, l, CLI_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cli_err("offsets for timestamp %lld: %s", (long long)arg, rd_kafka_err2str(err));
            return -1;
        }
    }
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *p = &l->elems[i];
        if (kind == TIMESTAMP && p->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cli_err("offset for timestamp in %s/%d: %s", p->topic, p->partition,
                    rd_kafka_err2str(p->err));
            return -1;
        }
        int64_t lo, hi;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, &lo, &hi, CLI_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cli_err("watermarks of %s/%d: %s", p->topic, p->partition, rd_kafka_err2str(err));
            return -1;
        }
        switch (kind) {
        case EARLIEST: p->offset = lo; break;
        case LATEST: p->offset = hi; break;
        case TIMESTAMP:
            /* No record at or after the time: the group starts at the end, like Kafka's
             * reset-offsets --to-datetime. */
            if (p->offset < 0) {
                p->offset = hi;
            }
            break;
        case OFFSET:
            /* Out-of-range offsets are clamped to what exists, as Kafka's tool does, so
             * the group never starts with an offset-out-of-range reset. */
            p->offset = arg < lo ? lo : arg > hi ? hi : arg;
            break;
        }
    }
    return 0;
}

/* Seek is only safe while no consumer is in the group: a live member would overwrite the
 * new offsets with its next commit. The check and the commit are not atomic, but a member
 * that joins in between makes the broker refuse the commit (it carries no generation). */
static int group_seek(struct cli_opts *o, const struct group_args *a)
{
    if (a->topic == NULL || a->to == NULL) {
        cli_err("group seek needs --topic TOPIC and --to earliest|latest|timestamp:MS|offset:N");
        return CLI_EXIT_USAGE;
    }
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    rd_kafka_event_t *dev = NULL;
    const rd_kafka_ConsumerGroupDescription_t *d;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *target = NULL, *before = NULL;
    int rc = CLI_EXIT_FAIL;
    if (describe_group(rk, a->group, &dev, &d) != 0) {
        goto out;
    }
    size_t nmembers = rd_kafka_ConsumerGroupDescription_member_count(d);
    rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupDescription_state(d);
    if (nmembers > 0 || (state != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY &&
                         state != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD)) {
        cli_err("group '%s' has %zu active member(s) (state %s); stop its consumers before "
                "seeking",
                a->group, nmembers, rd_kafka_consumer_group_state_name(state));
        goto out;
    }
    if (cli_metadata(rk, &md) != 0) {
        goto out;
    }
    const struct rd_kafka_metadata_topic *t = cli_require_topic(md, a->topic);
    if (t == NULL) {
        goto out;
    }
    target = rd_kafka_topic_partition_list_new(t->partition_cnt);
    for (int i = 0; i < t->partition_cnt; i++) {
        rd_kafka_topic_partition_list_add(target, t->topic, t->partitions[i].id);
    }
    rd_kafka_topic_partition_list_sort(target, NULL, NULL);
    before = committed_offsets(rk, a->group, target);
    if (before == NULL || resolve_targets(rk, a->to, target) != 0) {
        goto out;
    }
    if (!a->dry_run) {
        rd_kafka_AlterConsumerGroupOffsets_t *ao =
            rd_kafka_AlterConsumerGroupOffsets_new(a->group, target);
        struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
        rd_kafka_AlterConsumerGroupOffsets(rk, &ao, 1, req.opt, req.q);
        rd_kafka_event_t *ev =
            cli_admin_result(&req, RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT, "group seek");
        bool ok = false;
        if (ev != NULL) {
            size_t n;
            const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
                rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
            if (group_result_ok(gr, n, "group seek", a->group)) {
                ok = true;
                const rd_kafka_topic_partition_list_t *pl = rd_kafka_group_result_partitions(gr[0]);
                for (int i = 0; pl != NULL && i < pl->cnt; i++) {
                    if (pl->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                        cli_err("group seek '%s' %s/%d: %s", a->group, pl->elems[i].topic,
                                pl->elems[i].partition, rd_kafka_err2str(pl->elems[i].err));
                        ok = false;
                    }
                }
            }
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_AlterConsumerGroupOffsets_destroy(ao);
        if (!ok) {
            goto out;
        }
    }
    struct table *tab = table_new(4, "TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET");
    for (int i = 0; i < target->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &target->elems[i];
        const rd_kafka_topic_partition_t *b =
            rd_kafka_topic_partition_list_find(before, p->topic, p->partition);
        char part[16], old_s[24], new_s[24];
        snprintf(part, sizeof part, "%d", p->partition);
        table_add(tab, p->topic, part, fmt_offset(old_s, sizeof old_s, b ? b->offset : -1),
                  fmt_offset(new_s, sizeof new_s, p->offset));
    }
    table_print(tab);
    table_free(tab);
    printf("%s group %s on topic %s to %s.\n", a->dry_run ? "Would move" : "Moved", a->group,
           a->topic, a->to);
    rc = 0;
out:
    if (before != NULL) {
        rd_kafka_topic_partition_list_destroy(before);
    }
    if (target != NULL) {
        rd_kafka_topic_partition_list_destroy(target);
    }
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    if (dev != NULL) {
        rd_kafka_event_destroy(dev);
    }
    rd_kafka_destroy(rk);
    return rc;
}

static int group_delete(struct cli_opts *o, const struct group_args *a)
{
    rd_kafka_t *rk = cli_client(o, RD_KAFKA_PRODUCER, NULL, NULL);
    if (rk == NULL) {
        return CLI_EXIT_FAIL;
    }
    rd_kafka_DeleteGroup_t *dg = rd_kafka_DeleteGroup_new(a->group);
    struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_DELETEGROUPS);
    rd_kafka_DeleteGroups(rk, &dg, 1, req.opt, req.q);
    rd_kafka_event_t *ev =
        cli_admin_result(&req, RD_KAFKA_EVENT_DELETEGROUPS_RESULT, "group delete");
    int rc = CLI_EXIT_FAIL;
    if (ev != NULL) {
        size_t n;
        const rd_kafka_group_result_t **gr =
            rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
        const rd_kafka_error_t *err = n == 1 ? rd_kafka_group_result_error(gr[0]) : NULL;
        if (n != 1) {
            cli_err("group delete '%s': no result", a->group);
        } else if (err == NULL) {
            printf("Deleted group %s.\n", a->group);
            rc = 0;
        } else if (rd_kafka_error_code(err) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
            cli_err("group '%s' does not exist", a->group);
        } else if (rd_kafka_error_code(err) == RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP) {
            cli_err("group '%s' has active members; stop its consumers before deleting it",
                    a->group);
        } else {
            cli_err("group delete '%s': %s", a->group, rd_kafka_error_string(err));
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_DeleteGroup_destroy(dg);
    rd_kafka_destroy(rk);
    return rc;
}

int group_main(struct cli_opts *o, int argc, char **argv)
{
    /* Each verb with whether it needs a group id and whether it takes seek's options. */
    static const struct {
        const char *verb;
        bool want_group;
        bool seek;
        int (*fn)(struct cli_opts *, const struct group_args *);
    } verbs[] = {
        {"list", false, false, group_list},
        {"describe", true, false, group_describe},
        {"seek", true, true, group_seek},
        {"delete", true, false, group_delete},
    };
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(group_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : 0;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strcmp(argv[1], verbs[i].verb) == 0) {
            struct group_args a;
            int rc =
                parse_group_args(o, argc - 1, argv + 1, verbs[i].want_group, verbs[i].seek, &a);
            return rc != 0 ? rc : verbs[i].fn(o, &a);
        }
    }
    cli_err("unknown group command '%s'", argv[1]);
    fputs(group_usage, stderr);
    return CLI_EXIT_USAGE;
}
