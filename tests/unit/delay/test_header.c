/* Unit tests for delay_parse: the delivery headers of a record (delay.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "delay/delay.h"

#define APPEND_MS 1796638500000LL /* 2026-12-07T10:15:00Z */

static char why[256];

/* Parses one header key=value (value NULL: a null value), with no bound on the delay. */
static int parse1(const char *key, const char *value, struct delay_request *out)
{
    struct delay_header h = {slice_from_cstr(key),
                             value ? slice_from_cstr(value) : (struct slice){0}};
    why[0] = '\0';
    return delay_parse(&h, 1, APPEND_MS, INT64_MAX, out, why, sizeof why);
}

static int64_t due_of(const char *key, const char *value)
{
    struct delay_request r;
    assert_int_equal(parse1(key, value, &r), 0);
    assert_int_equal(r.kind, DELAY_DELIVER);
    return r.due_ms;
}

/* Refused, with a message that names the header and says `fault`. */
static void refused(const char *key, const char *value, const char *fault)
{
    struct delay_request r;
    assert_int_equal(parse1(key, value, &r), -1);
    assert_non_null(strstr(why, key));
    assert_non_null(strstr(why, fault));
}

static void test_ordinary_records(void **state)
{
    (void)state;
    struct delay_request r;
    assert_int_equal(delay_parse(NULL, 0, APPEND_MS, INT64_MAX, &r, why, sizeof why), 0);
    assert_int_equal(r.kind, DELAY_NONE);
    assert_int_equal(parse1("samsa.deliver", "5", &r), 0); /* not one of ours */
    assert_int_equal(r.kind, DELAY_NONE);
    assert_int_equal(parse1("Samsa.Deliver.After", "5", &r), 0); /* keys are exact */
    assert_int_equal(r.kind, DELAY_NONE);
}

static void test_epoch_and_relative(void **state)
{
    (void)state;
    assert_int_equal(due_of(DELAY_HEADER_AT, "1796638560000"), 1796638560000LL);
    assert_int_equal(due_of(DELAY_HEADER_AT, "0"), 0); /* the past: delivered at once */
    assert_int_equal(due_of(DELAY_HEADER_AT, "9223372036854775807"), INT64_MAX);
    assert_int_equal(due_of(DELAY_HEADER_AFTER, "60000"), APPEND_MS + 60000);
    assert_int_equal(due_of(DELAY_HEADER_AFTER, "0"), APPEND_MS);
    assert_int_equal(due_of(DELAY_HEADER_AFTER, "00050"), APPEND_MS + 50);
    /* Years ahead work. */
    assert_int_equal(due_of(DELAY_HEADER_AFTER, "315360000000"), APPEND_MS + 315360000000LL);
}

static void test_rfc3339(void **state)
{
    (void)state;
    assert_int_equal(due_of(DELAY_HEADER_AT, "2026-12-07T10:15:00Z"), APPEND_MS);
    assert_int_equal(due_of(DELAY_HEADER_AT, "2026-12-07t10:15:00z"), APPEND_MS);
    assert_int_equal(due_of(DELAY_HEADER_AT, "2026-12-07 10:15:00Z"), APPEND_MS);
    assert_int_equal(due_of(DELAY_HEADER_AT, "2026-12-07T10:15:00.250Z"), APPEND_MS + 250);
    assert_int_equal(due_of(DELAY_HEADER_AT, "2026-12-07T10:15:00.2509999Z"), APPEND_MS + 250);
    assert_int_equal(due_of(DELAY_HEADER_AT, "2026-12-07T10:15:00.5Z"), APPEND_MS + 500);
    assert_int_equal(due_of(DELAY_HEADER_AT, "2026-12-07T11:15:00+01:00"), APPEND_MS);
    assert_int_equal(due_of(DELAY_HEADER_AT, "2026-12-07T05:45:00-04:30"), APPEND_MS);
    assert_int_equal(due_of(DELAY_HEADER_AT, "2024-02-29T23:59:59Z"), 1709251199000LL);
    assert_int_equal(due_of(DELAY_HEADER_AT, "1970-01-01T00:00:00Z"), 0);
    const char *bad[] = {
        "2026-12-07T10:15:00",  /* no zone */
        "2026-02-29T00:00:00Z", /* not a leap year */
        "2026-13-01T00:00:00Z",
        "2026-12-32T00:00:00Z",
        "2026-12-07T24:00:00Z",
        "2026-12-07T10:60:00Z",
        "2026-12-07T10:15:61Z",
        "2026-12-07T10:15:00.Z",
        "2026-12-07T10:15:00+1:00",
        "2026-12-07T10:15:00+01:00x",
        "2026-12-07T10:15Z",
        "26-12-07T10:15:00Z",
        "tomorrow",
        "1796638500000ms",
        "1969-12-31T23:59:59Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct delay_request r;
        assert_int_equal(parse1(DELAY_HEADER_AT, bad[i], &r), -1);
        assert_non_null(strstr(why, DELAY_HEADER_AT));
    }
}

