/* Unit tests for requests to a peer (net_rpc_*), over real sockets on 127.0.0.1 only.
 *
 * A net_listen server in the same loop answers each request frame the way a Kafka
 * broker does (the correlation id, then the rest of the request as the body), holds
 * its answers, answers with a wrong correlation id, or closes, per mode; the test steps
 * the loop until what it waits for has happened, up to an iteration cap. Checked:
 * pipelined requests matched in order, deadlines (the late one -ETIMEDOUT, those behind
 * it the connection's end), a reconnect on the next request, a refused connect, a peer
 * that closes or answers nonsense, and callbacks that send again or close the rpc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"

#define MAX_ITERS 2000
#define ITER_WAIT_MS 100
#define CALLS 16

enum server_mode { ANSWER, HOLD, WRONG_ID, CLOSE };

struct call {
    int ends; /* times done ran: must end at 1 */
    int err;
    struct buf body;
    int order; /* when it ended, among all calls */
};

static struct {
    struct net_loop *loop;
    struct net_listener *lst;
    int port;
    enum server_mode mode;
    int requests;
    struct net_reply *held[CALLS];
    int nheld;

    struct net_rpc *rpc;
    struct call calls[CALLS];
    int ended;
    int close_in_callback; /* the call index whose callback closes the rpc; -1: none */
    int send_in_callback;  /* the call index whose callback sends call CALLS-1; -1: none */
} S;

static void answer(struct net_reply *r, struct slice frame, bool wrong)
{
    uint8_t id[4];
    memcpy(id, frame.ptr + 4, 4);
    if (wrong)
        id[3] ^= 0x55;
    net_reply_append(r, id, 4);
    net_reply_append(r, frame.ptr + 8, frame.len - 8);
    net_reply_send(r);
}

static void on_request(struct net_conn *c, struct slice frame, struct net_reply *r, void *arg)
{
    (void)arg;
    S.requests++;
    assert_true(frame.len >= 8);
    switch (S.mode) {
    case ANSWER: answer(r, frame, false); break;
    case WRONG_ID: answer(r, frame, true); break;
    case HOLD:
        assert_true(S.nheld < CALLS);
        S.held[S.nheld++] = r;
        break;
    case CLOSE:
        net_conn_close(c);
        net_reply_drop(r);
        break;
    }
}

static const struct net_handler server_handler = {on_request, NULL};

static void start(enum server_mode mode)
{
    memset(&S, 0, sizeof S);
    S.mode = mode;
    S.close_in_callback = S.send_in_callback = -1;
    assert_int_equal(net_loop_create(&S.loop), 0);
    struct net_server_config cfg;
    net_server_config_default(&cfg);
    assert_int_equal(net_listen(S.loop, "127.0.0.1", 0, &cfg, &server_handler, NULL, &S.lst), 0);
    S.port = net_listener_port(S.lst);
    assert_int_equal(net_rpc_open(S.loop, "127.0.0.1", S.port, 2000, 1 << 20, &S.rpc), 0);
}

static void stop(void)
{
    net_rpc_close(S.rpc);
    net_loop_destroy(S.loop);
    for (int i = 0; i < CALLS; i++)
        buf_free(&S.calls[i].body);
}

static void run_until(bool (*done)(void))
{
    for (int i = 0; i < MAX_ITERS; i++) {
        if (done())
            return;
        assert_true(net_loop_run_once(S.loop, ITER_WAIT_MS) >= 0);
    }
    fail_msg("condition not reached in %d loop iterations", MAX_ITERS);
}

static int want_ended;
static bool enough_ended(void)
{
    return S.ended >= want_ended;
}

static int send_call(int i, int64_t timeout_ms);

static void done(void *arg, int err, struct slice response)
{
    int i = (int)(intptr_t)arg;
    struct call *c = &S.calls[i];
    c->ends++;
    c->err = err;
    c->order = S.ended++;
    if (err == 0)
        buf_append(&c->body, response.ptr, response.len);
    else
        assert_null(response.ptr);
    if (i == S.close_in_callback) {
        net_rpc_close(S.rpc);
        S.rpc = NULL;
    }
    if (i == S.send_in_callback)
        assert_int_equal(send_call(CALLS - 1, 5000), 0);
}

/* Request i: api key 3, version 7, a correlation id the rpc overwrites, and a body
 * naming i. */
static int send_call(int i, int64_t timeout_ms)
{
    uint8_t frame[32];
    be16_write(frame, 3);
    be16_write(frame + 2, 7);
    be32_write(frame + 4, 0xdeadbeef);
    int n = snprintf((char *)frame + 8, sizeof frame - 8, "call-%02d", i);
    buf_init(&S.calls[i].body);
    return net_rpc_send(S.rpc, frame, 8 + (size_t)n, timeout_ms, done, (void *)(intptr_t)i);
}

/* Call i was answered once, with its own correlation id and body. */
static void check_answered(int i)
{
    char want[16];
    snprintf(want, sizeof want, "call-%02d", i);
    assert_int_equal(S.calls[i].ends, 1);
    assert_int_equal(S.calls[i].err, 0);
    assert_int_equal(S.calls[i].body.len, 4 + strlen(want));
    assert_int_not_equal(be32_read(S.calls[i].body.data), 0xdeadbeef);
    assert_memory_equal(S.calls[i].body.data + 4, want, strlen(want));
}

