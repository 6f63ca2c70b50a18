/* Bump allocator for per-request data (decoded requests, response structs): many small
 * allocations, one free at the end of the request. */
#include "base/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK_BYTES 8192

struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    size_t cap;
    _Alignas(16) uint8_t data[];
};

void arena_init(struct arena *a)
{
    *a = (struct arena){0};
}

void *arena_alloc(struct arena *a, size_t size_bytes)
{
    size_t n = (size_bytes + 7) & ~(size_t)7;
    ASSERT(n >= size_bytes);
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK_BYTES ? n : ARENA_CHUNK_BYTES;
        c = xmalloc(sizeof *c + cap);
        c->used = 0;
        c->cap = cap;
        /* A large one-off allocation goes behind the current chunk so the head keeps
         * serving small allocations. */
        if (a->head && n > ARENA_CHUNK_BYTES) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    a->total_bytes += n;
    memset(p, 0, size_bytes);
    return p;
}

void *arena_memdup(struct arena *a, const void *p, size_t len)
{
    void *q = arena_alloc(a, len);
    if (len)
        memcpy(q, p, len);
    return q;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *q = arena_alloc(a, len + 1);
    memcpy(q, s, len);
    q[len] = '\0';
    return q;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *q = arena_alloc(a, (size_t)MAX(n, 0) + 1);
    va_start(ap, fmt);
    vsnprintf(q, (size_t)MAX(n, 0) + 1, fmt, ap);
    va_end(ap);
    return q;
}

void arena_free(struct arena *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    *a = (struct arena){0};
}
