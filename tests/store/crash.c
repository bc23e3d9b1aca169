/* Crash recovery: a process SIGKILLed in the middle of a set, of an eviction
 * or of a prune leaves a cache that, reopened by a process alone with it,
 * verifies clean, whose totals equal the disk, and that still holds every
 * value the killed process had stored (unless the budget evicted it). */
#include "store_test.h"

enum { MSG_START = 1, MSG_DONE = 2 };

struct msg {
    int32_t kind;
    int32_t index;
};

struct crash_ctx {
    char *dir;
    char src[TB_PATH_MAX]; /* files to be moved in: same filesystem, outside the cache */
};

static int crash_setup(void **state) {
    struct crash_ctx *t = calloc(1, sizeof *t);
    t->dir = fsc_test_tempdir();
    if (!t->dir)
        return -1;
    snprintf(t->src, sizeof t->src, "%s-src", t->dir);
    if (mkdir(t->src, 0700) != 0)
        return -1;
    *state = t;
    return 0;
}

static int crash_teardown(void **state) {
    struct crash_ctx *t = *state;
    tb_rmtree(t->dir);
    tb_rmtree(t->src);
    free(t->dir);
    free(t);
    return 0;
}

static void send_msg(int fd, int kind, int index) {
    struct msg m = {kind, index};
    child_check(tb_write_full(fd, &m, sizeof m) == 0, 20);
}

/* Busy-waits about us microseconds: only to vary where a kill lands. */
static void spin_us(int64_t us) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

/* Notes one message: the last START index, and done[] for each DONE. */
static void note_msg(const struct msg *m, int *last_start, char *done, int cap) {
    if (m->kind == MSG_START)
        *last_start = m->index;
    if (m->kind == MSG_DONE && m->index >= 0 && m->index < cap)
        done[m->index] = 1;
}

/* Reads messages until `kind` for `index` arrives, SIGKILLs the child (after
 * delay_us), reaps it, then drains what it wrote before dying. done[i] is set
 * for every index reported stored; returns the last START index seen. */
static int kill_at(pid_t pid, int rfd, int kind, int index, int64_t delay_us, char *done, int cap) {
    int last_start = -1;
    struct msg m;
    int r;
    while ((r = tb_read_full(rfd, &m, sizeof m)) == 1) {
        note_msg(&m, &last_start, done, cap);
        if (m.kind == kind && m.index == index)
            break;
    }
    if (r != 1)
        fail_msg("the child stopped before reaching the point to kill it at");
    spin_us(delay_us);
    assert_int_equal(tb_kill(pid), 128 + SIGKILL);
    while (tb_read_full(rfd, &m, sizeof m) == 1)
        note_msg(&m, &last_start, done, cap);
    close(rfd);
    return last_start;
}

/* Reopens the cache alone and checks that it is whole. */
static fsc_cache *reopen_and_check(const char *dir, uint64_t cache_size, const char *what) {
    fsc_cache *c = st_open(dir, cache_size, 0, -1);
    assert_non_null(c);
    st_expect_clean(c, dir, what);
    assert_int_equal(st_stats(c).entries, st_foreach_count(c));
    /* The killed process's temp files were swept by the open. */
    assert_int_equal(st_tmp_files(dir), 0);
    return c;
}

/* Sets values of `len` bytes named <prefix>-<i> for ever, in three ways by
 * turn (bytes, a copied file, a moved file), reporting each. */
static void setter_child(const char *dir, const char *src, uint64_t cache_size, const char *prefix, size_t len,
                         int wfd) {
    fsc_cache *c = st_open(dir, cache_size, 0, -1);
    child_check(c != NULL, 2);
    unsigned char *buf = malloc(len);
    child_check(buf != NULL, 3);
    char key[64], path[TB_PATH_MAX + 64];
    for (int i = 0;; i++) {
        snprintf(key, sizeof key, "%s-%d", prefix, i);
        int rc;
        if (i % 3 == 0) {
            tb_fill(buf, len, st_value_seed(key, len));
            send_msg(wfd, MSG_START, i);
            rc = fsc_set(c, key, strlen(key), buf, len);
        } else {
            snprintf(path, sizeof path, "%s/%s", src, key);
            child_check(st_write_value_file(path, key, len) == 0, 4);
            send_msg(wfd, MSG_START, i);
            rc = fsc_set_file(c, key, strlen(key), -1, path, i % 3 == 2 ? FSC_MOVE : 0);
        }
        child_check(rc == FSC_OK, 5);
        send_msg(wfd, MSG_DONE, i);
    }
}

