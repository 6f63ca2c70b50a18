/*
 * Outbound connections to other nodes (net_client_*): connect, Kafka framing both ways,
 * one queue of unsent request frames, response frames delivered whole.
 *
 * Connecting: the host is resolved once (getaddrinfo, synchronous) and its addresses
 * are tried in turn: a non-blocking connect(2), then NET_WRITABLE, then SO_ERROR tells
 * whether it worked; a failure moves on to the next address. When the last one fails,
 * or the connect timer fires, the client closes. A connect(2) that fails at once on the
 * last address is reported the same way, from a timer of delay 0: callers then meet
 * every failure to reach the peer in on_close, never as a return of net_client_connect.
 *
 * Writes: net_client_send only appends to the output buffer and asks for NET_WRITABLE;
 * the fd callback writes. So a write error never closes the client under the caller of
 * net_client_send, and all frames queued during one loop iteration leave together.
 *
 * Reads: up to a 64 KiB chunk at a time, parsing every complete frame in it; a frame
 * larger than the chunk is read exactly up to its end into a buffer sized exactly for
 * it, so input memory is bounded by one frame (max_frame_bytes) plus the chunk.
 *
 * Lifetime: busy counts client code on the stack (the fd callback, which runs every
 * client callback but on_close from timers or net_client_close). Closing runs on_close
 * at once and releases the socket, but the memory is freed only when busy drops to 0:
 * a frame being delivered and the fd callback's cl stay valid after a close inside
 * on_frame or on_connect. Open clients sit on loop->clients so net_loop_destroy closes
 * them; a closing client is unlinked first, so on_close may connect a new one.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/internal.h"

#define READ_CHUNK_BYTES (64 * 1024)
#define KEEP_BYTES (64 * 1024) /* larger buffers are freed once empty */

struct net_client {
    struct net_loop *loop;
    struct net_client *prev, *next; /* loop->clients, until closing starts */
    struct net_client_handler h;
    void *arg;
    char peer[300];          /* "host:port", for log lines */
    struct addrinfo *addrs;  /* resolved addresses, until connected or closed */
    struct addrinfo *addr;   /* the address being tried */
    int fd;                  /* -1 between attempts and once closed */
    uint32_t events;         /* NET_* registered for fd */
    int64_t max_frame_bytes; /* response frames above it close the client */
    size_t max_unsent_bytes;
    struct buf out;      /* queued frames with their prefixes; out[0, out_off) is written */
    size_t out_off;      /* ... and out_off <= out.len always */
    struct buf in;       /* received bytes not delivered yet; starts at a frame boundary */
    uint64_t fail_timer; /* connect timeout, or a failure to report from the loop */
    int fail_err;        /* what fail_timer reports; 0: it is the connect timeout */
    bool connected;
    bool closed; /* on_close has run or is running */
    int busy;    /* client code on the stack for this client */
};

static void client_cb(struct net_loop *loop, int fd, uint32_t events, void *arg);

static void client_maybe_free(struct net_client *cl)
{
    if (!cl->closed || cl->busy > 0)
        return;
    ASSERT(cl->fd < 0 && cl->addrs == NULL && cl->fail_timer == 0);
    buf_free(&cl->in);
    buf_free(&cl->out);
    free(cl);
}

static void client_close(struct net_client *cl, int err)
{
    if (cl->closed)
        return;
    struct net_loop *loop = cl->loop;
    cl->closed = true;
    cl->connected = false;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        loop->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    cl->prev = cl->next = NULL;
    loop->client_count--;
    if (cl->fd >= 0) {
        net_unwatch(loop, cl->fd);
        if (close(cl->fd) < 0)
            say_warn_ratelimited("net", "close of client socket to %s failed: %s", cl->peer,
                                 strerror(errno));
        cl->fd = -1;
    }
    net_timer_cancel(loop, cl->fail_timer);
    cl->fail_timer = 0;
    if (cl->addrs)
        freeaddrinfo(cl->addrs);
    cl->addrs = cl->addr = NULL;
    /* Unsent frames die with the connection; in stays, a frame in it may be borrowed. */
    buf_free(&cl->out);
    cl->out_off = 0;
    say_debug("net", "client connection to %s closed: %s", cl->peer,
              err ? strerror(-err) : "closed by peer");
    if (cl->h.on_close) {
        cl->busy++;
        cl->h.on_close(cl, err, cl->arg);
        cl->busy--;
    }
    client_maybe_free(cl);
}

