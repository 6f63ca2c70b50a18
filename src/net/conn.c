/*
 * Listeners and connections: accept, Kafka framing, ordered replies with async
 * completion, writev/sendfile output, backpressure and idle timeouts.
 *
 * Reads: a connection with nothing buffered reads into the loop's shared scratch
 * buffer and parses frames straight from it; only a trailing partial frame is copied
 * into the connection's own buffer. So idle connections hold no input memory, and
 * one read can carry many pipelined requests.
 *
 * Replies: every frame gets a struct net_reply appended to the connection's queue
 * before on_request runs, so the queue order is the request order. A reply's bytes are
 * a sequence of segments: net's 4-byte length prefix, then body memory and file ranges
 * interleaved in the order they were added (see seg_get). Writes gather the segments of
 * all complete replies at the head of the queue into one sendmsg, up to the first
 * incomplete reply (which holds back every later one) or the first file segment
 * (sent with sendfile, or pread into the scratch buffer + send).
 *
 * Writes are not issued from net_reply_send: the connection is put on the loop's flush
 * list, and net__flush writes once per iteration after the idle hooks. That batches the
 * replies of a whole read into one syscall and keeps callbacks from re-entering.
 *
 * Budgets: besides each connection's own bounds (replies in flight, unsent bytes), the
 * loop keeps broker-wide totals: memory of complete replies not yet written, their file
 * chunks, and request bytes whose reply is not complete (see struct net_server_config).
 * A connection stopped by a budget alone waits on loop->budget_waiters; net__flush
 * resumes them all once the totals are back under their limits. Memory handed back by
 * closed or drained connections is returned to the system (malloc_trim) after a large
 * drop, since main.c keeps freed memory for reuse up to a high threshold.
 *
 * Lifetime: a connection closed while net code is still on its stack (busy > 0) or
 * while it sits on the flush list stays allocated as a zombie until both are clear.
 * Replies the handler still holds when their connection closes become orphans
 * (conn = NULL); completing an orphan frees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/internal.h"

#define SCRATCH_BYTES (256 * 1024)   /* shared read buffer and pread bounce buffer */
#define READ_CHUNK_BYTES (64 * 1024) /* minimum read into a connection's own buffer */
#define IN_KEEP_BYTES (64 * 1024)    /* larger input buffers are freed once empty */
#define REPLY_KEEP_BYTES (64 * 1024) /* larger reply bodies are not pooled */
#define REPLY_POOL_MAX 1024
#define REPLY_POOL_MAX_BYTES (8 * 1024 * 1024) /* body memory kept by pooled replies */
#define TRIM_INTERVAL_MS 1000
#define IOV_BATCH 128
#define ACCEPT_BATCH 64
#define ACCEPT_RETRY_MS 100
#define SENDFILE_MAX_BYTES (1 << 30)

struct file_chunk {
    int fd;
    int64_t offset;
    int64_t len;
    size_t mark; /* body length when added: the file goes after body[0, mark) */
};

struct net_reply {
    struct net_reply *next; /* connection queue, or the loop's pool */
    struct net_conn *conn;  /* NULL once orphaned */
    struct buf body;
    struct file_chunk *files;
    uint32_t nfiles;
    uint32_t files_cap;
    int64_t file_bytes;
    uint8_t hdr[4]; /* the length prefix, written at completion */
    bool complete;
    uint32_t nsegs;      /* 2 * nfiles + 2 once sent, 0 if dropped */
    uint32_t seg;        /* next segment to write */
    int64_t seg_off;     /* bytes of segment seg already written */
    int64_t req_bytes;   /* counted in loop->req_bytes until completed */
    int64_t held_bytes;  /* counted in loop->resp_bytes from completion to release */
    uint32_t held_files; /* counted in loop->resp_files likewise */
};

struct net_conn {
    struct net_loop *loop;
    struct net_listener *lst;
    struct net_conn *prev, *next;           /* listener's connection list */
    struct net_conn *flush_next;            /* loop's flush list while in_flush */
    struct net_conn *wait_prev, *wait_next; /* loop->budget_waiters while budget_wait */
    int fd;
    uint64_t id;
    char peer[64];
    uint8_t addr[16]; /* peer address: its key in loop->conns_per_ip */
    void *data;
    uint32_t events;               /* NET_* currently registered with the loop */
    struct buf in;                 /* unparsed input; starts at a frame boundary */
    struct net_reply *head, *tail; /* replies in request order, not yet fully written */
    uint32_t queued;               /* replies in the queue (complete or not) */
    int64_t unsent_bytes;          /* unwritten bytes of complete replies in the queue */
    int64_t last_active_ms;
    uint64_t resume_timer; /* parses buffered frames after backpressure ends */
    bool write_blocked;    /* last write hit EAGAIN: waiting for NET_WRITABLE */
    bool paused;           /* reading stopped by backpressure */
    bool budget_wait;      /* on loop->budget_waiters */
    bool in_flush;
    bool big_frames; /* the last frame seen was over half the scratch buffer */
    bool in_taken;   /* net_frame_take gave c->in's memory to a request */
    bool closed;
    int busy; /* net frames on the stack using this connection */
};

struct net_listener {
    struct net_loop *loop;
    struct net_listener *next;
    int fd; /* -1 once closed */
    int port;
    struct net_server_config cfg;
    struct net_handler h;
    void *harg;
    struct net_conn *conns;
    size_t count;
    uint64_t sweep_timer;
    uint64_t accept_retry_timer;
    struct net_ip_limit *ip_limits; /* owned copy of cfg.ip_limits */
    struct hmap ip_limit_map;       /* address -> its entry in ip_limits (the last one) */
};

