/* Unit tests for base logging: rate-limited call sites let one line per interval
 * through and report how many were held back. stderr is captured in a temporary file;
 * the assertions are on lines and counts, never on timing (a run too slow for the
 * interval is skipped, not failed). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

/* Long enough that 1000 calls (or the threads below) never span it, short enough to
 * wait out in a test. */
#define INTERVAL_MS 200

static int saved_stderr = -1;
static FILE *captured;

static void capture_start(void)
{
    fflush(stderr);
    captured = tmpfile();
    assert_non_null(captured);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fileno(captured), STDERR_FILENO) >= 0);
}

/* Restores stderr and returns what was written meanwhile (caller frees). */
static char *capture_stop(void)
{
    fflush(stderr);
    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    close(saved_stderr);
    saved_stderr = -1;
    long size = ftell(captured);
    assert_true(size >= 0);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    rewind(captured);
    assert_int_equal(fread(text, 1, (size_t)size, captured), (size_t)size);
    fclose(captured);
    captured = NULL;
    return text;
}

/* Teardown: a test that failed while capturing gets stderr back, with what it wrote
 * (cmocka's failure message among it). */
static int restore_stderr(void **state)
{
    (void)state;
    if (saved_stderr >= 0) {
        char *text = capture_stop();
        fputs(text, stderr);
        free(text);
    }
    return 0;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* The suppressed count reported by the n-th line (0-based), or -1 if it reports none. */
static long long suppressed_in_line(const char *text, size_t n)
{
    const char *line = text;
    for (size_t i = 0; i < n; i++) {
        line = strchr(line, '\n');
        assert_non_null(line);
        line++;
    }
    const char *end = strchr(line, '\n');
    assert_non_null(end);
    const char *p = strstr(line, " (and ");
    if (p == NULL || p > end)
        return -1;
    long long k = -1;
    double secs = -1;
    assert_int_equal(sscanf(p, " (and %lld more like this in the last %lf s)", &k, &secs), 2);
    assert_true(secs >= 0);
    assert_true(end[-1] == ')'); /* the suffix ends the line */
    return k;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* One call site for every call of a test. */
static void disk_full(int i)
{
    say_ratelimited(INTERVAL_MS, SAY_LEVEL_ERROR, "test", "append %d failed: No space left", i);
}

static void test_ratelimited_counts(void **state)
{
    (void)state;
    capture_start();
    int64_t t0 = time_mono_ms();
    for (int i = 0; i < 1000; i++)
        disk_full(i);
    int64_t took_ms = time_mono_ms() - t0;
    char *burst = capture_stop();
    if (took_ms >= INTERVAL_MS / 2) {
        free(burst);
        skip(); /* a machine this slow cannot tell the interval from the loop */
    }
    assert_int_equal(count_lines(burst), 1);
    assert_non_null(strstr(burst, "ERROR [test] append 0 failed: No space left\n"));
    assert_int_equal(suppressed_in_line(burst, 0), -1);
    free(burst);

    sleep_ms(INTERVAL_MS + 50);
    capture_start();
    disk_full(1000);
    char *after = capture_stop();
    assert_int_equal(count_lines(after), 1);
    assert_non_null(strstr(after, "append 1000 failed: No space left (and 999 more like "
                                  "this in the last "));
    assert_int_equal(suppressed_in_line(after, 0), 999);
    free(after);

    /* Nothing held back since: the next line after another interval has no suffix. */
    sleep_ms(INTERVAL_MS + 50);
    capture_start();
    disk_full(1001);
    char *quiet = capture_stop();
    assert_int_equal(count_lines(quiet), 1);
    assert_int_equal(suppressed_in_line(quiet, 0), -1);
    free(quiet);
}

static void site_a(void)
{
    say_ratelimited(INTERVAL_MS, SAY_LEVEL_WARN, "test", "site a");
}
static void site_b(void)
{
    say_ratelimited(INTERVAL_MS, SAY_LEVEL_WARN, "test", "site b");
}

static void test_sites_are_independent(void **state)
{
    (void)state;
    capture_start();
    for (int i = 0; i < 10; i++) {
        site_a();
        site_b();
    }
    char *text = capture_stop();
    assert_int_equal(count_lines(text), 2);
    assert_non_null(strstr(text, "WARN  [test] site a\n"));
    assert_non_null(strstr(text, "WARN  [test] site b\n"));
    free(text);
}

static void site_debug(void)
{
    say_ratelimited(INTERVAL_MS, SAY_LEVEL_DEBUG, "test", "hidden");
}

static void test_below_level_not_counted(void **state)
{
    (void)state;
    enum say_level old = say_get_level();
    say_set_level(SAY_LEVEL_INFO);
    capture_start();
    for (int i = 0; i < 5; i++)
        site_debug();
    say_set_level(SAY_LEVEL_DEBUG);
    site_debug();
    say_set_level(old);
    char *text = capture_stop();
    assert_int_equal(count_lines(text), 1);
    assert_int_equal(suppressed_in_line(text, 0), -1);
    free(text);
}

/* A long message still ends with the whole suffix. */
static void site_long(const char *msg)
{
    say_ratelimited(INTERVAL_MS, SAY_LEVEL_ERROR, "test", "%s", msg);
}

static void test_suffix_survives_truncation(void **state)
{
    (void)state;
    char *msg = malloc(5000);
    assert_non_null(msg);
    memset(msg, 'x', 4999);
    msg[4999] = '\0';
    capture_start();
    site_long(msg);
    site_long(msg);
    sleep_ms(INTERVAL_MS + 50);
    site_long(msg);
    char *text = capture_stop();
    free(msg);
    assert_int_equal(count_lines(text), 2);
    assert_true(strlen(text) < 2 * 2048);
    assert_int_equal(suppressed_in_line(text, 1), 1);
    free(text);
}

#define THREADS 4
#define CALLS_PER_THREAD 2000

static void site_threads(void)
{
    say_ratelimited(INTERVAL_MS, SAY_LEVEL_ERROR, "test", "from a helper thread");
}

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < CALLS_PER_THREAD; i++)
        site_threads();
    return NULL;
}

/* Threads sharing one call site: one line, and every other call is counted once. */
static void test_threads_share_a_site(void **state)
{
    (void)state;
    capture_start();
    int64_t t0 = time_mono_ms();
    pthread_t th[THREADS];
    int started = 0;
    while (started < THREADS && pthread_create(&th[started], NULL, hammer, NULL) == 0)
        started++;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    int64_t took_ms = time_mono_ms() - t0;
    char *burst = capture_stop();
    assert_int_equal(started, THREADS);
    if (took_ms >= INTERVAL_MS / 2) {
        free(burst);
        skip();
    }
    assert_int_equal(count_lines(burst), 1);
    free(burst);
    sleep_ms(INTERVAL_MS + 50);
    capture_start();
    site_threads();
    char *after = capture_stop();
    assert_int_equal(count_lines(after), 1);
    assert_int_equal(suppressed_in_line(after, 0), THREADS * CALLS_PER_THREAD - 1);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ratelimited_counts, restore_stderr),
        cmocka_unit_test_teardown(test_sites_are_independent, restore_stderr),
        cmocka_unit_test_teardown(test_below_level_not_counted, restore_stderr),
        cmocka_unit_test_teardown(test_suffix_survives_truncation, restore_stderr),
        cmocka_unit_test_teardown(test_threads_share_a_site, restore_stderr),
    };
    return cmocka_run_group_tests_name("base_log", tests, NULL, NULL);
}
