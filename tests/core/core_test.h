/* Small tools shared by the core suites: joining paths, finding a cache's
 * entry and payload files on disk, and asserting a value or a miss. */
#ifndef FSC_CORE_TEST_H
#define FSC_CORE_TEST_H

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

#endif
