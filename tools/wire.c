/* A blocking Kafka connection for the tool's few hand-made requests; see wire.h. Kept
 * deliberately small: one request in flight, a whole response read into one buffer.
 * The connect is bounded by SO_SNDTIMEO (Linux applies it to connect); each send and
 * receive waits in poll() for what is left until the request's deadline, so a broker
 * that trickles bytes cannot stretch a request past it. */
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"

#define WIRE_CLIENT_ID "samsa-cli"

/* Per thread: cluster status asks several brokers at once, one thread each. */
static _Thread_local char why_buf[512];

/* What went wrong with a send or receive, for messages (errno 0: the peer closed). */
static const char *io_why(int err)
{
    if (err == 0)
        return "the broker closed the connection";
    if (err == ETIMEDOUT || err == EAGAIN || err == EWOULDBLOCK)
        return "timed out";
    return strerror(err);
}

/* The deadline of a request starting now on c: CLI_TIMEOUT_MS, or the connection's own
 * deadline if that comes first. */
static int64_t request_deadline(const struct wire_conn *c)
{
    int64_t d = time_mono_ms() + CLI_TIMEOUT_MS;
    return c->deadline_ms > 0 && c->deadline_ms < d ? c->deadline_ms : d;
}

/* Waits until fd is ready for `events` or deadline_ms (time_mono_ms) has passed.
 * Returns 0, or -1 with errno set (ETIMEDOUT at the deadline). */
static int wait_ready(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left_ms = deadline_ms - time_mono_ms();
        if (left_ms <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)MIN(left_ms, INT_MAX));
        if (n > 0)
            return 0; /* readable, writable, or an error the next call reports */
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Splits one bootstrap entry into host and port (both written into the caller's
 * buffers). Returns 0, or -1 if the entry does not fit or has an empty host. */
