/* DeleteTopics (key 20), v0-v5: removes topics from the metadata and deletes their
 * partition directories. Internal topics cannot be deleted. Answers once every removal
 * is durable in the metadata log. */
#include "server/internal.h"

struct delete_wait {
    struct change_wait w; /* first: respond gets it */
    struct delete_topics_response resp;
};

static void delete_respond(struct change_wait *w)
{
    struct delete_wait *d = (struct delete_wait *)w;
    REQUEST_RESPOND(w->req, delete_topics_response, &d->resp);
}

void handle_delete_topics(struct request *req)
{
    struct server *s = req->srv;
    struct delete_topics_request in;
    if (delete_topics_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    struct delete_wait *d = REQ_ALLOC(req, struct delete_wait, 1);
    change_wait_begin(&d->w, req, delete_respond);
    struct delete_topics_response *resp = &d->resp;
    delete_topics_response_init(resp);
    resp->responses_count = MAX(in.topic_names_count, 0);
    resp->responses =
        REQ_ALLOC(req, struct delete_topics_response_responses, resp->responses_count);
    for (int32_t i = 0; i < resp->responses_count; i++) {
        struct delete_topics_response_responses *r = &resp->responses[i];
        delete_topics_response_responses_init(r);
        struct slice name = in.topic_names[i];
        r->name = name;
        const struct mtopic *t = name.ptr ? cluster_topic_find(s->cluster, name) : NULL;
        if (!t) {
            r->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        if (t->internal) {
            r->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            r->error_message = slice_from_cstr("internal topics cannot be deleted");
            continue;
        }
        void *arg;
        cluster_done_fn done = change_wait_slot(&d->w, &r->error_code, NULL, &arg);
        cluster_delete_topic(s->cluster, name, done, arg);
    }
    change_wait_end(&d->w);
}