static void fail_timer_cb(struct net_loop *loop, void *arg)
{
    struct net_client *cl = arg;
    cl->fail_timer = 0;
    int err = cl->fail_err ? cl->fail_err : -ETIMEDOUT;
    if (err == -ETIMEDOUT)
        say_debug("net", "connect to %s timed out", cl->peer);
    client_close(cl, err);
}

/* Closes cl from the loop soon, for a failure met where closing now would free cl
 * under a caller that still uses it. Replaces the connect timeout. */
static void client_fail_later(struct net_client *cl, int err)
{
    net_timer_cancel(cl->loop, cl->fail_timer);
    cl->fail_err = err;
    cl->fail_timer = net_timer_add(cl->loop, 0, fail_timer_cb, cl);
}

/* Starts a connect to cl->addr or, if that fails at once, to the addresses after it.
 * Returns 0 once one is in progress, else the last failure (last_err if none is left). */
static int client_try(struct net_client *cl, int last_err)
{
    int rc = last_err;
    for (; cl->addr; cl->addr = cl->addr->ai_next) {
        const struct addrinfo *ai = cl->addr;
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            say_warn_ratelimited("net", "socket for a connection to %s failed: %s", cl->peer,
                                 strerror(errno));
            continue;
        }
        /* Inter-node RPCs are small request/response exchanges: no Nagle delay. */
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
            say_warn_ratelimited("net", "TCP_NODELAY for %s failed: %s", cl->peer, strerror(errno));
        /* EINTR: the connect goes on asynchronously, as for EINPROGRESS. */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS &&
            errno != EINTR) {
            rc = -errno;
            say_debug("net", "connect to %s failed: %s", cl->peer, strerror(errno));
            close(fd);
            continue;
        }
        rc = net_watch(cl->loop, fd, NET_WRITABLE, client_cb, cl);
        if (rc < 0) {
            close(fd);
            continue;
        }
        cl->fd = fd;
        cl->events = NET_WRITABLE;
        return 0;
    }
    return rc;
}

