/*
 * The event loop: one epoll instance, level-triggered fd watchers indexed by fd, a
 * min-heap of one-shot timers, idle hooks, and signalfd-based signal handling.
 *
 * One iteration (net_loop_run, or net_loop_run_once for tests that step the loop):
 *   1. block in epoll_wait until an fd is ready or the earliest timer is due;
 *   2. refresh the cached clock, dispatch fd events;
 *   3. fire due timers (only those added before this step started, so a timer that
 *      re-arms itself with delay 0 cannot starve the loop);
 *   4. run idle hooks (the server submits one group-commit round here);
 *   5. flush connections with completed replies (conn.c), so everything completed
 *      during 2-4 leaves in one writev per connection.
 * Like Redis's ae.c, this is deliberately small; see conn.c for accepted connections
 * and client.c for outbound ones.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "net/internal.h"

#define MAX_EVENTS 256

/* ---- timers: slot table + min-heap ----
 * A timer id encodes its slot and the slot's generation, so cancelling an id whose
 * timer already fired (and whose slot was reused) is a harmless no-op. */

static bool timer_before(const struct net_loop *loop, uint32_t a, uint32_t b)
{
    const struct net_timer *ta = &loop->timers[a], *tb = &loop->timers[b];
    return ta->when_ms < tb->when_ms || (ta->when_ms == tb->when_ms && ta->seq < tb->seq);
}

static void heap_set(struct net_loop *loop, uint32_t pos, uint32_t slot)
{
    loop->heap[pos] = slot;
    loop->timers[slot].heap_pos = pos;
}

static void heap_up(struct net_loop *loop, uint32_t pos)
{
    uint32_t slot = loop->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!timer_before(loop, slot, loop->heap[parent]))
            break;
        heap_set(loop, pos, loop->heap[parent]);
        pos = parent;
    }
    heap_set(loop, pos, slot);
}

static void heap_down(struct net_loop *loop, uint32_t pos)
{
    uint32_t slot = loop->heap[pos];
    for (;;) {
        uint32_t child = 2 * pos + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len &&
            timer_before(loop, loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_before(loop, loop->heap[child], slot))
            break;
        heap_set(loop, pos, loop->heap[child]);
        pos = child;
    }
    heap_set(loop, pos, slot);
}

/* Removes the timer at heap position pos and frees its slot. */
static void heap_remove(struct net_loop *loop, uint32_t pos)
{
    ASSERT(pos < loop->heap_len);
    uint32_t slot = loop->heap[pos];
    uint32_t last = loop->heap[--loop->heap_len];
    if (pos < loop->heap_len) {
        heap_set(loop, pos, last);
        heap_down(loop, pos);
        heap_up(loop, loop->timers[last].heap_pos);
    }
    struct net_timer *t = &loop->timers[slot];
    t->heap_pos = UINT32_MAX;
    t->gen++;
    t->cb = NULL;
    loop->free_slots[loop->free_count++] = slot;
}

uint64_t net_timer_add(struct net_loop *loop, int64_t delay_ms, net_timer_cb cb, void *arg)
{
    ASSERT(cb != NULL);
    if (loop->free_count == 0) {
        uint32_t old = loop->timers_cap, cap = old ? old * 2 : 64;
        loop->timers = xrealloc(loop->timers, cap * sizeof(*loop->timers));
        loop->free_slots = xrealloc(loop->free_slots, cap * sizeof(*loop->free_slots));
        loop->heap = xrealloc(loop->heap, cap * sizeof(*loop->heap));
        for (uint32_t i = cap; i > old; i--) {
            loop->timers[i - 1] = (struct net_timer){.heap_pos = UINT32_MAX, .gen = 1};
            loop->free_slots[loop->free_count++] = i - 1;
        }
        loop->timers_cap = cap;
    }
    uint32_t slot = loop->free_slots[--loop->free_count];
    struct net_timer *t = &loop->timers[slot];
    t->when_ms = loop->now_ms + (delay_ms > 0 ? delay_ms : 0);
    t->seq = loop->next_seq++;
    t->cb = cb;
    t->arg = arg;
    loop->heap_len++;
    heap_set(loop, loop->heap_len - 1, slot);
    heap_up(loop, loop->heap_len - 1);
    return ((uint64_t)t->gen << 32) | (slot + 1);
}

void net_timer_cancel(struct net_loop *loop, uint64_t id)
{
    uint32_t slot1 = (uint32_t)id;
    if (slot1 == 0 || slot1 > loop->timers_cap)
        return;
    struct net_timer *t = &loop->timers[slot1 - 1];
    if (t->gen != (uint32_t)(id >> 32) || t->heap_pos == UINT32_MAX)
        return;
    heap_remove(loop, t->heap_pos);
}