void net_server_config_default(struct net_server_config *cfg)
{
    *cfg = (struct net_server_config){
        .max_frame_bytes = 100 * 1024 * 1024,
        .max_unsent_bytes = 16 * 1024 * 1024,
        .max_inflight_requests = 100,
        .idle_timeout_ms = 600000,
        .max_connections = 10000,
        .use_sendfile = true,
        .max_connections_per_ip = INT32_MAX,
        .max_queued_response_bytes = 256 * 1024 * 1024,
        .max_queued_request_bytes = -1,
        .max_queued_response_files = 1024,
        .trim_after_drop_bytes = 64 * 1024 * 1024, /* main.c's M_TRIM_THRESHOLD */
    };
}

int net_ip_parse(const char *s, uint8_t out[16])
{
    struct in_addr a4;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return 0;
    }
    char inner[INET6_ADDRSTRLEN];
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') { /* "[::1]", as in listeners */
        if (len - 2 >= sizeof inner)
            return -EINVAL;
        memcpy(inner, s + 1, len - 2);
        inner[len - 2] = '\0';
        s = inner;
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, s, &a6) != 1)
        return -EINVAL;
    memcpy(out, &a6, 16);
    return 0;
}

/* ---- replies ---- */

static void reply_close_files(struct net_reply *r)
{
    for (uint32_t i = 0; i < r->nfiles; i++)
        close(r->files[i].fd);
    r->nfiles = 0;
    r->file_bytes = 0;
}

static void reply_free(struct net_reply *r)
{
    reply_close_files(r);
    buf_free(&r->body);
    free(r->files);
    free(r);
}

static struct net_reply *reply_get(struct net_loop *loop, struct net_conn *c)
{
    struct net_reply *r = loop->reply_pool;
    if (r) {
        loop->reply_pool = r->next;
        loop->reply_pool_len--;
        loop->reply_pool_bytes -= r->body.cap;
    } else {
        r = xcalloc(1, sizeof *r);
    }
    r->next = NULL;
    r->conn = c;
    r->complete = false;
    r->nsegs = r->seg = 0;
    r->seg_off = 0;
    r->req_bytes = r->held_bytes = 0;
    r->held_files = 0;
    return r;
}

/* Returns a sent or discarded reply to the pool (keeping small buffers), and what it
 * held to the budgets. */
static void reply_release(struct net_loop *loop, struct net_reply *r)
{
    loop->resp_bytes -= r->held_bytes;
    loop->resp_files -= r->held_files;
    ASSERT(loop->resp_bytes >= 0 && loop->resp_files >= 0);
    r->held_bytes = 0;
    r->held_files = 0;
    reply_close_files(r);
    if (loop->reply_pool_len >= REPLY_POOL_MAX) {
        reply_free(r);
        return;
    }
    if (r->body.cap > REPLY_KEEP_BYTES ||
        loop->reply_pool_bytes + r->body.cap > REPLY_POOL_MAX_BYTES)
        buf_free(&r->body);
    buf_reset(&r->body);
    loop->reply_pool_bytes += r->body.cap;
    r->conn = NULL;
    r->next = loop->reply_pool;
    loop->reply_pool = r;
    loop->reply_pool_len++;
}

struct seg {
    const uint8_t *ptr; /* memory segment, or NULL for a file */
    int fd;
    int64_t offset;
    int64_t len;
};

/* Segment k of a complete reply: 0 is the length prefix; then body memory before file
 * 0 (k = 1), file 0 (k = 2), body between files 0 and 1 (k = 3), ..., and the body
 * after the last file (k = 2 * nfiles + 1). Memory segments may be empty. */
static void seg_get(const struct net_reply *r, uint32_t k, struct seg *s)
{
    if (k == 0) {
        *s = (struct seg){.ptr = r->hdr, .fd = -1, .len = 4};
    } else if (k % 2 == 1) {
        uint32_t i = (k - 1) / 2;
        size_t from = i == 0 ? 0 : r->files[i - 1].mark;
        size_t to = i < r->nfiles ? r->files[i].mark : r->body.len;
        /* An empty segment still gets a non-NULL pointer: NULL marks a file. */
        const uint8_t *p = to > from ? r->body.data + from : r->hdr;
        *s = (struct seg){.ptr = p, .fd = -1, .len = (int64_t)(to - from)};
    } else {
        const struct file_chunk *f = &r->files[k / 2 - 1];
        *s = (struct seg){.ptr = NULL, .fd = f->fd, .offset = f->offset, .len = f->len};
    }
}

void net_reply_append(struct net_reply *r, const void *data, size_t len)
{
    ASSERT(!r->complete);
    buf_append(&r->body, data, len);
}

void net_reply_expect(struct net_reply *r, size_t extra_bytes)
{
    ASSERT(!r->complete);
    size_t need = r->body.len + extra_bytes;
    ASSERT(need >= r->body.len);
    if (need <= r->body.cap)
        return;
    r->body.data = xrealloc(r->body.data, need);
    r->body.cap = need;
}

bool net_reply_is_head(const struct net_reply *r)
{
    return r->conn != NULL && r->conn->head == r;
}

uint8_t *net_reply_reserve(struct net_reply *r, size_t len)
{
    ASSERT(!r->complete);
    buf_reserve(&r->body, len ? len : 1); /* never NULL, even for len 0 */
    uint8_t *p = r->body.data + r->body.len;
    r->body.len += len;
    return p;
}

