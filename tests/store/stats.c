/* Statistics count exactly: sets, hits, misses, evictions and expirations
 * of known sequences; the counters are shared by every process and kept
 * across close and reopen. */
#include "store_test.h"

static void expect_counts(fsc_cache *c, uint64_t entries, uint64_t hits, uint64_t misses, uint64_t sets,
                          uint64_t evictions, uint64_t expirations) {
    fsc_statistics s = st_stats(c);
    if (s.entries != entries || s.hits != hits || s.misses != misses || s.sets != sets ||
        s.evictions != evictions || s.expirations != expirations) {
        st_print_stats("got", &s);
        fail_msg("want entries=%llu hits=%llu misses=%llu sets=%llu evictions=%llu expirations=%llu",
                 (unsigned long long)entries, (unsigned long long)hits, (unsigned long long)misses,
                 (unsigned long long)sets, (unsigned long long)evictions, (unsigned long long)expirations);
    }
}

static void test_known_sequence(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 0, 0, -1);
    assert_non_null(c);
    expect_counts(c, 0, 0, 0, 0, 0, 0);
    assert_int_equal(st_stats(c).bytes, 0);

    assert_fsc_ok(st_set(c, "a", 10));
    assert_fsc_ok(st_set(c, "b", 20));
    assert_fsc_ok(st_set(c, "c", 30));
    assert_fsc_ok(st_set(c, "a", 11)); /* overwrite: a set, not an entry */
    char path[TB_PATH_MAX];
    snprintf(path, sizeof path, "%s.src", t->dir);
    assert_int_equal(st_write_value_file(path, "d", 4000), 0);
    assert_fsc_ok(fsc_set_file(c, "d", 1, -1, path, FSC_MOVE));
    expect_counts(c, 4, 0, 0, 5, 0, 0);

    assert_int_equal(st_check(c, "a", NULL), 1);
    assert_int_equal(st_check(c, "b", NULL), 1);
    assert_int_equal(st_check(c, "d", NULL), 1);
    assert_int_equal(st_check(c, "a", NULL), 1);
    assert_int_equal(st_check(c, "x", NULL), 0);
    assert_int_equal(st_check(c, "y", NULL), 0);
    assert_int_equal(st_check(c, "z", NULL), 0);
    expect_counts(c, 4, 4, 3, 5, 0, 0);

    assert_fsc_ok(fsc_delete(c, "b", 1));
    assert_fsc_status(fsc_delete(c, "b", 1), FSC_MISS);
    assert_int_equal(st_check(c, "b", NULL), 0);
    expect_counts(c, 3, 4, 4, 5, 0, 0);
    assert_int_equal(st_stats(c).bytes, st_disk_bytes(t->dir));

    /* Seen through a handle whose expiration is 0, every value is expired:
     * a get is a miss, and prune counts expirations (not evictions). */
    fsc_cache *e = st_open(t->dir, 0, 0, 0);
    assert_non_null(e);
    assert_int_equal(st_check(e, "a", NULL), 0);
    expect_counts(e, 3, 4, 5, 5, 0, 0);
    assert_fsc_ok(fsc_prune(e));
    expect_counts(e, 0, 4, 5, 5, 0, 3);
    assert_fsc_ok(fsc_prune(e)); /* nothing left to expire */
    expect_counts(c, 0, 4, 5, 5, 0, 3);
    assert_int_equal(st_stats(c).bytes, st_disk_bytes(t->dir));
    fsc_close(e);
    fsc_close(c);
}

