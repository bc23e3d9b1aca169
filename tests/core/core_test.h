/* Small tools shared by the core suites: joining paths, finding a raw
 * value's payload file, asserting a value or a miss, and mounting a small
 * private tmpfs. */
#ifndef FSC_CORE_TEST_H
#define FSC_CORE_TEST_H

#include <sched.h>
#include <sys/mount.h>

#include "fsc_format.h"
#include "fsc_test.h"

static inline void core_join(char *out, const char *dir, const char *name) {
    int n = snprintf(out, TB_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= TB_PATH_MAX)
        abort(); /* test paths are short; a cut one would test the wrong file */
}

/* The payload file of a raw value's entry: entry path + '.' + 16 hex digits.
 * Copies its path into out; returns how many there are. */
static inline int core_find_payloads(const char *entry, char *out) {
    char dir[TB_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", entry);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    const char *base = slash + 1;
    DIR *in = opendir(dir);
    if (!in)
        return 0;
    int count = 0;
    struct dirent *f;
    while ((f = readdir(in))) {
        if (strlen(f->d_name) == 49 && strncmp(f->d_name, base, 32) == 0 && f->d_name[32] == '.' &&
            tb_is_hex(f->d_name + 33, 16)) {
            core_join(out, dir, f->d_name);
            count++;
        }
    }
    closedir(in);
    return count;
}

/* Gets key and asserts that the value is exactly want[0..len). */
static inline void core_assert_value(fsc_cache *c, const void *key, size_t key_len, const void *want,
                                     size_t len) {
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(c, key, key_len, &e));
    assert_non_null(e);
    assert_int_equal(fsc_entry_size(e), len);
    const void *data = fsc_entry_data(e);
    assert_non_null(data);
    if (len)
        assert_memory_equal(data, want, len);
    fsc_entry_free(e);
}

static inline void core_assert_miss(fsc_cache *c, const void *key, size_t key_len) {
    fsc_entry *e = NULL;
    assert_fsc_status(fsc_get(c, key, key_len, &e), FSC_MISS);
    assert_null(e);
}

/* Mounts a small tmpfs (mount options `options`) at mount_dir = <top>/tmpfs,
 * *top being a new temp dir; in a private mount namespace where allowed, so
 * that the mount never outlives this process even if it dies. Returns 0;
 * else 1 when no temp dir could be made, or -1 when mounting is not allowed
 * here (said on stdout: `what` skipped; top removed). */
static inline int core_mount_tmpfs(char *mount_dir, const char *options, const char *what, char **top) {
    *top = fsc_test_tempdir();
    if (!*top) {
        perror("mkdtemp");
        return 1;
    }
    core_join(mount_dir, *top, "tmpfs");
    if (mkdir(mount_dir, 0700) != 0) {
        perror("mkdir");
        return 1;
    }
    if (unshare(CLONE_NEWNS) == 0)
        mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL); /* source, type: ignored, named for valgrind */
    if (mount("tmpfs", mount_dir, "tmpfs", 0, options) != 0) {
        printf("%s skipped: cannot mount a tmpfs on %s: %s\n", what, mount_dir, strerror(errno));
        tb_rmtree(*top);
        free(*top);
        *top = NULL;
        return -1;
    }
    return 0;
}

#endif
