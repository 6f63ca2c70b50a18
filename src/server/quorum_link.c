/* The metadata quorum's links between controllers (a quorum of several voters only).
 *
 * Out: cluster/ hands over Raft messages for other voters (cluster_send_fn). Each goes
 * as a SamsaRaft request (src/proto/schema/samsa_raft.schema) on a connection of its own
 * to that voter's controller listener (controller.quorum.voters), opened on demand and
 * again after it closes, at most once per RECONNECT_MS per voter. A message that finds
 * no open connection, or one that is backed up, is dropped: Raft sends again (every
 * heartbeat, and the leader re-sends unacknowledged entries).
 *
 * In: the controller listener (the listener named in controller.listener.names) takes
 * SamsaRaft requests and hands their messages to cluster/; every other request on it is
 * served as on the client listener. The client listener does not serve SamsaRaft (it is
 * not in dispatch's table), so clients can neither see nor forge quorum traffic.
 *
 * The quorum's clock: a timer calls cluster_tick every election timeout / ELECTION_TICKS
 * (controller.quorum.election.timeout.ms, Kafka's default 1000 ms: a tick of 100 ms, a
 * heartbeat per tick, elections after 1 to 2 s without a leader). */
#include "server/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ELECTION_TICKS 10
#define RECONNECT_MS 100
#define CONNECT_TIMEOUT_MS 3000
#define MAX_UNSENT_BYTES (128u << 20)  /* a snapshot message or two */
#define MAX_RESPONSE_BYTES (1u << 20)  /* responses hold one error code */
#define MAX_REQUEST_BYTES (100u << 20) /* RAFT_MAX_MSG_BYTES and the header */
#define SAMSA_RAFT_API_KEY 10000

struct quorum_peer {
    struct quorum_link *link;
    int32_t id;
    const char *host; /* the config's */
    int32_t port;
    struct net_client *client; /* NULL: not connected */
    int64_t next_connect_ms;
    int32_t correlation_id;
};

struct quorum_link {
    struct server *s;
    struct net_listener *listener;
    uint64_t tick_timer;
    int64_t tick_ms;
    struct quorum_peer peers[BROKER_MAX_VOTERS];
    size_t peer_count;
    struct buf frame; /* the request being encoded */
    char client_id[32];
    bool registering; /* this broker's registration is being written */
};

static void on_peer_frame(struct net_client *cl, struct slice frame, void *arg)
{
    (void)cl;
    struct quorum_peer *p = arg;
    struct reader r;
    rd_init(&r, frame.ptr, frame.len);
    (void)rd_i32(&r);     /* correlation id */
    (void)rd_uvarint(&r); /* the flexible response header's tagged fields (none) */
    struct samsa_raft_response resp;
    struct arena a;
    arena_init(&a);
    if (samsa_raft_response_decode(&r, 0, &a, &resp) == 0 && resp.error_code != KERR_NONE)
        say_error_ratelimited("quorum", "voter %d refused a Raft message: %s", p->id,
                              kafka_error_name(resp.error_code));
    arena_free(&a);
}

static void on_peer_close(struct net_client *cl, int err, void *arg)
{
    (void)cl;
    struct quorum_peer *p = arg;
    p->client = NULL;
    if (err != -ECANCELED)
        say_debug("quorum", "connection to voter %d at %s:%d closed: %s", p->id, p->host, p->port,
                  err ? strerror(-err) : "by the peer");
}

static const struct net_client_handler peer_handler = {
    .on_frame = on_peer_frame,
    .on_close = on_peer_close,
};

static struct quorum_peer *peer_find(struct quorum_link *l, int32_t id)
{
    for (size_t i = 0; i < l->peer_count; i++)
        if (l->peers[i].id == id)
            return &l->peers[i];
    return NULL;
}

