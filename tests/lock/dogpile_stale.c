/* An expired value while another caller regenerates it is served at once
 * as FSC_STALE; once the regeneration is done, callers get the new value. */
#include "dogpile_test.h"

/* Forks a regenerator that calls fsc_get_or_create on key and, inside its
 * creator, announces itself on entered and waits for proceed. */
static pid_t spawn_regenerator(struct fsc_test_ctx *t, const char *key, int64_t expiration_ms, lt_pipe *entered,
                               lt_pipe *proceed) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        lt_close(&entered->r);
        lt_close(&proceed->w);
        struct lt_creator cr;
        lt_creator_init(&cr, "new");
        cr.entered_fd = entered->w;
        cr.proceed_fd = proceed->r;
        fsc_entry *e = NULL;
        child_check(fsc_get_or_create(t->cache, LT_KEY(key), expiration_ms, lt_create, &cr, &e) == FSC_OK, 2);
        child_check(lt_entry_is(e, "new"), 3);
        child_check(atomic_load(&cr.calls) == 1, 4);
        _exit(0);
    }
    lt_close(&entered->w);
    lt_close(&proceed->r);
    return pid;
}

/* In a child: get_or_create must give FSC_STALE with "old", no creator call. */
static int child_sees_stale(struct fsc_test_ctx *t, const char *key, int64_t expiration_ms) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        struct lt_creator cr;
        lt_creator_init(&cr, "wrong");
        fsc_entry *e = NULL;
        child_check(fsc_get_or_create(t->cache, LT_KEY(key), expiration_ms, lt_create, &cr, &e) == FSC_STALE, 2);
        child_check(lt_entry_is(e, "old"), 3);
        child_check(atomic_load(&cr.calls) == 0, 4);
        _exit(0);
    }
    return tb_wait(pid);
}

/* Expired by soft invalidation (expiration -1) or by age (expiration 0). */
static void stale_while_process_regenerates(struct fsc_test_ctx *t, int soft) {
    const char *k = "slow";
    const int64_t expiration = soft ? -1 : 0;
    lt_pipe entered = lt_pipe_new(), proceed = lt_pipe_new();

    assert_fsc_ok(fsc_set(t->cache, LT_KEY(k), "old", 3));
    if (soft)
        assert_fsc_ok(fsc_invalidate(t->cache, 0));
    pid_t regen = spawn_regenerator(t, k, expiration, &entered, &proceed);
    assert_true(lt_recv(entered.r)); /* it holds the lock and is regenerating */

    /* Answered while the creator is still blocked on our pipe: no waiting. */
    struct lt_creator cr;
    lt_creator_init(&cr, "wrong");
    fsc_entry *e = NULL;
    assert_fsc_status(fsc_get_or_create(t->cache, LT_KEY(k), expiration, lt_create, &cr, &e), FSC_STALE);
    assert_true(lt_entry_is(e, "old"));
    fsc_entry_free(e);
    assert_int_equal(atomic_load(&cr.calls), 0);
    assert_int_equal(child_sees_stale(t, k, expiration), 0);
    if (soft)
        assert_get_is(t->cache, k, NULL);

    assert_true(lt_send(proceed.w));
    assert_child_exit(regen, 0);

    /* Regenerated: fresh for everybody, no further creator call. */
    assert_fsc_ok(fsc_get_or_create(t->cache, LT_KEY(k), soft ? -1 : 60000, lt_create, &cr, &e));
    assert_true(lt_entry_is(e, "new"));
    fsc_entry_free(e);
    assert_int_equal(atomic_load(&cr.calls), 0);
    assert_get_is(t->cache, k, "new");
    lt_pipe_close(&entered);
    lt_pipe_close(&proceed);
}

static void test_soft_invalidated_stale_while_regenerating(void **state) {
    stale_while_process_regenerates(*state, 1);
}

static void test_expired_stale_while_regenerating(void **state) { stale_while_process_regenerates(*state, 0); }

/* The regenerator is another thread of this process. */
static void test_stale_while_thread_regenerates(void **state) {
    struct fsc_test_ctx *t = *state;
    lt_pipe entered = lt_pipe_new(), proceed = lt_pipe_new();
    struct lt_goc_thread r = {.c = t->cache, .key = "slow", .status = FSC_EIO};
    pthread_t th;

    assert_fsc_ok(fsc_set(t->cache, LT_KEY("slow"), "old", 3));
    assert_fsc_ok(fsc_invalidate(t->cache, 0));
    lt_creator_init(&r.cr, "new");
    r.cr.entered_fd = entered.w;
    r.cr.proceed_fd = proceed.r;
    assert_int_equal(pthread_create(&th, NULL, lt_goc_thread_body, &r), 0);
    assert_true(lt_recv(entered.r));

    struct lt_creator cr;
    lt_creator_init(&cr, "wrong");
    fsc_entry *e = NULL;
    assert_fsc_status(fsc_get_or_create(t->cache, LT_KEY("slow"), -1, lt_create, &cr, &e), FSC_STALE);
    assert_true(lt_entry_is(e, "old"));
    fsc_entry_free(e);
    assert_int_equal(child_sees_stale(t, "slow", -1), 0);

    assert_true(lt_send(proceed.w));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_fsc_ok(r.status);
    assert_true(r.right_value);
    assert_int_equal(atomic_load(&r.cr.calls), 1);
    assert_fsc_ok(fsc_get_or_create(t->cache, LT_KEY("slow"), -1, lt_create, &cr, &e));
    assert_true(lt_entry_is(e, "new"));
    fsc_entry_free(e);
    assert_int_equal(atomic_load(&cr.calls), 0);
    lt_pipe_close(&entered);
    lt_pipe_close(&proceed);
}

/* Expired and nobody regenerating: this caller regenerates, once. */
static void test_expired_without_regenerator_regenerates(void **state) {
    struct fsc_test_ctx *t = *state;
    struct lt_creator cr;
    fsc_entry *e = NULL;

    assert_fsc_ok(fsc_set(t->cache, LT_KEY("k"), "old", 3));
    assert_fsc_ok(fsc_invalidate(t->cache, 0));
    lt_creator_init(&cr, "new");
    assert_fsc_ok(fsc_get_or_create(t->cache, LT_KEY("k"), -1, lt_create, &cr, &e));
    assert_true(lt_entry_is(e, "new"));
    fsc_entry_free(e);
    assert_int_equal(atomic_load(&cr.calls), 1);

    assert_fsc_ok(fsc_set(t->cache, LT_KEY("aged"), "old", 3));
    assert_fsc_ok(fsc_get_or_create(t->cache, LT_KEY("aged"), 0, lt_create, &cr, &e));
    assert_true(lt_entry_is(e, "new"));
    fsc_entry_free(e);
    assert_int_equal(atomic_load(&cr.calls), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_soft_invalidated_stale_while_regenerating),
        LT_TEST(test_expired_stale_while_regenerating),
        LT_TEST(test_stale_while_thread_regenerates),
        LT_TEST(test_expired_without_regenerator_regenerates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
