/* IncrementalAlterConfigs (key 44), v0-v1 (KIP-339): SET, DELETE, APPEND, SUBTRACT on
 * individual topic configs; all changes of a resource are validated before any is
 * written. Broker configs are static in this version (INVALID_CONFIG).
 *
 * Before anything else each resource goes through the checks Kafka's brokers make
 * (ConfigAdminManager.preprocess), with the same answers: a resource named twice in the
 * request (every occurrence), a config named twice in one resource, or a null value for
 * an operation other than DELETE make the resource INVALID_REQUEST; nothing of it is
 * applied. */
#include "server/internal.h"

#include <stdint.h>
#include <string.h>

typedef struct incremental_alter_configs_request_resources resource_req;

#define MAX_NAMED_NULLS 8 /* config names an INVALID_REQUEST message lists */

/* Marks dup[i] for every resource whose (type, name) occurs more than once. */
static void mark_duplicate_resources(struct request *req, const resource_req *rs, int32_t n,
                                     bool *dup) {
    struct hmap seen;
    hmap_init(&seen);
    for (int32_t i = 0; i < n; i++) {
        size_t len = rs[i].resource_name.len + 1;
        uint8_t *key = arena_alloc(&req->arena, len);
        key[0] = (uint8_t)rs[i].resource_type;
        if (len > 1)
            memcpy(key + 1, rs[i].resource_name.ptr, len - 1);
        struct slice k = {key, len};
        void *first = hmap_get(&seen, k);
        if (first) {
            dup[(uintptr_t)first - 1] = true;
            dup[i] = true;
        } else {
            hmap_put(&seen, k, (void *)(uintptr_t)(i + 1));
        }
    }
    hmap_free(&seen);
}

/* Kafka's preprocessing of one resource: 0, or INVALID_REQUEST with *message set. */
static int16_t precheck(struct request *req, const resource_req *r, struct slice *message) {
    int32_t n = MAX(r->configs_count, 0);
    struct hmap names;
    hmap_init(&names);
    bool dup = false;
    for (int32_t c = 0; c < n && !dup; c++) {
        dup = hmap_get(&names, r->configs[c].name) != NULL;
        hmap_put(&names, r->configs[c].name, (void *)1);
    }
    hmap_free(&names);
    if (dup) {
        *message = slice_from_cstr("Error due to duplicate config keys");
        return KERR_INVALID_REQUEST;
    }
    /* The message names them, as Kafka's does; the first few only, so that its size
     * stays bounded whatever the request holds. */
    const char *nulls = NULL;
    int named = 0;
    for (int32_t c = 0; c < n; c++) {
        struct slice name = r->configs[c].name;
        if (r->configs[c].config_operation == CFG_OP_DELETE || r->configs[c].value.ptr)
            continue;
        if (named++ == MAX_NAMED_NULLS)
            nulls = arena_printf(&req->arena, "%s, ...", nulls);
        else if (named <= MAX_NAMED_NULLS)
            nulls = arena_printf(&req->arena, "%s%s%.*s", nulls ? nulls : "", nulls ? ", " : "",
                                 (int)MIN(name.len, 255), (const char *)name.ptr);
    }
    if (nulls) {
        *message = slice_from_cstr(
            arena_printf(&req->arena, "Null value not supported for : %s", nulls));
        return KERR_INVALID_REQUEST;
    }
    return KERR_NONE;
}

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
    bool *dup = REQ_ALLOC(req, bool, resp.responses_count);
    mark_duplicate_resources(req, in.resources, resp.responses_count, dup);
    for (int32_t i = 0; i < resp.responses_count; i++) {
        const resource_req *r = &in.resources[i];
        struct incremental_alter_configs_response_responses *out = &resp.responses[i];
        incremental_alter_configs_response_responses_init(out);
        out->resource_type = r->resource_type;
        out->resource_name = r->resource_name;
        if (dup[i]) {
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = slice_from_cstr("Each resource must appear at most once.");
            continue;
        }
        if ((out->error_code = precheck(req, r, &out->error_message)) != KERR_NONE)
            continue;
        if (r->resource_type != CONFIG_RESOURCE_TOPIC) {
            out->error_code = config_alter_refusal(r->resource_type, &out->error_message);
            continue;
        }
        /* Kafka keeps "" for cluster-wide defaults, which topics do not have. */
        if (r->resource_name.len == 0) {
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = slice_from_cstr("Default topic resources are not allowed.");
            continue;
        }
        const char *bad_name = cluster_topic_name_error(r->resource_name);
        if (bad_name) {
            out->error_code = KERR_INVALID_TOPIC_EXCEPTION;
            out->error_message = slice_from_cstr(bad_name);
            continue;
        }
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
        const char *why = NULL;
        int rc = cluster_alter_topic_configs(s->cluster, r->resource_name, ch, nch, false,
                                             in.validate_only, &why);
        out->error_code = kerr_from_cluster(rc);
        if (rc != 0)
            out->error_message = slice_from_cstr(why ? why : "metadata log write failed");
    }
    REQUEST_RESPOND(req, incremental_alter_configs_response, &resp);
}
