/* Bad arguments, as a table: each call must give its status and leave a
 * message in fsc_errmsg(). Also base_dir checks (a file, unwritable, foreign,
 * another format) and fsc_strerror for every status. */
#include <grp.h>
#include <limits.h>
#include <sys/stat.h>

#include <stddef.h>

#include "core_test.h"

/* What the rows work on. */
static struct {
    char dir[TB_PATH_MAX];
    char plain_file[TB_PATH_MAX];
    char sentinel[TB_PATH_MAX];
    char foreign[TB_PATH_MAX];
    char other_format[TB_PATH_MAX];
    char bad_marker[TB_PATH_MAX];
    char fresh[TB_PATH_MAX];
    char never[TB_PATH_MAX];
    char under_plain_file[TB_PATH_MAX];
    fsc_options opts;
    fsc_statistics stats;
    char buf[16];
    size_t got;
    int64_t pid;
    fsc_cache *c;
    fsc_entry *e;
    fsc_cache *out_cache;
    fsc_entry *out_entry;
    fsc_lock_handle *out_lock;
    int pipe_fd;
    int dir_fd;
} w;

static unsigned char long_key[FSC_MAX_KEY + 1];

static int creator(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    (void)ctx;
    return fsc_set(c, key, key_len, "x", 1);
}

static int visitor(void *ctx, const void *key, size_t key_len, uint64_t size, int64_t created_ms) {
    (void)ctx;
    (void)key;
    (void)key_len;
    (void)size;
    (void)created_ms;
    return 0;
}

/* fsc_open on w.never with default options but one field set to value. */
#define OPEN_WITH(field, value)                                                                                \
    (fsc_options_init(&w.opts), w.opts.field = (value), fsc_open(w.never, &w.opts, &w.out_cache))

struct row {
    const char *what;
    int want;
    int (*call)(void);
};

#define ROW(name, want, expr)                                                                                  \
    static int row_##name(void) { return (expr); }
#include "badargs_rows.h"
#undef ROW
#define ROW(name, want, expr) {#expr, want, row_##name},
static const struct row rows[] = {
#include "badargs_rows.h"
};
#undef ROW

