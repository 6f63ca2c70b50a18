/* The local metadata log: an append-only file of CRC-framed entries, each entry one
 * atomic group of metadata records. Internal to cluster/. */
#ifndef SAMSA_CLUSTER_METALOG_H
#define SAMSA_CLUSTER_METALOG_H

#include "base/base.h"

struct metalog;

/* Opens dir/metadata.log, calling apply(arg, payload) for every whole entry in order.
 * A torn or corrupt tail (crash mid-write) is truncated with a warning. */
int metalog_open(const char *dir, void (*apply)(void *arg, struct slice payload), void *arg,
                 struct metalog **out);
/* Appends one entry and makes it durable (fdatasync) before returning. */
int metalog_append(struct metalog *m, const uint8_t *payload, size_t len);
void metalog_close(struct metalog *m);

#endif
