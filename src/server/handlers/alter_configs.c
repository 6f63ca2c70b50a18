/* AlterConfigs (key 33), v0-v2: the legacy, replace-everything form. For a topic, the
 * named configs are set and every other topic-level setting returns to its default
 * (Kafka's semantics, which IncrementalAlterConfigs exists to avoid). Broker configs
 * are static in this version: changing them is refused with INVALID_CONFIG. */
#include "server/internal.h"

void handle_alter_configs(struct request *req) {
    struct server *s = req->srv;
    struct alter_configs_request in;
    if (alter_configs_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct alter_configs_response resp;
    alter_configs_response_init(&resp);
    resp.responses_count = MAX(in.resources_count, 0);
    resp.responses = REQ_ALLOC(req, struct alter_configs_response_responses, resp.responses_count);
    for (int32_t i = 0; i < resp.responses_count; i++) {
        const struct alter_configs_request_resources *r = &in.resources[i];
        struct alter_configs_response_responses *out = &resp.responses[i];
        alter_configs_response_responses_init(out);
        out->resource_type = r->resource_type;
        out->resource_name = r->resource_name;
        if (r->resource_type != CONFIG_RESOURCE_TOPIC) {
            out->error_code = config_alter_refusal(r->resource_type, &out->error_message);
            continue;
        }
        int32_t n = MAX(r->configs_count, 0);
        struct config_change *ch = REQ_ALLOC(req, struct config_change, n);
        for (int32_t c = 0; c < n; c++) {
            ch[c].name = REQ_CSTR(req, r->configs[c].name);
            ch[c].value = r->configs[c].value.ptr ? REQ_CSTR(req, r->configs[c].value) : NULL;
            ch[c].op = ch[c].value ? CFG_OP_SET : CFG_OP_DELETE;
        }
        const char *why = NULL;
        int rc = cluster_alter_topic_configs(s->cluster, r->resource_name, ch, (size_t)n, true,
                                             in.validate_only, &why);
        out->error_code = kerr_from_cluster(rc);
        if (rc != 0)
            out->error_message = slice_from_cstr(why ? why : "metadata log write failed");
    }
    REQUEST_RESPOND(req, alter_configs_response, &resp);
}
