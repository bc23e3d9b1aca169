/*
 * core_bench: single-process fsc_set / fsc_get (hit) / fsc_get (miss) of
 * small values, each measured beside the syscall floor of a file-per-entry
 * store in the same run, on the same filesystem, interleaved in blocks of
 * operations so that both see the same machine noise.
 *
 * The floor does only what a file-per-entry store must do, in fsc's layout
 * (base/tmp/ for temp files, base/shards/xx/<32 hex> for entries, directory
 * descriptors kept open):
 *   set:  openat(tmp, O_CREAT|O_EXCL) + write + close + renameat into the shard
 *   get:  openat(shard, name) + fstat + read + close
 *   miss: openat(shard, name) failing with ENOENT
 *
 * Usage: core_bench [--dir PARENT] [--sizes 1000,100000] [--big] [--reps R]
 *                   [--value BYTES] [--w2 SAMPLES] [--keep]
 *   --big adds 1,000,000 entries (about 2 x 4 GiB of files on ext4).
 * Every store lives in a fresh directory under PARENT/fsc-core-bench-XXXXXX,
 * removed at the end unless --keep.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "fsc.h"

#define STRIDE 7919
#define BLOCK 64
#define MAXREPS 64

/* ------------------------------------------------------------------ */
/* The syscall floor                                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    int tmp, shards;
    int shard_fd[256];
    unsigned long ctr;
} floor_store;

static uint64_t fnv1a(const char *s, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* 32 hex digits of the key; returns the shard (first byte). */
static unsigned floor_name(const char *key, size_t n, char hex[33]) {
    uint64_t a = fnv1a(key, n, 1469598103934665603ULL);
    uint64_t b = fnv1a(key, n, 0x9e3779b97f4a7c15ULL);
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
    return (unsigned)(a >> 56);
}

