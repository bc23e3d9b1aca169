/* Damaged records of the lock file (docs/FORMAT.md, "Shared records in the
 * lock file"): a shard's line with a huge or a small bogus value, a line
 * zeroed or copied from another shard, the invalidation record, the LRU
 * horizon, the counters. Each is detected, never trusted: sets and gets keep
 * working, the cache's size and entry count stay what the shards hold, and
 * fsc_verify reports the damage and repairs it. */
#include "core_test.h"

#define INVALIDATION_AT 0
#define HORIZON_AT 32
#define COUNTERS_AT 64
#define LINE_AT(shard) (256 + 24 * (off_t)(shard))

enum { KEYS = 40, VALUE_LEN = 1000 };

/* Reads or writes len bytes at `at` of dir/lock. This process takes no key
 * lock (fsc_lock), the only kind closing another descriptor of the lock file
 * would drop. */
static void lock_io(const char *dir, off_t at, void *data, size_t len, int write_it) {
    char path[TB_PATH_MAX];
    core_join(path, dir, "lock");
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    ssize_t n = write_it ? pwrite(fd, data, len, at) : pread(fd, data, len, at);
    assert_int_equal(n, (ssize_t)len);
    close(fd);
}

static void poke(const char *dir, off_t at, const void *data, size_t len) {
    lock_io(dir, at, (void *)data, len, 1);
}

/* Writes v little-endian, as the format stores integers. */
static void poke64(const char *dir, off_t at, uint64_t v) {
    unsigned char b[8];
    for (size_t i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    poke(dir, at, b, sizeof b);
}

/* Key i and its value. */
static void key_and_value(int i, char key[32], unsigned char v[VALUE_LEN]) {
    snprintf(key, 32, "key-%d", i);
    tb_fill(v, VALUE_LEN, (uint64_t)i);
}

static void store_all(fsc_cache *c) {
    unsigned char v[VALUE_LEN];
    for (int i = 0; i < KEYS; i++) {
        char key[32];
        key_and_value(i, key, v);
        assert_fsc_ok(fsc_set(c, key, strlen(key), v, sizeof v));
    }
}

static void expect_all(fsc_cache *c) {
    unsigned char v[VALUE_LEN];
    for (int i = 0; i < KEYS; i++) {
        char key[32];
        key_and_value(i, key, v);
        core_assert_value(c, key, strlen(key), v, sizeof v);
    }
}

static fsc_statistics stats_of(fsc_cache *c) {
    fsc_statistics s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    assert_fsc_ok(fsc_stats(c, &s));
    return s;
}

static fsc_verify_report verify(fsc_cache *c, int repair) {
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    assert_fsc_ok(fsc_verify(c, repair, &r));
    return r;
}

/* Whether base/shards/<xx> exists: a shard some value went to. */
static int shard_used(const char *dir, unsigned shard) {
    char path[TB_PATH_MAX];
    snprintf(path, sizeof path, "%s/shards/%02x", dir, shard);
    return access(path, F_OK) == 0;
}

static unsigned find_shard(const char *dir, int used) {
    for (unsigned shard = 0; shard < 256; shard++)
        if (shard_used(dir, shard) == used)
            return shard;
    fail_msg("no %s shard", used ? "used" : "unused");
    return 0;
}

static int open_small(void **state) {
    fsc_options o;
    fsc_options_init(&o);
    o.cache_size = 1 << 20; /* a huge bogus line would make it evict everything */
    if (fsc_test_setup_with(state, &o) != 0)
        return -1;
    struct fsc_test_ctx *t = *state;
    store_all(t->cache);
    return 0;
}

/* After damage: every value still there, the totals exactly as before, a
 * new value stored and read back, its cost counted. */
static void expect_intact(struct fsc_test_ctx *t, const fsc_statistics *before, const char *what) {
    print_message("damage: %s\n", what);
    expect_all(t->cache);
    fsc_statistics s = stats_of(t->cache);
    assert_int_equal(s.bytes, before->bytes);
    assert_int_equal(s.entries, before->entries);
    assert_fsc_ok(fsc_set(t->cache, "new", 3, "value", 5));
    core_assert_value(t->cache, "new", 3, "value", 5);
    s = stats_of(t->cache);
    assert_int_equal(s.entries, before->entries + 1);
    assert_true(s.bytes > before->bytes && s.bytes < before->bytes + 4096);
    assert_fsc_ok(fsc_delete(t->cache, "new", 3));
    s = stats_of(t->cache);
    assert_int_equal(s.bytes, before->bytes);
    assert_int_equal(s.entries, before->entries);
    assert_int_equal(verify(t->cache, 0).problems, 0);
}

/* The damage `apply` does is reported by fsc_verify, then repaired. */
static void expect_verify_finds(struct fsc_test_ctx *t, void (*apply)(const char *dir), const char *what) {
    apply(t->dir);
    fsc_verify_report r = verify(t->cache, 0);
    print_message("%s: verify(0) problems %llu\n", what, (unsigned long long)r.problems);
    assert_true(r.problems >= 1);
    assert_int_equal(r.repaired, 0);
    apply(t->dir);
    r = verify(t->cache, 1);
    assert_true(r.problems >= 1);
    assert_true(r.repaired >= 1);
    assert_int_equal(verify(t->cache, 0).problems, 0);
}

static void huge_unused(const char *dir) { poke64(dir, LINE_AT(find_shard(dir, 0)), (uint64_t)1 << 62); }
static void small_used(const char *dir) { poke64(dir, LINE_AT(find_shard(dir, 1)), 1); }
static void entries_used(const char *dir) { poke64(dir, LINE_AT(find_shard(dir, 1)) + 8, 1000000); }
static void zero_used(const char *dir) {
    static const unsigned char zeros[24];
    poke(dir, LINE_AT(find_shard(dir, 1)), zeros, sizeof zeros);
}
/* A valid line of a used shard copied over an unused shard's line. */
static void copied_line(const char *dir) {
    unsigned char line[24];
    lock_io(dir, LINE_AT(find_shard(dir, 1)), line, sizeof line, 0);
    poke(dir, LINE_AT(find_shard(dir, 0)), line, sizeof line);
}

static void (*const line_damages[])(const char *) = {huge_unused, small_used, entries_used, zero_used, copied_line};
static const char *const line_damage_names[] = {
    "huge bytes in an unused shard's line", "bytes 1 in a used shard's line",
    "a million entries in a used shard's line", "a used shard's line zeroed",
    "a used shard's valid line copied to an unused shard"};

static void test_line_damage_while_open(void **state) {
    struct fsc_test_ctx *t = *state;
    const fsc_statistics before = stats_of(t->cache);
    assert_int_equal(before.entries, KEYS);
    for (size_t i = 0; i < sizeof line_damages / sizeof line_damages[0]; i++) {
        line_damages[i](t->dir);
        expect_intact(t, &before, line_damage_names[i]);
        expect_verify_finds(t, line_damages[i], line_damage_names[i]);
        expect_intact(t, &before, line_damage_names[i]);
    }
}

/* The damage found by the next open, alone with the cache: a huge line used
 * to make it evict every value, for good. */
static void test_line_damage_at_open(void **state) {
    struct fsc_test_ctx *t = *state;
    const fsc_statistics before = stats_of(t->cache);
    for (size_t i = 0; i < sizeof line_damages / sizeof line_damages[0]; i++) {
        assert_fsc_ok(fsc_close(t->cache));
        t->cache = NULL;
        line_damages[i](t->dir);
        fsc_options o;
        fsc_options_init(&o);
        o.cache_size = 1 << 20;
        assert_fsc_ok(fsc_open(t->dir, &o, &t->cache));
        expect_intact(t, &before, line_damage_names[i]);
        /* The records' region, as FSC_BUDGET counts the lock file. */
        char path[TB_PATH_MAX];
        struct stat st;
        core_join(path, t->dir, "lock");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 6400);
    }
}

