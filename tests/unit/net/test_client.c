/* Unit tests for net's outbound connections (net_client_*), over real sockets on
 * 127.0.0.1 only.
 *
 * Everything runs on the test thread: a net_listen server in the same loop echoes each
 * request frame back (or closes, per mode), and the test steps the loop with
 * net_loop_run_once until what it waits for has happened, up to an iteration cap, so a
 * broken client fails the test instead of hanging it. Tests needing a misbehaving peer
 * use a raw listening socket instead and write its bytes by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"

#define MAX_ITERS 2000   /* loop iterations a test may wait for one condition */
#define ITER_WAIT_MS 100 /* longest block of one iteration: MAX_ITERS * this bounds a test */

/* ---- fixture: a loop with an echo server, and one client's observations ---- */

enum server_mode { SERVER_ECHO, SERVER_CLOSE };

static struct {
    struct net_loop *loop;
    struct net_listener *lst;
    int port;
    enum server_mode mode;
    int requests; /* frames the server received */

    struct net_client *cl;
    int connects;
    int closes;
    int close_err;
    int frames;           /* frames delivered to on_frame */
    struct buf frame_log; /* each frame: its 4-byte length, then its bytes */
    int close_after;      /* > 0: on_frame closes the client at this frame */
    int pingpong_left;    /* > 0: on_frame sends the frame back, this many times more */
    bool reconnect;       /* on_close connects again, once */
    int reconnect_rc;
    struct net_client *reconnected;
    int unsent_in_close; /* net_client_send's result inside on_close */
} S;

static void on_request(struct net_conn *c, struct slice frame, struct net_reply *r, void *arg)
{
    S.requests++;
    if (S.mode == SERVER_CLOSE) {
        net_conn_close(c);
        net_reply_drop(r); /* an orphan now: completing frees it */
        return;
    }
    net_reply_append(r, frame.ptr, frame.len);
    net_reply_send(r);
}

static const struct net_handler server_handler = {on_request, NULL};

static void on_connect(struct net_client *cl, void *arg)
{
    assert_true(net_client_connected(cl));
    S.connects++;
}

static const struct net_client_handler client_handler;

static void on_frame(struct net_client *cl, struct slice frame, void *arg)
{
    S.frames++;
    buf_put_u32(&S.frame_log, (uint32_t)frame.len);
    buf_append(&S.frame_log, frame.ptr, frame.len);
    if (S.pingpong_left > 0) {
        S.pingpong_left--;
        assert_int_equal(net_client_send(cl, frame.ptr, frame.len), 0);
    }
    if (S.close_after > 0 && S.frames == S.close_after) {
        net_client_close(cl);
        assert_int_equal(S.closes, 1); /* on_close ran inside net_client_close */
        assert_int_equal(S.close_err, -ECANCELED);
        /* frame stays readable after the close: its memory is freed later (ASan) */
        buf_append(&S.frame_log, frame.ptr, frame.len);
    }
}

static void on_close(struct net_client *cl, int err, void *arg)
{
    assert_false(net_client_connected(cl));
    S.closes++;
    S.close_err = err;
    S.unsent_in_close = net_client_send(cl, "x", 1);
    net_client_close(cl); /* a no-op inside on_close */
    if (S.reconnect) {
        S.reconnect = false;
        S.reconnect_rc = net_client_connect(S.loop, "127.0.0.1", S.port, 5000, 1 << 20,
                                            &client_handler, NULL, &S.reconnected);
    }
}

static const struct net_client_handler client_handler = {on_connect, on_frame, on_close};

static void start(enum server_mode mode)
{
    buf_free(&S.frame_log);
    memset(&S, 0, sizeof S);
    S.mode = mode;
    assert_int_equal(net_loop_create(&S.loop), 0);
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    assert_int_equal(net_listen(S.loop, "127.0.0.1", 0, &cfg, &server_handler, NULL, &S.lst), 0);
    S.port = net_listener_port(S.lst);
}

static void stop(void)
{
    net_loop_destroy(S.loop);
    buf_free(&S.frame_log);
}

static int connect_to(const char *host, int port, int64_t timeout_ms, int64_t max_frame_bytes)
{
    return net_client_connect(S.loop, host, port, timeout_ms, max_frame_bytes, &client_handler,
                              NULL, &S.cl);
}

/* Steps the loop until done() holds; fails the test after MAX_ITERS iterations. */
static void run_until(bool (*done)(void))
{
    for (int i = 0; i < MAX_ITERS; i++) {
        if (done())
            return;
        assert_true(net_loop_run_once(S.loop, ITER_WAIT_MS) >= 0);
    }
    fail_msg("condition not reached in %d loop iterations", MAX_ITERS);
}

