/* Unit tests for net listeners and connections over real sockets on 127.0.0.1.
 *
 * The loop runs on the test thread; a client thread drives a blocking socket (with
 * receive/send timeouts so nothing can hang) and stops the loop when it is done. Each
 * test then checks what the client saw and what the handler saw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net/net.h"

/* ---- fixture ---- */

enum mode {
    MODE_ECHO,
    MODE_SWAP_FIRST_TWO,
    MODE_HOLD,
    MODE_BIG_REPLY,
    MODE_FILE,
    MODE_CLOSE,
    MODE_DROP_ODD,
    MODE_TAKE
};

static struct {
    struct net_loop *loop;
    struct net_listener *lst;
    int port;
    enum mode mode;
    atomic_int requests; /* frames delivered to on_request */
    atomic_int closes;   /* on_close calls */
    int taken;           /* frames whose memory net_frame_take handed over */
    struct net_reply *held[4096];
    int held_len;
    int max_held;
    struct net_conn *conn;  /* the last connection that sent a request */
    atomic_int paused_seen; /* backpressure observed by the checker timer */
    int requests_at_pause;
    int64_t unsent_at_pause;
    int file_fd;
    int64_t file_len;
    struct net_server_config cfg;
    int64_t max_resp_bytes; /* largest queued response memory seen after a reply */
} S;

static void on_request(struct net_conn *c, struct slice frame, struct net_reply *r, void *arg)
{
    int n = atomic_fetch_add(&S.requests, 1);
    S.conn = c;
    assert_ptr_equal(net_reply_conn(r), c);
    switch (S.mode) {
    case MODE_ECHO:
        net_reply_append(r, frame.ptr, frame.len);
        net_reply_send(r);
        break;
    case MODE_SWAP_FIRST_TWO: /* reply 0 is completed later by a timer, after reply 1 */
        net_reply_append(r, frame.ptr, frame.len);
        if (n == 0)
            S.held[S.held_len++] = r;
        else
            net_reply_send(r);
        break;
    case MODE_HOLD:
        net_reply_append(r, frame.ptr, frame.len);
        S.held[S.held_len++] = r;
        S.max_held = MAX(S.max_held, S.held_len);
        break;
    case MODE_BIG_REPLY: { /* 64 KiB reply starting with the request's 4-byte sequence */
        uint8_t *p = net_reply_reserve(r, 64 * 1024);
        memset(p, 0xab, 64 * 1024);
        memcpy(p, frame.ptr, 4);
        net_reply_send(r);
        struct net_stats st;
        net_loop_stats(S.loop, &st);
        S.max_resp_bytes = MAX(S.max_resp_bytes, st.queued_response_bytes);
        break;
    }
    case MODE_FILE: { /* "head" file[0,L/2) "mid" file[L/2,L) "tail" */
        net_reply_append(r, "head", 4);
        net_reply_add_file(r, dup(S.file_fd), 0, S.file_len / 2);
        buf_append(net_reply_buf(r), "mid", 3);
        net_reply_add_file(r, dup(S.file_fd), S.file_len / 2, S.file_len - S.file_len / 2);
        memcpy(net_reply_reserve(r, 4), "tail", 4);
        assert_int_equal(net_reply_size(r), 11 + S.file_len);
        net_reply_send(r);
        break;
    }
    case MODE_CLOSE:
        net_conn_close(c);
        assert_true(net_reply_orphaned(r));
        net_reply_append(r, "x", 1);
        net_reply_send(r); /* frees the orphan */
        break;
    case MODE_TAKE: { /* echo, owning the frame's memory when the connection gives it */
        uint8_t *block = net_frame_take(c, frame);
        if (block) {
            S.taken++;
            assert_true(frame.ptr >= block);
        }
        net_reply_append(r, frame.ptr, frame.len);
        free(block); /* the connection must not touch it any more (ASan checks) */
        net_reply_send(r);
        break;
    }
    case MODE_DROP_ODD:
        if (n % 2 == 1) {
            net_reply_drop(r);
        } else {
            net_reply_append(r, frame.ptr, frame.len);
            net_reply_send(r);
        }
        break;
    }
}

static void on_close(struct net_conn *c, void *arg)
{
    atomic_fetch_add(&S.closes, 1);
    if (S.conn == c)
        S.conn = NULL;
}

static const struct net_handler handler = {on_request, on_close};

static void safety_stop(struct net_loop *loop, void *arg)
{
    fail_msg("test did not finish in time");
}

