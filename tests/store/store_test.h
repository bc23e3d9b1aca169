/* Tools shared by the storage suites: opening a cache with given limits,
 * self-checking values, what the cache directory holds on disk, statistics
 * and verify reports, and pipes between processes. Include after fsc_test.h. */
#ifndef FSC_STORE_TEST_H
#define FSC_STORE_TEST_H

#include <ftw.h>

#include "fsc_format.h"
#include "fsc_test.h"

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

/* The content of a value depends only on the key, its length and a version,
 * so that a reader who knows the key can check any value it gets. */
static inline uint64_t st_value_seed(const char *key, size_t len) {
    return tb_fnv(TB_FNV_INIT, key, strlen(key)) ^ tb_mix(len + 1);
}

/* Stores the self-checking value of len bytes under the key. */
static inline int st_set(fsc_cache *c, const char *key, size_t len) {
    unsigned char *buf = malloc(len ? len : 1);
    tb_fill(buf, len, st_value_seed(key, len));
    int rc = fsc_set(c, key, strlen(key), buf, len);
    free(buf);
    return rc;
}

/* Stores n self-checking values of len bytes under the keys printf(fmt, i)
 * for i = 0 .. n-1, fmt holding one %d. */
static inline void st_set_series(fsc_cache *c, const char *fmt, int n, size_t len) {
    char key[64];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, fmt, i);
        assert_fsc_ok(st_set(c, key, len));
    }
}

/* Writes the self-checking value of len bytes for key into a new file at path. */
static inline int st_write_value_file(const char *path, const char *key, size_t len) {
    unsigned char *buf = malloc(len ? len : 1);
    tb_fill(buf, len, st_value_seed(key, len));
    int rc = tb_write_file(path, buf, len);
    free(buf);
    return rc;
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
        tb_fill(want, (size_t)n, st_value_seed(key, (size_t)n));
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
    char path[TB_PATH_MAX];
    snprintf(path, sizeof path, "%s/shards", dir);
    st_walk_bytes_ = st_walk_values_ = st_walk_metas_ = 0;
    nftw(path, st_walk_one_, 16, FTW_PHYS);
    return st_walk_bytes_;
}

/* st_disk_bytes after set #i, failing the test when it is over budget;
 * *most keeps the largest seen. */
static inline uint64_t st_disk_within(const char *dir, uint64_t budget, int i, uint64_t *most) {
    uint64_t disk = st_disk_bytes(dir);
    if (disk > *most)
        *most = disk;
    if (disk > budget)
        fail_msg("after set #%d the cache holds %llu bytes on disk, over its %llu", i, (unsigned long long)disk,
                 (unsigned long long)budget);
    return disk;
}

/* The number of files under dir/shards that are not meta files (entries and payloads). */
static inline uint64_t st_value_files(const char *dir) {
    st_disk_bytes(dir);
    return st_walk_values_;
}

/* A fingerprint of every file under dir/shards and dir/tmp: names, sizes and
 * contents (order-independent), to show that something changed nothing. */
static uint64_t st_print_acc_;
static size_t st_print_root_len_;

static int st_print_one_(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)ftw;
    const char *rel = path + st_print_root_len_;
    uint64_t h = tb_fnv(TB_FNV_INIT, rel, strlen(rel));
    h ^= (uint64_t)flag * 0x51ull;
    if (flag == FTW_F && S_ISREG(st->st_mode)) {
        h ^= tb_mix((uint64_t)st->st_size);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            unsigned char buf[8192];
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0)
                h = tb_fnv(h, buf, (size_t)n);
            close(fd);
        }
    }
    st_print_acc_ += tb_mix(h);
    return 0;
}

static inline uint64_t st_fingerprint(const char *dir) {
    char path[TB_PATH_MAX];
    st_print_acc_ = 0;
    st_print_root_len_ = strlen(dir);
    snprintf(path, sizeof path, "%s/shards", dir);
    nftw(path, st_print_one_, 16, FTW_PHYS);
    snprintf(path, sizeof path, "%s/tmp", dir);
    nftw(path, st_print_one_, 16, FTW_PHYS);
    return st_print_acc_;
}

static inline uint64_t st_foreach_count(fsc_cache *c) {
    uint64_t n = 0;
    int rc = fsc_foreach(c, tb_count_visit, &n);
    if (rc != FSC_OK)
        fprintf(stderr, "fsc_foreach: %s (%s)\n", fsc_strerror(rc), fsc_errmsg());
    return n;
}

/* ------------------------------------------------------------------ */
/* Time and pipes                                                      */
/* ------------------------------------------------------------------ */

/* Lets wall-clock time pass (for expiration), polling the clock. */
static inline void st_wait_ms(int64_t ms) {
    int64_t until = tb_now_ms() + ms;
    while (tb_now_ms() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* The names in dir/tmp (-1 when it cannot be read). */
static inline int st_tmp_files(const char *dir) {
    char tmp[TB_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    return tb_dir_count(tmp);
}

/* verify(0) finds nothing and the totals are what the disk holds. */
static inline void st_expect_clean(fsc_cache *c, const char *dir, const char *what) {
    int rc;
    fsc_verify_report v = st_verify(c, 0, &rc);
    assert_fsc_ok(rc);
    if (v.problems != 0)
        fail_msg("%s: fsc_verify(0) found %llu problems", what, (unsigned long long)v.problems);
    uint64_t disk = st_disk_bytes(dir);
    fsc_statistics s = st_stats(c);
    if (s.bytes != disk)
        fail_msg("%s: fsc_stats().bytes is %llu, the disk holds %llu", what, (unsigned long long)s.bytes,
                 (unsigned long long)disk);
}

/* Forks n children that all report through one pipe. In child i it returns
 * i, *fd being the pipe's write end; in the parent -1, *fd being its read
 * end, with pids[] filled. */
static inline int st_fork_children(int n, pid_t *pids, int *fd) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(fds[0]);
            *fd = fds[1];
            return i;
        }
    }
    close(fds[1]);
    *fd = fds[0];
    return -1;
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
    tb_rmtree(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

/* A test run with a fresh temp dir and no cache open (st_setup). */
#define ST_TEST(f) cmocka_unit_test_setup_teardown(f, st_setup, st_teardown)

#endif
