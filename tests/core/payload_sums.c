/* The checksum of values stored from a file (fsc_set_file, copied or moved
 * in): one byte of the payload file changed in place, same size. fsc_verify
 * reports it and repair removes it; a get with verify_payloads reports
 * FSC_ECORRUPT and removes it; without the option the get succeeds, and
 * fsc_entry_data and fsc_entry_read (to the end) report FSC_ECORRUPT, while
 * the descriptor of fsc_entry_fd reads the changed bytes (unchecked). Intact
 * values read back exactly either way. */
#include "core_test.h"

enum { LEN = 300000 }; /* several 64 KiB checksum blocks and a partial one */

static const char key[] = "file-value";
#define KEY_LEN (sizeof key - 1)

static const off_t spots[] = {0, LEN / 2, LEN - 1};
#define SPOTS (sizeof spots / sizeof spots[0])

/* Stores LEN bytes (seed) from a file, copied or moved in. */
static void store_file(struct fsc_test_ctx *t, int move, uint64_t seed) {
    unsigned char *v = malloc(LEN);
    tb_fill(v, LEN, seed);
    char src[TB_PATH_MAX];
    core_join(src, t->dir, "src");
    assert_int_equal(tb_write_file(src, v, LEN), 0);
    free(v);
    assert_fsc_ok(fsc_set_file(t->cache, key, KEY_LEN, -1, src, move ? FSC_MOVE : 0));
    if (!move)
        assert_int_equal(unlink(src), 0);
}

/* The stored value's payload file; asserts there is exactly one. */
static void payload_path(struct fsc_test_ctx *t, char *out) {
    char entry[TB_PATH_MAX];
    assert_int_equal(fmt_find(t->dir, FMT_ENTRY, entry, TB_PATH_MAX), 1);
    assert_int_equal(core_find_payloads(entry, out), 1);
}

static void change_byte(struct fsc_test_ctx *t, off_t at) {
    char path[TB_PATH_MAX];
    payload_path(t, path);
    fsc_test_flip_byte(path, at, 0x01);
}

static fsc_verify_report verify(fsc_cache *c, int repair) {
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    assert_fsc_ok(fsc_verify(c, repair, &r));
    return r;
}

static void expect_gone(struct fsc_test_ctx *t) {
    char entry[TB_PATH_MAX];
    core_assert_miss(t->cache, key, KEY_LEN);
    assert_int_equal(fmt_find(t->dir, FMT_ENTRY, entry, TB_PATH_MAX), 0);
}

static void test_verify_finds_and_removes(void **state) {
    struct fsc_test_ctx *t = *state;
    for (int move = 0; move < 2; move++) {
        for (size_t i = 0; i < SPOTS; i++) {
            store_file(t, move, i);
            assert_int_equal(verify(t->cache, 0).problems, 0);
            change_byte(t, spots[i]);
            /* The entry, and its shard's table that names it. */
            fsc_verify_report r = verify(t->cache, 0);
            assert_true(r.problems >= 1);
            assert_int_equal(r.repaired, 0);
            r = verify(t->cache, 1);
            assert_true(r.problems >= 1);
            assert_int_equal(r.repaired, r.problems);
            assert_int_equal(verify(t->cache, 0).problems, 0);
            expect_gone(t);
        }
    }
}

/* Without verify_payloads: the get finds the value; reading it whole, or
 * to its end, reports the change. */
static void test_get_without_option(void **state) {
    struct fsc_test_ctx *t = *state;
    unsigned char *buf = malloc(LEN);
    for (int move = 0; move < 2; move++) {
        for (size_t i = 0; i < SPOTS; i++) {
            store_file(t, move, 10 + i);
            change_byte(t, spots[i]);
            fsc_entry *e = NULL;
            assert_fsc_ok(fsc_get(t->cache, key, KEY_LEN, &e));
            assert_null(fsc_entry_data(e));
            assert_non_null(strstr(fsc_errmsg(), "checksum"));
            fsc_entry_free(e);

            assert_fsc_ok(fsc_get(t->cache, key, KEY_LEN, &e));
            size_t got = 0, have = 0;
            int rc;
            while ((rc = fsc_entry_read(e, buf + have, 4096, &got)) == FSC_OK && got > 0)
                have += got;
            assert_fsc_status(rc, FSC_ECORRUPT);
            assert_true(have < LEN); /* the last piece is not handed out */
            /* The descriptor is not checked: it reads the changed bytes. */
            unsigned char want[1];
            tb_fill(buf, LEN, 10 + i);
            want[0] = buf[spots[i]] ^ 0x01;
            unsigned char b;
            assert_int_equal(pread(fsc_entry_fd(e), &b, 1, spots[i]), 1);
            assert_int_equal(b, want[0]);
            fsc_entry_free(e);
            assert_fsc_ok(fsc_delete(t->cache, key, KEY_LEN));
        }
    }
    free(buf);
}

static int open_verifying(void **state) {
    fsc_options o;
    fsc_options_init(&o);
    o.verify_payloads = 1;
    return fsc_test_setup_with(state, &o);
}

/* With verify_payloads: the get itself reports the change and removes the value. */
static void test_get_with_option(void **state) {
    struct fsc_test_ctx *t = *state;
    for (int move = 0; move < 2; move++) {
        for (size_t i = 0; i < SPOTS; i++) {
            store_file(t, move, 20 + i);
            change_byte(t, spots[i]);
            fsc_entry *e = NULL;
            assert_fsc_status(fsc_get(t->cache, key, KEY_LEN, &e), FSC_ECORRUPT);
            assert_null(e);
            assert_non_null(strstr(fsc_errmsg(), "checksum"));
            expect_gone(t);
        }
    }
}

/* No false alarm: intact values (empty, copied, moved, with a remembered
 * offset) read back exactly with the option, and verify finds nothing. */
static void test_intact_values(void **state) {
    struct fsc_test_ctx *t = *state;
    char src[TB_PATH_MAX];
    core_join(src, t->dir, "src");
    assert_int_equal(tb_write_file(src, "", 0), 0);
    assert_fsc_ok(fsc_set_file(t->cache, "empty", 5, -1, src, FSC_MOVE));
    core_assert_value(t->cache, "empty", 5, "", 0);
    unsigned char *v = malloc(LEN);
    for (int move = 0; move < 2; move++) {
        store_file(t, move, 30);
        tb_fill(v, LEN, 30);
        core_assert_value(t->cache, key, KEY_LEN, v, LEN);
    }
    assert_int_equal(tb_write_file(src, v, LEN), 0);
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(lseek(fd, 1000, SEEK_SET), 1000);
    assert_fsc_ok(fsc_set_file(t->cache, "offset", 6, fd, NULL, 0));
    close(fd);
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(t->cache, "offset", 6, &e));
    assert_int_equal(fsc_entry_offset(e), 1000);
    assert_non_null(fsc_entry_data(e));
    assert_memory_equal(fsc_entry_data(e), v, LEN);
    fsc_entry_free(e);
    free(v);
    assert_int_equal(verify(t->cache, 0).problems, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        FSC_TEST(test_verify_finds_and_removes),
        FSC_TEST(test_get_without_option),
        cmocka_unit_test_setup_teardown(test_get_with_option, open_verifying, fsc_test_teardown),
        cmocka_unit_test_setup_teardown(test_intact_values, open_verifying, fsc_test_teardown),
    };
    return cmocka_run_group_tests_name("core_payload_sums", tests, NULL, NULL);
}