static bool peer_connect(struct quorum_peer *p)
{
    struct quorum_link *l = p->link;
    int64_t now = net_loop_now_ms(l->s->loop);
    if (now < p->next_connect_ms)
        return false;
    p->next_connect_ms = now + RECONNECT_MS;
    int rc = net_client_connect(l->s->loop, p->host, p->port, CONNECT_TIMEOUT_MS,
                                MAX_RESPONSE_BYTES, &peer_handler, p, &p->client);
    if (rc != 0) {
        say_warn_ratelimited("quorum", "cannot connect to voter %d at %s:%d: %s", p->id, p->host,
                             p->port, strerror(-rc));
        p->client = NULL;
        return false;
    }
    net_client_set_max_unsent(p->client, MAX_UNSENT_BYTES);
    return true;
}

static void send_message(void *arg, int32_t to, const uint8_t *msg, size_t len)
{
    struct quorum_link *l = arg;
    struct quorum_peer *p = peer_find(l, to);
    if (!p || (!p->client && !peer_connect(p)))
        return;
    struct request_header h = {.api_key = SAMSA_RAFT_API_KEY,
                               .api_version = 0,
                               .correlation_id = p->correlation_id++,
                               .client_id = slice_from_cstr(l->client_id)};
    buf_reset(&l->frame);
    proto_request_header_encode(&l->frame, &h);
    struct samsa_raft_request req;
    samsa_raft_request_init(&req);
    req.cluster_id = slice_from_cstr(cluster_id(l->s->cluster));
    req.message = (struct slice){msg, len};
    samsa_raft_request_encode(&l->frame, 0, &req);
    if (net_client_send(p->client, l->frame.data, l->frame.len) != 0)
        say_debug("quorum", "dropped a Raft message to voter %d: its connection is backed up", to);
    if (l->frame.cap > (1u << 20))
        buf_free(&l->frame); /* a snapshot's message: do not keep its memory */
}

/* ---- the controller listener ---- */

static void answer(struct net_reply *r, int32_t correlation_id, int16_t error)
{
    struct buf *b = net_reply_buf(r);
    proto_response_header_encode(b, SAMSA_RAFT_API_KEY, 0, correlation_id);
    struct samsa_raft_response resp;
    samsa_raft_response_init(&resp);
    resp.error_code = error;
    samsa_raft_response_encode(b, 0, &resp);
    net_reply_send(r);
}

static void on_controller_request(struct net_conn *c, struct slice frame, struct net_reply *r,
                                  void *arg)
{
    struct quorum_link *l = arg;
    struct reader rd;
    rd_init(&rd, frame.ptr, frame.len);
    struct request_header hdr;
    if (frame.len < 2 || be16_read(frame.ptr) != SAMSA_RAFT_API_KEY) {
        server_on_request(c, frame, r, l->s); /* any other request, as on the client listener */
        return;
    }
    struct samsa_raft_request req;
    struct arena a;
    arena_init(&a);
    if (proto_request_header_decode(&rd, &hdr) != PROTO_HDR_OK ||
        samsa_raft_request_decode(&rd, hdr.api_version, &a, &req) != 0) {
        say_warn("quorum", "closing connection from %s: malformed SamsaRaft request",
                 net_conn_peer(c));
        arena_free(&a);
        net_reply_drop(r);
        net_conn_close(c);
        return;
    }
    int16_t error = KERR_NONE;
    const char *ours = cluster_id(l->s->cluster);
    if (req.cluster_id.len != strlen(ours) ||
        memcmp(req.cluster_id.ptr, ours, req.cluster_id.len)) {
        say_error_ratelimited(
            "quorum", "%s sent a Raft message for cluster %.*s; this is cluster %s",
            net_conn_peer(c), (int)req.cluster_id.len, (const char *)req.cluster_id.ptr, ours);
        error = KERR_INCONSISTENT_CLUSTER_ID;
    } else if (!l->s->stopping) {
        cluster_receive(l->s->cluster, req.message.ptr, req.message.len);
    }
    arena_free(&a);
    answer(r, hdr.correlation_id, error);
}

static void on_controller_close(struct net_conn *c, void *arg)
{
    struct quorum_link *l = arg;
    server_on_close(c, l->s);
}

