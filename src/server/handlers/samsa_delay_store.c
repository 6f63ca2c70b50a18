/* SamsaDelayStore (key 10001), Samsa's own, from the broker that leads a target
 * partition to the one that leads its delay partition (docs/architecture.md, "Delayed
 * delivery"): the records of a delayed produce, as the delay store keeps them, appended
 * there (server_delay_store) and answered, as their acks ask, with the offset of the
 * first. Not listed in ApiVersions: clients have no business sending it. */
#include "server/internal.h"

static void finish(void *arg)
{
    struct request *req = arg;
    REQUEST_RESPOND(req, samsa_delay_store_response,
                    (struct samsa_delay_store_response *)req->state);
}

void handle_samsa_delay_store(struct request *req)
{
    struct samsa_delay_store_request in;
    if (samsa_delay_store_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct samsa_delay_store_response *resp = REQ_ALLOC(req, struct samsa_delay_store_response, 1);
    samsa_delay_store_response_init(resp);
    req->state = resp;
    struct partition *dp = NULL;
    if (in.acks != -1 && in.acks != 1)
        resp->error_code = KERR_INVALID_REQUIRED_ACKS; /* an answer is always wanted */
    else
        resp->error_code =
            server_delay_store(req, &in, &resp->base_offset, &resp->error_message, &dp);
    if (resp->error_code == KERR_NONE && dp) {
        server_after_append(req->srv, dp, in.acks == -1);
        if (in.acks == -1) {
            struct durable_wait *w = durable_wait_new(finish, req);
            durable_wait_add_acked(w, dp, log_end_offset(dp->log), &resp->error_code);
            durable_wait_submit(req->srv, w);
            return;
        }
    }
    finish(req);
}
