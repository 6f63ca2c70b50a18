/*
 * fsync_probe: an LD_PRELOAD library for test_loop_fsync.py, which checks that the event
 * loop never waits on the disk (STYLE.md: no fsync on the loop thread).
 *
 * It interposes fsync, fdatasync, syncfs and sync_file_range. A call made on the
 * process's main thread — samsa-server runs its event loop there — appends one line,
 * "<call> <path of the fd>", to the file named by SAMSA_FSYNC_PROBE_LOG; then the real
 * call runs. Calls on other threads (the syncer, the cleaner) are not recorded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static void note(const char *call, int fd)
{
    if (syscall(SYS_gettid) != getpid())
        return;
    const char *log = getenv("SAMSA_FSYNC_PROBE_LOG");
    if (!log)
        return;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = '\0';
    char line[4200];
    int len = snprintf(line, sizeof line, "%s %s\n", call, path);
    int out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0)
        return;
    /* One write with O_APPEND: lines stay whole. A failed write only shortens the
     * report; the real sync still runs. */
    ssize_t written = write(out, line, (size_t)len);
    (void)written;
    close(out);
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

int fsync(int fd)
{
    note("fsync", fd);
    return REAL("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
    note("fdatasync", fd);
    return REAL("fdatasync", int (*)(int))(fd);
}

int syncfs(int fd)
{
    note("syncfs", fd);
    return REAL("syncfs", int (*)(int))(fd);
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags)
{
    note("sync_file_range", fd);
    return REAL("sync_file_range", int (*)(int, off_t, off_t, unsigned int))(fd, offset, nbytes,
                                                                             flags);
}