struct buf *net_reply_buf(struct net_reply *r)
{
    ASSERT(!r->complete);
    return &r->body;
}

void net_reply_add_file(struct net_reply *r, int fd, int64_t offset, int64_t len)
{
    ASSERT(!r->complete && fd >= 0 && offset >= 0 && len >= 0);
    if (len == 0) {
        close(fd);
        return;
    }
    if (r->nfiles == r->files_cap) {
        r->files_cap = r->files_cap ? r->files_cap * 2 : 4;
        r->files = xrealloc(r->files, r->files_cap * sizeof(*r->files));
    }
    ASSERT(r->nfiles == 0 || r->files[r->nfiles - 1].mark <= r->body.len);
    r->files[r->nfiles++] = (struct file_chunk){fd, offset, len, r->body.len};
    r->file_bytes += len;
}

int64_t net_reply_size(const struct net_reply *r)
{
    return (int64_t)r->body.len + r->file_bytes;
}

struct net_conn *net_reply_conn(const struct net_reply *r)
{
    return r->conn;
}
bool net_reply_orphaned(const struct net_reply *r)
{
    return r->conn == NULL;
}

static void flush_add(struct net_conn *c)
{
    if (c->in_flush)
        return;
    c->in_flush = true;
    c->flush_next = c->loop->flush_head;
    c->loop->flush_head = c;
}

static void reply_complete(struct net_reply *r, bool drop)
{
    ASSERT(!r->complete);
    struct net_conn *c = r->conn;
    if (c == NULL) { /* orphan: the connection is gone, nobody will send this */
        reply_free(r);
        return;
    }
    struct net_loop *loop = c->loop;
    r->complete = true;
    loop->req_bytes -= r->req_bytes;
    ASSERT(loop->req_bytes >= 0);
    r->req_bytes = 0;
    if (drop) {
        r->nsegs = 0;
    } else {
        int64_t size = net_reply_size(r);
        ASSERT(size <= INT32_MAX); /* a handler bug: Kafka responses are < 2 GiB */
        be32_write(r->hdr, (uint32_t)size);
        r->nsegs = 2 * r->nfiles + 2;
        c->unsent_bytes += 4 + size;
        /* Memory by capacity: that is what the allocator holds for it. */
        r->held_bytes = (int64_t)r->body.cap;
        r->held_files = r->nfiles;
        loop->resp_bytes += r->held_bytes;
        loop->resp_files += r->held_files;
        loop->resp_peak = MAX(loop->resp_peak, loop->resp_bytes);
    }
    flush_add(c);
}

void net_reply_send(struct net_reply *r)
{
    reply_complete(r, false);
}
void net_reply_drop(struct net_reply *r)
{
    reply_complete(r, true);
}

/* ---- connections ---- */

const char *net_conn_peer(const struct net_conn *c)
{
    return c->peer;
}
uint64_t net_conn_id(const struct net_conn *c)
{
    return c->id;
}
void net_conn_set_data(struct net_conn *c, void *data)
{
    c->data = data;
}
void *net_conn_data(const struct net_conn *c)
{
    return c->data;
}
bool net_conn_reading(const struct net_conn *c)
{
    return !c->paused && !c->closed;
}
size_t net_conn_unsent_bytes(const struct net_conn *c)
{
    return (size_t)c->unsent_bytes;
}

int64_t net_response_bytes_left(const struct net_loop *loop)
{
    return loop->max_resp_bytes > 0 ? loop->max_resp_bytes - loop->resp_bytes : INT64_MAX;
}

int64_t net_response_files_left(const struct net_loop *loop)
{
    return loop->max_resp_files > 0 ? loop->max_resp_files - loop->resp_files : INT64_MAX;
}

void net_loop_stats(const struct net_loop *loop, struct net_stats *out)
{
    *out = (struct net_stats){
        .queued_response_bytes = loop->resp_bytes,
        .queued_response_files = loop->resp_files,
        .queued_request_bytes = loop->req_bytes,
        .budget_pauses = loop->budget_pauses,
        .trims = loop->trims,
    };
}

/* ---- broker-wide budgets ---- */

static bool resp_budget_full(const struct net_loop *loop)
{
    return loop->max_resp_bytes > 0 && loop->resp_bytes >= loop->max_resp_bytes;
}

static bool req_budget_full(const struct net_loop *loop)
{
    return loop->max_req_bytes > 0 && loop->req_bytes >= loop->max_req_bytes;
}

/* A full request budget stops every connection, as Kafka's does (requests complete by
 * themselves, so it empties). A full response budget stops only connections that hold
 * unsent bytes: those are what fills it, and one that has written everything must still
 * get its requests read, or a healthy client would wait as long as the slow ones. */
static bool budget_blocks(const struct net_conn *c)
{
    return req_budget_full(c->loop) || (resp_budget_full(c->loop) && c->unsent_bytes > 0);
}

static void wait_add(struct net_conn *c)
{
    if (c->budget_wait)
        return;
    struct net_loop *loop = c->loop;
    c->budget_wait = true;
    c->wait_prev = NULL;
    c->wait_next = loop->budget_waiters;
    if (c->wait_next)
        c->wait_next->wait_prev = c;
    loop->budget_waiters = c;
    loop->budget_pauses++;
    bool req = req_budget_full(loop);
    say_warn_ratelimited("net", "not reading requests from %s for now: %s (%lld of %lld bytes)",
                         c->peer,
                         req ? "queued.max.request.bytes reached"
                             : "samsa.queued.max.response.bytes reached and it has "
                               "unsent responses",
                         (long long)(req ? loop->req_bytes : loop->resp_bytes),
                         (long long)(req ? loop->max_req_bytes : loop->max_resp_bytes));
}