/* Damage that stays damage when applied twice (expect_verify_finds does). */
static void invalidation_time(const char *dir) { poke64(dir, INVALIDATION_AT + 8, 0x5a5a5a5a5a5a5a5aull); }
static void invalidation_magic(const char *dir) { poke(dir, INVALIDATION_AT, "XSCI", 4); }

/* What was invalidated stays invalidated: a damaged record counts as a hard
 * invalidation of everything stored before it was found. */
static void test_invalidation_damage(void **state) {
    struct fsc_test_ctx *t = *state;
    void (*const damages[])(const char *) = {invalidation_time, invalidation_magic};
    for (size_t i = 0; i < 2; i++) {
        assert_fsc_ok(fsc_set(t->cache, "old", 3, "invalidated", 11));
        assert_fsc_ok(fsc_invalidate(t->cache, 1));
        assert_fsc_ok(fsc_set(t->cache, "kept", 4, "value", 5));
        damages[i](t->dir);
        /* Neither FSC_ECORRUPT on every get nor the invalidated value back. */
        core_assert_miss(t->cache, "old", 3);
        core_assert_miss(t->cache, "kept", 4);
        assert_fsc_ok(fsc_set(t->cache, "new", 3, "value", 5));
        core_assert_value(t->cache, "new", 3, "value", 5);
        expect_verify_finds(t, damages[i], i ? "invalidation record's magic" : "invalidation record's time");
        core_assert_miss(t->cache, "new", 3);
        assert_fsc_ok(fsc_set(t->cache, "new", 3, "value", 5));
        core_assert_value(t->cache, "new", 3, "value", 5);
        assert_fsc_ok(fsc_prune(t->cache));
    }
}

static void horizon_garbage(const char *dir) {
    const uint64_t junk[2] = {0x7fffffffffffffffull, 12345};
    poke(dir, HORIZON_AT, junk, sizeof junk);
}

static void counters_garbage(const char *dir) { poke64(dir, COUNTERS_AT + 16, 0x5a5a5a5a5a5a5a5aull); }

/* A damaged horizon (only a hint of how often readers stamp) reads as none
 * until fsc_verify repairs it; the counters' record starts again from zero. */
static void test_other_records(void **state) {
    struct fsc_test_ctx *t = *state;
    const fsc_statistics before = stats_of(t->cache);
    horizon_garbage(t->dir);
    expect_all(t->cache);
    assert_fsc_ok(fsc_set(t->cache, "new", 3, "value", 5));
    core_assert_value(t->cache, "new", 3, "value", 5);
    assert_fsc_ok(fsc_delete(t->cache, "new", 3));
    expect_verify_finds(t, horizon_garbage, "LRU horizon garbage");
    expect_intact(t, &before, "LRU horizon garbage, repaired");
    counters_garbage(t->dir);
    expect_intact(t, &before, "counters record");
    expect_verify_finds(t, counters_garbage, "counters record");
    expect_intact(t, &before, "counters record, repaired");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_damage_while_open, open_small, fsc_test_teardown),
        cmocka_unit_test_setup_teardown(test_line_damage_at_open, open_small, fsc_test_teardown),
        cmocka_unit_test_setup_teardown(test_invalidation_damage, open_small, fsc_test_teardown),
        cmocka_unit_test_setup_teardown(test_other_records, open_small, fsc_test_teardown),
    };
    return cmocka_run_group_tests_name("core_lockfile_damage", tests, NULL, NULL);
}
