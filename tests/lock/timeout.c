/* Timeouts of fsc_lock (-1 waits, 0 tries, > 0 bounds the wait), bad
 * arguments, and fsc_lock_holder naming the holding process. */
#include "lock_test.h"

/* A child holds the key; the parent asks with every kind of timeout. The
 * child releases only once the parent is seen blocked in its -1 wait. */
static void test_wait_try_and_timeout_across_processes(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "contended";
    lt_pipe held = lt_pipe_new(), release = lt_pipe_new(), leave = lt_pipe_new();

    pid_t holder = fsc_test_fork();
    if (holder == 0) {
        lt_close(&held.r);
        lt_close(&release.w);
        lt_close(&leave.w);
        fsc_lock_handle *l = NULL;
        child_check(fsc_lock(t->cache, LT_KEY(k), -1, &l) == FSC_OK, 2);
        child_check(lt_send(held.w), 3);
        child_check(lt_recv(release.r), 4);
        child_check(fsc_unlock(l) == FSC_OK, 5);
        /* Stay alive (unlocked) so that the parent can see "nobody holds it". */
        lt_recv(leave.r);
        _exit(0);
    }
    lt_close(&held.w);
    lt_close(&release.r);
    lt_close(&leave.r);
    assert_true(lt_recv(held.r));

    int64_t pid = -1;
    assert_fsc_ok(fsc_lock_holder(t->cache, LT_KEY(k), &pid));
    assert_int_equal(pid, holder);

    fsc_lock_handle *l = NULL;
    /* The holder releases only when told to: a try that waited for it, or a
     * bounded wait that did not give up, would never return. The upper
     * bound only tells milliseconds from seconds (a slow machine or valgrind
     * may take a while to return). */
    assert_fsc_status(fsc_lock(t->cache, LT_KEY(k), 0, &l), FSC_EBUSY);

    int64_t t0 = tb_mono_ms();
    assert_fsc_status(fsc_lock(t->cache, LT_KEY(k), 50, &l), FSC_ETIMEDOUT);
    int64_t waited = tb_mono_ms() - t0;
    assert_in_range(waited, 49, 10000);

    /* -1: the watcher tells the holder to release once we are blocked. */
    pid_t watcher = lt_send_when_blocked(getpid(), release.w);
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), -1, &l));
    assert_child_exit(watcher, 0);
    assert_fsc_ok(fsc_unlock(l));

    assert_fsc_ok(fsc_lock_holder(t->cache, LT_KEY(k), &pid));
    assert_int_equal(pid, 0);
    assert_true(lt_send(leave.w));
    assert_child_exit(holder, 0);
    lt_pipe_close(&held);
    lt_pipe_close(&release);
    lt_pipe_close(&leave);
}

/* The same timeouts between threads of one process. */
static void test_try_and_timeout_across_threads(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "threads";
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), -1, &l));
    assert_fsc_status(lt_thread_lock(t->cache, LT_KEY(k), 0), FSC_EBUSY);
    int64_t t0 = tb_mono_ms();
    assert_fsc_status(lt_thread_lock(t->cache, LT_KEY(k), 50), FSC_ETIMEDOUT);
    assert_in_range(tb_mono_ms() - t0, 49, 10000);
    /* A holder in this very process is not "another process". */
    int64_t pid = -1;
    assert_fsc_ok(fsc_lock_holder(t->cache, LT_KEY(k), &pid));
    assert_int_equal(pid, 0);
    assert_fsc_ok(fsc_unlock(l));
    assert_fsc_ok(lt_thread_lock(t->cache, LT_KEY(k), 50));
}

/* Forks a process that takes k's lock and holds it until told on release;
 * returns once it holds it. */
static pid_t start_holder(struct fsc_test_ctx *t, const char *k, lt_pipe *held, lt_pipe *release) {
    pid_t holder = fsc_test_fork();
    if (holder == 0) {
        lt_close(&held->r);
        lt_close(&release->w);
        fsc_lock_handle *l = NULL;
        child_check(fsc_lock(t->cache, LT_KEY(k), -1, &l) == FSC_OK, 2);
        child_check(lt_send(held->w), 3);
        child_check(lt_recv(release->r), 4);
        child_check(fsc_unlock(l) == FSC_OK, 5);
        _exit(0);
    }
    lt_close(&held->w);
    lt_close(&release->r);
    assert_true(lt_recv(held->r));
    return holder;
}

/* A timed wait succeeds when the holder releases within it. */
static void test_timed_wait_succeeds(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "released-in-time";
    lt_pipe held = lt_pipe_new(), release = lt_pipe_new();

    pid_t holder = start_holder(t, k, &held, &release);
    assert_true(lt_send(release.w));
    fsc_lock_handle *l = NULL;
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), 10000, &l));
    assert_fsc_ok(fsc_unlock(l));
    assert_child_exit(holder, 0);
    lt_pipe_close(&held);
    lt_pipe_close(&release);
}

/* Timeouts too long for the clocks' arithmetic (9.3e12 ms and up wrapped a
 * deadline into the past), and every timeout above 2^40 ms as fsc.h says,
 * wait as long as it takes: the waiter is seen blocked in the kernel, and
 * gets the lock once the holder lets go. */
static void test_huge_timeout_waits(void **state) {
    struct fsc_test_ctx *t = *state;
    const int64_t huge[] = {(INT64_C(1) << 40) + 1, 9300000000000, INT64_MAX};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        const char *k = "huge-timeout";
        lt_pipe held = lt_pipe_new(), release = lt_pipe_new();
        pid_t holder = start_holder(t, k, &held, &release);
        pid_t watcher = lt_send_when_blocked(getpid(), release.w);
        fsc_lock_handle *l = NULL;
        assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), huge[i], &l));
        assert_fsc_ok(fsc_unlock(l));
        assert_child_exit(watcher, 0);
        assert_child_exit(holder, 0);
        lt_pipe_close(&held);
        lt_pipe_close(&release);
    }
}

static void test_bad_arguments(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_lock_handle *l = NULL;
    int64_t pid;

    assert_fsc_status(fsc_unlock(NULL), FSC_EINVAL);
    assert_fsc_status(fsc_lock(NULL, LT_KEY("k"), 0, &l), FSC_EINVAL);
    assert_fsc_status(fsc_lock(t->cache, NULL, 1, 0, &l), FSC_EINVAL);
    assert_fsc_status(fsc_lock(t->cache, "k", 0, 0, &l), FSC_EINVAL);
    assert_fsc_status(fsc_lock(t->cache, LT_KEY("k"), 0, NULL), FSC_EINVAL);
    assert_fsc_status(fsc_lock(t->cache, LT_KEY("k"), -2, &l), FSC_EINVAL);
    assert_fsc_status(fsc_lock_holder(t->cache, LT_KEY("k"), NULL), FSC_EINVAL);
    assert_fsc_status(fsc_lock_holder(t->cache, "k", 0, &pid), FSC_EINVAL);
    /* None of the refused calls left the key locked. */
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("k"), 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_wait_try_and_timeout_across_processes),
        LT_TEST(test_try_and_timeout_across_threads),
        LT_TEST(test_timed_wait_succeeds),
        LT_TEST(test_huge_timeout_waits),
        LT_TEST(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
