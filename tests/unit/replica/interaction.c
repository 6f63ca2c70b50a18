/*
 * replica_interaction: data-driven tests of the purgatory (replica.h), in the style of the
 * raft interaction tests. A script (tests/unit/replica/testdata/NAME.txt) is a list of
 * blocks, command then expected output, run by the shared script runner
 * (tests/unit/support/script.h). Every command prints each try_complete call ("try a:
 * false"), each completion ("complete a ready|expired|forced"), then one status line:
 * the waiting operations in arrival order (as purgatory_each visits them), the size and
 * the next deadline.
 *
 * `replica_interaction --rewrite FILE...` regenerates the expected output in place; read
 * the diff before committing it.
 *
 * Operations are named by a word (a, b, fetch1); an operation completed or cancelled may
 * be added again. Keys are OBJECT:KIND with KIND one of data, durable, hw (p1:data).
 *
 * Commands (key=value arguments, any order):
 *   add op=A [keys=K,K...] [deadline=MS] [ready=true|false]   (defaults: none, none, false)
 *   set-ready A [true|false]      what A's try_complete answers from now on
 *   notify K | forget K | cancel A
 *   run | expire now=MS | complete-all
 *   on-complete A [cancel=B] [notify=K] [add=B]
 *                                 inside A's next complete: cancel B, notify K, and add B
 *                                 again with the keys and deadline of its last add
 */
#include "replica/replica.h"
#include "script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPS 32
#define MAX_OBJECTS 16
#define MAX_KEYS 8
#define NAME_LEN 16

struct sop {
    struct delayed_op op; /* first: callbacks cast back */
    char name[NAME_LEN];
    bool ready;
    /* The last add's arguments, for on-complete add=. */
    struct purgatory_key keys[MAX_KEYS];
    size_t key_count;
    int64_t deadline_ms;
    /* on-complete: what to do inside the next complete (then cleared). */
    struct sop *then_cancel;
    struct sop *then_add;
    bool then_notify;
    struct purgatory_key then_notify_key;
};

static struct purgatory *pg;
static struct sop ops[MAX_OPS];
static size_t op_count;
static char object_names[MAX_OBJECTS][NAME_LEN];
static char objects[MAX_OBJECTS]; /* keys point here; only addresses matter */
static size_t object_count;

static const char *kind_name(enum purgatory_kind k)
{
    switch (k) {
    case PURGATORY_DURABLE: return "durable";
    case PURGATORY_DATA: return "data";
    case PURGATORY_HIGH_WATERMARK: return "hw";
    }
    return "?";
}

static const char *outcome_name(enum delayed_outcome how)
{
    switch (how) {
    case DELAYED_READY: return "ready";
    case DELAYED_EXPIRED: return "expired";
    case DELAYED_FORCED: return "forced";
    }
    return "?";
}

/* The op named name, created on first use; NULL if the table is full or the name long. */
static struct sop *op_named(const char *name)
{
    for (size_t i = 0; i < op_count; i++)
        if (strcmp(ops[i].name, name) == 0)
            return &ops[i];
    if (op_count == MAX_OPS || strlen(name) >= NAME_LEN)
        return NULL;
    struct sop *s = &ops[op_count++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

/* Parses OBJECT:KIND; objects are created on first use. */
static int parse_key(const char *text, struct purgatory_key *out)
{
    const char *colon = strchr(text, ':');
    if (!colon || colon == text || (size_t)(colon - text) >= NAME_LEN)
        return -1;
    size_t len = (size_t)(colon - text);
    const char *kind = colon + 1;
    if (strcmp(kind, "data") == 0)
        out->kind = PURGATORY_DATA;
    else if (strcmp(kind, "durable") == 0)
        out->kind = PURGATORY_DURABLE;
    else if (strcmp(kind, "hw") == 0)
        out->kind = PURGATORY_HIGH_WATERMARK;
    else
        return -1;
    size_t i = 0;
    while (i < object_count &&
           !(strlen(object_names[i]) == len && memcmp(object_names[i], text, len) == 0))
        i++;
    if (i == object_count) {
        if (object_count == MAX_OBJECTS)
            return -1;
        memcpy(object_names[i], text, len);
        object_names[i][len] = '\0';
        object_count++;
    }
    out->object = &objects[i];
    return 0;
}

static const char *object_name(const void *object)
{
    return object_names[(const char *)object - objects];
}

static bool sop_try(struct delayed_op *op)
{
    struct sop *s = (struct sop *)op;
    script_outf("try %s: %s\n", s->name, s->ready ? "true" : "false");
    return s->ready;
}

static void sop_add(struct sop *s);

static void sop_complete(struct delayed_op *op, enum delayed_outcome how)
{
    struct sop *s = (struct sop *)op;
    script_outf("complete %s %s\n", s->name, outcome_name(how));
    struct sop *cancel = s->then_cancel, *add = s->then_add;
    bool notify = s->then_notify;
    s->then_cancel = s->then_add = NULL;
    s->then_notify = false;
    if (cancel) {
        script_outf("  %s cancels %s%s\n", s->name, cancel->name,
                    cancel->op.waiting ? "" : " (not waiting)");
        purgatory_cancel(pg, &cancel->op);
    }
    if (notify) {
        script_outf("  %s notifies %s:%s\n", s->name, object_name(s->then_notify_key.object),
                    kind_name(s->then_notify_key.kind));
        purgatory_notify(pg, s->then_notify_key);
    }
    if (add) {
        script_outf("  %s adds %s\n", s->name, add->name);
        sop_add(add);
    }
}

static void sop_add(struct sop *s)
{
    if (s->op.waiting) {
        script_outf("%s is already waiting\n", s->name);
        return;
    }
    s->op.try_complete = sop_try;
    s->op.complete = sop_complete;
    purgatory_add(pg, &s->op, s->keys, s->key_count, s->deadline_ms);
}

/* The status line: waiting ops as each sees them, the size, the next deadline. */
static void print_one(void *arg, struct delayed_op *op)
{
    size_t *n = arg;
    script_outf("%s%s", *n ? " " : "", ((struct sop *)op)->name);
    (*n)++;
}

static void print_status(void)
{
    size_t n = 0;
    script_outf("waiting [");
    purgatory_each(pg, print_one, &n);
    script_outf("] size=%zu", purgatory_size(pg));
    if (n != purgatory_size(pg))
        script_outf(" (each saw %zu)", n);
    int64_t next = purgatory_next_deadline(pg);
    if (next == INT64_MAX)
        script_outf(" next-deadline=none\n");
    else
        script_outf(" next-deadline=%lld\n", (long long)next);
}

/* "name=value" -> value, if arg starts with name=. */
static const char *arg_value(const char *arg, const char *name)
{
    size_t len = strlen(name);
    return strncmp(arg, name, len) == 0 && arg[len] == '=' ? arg + len + 1 : NULL;
}

static int cmd_add(int argc, char **argv)
{
    struct sop *s = NULL;
    struct purgatory_key keys[MAX_KEYS];
    size_t key_count = 0;
    int64_t deadline = INT64_MAX;
    bool ready = false;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = arg_value(argv[i], "op")) != NULL) {
            s = op_named(v);
        } else if ((v = arg_value(argv[i], "keys")) != NULL) {
            char copy[256];
            snprintf(copy, sizeof copy, "%s", v);
            for (char *save = NULL, *k = strtok_r(copy, ",", &save); k;
                 k = strtok_r(NULL, ",", &save)) {
                if (key_count == MAX_KEYS || parse_key(k, &keys[key_count]) != 0)
                    return -1;
                key_count++;
            }
        } else if ((v = arg_value(argv[i], "deadline")) != NULL) {
            if (parse_i64(v, &deadline) != 0)
                return -1;
        } else if ((v = arg_value(argv[i], "ready")) != NULL) {
            if (parse_bool(v, &ready) != 0)
                return -1;
        } else {
            return -1;
        }
    }
    if (!s)
        return -1;
    if (s->op.waiting) {
        script_outf("%s is already waiting\n", s->name);
        return 0;
    }
    memcpy(s->keys, keys, sizeof keys);
    s->key_count = key_count;
    s->deadline_ms = deadline;
    s->ready = ready;
    sop_add(s);
    return 0;
}

