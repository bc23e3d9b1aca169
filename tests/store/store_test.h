/* Tools shared by the storage suites: opening a cache with given limits,
 * self-checking values, what the cache directory holds on disk, statistics
 * and verify reports, and pipes between processes. Include after fsc_test.h. */
#ifndef FSC_STORE_TEST_H
#define FSC_STORE_TEST_H

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "fsc_test.h"

#define ST_PATH_MAX 4096

/* ------------------------------------------------------------------ */
/* Opening and simple queries                                          */
/* ------------------------------------------------------------------ */

/* pack_limit 0 gives every value a file of its own (FSC_PACKING). */
static inline fsc_cache *st_open_with(const char *dir, uint64_t cache_size, uint64_t max_entries,
                                      int64_t expiration_ms, uint64_t pack_limit) {
    fsc_options o;
    fsc_options_init(&o);
    o.cache_size = cache_size;
    o.max_entries = max_entries;
    o.expiration_ms = expiration_ms;
    o.pack_limit = pack_limit;
    fsc_cache *c = NULL;
    int rc = fsc_open(dir, &o, &c);
    if (rc != FSC_OK) {
        fprintf(stderr, "fsc_open '%s': %s (%s)\n", dir, fsc_strerror(rc), fsc_errmsg());
        return NULL;
    }
    return c;
}

static inline fsc_cache *st_open(const char *dir, uint64_t cache_size, uint64_t max_entries, int64_t expiration_ms) {
    return st_open_with(dir, cache_size, max_entries, expiration_ms, FSC_PACK_LIMIT_DEFAULT);
}

static inline fsc_statistics st_stats(fsc_cache *c) {
    fsc_statistics s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    int rc = fsc_stats(c, &s);
    if (rc != FSC_OK)
        fprintf(stderr, "fsc_stats: %s (%s)\n", fsc_strerror(rc), fsc_errmsg());
    return s;
}

static inline void st_print_stats(const char *what, const fsc_statistics *s) {
    fprintf(stderr,
            "%s: entries=%llu bytes=%llu cache_size=%llu hits=%llu misses=%llu sets=%llu evictions=%llu "
            "expirations=%llu\n",
            what, (unsigned long long)s->entries, (unsigned long long)s->bytes, (unsigned long long)s->cache_size,
            (unsigned long long)s->hits, (unsigned long long)s->misses, (unsigned long long)s->sets,
            (unsigned long long)s->evictions, (unsigned long long)s->expirations);
}

/* fsc_verify with a report; the status goes to *rc. */
static inline fsc_verify_report st_verify(fsc_cache *c, int repair, int *rc) {
    fsc_verify_report r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    *rc = fsc_verify(c, repair, &r);
    return r;
}

/* ------------------------------------------------------------------ */
/* Self-checking values                                                */
/* ------------------------------------------------------------------ */

static inline uint64_t st_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t st_key_seed(const char *key) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The content of a value: depends only on the key, its length and a version,
 * so that a reader who knows the key can check any value it gets. */
static inline void st_fill(void *buf, size_t n, uint64_t seed) {
    unsigned char *p = buf;
    uint64_t x = st_mix(seed ^ 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0)
            x = st_mix(x + i + 1);
        p[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
}

static inline uint64_t st_value_seed(const char *key, size_t len) { return st_key_seed(key) ^ st_mix(len + 1); }

/* Stores the self-checking value of len bytes under the key. */
static inline int st_set(fsc_cache *c, const char *key, size_t len) {
    unsigned char *buf = malloc(len ? len : 1);
    st_fill(buf, len, st_value_seed(key, len));
    int rc = fsc_set(c, key, strlen(key), buf, len);
    free(buf);
    return rc;
}

/* Writes the self-checking value of len bytes for key into a new file at path. */
static inline int st_write_value_file(const char *path, const char *key, size_t len) {
    unsigned char *buf = malloc(len ? len : 1);
    st_fill(buf, len, st_value_seed(key, len));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ssize_t n = fd < 0 ? -1 : (len ? write(fd, buf, len) : 0);
    if (fd >= 0)
        close(fd);
    free(buf);
    return n == (ssize_t)len ? 0 : -1;
}

/* Looks the key up: 1 and *size if present with the self-checking content it
 * should have, 0 on a miss, -1 if the value is wrong or the get failed. */
static inline int st_check(fsc_cache *c, const char *key, uint64_t *size) {
    fsc_entry *e = NULL;
    int rc = fsc_get(c, key, strlen(key), &e);
    if (rc == FSC_MISS)
        return 0;
    if (rc != FSC_OK) {
        fprintf(stderr, "get '%s': %s (%s)\n", key, fsc_strerror(rc), fsc_errmsg());
        return -1;
    }
    uint64_t n = fsc_entry_size(e);
    const void *data = fsc_entry_data(e);
    int ok = data != NULL;
    if (ok) {
        unsigned char *want = malloc(n ? n : 1);
        st_fill(want, (size_t)n, st_value_seed(key, (size_t)n));
        ok = memcmp(want, data, (size_t)n) == 0;
        free(want);
    }
    if (!ok)
        fprintf(stderr, "get '%s': %llu bytes, content is not the value set\n", key, (unsigned long long)n);
    fsc_entry_free(e);
    if (size)
        *size = n;
    return ok ? 1 : -1;
}

/* ------------------------------------------------------------------ */
/* What the cache directory holds                                      */
/* ------------------------------------------------------------------ */

static uint64_t st_walk_bytes_;
static uint64_t st_walk_values_;
static uint64_t st_walk_metas_;

static int st_walk_one_(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)ftw;
    if (flag != FTW_F || !S_ISREG(st->st_mode))
        return 0; /* directories, and files that vanished between listing and stat */
    st_walk_bytes_ += (uint64_t)st->st_size;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strcmp(base, "meta") == 0)
        st_walk_metas_++;
    else
        st_walk_values_++;
    return 0;
}

