/*
 * fsc as a peer of the shared peer benchmark harness (same command-line
 * protocol as every peer there: an operation, its arguments, one JSON object
 * as the last stdout line).  Adapted from the harness's C syscall-floor peer
 * (floor/peer.c): the workloads are the same, the store is libfsc.
 *
 *   w12   fsc_set / fsc_get (+ fsc_entry_data) of small values
 *   w3put fsc_set_file from a descriptor (streamed copy, never in memory)
 *   w3get fsc_get + read of fsc_entry_fd to EOF (streamed)
 *   w4    fsc_get_or_create (cross-process dogpile lock); the creator appends
 *         to the counter file, sleeps, and stores the value with fsc_set
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "fsc.h"

#define STRIDE 7919

static fsc_cache *g_cache;

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int open_cache(const char *dir) {
    fsc_options o;
    fsc_options_init(&o);
    o.cache_size = 4ULL << 30; /* as the diskcache peer: 4 GiB, no eviction in these workloads */
    int rc = fsc_open(dir, &o, &g_cache);
    if (rc != FSC_OK) {
        printf("{\"error\":\"fsc_open: %s\"}\n", fsc_strerror(rc));
        fprintf(stderr, "fsc_open %s: %s\n", dir, fsc_errmsg());
        return -1;
    }
    return 0;
}

static int cache_set(const char *key, const char *val, size_t n) {
    return fsc_set(g_cache, key, strlen(key), val, n) == FSC_OK ? 0 : -1;
}

/* the value's size when it is there and starts with the key, -1 on a miss;
 * expect < 0: only look the key up */
static long cache_get(const char *key, int expect) {
    fsc_entry *e = NULL;
    size_t kl = strlen(key);
    if (fsc_get(g_cache, key, kl, &e) != FSC_OK) return -1;
    long size = (long)fsc_entry_size(e);
    if (expect >= 0) {
        const char *d = fsc_entry_data(e);
        if (!d || memcmp(d, key, kl) != 0) size = -2;
    }
    fsc_entry_free(e);
    return size;
}

static void make_value(const char *key, char *v, size_t size) {
    size_t kl = strlen(key);
    memset(v, 'x', size);
    size_t c = kl + 1 < size ? kl : size;
    memcpy(v, key, c);
    if (kl < size) v[kl] = ':';
}

static int op_w12(int n, int valsize, int w2max, double w2budget, double setbudget, const char *fill) {
    if (strcmp(fill, "normal") != 0) {
        printf("{\"error\":\"fast fill not supported\"}\n");
        return 1;
    }
    char key[64];
    char *val = malloc((size_t)valsize);
    double t0 = now_mono();
    int done = 0, timed_out = 0;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key-%08d", i);
        make_value(key, val, (size_t)valsize);
        if (cache_set(key, val, (size_t)valsize) != 0) {
            printf("{\"error\":\"set failed: %s\"}\n", fsc_errmsg());
            return 1;
        }
        done++;
        if ((done & 63) == 0 && now_mono() - t0 > setbudget) {
            timed_out = 1;
            break;
        }
    }
    double set_s = now_mono() - t0;
    if (timed_out) {
        printf("{\"n\":%d,\"fill\":\"normal\",\"set_s\":null,\"set_done\":%d,\"set_timeout\":true,\"fill_s\":%.6f}\n",
               n, done, set_s);
        return 0;
    }
    double *lat = malloc(sizeof(double) * (size_t)(w2max > 0 ? w2max : 1));
    int nl = 0;
    double tw = now_mono();
    for (int j = 0; j < w2max; j++) {
        snprintf(key, sizeof key, "w2-%08d", j);
        make_value(key, val, (size_t)valsize);
        double a = now_mono();
        cache_set(key, val, (size_t)valsize);
        lat[nl++] = (now_mono() - a) * 1e6;
        if (nl >= 3 && now_mono() - tw > w2budget) break;
    }
    int ok = 0;
    t0 = now_mono();
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key-%08d", (int)(((long long)i * STRIDE) % n));
        if (cache_get(key, valsize) == valsize) ok++;
    }
    double hit_s = now_mono() - t0;
    int bad = 0;
    t0 = now_mono();
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "miss-%08d", i);
        if (cache_get(key, -1) >= 0) bad++;
    }
    double miss_s = now_mono() - t0;
    printf("{\"n\":%d,\"fill\":\"normal\",\"set_s\":%.6f,\"fill_s\":%.6f,\"set_done\":%d,\"set_timeout\":false,"
           "\"get_hit_s\":%.6f,\"hits_ok\":%d,\"get_miss_s\":%.6f,\"miss_bad\":%d,\"w2_us\":[",
           n, set_s, set_s, done, hit_s, ok, miss_s, bad);
    for (int j = 0; j < nl; j++) printf("%s%.3f", j ? "," : "", lat[j]);
    printf("]}\n");
    return 0;
}

