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
 */
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"

static int write_seed(const char *dir, const char *name, const struct buf *b) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

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
