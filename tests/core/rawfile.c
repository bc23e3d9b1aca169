/* Raw values (fsc_set_file): copy and move, the remembered offset for every
 * kind of source file, and a 256 MiB value streamed in bounded memory. */
#include <sys/resource.h>

#include "core_test.h"

#define MIB (1024 * 1024)

enum source_kind { SRC_OPEN, SRC_MKSTEMP, SRC_UNLINKED };

static const char *const kind_names[] = {"open()", "mkstemp()", "unlinked temp file"};

struct source {
    int fd;
    char path[TB_PATH_MAX]; /* "" when the file has no name */
};

/* A file holding "hello world", its descriptor positioned at offset 6. */
static void make_source(const char *dir, enum source_kind kind, struct source *s) {
    s->path[0] = '\0';
    switch (kind) {
    case SRC_OPEN:
        core_join(s->path, dir, "src-open");
        s->fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        break;
    case SRC_MKSTEMP:
        core_join(s->path, dir, "src-XXXXXX");
        s->fd = mkstemp(s->path);
        break;
    case SRC_UNLINKED:
        s->fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
        if (s->fd < 0) {
            /* Filesystems without O_TMPFILE: the classic way. */
            char tmp[TB_PATH_MAX];
            core_join(tmp, dir, "src-unlinked");
            s->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            unlink(tmp);
        }
        break;
    }
    assert_true(s->fd >= 0);
    assert_int_equal(write(s->fd, "hello world", 11), 11);
    assert_int_equal(lseek(s->fd, 6, SEEK_SET), 6);
}

/* The value under key is "hello world" with the remembered offset 6. */
static void check_offset_value(fsc_cache *c, const char *key) {
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(c, key, strlen(key), &e));
    assert_int_equal(fsc_entry_size(e), 11);
    assert_int_equal(fsc_entry_offset(e), 6);
    int fd = fsc_entry_fd(e);
    assert_true(fd >= 0);
    char buf[32] = {0};
    assert_int_equal(tb_read_all(fd, buf, sizeof buf), 5);
    assert_memory_equal(buf, "world", 5);
    /* The descriptor's file is exactly the value. */
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    memset(buf, 0, sizeof buf);
    assert_int_equal(tb_read_all(fd, buf, sizeof buf), 11);
    assert_memory_equal(buf, "hello world", 11);
    /* fsc_entry_read starts at the remembered offset, with its own cursor. */
    size_t got = 0;
    memset(buf, 0, sizeof buf);
    assert_fsc_ok(fsc_entry_read(e, buf, sizeof buf, &got));
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "world", 5);
    assert_fsc_ok(fsc_entry_read(e, buf, sizeof buf, &got));
    assert_int_equal(got, 0);
    const char *data = fsc_entry_data(e);
    assert_non_null(data);
    assert_memory_equal(data, "hello world", 11);
    fsc_entry_free(e);
}

/* The caller's file is as it was: same content, same offset. */
static void check_untouched(const struct source *s) {
    assert_int_equal(lseek(s->fd, 0, SEEK_CUR), 6);
    char buf[32] = {0};
    assert_int_equal(pread(s->fd, buf, sizeof buf, 0), 11);
    assert_memory_equal(buf, "hello world", 11);
    if (s->path[0])
        assert_int_equal(access(s->path, F_OK), 0);
}

static void copy_with_fd(void **state, enum source_kind kind, int pass_path) {
    struct fsc_test_ctx *t = *state;
    struct source s;
    make_source(t->dir, kind, &s);
    print_message("source: %s, path %s\n", kind_names[kind], pass_path ? "given" : "NULL");
    assert_fsc_ok(fsc_set_file(t->cache, "raw", 3, s.fd, pass_path && s.path[0] ? s.path : NULL, 0));
    check_untouched(&s);
    check_offset_value(t->cache, "raw");
    /* The cache holds a copy: changing the source afterwards changes nothing. */
    assert_int_equal(pwrite(s.fd, "HELLO", 5, 0), 5);
    check_offset_value(t->cache, "raw");
    close(s.fd);
}

static void test_copy_open(void **state) {
    copy_with_fd(state, SRC_OPEN, 1);
    copy_with_fd(state, SRC_OPEN, 0);
}

static void test_copy_mkstemp(void **state) {
    copy_with_fd(state, SRC_MKSTEMP, 1);
    copy_with_fd(state, SRC_MKSTEMP, 0);
}

static void test_copy_unlinked(void **state) { copy_with_fd(state, SRC_UNLINKED, 0); }

