/*
 * fuzz_request: libFuzzer target for the request path of the protocol codec.
 * Input is a request frame without its length prefix: header, then body. The
 * header decoder picks the api and version; the generated body decoder runs
 * on the rest. Whatever decodes must re-encode to bytes that decode again to
 * the same bytes (the encoder output is canonical). A second pass uses the
 * first three bytes to pick any api/version and direction (request or
 * response), so every decoder sees arbitrary bytes even without a valid
 * header. make_seeds writes seeds for both passes (request frames; selector +
 * request or response body) for every api in the schema files. Build: cmake
 * -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

static void check_body(const struct proto_codec *c, bool response, int16_t version,
                       const uint8_t *data, size_t size)
{
    struct arena a;
    arena_init(&a);
    size_t sz = response ? c->response_size : c->request_size;
    void *m = arena_alloc(&a, sz);
    struct reader r;
    rd_init(&r, data, size);
    int (*dec)(struct reader *, int16_t, struct arena *, void *) =
        response ? c->response_decode : c->request_decode;
    void (*enc)(struct buf *, int16_t, const void *) =
        response ? c->response_encode : c->request_encode;
    if (dec(&r, version, &a, m) == 0) {
        struct buf b1, b2;
        buf_init(&b1);
        buf_init(&b2);
        enc(&b1, version, m);
        void *m2 = arena_alloc(&a, sz);
        struct reader r2;
        rd_init(&r2, b1.data, b1.len);
        if (dec(&r2, version, &a, m2) != 0 || rd_remaining(&r2) != 0)
            abort();
        enc(&b2, version, m2);
        if (b1.len != b2.len || (b1.len && memcmp(b1.data, b2.data, b1.len) != 0))
            abort();
        buf_free(&b1);
        buf_free(&b2);
    }
    arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r;
    rd_init(&r, data, size);
    struct request_header h;
    if (proto_request_header_decode(&r, &h) == PROTO_HDR_OK) {
        const struct proto_codec *c = proto_codec_find(h.api_key);
        if (!c)
            abort(); /* header said supported */
        check_body(c, false, h.api_version, data + r.pos, size - r.pos);
    }
    if (size >= 3) {
        const struct proto_api *api = &proto_apis[data[0] % PROTO_API_COUNT];
        int span = api->max_version - api->min_version + 1;
        int16_t v = (int16_t)(api->min_version + (data[1] & 0x7f) % span);
        check_body(proto_codec_find(api->api_key), data[1] & 0x80, v, data + 3, size - 3);
    }
    return 0;
}
