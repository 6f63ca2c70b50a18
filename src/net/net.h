/*
 * net: the single-threaded epoll event loop (fd watchers, one-shot timers, an idle
 * hook, signal handling) and, on top of it, TCP listeners and connections speaking
 * Kafka's framing: a 4-byte big-endian length, then the request; outbound client
 * connections to other nodes in the same framing (net_client_*); and on those, a
 * client's requests matched to their responses (net_rpc_*).
 *
 * Each complete request frame becomes a struct net_reply queued on its connection.
 * The handler completes replies now or later, in any order; net sends them strictly in
 * request order. net writes the 4-byte response length prefix itself: a handler only
 * appends the response body (correlation id onwards).
 *
 * Everything here runs on the loop thread. The only calls allowed from another thread
 * or a signal handler are net_loop_stop() and net_loop_wake().
 *
 * Errors: functions that can fail return 0 or a negative errno.
 */
#ifndef SAMSA_NET_H
#define SAMSA_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- event loop ---- */

struct net_loop;

#define NET_READABLE 1u
#define NET_WRITABLE 2u
#define NET_ERROR 4u /* EPOLLERR/EPOLLHUP: delivered even if not asked for */

typedef void (*net_fd_cb)(struct net_loop *loop, int fd, uint32_t events, void *arg);
typedef void (*net_timer_cb)(struct net_loop *loop, void *arg);
typedef void (*net_idle_cb)(struct net_loop *loop, void *arg);
typedef void (*net_signal_cb)(struct net_loop *loop, int signo, void *arg);

/* 0 or -errno. */
int net_loop_create(struct net_loop **out);
/* Closes every client (on_close runs with -ECANCELED), listener and connection
 * (on_close runs), frees the loop. Replies still held by handlers become orphans and
 * stay valid until completed. Not to be called from a callback of the loop. */
void net_loop_destroy(struct net_loop *loop);
/* Runs until net_loop_stop(). Returns 0, or -errno if epoll_wait fails. */
int net_loop_run(struct net_loop *loop);
/* One iteration, as net_loop_run makes them (fd events, due timers, idle hooks,
 * flush), waiting at most timeout_ms for an event (0: not at all; -1: until the
 * earliest timer). For tests that step the loop themselves (with the fake clock of
 * base.h, timers fire when the test has advanced it). Returns how many fd events were
 * dispatched plus timers fired (0: nothing happened but the idle hooks), or -errno if
 * epoll_wait fails. Ignores net_loop_stop. */
int net_loop_run_once(struct net_loop *loop, int timeout_ms);
/* Makes net_loop_run return after the current iteration. Async-signal-safe and
 * thread-safe (sets a flag and writes an eventfd). */
void net_loop_stop(struct net_loop *loop);
/* Wakes a blocked net_loop_run for one iteration (the idle hook runs). Thread-safe. */
void net_loop_wake(struct net_loop *loop);
/* Blocks SIGINT and SIGTERM for the calling thread (call before starting other threads
 * so they inherit the mask) and delivers them through a signalfd to cb on the loop.
 * cb NULL means net_loop_stop. 0 or -errno. */
int net_loop_handle_signals(struct net_loop *loop, net_signal_cb cb, void *arg);
/* Adds hook run once per iteration after fd events and timers, before blocking again
 * (at most NET_MAX_IDLE_HOOKS). Hooks run in the order added. */
#define NET_MAX_IDLE_HOOKS 8
void net_loop_on_idle(struct net_loop *loop, net_idle_cb cb, void *arg);
/* Monotonic ms, cached once per iteration (after epoll_wait returns). */
int64_t net_loop_now_ms(const struct net_loop *loop);

/* Watches fd for events (NET_READABLE|NET_WRITABLE; level-triggered). One watcher per
 * fd. The fd stays owned by the caller: net_unwatch before closing it. 0 or -errno. */
int net_watch(struct net_loop *loop, int fd, uint32_t events, net_fd_cb cb, void *arg);
int net_watch_modify(struct net_loop *loop, int fd, uint32_t events);
void net_unwatch(struct net_loop *loop, int fd);

