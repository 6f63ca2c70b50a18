/* ApiVersions (key 18), v0-v4: the APIs and version ranges this broker serves.
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
    REQUEST_RESPOND(req, api_versions_response, &resp);
}
