/* Broker lifecycle: start-up (metadata replay, log recovery, listener), the periodic
 * work (retention, flush policy), and clean shutdown. */
#include "server/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static void on_remover_event(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct server *s = arg;
    syncer_reap(s->remover);
}

static void on_sync_event(struct net_loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct server *s = arg;
    syncer_reap(s->syncer);
}

/* syncfs(2) reports write-back errors only since Linux 5.8; before that a failed write
 * could be acknowledged, so rounds sync per file there. */
static bool syncfs_reports_errors(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    if (major > 5 || (major == 5 && minor >= 8))
        return true;
    say_warn("server",
             "kernel %s: syncfs does not report write errors before 5.8; "
             "samsa.sync.syncfs.partitions is ignored",
             u.release);
    return false;
}

/* A metadata change: the partitions follow it first, then the groups: they forget the
 * committed offsets of a deleted topic, and load or drop the groups of a partition of
 * __consumer_offsets whose leader changed. */
static int on_cluster_event(void *arg, enum cluster_event ev, const struct mtopic *t,
                            int32_t partition)
{
    struct server *s = arg;
    int rc = server_cluster_event(s, ev, t, partition);
    if (rc == 0 && ev == CLUSTER_TOPIC_DELETED)
        server_groups_topic_deleted(s, t->name);
    if (rc == 0 && ev == CLUSTER_PARTITION_CHANGED) {
        server_groups_leadership(s, t->name, partition);
        server_txns_leadership(s, t->name, partition);
        server_delays_leadership(s, t->name, partition);
    }
    return rc;
}

static void on_idle(struct net_loop *loop, void *arg)
{
    (void)loop;
    struct server *s = arg;
    fetch_drop_orphans(s);
    purgatory_run(s->fetch_waits);
    itopic_host_idle(s->groups_host); /* the group coordinator's queued writes */
    server_txns_idle(s);
    if (s->txn_transitioned) {
        s->txn_transitioned = false;
        server_txn_adds_wake(s);
    }
    server_delays_idle(s);
    server_commit_idle(s);
    storage_read_turn_end(); /* segment files lent to this iteration's fetches */
}

/* Calls fn(s, partition, now) for every partition of every topic. */
static void each_partition(struct server *s,
                           void (*fn)(struct server *, struct partition *, int64_t now_ms))
{
    int64_t now = time_wall_ms();
    size_t it = 0;
    struct slice k;
    void *v;
    while (hmap_next(&s->topics, &it, &k, &v)) {
        struct topic_state *ts = v;
        for (int32_t i = 0; i < ts->partition_count; i++)
            if (ts->partitions[i])
                fn(s, ts->partitions[i], now);
    }
}

static void enforce_retention(struct server *s, struct partition *p, int64_t now_ms)
{
    (void)s;
    int deleted = 0;
    int rc = log_enforce_retention(p->log, now_ms, &deleted);
    if (rc != 0)
        say_warn("server", "retention on %s-%d failed: %s", p->topic, p->index,
                 storage_strerror(rc));
    else if (deleted > 0)
        say_info("server", "retention deleted %d segment(s) of %s-%d; log start is now %lld",
                 deleted, p->topic, p->index, (long long)log_start_offset(p->log));
}

static void retention_tick(struct net_loop *loop, void *arg)
{
    struct server *s = arg;
    each_partition(s, enforce_retention);
    s->retention_timer =
        net_timer_add(loop, s->cfg->retention_check_interval_ms, retention_tick, s);
}

/* Idempotent producers not heard from for producer.id.expiration.ms are forgotten (a
 * later batch of theirs is then accepted as from a new producer, as in Kafka). */
static void expire_producers(struct server *s, struct partition *p, int64_t now_ms)
{
    log_expire_producers(p->log, now_ms, s->cfg->producer_id_expiration_ms);
}

static void producer_expiry_tick(struct net_loop *loop, void *arg)
{
    struct server *s = arg;
    each_partition(s, expire_producers);
    s->producer_expiry_timer = net_timer_add(loop, s->cfg->producer_id_expiration_check_interval_ms,
                                             producer_expiry_tick, s);
}

static void flush_tick(struct net_loop *loop, void *arg)
{
    struct server *s = arg;
    server_flush_policy_tick(s);
    s->flush_timer = net_timer_add(loop, s->cfg->flush_scheduler_interval_ms, flush_tick, s);
}

