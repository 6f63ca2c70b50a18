/* DescribeConfigs (key 32), v0-v4: effective configs of topics (resource type 2), of this
 * broker (type 4, named by node id; "" names the cluster-wide dynamic defaults, of which
 * Samsa has none) and of its loggers (type 8: "root", the log threshold).
 *
 * Sources and synonyms (v1+) follow Kafka 4.4's rule: a config's synonym list is the
 * topic's own setting (DYNAMIC_TOPIC_CONFIG), then the broker properties that give its
 * value as broker_config_synonyms() lists them (STATIC_BROKER_CONFIG for a
 * server.properties value, DEFAULT_CONFIG for a built-in default); the config's source is
 * that of the first synonym, DEFAULT_CONFIG when there is none. Clients show that source,
 * so it is computed the same way even where the rule surprises (a topic's retention.ms
 * is DEFAULT_CONFIG while server.properties sets log.retention.hours). Documentation and
 * types are v3+. */
#include "server/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

typedef struct describe_configs_response_results_configs config_resp;
typedef struct describe_configs_response_results_configs_synonyms synonym_resp;

#define CONFIG_RESOURCE_BROKER_LOGGER 8

/* ConfigSource values (DescribeConfigs v1+). */
enum {
    SOURCE_TOPIC = 1,
    SOURCE_STATIC_BROKER = 4,
    SOURCE_DEFAULT = 5,
    SOURCE_BROKER_LOGGER = 6,
};

static int8_t kafka_config_type(enum tcfg_type t)
{
    switch (t) {
    case TCFG_BOOL: return 1;
    case TCFG_STRING: return 2;
    case TCFG_INT: return 3;
    case TCFG_SHORT: return 4;
    case TCFG_LONG: return 5;
    case TCFG_DOUBLE: return 6;
    case TCFG_LIST: return 7;
    }
    return 0;
}

/* Null or empty ConfigurationKeys ask for every config, as in Kafka. */
static bool wanted(const struct describe_configs_request_resources *r, const char *name)
{
    if (r->configuration_keys_count <= 0)
        return true;
    for (int32_t i = 0; i < r->configuration_keys_count; i++)
        if (slice_eq_cstr(r->configuration_keys[i], name))
            return true;
    return false;
}

static struct slice copy_or_null(struct request *req, const char *s)
{
    return s ? slice_from_cstr(arena_strndup(&req->arena, s, strlen(s))) : SLICE_NULL;
}

/* Kafka shows a list config as it parsed it: the items without the blanks around them,
 * joined by commas (cleanup.policy set to " compact , delete " is described as
 * "compact,delete"). cleanup.policy and the broker's lists show each item once and no
 * empty ones ("delete,delete" as "delete"); the throttled-replicas lists show every item
 * ("0:1,,0:1," as it is), as Kafka 4.4 does. The value is kept as written. */
