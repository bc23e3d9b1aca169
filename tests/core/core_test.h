/* Small tools shared by the core suites: reproducible pseudo-random bytes,
 * a fast checksum, file reading and writing, and finding a cache's entry
 * files on disk. Include after fsc_test.h. */
#ifndef FSC_CORE_TEST_H
#define FSC_CORE_TEST_H

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "fsc_test.h"

#define CORE_PATH_MAX 4096

/* Fills buf with bytes that depend only on seed and position. */
static inline void core_fill(void *buf, size_t n, uint64_t seed) {
    unsigned char *p = buf;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        p[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
}

/* A checksum that can be fed in pieces of any size: FNV-1a, 64 bits. */
static inline uint64_t core_sum(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define CORE_SUM_INIT 0xcbf29ce484222325ull

static inline int64_t core_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void core_join(char *out, const char *dir, const char *name) {
    int n = snprintf(out, CORE_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= CORE_PATH_MAX)
        abort(); /* test paths are short; a cut one would test the wrong file */
}

/* Writes data to path (created or truncated); 0 on success. */
static inline int core_write_file(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = len ? write(fd, data, len) : 0;
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

/* Reads from fd's offset up to cap bytes or EOF; returns the count or -1. */
static inline ssize_t core_read_all(int fd, void *buf, size_t cap) {
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, (char *)buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static inline int core_is_hex_name(const char *name, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    return 1;
}

/* Entry files are the files under base/shards/xx/ named by 32 hex digits.
 * Copies the path of the last one found into out; returns how many there are. */
static inline int core_find_entries(const char *base, char *out) {
    char shards[CORE_PATH_MAX];
    core_join(shards, base, "shards");
    DIR *top = opendir(shards);
    if (!top)
        return 0;
    int count = 0;
    struct dirent *d;
    while ((d = readdir(top))) {
        if (d->d_name[0] == '.')
            continue;
        char shard[CORE_PATH_MAX];
        core_join(shard, shards, d->d_name);
        DIR *in = opendir(shard);
        if (!in)
            continue;
        struct dirent *f;
        while ((f = readdir(in))) {
            if (strlen(f->d_name) == 32 && core_is_hex_name(f->d_name, 32)) {
                core_join(out, shard, f->d_name);
                count++;
            }
        }
        closedir(in);
    }
    closedir(top);
    return count;
}

/* The payload file of a raw value's entry: entry path + '.' + 16 hex digits.
 * Copies its path into out; returns how many there are. */
static inline int core_find_payloads(const char *entry, char *out) {
    char dir[CORE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", entry);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    const char *base = slash + 1;
    DIR *in = opendir(dir);
    if (!in)
        return 0;
    int count = 0;
    struct dirent *f;
    while ((f = readdir(in))) {
        if (strlen(f->d_name) == 49 && strncmp(f->d_name, base, 32) == 0 && f->d_name[32] == '.' &&
            core_is_hex_name(f->d_name + 33, 16)) {
            core_join(out, dir, f->d_name);
            count++;
        }
    }
    closedir(in);
    return count;
}

/* Gets key and asserts that the value is exactly want[0..len). */
static inline void core_assert_value(fsc_cache *c, const void *key, size_t key_len, const void *want,
                                     size_t len) {
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(c, key, key_len, &e));
    assert_non_null(e);
    assert_int_equal(fsc_entry_size(e), len);
    const void *data = fsc_entry_data(e);
    assert_non_null(data);
    if (len)
        assert_memory_equal(data, want, len);
    fsc_entry_free(e);
}

static inline void core_assert_miss(fsc_cache *c, const void *key, size_t key_len) {
    fsc_entry *e = NULL;
    assert_fsc_status(fsc_get(c, key, key_len, &e), FSC_MISS);
    assert_null(e);
}

#endif