/* Sum of st_size of every regular file under dir/shards (meta files included). */
static inline uint64_t st_disk_bytes(const char *dir) {
    char path[ST_PATH_MAX];
    snprintf(path, sizeof path, "%s/shards", dir);
    st_walk_bytes_ = st_walk_values_ = st_walk_metas_ = 0;
    nftw(path, st_walk_one_, 16, FTW_PHYS);
    return st_walk_bytes_;
}

/* The number of files under dir/shards that are not meta files (entries and payloads). */
static inline uint64_t st_value_files(const char *dir) {
    st_disk_bytes(dir);
    return st_walk_values_;
}

static inline int st_is_entry_name(const char *name) {
    size_t n = 0;
    for (; name[n]; n++)
        if (!((name[n] >= '0' && name[n] <= '9') || (name[n] >= 'a' && name[n] <= 'f')))
            return 0;
    return n == 32;
}

/* Visits every entry file (32 hex digits) under dir/shards: fn(shard, name, ctx). */
static inline void st_each_entry(const char *dir, void (*fn)(const char *shard, const char *name, void *ctx),
                                 void *ctx) {
    char path[ST_PATH_MAX];
    snprintf(path, sizeof path, "%s/shards", dir);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[ST_PATH_MAX + 512];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        DIR *s = opendir(sub);
        if (!s)
            continue;
        struct dirent *fe;
        while ((fe = readdir(s)) != NULL)
            if (st_is_entry_name(fe->d_name))
                fn(de->d_name, fe->d_name, ctx);
        closedir(s);
    }
    closedir(d);
}

/* A fingerprint of every file under dir/shards and dir/tmp: names, sizes and
 * contents (order-independent), to show that something changed nothing. */
static uint64_t st_print_acc_;
static size_t st_print_root_len_;

static int st_print_one_(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)ftw;
    uint64_t h = 0xcbf29ce484222325ull;
    const char *rel = path + st_print_root_len_;
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    h ^= (uint64_t)flag * 0x51ull;
    if (flag == FTW_F && S_ISREG(st->st_mode)) {
        h ^= st_mix((uint64_t)st->st_size);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            unsigned char buf[8192];
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0)
                for (ssize_t i = 0; i < n; i++) {
                    h ^= buf[i];
                    h *= 0x100000001b3ull;
                }
            close(fd);
        }
    }
    st_print_acc_ += st_mix(h);
    return 0;
}

static inline uint64_t st_fingerprint(const char *dir) {
    char path[ST_PATH_MAX];
    st_print_acc_ = 0;
    st_print_root_len_ = strlen(dir);
    snprintf(path, sizeof path, "%s/shards", dir);
    nftw(path, st_print_one_, 16, FTW_PHYS);
    snprintf(path, sizeof path, "%s/tmp", dir);
    nftw(path, st_print_one_, 16, FTW_PHYS);
    return st_print_acc_;
}

/* Counts the values fsc_foreach visits. */
static int st_count_visit_(void *ctx, const void *key, size_t key_len, uint64_t size, int64_t created_ms) {
    (void)key;
    (void)key_len;
    (void)size;
    (void)created_ms;
    (*(uint64_t *)ctx)++;
    return 0;
}

static inline uint64_t st_foreach_count(fsc_cache *c) {
    uint64_t n = 0;
    int rc = fsc_foreach(c, st_count_visit_, &n);
    if (rc != FSC_OK)
        fprintf(stderr, "fsc_foreach: %s (%s)\n", fsc_strerror(rc), fsc_errmsg());
    return n;
}

/* ------------------------------------------------------------------ */
/* Time and pipes                                                      */
/* ------------------------------------------------------------------ */

static inline int64_t st_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Lets wall-clock time pass (for expiration), polling the clock. */
static inline void st_wait_ms(int64_t ms) {
    int64_t until = st_now_ms() + ms;
    while (st_now_ms() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static inline int st_write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* 1 when n bytes were read, 0 at end of file before any, -1 otherwise. */
static inline int st_read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

/* Per-test temp dir without an open cache. */
struct st_ctx {
    char *dir;
};

static inline int st_setup(void **state) {
    struct st_ctx *t = calloc(1, sizeof *t);
    t->dir = fsc_test_tempdir();
    if (!t->dir)
        return -1;
    *state = t;
    return 0;
}

static inline int st_teardown(void **state) {
    struct st_ctx *t = *state;
    fsc_test_rmtree(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

#endif
