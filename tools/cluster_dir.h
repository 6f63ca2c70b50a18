/* The directory of a local cluster that `samsa cluster up` makes and `samsa cluster down`
 * stops (cluster_up.c). It holds everything, so that an operator can read it and start
 * any node by hand:
 *
 *   DIR/cluster                  the layout (nodes, base port, cluster id); marks DIR as
 *                                made by `up`, so `up` restarts it and `down --purge` may
 *                                remove it
 *   DIR/pids                     one pid per line, node 1 first, of the started nodes
 *   DIR/nodeI/server.properties  node I's configuration, commented
 *   DIR/nodeI/server.log         its stdout and stderr, appended across restarts
 *   DIR/nodeI/data               its log dir (formatted once, with the cluster id)
 *
 * Ports: node I listens for clients on BASE + 10*(I-1) and for the other controllers on
 * the next port, so base 19092 gives 19092/19093, 19102/19103, 19112/19113.
 *
 * Functions that can fail print one line "samsa: ..." and return non-zero. */
#ifndef SAMSA_TOOLS_CLUSTER_DIR_H
#define SAMSA_TOOLS_CLUSTER_DIR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CDIR_MAX_NODES 9
#define CDIR_PORT_STRIDE 10
#define CDIR_MIN_BASE_PORT 1024
#define CDIR_HOST "127.0.0.1"
#define CDIR_STATE_FILE "cluster"
#define CDIR_PIDS_FILE "pids"
/* What a failed start shows of a node's log. */
#define CDIR_LOG_TAIL_LINES 30
#define CDIR_LOG_TAIL_BYTES 16384

/* One cluster's directory and layout. */
struct cluster_dir {
    char dir[PATH_MAX];  /* absolute */
    int nodes;           /* 1..CDIR_MAX_NODES */
    int base_port;       /* node 1's client port */
    char cluster_id[64]; /* as `samsa-server random-uuid` prints it */
};

static inline int cdir_client_port(const struct cluster_dir *l, int node)
{
    return l->base_port + CDIR_PORT_STRIDE * (node - 1);
}

static inline int cdir_controller_port(const struct cluster_dir *l, int node)
{
    return cdir_client_port(l, node) + 1;
}

/* DIR/nodeI/name, or DIR/nodeI for an empty name, or DIR/name for node 0, into buf.
 * Fails only if it does not fit. */
int cdir_path(const struct cluster_dir *l, int node, const char *name, char *buf, size_t size);

/* Small file helpers: write_file replaces path atomically (temporary file, rename). */
int cdir_write_file(const char *path, const char *text);
int cdir_mkdir_p(const char *path);
bool cdir_is_empty(const char *path); /* false also when it cannot be read */
int cdir_remove_tree(const char *path);

/* Prints the last CDIR_LOG_TAIL_LINES lines of node's server.log on stderr. */
void cdir_print_log_tail(const struct cluster_dir *l, int node);

/* DIR/cluster. read_layout fills l's nodes, base port and cluster id (l->dir set by the
 * caller); *found says whether DIR has the file; a damaged one is an error. */
int cdir_write_layout(const struct cluster_dir *l);
int cdir_read_layout(struct cluster_dir *l, bool *found);

/* DIR/nodeI/server.properties: complete and commented, as an operator would write it. */
int cdir_write_properties(const struct cluster_dir *l, int node);

/* True if pid is alive and still node `node` of this cluster: its command line is
 * "<server> -c DIR/nodeI/server.properties", as `up` runs it. So a pid the kernel has
 * given to another process is never taken for a node. A zombie counts as stopped. */
bool cdir_is_node(const struct cluster_dir *l, int node, pid_t pid);

/* For a pid that was node `node` a moment ago: true until it has finished exiting. */
bool cdir_node_running(const struct cluster_dir *l, int node, pid_t pid);

/* DIR/pids: read_pids returns how many it read into pids (0 without a file); pids[i] is
 * node i+1's. write_pids writes the first n. */
int cdir_read_pids(const struct cluster_dir *l, pid_t *pids, int max);
int cdir_write_pids(const struct cluster_dir *l, const pid_t *pids, int n);
void cdir_remove_pids(const struct cluster_dir *l);

#endif
