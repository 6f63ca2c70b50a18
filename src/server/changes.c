/* Metadata changes as the server submits them: requests that answer once their changes
 * are durable and applied, the runner that writes the metadata log off the event loop,
 * and results kept for start-up, whose changes complete inside the submitting call. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void change_outcome_keep(void *arg, const struct cluster_result *res)
{
    struct change_outcome *out = arg;
    out->done = true;
    out->err = res->err;
    snprintf(out->why, sizeof out->why, "%s",
             res->why ? res->why : (res->err ? "the metadata log could not be written" : ""));
    out->first_producer_id = res->first_producer_id;
}

void change_wait_begin(struct change_wait *w, struct request *req,
                       void (*respond)(struct change_wait *w))
{
    w->req = req;
    w->pending = 1;
    w->respond = respond;
}

/* One change's answer in a waiting request's response. */
struct change_slot {
    struct change_wait *w;
    int16_t *error_code;
    struct slice *error_message; /* NULL: the response has none */
};

static void change_slot_done(void *arg, const struct cluster_result *res)
{
    struct change_slot *slot = arg;
    struct change_wait *w = slot->w;
    *slot->error_code = kerr_from_cluster(res->err);
    if (res->err != CLUSTER_OK && slot->error_message)
        *slot->error_message = slice_from_cstr(
            arena_strndup(&w->req->arena, res->why ? res->why : "metadata log write failed",
                          strlen(res->why ? res->why : "metadata log write failed")));
    change_wait_end(w);
}

cluster_done_fn change_wait_slot(struct change_wait *w, int16_t *error_code,
                                 struct slice *error_message, void **arg)
{
    struct change_slot *slot = REQ_ALLOC(w->req, struct change_slot, 1);
    *slot = (struct change_slot){w, error_code, error_message};
    w->pending++;
    *arg = slot;
    return change_slot_done;
}

void change_wait_end(struct change_wait *w)
{
    ASSERT(w->pending > 0);
    if (--w->pending == 0)
        w->respond(w);
}

/* ---- the runner: the metadata log's writes on a thread of their own ---- */

struct metadata_write {
    void (*work)(void *arg);
    void (*finished)(void *arg);
    void *arg;
};

static void metadata_work(void *arg)
{
    struct metadata_write *mw = arg;
    mw->work(mw->arg);
}

static void metadata_written(void *arg, struct log_flush_job **jobs, size_t n)
{
    (void)jobs;
    (void)n;
    struct metadata_write mw = *(struct metadata_write *)arg;
    free(arg);
    mw.finished(mw.arg);
}

static void run_on_metadata_thread(void *runner_arg, void (*work)(void *arg),
                                   void (*finished)(void *arg), void *arg)
{
    struct server *s = runner_arg;
    struct metadata_write *mw = xcalloc(1, sizeof *mw);
    *mw = (struct metadata_write){work, finished, arg};
    syncer_submit_work(s->metadata_io, metadata_work, metadata_written, mw);
}

static void on_metadata_io_event(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct server *s = arg;
    syncer_reap(s->metadata_io);
}

int server_metadata_io_start(struct server *s)
{
    int rc = server_syncer_create(s, 1, &s->metadata_io);
    if (rc != 0) {
        say_error("server", "cannot start the metadata log thread: %s", storage_strerror(rc));
        return -1;
    }
    net_watch(s->loop, syncer_event_fd(s->metadata_io), NET_READABLE, on_metadata_io_event, s);
    struct cluster_runner r = {run_on_metadata_thread, s};
    cluster_set_runner(s->cluster, &r);
    return 0;
}

void server_metadata_io_stop(struct server *s)
{
    if (!s->metadata_io)
        return;
    /* The change being written finishes (its callback runs here); any queued behind it
     * are then written inside the calls, on this thread. */
    cluster_set_runner(s->cluster, NULL);
    net_unwatch(s->loop, syncer_event_fd(s->metadata_io));
    syncer_destroy(s->metadata_io);
    s->metadata_io = NULL;
}
