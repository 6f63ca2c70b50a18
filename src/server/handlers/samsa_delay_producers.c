/* SamsaDelayProducers (key 10002), Samsa's own, from a broker that became the leader of
 * target partitions to the leader of their delay partitions: each idempotent producer's
 * last delayed batch for each of them (server_delay_producers), which the target's log
 * does not hold. Not listed in ApiVersions. */
#include "server/internal.h"

void handle_samsa_delay_producers(struct request *req)
{
    struct samsa_delay_producers_request in;
    if (samsa_delay_producers_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) !=
        0) {
        request_malformed(req);
        return;
    }
    struct samsa_delay_producers_response resp;
    samsa_delay_producers_response_init(&resp);
    resp.topics_count = MAX(in.topics_count, 0);
    resp.topics = REQ_ALLOC(req, struct samsa_delay_producers_response_topics, resp.topics_count);
    for (int32_t ti = 0; ti < resp.topics_count; ti++) {
        struct samsa_delay_producers_response_topics *t = &resp.topics[ti];
        samsa_delay_producers_response_topics_init(t);
        t->name = in.topics[ti].name;
        t->partitions_count = MAX(in.topics[ti].partitions_count, 0);
        t->partitions = REQ_ALLOC(req, struct samsa_delay_producers_response_topics_partitions,
                                  t->partitions_count);
        for (int32_t pi = 0; pi < t->partitions_count; pi++) {
            samsa_delay_producers_response_topics_partitions_init(&t->partitions[pi]);
            t->partitions[pi].index = in.topics[ti].partitions[pi];
            server_delay_producers(req, t->name, &t->partitions[pi]);
        }
    }
    REQUEST_RESPOND(req, samsa_delay_producers_response, &resp);
}
