/* Logging: one line per message to stderr, "2026-11-25T10:00:00.123Z INFO [storage] ...".
 * A single write(2) per line keeps lines from different threads whole. Rate-limited
 * call sites (say_error_ratelimited, ...) let one line per interval through and count
 * the rest. */
#include "base/base.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum say_level current_level = SAY_LEVEL_INFO;
static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void say_set_level(enum say_level level)
{
    current_level = level;
}
enum say_level say_get_level(void)
{
    return current_level;
}

int say_level_parse(const char *s, enum say_level *out)
{
    for (size_t i = 0; i < ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum say_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "WARNING") == 0) {
        *out = SAY_LEVEL_WARN;
        return 0;
    }
    return -1;
}

/* Writes one line: header, message, then suffix (kept whole: the message is cut
 * short instead if the line is too long). */
static void say_vline(enum say_level level, const char *subsys, const char *suffix, const char *fmt,
                      va_list ap)
{
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], subsys);
    size_t suffix_len = strlen(suffix);
    ASSERT(n > 0 && (size_t)n + suffix_len + 2 <= sizeof line);
    size_t room = sizeof line - (size_t)n - suffix_len - 1; /* message + its NUL */
    int m = vsnprintf(line + n, room, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : MIN((size_t)m, room - 1));
    memcpy(line + len, suffix, suffix_len);
    len += suffix_len;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failing stderr */
}

void say_msg(enum say_level level, const char *subsys, const char *fmt, ...)
{
    if (level < current_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    say_vline(level, subsys, "", fmt, ap);
    va_end(ap);
}

/* One line per interval: the caller that moves last_ms forward (compare-and-swap) logs
 * and takes the suppressed count; every other caller only adds to that count. A count
 * added between the swap and the exchange goes to the line before instead of the next
 * one: the total stays exact. */
void say_msg_ratelimited(struct say_ratelimit *rl, int64_t interval_ms, enum say_level level,
                         const char *subsys, const char *fmt, ...)
{
    if (level < current_level)
        return;
    int64_t now = MAX(time_mono_ms(), 1); /* 0 means "nothing logged yet" */
    int64_t last = atomic_load(&rl->last_ms);
    if ((last != 0 && now - last < interval_ms) ||
        !atomic_compare_exchange_strong(&rl->last_ms, &last, now)) {
        atomic_fetch_add(&rl->suppressed, 1);
        return;
    }
    uint64_t held = atomic_exchange(&rl->suppressed, 0);
    char suffix[96] = "";
    if (held > 0)
        snprintf(suffix, sizeof suffix, " (and %llu more like this in the last %.1f s)",
                 (unsigned long long)held, last ? (double)(now - last) / 1000.0 : 0.0);
    va_list ap;
    va_start(ap, fmt);
    say_vline(level, subsys, suffix, fmt, ap);
    va_end(ap);
}
