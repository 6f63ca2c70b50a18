/* `samsa`: the command-line tool for topics, consumer groups and their lag, and quick
 * produce/consume, and the load tool `samsa bench`. Usage is in docs/cli.md and in
 * `samsa help`.
 *
 * This file only routes `samsa [global options] NOUN [VERB] ...` to the command's entry
 * point; each command parses its own options (getopt_long), and every command accepts
 * -b/--bootstrap-server so it can be given before or after the command words. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char usage_text[] =
    "usage: samsa [-b HOST:PORT] [-v] COMMAND ...\n"
    "\n"
    "Topics:\n"
    "  topic create NAME [-p PARTITIONS] [-r REPLICATION] [-c key=value ...]\n"
    "  topic list [--internal]\n"
    "  topic describe NAME\n"
    "  topic alter NAME [-c key=value ...] [-d key ...]\n"
    "  topic delete NAME\n"
    "  topic add-partitions NAME -p TOTAL\n"
    "\n"
    "Consumer groups:\n"
    "  group list\n"
    "  group describe GROUP\n"
    "  group seek GROUP --topic TOPIC --to earliest|latest|timestamp:MS|offset:N\n"
    "  group delete GROUP\n"
    "\n"
    "Records:\n"
    "  produce TOPIC [-K SEP]               one record per stdin line\n"
    "  consume TOPIC [-g GROUP] [-o beginning|end] [-n COUNT] [-e] [-K SEP]\n"
    "\n"
    "Transactions (Admin API: works against Kafka too):\n"
    "  txn list [--state STATE ...] [--min-age MS]\n"
    "                                       transactional ids, their producers and states\n"
    "  txn describe ID                      state, producer, age and partitions of one\n"
    "  txn abort --topic T --partition N [--producer-id ID]\n"
    "                                       end the open transaction there (a hanging one)\n"
    "\n"
    "Delayed delivery (records produced with a samsa.deliver.at/after header):\n"
    "  delay stats                          pending records, next due time, per topic;\n"
    "                                       delivered, late, cancelled, dropped\n"
    "  delay list TOPIC                     TOPIC's pending records in due order, with ids\n"
    "\n"
    "Cluster:\n"
    "  cluster status [--json]              nodes, metadata quorum, partitions without a leader\n"
    "  cluster up [--nodes N] [--dir DIR] [--base-port PORT] [--server PATH]\n"
    "                                       start a local N-node cluster (default 3) on 127.0.0.1\n"
    "  cluster down [--dir DIR] [--purge]   stop it (--purge: and remove DIR)\n"
    "\n"
    "Load:\n"
    "  bench [-n RECORDS] [-s BYTES] [-p PARTITIONS] [-a ACKS] [--concurrent] [--mock N] ...\n"
    "                                       produce, read back, verify; `samsa bench -h`\n"
    "\n"
    "Recovery (offline, on a stopped node's log dir):\n"
    "  metadata recover --log-dir DIR [--dry-run]\n"
    "                                       rebuild a damaged or lost metadata log\n"
    "\n"
    "Options for every command:\n"
    "  -b, --bootstrap-server HOST:PORT     broker to contact (default " CLI_DEFAULT_BOOTSTRAP ")\n"
    "  -v, --verbose                        show the Kafka client's own log lines\n"
    "\n"
    "The tool is a Kafka client (librdkafka), so it works against Apache Kafka too.\n";

static void usage(FILE *f)
{
    fputs(usage_text, f);
}

int main(int argc, char **argv)
{
    struct cli_opts o = {.bootstrap = CLI_DEFAULT_BOOTSTRAP};
    /* Global options before the command words; getopt is not used here because it would
     * also consume the command's own options. */
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o.verbose = true;
            i++;
        } else if (strncmp(a, "--bootstrap-server=", 19) == 0) {
            o.bootstrap = a + 19;
            i++;
        } else if ((strcmp(a, "-b") == 0 || strcmp(a, "--bootstrap-server") == 0) && i + 1 < argc) {
            o.bootstrap = argv[i + 1];
            i += 2;
        } else {
            fprintf(stderr, "samsa: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[i];
    int rest = argc - i; /* argv[i] becomes the command's argv[0] */
    char **rargv = argv + i;
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    } else if (strcmp(cmd, "topic") == 0 || strcmp(cmd, "topics") == 0) {
        return topic_main(&o, rest, rargv);
    } else if (strcmp(cmd, "group") == 0 || strcmp(cmd, "groups") == 0) {
        return group_main(&o, rest, rargv);
    } else if (strcmp(cmd, "produce") == 0) {
        return produce_main(&o, rest, rargv);
    } else if (strcmp(cmd, "consume") == 0) {
        return consume_main(&o, rest, rargv);
    } else if (strcmp(cmd, "bench") == 0) {
        return bench_main(&o, rest, rargv);
    } else if (strcmp(cmd, "cluster") == 0) {
        return cluster_main(&o, rest, rargv);
    } else if (strcmp(cmd, "delay") == 0) {
        return delay_main(&o, rest, rargv);
    } else if (strcmp(cmd, "txn") == 0) {
        return txn_main(&o, rest, rargv);
    } else if (strcmp(cmd, "metadata") == 0) {
        return metadata_main(&o, rest, rargv);
    }
    fprintf(stderr, "samsa: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
