/* samsa-conn-hold: opens N client connections to a Kafka broker and holds them open, so
 * that a benchmark can measure the broker while it carries many idle clients.
 *
 * Each connection sends one real Kafka request, ApiVersions v0 (api key 18), and reads
 * its answer before the next connection is opened, so every one is a connection the
 * broker has accepted and served, not a socket waiting in its listen backlog. Then all
 * are held in one epoll set, answering nothing; a connection the broker closes is counted
 * and reported. The broker's connections.max.idle.ms (10 minutes by default) bounds how
 * long they can stay idle.
 *
 *   samsa-conn-hold -b HOST:PORT [-n CONNECTIONS] [--seconds S]
 *
 * Prints "conn-hold: N connections open" once all are established (stdout, flushed:
 * bench/run.sh waits for it), then holds them until SIGTERM/SIGINT or S seconds, and
 * prints "conn-hold: K of N still open after T s". Exits 1 if a connection could not be
 * opened or answered, or if the broker closed any while they were held. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 100000
#define MAX_RESPONSE_BYTES (1 << 20) /* an ApiVersions answer is a few hundred bytes */
#define IO_TIMEOUT_S 10              /* per request: a broker that stalls longer fails us */
#define API_VERSIONS_KEY 18
#define CLIENT_ID "samsa-conn-hold"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads exactly n bytes (the socket has a receive timeout); 0 or -1 with errno. */
static int read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* One ApiVersions v0 round trip on fd, checked: the answer carries our correlation id
 * and error code 0. Returns 0, or -1 after saying why. */
static int api_versions(int fd, int32_t correlation_id, int conn_no)
{
    /* Request header v1: api_key int16, api_version int16, correlation_id int32,
     * client_id nullable string (int16 length + bytes); the v0 body is empty. The frame
     * is prefixed with its length (int32), as every Kafka request. */
    unsigned char req[4 + 2 + 2 + 4 + 2 + sizeof CLIENT_ID - 1];
    size_t id_len = sizeof CLIENT_ID - 1;
    put_be32(req, (uint32_t)(sizeof req - 4));
    put_be16(req + 4, API_VERSIONS_KEY);
    put_be16(req + 6, 0);
    put_be32(req + 8, (uint32_t)correlation_id);
    put_be16(req + 12, (uint16_t)id_len);
    memcpy(req + 14, CLIENT_ID, id_len);
    size_t sent = 0;
    while (sent < sizeof req) {
        ssize_t w = write(fd, req + sent, sizeof req - sent);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            fprintf(stderr, "conn-hold: connection %d: sending ApiVersions: %s\n", conn_no,
                    strerror(errno));
            return -1;
        }
        sent += (size_t)w;
    }
    unsigned char head[4 + 4 + 2]; /* size, correlation id, error code */
    if (read_full(fd, head, sizeof head) != 0) {
        fprintf(stderr, "conn-hold: connection %d: reading the ApiVersions answer: %s\n", conn_no,
                strerror(errno));
        return -1;
    }
    uint32_t size = get_be32(head);
    int32_t corr = (int32_t)get_be32(head + 4);
    int err = head[8] << 8 | head[9];
    if (size < 6 || size > MAX_RESPONSE_BYTES || corr != correlation_id || err != 0) {
        fprintf(stderr,
                "conn-hold: connection %d: bad ApiVersions answer (size %u, correlation id "
                "%d, expected %d, error code %d)\n",
                conn_no, size, corr, correlation_id, err);
        return -1;
    }
    static unsigned char rest[MAX_RESPONSE_BYTES];
    if (read_full(fd, rest, size - 6) != 0) {
        fprintf(stderr, "conn-hold: connection %d: reading the ApiVersions answer: %s\n", conn_no,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int open_one(const struct sockaddr_storage *addr, socklen_t addr_len, int conn_no)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "conn-hold: socket for connection %d: %s\n", conn_no, strerror(errno));
        return -1;
    }
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        fprintf(stderr, "conn-hold: socket options: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)addr, addr_len) != 0) {
        fprintf(stderr, "conn-hold: connection %d: connect: %s\n", conn_no, strerror(errno));
        close(fd);
        return -1;
    }
    if (api_versions(fd, conn_no, conn_no) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Each connection needs a descriptor: raise the soft limit to the hard one. */
static void raise_fd_limit(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "conn-hold: cannot raise the open-file limit: %s\n", strerror(errno));
        }
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)need + 16 > rl.rlim_cur) {
        fprintf(stderr, "conn-hold: note: open-file limit %llu < %ld connections + 16\n",
                (unsigned long long)rl.rlim_cur, need);
    }
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL;
    long n = 1000, seconds = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            bootstrap = argv[++i];
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            n = atol(argv[++i]);
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atol(argv[++i]);
        } else {
            bootstrap = NULL;
            break;
        }
    }
    const char *colon = bootstrap != NULL ? strrchr(bootstrap, ':') : NULL;
    if (colon == NULL || n < 1 || n > MAX_CONNECTIONS || seconds < 0) {
        fprintf(stderr,
                "usage: samsa-conn-hold -b HOST:PORT [-n CONNECTIONS (1..%d)] "
                "[--seconds S]\n",
                MAX_CONNECTIONS);
        return 2;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - bootstrap), bootstrap);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "conn-hold: %s: %s\n", bootstrap, gai_strerror(gai));
        return 1;
    }
    struct sockaddr_storage addr;
    socklen_t addr_len = ai->ai_addrlen;
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);

    raise_fd_limit(n);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        fprintf(stderr, "conn-hold: epoll_create1: %s\n", strerror(errno));
        return 1;
    }
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int fd = open_one(&addr, addr_len, (int)i);
        if (fd < 0) {
            fprintf(stderr, "conn-hold: gave up after %ld of %ld connections\n", i, n);
            return 1;
        }
        /* Only a close or an error from the broker can wake us: we sent nothing more. */
        struct epoll_event ev = {.events = EPOLLRDHUP, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            fprintf(stderr, "conn-hold: epoll_ctl: %s\n", strerror(errno));
            return 1;
        }
    }
    printf("conn-hold: %ld connections open (%.2f s to open and serve them)\n", n, now_s() - t0);
    fflush(stdout);

    long open_now = n;
    double held_from = now_s();
    while (!stop_requested && open_now > 0) {
        int timeout_ms = -1;
        if (seconds > 0) {
            double left = held_from + (double)seconds - now_s();
            if (left <= 0) {
                break;
            }
            timeout_ms = (int)(left * 1000) + 1;
        }
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, timeout_ms);
        if (k < 0 && errno != EINTR) {
            fprintf(stderr, "conn-hold: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < k; i++) {
            epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
            close(evs[i].data.fd);
            open_now--;
        }
    }
    printf("conn-hold: %ld of %ld still open after %.1f s\n", open_now, n, now_s() - held_from);
    return open_now == n ? 0 : 1;
}
