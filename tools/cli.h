/* Shared pieces of the `samsa` command-line tool: options every command takes, the
 * librdkafka client they talk through, waiting for admin results, and aligned tables.
 *
 * The tool is a plain Kafka client on librdkafka (DESIGN.md), so every command works
 * against Apache Kafka as well as Samsa. It is written against librdkafka 2.0.2: there is
 * no IncrementalAlterConfigs, ListOffsets or DescribeTopics admin API in that version, so
 * the commands use metadata requests, watermark queries and offsets_for_times instead.
 *
 * Errors: commands print one line "samsa: <what failed>: <why>" on stderr and return
 * a non-zero exit status; they never abort. */
#ifndef SAMSA_TOOLS_CLI_H
#define SAMSA_TOOLS_CLI_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bound on every request the tool waits for, so an unreachable or silent broker turns
 * into an error message instead of a hang. */
#define CLI_TIMEOUT_MS 15000
/* Bound on -c/-d options of one command and on rows of a table. */
#define CLI_MAX_CONFIGS 64
#define CLI_DEFAULT_BOOTSTRAP "localhost:9092"

/* Exit statuses: 1 for a failed operation, 2 for a command line we could not parse. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Options shared by all commands. bootstrap is borrowed from argv. */
struct cli_opts {
    const char *bootstrap;
    bool verbose; /* show librdkafka's own log lines (connection failures etc.) */
};

/* Command entry points: argv[0] is the command's name ("topic create"), the rest its
 * arguments. They return the process exit status. */
int topic_main(struct cli_opts *o, int argc, char **argv);
int group_main(struct cli_opts *o, int argc, char **argv);
int produce_main(struct cli_opts *o, int argc, char **argv);
int consume_main(struct cli_opts *o, int argc, char **argv);
int bench_main(struct cli_opts *o, int argc, char **argv);    /* bench.c */
int metadata_main(struct cli_opts *o, int argc, char **argv); /* metadata.c: offline */
int cluster_main(struct cli_opts *o, int argc, char **argv);  /* cluster.c */
int delay_main(struct cli_opts *o, int argc, char **argv);    /* delay.c */
int txn_main(struct cli_opts *o, int argc, char **argv);      /* txn.c */
/* The oldest open transaction of a partition, as its leader (leader_addr, "host:port")
 * describes its producers (DescribeProducers): first_offset -1 when none is open. 0, or
 * -1 when the leader could not say. */
struct txn_open {
    int64_t first_offset;      /* where it starts: what holds the last stable offset back */
    int64_t producer_id;       /* whose */
    int64_t last_timestamp_ms; /* the producer's newest write there */
    int count;                 /* open transactions in the partition */
};
int txn_oldest_open(const char *leader_addr, const char *topic, int32_t partition,
                    struct txn_open *out);
/* `cluster up` and `cluster down` (cluster_up.c): a local cluster of samsa-server
 * processes; argv[0] is "cluster", argv[1] "up" or "down". */
int cluster_up_main(struct cli_opts *o, int argc, char **argv);
int cluster_down_main(struct cli_opts *o, int argc, char **argv);
/* Reassignments (reassign.c): `topic reassign` and `topic reassignments` (argv[0] the
 * verb), `cluster drain` (argv[0] "cluster", argv[1] "drain"). */
int topic_reassign_main(struct cli_opts *o, int argc, char **argv);
int topic_reassignments_main(struct cli_opts *o, int argc, char **argv);
int cluster_drain_main(struct cli_opts *o, int argc, char **argv);

/* Prints "samsa: " + the formatted message + newline on stderr; returns CLI_EXIT_FAIL so
 * callers can `return cli_err(...)`. */
int cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Handles -b/--bootstrap-server and -v/--verbose for a command's getopt loop: returns true
 * if it consumed option c. */
bool cli_common_opt(struct cli_opts *o, int c, const char *arg);

/* Creates a client of the given type with bootstrap.servers set, librdkafka's log routed
 * through the tool (quiet unless verbose), and `extra` key/value pairs (NULL-terminated,
 * may be NULL) applied, and dr (may be NULL) as a producer's delivery report callback.
 * Returns NULL after printing the reason. The caller owns the handle and destroys it
 * with rd_kafka_destroy. */