static void checkpoint_tick(struct net_loop *loop, void *arg)
{
    struct server *s = arg;
    server_write_checkpoints(s, CHECKPOINT_RECOVERY_POINTS, false, NULL, NULL);
    s->checkpoint_timer =
        net_timer_add(loop, s->cfg->flush_offset_checkpoint_interval_ms, checkpoint_tick, s);
}

static int ensure_dir(const char *dir)
{
    char *copy = xstrdup(dir);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            say_error("server", "cannot create %s: %s", copy, strerror(errno));
            free(copy);
            return -1;
        }
        *p = '/';
    }
    free(copy);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        say_error("server", "cannot create log dir %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int server_format(const struct broker_config *cfg, const char *cluster_id)
{
    int lock_fd = -1;
    if (ensure_dir(cfg->log_dir) != 0 || server_lock_log_dir(cfg->log_dir, &lock_fd) != 0)
        return -1;
    char meta_dir[4096];
    snprintf(meta_dir, sizeof meta_dir, "%s/__cluster_metadata-0", cfg->log_dir);
    int rc = cluster_format(meta_dir, cfg->node_id, cluster_id);
    close(lock_fd);
    if (rc != CLUSTER_OK)
        return -1;
    say_info("server", "formatted %s for node %d of cluster %s", meta_dir, cfg->node_id,
             cluster_id);
    return 0;
}

/* SIGTERM/SIGINT. In a cluster the first one starts a controlled shutdown: the active
 * controller moves this broker's leaderships to other in-sync replicas before it stops,
 * so that a rolling restart loses no availability. It is bounded by a broker session;
 * a second signal, or a node on its own, stops at once. */
static void controlled_shutdown_expired(struct net_loop *loop, void *arg)
{
    struct server *s = arg;
    s->shutdown_timer = 0;
    say_warn("server",
             "controlled shutdown: no answer from the controller in %lld ms; "
             "stopping anyway",
             (long long)s->cfg->broker_session_timeout_ms);
    net_loop_stop(loop);
}

static void on_signal(struct net_loop *loop, int signo, void *arg)
{
    struct server *s = arg;
    if (!s->shutdown_timer && server_controlled_shutdown(s)) {
        say_info("server", "signal %d: controlled shutdown (a second signal stops at once)", signo);
        s->shutdown_timer =
            net_timer_add(loop, s->cfg->broker_session_timeout_ms, controlled_shutdown_expired, s);
        return;
    }
    net_loop_stop(loop);
}

int server_create(const struct broker_config *cfg, struct server **out)
{
    struct server_options opt = {0};
    return server_create_with(cfg, &opt, out);
}

int server_create_with(const struct broker_config *cfg, const struct server_options *opt,
                       struct server **out)
{
    struct server *s = xcalloc(1, sizeof *s);
    s->cfg = cfg;
    s->manual_io = opt->manual_io;
    s->log_dir = xstrdup(cfg->log_dir);
    hmap_init(&s->topics);
    s->fetch_waits = purgatory_new();
    s->durable_waits = purgatory_new();
    s->fetch_timer_deadline = INT64_MAX;
    s->log_dir_lock_fd = -1;
    repl_quota_init(&s->leader_quota, cfg->leader_replication_throttled_rate,
                    cfg->replication_quota_window_num, cfg->replication_quota_window_ms);
    repl_quota_init(&s->follower_quota, cfg->follower_replication_throttled_rate,
                    cfg->replication_quota_window_num, cfg->replication_quota_window_ms);
    if (ensure_dir(s->log_dir) != 0 || server_lock_log_dir(s->log_dir, &s->log_dir_lock_fd) != 0)
        goto fail;

    char meta_dir[4096];
    snprintf(meta_dir, sizeof meta_dir, "%s/__cluster_metadata-0", s->log_dir);
    int32_t voter_ids[BROKER_MAX_VOTERS];
    for (size_t i = 0; i < cfg->voter_count; i++)
        voter_ids[i] = cfg->voters[i].id;
    struct cluster_options co = {
        .metadata_dir = meta_dir,
        .node_id = cfg->node_id,
        .voters = voter_ids,
        .voter_count = cfg->voter_count,
        .controller_only = !cfg->broker,
        .unclean_leader_election = cfg->unclean_leader_election,
        /* Election timeouts must differ between voters. */
        .seed = (uint64_t)time_wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)cfg->node_id,
        .max_partitions =
            cfg->max_partitions > 0 ? cfg->max_partitions : server_default_max_partitions(),
        .snapshot_max_bytes = cfg->metadata_snapshot_max_bytes,
        .snapshot_interval_ms = cfg->metadata_snapshot_interval_ms,
    };
    if (cluster_open(&co, &s->cluster) != 0) {
        say_error("server", "cannot open the metadata log in %s", meta_dir);
        goto fail;
    }
    say_info("server", "this broker hosts at most %lld partitions (samsa.max.partitions%s)",
             (long long)co.max_partitions, cfg->max_partitions > 0 ? "" : ", the default");
    /* Before anything is written: a node that lost its metadata must not record a new
     * cluster over data it can no longer account for. */
    if (server_check_metadata_accounts_for_data(s) != 0)
        goto fail;
    /* Start-up changes complete inside their calls: the metadata thread starts last. A
     * node of a quorum of several registers once it has a listener and a leader. */
    bool alone = broker_config_alone(cfg);
    struct change_outcome registered = {0};
    if (alone && cfg->broker) {
        cluster_register_broker(s->cluster, cfg->node_id, cfg->advertised_host,
                                cfg->advertised_port, cfg->rack, NULL, false, change_outcome_keep,
                                &registered);
        if (registered.err != CLUSTER_OK) {
            say_error("server", "cannot register this broker: %s", registered.why);
            goto fail;
        }
    }
    /* Segment files share the descriptor limit: leave max.connections and the queued
     * response files (together at most half the limit) and 128 for everything else. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
        size_t lim = (size_t)nofile.rlim_cur, files = (size_t)cfg->queued_max_response_files;
        size_t reserve =
            MIN((size_t)cfg->max_connections + (cfg->queued_max_response_files < 0 ? lim : files),
                lim / 2) +
            128;
        storage_set_max_open_files(lim - MIN(reserve, lim));
    }
    say_info("server", "at most %zu segment files open at once", storage_max_open_files());
    if (server_open_all_partitions(s) != 0)
        goto fail;
    cluster_set_listener(s->cluster, on_cluster_event, s);

    int rc = net_loop_create(&s->loop);
    if (rc != 0) {
        say_error("server", "cannot create the event loop: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = net_loop_handle_signals(s->loop, on_signal, s)) != 0) {
        say_error("server", "cannot handle signals: %s", strerror(-rc));
        goto fail;
    }
    /* The syncer thread starts after signals are blocked, so it inherits the mask. */
    if ((rc = server_syncer_create(s, cfg->sync_threads, &s->syncer)) != 0) {
        say_error("server", "cannot start the sync thread: %s", storage_strerror(rc));
        goto fail;
    }
    syncer_set_syncfs(s->syncer, syncfs_reports_errors() ? (size_t)cfg->syncfs_partitions : 0);
    net_watch(s->loop, syncer_event_fd(s->syncer), NET_READABLE, on_sync_event, s);
    if ((rc = server_syncer_create(s, 1, &s->remover)) != 0) {
        say_error("server", "cannot start the directory removal thread: %s", storage_strerror(rc));
        goto fail;
    }
    net_watch(s->loop, syncer_event_fd(s->remover), NET_READABLE, on_remover_event, s);
    net_loop_on_idle(s->loop, on_idle, s);
    /* Groups need __consumer_offsets, which only the active controller can create: a
     * node of a quorum of several serves no groups yet (docs/compatibility.md). */
    if (alone && cfg->broker && server_groups_start(s) != 0)
        goto fail;
    /* Delayed delivery: records pending in the delay store (if a delayed produce ever
     * created it) are loaded, and those that fell due while the broker was down go out
     * first. */
    if (alone && cfg->broker && cluster_topic_find(s->cluster, slice_from_cstr("__samsa_delay")) &&
        server_delays_start(s) != 0)
        goto fail;
    /* Transactions: the coordinator loads its ids if a client ever looked for it. */
    if (alone && cfg->broker &&
        cluster_topic_find(s->cluster, slice_from_cstr("__transaction_state")) &&
        server_txns_start(s) != 0)
        goto fail;
    if (server_cleaner_start(s) != 0)
        goto fail;

    struct net_server_config nc;
    net_server_config_default(&nc);
    nc.max_frame_bytes = cfg->socket_request_max_bytes;
    nc.max_unsent_bytes = cfg->max_unsent_bytes;
    nc.max_inflight_requests = (uint32_t)cfg->queued_max_requests;
    nc.idle_timeout_ms = cfg->connections_max_idle_ms;
    nc.max_connections = (uint32_t)cfg->max_connections;
    nc.max_connections_per_ip = (uint32_t)cfg->max_connections_per_ip;
    nc.ip_limits = cfg->ip_limits;
    nc.ip_limit_count = cfg->ip_limit_count;
    nc.use_sendfile = cfg->fetch_sendfile;
    nc.max_queued_request_bytes = cfg->queued_max_request_bytes;
    nc.max_queued_response_bytes = cfg->queued_max_response_bytes;
    nc.max_queued_response_files = cfg->queued_max_response_files;
    struct net_handler h = {.on_request = server_on_request, .on_close = server_on_close};
    if (!cfg->broker) {
        /* A controller-only node: its one listener is the controller listener. */
        if (server_metadata_io_start(s) != 0 || server_quorum_link_start(s) != 0)
            goto fail;
        int cport = server_quorum_link_port(s);
        say_info("server", "controller %d of cluster %s (no broker role), data in %s", cfg->node_id,
                 cluster_id(s->cluster), s->log_dir);
        printf("samsa-server listening on port %d (controller listener)\n", cport);
        fflush(stdout);
        *out = s;
        return 0;
    }
    rc = net_listen(s->loop, cfg->listener_host, cfg->listener_port, &nc, &h, s, &s->listener);
    if (rc != 0) {
        say_error("server", "cannot listen on %s:%d: %s", cfg->listener_host, cfg->listener_port,
                  strerror(-rc));
        goto fail;
    }
    int port = net_listener_port(s->listener);
    s->advertised_port = cfg->listener_port == 0 && cfg->advertised_port == 0
                             ? port
                             : cfg->advertised_port; /* port 0 (tests): the one picked */
    if (alone && cfg->listener_port == 0 && cfg->advertised_port == 0) {
        /* Port 0 (tests): advertise the port the kernel picked. */
        registered = (struct change_outcome){0};
        cluster_register_broker(s->cluster, cfg->node_id, cfg->advertised_host, port, cfg->rack,
                                NULL, false, change_outcome_keep, &registered);
        if (registered.err != CLUSTER_OK) {
            say_error("server", "cannot register this broker: %s", registered.why);
            goto fail;
        }
    }
    if (server_metadata_io_start(s) != 0 || server_quorum_link_start(s) != 0)
        goto fail;
    s->retention_timer =
        net_timer_add(s->loop, cfg->retention_check_interval_ms, retention_tick, s);
    s->flush_timer = net_timer_add(s->loop, cfg->flush_scheduler_interval_ms, flush_tick, s);
    s->producer_expiry_timer = net_timer_add(s->loop, cfg->producer_id_expiration_check_interval_ms,
                                             producer_expiry_tick, s);
    s->checkpoint_timer =
        net_timer_add(s->loop, cfg->flush_offset_checkpoint_interval_ms, checkpoint_tick, s);
    server_isr_start(s);
    server_leader_balance_start(s);
    server_replication_start(s);
    say_info("server", "node %d of cluster %s listening on %s:%d (advertised as %s:%d), data in %s",
             cfg->node_id, cluster_id(s->cluster),
             *cfg->listener_host ? cfg->listener_host : "0.0.0.0", port, cfg->advertised_host,
             s->advertised_port, s->log_dir);
    /* A line for scripts and tests that start us on port 0. */
    printf("samsa-server listening on port %d (try: kcat -b %s:%d -L)\n", port,
           cfg->advertised_host, s->advertised_port);
    fflush(stdout);
    *out = s;
    return 0;
fail:
    server_destroy(s);
    return -1;
}

