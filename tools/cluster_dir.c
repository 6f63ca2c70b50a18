/* The directory of a local cluster that `samsa cluster up` makes (cluster_dir.h): its
 * files, and whether the pids it lists are still its nodes. */
#include "cluster_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli.h"

/* DIR/nodeI/name (or DIR/name for node 0) into buf; fails only if it does not fit. */
int cdir_path(const struct cluster_dir *l, int node, const char *name, char *buf, size_t size)
{
    int n = node > 0 ? snprintf(buf, size, "%s/node%d%s%s", l->dir, node, *name ? "/" : "", name)
                     : snprintf(buf, size, "%s/%s", l->dir, name);
    if (n < 0 || (size_t)n >= size)
        return cli_err("path too long under %s", l->dir);
    return 0;
}

/* ---- files ---- */

/* Writes text to path through a temporary file and rename, so a reader never sees half
 * of it. Returns 0 or prints why and returns -1. */
int cdir_write_file(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return cli_err("cannot create %s: %s", tmp, strerror(errno));
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        cli_err("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int cdir_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return cli_err("path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return cli_err("cannot create %s: %s", buf, strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return cli_err("cannot create %s: %s", buf, strerror(errno));
    return 0;
}

bool cdir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    bool empty = true;
    struct dirent *e;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    if (remove(path) != 0)
        return cli_err("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

int cdir_remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Prints the last lines of a node's log on stderr, so a failed start explains itself. */
void cdir_print_log_tail(const struct cluster_dir *l, int node)
{
    char path[PATH_MAX];
    if (cdir_path(l, node, "server.log", path, sizeof path) != 0)
        return;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "(no log: %s: %s)\n", path, strerror(errno));
        return;
    }
    static char buf[CDIR_LOG_TAIL_BYTES + 1];
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
    long from = size > CDIR_LOG_TAIL_BYTES ? size - CDIR_LOG_TAIL_BYTES : 0;
    size_t n = fseek(f, from, SEEK_SET) == 0 ? fread(buf, 1, CDIR_LOG_TAIL_BYTES, f) : 0;
    fclose(f);
    buf[n] = '\0';
    const char *start = buf;
    int lines = 0;
    for (size_t i = n; i > 0; i--) {
        if (buf[i - 1] == '\n' && i < n && ++lines == CDIR_LOG_TAIL_LINES) {
            start = buf + i;
            break;
        }
    }
    fprintf(stderr, "---- %s (last %d lines) ----\n%s", path, CDIR_LOG_TAIL_LINES, start);
    if (n > 0 && buf[n - 1] != '\n')
        fputc('\n', stderr);
    fprintf(stderr, "----\n");
}

/* ---- the layout file ---- */

int cdir_write_layout(const struct cluster_dir *l)
{
    char path[PATH_MAX], text[1024];
    if (cdir_path(l, 0, CDIR_STATE_FILE, path, sizeof path) != 0)
        return -1;
    snprintf(text, sizeof text,
             "# A local Samsa cluster made by `samsa cluster up`: `samsa cluster up --dir DIR`\n"
             "# starts it again, `samsa cluster down --dir DIR` stops it. Node I listens for\n"
             "# clients on base.port + %d*(I-1) and for controllers on the port after it.\n"
             "nodes=%d\nbase.port=%d\ncluster.id=%s\n",
             CDIR_PORT_STRIDE, l->nodes, l->base_port, l->cluster_id);
    return cdir_write_file(path, text);
}

/* Reads DIR/cluster into l (l->dir already set); *found says whether DIR has one.
 * Returns 0, or non-zero after printing why it is unreadable. */
int cdir_read_layout(struct cluster_dir *l, bool *found)
{
    char path[PATH_MAX], line[256];
    *found = false;
    if (cdir_path(l, 0, CDIR_STATE_FILE, path, sizeof path) != 0)
        return -1;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : cli_err("cannot read %s: %s", path, strerror(errno));
    *found = true;
    l->nodes = 0;
    l->base_port = 0;
    l->cluster_id[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "nodes=", 6) == 0)
            l->nodes = atoi(line + 6);
        else if (strncmp(line, "base.port=", 10) == 0)
            l->base_port = atoi(line + 10);
        else if (strncmp(line, "cluster.id=", 11) == 0)
            snprintf(l->cluster_id, sizeof l->cluster_id, "%.*s",
                     strlen(line + 11) < sizeof l->cluster_id ? (int)strlen(line + 11) : 0,
                     line + 11);
    }
    fclose(f);
    if (l->nodes < 1 || l->nodes > CDIR_MAX_NODES || l->base_port < CDIR_MIN_BASE_PORT ||
        cdir_client_port(l, l->nodes) + 1 > 65535 || l->cluster_id[0] == '\0')
        return cli_err("%s is damaged (nodes, base.port or cluster.id missing or invalid)", path);
    return 0;
}

/* The node properties an operator would write by hand; docs/operations.md, "Starting a
 * cluster", shows the same. */
