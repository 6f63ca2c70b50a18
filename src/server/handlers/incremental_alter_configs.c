/* IncrementalAlterConfigs (key 44), v0-v1 (KIP-339): SET, DELETE, APPEND, SUBTRACT on
 * individual topic configs; all changes of a resource are validated before any is
 * written. Broker configs are static in this version (INVALID_CONFIG).
 *
 * Before anything else each resource goes through the checks Kafka's brokers make
 * (alter_checks.c), where a null value is allowed only for DELETE; a resource that
 * fails them gets its error and nothing of it is applied. */
#include "server/internal.h"

typedef struct incremental_alter_configs_request_resources resource_req;

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
            v[i].null_value[c] =
                !rs[i].configs[c].value.ptr && rs[i].configs[c].config_operation != CFG_OP_DELETE;
        }
    }
    alter_mark_duplicates(req, v, n);
    return v;
}

struct alter_wait {
    struct change_wait w; /* first: respond gets it */
    struct incremental_alter_configs_response resp;
};

static void alter_respond(struct change_wait *w)
{
    struct alter_wait *aw = (struct alter_wait *)w;
    REQUEST_RESPOND(w->req, incremental_alter_configs_response, &aw->resp);
}

void handle_incremental_alter_configs(struct request *req)
{
    struct server *s = req->srv;
    struct incremental_alter_configs_request in;
    if (incremental_alter_configs_request_decode(&req->body, req->hdr.api_version, &req->arena,
                                                 &in) != 0) {
        request_malformed(req);
        return;
    }
    struct alter_wait *aw = REQ_ALLOC(req, struct alter_wait, 1);
    change_wait_begin(&aw->w, req, alter_respond);
    struct incremental_alter_configs_response *resp = &aw->resp;
    incremental_alter_configs_response_init(resp);
    resp->responses_count = MAX(in.resources_count, 0);
    resp->responses =
        REQ_ALLOC(req, struct incremental_alter_configs_response_responses, resp->responses_count);
    struct alter_resource *checks = check_view(req, in.resources, resp->responses_count);
    for (int32_t i = 0; i < resp->responses_count; i++) {
        const resource_req *r = &in.resources[i];
        struct incremental_alter_configs_response_responses *out = &resp->responses[i];
        incremental_alter_configs_response_responses_init(out);
        out->resource_type = r->resource_type;
        out->resource_name = r->resource_name;
        out->error_code = alter_check_resource(req, &checks[i], &out->error_message);
        if (out->error_code != KERR_NONE)
            continue;
        int32_t n = MAX(r->configs_count, 0);
        struct config_change *ch = REQ_ALLOC(req, struct config_change, n);
        size_t nch = 0;
        bool bad_op = false;
        for (int32_t c = 0; c < n; c++) {
            int8_t op = r->configs[c].config_operation;
            bad_op |= op < 0 || op > 3;
            const char *name = REQ_CSTR(req, r->configs[c].name);
            /* Kafka deletes a name it does not know as a no-op (there is nothing to
             * remove), where setting it is INVALID_CONFIG. */
            if (op == CFG_OP_DELETE && !tcfg_find(name))
                continue;
            ch[nch].name = name;
            ch[nch].value = r->configs[c].value.ptr ? REQ_CSTR(req, r->configs[c].value) : NULL;
            ch[nch].op = (enum cluster_config_op)op;
            nch++;
        }
        if (bad_op) {
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = slice_from_cstr("unknown config operation");
            continue;
        }
        void *arg;
        cluster_done_fn done =
            change_wait_slot(&aw->w, &out->error_code, &out->error_message, &arg);
        cluster_alter_topic_configs(s->cluster, r->resource_name, ch, nch, false, in.validate_only,
                                    done, arg);
    }
    change_wait_end(&aw->w);
}