static void server_start(enum mode mode, const struct net_server_config *cfg)
{
    memset(&S, 0, sizeof S);
    S.mode = mode;
    S.file_fd = -1;
    if (cfg)
        S.cfg = *cfg;
    else
        net_server_config_default(&S.cfg);
    assert_int_equal(net_loop_create(&S.loop), 0);
    assert_int_equal(net_listen(S.loop, "127.0.0.1", 0, &S.cfg, &handler, NULL, &S.lst), 0);
    S.port = net_listener_port(S.lst);
    assert_true(S.port > 0);
    net_timer_add(S.loop, 60000, safety_stop, NULL);
}

static void server_run_with(void *(*client)(void *))
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client, NULL), 0);
    assert_int_equal(net_loop_run(S.loop), 0);
    void *ok;
    pthread_join(t, &ok);
    assert_true(ok == (void *)1);
}

static void server_stop(void)
{
    for (int i = 0; i < S.held_len; i++) /* complete leftovers: orphans are freed */
        net_reply_send(S.held[i]);
    S.held_len = 0;
    net_loop_destroy(S.loop);
    if (S.file_fd >= 0)
        close(S.file_fd);
}

/* ---- blocking client helpers (client thread) ---- */

static int client_connect(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool read_full(int fd, void *data, size_t len)
{
    uint8_t *p = data;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Builds a request frame: length prefix + payload. */
static void frame_append(struct buf *b, const void *payload, size_t len)
{
    buf_put_u32(b, (uint32_t)len);
    buf_append(b, payload, len);
}

/* Reads one response frame into b (replacing its contents); false on EOF/timeout. */
static bool read_frame(int fd, struct buf *b)
{
    uint8_t hdr[4];
    if (!read_full(fd, hdr, 4))
        return false;
    uint32_t len = be32_read(hdr);
    buf_reset(b);
    buf_reserve(b, len);
    b->len = len;
    return read_full(fd, b->data, len);
}

/* True if the server closes the connection (EOF or reset) within the timeout. */
static bool wait_eof(int fd)
{
    uint8_t tmp[256];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false; /* timeout */
    }
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "client check failed at line %d: %s\n", __LINE__, #cond);              \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* ---- echo, pipelined, with sizes around the read-buffer boundaries ---- */

static size_t echo_size(int i)
{
    static const size_t sizes[] = {0, 1, 7, 100, 4096, 65535, 70000, 300000, 1 << 20};
    return sizes[i % (int)ARRAY_LEN(sizes)] + (size_t)i;
}

static void fill_payload(uint8_t *p, size_t len, int seed)
{
    for (size_t j = 0; j < len; j++)
        p[j] = (uint8_t)(seed * 31 + (int)j);
}

static void *echo_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    struct buf req, resp, want;
    buf_init(&req);
    buf_init(&resp);
    buf_init(&want);
    CHECK(fd >= 0);
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        size_t len = echo_size(i);
        buf_reset(&want);
        buf_reserve(&want, len + 1);
        fill_payload(want.data, len, i);
        frame_append(&req, want.data, len);
    }
    CHECK(write_all(fd, req.data, req.len));
    for (int i = 0; i < N; i++) {
        size_t len = echo_size(i);
        CHECK(read_frame(fd, &resp));
        CHECK(resp.len == len);
        buf_reset(&want);
        buf_reserve(&want, len + 1);
        fill_payload(want.data, len, i);
        CHECK(len == 0 || memcmp(resp.data, want.data, len) == 0);
    }
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&resp);
    buf_free(&want);
    net_loop_stop(S.loop);
    return ok;
}

static void test_echo_pipelined(void **state)
{
    server_start(MODE_ECHO, NULL);
    server_run_with(echo_client);
    assert_int_equal(S.requests, 40);
    server_stop();
}

/* Big frames are read exactly, so their buffer can be handed to the request instead of
 * copied; pipelined small and big frames must still all come back intact, in order. */
static void test_take_frames(void **state)
{
    server_start(MODE_TAKE, NULL);
    S.taken = 0;
    server_run_with(echo_client);
    assert_int_equal(S.requests, 40);
    assert_true(S.taken >= 4); /* most of the 300 KB and 1 MiB frames */
    server_stop();
}

/* ---- one byte at a time ---- */