static void test_evictions_are_counted(void **state) {
    struct st_ctx *t = *state;
    /* Two 10,000-byte values fit in 25,000 bytes, three do not. */
    fsc_cache *c = st_open(t->dir, 25000, 0, -1);
    assert_non_null(c);
    st_set_series(c, "v%d", 5, 10000);
    expect_counts(c, 2, 0, 0, 5, 3, 0);
    /* Entry limits count their evictions too. */
    fsc_cache *m = st_open(t->dir, 25000, 1, -1);
    assert_non_null(m);
    assert_fsc_ok(st_set(m, "small", 10));
    expect_counts(c, 1, 0, 0, 6, 5, 0);
    /* A delete is not an eviction; clear is neither. */
    assert_fsc_ok(fsc_delete(c, "small", 5));
    assert_fsc_ok(st_set(c, "p", 1));
    assert_fsc_ok(st_set(c, "q", 1));
    assert_fsc_ok(fsc_clear(c));
    expect_counts(c, 0, 0, 0, 8, 5, 0);
    assert_int_equal(st_stats(c).bytes, st_disk_bytes(t->dir));
    fsc_close(m);
    fsc_close(c);
}

/* A child opens its own handle, does gets (and a set), closes and exits. */
static pid_t spawn_reader(const char *dir, int hits, int misses) {
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    fsc_cache *c = st_open(dir, 0, 0, -1);
    child_check(c != NULL, 2);
    char key[32];
    for (int i = 0; i < hits; i++) {
        snprintf(key, sizeof key, "k%d", i % 4);
        child_check(st_check(c, key, NULL) == 1, 3);
    }
    for (int i = 0; i < misses; i++) {
        snprintf(key, sizeof key, "absent-%d", i);
        child_check(st_check(c, key, NULL) == 0, 4);
    }
    child_check(st_set(c, "from-child", 5) == FSC_OK, 5);
    fsc_close(c);
    _exit(0);
}

static void test_counters_are_shared_and_kept(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 0, 0, -1);
    assert_non_null(c);
    st_set_series(c, "k%d", 4, 100);
    assert_int_equal(st_check(c, "k0", NULL), 1);
    assert_int_equal(st_check(c, "none", NULL), 0);

    /* One child, a few lookups. */
    pid_t pid = spawn_reader(t->dir, 3, 2);
    assert_true(pid >= 0);
    assert_int_equal(tb_wait(pid), 0);
    expect_counts(c, 5, 1 + 3, 1 + 2, 5, 0, 0);

    /* Two children at once, each with more lookups than a handle keeps to itself. */
    pid_t a = spawn_reader(t->dir, 1000, 700);
    pid_t b = spawn_reader(t->dir, 900, 1300);
    assert_true(a >= 0 && b >= 0);
    for (int i = 0; i < 500; i++)
        assert_int_equal(st_check(c, "k1", NULL), 1);
    assert_int_equal(tb_wait(a), 0);
    assert_int_equal(tb_wait(b), 0);
    expect_counts(c, 5, 4 + 1000 + 900 + 500, 3 + 700 + 1300, 7, 0, 0);
    fsc_statistics before = st_stats(c);
    fsc_close(c);

    /* Close and reopen: every counter is still there. */
    c = st_open(t->dir, 0, 0, -1);
    assert_non_null(c);
    fsc_statistics after = st_stats(c);
    assert_int_equal(after.entries, before.entries);
    assert_int_equal(after.bytes, before.bytes);
    assert_int_equal(after.hits, before.hits);
    assert_int_equal(after.misses, before.misses);
    assert_int_equal(after.sets, before.sets);
    assert_int_equal(after.evictions, before.evictions);
    assert_int_equal(after.expirations, before.expirations);
    assert_int_equal(after.bytes, st_disk_bytes(t->dir));
    /* Lookups of a handle that is closed without asking for stats count too. */
    assert_int_equal(st_check(c, "k2", NULL), 1);
    fsc_close(c);
    c = st_open(t->dir, 0, 0, -1);
    assert_non_null(c);
    assert_int_equal(st_stats(c).hits, before.hits + 1);
    fsc_close(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        ST_TEST(test_known_sequence),
        ST_TEST(test_evictions_are_counted),
        ST_TEST(test_counters_are_shared_and_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
