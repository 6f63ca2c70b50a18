/* Allocation wrappers that abort on exhaustion, and the assertion failure path. */
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void base_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "samsa: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}

static _Noreturn void out_of_memory(size_t size_bytes)
{
    fprintf(stderr, "samsa: out of memory allocating %zu bytes\n", size_bytes);
    abort();
}

void *xmalloc(size_t size_bytes)
{
    void *p = malloc(size_bytes ? size_bytes : 1);
    if (!p)
        out_of_memory(size_bytes);
    return p;
}

void *xcalloc(size_t count, size_t size_bytes)
{
    void *p = calloc(count ? count : 1, size_bytes ? size_bytes : 1);
    if (!p)
        out_of_memory(count * size_bytes);
    return p;
}

void *xrealloc(void *ptr, size_t size_bytes)
{
    void *p = realloc(ptr, size_bytes ? size_bytes : 1);
    if (!p)
        out_of_memory(size_bytes);
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

struct slice slice_from_cstr(const char *s)
{
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

bool slice_eq(struct slice a, struct slice b)
{
    if ((a.ptr == NULL) != (b.ptr == NULL))
        return false;
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool slice_eq_cstr(struct slice a, const char *s)
{
    size_t n = strlen(s);
    return a.ptr != NULL && a.len == n && memcmp(a.ptr, s, n) == 0;
}

char *slice_to_cstr(struct slice s)
{
    return xstrndup((const char *)(s.ptr ? s.ptr : (const uint8_t *)""), s.len);
}

char *xpath_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}
