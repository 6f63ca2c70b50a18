/* Requests and their responses over one outbound connection (net.h, "requests to a
 * peer"): correlation ids, in-order matching, deadlines, and a reconnect on the next
 * request after the connection closed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

#define CORRELATION_AT 4 /* in a Kafka request header: api key (2), version (2), then this */

struct rpc_call {
    int32_t correlation_id;
    int64_t deadline_ms; /* net_loop_now_ms's clock */
    net_rpc_done done;
    void *arg;
};

struct net_rpc {
    struct net_loop *loop;
    char *host;
    int port;
    int64_t connect_timeout_ms, max_frame_bytes;
    struct net_client *client; /* NULL: none now; the next send connects */
    /* Calls in flight, in the order sent: responses come back in that order. */
    struct rpc_call *calls;
    size_t n, cap;
    int32_t next_correlation;
    uint64_t timer; /* armed for the earliest deadline; 0: none */
    /* Callbacks of this rpc running now: a net_rpc_close inside one is finished (the
     * rpc freed) when the outermost returns. */
    int depth;
    bool closed;
};

int net_rpc_open(struct net_loop *loop, const char *host, int port, int64_t connect_timeout_ms,
                 int64_t max_frame_bytes, struct net_rpc **out)
{
    if (!host || port <= 0 || port > 65535 || max_frame_bytes <= 0 || max_frame_bytes > INT32_MAX)
        return -EINVAL;
    struct net_rpc *rpc = xcalloc(1, sizeof *rpc);
    rpc->loop = loop;
    rpc->host = xstrdup(host);
    rpc->port = port;
    rpc->connect_timeout_ms = connect_timeout_ms;
    rpc->max_frame_bytes = max_frame_bytes;
    *out = rpc;
    return 0;
}

static void rpc_free(struct net_rpc *rpc)
{
    free(rpc->calls);
    free(rpc->host);
    free(rpc);
}

/* Leaves a callback of rpc: frees it if it was closed meanwhile. True if it is gone. */
static bool leave(struct net_rpc *rpc)
{
    if (--rpc->depth > 0 || !rpc->closed)
        return false;
    rpc_free(rpc);
    return true;
}

static void on_timer(struct net_loop *loop, void *arg);

static void arm_timer(struct net_rpc *rpc)
{
    if (rpc->timer)
        net_timer_cancel(rpc->loop, rpc->timer);
    rpc->timer = 0;
    if (rpc->n == 0 || rpc->closed)
        return;
    int64_t first = INT64_MAX;
    for (size_t i = 0; i < rpc->n; i++)
        first = MIN(first, rpc->calls[i].deadline_ms);
    rpc->timer = net_timer_add(rpc->loop, first - net_loop_now_ms(rpc->loop), on_timer, rpc);
}

/* Ends every call in flight: those past their deadline with -ETIMEDOUT when timing_out,
 * the others with err. The calls are taken out first, so a callback may send anew. */
static void fail_all(struct net_rpc *rpc, int err, bool timing_out)
{
    size_t n = rpc->n;
    struct rpc_call *calls = rpc->calls;
    rpc->calls = NULL;
    rpc->n = rpc->cap = 0;
    arm_timer(rpc);
    int64_t now = net_loop_now_ms(rpc->loop);
    rpc->depth++;
    for (size_t i = 0; i < n; i++)
        calls[i].done(calls[i].arg, timing_out && calls[i].deadline_ms <= now ? -ETIMEDOUT : err,
                      SLICE_NULL);
    free(calls);
    leave(rpc);
}

static void detach(struct net_rpc *rpc);

static void on_frame(struct net_client *cl, struct slice frame, void *arg)
{
    struct net_rpc *rpc = arg;
    if (rpc->n == 0 || frame.len < 4 ||
        (int32_t)be32_read(frame.ptr) != rpc->calls[0].correlation_id) {
        /* Not the answer to the oldest request: the peer is not speaking Kafka to us. */
        rpc->depth++;
        detach(rpc);
        fail_all(rpc, -EBADMSG, false);
        leave(rpc);
        return;
    }
    struct rpc_call call = rpc->calls[0];
    rpc->n--;
    memmove(rpc->calls, rpc->calls + 1, rpc->n * sizeof *rpc->calls);
    arm_timer(rpc);
    rpc->depth++;
    call.done(call.arg, 0, frame);
    leave(rpc);
}

static void on_close(struct net_client *cl, int err, void *arg)
{
    struct net_rpc *rpc = arg;
    if (cl != rpc->client)
        return; /* closed by detach: its calls are ended there */
    rpc->client = NULL;
    fail_all(rpc, err ? err : -ECONNRESET, false);
}

/* Closes the connection without its on_close ending the calls (the caller does). */
static void detach(struct net_rpc *rpc)
{
    struct net_client *cl = rpc->client;
    rpc->client = NULL;
    if (cl)
        net_client_close(cl);
}

static void on_timer(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct net_rpc *rpc = arg;
    rpc->timer = 0;
    /* A request not answered in time holds up every later one (answers come in order):
     * the connection goes, as a Kafka client drops it. */
    rpc->depth++;
    detach(rpc);
    fail_all(rpc, -ECONNRESET, true);
    leave(rpc);
}

static const struct net_client_handler rpc_client_handler = {
    .on_frame = on_frame,
    .on_close = on_close,
};

int net_rpc_send(struct net_rpc *rpc, uint8_t *frame, size_t len, int64_t timeout_ms,
                 net_rpc_done done, void *arg)
{
    if (rpc->closed)
        return -ECANCELED;
    if (len < CORRELATION_AT + 4)
        return -EINVAL;
    if (!rpc->client) {
        int rc = net_client_connect(rpc->loop, rpc->host, rpc->port, rpc->connect_timeout_ms,
                                    rpc->max_frame_bytes, &rpc_client_handler, rpc, &rpc->client);
        if (rc != 0) {
            rpc->client = NULL;
            return rc;
        }
    }
    int32_t id = rpc->next_correlation;
    rpc->next_correlation = id == INT32_MAX ? 0 : id + 1;
    be32_write(frame + CORRELATION_AT, (uint32_t)id);
    int rc = net_client_send(rpc->client, frame, len);
    if (rc != 0)
        return rc;
    if (rpc->n == rpc->cap) {
        rpc->cap = rpc->cap ? 2 * rpc->cap : 8;
        rpc->calls = xrealloc(rpc->calls, rpc->cap * sizeof *rpc->calls);
    }
    rpc->calls[rpc->n++] =
        (struct rpc_call){id, net_loop_now_ms(rpc->loop) + MAX(timeout_ms, 0), done, arg};
    arm_timer(rpc);
    return 0;
}

size_t net_rpc_in_flight(const struct net_rpc *rpc)
{
    return rpc->n;
}

const char *net_rpc_peer_host(const struct net_rpc *rpc)
{
    return rpc->host;
}

int net_rpc_peer_port(const struct net_rpc *rpc)
{
    return rpc->port;
}

void net_rpc_close(struct net_rpc *rpc)
{
    if (!rpc || rpc->closed)
        return;
    rpc->depth++;
    rpc->closed = true; /* a callback below cannot send any more */
    detach(rpc);
    fail_all(rpc, -ECANCELED, false); /* also cancels the timer */
    leave(rpc);
}