static void wait_remove(struct net_conn *c)
{
    if (!c->budget_wait)
        return;
    if (c->wait_prev)
        c->wait_prev->wait_next = c->wait_next;
    else
        c->loop->budget_waiters = c->wait_next;
    if (c->wait_next)
        c->wait_next->wait_prev = c->wait_prev;
    c->wait_prev = c->wait_next = NULL;
    c->budget_wait = false;
}

/* Open connections from addr, over all listeners of the loop. */
static uint32_t ip_count(const struct net_loop *loop, const uint8_t addr[16])
{
    return (uint32_t)(uintptr_t)hmap_get(&loop->conns_per_ip, (struct slice){addr, 16});
}

static void ip_count_add(struct net_loop *loop, const uint8_t addr[16], int delta)
{
    struct slice key = {addr, 16};
    uint32_t n = ip_count(loop, addr);
    ASSERT(delta > 0 || n >= (uint32_t)-delta);
    n = (uint32_t)((int64_t)n + delta);
    if (n == 0) /* no entry at 0: the map holds only addresses with open connections */
        hmap_remove(&loop->conns_per_ip, key);
    else
        hmap_put(&loop->conns_per_ip, key, (void *)(uintptr_t)n);
}

static void conn_maybe_free(struct net_conn *c)
{
    if (!c->closed || c->busy > 0 || c->in_flush)
        return;
    buf_free(&c->in);
    free(c);
}

