/*
 * server: the broker. Owns the event loop, the listener, the metadata image, the
 * partition logs and the group-commit syncer; decodes each request frame and hands it
 * to the handler for its API (server/handlers/<api>.c).
 */
#ifndef SAMSA_SERVER_H
#define SAMSA_SERVER_H

#include "server/config.h"

struct server;

/* Opens the data directory (replaying metadata and recovering logs) and binds the
 * listener. cfg is borrowed and must outlive the server. 0 or -1 after logging. */
int server_create(const struct broker_config *cfg, struct server **out);
/* Serves until SIGTERM/SIGINT, then shuts down cleanly: stops accepting, waits for
 * in-flight syncs, answers waiting requests, closes segments, writes checkpoints. */
int server_run(struct server *s);
void server_destroy(struct server *s);

#endif
