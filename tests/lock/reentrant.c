/* Re-entrant holds: every hold needs its own release, and a hold may be
 * released by a thread other than the one that took it. */
#include "lock_test.h"

static void test_second_hold_keeps_key_locked(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "reentrant";
    fsc_lock_handle *a = NULL, *b = NULL;

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), 0, &a));
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), 0, &b)); /* same thread: no wait */
    assert_fsc_ok(fsc_unlock(a));

    /* One hold is left: nobody else may take the key. */
    assert_fsc_status(lt_thread_lock(t->cache, LT_KEY(k), 0), FSC_EBUSY);
    assert_fsc_status(lt_child_lock(t->cache, NULL, LT_KEY(k), 0), FSC_EBUSY);
    assert_fsc_status(lt_child_lock(NULL, t->dir, LT_KEY(k), 0), FSC_EBUSY);

    assert_fsc_ok(fsc_unlock(b));
    assert_fsc_ok(lt_thread_lock(t->cache, LT_KEY(k), 0));
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY(k), 0));
}

/* Many holds, released in any order, still need every release. */
static void test_many_holds(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "deep";
    fsc_lock_handle *h[32];

    for (int i = 0; i < 32; i++)
        assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), i % 2 ? 0 : -1, &h[i]));
    for (int i = 31; i >= 1; i -= 2)
        assert_fsc_ok(fsc_unlock(h[i]));
    for (int i = 2; i < 32; i += 2)
        assert_fsc_ok(fsc_unlock(h[i]));
    assert_fsc_status(lt_child_lock(t->cache, NULL, LT_KEY(k), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(h[0]));
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY(k), 0));
}

struct release_job {
    fsc_lock_handle *hold;
    int status;
};

static void *release_in_thread(void *arg) {
    struct release_job *j = arg;
    j->status = fsc_unlock(j->hold);
    return NULL;
}

/* A hold handed to another thread (a background regenerator) is released there. */
static void test_release_from_other_thread(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *k = "handed-over";
    struct release_job j = {NULL, FSC_EIO};

    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), 0, &j.hold));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_in_thread, &j), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_fsc_ok(j.status);

    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY(k), 0));
    assert_fsc_ok(lt_thread_lock(t->cache, LT_KEY(k), 0));
    /* And the thread that took it can take it again. */
    fsc_lock_handle *again = NULL;
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY(k), 0, &again));
    assert_fsc_ok(fsc_unlock(again));
}

struct take_job {
    fsc_cache *c;
    const char *key;
    fsc_lock_handle *hold;
    int status;
};

static void *take_in_thread(void *arg) {
    struct take_job *j = arg;
    j->status = fsc_lock(j->c, LT_KEY(j->key), 0, &j->hold);
    return NULL;
}

/* Taken by a thread that has ended, released by the main thread. */
static void test_taken_by_ended_thread(void **state) {
    struct fsc_test_ctx *t = *state;
    struct take_job j = {t->cache, "orphaned", NULL, FSC_EIO};
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, take_in_thread, &j), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_fsc_ok(j.status);
    assert_fsc_status(lt_child_lock(t->cache, NULL, LT_KEY(j.key), 0), FSC_EBUSY);
    assert_fsc_ok(fsc_unlock(j.hold));
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY(j.key), 0));
    assert_fsc_ok(lt_thread_lock(t->cache, LT_KEY(j.key), 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_second_hold_keeps_key_locked),
        LT_TEST(test_many_holds),
        LT_TEST(test_release_from_other_thread),
        LT_TEST(test_taken_by_ended_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