static void conn_close(struct net_conn *c)
{
    if (c->closed)
        return;
    struct net_loop *loop = c->loop;
    struct net_listener *l = c->lst;
    c->closed = true;
    net_unwatch(loop, c->fd);
    if (close(c->fd) < 0)
        say_warn_ratelimited("net", "close of connection %s failed: %s", c->peer, strerror(errno));
    c->fd = -1;
    net_timer_cancel(loop, c->resume_timer);
    c->resume_timer = 0;
    wait_remove(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->count--;
    ip_count_add(loop, c->addr, -1);
    /* Complete replies die with the connection; incomplete ones become orphans that
     * their handler frees by completing them. */
    struct net_reply *r = c->head;
    while (r) {
        struct net_reply *next = r->next;
        if (r->complete) {
            reply_release(loop, r);
        } else { /* its request bytes die with it: the handler frees them soon */
            loop->req_bytes -= r->req_bytes;
            r->req_bytes = 0;
            r->conn = NULL;
            r->next = NULL;
        }
        r = next;
    }
    c->head = c->tail = NULL;
    c->queued = 0;
    c->unsent_bytes = 0;
    say_debug("net", "connection %s (id %llu) closed", c->peer, (unsigned long long)c->id);
    if (l->h.on_close) {
        c->busy++;
        l->h.on_close(c, l->harg);
        c->busy--;
    }
    conn_maybe_free(c);
}

void net_conn_close(struct net_conn *c)
{
    conn_close(c);
}

/* The connection's own bounds. */
static bool conn_within_limits(const struct net_conn *c)
{
    return c->queued < c->lst->cfg.max_inflight_requests &&
           c->unsent_bytes <= c->lst->cfg.max_unsent_bytes;
}

static bool conn_may_read(const struct net_conn *c)
{
    return conn_within_limits(c) && !budget_blocks(c);
}

static void resume_cb(struct net_loop *loop, void *arg);

/* Brings the epoll interest in line with the state: read unless backpressured, write
 * only while a write is blocked. Leaving backpressure with whole frames still buffered
 * schedules resume_cb, since no new bytes may arrive to trigger a read. */
static void conn_update_interest(struct net_conn *c)
{
    if (c->closed)
        return;
    bool within = conn_within_limits(c);
    bool may_read = within && !budget_blocks(c);
    if (c->paused && may_read && c->in.len >= 4 && c->resume_timer == 0)
        c->resume_timer = net_timer_add(c->loop, 0, resume_cb, c);
    c->paused = !may_read;
    /* Stopped by a budget alone: nothing of its own will wake it, net__flush will. */
    if (within && !may_read)
        wait_add(c);
    else
        wait_remove(c);
    uint32_t ev = (may_read ? NET_READABLE : 0u) | (c->write_blocked ? NET_WRITABLE : 0u);
    if (ev != c->events) {
        if (net_watch_modify(c->loop, c->fd, ev) < 0) {
            conn_close(c);
            return;
        }
        c->events = ev;
    }
}

/* Delivers the complete frames in data[0, len) while backpressure allows; returns the
 * bytes consumed. May close c (bad frame size, or the handler closes it). */
static size_t conn_parse(struct net_conn *c, const uint8_t *data, size_t len)
{
    const struct net_listener *l = c->lst;
    size_t off = 0;
    while (!c->closed && len - off >= 4) {
        int32_t frame_len = (int32_t)be32_read(data + off);
        if (frame_len < 0 || frame_len > l->cfg.max_frame_bytes) {
            /* Kafka closes the connection on an invalid receive size too. */
            say_warn("net", "closing connection %s: invalid request size %d (max %lld)", c->peer,
                     frame_len, (long long)l->cfg.max_frame_bytes);
            conn_close(c);
            break;
        }
        c->big_frames = 4 + (size_t)frame_len > SCRATCH_BYTES / 2;
        if (len - off - 4 < (size_t)frame_len || !conn_may_read(c))
            break;
        struct net_reply *r = reply_get(c->loop, c);
        if (c->tail)
            c->tail->next = r;
        else
            c->head = r;
        c->tail = r;
        c->queued++;
        r->req_bytes = frame_len;
        c->loop->req_bytes += frame_len;
        l->h.on_request(c, (struct slice){data + off + 4, (size_t)frame_len}, r, l->harg);
        off += 4 + (size_t)frame_len;
    }
    return off;
}

/* Drops the first used bytes of c->in. A connection sending big frames (producers
 * with large batches) keeps its buffer and reads straight into it: going through the
 * shared scratch buffer would copy the first part of every frame once more. */
static void conn_consume(struct net_conn *c, size_t used)
{
    if (c->in_taken) { /* the frame, the last bytes of c->in, went with its buffer */
        c->in_taken = false;
        return;
    }
    if (used == 0)
        return;
    if (used == c->in.len) {
        if (c->in.cap > IN_KEEP_BYTES && !c->big_frames)
            buf_free(&c->in);
        c->in.len = 0;
        return;
    }
    memmove(c->in.data, c->in.data + used, c->in.len - used);
    c->in.len -= used;
}

void *net_frame_take(struct net_conn *c, struct slice frame)
{
    uint8_t *block = c->in.data;
    if (block == NULL || frame.ptr < block || frame.ptr + frame.len != block + c->in.len)
        return NULL; /* in the shared scratch buffer, or more bytes follow it */
    c->in = (struct buf){0};
    c->in_taken = true;
    return block;
}

static void resume_cb(struct net_loop *loop, void *arg)
{
    struct net_conn *c = arg;
    c->resume_timer = 0;
    c->busy++;
    size_t used = conn_parse(c, c->in.data, c->in.len);
    if (!c->closed) {
        conn_consume(c, used);
        conn_update_interest(c);
    }
    c->busy--;
    conn_maybe_free(c);
}

static void conn_read(struct net_conn *c)
{
    struct net_loop *loop = c->loop;
    bool shared = c->in.len == 0 && !c->big_frames;
    uint8_t *dst;
    size_t room;
    if (shared) {
        dst = loop->scratch;
        room = loop->scratch_cap;
    } else {
        size_t want = READ_CHUNK_BYTES, frame_end = 0;
        if (c->in.len >= 4) { /* read the rest of a big frame in as few calls as possible */
            frame_end = 4 + (size_t)(int32_t)be32_read(c->in.data);
            if (frame_end > c->in.len)
                want = MAX(want, frame_end - c->in.len);
        }
        buf_reserve(&c->in, want);
        dst = c->in.data + c->in.len;
        room = c->in.cap - c->in.len;
        /* Big frames are read exactly: first the length, then up to the frame's end, so
         * a frame ends its buffer and net_frame_take can hand the buffer over whole. */
        if (c->big_frames && c->in.len < 4)
            room = 4 - c->in.len;
        else if (c->big_frames && frame_end > c->in.len)
            room = frame_end - c->in.len;
    }
    ssize_t n = read(c->fd, dst, room);
    if (n == 0) {
        say_debug("net", "connection %s closed by peer", c->peer);
        conn_close(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        say_info("net", "read from %s failed: %s; closing", c->peer, strerror(errno));
        conn_close(c);
        return;
    }
    c->last_active_ms = loop->now_ms;
    if (shared) {
        size_t used = conn_parse(c, dst, (size_t)n);
        if (!c->closed && used < (size_t)n) {
            size_t left = (size_t)n - used;
            if (left >= 4) /* room for the whole frame now: no copy when it grows */
                buf_reserve(&c->in, 4 + (size_t)(int32_t)be32_read(dst + used));
            buf_append(&c->in, dst + used, left);
        }
    } else {
        c->in.len += (size_t)n;
        size_t used = conn_parse(c, c->in.data, c->in.len);
        if (!c->closed)
            conn_consume(c, used);
    }
}

/* Accounts n written bytes: advances through segments and frees fully written replies,
 * including complete replies with nothing (left) to write. */
static void conn_advance(struct net_conn *c, int64_t n)
{
    c->unsent_bytes -= n;
    ASSERT(c->unsent_bytes >= 0);
    struct net_reply *r;
    while ((r = c->head) != NULL && r->complete) {
        while (r->seg < r->nsegs) {
            struct seg s;
            seg_get(r, r->seg, &s);
            int64_t left = s.len - r->seg_off;
            if (left > n) {
                r->seg_off += n;
                return;
            }
            n -= left;
            r->seg++;
            r->seg_off = 0;
        }
        c->head = r->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->queued--;
        reply_release(c->loop, r);
    }
    ASSERT(n == 0);
}

/* Sends part of the file segment s of the head reply. Returns bytes written or -errno. */
static ssize_t conn_send_file(struct net_conn *c, const struct seg *s, int64_t done)
{
    int64_t left = s->len - done;
    off_t offset = (off_t)(s->offset + done);
    if (c->lst->cfg.use_sendfile) {
        ssize_t n = sendfile(c->fd, s->fd, &offset, (size_t)MIN(left, SENDFILE_MAX_BYTES));
        if (n < 0)
            return -errno;
        return n == 0 ? -EIO : n; /* 0: the file is shorter than the promised range */
    }
    size_t chunk = (size_t)MIN(left, (int64_t)c->loop->scratch_cap);
    ssize_t got = pread(s->fd, c->loop->scratch, chunk, offset);
    if (got < 0)
        return -errno;
    if (got == 0)
        return -EIO;
    /* Bytes the socket does not take are simply read again next time. */
    ssize_t n = send(c->fd, c->loop->scratch, (size_t)got, MSG_NOSIGNAL);
    return n < 0 ? -errno : n;
}

/* Writes as much of the complete head of the reply queue as the socket takes. */
static void conn_write(struct net_conn *c)
{
    for (;;) {
        conn_advance(c, 0); /* drop empty replies and segments so head->seg has bytes */
        struct net_reply *head = c->head;
        if (head == NULL || !head->complete) {
            c->write_blocked = false;
            break;
        }
        struct iovec iov[IOV_BATCH];
        int cnt = 0;
        bool file_next = false;
        for (struct net_reply *r = head; r && r->complete && !file_next; r = r->next) {
            for (uint32_t k = r->seg; k < r->nsegs && cnt < IOV_BATCH; k++) {
                struct seg s;
                seg_get(r, k, &s);
                int64_t skip = k == r->seg ? r->seg_off : 0;
                if (s.len == skip)
                    continue;
                if (s.ptr == NULL) {
                    file_next = true;
                    break;
                }
                iov[cnt++] = (struct iovec){(void *)(s.ptr + skip), (size_t)(s.len - skip)};
            }
            if (cnt == IOV_BATCH)
                break;
        }
        ssize_t n;
        if (cnt > 0) {
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
            /* MSG_MORE: a length prefix and the file data after it share a packet. */
            n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | (file_next ? MSG_MORE : 0));
            if (n < 0)
                n = -errno;
        } else {
            struct seg s;
            seg_get(head, head->seg, &s);
            ASSERT(s.ptr == NULL);
            n = conn_send_file(c, &s, head->seg_off);
        }
        if (n == -EAGAIN || n == -EWOULDBLOCK) {
            c->write_blocked = true;
            break;
        }
        if (n == -EINTR)
            continue;
        if (n < 0) {
            say_info("net", "write to %s failed: %s; closing", c->peer, strerror((int)-n));
            conn_close(c);
            return;
        }
        c->last_active_ms = c->loop->now_ms;
        conn_advance(c, n);
    }
    conn_update_interest(c);
}

static void conn_cb(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    struct net_conn *c = arg;
    c->busy++;
    if (events & NET_ERROR) {
        say_debug("net", "connection %s hung up or failed; closing", c->peer);
        conn_close(c);
    }
    if (!c->closed && (events & NET_WRITABLE))
        conn_write(c);
    if (!c->closed && (events & NET_READABLE))
        conn_read(c);
    if (!c->closed)
        conn_update_interest(c);
    c->busy--;
    conn_maybe_free(c);
}

/* Resumes the connections a budget stopped, once the budgets have room again. All of
 * them: each reads at most until it holds unsent bytes while the budget is full again,
 * and what they are answered is sized by the handlers to what is left. */
static void budget_resume(struct net_loop *loop)
{
    struct net_conn *c;
    while ((c = loop->budget_waiters) != NULL && !req_budget_full(loop) &&
           !resp_budget_full(loop)) {
        wait_remove(c);
        c->busy++;
        conn_update_interest(c); /* cannot re-add c: no budget is full */
        c->busy--;
        conn_maybe_free(c);
    }
}

/* main.c keeps up to its trim threshold of freed memory for reuse (fetch buffers). Once
 * queued replies have shrunk by that much since their peak (slow clients closed or
 * caught up), give the freed memory back; rate-limited, since malloc_trim walks the
 * whole heap. Steady traffic never drops this far, so it costs the fast path nothing. */
static void maybe_trim(struct net_loop *loop)
{
    if (loop->trim_drop_bytes <= 0 || loop->resp_peak - loop->resp_bytes < loop->trim_drop_bytes ||
        loop->now_ms - loop->last_trim_ms < TRIM_INTERVAL_MS)
        return;
    int64_t start_ns = time_mono_ns();
    malloc_trim(0);
    say_debug("net", "queued replies fell from %lld to %lld bytes: malloc_trim took %lld us",
              (long long)loop->resp_peak, (long long)loop->resp_bytes,
              (long long)((time_mono_ns() - start_ns) / 1000));
    loop->resp_peak = loop->resp_bytes;
    loop->last_trim_ms = loop->now_ms;
    loop->trims++;
}

void net__flush(struct net_loop *loop)
{
    struct net_conn *c;
    while ((c = loop->flush_head) != NULL) {
        loop->flush_head = c->flush_next;
        c->in_flush = false;
        if (!c->closed && !c->write_blocked) {
            c->busy++;
            conn_write(c);
            c->busy--;
        }
        conn_maybe_free(c);
    }
    budget_resume(loop);
    maybe_trim(loop);
}

/* ---- idle sweep ---- */

static void sweep_cb(struct net_loop *loop, void *arg);

static int64_t sweep_interval_ms(const struct net_listener *l)
{
    return MAX(10, MIN(l->cfg.idle_timeout_ms / 10, 1000));
}

static void sweep_cb(struct net_loop *loop, void *arg)
{
    struct net_listener *l = arg;
    int64_t now = loop->now_ms;
    struct net_conn *c = l->conns;
    while (c) {
        struct net_conn *next = c->next;
        /* Kafka's idle expiry counts a peer that stopped reading as idle too: its
         * replies would otherwise hold memory for as long as it stays connected. */
        if ((c->queued == 0 || c->write_blocked) &&
            now - c->last_active_ms >= l->cfg.idle_timeout_ms) {
            say_info("net", "closing connection %s: %s for %lld ms", c->peer,
                     c->queued == 0 ? "idle" : "not reading its responses",
                     (long long)(now - c->last_active_ms));
            conn_close(c);
        }
        c = next;
    }
    l->sweep_timer = net_timer_add(loop, sweep_interval_ms(l), sweep_cb, l);
}

/* ---- listeners ---- */

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, cap, "%s:%d", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        port = ntohs(a->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) { /* dual-stack listener, IPv4 peer */
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, sizeof host);
            snprintf(out, cap, "%s:%d", host, port);
        } else {
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            snprintf(out, cap, "[%s]:%d", host, port);
        }
    } else if (ss->ss_family == AF_UNIX) {
        snprintf(out, cap, "unix"); /* net_listener_adopt of a socketpair */
    } else {
        snprintf(out, cap, "unknown");
    }
}