size_t net_timer_count(const struct net_loop *loop)
{
    return loop->heap_len;
}

/* Returns how many fired. */
static int fire_timers(struct net_loop *loop)
{
    int fired = 0;
    uint64_t seq_limit = loop->next_seq;
    while (loop->heap_len > 0) {
        struct net_timer *t = &loop->timers[loop->heap[0]];
        if (t->when_ms > loop->now_ms || t->seq >= seq_limit)
            break;
        net_timer_cb cb = t->cb;
        void *arg = t->arg;
        heap_remove(loop, 0);
        cb(loop, arg);
        fired++;
    }
    return fired;
}

/* ms until the earliest timer, 0 if one is due, -1 if there are none. */
static int next_timeout_ms(struct net_loop *loop)
{
    if (loop->heap_len == 0)
        return -1;
    int64_t d = loop->timers[loop->heap[0]].when_ms - time_mono_ms();
    if (d <= 0)
        return 0;
    return d > 60000 ? 60000 : (int)d;
}

/* ---- fd watchers ---- */

static uint32_t to_epoll(uint32_t events)
{
    return ((events & NET_READABLE) ? EPOLLIN : 0u) | ((events & NET_WRITABLE) ? EPOLLOUT : 0u);
}

static int epoll_update(struct net_loop *loop, int op, int fd)
{
    struct net_watcher *w = &loop->watchers[fd];
    struct epoll_event ev = {.events = to_epoll(w->events)};
    ev.data.u64 = ((uint64_t)w->gen << 32) | (uint32_t)fd;
    if (epoll_ctl(loop->epfd, op, fd, &ev) < 0)
        return -errno;
    return 0;
}

int net_watch(struct net_loop *loop, int fd, uint32_t events, net_fd_cb cb, void *arg)
{
    ASSERT(fd >= 0 && cb != NULL);
    if ((size_t)fd >= loop->watchers_cap) {
        size_t cap = loop->watchers_cap ? loop->watchers_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        loop->watchers = xrealloc(loop->watchers, cap * sizeof(*loop->watchers));
        memset(loop->watchers + loop->watchers_cap, 0,
               (cap - loop->watchers_cap) * sizeof(*loop->watchers));
        loop->watchers_cap = cap;
    }
    struct net_watcher *w = &loop->watchers[fd];
    ASSERT(w->cb == NULL); /* one watcher per fd */
    w->cb = cb;
    w->arg = arg;
    w->events = events;
    int rc = epoll_update(loop, EPOLL_CTL_ADD, fd);
    if (rc < 0) {
        w->cb = NULL;
        say_error("net", "epoll_ctl ADD fd %d failed: %s", fd, strerror(-rc));
    }
    return rc;
}

int net_watch_modify(struct net_loop *loop, int fd, uint32_t events)
{
    ASSERT(fd >= 0 && (size_t)fd < loop->watchers_cap && loop->watchers[fd].cb != NULL);
    if (loop->watchers[fd].events == events)
        return 0;
    loop->watchers[fd].events = events;
    int rc = epoll_update(loop, EPOLL_CTL_MOD, fd);
    if (rc < 0)
        say_error("net", "epoll_ctl MOD fd %d failed: %s", fd, strerror(-rc));
    return rc;
}

void net_unwatch(struct net_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->watchers_cap || loop->watchers[fd].cb == NULL)
        return;
    struct net_watcher *w = &loop->watchers[fd];
    if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
        say_error("net", "epoll_ctl DEL fd %d failed: %s", fd, strerror(errno));
    w->cb = NULL;
    w->events = 0;
    w->gen++; /* events for fd already returned by this epoll_wait are now stale */
}

static void dispatch(struct net_loop *loop, const struct epoll_event *ev)
{
    int fd = (int)(uint32_t)ev->data.u64;
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    if ((size_t)fd >= loop->watchers_cap)
        return;
    struct net_watcher *w = &loop->watchers[fd];
    if (w->cb == NULL || w->gen != gen)
        return; /* unwatched (and maybe re-watched) by an earlier callback */
    uint32_t events = 0;
    if (ev->events & EPOLLIN)
        events |= NET_READABLE;
    if (ev->events & EPOLLOUT)
        events |= NET_WRITABLE;
    if (ev->events & (EPOLLERR | EPOLLHUP))
        events |= NET_ERROR | w->events;
    events &= w->events | NET_ERROR;
    if (events)
        w->cb(loop, fd, events, w->arg);
}

/* ---- wakeups and signals ---- */

static void wake_cb(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR)
        say_error("net", "read of loop eventfd failed: %s", strerror(errno));
}

void net_loop_wake(struct net_loop *loop)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake anyway. */
    ssize_t n = write(loop->wake_fd, &one, sizeof one);
    (void)n;
}

