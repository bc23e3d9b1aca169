/* The size budget and cleanup: what a bounded cache keeps, what an unbounded
 * one keeps, what fsc_prune removes when values expire, and that a value the
 * cache cannot remove does not make cleanup loop. */
#include "store_test.h"

/* Sum of the sizes of the values still gettable among keys. */
static uint64_t gettable_bytes(fsc_cache *c, const char *const *keys, size_t n) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t size = 0;
        int r = st_check(c, keys[i], &size);
        assert_int_not_equal(r, -1);
        if (r == 1)
            sum += size;
    }
    return sum;
}

static const char *const seed_keys[] = {"first", "second", "third"};

/* A cache of cache_size bytes (0: unbounded) in dir, given the seed values:
 * two of 10,000 bytes and one of 1. */
static fsc_cache *open_seeded(const char *dir, uint64_t cache_size) {
    fsc_cache *c = st_open(dir, cache_size, 0, -1);
    assert_non_null(c);
    assert_fsc_ok(st_set(c, "first", 10000));
    assert_fsc_ok(st_set(c, "second", 10000));
    assert_fsc_ok(st_set(c, "third", 1));
    return c;
}

static void test_small_cache_keeps_one_big_value(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = open_seeded(t->dir, 15000);
    uint64_t kept = gettable_bytes(c, seed_keys, 3);
    fprintf(stderr, "15000-byte cache keeps %llu bytes of values\n", (unsigned long long)kept);
    assert_in_range(kept, 10000, 12000);
    /* The newest two are the ones kept: the oldest big value went. */
    assert_int_equal(st_check(c, "first", NULL), 0);
    assert_int_equal(st_check(c, "second", NULL), 1);
    assert_int_equal(st_check(c, "third", NULL), 1);
    uint64_t disk = st_disk_bytes(t->dir);
    assert_true(disk <= 15000);
    fsc_statistics s = st_stats(c);
    assert_int_equal(s.bytes, disk);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.evictions, 1);
    assert_int_equal(s.cache_size, 15000);
    fsc_close(c);
}

static void test_big_enough_cache_keeps_all(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = open_seeded(t->dir, 30000);
    assert_int_equal(gettable_bytes(c, seed_keys, 3), 20001);
    fsc_statistics s = st_stats(c);
    assert_int_equal(s.entries, 3);
    assert_int_equal(s.evictions, 0);
    assert_int_equal(s.bytes, st_disk_bytes(t->dir));
    fsc_close(c);
}

static void test_unbounded_cache_keeps_all(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = open_seeded(t->dir, 0);
    assert_int_equal(gettable_bytes(c, seed_keys, 3), 20001);
    /* And a lot more than any default budget would matter for. */
    char key[64];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "more-%d", i);
        assert_fsc_ok(st_set(c, key, 50000));
    }
    assert_int_equal(gettable_bytes(c, seed_keys, 3), 20001);
    fsc_statistics s = st_stats(c);
    assert_int_equal(s.entries, 43);
    assert_int_equal(s.evictions, 0);
    assert_int_equal(s.cache_size, 0);
    assert_int_equal(s.bytes, st_disk_bytes(t->dir));
    fsc_close(c);
}

/* Sets n byte values and n file values (copied and moved) named prefix-<i>. */
static void set_both_kinds(fsc_cache *c, const char *dir, const char *prefix, int n) {
    char key[64], path[TB_PATH_MAX];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%s-bytes-%d", prefix, i);
        assert_fsc_ok(st_set(c, key, 100 + 37 * (size_t)i));
        snprintf(key, sizeof key, "%s-file-%d", prefix, i);
        snprintf(path, sizeof path, "%s.src", dir);
        assert_int_equal(st_write_value_file(path, key, 200 + 53 * (size_t)i), 0);
        assert_fsc_ok(fsc_set_file(c, key, strlen(key), -1, path, i % 2 ? FSC_MOVE : 0));
        unlink(path);
    }
}