/* The peer's address in net_ip_parse's form (an IPv4 peer as ::ffff:a.b.c.d). */
static void peer_addr(const struct sockaddr_storage *ss, uint8_t out[16])
{
    memset(out, 0, 16);
    if (ss->ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    }
}

static void accept_cb(struct net_loop *loop, int fd, uint32_t events, void *arg);

static void accept_retry_cb(struct net_loop *loop, void *arg)
{
    struct net_listener *l = arg;
    l->accept_retry_timer = 0;
    if (l->fd >= 0 && net_watch(loop, l->fd, NET_READABLE, accept_cb, l) < 0)
        say_error_ratelimited("net", "cannot resume accepting on port %d", l->port);
}

/* Makes fd a connection of l; false if a limit or the watch refused it (fd closed). */
static bool conn_open(struct net_listener *l, int fd, const struct sockaddr_storage *ss)
{
    struct net_loop *loop = l->loop;
    struct net_conn *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->lst = l;
    c->fd = fd;
    c->id = loop->next_conn_id++;
    c->last_active_ms = loop->now_ms;
    c->events = NET_READABLE;
    format_peer(ss, c->peer, sizeof c->peer);
    peer_addr(ss, c->addr);
    if (l->count >= l->cfg.max_connections) {
        say_warn_ratelimited("net", "refusing connection from %s: max.connections %u reached",
                             c->peer, l->cfg.max_connections);
        close(fd);
        free(c);
        return false;
    }
    /* Kafka's ConnectionQuotas: the count is over all listeners, the limit is the
     * address's override if it has one; the connection is closed right after accept. */
    const struct net_ip_limit *o = hmap_get(&l->ip_limit_map, (struct slice){c->addr, 16});
    uint32_t max_ip = o ? o->max_connections : l->cfg.max_connections_per_ip;
    uint32_t open_ip = ip_count(loop, c->addr);
    if (open_ip >= max_ip) {
        say_warn_ratelimited("net",
                             "refusing connection from %s: %u connections from this "
                             "address are open, %s allows %u",
                             c->peer, open_ip,
                             o ? "max.connections.per.ip.overrides" : "max.connections.per.ip",
                             max_ip);
        close(fd);
        free(c);
        return false;
    }
    int one = 1;
    bool tcp = ss->ss_family == AF_INET || ss->ss_family == AF_INET6;
    if (tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        say_warn_ratelimited("net", "TCP_NODELAY on %s failed: %s", c->peer, strerror(errno));
    int rc = net_watch(loop, fd, NET_READABLE, conn_cb, c);
    if (rc < 0) {
        say_error_ratelimited("net", "cannot watch connection %s: %s; closing it", c->peer,
                              strerror(-rc));
        close(fd);
        free(c);
        return false;
    }
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->count++;
    ip_count_add(loop, c->addr, 1);
    say_debug("net", "accepted connection %s (id %llu)", c->peer, (unsigned long long)c->id);
    return true;
}

static void accept_cb(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    struct net_listener *l = arg;
    for (int i = 0; i < ACCEPT_BATCH && l->fd >= 0; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int cfd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            /* Out of fds or memory: the listen socket stays readable, so stop watching
             * it for a moment instead of spinning. */
            say_error_ratelimited("net",
                                  "accept on port %d failed: %s; pausing accepts for "
                                  "%d ms",
                                  l->port, strerror(errno), ACCEPT_RETRY_MS);
            net_unwatch(loop, l->fd);
            l->accept_retry_timer = net_timer_add(loop, ACCEPT_RETRY_MS, accept_retry_cb, l);
            return;
        }
        conn_open(l, cfd, &ss);
    }
}

