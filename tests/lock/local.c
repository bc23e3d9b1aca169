/* distributed_lock = 0: the lock excludes the threads of this process and
 * nobody else. */
#include "lock_test.h"

static int open_local(const char *dir, fsc_cache **out) {
    fsc_options o;
    fsc_options_init(&o);
    o.distributed_lock = 0;
    return fsc_open(dir, &o, out);
}

struct waiter {
    fsc_cache *c;
    int status;
};

static void *wait_forever(void *arg) {
    struct waiter *w = arg;
    fsc_lock_handle *l = NULL;
    w->status = fsc_lock(w->c, LT_KEY("local"), -1, &l);
    if (w->status == FSC_OK)
        w->status = fsc_unlock(l);
    return NULL;
}

static void test_threads_excluded_processes_not(void **state) {
    (void)state;
    char *dir = fsc_test_tempdir();
    fsc_cache *c = NULL;
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(open_local(dir, &c));
    assert_fsc_ok(fsc_lock(c, LT_KEY("local"), 0, &l));

    assert_fsc_status(lt_thread_lock(c, LT_KEY("local"), 0), FSC_EBUSY);
    assert_fsc_status(lt_thread_lock(c, LT_KEY("local"), 50), FSC_ETIMEDOUT);

    /* Another process takes it at once, through the inherited handle, one
     * of its own, or a distributed handle: nothing is locked in the file. */
    assert_fsc_ok(lt_child_lock(c, NULL, LT_KEY("local"), 0));
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        fsc_cache *own = NULL, *dist = NULL;
        fsc_lock_handle *h = NULL, *d = NULL;
        int64_t holder = -1;
        child_check(open_local(dir, &own) == FSC_OK, 2);
        child_check(fsc_lock(own, LT_KEY("local"), 0, &h) == FSC_OK, 3);
        child_check(fsc_unlock(h) == FSC_OK, 4);
        child_check(fsc_open(dir, NULL, &dist) == FSC_OK, 5);
        child_check(fsc_lock_holder(dist, LT_KEY("local"), &holder) == FSC_OK && holder == 0, 6);
        child_check(fsc_lock(dist, LT_KEY("local"), 0, &d) == FSC_OK, 7);
        child_check(fsc_unlock(d) == FSC_OK, 8);
        fsc_close(dist);
        fsc_close(own);
        _exit(0);
    }
    assert_child_exit(pid, 0);

    /* A thread waiting forever gets it once it is released. */
    struct waiter w = {c, FSC_EIO};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_forever, &w), 0);
    assert_fsc_ok(fsc_unlock(l));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_fsc_ok(w.status);
    assert_fsc_ok(lt_thread_lock(c, LT_KEY("local"), 0));

    fsc_close(c);
    tb_rmtree(dir);
    free(dir);
}

/* Re-entrancy and holds work the same without the file lock. */
static void test_local_reentrant(void **state) {
    (void)state;
    char *dir = fsc_test_tempdir();
    fsc_cache *c = NULL;
    fsc_lock_handle *a = NULL, *b = NULL;

    assert_fsc_ok(open_local(dir, &c));
    assert_fsc_ok(fsc_lock(c, LT_KEY("k"), 0, &a));
    assert_fsc_ok(fsc_lock(c, LT_KEY("k"), 0, &b));
    assert_fsc_ok(fsc_unlock(a));
    assert_fsc_status(lt_thread_lock(c, LT_KEY("k"), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(b));
    assert_fsc_ok(lt_thread_lock(c, LT_KEY("k"), 0));
    fsc_close(c);
    tb_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_threads_excluded_processes_not),
        LT_TEST(test_local_reentrant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
