/* Damaged entries on disk: garbage, truncation, flipped bits, a directory or
 * a symbolic link in an entry's place, a raw value's payload lost. A get
 * must report FSC_ECORRUPT or FSC_MISS (never wrong bytes, never a crash),
 * the next get must miss, and the key must take a new value. */
#include "core_test.h"

static const char key[] = "victim";
#define KEY_LEN (sizeof key - 1)

enum { VALUE_LEN = 1000 };

/* Counts the neighbour; the victim may be seen (foreach reads headers only,
 * and some damage leaves the header intact), nothing else may. */
static int visit_count(void *ctx, const void *k, size_t key_len, uint64_t size, int64_t created_ms) {
    (void)size;
    (void)created_ms;
    if (key_len == KEY_LEN && memcmp(k, key, KEY_LEN) == 0)
        return 0;
    if (key_len != 9 || memcmp(k, "neighbour", 9) != 0)
        return 99;
    (*(int *)ctx)++;
    return 0;
}

/* Stores the victim's value (raw: from a file) and finds its entry file. */
static void store_victim(struct fsc_test_ctx *t, int raw, char *entry) {
    unsigned char v[VALUE_LEN];
    tb_fill(v, sizeof v, 42);
    if (raw) {
        char src[TB_PATH_MAX];
        core_join(src, t->dir, "src");
        assert_int_equal(tb_write_file(src, v, sizeof v), 0);
        assert_fsc_ok(fsc_set_file(t->cache, key, KEY_LEN, -1, src, FSC_MOVE));
    } else {
        assert_fsc_ok(fsc_set(t->cache, key, KEY_LEN, v, sizeof v));
    }
    assert_int_equal(fmt_find(t->dir, FMT_ENTRY, entry, TB_PATH_MAX), 1);
    assert_fsc_ok(fsc_set(t->cache, "neighbour", 9, "intact", 6));
}

/* After the damage: no wrong bytes, then a miss, then a fresh value. */
static void check_damaged(struct fsc_test_ctx *t, const char *what) {
    print_message("damage: %s\n", what);
    int visited = 0;
    assert_fsc_ok(fsc_foreach(t->cache, visit_count, &visited));
    assert_int_equal(visited, 1);

    fsc_entry *e = NULL;
    int rc = fsc_get(t->cache, key, KEY_LEN, &e);
    if (rc != FSC_ECORRUPT && rc != FSC_MISS)
        fail_msg("%s: get gave %s (%s)", what, fsc_strerror(rc), fsc_errmsg());
    assert_null(e);
    if (rc == FSC_ECORRUPT)
        assert_true(fsc_errmsg()[0] != '\0');
    core_assert_miss(t->cache, key, KEY_LEN);

    assert_fsc_ok(fsc_set(t->cache, key, KEY_LEN, "fresh", 5));
    core_assert_value(t->cache, key, KEY_LEN, "fresh", 5);
    core_assert_value(t->cache, "neighbour", 9, "intact", 6);
    assert_fsc_ok(fsc_delete(t->cache, key, KEY_LEN));
    assert_fsc_ok(fsc_delete(t->cache, "neighbour", 9));
}

static void flip_byte(const char *path, off_t at) { fsc_test_flip_byte(path, at, 0x10); }

static off_t file_size(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void test_garbage(void **state) {
    struct fsc_test_ctx *t = *state;
    char entry[TB_PATH_MAX];
    store_victim(t, 0, entry);
    size_t len = (size_t)file_size(entry);
    unsigned char *junk = malloc(len);
    tb_fill(junk, len, 7);
    assert_int_equal(tb_write_file(entry, junk, len), 0);
    free(junk);
    check_damaged(t, "garbage of the same size");

    store_victim(t, 0, entry);
    assert_int_equal(tb_write_file(entry, "FSCE", 4), 0);
    check_damaged(t, "4 bytes of garbage");

    store_victim(t, 1, entry);
    assert_int_equal(tb_write_file(entry, "not an entry at all, not an entry at all, not an entry at all, "
                                            "not an entry at all",
                                     83),
                     0);
    check_damaged(t, "garbage in a raw value's entry");
}

static void test_truncated(void **state) {
    struct fsc_test_ctx *t = *state;
    char entry[TB_PATH_MAX];
    const off_t cuts[] = {0, 1, 40, 63, 64, 64 + (off_t)KEY_LEN - 1, 64 + (off_t)KEY_LEN,
                          64 + (off_t)KEY_LEN + VALUE_LEN / 2, 64 + (off_t)KEY_LEN + VALUE_LEN - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        store_victim(t, 0, entry);
        assert_true(cuts[i] < file_size(entry));
        assert_int_equal(truncate(entry, cuts[i]), 0);
        char what[64];
        snprintf(what, sizeof what, "truncated to %lld bytes", (long long)cuts[i]);
        check_damaged(t, what);
    }
    /* Longer than its header says. */
    store_victim(t, 0, entry);
    assert_int_equal(truncate(entry, file_size(entry) + 3), 0);
    check_damaged(t, "3 bytes too long");
    /* A raw value's entry cut inside its header. */
    store_victim(t, 1, entry);
    assert_int_equal(truncate(entry, 30), 0);
    check_damaged(t, "raw value's entry truncated to 30 bytes");
}

static void test_flipped_value_byte(void **state) {
    struct fsc_test_ctx *t = *state;
    char entry[TB_PATH_MAX];
    const off_t where[] = {0, VALUE_LEN / 2, VALUE_LEN - 1};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        store_victim(t, 0, entry);
        /* Inline values are the file's last bytes. */
        flip_byte(entry, file_size(entry) - VALUE_LEN + where[i]);
        char what[64];
        snprintf(what, sizeof what, "value byte %lld flipped", (long long)where[i]);
        check_damaged(t, what);
    }
}

