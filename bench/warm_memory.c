/* samsa-warm-memory: writes to fresh memory and reports what that cost, in system CPU
 * seconds per GB. bench/run.sh records the figure beside its results.
 *
 * On this VM a write fault on a freshly mapped page costs ~2 s of system CPU per GB
 * (and as much again in wall time), against ~0.1 s/GB on bare metal. It was thought to be
 * a once-per-boot cost that a warm-up could pay in advance, but it is not: a second
 * process touching the same amount right after the first pays it again, and page-cache
 * pages left free for ~30 s are handed back to the host (virtio-balloon free page
 * reporting) and cost as much once more when the page cache grows into them. So the
 * benchmark measures the cost instead of trying to hide it.
 *
 * The program maps and writes 1 GiB chunks, all held at once so that each lands on
 * different pages, until --max-gib chunks are written or MemAvailable would drop below
 * --reserve-gib (default 2: there is no swap, and running out would wake the OOM killer),
 * then unmaps them and prints one line (GB = 10^9 bytes):
 *
 *   warm-memory: touched G GiB in W s wall, S s sys = X s/GB (MemAvailable before A GiB)
 *
 * Usage: samsa-warm-memory [--reserve-gib N] [--max-gib N] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#define CHUNK_BYTES ((size_t)1 << 30)
#define MAX_CHUNKS 4096 /* 4 TiB: a bound, not an expectation */

/* MemAvailable from /proc/meminfo, in bytes; -1 if it cannot be read. */
static long long mem_available_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (f == NULL) {
        fprintf(stderr, "warm-memory: /proc/meminfo: %s\n", strerror(errno));
        return -1;
    }
    char line[256];
    long long kib = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "MemAvailable: %lld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double sys_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    long long reserve_gib = 2, max_gib = MAX_CHUNKS;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reserve-gib") == 0 && i + 1 < argc) {
            reserve_gib = atoll(argv[++i]);
        } else if (strcmp(argv[i], "--max-gib") == 0 && i + 1 < argc) {
            max_gib = atoll(argv[++i]);
        } else {
            fprintf(stderr, "usage: samsa-warm-memory [--reserve-gib N] [--max-gib N]\n");
            return 2;
        }
    }
    if (reserve_gib < 0 || max_gib < 0 || max_gib > MAX_CHUNKS) {
        fprintf(stderr, "warm-memory: --reserve-gib must be >= 0, --max-gib in [0, %d]\n",
                MAX_CHUNKS);
        return 2;
    }
    static void *chunks[MAX_CHUNKS];
    long long before = mem_available_bytes();
    if (before < 0) {
        return 1;
    }
    /* Stop before a chunk that would take MemAvailable below the reserve: the kernel
     * would start evicting (there is no swap) and then kill someone. MemAvailable is read
     * again each time because other processes allocate too. */
    long long reserve = reserve_gib << 30;
    int n = 0;
    double t0 = now_s(), s0 = sys_s();
    while (n < max_gib) {
        long long avail = mem_available_bytes();
        if (avail < 0 || avail < reserve + (long long)CHUNK_BYTES) {
            break;
        }
        void *p =
            mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            fprintf(stderr, "warm-memory: mmap of chunk %d: %s\n", n, strerror(errno));
            break;
        }
        /* A write fault gets each page its own frame (a read would map the zero page);
         * the pages stay mapped, so the compiler cannot drop the stores. */
        memset(p, 0x5a, CHUNK_BYTES);
        chunks[n++] = p;
    }
    double wall = now_s() - t0, sys = sys_s() - s0;
    for (int i = 0; i < n; i++) {
        munmap(chunks[i], CHUNK_BYTES);
    }
    double gb = (double)n * (double)CHUNK_BYTES / 1e9;
    printf("warm-memory: touched %d GiB in %.2f s wall, %.2f s sys = %.2f s/GB "
           "(MemAvailable before %.1f GiB)\n",
           n, wall, sys, gb > 0 ? sys / gb : 0.0, (double)before / (double)(1LL << 30));
    return 0;
}
