/*
 * make_seeds: writes a seed corpus for fuzz_request into the directory given
 * as argv[1], for every api in the generated table and every served version,
 * using the generated test fill functions:
 *   <Api>-v<N>-<seed>       a randomly filled request frame (header + body),
 *                           for the target's header-driven pass;
 *   <Api>-v<N>-req-<seed>,  the same request body, and a filled response body,
 *   <Api>-v<N>-resp-<seed>  behind the 3-byte selector of the target's second
 *                           pass (api table index, version offset | 0x80 for a
 *                           response, a spare byte), so the response decoders
 *                           start from valid messages too.
 * The selector seeds index proto_apis[], so they only mean the same api for a
 * fuzzer built from the same schema files; regenerate them after adding APIs.
 *
 * `make_seeds --compress DIR` writes the seeds of fuzz_decompress instead: each codec's
 * output (and raw snappy) behind its mode byte, and produce blobs of batches in every
 * codec behind the batch-mode byte for every target codec.
 *
 * `make_seeds --raft DIR` writes the seeds of fuzz_metadata_raft: metadata dirs written
 * through the quorum (a log of several starts, one whose log is a snapshot and entries
 * after it), each cleanly stopped and after a crash, packed as that target reads them.
 */
#include <dirent.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/quorum.h"
#include "proto/proto.h"
#include "storage/storage.h"

