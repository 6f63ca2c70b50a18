/* Request dispatch: frame -> header -> the handler for its API.
 *
 * Kafka's rules for bad frames, which we follow: a header that cannot be parsed, an
 * unknown API key or an unsupported version closes the connection (the client cannot
 * parse any answer we could give), except ApiVersions, which answers an unsupported
 * version with UNSUPPORTED_VERSION in a v0 response so clients can fall back. */
#include "server/internal.h"

#include <stdlib.h>
#include <string.h>

typedef void (*handler_fn)(struct request *);

/* Samsa's own API keys start here, far above Kafka's (proto/schema/samsa_raft.schema). */
#define SAMSA_API_KEY_FIRST 10000

static handler_fn handler_for(int16_t api_key)
{
    switch (api_key) {
#define X(key, name)                                                                               \
    case key: return handle_##name;
        SAMSA_HANDLERS(X)
#undef X
    default: return NULL;
    }
}

void request_free(struct request *req)
{
    arena_free(&req->arena);
    free(req->frame_block);
    free(req);
}

struct buf *request_response_begin(struct request *req)
{
    struct buf *b = net_reply_buf(req->reply);
    proto_response_header_encode(b, req->hdr.api_key, req->hdr.api_version,
                                 req->hdr.correlation_id);
    return b;
}

void request_response_end(struct request *req)
{
    net_reply_send(req->reply);
    request_free(req);
}

void request_drop(struct request *req)
{
    net_reply_drop(req->reply);
    request_free(req);
}

/* ApiVersions with a version we do not know: Kafka answers in v0 with the error and
 * its version list, so the client can retry with a version both sides know. */
static void answer_unsupported_api_versions(struct net_reply *r, int32_t correlation_id)
{
    struct buf *b = net_reply_buf(r);
    proto_response_header_encode(b, 18, 0, correlation_id);
    struct api_versions_response resp;
    api_versions_response_init(&resp);
    resp.error_code = KERR_UNSUPPORTED_VERSION;
    struct api_versions_response_api_keys keys[PROTO_API_COUNT];
    resp.api_keys = keys;
    resp.api_keys_count = (int32_t)server_fill_api_keys(keys, PROTO_API_COUNT);
    api_versions_response_encode(b, 0, &resp);
    net_reply_send(r);
}

size_t server_fill_api_keys(struct api_versions_response_api_keys *keys, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < PROTO_API_COUNT && n < max; i++) {
        if (!handler_for(proto_apis[i].api_key))
            continue; /* a schema without a handler is not served */
        if (proto_apis[i].api_key >= SAMSA_API_KEY_FIRST)
            continue; /* Samsa's own, between brokers: clients need not know */
        api_versions_response_api_keys_init(&keys[n]);
        keys[n].api_key = proto_apis[i].api_key;
        keys[n].min_version = proto_apis[i].min_version;
        keys[n].max_version = proto_apis[i].max_version;
        n++;
    }
    return n;
}

/* The group APIs a client sends only to the coordinator FindCoordinator named, and that
 * cannot answer without one (JoinGroup, SyncGroup, Heartbeat and LeaveGroup answer
 * COORDINATOR_LOAD_IN_PROGRESS themselves); see coordinator_or_wait. */
static bool needs_group_coordinator(int16_t api_key)
{
    switch (api_key) {
    case 8:  /* OffsetCommit */
    case 9:  /* OffsetFetch */
    case 28: /* TxnOffsetCommit */
    case 15: /* DescribeGroups */
    case 42: /* DeleteGroups */
    case 47: /* OffsetDelete */ return true;
    default: return false;
    }
}

/* The metadata changes only the active controller makes. A broker that is not it
 * forwards them there, as a Kafka broker forwards them to its controller (KIP-590), so
 * clients need not find the controller; requests that came in on the controller
 * listener are answered here (NOT_CONTROLLER when this node does not lead), as Kafka's
 * controllers answer them. */
static bool forwarded_to_controller(int16_t api_key)
{
    switch (api_key) {
    case 19: /* CreateTopics */
    case 20: /* DeleteTopics */
    case 33: /* AlterConfigs */
    case 37: /* CreatePartitions */
    case 43: /* ElectLeaders */
    case 44: /* IncrementalAlterConfigs */
    case 45: /* AlterPartitionReassignments */
    case 46: /* ListPartitionReassignments */ return true;
    default: return false;
    }
}

