/*
 * Internal structures of cluster/, shared by its files:
 *   cluster.c   the image and its records, the changes (checked against the image,
 *               proposed to the quorum, applied), opening and closing
 *   brokers.c   brokers: registration, fencing and sessions, and where partitions go
 *   quorum.c    the metadata log through the Raft core (quorum.h)
 *   metalog.c   the metadata log of earlier versions, for the upgrade (metalog.h)
 *
 * Names: cluster_ is the module's public interface (cluster.h); functions shared only
 * between these files carry cluster__; the rest are static.
 */
#ifndef SAMSA_CLUSTER_INT_H
#define SAMSA_CLUSTER_INT_H

#include "cluster/cluster.h"
#include "cluster/quorum.h"

enum {
    REC_REGISTER_BROKER = 0,
    REC_TOPIC = 2,
    REC_PARTITION = 3,
    REC_CONFIG = 4,
    REC_REMOVE_TOPIC = 9,
    REC_PRODUCER_IDS = 15,
    REC_BROKER_CHANGE = 17, /* a broker fenced or unfenced */
};
#define CONFIG_RESOURCE_TOPIC 2
#define MAX_PARTITIONS_PER_TOPIC 100000
#define MAX_TOPICS 100000

struct cluster {
    struct quorum *log;
    struct quorum_stats log_stats; /* what opening the log found */
    int32_t node_id;
    char *cluster_id;
    struct mtopic **topics; /* creation order */
    size_t topic_count;
    struct hmap by_name;     /* name -> struct mtopic, for lookups on the produce path */
    struct hmap deleted_ids; /* ids of topics the log records as deleted (values unused) */
    size_t topic_cap;
    struct mbroker *brokers;
    size_t broker_count;
    int64_t next_producer_id; /* first producer id never handed out */
    cluster_listener_fn listener;
    void *listener_arg;
    cluster_apply_hook_fn apply_hook; /* tests only: cluster_set_apply_hook */
    void *apply_hook_arg;
    int listener_rc;                    /* the listener's answer to the change applied last... */
    int own_listener_rc;                /* ... and to the change this node proposed last */
    int64_t partition_total;            /* partitions of all topics */
    int64_t max_partitions;             /* samsa.max.partitions: bound on partition_total */
    int64_t last_broker_epoch;          /* the highest broker epoch registered */
    size_t placement_cursor;            /* where the next placement starts looking (placement) */
    bool controller_only;               /* cluster_options.controller_only */
    bool unclean_default;               /* cluster_options.unclean_leader_election */
    bool installing;                    /* a leader's snapshot replaces the image: nobody is told */
    struct image_saved *before_install; /* the image it replaces, for the difference */
    /* Broker sessions, kept by the active controller only (cluster.h). */
    struct broker_session *sessions;
    size_t session_count;
    uint64_t sessions_term; /* the term they were started in; another: start again */
    /* Changes (see "changes" below): checked and proposed one at a time, in submission
     * order. */
    struct cluster_runner runner;  /* where log writes run; run == NULL: inside the call */
    struct op *queue, *queue_tail; /* submitted, not yet checked and proposed */
    struct op *writing;            /* checked and proposed, not yet applied; or NULL */
    bool pumping;                  /* kick() is on the stack: it picks up new submissions */
    bool io;                       /* a write (quorum_persist or a snapshot) is running */
    bool io_snapshot;              /* ... and it is a snapshot's */
    int io_rc;                     /* the write's answer, set on the runner's thread */
};

/* A change being built: records are added, then committed as one entry. */
struct change {
    struct buf body;
    uint64_t count;
};

/* A submitted change: its parameters (owned copies, since the caller's memory is gone by
 * the time it is checked), and once checked, the log entry being written. */
enum op_kind {
    OP_REGISTER_BROKER,
    OP_BROKER_CHANGE, /* fence or unfence (op->fenced) the broker at epoch op->id_count */
    OP_ADD_OBSERVER,  /* a Raft configuration change, not records: node_id as a learner */
    OP_PRODUCER_IDS,
    OP_CREATE_TOPIC,
    OP_DELETE_TOPIC,
    OP_TAKE_BACK, /* deletes a topic just created that the broker could not open */
    OP_CREATE_PARTITIONS,
    OP_ALTER_CONFIGS,
    OP_CHANGE_PARTITION,
};

