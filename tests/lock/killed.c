/* A holder killed by SIGKILL releases its locks: the kernel does it. */
#include "lock_test.h"

/* Forks a process that takes the keys and then waits to be killed. */
static pid_t spawn_holder(fsc_cache *c, const char *const *keys, int n) {
    lt_pipe held = lt_pipe_new();
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        lt_close(&held.r);
        for (int i = 0; i < n; i++) {
            fsc_lock_handle *l = NULL;
            child_check(fsc_lock(c, LT_KEY(keys[i]), -1, &l) == FSC_OK, 2);
        }
        child_check(lt_send(held.w), 3);
        for (;;)
            pause();
    }
    lt_close(&held.w);
    assert_true(lt_recv(held.r));
    lt_close(&held.r);
    return pid;
}

/* The parent is already waiting (-1) when the holder is killed. */
static void test_waiter_gets_lock_of_killed_holder(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *keys[] = {"victim"};
    pid_t holder = spawn_holder(t->cache, keys, 1);

    fsc_lock_handle *l = NULL;
    assert_fsc_status(fsc_lock(t->cache, LT_KEY("victim"), 0, &l), FSC_EBUSY);

    /* The killer strikes only once the parent is blocked in the kernel. */
    lt_pipe kill_now = lt_pipe_new();
    pid_t killer = fsc_test_fork();
    if (killer == 0) {
        lt_close(&kill_now.w);
        child_check(lt_recv(kill_now.r), 2);
        child_check(kill(holder, SIGKILL) == 0, 3);
        _exit(0);
    }
    lt_close(&kill_now.r);
    pid_t watcher = lt_send_when_blocked(getpid(), kill_now.w);
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("victim"), -1, &l));
    assert_child_exit(holder, 128 + SIGKILL);
    assert_child_exit(watcher, 0);
    assert_child_exit(killer, 0);
    assert_fsc_ok(fsc_unlock(l));
    lt_pipe_close(&kill_now);
}

/* Every key of a killed holder is free afterwards. */
static void test_all_keys_of_killed_holder_are_free(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *keys[] = {"k1", "k2", "k3", "k4", "k5"};
    pid_t holder = spawn_holder(t->cache, keys, 5);

    for (int i = 0; i < 5; i++)
        assert_fsc_status(lt_child_lock(t->cache, NULL, LT_KEY(keys[i]), 0), FSC_EBUSY);
    assert_int_equal(kill(holder, SIGKILL), 0);
    assert_child_exit(holder, 128 + SIGKILL);
    for (int i = 0; i < 5; i++) {
        fsc_lock_handle *l = NULL;
        assert_fsc_ok(fsc_lock(t->cache, LT_KEY(keys[i]), 0, &l));
        assert_fsc_ok(fsc_unlock(l));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_waiter_gets_lock_of_killed_holder),
        LT_TEST(test_all_keys_of_killed_holder_are_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