static const char *list_value(struct request *req, const char *v, bool distinct)
{
    if (!v)
        return NULL;
    size_t len = strlen(v);
    char *out = arena_alloc(&req->arena, len + 1);
    size_t n = 0;
    bool first = true;
    for (const char *p = v;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : v + len;
        const char *b = p;
        while (b < end && (*b == ' ' || *b == '\t'))
            b++;
        while (end > b && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t item = (size_t)(end - b);
        bool seen = distinct && item == 0;
        /* Earlier items of out: few distinct ones in practice (cleanup.policy has two). */
        for (size_t q = 0; q < n && distinct && !seen;) {
            const char *c = memchr(out + q, ',', n - q);
            size_t qlen = c ? (size_t)(c - (out + q)) : n - q;
            seen = qlen == item && memcmp(out + q, b, item) == 0;
            q += qlen + 1;
        }
        if (!seen) {
            if (!first)
                out[n++] = ',';
            first = false;
            memcpy(out + n, b, item);
            n += item;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    ASSERT(n <= len);
    out[n] = '\0';
    return out;
}

static void add_synonym(struct request *req, config_resp *c, const char *name, const char *value,
                        int8_t source)
{
    synonym_resp *sy = &c->synonyms[c->synonyms_count++];
    describe_configs_response_results_configs_synonyms_init(sy);
    sy->name = slice_from_cstr(name);
    sy->value = copy_or_null(req, value);
    sy->source = source;
}

static int8_t broker_source(const struct broker_config_synonym *sy)
{
    return sy->is_default ? SOURCE_DEFAULT : SOURCE_STATIC_BROKER;
}

/* Kafka reads broker resource names with Integer.parseInt: an optional sign, then
 * decimal digits only (" 1" is refused, "01" and "+1" name node 1). parse_i64 is that
 * but for the leading blanks strtoll skips (and a NUL, which would end the copy). */
static bool parse_node_id(struct request *req, struct slice name, int32_t *out)
{
    int64_t v;
    if (name.len == 0 || isspace(name.ptr[0]) || memchr(name.ptr, '\0', name.len) ||
        parse_i64(REQ_CSTR(req, name), &v) != 0 || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

/* Checks a broker or broker logger resource name against this node. Returns false
 * after filling out's error (INVALID_REQUEST with Kafka's messages). */
static bool this_node(struct request *req, struct slice name,
                      struct describe_configs_response_results *out)
{
    int32_t id;
    int32_t node = req->srv->cfg->node_id;
    if (!parse_node_id(req, name, &id)) {
        out->error_code = KERR_INVALID_REQUEST;
        out->error_message = slice_from_cstr(
            arena_printf(&req->arena, "Broker id must be an integer, but it is: %.*s",
                         (int)name.len, (const char *)name.ptr));
        return false;
    }
    if (id != node) {
        out->error_code = KERR_INVALID_REQUEST;
        out->error_message = slice_from_cstr(
            arena_printf(&req->arena, "Unexpected broker id, expected %d but received %.*s", node,
                         (int)name.len, (const char *)name.ptr));
        return false;
    }
    return true;
}

static void describe_topic(struct request *req, const struct describe_configs_request *in,
                           const struct describe_configs_request_resources *r,
                           struct describe_configs_response_results *out)
{
    struct server *s = req->srv;
    const char *bad_name = cluster_topic_name_error(r->resource_name);
    if (bad_name) {
        out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
        out->error_message = slice_from_cstr(bad_name);
        return;
    }
    const struct mtopic *t = cluster_topic_find(s->cluster, r->resource_name);
    if (!t) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        out->error_message = slice_from_cstr("topic does not exist");
        return;
    }
    size_t n = tcfg_count();
    out->configs = REQ_ALLOC(req, config_resp, n);
    out->configs_count = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tcfg_def *d = tcfg_at(i);
        if (!wanted(r, d->name))
            continue;
        config_resp *c = &out->configs[out->configs_count++];
        describe_configs_response_results_configs_init(c);
        const char *own = cluster_topic_config(t, d->name);
        struct broker_config_synonym bs[BROKER_CONFIG_MAX_SYNONYMS];
        size_t nb =
            d->broker_key ? broker_config_synonyms(s->cfg, d->broker_key, bs, ARRAY_LEN(bs)) : 0;
        int8_t source = own ? SOURCE_TOPIC : nb > 0 ? broker_source(&bs[0]) : SOURCE_DEFAULT;
        int8_t value_source; /* the value's origin, not always the source Kafka reports */
        const char *v = server_topic_config_value(s, t, d->name, &value_source);
        if (d->type == TCFG_LIST) {
            bool distinct = strcmp(d->name, "cleanup.policy") == 0;
            v = list_value(req, v, distinct);
            own = list_value(req, own, distinct);
        }
        c->name = slice_from_cstr(d->name);
        c->value = copy_or_null(req, v);
        c->read_only = false;
        c->is_default = source == SOURCE_DEFAULT;
        c->config_source = source;
        c->is_sensitive = false;
        c->config_type = kafka_config_type(d->type);
        c->documentation = in->include_documentation ? slice_from_cstr(d->doc) : SLICE_NULL;
        c->synonyms_count = 0;
        if (in->include_synonyms) {
            c->synonyms = REQ_ALLOC(req, synonym_resp, nb + 1);
            if (own)
                add_synonym(req, c, d->name, own, SOURCE_TOPIC);
            for (size_t k = 0; k < nb; k++)
                add_synonym(req, c, bs[k].name, bs[k].value, broker_source(&bs[k]));
        }
    }
}

static void describe_broker(struct request *req, const struct describe_configs_request *in,
                            const struct describe_configs_request_resources *r,
                            struct describe_configs_response_results *out)
{
    struct server *s = req->srv;
    out->configs_count = 0;
    /* "" is the cluster-wide default resource: it holds the dynamic defaults set with
     * IncrementalAlterConfigs, and Samsa has no dynamic configs. */
    if (r->resource_name.len == 0 || !this_node(req, r->resource_name, out))
        return;
    struct broker_config_item items[BROKER_CONFIG_MAX_ITEMS];
    size_t n = broker_config_items(s->cfg, items, ARRAY_LEN(items));
    out->configs = REQ_ALLOC(req, config_resp, n);
    for (size_t i = 0; i < n; i++) {
        if (!wanted(r, items[i].name))
            continue;
        config_resp *c = &out->configs[out->configs_count++];
        describe_configs_response_results_configs_init(c);
        struct broker_config_synonym bs[BROKER_CONFIG_MAX_SYNONYMS];
        size_t nb = broker_config_synonyms(s->cfg, items[i].name, bs, ARRAY_LEN(bs));
        c->name = slice_from_cstr(items[i].name);
        c->value =
            copy_or_null(req, items[i].type == TCFG_LIST ? list_value(req, items[i].value, true)
                                                         : items[i].value);
        c->read_only = items[i].read_only;
        c->config_source = nb > 0 ? broker_source(&bs[0]) : SOURCE_DEFAULT;
        c->is_default = c->config_source == SOURCE_DEFAULT;
        c->is_sensitive = items[i].sensitive;
        c->config_type = kafka_config_type(items[i].type);
        /* No text for broker configs yet (docs/configuration.md has it): "", not null. */
        c->documentation = in->include_documentation ? slice_from_cstr("") : SLICE_NULL;
        c->synonyms_count = 0;
        if (in->include_synonyms) {
            c->synonyms = REQ_ALLOC(req, synonym_resp, nb);
            for (size_t k = 0; k < nb; k++)
                add_synonym(req, c, bs[k].name, bs[k].value, broker_source(&bs[k]));
        }
    }
}

static const char *level_name(enum say_level l)
{
    switch (l) {
    case SAY_LEVEL_DEBUG: return "DEBUG";
    case SAY_LEVEL_INFO: return "INFO";
    case SAY_LEVEL_WARN: return "WARN";
    case SAY_LEVEL_ERROR: return "ERROR";
    }
    return "INFO";
}

/* Kafka lists its log4j loggers and their levels; Samsa has one threshold for every
 * subsystem (log.level), which is what log4j calls the root logger. */
static void describe_broker_logger(struct request *req,
                                   const struct describe_configs_request_resources *r,
                                   struct describe_configs_response_results *out)
{
    out->configs_count = 0;
    if (r->resource_name.len == 0) {
        out->error_code = KERR_INVALID_REQUEST;
        out->error_message = slice_from_cstr("Broker id must not be empty");
        return;
    }
    if (!this_node(req, r->resource_name, out) || !wanted(r, "root"))
        return;
    out->configs = REQ_ALLOC(req, config_resp, 1);
    config_resp *c = &out->configs[out->configs_count++];
    describe_configs_response_results_configs_init(c);
    c->name = slice_from_cstr("root");
    c->value = slice_from_cstr(level_name(say_get_level()));
    c->config_source = SOURCE_BROKER_LOGGER;
}

void handle_describe_configs(struct request *req)
{
    struct describe_configs_request in;
    if (describe_configs_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct describe_configs_response resp;
    describe_configs_response_init(&resp);
    resp.results_count = MAX(in.resources_count, 0);
    resp.results = REQ_ALLOC(req, struct describe_configs_response_results, resp.results_count);
    for (int32_t i = 0; i < resp.results_count; i++) {
        const struct describe_configs_request_resources *r = &in.resources[i];
        struct describe_configs_response_results *out = &resp.results[i];
        describe_configs_response_results_init(out);
        out->resource_type = r->resource_type;
        out->resource_name = r->resource_name;
        out->configs_count = 0;
        if (r->resource_type == CONFIG_RESOURCE_TOPIC) {
            describe_topic(req, &in, r, out);
        } else if (r->resource_type == CONFIG_RESOURCE_BROKER) {
            describe_broker(req, &in, r, out);
        } else if (r->resource_type == CONFIG_RESOURCE_BROKER_LOGGER) {
            describe_broker_logger(req, r, out);
        } else {
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = slice_from_cstr("unsupported resource type");
        }
    }
    REQUEST_RESPOND(req, describe_configs_response, &resp);
}