/* One-shot timer after delay_ms (<= 0: next iteration). Returns an id, never 0.
 * Timers with equal deadlines fire in the order added. */
uint64_t net_timer_add(struct net_loop *loop, int64_t delay_ms, net_timer_cb cb, void *arg);
/* Cancels a pending timer; no-op for 0, fired or cancelled ids. */
void net_timer_cancel(struct net_loop *loop, uint64_t id);
size_t net_timer_count(const struct net_loop *loop);

/* ---- listeners and connections ---- */

struct net_listener;
struct net_conn;
struct net_reply;

/* One entry of max.connections.per.ip.overrides. */
struct net_ip_limit {
    uint8_t addr[16];         /* from net_ip_parse */
    uint32_t max_connections; /* 0 refuses every connection from addr */
};
/* Parses an IP address literal ("10.0.0.5", "::1", "[::1]"; no host names: no DNS) into
 * the form peers are counted by: IPv6 bytes, an IPv4 address as ::ffff:a.b.c.d (so it
 * matches IPv4 peers of a dual-stack listener too). 0 or -EINVAL. */
int net_ip_parse(const char *s, uint8_t out[16]);

struct net_server_config {
    int64_t max_frame_bytes;        /* socket.request.max.bytes; larger frames close */
    int64_t max_unsent_bytes;       /* per connection: stop reading above this */
    uint32_t max_inflight_requests; /* per connection: unsent replies before pausing */
    int64_t idle_timeout_ms;        /* connections.max.idle.ms, no I/O and no replies pending;
                                   * <= 0 disables */
    uint32_t max_connections;       /* per listener; extra accepts are closed at once */
    bool use_sendfile;              /* file chunks via sendfile(2), else pread+write */
    /* max.connections.per.ip: open connections from one peer address, counted over all
     * listeners of the loop; an accept beyond it is closed at once. */
    uint32_t max_connections_per_ip;
    /* max.connections.per.ip.overrides: addresses with their own limit instead (the
     * last entry wins for a repeated address). Borrowed: net_listen copies them. */
    const struct net_ip_limit *ip_limits;
    size_t ip_limit_count;
    /* Broker-wide budgets. They bound the whole loop, not one listener: the loop keeps
     * one total of each, and the last net_listen sets the limits (Samsa has one
     * listener). <= 0 means no bound.
     * - max_queued_response_bytes (samsa.queued.max.response.bytes): memory held by
     *   complete replies not yet fully written (their body buffers, by capacity; file
     *   chunks cost no memory). While the total is at or above it, a connection that
     *   holds unsent bytes reads no further request; one with nothing unsent still does,
     *   so a client that keeps up is never starved by the ones that do not. Handlers
     *   size what they build by net_response_bytes_left.
     * - max_queued_request_bytes (queued.max.request.bytes, Kafka's meaning): bytes of
     *   request frames delivered whose reply is not complete yet. While the total is at
     *   or above it, no connection reads a request (Kafka stops reading them all).
     * - max_queued_response_files: file chunks (each a descriptor) held by complete
     *   replies. Advisory: net never refuses net_reply_add_file; handlers check
     *   net_response_files_left and copy instead, or send less. */
    int64_t max_queued_response_bytes;
    int64_t max_queued_request_bytes;
    int64_t max_queued_response_files;
    /* Gives freed memory back to the system (malloc_trim) once the queued response
     * memory has dropped this far below its peak since the last trim, at most once a
     * second; 0: never. Meant to match the allocator's own trim threshold, under which
     * freed memory is kept for reuse anyway. */
    int64_t trim_after_drop_bytes;
};
/* Kafka's defaults: 100 MiB frames, 16 MiB unsent, 100 in flight, 10 min idle, 10000
 * connections (Kafka's max.connections is 2147483647), 2147483647 per address, no
 * overrides, sendfile on; Samsa's: 256 MiB of queued response memory, 1024 queued file
 * chunks, trim after a 64 MiB drop; Kafka's unbounded queued request bytes. */
void net_server_config_default(struct net_server_config *cfg);