static void move_with_flag(void **state, enum source_kind kind) {
    struct fsc_test_ctx *t = *state;
    struct source s;
    make_source(t->dir, kind, &s);
    assert_fsc_ok(fsc_set_file(t->cache, "moved", 5, s.fd, s.path, FSC_MOVE));
    assert_int_equal(access(s.path, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    check_offset_value(t->cache, "moved");
    close(s.fd);
}

static void move_with_option(void **state, enum source_kind kind) {
    struct fsc_test_ctx *t = *state;
    fsc_options o = fsc_test_options();
    o.file_movable = 1;
    fsc_cache *c = fsc_test_open(t->dir, &o);
    struct source s;
    make_source(t->dir, kind, &s);
    assert_fsc_ok(fsc_set_file(c, "movable", 7, s.fd, s.path, 0));
    assert_int_equal(access(s.path, F_OK), -1);
    check_offset_value(c, "movable");
    check_offset_value(t->cache, "movable");
    close(s.fd);
    fsc_close(c);
}

static void test_move_open(void **state) {
    move_with_flag(state, SRC_OPEN);
    move_with_option(state, SRC_OPEN);
}

static void test_move_mkstemp(void **state) {
    move_with_flag(state, SRC_MKSTEMP);
    move_with_option(state, SRC_MKSTEMP);
}

/* A file without a name cannot be renamed: a clear error, and nothing stored. */
static void test_move_unlinked(void **state) {
    struct fsc_test_ctx *t = *state;
    struct source s;
    make_source(t->dir, SRC_UNLINKED, &s);
    assert_fsc_status(fsc_set_file(t->cache, "nameless", 8, s.fd, NULL, FSC_MOVE), FSC_EINVAL);
    assert_true(fsc_errmsg()[0] != '\0');
    core_assert_miss(t->cache, "nameless", 8);

    /* The name it had once is gone: an error naming it, not a crash. */
    char stale[TB_PATH_MAX];
    core_join(stale, t->dir, "no-such-file");
    int rc = fsc_set_file(t->cache, "nameless", 8, s.fd, stale, FSC_MOVE);
    assert_true(rc < 0);
    assert_non_null(strstr(fsc_errmsg(), "no-such-file"));
    core_assert_miss(t->cache, "nameless", 8);

    /* With file_movable and no path the file is copied from the descriptor. */
    fsc_options o = fsc_test_options();
    o.file_movable = 1;
    fsc_cache *c = fsc_test_open(t->dir, &o);
    assert_fsc_ok(fsc_set_file(c, "nameless", 8, s.fd, NULL, 0));
    check_untouched(&s);
    check_offset_value(c, "nameless");
    fsc_close(c);
    close(s.fd);
}

static void test_copy_from_path(void **state) {
    struct fsc_test_ctx *t = *state;
    struct source s;
    make_source(t->dir, SRC_OPEN, &s);
    assert_fsc_ok(fsc_set_file(t->cache, "bypath", 6, -1, s.path, 0));
    check_untouched(&s);
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(t->cache, "bypath", 6, &e));
    assert_int_equal(fsc_entry_size(e), 11);
    assert_int_equal(fsc_entry_offset(e), 0);
    char buf[32] = {0};
    assert_int_equal(tb_read_all(fsc_entry_fd(e), buf, sizeof buf), 11);
    assert_memory_equal(buf, "hello world", 11);
    fsc_entry_free(e);
    close(s.fd);
}

static void test_empty_file(void **state) {
    struct fsc_test_ctx *t = *state;
    char path[TB_PATH_MAX];
    core_join(path, t->dir, "empty");
    assert_int_equal(tb_write_file(path, "", 0), 0);
    assert_fsc_ok(fsc_set_file(t->cache, "e", 1, -1, path, 0));
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(t->cache, "e", 1, &e));
    assert_int_equal(fsc_entry_size(e), 0);
    assert_non_null(fsc_entry_data(e));
    char buf[4];
    assert_int_equal(tb_read_all(fsc_entry_fd(e), buf, sizeof buf), 0);
    fsc_entry_free(e);
}

/* A raw entry fetched before stays readable with its bytes after the key is
 * overwritten (with bytes or another file) and deleted. */
