/* What start-up does with the log dir before it serves anything: lock it against a
 * second process, refuse to start when the metadata cannot account for the partition
 * directories on disk, and sort out directories the metadata does not name. Also the
 * offline recovery behind `samsa metadata recover`.
 *
 * The rule that matters: start-up never deletes data it does not recognise. A
 * directory is removed only when the deletion protocol itself marked it — renamed with
 * the "-delete" suffix, or recording the id of a topic whose deletion the metadata log
 * holds. Everything else the metadata does not name is moved to <log.dirs>/quarantine/
 * and logged: damaged or mismatched metadata must cost availability, never data. */
#include "server/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Producer ids skipped by a recovery: more than a damaged stretch of the metadata log
 * could have handed out (blocks of 1,000, one per entry), so none is reused. */
#define RECOVERY_PRODUCER_ID_GAP (1ll << 32)

int server_lock_log_dir(const char *log_dir, int *fd_out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.lock", log_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        say_error("server", "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        say_error("server", "cannot lock %s: %s", path,
                  e == EWOULDBLOCK ? "another samsa process is using this log dir" : strerror(e));
        close(fd);
        return -1;
    }
    *fd_out = fd;
    return 0;
}

static bool is_metadata_dir(const char *name)
{
    return strcmp(name, "__cluster_metadata-0") == 0;
}

/* A directory entry that names a partition directory holding at least one segment:
 * the directories whose data a wrong start-up decision would lose. */
static bool holds_partition_data(const char *log_dir, const struct dirent *e)
{
    size_t topic_len;
    int32_t index;
    if (e->d_type != DT_DIR || !log_dir_name_parse(e->d_name, &topic_len, &index) ||
        is_metadata_dir(e->d_name))
        return false;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", log_dir, e->d_name);
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool found = false;
    struct dirent *f;
    while (!found && (f = readdir(d)) != NULL) {
        size_t n = strlen(f->d_name);
        found = n > 4 && strcmp(f->d_name + n - 4, ".log") == 0;
    }
    closedir(d);
    return found;
}

int server_check_metadata_accounts_for_data(struct server *s)
{
    if (!cluster_log_was_empty(s->cluster))
        return 0;
    DIR *d = opendir(s->log_dir);
    if (!d) {
        say_error("server", "cannot list %s: %s", s->log_dir, strerror(errno));
        return -1;
    }
    size_t count = 0;
    char example[256] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!holds_partition_data(s->log_dir, e))
            continue;
        if (count++ == 0)
            snprintf(example, sizeof example, "%s", e->d_name);
    }
    closedir(d);
    if (count == 0)
        return 0;
    say_error("server",
              "the metadata log %s is missing or empty, but %s holds %zu partition "
              "directories with data (for example %s). Not starting: with no metadata every "
              "one of them would look unknown. Nothing has been changed. If this log dir "
              "is the one you meant, stop and run `samsa metadata recover --log-dir %s` to "
              "rebuild the metadata from the partition directories (docs/operations.md, "
              "\"Damaged metadata\")",
              cluster_log_path(s->cluster), s->log_dir, count, example, s->log_dir);
    return -1;
}

/* Whether the directory records the id of a topic whose deletion the metadata log
 * holds. */
static bool records_deleted_topic(const struct cluster *c, const char *path)
{
    char text[64];
    uint8_t id[16];
    return log_dir_read_topic_id(path, text, sizeof text) == 0 &&
           cluster_uuid_parse(text, id) == 0 && cluster_topic_id_deleted(c, id);
}

