/* fsc_set_file of one large file, copied and moved in, beside what any store
 * must do (the floor: copy_file_range of the file into the directory, or a
 * rename) and beside `cp` (default, and --reflink=never) into the same
 * directory, interleaved in every repetition; the peak RSS a copying
 * fsc_set_file adds; and fsc_get of it with and without verify_payloads.
 * Every file stays in the page cache: the figures are copy, read and
 * checksum costs.
 *
 *   setfile_bench [--dir PARENT] [--mib 256] [--reps 5] [--keep]
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "fsc.h"

static void die(const char *what) {
    fprintf(stderr, "setfile_bench: %s: %s (%s)\n", what, strerror(errno), fsc_errmsg());
    exit(1);
}

/* dst becomes a copy of src (copy_file_range: what cp does). */
static void copy_file(const char *src, const char *dst, size_t len) {
    int in = open(src, O_RDONLY | O_CLOEXEC), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0)
        die("open");
    for (size_t done = 0; done < len;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, len - done, 0);
        if (n <= 0)
            die("copy_file_range");
        done += (size_t)n;
    }
    close(in);
    close(out);
}

extern char **environ;

static double cpu_ms(const struct rusage *ru) {
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1e3 +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e3;
}

static double self_cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return cpu_ms(&ru);
}

/* The time of `cp [flag] src dst` (dst removed first), exec included, and
 * the CPU time (user + system) it took in *cpu. */
static double run_cp(const char *flag, const char *src, const char *dst, double *cpu) {
    char *argv[] = {"cp", (char *)flag, (char *)src, (char *)dst, NULL};
    if (!flag)
        memmove(argv + 1, argv + 2, 3 * sizeof *argv);
    unlink(dst);
    pid_t pid;
    int status;
    struct rusage ru;
    double t = bu_now();
    if (posix_spawnp(&pid, "cp", NULL, NULL, argv, environ) != 0 || wait4(pid, &status, 0, &ru) != pid ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("cp");
    t = (bu_now() - t) * 1e3;
    *cpu = cpu_ms(&ru);
    return t;
}

/* A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"). */
static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field)))
            v = atol(line + strlen(field));
    if (f)
        fclose(f);
    return v;
}

/* How far a copying fsc_set_file raises the peak RSS over the RSS before it
 * (writing 5 to clear_refs resets the peak). */
static long setfile_rss_kib(fsc_cache *c, const char *src) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f || fputs("5", f) < 0 || fclose(f) != 0)
        return -1;
    const long before = status_kib("VmRSS:");
    fsc_delete(c, "k", 1);
    if (fsc_set_file(c, "k", 1, -1, src, 0) != FSC_OK)
        die("fsc_set_file (copy)");
    return status_kib("VmHWM:") - before;
}

static void print_row(const char *what, double *ms, int reps, size_t mib) {
    const double med = bu_median(ms, reps);
    printf("%-34s %9.1f ms  (min %.1f, max %.1f)  %7.0f MiB/s\n", what, med, bu_min(ms, reps), bu_max(ms, reps),
           (double)mib / (med / 1000.0));
}