static void test_flipped_header_byte(void **state) {
    struct fsc_test_ctx *t = *state;
    char entry[TB_PATH_MAX];
    /* Every 4th byte of the header, and each byte of the key. */
    for (off_t at = 0; at < 64 + (off_t)KEY_LEN; at += at < 64 ? 4 : 1) {
        for (int raw = 0; raw < 2; raw++) {
            store_victim(t, raw, entry);
            flip_byte(entry, at);
            char what[64];
            snprintf(what, sizeof what, "%s entry: byte %lld flipped", raw ? "raw" : "bytes", (long long)at);
            check_damaged(t, what);
        }
    }
}

static void test_directory_in_place(void **state) {
    struct fsc_test_ctx *t = *state;
    char entry[TB_PATH_MAX];
    store_victim(t, 0, entry);
    assert_int_equal(unlink(entry), 0);
    assert_int_equal(mkdir(entry, 0700), 0);
    check_damaged(t, "a directory in the entry's place");
}

static void test_symlink_in_place(void **state) {
    struct fsc_test_ctx *t = *state;
    char entry[TB_PATH_MAX], copy[TB_PATH_MAX];
    store_victim(t, 0, entry);
    /* The link points at a valid copy: following it would read "the value"
     * through a file the cache does not own. */
    core_join(copy, t->dir, "copy");
    assert_int_equal(rename(entry, copy), 0);
    assert_int_equal(symlink(copy, entry), 0);
    check_damaged(t, "a symbolic link to a valid copy in the entry's place");

    store_victim(t, 0, entry);
    assert_int_equal(unlink(entry), 0);
    assert_int_equal(symlink("/nonexistent/fsc", entry), 0);
    check_damaged(t, "a dangling symbolic link in the entry's place");
}

static void test_raw_payload_lost(void **state) {
    struct fsc_test_ctx *t = *state;
    char entry[TB_PATH_MAX], payload[TB_PATH_MAX];

    store_victim(t, 1, entry);
    assert_int_equal(core_find_payloads(entry, payload), 1);
    assert_int_equal(unlink(payload), 0);
    check_damaged(t, "payload deleted");

    store_victim(t, 1, entry);
    assert_int_equal(core_find_payloads(entry, payload), 1);
    assert_int_equal(truncate(payload, VALUE_LEN / 2), 0);
    check_damaged(t, "payload truncated");

    store_victim(t, 1, entry);
    assert_int_equal(core_find_payloads(entry, payload), 1);
    assert_int_equal(truncate(payload, VALUE_LEN + 1), 0);
    check_damaged(t, "payload grown");

    store_victim(t, 1, entry);
    assert_int_equal(core_find_payloads(entry, payload), 1);
    assert_int_equal(unlink(payload), 0);
    assert_int_equal(mkdir(payload, 0700), 0);
    check_damaged(t, "a directory in the payload's place");
    rmdir(payload);
}

/* A value too large to be checked by the get itself: the get may succeed,
 * but the damage must show before the reader is given the whole value. */
static void test_flipped_byte_large_value(void **state) {
    struct fsc_test_ctx *t = *state;
    const size_t len = 3 * 1024 * 1024;
    unsigned char *v = malloc(len);
    tb_fill(v, len, 9);
    assert_fsc_ok(fsc_set(t->cache, key, KEY_LEN, v, len));
    char entry[TB_PATH_MAX];
    assert_int_equal(fmt_find(t->dir, FMT_ENTRY, entry, TB_PATH_MAX), 1);
    flip_byte(entry, file_size(entry) - (off_t)len + (off_t)len / 2);

    fsc_entry *e = NULL;
    int rc = fsc_get(t->cache, key, KEY_LEN, &e);
    if (rc == FSC_OK) {
        assert_null(fsc_entry_data(e));
        assert_true(fsc_errmsg()[0] != '\0');
        size_t got = 0, have = 0;
        do {
            got = 0;
            rc = fsc_entry_read(e, v, 65536, &got);
            have += got;
        } while (rc == FSC_OK && got > 0);
        assert_fsc_status(rc, FSC_ECORRUPT);
        assert_true(have < len);
        fsc_entry_free(e);
    } else if (rc != FSC_ECORRUPT && rc != FSC_MISS) {
        fail_msg("get gave %s (%s)", fsc_strerror(rc), fsc_errmsg());
    }
    /* A new value replaces the damaged one. */
    assert_fsc_ok(fsc_set(t->cache, key, KEY_LEN, "fresh", 5));
    core_assert_value(t->cache, key, KEY_LEN, "fresh", 5);
    free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        FSC_TEST_UNPACKED(test_garbage),
        FSC_TEST_UNPACKED(test_truncated),
        FSC_TEST_UNPACKED(test_flipped_value_byte),
        FSC_TEST_UNPACKED(test_flipped_header_byte),
        FSC_TEST_UNPACKED(test_directory_in_place),
        FSC_TEST_UNPACKED(test_symlink_in_place),
        FSC_TEST_UNPACKED(test_raw_payload_lost),
        FSC_TEST_UNPACKED(test_flipped_byte_large_value),
    };
    return cmocka_run_group_tests_name("core_damage", tests, NULL, NULL);
}