/* Forwarding waits out an election: while no controller is known, or the one asked
 * went away, it asks again every FORWARD_RETRY_MS, for FORWARD_DEADLINE_MS from the
 * request's arrival (Kafka's clients give a CreateTopics 30 s by default); after that,
 * or when this node becomes the controller, the request is served here. */
#define FORWARD_RETRY_MS 100
#define FORWARD_DEADLINE_MS 15000

static void forward_or_serve(struct request *req);

/* A broker of a cluster starts its group coordinator once __consumer_offsets exists and
 * its partitions are open, about a second after the cluster forms; FindCoordinator may
 * name it before that. A request that needs the coordinator waits for it (asking again
 * every FORWARD_RETRY_MS) for up to COORDINATOR_WAIT_MS; then, or on a node with no
 * broker role, the connection is closed as before. */
#define COORDINATOR_WAIT_MS 10000

static void coordinator_or_wait(struct request *req);

static void coordinator_retry(struct net_loop *loop, void *arg)
{
    (void)loop;
    coordinator_or_wait(arg);
}

static void coordinator_or_wait(struct request *req)
{
    struct server *s = req->srv;
    if (s->groups) {
        handler_for(req->hdr.api_key)(req);
        return;
    }
    if (s->cfg->broker && !s->stopping &&
        net_loop_now_ms(s->loop) - req->start_ms < COORDINATOR_WAIT_MS) {
        net_timer_add(s->loop, FORWARD_RETRY_MS, coordinator_retry, req);
        return;
    }
    struct net_conn *c = net_reply_conn(req->reply);
    say_warn("server",
             "closing connection from %s: api key %d needs a group coordinator, and this "
             "node has none",
             c ? net_conn_peer(c) : "?", req->hdr.api_key);
    request_drop(req);
    if (c)
        net_conn_close(c);
}

static void forward_retry(struct net_loop *loop, void *arg)
{
    (void)loop;
    forward_or_serve(arg);
}

static void forward_failed(struct request *req)
{
    net_timer_add(req->srv->loop, FORWARD_RETRY_MS, forward_retry, req);
}

/* Forwards req to the active controller, whose answer is relayed; while that cannot be
 * done (see above), asks again later; then serves it here. */
static void forward_or_serve(struct request *req)
{
    struct server *s = req->srv;
    bool waiting = !s->stopping && cluster_controller_id(s->cluster) != s->cfg->node_id &&
                   net_loop_now_ms(s->loop) - req->start_ms < FORWARD_DEADLINE_MS;
    if (waiting && !server_forward_to_controller(s, req, forward_failed))
        forward_failed(req); /* no controller known, or not reachable: an election? */
    if (!waiting)
        handler_for(req->hdr.api_key)(req);
}

static void dispatch(struct net_conn *c, struct slice frame, struct net_reply *r, struct server *s,
                     bool controller_listener);

void server_on_request(struct net_conn *c, struct slice frame, struct net_reply *r, void *arg)
{
    dispatch(c, frame, r, arg, false);
}

void server_on_controller_listener_request(struct net_conn *c, struct slice frame,
                                           struct net_reply *r, struct server *s)
{
    dispatch(c, frame, r, s, true);
}

static void dispatch(struct net_conn *c, struct slice frame, struct net_reply *r, struct server *s,
                     bool controller_listener)
{
    struct reader rd;
    rd_init(&rd, frame.ptr, frame.len);
    struct request_header hdr;
    int rc = proto_request_header_decode(&rd, &hdr);
    if (rc == PROTO_HDR_MALFORMED) {
        say_warn("server", "closing connection from %s: malformed request header (%zu bytes)",
                 net_conn_peer(c), frame.len);
        net_reply_drop(r);
        net_conn_close(c);
        return;
    }
    handler_fn fn = handler_for(hdr.api_key);
    if (rc == PROTO_HDR_UNSUPPORTED || !fn) {
        if (hdr.api_key == 18) {
            say_info("server", "%s sent ApiVersions v%d; answering UNSUPPORTED_VERSION in v0",
                     net_conn_peer(c), hdr.api_version);
            answer_unsupported_api_versions(r, hdr.correlation_id);
            return;
        }
        const char *what = !proto_api_find(hdr.api_key) || !fn ? "unsupported api key"
                                                               : "unsupported version of api key";
        say_warn("server", "closing connection from %s: %s %d version %d (correlation id %d)",
                 net_conn_peer(c), what, hdr.api_key, hdr.api_version, hdr.correlation_id);
        net_reply_drop(r);
        net_conn_close(c);
        return;
    }
    if (s->stopping) {
        /* Shutting down: answer nothing more; the client retries elsewhere. */
        net_reply_drop(r);
        net_conn_close(c);
        return;
    }
    struct request *req = xcalloc(1, sizeof *req);
    req->srv = s;
    req->reply = r;
    req->hdr = hdr;
    /* Keep the frame: take the connection's buffer if it can give it (big produce
     * requests), else copy it. */
    req->frame_block = net_frame_take(c, frame);
    if (req->frame_block) {
        req->frame = (uint8_t *)frame.ptr;
    } else {
        req->frame_block = req->frame = xmalloc(frame.len ? frame.len : 1);
        memcpy(req->frame, frame.ptr, frame.len);
    }
    req->frame_len = frame.len;
    /* Re-point the header's client id and the body reader into our copy. */
    if (hdr.client_id.ptr)
        req->hdr.client_id.ptr = req->frame + (hdr.client_id.ptr - frame.ptr);
    rd_init(&req->body, req->frame + rd.pos, frame.len - rd.pos);
    arena_init(&req->arena);
    req->start_ms = net_loop_now_ms(s->loop);
    say_debug("server", "%s: api %d v%d correlation %d", net_conn_peer(c), hdr.api_key,
              hdr.api_version, hdr.correlation_id);
    if (!controller_listener && forwarded_to_controller(hdr.api_key)) {
        forward_or_serve(req);
        return;
    }
    if (needs_group_coordinator(hdr.api_key)) {
        coordinator_or_wait(req);
        return;
    }
    fn(req);
}

