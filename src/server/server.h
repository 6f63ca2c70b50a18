/*
 * server: the broker. Owns the event loop, the listener, the metadata image, the
 * partition logs and the group-commit syncer; decodes each request frame and hands it
 * to the handler for its API (server/handlers/<api>.c).
 *
 * Errors: 0, or -1 once the reason is logged (an operator reads the log, not a code).
 */
#ifndef SAMSA_SERVER_H
#define SAMSA_SERVER_H

#include <stdio.h>

#include "server/config.h"

struct server;

/* Opens the data directory (replaying metadata and recovering logs) and binds the
 * listener. cfg is borrowed and must outlive the server. 0 or -1 after logging. */
/* `samsa-server format`: prepares cfg's log dir for the first start of a node of a
 * metadata quorum of several voters (cluster_format): its metadata dir gets the cluster
 * id. 0, or -1 (logged: a metadata log is there already, the id is malformed, or a write
 * failed). */
int server_format(const struct broker_config *cfg, const char *cluster_id);
int server_create(const struct broker_config *cfg, struct server **out);
/* What only tests choose; server_create is server_create_with all false. */
struct server_options {
    /* Every helper thread is a manual syncer (storage.h, syncer_create_manual): group
     * commit rounds, metadata log writes and checkpoint files, the cleaner and directory
     * removal wait until the test runs them. With the fake clock (base.h) and the loop
     * stepped by net_loop_run_once, the server runs in the test's thread alone, as
     * tests/unit/server/interaction.c drives it. */
    bool manual_io;
};
int server_create_with(const struct broker_config *cfg, const struct server_options *opt,
                       struct server **out);
/* Serves until SIGTERM/SIGINT, then shuts down cleanly: stops accepting, waits for
 * in-flight syncs, answers waiting requests, closes segments, writes checkpoints. */
int server_run(struct server *s);
void server_destroy(struct server *s);

/* `samsa metadata recover`: offline, on a stopped single node. Replays the intact
 * entries of a damaged (or missing) metadata log, adds every topic and partition whose
 * directory is on disk but not in them, and replaces the log with one recording the
 * result (the old file kept beside it). With dry_run, only reports. Progress and the
 * outcome go to `out`. 0 or -1. */
int server_recover_metadata(const char *log_dir, bool dry_run, FILE *out);

#endif
