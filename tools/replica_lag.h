/* Follower lag for `samsa cluster status`: how far each replica of each partition is
 * behind its leader, from DescribeLogDirs (key 35) asked of every broker.
 *
 * DescribeLogDirs gives, per replica a broker holds, its size on disk (PartitionSize)
 * and an OffsetLag. The OffsetLag does not show a follower falling behind: Kafka and
 * Samsa both report max(0, high watermark - log end) of the broker's own replica, and a
 * follower takes its leader's high watermark capped at its own log end, so it is 0 for
 * every replica (Kafka's is non-zero only for a "future" replica, a move between log
 * dirs, which is skipped here). The size does show it: a follower appends the leader's
 * batches as they are, so a caught-up replica is exactly as large as its leader's, and
 * the leader's size minus a follower's is how many bytes the follower still has to
 * fetch. That is the lag reported. It is wrong for a while wherever retention or
 * compaction has removed data on one replica and not yet on another (each broker cleans
 * its own log on its own schedule), and where a follower started over at its leader's
 * log start (after DeleteRecords or retention passed it) while the leader still holds
 * the segment below it. The sizes come from different brokers a few milliseconds apart,
 * so under load a follower shows the bytes in flight.
 *
 * Bounds: each broker is asked over its own connection, connect, ApiVersions and
 * DescribeLogDirs together within REPLICA_LAG_TIMEOUT_MS, REPLICA_LAG_PARALLEL brokers
 * at a time, at most REPLICA_LAG_MAX_BROKERS of them: the whole takes at most
 * ceil(brokers / REPLICA_LAG_PARALLEL) * REPLICA_LAG_TIMEOUT_MS. A broker that does not
 * answer in time, or is fenced, leaves its replicas unknown, with the reason. */
#ifndef SAMSA_TOOLS_REPLICA_LAG_H
#define SAMSA_TOOLS_REPLICA_LAG_H

#include "cli.h"

#define REPLICA_LAG_TIMEOUT_MS 3000
#define REPLICA_LAG_PARALLEL 32
#define REPLICA_LAG_MAX_BROKERS 256
/* Rows of the text table; --json lists every replica. */
#define REPLICA_LAG_TEXT_ROWS 20

/* A broker to ask, as DescribeCluster or Metadata lists it. */
struct replica_lag_broker {
    int32_t id;
    const char *host; /* host_len bytes, not NUL-terminated */
    size_t host_len;
    int32_t port;
    bool fenced; /* not asked: its replicas are unknown ("fenced") */
};

struct replica_lag;

/* Asks each of the n brokers for its log dirs, all at once within the bounds above, and
 * matches the answers to md's partitions. md is borrowed and must outlive the result;
 * brokers is borrowed for the call. Never fails: what cannot be learnt is unknown.
 * The caller frees the result with replica_lag_free. */
struct replica_lag *replica_lag_collect(const struct rd_kafka_metadata *md,
                                        const struct replica_lag_broker *brokers, int n);

/* The "Replica lag" section: the replicas of partitions with more than one replica that
 * are behind their leader, out of the ISR or unknown (at most REPLICA_LAG_TEXT_ROWS), or
 * one line saying all are caught up; then why each broker that was not heard from. */
void replica_lag_print_text(const struct replica_lag *rl);

/* The same as a JSON object (no newline), with every replica of every partition. */
void replica_lag_print_json(const struct replica_lag *rl);

void replica_lag_free(struct replica_lag *rl);

#endif