static void test_raw_snapshot(void **state) {
    struct fsc_test_ctx *t = *state;
    struct source s;
    make_source(t->dir, SRC_OPEN, &s);
    assert_fsc_ok(fsc_set_file(t->cache, "snap", 4, s.fd, s.path, FSC_MOVE));
    close(s.fd);
    fsc_entry *old = NULL;
    assert_fsc_ok(fsc_get(t->cache, "snap", 4, &old));
    assert_fsc_ok(fsc_set(t->cache, "snap", 4, "new bytes", 9));
    core_assert_value(t->cache, "snap", 4, "new bytes", 9);
    assert_fsc_ok(fsc_delete(t->cache, "snap", 4));
    core_assert_miss(t->cache, "snap", 4);

    assert_int_equal(fsc_entry_offset(old), 6);
    char buf[32] = {0};
    assert_int_equal(tb_read_all(fsc_entry_fd(old), buf, sizeof buf), 5);
    assert_memory_equal(buf, "world", 5);
    assert_memory_equal(fsc_entry_data(old), "hello world", 11);
    fsc_entry_free(old);

    /* A file value replacing a file value. */
    char p1[TB_PATH_MAX], p2[TB_PATH_MAX];
    core_join(p1, t->dir, "one");
    core_join(p2, t->dir, "two");
    assert_int_equal(tb_write_file(p1, "first", 5), 0);
    assert_int_equal(tb_write_file(p2, "second!", 7), 0);
    assert_fsc_ok(fsc_set_file(t->cache, "ff", 2, -1, p1, 0));
    assert_fsc_ok(fsc_get(t->cache, "ff", 2, &old));
    assert_fsc_ok(fsc_set_file(t->cache, "ff", 2, -1, p2, FSC_MOVE));
    core_assert_value(t->cache, "ff", 2, "second!", 7);
    memset(buf, 0, sizeof buf);
    assert_int_equal(tb_read_all(fsc_entry_fd(old), buf, sizeof buf), 5);
    assert_memory_equal(buf, "first", 5);
    fsc_entry_free(old);
}

/* In a child, so that only this test's memory counts in ru_maxrss. */
static int stream_big_file(const char *dir) {
    const uint64_t total = 256ull * MIB;
    const size_t chunk = 1 << 20;
    char path[TB_PATH_MAX];
    core_join(path, dir, "big");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    child_check(fd >= 0, 2);
    unsigned char *buf = malloc(chunk);
    child_check(buf != NULL, 2);
    uint64_t want = TB_FNV_INIT;
    for (uint64_t done = 0, i = 0; done < total; done += chunk, i++) {
        tb_fill(buf, chunk, 1000 + i);
        want = tb_fnv(want, buf, chunk);
        child_check(write(fd, buf, chunk) == (ssize_t)chunk, 3);
    }
    close(fd);

    fsc_cache *c = NULL;
    child_check(fsc_open(dir, NULL, &c) == FSC_OK, 4);
    child_check(fsc_set_file(c, "big", 3, -1, path, 0) == FSC_OK, 5);
    unlink(path);
    fsc_entry *e = NULL;
    child_check(fsc_get(c, "big", 3, &e) == FSC_OK, 6);
    child_check(fsc_entry_size(e) == total, 7);
    int vfd = fsc_entry_fd(e);
    child_check(vfd >= 0, 8);
    uint64_t got_sum = TB_FNV_INIT, got = 0;
    for (;;) {
        ssize_t n = read(vfd, buf, 65536);
        child_check(n >= 0, 9);
        if (n == 0)
            break;
        got_sum = tb_fnv(got_sum, buf, (size_t)n);
        got += (uint64_t)n;
    }
    child_check(got == total, 10);
    child_check(got_sum == want, 11);
    fsc_entry_free(e);
    fsc_close(c);
    free(buf);

    struct rusage ru;
    child_check(getrusage(RUSAGE_SELF, &ru) == 0, 12);
    fprintf(stderr, "peak RSS after a 256 MiB round trip: %ld KiB\n", ru.ru_maxrss);
    child_check(ru.ru_maxrss < 32 * 1024, 13);
    return 0;
}

static void test_big_file_bounded_memory(void **state) {
    struct fsc_test_ctx *t = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(stream_big_file(t->dir));
    assert_int_equal(tb_wait(pid), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        FSC_TEST(test_big_file_bounded_memory),
        FSC_TEST(test_copy_open),
        FSC_TEST(test_copy_mkstemp),
        FSC_TEST(test_copy_unlinked),
        FSC_TEST(test_move_open),
        FSC_TEST(test_move_mkstemp),
        FSC_TEST(test_move_unlinked),
        FSC_TEST(test_copy_from_path),
        FSC_TEST(test_empty_file),
        FSC_TEST(test_raw_snapshot),
    };
    return cmocka_run_group_tests_name("core_rawfile", tests, NULL, NULL);
}
