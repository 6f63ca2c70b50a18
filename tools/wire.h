/* One Kafka connection for the requests librdkafka 2.0.2 cannot send (DescribeCluster,
 * DescribeQuorum): a blocking TCP socket to one bootstrap server, requests encoded and
 * responses decoded with the broker's own generated codec (src/proto), one request in
 * flight at a time.
 *
 * wire_connect asks the broker for its ApiVersions (v0, which every Kafka broker
 * answers), so wire_version can pick the highest version both sides know. The connect
 * and each request's whole exchange (send and receive) are bounded by CLI_TIMEOUT_MS, and
 * by the connection's deadline when it was opened with wire_connect_within; a response
 * frame is bounded by WIRE_MAX_FRAME_BYTES. Plaintext only: no TLS, no SASL.
 *
 * Connections on different threads are independent: the reasons handed back through
 * `why` are per thread. */
#ifndef SAMSA_TOOLS_WIRE_H
#define SAMSA_TOOLS_WIRE_H

#include "proto/proto.h"

#define WIRE_MAX_FRAME_BYTES (64 * 1024 * 1024)
/* Bound on the ApiVersions entries kept (Kafka 4.4 lists about 90 APIs). */
#define WIRE_MAX_APIS 256

struct wire_conn {
    int fd;
    int32_t next_correlation_id;
    char peer[300]; /* "host:port" as connected, for messages */
    /* time_mono_ms() after which every connect, send and receive fails; 0: none (then
     * only CLI_TIMEOUT_MS per request bounds them). */
    int64_t deadline_ms;
    /* The broker's ApiVersions answer: max version per api key, -1 if not offered. */
    int16_t max_version[WIRE_MAX_APIS];
};

/* Connects to the first server of the comma-separated bootstrap list that accepts
 * ("host:port", "[v6]:port" or "PLAINTEXT://host:port"; port 9092 if absent) and
 * fetches its ApiVersions. Returns 0, or -1 after setting *why (static text or
 * strerror, valid until the thread's next call) with no connection left open. */
int wire_connect(struct wire_conn *c, const char *bootstrap, const char **why);

/* wire_connect with everything done on the connection, this connect included, over
 * within timeout_ms from now: for asking many brokers when a silent one must not hold
 * up the answer. */
int wire_connect_within(struct wire_conn *c, const char *bootstrap, int timeout_ms,
                        const char **why);

/* The version of api_key to send: the highest both this codec and the broker serve, or
 * -1 if there is none. */
int16_t wire_version(const struct wire_conn *c, int16_t api_key);

/* Sends one request (header + body, which the caller encoded for `version`) and waits for
 * its response, CLI_TIMEOUT_MS at most (less when the connection's deadline comes
 * first). On success returns 0 and *frame holds the whole response frame (the caller
 * owns it, buf_free), with *body a reader over the body after the response header;
 * decoded slices borrow frame. Returns -1 after setting *why if the connection
 * failed, closed, or answered with a malformed or mismatched frame. */
int wire_call(struct wire_conn *c, int16_t api_key, int16_t version, const struct buf *req_body,
              struct buf *frame, struct reader *body, const char **why);

void wire_close(struct wire_conn *c);

#endif
