/* Requests this broker sends to other brokers' client listeners (internal.h, "requests
 * to other brokers"): one net_rpc per broker, opened on the first request to it, to the
 * address its registration in the metadata gives; a broker that registers another
 * address gets a new one. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 5000
#define MAX_RESPONSE_BYTES (100 * 1024 * 1024)

struct peer {
    int32_t node;
    struct net_rpc *rpc;
};

struct peers {
    struct peer *v;
    size_t n, cap;
};

/* A request in flight: what its response is read as. */
struct peer_call {
    int16_t api_key, api_version;
    peer_done_fn done;
    void *arg;
};

static void call_done(void *arg, int err, struct slice response)
{
    struct peer_call *c = arg;
    struct reader r;
    rd_init(&r, response.ptr, response.len);
    if (err == 0) {
        (void)proto_response_header_decode(&r, c->api_key, c->api_version);
        if (r.err)
            err = -EBADMSG;
    }
    c->done(c->arg, err, err == 0 ? &r : NULL);
    free(c);
}

/* The rpc to node, opened (or opened again, at its current address) as needed; NULL
 * when the broker is not known. */
static struct net_rpc *peer_rpc(struct server *s, int32_t node)
{
    const struct mbroker *b = cluster_broker_find(s->cluster, node);
    if (!b)
        return NULL;
    if (!s->peers)
        s->peers = xcalloc(1, sizeof *s->peers);
    struct peers *ps = s->peers;
    struct peer *p = NULL;
    for (size_t i = 0; i < ps->n && !p; i++)
        if (ps->v[i].node == node)
            p = &ps->v[i];
    if (p &&
        (strcmp(net_rpc_peer_host(p->rpc), b->host) != 0 || net_rpc_peer_port(p->rpc) != b->port)) {
        net_rpc_close(p->rpc); /* it moved: what was in flight there fails */
        p->rpc = NULL;
    }
    if (!p) {
        if (ps->n == ps->cap) {
            ps->cap = ps->cap ? 2 * ps->cap : 8;
            ps->v = xrealloc(ps->v, ps->cap * sizeof *ps->v);
        }
        p = &ps->v[ps->n++];
        *p = (struct peer){node, NULL};
    }
    if (!p->rpc && net_rpc_open(s->loop, b->host, b->port, CONNECT_TIMEOUT_MS, MAX_RESPONSE_BYTES,
                                &p->rpc) != 0)
        p->rpc = NULL;
    return p->rpc;
}

int server_peer_send(struct server *s, int32_t node, struct buf *frame, int64_t timeout_ms,
                     peer_done_fn done, void *arg)
{
    if (s->stopping)
        return -ECANCELED;
    if (frame->len < 8)
        return -EINVAL;
    struct net_rpc *rpc = peer_rpc(s, node);
    if (!rpc)
        return -EHOSTUNREACH;
    struct peer_call *c = xcalloc(1, sizeof *c);
    *c = (struct peer_call){(int16_t)be16_read(frame->data), (int16_t)be16_read(frame->data + 2),
                            done, arg};
    int rc = net_rpc_send(rpc, frame->data, frame->len, timeout_ms, call_done, c);
    if (rc != 0)
        free(c);
    return rc;
}

void server_peers_stop(struct server *s)
{
    struct peers *ps = s->peers;
    if (!ps)
        return;
    s->peers = NULL;
    for (size_t i = 0; i < ps->n; i++)
        net_rpc_close(ps->v[i].rpc); /* what is in flight fails with -ECANCELED */
    free(ps->v);
    free(ps);
}
