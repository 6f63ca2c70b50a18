/*
 * Data-driven test scripts for state machines, in the style of etcd/raft's interaction
 * tests; the runner shared by the interaction tests of raft, group, replica and server
 * (tests/unit/<module>/interaction.c), which supply only their commands.
 *
 * A script (testdata/NAME.txt) is a list of blocks:
 *
 *     # comments describe the scenario
 *     command args...
 *     ----
 *     expected output (no blank lines)
 *     <blank line>
 *
 * script_main runs each block's command through the test's hooks, compares what the
 * command printed (script_outf) with the expected text and reports every block that
 * differs. `TEST --rewrite FILE...` instead writes each file back with the output the
 * commands printed in place of the expected text; read the diff before committing it.
 */
#ifndef SAMSA_TESTS_SCRIPT_H
#define SAMSA_TESTS_SCRIPT_H

#include "base/base.h"

/* Bound on the words of one command; words past it are dropped. */
#define SCRIPT_MAX_ARGS 32

/* What a test plugs into the runner. */
struct script_ops {
    /* Sets up a fresh world before each file. */
    void (*begin)(void);
    /* Runs one command, split at blanks and tabs (argc may be 0); the words live until it
     * returns. Returns 0, or nonzero for an unknown or malformed command. */
    int (*run)(int argc, char **argv);
    /* Optional (NULL): rewrites what the command printed before it is compared. */
    void (*finish)(struct buf *out);
    /* Tears the world down after each file; what it prints is not part of the script. */
    void (*end)(void);
};

/* Appends to the output of the command being run. */
void script_outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The test's main: runs the scripts named in argv, rewriting those after a "--rewrite"
 * argument. Returns the process exit status: 0 if every block matched (or was rewritten). */
int script_main(int argc, char **argv, const struct script_ops *ops);

#endif