struct op {
    struct op *next;
    struct cluster *c;
    enum op_kind kind;
    char *name;                   /* the topic; the broker's host */
    int32_t count;                /* partitions (create topic, the new total); the broker's port */
    int16_t replication_factor;   /* create topic; with a manual assignment, its replicas each */
    int32_t node_id;              /* the broker; the node producer ids are for */
    char *rack;                   /* the broker's, or NULL */
    int64_t id_count;             /* producer ids */
    struct config_entry *configs; /* create topic */
    size_t config_count;
    struct config_change *changes; /* alter configs */
    size_t change_count;
    bool replace_all, validate_only;
    bool fenced;             /* register: start fenced; broker change: fence or unfence */
    uint8_t incarnation[16]; /* register */
    /* change partition: which, and its new leader, replicas and ISR (-1 counts and
     * CLUSTER_KEEP_LEADER: unchanged). Create topic and create partitions with a manual
     * assignment: replicas holds `assigned` partitions of replication_factor brokers each
     * (replica_count = assigned * replication_factor); NULL: placed. */
    int32_t partition, leader;
    int32_t *replicas, *isr;
    int32_t replica_count, isr_count;
    int32_t assigned;
    /* AlterPartition: leader (above) asks at these epochs (checked at build). */
    bool from_leader;
    int32_t leader_epoch, partition_epoch;
    enum cluster_election election; /* ElectLeaders: the leader is chosen at build */
    /* AlterPartitionReassignments: to the target in replicas (REASSIGN_TO), or the one
     * under way cancelled. The replicas being added and removed are worked out at build,
     * into adding and removing (owned, like replicas and isr). */
    enum { REASSIGN_NONE, REASSIGN_TO, REASSIGN_CANCEL } reassign;
    bool allow_rf_change;
    int32_t *adding, *removing;
    int32_t adding_count, removing_count;
    cluster_done_fn done; /* NULL: nobody waits (or cluster_forget) */
    void *arg;
    struct buf entry; /* the encoded change, until it is proposed */
    struct cluster_result res;
    char why[256]; /* res.why when it is built from the change's numbers */
};

/* ---- cluster.c ---- */
/* Starts a record of the given type (and version) in ch. */
void cluster__change_record_v(struct change *ch, uint64_t type, uint64_t version);
void cluster__change_record(struct change *ch, uint64_t type);
void cluster__put_str(struct buf *b, const char *s); /* NULL: null */
/* A PartitionRecord with the whole state of p. */
void cluster__add_partition_state(struct change *ch, const uint8_t id[16],
                                  const struct mpartition *p);
struct op *cluster__op_new(struct cluster *c, enum op_kind kind, cluster_done_fn done, void *arg);
/* Queues op; it is checked, proposed and applied in its turn. */
void cluster__submit(struct op *op);

/* ---- brokers.c ---- */
/* A RegisterBrokerRecord (version 1) with the whole state of b. */
void cluster__add_broker_record(struct change *ch, const struct mbroker *b);
/* Each checks op against the image and adds its records to ch (none: nothing to write).
 * CLUSTER_OK or an error, with op->res.why saying why. */
/* Unclean leader election: whether topic t allows it (its unclean.leader.election.enable,
 * else the broker's). */
bool cluster__unclean_enabled(const struct cluster *c, const struct mtopic *t);
/* The replica an unclean election makes leader of p, which has no in-sync replica that
 * may lead: the first, in replica order, that is registered and unfenced once broker
 * `node` is fenced or unfenced (`fenced`; node -1: none changes); -1 if none. Logged
 * loudly, naming the partition: what only the in-sync replicas had is lost. */
int32_t cluster__unclean_leader(const struct cluster *c, const struct mtopic *t,
                                const struct mpartition *p, int32_t node, bool fenced);
/* Elects uncleanly (as above) every leaderless partition of t that has a replica that
 * may lead, adding their new state to ch. */
void cluster__add_unclean_elections(const struct cluster *c, struct change *ch,
                                    const struct mtopic *t);
/* A replica list as a manual assignment or a reassignment names it: not empty, each a
 * registered broker (or this node while none is), none twice. CLUSTER_OK, or
 * CLUSTER_ERR_INVALID_ASSIGNMENT with Kafka's message in why. */
int cluster__check_replica_list(const struct cluster *c, const int32_t *ids, int32_t n, char *why,
                                size_t why_size);
int cluster__build_register_broker(struct cluster *c, struct op *op, struct change *ch);
int cluster__build_broker_change(struct cluster *c, struct op *op, struct change *ch);
/* New partitions first .. first + n - 1 of a topic, rf replicas each, as a creation
 * writes them: partition first + p has the replicas replicas[p * rf .. p * rf + rf - 1]
 * (the first is the preferred leader) and the ISR isr[p * rf .. p * rf + isr_counts[p] - 1],
 * whose first member leads. */
struct new_partitions {
    int32_t first, n, rf;
    int32_t *replicas;   /* n * rf */
    int32_t *isr;        /* n * rf */
    int32_t *isr_counts; /* n */
};
/* Fills np with new partitions first .. first + n - 1 of rf replicas each (rf >= 1): from
 * op->replicas when the change names them (a manual assignment), else placed on the
 * unfenced brokers. CLUSTER_OK, CLUSTER_ERR_INVALID_ASSIGNMENT or
 * CLUSTER_ERR_INVALID_REPLICATION (op->res.why says why). Nothing of the image changes;
 * np is to be freed with cluster__new_partitions_free whatever the outcome. */
int cluster__place_partitions(struct cluster *c, struct op *op, int32_t first, int32_t n,
                              int32_t rf, struct new_partitions *np);
void cluster__new_partitions_free(struct new_partitions *np);

#endif
