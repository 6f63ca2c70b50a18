/*
 * header.c: request and response headers, and lookups in the generated API
 * table. Request header v1: api_key int16, api_version int16, correlation_id
 * int32, client_id nullable string (always int16-length, even in v2); v2 adds
 * a tagged-field section. Response header v0: correlation_id; v1 adds tagged
 * fields. ApiVersions responses always use v0 so that clients which do not
 * yet know our versions can parse them (KIP-511).
 */
#include "proto/proto.h"
#include "proto/codec.h"

const struct proto_api *proto_api_find(int16_t api_key)
{
    for (size_t i = 0; i < PROTO_API_COUNT; i++)
        if (proto_apis[i].api_key == api_key)
            return &proto_apis[i];
    return NULL;
}

bool proto_is_flexible(int16_t api_key, int16_t version)
{
    const struct proto_api *api = proto_api_find(api_key);
    return api && api->flexible_min_version >= 0 && version >= api->flexible_min_version;
}

bool proto_version_supported(int16_t api_key, int16_t version)
{
    const struct proto_api *api = proto_api_find(api_key);
    return api && version >= api->min_version && version <= api->max_version;
}

int proto_request_header_decode(struct reader *r, struct request_header *out)
{
    out->api_key = rd_i16(r);
    out->api_version = rd_i16(r);
    out->correlation_id = rd_i32(r);
    out->client_id = pc_read_string(r, false, true);
    if (r->err)
        return PROTO_HDR_MALFORMED;
    if (!proto_version_supported(out->api_key, out->api_version))
        return PROTO_HDR_UNSUPPORTED;
    if (proto_is_flexible(out->api_key, out->api_version)) {
        /* No tagged fields are defined for the request header; skip all. */
        uint64_t n = pc_read_tag_count(r);
        for (uint64_t i = 0; i < n && !r->err; i++) {
            struct reader sub;
            (void)pc_read_tag(r, &sub);
        }
        if (r->err)
            return PROTO_HDR_MALFORMED;
    }
    return PROTO_HDR_OK;
}

void proto_response_header_encode(struct buf *b, int16_t api_key, int16_t api_version,
                                  int32_t correlation_id)
{
    buf_put_i32(b, correlation_id);
    if (api_key != API_KEY_API_VERSIONS && proto_is_flexible(api_key, api_version))
        buf_put_uvarint(b, 0);
}

int32_t proto_response_header_decode(struct reader *r, int16_t api_key, int16_t api_version)
{
    int32_t correlation_id = rd_i32(r);
    if (api_key != API_KEY_API_VERSIONS && proto_is_flexible(api_key, api_version)) {
        for (uint64_t n = rd_uvarint(r); n > 0 && !r->err; n--) {
            (void)rd_uvarint(r); /* tag */
            rd_skip(r, rd_uvarint(r));
        }
    }
    return correlation_id;
}

void proto_request_header_encode(struct buf *b, const struct request_header *h)
{
    buf_put_i16(b, h->api_key);
    buf_put_i16(b, h->api_version);
    buf_put_i32(b, h->correlation_id);
    pc_write_string(b, false, true, h->client_id);
    if (proto_is_flexible(h->api_key, h->api_version))
        buf_put_uvarint(b, 0);
}
