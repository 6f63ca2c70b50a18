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
 * heartbeat per tick, elections after 1 to 2 s without a leader).
 *
 * This broker's registration (KIP-631): it registers with the active controller
 * (BrokerRegistration, with an incarnation id new for every process), starting fenced,
 * then heartbeats every broker.heartbeat.interval.ms (BrokerHeartbeat); the first
 * heartbeat unfences it. A node that is the active controller itself calls cluster/
 * directly. The active controller fences brokers whose heartbeats stop
 * (broker.session.timeout.ms, cluster_expire_sessions), and serves both requests on the
 * controller listener. Responses come back in request order on each connection, so each
 * peer keeps the API keys of its requests in flight.
 *
 * Observers (process.roles=broker: not voters) are not reachable by the controllers:
 * they pull. A controller keeps the Raft messages for each observer in a mailbox
 * (bounded: beyond it messages are dropped, as on a backed-up connection), and answers
 * an observer's poll (SamsaRaft v1 with MaxWaitMs) with them, at once or when the first
 * arrives, else empty after MaxWaitMs, naming the leader it knows. An observer keeps one
 * poll out, to the leader once it knows it, else to the voters in turn, and sends its
 * own messages (to the leader) as the voters do. The active controller adds a broker
 * that registers without being a voter to the quorum as an observer (a Raft learner). */
#include "server/internal.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ELECTION_TICKS 10
#define RECONNECT_MS 100
#define CONNECT_TIMEOUT_MS 3000
#define MAX_UNSENT_BYTES (128u << 20)  /* a snapshot message or two */
#define MAX_RESPONSE_BYTES (1u << 20)  /* responses hold one error code */
#define MAX_REQUEST_BYTES (100u << 20) /* RAFT_MAX_MSG_BYTES and the header */
#define PROTO_API_SAMSA_RAFT 10000
#define PROTO_API_BROKER_REGISTRATION 62
#define PROTO_API_BROKER_HEARTBEAT 63
#define PROTO_API_ALLOCATE_PRODUCER_IDS 67

#define MAX_IN_FLIGHT 4096 /* requests awaiting a response on one connection */
#define MAX_OBSERVERS 64
#define MAILBOX_MAX_MSGS 1024
#define MAILBOX_MAX_BYTES (96u << 20)
#define POLL_WAIT_MS 500

struct quorum_peer {
    struct quorum_link *link;
    int32_t id;
    const char *host; /* as resolved at start (resolve_voter), else the config's name */
    char address[64]; /* the numeric address resolve_voter found */
    int32_t port;
    struct net_client *client; /* NULL: not connected */
    int64_t next_connect_ms;
    int32_t correlation_id;
    /* The requests in flight, oldest first (a ring). */
    struct in_flight {
        int16_t api_key;
        cluster_done_fn done; /* AllocateProducerIds: its caller's */
        void *arg;
        /* A client's request forwarded to the active controller, whose response is
         * relayed to it; if none comes, fallback answers it here. */
        struct request *forwarded;
        void (*fallback)(struct request *req);
        bool poll; /* an observer's poll (SamsaRaft v1) */
        /* server_controller_send's: the response body, or NULL if none will come. */
        void (*on_answer)(void *arg, struct reader *r);
        int64_t sent_ms; /* when it went (peer_send_waiting sets it) */
    } in_flight[MAX_IN_FLIGHT];
    size_t in_flight_head, in_flight_count;
};

/* A controller's messages for one observer, and its poll waiting for them. */
struct mailbox {
    int32_t node_id;
    struct buf msgs[MAILBOX_MAX_MSGS]; /* the first n used, oldest first */
    size_t n, bytes;
    struct net_reply *poll; /* a parked poll, or NULL */
    int32_t poll_correlation_id;
    uint64_t poll_timer;
    struct quorum_link *link;
};

/* This broker's registration with the active controller. */
struct registration {
    uint8_t incarnation[16]; /* this process's */
    int64_t epoch;           /* -1: not registered */
    bool fenced;
    bool waiting;             /* a request (or a local change) is in flight */
    int32_t waiting_on;       /* the controller it went to (this node: a local change) */
    int64_t waiting_since_ms; /* when it went */
    int64_t next_heartbeat_ms;
    /* Controlled shutdown (server_controlled_shutdown): heartbeats ask to shut down, and
     * the answer that this broker is fenced ends the loop. */
    bool shutting_down;
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
    struct registration reg;
    bool observer;                            /* this node is not a voter: it polls */
    struct mailbox *mailboxes[MAX_OBSERVERS]; /* a controller's, one per observer */
    size_t mailbox_count;
    bool polling;         /* an observer's poll is out... */
    int32_t poll_target;  /* ...to this voter... */
    int64_t poll_sent_ms; /* ...since then */
    size_t poll_round;    /* the next voter to try while no leader is known */
    int32_t leader_hint;  /* the leader the last poll answer named, -1 */
    int32_t poll_avoid;   /* the voter whose poll failed last, -1 */
    /* On the active controller: the connection each broker heartbeated over last, so
     * that its closing tells the controller at once (cluster_broker_disconnected). */
    struct broker_conn *broker_conns;
    size_t broker_conn_count;
};

struct broker_conn {
    struct net_conn *conn;
    int32_t broker;
    int64_t epoch;
};

static void on_registration_response(struct quorum_link *l, struct reader *r);
static void on_poll_response(struct quorum_link *l, struct reader *r);
static void poll_failed(struct quorum_link *l);
static void mailbox_put(struct quorum_link *l, int32_t to, const uint8_t *msg, size_t len);
static void relay(struct request *req, void (*fallback)(struct request *req), struct slice frame);
static void on_producer_ids_response(struct reader *r, cluster_done_fn done, void *arg);
static void on_heartbeat_response(struct quorum_link *l, struct reader *r);
static void registration_lost(struct quorum_link *l);

