/* `samsa metadata recover`: the offline way out when a node refuses to start because
 * its metadata log is damaged, missing or empty beside partition data. Unlike the other
 * commands it is not a Kafka client: it works on a stopped node's log dir, through the
 * broker's own recovery (server_recover_metadata, src/server/log_dir.c). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

static const char metadata_usage[] =
    "usage: samsa metadata recover --log-dir DIR [--dry-run]\n"
    "\n"
    "Rebuilds the metadata log of a stopped single node from the intact entries of its\n"
    "damaged (or missing) metadata log and the partition directories in DIR. Topics\n"
    "found only on disk are recovered with their partitions, retention.ms=-1 and\n"
    "retention.bytes=-1 (nothing is deleted until you set their configs again). The old\n"
    "file is kept beside the new one. --dry-run only reports what it would do.\n";

int metadata_main(struct cli_opts *o, int argc, char **argv)
{
    (void)o;
    if (argc < 2 || strcmp(argv[1], "recover") != 0) {
        fputs(metadata_usage, argc < 2 ? stderr : stdout);
        return argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? 0
                                                                                   : CLI_EXIT_USAGE;
    }
    static const struct option longopts[] = {
        {"log-dir", required_argument, NULL, 'd'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *log_dir = NULL;
    bool dry_run = false;
    optind = 2;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "d:nh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': log_dir = optarg; break;
        case 'n': dry_run = true; break;
        case 'h': fputs(metadata_usage, stdout); return 0;
        default: fputs(metadata_usage, stderr); return CLI_EXIT_USAGE;
        }
    }
    if (!log_dir || optind != argc) {
        fputs(metadata_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (server_recover_metadata(log_dir, dry_run, stdout) != 0)
        return cli_err("metadata recover: %s was not changed", log_dir);
    return 0;
}
