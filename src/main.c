/* samsa-server: start-up and shutdown only. */
#include <malloc.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cluster/cluster.h"
#include "server/server.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: samsa-server -c <server.properties> [--override key=value ...]\n"
            "       samsa-server format --cluster-id ID -c <server.properties> [--override ...]\n"
            "           prepares the log dir of a node of a metadata quorum of several voters\n"
            "           (controller.quorum.voters) for its first start\n"
            "       samsa-server random-uuid\n"
            "           prints a new cluster id\n");
}

/* Every client holds a socket, and storage keeps as many segment files open as the
 * limit leaves room for (server_create sets the bound). Raise the soft limit to the hard
 * one, as Redis does, instead of serving a few hundred connections under the usual 1024;
 * when privileged, raise the hard limit to the kernel's maximum (fs.nr_open) first, as a
 * systemd unit with LimitNOFILE would. */
static void raise_fd_limit(void)
{
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) != 0)
        return;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    unsigned long long nr_open = 0;
    if (f) {
        if (fscanf(f, "%llu", &nr_open) != 1)
            nr_open = 0;
        fclose(f);
    }
    if (nr_open > nofile.rlim_max) {
        struct rlimit more = {(rlim_t)nr_open, (rlim_t)nr_open};
        if (setrlimit(RLIMIT_NOFILE, &more) == 0)
            return;
        /* not privileged: keep the hard limit we have */
    }
    if (nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
            perror("samsa-server: cannot raise the open-file limit");
    }
}

int main(int argc, char **argv)
{
    /* Fetch responses are buffers of up to tens of MiB, allocated and freed per request.
     * With glibc's defaults each one grows the heap and trims it again on free, so every
     * fetch faults in fresh zero pages (measured: ~30x the CPU per GB consumed on a new
     * process). Keep freed memory up to these bounds for reuse instead. The ceiling: net
     * calls malloc_trim once queued responses have shrunk by the trim threshold (slow
     * clients gone), so memory they held is given back (net_server_config). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    raise_fd_limit();
    const char *config_file = NULL, *cluster_id = NULL;
    char **overrides = calloc((size_t)argc, sizeof *overrides);
    size_t n_overrides = 0;
    int first = 1;
    bool format = argc > 1 && !strcmp(argv[1], "format");
    if (format)
        first = 2;
    if (argc > 1 && !strcmp(argv[1], "random-uuid")) {
        uint8_t id[16];
        char text[CLUSTER_UUID_TEXT_BYTES];
        cluster_uuid_random(id);
        cluster_uuid_format(id, text);
        printf("%s\n", text);
        free(overrides);
        return 0;
    }
    for (int i = first; i < argc; i++) {
        if (format && !strcmp(argv[i], "--cluster-id") && i + 1 < argc) {
            cluster_id = argv[++i];
        } else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            config_file = argv[++i];
        } else if (!strcmp(argv[i], "--override") && i + 1 < argc) {
            overrides[n_overrides++] = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            free(overrides);
            return 0;
        } else {
            fprintf(stderr, "samsa-server: unexpected argument %s\n", argv[i]);
            usage();
            free(overrides);
            return 2;
        }
    }
    struct broker_config cfg;
    if (broker_config_load(&cfg, config_file, overrides, n_overrides) != 0) {
        fprintf(stderr, "samsa-server: invalid configuration, not starting\n");
        broker_config_free(&cfg);
        free(overrides);
        return 2;
    }
    free(overrides);
    if (format) {
        int frc = 2;
        if (!cluster_id)
            fprintf(stderr, "samsa-server format: --cluster-id is required (samsa-server "
                            "random-uuid makes one; every node of the cluster gets the same)\n");
        else
            frc = server_format(&cfg, cluster_id) == 0 ? 0 : 1;
        broker_config_free(&cfg);
        return frc;
    }
    struct server *s = NULL;
    if (server_create(&cfg, &s) != 0) {
        broker_config_free(&cfg);
        return 1;
    }
    int rc = server_run(s);
    server_destroy(s);
    say_info("server", "shut down cleanly: segments closed, checkpoints written");
    broker_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}
