/* Open-addressing hash map (linear probing, tombstones) from byte strings to
 * pointers. Small and predictable; rebuilt at 3/4 load counting tombstones. */
#include "base/base.h"

#include <stdlib.h>
#include <string.h>

struct hmap_slot {
    uint8_t *key; /* NULL: empty; TOMBSTONE: deleted */
    size_t key_len;
    uint64_t hash;
    void *value;
};

static uint8_t tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

uint64_t hash_bytes(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void hmap_init(struct hmap *m)
{
    *m = (struct hmap){0};
}

void hmap_free(struct hmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
            free(m->slots[i].key);
    free(m->slots);
    *m = (struct hmap){0};
}

static struct hmap_slot *find(const struct hmap *m, struct slice key, uint64_t h)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct hmap_slot *s = &m->slots[i];
        if (s->key == NULL)
            return NULL;
        if (s->key != TOMBSTONE && s->hash == h && s->key_len == key.len &&
            memcmp(s->key, key.ptr, key.len) == 0)
            return s;
    }
}

static void grow(struct hmap *m)
{
    size_t cap = m->cap ? m->cap : 16;
    while (m->count * 2 >= cap)
        cap *= 2;
    struct hmap_slot *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = xcalloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->used = m->count;
    for (size_t i = 0; i < old_cap; i++) {
        struct hmap_slot *s = &old[i];
        if (!s->key || s->key == TOMBSTONE)
            continue;
        size_t j = s->hash & (cap - 1);
        while (m->slots[j].key)
            j = (j + 1) & (cap - 1);
        m->slots[j] = *s;
    }
    free(old);
}

void *hmap_get(const struct hmap *m, struct slice key)
{
    struct hmap_slot *s = find(m, key, hash_bytes(key.ptr, key.len));
    return s ? s->value : NULL;
}

void hmap_put(struct hmap *m, struct slice key, void *value)
{
    uint64_t h = hash_bytes(key.ptr, key.len);
    struct hmap_slot *s = find(m, key, h);
    if (s) {
        s->value = value;
        return;
    }
    if ((m->used + 1) * 4 >= m->cap * 3)
        grow(m);
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        m->used++;
    uint8_t *k = xmalloc(key.len ? key.len : 1);
    if (key.len)
        memcpy(k, key.ptr, key.len);
    m->slots[i] = (struct hmap_slot){k, key.len, h, value};
    m->count++;
}

void *hmap_remove(struct hmap *m, struct slice key)
{
    struct hmap_slot *s = find(m, key, hash_bytes(key.ptr, key.len));
    if (!s)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMBSTONE;
    s->value = NULL;
    m->count--;
    return v;
}

bool hmap_next(const struct hmap *m, size_t *iter, struct slice *key, void **value)
{
    while (*iter < m->cap) {
        struct hmap_slot *s = &m->slots[(*iter)++];
        if (s->key && s->key != TOMBSTONE) {
            *key = (struct slice){s->key, s->key_len};
            *value = s->value;
            return true;
        }
    }
    return false;
}
