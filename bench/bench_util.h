/*
 * Small helpers shared by the fsc benchmarks: clocks, medians, fresh run
 * directories, filesystem names and recursive removal.
 */
#ifndef FSC_BENCH_UTIL_H
#define FSC_BENCH_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

static inline double bu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time (user + system) of the process, seconds: unlike wall time, not
 * raised by other processes on a loaded machine. */
static inline double bu_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double bu_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bu_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts v). 0 for n == 0. */
static inline double bu_median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, bu_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Value at quantile q (0..1) of v[0..n) (sorts v). */
static inline double bu_quantile(double *v, int n, double q) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, bu_cmp_double);
    int i = (int)(q * (n - 1) + 0.5);
    return v[i];
}

static inline double bu_min(const double *v, int n) {
    double m = n ? v[0] : 0;
    for (int i = 1; i < n; i++)
        if (v[i] < m) m = v[i];
    return m;
}

static inline double bu_max(const double *v, int n) {
    double m = n ? v[0] : 0;
    for (int i = 1; i < n; i++)
        if (v[i] > m) m = v[i];
    return m;
}

/* A name for the filesystem holding path ("ext4", "tmpfs", ...). */
static inline const char *bu_fs_name(const char *path) {
    struct statfs s;
    if (statfs(path, &s) != 0) return "?";
    switch ((unsigned long)s.f_type) {
    case 0xEF53UL: return "ext4/ext3/ext2";
    case 0x01021994UL: return "tmpfs";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x6969UL: return "nfs";
    case 0x794c7630UL: return "overlayfs";
    default: return "other";
    }
}

/* Creates a fresh directory "<parent>/<prefix>-XXXXXX" into out. */
static inline int bu_fresh_dir(const char *parent, const char *prefix, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s-XXXXXX", parent, prefix);
    if (!mkdtemp(out)) {
        fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno));
        return -1;
    }
    return 0;
}

static int bu_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

/* rm -rf path (stays on one filesystem). */
static inline void bu_rm_rf(const char *path) { nftw(path, bu_rm_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT); }

/* Mean cost in µs of creating one empty file in a fresh directory under
 * parent (the directory is left in place). A slow result (> ~80 µs on ext4)
 * means the filesystem saw a mass deletion in the last minutes. */
static inline double bu_create_probe_us(const char *parent, int count) {
    char d[4096];
    if (bu_fresh_dir(parent, "probe", d, sizeof d) != 0) return -1;
    int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -1;
    double t0 = bu_now();
    for (int i = 0; i < count; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%d", i);
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) close(fd);
    }
    double us = (bu_now() - t0) / count * 1e6;
    close(dfd);
    return us;
}

static inline void bu_today(char *out, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M UTC", &tm);
}

/* The first three fields of /proc/loadavg ("?" when unreadable). */
static inline void bu_loadavg(char *out, size_t cap) {
    snprintf(out, cap, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

#endif
