/* Byte values and file values share one budget: together they stay within
 * it, the LRU evicts both kinds, and replacing one kind by the other leaves
 * no stale payload behind. */
#include "store_test.h"

#define CACHE_SIZE (256u << 10)
#define KEYS 300

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Stores key as bytes (kind 0) or as a file copied by descriptor (1), copied
 * by path (2) or moved in (3). */
static void store(fsc_cache *c, const char *dir, const char *key, size_t len, int kind) {
    if (kind == 0) {
        assert_fsc_ok(st_set(c, key, len));
        return;
    }
    char path[TB_PATH_MAX];
    snprintf(path, sizeof path, "%s.src", dir);
    assert_int_equal(st_write_value_file(path, key, len), 0);
    if (kind == 1) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_fsc_ok(fsc_set_file(c, key, strlen(key), fd, NULL, 0));
        close(fd);
    } else {
        assert_fsc_ok(fsc_set_file(c, key, strlen(key), -1, path, kind == 3 ? FSC_MOVE : 0));
    }
    unlink(path);
}

static void test_both_kinds_under_one_budget(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, CACHE_SIZE, 0, -1);
    assert_non_null(c);
    uint64_t rnd = 0xfeedface;
    int kinds[KEYS];
    char key[32];
    uint64_t most = 0;
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        kinds[i] = (int)(next_rand(&rnd) % 4);
        size_t len = kinds[i] == 0 ? 1 + (size_t)(next_rand(&rnd) % (16 << 10))
                                   : 1 + (size_t)(next_rand(&rnd) % (32 << 10));
        store(c, t->dir, key, len, kinds[i]);
        assert_int_equal(st_stats(c).bytes, st_disk_within(t->dir, CACHE_SIZE, i, &most));
    }
    int kept[2] = {0, 0}, gone[2] = {0, 0};
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        int r = st_check(c, key, NULL);
        assert_int_not_equal(r, -1);
        (r ? kept : gone)[kinds[i] != 0]++;
    }
    fprintf(stderr, "byte values kept %d, evicted %d; file values kept %d, evicted %d; most on disk %llu\n",
            kept[0], gone[0], kept[1], gone[1], (unsigned long long)most);
    assert_true(kept[0] > 0 && kept[1] > 0);
    assert_true(gone[0] > 0 && gone[1] > 0);
    /* The newest ones, of either kind, are the ones kept. */
    for (int i = KEYS - 5; i < KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(st_check(c, key, NULL), 1);
    }
    fsc_statistics s = st_stats(c);
    assert_int_equal(s.evictions, (uint64_t)(gone[0] + gone[1]));
    assert_int_equal(s.entries, (uint64_t)(kept[0] + kept[1]));
    /* Entries, plus one payload per file value: nothing else. */
    int files_kept = 0;
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        files_kept += kinds[i] != 0 && st_check(c, key, NULL) == 1;
    }
    assert_int_equal(st_value_files(t->dir), s.entries + (uint64_t)files_kept);
    int rc;
    fsc_verify_report v = st_verify(c, 0, &rc);
    assert_fsc_ok(rc);
    assert_int_equal(v.problems, 0);
    fsc_close(c);
}

static void test_replacing_one_kind_by_the_other(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, CACHE_SIZE, 0, -1);
    assert_non_null(c);
    char key[32];
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 8; i++) {
            snprintf(key, sizeof key, "k%d", i);
            store(c, t->dir, key, 1000 + 100 * (size_t)round + (size_t)i, (round + i) % 4);
        }
        /* Eight entries and a payload for each file value, no old payloads. */
        int files = 0;
        for (int i = 0; i < 8; i++)
            files += (round + i) % 4 != 0;
        assert_int_equal(st_value_files(t->dir), 8 + (uint64_t)files);
        fsc_statistics s = st_stats(c);
        assert_int_equal(s.entries, 8);
        assert_int_equal(s.evictions, 0);
        assert_int_equal(s.bytes, st_disk_bytes(t->dir));
    }
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "k%d", i);
        uint64_t size = 0;
        assert_int_equal(st_check(c, key, &size), 1);
        assert_int_equal(size, 1000 + 100 * 11 + (uint64_t)i);
    }
    fsc_close(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        ST_TEST(test_both_kinds_under_one_budget),
        ST_TEST(test_replacing_one_kind_by_the_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
