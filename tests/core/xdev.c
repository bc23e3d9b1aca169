/* Moving a file into the cache from another filesystem: FSC_EXDEV, and the
 * file stays where it was. Needs a tmpfs mount (root); skips otherwise. */
#include "core_test.h"

static char mount_dir[TB_PATH_MAX];

static void test_move_across_filesystems(void **state) {
    struct fsc_test_ctx *t = *state;
    char path[TB_PATH_MAX];
    core_join(path, mount_dir, "far-away");
    assert_int_equal(tb_write_file(path, "hello world", 11), 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(lseek(fd, 6, SEEK_SET), 6);

    /* An older value of the key must survive the refused move. */
    assert_fsc_ok(fsc_set(t->cache, "x", 1, "old", 3));
    assert_fsc_status(fsc_set_file(t->cache, "x", 1, fd, path, FSC_MOVE), FSC_EXDEV);
    assert_true(fsc_errmsg()[0] != '\0');
    assert_fsc_status(fsc_set_file(t->cache, "x", 1, -1, path, FSC_MOVE), FSC_EXDEV);
    core_assert_value(t->cache, "x", 1, "old", 3);
    /* Refused before it changed anything, the set leaves its shard clean:
     * no table marked mid-change for fsc_verify to count. */
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    assert_fsc_ok(fsc_verify(t->cache, 0, &r));
    assert_int_equal(r.problems, 0);

    char buf[32] = {0};
    int again = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(again >= 0);
    assert_int_equal(tb_read_all(again, buf, sizeof buf), 11);
    assert_memory_equal(buf, "hello world", 11);
    close(again);

    /* A copy from the same file works. */
    assert_fsc_ok(fsc_set_file(t->cache, "x", 1, fd, path, 0));
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(t->cache, "x", 1, &e));
    assert_int_equal(fsc_entry_offset(e), 6);
    memset(buf, 0, sizeof buf);
    assert_int_equal(tb_read_all(fsc_entry_fd(e), buf, sizeof buf), 5);
    assert_memory_equal(buf, "world", 5);
    fsc_entry_free(e);
    assert_int_equal(access(path, F_OK), 0);
    close(fd);
    unlink(path);
}

static void test_movable_option_across_filesystems(void **state) {
    struct fsc_test_ctx *t = *state;
    char path[TB_PATH_MAX];
    core_join(path, mount_dir, "movable");
    assert_int_equal(tb_write_file(path, "payload", 7), 0);
    fsc_options o = fsc_test_options();
    o.file_movable = 1;
    fsc_cache *c = fsc_test_open(t->dir, &o);
    assert_fsc_status(fsc_set_file(c, "m", 1, -1, path, 0), FSC_EXDEV);
    core_assert_miss(c, "m", 1);
    assert_int_equal(access(path, F_OK), 0);
    /* Given only the descriptor, file_movable copies. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_fsc_ok(fsc_set_file(c, "m", 1, fd, NULL, 0));
    core_assert_value(c, "m", 1, "payload", 7);
    close(fd);
    fsc_close(c);
    unlink(path);
}

int main(void) {
    char *top;
    int m = core_mount_tmpfs(mount_dir, "size=8m", "core_xdev", &top);
    if (m != 0)
        return m > 0 ? 1 : 77;
    const struct CMUnitTest tests[] = {
        FSC_TEST(test_move_across_filesystems),
        FSC_TEST(test_movable_option_across_filesystems),
    };
    int rc = cmocka_run_group_tests_name("core_xdev", tests, NULL, NULL);
    if (umount(mount_dir) != 0) {
        fprintf(stderr, "umount %s: %s\n", mount_dir, strerror(errno));
        rc = rc ? rc : 1;
    }
    tb_rmtree(top);
    free(top);
    return rc;
}