static void on_peer_frame(struct net_client *cl, struct slice frame, void *arg)
{
    (void)cl;
    struct quorum_peer *p = arg;
    if (p->in_flight_count == 0) {
        say_warn("quorum", "voter %d sent a response to no request; closing", p->id);
        net_client_close(p->client);
        return;
    }
    struct in_flight req = p->in_flight[p->in_flight_head];
    int16_t api_key = req.api_key;
    p->in_flight_head = (p->in_flight_head + 1) % MAX_IN_FLIGHT;
    p->in_flight_count--;
    if (req.forwarded) {
        relay(req.forwarded, req.fallback, frame);
        return;
    }
    struct reader r;
    rd_init(&r, frame.ptr, frame.len);
    if (req.on_answer) {
        (void)proto_response_header_decode(&r, api_key, 0);
        req.on_answer(req.arg, &r);
        return;
    }
    /* Every request on this link is flexible; responses come in order (the correlation
     * id is not needed to match them). */
    (void)proto_response_header_decode(&r, api_key, req.poll ? 1 : 0);
    if (api_key == PROTO_API_BROKER_REGISTRATION) {
        on_registration_response(p->link, &r);
        return;
    }
    if (api_key == PROTO_API_BROKER_HEARTBEAT) {
        on_heartbeat_response(p->link, &r);
        return;
    }
    if (api_key == PROTO_API_ALLOCATE_PRODUCER_IDS) {
        on_producer_ids_response(&r, req.done, req.arg);
        return;
    }
    if (req.poll) {
        on_poll_response(p->link, &r);
        return;
    }
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
    struct server *s = p->link->s;
    p->client = NULL;
    /* The active controller takes a closed connection for a dead broker after
     * samsa.broker.disconnect.fence.ms: heartbeat again at the next tick, not the next
     * interval. */
    p->link->reg.next_heartbeat_ms = 0;
    /* The other way round: this node's connection to a voter was refused or closed by it,
     * which a process that died does (one we closed, or that timed out, says nothing).
     * A controller that took over from a killed one learns so of its death: the dead
     * broker never connects to it, so no heartbeat connection of its can close. Ignored
     * unless this node leads the quorum (cluster_broker_disconnected). */
    const struct mbroker *b = cluster_broker_find(s->cluster, p->id);
    if (b && (err == 0 || err == -ECONNREFUSED || err == -ECONNRESET || err == -EPIPE))
        cluster_broker_disconnected(s->cluster, p->id, b->epoch, net_loop_now_ms(s->loop));
    if (err != -ECANCELED)
        say_debug("quorum", "connection to voter %d at %s:%d closed: %s", p->id, p->host, p->port,
                  err ? strerror(-err) : "by the peer");
    /* The requests in flight will not be answered. */
    size_t n = p->in_flight_count;
    p->in_flight_count = 0;
    for (size_t i = 0; i < n; i++) {
        struct in_flight *f = &p->in_flight[(p->in_flight_head + i) % MAX_IN_FLIGHT];
        if (f->api_key == PROTO_API_BROKER_REGISTRATION || f->api_key == PROTO_API_BROKER_HEARTBEAT)
            registration_lost(p->link);
        if (f->api_key == PROTO_API_ALLOCATE_PRODUCER_IDS && f->done)
            f->done(f->arg, &(struct cluster_result){
                                .err = CLUSTER_ERR_NOT_CONTROLLER,
                                .why = "the connection to the active controller closed"});
        if (f->forwarded)
            f->fallback(f->forwarded);
        if (f->on_answer)
            f->on_answer(f->arg, NULL);
        if (f->poll)
            poll_failed(p->link);
    }
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

/* The active controller: the quorum's leader as this node knows it. An observer learns
 * of a new leader only from its polls (nobody else talks to it), so for it the leader
 * its last poll answer named comes first; a poll that failed forgets that name.
 * -1: none known. */
static int32_t active_controller(const struct quorum_link *l)
{
    if (l->observer && l->leader_hint > 0)
        return l->leader_hint;
    return cluster_controller_id(l->s->cluster);
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

/* Starts a request frame for peer p in l->frame: the header; the caller appends the
 * body and calls peer_send. */
static void frame_begin(struct quorum_link *l, struct quorum_peer *p, int16_t api_key,
                        int16_t api_version)
{
    struct request_header h = {.api_key = api_key,
                               .api_version = api_version,
                               .correlation_id = p->correlation_id++,
                               .client_id = slice_from_cstr(l->client_id)};
    buf_reset(&l->frame);
    proto_request_header_encode(&l->frame, &h);
}

/* Sends l->frame to p; false if it was dropped (no connection, backed up). What waits
 * for the response (f.done, f.forwarded) is kept with it. */
static bool peer_send_waiting(struct quorum_link *l, struct quorum_peer *p, struct in_flight f)
{
    bool sent = p->client && p->in_flight_count < MAX_IN_FLIGHT &&
                net_client_send(p->client, l->frame.data, l->frame.len) == 0;
    if (sent) {
        f.sent_ms = net_loop_now_ms(l->s->loop);
        p->in_flight[(p->in_flight_head + p->in_flight_count) % MAX_IN_FLIGHT] = f;
        p->in_flight_count++;
    } else {
        say_debug("quorum", "dropped a request (api key %d) to voter %d", f.api_key, p->id);
    }
    if (l->frame.cap > (1u << 20))
        buf_free(&l->frame); /* a snapshot's message: do not keep its memory */
    return sent;
}

static bool peer_send(struct quorum_link *l, struct quorum_peer *p, int16_t api_key)
{
    return peer_send_waiting(l, p, (struct in_flight){.api_key = api_key});
}

static void send_message(void *arg, int32_t to, const uint8_t *msg, size_t len)
{
    struct quorum_link *l = arg;
    struct quorum_peer *p = peer_find(l, to);
    if (!p) {
        mailbox_put(l, to, msg, len); /* an observer: it polls for it */
        return;
    }
    if (!p->client && !peer_connect(p))
        return;
    frame_begin(l, p, PROTO_API_SAMSA_RAFT, 0);
    struct samsa_raft_request req;
    samsa_raft_request_init(&req);
    req.cluster_id = slice_from_cstr(cluster_id(l->s->cluster));
    req.message = (struct slice){msg, len};
    samsa_raft_request_encode(&l->frame, 0, &req);
    peer_send(l, p, PROTO_API_SAMSA_RAFT);
}

/* ---- observers' mailboxes (on the controllers) ---- */

static struct mailbox *mailbox_of(struct quorum_link *l, int32_t node, bool create)
{
    for (size_t i = 0; i < l->mailbox_count; i++)
        if (l->mailboxes[i]->node_id == node)
            return l->mailboxes[i];
    if (!create || l->mailbox_count == MAX_OBSERVERS || node <= 0)
        return NULL;
    struct mailbox *m = xcalloc(1, sizeof *m);
    m->node_id = node;
    m->link = l;
    l->mailboxes[l->mailbox_count++] = m;
    return m;
}

/* Answers the observer's parked poll with what the mailbox holds (SamsaRaft v1). */
static void mailbox_answer(struct mailbox *m)
{
    struct quorum_link *l = m->link;
    struct net_reply *r = m->poll;
    m->poll = NULL;
    if (m->poll_timer)
        net_timer_cancel(l->s->loop, m->poll_timer);
    m->poll_timer = 0;
    struct buf *b = net_reply_buf(r);
    proto_response_header_encode(b, PROTO_API_SAMSA_RAFT, 1, m->poll_correlation_id);
    struct samsa_raft_response resp;
    samsa_raft_response_init(&resp);
    resp.leader_id = cluster_controller_id(l->s->cluster);
    struct samsa_raft_response_messages *out = xcalloc(m->n ? m->n : 1, sizeof *out);
    for (size_t i = 0; i < m->n; i++)
        out[i].message = (struct slice){m->msgs[i].data, m->msgs[i].len};
    resp.messages = out;
    resp.messages_count = (int32_t)m->n;
    samsa_raft_response_encode(b, 1, &resp);
    free(out);
    net_reply_send(r);
    for (size_t i = 0; i < m->n; i++)
        buf_free(&m->msgs[i]);
    m->n = m->bytes = 0;
}

static void on_poll_timeout(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct mailbox *m = arg;
    m->poll_timer = 0;
    if (m->poll)
        mailbox_answer(m);
}

static void mailbox_put(struct quorum_link *l, int32_t to, const uint8_t *msg, size_t len)
{
    struct mailbox *m = mailbox_of(l, to, true);
    if (!m || m->n == MAILBOX_MAX_MSGS || m->bytes + len > MAILBOX_MAX_BYTES) {
        say_debug("quorum", "dropped a Raft message to observer %d: its mailbox is full", to);
        return;
    }
    buf_init(&m->msgs[m->n]);
    buf_append(&m->msgs[m->n++], msg, len);
    m->bytes += len;
    if (m->poll)
        mailbox_answer(m);
}

/* An observer's poll: answered now if its mailbox holds anything, else parked. */
static void park_poll(struct quorum_link *l, int32_t node, int32_t max_wait_ms, struct net_reply *r,
                      int32_t correlation_id)
{
    struct mailbox *m = mailbox_of(l, node, true);
    if (!m) {
        struct mailbox none = {.link = l, .poll = r, .poll_correlation_id = correlation_id};
        mailbox_answer(&none); /* too many observers: an empty answer */
        return;
    }
    if (m->poll) /* an earlier poll (a replaced connection): answered empty */
        mailbox_answer(m);
    m->poll = r;
    m->poll_correlation_id = correlation_id;
    if (m->n > 0 || cluster_controller_id(l->s->cluster) != l->s->cfg->node_id) {
        /* Something to send, or this node does not lead (only the leader sends an
         * observer anything): answered now, naming the leader it knows. */
        mailbox_answer(m);
        return;
    }
    m->poll_timer =
        net_timer_add(l->s->loop, MIN(max_wait_ms, 5 * POLL_WAIT_MS), on_poll_timeout, m);
}

/* ---- the controller listener ---- */

static void answer_raft(struct net_reply *r, int32_t correlation_id, int16_t version, int16_t error)
{
    struct buf *b = net_reply_buf(r);
    proto_response_header_encode(b, PROTO_API_SAMSA_RAFT, version, correlation_id);
    struct samsa_raft_response resp;
    samsa_raft_response_init(&resp);
    resp.error_code = error;
    samsa_raft_response_encode(b, version, &resp);
    net_reply_send(r);
}

static bool same_cluster(struct quorum_link *l, struct net_conn *c, struct slice id)
{
    const char *ours = cluster_id(l->s->cluster);
    if (id.len == strlen(ours) && memcmp(id.ptr, ours, id.len) == 0)
        return true;
    say_error_ratelimited("quorum", "%s sent a request for cluster %.*s; this is cluster %s",
                          net_conn_peer(c), (int)id.len, (const char *)id.ptr, ours);
    return false;
}

/* A BrokerRegistration or BrokerHeartbeat waiting for its change to be applied. */
struct pending_answer {
    struct net_reply *reply;
    int32_t correlation_id;
    bool want_shutdown; /* a heartbeat's WantShutDown */
};

static struct pending_answer *pending_new(struct net_reply *r, int32_t correlation_id)
{
    struct pending_answer *pa = xcalloc(1, sizeof *pa);
    pa->reply = r;
    pa->correlation_id = correlation_id;
    return pa;
}

static void answer_registration(void *arg, const struct cluster_result *res)
{
    struct pending_answer *pa = arg;
    struct buf *b = net_reply_buf(pa->reply);
    proto_response_header_encode(b, PROTO_API_BROKER_REGISTRATION, 0, pa->correlation_id);
    struct broker_registration_response resp;
    broker_registration_response_init(&resp);
    resp.error_code = kerr_from_cluster(res->err);
    resp.broker_epoch = res->err == CLUSTER_OK ? res->broker_epoch : -1;
    broker_registration_response_encode(b, 0, &resp);
    net_reply_send(pa->reply);
    free(pa);
}

static void answer_heartbeat(void *arg, const struct cluster_result *res)
{
    struct pending_answer *pa = arg;
    struct buf *b = net_reply_buf(pa->reply);
    proto_response_header_encode(b, PROTO_API_BROKER_HEARTBEAT, 0, pa->correlation_id);
    struct broker_heartbeat_response resp;
    broker_heartbeat_response_init(&resp);
    resp.error_code = kerr_from_cluster(res->err);
    resp.is_caught_up = res->err == CLUSTER_OK;
    resp.is_fenced = res->err != CLUSTER_OK || res->fenced;
    resp.should_shut_down = pa->want_shutdown && res->err == CLUSTER_OK && res->fenced;
    broker_heartbeat_response_encode(b, 0, &resp);
    net_reply_send(pa->reply);
    free(pa);
}

static int serve_raft(struct quorum_link *l, struct net_conn *c, const struct request_header *hdr,
                      struct reader *rd, struct arena *a, struct net_reply *r)
{
    struct samsa_raft_request req;
    if (samsa_raft_request_decode(rd, hdr->api_version, a, &req) != 0)
        return -1;
    int16_t error = KERR_NONE;
    if (!same_cluster(l, c, req.cluster_id))
        error = KERR_INCONSISTENT_CLUSTER_ID;
    else if (!l->s->stopping && req.message.ptr)
        cluster_receive(l->s->cluster, req.message.ptr, req.message.len);
    if (error == KERR_NONE && hdr->api_version >= 1 && req.max_wait_ms > 0) {
        park_poll(l, req.replica_id, req.max_wait_ms, r, hdr->correlation_id);
        return 0;
    }
    answer_raft(r, hdr->correlation_id, hdr->api_version, error);
    return 0;
}

static int serve_registration(struct quorum_link *l, struct net_conn *c,
                              const struct request_header *hdr, struct reader *rd, struct arena *a,
                              struct net_reply *r)
{
    struct broker_registration_request req;
    if (broker_registration_request_decode(rd, hdr->api_version, a, &req) != 0 ||
        req.listeners_count < 1)
        return -1;
    if (!same_cluster(l, c, req.cluster_id)) {
        struct buf *b = net_reply_buf(r);
        proto_response_header_encode(b, PROTO_API_BROKER_REGISTRATION, 0, hdr->correlation_id);
        struct broker_registration_response resp;
        broker_registration_response_init(&resp);
        resp.error_code = KERR_INCONSISTENT_CLUSTER_ID;
        broker_registration_response_encode(b, 0, &resp);
        net_reply_send(r);
        return 0;
    }
    struct pending_answer *pa = pending_new(r, hdr->correlation_id);
    /* A broker that is not a voter follows the metadata log as an observer. */
    if (!cluster_quorum_member(l->s->cluster, req.broker_id))
        cluster_add_observer(l->s->cluster, req.broker_id, NULL, NULL);
    /* The first listener is where clients reach the broker. */
    char *host = slice_to_cstr(req.listeners[0].host);
    char *rack = req.rack.ptr ? slice_to_cstr(req.rack) : NULL;
    cluster_register_broker(l->s->cluster, req.broker_id, host, req.listeners[0].port, rack,
                            req.incarnation_id, true, answer_registration, pa);
    free(host);
    free(rack);
    return 0;
}

/* Broker `broker` (at `epoch`) heartbeats over connection c. */
static void note_broker_conn(struct quorum_link *l, struct net_conn *c, int32_t broker,
                             int64_t epoch)
{
    struct broker_conn *bc = NULL;
    for (size_t i = 0; i < l->broker_conn_count && !bc; i++)
        if (l->broker_conns[i].broker == broker)
            bc = &l->broker_conns[i];
    if (!bc) {
        l->broker_conns =
            xrealloc(l->broker_conns, (l->broker_conn_count + 1) * sizeof *l->broker_conns);
        bc = &l->broker_conns[l->broker_conn_count++];
    }
    *bc = (struct broker_conn){c, broker, epoch};
}

/* Connection c closed: the brokers that heartbeated over it are disconnected (a process
 * that died closes its connections at once; a live one reconnects and heartbeats). */
static void broker_conn_closed(struct quorum_link *l, struct net_conn *c)
{
    int64_t now = net_loop_now_ms(l->s->loop);
    for (size_t i = 0; i < l->broker_conn_count;) {
        struct broker_conn bc = l->broker_conns[i];
        if (bc.conn != c) {
            i++;
            continue;
        }
        l->broker_conns[i] = l->broker_conns[--l->broker_conn_count];
        say_info("quorum", "broker %d's connection to this controller closed", bc.broker);
        cluster_broker_disconnected(l->s->cluster, bc.broker, bc.epoch, now);
    }
}

static int serve_heartbeat(struct quorum_link *l, struct net_conn *c,
                           const struct request_header *hdr, struct reader *rd, struct arena *a,
                           struct net_reply *r)
{
    struct broker_heartbeat_request req;
    if (broker_heartbeat_request_decode(rd, hdr->api_version, a, &req) != 0)
        return -1;
    note_broker_conn(l, c, req.broker_id, req.broker_epoch);
    struct pending_answer *pa = pending_new(r, hdr->correlation_id);
    pa->want_shutdown = req.want_shut_down;
    int64_t now = net_loop_now_ms(l->s->loop);
    if (req.want_shut_down)
        cluster_broker_controlled_shutdown(l->s->cluster, req.broker_id, req.broker_epoch, now,
                                           answer_heartbeat, pa);
    else
        cluster_broker_heartbeat(l->s->cluster, req.broker_id, req.broker_epoch, now,
                                 answer_heartbeat, pa);
    return 0;
}

static void answer_producer_ids(void *arg, const struct cluster_result *res)
{
    struct pending_answer *pa = arg;
    struct buf *b = net_reply_buf(pa->reply);
    proto_response_header_encode(b, PROTO_API_ALLOCATE_PRODUCER_IDS, 0, pa->correlation_id);
    struct allocate_producer_ids_response resp;
    allocate_producer_ids_response_init(&resp);
    resp.error_code = kerr_from_cluster(res->err);
    if (res->err == CLUSTER_OK) {
        resp.producer_id_start = res->first_producer_id;
        resp.producer_id_len = SERVER_PRODUCER_ID_BLOCK;
    }
    allocate_producer_ids_response_encode(b, 0, &resp);
    net_reply_send(pa->reply);
    free(pa);
}

static int serve_producer_ids(struct quorum_link *l, const struct request_header *hdr,
                              struct reader *rd, struct arena *a, struct net_reply *r)
{
    struct allocate_producer_ids_request req;
    if (allocate_producer_ids_request_decode(rd, hdr->api_version, a, &req) != 0)
        return -1;
    struct pending_answer *pa = pending_new(r, hdr->correlation_id);
    const struct mbroker *b = cluster_broker_find(l->s->cluster, req.broker_id);
    if (!b || b->epoch != req.broker_epoch) {
        answer_producer_ids(pa, &(struct cluster_result){.err = CLUSTER_ERR_STALE_BROKER_EPOCH});
        return 0;
    }
    cluster_allocate_producer_ids(l->s->cluster, req.broker_id, SERVER_PRODUCER_ID_BLOCK,
                                  answer_producer_ids, pa);
    return 0;
}

/* The controller listener: the quorum's own requests here, any other as on the client
 * listener. */
static void on_controller_request(struct net_conn *c, struct slice frame, struct net_reply *r,
                                  void *arg)
{
    struct quorum_link *l = arg;
    int16_t api_key = frame.len >= 2 ? (int16_t)be16_read(frame.ptr) : -1;
    if (api_key != PROTO_API_SAMSA_RAFT && api_key != PROTO_API_BROKER_REGISTRATION &&
        api_key != PROTO_API_BROKER_HEARTBEAT && api_key != PROTO_API_ALLOCATE_PRODUCER_IDS &&
        api_key != SERVER_API_ALTER_PARTITION) {
        server_on_controller_listener_request(c, frame, r, l->s);
        return;
    }
    struct reader rd;
    rd_init(&rd, frame.ptr, frame.len);
    struct request_header hdr;
    struct arena a;
    arena_init(&a);
    int rc = proto_request_header_decode(&rd, &hdr) == PROTO_HDR_OK ? 0 : -1;
    if (rc == 0 && api_key == PROTO_API_SAMSA_RAFT)
        rc = serve_raft(l, c, &hdr, &rd, &a, r);
    else if (rc == 0 && api_key == PROTO_API_BROKER_REGISTRATION)
        rc = serve_registration(l, c, &hdr, &rd, &a, r);
    else if (rc == 0 && api_key == PROTO_API_BROKER_HEARTBEAT)
        rc = serve_heartbeat(l, c, &hdr, &rd, &a, r);
    else if (rc == 0 && api_key == SERVER_API_ALTER_PARTITION)
        rc = server_serve_alter_partition(l->s, &hdr, &rd, r);
    else if (rc == 0)
        rc = serve_producer_ids(l, &hdr, &rd, &a, r);
    arena_free(&a);
    if (rc != 0) {
        say_warn("quorum", "closing connection from %s: malformed request (api key %d)",
                 net_conn_peer(c), api_key);
        net_reply_drop(r);
        net_conn_close(c);
    }
}

static void on_controller_close(struct net_conn *c, void *arg)
{
    struct quorum_link *l = arg;
    broker_conn_closed(l, c);
    server_on_close(c, l->s);
}

/* ---- this broker's registration ---- */

static void registration_lost(struct quorum_link *l)
{
    l->reg.waiting = false;
}

static void registration_result(struct quorum_link *l, int16_t error, int64_t epoch)
{
    struct registration *reg = &l->reg;
    reg->waiting = false;
    if (error != KERR_NONE) {
        say_warn_ratelimited("quorum", "registering this broker failed: %s",
                             kafka_error_name(error));
        return;
    }
    say_info("quorum", "registered this broker with the active controller at epoch %lld",
             (long long)epoch);
    reg->epoch = epoch;
    reg->fenced = true;
    reg->next_heartbeat_ms = 0; /* at once: the first heartbeat unfences */
}

static void heartbeat_result(struct quorum_link *l, int16_t error, bool fenced)
{
    struct registration *reg = &l->reg;
    reg->waiting = false;
    if (error == KERR_STALE_BROKER_EPOCH) {
        say_warn("quorum", "the controller no longer knows this broker's epoch: registering "
                           "again");
        reg->epoch = -1;
        return;
    }
    if (error != KERR_NONE)
        return; /* NOT_CONTROLLER and the like: the next tick asks the new controller */
    if (reg->fenced && !fenced)
        say_info("quorum", "this broker is unfenced");
    reg->fenced = fenced;
    if (reg->shutting_down && fenced) {
        say_info("quorum", "controlled shutdown: the controller has moved this broker's "
                           "leaderships to other in-sync replicas; stopping");
        net_loop_stop(l->s->loop);
        return;
    }
    reg->next_heartbeat_ms = net_loop_now_ms(l->s->loop) + l->s->cfg->broker_heartbeat_interval_ms;
}

static void local_registered(void *arg, const struct cluster_result *res)
{
    registration_result(arg, kerr_from_cluster(res->err), res->broker_epoch);
}

static void local_heartbeat(void *arg, const struct cluster_result *res)
{
    heartbeat_result(arg, kerr_from_cluster(res->err), res->err != CLUSTER_OK || res->fenced);
}

static void on_registration_response(struct quorum_link *l, struct reader *r)
{
    struct broker_registration_response resp;
    struct arena a;
    arena_init(&a);
    if (broker_registration_response_decode(r, 0, &a, &resp) != 0)
        resp.error_code = KERR_UNKNOWN_SERVER_ERROR;
    arena_free(&a);
    registration_result(l, resp.error_code, resp.broker_epoch);
}

static void on_heartbeat_response(struct quorum_link *l, struct reader *r)
{
    struct broker_heartbeat_response resp;
    struct arena a;
    arena_init(&a);
    if (broker_heartbeat_response_decode(r, 0, &a, &resp) != 0)
        resp.error_code = KERR_UNKNOWN_SERVER_ERROR;
    arena_free(&a);
    heartbeat_result(l, resp.error_code,
                     resp.is_fenced && (!l->reg.shutting_down || resp.should_shut_down));
}

static void send_registration(struct quorum_link *l, struct quorum_peer *p)
{
    const struct broker_config *cfg = l->s->cfg;
    frame_begin(l, p, PROTO_API_BROKER_REGISTRATION, 0);
    struct broker_registration_request req;
    broker_registration_request_init(&req);
    struct broker_registration_request_listeners listener = {
        .name = slice_from_cstr(cfg->listener_name),
        .host = slice_from_cstr(cfg->advertised_host),
        .port = (uint16_t)l->s->advertised_port,
        .security_protocol = 0, /* PLAINTEXT */
    };
    req.broker_id = cfg->node_id;
    req.cluster_id = slice_from_cstr(cluster_id(l->s->cluster));
    memcpy(req.incarnation_id, l->reg.incarnation, 16);
    req.listeners_count = 1;
    req.listeners = &listener;
    req.features_count = 0;
    req.rack = cfg->rack ? slice_from_cstr(cfg->rack) : SLICE_NULL;
    broker_registration_request_encode(&l->frame, 0, &req);
    l->reg.waiting = peer_send(l, p, PROTO_API_BROKER_REGISTRATION);
}

static void on_producer_ids_response(struct reader *r, cluster_done_fn done, void *arg)
{
    struct allocate_producer_ids_response resp;
    struct arena a;
    arena_init(&a);
    int rc = allocate_producer_ids_response_decode(r, 0, &a, &resp);
    arena_free(&a);
    struct cluster_result res = {.err = CLUSTER_OK, .first_producer_id = resp.producer_id_start};
    if (rc != 0 || resp.error_code != KERR_NONE ||
        resp.producer_id_len < SERVER_PRODUCER_ID_BLOCK) {
        res.err = CLUSTER_ERR_NOT_CONTROLLER; /* retriable: the next request asks again */
        res.why = rc != 0 ? "a malformed AllocateProducerIds response"
                          : "the active controller refused AllocateProducerIds";
    }
    if (done)
        done(arg, &res);
}

bool server_controlled_shutdown(struct server *s)
{
    struct quorum_link *l = s->quorum_link;
    if (!l || !s->cfg->broker || l->reg.epoch < 0)
        return false;
    say_info("quorum", "controlled shutdown: asking the active controller to move this "
                       "broker's leaderships");
    l->reg.shutting_down = true;
    l->reg.next_heartbeat_ms = 0; /* at the next tick */
    return true;
}

bool server_controller_send(struct server *s, int16_t api_key, int16_t api_version,
                            const struct buf *body, void (*on_answer)(void *arg, struct reader *r),
                            void *arg)
{
    struct quorum_link *l = s->quorum_link;
    int32_t ctl = l ? active_controller(l) : -1;
    struct quorum_peer *p = ctl > 0 && ctl != s->cfg->node_id ? peer_find(l, ctl) : NULL;
    if (!p || (!p->client && !peer_connect(p)))
        return false;
    frame_begin(l, p, api_key, api_version);
    buf_append(&l->frame, body->data, body->len);
    return peer_send_waiting(
        l, p, (struct in_flight){.api_key = api_key, .on_answer = on_answer, .arg = arg});
}

bool server_may_lead(struct server *s)
{
    if (broker_config_alone(s->cfg))
        return true;
    if (!s->quorum_link)
        return false; /* start-up: not registered yet */
    const struct mbroker *b = cluster_broker_find(s->cluster, s->cfg->node_id);
    return b && !b->fenced && memcmp(b->incarnation, s->quorum_link->reg.incarnation, 16) == 0;
}

int64_t server_broker_epoch(const struct server *s)
{
    return s->quorum_link ? s->quorum_link->reg.epoch : -1;
}

void server_allocate_producer_ids(struct server *s, cluster_done_fn done, void *arg)
{
    struct quorum_link *l = s->quorum_link;
    int32_t ctl = l ? active_controller(l) : cluster_controller_id(s->cluster);
    if (!l || ctl == s->cfg->node_id) {
        cluster_allocate_producer_ids(s->cluster, s->cfg->node_id, SERVER_PRODUCER_ID_BLOCK, done,
                                      arg);
        return;
    }
    struct quorum_peer *p = ctl > 0 ? peer_find(l, ctl) : NULL;
    if (p && (p->client || peer_connect(p)) && l->reg.epoch >= 0) {
        frame_begin(l, p, PROTO_API_ALLOCATE_PRODUCER_IDS, 0);
        struct allocate_producer_ids_request req;
        allocate_producer_ids_request_init(&req);
        req.broker_id = s->cfg->node_id;
        req.broker_epoch = l->reg.epoch;
        allocate_producer_ids_request_encode(&l->frame, 0, &req);
        if (peer_send_waiting(l, p,
                              (struct in_flight){.api_key = PROTO_API_ALLOCATE_PRODUCER_IDS,
                                                 .done = done,
                                                 .arg = arg}))
            return;
    }
    done(arg, &(struct cluster_result){.err = CLUSTER_ERR_NOT_CONTROLLER,
                                       .why = "no active controller to ask for producer ids"});
}

/* ---- requests answered by the active controller ---- */

/* The controller's response frame to a forwarded request: its body goes to the client
 * under the client's correlation id. A response header is the correlation id, then (in
 * flexible versions) tagged fields. */
static void relay(struct request *req, void (*fallback)(struct request *req), struct slice frame)
{
    struct reader r;
    rd_init(&r, frame.ptr, frame.len);
    (void)proto_response_header_decode(&r, req->hdr.api_key, req->hdr.api_version);
    if (r.err) {
        fallback(req);
        return;
    }
    struct buf *b = request_response_begin(req);
    buf_append(b, frame.ptr + r.pos, frame.len - r.pos);
    request_response_end(req);
}

bool server_forward_to_controller(struct server *s, struct request *req,
                                  void (*fallback)(struct request *req))
{
    struct quorum_link *l = s->quorum_link;
    int32_t ctl = l ? active_controller(l) : -1;
    struct quorum_peer *p = l && ctl > 0 && ctl != s->cfg->node_id ? peer_find(l, ctl) : NULL;
    if (!p || (!p->client && !peer_connect(p)))
        return false;
    frame_begin(l, p, req->hdr.api_key, req->hdr.api_version);
    buf_append(&l->frame, req->body.p, req->body.len); /* the whole body, as the client sent it */
    return peer_send_waiting(
        l, p,
        (struct in_flight){.api_key = req->hdr.api_key, .forwarded = req, .fallback = fallback});
}

static void send_heartbeat(struct quorum_link *l, struct quorum_peer *p)
{
    frame_begin(l, p, PROTO_API_BROKER_HEARTBEAT, 0);
    struct broker_heartbeat_request req;
    broker_heartbeat_request_init(&req);
    req.broker_id = l->s->cfg->node_id;
    req.broker_epoch = l->reg.epoch;
    struct cluster_quorum_state qs;
    cluster_quorum_state(l->s->cluster, &qs);
    req.current_metadata_offset = qs.high_watermark;
    req.want_shut_down = l->reg.shutting_down;
    broker_heartbeat_request_encode(&l->frame, 0, &req);
    l->reg.waiting = peer_send(l, p, PROTO_API_BROKER_HEARTBEAT);
}

/* Every tick: registers, or heartbeats when one is due, with the active controller.
 *
 * A request in flight is given up when the controller it went to is no longer the
 * active one, or after half a session without an answer. A controller cut off the
 * network (packets dropped, no RST) leaves its connection open, so neither an answer
 * nor a close would ever end the wait, and the new controller would fence this broker
 * a session after it took over. An answer that comes after all is still applied: a
 * stale epoch is refused by the next heartbeat (STALE_BROKER_EPOCH, so this broker
 * registers again), a stale fenced flag is corrected by the next answer. */
static void registration_step(struct quorum_link *l)
{
    struct server *s = l->s;
    struct registration *reg = &l->reg;
    const struct broker_config *cfg = s->cfg;
    int32_t ctl = active_controller(l);
    int64_t now = net_loop_now_ms(s->loop);
    if (reg->waiting && (reg->waiting_on != ctl ||
                         now - reg->waiting_since_ms >= cfg->broker_session_timeout_ms / 2)) {
        say_info("quorum",
                 "gave up waiting %lld ms for controller %d to answer this broker's "
                 "%s (the active controller is now %d)",
                 (long long)(now - reg->waiting_since_ms), reg->waiting_on,
                 reg->epoch >= 0 ? "heartbeat" : "registration", ctl);
        reg->waiting = false;
    }
    if (reg->waiting || s->stopping || ctl <= 0 || !cfg->broker)
        return;
    bool heartbeat = reg->epoch >= 0;
    if (heartbeat && now < reg->next_heartbeat_ms)
        return;
    reg->waiting_on = ctl;
    reg->waiting_since_ms = now;
    if (ctl == cfg->node_id) {
        reg->waiting = true;
        if (heartbeat && reg->shutting_down)
            cluster_broker_controlled_shutdown(s->cluster, cfg->node_id, reg->epoch, now,
                                               local_heartbeat, l);
        else if (heartbeat)
            cluster_broker_heartbeat(s->cluster, cfg->node_id, reg->epoch, now, local_heartbeat, l);
        else
            cluster_register_broker(s->cluster, cfg->node_id, cfg->advertised_host,
                                    s->advertised_port, cfg->rack, reg->incarnation, true,
                                    local_registered, l);
        return;
    }
    struct quorum_peer *p = peer_find(l, ctl);
    if (!p || (!p->client && !peer_connect(p)))
        return;
    if (heartbeat)
        send_heartbeat(l, p);
    else
        send_registration(l, p);
}

/* ---- an observer's polls ---- */

/* The voter a poll went to did not answer: try the others, without a leader in mind. */
static void poll_failed(struct quorum_link *l)
{
    l->polling = false;
    l->poll_avoid = l->poll_target;
    l->leader_hint = -1;
}

static void poll_step(struct quorum_link *l)
{
    int64_t now = net_loop_now_ms(l->s->loop);
    if (!l->observer || l->s->stopping || l->peer_count == 0)
        return;
    if (l->polling && now - l->poll_sent_ms < 4 * POLL_WAIT_MS)
        return;     /* out, and not lost: a stopped controller's connection may hang */
    if (l->polling) /* lost: that voter is gone, or cut off */
        poll_failed(l);
    int32_t target = active_controller(l);
    struct quorum_peer *p = target > 0 && target != l->poll_avoid ? peer_find(l, target) : NULL;
    for (size_t k = 0; !p && k < l->peer_count; k++) {
        struct quorum_peer *q = &l->peers[l->poll_round++ % l->peer_count];
        if (q->id != l->poll_avoid || l->peer_count == 1)
            p = q;
    }
    if (!p->client && !peer_connect(p)) {
        l->poll_target = p->id;
        poll_failed(l);
        return;
    }
    frame_begin(l, p, PROTO_API_SAMSA_RAFT, 1);
    struct samsa_raft_request req;
    samsa_raft_request_init(&req);
    req.cluster_id = slice_from_cstr(cluster_id(l->s->cluster));
    req.message = SLICE_NULL;
    req.replica_id = l->s->cfg->node_id;
    req.max_wait_ms = POLL_WAIT_MS;
    samsa_raft_request_encode(&l->frame, 1, &req);
    say_debug("quorum", "polling voter %d (target %d, avoid %d, hint %d)", p->id, target,
              l->poll_avoid, l->leader_hint);
    if (peer_send_waiting(l, p,
                          (struct in_flight){.api_key = PROTO_API_SAMSA_RAFT, .poll = true})) {
        l->polling = true;
        l->poll_target = p->id;
        l->poll_sent_ms = now;
    }
}

static void on_poll_response(struct quorum_link *l, struct reader *r)
{
    struct samsa_raft_response resp;
    struct arena a;
    arena_init(&a);
    l->polling = false;
    if (samsa_raft_response_decode(r, 1, &a, &resp) != 0) {
        samsa_raft_response_init(&resp);
        resp.error_code = KERR_CORRUPT_MESSAGE;
    }
    say_debug("quorum", "poll answer from %d: error %d, leader %d, %d messages", l->poll_target,
              resp.error_code, resp.leader_id, resp.messages_count);
    if (resp.error_code == KERR_NONE) {
        /* A voter that does not lead names the one that does; one that knows none
         * sends the next poll round the voters. */
        l->leader_hint = resp.leader_id;
        l->poll_avoid = -1;
        for (int32_t i = 0; i < resp.messages_count; i++)
            cluster_receive(l->s->cluster, resp.messages[i].message.ptr,
                            resp.messages[i].message.len);
    } else if (resp.error_code != KERR_NONE) {
        say_error_ratelimited("quorum", "voter %d refused this observer's poll: %s", l->poll_target,
                              kafka_error_name(resp.error_code));
    }
    arena_free(&a);
    /* Keep one out: at once to the leader just named, or after messages; an empty
     * answer without news waits for the next tick. */
    bool news =
        resp.error_code == KERR_NONE &&
        (resp.messages_count > 0 || (resp.leader_id > 0 && resp.leader_id != l->poll_target));
    if (news)
        poll_step(l);
}

/* A peer that leaves a request unanswered for a whole broker session is treated as gone:
 * its connection is closed, so what waits on it (a producer-id block, a forwarded
 * request, a poll) is told now and asked elsewhere. A controller cut off the network
 * drops packets without a reset, and its connection would otherwise stay open, its
 * requests unanswered, for as long as TCP keeps trying. */
static void expire_requests(struct quorum_link *l, int64_t now)
{
    for (size_t i = 0; i < l->peer_count; i++) {
        struct quorum_peer *p = &l->peers[i];
        if (!p->client || p->in_flight_count == 0)
            continue;
        int64_t waited = now - p->in_flight[p->in_flight_head].sent_ms;
        if (waited < l->s->cfg->broker_session_timeout_ms)
            continue;
        say_warn("quorum", "node %d left a request unanswered for %lld ms: reconnecting", p->id,
                 (long long)waited);
        net_client_close(p->client);
    }
}

static void on_tick(struct net_loop *loop, void *arg)
{
    struct quorum_link *l = arg;
    l->tick_timer = net_timer_add(loop, l->tick_ms, on_tick, l);
    cluster_tick(l->s->cluster);
    expire_requests(l, net_loop_now_ms(loop));
    poll_step(l);
    registration_step(l);
    server_groups_poll(l->s);
    server_txns_poll(l->s);
    server_delays_poll(l->s);
    cluster_expire_sessions(l->s->cluster, net_loop_now_ms(loop),
                            l->s->cfg->broker_session_timeout_ms,
                            l->s->cfg->broker_disconnect_fence_ms);
}

/* Resolves a voter's host name once, at start-up: net_client_connect resolves
 * synchronously, and reconnects happen on the event loop (every RECONNECT_MS while a
 * voter is down), where a slow DNS answer would stall every client. */
static void resolve_voter(struct quorum_peer *p)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(p->host, NULL, &hints, &ai) != 0 || !ai) {
        say_warn("quorum",
                 "cannot resolve voter %d's host %s now; it is resolved at each "
                 "connect",
                 p->id, p->host);
        return;
    }
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, p->address, sizeof p->address, NULL, 0,
                    NI_NUMERICHOST) == 0)
        p->host = p->address;
    freeaddrinfo(ai);
}

