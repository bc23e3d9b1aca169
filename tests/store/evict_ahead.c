/* Eviction ahead in a sampled cache (more than 1,024 values): a set that
 * must evict frees room for the next sets like it, so that those evict
 * nothing; the budget holds after every set, and every value stored since
 * is there with its bytes (docs/ARCHITECTURE.md, "The budget and eviction"). */
#include "store_test.h"

#define VALUES 1500
#define VALUE_SIZE 1000
#define FOLLOWERS 8

static void test_an_evicting_set_makes_room_for_the_next_ones(void **state) {
    struct st_ctx *t = *state;
    char key[32];
    fsc_cache *fill = st_open(t->dir, 1ull << 30, 0, -1);
    assert_non_null(fill);
    for (int i = 0; i < VALUES; i++) {
        snprintf(key, sizeof key, "old-%04d", i);
        assert_fsc_ok(st_set(fill, key, VALUE_SIZE));
    }
    const uint64_t full = st_stats(fill).bytes;
    fsc_close(fill);

    /* The cache as full as its budget: every new value needs an eviction. */
    fsc_cache *c = st_open(t->dir, full, 0, -1);
    assert_non_null(c);
    assert_fsc_ok(st_set(c, "new-first", VALUE_SIZE));
    const uint64_t evicted = st_stats(c).evictions;
    assert_true(evicted >= 1);
    assert_true(st_disk_bytes(t->dir) <= full);
    for (int i = 0; i < FOLLOWERS; i++) {
        snprintf(key, sizeof key, "new-%02d", i);
        assert_fsc_ok(st_set(c, key, VALUE_SIZE));
        fsc_statistics s = st_stats(c);
        if (s.evictions != evicted)
            fail_msg("set %d after the evicting one evicted again (%llu evictions, %llu before)", i + 1,
                     (unsigned long long)s.evictions, (unsigned long long)evicted);
        assert_true(s.bytes <= full);
        assert_true(st_disk_bytes(t->dir) <= full);
    }
    assert_int_equal(st_check(c, "new-first", NULL), 1);
    for (int i = 0; i < FOLLOWERS; i++) {
        snprintf(key, sizeof key, "new-%02d", i);
        assert_int_equal(st_check(c, key, NULL), 1);
    }
    int rc;
    fsc_verify_report r = st_verify(c, 0, &rc);
    assert_fsc_ok(rc);
    assert_int_equal(r.problems, 0);
    fsc_close(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_an_evicting_set_makes_room_for_the_next_ones, st_setup, st_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
