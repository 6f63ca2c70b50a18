/*
 * Checkpoint files in Kafka's text format, written atomically (tmp file, fsync, rename,
 * fsync of the directory) so a crash leaves either the old or the new version:
 *   recovery-point-offset-checkpoint / log-start-offset-checkpoint:
 *     "0\n<count>\n<topic> <partition> <offset>\n..."
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "storage/storage_internal.h"

int atomic_write_file(const char *path, const char *data, size_t len, bool do_sync)
{
    size_t n = strlen(path) + 5;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp", path);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0 && do_sync && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0 && do_sync)
        rc = fsync_parent_dir(path);
    if (rc != 0) {
        say_error_ratelimited(SUBSYS, "cannot write %s: %s", path, strerror(-rc));
        unlink(tmp);
    }
out:
    if (fd < 0)
        say_error_ratelimited(SUBSYS, "cannot create %s: %s", tmp, strerror(-rc));
    free(tmp);
    return rc;
}

int ckpt_write(const char *path, const struct ckpt_entry *entries, size_t n)
{
    struct buf b;
    buf_init(&b);
    char line[512];
    int k = snprintf(line, sizeof(line), "0\n%zu\n", n);
    buf_append(&b, line, (size_t)k);
    for (size_t i = 0; i < n; i++) {
        k = snprintf(line, sizeof(line), " %" PRId32 " %" PRId64 "\n", entries[i].partition,
                     entries[i].offset);
        buf_append(&b, entries[i].topic, strlen(entries[i].topic));
        buf_append(&b, line, (size_t)k);
    }
    int rc = atomic_write_file(path, (const char *)b.data, b.len, true);
    buf_free(&b);
    return rc;
}

/* Reads a whole small file into a NUL-terminated malloc'd string. */
static int slurp(const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    struct buf b;
    buf_init(&b);
    char tmp[4096];
    size_t r;
    while ((r = fread(tmp, 1, sizeof(tmp), f)) > 0)
        buf_append(&b, tmp, r);
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    buf_append(&b, "", 1);
    *out = (char *)b.data;
    return rc;
}

int ckpt_read(const char *path, struct ckpt_entry **entries_out, size_t *n_out)
{
    *entries_out = NULL;
    *n_out = 0;
    char *text;
    int rc = slurp(path, &text);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    long long version, count;
    struct ckpt_entry *e = NULL;
    size_t n = 0;
    if (!line || sscanf(line, "%lld", &version) != 1 || version != 0)
        goto bad;
    line = strtok_r(NULL, "\n", &save);
    if (!line || sscanf(line, "%lld", &count) != 1 || count < 0 || count > 10000000)
        goto bad;
    e = xcalloc((size_t)count + 1, sizeof(*e));
    for (; n < (size_t)count; n++) {
        line = strtok_r(NULL, "\n", &save);
        if (!line)
            goto bad;
        char *sp2 = strrchr(line, ' ');
        if (!sp2 || sp2 == line)
            goto bad;
        *sp2 = '\0';
        char *sp1 = strrchr(line, ' ');
        if (!sp1 || sp1 == line)
            goto bad;
        *sp1 = '\0';
        int64_t part, off;
        if (parse_i64(sp1 + 1, &part) != 0 || parse_i64(sp2 + 1, &off) != 0 || part < 0 ||
            part > INT32_MAX)
            goto bad;
        e[n].topic = xstrdup(line);
        e[n].partition = (int32_t)part;
        e[n].offset = off;
    }
    free(text);
    *entries_out = e;
    *n_out = n;
    return 0;
bad:
    say_error(SUBSYS, "malformed checkpoint file %s", path);
    ckpt_free_entries(e, n);
    free(text);
    return STORAGE_ERR_CORRUPT;
}

void ckpt_free_entries(struct ckpt_entry *entries, size_t n)
{
    if (!entries)
        return;
    for (size_t i = 0; i < n; i++)
        free(entries[i].topic);
    free(entries);
}