static int floor_open(floor_store *f, const char *dir) {
    mkdir(dir, 0700);
    int base = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (base < 0) return -1;
    mkdirat(base, "tmp", 0700);
    mkdirat(base, "shards", 0700);
    f->tmp = openat(base, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    f->shards = openat(base, "shards", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(base);
    for (int i = 0; i < 256; i++) f->shard_fd[i] = -1;
    f->ctr = 0;
    return f->tmp >= 0 && f->shards >= 0 ? 0 : -1;
}

static void floor_close(floor_store *f) {
    for (int i = 0; i < 256; i++)
        if (f->shard_fd[i] >= 0) close(f->shard_fd[i]);
    close(f->tmp);
    close(f->shards);
}

static int floor_shard(floor_store *f, unsigned s, int create) {
    if (f->shard_fd[s] >= 0) return f->shard_fd[s];
    char name[3];
    snprintf(name, sizeof name, "%02x", s);
    int fd = openat(f->shards, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        mkdirat(f->shards, name, 0700);
        fd = openat(f->shards, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    f->shard_fd[s] = fd;
    return fd;
}

static int floor_set(floor_store *f, const char *key, size_t kl, const char *val, size_t n) {
    char hex[33], tmp[48];
    unsigned s = floor_name(key, kl, hex);
    int dir = floor_shard(f, s, 1);
    snprintf(tmp, sizeof tmp, "%d.%lu", (int)getpid(), f->ctr++);
    int fd = openat(f->tmp, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    if (write(fd, val, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    close(fd);
    return renameat(f->tmp, tmp, dir, hex);
}

/* bytes read, -1 on a miss */
static ssize_t floor_get(floor_store *f, const char *key, size_t kl, char *buf, size_t cap) {
    char hex[33];
    unsigned s = floor_name(key, kl, hex);
    int dir = floor_shard(f, s, 0);
    if (dir < 0) return -1;
    int fd = openat(dir, hex, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size > cap) {
        close(fd);
        return -1;
    }
    ssize_t r = read(fd, buf, (size_t)st.st_size);
    close(fd);
    return r;
}

/* ------------------------------------------------------------------ */
/* The two stores behind one interface                                 */
/* ------------------------------------------------------------------ */

typedef struct {
    floor_store fl;
    fsc_cache *c;
    char *val, *buf;
    size_t valsize;
    long errors;
} stores;

static void make_value(const char *key, size_t kl, char *v, size_t size) {
    memset(v, 'x', size);
    memcpy(v, key, kl < size ? kl : size);
    if (kl < size) v[kl] = ':';
}

static int key_of(char *k, const char *prefix, long i) { return snprintf(k, 32, "%s-%08ld", prefix, i); }

enum op { OP_SET, OP_HIT, OP_MISS };

/* Runs ops [from, to) of one kind on one store (0 floor, 1 fsc). */
static void run_ops(stores *s, int which, enum op op, const char *prefix, long from, long to, long n) {
    char key[32];
    for (long i = from; i < to; i++) {
        long idx = op == OP_HIT ? (long)(((long long)i * STRIDE) % n) : i;
        int kl = key_of(key, prefix, idx);
        if (op == OP_SET) {
            make_value(key, (size_t)kl, s->val, s->valsize);
            int rc = which ? fsc_set(s->c, key, (size_t)kl, s->val, s->valsize)
                           : floor_set(&s->fl, key, (size_t)kl, s->val, s->valsize);
            if (rc != 0) s->errors++;
        } else if (which == 0) {
            ssize_t r = floor_get(&s->fl, key, (size_t)kl, s->buf, s->valsize * 2);
            if (op == OP_HIT ? r != (ssize_t)s->valsize : r >= 0) s->errors++;
        } else {
            fsc_entry *e = NULL;
            int rc = fsc_get(s->c, key, (size_t)kl, &e);
            if (op == OP_HIT) {
                const void *d = rc == FSC_OK ? fsc_entry_data(e) : NULL;
                if (!d || fsc_entry_size(e) != s->valsize || memcmp(d, key, (size_t)kl) != 0) s->errors++;
                fsc_entry_free(e);
            } else if (rc != FSC_MISS) {
                s->errors++;
                fsc_entry_free(e);
            }
        }
    }
}

/* count ops (keys i mod n for hits), interleaved in blocks; t[0] floor, t[1] fsc seconds */
static void interleaved(stores *s, enum op op, const char *prefix, long count, long n, double t[2]) {
    t[0] = t[1] = 0;
    for (long b = 0; b * BLOCK < count; b++) {
        long from = b * BLOCK, to = from + BLOCK < count ? from + BLOCK : count;
        for (int k = 0; k < 2; k++) {
            int which = (int)((b + k) & 1);
            double a = bu_now();
            run_ops(s, which, op, prefix, from, to, n);
            t[which] += bu_now() - a;
        }
    }
}

/* ------------------------------------------------------------------ */

typedef struct {
    long n;
    int reps;
    /* per rep: per-op µs of floor/fsc, per phase */
    double set[2][MAXREPS], hit[2][MAXREPS], miss[2][MAXREPS], w2[2][MAXREPS], w2p90[2][MAXREPS];
    double evict[2][MAXREPS]; /* [0]: floor set-w2; [1]: fsc sets into a full cache, each needing room */
    /* CPU time (user + system) per set, mean over the samples: [0] floor
     * set-w2, [1] fsc's evicting sets (a set that evicts for the next few
     * sets too is counted whole: this is what a stream of sets pays) */
    double evict_cpu[2][MAXREPS];
    long errors;
} result;

static void one_rep(const char *root, long n, int rep, size_t valsize, int w2n, result *r) {
    char fdir[4300], cdir[4300];
    snprintf(fdir, sizeof fdir, "%s/floor-%ld-%d", root, n, rep);
    snprintf(cdir, sizeof cdir, "%s/fsc-%ld-%d", root, n, rep);
    stores s;
    memset(&s, 0, sizeof s);
    s.valsize = valsize;
    s.val = malloc(valsize);
    s.buf = malloc(valsize * 2 + 16);
    if (floor_open(&s.fl, fdir) != 0) {
        perror("floor store");
        exit(1);
    }
    fsc_options o;
    fsc_options_init(&o);
    o.cache_size = 16ULL << 30; /* no eviction at any size measured here */
    int rc = fsc_open(cdir, &o, &s.c);
    if (rc != FSC_OK) {
        fprintf(stderr, "fsc_open %s: %s %s\n", cdir, fsc_strerror(rc), fsc_errmsg());
        exit(1);
    }
    double t[2];

    /* fill: N sets of new keys into an empty store */
    interleaved(&s, OP_SET, "key", n, n, t);
    for (int w = 0; w < 2; w++) r->set[w][rep] = t[w] / n * 1e6;

    /* W2: single sets of new keys into the store holding N entries */
    double *lat[2] = {malloc(sizeof(double) * (size_t)w2n), malloc(sizeof(double) * (size_t)w2n)};
    double cpu[2] = {0, 0};
    for (int j = 0; j < w2n; j++) {
        for (int k = 0; k < 2; k++) {
            int which = (j + k) & 1;
            double c = bu_cpu_now(), a = bu_now();
            run_ops(&s, which, OP_SET, "w2", j, j + 1, 1);
            lat[which][j] = (bu_now() - a) * 1e6;
            cpu[which] += bu_cpu_now() - c;
        }
    }
    r->evict_cpu[0][rep] = cpu[0] / w2n * 1e6;
    for (int w = 0; w < 2; w++) {
        r->w2[w][rep] = bu_median(lat[w], w2n);
        r->w2p90[w][rep] = bu_quantile(lat[w], w2n, 0.9);
        free(lat[w]);
    }

    /* gets: at least ~100k operations per phase */
    long count = n >= 100000 ? n : 100000;
    interleaved(&s, OP_HIT, "key", count, n, t);
    for (int w = 0; w < 2; w++) r->hit[w][rep] = t[w] / count * 1e6;
    interleaved(&s, OP_MISS, "miss", count, n, t);
    for (int w = 0; w < 2; w++) r->miss[w][rep] = t[w] / count * 1e6;

    /* set-evict: single sets of new keys into the cache made full (cache_size
     * = its bytes now), so that every set evicts; beside the floor's set-w2. */
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (fsc_stats(s.c, &st) != FSC_OK) s.errors++;
    fsc_cache *full = NULL;
    o.cache_size = st.bytes;
    if (fsc_open(cdir, &o, &full) != FSC_OK) {
        fprintf(stderr, "fsc_open %s: %s\n", cdir, fsc_errmsg());
        exit(1);
    }
    fsc_cache *roomy = s.c;
    s.c = full;
    double *elat = malloc(sizeof(double) * (size_t)w2n);
    double ecpu = bu_cpu_now();
    for (int j = 0; j < w2n; j++) {
        double a = bu_now();
        run_ops(&s, 1, OP_SET, "ev", j, j + 1, 1);
        elat[j] = (bu_now() - a) * 1e6;
    }
    r->evict_cpu[1][rep] = (bu_cpu_now() - ecpu) / w2n * 1e6;
    r->evict[0][rep] = r->w2[0][rep];
    r->evict[1][rep] = bu_median(elat, w2n);
    free(elat);
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (fsc_stats(full, &st) != FSC_OK || st.evictions == 0 || st.bytes > o.cache_size) {
        fprintf(stderr, "core_bench: set-evict at N=%ld did not evict within the budget (evictions %llu)\n", n,
                (unsigned long long)st.evictions);
        s.errors++;
    }
    fsc_close(full);
    s.c = roomy;

    if (s.errors) fprintf(stderr, "core_bench: %ld operations failed at N=%ld (%s)\n", s.errors, n, fsc_errmsg());
    r->errors += s.errors;
    fsc_close(s.c);
    floor_close(&s.fl);
    free(s.val);
    free(s.buf);
    /* on tmpfs removing files costs nothing later: free the memory at once */
    if (!strcmp(bu_fs_name(root), "tmpfs")) {
        bu_rm_rf(fdir);
        bu_rm_rf(cdir);
    }
}

static void ratios(const double *a, const double *b, int n, double *med, double *lo, double *hi) {
    double v[MAXREPS] = {0};
    for (int i = 0; i < n; i++) v[i] = a[i] / b[i];
    *lo = bu_min(v, n);
    *hi = bu_max(v, n);
    *med = bu_median(v, n);
}

static double med_of(const double *a, int n) {
    double v[MAXREPS] = {0};
    memcpy(v, a, sizeof(double) * (size_t)n);
    return bu_median(v, n);
}

static void print_row(const char *what, long n, double (*x)[MAXREPS], int reps, double limit) {
    double m, lo, hi;
    ratios(x[1], x[0], reps, &m, &lo, &hi);
    char verdict[64] = "";
    if (limit > 0) snprintf(verdict, sizeof verdict, "<= %.1fx: %s", limit, m <= limit ? "met" : "NOT met");
    printf("| %-8s | %9ld | %4d | %9.2f | %9.2f | %5.2fx | %5.2f-%5.2f | %-16s |\n", what, n, reps, med_of(x[0], reps),
           med_of(x[1], reps), m, lo, hi, verdict);
}

int main(int argc, char **argv) {
    const char *parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    long sizes[8] = {1000, 100000};
    int nsizes = 2, reps_opt = 0, keep = 0, w2n = 200;
    size_t valsize = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            parent = argv[++i];
        else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            nsizes = 0;
            for (char *p = strtok(argv[++i], ","); p && nsizes < 7; p = strtok(NULL, ",")) sizes[nsizes++] = atol(p);
        } else if (!strcmp(argv[i], "--big"))
            sizes[nsizes++] = 1000000;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps_opt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--value") && i + 1 < argc)
            valsize = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--w2") && i + 1 < argc)
            w2n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--dir PARENT] [--sizes 1000,100000] [--big] [--reps R] [--value BYTES] [--w2 N] [--keep]\n",
                    argv[0]);
            return 2;
        }
    }
    if (valsize < 32) valsize = 32;
    if (w2n < 3) w2n = 3;
    char root[4200], date[64];
    if (bu_fresh_dir(parent, "fsc-core-bench", root, sizeof root) != 0) return 1;
    bu_today(date, sizeof date);
    printf("# core_bench: fsc %s vs syscall floor, %zu-byte values\n\n", fsc_version(), valsize);
    char load[64];
    bu_loadavg(load, sizeof load);
    printf("date: %s; dir: %s (%s); create probe: %.1f us/file; load average: %s; %ld CPUs\n", date, root,
           bu_fs_name(root), bu_create_probe_us(root, 1000), load, sysconf(_SC_NPROCESSORS_ONLN));
    printf("floor = openat(tmp)+write+close+renameat (set), openat+fstat+read+close (get), openat ENOENT (miss);\n"
           "both interleaved in blocks of %d ops; ratio = fsc/floor per rep, median (min-max) over reps.\n\n",
           BLOCK);

    result res[8];
    for (int si = 0; si < nsizes; si++) {
        long n = sizes[si];
        int reps = reps_opt > 0 ? reps_opt : n <= 10000 ? 9 : n <= 100000 ? 3 : 1;
        if (reps > MAXREPS) reps = MAXREPS;
        res[si].n = n;
        res[si].reps = reps;
        res[si].errors = 0;
        for (int rep = 0; rep < reps; rep++) {
            fprintf(stderr, "[core_bench] N=%ld rep %d/%d\n", n, rep + 1, reps);
            one_rep(root, n, rep, valsize, w2n, &res[si]);
        }
    }

    printf("| op       |   entries | reps |  floor us |    fsc us | ratio  | range       | target           |\n");
    printf("|----------|-----------|------|-----------|-----------|--------|-------------|------------------|\n");
    for (int si = 0; si < nsizes; si++) {
        result *r = &res[si];
        print_row("set", r->n, r->set, r->reps, 1.5);
        print_row("set-w2", r->n, r->w2, r->reps, 0);
        print_row("get-hit", r->n, r->hit, r->reps, 1.5);
        print_row("get-miss", r->n, r->miss, r->reps, 0);
        print_row("set-evict", r->n, r->evict, r->reps, 0);
        print_row("evict-cpu", r->n, r->evict_cpu, r->reps, 0);
        if (r->errors) printf("| INVALID  | %9ld | %ld operations failed (see stderr) |\n", r->n, r->errors);
    }
    printf("\nset = mean per-op of the N-set fill of an empty store; get-hit/get-miss = mean over max(N, 100000) gets;\n");
    printf("set-w2 = median latency of %d single sets of new keys into the store holding N entries;\n", w2n);
    printf("set-evict = the same into fsc made full (cache_size = its bytes), every set needing room, beside floor set-w2.\n");
    printf("evict-cpu = CPU time (user+system) per set, mean over those sets (fsc) and over floor set-w2.\n");

    /* scaling against the smallest size */
    printf("\nscaling (median per-op at N / at %ld):\n\n", res[0].n);
    printf("| entries | fsc set fill | fsc set-w2 | fsc set-evict | floor set fill | floor set-w2 | fsc get-hit | "
           "floor get-hit | get-hit throughput fsc/floor |\n|---|---|---|---|---|---|---|---|---|\n");
    double w2_1m = 0, ev_1m = 0;
    for (int si = 0; si < nsizes; si++) {
        result *r = &res[si], *b = &res[0];
        double m, lo, hi;
        ratios(r->hit[0], r->hit[1], r->reps, &m, &lo, &hi);
        printf("| %ld | %.2fx | %.2fx | %.2fx | %.2fx | %.2fx | %.2fx | %.2fx | %.2fx%s |\n", r->n,
               med_of(r->set[1], r->reps) / med_of(b->set[1], b->reps),
               med_of(r->w2[1], r->reps) / med_of(b->w2[1], b->reps),
               med_of(r->evict[1], r->reps) / med_of(b->evict[1], b->reps),
               med_of(r->set[0], r->reps) / med_of(b->set[0], b->reps),
               med_of(r->w2[0], r->reps) / med_of(b->w2[0], b->reps),
               med_of(r->hit[1], r->reps) / med_of(b->hit[1], b->reps),
               med_of(r->hit[0], r->reps) / med_of(b->hit[0], b->reps), m,
               r->n >= 1000000 ? (m >= 2 ? " (>= 2x: met)" : " (>= 2x: NOT met)") : "");
        if (r->n >= 1000000) {
            w2_1m = med_of(r->w2[1], r->reps) / med_of(b->w2[1], b->reps);
            ev_1m = med_of(r->evict[1], r->reps) / med_of(b->evict[1], b->reps);
        }
    }
    if (w2_1m > 0) {
        printf("\nfsc set latency (set-w2 median) at 1M / at %ld: %.2fx (<= 1.3x: %s)\n", res[0].n, w2_1m,
               w2_1m <= 1.3 ? "met" : "NOT met");
        printf("fsc evicting set latency (set-evict median) at 1M / at %ld: %.2fx (<= 1.3x: %s)\n", res[0].n, ev_1m,
               ev_1m <= 1.3 ? "met" : "NOT met");
    }
    if (keep)
        printf("\nkept: %s\n", root);
    else
        bu_rm_rf(root);
    return 0;
}