rd_kafka_t *cli_client(const struct cli_opts *o, rd_kafka_type_t type, const char **extra,
                       void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *));

/* The last connection-level error librdkafka reported (e.g. "Connection refused"), or
 * NULL; used to explain a timeout. */
const char *cli_last_transport_error(void);

/* Polls queue q until an event of type `want` arrives or CLI_TIMEOUT_MS passes. Returns
 * the event (caller destroys) or NULL after printing why, naming `what`. A result event
 * whose top-level error is set is also reported and destroyed, returning NULL. */
rd_kafka_event_t *cli_admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t want, const char *what);

/* Admin options for `api` with the request and operation timeouts set to the tool's
 * bound. Caller destroys. */
rd_kafka_AdminOptions_t *cli_admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t api);

/* One admin request in flight: the queue its result arrives on and its options, both
 * owned until cli_admin_result releases them. */
struct cli_admin {
    rd_kafka_queue_t *q;
    rd_kafka_AdminOptions_t *opt;
};

/* Prepares an admin request of type `api` on rk: pass req.opt and req.q to the
 * rd_kafka_<Api>() call, then collect its result with cli_admin_result. */
struct cli_admin cli_admin_start(rd_kafka_t *rk, rd_kafka_admin_op_t api);

/* Describes topic `name`'s configs; on success *out is the result event (caller destroys)
 * and *res its one resource; else -1 after printing why. */
int cli_describe_topic_configs(rd_kafka_t *rk, const char *name, rd_kafka_event_t **out,
                               const rd_kafka_ConfigResource_t **res);

/* Waits for req's result as cli_admin_wait does, then releases req's queue and options.
 * Returns the event (caller destroys) or NULL after printing why. */
rd_kafka_event_t *cli_admin_result(struct cli_admin *req, rd_kafka_event_type_t want,
                                   const char *what);

/* Fetches metadata for all topics. On success *md is set (caller frees with
 * rd_kafka_metadata_destroy) and 0 returned; otherwise prints the reason, returns -1. */
int cli_metadata(rd_kafka_t *rk, const struct rd_kafka_metadata **md);

/* The topic named `name` in md, or NULL. */
const struct rd_kafka_metadata_topic *cli_find_topic(const struct rd_kafka_metadata *md,
                                                     const char *name);

/* Looks up topic `name`; prints "topic 'X' does not exist" (or the metadata error) and
 * returns NULL if it is not usable. */
const struct rd_kafka_metadata_topic *cli_require_topic(const struct rd_kafka_metadata *md,
                                                        const char *name);

/* Parses a decimal integer in [min, max]; returns 0 or -1 (message printed, naming opt). */
int cli_parse_i64(const char *s, int64_t min, int64_t max, const char *opt, int64_t *out);

/* Splits "key=value" at the first '='; key and value point into the copy in buf (size
 * bufsz). Returns 0, or -1 after printing why. */
int cli_split_kv(const char *s, char *buf, size_t bufsz, const char **key, const char **value);

/* An aligned text table: add the header row first, then data rows; each cell is copied.
 * Columns are padded to the widest cell and separated by two spaces; the last column is
 * not padded, so lines carry no trailing blanks. */
struct table;
struct table *table_new(int ncols, ...); /* the header, ncols const char * */
void table_add(struct table *t, ...);    /* one row, ncols const char * (NULL prints "-") */
void table_print(const struct table *t);
void table_free(struct table *t);
int table_rows(const struct table *t); /* data rows, header excluded */

/* JSON on stdout: a string of len bytes, quoted and escaped (bytes >= 0x80 pass as they
 * are); json_cstr prints null for NULL. */
void json_str(const char *s, size_t len);
void json_cstr(const char *s);

/* Formats v into buf (returns buf); negative offsets (librdkafka's "no offset") print
 * as "-". */
const char *fmt_offset(char *buf, size_t bufsz, int64_t v);

#endif
