/* `samsa cluster up` and `samsa cluster down`: a local cluster of N samsa-server
 * processes on loopback, each with its own properties file, data dir, log file and ports
 * (the directory and port scheme: cluster_dir.h), started and stopped with one command.
 * Unlike the other commands these are not Kafka clients: they write files, run
 * samsa-server and send signals, on this machine only.
 *
 * `up` on a fresh DIR writes the files, formats every node with one new cluster id and
 * starts them; on a DIR it made before whose nodes are all stopped it starts them again
 * (no format: data and logs are kept). It waits until every node printed its listening
 * line and every node names the same active controller and lists all N brokers as
 * unfenced (DescribeCluster, over tools/wire.h), so the cluster is ready for topics when
 * `up` returns. On any failure it stops what it started.
 *
 * `down` signals only pids that are still a samsa-server of this DIR (their command
 * line is checked in /proc), so a pid the kernel gave to another process is never
 * killed. */
#include "cli.h"
#include "cluster_dir.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UP_DEFAULT_NODES 3
#define UP_DEFAULT_DIR "./samsa-cluster"
#define UP_DEFAULT_BASE_PORT 19092
/* How long `up` waits for every node to listen and the quorum to agree on a controller
 * (an election takes 1-2 s; a loaded machine may need more). */
#define UP_START_TIMEOUT_MS 30000
/* How long a format or random-uuid run may take. */
#define UP_TOOL_TIMEOUT_MS 30000
/* `down`: how long nodes get to stop after SIGTERM, then after SIGKILL. */
#define DOWN_TERM_TIMEOUT_MS 20000
#define DOWN_KILL_TIMEOUT_MS 5000
#define UP_POLL_MS 100
#define UP_LISTENING_LINE "samsa-server listening on port "
#define UP_WHY_BYTES 128
#define UP_OFFSETS_TOPIC "__consumer_offsets"

static const char up_usage[] =
    "usage: samsa cluster up [--nodes N] [--dir DIR] [--base-port PORT] [--server PATH]\n"
    "\n"
    "Starts a local cluster of N samsa-server processes (default 3, at most 9) on\n"
    "127.0.0.1, each both broker and controller, with its own properties file, data dir\n"
    "and log file under DIR (default " UP_DEFAULT_DIR "). Node I listens for clients on\n"
    "PORT + 10*(I-1) and for the other controllers on the port after it (default PORT\n"
    "19092: 19092/19093, 19102/19103, 19112/19113). A DIR made by an earlier `up` whose\n"
    "nodes are stopped is started again with its data. Prints bootstrap.servers.\n"
    "The server is --server PATH, else $SAMSA_SERVER, else the samsa-server beside this\n"
    "samsa, else the one on PATH.\n";

static const char down_usage[] =
    "usage: samsa cluster down [--dir DIR] [--purge]\n"
    "\n"
    "Stops the nodes a `samsa cluster up` started in DIR (default " UP_DEFAULT_DIR "):\n"
    "SIGTERM, and SIGKILL for any still running after 20 s. --purge also removes DIR.\n";

