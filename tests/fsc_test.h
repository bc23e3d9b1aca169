/* Shared helpers of the cmocka tests: readable status asserts, a temp cache
 * directory per test, and child processes that report through exit codes. */
#ifndef FSC_TEST_H
#define FSC_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsc.h"

/* Asserts a status, printing the expression, the status name and fsc_errmsg(). */
#define assert_fsc_status(expr, want)                                                              \
    do {                                                                                           \
        int fsc_got_ = (expr);                                                                     \
        if (fsc_got_ != (want))                                                                    \
            fail_msg("%s gave %s (%s), want %s", #expr, fsc_strerror(fsc_got_), fsc_errmsg(),      \
                     fsc_strerror(want));                                                          \
    } while (0)
#define assert_fsc_ok(expr) assert_fsc_status(expr, FSC_OK)

/* In a child process: on failure print and _exit(code) instead of longjmp-ing. */
#define child_check(cond, code)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child %d: %s:%d: %s failed (%s)\n", (int)getpid(), __FILE__, __LINE__, \
                    #cond, fsc_errmsg());                                                          \
            _exit(code);                                                                           \
        }                                                                                          \
    } while (0)

static int fsc_test_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf */
static inline void fsc_test_rmtree(const char *path) { nftw(path, fsc_test_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* A fresh directory under $TMPDIR (default /tmp); free() it after fsc_test_rmtree. */
static inline char *fsc_test_tempdir(void) {
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);
    snprintf(path, 4096, "%s/fsc-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

/* Per-test state: a temp dir and a cache opened in it with default options. */
struct fsc_test_ctx {
    char *dir;
    fsc_cache *cache;
};

static inline int fsc_test_setup_with(void **state, const fsc_options *opts) {
    struct fsc_test_ctx *t = calloc(1, sizeof *t);
    t->dir = fsc_test_tempdir();
    if (!t->dir || fsc_open(t->dir, opts, &t->cache) != FSC_OK) {
        fprintf(stderr, "setup: %s\n", fsc_errmsg());
        return -1;
    }
    *state = t;
    return 0;
}

static inline int fsc_test_setup(void **state) { return fsc_test_setup_with(state, NULL); }

/* Every value in a file of its own (pack_limit 0): for tests of entry files. */
static inline int fsc_test_setup_unpacked(void **state) {
    fsc_options o;
    fsc_options_init(&o);
    o.pack_limit = 0;
    return fsc_test_setup_with(state, &o);
}

static inline int fsc_test_teardown(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_close(t->cache);
    fsc_test_rmtree(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

/* Waits for a child and returns its exit code (128 + signal if killed). */
static inline int fsc_test_wait(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif
