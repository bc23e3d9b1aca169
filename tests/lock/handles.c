/* Several handles on one base_dir share one lock file descriptor per
 * process: closing any of them must not drop the locks (POSIX record locks
 * vanish when ANY descriptor of the file is closed). */
#include "lock_test.h"

/* A lock taken through A survives fsc_close of B, opened after A. */
static void test_close_other_handle(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "through-a";
    fsc_cache *b = NULL;
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), 0, &l));
    assert_fsc_ok(fsc_open(t->dir, NULL, &b));
    assert_fsc_ok(fsc_close(b));
    assert_fsc_status(lt_child_lock(NULL, t->dir, LT_KEY(k), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(l));
    assert_fsc_ok(lt_child_lock(NULL, t->dir, LT_KEY(k), 0));
}

/* B opened before the lock was taken, and B's own lock, do not matter either. */
static void test_close_other_handle_with_its_own_lock(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_cache *b = NULL;
    fsc_lock_handle *la = NULL, *lb = NULL;

    assert_fsc_ok(fsc_open(t->dir, NULL, &b));
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("via-a"), 0, &la));
    assert_fsc_ok(fsc_lock(b, LT_KEY("via-b"), 0, &lb));
    assert_fsc_ok(fsc_close(b));
    assert_fsc_status(lt_child_lock(NULL, t->dir, LT_KEY("via-a"), 0), FSC_EBUSY);
    assert_fsc_status(lt_child_lock(NULL, t->dir, LT_KEY("via-b"), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(lb));
    assert_fsc_ok(lt_child_lock(NULL, t->dir, LT_KEY("via-b"), 0));
    assert_fsc_status(lt_child_lock(NULL, t->dir, LT_KEY("via-a"), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(la));
}

/* The same directory spelled differently is still the same lock file. */
static void test_close_handle_opened_by_another_path(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "spelling";
    char *other = lt_path(t->dir, ".//");
    fsc_cache *b = NULL;
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), 0, &l));
    assert_fsc_ok(fsc_open(other, NULL, &b));
    /* Same process, same lock: re-entrant through either handle. */
    fsc_lock_handle *again = NULL;
    assert_fsc_ok(fsc_lock(b, LT_KEY(k), 0, &again));
    assert_fsc_ok(fsc_unlock(again));
    assert_fsc_ok(fsc_close(b));
    assert_fsc_status(lt_child_lock(NULL, t->dir, LT_KEY(k), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(l));
    free(other);
}

/* Closing the handle the lock was taken through leaves the hold valid. */
static void test_close_locking_handle(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "through-b";
    fsc_cache *b = NULL;
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(fsc_open(t->dir, NULL, &b));
    assert_fsc_ok(fsc_lock(b, LT_KEY(k), 0, &l));
    assert_fsc_ok(fsc_close(b));
    assert_fsc_status(lt_child_lock(NULL, t->dir, LT_KEY(k), 0), FSC_EBUSY);
    assert_fsc_status(lt_thread_lock(t->cache, LT_KEY(k), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(l));
    assert_fsc_ok(lt_child_lock(NULL, t->dir, LT_KEY(k), 0));
    assert_fsc_ok(lt_thread_lock(t->cache, LT_KEY(k), 0));
}

/* The same when that handle was the process's only one on the directory. */
static void test_close_only_handle(void **state) {
    (void)state;
    const char *k = "only-handle";
    char *dir = fsc_test_tempdir();
    fsc_cache *c = NULL;
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(fsc_open(dir, NULL, &c));
    assert_fsc_ok(fsc_lock(c, LT_KEY(k), 0, &l));
    assert_fsc_ok(fsc_close(c));
    assert_fsc_status(lt_child_lock(NULL, dir, LT_KEY(k), 0), FSC_EBUSY);

    /* Reopening meanwhile finds the same lock table: the hold is ours. */
    assert_fsc_ok(fsc_open(dir, NULL, &c));
    fsc_lock_handle *again = NULL;
    assert_fsc_ok(fsc_lock(c, LT_KEY(k), 0, &again));
    assert_fsc_ok(fsc_unlock(again));
    assert_fsc_ok(fsc_close(c));
    assert_fsc_status(lt_child_lock(NULL, dir, LT_KEY(k), 0), FSC_EBUSY);

    assert_fsc_ok(fsc_unlock(l));
    assert_fsc_ok(lt_child_lock(NULL, dir, LT_KEY(k), 0));
    tb_rmtree(dir);
    free(dir);
}

/* A lock handle released twice: FSC_EINVAL (no read of freed memory), and
 * the key's other hold is untouched. */
static void test_unlock_twice(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "twice";
    fsc_lock_handle *first = NULL, *second = NULL;

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), 0, &first));
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), 0, &second));
    assert_fsc_ok(fsc_unlock(first));
    assert_fsc_status(fsc_unlock(first), FSC_EINVAL);
    assert_non_null(strstr(fsc_errmsg(), "already released"));
    assert_fsc_status(lt_child_lock(NULL, t->dir, LT_KEY(k), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(second));
    assert_fsc_status(fsc_unlock(second), FSC_EINVAL);
    assert_fsc_ok(lt_child_lock(NULL, t->dir, LT_KEY(k), 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_close_other_handle),
        LT_TEST(test_close_other_handle_with_its_own_lock),
        LT_TEST(test_close_handle_opened_by_another_path),
        LT_TEST(test_close_locking_handle),
        LT_TEST(test_close_only_handle),
        LT_TEST(test_unlock_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
