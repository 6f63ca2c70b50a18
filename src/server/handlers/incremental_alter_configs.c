/* IncrementalAlterConfigs (key 44), v0-v1 (KIP-339): SET, DELETE, APPEND, SUBTRACT on
 * individual topic configs; all changes of a resource are validated before any is
 * written. Broker configs are static in this version (INVALID_CONFIG). */
#include "server/internal.h"

void handle_incremental_alter_configs(struct request *req) {
    struct server *s = req->srv;
    struct incremental_alter_configs_request in;
    if (incremental_alter_configs_request_decode(&req->body, req->hdr.api_version, &req->arena,
                                                 &in) != 0) {
        request_malformed(req);
        return;
    }
    struct incremental_alter_configs_response resp;
    incremental_alter_configs_response_init(&resp);
    resp.responses_count = MAX(in.resources_count, 0);
    resp.responses =
        REQ_ALLOC(req, struct incremental_alter_configs_response_responses, resp.responses_count);
    for (int32_t i = 0; i < resp.responses_count; i++) {
        const struct incremental_alter_configs_request_resources *r = &in.resources[i];
        struct incremental_alter_configs_response_responses *out = &resp.responses[i];
        incremental_alter_configs_response_responses_init(out);
        out->resource_type = r->resource_type;
        out->resource_name = r->resource_name;
        if (r->resource_type != CONFIG_RESOURCE_TOPIC) {
            out->error_code = config_alter_refusal(r->resource_type, &out->error_message);
            continue;
        }
        int32_t n = MAX(r->configs_count, 0);
        struct config_change *ch = REQ_ALLOC(req, struct config_change, n);
        bool bad_op = false;
        for (int32_t c = 0; c < n; c++) {
            int8_t op = r->configs[c].config_operation;
            bad_op |= op < 0 || op > 3;
            ch[c].name = REQ_CSTR(req, r->configs[c].name);
            ch[c].value = r->configs[c].value.ptr ? REQ_CSTR(req, r->configs[c].value) : NULL;
            ch[c].op = (enum cluster_config_op)op;
        }
        if (bad_op) {
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = slice_from_cstr("unknown config operation");
            continue;
        }
        const char *why = NULL;
        int rc = cluster_alter_topic_configs(s->cluster, r->resource_name, ch, (size_t)n, false,
                                             in.validate_only, &why);
        out->error_code = kerr_from_cluster(rc);
        if (rc != 0)
            out->error_message = slice_from_cstr(why ? why : "metadata log write failed");
    }
    REQUEST_RESPOND(req, incremental_alter_configs_response, &resp);
}
