/* LRU order under a global budget: a 2 MiB cache of 32 KiB values keeps the
 * values that were read recently and drops the old unread ones; a get is a
 * use (in any process), and overwriting a key replaces its charge and its
 * place in the order instead of adding a second one. */
#include "store_test.h"

#define CACHE_SIZE (2u << 20)
#define VALUE_SIZE (32u << 10)
#define OLD_KEYS 60

static void old_key(char *buf, size_t cap, int i) { snprintf(buf, cap, "old-%02d", i); }
static void new_key(char *buf, size_t cap, int i) { snprintf(buf, cap, "new-%03d", i); }

/* Every 6th old key is the one that gets read. */
static int is_read(int i) { return i % 6 == 0; }

static fsc_cache *fill(const char *dir) {
    fsc_cache *c = st_open(dir, CACHE_SIZE, 0, -1);
    assert_non_null(c);
    char key[32];
    for (int i = 0; i < OLD_KEYS; i++) {
        old_key(key, sizeof key, i);
        assert_fsc_ok(st_set(c, key, VALUE_SIZE));
    }
    /* 60 values of 32 KiB fit in 2 MiB: nothing evicted yet. */
    fsc_statistics s = st_stats(c);
    assert_int_equal(s.entries, OLD_KEYS);
    assert_int_equal(s.evictions, 0);
    return c;
}

static void read_the_read_set(fsc_cache *c) {
    char key[32];
    for (int i = 0; i < OLD_KEYS; i++) {
        if (!is_read(i))
            continue;
        old_key(key, sizeof key, i);
        if (st_check(c, key, NULL) != 1)
            fail_msg("'%s' was read recently and is gone", key);
    }
}

static void test_recently_read_values_survive(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = fill(t->dir);
    read_the_read_set(c);
    /* Twice the cache's worth of new values, the read set being read again
     * every 10 of them (as a working set is). */
    char key[32];
    for (int i = 0; i < 2 * OLD_KEYS; i++) {
        new_key(key, sizeof key, i);
        assert_fsc_ok(st_set(c, key, VALUE_SIZE));
        if (i % 10 == 9)
            read_the_read_set(c);
        assert_true(st_stats(c).bytes <= CACHE_SIZE);
    }
    int unread_kept = 0;
    for (int i = 0; i < OLD_KEYS; i++) {
        old_key(key, sizeof key, i);
        int r = st_check(c, key, NULL);
        if (is_read(i))
            assert_int_equal(r, 1);
        else
            unread_kept += r != 0;
    }
    assert_int_equal(unread_kept, 0);
    /* The newest values are there too: the 40 most recent ones at least. */
    for (int i = 2 * OLD_KEYS - 40; i < 2 * OLD_KEYS; i++) {
        new_key(key, sizeof key, i);
        assert_int_equal(st_check(c, key, NULL), 1);
    }
    fsc_statistics s = st_stats(c);
    assert_int_equal(s.bytes, st_disk_bytes(t->dir));
    assert_true(s.bytes <= CACHE_SIZE);
    fsc_close(c);
}

/* After one read of the read set and fewer new values than unread old ones:
 * the read set is all there, and the unread old values that survive are the
 * most recently written ones (exact LRU on a small cache). */
static void check_one_read_then_writes(fsc_cache *c, const char *dir) {
    char key[32];
    const int unread = OLD_KEYS - OLD_KEYS / 6;
    const int writes = unread - 10;
    for (int i = 0; i < writes; i++) {
        new_key(key, sizeof key, i);
        assert_fsc_ok(st_set(c, key, VALUE_SIZE));
    }
    int gone = 0, out_of_order = 0, seen_kept = 0;
    for (int i = 0; i < OLD_KEYS; i++) {
        old_key(key, sizeof key, i);
        int r = st_check(c, key, NULL);
        assert_int_not_equal(r, -1);
        if (is_read(i)) {
            if (r != 1)
                fail_msg("'%s' was read and is gone while unread older values were kept", key);
            continue;
        }
        if (r == 1)
            seen_kept = 1;
        else if (seen_kept)
            out_of_order++; /* an unread value went while an older unread one stayed */
        gone += r == 0;
    }
    fprintf(stderr, "%d of %d unread old values evicted by %d writes\n", gone, unread, writes);
    assert_int_equal(out_of_order, 0);
    assert_true(gone >= writes - 3);
    for (int i = 0; i < writes; i++) {
        new_key(key, sizeof key, i);
        assert_int_equal(st_check(c, key, NULL), 1);
    }
    assert_int_equal(st_stats(c).bytes, st_disk_bytes(dir));
}

static void test_one_get_counts_as_a_use(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = fill(t->dir);
    read_the_read_set(c);
    check_one_read_then_writes(c, t->dir);
    fsc_close(c);
}

static void test_a_get_in_another_process_counts(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = fill(t->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fsc_cache *cc = st_open(t->dir, CACHE_SIZE, 0, -1);
        child_check(cc != NULL, 2);
        char key[32];
        for (int i = 0; i < OLD_KEYS; i += 6) {
            old_key(key, sizeof key, i);
            child_check(st_check(cc, key, NULL) == 1, 3);
        }
        fsc_close(cc);
        _exit(0);
    }
    assert_int_equal(tb_wait(pid), 0);
    check_one_read_then_writes(c, t->dir);
    fsc_close(c);
}

static void test_overwrite_does_not_count_twice(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = fill(t->dir);
    fsc_statistics before = st_stats(c);
    /* Overwriting one key many times charges it once: nothing is evicted. */
    for (int i = 0; i < 100; i++)
        assert_fsc_ok(st_set(c, "old-00", VALUE_SIZE));
    fsc_statistics after = st_stats(c);
    assert_int_equal(after.entries, before.entries);
    assert_int_equal(after.bytes, before.bytes);
    assert_int_equal(after.evictions, 0);
    assert_int_equal(after.sets, before.sets + 100);
    assert_int_equal(st_foreach_count(c), OLD_KEYS);
    char key[32];
    for (int i = 0; i < OLD_KEYS; i++) {
        old_key(key, sizeof key, i);
        assert_int_equal(st_check(c, key, NULL), 1);
    }
    /* The overwritten value is the newest now: new values push out old-01
     * and its successors, never old-00 (the reads above were in key order,
     * so old-00 was read first of all; overwrite it again to be newest). */
    assert_fsc_ok(st_set(c, "old-00", VALUE_SIZE));
    for (int i = 0; i < 20; i++) {
        new_key(key, sizeof key, i);
        assert_fsc_ok(st_set(c, key, VALUE_SIZE));
    }
    assert_int_equal(st_check(c, "old-00", NULL), 1);
    assert_int_equal(st_check(c, "old-01", NULL), 0);
    assert_true(st_stats(c).evictions > 0);
    fsc_close(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        ST_TEST(test_recently_read_values_survive),
        ST_TEST(test_one_get_counts_as_a_use),
        ST_TEST(test_a_get_in_another_process_counts),
        ST_TEST(test_overwrite_does_not_count_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
