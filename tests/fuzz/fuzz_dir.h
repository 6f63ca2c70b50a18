/* A scratch directory for fuzz targets that feed their input to code reading files (the
 * metadata logs): made once per process, emptied before each input, removed at exit, so
 * that repeated short runs leave nothing behind. */
#ifndef SAMSA_TESTS_FUZZ_DIR_H
#define SAMSA_TESTS_FUZZ_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[64];

static void fuzz_dir_clear(void)
{
    DIR *d = opendir(fuzz_dir);
    if (!d)
        abort();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", fuzz_dir, e->d_name);
        if (unlink(path) != 0)
            abort();
    }
    closedir(d);
}

static void fuzz_dir_remove(void)
{
    fuzz_dir_clear();
    rmdir(fuzz_dir);
}

/* Makes the directory (/tmp/samsa-fuzz-<what>-XXXXXX) on the first call. */
static void fuzz_dir_init(const char *what)
{
    if (fuzz_dir[0])
        return;
    snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/samsa-fuzz-%s-XXXXXX", what);
    if (!mkdtemp(fuzz_dir))
        abort();
    atexit(fuzz_dir_remove);
}

#endif
