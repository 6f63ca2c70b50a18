/* samsa-durable-floor: the least latency any broker that fdatasyncs before it acknowledges
 * could give the fixed-rate acks=all case on this machine, measured beside the same load.
 *
 * One thread appends RATE records/s of BYTES bytes to a file (paced in 1 ms steps, one
 * write(2) per record); a second thread makes them durable by group commit: fdatasync,
 * then every record written before that call began is durable, then again. A record's
 * latency runs from its due time (where the pacing put it) to the end of the fdatasync
 * that covered it: no network, no protocol, no parsing — only the append and the sync a
 * broker cannot skip. bench/run.sh runs it beside the acks=1 fixed-rate load (same client,
 * same broker, no syncs), which is the acks=all case without its fdatasyncs, and puts its
 * figures beside the acks=all row.
 *
 * Why it exists: on this VM the completion of a synced write is delayed while the guest's
 * CPUs are busy (with one core spinning, the p99 of this program goes from ~1 ms to
 * 10-14 ms whichever core spins), so the fixed-rate target is read against this floor.
 *
 * Prints one line (latencies in ms):
 *   durable-floor: records=N syncs=S p50_ms=A p99_ms=B p999_ms=C max_ms=D
 *
 * Usage: samsa-durable-floor --dir DIR [--rate N] [--bytes N] [--seconds N] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct floor_run {
    int fd;
    int64_t total;      /* records to write */
    double *due_ms;     /* per record: when the pacing meant it to be written */
    double *durable_ms; /* per record: when the fdatasync covering it returned */
    pthread_mutex_t mu;
    pthread_cond_t more; /* written grew, or the writer is done */
    int64_t written;     /* records whose write(2) returned */
    int64_t durable;     /* records covered by a returned fdatasync */
    int64_t syncs;
    int sync_errno;
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void *syncer(void *arg)
{
    struct floor_run *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->written == r->durable && r->durable < r->total) {
            pthread_cond_wait(&r->more, &r->mu);
        }
        if (r->durable >= r->total) {
            break;
        }
        int64_t upto = r->written; /* everything written before the call below */
        pthread_mutex_unlock(&r->mu);
        int rc = fdatasync(r->fd);
        double t = now_ms();
        pthread_mutex_lock(&r->mu);
        if (rc != 0) {
            r->sync_errno = errno;
            break;
        }
        for (int64_t i = r->durable; i < upto; i++) {
            r->durable_ms[i] = t;
        }
        r->durable = upto;
        r->syncs++;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int usage(void)
{
    fprintf(stderr, "usage: samsa-durable-floor --dir DIR [--rate RECORDS_PER_S] [--bytes N] "
                    "[--seconds N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    long rate = 50000, bytes = 100, seconds = 4;
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"bytes", required_argument, NULL, 'b'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'r': rate = strtol(optarg, NULL, 10); break;
        case 'b': bytes = strtol(optarg, NULL, 10); break;
        case 's': seconds = strtol(optarg, NULL, 10); break;
        default: return usage();
        }
    }
    if (dir == NULL || rate < 1000 || rate > 10000000 || bytes < 1 || bytes > 1048576 ||
        seconds < 1 || seconds > 600) {
        return usage();
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/durable-floor.log", dir);
    struct floor_run r = {.total = (int64_t)rate * seconds};
    r.fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0644);
    if (r.fd < 0) {
        fprintf(stderr, "durable-floor: %s: %s\n", path, strerror(errno));
        return 1;
    }
    r.due_ms = calloc((size_t)r.total, sizeof *r.due_ms);
    r.durable_ms = calloc((size_t)r.total, sizeof *r.durable_ms);
    char *record = calloc(1, (size_t)bytes);
    if (r.due_ms == NULL || r.durable_ms == NULL || record == NULL) {
        fprintf(stderr, "durable-floor: out of memory\n");
        return 1;
    }
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.more, NULL);
    pthread_t th;
    pthread_create(&th, NULL, syncer, &r);

    /* Each 1 ms step: sleep to the step's start, then write the records due by then. */
    double start = now_ms(), per_ms = (double)rate / 1000.0;
    int64_t next = 0;
    int failed = 0;
    for (int64_t step = 1; next < r.total && !failed; step++) {
        double step_start = start + (double)(step - 1);
        double wait = step_start - now_ms();
        if (wait > 0) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(wait * 1e6)};
            nanosleep(&ts, NULL);
        }
        int64_t due_by = (int64_t)((double)step * per_ms);
        for (; next < due_by && next < r.total; next++) {
            r.due_ms[next] = start + (double)next / per_ms;
            if (write(r.fd, record, (size_t)bytes) != (ssize_t)bytes) {
                fprintf(stderr, "durable-floor: write: %s\n", strerror(errno));
                failed = 1;
                break;
            }
        }
        pthread_mutex_lock(&r.mu);
        r.written = next;
        pthread_cond_signal(&r.more);
        pthread_mutex_unlock(&r.mu);
    }
    pthread_mutex_lock(&r.mu);
    if (failed) {
        r.total = r.written; /* let the syncer finish what was written */
        pthread_cond_signal(&r.more);
    }
    pthread_mutex_unlock(&r.mu);
    pthread_join(th, NULL);
    close(r.fd);
    unlink(path);
    if (r.sync_errno != 0) {
        fprintf(stderr, "durable-floor: fdatasync: %s\n", strerror(r.sync_errno));
        return 1;
    }
    if (failed || r.total == 0) {
        return 1;
    }

    for (int64_t i = 0; i < r.total; i++) {
        r.durable_ms[i] -= r.due_ms[i]; /* now the latency */
    }
    qsort(r.durable_ms, (size_t)r.total, sizeof *r.durable_ms, cmp_double);
    int64_t n = r.total;
    printf("durable-floor: records=%lld syncs=%lld p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
           "max_ms=%.3f\n",
           (long long)n, (long long)r.syncs, r.durable_ms[n / 2], r.durable_ms[n * 99 / 100],
           r.durable_ms[n * 999 / 1000], r.durable_ms[n - 1]);
    free(r.due_ms);
    free(r.durable_ms);
    free(record);
    return 0;
}
