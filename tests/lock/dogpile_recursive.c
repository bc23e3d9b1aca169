/* A creator may call fsc_get_or_create (and fsc_lock) on its own key: the
 * key's lock is re-entrant for the thread that holds it. */
#include "dogpile_test.h"

struct outer {
    struct lt_creator inner;
    int inner_status;
    int inner_right_value;
    int relock_status;
};

static int create_recursively(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    struct outer *o = ctx;
    fsc_lock_handle *l = NULL;
    o->relock_status = fsc_lock(c, key, key_len, 0, &l);
    if (o->relock_status == FSC_OK)
        fsc_unlock(l);
    fsc_entry *e = NULL;
    o->inner_status = fsc_get_or_create(c, key, key_len, -1, lt_create, &o->inner, &e);
    o->inner_right_value = lt_entry_is(e, "inner");
    fsc_entry_free(e);
    return o->inner_status == FSC_OK ? 0 : 1;
}

/* Runs in a child so that a deadlock ends in the child's alarm, not here. */
static void recurse(struct fsc_test_ctx *t, int stale) {
    if (stale) {
        assert_fsc_ok(fsc_set(t->cache, LT_KEY("k"), "old", 3));
        assert_fsc_ok(fsc_invalidate(t->cache, 0));
    }
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        struct outer o;
        memset(&o, 0, sizeof o);
        lt_creator_init(&o.inner, "inner");
        fsc_entry *e = NULL;
        int st = fsc_get_or_create(t->cache, LT_KEY("k"), -1, create_recursively, &o, &e);
        if (st != FSC_OK || o.inner_status != FSC_OK || o.relock_status != FSC_OK) {
            fprintf(stderr, "outer %s, inner %s, relock %s\n", fsc_strerror(st), fsc_strerror(o.inner_status),
                    fsc_strerror(o.relock_status));
            _exit(2);
        }
        child_check(o.inner_right_value, 3);
        child_check(lt_entry_is(e, "inner"), 4);
        child_check(atomic_load(&o.inner.calls) == 1, 5);
        /* Every hold was released: another process can take the key. */
        pid_t g = fork();
        if (g == 0) {
            fsc_lock_handle *l = NULL;
            _exit(fsc_lock(t->cache, LT_KEY("k"), 0, &l) == FSC_OK ? 0 : 1);
        }
        child_check(tb_wait(g) == 0, 6);
        _exit(0);
    }
    assert_child_exit(pid, 0);
    assert_get_is(t->cache, "k", "inner");
}

static void test_recursive_on_missing_value(void **state) { recurse(*state, 0); }

static void test_recursive_on_stale_value(void **state) { recurse(*state, 1); }

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_recursive_on_missing_value),
        LT_TEST(test_recursive_on_stale_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