struct net_handler {
    /* One complete request frame (without its length prefix). The frame memory is
     * borrowed for the duration of the call only. r is owned by the handler until it
     * calls net_reply_send or net_reply_drop, exactly once. */
    void (*on_request)(struct net_conn *c, struct slice frame, struct net_reply *r,
                       void *handler_arg);
    /* The connection is closing (peer closed, error, idle, net_conn_close, shutdown).
     * c is valid during the call only. May be NULL. */
    void (*on_close)(struct net_conn *c, void *handler_arg);
};

/* host: "0.0.0.0", "127.0.0.1", "localhost", "::" or "" (all interfaces, dual stack);
 * port 0 picks a free port. cfg and h are copied. Resolves host synchronously (call at
 * startup). 0 or -errno. */
int net_listen(struct net_loop *loop, const char *host, int port,
               const struct net_server_config *cfg, const struct net_handler *h, void *handler_arg,
               struct net_listener **out);
int net_listener_port(const struct net_listener *l);
/* Makes fd, a connected stream socket (a TCP one, or one end of a socketpair), a
 * connection of l as if l had accepted it: l's limits, handler and budgets apply. For
 * tests that drive a server through their own sockets (tests/unit/server). fd is l's
 * from the call on, closed on failure. 0, or -errno (-ECONNREFUSED: a connection limit
 * refused it, as it refuses an accept). */
int net_listener_adopt(struct net_listener *l, int fd);
/* Stops accepting; existing connections live on. The listener is freed by
 * net_loop_destroy. Idempotent. */
void net_listener_close(struct net_listener *l);
size_t net_listener_conn_count(const struct net_listener *l);
/* Stops every listener and closes every connection of the loop. */
void net_close_all(struct net_loop *loop);
size_t net_conn_count(const struct net_loop *loop);

/* Inside on_request: takes the memory holding frame, if the connection can give it
 * away instead of the caller copying it (the frame is the last thing in the
 * connection's own input buffer; big frames are read so that they are). Returns the
 * block to free() once done with the frame (frame.ptr points inside it), or NULL. */
void *net_frame_take(struct net_conn *c, struct slice frame);

/* Closes c now (on_close runs). Safe inside on_request for c; c must not be used after. */
void net_conn_close(struct net_conn *c);
const char *net_conn_peer(const struct net_conn *c); /* "127.0.0.1:54321", "[::1]:5" */
uint64_t net_conn_id(const struct net_conn *c);
void net_conn_set_data(struct net_conn *c, void *data);
void *net_conn_data(const struct net_conn *c);
/* False while reading is paused by backpressure (for tests and metrics). */
bool net_conn_reading(const struct net_conn *c);
size_t net_conn_unsent_bytes(const struct net_conn *c);

/* What is left of the broker-wide budgets (see struct net_server_config): memory a new
 * reply may still take, and file chunks it may still add. INT64_MAX when unbounded; 0 or
 * negative once the budget is used up (a handler then sends less, or nothing). The
 * reply being built is not counted until it is completed. */
int64_t net_response_bytes_left(const struct net_loop *loop);
int64_t net_response_files_left(const struct net_loop *loop);

/* Loop-wide totals, for tests and metrics. */
struct net_stats {
    int64_t queued_response_bytes; /* memory of complete replies not yet written */
    int64_t queued_response_files; /* file chunks of complete replies not yet written */
    int64_t queued_request_bytes;  /* frames delivered, reply not complete */
    uint64_t budget_pauses;        /* times a connection stopped reading for a budget */
    uint64_t trims;                /* malloc_trim calls */
};
void net_loop_stats(const struct net_loop *loop, struct net_stats *out);

/* ---- outbound connections ----
 * A client connection to another node (Raft messages between controllers, broker
 * registration and heartbeats, follower fetches), in Kafka's framing both ways: each
 * frame is a 4-byte big-endian length, then that many bytes. The caller sends request
 * frames and receives response frames; matching them (correlation ids) is the caller's.
 *
 * Lifetime: from a successful net_client_connect until on_close, which runs exactly
 * once: when connecting fails or times out, when the peer closes or a read or write
 * fails, on a bad frame, on net_client_close, or at net_loop_destroy. The client is
 * freed once on_close has returned (and, if on_close ran inside one of its callbacks,
 * once that callback has returned too); the caller must not touch it afterwards.
 *
 * Bounds: unsent bytes (net_client_set_max_unsent) and response frame size
 * (max_frame_bytes); input memory is at most one frame plus a 64 KiB read chunk. */

struct net_client;

struct net_client_handler {
    /* The TCP connection is established; frames queued so far go out next. May be NULL. */
    void (*on_connect)(struct net_client *cl, void *arg);
    /* One whole response frame, without its length prefix. The memory is borrowed for
     * the call only. May call net_client_send and net_client_close on cl. */
    void (*on_frame)(struct net_client *cl, struct slice frame, void *arg);
    /* The client is closing, for good: err is 0 when the peer closed cleanly between
     * frames, -ECANCELED for net_client_close and net_loop_destroy, -ETIMEDOUT for the
     * connect timeout, -EBADMSG for a response frame of negative length or above
     * max_frame_bytes, else the socket's -errno (-ECONNREFUSED, -ECONNRESET for a close
     * inside a frame, ...). Frames still unsent are discarded. cl is valid during the call
     * only; net_client_send on it fails. May call net_client_connect (a reconnect), except
     * at net_loop_destroy, where that fails with -ECANCELED. May be NULL. */
    void (*on_close)(struct net_client *cl, int err, void *arg);
};

/* Starts a non-blocking connect to host:port. host is an IP literal or a name
 * ("localhost"); it is resolved synchronously (getaddrinfo), so names belong in
 * configuration read at startup, not in DNS. Each resolved address is tried in turn
 * until one accepts. Frames may be queued before the connect completes.
 * connect_timeout_ms bounds the whole connect (<= 0: no bound but the kernel's).
 * max_frame_bytes (> 0, at most INT32_MAX) bounds response frames. h is copied; arg is
 * passed to every callback (h->on_frame must be set). Returns 0 with *out set, or
 * -EINVAL for a bad argument or a host that does not resolve, -ECANCELED while the loop
 * is being destroyed; then nothing was created and no callback runs. Every failure after
 * resolving (no socket, connect refused, timeout) is reported by on_close, from the
 * loop, never from inside this call: a reconnect policy needs one path only. */
int net_client_connect(struct net_loop *loop, const char *host, int port,
                       int64_t connect_timeout_ms, int64_t max_frame_bytes,
                       const struct net_client_handler *h, void *arg, struct net_client **out);
/* Queues one frame: its 4-byte length, then len bytes of data (copied). It is written
 * once connected, after the frames queued before it. Returns 0; -ENOBUFS if the queue
 * already holds bytes and this frame would take it past the unsent limit (the caller
 * drops the frame or retries after the peer has read; a frame larger than the limit
 * is accepted only into an empty queue, so one big frame can always go); -EMSGSIZE if
 * len is above INT32_MAX; -ENOTCONN once closing has started (inside on_close). */
int net_client_send(struct net_client *cl, const void *data, size_t len);
/* Sets the unsent limit of net_client_send (bytes, > 0; default 64 MiB). */
#define NET_CLIENT_DEFAULT_MAX_UNSENT_BYTES (64 * 1024 * 1024)
void net_client_set_max_unsent(struct net_client *cl, size_t max_unsent_bytes);
/* Bytes queued and not yet written to the socket (length prefixes included). */
size_t net_client_unsent_bytes(const struct net_client *cl);
/* True from on_connect until closing starts. */
bool net_client_connected(const struct net_client *cl);
/* "host:port" as given to net_client_connect, for log lines. */
const char *net_client_peer(const struct net_client *cl);
/* Closes cl now, discarding unsent frames; on_close runs with -ECANCELED before this
 * returns. Safe inside on_connect and on_frame (cl stays allocated until the callback
 * returns, but must not be used); inside on_close, a no-op. */
void net_client_close(struct net_client *cl);
/* Open clients of the loop (tests and metrics). */
size_t net_client_count(const struct net_loop *loop);