/* A setter_child at work: its keys' prefix, its pid and the pipe it reports on. */
struct setter {
    char prefix[32];
    pid_t pid;
    int fd;
};

/* Forks a setter_child with keys named <name><round>-<i>. */
static struct setter start_setter(struct crash_ctx *t, const char *name, size_t round, uint64_t cache_size,
                                  size_t len) {
    struct setter s;
    snprintf(s.prefix, sizeof s.prefix, "%s%zu", name, round);
    s.pid = fsc_test_fork_piped(0, &s.fd);
    if (s.pid == 0)
        setter_child(t->dir, t->src, cache_size, s.prefix, len, s.fd);
    return s;
}

#define MAX_INDEX 4096

static void test_killed_during_set(void **state) {
    struct crash_ctx *t = *state;
    /* Where to kill: at the start of set #n, with a delay (us) after it. */
    static const struct {
        int kind, index;
        int64_t delay;
    } when[] = {{MSG_START, 0, 0}, {MSG_START, 1, 300}, {MSG_START, 2, 100}, {MSG_DONE, 3, 0},
                {MSG_START, 5, 1000}, {MSG_START, 7, 50}, {MSG_START, 8, 2000}};
    for (size_t round = 0; round < sizeof when / sizeof when[0]; round++) {
        struct setter s = start_setter(t, "set", round, 0, 1 << 20);
        char done[MAX_INDEX] = {0};
        int last = kill_at(s.pid, s.fd, when[round].kind, when[round].index, when[round].delay, done, MAX_INDEX);
        fsc_cache *c = reopen_and_check(t->dir, 0, "after a kill during a set");
        /* Unbounded: everything reported stored is there, whole. */
        char key[64];
        int stored = 0;
        for (int i = 0; i <= last; i++) {
            snprintf(key, sizeof key, "%s-%d", s.prefix, i);
            int r = st_check(c, key, NULL);
            if (done[i]) {
                stored++;
                if (r != 1)
                    fail_msg("'%s' was reported stored and is %s", key, r == 0 ? "missing" : "wrong");
            } else {
                assert_int_not_equal(r, -1); /* the one being set: absent or whole */
            }
        }
        fprintf(stderr, "round %zu: killed with %d values stored, set #%d in progress\n", round, stored, last);
        fsc_close(c);
    }
}

static void test_killed_during_eviction(void **state) {
    struct crash_ctx *t = *state;
    /* 512 KiB of 64 KiB values: every set evicts. */
    const uint64_t size = 512 << 10;
    static const struct {
        int index;
        int64_t delay;
    } when[] = {{9, 0}, {12, 100}, {16, 400}, {21, 30}, {27, 800}};
    for (size_t round = 0; round < sizeof when / sizeof when[0]; round++) {
        struct setter s = start_setter(t, "evict", round, size, 64 << 10);
        char done[MAX_INDEX] = {0};
        int last = kill_at(s.pid, s.fd, MSG_START, when[round].index, when[round].delay, done, MAX_INDEX);
        fsc_cache *c = reopen_and_check(t->dir, size, "after a kill during an eviction");
        assert_true(st_disk_bytes(t->dir) <= size);
        /* The newest three stored values outlive any eviction. */
        char key[64];
        int checked = 0;
        for (int i = last; i >= 0; i--) {
            snprintf(key, sizeof key, "%s-%d", s.prefix, i);
            int r = st_check(c, key, NULL);
            assert_int_not_equal(r, -1);
            if (done[i] && checked < 3) {
                if (r != 1)
                    fail_msg("'%s', one of the three newest values stored, is gone", key);
                checked++;
            }
        }
        assert_int_equal(checked, 3);
        fsc_close(c);
    }
}

