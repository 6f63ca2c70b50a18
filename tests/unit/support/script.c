/*
 * The runner of the data-driven interaction tests (script.h): reads a script block by
 * block, runs each command through the test's hooks, compares what it printed with the
 * expected text and, with --rewrite, writes the script back with the output it got.
 */
#include "script.h"

#include <stdio.h>
#include <string.h>

/* Longest script line; a command is one line. */
#define SCRIPT_MAX_LINE 1024

/* What the command being run has printed. */
static struct buf out;

void script_outf(const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(&out, tmp, MIN((size_t)n, sizeof tmp - 1));
}

/* Runs one command line; its output is left in `out`. */
static void run_command(const char *cmd, const struct script_ops *ops)
{
    char copy[SCRIPT_MAX_LINE]; /* strtok writes into it; cmd is still to be reported */
    snprintf(copy, sizeof copy, "%s", cmd);
    char *argv[SCRIPT_MAX_ARGS];
    int argc = 0;
    for (char *tok = strtok(copy, " \t"); tok && argc < SCRIPT_MAX_ARGS; tok = strtok(NULL, " \t"))
        argv[argc++] = tok;
    buf_reset(&out);
    if (ops->run(argc, argv) != 0)
        script_outf("unknown or malformed command\n");
    if (ops->finish)
        ops->finish(&out);
}

/* Runs one script; returns the number of mismatching blocks. */
static int run_file(const char *path, bool rewrite, const struct script_ops *ops)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    /* result is the script as --rewrite would write it: every line but the expected
     * output, which is replaced by what the command printed. */
    struct buf result, expected;
    buf_init(&result);
    buf_init(&expected);
    buf_init(&out);
    ops->begin();
    char line[SCRIPT_MAX_LINE], cmd[SCRIPT_MAX_LINE] = "";
    int failures = 0, lineno = 0;
    bool in_expected = false;
    for (;;) {
        char *got = fgets(line, sizeof line, f);
        lineno++;
        if (in_expected && (!got || line[0] == '\n')) {
            /* End of a block: run the command and compare. */
            run_command(cmd, ops);
            if (out.len != expected.len ||
                (out.len && memcmp(out.data, expected.data, out.len) != 0)) {
                failures++;
                if (!rewrite)
                    fprintf(stderr, "%s:%d: %s\n--- expected\n%.*s--- got\n%.*s\n", path, lineno,
                            cmd, (int)expected.len, (const char *)expected.data, (int)out.len,
                            (const char *)out.data);
            }
            buf_append(&result, out.data, out.len);
            buf_append(&result, "\n", 1);
            in_expected = false;
            buf_reset(&expected);
            if (!got)
                break;
            continue;
        }
        if (!got)
            break;
        if (in_expected) {
            buf_append(&expected, line, strlen(line));
            continue;
        }
        buf_append(&result, line, strlen(line));
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (strcmp(line, "----\n") == 0) {
            in_expected = true;
            continue;
        }
        snprintf(cmd, sizeof cmd, "%s", line);
        cmd[strcspn(cmd, "\n")] = 0;
    }
    fclose(f);
    if (rewrite && failures) {
        f = fopen(path, "w");
        if (!f || fwrite(result.data, 1, result.len, f) != result.len || fclose(f) != 0) {
            perror(path);
            failures = 1;
        } else {
            fprintf(stderr, "%s: rewrote %d block(s)\n", path, failures);
            failures = 0;
        }
    }
    ops->end();
    buf_free(&result);
    buf_free(&expected);
    buf_free(&out);
    return failures;
}

int script_main(int argc, char **argv, const struct script_ops *ops)
{
    bool rewrite = false;
    int failures = 0;
    say_set_level(SAY_LEVEL_ERROR);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rewrite") == 0) {
            rewrite = true;
            continue;
        }
        failures += run_file(argv[i], rewrite, ops);
    }
    if (failures)
        fprintf(stderr, "%d block(s) differ; rerun with --rewrite to regenerate\n", failures);
    return failures ? 1 : 0;
}