static int setup(void **state) {
    (void)state;
    char *dir = fsc_test_tempdir();
    if (!dir)
        return -1;
    snprintf(w.dir, sizeof w.dir, "%s", dir);
    free(dir);
    core_join(w.plain_file, w.dir, "plainfile");
    core_join(w.sentinel, w.dir, "sentinel");
    core_join(w.foreign, w.dir, "foreign");
    core_join(w.other_format, w.dir, "other-format");
    core_join(w.bad_marker, w.dir, "bad-marker");
    core_join(w.fresh, w.dir, "fresh");
    core_join(w.never, w.dir, "never");
    core_join(w.under_plain_file, w.plain_file, "sub");
    w.stats.size = sizeof w.stats;
    char path[TB_PATH_MAX];
    if (tb_write_file(w.plain_file, "x", 1) || tb_write_file(w.sentinel, "x", 1))
        return -1;
    /* A directory holding something else than a cache. */
    core_join(path, w.foreign, "notes.txt");
    if (mkdir(w.foreign, 0700) || tb_write_file(path, "mine", 4))
        return -1;
    /* A cache of a format version this library does not read, and one
     * whose marker is not a marker. */
    core_join(path, w.other_format, "FSC-FORMAT");
    if (mkdir(w.other_format, 0700) || tb_write_file(path, "fsc-cache-format 2\n", 19))
        return -1;
    core_join(path, w.bad_marker, "FSC-FORMAT");
    if (mkdir(w.bad_marker, 0700) || tb_write_file(path, "JUNK", 4))
        return -1;
    core_join(path, w.dir, "cache");
    if (fsc_open(path, NULL, &w.c) != FSC_OK || fsc_set(w.c, "k", 1, "v", 1) != FSC_OK ||
        fsc_get(w.c, "k", 1, &w.e) != FSC_OK)
        return -1;
    int p[2];
    if (pipe(p))
        return -1;
    close(p[1]);
    w.pipe_fd = p[0];
    w.dir_fd = open(w.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fsc_entry_free(w.e);
    fsc_close(w.c);
    close(w.pipe_fd);
    close(w.dir_fd);
    tb_rmtree(w.dir);
    return 0;
}

/* Leaves a known message behind, so that a row that forgets to set its own
 * is caught. */
static void plant_sentinel(void) {
    fsc_cache *c = NULL;
    assert_fsc_status(fsc_open(w.sentinel, NULL, &c), FSC_EINVAL);
    assert_non_null(strstr(fsc_errmsg(), "sentinel"));
}

static void test_table(void **state) {
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        plant_sentinel();
        w.out_cache = NULL;
        w.out_entry = NULL;
        w.out_lock = NULL;
        int got = rows[i].call();
        const char *msg = fsc_errmsg();
        int ok = got == rows[i].want && msg[0] != '\0' && !strstr(msg, "sentinel");
        /* out-parameters are written only on success */
        ok = ok && !w.out_cache && !w.out_entry && !w.out_lock;
        if (!ok) {
            print_error("%s gave %s (\"%s\"), want %s and a message of its own\n", rows[i].what,
                        fsc_strerror(got), msg, fsc_strerror(rows[i].want));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    /* Refused calls created nothing and stored nothing. */
    assert_int_equal(access(w.never, F_OK), -1);
    core_assert_miss(w.c, "g", 1);
    core_assert_value(w.c, "k", 1, "v", 1);
}

/* Functions that report through their return value alone. */
static void test_null_entry_and_handles(void **state) {
    (void)state;
    plant_sentinel();
    assert_null(fsc_entry_data(NULL));
    assert_true(fsc_errmsg()[0] != '\0');
    assert_null(strstr(fsc_errmsg(), "sentinel"));
    assert_int_equal(fsc_entry_size(NULL), 0);
    assert_int_equal(fsc_entry_offset(NULL), 0);
    assert_int_equal(fsc_entry_fd(NULL), -1);
    assert_int_equal(fsc_entry_created_ms(NULL), 0);
    fsc_entry_free(NULL);
    assert_fsc_ok(fsc_close(NULL));
    fsc_options_init(NULL);
}

static void test_key_length_limits(void **state) {
    (void)state;
    fsc_cache *c = w.c;
    assert_fsc_ok(fsc_set(c, long_key, FSC_MAX_KEY, "max", 3));
    core_assert_value(c, long_key, FSC_MAX_KEY, "max", 3);
    fsc_lock_handle *l = NULL;
    assert_fsc_ok(fsc_lock(c, long_key, FSC_MAX_KEY, 0, &l));
    assert_fsc_ok(fsc_unlock(l));
    assert_fsc_ok(fsc_delete(c, long_key, FSC_MAX_KEY));
    /* One byte more is refused, and nothing is stored under a cut key. */
    assert_fsc_status(fsc_set(c, long_key, FSC_MAX_KEY + 1, "x", 1), FSC_EINVAL);
    core_assert_miss(c, long_key, FSC_MAX_KEY);
    assert_fsc_ok(fsc_set(c, "a", 1, "x", 1));
    assert_fsc_status(fsc_set(c, "a", 0, "y", 1), FSC_EINVAL);
    core_assert_value(c, "a", 1, "x", 1);
}

static void test_base_dir_unwritable(void **state) {
    (void)state;
    /* Root may write anywhere: drop to nobody in a child. */
    char ro[TB_PATH_MAX], inside[TB_PATH_MAX], roots[TB_PATH_MAX];
    core_join(ro, w.dir, "read-only");
    core_join(inside, ro, "new");
    core_join(roots, w.dir, "roots-cache");
    assert_int_equal(chmod(w.dir, 0755), 0);
    assert_int_equal(mkdir(ro, 0755), 0);
    fsc_cache *rc = NULL;
    assert_fsc_ok(fsc_open(roots, NULL, &rc));
    fsc_close(rc);
    if (geteuid() != 0) {
        assert_int_equal(chmod(ro, 0555), 0);
        assert_int_equal(chmod(roots, 0500), 0);
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0) {
            child_check(setgroups(0, NULL) == 0, 2);
            child_check(setgid(65534) == 0, 2);
            child_check(setuid(65534) == 0, 2);
        }
        fsc_cache *c = NULL;
        child_check(fsc_open(ro, NULL, &c) == FSC_EACCES, 3);
        child_check(fsc_errmsg()[0] != '\0', 3);
        child_check(fsc_open(inside, NULL, &c) == FSC_EACCES, 4);
        child_check(fsc_errmsg()[0] != '\0', 4);
        child_check(fsc_open(roots, NULL, &c) == FSC_EACCES, 5);
        child_check(fsc_errmsg()[0] != '\0', 5);
        child_check(c == NULL, 6);
        _exit(0);
    }
    assert_int_equal(tb_wait(pid), 0);
    /* Nothing was created on the way. */
    assert_int_equal(access(inside, F_OK), -1);
}

static void test_format_checks_leave_dir_alone(void **state) {
    (void)state;
    char path[TB_PATH_MAX];
    fsc_cache *c = NULL;
    assert_fsc_status(fsc_open(w.foreign, NULL, &c), FSC_EFORMAT);
    core_join(path, w.foreign, "FSC-FORMAT");
    assert_int_equal(access(path, F_OK), -1);
    core_join(path, w.other_format, "FSC-FORMAT");
    assert_fsc_status(fsc_open(w.other_format, NULL, &c), FSC_EFORMAT);
    char buf[32] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(tb_read_all(fd, buf, sizeof buf), 19);
    close(fd);
    assert_memory_equal(buf, "fsc-cache-format 2\n", 19);
    assert_null(c);
    /* An empty directory is fine, and so is reopening it. */
    assert_int_equal(mkdir(w.fresh, 0700), 0);
    assert_fsc_ok(fsc_open(w.fresh, NULL, &c));
    fsc_close(c);
    assert_fsc_ok(fsc_open(w.fresh, NULL, &c));
    fsc_close(c);
}

static void test_strerror(void **state) {
    (void)state;
    static const struct {
        int status;
        const char *name;
    } names[] = {
        {FSC_OK, "FSC_OK"},           {FSC_MISS, "FSC_MISS"},         {FSC_STALE, "FSC_STALE"},
        {FSC_EINVAL, "FSC_EINVAL"},   {FSC_ENOMEM, "FSC_ENOMEM"},     {FSC_EIO, "FSC_EIO"},
        {FSC_ENOSPC, "FSC_ENOSPC"},   {FSC_EACCES, "FSC_EACCES"},     {FSC_EBUSY, "FSC_EBUSY"},
        {FSC_ETIMEDOUT, "FSC_ETIMEDOUT"}, {FSC_EDEADLK, "FSC_EDEADLK"}, {FSC_ECORRUPT, "FSC_ECORRUPT"},
        {FSC_ETOOBIG, "FSC_ETOOBIG"}, {FSC_EXDEV, "FSC_EXDEV"},       {FSC_EFORMAT, "FSC_EFORMAT"},
        {FSC_ECREATOR, "FSC_ECREATOR"}, {FSC_ENOTSUP, "FSC_ENOTSUP"}, {FSC_ELOST, "FSC_ELOST"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_string_equal(fsc_strerror(names[i].status), names[i].name);
    /* The values are part of the ABI. */
    assert_int_equal(FSC_ENOTSUP, -14);
    assert_int_equal(FSC_ELOST, -15);
    assert_int_equal(FSC_STALE, 2);
    assert_int_equal(FSC_STOPPED, 3);
    assert_string_equal(fsc_strerror(FSC_STOPPED), "FSC_STOPPED");
    const int unknown[] = {4, -16, 100, -100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_string_equal(fsc_strerror(unknown[i]), "FSC_E?");
}

static void test_version(void **state) {
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", FSC_VERSION_MAJOR, FSC_VERSION_MINOR, FSC_VERSION_PATCH);
    assert_non_null(fsc_version());
    assert_string_equal(fsc_version(), want);
    assert_int_equal(fsc_version_number(), FSC_VERSION_NUMBER);
    assert_int_equal(fsc_version_number(),
                     FSC_VERSION_MAJOR * 10000 + FSC_VERSION_MINOR * 100 + FSC_VERSION_PATCH);
}

int main(void) {
    tb_fill(long_key, sizeof long_key, 77);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_null_entry_and_handles),
        cmocka_unit_test(test_key_length_limits),
        cmocka_unit_test(test_base_dir_unwritable),
        cmocka_unit_test(test_format_checks_leave_dir_alone),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests_name("core_badargs", tests, setup, teardown);
}