static int write_seed(const char *dir, const char *name, const struct buf *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* Records that compress well and carry keys (one batch without keys, for check_keys). */
static void sample_batch(struct buf *out, int n, bool keyed)
{
    struct record_in recs[16];
    static const char text[] = "fuzz seed record, repetitive enough to compress well";
    for (int i = 0; i < n; i++) {
        recs[i].key = keyed ? (struct slice){(const uint8_t *)"key", 3} : SLICE_NULL;
        recs[i].value = (struct slice){(const uint8_t *)text, sizeof text - 1};
    }
    batch_encode(out, recs, (size_t)n, 1700000000000);
}

static int compress_seeds(const char *dir)
{
    struct buf plain, b;
    buf_init(&plain);
    buf_init(&b);
    sample_batch(&plain, 8, true);
    const uint8_t *recs = plain.data + BATCH_HEADER_BYTES;
    size_t recs_len = plain.len - BATCH_HEADER_BYTES;
    int n = 0;
    char name[64];
    for (int codec = COMPRESS_NONE; codec <= COMPRESS_ZSTD; codec++) {
        buf_reset(&b);
        buf_put_i8(&b, (int8_t)codec);
        if (compress_encode((enum compress_codec)codec, codec == COMPRESS_LZ4 ? 9 : 3, recs,
                            recs_len, &b) != 0)
            return 1;
        snprintf(name, sizeof name, "decode-%s", compress_codec_name((enum compress_codec)codec));
        if (write_seed(dir, name, &b) != 0)
            return 1;
        n++;
    }
    /* Raw snappy, as librdkafka writes it. */
    buf_reset(&b);
    buf_put_i8(&b, COMPRESS_SNAPPY);
    size_t cap = snappy_max_compressed_length(recs_len);
    buf_reserve(&b, cap);
    if (snappy_compress((const char *)recs, recs_len, (char *)b.data + b.len, &cap) != SNAPPY_OK)
        return 1;
    b.len += cap;
    if (write_seed(dir, "decode-snappy-raw", &b) != 0)
        return 1;
    n++;
    /* A produce blob: one keyed batch per codec and a keyless one, rewritten to each
     * target (mode bit 3; bit 7: check keys). */
    struct buf blob, keyless;
    buf_init(&blob);
    buf_init(&keyless);
    sample_batch(&keyless, 3, false);
    for (int codec = COMPRESS_NONE; codec <= COMPRESS_ZSTD; codec++) {
        struct batch_recompress_opts o = {
            .target = (enum compress_codec)codec, .level = 1, .max_batch_bytes = 1 << 20};
        struct buf one;
        buf_init(&one);
        if (batch_recompress(plain.data, plain.len, &o, &one) != 0)
            return 1;
        buf_append(&blob, one.len ? one.data : plain.data, one.len ? one.len : plain.len);
        buf_free(&one);
    }
    buf_append(&blob, keyless.data, keyless.len);
    for (int target = 0; target <= 5; target++) {
        for (int keys = 0; keys < 2; keys++) {
            buf_reset(&b);
            buf_put_i8(&b, (int8_t)(0x08 | target << 4 | (keys ? 0x80 : 0)));
            buf_append(&b, blob.data, blob.len);
            snprintf(name, sizeof name, "batch-to-%d%s", target, keys ? "-keys" : "");
            if (write_seed(dir, name, &b) != 0)
                return 1;
            n++;
        }
    }
    compress_thread_cleanup();
    buf_free(&blob);
    buf_free(&keyless);
    buf_free(&plain);
    buf_free(&b);
    printf("wrote %d seeds to %s\n", n, dir);
    return 0;
}

/* ---- fuzz_metadata_raft ---- */

static void ignore_entry(void *arg, struct slice entry, bool own)
{
    (void)arg;
    (void)entry;
    (void)own;
}

/* One start of the quorum in d that proposes n entries; a crash leaves no marker. */
static int quorum_run(const char *d, int n, bool crash)
{
    struct quorum *q;
    if (quorum_open(d,
                    &(struct quorum_config){
                        .node_id = 1, .salvage = false, .apply = ignore_entry, .arg = NULL},
                    &q, NULL) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char entry[64];
        int len = snprintf(entry, sizeof entry, "seed entry %d of a metadata change", i);
        if (quorum_propose(q, (const uint8_t *)entry, (size_t)len) != 0)
            return -1;
        while (quorum_write_pending(q))
            quorum_advance(q, quorum_persist(q));
        if (quorum_take_outcome(q) != QUORUM_APPLIED)
            return -1;
    }
    quorum_close(q);
    if (crash) {
        char marker[4200];
        snprintf(marker, sizeof marker, "%s/clean-shutdown", d);
        unlink(marker);
    }
    return 0;
}

static bool read_whole(const char *d, const char *name, struct buf *out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", d, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(out, chunk, n);
    fclose(f);
    return true;
}

/* Packs d as fuzz_metadata_raft reads it: flags, u32 snapshot length, snapshot, raft.log. */
static int pack_raft_dir(const char *d, const char *out_dir, const char *name, uint8_t extra)
{
    struct buf snap, log, seed;
    buf_init(&snap);
    buf_init(&log);
    buf_init(&seed);
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/clean-shutdown", d);
    uint8_t flags = extra | (access(marker, F_OK) == 0 ? 0x01 : 0);
    if (read_whole(d, "snapshot", &snap))
        flags |= 0x02;
    if (!read_whole(d, "raft.log", &log))
        flags |= 0x08;
    buf_put_i8(&seed, (int8_t)flags);
    buf_put_u32(&seed, (uint32_t)snap.len);
    buf_append(&seed, snap.data, snap.len);
    buf_append(&seed, log.data, log.len);
    int rc = write_seed(out_dir, name, &seed);
    buf_free(&snap);
    buf_free(&log);
    buf_free(&seed);
    return rc;
}

static int raft_seeds(const char *out_dir)
{
    char d[] = "/tmp/samsa-raft-seeds-XXXXXX";
    if (!mkdtemp(d))
        return 1;
    say_set_level(SAY_LEVEL_ERROR);
    int n = 0;
    /* Three starts, each electing itself at a new term and proposing. */
    if (quorum_run(d, 3, false) != 0 || quorum_run(d, 2, false) != 0 || quorum_run(d, 1, false))
        return 1;
    n += pack_raft_dir(d, out_dir, "raft-log-clean", 0) == 0;
    if (quorum_run(d, 2, true) != 0)
        return 1;
    n += pack_raft_dir(d, out_dir, "raft-log-crash", 0) == 0;
    n += pack_raft_dir(d, out_dir, "raft-log-torn", 0x04) == 0;
    /* A log replaced by a snapshot (as `samsa metadata recover` writes it), then used. */
    struct quorum *q;
    if (quorum_open(d,
                    &(struct quorum_config){
                        .node_id = 1, .salvage = true, .apply = ignore_entry, .arg = NULL},
                    &q, NULL) != 0)
        return 1;
    struct slice entries[2] = {{(const uint8_t *)"snapshot entry one", 18},
                               {(const uint8_t *)"two", 3}};
    char *kept = NULL;
    if (quorum_replace(q, entries, 2, &kept) != 0)
        return 1;
    quorum_close(q);
    if (kept)
        unlink(kept);
    free(kept);
    if (quorum_run(d, 2, false) != 0)
        return 1;
    n += pack_raft_dir(d, out_dir, "raft-snapshot-clean", 0) == 0;
    if (quorum_run(d, 1, true) != 0)
        return 1;
    n += pack_raft_dir(d, out_dir, "raft-snapshot-crash", 0) == 0;
    n += pack_raft_dir(d, out_dir, "raft-snapshot-torn", 0x04) == 0;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    if (system(cmd) != 0)
        return 1;
    printf("wrote %d seeds to %s\n", n, out_dir);
    return n == 6 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--compress") == 0)
        return compress_seeds(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--raft") == 0)
        return raft_seeds(argv[2]);
    if (argc != 2) {
        fprintf(stderr,
                "usage: make_seeds DIR | make_seeds --compress DIR | make_seeds --raft DIR\n");
        return 2;
    }
    int n = 0;
    for (size_t i = 0; i < PROTO_API_COUNT; i++) {
        const struct proto_api *api = &proto_apis[i];
        const struct proto_codec *c = proto_codec_find(api->api_key);
        for (int16_t v = api->min_version; v <= api->max_version; v++) {
            for (uint64_t seed = 1; seed <= 4; seed++) {
                char name[256];
                struct arena a;
                arena_init(&a);
                struct buf b;
                buf_init(&b);

                /* Header + request body. */
                void *m = arena_alloc(&a, c->request_size);
                struct proto_fill pf = {.seed = seed, .arena = &a};
                proto_fill_request(&pf, api->api_key, v, m);
                struct request_header h = {api->api_key, v, (int32_t)seed, slice_from_cstr("seed")};
                proto_request_header_encode(&b, &h);
                c->request_encode(&b, v, m);
                snprintf(name, sizeof name, "%s-v%d-%llu", api->name, v, (unsigned long long)seed);
                if (write_seed(argv[1], name, &b) != 0)
                    return 1;
                n++;

                /* Selector + request body, selector + response body. */
                for (int response = 0; response < 2; response++) {
                    buf_reset(&b);
                    buf_put_i8(&b, (int8_t)i);
                    buf_put_i8(&b, (int8_t)((v - api->min_version) | (response ? 0x80 : 0)));
                    buf_put_i8(&b, 0);
                    if (response) {
                        void *rm = arena_alloc(&a, c->response_size);
                        struct proto_fill rf = {.seed = seed, .arena = &a};
                        proto_fill_response(&rf, api->api_key, v, rm);
                        c->response_encode(&b, v, rm);
                    } else {
                        c->request_encode(&b, v, m);
                    }
                    snprintf(name, sizeof name, "%s-v%d-%s-%llu", api->name, v,
                             response ? "resp" : "req", (unsigned long long)seed);
                    if (write_seed(argv[1], name, &b) != 0)
                        return 1;
                    n++;
                }
                buf_free(&b);
                arena_free(&a);
            }
        }
    }
    printf("wrote %d seeds to %s\n", n, argv[1]);
    return 0;
}
