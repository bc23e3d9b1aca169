/*
 * lock_bench: the cost of fsc's dogpile locks.
 *
 *  1. uncontended fsc_lock + fsc_unlock of one key, beside a bare
 *     fcntl(F_SETLK, F_WRLCK) + fcntl(F_SETLK, F_UNLCK) pair on one byte of a
 *     file in the same directory (interleaved in blocks, same run);
 *  2. fsc_get_or_create of a present key beside a plain fsc_get of it;
 *  3. stampede: N processes call fsc_get_or_create on one missing key at the
 *     same instant; the creator sleeps 300 ms. Reports wall time (release of
 *     the start barrier to the last caller's return) / 300 ms and how many
 *     times the creator ran (must be 1).
 *
 * Usage: lock_bench [--dir PARENT] [--ops N] [--procs 2,8,32] [--reps R]
 *                   [--sleep-ms MS] [--keep]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "fsc.h"

#define BLOCK 256
#define MAXREPS 64

static void die_fsc(const char *what, int rc) {
    fprintf(stderr, "lock_bench: %s: %s %s\n", what, fsc_strerror(rc), fsc_errmsg());
    exit(1);
}

/* ------------------------------------------------------------------ */
/* 1 and 2: interleaved micro loops                                    */
/* ------------------------------------------------------------------ */

typedef struct {
    fsc_cache *c;
    int lockfd;
    long errors;
} ctx;

static const char KEY[] = "lock-bench-key";

typedef void (*loop_fn)(ctx *x, long n);

static void loop_fcntl(ctx *x, long n) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_whence = SEEK_SET;
    fl.l_start = 1 << 20;
    fl.l_len = 1;
    for (long i = 0; i < n; i++) {
        fl.l_type = F_WRLCK;
        if (fcntl(x->lockfd, F_SETLK, &fl) != 0) x->errors++;
        fl.l_type = F_UNLCK;
        if (fcntl(x->lockfd, F_SETLK, &fl) != 0) x->errors++;
    }
}

static void loop_fsc_lock(ctx *x, long n) {
    for (long i = 0; i < n; i++) {
        fsc_lock_handle *h = NULL;
        if (fsc_lock(x->c, KEY, sizeof KEY - 1, -1, &h) != FSC_OK) {
            x->errors++;
            continue;
        }
        if (fsc_unlock(h) != FSC_OK) x->errors++;
    }
}

static void loop_fsc_trylock(ctx *x, long n) {
    for (long i = 0; i < n; i++) {
        fsc_lock_handle *h = NULL;
        if (fsc_lock(x->c, KEY, sizeof KEY - 1, 0, &h) != FSC_OK) {
            x->errors++;
            continue;
        }
        if (fsc_unlock(h) != FSC_OK) x->errors++;
    }
}

static int never_called(void *c, fsc_cache *cache, const void *k, size_t kl) {
    (void)c;
    (void)cache;
    (void)k;
    (void)kl;
    return 1;
}

static void loop_get(ctx *x, long n) {
    for (long i = 0; i < n; i++) {
        fsc_entry *e = NULL;
        if (fsc_get(x->c, KEY, sizeof KEY - 1, &e) != FSC_OK) {
            x->errors++;
            continue;
        }
        fsc_entry_free(e);
    }
}

static void loop_goc(ctx *x, long n) {
    for (long i = 0; i < n; i++) {
        fsc_entry *e = NULL;
        if (fsc_get_or_create(x->c, KEY, sizeof KEY - 1, -1, never_called, NULL, &e) != FSC_OK) {
            x->errors++;
            continue;
        }
        fsc_entry_free(e);
    }
}