static void test_prune_removes_every_expired_value(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 0, 0, -1);
    assert_non_null(c);
    set_both_kinds(c, t->dir, "old", 10);
    assert_true(st_value_files(t->dir) >= 20 + 10); /* entries, and payloads of file values */
    /* A handle whose expiration is 0 sees every value as expired. */
    fsc_cache *p = st_open(t->dir, 0, 0, 0);
    assert_non_null(p);
    assert_fsc_ok(fsc_prune(p));
    fsc_statistics s = st_stats(p);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.expirations, 20);
    assert_int_equal(s.evictions, 0);
    /* No value data is left: no entry, no payload, only meta files. */
    uint64_t disk = st_disk_bytes(t->dir);
    assert_int_equal(st_walk_values_, 0);
    assert_true(st_walk_metas_ > 0);
    assert_int_equal(s.bytes, disk);
    assert_int_equal(st_foreach_count(c), 0);
    assert_int_equal(st_check(c, "old-bytes-3", NULL), 0);
    assert_int_equal(st_check(c, "old-file-3", NULL), 0);
    int rc;
    fsc_verify_report r = st_verify(p, 0, &rc);
    assert_fsc_ok(rc);
    assert_int_equal(r.problems, 0);
    fsc_close(p);
    fsc_close(c);
}

static void test_prune_keeps_unexpired_values(void **state) {
    struct st_ctx *t = *state;
    const int64_t expiration = 1000;
    fsc_cache *c = st_open(t->dir, 0, 0, expiration);
    assert_non_null(c);
    set_both_kinds(c, t->dir, "old", 6);
    int64_t old_done = tb_now_ms();
    st_wait_ms(expiration + 100);
    set_both_kinds(c, t->dir, "new", 4);
    assert_fsc_ok(fsc_prune(c));
    /* Meaningful only if the new ones are still young now. */
    if (tb_now_ms() - old_done >= 2 * expiration + 100)
        skip();
    fsc_statistics s = st_stats(c);
    assert_int_equal(s.expirations, 12);
    assert_int_equal(s.entries, 8);
    char key[64];
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "old-bytes-%d", i);
        assert_int_equal(st_check(c, key, NULL), 0);
        snprintf(key, sizeof key, "old-file-%d", i);
        assert_int_equal(st_check(c, key, NULL), 0);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "new-bytes-%d", i);
        assert_int_equal(st_check(c, key, NULL), 1);
        snprintf(key, sizeof key, "new-file-%d", i);
        assert_int_equal(st_check(c, key, NULL), 1);
    }
    /* 8 entry files and 4 payloads stay; nothing of the old ones. */
    assert_int_equal(s.bytes, st_disk_bytes(t->dir));
    assert_int_equal(st_walk_values_, 8 + 4);
    fsc_close(c);
}

/* A small cache whose keys have touched every shard: the metadata of shards
 * left empty must not eat the budget until no value fits. */
static void test_small_cache_after_many_keys(void **state) {
    struct st_ctx *t = *state;
    const uint64_t size = 64 << 10;
    fsc_cache *c = st_open(t->dir, size, 0, -1);
    assert_non_null(c);
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "small-%d", i);
        assert_fsc_ok(st_set(c, key, 64));
    }
    assert_fsc_ok(st_set(c, "last", 1000));
    uint64_t disk = st_disk_bytes(t->dir);
    fsc_statistics s = st_stats(c);
    fprintf(stderr, "64 KiB cache after 2000 keys: %llu bytes on disk (%llu meta files), %llu values\n",
            (unsigned long long)disk, (unsigned long long)st_walk_metas_, (unsigned long long)s.entries);
    assert_int_equal(s.bytes, disk);
    assert_true(disk <= size);
    assert_int_equal(st_check(c, "last", NULL), 1);
    assert_int_equal(st_check(c, "small-1999", NULL), 1);
    fsc_close(c);
}

/* The path of the only entry file in dir. */
struct one_entry {
    char path[TB_PATH_MAX + 1024];
    int count;
};

