/* Helpers shared by the `samsa` commands: creating a quiet librdkafka client, waiting
 * for an admin result with a bound, metadata look-ups, parsing, JSON strings and
 * aligned tables. */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("samsa: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_FAIL;
}

bool cli_common_opt(struct cli_opts *o, int c, const char *arg)
{
    switch (c) {
    case 'b': o->bootstrap = arg; return true;
    case 'v': o->verbose = true; return true;
    default: return false;
    }
}

/* librdkafka reports connection trouble through error_cb and its logger; a CLI user
 * wants one line at the end ("timed out: Connection refused"), not a stream of retries,
 * so both are captured here and shown only with -v. Written from librdkafka's threads,
 * hence the lock. */
static pthread_mutex_t transport_lock = PTHREAD_MUTEX_INITIALIZER;
static char transport_error[256];

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    const struct cli_opts *o = opaque;
    pthread_mutex_lock(&transport_lock);
    snprintf(transport_error, sizeof transport_error, "%s", reason);
    pthread_mutex_unlock(&transport_lock);
    if (o->verbose) {
        fprintf(stderr, "samsa: librdkafka: %s: %s\n", rd_kafka_err2name(err), reason);
    }
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const struct cli_opts *o = rd_kafka_opaque(rk);
    if (o != NULL && o->verbose) {
        fprintf(stderr, "samsa: librdkafka %s: %s\n", fac, buf);
    }
}

const char *cli_last_transport_error(void)
{
    /* Read after the client's threads have reported; a torn read would only garble a
     * diagnostic, but take the lock anyway to keep TSan quiet. */
    static char copy[sizeof transport_error];
    pthread_mutex_lock(&transport_lock);
    memcpy(copy, transport_error, sizeof copy);
    pthread_mutex_unlock(&transport_lock);
    return copy[0] ? copy : NULL;
}

/* For error messages: the bootstrap list of the client created last (borrowed). */
static const char *bootstrap_used = CLI_DEFAULT_BOOTSTRAP;

rd_kafka_t *cli_client(const struct cli_opts *o, rd_kafka_type_t type, const char **extra,
                       void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *))
{
    char errstr[512];
    bootstrap_used = o->bootstrap;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        cli_err("bad bootstrap server '%s': %s", o->bootstrap, errstr);
        return NULL;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2) {
        if (rd_kafka_conf_set(conf, extra[i], extra[i + 1], errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            cli_err("client setting %s=%s: %s", extra[i], extra[i + 1], errstr);
            return NULL;
        }
    }
    rd_kafka_conf_set_opaque(conf, (void *)o);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (dr != NULL) {
        rd_kafka_conf_set_dr_msg_cb(conf, dr);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (rk == NULL) { /* conf is still ours only on failure */
        rd_kafka_conf_destroy(conf);
        cli_err("cannot create client: %s", errstr);
    }
    return rk;
}

/* Adds the transport error, if any, to a timeout so the user learns *why* it timed out. */
static void report_failure(const char *what, rd_kafka_resp_err_t err, const char *msg)
{
    const char *why = cli_last_transport_error();
    /* Local errors (negative codes: timed out, transport failure) say little alone. */
    if (err < 0 && why != NULL) {
        cli_err("%s: %s (last connection error: %s)", what, msg, why);
    } else if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        cli_err("%s: %s (is a broker listening on %s?)", what, msg, bootstrap_used);
    } else {
        cli_err("%s: %s", what, msg);
    }
}