/* per-op µs of a (baseline) and b, interleaved in blocks; reps times */
static void compare(ctx *x, const char *name_a, loop_fn a, const char *name_b, loop_fn b, long ops, int reps,
                    const char *target, double limit) {
    double ua[MAXREPS], ub[MAXREPS], r[MAXREPS];
    a(x, 1000); /* warm up */
    b(x, 1000);
    for (int rep = 0; rep < reps; rep++) {
        double ta = 0, tb = 0;
        for (long blk = 0; blk * BLOCK < ops; blk++) {
            for (int k = 0; k < 2; k++) {
                int which = (int)((blk + k + rep) & 1);
                double t0 = bu_now();
                (which ? b : a)(x, BLOCK);
                (which ? &tb : &ta)[0] += bu_now() - t0;
            }
        }
        long done = ((ops + BLOCK - 1) / BLOCK) * BLOCK;
        ua[rep] = ta / done * 1e6;
        ub[rep] = tb / done * 1e6;
        r[rep] = ub[rep] / ua[rep];
    }
    double lo = bu_min(r, reps), hi = bu_max(r, reps);
    double ma = bu_median(ua, reps), mb = bu_median(ub, reps), mr = bu_median(r, reps);
    char verdict[64] = "";
    if (limit > 0) snprintf(verdict, sizeof verdict, "<= %.1fx: %s", limit, mr <= limit ? "met" : "NOT met");
    printf("| %s | %.3f | %s | %.3f | %.2fx | %.2f-%.2f | %s |\n", name_a, ma, name_b, mb, mr, lo, hi,
           limit > 0 ? verdict : target);
}

/* ------------------------------------------------------------------ */
/* 3: stampede                                                         */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *counter;
    int sleep_ms;
} creator_ctx;

static int slow_creator(void *p, fsc_cache *c, const void *key, size_t kl) {
    creator_ctx *cc = p;
    int fd = open(cc->counter, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        char line[32];
        int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
        if (write(fd, line, (size_t)n) != n) return 1;
        close(fd);
    }
    usleep((useconds_t)cc->sleep_ms * 1000);
    static const char v[] = "stampede-value";
    return fsc_set(c, key, kl, v, sizeof v - 1) == FSC_OK ? 0 : 1;
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        if (ch == '\n') n++;
    fclose(f);
    return n;
}

/* one stampede of nproc processes on a fresh key; returns wall seconds */
static double stampede(const char *cdir, const char *root, int nproc, int rep, int sleep_ms, int *creators,
                       int *bad) {
    char key[64], counter[4300];
    snprintf(key, sizeof key, "stampede-%d-%d", nproc, rep);
    snprintf(counter, sizeof counter, "%s/counter-%d-%d", root, nproc, rep);
    int ready[2], go[2], res[2];
    if (pipe(ready) || pipe(go) || pipe(res)) {
        perror("pipe");
        exit(1);
    }
    for (int i = 0; i < nproc; i++) {
        pid_t p = fork();
        if (p < 0) {
            perror("fork");
            exit(1);
        }
        if (p == 0) {
            close(ready[0]);
            close(go[1]);
            close(res[0]);
            fsc_cache *c = NULL;
            if (fsc_open(cdir, NULL, &c) != FSC_OK) _exit(3);
            char b = 1, x;
            if (write(ready[1], &b, 1) != 1) _exit(3);
            if (read(go[0], &x, 1) < 0) _exit(3); /* EOF when the parent closes go[1] */
            creator_ctx cc = {counter, sleep_ms};
            fsc_entry *e = NULL;
            int rc = fsc_get_or_create(c, key, strlen(key), -1, slow_creator, &cc, &e);
            double end = bu_now();
            int ok = rc == FSC_OK && fsc_entry_size(e) == 14 && memcmp(fsc_entry_data(e), "stampede-value", 14) == 0;
            fsc_entry_free(e);
            struct {
                double end;
                int ok;
            } msg = {end, ok};
            if (write(res[1], &msg, sizeof msg) != (ssize_t)sizeof msg) _exit(3);
            fsc_close(c);
            _exit(0);
        }
    }
    close(ready[1]);
    close(go[0]);
    close(res[1]);
    for (int got = 0; got < nproc;) {
        char b[64];
        ssize_t r = read(ready[0], b, sizeof b);
        if (r <= 0) {
            fprintf(stderr, "lock_bench: a stampede process failed to start\n");
            exit(1);
        }
        got += (int)r;
    }
    double t0 = bu_now();
    close(go[1]);
    double last = t0;
    *bad = 0;
    for (int i = 0; i < nproc; i++) {
        struct {
            double end;
            int ok;
        } msg;
        if (read(res[0], &msg, sizeof msg) != (ssize_t)sizeof msg) {
            (*bad)++;
            continue;
        }
        if (msg.end > last) last = msg.end;
        if (!msg.ok) (*bad)++;
    }
    for (int i = 0; i < nproc; i++) wait(NULL);
    close(ready[0]);
    close(res[0]);
    *creators = count_lines(counter);
    return last - t0;
}

