/* fsc_invalidate seen from another process: hard makes values misses, soft
 * makes them stale for get_or_create; values set afterwards are fresh. */
#include "dogpile_test.h"

/* In a child: fsc_get must give want (NULL: a miss). Returns the exit code. */
static int child_get(struct fsc_test_ctx *t, const char *key, const char *want) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        fsc_entry *e = NULL;
        int st = fsc_get(t->cache, LT_KEY(key), &e);
        if (want)
            child_check(st == FSC_OK && lt_entry_is(e, want), 2);
        else
            child_check(st == FSC_MISS, 3);
        _exit(0);
    }
    return tb_wait(pid);
}

/* Forks a child whose fsc_get_or_create of key must give status and the
 * value want without calling its creator; wait for it (exit 0). */
static pid_t child_get_or_create(struct fsc_test_ctx *t, const char *key, int status, const char *want) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        struct lt_creator cr;
        lt_creator_init(&cr, "wrong");
        fsc_entry *e = NULL;
        child_check(fsc_get_or_create(t->cache, LT_KEY(key), -1, lt_create, &cr, &e) == status, 2);
        child_check(lt_entry_is(e, want), 3);
        child_check(atomic_load(&cr.calls) == 0, 4);
        _exit(0);
    }
    return pid;
}

static void test_hard_invalidate(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(fsc_set(t->cache, LT_KEY("k"), "v", 1));
    assert_int_equal(child_get(t, "k", "v"), 0);
    assert_fsc_ok(fsc_invalidate(t->cache, 1));
    assert_int_equal(child_get(t, "k", NULL), 0);
    assert_get_is(t->cache, "k", NULL);

    /* A hard-invalidated value is not served stale: while we hold the lock,
     * a child's get_or_create waits (seen blocked in the kernel), then gets
     * the value we set, without calling its creator. */
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("k"), 0, &l));
    pid_t pid = child_get_or_create(t, "k", FSC_OK, "after");
    assert_true(lt_wait_blocked(pid));
    assert_fsc_ok(fsc_set(t->cache, LT_KEY("k"), "after", 5));
    assert_fsc_ok(fsc_unlock(l));
    assert_child_exit(pid, 0);
    assert_int_equal(child_get(t, "k", "after"), 0);
}

static void test_soft_invalidate(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_lock_handle *l = NULL;

    assert_fsc_ok(fsc_set(t->cache, LT_KEY("k"), "old", 3));
    assert_fsc_ok(fsc_invalidate(t->cache, 0));
    assert_int_equal(child_get(t, "k", NULL), 0);

    /* We hold the key as its regenerator: the child is served the old value. */
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("k"), 0, &l));
    pid_t pid = child_get_or_create(t, "k", FSC_STALE, "old");
    assert_child_exit(pid, 0);
    assert_fsc_ok(fsc_set(t->cache, LT_KEY("k"), "new", 3));
    assert_fsc_ok(fsc_unlock(l));

    assert_int_equal(child_get(t, "k", "new"), 0);
    pid = child_get_or_create(t, "k", FSC_OK, "new");
    assert_child_exit(pid, 0);
}

/* Invalidation by a child, with a handle of its own, reaches the parent's
 * handles; values of other keys are affected alike. */
static void test_invalidate_from_child(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_cache *second = NULL;

    assert_fsc_ok(fsc_set(t->cache, LT_KEY("a"), "1", 1));
    assert_fsc_ok(fsc_set(t->cache, LT_KEY("b"), "2", 1));
    assert_fsc_ok(fsc_open(t->dir, NULL, &second));
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        fsc_cache *own = NULL;
        child_check(fsc_open(t->dir, NULL, &own) == FSC_OK, 2);
        child_check(fsc_invalidate(own, 1) == FSC_OK, 3);
        child_check(fsc_set(own, LT_KEY("c"), "3", 1) == FSC_OK, 4);
        fsc_close(own);
        _exit(0);
    }
    assert_child_exit(pid, 0);
    assert_get_is(t->cache, "a", NULL);
    assert_get_is(second, "b", NULL);
    assert_get_is(t->cache, "c", "3");
    assert_get_is(second, "c", "3");
    fsc_close(second);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_hard_invalidate),
        LT_TEST(test_soft_invalidate),
        LT_TEST(test_invalidate_from_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
