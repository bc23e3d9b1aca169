/* The helpers every C test program shares, cmocka or not (the fuzzers and the
 * torture run without it): clocks, reproducible bytes, a checksum, whole reads
 * and writes, removing a tree, hex file names, and child processes with a
 * bounded life. Each is written here once; the suite headers add their own. */
#ifndef FSC_TEST_BASE_H
#define FSC_TEST_BASE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsc.h"

#define TB_PATH_MAX 4096

/* ------------------------------------------------------------------ */
/* Clocks                                                              */
/* ------------------------------------------------------------------ */

/* Wall-clock milliseconds: the clock creation times and expiration read. */
static inline int64_t tb_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds: for measuring how long something took. */
static inline int64_t tb_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void tb_sleep_ms(int64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------ */
/* Reproducible bytes and a checksum                                   */
/* ------------------------------------------------------------------ */

static inline uint64_t tb_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Fills buf with bytes that depend only on seed and position. */
static inline void tb_fill(void *buf, size_t n, uint64_t seed) {
    unsigned char *p = buf;
    uint64_t x = tb_mix(seed ^ 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0)
            x = tb_mix(x + i + 1);
        p[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
}

/* FNV-1a, 64 bits, fed in pieces of any size: start from TB_FNV_INIT. */
#define TB_FNV_INIT 0xcbf29ce484222325ull
static inline uint64_t tb_fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------------ */
/* Whole reads and writes                                              */
/* ------------------------------------------------------------------ */

/* Writes all n bytes to fd: 0, or -1 on error. */
static inline int tb_write_full(int fd, const void *buf, size_t n) {
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

/* Reads up to cap bytes from fd's offset, stopping at EOF: the count or -1. */
static inline ssize_t tb_read_all(int fd, void *buf, size_t cap) {
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

/* Exactly n bytes: 1, 0 at end of file before any byte, -1 otherwise (a
 * message cut short by a peer's death included). */
static inline int tb_read_full(int fd, void *buf, size_t n) {
    ssize_t got = tb_read_all(fd, buf, n);
    if (got == (ssize_t)n)
        return 1;
    return got == 0 ? 0 : -1;
}

/* Writes data to path (created or truncated); 0 on success. */
static inline int tb_write_file(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = tb_write_full(fd, data, len);
    close(fd);
    return rc;
}

/* The whole file at path in a malloc'ed buffer (*len bytes, one spare byte
 * after them); NULL when it cannot be read. */
static inline unsigned char *tb_read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    ssize_t got = buf ? tb_read_all(fd, buf, (size_t)st.st_size) : -1;
    close(fd);
    if (got != (ssize_t)st.st_size) {
        free(buf);
        return NULL;
    }
    *len = (size_t)st.st_size;
    return buf;
}

/* ------------------------------------------------------------------ */
/* Trees and names                                                     */
/* ------------------------------------------------------------------ */

/* rm -rf, also through directories a test left without permissions. */
static inline void tb_rmtree(const char *path) {
    if (strlen(path) >= TB_PATH_MAX)
        abort(); /* test paths are short; a cut one would remove the wrong tree */
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char sub[TB_PATH_MAX + 256];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
                chmod(sub, 0700);
                tb_rmtree(sub);
            } else {
                unlink(sub);
            }
        }
        closedir(d);
    }
    if (rmdir(path) != 0)
        unlink(path);
}

/* Number of names in a directory (-1 if it cannot be read). */
static inline int tb_dir_count(const char *path) {
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* 1 when name[0..len) is lower-case hex digits. */
static inline int tb_is_hex(const char *name, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    return 1;
}

/* An entry file's name: 32 hex digits. */
static inline int tb_is_entry_name(const char *name) { return strlen(name) == 32 && tb_is_hex(name, 32); }

/* ------------------------------------------------------------------ */
/* Child processes                                                     */
/* ------------------------------------------------------------------ */

/* fork() with a bounded life: the child gets an alarm of `seconds` (0: none),
 * so that a stuck child ends with 128 + SIGALRM instead of hanging its
 * parent. Streams are flushed first so that nothing buffered prints twice.
 * Returns fork()'s result. */
static inline pid_t tb_fork(unsigned seconds) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        alarm(seconds);
    return pid;
}

/* Waits for a child and returns its exit code (128 + signal if killed). */
static inline int tb_wait(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* SIGKILLs a child and reaps it: its exit code (128 + SIGKILL unless it had
 * already ended). */
static inline int tb_kill(pid_t pid) {
    kill(pid, SIGKILL);
    return tb_wait(pid);
}

/* ------------------------------------------------------------------ */
/* Calls every test makes                                              */
/* ------------------------------------------------------------------ */

/* An fsc_foreach visitor that counts the values into the uint64_t at ctx. */
static inline int tb_count_visit(void *ctx, const void *key, size_t key_len, uint64_t size, int64_t created_ms) {
    (void)key;
    (void)key_len;
    (void)size;
    (void)created_ms;
    (*(uint64_t *)ctx)++;
    return 0;
}

/* Every read-side call that takes no key (foreach, stats, verify without
 * repair), statuses ignored: on a damaged cache only a crash is a failure. */
static inline void tb_read_everything(fsc_cache *c) {
    uint64_t n = 0;
    (void)fsc_foreach(c, tb_count_visit, &n);
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    (void)fsc_stats(c, &st);
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    (void)fsc_verify(c, 0, &r);
}

#endif