int server_quorum_link_start(struct server *s)
{
    const struct broker_config *cfg = s->cfg;
    bool alone = broker_config_alone(cfg);
    if (alone && !cfg->controller_host)
        return 0; /* a single node: nobody to talk to */
    struct quorum_link *l = xcalloc(1, sizeof *l);
    l->s = s;
    buf_init(&l->frame);
    snprintf(l->client_id, sizeof l->client_id, "samsa-%s-%d",
             cfg->controller ? "controller" : "broker", cfg->node_id);
    cluster_uuid_random(l->reg.incarnation);
    l->reg.epoch = -1;
    l->observer = !cfg->controller;
    l->leader_hint = -1;
    l->poll_avoid = -1;
    if (alone) {
        /* The one controller registered its broker at start-up: it heartbeats itself
         * under that registration, while it serves observers. */
        const struct mbroker *self = cluster_broker_find(s->cluster, cfg->node_id);
        l->reg.epoch = self ? self->epoch : -1;
    }
    for (size_t i = 0; i < cfg->voter_count; i++) {
        if (cfg->voters[i].id == cfg->node_id)
            continue;
        l->peers[l->peer_count++] = (struct quorum_peer){.link = l,
                                                         .id = cfg->voters[i].id,
                                                         .host = cfg->voters[i].host,
                                                         .port = cfg->voters[i].port};
        resolve_voter(&l->peers[l->peer_count - 1]);
    }
    s->quorum_link = l;
    cluster_set_transport(s->cluster, send_message, l);
    l->tick_ms = MAX(cfg->election_timeout_ms / ELECTION_TICKS, 1);
    l->tick_timer = net_timer_add(s->loop, l->tick_ms, on_tick, l);
    if (!cfg->controller_host) {
        say_info("quorum", "observing the metadata quorum of %zu voters", cfg->voter_count);
        return 0;
    }
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
    say_info("quorum", "controller listener on %s:%d; metadata quorum of %zu voters",
             *cfg->controller_host ? cfg->controller_host : "0.0.0.0",
             net_listener_port(l->listener), cfg->voter_count);
    return 0;
}

int server_quorum_link_port(const struct server *s)
{
    const struct quorum_link *l = s->quorum_link;
    return l && l->listener ? net_listener_port(l->listener) : 0;
}

void server_quorum_link_stop(struct server *s)
{
    struct quorum_link *l = s->quorum_link;
    if (!l)
        return;
    cluster_forget(s->cluster, l); /* also a local change registration_step gave up on */
    cluster_set_transport(s->cluster, NULL, NULL);
    net_timer_cancel(s->loop, l->tick_timer);
    if (l->listener)
        net_listener_close(l->listener);
    for (size_t i = 0; i < l->peer_count; i++)
        if (l->peers[i].client)
            net_client_close(l->peers[i].client);
    for (size_t i = 0; i < l->mailbox_count; i++) {
        struct mailbox *m = l->mailboxes[i];
        if (m->poll)
            mailbox_answer(m); /* its connection is closed: the answer is dropped */
        for (size_t k = 0; k < m->n; k++)
            buf_free(&m->msgs[k]);
        free(m);
    }
    buf_free(&l->frame);
    free(l->broker_conns);
    free(l);
    s->quorum_link = NULL;
}