static bool closed(void)
{
    return S.closes > 0;
}
static bool connected(void)
{
    return S.connects > 0;
}
static int want_frames;
static bool got_frames(void)
{
    return S.frames >= want_frames;
}

/* A frame of len bytes: its sequence number, then a pattern derived from it. */
static void make_frame(struct buf *b, uint32_t seq, size_t len)
{
    buf_reset(b);
    uint8_t *p = buf_extend(b, len);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seq * 31 + i * 7);
    if (len >= 4)
        be32_write(p, seq);
}

/* Checks that the frames logged by on_frame are frames 0..n-1 of the given sizes. */
static void check_frame_log(const size_t *sizes, int n)
{
    struct buf want = {0};
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        make_frame(&want, (uint32_t)i, sizes[i]);
        assert_true(off + 4 + sizes[i] <= S.frame_log.len);
        assert_int_equal(be32_read(S.frame_log.data + off), sizes[i]);
        assert_memory_equal(S.frame_log.data + off + 4, want.data, sizes[i]);
        off += 4 + sizes[i];
    }
    assert_int_equal(off, S.frame_log.len);
    buf_free(&want);
}

/* A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A raw listening socket on 127.0.0.1; *port set. */
static int raw_listen(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, backlog), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Accepts the client's connection on a raw listener (waiting at most 5 s). */
static int raw_accept(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    return fd;
}

/* ---- tests ---- */

/* Frames queued before the connect completes go out in order once it does, and each
 * comes back whole; net_client_close then reports -ECANCELED at once. */
static void test_send_before_connect(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("127.0.0.1", S.port, 5000, 1 << 20), 0);
    assert_false(net_client_connected(S.cl));
    assert_int_equal(net_client_count(S.loop), 1);
    char peer[32];
    snprintf(peer, sizeof peer, "127.0.0.1:%d", S.port);
    assert_string_equal(net_client_peer(S.cl), peer);
    const size_t sizes[] = {0, 1, 4, 100, 5000, 70000, 8, 65536 - 4, 65536, 3};
    struct buf f = {0};
    size_t queued = 0;
    for (int i = 0; i < (int)ARRAY_LEN(sizes); i++) {
        make_frame(&f, (uint32_t)i, sizes[i]);
        assert_int_equal(net_client_send(S.cl, f.data, f.len), 0);
        queued += 4 + sizes[i];
    }
    buf_free(&f);
    assert_int_equal(net_client_unsent_bytes(S.cl), queued);
    want_frames = (int)ARRAY_LEN(sizes);
    run_until(got_frames);
    assert_int_equal(S.connects, 1);
    assert_int_equal(S.requests, want_frames);
    check_frame_log(sizes, want_frames);
    assert_int_equal(net_client_unsent_bytes(S.cl), 0);
    assert_true(net_client_connected(S.cl));

    net_client_close(S.cl);
    assert_int_equal(S.closes, 1);
    assert_int_equal(S.close_err, -ECANCELED);
    assert_int_equal(S.unsent_in_close, -ENOTCONN);
    assert_int_equal(net_client_count(S.loop), 0);
    stop();
}

/* A name, resolved. Where "localhost" gives ::1 first (nothing listens there), this also
 * covers moving on to the next address; where it gives 127.0.0.1 only, it does not. */
static void test_localhost(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("localhost", S.port, 5000, 1 << 20), 0);
    char want[32];
    snprintf(want, sizeof want, "localhost:%d", S.port);
    assert_string_equal(net_client_peer(S.cl), want);
    assert_int_equal(net_client_send(S.cl, "ping", 4), 0);
    want_frames = 1;
    run_until(got_frames);
    assert_int_equal(S.frame_log.len, 8);
    assert_memory_equal(S.frame_log.data + 4, "ping", 4);
    net_client_close(S.cl);
    stop();
}

/* Frames of several MiB both ways: written over many sends, read over many reads. */
static void test_big_frames(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("127.0.0.1", S.port, 5000, 16 << 20), 0);
    run_until(connected);
    const size_t sizes[] = {6 << 20, 10, (3 << 20) + 1};
    struct buf f = {0};
    for (int i = 0; i < (int)ARRAY_LEN(sizes); i++) {
        make_frame(&f, (uint32_t)i, sizes[i]);
        assert_int_equal(net_client_send(S.cl, f.data, f.len), 0);
    }
    buf_free(&f);
    want_frames = (int)ARRAY_LEN(sizes);
    run_until(got_frames);
    check_frame_log(sizes, want_frames);
    net_client_close(S.cl);
    stop();
}

/* on_frame sends the next request: a ping-pong of many round trips. */
static void test_send_inside_frame(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("127.0.0.1", S.port, 5000, 1 << 20), 0);
    S.pingpong_left = 99;
    assert_int_equal(net_client_send(S.cl, "pong", 4), 0);
    want_frames = 100;
    run_until(got_frames);
    assert_int_equal(S.requests, 100);
    assert_int_equal(S.pingpong_left, 0);
    net_client_close(S.cl);
    stop();
}