static void test_malformed_values(void **state)
{
    (void)state;
    refused(DELAY_HEADER_AFTER, "abc", "not a decimal number");
    refused(DELAY_HEADER_AFTER, "-5", "negative");
    refused(DELAY_HEADER_AT, "-5", "negative");
    refused(DELAY_HEADER_AFTER, "", "empty");
    refused(DELAY_HEADER_AFTER, "1.5", "not a decimal number");
    refused(DELAY_HEADER_AFTER, " 5", "not a decimal number");
    refused(DELAY_HEADER_AFTER, "18446744073709551616", "64 bits");
    refused(DELAY_HEADER_AT, "99999999999999999999", "64 bits");
    refused(DELAY_HEADER_AFTER, "9223372036854775807", "representable"); /* + append */
    refused(DELAY_HEADER_AFTER, NULL, "no value");
    refused(DELAY_HEADER_CANCEL, "", "names no record");
    refused(DELAY_HEADER_CANCEL, NULL, "names no record");
}

static void test_combinations(void **state)
{
    (void)state;
    struct delay_request r;
    struct delay_header both[] = {
        {slice_from_cstr(DELAY_HEADER_AT), slice_from_cstr("5")},
        {slice_from_cstr(DELAY_HEADER_AFTER), slice_from_cstr("5")},
    };
    assert_int_equal(delay_parse(both, 2, APPEND_MS, INT64_MAX, &r, why, sizeof why), -1);
    assert_non_null(strstr(why, "both"));
    struct delay_header twice[] = {
        {slice_from_cstr("other"), slice_from_cstr("x")},
        {slice_from_cstr(DELAY_HEADER_AFTER), slice_from_cstr("5")},
        {slice_from_cstr(DELAY_HEADER_AFTER), slice_from_cstr("6")},
    };
    assert_int_equal(delay_parse(twice, 3, APPEND_MS, INT64_MAX, &r, why, sizeof why), -1);
    assert_non_null(strstr(why, "twice"));
    struct delay_header cancel_and_at[] = {
        {slice_from_cstr(DELAY_HEADER_CANCEL), slice_from_cstr("42")},
        {slice_from_cstr(DELAY_HEADER_AT), slice_from_cstr("5")},
    };
    assert_int_equal(delay_parse(cancel_and_at, 2, APPEND_MS, INT64_MAX, &r, why, sizeof why), -1);
    assert_non_null(strstr(why, DELAY_HEADER_CANCEL));
    struct delay_header cancel[] = {
        {slice_from_cstr("trace"), slice_from_cstr("x")},
        {slice_from_cstr(DELAY_HEADER_CANCEL), slice_from_cstr("__samsa_delay-3@1234")},
    };
    assert_int_equal(delay_parse(cancel, 2, APPEND_MS, INT64_MAX, &r, why, sizeof why), 0);
    assert_int_equal(r.kind, DELAY_CANCEL);
    assert_true(slice_eq_cstr(r.cancel_id, "__samsa_delay-3@1234"));
}

/* samsa.delay.max.ms bounds how far off a due time may be; the past is never refused. */
static void test_max_delay(void **state)
{
    (void)state;
    struct delay_request r;
    struct delay_header h = {slice_from_cstr(DELAY_HEADER_AFTER), slice_from_cstr("60001")};
    assert_int_equal(delay_parse(&h, 1, APPEND_MS, 60000, &r, why, sizeof why), -1);
    assert_non_null(strstr(why, "samsa.delay.max.ms"));
    h.value = slice_from_cstr("60000");
    assert_int_equal(delay_parse(&h, 1, APPEND_MS, 60000, &r, why, sizeof why), 0);
    assert_int_equal(r.due_ms, APPEND_MS + 60000);
    h = (struct delay_header){slice_from_cstr(DELAY_HEADER_AT), slice_from_cstr("5")};
    assert_int_equal(delay_parse(&h, 1, APPEND_MS, 0, &r, why, sizeof why), 0);
    assert_int_equal(r.due_ms, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordinary_records), cmocka_unit_test(test_epoch_and_relative),
        cmocka_unit_test(test_rfc3339),          cmocka_unit_test(test_malformed_values),
        cmocka_unit_test(test_combinations),     cmocka_unit_test(test_max_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