static void *byte_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    CHECK(fd >= 0);
    frame_append(&req, "hello", 5);
    frame_append(&req, "", 0);
    frame_append(&req, "world!", 6);
    for (size_t i = 0; i < req.len; i++) {
        CHECK(write_all(fd, req.data + i, 1));
        usleep(200);
    }
    CHECK(read_frame(fd, &resp) && resp.len == 5 && memcmp(resp.data, "hello", 5) == 0);
    CHECK(read_frame(fd, &resp) && resp.len == 0);
    CHECK(read_frame(fd, &resp) && resp.len == 6 && memcmp(resp.data, "world!", 6) == 0);
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void test_byte_at_a_time(void **state)
{
    server_start(MODE_ECHO, NULL);
    server_run_with(byte_client);
    assert_int_equal(S.requests, 3);
    server_stop();
}

/* ---- async completion out of order ---- */

static void complete_first_cb(struct net_loop *loop, void *arg)
{
    if (S.held_len == 0) { /* request 0 not in yet */
        net_timer_add(loop, 5, complete_first_cb, NULL);
        return;
    }
    if (S.requests < 2) { /* wait until reply 1 is completed first */
        net_timer_add(loop, 5, complete_first_cb, NULL);
        return;
    }
    net_reply_send(S.held[0]);
    S.held_len = 0;
}

static void *two_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    CHECK(fd >= 0);
    frame_append(&req, "first", 5);
    frame_append(&req, "second", 6);
    CHECK(write_all(fd, req.data, req.len));
    CHECK(read_frame(fd, &resp) && resp.len == 5 && memcmp(resp.data, "first", 5) == 0);
    CHECK(read_frame(fd, &resp) && resp.len == 6 && memcmp(resp.data, "second", 6) == 0);
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void test_out_of_order_completion(void **state)
{
    server_start(MODE_SWAP_FIRST_TWO, NULL);
    net_timer_add(S.loop, 5, complete_first_cb, NULL);
    server_run_with(two_client);
    assert_int_equal(S.requests, 2);
    server_stop();
}

/* ---- acks=0: dropped replies put nothing on the wire ---- */

static void *drop_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    CHECK(fd >= 0);
    const char *msgs[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++)
        frame_append(&req, msgs[i], 1);
    CHECK(write_all(fd, req.data, req.len));
    for (int i = 0; i < 5; i += 2)
        CHECK(read_frame(fd, &resp) && resp.len == 1 && resp.data[0] == msgs[i][0]);
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void test_drop(void **state)
{
    server_start(MODE_DROP_ODD, NULL);
    server_run_with(drop_client);
    server_stop();
}

/* ---- invalid frame sizes close the connection ---- */

static uint32_t bad_len;

static void *bad_len_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    CHECK(fd >= 0);
    uint8_t hdr[4 + 16] = {0};
    be32_write(hdr, bad_len);
    CHECK(write_all(fd, hdr, sizeof hdr));
    CHECK(wait_eof(fd));
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    net_loop_stop(S.loop);
    return ok;
}

static void test_oversized_frame(void **state)
{
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    cfg.max_frame_bytes = 1024;
    server_start(MODE_ECHO, &cfg);
    bad_len = 1025;
    server_run_with(bad_len_client);
    assert_int_equal(S.requests, 0);
    assert_int_equal(S.closes, 1);
    assert_int_equal(net_conn_count(S.loop), 0);
    server_stop();
}

static void test_negative_frame(void **state)
{
    server_start(MODE_ECHO, NULL);
    bad_len = 0xffffffffu;
    server_run_with(bad_len_client);
    assert_int_equal(S.requests, 0);
    assert_int_equal(S.closes, 1);
    server_stop();
}

/* ---- handler closes the connection inside on_request ---- */

static void *close_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    struct buf req;
    buf_init(&req);
    CHECK(fd >= 0);
    frame_append(&req, "bye", 3);
    frame_append(&req, "never", 5);
    CHECK(write_all(fd, req.data, req.len));
    CHECK(wait_eof(fd));
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    net_loop_stop(S.loop);
    return ok;
}

static void test_handler_close(void **state)
{
    server_start(MODE_CLOSE, NULL);
    server_run_with(close_client);
    assert_int_equal(S.requests, 1); /* the second frame is never delivered */
    assert_int_equal(S.closes, 1);
    server_stop();
}

/* ---- replies completed after their connection closed (orphans; run under ASan) ---- */