int net_listener_adopt(struct net_listener *l, int fd)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof ss;
    int flags = fcntl(fd, F_GETFL);
    if (l->fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0 || flags < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int rc = l->fd < 0 ? -EBADF : -errno;
        close(fd);
        return rc;
    }
    return conn_open(l, fd, &ss) ? 0 : -ECONNREFUSED;
}

/* Creates, binds and listens on one address. Returns the fd or -errno. */
static int listen_on(const struct addrinfo *ai, bool wildcard)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (ai->ai_family == AF_INET6 && wildcard &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int net_listen(struct net_loop *loop, const char *host, int port,
               const struct net_server_config *cfg, const struct net_handler *h, void *handler_arg,
               struct net_listener **out)
{
    ASSERT(cfg->max_frame_bytes > 0 && cfg->max_frame_bytes <= INT32_MAX);
    ASSERT(cfg->max_inflight_requests > 0 && cfg->max_unsent_bytes > 0);
    ASSERT(h->on_request != NULL && port >= 0 && port <= 65535);
    /* A write to a peer that reset must fail with EPIPE, not kill the broker; sendmsg
     * has MSG_NOSIGNAL but sendfile has no such flag. */
    signal(SIGPIPE, SIG_IGN);

    bool wildcard = host == NULL || host[0] == '\0';
    /* "" means every interface: try dual-stack IPv6 first, then IPv4. */
    const char *candidates[2] = {wildcard ? "::" : host, wildcard ? "0.0.0.0" : NULL};
    char port_str[16];
    snprintf(port_str, sizeof port_str, "%d", port);
    int fd = -EADDRNOTAVAIL;
    for (int i = 0; i < 2 && fd < 0 && candidates[i]; i++) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(candidates[i], port_str, &hints, &res);
        if (gai != 0) {
            say_error("net", "cannot resolve listener host '%s': %s", candidates[i],
                      gai_strerror(gai));
            fd = -EINVAL;
            continue;
        }
        bool any = wildcard || strcmp(candidates[i], "::") == 0;
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
            fd = listen_on(ai, any);
        freeaddrinfo(res);
    }
    if (fd < 0) {
        say_error("net", "cannot listen on '%s' port %d: %s", host ? host : "", port,
                  strerror(-fd));
        return fd;
    }

    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        int rc = -errno;
        say_error("net", "getsockname on listener failed: %s", strerror(errno));
        close(fd);
        return rc;
    }
    struct net_listener *l = xcalloc(1, sizeof *l);
    l->loop = loop;
    l->fd = fd;
    l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    l->cfg = *cfg;
    if (cfg->ip_limit_count > 0) {
        l->ip_limits = xmalloc(cfg->ip_limit_count * sizeof *l->ip_limits);
        memcpy(l->ip_limits, cfg->ip_limits, cfg->ip_limit_count * sizeof *l->ip_limits);
    }
    l->cfg.ip_limits = l->ip_limits;
    for (size_t i = 0; i < cfg->ip_limit_count; i++)
        hmap_put(&l->ip_limit_map, (struct slice){l->ip_limits[i].addr, 16}, &l->ip_limits[i]);
    l->h = *h;
    l->harg = handler_arg;
    loop->max_resp_bytes = cfg->max_queued_response_bytes;
    loop->max_resp_files = cfg->max_queued_response_files;
    loop->max_req_bytes = cfg->max_queued_request_bytes;
    loop->trim_drop_bytes = cfg->trim_after_drop_bytes;
    int rc = net_watch(loop, fd, NET_READABLE, accept_cb, l);
    if (rc < 0) {
        close(fd);
        hmap_free(&l->ip_limit_map);
        free(l->ip_limits);
        free(l);
        return rc;
    }
    if (loop->scratch == NULL) {
        loop->scratch_cap = SCRATCH_BYTES;
        loop->scratch = xmalloc(loop->scratch_cap);
    }
    if (cfg->idle_timeout_ms > 0)
        l->sweep_timer = net_timer_add(loop, sweep_interval_ms(l), sweep_cb, l);
    l->next = loop->listeners;
    loop->listeners = l;
    say_info("net", "listening on '%s' port %d", host ? host : "", l->port);
    *out = l;
    return 0;
}