static int cmd_on_complete(int argc, char **argv)
{
    if (argc < 2)
        return -1;
    struct sop *s = op_named(argv[1]);
    if (!s)
        return -1;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = arg_value(argv[i], "cancel")) != NULL) {
            if (!(s->then_cancel = op_named(v)))
                return -1;
        } else if ((v = arg_value(argv[i], "add")) != NULL) {
            if (!(s->then_add = op_named(v)))
                return -1;
        } else if ((v = arg_value(argv[i], "notify")) != NULL) {
            if (parse_key(v, &s->then_notify_key) != 0)
                return -1;
            s->then_notify = true;
        } else {
            return -1;
        }
    }
    return 0;
}

static int run_command(int argc, char **argv)
{
    if (argc == 0)
        return -1;
    const char *cmd = argv[0];
    struct purgatory_key key;
    if (strcmp(cmd, "add") == 0) {
        if (cmd_add(argc, argv) != 0)
            return -1;
    } else if (strcmp(cmd, "set-ready") == 0) {
        struct sop *s = argc >= 2 ? op_named(argv[1]) : NULL;
        bool ready = true;
        if (!s || (argc >= 3 && parse_bool(argv[2], &ready) != 0))
            return -1;
        s->ready = ready;
    } else if (strcmp(cmd, "notify") == 0) {
        if (argc != 2 || parse_key(argv[1], &key) != 0)
            return -1;
        purgatory_notify(pg, key);
    } else if (strcmp(cmd, "forget") == 0) {
        if (argc != 2 || parse_key(argv[1], &key) != 0)
            return -1;
        purgatory_forget(pg, key);
    } else if (strcmp(cmd, "cancel") == 0) {
        struct sop *s = argc == 2 ? op_named(argv[1]) : NULL;
        if (!s)
            return -1;
        purgatory_cancel(pg, &s->op);
    } else if (strcmp(cmd, "run") == 0) {
        script_outf("run completed %zu\n", purgatory_run(pg));
    } else if (strcmp(cmd, "expire") == 0) {
        const char *v = argc == 2 ? arg_value(argv[1], "now") : NULL;
        int64_t now;
        if (!v || parse_i64(v, &now) != 0)
            return -1;
        script_outf("expire completed %zu\n", purgatory_expire(pg, now));
    } else if (strcmp(cmd, "complete-all") == 0) {
        purgatory_complete_all(pg);
    } else if (strcmp(cmd, "on-complete") == 0) {
        if (cmd_on_complete(argc, argv) != 0)
            return -1;
    } else {
        return -1;
    }
    print_status();
    return 0;
}

/* A fresh purgatory per file; at the end, anything still waiting is cancelled so the
 * purgatory and the ops part cleanly. */
static void begin(void)
{
    pg = purgatory_new();
    op_count = 0;
    object_count = 0;
}

static void end(void)
{
    for (size_t i = 0; i < op_count; i++)
        purgatory_cancel(pg, &ops[i].op);
    purgatory_free(pg);
    pg = NULL;
}

int main(int argc, char **argv)
{
    static const struct script_ops script = {
        .begin = begin,
        .run = run_command,
        .end = end,
    };
    return script_main(argc, argv, &script);
}