static void complete_orphans_cb(struct net_loop *loop, void *arg)
{
    if (S.closes == 0) {
        net_timer_add(loop, 5, complete_orphans_cb, NULL);
        return;
    }
    for (int i = 0; i < S.held_len; i++) {
        struct net_reply *r = S.held[i];
        assert_true(net_reply_orphaned(r));
        assert_null(net_reply_conn(r));
        net_reply_append(r, "late", 4);
        if (S.file_fd >= 0)
            net_reply_add_file(r, dup(S.file_fd), 0, 1);
        if (i % 2)
            net_reply_drop(r);
        else
            net_reply_send(r);
    }
    S.held_len = 0;
    net_loop_stop(loop);
}

static void *orphan_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    struct buf req;
    buf_init(&req);
    CHECK(fd >= 0);
    for (int i = 0; i < 5; i++)
        frame_append(&req, "held", 4);
    CHECK(write_all(fd, req.data, req.len));
    for (int i = 0; i < 1000 && S.requests < 5; i++)
        usleep(1000);
    CHECK(S.requests == 5);
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    return ok;
}

static void test_orphaned_replies(void **state)
{
    server_start(MODE_HOLD, NULL);
    char path[] = "/tmp/samsa-net-orphan-XXXXXX";
    S.file_fd = mkstemp(path);
    assert_true(S.file_fd >= 0);
    unlink(path);
    assert_int_equal(write(S.file_fd, "z", 1), 1);
    net_timer_add(S.loop, 5, complete_orphans_cb, NULL);
    server_run_with(orphan_client);
    assert_int_equal(S.closes, 1);
    assert_int_equal(S.held_len, 0);
    server_stop();
}

/* ---- idle timeout ---- */

static void *idle_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    CHECK(fd >= 0);
    frame_append(&req, "ping", 4);
    CHECK(write_all(fd, req.data, req.len));
    CHECK(read_frame(fd, &resp) && resp.len == 4);
    CHECK(wait_eof(fd)); /* then silence: the server must close it */
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void test_idle_timeout(void **state)
{
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    cfg.idle_timeout_ms = 100;
    server_start(MODE_ECHO, &cfg);
    server_run_with(idle_client);
    assert_int_equal(S.closes, 1);
    server_stop();
}

/* ---- backpressure: unsent bytes ---- */

enum { BP_N = 2000 };

static void pause_check_cb(struct net_loop *loop, void *arg)
{
    if (S.conn && !net_conn_reading(S.conn) && !S.paused_seen) {
        S.requests_at_pause = S.requests;
        S.unsent_at_pause = (int64_t)net_conn_unsent_bytes(S.conn);
        atomic_store(&S.paused_seen, 1);
    }
    if (!S.paused_seen)
        net_timer_add(loop, 10, pause_check_cb, NULL);
}

/* Appends n request frames carrying the sequence numbers 0..n-1. */
static void frame_seqs(struct buf *req, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint8_t seq[4];
        be32_write(seq, i);
        frame_append(req, seq, 4);
    }
}

/* Waits (up to 10 s) until the server has stopped reading; true if it did. */
static bool wait_paused(void)
{
    for (int i = 0; i < 10000 && !atomic_load(&S.paused_seen); i++)
        usleep(1000);
    return atomic_load(&S.paused_seen);
}

static void *bp_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(64 * 1024);
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    CHECK(fd >= 0);
    frame_seqs(&req, BP_N);
    CHECK(write_all(fd, req.data, req.len));
    /* Do not read until the server has stopped reading. */
    CHECK(wait_paused());
    for (uint32_t i = 0; i < BP_N; i++) {
        CHECK(read_frame(fd, &resp));
        CHECK(resp.len == 64 * 1024 && be32_read(resp.data) == i);
    }
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void test_backpressure_unsent(void **state)
{
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    cfg.max_unsent_bytes = 256 * 1024;
    cfg.max_inflight_requests = 100000;
    server_start(MODE_BIG_REPLY, &cfg);
    net_timer_add(S.loop, 10, pause_check_cb, NULL);
    server_run_with(bp_client);
    assert_true(S.paused_seen);
    /* Paused well before all requests were delivered; queued bytes bounded by the
     * limit plus the one reply that crossed it. */
    assert_true(S.requests_at_pause < BP_N);
    assert_true(S.unsent_at_pause <= cfg.max_unsent_bytes + 64 * 1024 + 4);
    assert_int_equal(S.requests, BP_N);
    server_stop();
}

/* ---- backpressure: in-flight requests ---- */

