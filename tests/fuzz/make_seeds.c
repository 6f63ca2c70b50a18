/*
 * make_seeds: writes a seed corpus for fuzz_request into the directory given
 * as argv[1]: for every api and version, a few randomly filled requests
 * (header + body), using the generated test fill functions.
 */
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    int n = 0;
    for (size_t i = 0; i < PROTO_API_COUNT; i++) {
        const struct proto_api *api = &proto_apis[i];
        const struct proto_codec *c = proto_codec_find(api->api_key);
        for (int16_t v = api->min_version; v <= api->max_version; v++) {
            for (uint64_t seed = 1; seed <= 4; seed++) {
                struct arena a;
                arena_init(&a);
                void *m = arena_alloc(&a, c->request_size);
                struct proto_fill pf = {.seed = seed, .arena = &a};
                proto_fill_request(&pf, api->api_key, v, m);
                struct buf b;
                buf_init(&b);
                struct request_header h = {api->api_key, v, (int32_t)seed, slice_from_cstr("seed")};
                proto_request_header_encode(&b, &h);
                c->request_encode(&b, v, m);
                char path[4096];
                snprintf(path, sizeof path, "%s/%s-v%d-%llu", argv[1], api->name, v,
                         (unsigned long long)seed);
                FILE *f = fopen(path, "wb");
                if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0) {
                    perror(path);
                    return 1;
                }
                n++;
                buf_free(&b);
                arena_free(&a);
            }
        }
    }
    printf("wrote %d seeds to %s\n", n, argv[1]);
    return 0;
}
