/* DescribeConfigs (key 32), v0-v4: effective configs of topics (resource type 2) and of
 * this broker (type 4, named by node id), with their source: DYNAMIC_TOPIC_CONFIG (1)
 * for a topic's own setting, STATIC_BROKER_CONFIG (4) for a server.properties value,
 * DEFAULT_CONFIG (5) otherwise; synonyms (v1+) and documentation (v3+) on request. */
#include "server/internal.h"

#include <stdio.h>
#include <string.h>

typedef struct describe_configs_response_results_configs config_resp;


static int8_t kafka_config_type(enum tcfg_type t) {
    switch (t) {
    case TCFG_BOOL:
        return 1;
    case TCFG_STRING:
        return 2;
    case TCFG_INT:
        return 3;
    case TCFG_LONG:
        return 5;
    case TCFG_DOUBLE:
        return 6;
    case TCFG_LIST:
        return 7;
    }
    return 0;
}

static bool wanted(const struct describe_configs_request_resources *r, const char *name) {
    if (r->configuration_keys_count < 0)
        return true;
    for (int32_t i = 0; i < r->configuration_keys_count; i++)
        if (slice_eq_cstr(r->configuration_keys[i], name))
            return true;
    return false;
}

static void add_synonym(struct request *req, config_resp *c, const char *name, const char *value,
                        int8_t source) {
    struct describe_configs_response_results_configs_synonyms *sy =
        &c->synonyms[c->synonyms_count++];
    describe_configs_response_results_configs_synonyms_init(sy);
    sy->name = slice_from_cstr(name);
    sy->value = slice_from_cstr(arena_strndup(&req->arena, value, strlen(value)));
    sy->source = source;
}

static void describe_topic(struct request *req, const struct describe_configs_request *in,
                           const struct describe_configs_request_resources *r,
                           struct describe_configs_response_results *out) {
    struct server *s = req->srv;
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
        int8_t source;
        const char *v = server_topic_config_value(s, t, d->name, &source);
        c->name = slice_from_cstr(d->name);
        c->value = slice_from_cstr(arena_strndup(&req->arena, v, strlen(v)));
        c->read_only = false;
        c->is_default = source == 5;
        c->config_source = source;
        c->is_sensitive = false;
        c->config_type = kafka_config_type(d->type);
        c->documentation = in->include_documentation ? slice_from_cstr(d->doc) : SLICE_NULL;
        c->synonyms_count = 0;
        if (in->include_synonyms) {
            c->synonyms = REQ_ALLOC(req, struct describe_configs_response_results_configs_synonyms, 3);
            const char *own = cluster_topic_config(t, d->name);
            if (own)
                add_synonym(req, c, d->name, own, 1);
            const char *file = d->broker_key ? props_get(&s->cfg->props, d->broker_key) : NULL;
            if (file)
                add_synonym(req, c, d->broker_key, file, 4);
            add_synonym(req, c, d->broker_key ? d->broker_key : d->name, d->default_value, 5);
        }
    }
}

static void describe_broker(struct request *req, const struct describe_configs_request *in,
                            const struct describe_configs_request_resources *r,
                            struct describe_configs_response_results *out) {
    struct server *s = req->srv;
    char id[16];
    snprintf(id, sizeof id, "%d", s->cfg->node_id);
    if (r->resource_name.len > 0 && !slice_eq_cstr(r->resource_name, id)) {
        out->error_code = KERR_INVALID_REQUEST;
        out->error_message = slice_from_cstr("unexpected broker id: this node has another");
        return;
    }
    struct broker_config_item items[128];
    size_t n = broker_config_items(s->cfg, items, ARRAY_LEN(items));
    out->configs = REQ_ALLOC(req, config_resp, n);
    out->configs_count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!wanted(r, items[i].name))
            continue;
        config_resp *c = &out->configs[out->configs_count++];
        describe_configs_response_results_configs_init(c);
        c->name = slice_from_cstr(items[i].name);
        c->value = slice_from_cstr(items[i].value);
        c->read_only = items[i].read_only;
        c->is_default = items[i].is_default;
        c->config_source = items[i].is_default ? 5 : 4;
        c->is_sensitive = items[i].sensitive;
        c->config_type = 2;
        c->synonyms_count = 0;
        if (in->include_synonyms) {
            c->synonyms = REQ_ALLOC(req, struct describe_configs_response_results_configs_synonyms, 1);
            add_synonym(req, c, items[i].name, items[i].value, c->config_source);
        }
    }
}

void handle_describe_configs(struct request *req) {
    struct describe_configs_request in;
    if (describe_configs_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) !=
        0) {
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
        } else {
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = slice_from_cstr("unsupported resource type");
        }
    }
    REQUEST_RESPOND(req, describe_configs_response, &resp);
}