int main(int argc, char **argv) {
    const char *parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    long ops = 200000;
    int procs[8] = {2, 8, 32}, nprocs = 3, reps = 5, sleep_ms = 300, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            parent = argv[++i];
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            ops = atol(argv[++i]);
        else if (!strcmp(argv[i], "--procs") && i + 1 < argc) {
            nprocs = 0;
            for (char *p = strtok(argv[++i], ","); p && nprocs < 8; p = strtok(NULL, ",")) procs[nprocs++] = atoi(p);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sleep-ms") && i + 1 < argc)
            sleep_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr, "usage: %s [--dir PARENT] [--ops N] [--procs 2,8,32] [--reps R] [--sleep-ms MS] [--keep]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (reps > MAXREPS) reps = MAXREPS;
    char root[4200], cdir[4300], lockpath[4300], date[64];
    if (bu_fresh_dir(parent, "fsc-lock-bench", root, sizeof root) != 0) return 1;
    snprintf(cdir, sizeof cdir, "%s/cache", root);
    snprintf(lockpath, sizeof lockpath, "%s/bare.lock", root);
    bu_today(date, sizeof date);
    char load[64];
    bu_loadavg(load, sizeof load);
    printf("# lock_bench: fsc %s\n\ndate: %s; dir: %s (%s); load average: %s; %ld CPUs\n\n", fsc_version(), date, root,
           bu_fs_name(root), load, sysconf(_SC_NPROCESSORS_ONLN));

    ctx x = {0};
    int rc = fsc_open(cdir, NULL, &x.c);
    if (rc != FSC_OK) die_fsc("fsc_open", rc);
    x.lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (x.lockfd < 0) {
        perror(lockpath);
        return 1;
    }
    static const char v[] = "a small value of the lock benchmark";
    rc = fsc_set(x.c, KEY, sizeof KEY - 1, v, sizeof v - 1);
    if (rc != FSC_OK) die_fsc("fsc_set", rc);

    printf("%ld ops per rep, %d reps, interleaved in blocks of %d; ratio = b/a per rep, median (min-max)\n\n", ops,
           reps, BLOCK);
    printf("| a (baseline) | a us/op | b | b us/op | ratio b/a | range | target |\n|---|---|---|---|---|---|---|\n");
    compare(&x, "fcntl F_SETLK lock+unlock", loop_fcntl, "fsc_lock(-1)+fsc_unlock", loop_fsc_lock, ops, reps, "", 2.0);
    compare(&x, "fcntl F_SETLK lock+unlock", loop_fcntl, "fsc_lock(0)+fsc_unlock", loop_fsc_trylock, ops, reps, "", 2.0);
    compare(&x, "fsc_get+free (hit)", loop_get, "fsc_get_or_create+free (hit)", loop_goc, ops / 4, reps,
            "(no target)", 0);
    if (x.errors) fprintf(stderr, "lock_bench: %ld operations failed (%s)\n", x.errors, fsc_errmsg());
    close(x.lockfd);
    fsc_close(x.c);

    printf("\nstampede: N processes, fsc_get_or_create on one missing key, creator sleeps %d ms; %d reps (fresh key "
           "each)\n\n",
           sleep_ms, reps);
    printf("| N | wall ms (median) | wall / %d ms | min-max ratio | creator calls per rep | failed callers |\n"
           "|---|---|---|---|---|---|\n",
           sleep_ms);
    for (int pi = 0; pi < nprocs; pi++) {
        double w[MAXREPS];
        char calls[512] = "";
        int allbad = 0;
        for (int rep = 0; rep < reps; rep++) {
            int creators = 0, bad = 0;
            fprintf(stderr, "[lock_bench] stampede N=%d rep %d/%d\n", procs[pi], rep + 1, reps);
            w[rep] = stampede(cdir, root, procs[pi], rep, sleep_ms, &creators, &bad) * 1e3;
            size_t l = strlen(calls);
            snprintf(calls + l, sizeof calls - l, "%s%d", rep ? "," : "", creators);
            allbad += bad;
        }
        double lo = bu_min(w, reps) / sleep_ms, hi = bu_max(w, reps) / sleep_ms;
        double m = bu_median(w, reps);
        printf("| %d | %.1f | %.3fx | %.3f-%.3f | %s | %d |\n", procs[pi], m, m / sleep_ms, lo, hi, calls, allbad);
    }
    if (keep)
        printf("\nkept: %s\n", root);
    else
        bu_rm_rf(root);
    return 0;
}