/* One node as `up` runs it. */
struct node_run {
    pid_t pid;       /* 0 before it was started, -1 once reaped */
    off_t log_start; /* size of server.log when this start began */
    off_t scanned;   /* bytes of the log read while looking for the listening line */
    bool listening;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Runs argv[0] with stdin from /dev/null and stdout to out_fd (stderr too, unless
 * err_fd >= 0), waits for it for at most UP_TOOL_TIMEOUT_MS, and returns its exit status,
 * or -1 after printing why it did not run to the end. */
static int run_tool(char *const argv[], int out_fd, int err_fd)
{
    pid_t pid = fork();
    if (pid < 0) {
        cli_err("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        dup2(out_fd, 1);
        dup2(err_fd >= 0 ? err_fd : out_fd, 2);
        execv(argv[0], argv);
        dprintf(2, "samsa: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int64_t deadline = mono_ms() + UP_TOOL_TIMEOUT_MS;
    int status;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            cli_err("waitpid: %s", strerror(errno));
            return -1;
        }
        if (mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            cli_err("%s %s did not finish within %d s", argv[0], argv[1],
                    UP_TOOL_TIMEOUT_MS / 1000);
            return -1;
        }
        sleep_ms(20);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A new cluster id from `samsa-server random-uuid`. */
static int random_uuid(const char *server, char *out, size_t size)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return cli_err("pipe: %s", strerror(errno));
    char *argv[] = {(char *)server, "random-uuid", NULL};
    int rc = run_tool(argv, fds[1], 2);
    close(fds[1]);
    ssize_t n = rc == 0 ? read(fds[0], out, size - 1) : -1;
    close(fds[0]);
    if (n <= 0)
        return cli_err("%s random-uuid printed no cluster id (exit status %d)", server, rc);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] ? 0 : -1;
}

/* Opens node's server.log for appending; *start is its size now. */
static int open_log(const struct cluster_dir *l, int node, off_t *start)
{
    char path[PATH_MAX];
    if (cdir_path(l, node, "server.log", path, sizeof path) != 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        cli_err("cannot open %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *start = st.st_size;
    return fd;
}

static int format_node(const struct cluster_dir *l, const char *server, int node)
{
    char props[PATH_MAX];
    if (cdir_path(l, node, "server.properties", props, sizeof props) != 0)
        return -1;
    off_t start;
    int log = open_log(l, node, &start);
    if (log < 0)
        return -1;
    dprintf(log, "samsa cluster up: formatting with cluster id %s\n", l->cluster_id);
    char *argv[] = {(char *)server, "format", "--cluster-id", (char *)l->cluster_id, "-c",
                    props,          NULL};
    int rc = run_tool(argv, log, -1);
    close(log);
    if (rc != 0) {
        cli_err("formatting node %d failed (%s format exited %d)", node, server, rc);
        cdir_print_log_tail(l, node);
        return -1;
    }
    return 0;
}

/* Starts node `node` detached from this process: its own session (no terminal signal
 * reaches it), stdin from /dev/null, stdout and stderr appended to its server.log, so it
 * outlives `samsa`. */
static int start_node(const struct cluster_dir *l, const char *server, int node, struct node_run *r)
{
    char props[PATH_MAX];
    if (cdir_path(l, node, "server.properties", props, sizeof props) != 0)
        return -1;
    int log = open_log(l, node, &r->log_start);
    if (log < 0)
        return -1;
    r->scanned = r->log_start;
    r->listening = false;
    fflush(NULL); /* nothing buffered may be written twice by the child */
    pid_t pid = fork();
    if (pid < 0) {
        close(log);
        return cli_err("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setsid();
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
            _exit(127);
        closefrom(3);
        /* As a shell would start it: no signal blocked or ignored by this process. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execl(server, server, "-c", props, (char *)NULL);
        dprintf(2, "samsa cluster up: cannot run %s: %s\n", server, strerror(errno));
        _exit(127);
    }
    close(log);
    r->pid = pid;
    return 0;
}

/* Looks in node's log (past what was already read) for its listening line. Returns 1
 * once found (checking it names the client port), 0 if not yet, -1 if it names another
 * port. */
static int scan_listening(const struct cluster_dir *l, int node, struct node_run *r)
{
    char path[PATH_MAX];
    if (r->listening)
        return 1;
    if (cdir_path(l, node, "server.log", path, sizeof path) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    static char buf[65536];
    ssize_t n;
    while ((n = pread(fd, buf, sizeof buf - 1, r->scanned)) > 0) {
        buf[n] = '\0';
        char *end = memrchr(buf, '\n', (size_t)n);
        if (end == NULL)
            end = buf + n - 1; /* a line longer than the buffer: skip its first part */
        *end = '\0';
        r->scanned += end + 1 - buf;
        for (char *line = buf; line != NULL && line < end;) {
            if (strncmp(line, UP_LISTENING_LINE, strlen(UP_LISTENING_LINE)) == 0) {
                close(fd);
                int port = atoi(line + strlen(UP_LISTENING_LINE));
                if (port != cdir_client_port(l, node)) {
                    cli_err("node %d listens on port %d, not %d", node, port,
                            cdir_client_port(l, node));
                    return -1;
                }
                r->listening = true;
                return 1;
            }
            line = strchr(line, '\n');
            line = line != NULL ? line + 1 : NULL;
        }
    }
    close(fd);
    return 0;
}

/* What node `node` says of the cluster (DescribeCluster): the active controller and the
 * unfenced brokers. Returns 0, or -1 if it cannot tell yet. */
static int describe_node(const struct cluster_dir *l, int node, int32_t *controller, int *brokers,
                         bool *controller_listed)
{
    char boot[64];
    snprintf(boot, sizeof boot, CDIR_HOST ":%d", cdir_client_port(l, node));
    struct wire_conn c;
    const char *why;
    if (wire_connect(&c, boot, &why) != 0)
        return -1;
    int16_t v = wire_version(&c, API_KEY_DESCRIBE_CLUSTER);
    int rc = -1;
    if (v >= 0) {
        struct describe_cluster_request req;
        describe_cluster_request_init(&req);
        req.endpoint_type = 1; /* brokers */
        struct buf body, frame;
        buf_init(&body);
        buf_init(&frame);
        struct arena arena;
        arena_init(&arena);
        describe_cluster_request_encode(&body, v, &req);
        struct reader r;
        struct describe_cluster_response resp;
        if (wire_call(&c, API_KEY_DESCRIBE_CLUSTER, v, &body, &frame, &r, &why) == 0 &&
            describe_cluster_response_decode(&r, v, &arena, &resp) == 0 &&
            resp.error_code == KERR_NONE) {
            *controller = resp.controller_id;
            *brokers = 0;
            *controller_listed = false;
            for (int32_t i = 0; i < resp.brokers_count; i++) {
                if (!resp.brokers[i].is_fenced) {
                    (*brokers)++;
                    *controller_listed |= resp.brokers[i].broker_id == resp.controller_id;
                }
            }
            rc = 0;
        }
        arena_free(&arena);
        buf_free(&frame);
        buf_free(&body);
    }
    wire_close(&c);
    return rc;
}

/* Whether node `node`'s Metadata (all topics) lists __consumer_offsets and a leader for
 * every partition. If not, why (size UP_WHY_BYTES) says what is missing. */
static bool partitions_led(const struct cluster_dir *l, int node, char *why)
{
    char boot[64];
    snprintf(boot, sizeof boot, CDIR_HOST ":%d", cdir_client_port(l, node));
    struct wire_conn c;
    const char *err;
    snprintf(why, UP_WHY_BYTES, "node %d does not answer Metadata", node);
    if (wire_connect(&c, boot, &err) != 0)
        return false;
    int16_t v = wire_version(&c, API_KEY_METADATA);
    bool ok = false;
    if (v >= 1) { /* a null topic list (all topics) needs v1 */
        struct metadata_request req;
        metadata_request_init(&req);
        req.topics_count = -1;
        req.allow_auto_topic_creation = false;
        struct buf body, frame;
        buf_init(&body);
        buf_init(&frame);
        struct arena arena;
        arena_init(&arena);
        metadata_request_encode(&body, v, &req);
        struct reader r;
        struct metadata_response resp;
        if (wire_call(&c, API_KEY_METADATA, v, &body, &frame, &r, &err) == 0 &&
            metadata_response_decode(&r, v, &arena, &resp) == 0) {
            bool offsets = false;
            ok = true;
            for (int32_t t = 0; ok && t < resp.topics_count; t++) {
                const struct metadata_response_topics *tp = &resp.topics[t];
                offsets |= slice_eq_cstr(tp->name, UP_OFFSETS_TOPIC);
                for (int32_t i = 0; ok && i < tp->partitions_count; i++) {
                    if (tp->partitions[i].error_code != KERR_NONE ||
                        tp->partitions[i].leader_id < 0) {
                        snprintf(why, UP_WHY_BYTES, "node %d: %.*s-%d has no leader yet", node,
                                 (int)tp->name.len, (const char *)tp->name.ptr,
                                 tp->partitions[i].partition_index);
                        ok = false;
                    }
                }
            }
            if (ok && !offsets) {
                snprintf(why, UP_WHY_BYTES, "node %d: " UP_OFFSETS_TOPIC " not created yet", node);
                ok = false;
            }
        }
        arena_free(&arena);
        buf_free(&frame);
        buf_free(&body);
    }
    wire_close(&c);
    return ok;
}

/* True once every node names the same active controller, lists it, and lists all nodes
 * as unfenced brokers (then topics created now are spread over every node), and every
 * node knows a leader for every partition, __consumer_offsets included (then consumer
 * groups work at once). *controller is the one they agree on; otherwise why (size
 * UP_WHY_BYTES) says what is missing. */
static bool cluster_ready(const struct cluster_dir *l, int32_t *controller, char *why)
{
    int32_t agreed = -1;
    for (int node = 1; node <= l->nodes; node++) {
        int32_t c;
        int brokers;
        bool listed;
        if (describe_node(l, node, &c, &brokers, &listed) != 0) {
            snprintf(why, UP_WHY_BYTES, "node %d does not answer DescribeCluster", node);
            return false;
        }
        if (c < 0 || !listed) {
            snprintf(why, UP_WHY_BYTES, "node %d knows no active controller", node);
            return false;
        }
        if (brokers != l->nodes) {
            snprintf(why, UP_WHY_BYTES, "node %d lists %d of %d brokers as registered", node,
                     brokers, l->nodes);
            return false;
        }
        if (agreed >= 0 && c != agreed) {
            snprintf(why, UP_WHY_BYTES, "node %d names node %d as controller, node 1 node %d", node,
                     c, agreed);
            return false;
        }
        agreed = c;
    }
    for (int node = 1; node <= l->nodes; node++) {
        if (!partitions_led(l, node, why))
            return false;
    }
    *controller = agreed;
    return true;
}

/* Reaps node r if it exited; returns true (and prints how) if it did. */
static bool node_exited(int node, struct node_run *r)
{
    int status;
    if (r->pid <= 0 || waitpid(r->pid, &status, WNOHANG) != r->pid)
        return false;
    if (WIFEXITED(status))
        cli_err("node %d (pid %d) exited with status %d while starting", node, (int)r->pid,
                WEXITSTATUS(status));
    else
        cli_err("node %d (pid %d) was killed by signal %d while starting", node, (int)r->pid,
                WTERMSIG(status));
    r->pid = -1;
    return true;
}

/* Stops the nodes this `up` started (its children): SIGTERM, a bounded wait, SIGKILL. */
static void stop_started(const struct cluster_dir *l, struct node_run *run)
{
    for (int i = 0; i < l->nodes; i++) {
        if (run[i].pid > 0)
            kill(run[i].pid, SIGTERM);
    }
    int64_t deadline = mono_ms() + DOWN_TERM_TIMEOUT_MS;
    for (;;) {
        bool left = false;
        for (int i = 0; i < l->nodes; i++) {
            if (run[i].pid > 0 && waitpid(run[i].pid, NULL, WNOHANG) == run[i].pid)
                run[i].pid = -1;
            left |= run[i].pid > 0;
        }
        if (!left)
            break;
        if (mono_ms() > deadline) {
            for (int i = 0; i < l->nodes; i++) {
                if (run[i].pid > 0) {
                    kill(run[i].pid, SIGKILL);
                    waitpid(run[i].pid, NULL, 0);
                    run[i].pid = -1;
                }
            }
            break;
        }
        sleep_ms(UP_POLL_MS);
    }
    cdir_remove_pids(l);
    fprintf(stderr, "samsa: stopped the nodes this command started\n");
}

/* ---- finding things ---- */

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The samsa-server to run, as an absolute path into out: --server, $SAMSA_SERVER, the
 * one beside this samsa (installed together) or one directory up (the build tree:
 * build/tools/samsa and build/samsa-server), then PATH. */
static int find_server(const char *given, char out[PATH_MAX])
{
    char candidate[PATH_MAX];
    const char *env = getenv("SAMSA_SERVER");
    const char *explicit = given != NULL ? given : (env != NULL && *env ? env : NULL);
    if (explicit != NULL) {
        if (!executable(explicit) || realpath(explicit, out) == NULL)
            return cli_err("%s (from %s) is not an executable samsa-server", explicit,
                           given != NULL ? "--server" : "$SAMSA_SERVER");
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            static const char *const rel[] = {"/samsa-server", "/../samsa-server"};
            for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
                snprintf(candidate, sizeof candidate, "%s%s", self, rel[i]);
                if (executable(candidate) && realpath(candidate, out) != NULL)
                    return 0;
            }
        }
    }
    const char *path = getenv("PATH");
    while (path != NULL && *path) {
        size_t len = strcspn(path, ":");
        snprintf(candidate, sizeof candidate, "%.*s/samsa-server", (int)len, path);
        if (len > 0 && executable(candidate) && realpath(candidate, out) != NULL)
            return 0;
        path += len + (path[len] == ':');
    }
    return cli_err("cannot find samsa-server (not beside this samsa, nor on PATH); name it with "
                   "--server PATH or $SAMSA_SERVER");
}

/* 0 if nothing listens on 127.0.0.1:port, else -1 after naming the port and its use.
 * SO_REUSEADDR as the server sets it, so connections of a stopped node lingering in
 * TIME_WAIT do not count as taken. */
static int check_port_free(int port, int node, const char *what, bool restart)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cli_err("socket: %s", strerror(errno));
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0
                 ? bind(fd, (struct sockaddr *)&a, sizeof a)
                 : -1;
    int err = errno;
    close(fd);
    if (rc != 0)
        return cli_err("port %d (node %d's %s port) on " CDIR_HOST " is not free: %s; %s", port,
                       node, what, strerror(err),
                       restart ? "this cluster's ports are fixed: stop what uses it"
                               : "choose another --base-port");
    return 0;
}

/* ---- up ---- */

static int parse_int_opt(const char *s, int min, int max, const char *opt, int *out)
{
    int64_t v;
    if (cli_parse_i64(s, min, max, opt, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* Waits until every node listens and the cluster is ready, or a node fails, or the time
 * is up. Returns 0, or the failing node's number (its log is worth showing), or -1. */
static int wait_ready(const struct cluster_dir *l, struct node_run *run, int32_t *controller)
{
    int64_t deadline = mono_ms() + UP_START_TIMEOUT_MS;
    char why[UP_WHY_BYTES] = "";
    for (;;) {
        int listening = 0;
        for (int node = 1; node <= l->nodes; node++) {
            struct node_run *r = &run[node - 1];
            if (node_exited(node, r))
                return node;
            int s = scan_listening(l, node, r);
            if (s < 0)
                return node;
            listening += s;
        }
        if (listening == l->nodes && cluster_ready(l, controller, why))
            return 0;
        if (mono_ms() > deadline) {
            for (int node = 1; node <= l->nodes; node++) {
                if (!run[node - 1].listening) {
                    cli_err("node %d did not start listening within %d s", node,
                            UP_START_TIMEOUT_MS / 1000);
                    return node;
                }
            }
            cli_err("the cluster was not ready within %d s: %s", UP_START_TIMEOUT_MS / 1000, why);
            return 1;
        }
        sleep_ms(UP_POLL_MS);
    }
}

static int cluster_up(struct cluster_dir *l, bool nodes_given, bool port_given,
                      const char *server_opt)
{
    char server[PATH_MAX];
    if (find_server(server_opt, server) != 0)
        return CLI_EXIT_FAIL;
    const char *dir_arg = l->dir[0] ? l->dir : UP_DEFAULT_DIR;
    struct stat st;
    bool created = stat(dir_arg, &st) != 0;
    if (created && cdir_mkdir_p(dir_arg) != 0)
        return CLI_EXIT_FAIL;
    char abs[PATH_MAX];
    if (realpath(dir_arg, abs) == NULL)
        return cli_err("%s: %s", dir_arg, strerror(errno));
    snprintf(l->dir, sizeof l->dir, "%s", abs);

    struct cluster_dir old = *l;
    bool restart;
    if (cdir_read_layout(&old, &restart) != 0)
        return CLI_EXIT_FAIL;
    if (restart) {
        if ((nodes_given && old.nodes != l->nodes) || (port_given && old.base_port != l->base_port))
            return cli_err("%s holds a %d-node cluster on base port %d; start it as it is "
                           "(without --nodes/--base-port), or remove it with `samsa cluster "
                           "down --dir %s --purge`",
                           l->dir, old.nodes, old.base_port, l->dir);
        *l = old;
        pid_t pids[CDIR_MAX_NODES];
        int n = cdir_read_pids(l, pids, CDIR_MAX_NODES);
        for (int i = 0; i < n; i++) {
            if (cdir_is_node(l, i + 1, pids[i]))
                return cli_err("the cluster in %s is already running (node %d is pid %d); "
                               "stop it with `samsa cluster down --dir %s`",
                               l->dir, i + 1, (int)pids[i], l->dir);
        }
    } else if (!cdir_is_empty(l->dir)) {
        return cli_err("%s is not empty and was not made by `samsa cluster up` (it has no "
                       "'" CDIR_STATE_FILE "' file); choose another --dir",
                       l->dir);
    }
    for (int node = 1; node <= l->nodes; node++) {
        if (check_port_free(cdir_client_port(l, node), node, "client", restart) != 0 ||
            check_port_free(cdir_controller_port(l, node), node, "controller", restart) != 0) {
            if (created)
                rmdir(l->dir);
            return CLI_EXIT_FAIL;
        }
    }

    if (!restart) {
        /* The layout file is written last: until then DIR is not a cluster, and a failed
         * attempt removes what it wrote so the next one starts clean. */
        bool ok = random_uuid(server, l->cluster_id, sizeof l->cluster_id) == 0;
        for (int node = 1; ok && node <= l->nodes; node++) {
            char nd[PATH_MAX];
            ok = cdir_path(l, node, "", nd, sizeof nd) == 0 && cdir_mkdir_p(nd) == 0 &&
                 cdir_write_properties(l, node) == 0 && format_node(l, server, node) == 0;
        }
        if (!ok || cdir_write_layout(l) != 0) {
            for (int node = 1; node <= l->nodes; node++) {
                char nd[PATH_MAX];
                if (cdir_path(l, node, "", nd, sizeof nd) == 0 && access(nd, F_OK) == 0)
                    cdir_remove_tree(nd);
            }
            if (created)
                rmdir(l->dir);
            return CLI_EXIT_FAIL;
        }
        printf("Formatted %d nodes in %s with cluster id %s\n", l->nodes, l->dir, l->cluster_id);
    }

    struct node_run run[CDIR_MAX_NODES] = {0};
    pid_t pids[CDIR_MAX_NODES] = {0};
    int failed = 0;
    for (int node = 1; node <= l->nodes && failed == 0; node++) {
        if (start_node(l, server, node, &run[node - 1]) != 0) {
            failed = -1;
            break;
        }
        pids[node - 1] = run[node - 1].pid;
        /* Written as each node starts, so that `down` finds every node even if this
         * command dies while waiting. */
        if (cdir_write_pids(l, pids, node) != 0)
            failed = -1;
    }
    int32_t controller = -1;
    if (failed == 0)
        failed = wait_ready(l, run, &controller);
    if (failed != 0) {
        stop_started(l, run);
        if (failed > 0)
            cdir_print_log_tail(l, failed);
        fprintf(stderr,
                "samsa: the files are kept in %s: `samsa cluster up --dir %s` tries again, "
                "`samsa cluster down --dir %s --purge` removes them\n",
                l->dir, l->dir, l->dir);
        return CLI_EXIT_FAIL;
    }

    printf("%s the %d-node cluster %s in %s (server %s)\n\n", restart ? "Restarted" : "Started",
           l->nodes, l->cluster_id, l->dir, server);
    struct table *t = table_new(5, "NODE", "PID", "CLIENT", "CONTROLLER", "LOG");
    for (int node = 1; node <= l->nodes; node++) {
        char id[16], pid[16], cl[32], co[32], log[PATH_MAX];
        snprintf(id, sizeof id, "%d", node);
        snprintf(pid, sizeof pid, "%d", (int)run[node - 1].pid);
        snprintf(cl, sizeof cl, CDIR_HOST ":%d", cdir_client_port(l, node));
        snprintf(co, sizeof co, CDIR_HOST ":%d", cdir_controller_port(l, node));
        cdir_path(l, node, "server.log", log, sizeof log);
        table_add(t, id, pid, cl, co, log);
    }
    table_print(t);
    table_free(t);
    printf("\nActive controller: node %d\n", controller);
    printf("bootstrap.servers=");
    for (int node = 1; node <= l->nodes; node++)
        printf("%s" CDIR_HOST ":%d", node > 1 ? "," : "", cdir_client_port(l, node));
    printf("\n\nStop it with: samsa cluster down --dir %s\n", l->dir);
    return 0;
}

int cluster_up_main(struct cli_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"dir", required_argument, NULL, 'd'},
        {"base-port", required_argument, NULL, 'p'},
        {"server", required_argument, NULL, 's'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cluster_dir l = {.nodes = UP_DEFAULT_NODES, .base_port = UP_DEFAULT_BASE_PORT};
    bool nodes_given = false, port_given = false;
    const char *server = NULL;
    optind = 2;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "n:d:p:s:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (parse_int_opt(optarg, 1, CDIR_MAX_NODES, "--nodes", &l.nodes) != 0)
                return CLI_EXIT_USAGE;
            nodes_given = true;
            break;
        case 'd':
            if (snprintf(l.dir, sizeof l.dir, "%s", optarg) >= (int)sizeof l.dir || !*optarg)
                return cli_err("--dir: invalid path"), CLI_EXIT_USAGE;
            break;
        case 'p':
            if (parse_int_opt(optarg, CDIR_MIN_BASE_PORT, 65535, "--base-port", &l.base_port) != 0)
                return CLI_EXIT_USAGE;
            port_given = true;
            break;
        case 's': server = optarg; break;
        case 'v': o->verbose = true; break;
        case 'h': fputs(up_usage, stdout); return 0;
        default: fputs(up_usage, stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        cli_err("cluster up takes no arguments ('%s')", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (cdir_controller_port(&l, l.nodes) > 65535)
        return cli_err("--base-port %d leaves no room for %d nodes (node %d would need port "
                       "%d)",
                       l.base_port, l.nodes, l.nodes, cdir_controller_port(&l, l.nodes)),
               CLI_EXIT_USAGE;
    return cluster_up(&l, nodes_given, port_given, server);
}

/* ---- down ---- */

/* Waits until none of the nodes in alive[] is running, for at most timeout_ms; clears
 * the ones that stopped. Returns how many remain. */
static int wait_stopped(const struct cluster_dir *l, const pid_t *pids, bool *alive, int n,
                        int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int left = 0;
        for (int i = 0; i < n; i++) {
            alive[i] = alive[i] && cdir_node_running(l, i + 1, pids[i]);
            left += alive[i];
        }
        if (left == 0 || mono_ms() > deadline)
            return left;
        sleep_ms(UP_POLL_MS);
    }
}

static int cluster_down(const char *dir_arg, bool purge)
{
    struct cluster_dir l = {0};
    char abs[PATH_MAX];
    if (realpath(dir_arg, abs) == NULL) {
        if (errno == ENOENT) {
            printf("Nothing to stop: %s does not exist\n", dir_arg);
            return 0;
        }
        return cli_err("%s: %s", dir_arg, strerror(errno));
    }
    snprintf(l.dir, sizeof l.dir, "%s", abs);
    bool found;
    if (cdir_read_layout(&l, &found) != 0)
        return CLI_EXIT_FAIL;
    if (!found)
        return cli_err("%s was not made by `samsa cluster up` (it has no '" CDIR_STATE_FILE
                       "' file); not touching it",
                       l.dir);
    pid_t pids[CDIR_MAX_NODES] = {0};
    bool alive[CDIR_MAX_NODES] = {false};
    int n = cdir_read_pids(&l, pids, l.nodes);
    int running = 0;
    for (int i = 0; i < n; i++) {
        alive[i] = cdir_is_node(&l, i + 1, pids[i]);
        if (alive[i]) {
            if (kill(pids[i], SIGTERM) != 0) {
                cli_err("cannot signal node %d (pid %d): %s", i + 1, (int)pids[i], strerror(errno));
                alive[i] = false;
                continue;
            }
            printf("Sent SIGTERM to node %d (pid %d)\n", i + 1, (int)pids[i]);
            running++;
        }
    }
    int64_t start = mono_ms();
    int left = wait_stopped(&l, pids, alive, n, DOWN_TERM_TIMEOUT_MS);
    if (left > 0) {
        for (int i = 0; i < n; i++) {
            if (alive[i] && kill(pids[i], SIGKILL) == 0)
                printf("Node %d (pid %d) still running after %d s: sent SIGKILL\n", i + 1,
                       (int)pids[i], DOWN_TERM_TIMEOUT_MS / 1000);
        }
        left = wait_stopped(&l, pids, alive, n, DOWN_KILL_TIMEOUT_MS);
    }
    if (left > 0)
        return cli_err("%d node(s) of %s are still running", left, l.dir);
    if (running == 0)
        printf("Nothing was running in %s\n", l.dir);
    else
        printf("Stopped %d node(s) of %s in %.1f s\n", running, l.dir,
               (double)(mono_ms() - start) / 1000.0);
    cdir_remove_pids(&l);
    if (purge) {
        if (cdir_remove_tree(l.dir) != 0)
            return cli_err("could not remove all of %s", l.dir);
        printf("Removed %s\n", l.dir);
    }
    return 0;
}

int cluster_down_main(struct cli_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"purge", no_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = UP_DEFAULT_DIR;
    bool purge = false;
    optind = 2;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "d:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'P': purge = true; break;
        case 'v': o->verbose = true; break;
        case 'h': fputs(down_usage, stdout); return 0;
        default: fputs(down_usage, stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        cli_err("cluster down takes no arguments ('%s')", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return cluster_down(dir, purge);
}
