/* Partitions that OffsetCommit and OffsetDelete refuse before the group coordinator
 * sees the request (unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION), and how
 * Kafka 4.4 lays out the answer around them (KafkaApis with the OffsetCommitResponse
 * and OffsetDeleteResponse builders), which clients and the differential tests see:
 *   - the refused partitions come first, one topic entry per name in order of first
 *     appearance (an unknown topic named with no partitions still gets its entry);
 *   - then the coordinator's answer is merged in: each of its topics joins the entry
 *     of the same name, or is added after the others;
 *   - when nothing was refused the coordinator's answer is taken as it is (one entry
 *     per topic it was sent, a name sent twice answered twice).
 * A known topic named with no partitions is sent to neither, so it is not answered.
 *
 * Use: refusals_init; refusals_count for each refused request topic (pass one);
 * refusals_alloc; refusals_add for each refused partition (pass two, same topics and
 * totals); refusals_free (the name index, the only heap memory: the rest lives in the
 * request's arena); later, in the coordinator's callback, refusals_merge. */
#ifndef SAMSA_SERVER_REFUSALS_H
#define SAMSA_SERVER_REFUSALS_H

#include "server/internal.h"

struct refused_topic {
    struct slice name; /* borrowed from the request */
    int32_t *partitions;
    size_t n, cap;
};

struct refusals {
    struct refused_topic *topics; /* arena */
    size_t n_topics;
    struct hmap by_name; /* name -> index + 1 */
};

/* max_topics: the number of topics in the request (a bound on the entries). */
void refusals_init(struct refusals *r, struct arena *a, size_t max_topics);
void refusals_count(struct refusals *r, struct slice topic, size_t n_partitions);
void refusals_alloc(struct refusals *r, struct arena *a);
void refusals_add(struct refusals *r, struct slice topic, int32_t partition);
void refusals_free(struct refusals *r);

/* The whole answer: r's topics (error UNKNOWN_TOPIC_OR_PARTITION) merged with the
 * coordinator's as described above, allocated from a; names and partitions are
 * borrowed from r and coord. Returns the number of topics in *out. */
size_t refusals_merge(const struct refusals *r, struct arena *a,
                      const struct grp_commit_resp_topic *coord, size_t n_coord,
                      const struct grp_commit_resp_topic **out);

#endif
