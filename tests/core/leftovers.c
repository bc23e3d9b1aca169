/* What a crashed process leaves in base_dir/tmp is swept by the next open,
 * but only when no other handle, in this process or another, has the cache
 * open (its own set may be writing that very temp file). */
#include <signal.h>

#include "core_test.h"

/* A temp file as a killed writer leaves it: named like the library's own
 * (pid.random) with part of a value in it. */
static void plant_temp_file(const char *dir, const char *name, char *path) {
    char tmp[TB_PATH_MAX];
    core_join(tmp, dir, "tmp");
    core_join(path, tmp, name);
    assert_int_equal(tb_write_file(path, "half a value", 12), 0);
}

static void test_swept_after_crash(void **state) {
    struct fsc_test_ctx *t = *state;
    assert_fsc_ok(fsc_close(t->cache));
    t->cache = NULL;

    /* A writer dies with the cache open and a temp file half written. */
    char path[TB_PATH_MAX];
    core_join(path, t->dir, "tmp/999999.00000000deadbeef");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fsc_cache *c = NULL;
        child_check(fsc_open(t->dir, NULL, &c) == FSC_OK, 2);
        child_check(fsc_set(c, "k", 1, "v", 1) == FSC_OK, 3);
        child_check(tb_write_file(path, "half a value", 12) == 0, 4);
        raise(SIGKILL);
        _exit(5);
    }
    assert_int_equal(tb_wait(pid), 128 + SIGKILL);
    assert_int_equal(access(path, F_OK), 0);

    assert_fsc_ok(fsc_open(t->dir, NULL, &t->cache));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    /* Sweeping touched only the temp files. */
    core_assert_value(t->cache, "k", 1, "v", 1);
}

static void test_kept_while_another_process_has_it_open(void **state) {
    struct fsc_test_ctx *t = *state;
    assert_fsc_ok(fsc_close(t->cache));
    t->cache = NULL;

    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        fsc_cache *c = NULL;
        child_check(fsc_open(t->dir, NULL, &c) == FSC_OK, 2);
        child_check(write(ready[1], "r", 1) == 1, 3);
        char b;
        /* Keep the cache open until told to go (or the parent is gone). */
        child_check(read(go[0], &b, 1) >= 0, 4);
        fsc_close(c);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1);

    char path[TB_PATH_MAX];
    plant_temp_file(t->dir, "4242.0123456789abcdef", path);
    assert_fsc_ok(fsc_open(t->dir, NULL, &t->cache));
    assert_int_equal(access(path, F_OK), 0);
    /* The cache works meanwhile, and a set does not sweep either. */
    assert_fsc_ok(fsc_set(t->cache, "k", 1, "v", 1));
    assert_int_equal(access(path, F_OK), 0);
    assert_fsc_ok(fsc_close(t->cache));
    t->cache = NULL;

    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(tb_wait(pid), 0);
    close(ready[0]);
    close(go[1]);

    /* Now nobody has it open: the next open sweeps. */
    assert_fsc_ok(fsc_open(t->dir, NULL, &t->cache));
    assert_int_equal(access(path, F_OK), -1);
    core_assert_value(t->cache, "k", 1, "v", 1);
}

static void test_kept_while_this_process_has_it_open(void **state) {
    struct fsc_test_ctx *t = *state;
    char path[TB_PATH_MAX];
    plant_temp_file(t->dir, "4243.0123456789abcdef", path);
    /* t->cache is open: a second handle of the same process must not sweep. */
    fsc_cache *second = NULL;
    assert_fsc_ok(fsc_open(t->dir, NULL, &second));
    assert_int_equal(access(path, F_OK), 0);
    fsc_close(second);
    assert_int_equal(access(path, F_OK), 0);

    assert_fsc_ok(fsc_close(t->cache));
    t->cache = NULL;
    assert_fsc_ok(fsc_open(t->dir, NULL, &t->cache));
    assert_int_equal(access(path, F_OK), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        FSC_TEST(test_swept_after_crash),
        FSC_TEST(test_kept_while_another_process_has_it_open),
        FSC_TEST(test_kept_while_this_process_has_it_open),
    };
    return cmocka_run_group_tests_name("core_leftovers", tests, NULL, NULL);
}
