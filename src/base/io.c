/* File reads for the storage and fetch paths: pread until done, retrying EINTR. */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <unistd.h>

int open_parent_dir(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = errno;
    free(copy);
    errno = err;
    return fd;
}

static int fsync_fd_and_close(int fd)
{
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int fsync_dir(const char *dir)
{
    return fsync_fd_and_close(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

int fsync_parent_dir(const char *path)
{
    return fsync_fd_and_close(open_parent_dir(path));
}

long pread_full(int fd, void *buf, size_t len, int64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(pos + (int64_t)done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (long)done;
}

int pread_exact(int fd, void *buf, size_t len, int64_t pos)
{
    long r = pread_full(fd, buf, len, pos);
    if (r < 0)
        return (int)r;
    return (size_t)r == len ? 0 : -EIO;
}
