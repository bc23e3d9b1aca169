/* Shared helpers of the cmocka tests: readable status asserts, a temp cache
 * directory per test, and child processes that report through exit codes.
 * What the tests without cmocka need too is in test_base.h. */
#ifndef FSC_TEST_H
#define FSC_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "fsc.h"
#include "test_base.h"

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

/* A fresh directory under $TMPDIR (default /tmp); free() it after tb_rmtree. */
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

/* The options fsc_options_init gives, to change one or two of. */
static inline fsc_options fsc_test_options(void) {
    fsc_options o;
    fsc_options_init(&o);
    return o;
}

/* The cache in dir opened with opts, asserted. */
static inline fsc_cache *fsc_test_open(const char *dir, const fsc_options *opts) {
    fsc_cache *c = NULL;
    assert_fsc_ok(fsc_open(dir, opts, &c));
    return c;
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
    fsc_options o = fsc_test_options();
    o.pack_limit = 0;
    return fsc_test_setup_with(state, &o);
}

static inline int fsc_test_teardown(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_close(t->cache);
    tb_rmtree(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

/* A test run with a fresh cache of default options (fsc_test_setup). */
#define FSC_TEST(f) cmocka_unit_test_setup_teardown(f, fsc_test_setup, fsc_test_teardown)
/* The same with every value in a file of its own (fsc_test_setup_unpacked). */
#define FSC_TEST_UNPACKED(f) cmocka_unit_test_setup_teardown(f, fsc_test_setup_unpacked, fsc_test_teardown)

/* The whole file at path, asserted readable; free() it. */
static inline unsigned char *fsc_test_read_file(const char *path, size_t *len) {
    unsigned char *buf = tb_read_file(path, len);
    if (!buf)
        fail_msg("read %s: %s", path, strerror(errno));
    return buf;
}

/* XORs the byte at offset at of the file at path with mask, in place (the
 * same inode: open handles see it). */
static inline void fsc_test_flip_byte(const char *path, off_t at, unsigned char mask) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= mask;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* A child that outlives this many seconds is stuck: SIGALRM ends it, and its
 * parent sees exit code 128 + SIGALRM instead of hanging. */
#define FSC_TEST_CHILD_SECONDS 20

/* fork() for tests (tb_fork with FSC_TEST_CHILD_SECONDS). The child must leave
 * with _exit() and use child_check, never cmocka's asserts (they would
 * longjmp into the parent's copy of the test runner). */
static inline pid_t fsc_test_fork(void) {
    pid_t pid = tb_fork(FSC_TEST_CHILD_SECONDS);
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    return pid;
}

/* Forks a child that reports to its parent through a pipe: *fd is the pipe's
 * write end in the child and its read end in the parent (each side closes
 * the other end). seconds bounds the child's life as in tb_fork (0: no
 * bound, for a child its parent kills). */
static inline pid_t fsc_test_fork_piped(unsigned seconds, int *fd) {
    int fds[2];
    if (pipe(fds) != 0)
        fail_msg("pipe: %s", strerror(errno));
    pid_t pid = tb_fork(seconds);
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    close(fds[pid == 0 ? 0 : 1]);
    *fd = fds[pid == 0 ? 1 : 0];
    return pid;
}

#define assert_child_exit(pid, code)                                                               \
    do {                                                                                           \
        int fsc_code_ = tb_wait(pid);                                                              \
        if (fsc_code_ != (code))                                                                   \
            fail_msg("child exited with %d, want %d%s", fsc_code_, (code),                         \
                     fsc_code_ == 128 + SIGALRM ? " (it hung and its alarm fired)" : "");          \
    } while (0)

#endif