int net_client_connect(struct net_loop *loop, const char *host, int port,
                       int64_t connect_timeout_ms, int64_t max_frame_bytes,
                       const struct net_client_handler *h, void *arg, struct net_client **out)
{
    ASSERT(h != NULL && h->on_frame != NULL && out != NULL);
    if (loop->destroying)
        return -ECANCELED;
    if (host == NULL || host[0] == '\0' || port <= 0 || port > 65535 || max_frame_bytes <= 0 ||
        max_frame_bytes > INT32_MAX)
        return -EINVAL;
    char port_str[16];
    snprintf(port_str, sizeof port_str, "%d", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port_str, &hints, &res);
    if (gai != 0) {
        say_error("net", "cannot resolve host '%s' to connect to: %s", host, gai_strerror(gai));
        return -EINVAL;
    }

    struct net_client *cl = xcalloc(1, sizeof *cl);
    cl->loop = loop;
    cl->h = *h;
    cl->arg = arg;
    snprintf(cl->peer, sizeof cl->peer, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    cl->addrs = cl->addr = res;
    cl->fd = -1;
    cl->max_frame_bytes = max_frame_bytes;
    cl->max_unsent_bytes = NET_CLIENT_DEFAULT_MAX_UNSENT_BYTES;
    cl->next = loop->clients;
    if (loop->clients)
        loop->clients->prev = cl;
    loop->clients = cl;
    loop->client_count++;

    int rc = client_try(cl, -EHOSTUNREACH);
    if (rc < 0)
        client_fail_later(cl, rc);
    else if (connect_timeout_ms > 0)
        cl->fail_timer = net_timer_add(loop, connect_timeout_ms, fail_timer_cb, cl);
    *out = cl;
    return 0;
}

/* NET_READABLE always once connected, NET_WRITABLE while connecting or holding unsent
 * bytes. */
static void client_update_interest(struct net_client *cl)
{
    uint32_t ev = NET_WRITABLE;
    if (cl->connected)
        ev = NET_READABLE | (cl->out.len > cl->out_off ? NET_WRITABLE : 0u);
    if (ev == cl->events)
        return;
    int rc = net_watch_modify(cl->loop, cl->fd, ev);
    if (rc < 0) {
        client_close(cl, rc);
        return;
    }
    cl->events = ev;
}

/* Writes as much of the output buffer as the socket takes. May close cl. */
static void client_write(struct net_client *cl)
{
    while (cl->out_off < cl->out.len) {
        size_t want = cl->out.len - cl->out_off;
        ssize_t n = send(cl->fd, cl->out.data + cl->out_off, want, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            int rc = -errno;
            say_info_ratelimited("net", "write to %s failed: %s; closing", cl->peer,
                                 strerror(errno));
            client_close(cl, rc);
            return;
        }
        cl->out_off += (size_t)n;
        if ((size_t)n < want)
            break; /* the socket buffer is full: the next send would be EAGAIN */
    }
    if (cl->out_off == cl->out.len) {
        cl->out.len = cl->out_off = 0;
        if (cl->out.cap > KEEP_BYTES)
            buf_free(&cl->out);
    } else if (cl->out_off >= cl->out.len / 2) {
        /* Keeps the buffer at most twice the unsent bytes while the peer reads slowly
         * and frames keep coming; each byte moves at most once per byte written. */
        memmove(cl->out.data, cl->out.data + cl->out_off, cl->out.len - cl->out_off);
        cl->out.len -= cl->out_off;
        cl->out_off = 0;
    }
}

/* Delivers every complete frame in cl->in, then drops them. May close cl. */
static void client_parse(struct net_client *cl)
{
    size_t off = 0;
    while (!cl->closed && cl->in.len - off >= 4) {
        int32_t frame_len = (int32_t)be32_read(cl->in.data + off);
        if (frame_len < 0 || frame_len > cl->max_frame_bytes) {
            say_warn_ratelimited("net",
                                 "closing connection to %s: invalid response size %d "
                                 "(max %lld)",
                                 cl->peer, frame_len, (long long)cl->max_frame_bytes);
            client_close(cl, -EBADMSG);
            return;
        }
        if (cl->in.len - off - 4 < (size_t)frame_len)
            break;
        cl->h.on_frame(cl, (struct slice){cl->in.data + off + 4, (size_t)frame_len}, cl->arg);
        off += 4 + (size_t)frame_len;
    }
    if (cl->closed)
        return;
    if (off == cl->in.len) {
        cl->in.len = 0;
        if (cl->in.cap > KEEP_BYTES)
            buf_free(&cl->in);
    } else if (off > 0) {
        memmove(cl->in.data, cl->in.data + off, cl->in.len - off);
        cl->in.len -= off;
    }
}

/* One read: a chunk, or the rest of a frame larger than a chunk, exactly. May close cl. */
static void client_read(struct net_client *cl)
{
    size_t target = READ_CHUNK_BYTES;
    if (cl->in.len >= 4) /* a valid length: client_parse checked it */
        target = MAX(target, 4 + (size_t)be32_read(cl->in.data));
    ASSERT(target > cl->in.len); /* the buffer holds no complete frame */
    if (cl->in.cap < target) {   /* exactly: a big frame must not cost twice its size */
        cl->in.data = xrealloc(cl->in.data, target);
        cl->in.cap = target;
    }
    ssize_t n = read(cl->fd, cl->in.data + cl->in.len, target - cl->in.len);
    if (n == 0) {
        /* Between frames the peer closed cleanly; inside one, a response was cut off. */
        client_close(cl, cl->in.len > 0 ? -ECONNRESET : 0);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        int rc = -errno;
        say_info_ratelimited("net", "read from %s failed: %s; closing", cl->peer, strerror(errno));
        client_close(cl, rc);
        return;
    }
    cl->in.len += (size_t)n;
    client_parse(cl);
}

static int socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

/* The socket of a connect in progress became writable or failed. */
static void client_connect_done(struct net_client *cl, uint32_t events)
{
    int err = socket_error(cl->fd);
    if (err == 0 && (events & NET_ERROR))
        err = ECONNRESET; /* hung up without saying why */
    if (err != 0) {
        say_debug("net", "connect to %s failed: %s", cl->peer, strerror(err));
        net_unwatch(cl->loop, cl->fd);
        close(cl->fd);
        cl->fd = -1;
        cl->addr = cl->addr->ai_next;
        int rc = client_try(cl, -err);
        if (rc < 0)
            client_close(cl, rc);
        return;
    }
    cl->connected = true;
    net_timer_cancel(cl->loop, cl->fail_timer);
    cl->fail_timer = 0;
    freeaddrinfo(cl->addrs);
    cl->addrs = cl->addr = NULL;
    say_debug("net", "connected to %s", cl->peer);
    if (cl->h.on_connect)
        cl->h.on_connect(cl, cl->arg);
    if (!cl->closed)
        client_write(cl); /* the socket is writable: no need to wait for the next event */
}

static void client_cb(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    struct net_client *cl = arg;
    cl->busy++;
    if (!cl->connected) {
        client_connect_done(cl, events);
    } else {
        int err = (events & NET_ERROR) ? socket_error(fd) : 0;
        if (err != 0) {
            say_info_ratelimited("net", "connection to %s failed: %s; closing", cl->peer,
                                 strerror(err));
            client_close(cl, -err);
        }
        if (!cl->closed && (events & NET_WRITABLE))
            client_write(cl);
        if (!cl->closed && (events & NET_READABLE))
            client_read(cl);
    }
    if (!cl->closed)
        client_update_interest(cl);
    cl->busy--;
    client_maybe_free(cl);
}

int net_client_send(struct net_client *cl, const void *data, size_t len)
{
    if (cl->closed)
        return -ENOTCONN;
    if (len > INT32_MAX)
        return -EMSGSIZE;
    size_t unsent = cl->out.len - cl->out_off;
    if (unsent > 0 && (unsent >= cl->max_unsent_bytes || 4 + len > cl->max_unsent_bytes - unsent))
        return -ENOBUFS;
    buf_reserve(&cl->out, 4 + len);
    be32_write(cl->out.data + cl->out.len, (uint32_t)len);
    if (len > 0)
        memcpy(cl->out.data + cl->out.len + 4, data, len);
    cl->out.len += 4 + len;
    if (cl->connected && !(cl->events & NET_WRITABLE)) {
        int rc = net_watch_modify(cl->loop, cl->fd, cl->events | NET_WRITABLE);
        if (rc < 0)
            client_fail_later(cl, rc); /* not now: the caller still holds cl */
        else
            cl->events |= NET_WRITABLE;
    }
    return 0;
}

void net_client_set_max_unsent(struct net_client *cl, size_t max_unsent_bytes)
{
    ASSERT(max_unsent_bytes > 0);
    cl->max_unsent_bytes = max_unsent_bytes;
}

size_t net_client_unsent_bytes(const struct net_client *cl)
{
    return cl->out.len - cl->out_off;
}

bool net_client_connected(const struct net_client *cl)
{
    return cl->connected && !cl->closed;
}

const char *net_client_peer(const struct net_client *cl)
{
    return cl->peer;
}

void net_client_close(struct net_client *cl)
{
    client_close(cl, -ECANCELED);
}

size_t net_client_count(const struct net_loop *loop)
{
    return loop->client_count;
}

void net__client_shutdown(struct net_loop *loop)
{
    ASSERT(loop->destroying); /* else on_close could connect new clients forever */
    while (loop->clients)
        client_close(loop->clients, -ECANCELED);
    ASSERT(loop->client_count == 0);
}