static void release_held_cb(struct net_loop *loop, void *arg)
{
    /* Release only once the server has stopped reading (or has everything). */
    if (S.held_len > 0 && S.conn && (!net_conn_reading(S.conn) || S.requests == 50)) {
        for (int i = 0; i < S.held_len; i++)
            net_reply_send(S.held[i]);
        S.held_len = 0;
    }
    net_timer_add(loop, 5, release_held_cb, NULL); /* the client stops the loop */
}

static void *inflight_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    CHECK(fd >= 0);
    frame_seqs(&req, 50);
    CHECK(write_all(fd, req.data, req.len));
    for (uint32_t i = 0; i < 50; i++)
        CHECK(read_frame(fd, &resp) && resp.len == 4 && be32_read(resp.data) == i);
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void test_backpressure_inflight(void **state)
{
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    cfg.max_inflight_requests = 10;
    server_start(MODE_HOLD, &cfg);
    net_timer_add(S.loop, 5, release_held_cb, NULL);
    server_run_with(inflight_client);
    assert_int_equal(S.requests, 50);
    assert_int_equal(S.max_held, 10); /* never more than the limit outstanding */
    server_stop();
}

/* ---- broker-wide budgets ---- */

static void budget_check_cb(struct net_loop *loop, void *arg)
{
    struct net_stats st;
    net_loop_stats(loop, &st);
    if (st.budget_pauses > 0)
        atomic_store(&S.paused_seen, 1);
    else
        net_timer_add(loop, 5, budget_check_cb, NULL);
}

enum { SLOW_N = 2000, FAST_N = 5 };

/* A slow client fills the response budget and is stopped; a second client that reads
 * its answers is still served meanwhile; then the slow one reads everything. */
static void *budget_client(void *arg)
{
    void *ok = NULL;
    int slow = client_connect(64 * 1024), fast = -1;
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    CHECK(slow >= 0);
    frame_seqs(&req, SLOW_N);
    CHECK(write_all(slow, req.data, req.len));
    CHECK(wait_paused());
    fast = client_connect(0);
    CHECK(fast >= 0);
    for (uint32_t i = 0; i < FAST_N; i++) {
        uint8_t seq[4];
        be32_write(seq, 1000000 + i);
        buf_reset(&req);
        frame_append(&req, seq, 4);
        CHECK(write_all(fast, req.data, req.len));
        CHECK(read_frame(fast, &resp));
        CHECK(resp.len == 64 * 1024 && be32_read(resp.data) == 1000000 + i);
    }
    for (uint32_t i = 0; i < SLOW_N; i++) {
        CHECK(read_frame(slow, &resp));
        CHECK(resp.len == 64 * 1024 && be32_read(resp.data) == i);
    }
    ok = (void *)1;
out:
    if (slow >= 0)
        close(slow);
    if (fast >= 0)
        close(fast);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void test_budget_response_bytes(void **state)
{
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    cfg.max_queued_response_bytes = 2 * 1024 * 1024;
    cfg.trim_after_drop_bytes = 1024 * 1024;
    cfg.max_inflight_requests = 100000; /* only the broker-wide budget stops the reader */
    cfg.max_unsent_bytes = INT32_MAX;
    server_start(MODE_BIG_REPLY, &cfg);
    net_timer_add(S.loop, 5, budget_check_cb, NULL);
    server_run_with(budget_client);
    assert_int_equal(S.requests, SLOW_N + FAST_N);
    /* The budget, plus the one reply that crossed it, plus one reply of the fast client
     * (a connection with nothing unsent is read even when the budget is full). */
    assert_true(S.max_resp_bytes <= cfg.max_queued_response_bytes + 2 * 64 * 1024);
    struct net_stats st;
    net_loop_stats(S.loop, &st);
    assert_true(st.budget_pauses > 0);
    assert_true(st.trims > 0); /* the queue drained from over 2 MiB to nothing */
    server_stop();
}

static void test_budget_request_bytes(void **state)
{
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    cfg.max_queued_request_bytes = 40; /* ten of the client's 4-byte requests */
    server_start(MODE_HOLD, &cfg);
    net_timer_add(S.loop, 5, release_held_cb, NULL);
    server_run_with(inflight_client);
    assert_int_equal(S.requests, 50);
    assert_int_equal(S.max_held, 10); /* reading stopped at the budget, resumed after */
    struct net_stats st;
    net_loop_stats(S.loop, &st);
    assert_true(st.budget_pauses > 0);
    assert_int_equal(st.queued_request_bytes, 0);
    server_stop();
}

/* A peer that never reads its responses is closed after the idle timeout, as Kafka
 * does, instead of holding them for as long as it stays connected. */
static void *stuck_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(16 * 1024);
    struct buf req;
    buf_init(&req);
    CHECK(fd >= 0);
    for (uint32_t i = 0; i < 400; i++)
        frame_append(&req, "seq!", 4);
    CHECK(write_all(fd, req.data, req.len));
    for (int i = 0; i < 10000 && atomic_load(&S.closes) == 0; i++)
        usleep(1000);
    CHECK(atomic_load(&S.closes) == 1);
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    net_loop_stop(S.loop);
    return ok;
}

