/* ApiVersions (key 18), v0-v4: the APIs and version ranges this broker serves, and (v3+)
 * its features: transaction.version, levels 0-2 supported, finalized at
 * samsa.transaction.version. The Java client uses transaction version 2 when a broker
 * reports it finalized at 2 or more; Kafka leaves a level-0 feature out.
 * An unsupported ApiVersions version is answered by dispatch.c in v0. */
#include "server/internal.h"

void handle_api_versions(struct request *req)
{
    struct api_versions_request in;
    if (api_versions_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        /* Kafka answers a malformed ApiVersions with INVALID_REQUEST rather than closing. */
        struct api_versions_response resp;
        api_versions_response_init(&resp);
        resp.error_code = KERR_INVALID_REQUEST;
        REQUEST_RESPOND(req, api_versions_response, &resp);
        return;
    }
    struct api_versions_response resp;
    api_versions_response_init(&resp);
    resp.api_keys = REQ_ALLOC(req, struct api_versions_response_api_keys, PROTO_API_COUNT);
    resp.api_keys_count = (int32_t)server_fill_api_keys(resp.api_keys, PROTO_API_COUNT);
    static const char feature[] = "transaction.version";
    struct api_versions_response_supported_features *sf =
        REQ_ALLOC(req, struct api_versions_response_supported_features, 1);
    api_versions_response_supported_features_init(sf);
    sf->name = slice_from_cstr(feature);
    sf->min_version = 0;
    sf->max_version = 2;
    resp.supported_features = sf;
    resp.supported_features_count = 1;
    int16_t level = req->srv->cfg->txn_version;
    /* Clients keep the features of the highest epoch any broker reported; the level is
     * fixed for a broker's life, so one epoch will do. */
    resp.finalized_features_epoch = 1;
    if (level > 0) {
        struct api_versions_response_finalized_features *ff =
            REQ_ALLOC(req, struct api_versions_response_finalized_features, 1);
        api_versions_response_finalized_features_init(ff);
        ff->name = slice_from_cstr(feature);
        ff->min_version_level = level;
        ff->max_version_level = level;
        resp.finalized_features = ff;
        resp.finalized_features_count = 1;
    }
    REQUEST_RESPOND(req, api_versions_response, &resp);
}
