/* Java .properties parsing for server.properties: key=value or key: value or
 * "key value", '#' and '!' comments, backslash line continuations and escapes. */
#include "base/base.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void props_set(struct props *p, const char *key, const char *value)
{
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->entries[i].key, key) == 0) {
            free(p->entries[i].value);
            p->entries[i].value = xstrdup(value);
            p->entries[i].line = 0;
            return;
        }
    }
    p->entries = xrealloc(p->entries, (p->count + 1) * sizeof *p->entries);
    p->entries[p->count++] = (struct props_entry){xstrdup(key), xstrdup(value), 0};
}

static void set_with_line(struct props *p, const char *key, const char *value, int line)
{
    props_set(p, key, value);
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->entries[i].key, key) == 0)
            p->entries[i].line = line;
}

const char *props_get(const struct props *p, const char *key)
{
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->entries[i].key, key) == 0)
            return p->entries[i].value;
    return NULL;
}

void props_free(struct props *p)
{
    for (size_t i = 0; i < p->count; i++) {
        free(p->entries[i].key);
        free(p->entries[i].value);
    }
    free(p->entries);
    *p = (struct props){0};
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\f';
}

/* Unescapes one logical line (continuations already joined) into key and value. */
static void parse_logical_line(struct props *p, const char *s, size_t len, int line_no)
{
    struct buf key, value;
    buf_init(&key);
    buf_init(&value);
    size_t i = 0;
    while (i < len && is_space(s[i]))
        i++;
    struct buf *out = &key;
    bool seen_sep = false;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < len) {
            char e = s[++i];
            char map = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
            buf_append(out, &map, 1);
            continue;
        }
        if (!seen_sep && (c == '=' || c == ':' || is_space(c))) {
            seen_sep = true;
            out = &value;
            while (i + 1 < len && is_space(s[i + 1]))
                i++;
            if (is_space(c) && i + 1 < len && (s[i + 1] == '=' || s[i + 1] == ':')) {
                i++;
                while (i + 1 < len && is_space(s[i + 1]))
                    i++;
            }
            continue;
        }
        buf_append(out, &c, 1);
    }
    /* Trailing whitespace of values is kept by Java; we trim it, as it is never wanted
     * in a broker config and is a common copy-paste accident. */
    while (value.len && is_space((char)value.data[value.len - 1]))
        value.len--;
    if (key.len) {
        char *k = xstrndup((const char *)key.data, key.len);
        char *v = xstrndup(value.len ? (const char *)value.data : "", value.len);
        set_with_line(p, k, v, line_no);
        free(k);
        free(v);
    }
    buf_free(&key);
    buf_free(&value);
}

int props_parse(struct props *p, const char *text, size_t len)
{
    struct buf logical;
    buf_init(&logical);
    int line_no = 0, start_line = 0;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && text[end] != '\n')
            end++;
        line_no++;
        size_t a = i, b = end;
        if (b > a && text[b - 1] == '\r')
            b--;
        i = end + 1;
        if (logical.len == 0) {
            while (a < b && is_space(text[a]))
                a++;
            if (a == b || text[a] == '#' || text[a] == '!')
                continue;
            start_line = line_no;
        } else {
            while (a < b && is_space(text[a]))
                a++;
        }
        /* An odd number of trailing backslashes continues the line. */
        size_t bs = 0;
        while (bs < b - a && text[b - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 1) {
            buf_append(&logical, text + a, b - a - 1);
            continue;
        }
        buf_append(&logical, text + a, b - a);
        parse_logical_line(p, (const char *)logical.data, logical.len, start_line);
        buf_reset(&logical);
    }
    if (logical.len)
        parse_logical_line(p, (const char *)logical.data, logical.len, start_line);
    buf_free(&logical);
    return 0;
}

int props_load_file(struct props *p, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        say_error("config", "cannot open config file %s: %s", path, strerror(e));
        return -e;
    }
    struct buf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    int err = ferror(f) ? -EIO : 0;
    fclose(f);
    if (err) {
        say_error("config", "cannot read config file %s", path);
        buf_free(&b);
        return err;
    }
    int rc = props_parse(p, b.len ? (const char *)b.data : "", b.len);
    buf_free(&b);
    return rc;
}

int parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end != '\0' || end == s)
        return -EINVAL;
    *out = v;
    return 0;
}

int parse_bool(const char *s, bool *out)
{
    if (s && strcasecmp(s, "true") == 0) {
        *out = true;
        return 0;
    }
    if (s && strcasecmp(s, "false") == 0) {
        *out = false;
        return 0;
    }
    return -EINVAL;
}