static void test_refused(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("127.0.0.1", closed_port(), 5000, 1 << 20), 0);
    assert_int_equal(net_client_send(S.cl, "lost", 4), 0); /* discarded at close */
    assert_int_equal(S.closes, 0); /* failures are reported from the loop, never at once */
    run_until(closed);
    assert_int_equal(S.close_err, -ECONNREFUSED);
    assert_int_equal(S.connects, 0);
    assert_int_equal(net_client_count(S.loop), 0);
    stop();
}

/* A listener with backlog 0 whose one accept-queue slot is taken ignores further SYNs,
 * so a connect to it stays in progress until the timer. */
static void test_connect_timeout(void **state)
{
    start(SERVER_ECHO);
    int port;
    int lfd = raw_listen(0, &port);
    int filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(filler >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = connect(filler, (struct sockaddr *)&a, sizeof a);
    assert_true(rc == 0 || errno == EINPROGRESS);
    struct pollfd p = {.fd = filler, .events = POLLOUT};
    assert_int_equal(poll(&p, 1, 5000), 1); /* the filler sits in the accept queue */

    assert_int_equal(connect_to("127.0.0.1", port, 200, 1 << 20), 0);
    run_until(closed);
    if (S.connects > 0) { /* this kernel accepted beyond the backlog: nothing to time out */
        close(filler);
        close(lfd);
        stop();
        skip();
    }
    assert_int_equal(S.close_err, -ETIMEDOUT);
    assert_int_equal(net_timer_count(S.loop), 1); /* only the listener's idle sweep is left */
    close(filler);
    close(lfd);
    stop();
}

/* The server closes the connection between frames: err 0. */
static void test_peer_close(void **state)
{
    start(SERVER_CLOSE);
    assert_int_equal(connect_to("127.0.0.1", S.port, 5000, 1 << 20), 0);
    assert_int_equal(net_client_send(S.cl, "bye", 3), 0);
    run_until(closed);
    assert_int_equal(S.close_err, 0);
    assert_int_equal(S.connects, 1);
    assert_int_equal(S.requests, 1);
    stop();
}

/* A peer that closes inside a frame cut the response off: -ECONNRESET. */
static void test_peer_close_inside_frame(void **state)
{
    start(SERVER_ECHO);
    int port;
    int lfd = raw_listen(8, &port);
    assert_int_equal(connect_to("127.0.0.1", port, 5000, 1 << 20), 0);
    run_until(connected);
    int fd = raw_accept(lfd);
    const uint8_t partial[] = {0, 0, 0, 10, 'a', 'b', 'c'};
    assert_int_equal(write(fd, partial, sizeof partial), sizeof partial);
    close(fd);
    run_until(closed);
    assert_int_equal(S.close_err, -ECONNRESET);
    assert_int_equal(S.frames, 0);
    close(lfd);
    stop();
}

/* on_frame closes the client: on_close runs inside net_client_close, no later frame is
 * delivered, and the client is freed only once on_frame has returned (ASan checks). */
static void test_close_inside_frame(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("127.0.0.1", S.port, 5000, 1 << 20), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(net_client_send(S.cl, "abcd", 4), 0);
    S.close_after = 2;
    run_until(closed);
    for (int i = 0; i < 20; i++) /* the echoes of frames 3-5 have nowhere to go */
        net_loop_run_once(S.loop, 10);
    assert_int_equal(S.frames, 2);
    assert_int_equal(S.closes, 1);
    assert_int_equal(net_client_count(S.loop), 0);
    stop();
}

/* on_close connects again; the new client works. */
static void test_reconnect_inside_close(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("127.0.0.1", closed_port(), 5000, 1 << 20), 0);
    S.reconnect = true;
    run_until(closed);
    assert_int_equal(S.close_err, -ECONNREFUSED);
    assert_int_equal(S.reconnect_rc, 0);
    assert_int_equal(net_client_count(S.loop), 1);
    S.cl = S.reconnected;
    assert_int_equal(net_client_send(S.cl, "again", 5), 0);
    want_frames = 1;
    run_until(got_frames);
    assert_int_equal(S.connects, 1);
    net_client_close(S.cl);
    assert_int_equal(S.closes, 2);
    stop();
}

/* A response above max_frame_bytes closes with -EBADMSG before it is buffered. */
static void test_oversize_frame(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("127.0.0.1", S.port, 5000, 100), 0);
    uint8_t ok[100] = {0}, big[101] = {0};
    assert_int_equal(net_client_send(S.cl, ok, sizeof ok), 0); /* exactly the limit */
    assert_int_equal(net_client_send(S.cl, big, sizeof big), 0);
    run_until(closed);
    assert_int_equal(S.close_err, -EBADMSG);
    assert_int_equal(S.frames, 1);
    stop();
}