/* Shutdown drain: runs in the event loop, so that answers completed during shutdown
 * (acks=all producers whose sync round was in flight, parked fetches, group requests)
 * are actually written to their sockets before connections close. Stops the loop once
 * nothing is in flight and one more iteration has flushed the replies, or at the
 * deadline. */
#define SHUTDOWN_DRAIN_MS 5000

static void drain_tick(struct net_loop *loop, void *arg)
{
    struct server *s = arg;
    bool idle =
        !s->round_in_flight && purgatory_size(s->durable_waits) == 0 && !cluster_busy(s->cluster);
    if ((idle && s->drain_flushed) || net_loop_now_ms(loop) >= s->drain_deadline_ms) {
        if (!idle)
            say_warn("server", "shutdown: gave up waiting for in-flight syncs after %d ms",
                     SHUTDOWN_DRAIN_MS);
        net_loop_stop(loop);
        return;
    }
    s->drain_flushed = idle; /* stop after one more iteration has written the replies */
    net_timer_add(loop, 5, drain_tick, s);
}

int server_run(struct server *s)
{
    int rc = net_loop_run(s->loop);
    if (s->shutdown_timer)
        net_timer_cancel(s->loop, s->shutdown_timer);
    s->shutdown_timer = 0;
    say_info("server", "shutting down: no new connections, finishing in-flight syncs");
    s->stopping = true;
    if (s->listener)
        net_listener_close(s->listener);
    purgatory_complete_all(s->fetch_waits); /* parked fetches answer with what there is */
    /* Waiting group requests are answered (NOT_COORDINATOR) while connections exist. */
    server_groups_stop(s);
    server_txns_stop(s);
    server_txn_adds_stop(s);
    server_delays_stop(s);
    server_peers_stop(s);
    s->drain_deadline_ms = net_loop_now_ms(s->loop) + SHUTDOWN_DRAIN_MS;
    net_timer_add(s->loop, 0, drain_tick, s);
    int rc2 = net_loop_run(s->loop);
    return rc != 0 ? rc : rc2;
}