static int split_host_port(const char *entry, size_t len, char *host, size_t host_size, char *port,
                           size_t port_size)
{
    const char *scheme = memchr(entry, '/', len);
    if (scheme != NULL && scheme + 1 < entry + len && scheme[1] == '/') {
        len -= (size_t)(scheme + 2 - entry); /* "PLAINTEXT://host:port" */
        entry = scheme + 2;
    }
    const char *h = entry, *colon = NULL;
    size_t hlen = len;
    if (len > 0 && entry[0] == '[') { /* [v6addr]:port */
        const char *close = memchr(entry, ']', len);
        if (close == NULL) {
            return -1;
        }
        h = entry + 1;
        hlen = (size_t)(close - h);
        colon = close + 1 < entry + len && close[1] == ':' ? close + 1 : NULL;
    } else {
        for (size_t i = len; i > 0; i--) {
            if (entry[i - 1] == ':') {
                colon = entry + i - 1;
                break;
            }
        }
        hlen = colon != NULL ? (size_t)(colon - entry) : len;
    }
    size_t plen = colon != NULL ? (size_t)(entry + len - colon - 1) : 0;
    if (hlen == 0 || hlen >= host_size || plen >= port_size) {
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (plen > 0) {
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
    } else {
        snprintf(port, port_size, "9092");
    }
    return 0;
}

/* Opens a TCP connection to host:port, each address tried for at most timeout_ms.
 * Returns the fd or -1 with why_buf set. */
static int dial(const char *host, const char *port, int timeout_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(why_buf, sizeof why_buf, "%s:%s: %s", host, port, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            snprintf(why_buf, sizeof why_buf, "socket: %s", strerror(errno));
            continue;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
            connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            snprintf(why_buf, sizeof why_buf, "%s:%s: %s", host, port,
                     errno == EINPROGRESS ? "connect timed out" : strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Writes all n bytes by deadline_ms. Returns 0, or -1 with errno set. */
static int write_all(int fd, const uint8_t *p, size_t n, int64_t deadline_ms)
{
    while (n > 0) {
        if (wait_ready(fd, POLLOUT, deadline_ms) != 0)
            return -1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes by deadline_ms. Returns 0, or -1 with errno set (0 for a closed
 * connection). */
static int read_all(int fd, uint8_t *p, size_t n, int64_t deadline_ms)
{
    while (n > 0) {
        if (wait_ready(fd, POLLIN, deadline_ms) != 0)
            return -1;
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r == 0) {
            errno = 0;
            return -1;
        }
        if (r < 0) {
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int wire_call(struct wire_conn *c, int16_t api_key, int16_t version, const struct buf *req_body,
              struct buf *frame, struct reader *body, const char **why)
{
    *why = why_buf;
    int64_t deadline_ms = request_deadline(c);
    struct request_header h = {
        .api_key = api_key,
        .api_version = version,
        .correlation_id = c->next_correlation_id++,
        .client_id = slice_from_cstr(WIRE_CLIENT_ID),
    };
    struct buf out;
    buf_init(&out);
    buf_put_i32(&out, 0);
    proto_request_header_encode(&out, &h);
    buf_append(&out, req_body->data, req_body->len);
    buf_patch_i32(&out, 0, (int32_t)(out.len - 4));
    int rc = write_all(c->fd, out.data, out.len, deadline_ms);
    buf_free(&out);
    if (rc != 0) {
        snprintf(why_buf, sizeof why_buf, "sending to %s: %s", c->peer, io_why(errno));
        return -1;
    }
    uint8_t size_bytes[4];
    if (read_all(c->fd, size_bytes, sizeof size_bytes, deadline_ms) != 0) {
        snprintf(why_buf, sizeof why_buf, "reading from %s: %s", c->peer, io_why(errno));
        return -1;
    }
    uint32_t size = (uint32_t)size_bytes[0] << 24 | (uint32_t)size_bytes[1] << 16 |
                    (uint32_t)size_bytes[2] << 8 | size_bytes[3];
    if (size < 4 || size > WIRE_MAX_FRAME_BYTES) {
        snprintf(why_buf, sizeof why_buf, "%s answered a frame of %u bytes", c->peer, size);
        return -1;
    }
    buf_init(frame);
    uint8_t *p = buf_extend(frame, size);
    if (read_all(c->fd, p, size, deadline_ms) != 0) {
        snprintf(why_buf, sizeof why_buf, "reading from %s: %s", c->peer, io_why(errno));
        buf_free(frame);
        return -1;
    }
    rd_init(body, frame->data, frame->len);
    int32_t correlation_id = proto_response_header_decode(body, api_key, version);
    if (body->err || correlation_id != h.correlation_id) {
        snprintf(why_buf, sizeof why_buf, "%s answered a malformed response header", c->peer);
        buf_free(frame);
        return -1;
    }
    return 0;
}

/* Asks for ApiVersions v0 (every broker answers it) and fills c->max_version. */
static int fetch_api_versions(struct wire_conn *c, const char **why)
{
    for (size_t i = 0; i < WIRE_MAX_APIS; i++) {
        c->max_version[i] = -1;
    }
    struct buf req, frame;
    buf_init(&req); /* v0 has an empty body */
    struct reader body;
    int rc = wire_call(c, API_KEY_API_VERSIONS, 0, &req, &frame, &body, why);
    buf_free(&req);
    if (rc != 0) {
        return -1;
    }
    struct arena a;
    arena_init(&a);
    struct api_versions_response resp;
    rc = api_versions_response_decode(&body, 0, &a, &resp);
    if (rc != 0 || resp.error_code != KERR_NONE) {
        snprintf(why_buf, sizeof why_buf, "%s: ApiVersions %s", c->peer,
                 rc != 0 ? "response is malformed" : kafka_error_name(resp.error_code));
        *why = why_buf;
        rc = -1;
    } else {
        for (int32_t i = 0; i < resp.api_keys_count; i++) {
            const struct api_versions_response_api_keys *k = &resp.api_keys[i];
            if (k->api_key >= 0 && k->api_key < WIRE_MAX_APIS) {
                c->max_version[k->api_key] = k->max_version;
            }
        }
    }
    arena_free(&a);
    buf_free(&frame);
    return rc;
}

/* Connects as wire_connect does, with deadline_ms (time_mono_ms; 0: none) for c. */
static int connect_by(struct wire_conn *c, const char *bootstrap, int64_t deadline_ms,
                      const char **why)
{
    *c = (struct wire_conn){.fd = -1, .next_correlation_id = 1, .deadline_ms = deadline_ms};
    *why = why_buf;
    snprintf(why_buf, sizeof why_buf, "empty bootstrap server list");
    for (const char *s = bootstrap; *s != '\0';) {
        size_t len = strcspn(s, ",");
        char host[256], port[16];
        int64_t connect_ms = CLI_TIMEOUT_MS;
        if (deadline_ms > 0)
            connect_ms = MIN(connect_ms, deadline_ms - time_mono_ms());
        if (split_host_port(s, len, host, sizeof host, port, sizeof port) != 0) {
            snprintf(why_buf, sizeof why_buf, "bad bootstrap server '%.*s'", (int)len, s);
        } else if (connect_ms <= 0) {
            snprintf(why_buf, sizeof why_buf, "%s:%s: connect timed out", host, port);
            return -1;
        } else if ((c->fd = dial(host, port, (int)connect_ms)) >= 0) {
            snprintf(c->peer, sizeof c->peer, "%s:%s", host, port);
            if (fetch_api_versions(c, why) == 0) {
                return 0;
            }
            wire_close(c);
        }
        s += len;
        s += *s == ',';
    }
    return -1;
}

int wire_connect(struct wire_conn *c, const char *bootstrap, const char **why)
{
    return connect_by(c, bootstrap, 0, why);
}

int wire_connect_within(struct wire_conn *c, const char *bootstrap, int timeout_ms,
                        const char **why)
{
    ASSERT(timeout_ms > 0);
    return connect_by(c, bootstrap, time_mono_ms() + timeout_ms, why);
}

int16_t wire_version(const struct wire_conn *c, int16_t api_key)
{
    const struct proto_api *api = proto_api_find(api_key);
    if (api == NULL || api_key < 0 || api_key >= WIRE_MAX_APIS || c->max_version[api_key] < 0) {
        return -1;
    }
    int16_t v =
        c->max_version[api_key] < api->max_version ? c->max_version[api_key] : api->max_version;
    return v >= api->min_version ? v : -1;
}

void wire_close(struct wire_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
}