static void test_pipelined_requests_are_matched_in_order(void **state)
{
    (void)state;
    start(ANSWER);
    for (int i = 0; i < 10; i++)
        assert_int_equal(send_call(i, 5000), 0);
    assert_int_equal(net_rpc_in_flight(S.rpc), 10);
    assert_int_equal(S.ended, 0); /* never inside the send */
    want_ended = 10;
    run_until(enough_ended);
    for (int i = 0; i < 10; i++) {
        check_answered(i);
        assert_int_equal(S.calls[i].order, i);
        if (i > 0) /* each its own */
            assert_int_not_equal(be32_read(S.calls[i].body.data),
                                 be32_read(S.calls[i - 1].body.data));
    }
    assert_int_equal(net_rpc_in_flight(S.rpc), 0);
    stop();
}

static void test_a_late_answer_times_out_and_the_next_request_reconnects(void **state)
{
    (void)state;
    start(HOLD);
    assert_int_equal(send_call(0, 200), 0);
    assert_int_equal(send_call(1, 60000), 0);
    want_ended = 2;
    run_until(enough_ended);
    assert_int_equal(S.calls[0].err, -ETIMEDOUT);
    assert_int_equal(S.calls[1].err, -ECONNRESET); /* behind it, on the dropped connection */
    assert_int_equal(S.calls[0].ends + S.calls[1].ends, 2);
    /* The held answers, if the server still sent them, reach nobody. */
    for (int i = 0; i < S.nheld; i++)
        net_reply_drop(S.held[i]);
    S.mode = ANSWER;
    assert_int_equal(send_call(2, 5000), 0);
    want_ended = 3;
    run_until(enough_ended);
    check_answered(2);
    assert_int_equal(S.requests, 3);
    stop();
}

static void test_refused_closed_and_wrong_answers(void **state)
{
    (void)state;
    /* Nothing listens. */
    start(ANSWER);
    int port = S.port;
    net_rpc_close(S.rpc);
    net_listener_close(S.lst);
    assert_int_equal(net_rpc_open(S.loop, "127.0.0.1", port, 2000, 1 << 20, &S.rpc), 0);
    assert_int_equal(send_call(0, 5000), 0);
    want_ended = 1;
    run_until(enough_ended);
    assert_int_equal(S.calls[0].err, -ECONNREFUSED);
    stop();

    /* The peer closes on the request. */
    start(CLOSE);
    assert_int_equal(send_call(0, 5000), 0);
    run_until(enough_ended);
    assert_true(S.calls[0].err == -ECONNRESET || S.calls[0].err == -EPIPE);
    stop();

    /* The peer answers with a correlation id of no request in flight. */
    start(WRONG_ID);
    assert_int_equal(send_call(0, 5000), 0);
    assert_int_equal(send_call(1, 5000), 0);
    want_ended = 2;
    run_until(enough_ended);
    assert_int_equal(S.calls[0].err, -EBADMSG);
    assert_int_equal(S.calls[1].err, -EBADMSG);
    stop();
}

static void test_callbacks_send_again_or_close(void **state)
{
    (void)state;
    start(ANSWER);
    S.send_in_callback = 0;
    assert_int_equal(send_call(0, 5000), 0);
    want_ended = 2;
    run_until(enough_ended);
    check_answered(0);
    check_answered(CALLS - 1);

    /* Closing the rpc in a callback ends the others at once, each once. */
    S.mode = HOLD;
    S.ended = 0;
    for (int i = 0; i < CALLS; i++)
        buf_free(&S.calls[i].body);
    memset(S.calls, 0, sizeof S.calls);
    S.close_in_callback = 0;
    S.send_in_callback = -1;
    for (int i = 0; i < 3; i++)
        assert_int_equal(send_call(i, i == 0 ? 100 : 60000), 0);
    want_ended = 3;
    run_until(enough_ended);
    assert_int_equal(S.calls[0].err, -ETIMEDOUT);
    assert_int_equal(S.calls[1].ends, 1);
    assert_int_equal(S.calls[2].ends, 1);
    assert_null(S.rpc);
    for (int i = 0; i < S.nheld; i++)
        net_reply_drop(S.held[i]);
    stop();

    /* net_rpc_close ends what is in flight with -ECANCELED; the rpc takes nothing more. */
    start(HOLD);
    assert_int_equal(send_call(0, 60000), 0);
    want_ended = 1;
    while (S.requests == 0)
        assert_true(net_loop_run_once(S.loop, ITER_WAIT_MS) >= 0);
    net_rpc_close(S.rpc);
    S.rpc = NULL;
    assert_int_equal(S.calls[0].ends, 1);
    assert_int_equal(S.calls[0].err, -ECANCELED);
    for (int i = 0; i < S.nheld; i++)
        net_reply_drop(S.held[i]);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_requests_are_matched_in_order),
        cmocka_unit_test(test_a_late_answer_times_out_and_the_next_request_reconnects),
        cmocka_unit_test(test_refused_closed_and_wrong_answers),
        cmocka_unit_test(test_callbacks_send_again_or_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
