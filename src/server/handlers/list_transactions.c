/* ListTransactions (key 66), v0-v1 (KIP-664, KIP-994): the transactional ids this node
 * coordinates, filtered by state names (unknown names are listed back), producer ids
 * and, v1, transactions running for at least DurationFilter ms. A node that coordinates
 * nothing answers an empty list, as Kafka's brokers do; clients ask every broker. */
#include "server/internal.h"

#include <string.h>

typedef struct list_transactions_response_transaction_states txn_entry;

struct list_ctx {
    struct request *req;
    const struct list_transactions_request *in;
    int64_t now_ms;
    txn_entry *out;
    size_t n, cap;
};

static bool state_known(struct slice name)
{
    for (int st = TXN_EMPTY; st <= TXN_PREPARE_EPOCH_FENCE; st++)
        if (slice_eq_cstr(name, txn_state_name((enum txn_state)st)))
            return true;
    return false;
}

static bool wanted(const struct list_ctx *l, const struct txn_meta *m)
{
    const struct list_transactions_request *in = l->in;
    bool state_ok = in->state_filters_count <= 0;
    for (int32_t i = 0; !state_ok && i < in->state_filters_count; i++)
        state_ok = slice_eq_cstr(in->state_filters[i], txn_state_name(m->state));
    bool pid_ok = in->producer_id_filters_count <= 0;
    for (int32_t i = 0; !pid_ok && i < in->producer_id_filters_count; i++)
        pid_ok = in->producer_id_filters[i] == m->producer_id;
    bool long_enough = in->duration_filter < 0 ||
                       (m->start_ms >= 0 && l->now_ms - m->start_ms >= in->duration_filter);
    return state_ok && pid_ok && long_enough;
}

static void collect(void *arg, const struct txn_meta *m)
{
    struct list_ctx *l = arg;
    if (!wanted(l, m))
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        txn_entry *bigger = REQ_ALLOC(l->req, txn_entry, cap);
        if (l->n)
            memcpy(bigger, l->out, l->n * sizeof *bigger);
        l->out = bigger;
        l->cap = cap;
    }
    txn_entry *e = &l->out[l->n++];
    list_transactions_response_transaction_states_init(e);
    e->transactional_id = (struct slice){
        arena_memdup(&l->req->arena, m->transactional_id.ptr, m->transactional_id.len),
        m->transactional_id.len};
    e->producer_id = m->producer_id;
    e->transaction_state = slice_from_cstr(txn_state_name(m->state));
}

void handle_list_transactions(struct request *req)
{
    struct server *s = req->srv;
    struct list_transactions_request in;
    if (list_transactions_request_decode(&req->body, req->hdr.api_version, &req->arena, &in) != 0) {
        request_malformed(req);
        return;
    }
    server_txns_poll(s);
    struct list_transactions_response resp;
    list_transactions_response_init(&resp);
    int32_t nf = MAX(in.state_filters_count, 0);
    resp.unknown_state_filters = REQ_ALLOC(req, struct slice, MAX(nf, 1));
    for (int32_t i = 0; i < nf; i++)
        if (!state_known(in.state_filters[i]))
            resp.unknown_state_filters[resp.unknown_state_filters_count++] = in.state_filters[i];
    struct list_ctx l = {.req = req, .in = &in, .now_ms = time_wall_ms()};
    if (s->txns)
        txn_each(s->txns, collect, &l);
    resp.transaction_states = l.out;
    resp.transaction_states_count = (int32_t)l.n;
    REQUEST_RESPOND(req, list_transactions_response, &resp);
}