rd_kafka_event_t *cli_admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t want, const char *what)
{
    /* The admin request already carries CLI_TIMEOUT_MS, after which librdkafka delivers a
     * timed-out result; the extra second here only guards against that never coming. */
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, CLI_TIMEOUT_MS + 1000);
    if (ev == NULL) {
        report_failure(what, RD_KAFKA_RESP_ERR__TIMED_OUT, "timed out");
        return NULL;
    }
    if (rd_kafka_event_type(ev) != want) {
        cli_err("%s: unexpected event %s", what, rd_kafka_event_name(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        report_failure(what, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

rd_kafka_AdminOptions_t *cli_admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t api)
{
    char errstr[256];
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, api);
    /* Both setters only fail for out-of-range values, which these are not. */
    rd_kafka_AdminOptions_set_request_timeout(opt, CLI_TIMEOUT_MS, errstr, sizeof errstr);
    if (api == RD_KAFKA_ADMIN_OP_CREATETOPICS || api == RD_KAFKA_ADMIN_OP_DELETETOPICS ||
        api == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS) {
        rd_kafka_AdminOptions_set_operation_timeout(opt, CLI_TIMEOUT_MS, errstr, sizeof errstr);
    }
    return opt;
}

struct cli_admin cli_admin_start(rd_kafka_t *rk, rd_kafka_admin_op_t api)
{
    return (struct cli_admin){.q = rd_kafka_queue_new(rk), .opt = cli_admin_options(rk, api)};
}

rd_kafka_event_t *cli_admin_result(struct cli_admin *req, rd_kafka_event_type_t want,
                                   const char *what)
{
    rd_kafka_event_t *ev = cli_admin_wait(req->q, want, what);
    rd_kafka_AdminOptions_destroy(req->opt);
    rd_kafka_queue_destroy(req->q);
    return ev;
}

int cli_metadata(rd_kafka_t *rk, const struct rd_kafka_metadata **md)
{
    /* All topics rather than one: asking for a single unknown topic may auto-create it on
     * brokers with auto.create.topics.enable, and describe must never create. */
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, md, CLI_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        report_failure("metadata request failed", err, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

const struct rd_kafka_metadata_topic *cli_find_topic(const struct rd_kafka_metadata *md,
                                                     const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, name) == 0) {
            return &md->topics[i];
        }
    }
    return NULL;
}

const struct rd_kafka_metadata_topic *cli_require_topic(const struct rd_kafka_metadata *md,
                                                        const char *name)
{
    const struct rd_kafka_metadata_topic *t = cli_find_topic(md, name);
    if (t == NULL || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        cli_err("topic '%s' does not exist", name);
        return NULL;
    }
    if (t->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cli_err("topic '%s': %s", name, rd_kafka_err2str(t->err));
        return NULL;
    }
    return t;
}

int cli_parse_i64(const char *s, int64_t min, int64_t max, const char *opt, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        cli_err("%s: '%s' is not a number in [%lld, %lld]", opt, s, (long long)min, (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_split_kv(const char *s, char *buf, size_t bufsz, const char **key, const char **value)
{
    if (strlen(s) >= bufsz) {
        cli_err("config '%.40s...' is too long", s);
        return -1;
    }
    strcpy(buf, s);
    char *eq = strchr(buf, '=');
    if (eq == NULL || eq == buf) {
        cli_err("config '%s' is not key=value", s);
        return -1;
    }
    *eq = '\0';
    *key = buf;
    *value = eq + 1;
    return 0;
}

const char *fmt_offset(char *buf, size_t bufsz, int64_t v)
{
    if (v < 0) {
        snprintf(buf, bufsz, "-");
    } else {
        snprintf(buf, bufsz, "%lld", (long long)v);
    }
    return buf;
}

/* ---- JSON ---- */

void json_str(const char *s, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

void json_cstr(const char *s)
{
    if (s == NULL) {
        fputs("null", stdout);
    } else {
        json_str(s, strlen(s));
    }
}

/* ---- tables ---- */

struct table {
    int ncols;
    int nrows; /* including the header */
    int cap;
    char **cells; /* nrows * ncols, row-major, each malloc'd */
};

static void oom(void)
{
    fputs("samsa: out of memory\n", stderr);
    exit(CLI_EXIT_FAIL);
}

static void table_push(struct table *t, va_list ap)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = realloc(t->cells, sizeof(char *) * (size_t)t->cap * (size_t)t->ncols);
        if (t->cells == NULL) {
            oom();
        }
    }
    for (int c = 0; c < t->ncols; c++) {
        const char *s = va_arg(ap, const char *);
        char *copy = strdup(s != NULL ? s : "-");
        if (copy == NULL) {
            oom();
        }
        t->cells[t->nrows * t->ncols + c] = copy;
    }
    t->nrows++;
}

struct table *table_new(int ncols, ...)
{
    struct table *t = calloc(1, sizeof *t);
    if (t == NULL) {
        oom();
    }
    t->ncols = ncols;
    va_list ap;
    va_start(ap, ncols);
    table_push(t, ap);
    va_end(ap);
    return t;
}

void table_add(struct table *t, ...)
{
    va_list ap;
    va_start(ap, t);
    table_push(t, ap);
    va_end(ap);
}

int table_rows(const struct table *t)
{
    return t->nrows - 1;
}

void table_print(const struct table *t)
{
    int width[t->ncols];
    for (int c = 0; c < t->ncols; c++) {
        width[c] = 0;
        for (int r = 0; r < t->nrows; r++) {
            int len = (int)strlen(t->cells[r * t->ncols + c]);
            width[c] = len > width[c] ? len : width[c];
        }
    }
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c == t->ncols - 1) {
                printf("%s\n", s);
            } else {
                printf("%-*s  ", width[c], s);
            }
        }
    }
}

void table_free(struct table *t)
{
    if (t == NULL) {
        return;
    }
    for (int i = 0; i < t->nrows * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}

int cli_describe_topic_configs(rd_kafka_t *rk, const char *name, rd_kafka_event_t **out,
                               const rd_kafka_ConfigResource_t **res)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name);
    struct cli_admin req = cli_admin_start(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(rk, &cr, 1, req.opt, req.q);
    rd_kafka_event_t *ev =
        cli_admin_result(&req, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, "describe configs");
    rd_kafka_ConfigResource_destroy(cr);
    if (ev == NULL) {
        return -1;
    }
    size_t n;
    const rd_kafka_ConfigResource_t **rs =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
    if (n != 1 || rd_kafka_ConfigResource_error(rs[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *why = n != 1 ? "no result" : rd_kafka_ConfigResource_error_string(rs[0]);
        cli_err("describe configs of '%s': %s", name,
                why != NULL ? why : rd_kafka_err2str(rd_kafka_ConfigResource_error(rs[0])));
        rd_kafka_event_destroy(ev);
        return -1;
    }
    *out = ev;
    *res = rs[0];
    return 0;
}