void net_loop_stop(struct net_loop *loop)
{
    int saved = errno; /* async-signal-safe: keep the interrupted code's errno */
    loop->stop = 1;
    net_loop_wake(loop);
    errno = saved;
}

static void signal_fd_cb(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    struct signalfd_siginfo si;
    for (;;) {
        ssize_t n = read(fd, &si, sizeof si);
        if (n != (ssize_t)sizeof si) {
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                say_error("net", "read of signalfd failed: %s", strerror(errno));
            return;
        }
        say_info("net", "received signal %u (%s)", si.ssi_signo, strsignal((int)si.ssi_signo));
        if (loop->signal_cb)
            loop->signal_cb(loop, (int)si.ssi_signo, loop->signal_arg);
        else
            net_loop_stop(loop);
    }
}

int net_loop_handle_signals(struct net_loop *loop, net_signal_cb cb, void *arg)
{
    ASSERT(loop->signal_fd < 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0) {
        say_error("net", "blocking SIGINT/SIGTERM failed: %s", strerror(rc));
        return -rc;
    }
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        say_error("net", "signalfd failed: %s", strerror(errno));
        return rc;
    }
    loop->signal_fd = fd;
    loop->signal_cb = cb;
    loop->signal_arg = arg;
    return net_watch(loop, fd, NET_READABLE, signal_fd_cb, NULL);
}

/* ---- loop ---- */

int net_loop_create(struct net_loop **out)
{
    struct net_loop *loop = xcalloc(1, sizeof *loop);
    loop->signal_fd = -1;
    loop->next_seq = 1;
    loop->next_conn_id = 1;
    loop->now_ms = time_mono_ms();
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        int rc = -errno;
        say_error("net", "epoll_create1 failed: %s", strerror(errno));
        free(loop);
        return rc;
    }
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc =
        loop->wake_fd < 0 ? -errno : net_watch(loop, loop->wake_fd, NET_READABLE, wake_cb, NULL);
    if (rc < 0) {
        say_error("net", "creating the loop eventfd failed: %s", strerror(-rc));
        if (loop->wake_fd >= 0)
            close(loop->wake_fd);
        close(loop->epfd);
        free(loop->watchers);
        free(loop);
        return rc;
    }
    *out = loop;
    return 0;
}

void net_loop_destroy(struct net_loop *loop)
{
    if (loop == NULL)
        return;
    loop->destroying = true; /* before closing clients: their on_close cannot reconnect */
    net__client_shutdown(loop);
    net__conn_shutdown(loop);
    if (loop->signal_fd >= 0) {
        net_unwatch(loop, loop->signal_fd);
        close(loop->signal_fd);
    }
    net_unwatch(loop, loop->wake_fd);
    close(loop->wake_fd);
    close(loop->epfd);
    free(loop->watchers);
    free(loop->timers);
    free(loop->free_slots);
    free(loop->heap);
    free(loop);
}

void net_loop_on_idle(struct net_loop *loop, net_idle_cb cb, void *arg)
{
    ASSERT(cb != NULL && loop->idle_count < NET_MAX_IDLE_HOOKS);
    loop->idle[loop->idle_count].cb = cb;
    loop->idle[loop->idle_count].arg = arg;
    loop->idle_count++;
}

int64_t net_loop_now_ms(const struct net_loop *loop)
{
    return loop->now_ms;
}

/* One iteration (steps 1-5 at the top of the file), epoll_wait blocking at most
 * timeout_ms (-1: until the earliest timer). */
static int iterate(struct net_loop *loop, int timeout_ms)
{
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(loop->epfd, events, MAX_EVENTS, timeout_ms);
    if (n < 0) {
        if (errno != EINTR) {
            int rc = -errno;
            say_error("net", "epoll_wait failed: %s", strerror(errno));
            return rc;
        }
        n = 0;
    }
    loop->now_ms = time_mono_ms();
    for (int i = 0; i < n; i++)
        dispatch(loop, &events[i]);
    int fired = fire_timers(loop);
    for (size_t i = 0; i < loop->idle_count; i++)
        loop->idle[i].cb(loop, loop->idle[i].arg);
    net__flush(loop);
    return n + fired;
}

int net_loop_run(struct net_loop *loop)
{
    loop->stop = 0;
    loop->now_ms = time_mono_ms();
    while (!loop->stop) {
        int rc = iterate(loop, next_timeout_ms(loop));
        if (rc < 0)
            return rc;
    }
    return 0;
}

int net_loop_run_once(struct net_loop *loop, int timeout_ms)
{
    return iterate(loop, timeout_ms < 0 ? next_timeout_ms(loop) : timeout_ms);
}