int32_t server_client_controller_id(struct server *s)
{
    int32_t ctl = cluster_controller_id(s->cluster);
    const struct mbroker *b = ctl > 0 ? cluster_broker_find(s->cluster, ctl) : NULL;
    if ((b && !b->fenced) || ctl <= 0)
        return ctl;
    if (s->cfg->broker)
        return s->cfg->node_id;
    for (size_t i = 0; i < cluster_broker_count(s->cluster); i++)
        if (!cluster_broker_at(s->cluster, i)->fenced)
            return cluster_broker_at(s->cluster, i)->node_id;
    return -1;
}

void server_on_close(struct net_conn *c, void *arg)
{
    (void)c;
    struct server *s = arg;
    /* A long poll parked for this connection would otherwise hold its request until
     * max_wait_ms; the idle hook drops them (once for any number of closes). */
    if (purgatory_size(s->fetch_waits) > 0)
        s->fetch_orphans = true;
}

int16_t config_alter_refusal(int8_t resource_type, struct slice *message)
{
    if (resource_type == CONFIG_RESOURCE_BROKER) {
        *message = slice_from_cstr("broker configs cannot be changed at runtime yet");
        return KERR_INVALID_CONFIG;
    }
    *message = slice_from_cstr("unsupported resource type");
    return KERR_INVALID_REQUEST;
}

struct slice request_peer(struct request *req)
{
    struct net_conn *c = net_reply_conn(req->reply);
    const char *peer = c ? net_conn_peer(c) : "";
    /* Kafka reports the client host as "/<ip>". */
    size_t n = strlen(peer);
    const char *colon = strrchr(peer, ':');
    if (colon)
        n = (size_t)(colon - peer);
    char *out = arena_alloc(&req->arena, n + 2);
    out[0] = '/';
    memcpy(out + 1, peer, n);
    return (struct slice){(const uint8_t *)out, n + 1};
}

const char *request_assignment_width_error(struct request *req, int32_t count, int32_t *width)
{
    if (count <= 0)
        return "The manual partition assignment includes an empty replica list.";
    if (*width >= 0 && count != *width)
        return arena_printf(&req->arena,
                            "The manual partition assignment includes a partition with %d "
                            "replica(s), but this is not consistent with previous "
                            "partitions, which have %d replica(s).",
                            count, *width);
    if (count > INT16_MAX)
        return arena_printf(&req->arena,
                            "The manual partition assignment names %d replicas for a "
                            "partition; at most %d are possible.",
                            count, INT16_MAX);
    *width = count;
    return NULL;
}

void request_malformed(struct request *req)
{
    const struct proto_api *api = proto_api_find(req->hdr.api_key);
    struct net_conn *c = net_reply_conn(req->reply);
    say_warn("server",
             "closing connection from %s: malformed %s v%d request body "
             "(correlation id %d, %zu bytes)",
             c ? net_conn_peer(c) : "?", api ? api->name : "?", req->hdr.api_version,
             req->hdr.correlation_id, req->frame_len);
    request_drop(req);
    if (c)
        net_conn_close(c);
}
