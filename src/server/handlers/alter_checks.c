/* The checks AlterConfigs and IncrementalAlterConfigs share, made on each resource
 * before any change, with Kafka's answers (ConfigAdminManager.preprocess and the
 * resource checks of Kafka's brokers): a resource named twice in the request (every
 * occurrence), a config named twice in one resource, or a null value where the
 * operation needs one make the resource INVALID_REQUEST; only topics can be changed
 * (config_alter_refusal); "" (Kafka's cluster-wide defaults) and invalid topic names
 * are refused. */
#include "server/internal.h"

#include <stdint.h>
#include <string.h>

#define MAX_NAMED_NULLS 8 /* config names an INVALID_REQUEST message lists */

void alter_mark_duplicates(struct request *req, struct alter_resource *rs, int32_t n)
{
    struct hmap seen;
    hmap_init(&seen);
    for (int32_t i = 0; i < n; i++) {
        size_t len = rs[i].name.len + 1;
        uint8_t *key = arena_alloc(&req->arena, len);
        key[0] = (uint8_t)rs[i].type;
        if (len > 1)
            memcpy(key + 1, rs[i].name.ptr, len - 1);
        struct slice k = {key, len};
        void *first = hmap_get(&seen, k);
        if (first) {
            rs[(uintptr_t)first - 1].duplicate = true;
            rs[i].duplicate = true;
        } else {
            hmap_put(&seen, k, (void *)(uintptr_t)(i + 1));
        }
    }
    hmap_free(&seen);
}

/* A config named twice, or null values: INVALID_REQUEST with *message set. */
static int16_t check_configs(struct request *req, const struct alter_resource *r,
                             struct slice *message)
{
    struct hmap names;
    hmap_init(&names);
    bool dup = false;
    for (int32_t c = 0; c < r->n_configs && !dup; c++) {
        dup = hmap_get(&names, r->config_names[c]) != NULL;
        hmap_put(&names, r->config_names[c], (void *)1);
    }
    hmap_free(&names);
    if (dup) {
        *message = slice_from_cstr("Error due to duplicate config keys");
        return KERR_INVALID_REQUEST;
    }
    /* The message names them, as Kafka's does; the first few only, so that its size
     * stays bounded whatever the request holds. */
    const char *nulls = NULL;
    int named = 0;
    for (int32_t c = 0; c < r->n_configs; c++) {
        struct slice name = r->config_names[c];
        if (!r->null_value[c])
            continue;
        if (named++ == MAX_NAMED_NULLS)
            nulls = arena_printf(&req->arena, "%s, ...", nulls);
        else if (named <= MAX_NAMED_NULLS)
            nulls = arena_printf(&req->arena, "%s%s%.*s", nulls ? nulls : "", nulls ? ", " : "",
                                 (int)MIN(name.len, 255), (const char *)name.ptr);
    }
    if (nulls) {
        *message =
            slice_from_cstr(arena_printf(&req->arena, "Null value not supported for : %s", nulls));
        return KERR_INVALID_REQUEST;
    }
    return KERR_NONE;
}

int16_t alter_check_resource(struct request *req, const struct alter_resource *r,
                             struct slice *message)
{
    if (r->duplicate) {
        *message = slice_from_cstr("Each resource must appear at most once.");
        return KERR_INVALID_REQUEST;
    }
    int16_t err = check_configs(req, r, message);
    if (err != KERR_NONE)
        return err;
    if (r->type != CONFIG_RESOURCE_TOPIC)
        return config_alter_refusal(r->type, message);
    /* Kafka keeps "" for cluster-wide defaults, which topics do not have. */
    if (r->name.len == 0) {
        *message = slice_from_cstr("Default topic resources are not allowed.");
        return KERR_INVALID_REQUEST;
    }
    const char *bad_name = cluster_topic_name_error(r->name);
    if (bad_name) {
        *message = slice_from_cstr(bad_name);
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    return KERR_NONE;
}
