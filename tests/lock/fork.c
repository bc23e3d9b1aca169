/* After fork() the child holds none of its parent's locks and may use the
 * handles it inherited at once. */
#include "lock_test.h"

/* The parent holds "held": the child is refused it, but takes any other key
 * at once, through the inherited handle and through one of its own. */
static void test_child_holds_none_of_parents_locks(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_lock_handle *l = NULL, *re = NULL;

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("held"), 0, &l));
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("held"), 0, &re)); /* two holds in the table */

    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        fsc_lock_handle *h = NULL;
        int64_t holder = 0;
        /* Not re-entrant across fork: the parent's holds are not ours. */
        child_check(fsc_lock(t->cache, LT_KEY("held"), 0, &h) == FSC_EBUSY, 2);
        child_check(fsc_lock_holder(t->cache, LT_KEY("held"), &holder) == FSC_OK, 3);
        child_check(holder == (int64_t)getppid(), 4);
        child_check(fsc_lock(t->cache, LT_KEY("free"), 0, &h) == FSC_OK, 5);
        child_check(fsc_unlock(h) == FSC_OK, 6);

        fsc_cache *own = NULL;
        child_check(fsc_open(t->dir, NULL, &own) == FSC_OK, 7);
        child_check(fsc_lock(own, LT_KEY("held"), 0, &h) == FSC_EBUSY, 8);
        child_check(fsc_lock(own, LT_KEY("free"), 0, &h) == FSC_OK, 9);
        child_check(fsc_unlock(h) == FSC_OK, 10);
        fsc_close(own);
        _exit(0);
    }
    assert_child_exit(pid, 0);
    assert_fsc_ok(fsc_unlock(re));
    assert_fsc_ok(fsc_unlock(l));
}

/* A parent that holds nothing (but took and released keys before the fork)
 * leaves a child that can lock any key immediately. */
static void test_child_of_idle_parent(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("was-held"), 0, &l));
    assert_fsc_ok(fsc_unlock(l));

    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        fsc_lock_handle *a = NULL, *b = NULL;
        child_check(fsc_lock(t->cache, LT_KEY("was-held"), 0, &a) == FSC_OK, 2);
        child_check(fsc_lock(t->cache, LT_KEY("never-held"), 0, &b) == FSC_OK, 3);
        child_check(fsc_unlock(b) == FSC_OK, 4);
        child_check(fsc_unlock(a) == FSC_OK, 5);
        _exit(0);
    }
    assert_child_exit(pid, 0);
}

/* A grandchild inherits nothing either, and a child's locks exclude its parent. */
static void test_child_locks_exclude_parent(void **state) {
    struct fsc_test_ctx *t = *state;
    lt_pipe held = lt_pipe_new(), done = lt_pipe_new();

    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        lt_close(&held.r);
        lt_close(&done.w);
        fsc_lock_handle *h = NULL;
        child_check(fsc_lock(t->cache, LT_KEY("childs"), 0, &h) == FSC_OK, 2);
        pid_t g = fork();
        if (g == 0) {
            fsc_lock_handle *x = NULL;
            _exit(fsc_lock(t->cache, LT_KEY("childs"), 0, &x) == FSC_EBUSY ? 0 : 1);
        }
        child_check(tb_wait(g) == 0, 3);
        child_check(lt_send(held.w), 4);
        lt_recv(done.r);
        child_check(fsc_unlock(h) == FSC_OK, 5);
        _exit(0);
    }
    lt_close(&held.w);
    lt_close(&done.r);
    assert_true(lt_recv(held.r));
    assert_fsc_status(lt_thread_lock(t->cache, LT_KEY("childs"), 0), FSC_EBUSY);
    fsc_lock_handle *l = NULL;
    assert_fsc_status(fsc_lock(t->cache, LT_KEY("childs"), 0, &l), FSC_EBUSY);
    lt_close(&done.w);
    assert_child_exit(pid, 0);
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("childs"), 0, &l));
    assert_fsc_ok(fsc_unlock(l));
    lt_pipe_close(&held);
}

/* A hold inherited from the parent is not the child's to release: trying
 * leaves the parent's lock in place. */
static void test_child_cannot_release_parents_hold(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("parents"), 0, &l));
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        int st = fsc_unlock(l);
        child_check(st != FSC_OK, 2);
        _exit(0);
    }
    assert_child_exit(pid, 0);
    assert_fsc_status(lt_child_lock(t->cache, NULL, LT_KEY("parents"), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(l));
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("parents"), 0));
}

struct waiter {
    fsc_cache *c;
    int status;
};

static void *wait_for_key(void *arg) {
    struct waiter *w = arg;
    fsc_lock_handle *l = NULL;
    w->status = fsc_lock(w->c, LT_KEY("contended"), -1, &l);
    if (w->status == FSC_OK)
        w->status = fsc_unlock(l);
    return NULL;
}

/* Forking while another thread waits in fsc_lock: the child's table is
 * fresh, so it is not blocked by the parent's in-process state. */
static void test_fork_while_a_thread_waits(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_lock_handle *l = NULL;
    struct waiter w = {t->cache, FSC_EIO};
    pthread_t th;

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("contended"), 0, &l));
    assert_int_equal(pthread_create(&th, NULL, wait_for_key, &w), 0);
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        fsc_lock_handle *h = NULL;
        /* The parent process holds it: busy, but the answer comes at once. */
        child_check(fsc_lock(t->cache, LT_KEY("contended"), 0, &h) == FSC_EBUSY, 2);
        child_check(fsc_lock(t->cache, LT_KEY("other"), 0, &h) == FSC_OK, 3);
        child_check(fsc_unlock(h) == FSC_OK, 4);
        _exit(0);
    }
    assert_child_exit(pid, 0);
    assert_fsc_ok(fsc_unlock(l));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_fsc_ok(w.status);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_child_holds_none_of_parents_locks),
        LT_TEST(test_child_of_idle_parent),
        LT_TEST(test_child_locks_exclude_parent),
        LT_TEST(test_child_cannot_release_parents_hold),
        LT_TEST(test_fork_while_a_thread_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