static void test_stuck_reader_closed(void **state)
{
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    cfg.idle_timeout_ms = 200;
    server_start(MODE_BIG_REPLY, &cfg);
    server_run_with(stuck_client);
    assert_int_equal(S.closes, 1);
    struct net_stats st;
    net_loop_stats(S.loop, &st);
    assert_int_equal(st.queued_response_bytes, 0); /* given back with the connection */
    server_stop();
}

/* ---- file chunks: sendfile and pread+write deliver the same bytes ---- */

static uint8_t *file_data;

static void *file_client(void *arg)
{
    void *ok = NULL;
    int fd = client_connect(0);
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    CHECK(fd >= 0);
    for (int i = 0; i < 3; i++)
        frame_append(&req, "f", 1);
    CHECK(write_all(fd, req.data, req.len));
    int64_t half = S.file_len / 2;
    for (int i = 0; i < 3; i++) {
        CHECK(read_frame(fd, &resp));
        CHECK((int64_t)resp.len == 11 + S.file_len);
        const uint8_t *p = resp.data;
        CHECK(memcmp(p, "head", 4) == 0);
        CHECK(memcmp(p + 4, file_data, (size_t)half) == 0);
        CHECK(memcmp(p + 4 + half, "mid", 3) == 0);
        CHECK(memcmp(p + 7 + half, file_data + half, (size_t)(S.file_len - half)) == 0);
        CHECK(memcmp(p + 7 + S.file_len, "tail", 4) == 0);
    }
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void run_file_test(bool use_sendfile)
{
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    cfg.use_sendfile = use_sendfile;
    server_start(MODE_FILE, &cfg);
    char path[] = "/tmp/samsa-net-file-XXXXXX";
    S.file_fd = mkstemp(path);
    assert_true(S.file_fd >= 0);
    unlink(path);
    S.file_len = 3 * 1024 * 1024 + 17; /* bigger than the copy path's bounce buffer */
    file_data = malloc((size_t)S.file_len);
    for (int64_t i = 0; i < S.file_len; i++)
        file_data[i] = (uint8_t)((i * 7919) >> 3);
    assert_int_equal(write(S.file_fd, file_data, (size_t)S.file_len), S.file_len);
    server_run_with(file_client);
    free(file_data);
    server_stop();
}

static void test_file_sendfile(void **state)
{
    run_file_test(true);
}
static void test_file_copy(void **state)
{
    run_file_test(false);
}

/* ---- listener close and net_close_all ---- */

static void *many_client(void *arg)
{
    void *ok = NULL;
    int fds[5] = {-1, -1, -1, -1, -1};
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    frame_append(&req, "hi", 2);
    for (int i = 0; i < 5; i++) {
        fds[i] = client_connect(0);
        CHECK(fds[i] >= 0);
        CHECK(write_all(fds[i], req.data, req.len));
        CHECK(read_frame(fds[i], &resp) && resp.len == 2);
    }
    net_loop_stop(S.loop);
    for (int i = 0; i < 5; i++) /* the test thread calls net_close_all */
        CHECK(wait_eof(fds[i]));
    ok = (void *)1;
out:
    for (int i = 0; i < 5; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void test_close_all(void **state)
{
    server_start(MODE_ECHO, NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, many_client, NULL), 0);
    assert_int_equal(net_loop_run(S.loop), 0);
    assert_int_equal(net_conn_count(S.loop), 5);
    assert_int_equal(net_listener_conn_count(S.lst), 5);
    net_close_all(S.loop);
    assert_int_equal(net_conn_count(S.loop), 0);
    assert_int_equal(S.closes, 5);
    void *ok;
    pthread_join(t, &ok);
    assert_true(ok == (void *)1);
    /* Not accepting any more. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_true(connect(fd, (struct sockaddr *)&a, sizeof a) < 0);
    close(fd);
    server_stop();
}

static void test_listen_hosts(void **state)
{
    struct net_loop *loop;
    assert_int_equal(net_loop_create(&loop), 0);
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    const char *hosts[] = {"0.0.0.0", "localhost", ""};
    for (size_t i = 0; i < ARRAY_LEN(hosts); i++) {
        struct net_listener *l;
        assert_int_equal(net_listen(loop, hosts[i], 0, &cfg, &handler, NULL, &l), 0);
        assert_true(net_listener_port(l) > 0);
        net_listener_close(l);
    }
    struct net_listener *l;
    assert_true(net_listen(loop, "no-such-host.invalid", 0, &cfg, &handler, NULL, &l) < 0);
    net_loop_destroy(loop);
}

/* ---- a reply held across net_loop_destroy is still valid and completes silently ---- */

static void *hold_one_client(void *arg)
{
    void *ok = NULL;
    bool stopped = false;
    int fd = client_connect(0);
    struct buf req;
    buf_init(&req);
    CHECK(fd >= 0);
    frame_append(&req, "held", 4);
    CHECK(write_all(fd, req.data, req.len));
    for (int i = 0; i < 5000 && S.requests < 1; i++)
        usleep(1000);
    CHECK(S.requests == 1);
    stopped = true;
    net_loop_stop(S.loop); /* the test thread then destroys the loop */
    CHECK(wait_eof(fd));
    ok = (void *)1;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    if (!stopped)
        net_loop_stop(S.loop);
    return ok;
}

static void test_reply_outlives_loop(void **state)
{
    server_start(MODE_HOLD, NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_one_client, NULL), 0);
    assert_int_equal(net_loop_run(S.loop), 0);
    assert_int_equal(S.held_len, 1);
    net_loop_destroy(S.loop);
    S.loop = NULL;
    void *ok;
    pthread_join(t, &ok);
    assert_true(ok == (void *)1);
    assert_int_equal(S.closes, 1);
    struct net_reply *r = S.held[0];
    S.held_len = 0;
    assert_true(net_reply_orphaned(r));
    net_reply_append(r, "late", 4);
    net_reply_send(r);
}

/* ---- max_connections: extra connections are closed at once ---- */

static void *max_conn_client(void *arg)
{
    void *ok = NULL;
    int fds[3] = {-1, -1, -1};
    struct buf req, resp;
    buf_init(&req);
    buf_init(&resp);
    frame_append(&req, "hi", 2);
    for (int i = 0; i < 2; i++) { /* make sure both are accepted before the third */
        fds[i] = client_connect(0);
        CHECK(fds[i] >= 0);
        CHECK(write_all(fds[i], req.data, req.len));
        CHECK(read_frame(fds[i], &resp) && resp.len == 2);
    }
    fds[2] = client_connect(0);
    CHECK(fds[2] >= 0);
    CHECK(wait_eof(fds[2]));
    CHECK(write_all(fds[0], req.data, req.len)); /* the first two still work */
    CHECK(read_frame(fds[0], &resp) && resp.len == 2);
    ok = (void *)1;
out:
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    buf_free(&req);
    buf_free(&resp);
    net_loop_stop(S.loop);
    return ok;
}

static void test_max_connections(void **state)
{
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    cfg.max_connections = 2;
    server_start(MODE_ECHO, &cfg);
    server_run_with(max_conn_client);
    assert_int_equal(S.requests, 3);
    server_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_pipelined),
        cmocka_unit_test(test_take_frames),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_out_of_order_completion),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_oversized_frame),
        cmocka_unit_test(test_negative_frame),
        cmocka_unit_test(test_handler_close),
        cmocka_unit_test(test_orphaned_replies),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_backpressure_unsent),
        cmocka_unit_test(test_backpressure_inflight),
        cmocka_unit_test(test_budget_response_bytes),
        cmocka_unit_test(test_budget_request_bytes),
        cmocka_unit_test(test_stuck_reader_closed),
        cmocka_unit_test(test_file_sendfile),
        cmocka_unit_test(test_file_copy),
        cmocka_unit_test(test_close_all),
        cmocka_unit_test(test_listen_hosts),
        cmocka_unit_test(test_reply_outlives_loop),
        cmocka_unit_test(test_max_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
