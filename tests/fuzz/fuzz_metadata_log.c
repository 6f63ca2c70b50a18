/*
 * fuzz_metadata_log: libFuzzer target for the metadata log as start-up and
 * `samsa metadata recover` read it (cluster_open, strict and salvage). The harness
 * writes the right CRC into each frame the input describes, so the fuzzer reaches the
 * record decoder behind the framing; the first input byte chooses whether the file was
 * left by a clean stop. Properties: a strict open either replays or refuses with
 * CLUSTER_ERR_CORRUPT and then leaves the file as it was; a salvage always opens, and
 * the log it rewrites opens strictly again with the same topics.
 * Build: cmake -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON, target fuzz_metadata_log.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "fuzz_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", fuzz_dir, name);
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[128];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        abort();
}

static size_t read_file(const char *name, uint8_t **out)
{
    char path[128];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    struct buf b;
    buf_init(&b);
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    *out = b.data;
    return b.len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_dir[0]) {
        fuzz_dir_init("metalog");
        say_set_level(SAY_LEVEL_ERROR + 1);
    }
    if (size < 1)
        return 0;
    bool clean = data[0] & 1;
    uint8_t *in = malloc(size);
    memcpy(in, data + 1, size - 1);
    size_t len = size - 1;
    /* Make each frame's CRC right: u32 length (clamped to what is left), u32 CRC. */
    for (size_t pos = 0; pos + 8 <= len;) {
        uint32_t n = be32_read(in + pos) % (uint32_t)(len - pos - 8 + 1);
        be32_write(in + pos, n);
        be32_write(in + pos + 4, crc32c(0, in + pos + 8, n));
        pos += 8 + n;
    }
    fuzz_dir_clear();
    write_file("metadata.log", in, len);
    if (clean)
        write_file("clean-shutdown", NULL, 0);

    struct cluster_options o = {.metadata_dir = fuzz_dir, .node_id = 1};
    struct cluster *c = NULL;
    int rc = cluster_open(&o, &c);
    if (rc == CLUSTER_ERR_CORRUPT) {
        uint8_t *after;
        size_t n = read_file("metadata.log", &after);
        if (n != len || memcmp(after, in, len) != 0)
            abort(); /* refusing must change nothing */
        free(after);
    } else if (rc != 0) {
        abort();
    }
    cluster_close(c);

    fuzz_dir_clear();
    write_file("metadata.log", in, len);
    o.salvage = true;
    if (cluster_open(&o, &c) != 0)
        abort();
    size_t topics = cluster_topic_count(c);
    char *kept = NULL;
    if (cluster_rewrite_log(c, 1, &kept) != 0)
        abort();
    free(kept);
    cluster_close(c);
    o.salvage = false;
    if (cluster_open(&o, &c) != 0 || cluster_topic_count(c) != topics)
        abort();
    cluster_close(c);
    free(in);
    return 0;
}
