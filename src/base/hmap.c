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

/* Java hashes the UTF-16 code units of the string; the broker decoded the wire bytes as
 * UTF-8, so we do the same (malformed bytes become U+FFFD as Java's decoder does). */
int32_t java_string_hash(struct slice s)
{
    uint32_t h = 0;
    size_t i = 0;
    while (i < s.len) {
        uint32_t c = s.ptr[i];
        size_t n = 0;
        uint32_t cp = 0xFFFD;
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        }
        bool ok = n > 0 && i + n <= s.len;
        for (size_t k = 1; ok && k < n; k++) {
            if ((s.ptr[i + k] & 0xC0) != 0x80)
                ok = false;
            else
                cp = (cp << 6) | (s.ptr[i + k] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (ok && (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
            ok = false;
        if (!ok) {
            cp = 0xFFFD;
            n = 1;
        }
        i += n;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xD800 + (cp >> 10));
            h = 31 * h + (0xDC00 + (cp & 0x3FF));
        } else {
            h = 31 * h + cp;
        }
    }
    return (int32_t)h;
}

int32_t kafka_partition_for(struct slice key, int32_t n)
{
    ASSERT(n > 0);
    int32_t h = java_string_hash(key);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return a % n;
}