/* Seeds n small values named seed-<i> with an unbounded handle. */
static void seed(const char *dir, int n) {
    fsc_cache *c = st_open(dir, 0, 0, -1);
    assert_non_null(c);
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "seed-%d", i);
        assert_fsc_ok(st_set(c, key, 200 + (size_t)(i % 7) * 300));
    }
    fsc_close(c);
}

/* Every seeded value is either gone or whole; returns how many are there. */
static int check_seeded(fsc_cache *c, int n) {
    char key[32];
    int present = 0;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "seed-%d", i);
        int r = st_check(c, key, NULL);
        if (r == -1)
            fail_msg("'%s' is damaged", key);
        present += r;
    }
    return present;
}

#define SEEDED 400

/* Seeds the cache; then a child does one long operation between a START and
 * a DONE message and waits to be killed: a set that evicts hundreds of
 * values from a cache far over budget or, with prune, a prune through a
 * handle to which every value is expired (expiration 0). It is killed
 * delay_us after its START. Returns the reopened, checked cache, whether the
 * child said DONE, and how many seeded values the cache still holds. */
struct killed_op {
    fsc_cache *c;
    char done;
    int present;
};

static struct killed_op kill_during_one_op(const char *dir, int prune, int64_t delay_us) {
    struct killed_op k = {NULL, 0, 0};
    seed(dir, SEEDED);
    int fd;
    pid_t pid = fsc_test_fork_piped(0, &fd);
    if (pid == 0) {
        fsc_cache *c = prune ? st_open(dir, 0, 0, 0) : st_open(dir, 64 << 10, 0, -1);
        child_check(c != NULL, 2);
        send_msg(fd, MSG_START, 0);
        child_check((prune ? fsc_prune(c) : st_set(c, "big", 32 << 10)) == FSC_OK, 3);
        send_msg(fd, MSG_DONE, 0);
        /* Wait to be killed: no further change. */
        for (;;)
            pause();
    }
    kill_at(pid, fd, MSG_START, 0, delay_us, &k.done, 1);
    const char *what = prune ? "after a kill during a prune" : "after a kill during a long eviction";
    k.c = reopen_and_check(dir, 0, what);
    k.present = check_seeded(k.c, SEEDED);
    return k;
}

/* One set into a cache far over budget evicts hundreds of values. */
static void test_killed_during_a_long_eviction(void **state) {
    struct crash_ctx *t = *state;
    static const int64_t delays[] = {0, 4000, 15000, 60000};
    for (size_t round = 0; round < sizeof delays / sizeof delays[0]; round++) {
        struct killed_op k = kill_during_one_op(t->dir, 0, delays[round]);
        int big = st_check(k.c, "big", NULL);
        assert_int_not_equal(big, -1);
        if (k.done)
            assert_int_equal(big, 1);
        fprintf(stderr, "round %zu: %d of %d values left, the new value %s\n", round, k.present, SEEDED,
                big ? "stored" : "not stored");
        fsc_close(k.c);
    }
}

static void test_killed_during_prune(void **state) {
    struct crash_ctx *t = *state;
    static const int64_t delays[] = {0, 5000, 20000, 80000};
    for (size_t round = 0; round < sizeof delays / sizeof delays[0]; round++) {
        struct killed_op k = kill_during_one_op(t->dir, 1, delays[round]);
        if (k.done)
            assert_int_equal(k.present, 0);
        fprintf(stderr, "round %zu: %d of %d values left after the killed prune\n", round, k.present, SEEDED);
        /* A later prune finishes the job. */
        fsc_cache *p = st_open(t->dir, 0, 0, 0);
        assert_non_null(p);
        assert_fsc_ok(fsc_prune(p));
        assert_int_equal(st_stats(p).entries, 0);
        assert_int_equal(st_value_files(t->dir), 0);
        fsc_close(p);
        fsc_close(k.c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_killed_during_set, crash_setup, crash_teardown),
        cmocka_unit_test_setup_teardown(test_killed_during_eviction, crash_setup, crash_teardown),
        cmocka_unit_test_setup_teardown(test_killed_during_a_long_eviction, crash_setup, crash_teardown),
        cmocka_unit_test_setup_teardown(test_killed_during_prune, crash_setup, crash_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