void server_destroy(struct server *s)
{
    if (!s)
        return;
    server_groups_stop(s); /* already stopped by server_run unless start-up failed */
    server_txns_stop(s);
    server_txn_adds_stop(s);
    server_delays_stop(s);
    server_peers_stop(s);
    /* Connections close before the quorum link is freed: those accepted on the controller
     * listener call back into it (on_controller_close) as they close. */
    if (s->loop) {
        net_close_all(s->loop);
        server_quorum_link_stop(s);
        server_replication_stop(s);
        server_isr_stop(s);
        server_leader_balance_stop(s);
    }
    server_metadata_io_stop(s);
    server_cleaner_stop(s);
    if (s->loop) {
        if (s->retention_timer)
            net_timer_cancel(s->loop, s->retention_timer);
        if (s->flush_timer)
            net_timer_cancel(s->loop, s->flush_timer);
        if (s->producer_expiry_timer)
            net_timer_cancel(s->loop, s->producer_expiry_timer);
        if (s->checkpoint_timer)
            net_timer_cancel(s->loop, s->checkpoint_timer);
    }
    if (s->syncer) {
        net_unwatch(s->loop, syncer_event_fd(s->syncer));
        syncer_destroy(s->syncer); /* runs remaining round callbacks */
    }
    if (s->remover) {
        atomic_store(&s->removal_stop, true); /* finishes the directory it is removing */
        net_unwatch(s->loop, syncer_event_fd(s->remover));
        syncer_destroy(s->remover);
    }
    if (s->cluster) {
        /* Logs close with a final fsync; then the recovery points say "clean up to the
         * end", so the next start-up skips re-validating these segments. */
        size_t it = 0;
        struct slice k;
        void *v;
        while (hmap_next(&s->topics, &it, &k, &v)) {
            struct topic_state *ts = v;
            for (int32_t i = 0; i < ts->partition_count; i++) {
                struct log_flush_job job = {0};
                if (ts->partitions[i] && log_flush_prepare(ts->partitions[i]->log, &job) == 0) {
                    log_flush_execute(&job);
                    log_flush_complete(ts->partitions[i]->log, &job);
                }
            }
        }
        server_write_checkpoints_now(s, CHECKPOINT_RECOVERY_POINTS | CHECKPOINT_START_OFFSETS);
    }
    server_close_all_partitions(s);
    if (s->loop)
        net_loop_destroy(s->loop);
    server_replication_free(s); /* after the loop: closing clients call back into them */
    cluster_close(s->cluster);
    purgatory_free(s->fetch_waits);
    purgatory_free(s->durable_waits);
    free(s->sync_wanted);
    free(s->log_dir);
    if (s->log_dir_lock_fd >= 0)
        close(s->log_dir_lock_fd); /* last: nothing of this process touches the dir after */
    free(s);
}