int main(int argc, char **argv) {
    const char *parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    size_t mib = 256;
    int reps = 5, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            parent = argv[++i];
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc)
            mib = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr, "usage: %s [--dir PARENT] [--mib 256] [--reps 5] [--keep]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 64 || mib < 1)
        return 2;
    const size_t len = mib << 20;
    char run[4096], src[4200], tmp[4200], cache[4200], floor_copy[4200], cp_copy[4200];
    if (bu_fresh_dir(parent, "fsc-setfile", run, sizeof run) != 0)
        die("run directory");
    snprintf(src, sizeof src, "%s/src", run);
    snprintf(tmp, sizeof tmp, "%s/tmp-src", run);
    snprintf(cache, sizeof cache, "%s/cache", run);
    snprintf(floor_copy, sizeof floor_copy, "%s/floor", run);
    snprintf(cp_copy, sizeof cp_copy, "%s/cp", run);
    printf("setfile_bench: %zu MiB, %d reps, %s (%s)\n", mib, reps, run, bu_fs_name(run));

    int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    /* Static: no large block freed beforehand changes how the library's
     * first buffers are allocated, and so the RSS measured. */
    static char block[1 << 20];
    for (size_t i = 0; i < (1u << 20); i++)
        block[i] = (char)(i * 2654435761u >> 13);
    for (size_t i = 0; i < mib; i++)
        if (write(fd, block, 1 << 20) != 1 << 20)
            die("write source");
    close(fd);

    fsc_options o;
    fsc_options_init(&o);
    o.cache_size = 0;
    fsc_cache *c;
    if (fsc_open(cache, &o, &c) != FSC_OK)
        die("fsc_open");
    const long rss_kib = setfile_rss_kib(c, src); /* the first set_file of the process */
    double floor_cp[64], fsc_cp[64], floor_mv[64], fsc_mv[64], cp_plain[64], cp_never[64];
    double ratio_plain[64], ratio_never[64], cpu_fsc[64], cpu_plain[64], cpu_never[64], cpu_ratio[64];
    for (int r = 0; r < reps; r++) {
        /* Odd repetitions copy with fsc first: neither goes always second. */
        double t;
        for (int turn = 0; turn < 2; turn++) {
            if (turn == r % 2) {
                fsc_delete(c, "k", 1);
                const double cpu = self_cpu_ms();
                t = bu_now();
                if (fsc_set_file(c, "k", 1, -1, src, 0) != FSC_OK)
                    die("fsc_set_file (copy)");
                fsc_cp[r] = (bu_now() - t) * 1e3;
                cpu_fsc[r] = self_cpu_ms() - cpu;
            } else {
                cp_plain[r] = run_cp(NULL, src, cp_copy, &cpu_plain[r]);
                cp_never[r] = run_cp("--reflink=never", src, cp_copy, &cpu_never[r]);
                unlink(floor_copy);
                t = bu_now();
                copy_file(src, floor_copy, len);
                floor_cp[r] = (bu_now() - t) * 1e3;
            }
        }
        ratio_plain[r] = fsc_cp[r] / cp_plain[r];
        ratio_never[r] = fsc_cp[r] / cp_never[r];
        cpu_ratio[r] = cpu_fsc[r] / cpu_plain[r];
        unlink(cp_copy);

        /* A file just written by its producer, renamed in. */
        copy_file(src, tmp, len);
        unlink(floor_copy);
        t = bu_now();
        if (rename(tmp, floor_copy) != 0)
            die("rename");
        floor_mv[r] = (bu_now() - t) * 1e3;

        copy_file(src, tmp, len);
        fsc_delete(c, "m", 1);
        t = bu_now();
        if (fsc_set_file(c, "m", 1, -1, tmp, FSC_MOVE) != FSC_OK)
            die("fsc_set_file (move)");
        fsc_mv[r] = (bu_now() - t) * 1e3;
    }
    print_row("floor: copy_file_range", floor_cp, reps, mib);
    print_row("cp", cp_plain, reps, mib);
    print_row("cp --reflink=never", cp_never, reps, mib);
    print_row("fsc_set_file (copy)", fsc_cp, reps, mib);
    printf("%-34s %9.2fx (min %.2f, max %.2f)\n", "  ratio to cp", bu_median(ratio_plain, reps),
           bu_min(ratio_plain, reps), bu_max(ratio_plain, reps));
    printf("%-34s %9.2fx (min %.2f, max %.2f)\n", "  ratio to cp --reflink=never", bu_median(ratio_never, reps),
           bu_min(ratio_never, reps), bu_max(ratio_never, reps));
    printf("%-34s %9ld KiB\n", "  peak RSS added by one copy", rss_kib);
    /* CPU time (user + system) is what a loaded machine disturbs least. */
    print_row("cpu: cp", cpu_plain, reps, mib);
    print_row("cpu: cp --reflink=never", cpu_never, reps, mib);
    print_row("cpu: fsc_set_file (copy)", cpu_fsc, reps, mib);
    printf("%-34s %9.2fx (min %.2f, max %.2f)\n", "  cpu ratio to cp", bu_median(cpu_ratio, reps),
           bu_min(cpu_ratio, reps), bu_max(cpu_ratio, reps));
    print_row("floor: rename", floor_mv, reps, mib);
    print_row("fsc_set_file (FSC_MOVE)", fsc_mv, reps, mib);
    fsc_close(c);

    /* fsc_get of the value, with and without verify_payloads (built against
     * an fsc.h older than the option: -DSETFILE_BENCH_NO_VERIFY_PAYLOADS). */
    for (int verifying = 0; verifying < 2; verifying++) {
        fsc_options_init(&o);
        o.cache_size = 0;
#ifndef SETFILE_BENCH_NO_VERIFY_PAYLOADS
        o.verify_payloads = verifying;
#else
        if (verifying)
            break;
#endif
        if (fsc_open(cache, &o, &c) != FSC_OK)
            die("fsc_open");
        double get[64];
        for (int r = 0; r < reps; r++) {
            fsc_entry *e = NULL;
            double t = bu_now();
            if (fsc_get(c, "k", 1, &e) != FSC_OK)
                die("fsc_get");
            get[r] = (bu_now() - t) * 1e3;
            fsc_entry_free(e);
        }
        print_row(verifying ? "fsc_get, verify_payloads = 1" : "fsc_get, verify_payloads = 0", get, reps, mib);
        fsc_close(c);
    }
    if (!keep)
        bu_rm_rf(run);
    return 0;
}