/* ---- requests to a peer ----
 * A Kafka client's request/response discipline over one net_client to host:port:
 * each request gets a correlation id (written into its header), its response is
 * matched to it (responses come in request order) and handed to its callback, each
 * request is answered exactly once, by its response or by an error. The connection is
 * opened by the first request, and again by the next request after it closed; a
 * request not answered by its deadline closes it (the ones behind it could not be
 * answered either), as Kafka's clients do.
 *
 * Errors given to done: -ETIMEDOUT (its deadline passed), -ECANCELED (net_rpc_close,
 * net_loop_destroy), or how the connection ended (-ECONNREFUSED, -ECONNRESET, ...,
 * as net_client's on_close says; -ECONNRESET for a clean close), -EBADMSG for a
 * response that answers no request in flight (the connection is dropped). The response given is the whole frame (the response
 * header, correlation id first, then the body), borrowed for the call. A callback may
 * send more requests, or close the rpc. */
struct net_rpc;
typedef void (*net_rpc_done)(void *arg, int err, struct slice response);
/* A peer at host:port (see net_client_connect for the timeout and frame bound). No
 * connection yet. 0, or -EINVAL. */
int net_rpc_open(struct net_loop *loop, const char *host, int port, int64_t connect_timeout_ms,
                 int64_t max_frame_bytes, struct net_rpc **out);
/* Sends a request frame: a Kafka request header (api key, version, correlation id:
 * overwritten here, ...) and body. done runs once, from the loop, never inside this
 * call. 0, or -errno when nothing was sent (done will not run): a connect that could
 * not start, net_client_send's refusals, -ECANCELED after net_rpc_close. */
int net_rpc_send(struct net_rpc *rpc, uint8_t *frame, size_t len, int64_t timeout_ms,
                 net_rpc_done done, void *arg);
/* Requests sent and not answered yet. */
size_t net_rpc_in_flight(const struct net_rpc *rpc);
const char *net_rpc_peer_host(const struct net_rpc *rpc);
int net_rpc_peer_port(const struct net_rpc *rpc);
/* Ends every request in flight with -ECANCELED (their callbacks run before this
 * returns) and frees rpc (once a callback running it returned). NULL: no-op. */
void net_rpc_close(struct net_rpc *rpc);

/* ---- replies ----
 * Building: append/reserve/buf/add_file, in any mix; bytes go out in the order added.
 * Completing: net_reply_send or net_reply_drop, exactly once; after that r belongs to
 * net and must not be touched. If the connection closed meanwhile, the reply is an
 * orphan: building still works (bytes are discarded) and completing frees it. */
void net_reply_append(struct net_reply *r, const void *data, size_t len);
/* len bytes at the end of the body, valid until the next append/reserve/add_file. */
uint8_t *net_reply_reserve(struct net_reply *r, size_t len);
/* The body buffer, for encoding in place. Append only: never shrink it below what was
 * there when a file chunk was added. */
struct buf *net_reply_buf(struct net_reply *r);
/* Sends len bytes of fd from offset after the bytes added so far. Ownership of fd is
 * transferred (pass a dup); net closes it once the reply is sent or discarded. */
void net_reply_add_file(struct net_reply *r, int fd, int64_t offset, int64_t len);
/* The reply will grow by about extra_bytes more: allocates them now, exactly. (The body
 * otherwise grows by doubling, so a big reply could hold twice its bytes.) */
void net_reply_expect(struct net_reply *r, size_t extra_bytes);
/* True if r is the oldest reply of its connection not yet written: no earlier reply
 * waits in front of it, so whatever r holds goes out as soon as the peer reads. False
 * for an orphan. */
bool net_reply_is_head(const struct net_reply *r);
/* Total response size so far (body + file chunks, without the length prefix). */
int64_t net_reply_size(const struct net_reply *r);
void net_reply_send(struct net_reply *r);
/* Completes r with no bytes on the wire (acks=0 produce). */
void net_reply_drop(struct net_reply *r);
struct net_conn *net_reply_conn(const struct net_reply *r); /* NULL once orphaned */
bool net_reply_orphaned(const struct net_reply *r);

#endif
