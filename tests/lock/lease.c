/* Leases (FSC_NETWORK): in network mode, a set by a thread that holds the
 * key's lock checks that the key holds no other value than when the lock was
 * taken. A lock lost to another host shows itself so (the other host stored
 * its value); here, on a local directory with the mode forced on, another
 * process stores a value without the lock, which the check cannot tell apart. */
#include "lock_test.h"

static int open_network(const char *dir, int mode, fsc_cache **out) {
    fsc_options o;
    fsc_options_init(&o);
    o.network_mode = mode;
    return fsc_open(dir, &o, out);
}

/* Another process sets the key (size bytes, not holding its lock). */
static void set_elsewhere(const char *dir, const char *key, size_t size) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        fsc_cache *c = NULL;
        char *v = calloc(1, size);
        child_check(v && fsc_open(dir, NULL, &c) == FSC_OK, 2);
        child_check(fsc_set(c, LT_KEY(key), v, size) == FSC_OK, 3);
        fsc_close(c);
        _exit(0);
    }
    assert_child_exit(pid, 0);
}

/* The holder's set fails with FSC_ELOST and stores nothing, for a packed
 * value and for one with a file of its own; its own sets under the lock
 * before that go through, as do sets after the lock is taken again. */
static void test_value_stored_under_held_lock_is_lost(void **state) {
    (void)state;
    char *dir = fsc_test_tempdir();
    fsc_cache *c = NULL;
    assert_fsc_ok(open_network(dir, FSC_NETWORK_ON, &c));
    const size_t sizes[] = {10, 100000};
    for (size_t i = 0; i < 2; i++) {
        const char *key = i ? "big" : "small";
        fsc_lock_handle *l = NULL;
        assert_fsc_ok(fsc_lock(c, LT_KEY(key), -1, &l));
        assert_fsc_ok(fsc_set(c, LT_KEY(key), "mine-1", 6));
        assert_fsc_ok(fsc_set(c, LT_KEY(key), "mine-2", 6)); /* its own value is no conflict */
        set_elsewhere(dir, key, sizes[i]);
        assert_fsc_status(fsc_set(c, LT_KEY(key), "mine-3", 6), FSC_ELOST);
        assert_non_null(strstr(fsc_errmsg(), "lock was lost"));
        fsc_entry *e = NULL;
        assert_fsc_ok(fsc_get(c, LT_KEY(key), &e));
        assert_int_equal(fsc_entry_size(e), sizes[i]); /* the other value stays */
        fsc_entry_free(e);
        assert_fsc_ok(fsc_unlock(l));
        assert_fsc_ok(fsc_lock(c, LT_KEY(key), -1, &l));
        assert_fsc_ok(fsc_set(c, LT_KEY(key), "mine-4", 6));
        assert_fsc_ok(fsc_unlock(l));
    }
    fsc_close(c);
    tb_rmtree(dir);
    free(dir);
}

/* A value removed meanwhile (evicted, deleted) is no conflict, and a set
 * without the lock is never checked. */
static void test_removed_value_and_unlocked_sets_pass(void **state) {
    (void)state;
    char *dir = fsc_test_tempdir();
    fsc_cache *c = NULL;
    assert_fsc_ok(open_network(dir, FSC_NETWORK_ON, &c));
    assert_fsc_ok(fsc_set(c, LT_KEY("k"), "old", 3));
    fsc_lock_handle *l = NULL;
    assert_fsc_ok(fsc_lock(c, LT_KEY("k"), -1, &l));
    assert_fsc_ok(fsc_delete(c, LT_KEY("k")));
    assert_fsc_ok(fsc_set(c, LT_KEY("k"), "new", 3));
    assert_fsc_ok(fsc_unlock(l));
    set_elsewhere(dir, "k", 5);
    assert_fsc_ok(fsc_set(c, LT_KEY("k"), "plain", 5));
    fsc_close(c);
    tb_rmtree(dir);
    free(dir);
}

static const char *created_in;

static int create_after_other_set(void *arg, fsc_cache *c, const void *key, size_t key_len) {
    (void)arg;
    set_elsewhere(created_in, "dog", 7);
    return fsc_set(c, key, key_len, "creator", 7) == FSC_OK ? 0 : -1;
}

/* fsc_get_or_create whose creator's set finds the lease broken returns
 * FSC_ELOST (not FSC_ECREATOR), and the other value stays. */
static void test_creator_lost_lease(void **state) {
    (void)state;
    char *dir = fsc_test_tempdir();
    created_in = dir;
    fsc_cache *c = NULL;
    assert_fsc_ok(open_network(dir, FSC_NETWORK_ON, &c));
    fsc_entry *e = NULL;
    assert_fsc_status(fsc_get_or_create(c, LT_KEY("dog"), -1, create_after_other_set, NULL, &e), FSC_ELOST);
    assert_null(e);
    assert_fsc_ok(fsc_get(c, LT_KEY("dog"), &e));
    assert_int_equal(fsc_entry_size(e), 7);
    assert_false(lt_entry_is(e, "creator"));
    fsc_entry_free(e);
    fsc_close(c);
    tb_rmtree(dir);
    free(dir);
}

/* Network mode off (the default on a local directory): no check. */
static void test_no_check_when_off(void **state) {
    (void)state;
    char *dir = fsc_test_tempdir();
    fsc_cache *c = NULL;
    assert_fsc_ok(open_network(dir, FSC_NETWORK_AUTO, &c));
    fsc_lock_handle *l = NULL;
    assert_fsc_ok(fsc_lock(c, LT_KEY("k"), -1, &l));
    set_elsewhere(dir, "k", 5);
    assert_fsc_ok(fsc_set(c, LT_KEY("k"), "mine", 4));
    assert_fsc_ok(fsc_unlock(l));
    fsc_close(c);
    tb_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_value_stored_under_held_lock_is_lost),
        LT_TEST(test_removed_value_and_unlocked_sets_pass),
        LT_TEST(test_creator_lost_lease),
        LT_TEST(test_no_check_when_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