int net_listener_port(const struct net_listener *l)
{
    return l->port;
}
size_t net_listener_conn_count(const struct net_listener *l)
{
    return l->count;
}

void net_listener_close(struct net_listener *l)
{
    if (l->fd < 0)
        return;
    net_unwatch(l->loop, l->fd);
    net_timer_cancel(l->loop, l->accept_retry_timer);
    l->accept_retry_timer = 0;
    close(l->fd);
    l->fd = -1;
    say_info("net", "stopped accepting on port %d", l->port);
}

size_t net_conn_count(const struct net_loop *loop)
{
    size_t n = 0;
    for (const struct net_listener *l = loop->listeners; l; l = l->next)
        n += l->count;
    return n;
}

void net_close_all(struct net_loop *loop)
{
    for (struct net_listener *l = loop->listeners; l; l = l->next) {
        net_listener_close(l);
        while (l->conns)
            conn_close(l->conns);
    }
}

void net__conn_shutdown(struct net_loop *loop)
{
    net_close_all(loop);
    net__flush(loop); /* frees connections that were waiting on the flush list */
    while (loop->listeners) {
        struct net_listener *l = loop->listeners;
        loop->listeners = l->next;
        net_timer_cancel(loop, l->sweep_timer);
        hmap_free(&l->ip_limit_map);
        free(l->ip_limits);
        free(l);
    }
    ASSERT(loop->conns_per_ip.count == 0); /* every close gave its count back */
    /* ... and every reply its share of the budgets */
    ASSERT(loop->resp_bytes == 0 && loop->resp_files == 0 && loop->req_bytes == 0);
    hmap_free(&loop->conns_per_ip);
    while (loop->reply_pool) {
        struct net_reply *r = loop->reply_pool;
        loop->reply_pool = r->next;
        reply_free(r);
    }
    loop->reply_pool_len = 0;
    loop->reply_pool_bytes = 0;
    free(loop->scratch);
    loop->scratch = NULL;
}
