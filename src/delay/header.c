/* Reading a record's delivery headers (delay.h). */
#include "delay/delay.h"

#include <stdio.h>
#include <string.h>

static bool key_is(struct slice key, const char *name)
{
    return key.len == strlen(name) && memcmp(key.ptr, name, key.len) == 0;
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* A non-negative decimal integer of the whole value: 0, or -1 with *fault saying why. */
static int parse_decimal(struct slice v, int64_t *out, const char **fault)
{
    if (v.len == 0) {
        *fault = "is empty";
        return -1;
    }
    if (v.ptr[0] == '-') {
        *fault = "is negative";
        return -1;
    }
    int64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (!is_digit(v.ptr[i])) {
            *fault = "is not a decimal number of milliseconds";
            return -1;
        }
        int d = v.ptr[i] - '0';
        if (x > (INT64_MAX - d) / 10) {
            *fault = "does not fit in 64 bits";
            return -1;
        }
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int64_t m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* n digits at *at (advanced past them); -1 if there are fewer. */
static int64_t digits(struct slice v, size_t *at, size_t n)
{
    int64_t x = 0;
    for (size_t i = 0; i < n; i++, (*at)++) {
        if (*at >= v.len || !is_digit(v.ptr[*at]))
            return -1;
        x = x * 10 + (v.ptr[*at] - '0');
    }
    return x;
}

static bool expect(struct slice v, size_t *at, const char *any_of)
{
    if (*at >= v.len || !strchr(any_of, v.ptr[*at]))
        return false;
    (*at)++;
    return true;
}

/* RFC 3339's date-time (YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 't', 'z' and a space
 * for the T accepted, as the RFC allows), to epoch milliseconds. 0, or -1. */
static int parse_rfc3339(struct slice v, int64_t *out)
{
    size_t at = 0;
    int64_t y = digits(v, &at, 4);
    if (y < 0 || !expect(v, &at, "-"))
        return -1;
    int64_t mo = digits(v, &at, 2);
    if (mo < 1 || mo > 12 || !expect(v, &at, "-"))
        return -1;
    int64_t d = digits(v, &at, 2);
    if (d < 1 || d > days_in_month(y, mo) || !expect(v, &at, "Tt "))
        return -1;
    int64_t h = digits(v, &at, 2);
    if (h < 0 || h > 23 || !expect(v, &at, ":"))
        return -1;
    int64_t mi = digits(v, &at, 2);
    if (mi < 0 || mi > 59 || !expect(v, &at, ":"))
        return -1;
    int64_t s = digits(v, &at, 2);
    if (s < 0 || s > 60) /* 60: a leap second, counted as the next minute's first */
        return -1;
    int64_t ms = 0;
    if (at < v.len && v.ptr[at] == '.') {
        at++;
        size_t first = at;
        for (int scale = 100; at < v.len && is_digit(v.ptr[at]); at++, scale /= 10)
            ms += scale * (v.ptr[at] - '0');
        if (at == first)
            return -1;
    }
    int64_t offset_min = 0;
    if (at < v.len && (v.ptr[at] == 'Z' || v.ptr[at] == 'z')) {
        at++;
    } else if (at < v.len && (v.ptr[at] == '+' || v.ptr[at] == '-')) {
        int sign = v.ptr[at++] == '-' ? -1 : 1;
        int64_t oh = digits(v, &at, 2);
        if (oh < 0 || oh > 23 || !expect(v, &at, ":"))
            return -1;
        int64_t om = digits(v, &at, 2);
        if (om < 0 || om > 59)
            return -1;
        offset_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (at != v.len)
        return -1;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset_min * 60;
    *out = secs * 1000 + ms;
    return 0;
}

static int fail(char *why, size_t why_size, const char *header, const char *fault)
{
    snprintf(why, why_size, "record header %s %s", header, fault);
    return -1;
}

int delay_parse(const struct delay_header *headers, size_t n, int64_t append_ms,
                int64_t max_delay_ms, struct delay_request *out, char *why, size_t why_size)
{
    *out = (struct delay_request){.kind = DELAY_NONE};
    const struct delay_header *at = NULL, *after = NULL, *cancel = NULL;
    static const char *const names[] = {DELAY_HEADER_AT, DELAY_HEADER_AFTER, DELAY_HEADER_CANCEL};
    const struct delay_header **slots[] = {&at, &after, &cancel};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < 3; k++) {
            if (!key_is(headers[i].key, names[k]))
                continue;
            if (*slots[k])
                return fail(why, why_size, names[k], "is given twice");
            *slots[k] = &headers[i];
        }
    }
    if (at && after)
        return fail(why, why_size, DELAY_HEADER_AT,
                    "and " DELAY_HEADER_AFTER " are both given: give one");
    if (cancel && (at || after))
        return fail(why, why_size, DELAY_HEADER_CANCEL,
                    "comes with a delivery time: a cancel is a record of its own");
    const char *fault = NULL;
    if (cancel) {
        if (!cancel->value.ptr || cancel->value.len == 0)
            return fail(why, why_size, DELAY_HEADER_CANCEL, "names no record");
        *out = (struct delay_request){.kind = DELAY_CANCEL, .cancel_id = cancel->value};
        return 0;
    }
    if (!at && !after)
        return 0;
    const char *name = at ? DELAY_HEADER_AT : DELAY_HEADER_AFTER;
    struct slice v = (at ? at : after)->value;
    if (!v.ptr)
        return fail(why, why_size, name, "has no value");
    int64_t due;
    if (after) {
        int64_t delay;
        if (parse_decimal(v, &delay, &fault) != 0)
            return fail(why, why_size, name, fault);
        if (delay > INT64_MAX - append_ms)
            return fail(why, why_size, name, "is beyond any representable time");
        due = append_ms + delay;
    } else {
        bool numeric = v.len > 0;
        for (size_t i = 0; i < v.len; i++)
            numeric &= is_digit(v.ptr[i]);
        if (numeric) {
            if (parse_decimal(v, &due, &fault) != 0)
                return fail(why, why_size, name, fault);
        } else if (v.len > 0 && v.ptr[0] == '-') {
            return fail(why, why_size, name, "is negative");
        } else if (parse_rfc3339(v, &due) != 0) {
            return fail(why, why_size, name,
                        "is neither epoch milliseconds nor an RFC 3339 timestamp "
                        "(e.g. 2026-12-07T10:15:00Z)");
        } else if (due < 0) {
            return fail(why, why_size, name, "is before 1970");
        }
    }
    if (due > append_ms && due - append_ms > max_delay_ms)
        return fail(why, why_size, name, "is further off than samsa.delay.max.ms allows");
    *out = (struct delay_request){.kind = DELAY_DELIVER, .due_ms = due};
    return 0;
}