static void test_negative_frame(void **state)
{
    start(SERVER_ECHO);
    int port;
    int lfd = raw_listen(8, &port);
    assert_int_equal(connect_to("127.0.0.1", port, 5000, 1 << 20), 0);
    run_until(connected);
    int fd = raw_accept(lfd);
    const uint8_t bad[] = {0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4};
    assert_int_equal(write(fd, bad, sizeof bad), sizeof bad);
    run_until(closed);
    assert_int_equal(S.close_err, -EBADMSG);
    close(fd);
    close(lfd);
    stop();
}

/* The unsent limit refuses frames once bytes are queued past it, never an empty queue. */
static void test_unsent_limit(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("127.0.0.1", S.port, 5000, 1 << 20), 0);
    net_client_set_max_unsent(S.cl, 100);
    uint8_t data[1000] = {0};
    /* Nothing is written before the loop runs, so the queue only grows here. */
    assert_int_equal(net_client_send(S.cl, data, 50), 0);        /* 54 queued */
    assert_int_equal(net_client_send(S.cl, data, 43), -ENOBUFS); /* 54 + 47 > 100 */
    assert_int_equal(net_client_send(S.cl, data, 42), 0);        /* 54 + 46: exactly the limit */
    assert_int_equal(net_client_unsent_bytes(S.cl), 100);
    assert_int_equal(net_client_send(S.cl, data, 0), -ENOBUFS);
    assert_int_equal(net_client_send(S.cl, data, (size_t)INT32_MAX + 1), -EMSGSIZE);

    /* A frame larger than the limit still goes alone. */
    struct net_client *first = S.cl;
    assert_int_equal(connect_to("127.0.0.1", S.port, 5000, 1 << 20), 0);
    net_client_set_max_unsent(S.cl, 100);
    assert_int_equal(net_client_send(S.cl, data, sizeof data), 0);
    assert_int_equal(net_client_send(S.cl, data, 1), -ENOBUFS);

    want_frames = 3;
    run_until(got_frames);
    assert_int_equal(net_client_unsent_bytes(first), 0);
    assert_int_equal(net_client_unsent_bytes(S.cl), 0);
    assert_int_equal(net_client_send(S.cl, data, 96), 0); /* drained: room again */
    net_client_close(first);
    net_client_close(S.cl);
    assert_int_equal(S.closes, 2);
    stop();
}

static void test_bad_arguments(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("", S.port, 0, 1 << 20), -EINVAL);
    assert_int_equal(connect_to("127.0.0.1", 0, 0, 1 << 20), -EINVAL);
    assert_int_equal(connect_to("127.0.0.1", 70000, 0, 1 << 20), -EINVAL);
    assert_int_equal(connect_to("127.0.0.1", S.port, 0, 0), -EINVAL);
    assert_int_equal(connect_to("127.0.0.1", S.port, 0, (int64_t)INT32_MAX + 1), -EINVAL);
    assert_int_equal(net_client_count(S.loop), 0);
    assert_int_equal(S.closes, 0);
    stop();
}

/* Destroying the loop closes every client, connected or connecting, with -ECANCELED,
 * refuses a reconnect from on_close, and frees them all (ASan's leak check). */
static void test_destroy_with_open_clients(void **state)
{
    start(SERVER_ECHO);
    assert_int_equal(connect_to("127.0.0.1", S.port, 5000, 1 << 20), 0);
    run_until(connected);
    uint8_t data[1000] = {0};
    assert_int_equal(net_client_send(S.cl, data, sizeof data), 0);
    struct net_client *pending;
    assert_int_equal(net_client_connect(S.loop, "127.0.0.1", S.port, 5000, 1 << 20, &client_handler,
                                        NULL, &pending),
                     0);
    assert_int_equal(net_client_count(S.loop), 2);
    S.reconnect = true;
    net_loop_destroy(S.loop);
    assert_int_equal(S.closes, 2);
    assert_int_equal(S.close_err, -ECANCELED);
    assert_int_equal(S.reconnect_rc, -ECANCELED);
    buf_free(&S.frame_log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_before_connect),
        cmocka_unit_test(test_localhost),
        cmocka_unit_test(test_big_frames),
        cmocka_unit_test(test_send_inside_frame),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_peer_close),
        cmocka_unit_test(test_peer_close_inside_frame),
        cmocka_unit_test(test_close_inside_frame),
        cmocka_unit_test(test_reconnect_inside_close),
        cmocka_unit_test(test_oversize_frame),
        cmocka_unit_test(test_negative_frame),
        cmocka_unit_test(test_unsent_limit),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_destroy_with_open_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
