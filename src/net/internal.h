/*
 * net internals shared by loop.c, conn.c and client.c. Not part of the public interface.
 */
#ifndef SAMSA_NET_INTERNAL_H
#define SAMSA_NET_INTERNAL_H

#include "net/net.h"

struct net_watcher {
    net_fd_cb cb;
    void *arg;
    uint32_t events; /* NET_READABLE|NET_WRITABLE asked for; 0 with cb NULL = unwatched */
    uint32_t gen;    /* bumped by unwatch; stale epoll events carry an older gen */
};

struct net_timer {
    int64_t when_ms;
    uint64_t seq; /* insertion order: ties fire in order added */
    net_timer_cb cb;
    void *arg;
    uint32_t gen;      /* bumped when the slot is freed; part of the id */
    uint32_t heap_pos; /* index in loop->heap, or UINT32_MAX when the slot is free */
};

struct net_loop {
    int epfd;
    int wake_fd;   /* eventfd: net_loop_stop/net_loop_wake */
    int signal_fd; /* -1 until net_loop_handle_signals */
    net_signal_cb signal_cb;
    void *signal_arg;
    volatile int stop; /* set by net_loop_stop, possibly from a signal */
    int64_t now_ms;    /* cached per iteration */

    struct net_watcher *watchers; /* indexed by fd */
    size_t watchers_cap;

    struct net_timer *timers; /* slots; id = gen << 32 | (slot + 1) */
    uint32_t timers_cap;
    uint32_t *free_slots; /* stack of free slot indexes */
    uint32_t free_count;
    uint32_t *heap; /* min-heap of slot indexes by (when_ms, seq) */
    uint32_t heap_len;
    uint64_t next_seq;

    struct {
        net_idle_cb cb;
        void *arg;
    } idle[NET_MAX_IDLE_HOOKS];
    size_t idle_count;

    /* conn.c state, owned by the loop so shutdown and flushing reach it. */
    struct net_listener *listeners; /* singly linked */
    struct net_conn *flush_head;    /* connections with replies to write */
    struct net_reply *reply_pool;   /* free list of recycled replies */
    size_t reply_pool_len;
    size_t reply_pool_bytes; /* body capacity held by pooled replies */
    uint8_t *scratch;        /* shared read buffer and pread bounce buffer */
    size_t scratch_cap;
    uint64_t next_conn_id;
    /* Open connections per peer address (16-byte key from net_ip_parse's form; the
     * value is the count itself, cast to a pointer). Only addresses with at least one
     * open connection have an entry, so it never holds more than the connections do. */
    struct hmap conns_per_ip;
    /* Broker-wide budgets (see struct net_server_config); limits <= 0 are unbounded. */
    int64_t resp_bytes; /* memory of complete replies still queued */
    int64_t resp_files; /* file chunks of complete replies still queued */
    int64_t req_bytes;  /* frames delivered whose reply is not complete */
    int64_t max_resp_bytes, max_resp_files, max_req_bytes;
    struct net_conn *budget_waiters; /* paused only by a budget; resumed by net__flush */
    uint64_t budget_pauses;
    /* malloc_trim once resp_bytes fell trim_drop_bytes below resp_peak (at most 1/s). */
    int64_t trim_drop_bytes;
    int64_t resp_peak;
    int64_t last_trim_ms;
    uint64_t trims;

    /* client.c state: open clients, so that destroying the loop closes and frees them. */
    struct net_client *clients; /* doubly linked; closing clients are already unlinked */
    size_t client_count;
    bool destroying; /* net_loop_destroy has started: no new clients */
};

/* conn.c: runs after the idle hooks each iteration; writes pending replies. */
void net__flush(struct net_loop *loop);
/* conn.c: closes all listeners/connections and frees conn.c state (loop destroy). */
void net__conn_shutdown(struct net_loop *loop);
/* client.c: closes every client (on_close with -ECANCELED) at loop destroy. */
void net__client_shutdown(struct net_loop *loop);

#endif