static int note_entry(const char *shard_dir, const char *name, int kind, void *ctx) {
    struct one_entry *o = ctx;
    if (kind == FMT_ENTRY) {
        o->count++;
        snprintf(o->path, sizeof o->path, "%s/%s", shard_dir, name);
    }
    return 0;
}

static int run_chattr(const char *flag, const char *path) {
    char cmd[2 * TB_PATH_MAX];
    snprintf(cmd, sizeof cmd, "chattr %s '%s' >/dev/null 2>&1", flag, path);
    return system(cmd);
}

static void test_unremovable_value_does_not_loop(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 40000, 0, -1);
    assert_non_null(c);
    assert_fsc_ok(st_set(c, "stuck", 10000));
    struct one_entry o = {0};
    fmt_each_file(t->dir, note_entry, &o);
    assert_int_equal(o.count, 1);
    if (run_chattr("+i", o.path) != 0) {
        fprintf(stderr, "skipped: 'chattr +i' does not work here (root ignores directory permissions, so "
                        "nothing else makes an entry file unremovable)\n");
        fsc_close(c);
        skip();
    }
    /* A guard: a cleanup that loops is killed and fails the test. */
    alarm(120);
    assert_fsc_ok(st_set(c, "other-1", 10000));
    assert_fsc_ok(st_set(c, "other-2", 10000));

    /* Expired: prune removes what it can and returns. */
    fsc_cache *p = st_open(t->dir, 40000, 0, 0);
    assert_non_null(p);
    int prc = fsc_prune(p);
    fsc_statistics s = st_stats(p);
    st_print_stats("after prune with an unremovable entry", &s);
    assert_true(prc == FSC_OK || prc < 0);
    assert_int_equal(st_check(c, "other-1", NULL), 0);
    assert_int_equal(st_check(c, "other-2", NULL), 0);
    assert_int_equal(st_check(c, "stuck", NULL), 1);
    assert_int_equal(s.expirations, 2);
    fsc_close(p);

    /* Over budget with it the oldest: sets still return, evicting others. */
    for (int i = 0; i < 8; i++) {
        char key[32];
        snprintf(key, sizeof key, "fill-%d", i);
        int rc = st_set(c, key, 12000);
        assert_true(rc == FSC_OK);
    }
    assert_int_equal(st_check(c, "stuck", NULL), 1);
    assert_int_equal(st_check(c, "fill-7", NULL), 1);
    assert_int_equal(st_check(c, "fill-0", NULL), 0);
    assert_fsc_ok(fsc_prune(c));
    alarm(0);
    assert_int_equal(run_chattr("-i", o.path), 0);
    /* Once removable it goes like any other value. */
    fsc_cache *q = st_open(t->dir, 40000, 0, 0);
    assert_non_null(q);
    assert_fsc_ok(fsc_prune(q));
    assert_int_equal(st_stats(q).entries, 0);
    st_disk_bytes(t->dir);
    assert_int_equal(st_walk_values_, 0);
    fsc_close(q);
    fsc_close(c);
}

/* An entry file left immutable by a failed assertion must not keep the
 * directory from being removed. */
static int immutable_teardown(void **state) {
    struct st_ctx *t = *state;
    char cmd[2 * TB_PATH_MAX];
    snprintf(cmd, sizeof cmd, "chattr -R -i '%s' >/dev/null 2>&1", t->dir);
    if (system(cmd) != 0) {
        /* Nothing was made immutable, or chattr is missing. */
    }
    return st_teardown(state);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        ST_TEST(test_small_cache_keeps_one_big_value),
        ST_TEST(test_big_enough_cache_keeps_all),
        ST_TEST(test_unbounded_cache_keeps_all),
        ST_TEST(test_small_cache_after_many_keys),
        ST_TEST(test_prune_removes_every_expired_value),
        ST_TEST(test_prune_keeps_unexpired_values),
        cmocka_unit_test_setup_teardown(test_unremovable_value_does_not_loop, st_setup, immutable_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