void server_sort_out_unknown_dirs(struct server *s)
{
    DIR *d = opendir(s->log_dir);
    if (!d) {
        say_warn("server", "cannot list %s: %s", s->log_dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (name[0] == '.' || e->d_type != DT_DIR)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", s->log_dir, name);
        size_t topic_len;
        int32_t index;
        if (log_dir_name_deleted(name)) {
            say_info("server", "removing %s, left by an interrupted topic deletion", path);
            int rc = log_remove_renamed(path);
            if (rc != 0)
                say_warn("server", "cannot remove %s: %s", path, storage_strerror(rc));
            continue;
        }
        if (!log_dir_name_parse(name, &topic_len, &index))
            continue; /* not a partition directory (__cluster_metadata-0 parses) */
        if (is_metadata_dir(name))
            continue;
        struct slice topic = {(const uint8_t *)name, topic_len};
        const struct mtopic *t = cluster_topic_find(s->cluster, topic);
        if (t && index < t->partition_count)
            continue;
        if (records_deleted_topic(s->cluster, path)) {
            say_info("server",
                     "removing %s: the metadata log records its topic's deletion, "
                     "which a crash interrupted",
                     path);
            int rc = log_delete_dir(path);
            if (rc != 0)
                say_warn("server", "cannot remove %s: %s", path, storage_strerror(rc));
            continue;
        }
        if (!broker_config_alone(s->cfg)) {
            /* A voter of a quorum of several knows at start-up only the changes it knows
             * committed; the leader tells it the rest. This may be one of them. */
            say_info("server",
                     "%s is not a partition of any topic this node knows committed yet; left in "
                     "place until the metadata quorum's leader says",
                     path);
            continue;
        }
        char *moved = NULL;
        int rc = log_dir_quarantine(s->log_dir, name, &moved);
        if (rc != 0)
            say_error("server",
                      "%s is not a partition of any topic in the metadata; it "
                      "could not be moved to quarantine (%s) and is left in place",
                      path, strerror(-rc));
        else
            say_warn("server",
                     "%s is not a partition of any topic in the metadata: moved to "
                     "%s, nothing deleted. Inspect it, then delete it or restore "
                     "its topic (docs/operations.md, \"Damaged metadata\")",
                     path, moved);
        free(moved);
    }
    closedir(d);
}

/* ---- samsa metadata recover ---- */

/* A topic as found on disk: its highest partition directory and the id they record. */
struct found_topic {
    int32_t max_index;
    size_t dirs;
    bool has_id, mixed_ids;
    uint8_t id[16];
};

static void note_dir(struct hmap *found, const char *log_dir, const char *name, size_t topic_len,
                     int32_t index)
{
    struct slice topic = {(const uint8_t *)name, topic_len};
    struct found_topic *ft = hmap_get(found, topic);
    if (!ft) {
        ft = xcalloc(1, sizeof *ft);
        ft->max_index = -1;
        hmap_put(found, topic, ft);
    }
    ft->dirs++;
    if (index > ft->max_index)
        ft->max_index = index;
    char path[4096], text[64];
    snprintf(path, sizeof path, "%s/%s", log_dir, name);
    uint8_t id[16];
    if (log_dir_read_topic_id(path, text, sizeof text) != 0 || cluster_uuid_parse(text, id) != 0)
        return;
    if (ft->has_id && memcmp(ft->id, id, 16) != 0)
        ft->mixed_ids = true;
    memcpy(ft->id, id, 16);
    ft->has_id = true;
}

static int32_t node_id_of(const char *meta_dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.properties", meta_dir);
    struct props p = {0};
    int64_t id = 1;
    if (props_load_file(&p, path) == 0) {
        const char *v = props_get(&p, "node.id");
        if (!v || parse_i64(v, &id) != 0 || id < 0 || id > INT32_MAX)
            id = 1;
    }
    props_free(&p);
    return (int32_t)id;
}

int server_recover_metadata(const char *log_dir, bool dry_run, FILE *out)
{
    int lock_fd = -1;
    if (server_lock_log_dir(log_dir, &lock_fd) != 0) {
        fprintf(out, "cannot lock %s: stop the broker that uses it first\n", log_dir);
        return -1;
    }
    char meta_dir[4096];
    snprintf(meta_dir, sizeof meta_dir, "%s/__cluster_metadata-0", log_dir);
    struct cluster_options co = {
        .metadata_dir = meta_dir, .node_id = node_id_of(meta_dir), .salvage = true};
    struct cluster *c = NULL;
    if (cluster_open(&co, &c) != 0) {
        fprintf(out, "cannot read the metadata log in %s\n", meta_dir);
        close(lock_fd);
        return -1;
    }
    fprintf(out,
            "metadata log %s: %zu topics in its intact entries, %zu damaged bytes "
            "skipped\n",
            cluster_log_path(c), cluster_topic_count(c), cluster_log_skipped_bytes(c));

    struct hmap found;
    hmap_init(&found);
    DIR *d = opendir(log_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t topic_len;
        int32_t index;
        if (e->d_type != DT_DIR || e->d_name[0] == '.' || log_dir_name_deleted(e->d_name) ||
            !log_dir_name_parse(e->d_name, &topic_len, &index))
            continue;
        struct slice topic = {(const uint8_t *)e->d_name, topic_len};
        if (is_metadata_dir(e->d_name) || cluster_topic_name_error(topic))
            continue;
        note_dir(&found, log_dir, e->d_name, topic_len, index);
    }
    if (d)
        closedir(d);

    int rc = 0;
    size_t it = 0, recovered = 0, extended = 0;
    struct slice k;
    void *v;
    while (hmap_next(&found, &it, &k, &v)) {
        struct found_topic *ft = v;
        char *name = slice_to_cstr(k);
        const struct mtopic *t = cluster_topic_find(c, k);
        int32_t want = ft->max_index + 1;
        if (t && t->partition_count >= want) {
            /* the log knows it: nothing to do */
        } else if (t) {
            fprintf(out, "topic %s: partitions %d..%d found on disk, added\n", name,
                    t->partition_count, want - 1);
            rc = cluster_recover_topic(c, name, NULL, want, NULL, 0);
            extended++;
        } else {
            /* Its configs were in the damaged stretch: keep everything (no retention)
             * until the operator sets them again; Kafka's fixed policy for the offsets
             * topic, whose records are only compacted (and Samsa's for its delay store,
             * whose pending records must never be deleted by age). */
            bool offsets =
                strcmp(name, "__consumer_offsets") == 0 || strcmp(name, "__samsa_delay") == 0;
            struct config_entry configs[] = {
                {"retention.ms", "-1"},
                {"retention.bytes", "-1"},
                {"cleanup.policy", "compact"},
            };
            fprintf(out,
                    "topic %s: %d partitions recovered from %zu directories%s; configs "
                    "%s\n",
                    name, want, ft->dirs, ft->has_id && !ft->mixed_ids ? " with its topic id" : "",
                    offsets ? "cleanup.policy=compact, no retention"
                            : "retention.ms=-1 and retention.bytes=-1 (nothing is deleted "
                              "until you set them again)");
            rc = cluster_recover_topic(c, name, ft->has_id && !ft->mixed_ids ? ft->id : NULL, want,
                                       configs, offsets ? 3 : 2);
            recovered++;
        }
        if (rc != 0)
            fprintf(out, "topic %s: cannot recover (error %d)\n", name, rc);
        free(name);
        if (rc != 0)
            break;
    }
    for (it = 0; hmap_next(&found, &it, &k, &v);)
        free(v);
    hmap_free(&found);
    if (rc == 0 && !dry_run) {
        char *kept = NULL;
        rc = cluster_rewrite_log(c, RECOVERY_PRODUCER_ID_GAP, &kept);
        if (rc == 0)
            fprintf(out,
                    "wrote a new metadata log with %zu topics (%zu recovered from "
                    "directories, %zu given partitions found on disk)%s%s\n",
                    cluster_topic_count(c), recovered, extended,
                    kept ? "; the old file is kept as " : "", kept ? kept : "");
        else
            fprintf(out, "cannot write the new metadata log; nothing was changed\n");
        free(kept);
    } else if (rc == 0) {
        fprintf(out,
                "dry run: %zu topics would be recovered, %zu extended; nothing "
                "written\n",
                recovered, extended);
    }
    cluster_close(c);
    close(lock_fd);
    return rc == 0 ? 0 : -1;
}