/* ---- registering this broker ----
 * Until brokers register through the active controller (BrokerRegistration), a node
 * registers itself, or its new endpoint, while it is the active controller. */
static void registered(void *arg, const struct cluster_result *res)
{
    struct quorum_link *l = arg;
    l->registering = false;
    if (res->err != CLUSTER_OK && res->err != CLUSTER_ERR_NOT_CONTROLLER)
        say_warn("quorum", "cannot register this broker: %s", res->why ? res->why : "");
}

static void register_self(struct quorum_link *l)
{
    struct server *s = l->s;
    const struct broker_config *cfg = s->cfg;
    if (l->registering || s->stopping || cluster_controller_id(s->cluster) != cfg->node_id)
        return;
    const struct mbroker *b = cluster_broker_find(s->cluster, cfg->node_id);
    bool same_rack = b && ((!b->rack && !cfg->rack) ||
                           (b->rack && cfg->rack && strcmp(b->rack, cfg->rack) == 0));
    if (b && b->port == s->advertised_port && strcmp(b->host, cfg->advertised_host) == 0 &&
        same_rack)
        return;
    l->registering = true;
    cluster_register_broker(s->cluster, cfg->node_id, cfg->advertised_host, s->advertised_port,
                            cfg->rack, registered, l);
}

static void on_tick(struct net_loop *loop, void *arg)
{
    struct quorum_link *l = arg;
    l->tick_timer = net_timer_add(loop, l->tick_ms, on_tick, l);
    cluster_tick(l->s->cluster);
    register_self(l);
}

int server_quorum_link_start(struct server *s)
{
    const struct broker_config *cfg = s->cfg;
    if (cfg->voter_count <= 1)
        return 0;
    struct quorum_link *l = xcalloc(1, sizeof *l);
    l->s = s;
    buf_init(&l->frame);
    snprintf(l->client_id, sizeof l->client_id, "samsa-controller-%d", cfg->node_id);
    for (size_t i = 0; i < cfg->voter_count; i++) {
        if (cfg->voters[i].id == cfg->node_id)
            continue;
        l->peers[l->peer_count++] = (struct quorum_peer){.link = l,
                                                         .id = cfg->voters[i].id,
                                                         .host = cfg->voters[i].host,
                                                         .port = cfg->voters[i].port};
    }
    s->quorum_link = l;
    struct net_server_config nc;
    net_server_config_default(&nc);
    nc.max_frame_bytes = MAX_REQUEST_BYTES;
    nc.idle_timeout_ms = cfg->connections_max_idle_ms;
    struct net_handler h = {.on_request = on_controller_request, .on_close = on_controller_close};
    int rc =
        net_listen(s->loop, cfg->controller_host, cfg->controller_port, &nc, &h, l, &l->listener);
    if (rc != 0) {
        say_error("quorum", "cannot listen on the controller listener %s:%d: %s",
                  cfg->controller_host, cfg->controller_port, strerror(-rc));
        return -1;
    }
    cluster_set_transport(s->cluster, send_message, l);
    l->tick_ms = MAX(cfg->election_timeout_ms / ELECTION_TICKS, 1);
    l->tick_timer = net_timer_add(s->loop, l->tick_ms, on_tick, l);
    say_info("quorum", "controller listener on %s:%d; metadata quorum of %zu voters",
             *cfg->controller_host ? cfg->controller_host : "0.0.0.0",
             net_listener_port(l->listener), cfg->voter_count);
    return 0;
}

void server_quorum_link_stop(struct server *s)
{
    struct quorum_link *l = s->quorum_link;
    if (!l)
        return;
    if (l->registering)
        cluster_forget(s->cluster, l);
    cluster_set_transport(s->cluster, NULL, NULL);
    net_timer_cancel(s->loop, l->tick_timer);
    if (l->listener)
        net_listener_close(l->listener);
    for (size_t i = 0; i < l->peer_count; i++)
        if (l->peers[i].client)
            net_client_close(l->peers[i].client);
    buf_free(&l->frame);
    free(l);
    s->quorum_link = NULL;
}
