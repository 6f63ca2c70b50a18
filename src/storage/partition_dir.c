/* What a log dir holds besides segments: the names of partition directories
 * (`<topic>-<index>`), the topic id each one records (Kafka's `partition.metadata`),
 * and the quarantine folder where start-up moves directories it does not recognise
 * (never deleting them; docs/operations.md). */
#include "storage/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUBSYS "storage"
#define PARTITION_METADATA "partition.metadata"
#define QUARANTINE_DIR "quarantine"

bool log_dir_name_parse(const char *name, size_t *topic_len, int32_t *index)
{
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || dash[1] == '\0')
        return false;
    const char *digits = dash + 1;
    size_t n = strlen(digits);
    if (n > 6 || (digits[0] == '0' && n > 1)) /* as written by "%d", below 1,000,000 */
        return false;
    int32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return false;
        v = v * 10 + (digits[i] - '0');
    }
    *topic_len = (size_t)(dash - name);
    *index = v;
    return true;
}

bool log_dir_name_deleted(const char *name)
{
    size_t n = strlen(name);
    return n > 7 && strcmp(name + n - 7, "-delete") == 0;
}

int log_dir_write_topic_id(const char *dir, const char *topic_id)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/" PARTITION_METADATA, dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char text[128];
    int len = snprintf(text, sizeof text, "version: 0\ntopic_id: %s\n", topic_id);
    ASSERT(len > 0 && (size_t)len < sizeof text);
    /* Written whole, then renamed: a reader sees the old file, none, or this one. Not
     * fsync'd (a sync per new partition would slow topic creation): after a crash the
     * file may be missing, which readers treat as "no id recorded". */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = write(fd, text, (size_t)len) == len ? 0 : -EIO;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int log_dir_read_topic_id(const char *dir, char *out, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" PARTITION_METADATA, dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char text[256];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return -EBADMSG;
    text[n] = '\0';
    const char *at = strstr(text, "topic_id: ");
    if (!at)
        return -EBADMSG;
    at += strlen("topic_id: ");
    size_t len = strcspn(at, "\r\n");
    if (len == 0 || len >= cap)
        return -EBADMSG;
    memcpy(out, at, len);
    out[len] = '\0';
    return 0;
}

int log_dir_quarantine(const char *log_dir, const char *name, char **moved_to)
{
    *moved_to = NULL;
    char qdir[4096], from[4096];
    snprintf(qdir, sizeof qdir, "%s/" QUARANTINE_DIR, log_dir);
    snprintf(from, sizeof from, "%s/%s", log_dir, name);
    if (mkdir(qdir, 0755) != 0 && errno != EEXIST)
        return -errno;
    size_t cap = strlen(qdir) + strlen(name) + 32;
    char *to = xmalloc(cap);
    snprintf(to, cap, "%s/%s", qdir, name);
    if (access(to, F_OK) == 0)
        snprintf(to, cap, "%s/%s.%lld", qdir, name, (long long)time_wall_ms());
    if (rename(from, to) != 0) {
        int rc = -errno;
        free(to);
        return rc;
    }
    int rc = fsync_dir(log_dir);
    if (rc == 0)
        rc = fsync_dir(qdir);
    *moved_to = to;
    return rc;
}
