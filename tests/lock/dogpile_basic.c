/* fsc_get_or_create without contention: a fresh value costs no creator
 * call, a missing one exactly one; the creator may re-enter the key's lock. */
#include "dogpile_test.h"

static void test_fresh_value_needs_no_creator(void **state) {
    struct fsc_test_ctx *t = *state;
    struct lt_creator cr;

    lt_creator_init(&cr, "made");
    assert_fsc_ok(fsc_set(t->cache, LT_KEY("k"), "stored", 6));
    assert_goc_gives(t->cache, "k", &cr, "stored", 0);
    /* No lock was left behind either. */
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("k"), 0));
}

static void test_missing_value_calls_creator_once(void **state) {
    struct fsc_test_ctx *t = *state;
    struct lt_creator cr;

    lt_creator_init(&cr, "made");
    assert_goc_gives(t->cache, "k", &cr, "made", 1);
    assert_get_is(t->cache, "k", "made");

    /* Now it is fresh: the second call only reads. */
    assert_goc_gives(t->cache, "k", &cr, "made", 1);
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("k"), 0));
}

/* Another process sees the created value, and does not create again. */
static void test_created_value_is_shared(void **state) {
    struct fsc_test_ctx *t = *state;
    struct lt_creator cr;
    fsc_entry *e = NULL;

    lt_creator_init(&cr, "for-all");
    assert_fsc_ok(fsc_get_or_create(t->cache, LT_KEY("k"), -1, lt_create, &cr, &e));
    fsc_entry_free(e);
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        struct lt_creator other;
        lt_creator_init(&other, "wrong");
        fsc_entry *ce = NULL;
        child_check(fsc_get_or_create(t->cache, LT_KEY("k"), -1, lt_create, &other, &ce) == FSC_OK, 2);
        child_check(lt_entry_is(ce, "for-all"), 3);
        child_check(atomic_load(&other.calls) == 0, 4);
        _exit(0);
    }
    assert_child_exit(pid, 0);
}

static void test_bad_arguments(void **state) {
    struct fsc_test_ctx *t = *state;
    struct lt_creator cr;
    fsc_entry *e = NULL;

    lt_creator_init(&cr, "v");
    assert_fsc_status(fsc_get_or_create(t->cache, LT_KEY("k"), -1, NULL, &cr, &e), FSC_EINVAL);
    assert_fsc_status(fsc_get_or_create(t->cache, LT_KEY("k"), -1, lt_create, &cr, NULL), FSC_EINVAL);
    assert_fsc_status(fsc_get_or_create(t->cache, "k", 0, -1, lt_create, &cr, &e), FSC_EINVAL);
    assert_fsc_status(fsc_get_or_create(t->cache, LT_KEY("k"), -2, lt_create, &cr, &e), FSC_EINVAL);
    assert_int_equal(atomic_load(&cr.calls), 0);
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("k"), 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_fresh_value_needs_no_creator),
        LT_TEST(test_missing_value_calls_creator_once),
        LT_TEST(test_created_value_is_shared),
        LT_TEST(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
