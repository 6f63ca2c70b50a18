/* ApiVersions (key 18), v0-v4: the APIs and version ranges this broker serves.
 * An unsupported ApiVersions version is answered by dispatch.c in v0. */
#include "server/internal.h"

void handle_api_versions(struct request *req) {
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
    resp.api_keys_count = PROTO_API_COUNT;
    resp.api_keys = REQ_ALLOC(req, struct api_versions_response_api_keys, PROTO_API_COUNT);
    for (size_t i = 0; i < PROTO_API_COUNT; i++) {
        struct api_versions_response_api_keys *k = &resp.api_keys[i];
        api_versions_response_api_keys_init(k);
        k->api_key = proto_apis[i].api_key;
        k->min_version = proto_apis[i].min_version;
        k->max_version = proto_apis[i].max_version;
    }
    REQUEST_RESPOND(req, api_versions_response, &resp);
}
