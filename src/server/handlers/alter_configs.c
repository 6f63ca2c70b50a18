/* AlterConfigs (key 33), v0-v2: the legacy, replace-everything form. For a topic, the
 * named configs are set and every other topic-level setting returns to its default
 * (Kafka's semantics, which IncrementalAlterConfigs exists to avoid). Broker configs
 * are static in this version: changing them is refused with INVALID_CONFIG.
 *
 * Before anything else each resource goes through the checks Kafka's brokers make
 * (alter_checks.c). A resource named twice: Kafka 4.4 means to answer INVALID_REQUEST,
 * though it fails while building the answer and sends none; Samsa answers it. */
#include "server/internal.h"

typedef struct alter_configs_request_resources resource_req;

/* The resources as the shared checks see them (alter_checks.c), duplicates marked. */
static struct alter_resource *check_view(struct request *req, const resource_req *rs, int32_t n)
{
    struct alter_resource *v = REQ_ALLOC(req, struct alter_resource, n);
    for (int32_t i = 0; i < n; i++) {
        int32_t nc = MAX(rs[i].configs_count, 0);
        v[i] = (struct alter_resource){.type = rs[i].resource_type,
                                       .name = rs[i].resource_name,
                                       .n_configs = nc,
                                       .config_names = REQ_ALLOC(req, struct slice, nc),
                                       .null_value = REQ_ALLOC(req, bool, nc)};
        for (int32_t c = 0; c < nc; c++) {
            v[i].config_names[c] = rs[i].configs[c].name;
            v[i].null_value[c] = !rs[i].configs[c].value.ptr;
        }
    }
    alter_mark_duplicates(req, v, n);
    return v;
}

struct alter_wait {
    struct change_wait w; /* first: respond gets it */
    struct alter_configs_response resp;
};

static void alter_respond(struct change_wait *w)
{
    struct alter_wait *aw = (struct alter_wait *)w;
    REQUEST_RESPOND(w->req, alter_configs_response, &aw->resp);
}

void handle_alter_configs(struct request *req)
{
    struct server *s = req->srv;
    struct alter_configs_request in;
    if (alter_configs_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct alter_wait *aw = REQ_ALLOC(req, struct alter_wait, 1);
    change_wait_begin(&aw->w, req, alter_respond);
    struct alter_configs_response *resp = &aw->resp;
    alter_configs_response_init(resp);
    resp->responses_count = MAX(in.resources_count, 0);
    resp->responses =
        REQ_ALLOC(req, struct alter_configs_response_responses, resp->responses_count);
    struct alter_resource *checks = check_view(req, in.resources, resp->responses_count);
    for (int32_t i = 0; i < resp->responses_count; i++) {
        const resource_req *r = &in.resources[i];
        struct alter_configs_response_responses *out = &resp->responses[i];
        alter_configs_response_responses_init(out);
        out->resource_type = r->resource_type;
        out->resource_name = r->resource_name;
        out->error_code = alter_check_resource(req, &checks[i], &out->error_message);
        if (out->error_code != KERR_NONE)
            continue;
        int32_t n = MAX(r->configs_count, 0);
        struct config_change *ch = REQ_ALLOC(req, struct config_change, n);
        for (int32_t c = 0; c < n; c++) {
            ch[c].name = REQ_CSTR(req, r->configs[c].name);
            ch[c].value = REQ_CSTR(req, r->configs[c].value);
            ch[c].op = CFG_OP_SET;
        }
        void *arg;
        cluster_done_fn done =
            change_wait_slot(&aw->w, &out->error_code, &out->error_message, &arg);
        cluster_alter_topic_configs(s->cluster, r->resource_name, ch, (size_t)n, true,
                                    in.validate_only, done, arg);
    }
    change_wait_end(&aw->w);
}