int cdir_write_properties(const struct cluster_dir *l, int node)
{
    char path[PATH_MAX], data[PATH_MAX], voters[CDIR_MAX_NODES * 32] = "";
    if (cdir_path(l, node, "server.properties", path, sizeof path) != 0 ||
        cdir_path(l, node, "data", data, sizeof data) != 0)
        return -1;
    size_t used = 0;
    for (int i = 1; i <= l->nodes; i++) {
        used += (size_t)snprintf(voters + used, sizeof voters - used, "%s%d@" CDIR_HOST ":%d",
                                 i > 1 ? "," : "", i, cdir_controller_port(l, i));
    }
    char text[4 * PATH_MAX + 4096]; /* two paths of the properties file, one of data */
    snprintf(
        text, sizeof text,
        "# Node %d of a %d-node Samsa cluster on this machine, written by `samsa cluster up`.\n"
        "# Property names are Kafka's; see docs/configuration.md.\n"
        "#\n"
        "# To run this node by hand: samsa-server -c %s\n"
        "# Its log dir was formatted once, with the cluster's id, before the first start:\n"
        "#   samsa-server format --cluster-id %s -c %s\n"
        "\n"
        "# This node's id, and its roles: a broker (serves clients) and a controller (a voter\n"
        "# of the metadata quorum).\n"
        "node.id=%d\n"
        "process.roles=broker,controller\n"
        "\n"
        "# Clients connect to PLAINTEXT and are told to use advertised.listeners; the\n"
        "# controllers reach each other on CONTROLLER.\n"
        "listeners=PLAINTEXT://" CDIR_HOST ":%d,CONTROLLER://" CDIR_HOST ":%d\n"
        "advertised.listeners=PLAINTEXT://" CDIR_HOST ":%d\n"
        "controller.listener.names=CONTROLLER\n"
        "\n"
        "# Every voter of the metadata quorum, as id@host:controller-port. The same on every\n"
        "# node.\n"
        "controller.quorum.voters=%s\n"
        "\n"
        "# Where this node keeps its partition logs and its copy of the metadata log.\n"
        "log.dirs=%s\n"
        "\n"
        "# Defaults for new topics (auto-created ones too). Partitions are spread over the\n"
        "# brokers; each has one replica unless the topic is created with more (e.g.\n"
        "# `samsa topic create NAME -r 3 -c min.insync.replicas=2`).\n"
        "num.partitions=1\n"
        "default.replication.factor=1\n"
        "auto.create.topics.enable=true\n"
        "\n"
        "log.level=INFO\n",
        node, l->nodes, path, l->cluster_id, path, node, cdir_client_port(l, node),
        cdir_controller_port(l, node), cdir_client_port(l, node), voters, data);
    return cdir_write_file(path, text);
}

/* ---- processes ---- */

/* True if pid is alive and still node `node` of this cluster: its command line is
 * "<server> -c DIR/nodeI/server.properties", as start_node runs it. A zombie has an empty
 * command line and counts as stopped. */
bool cdir_is_node(const struct cluster_dir *l, int node, pid_t pid)
{
    char path[64], props[PATH_MAX], cmd[PATH_MAX * 2 + 64];
    if (pid <= 0 || cdir_path(l, node, "server.properties", props, sizeof props) != 0)
        return false;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, cmd, sizeof cmd - 1);
    close(fd);
    if (n <= 0)
        return false;
    cmd[n] = '\0';
    const char *arg1 = cmd + strlen(cmd) + 1;
    if (arg1 >= cmd + n || strcmp(arg1, "-c") != 0)
        return false;
    const char *arg2 = arg1 + 3;
    return arg2 < cmd + n && strcmp(arg2, props) == 0;
}

/* Whether pid, known to have been node `node` a moment ago, has not finished exiting. Its
 * command line empties early in exit, when its memory is released; its files (the log
 * dir's lock, its sockets) are closed only by the time it is a zombie or gone, so only
 * then may the node be started again. */
bool cdir_node_running(const struct cluster_dir *l, int node, pid_t pid)
{
    if (cdir_is_node(l, node, pid))
        return true;
    char path[64], stat_text[512], cmd[8];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, stat_text, sizeof stat_text - 1);
    close(fd);
    if (n <= 0)
        return false;
    stat_text[n] = '\0';
    const char *paren = strrchr(stat_text, ')'); /* "pid (comm) S ..." */
    if (paren == NULL || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X')
        return false;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, cmd, sizeof cmd);
    close(fd);
    return n == 0; /* exiting; a non-empty command line is another process's */
}

/* Reads DIR/pids: pids[i] is node i+1's. Returns how many (0 if there is no file). */
int cdir_read_pids(const struct cluster_dir *l, pid_t *pids, int max)
{
    char path[PATH_MAX];
    if (cdir_path(l, 0, CDIR_PIDS_FILE, path, sizeof path) != 0)
        return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int n = 0;
    long v;
    while (n < max && fscanf(f, "%ld", &v) == 1)
        pids[n++] = (pid_t)v;
    fclose(f);
    return n;
}

int cdir_write_pids(const struct cluster_dir *l, const pid_t *pids, int n)
{
    char path[PATH_MAX], text[CDIR_MAX_NODES * 16] = "";
    if (cdir_path(l, 0, CDIR_PIDS_FILE, path, sizeof path) != 0)
        return -1;
    ASSERT(n >= 0 && n <= CDIR_MAX_NODES);
    size_t used = 0;
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%d\n", (int)pids[i]);
    return cdir_write_file(path, text);
}

void cdir_remove_pids(const struct cluster_dir *l)
{
    char path[PATH_MAX];
    if (cdir_path(l, 0, CDIR_PIDS_FILE, path, sizeof path) == 0 && unlink(path) != 0 &&
        errno != ENOENT)
        cli_err("cannot remove %s: %s", path, strerror(errno));
}