#define CHUNK (1 << 20)

static int op_w3put(const char *src) {
    double t0 = now_mono();
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        printf("{\"error\":\"open %s: %s\"}\n", src, strerror(errno));
        return 1;
    }
    int rc = fsc_set_file(g_cache, "big", 3, in, NULL, 0);
    close(in);
    if (rc != FSC_OK) {
        printf("{\"error\":\"fsc_set_file: %s\"}\n", fsc_strerror(rc));
        fprintf(stderr, "%s\n", fsc_errmsg());
        return 1;
    }
    printf("{\"put_s\":%.6f,\"mode\":\"stream\"}\n", now_mono() - t0);
    return 0;
}

static int op_w3get(void) {
    double t0 = now_mono();
    fsc_entry *e = NULL;
    if (fsc_get(g_cache, "big", 3, &e) != FSC_OK) {
        printf("{\"get_s\":null,\"bytes\":-1,\"mode\":\"miss\"}\n");
        return 0;
    }
    int fd = fsc_entry_fd(e); /* positioned at the value's start (offset 0 at w3put) */
    char *b = malloc(CHUNK);
    long long n = 0;
    for (;;) {
        ssize_t r = read(fd, b, CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += r;
    }
    fsc_entry_free(e);
    free(b);
    printf("{\"get_s\":%.6f,\"bytes\":%lld,\"mode\":\"stream\"}\n", now_mono() - t0, n);
    return 0;
}

typedef struct {
    const char *counter;
    double sleep_s;
    const char *value;
} w4_ctx;

static int w4_create(void *p, fsc_cache *c, const void *key, size_t key_len) {
    w4_ctx *x = p;
    int fd = open(x->counter, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return 1;
    char line[32];
    int ll = snprintf(line, sizeof line, "%d\n", (int)getpid());
    if (write(fd, line, (size_t)ll) < 0) {
        close(fd);
        return 1;
    }
    close(fd);
    usleep((useconds_t)(x->sleep_s * 1e6));
    return fsc_set(c, key, key_len, x->value, strlen(x->value)) == FSC_OK ? 0 : 1;
}

static int op_w4(const char *key, double sleep_s, const char *gofile, const char *counter,
                 const char *readyfile) {
    int rf = open(readyfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (rf >= 0) close(rf);
    struct stat st;
    while (stat(gofile, &st) != 0) usleep(2000);
    double t0 = 0;
    FILE *g = fopen(gofile, "r");
    if (!g || fscanf(g, "%lf", &t0) != 1) return 1;
    fclose(g);
    double d = t0 - now_wall();
    if (d > 0) usleep((useconds_t)(d * 1e6));
    double start = now_wall();

    char expect[256];
    snprintf(expect, sizeof expect, "value-for-%s", key);
    w4_ctx x = {counter, sleep_s, expect};
    fsc_entry *e = NULL;
    int rc = fsc_get_or_create(g_cache, key, strlen(key), -1, w4_create, &x, &e);
    double end = now_wall();
    int ok = 0;
    if (rc == FSC_OK) {
        const char *v = fsc_entry_data(e);
        ok = v && fsc_entry_size(e) == strlen(expect) && memcmp(v, expect, strlen(expect)) == 0;
        fsc_entry_free(e);
    } else {
        fprintf(stderr, "fsc_get_or_create: %s %s\n", fsc_strerror(rc), fsc_errmsg());
    }
    printf("{\"start_late_ms\":%.3f,\"end\":%.6f,\"value_ok\":%s}\n", (start - t0) * 1e3, end,
           ok ? "true" : "false");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fsc_peer <op> args...\n");
        return 2;
    }
    const char *op = argv[1];
    if (!strcmp(op, "noop") || !strcmp(op, "info")) {
        printf("{\"version\":\"fsc %s (C, libfsc)\"}\n", fsc_version());
        return 0;
    }
    if (argc < 3) return 2;
    if (open_cache(argv[2]) != 0) return 1;
    int rc = 2;
    if (!strcmp(op, "w12") && argc >= 9)
        rc = op_w12(atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atof(argv[6]), atof(argv[7]), argv[8]);
    else if (!strcmp(op, "w3put") && argc >= 4)
        rc = op_w3put(argv[3]);
    else if (!strcmp(op, "w3get"))
        rc = op_w3get();
    else if (!strcmp(op, "w4") && argc >= 8)
        rc = op_w4(argv[3], atof(argv[4]), argv[5], argv[6], argv[7]);
    else
        fprintf(stderr, "bad op/args\n");
    fsc_close(g_cache);
    return rc;
}
