/* InitProducerId (key 22), v0-v5: a producer id and epoch for an idempotent producer,
 * or, with a transactional id, from the transaction coordinator (txns.c).
 *
 * As in Kafka, an idempotent producer always gets a fresh id with
 * epoch 0, also when it passes its current id and epoch (v3+, KIP-360): for it, a new
 * id is the epoch bump. Ids come from blocks the metadata log reserves for this node
 * (server_allocate_producer_ids: by the active controller), so no id is handed out twice,
 * across restarts and brokers. */
#include "server/internal.h"

#include <stdlib.h>

/* A request waiting while the next block is reserved; answered in arrival order. Either
 * an idempotent producer's request (req) or the transaction coordinator's ask (done). */
struct producer_id_wait {
    struct producer_id_wait *next;
    struct request *req;
    void (*done)(void *arg, int16_t error, int64_t producer_id);
    void *arg;
};

static void answer(struct request *req, int16_t error, int64_t producer_id)
{
    struct init_producer_id_response resp;
    init_producer_id_response_init(&resp);
    resp.error_code = error;
    resp.producer_id = error ? -1 : producer_id;
    resp.producer_epoch = error ? -1 : 0;
    if (!error)
        say_debug("server", "producer id %lld (epoch 0) handed out", (long long)producer_id);
    REQUEST_RESPOND(req, init_producer_id_response, &resp);
}

static void serve_waiting(struct server *s);

static void hand_out(struct producer_id_wait *pw, int16_t error, int64_t producer_id)
{
    if (pw->req) {
        answer(pw->req, error, producer_id);
        return;
    }
    pw->done(pw->arg, error, producer_id);
    free(pw);
}

static void block_reserved(void *arg, const struct cluster_result *res)
{
    struct server *s = arg;
    s->producer_ids_reserving = false;
    if (res->err != CLUSTER_OK) {
        say_error("server", "cannot reserve producer ids: %s",
                  res->err == CLUSTER_ERR_LIMIT ? "producer ids exhausted"
                  : res->why                    ? res->why
                                                : "the metadata log could not be written");
        /* Retriable for clients: they ask again. */
        while (s->producer_id_waits) {
            struct producer_id_wait *pw = s->producer_id_waits;
            s->producer_id_waits = pw->next;
            hand_out(pw, KERR_COORDINATOR_NOT_AVAILABLE, -1);
        }
        s->producer_id_waits_tail = NULL;
        return;
    }
    s->next_producer_id = res->first_producer_id;
    s->producer_id_block_end = res->first_producer_id + SERVER_PRODUCER_ID_BLOCK;
    serve_waiting(s);
}

/* Hands out ids from the current block to the waiting requests, and reserves the next
 * block (one reservation at a time) when they run out. */
static void serve_waiting(struct server *s)
{
    while (s->producer_id_waits && s->next_producer_id < s->producer_id_block_end) {
        struct producer_id_wait *pw = s->producer_id_waits;
        s->producer_id_waits = pw->next;
        if (!s->producer_id_waits)
            s->producer_id_waits_tail = NULL;
        hand_out(pw, KERR_NONE, s->next_producer_id++);
    }
    if (s->producer_id_waits && !s->producer_ids_reserving) {
        s->producer_ids_reserving = true;
        server_allocate_producer_ids(s, block_reserved, s);
    }
}

static void enqueue(struct server *s, struct producer_id_wait *pw)
{
    if (s->producer_id_waits_tail)
        s->producer_id_waits_tail->next = pw;
    else
        s->producer_id_waits = pw;
    s->producer_id_waits_tail = pw;
    serve_waiting(s);
}

void server_new_producer_id(struct server *s,
                            void (*done)(void *arg, int16_t error, int64_t producer_id), void *arg)
{
    struct producer_id_wait *pw = xcalloc(1, sizeof *pw);
    pw->done = done;
    pw->arg = arg;
    enqueue(s, pw);
}

void handle_init_producer_id(struct request *req)
{
    struct server *s = req->srv;
    struct init_producer_id_request in;
    if (init_producer_id_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    if (in.transactional_id.ptr) {
        server_txn_init_producer_id(req, &in);
        return;
    }
    struct producer_id_wait *pw = REQ_ALLOC(req, struct producer_id_wait, 1);
    pw->req = req;
    enqueue(s, pw);
}
