/* Values in and out: fsc_set/fsc_get round trips, binary keys, overwrite,
 * delete, clear, expiration, persistence across handles and processes, and
 * fsc_foreach. */
#include "core_test.h"

#define MIB (1024 * 1024)

static void test_empty_value(void **state) {
    struct fsc_test_ctx *t = *state;
    assert_fsc_ok(fsc_set(t->cache, "empty", 5, NULL, 0));
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(t->cache, "empty", 5, &e));
    assert_int_equal(fsc_entry_size(e), 0);
    assert_int_equal(fsc_entry_offset(e), 0);
    /* A 0-byte value still gives a valid pointer: NULL would mean failure. */
    assert_non_null(fsc_entry_data(e));
    char buf[8];
    size_t got = 99;
    assert_fsc_ok(fsc_entry_read(e, buf, sizeof buf, &got));
    assert_int_equal(got, 0);
    fsc_entry_free(e);

    /* A non-NULL pointer with length 0 is the same empty value. */
    assert_fsc_ok(fsc_set(t->cache, "empty2", 6, "x", 0));
    core_assert_value(t->cache, "empty2", 6, "", 0);
}

static void test_one_byte(void **state) {
    struct fsc_test_ctx *t = *state;
    assert_fsc_ok(fsc_set(t->cache, "k", 1, "\xa5", 1));
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(t->cache, "k", 1, &e));
    assert_int_equal(fsc_entry_size(e), 1);
    char buf[4];
    size_t got = 0;
    assert_fsc_ok(fsc_entry_read(e, buf, sizeof buf, &got));
    assert_int_equal(got, 1);
    assert_int_equal((unsigned char)buf[0], 0xa5);
    assert_fsc_ok(fsc_entry_read(e, buf, sizeof buf, &got));
    assert_int_equal(got, 0);
    assert_memory_equal(fsc_entry_data(e), "\xa5", 1);
    fsc_entry_free(e);
}

/* Checks every way of reading a value stored with fsc_set. */
static void check_all_readers(fsc_cache *c, const char *key, const unsigned char *want, size_t len) {
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(c, key, strlen(key), &e));
    assert_int_equal(fsc_entry_size(e), len);
    assert_int_equal(fsc_entry_offset(e), 0);

    /* Odd chunk sizes so that reads straddle any internal block size. */
    unsigned char *buf = malloc(len + 1);
    size_t have = 0, got = 0;
    size_t chunk = 1;
    do {
        assert_fsc_ok(fsc_entry_read(e, buf + have, chunk, &got));
        assert_true(got <= chunk);
        have += got;
        assert_true(have <= len);
        chunk = chunk * 3 + 1 > 4099 ? 777 : chunk * 3 + 1;
    } while (got > 0);
    assert_int_equal(have, len);
    assert_memory_equal(buf, want, len);

    const void *data = fsc_entry_data(e);
    assert_non_null(data);
    assert_memory_equal(data, want, len);

    /* fsc_set values are the last size bytes of the descriptor's file, and
     * the descriptor starts at the value's first byte. */
    int fd = fsc_entry_fd(e);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_true((uint64_t)st.st_size >= len);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), st.st_size - (off_t)len);
    memset(buf, 0, len);
    assert_int_equal(tb_read_all(fd, buf, len + 1), (ssize_t)len);
    assert_memory_equal(buf, want, len);
    free(buf);
    fsc_entry_free(e);
}

static void test_one_mib(void **state) {
    struct fsc_test_ctx *t = *state;
    unsigned char *v = malloc(MIB);
    tb_fill(v, MIB, 1);
    int64_t before = tb_now_ms();
    assert_fsc_ok(fsc_set(t->cache, "mib", 3, v, MIB));
    int64_t after = tb_now_ms();
    check_all_readers(t->cache, "mib", v, MIB);

    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(t->cache, "mib", 3, &e));
    int64_t created = fsc_entry_created_ms(e);
    assert_true(created >= before);
    assert_true(created <= after);
    fsc_entry_free(e);
    free(v);
}

/* Larger than what a get loads at once: read from the file afterwards. */
static void test_three_mib(void **state) {
    struct fsc_test_ctx *t = *state;
    size_t len = 3 * MIB + 17;
    unsigned char *v = malloc(len);
    tb_fill(v, len, 2);
    assert_fsc_ok(fsc_set(t->cache, "big", 3, v, len));
    check_all_readers(t->cache, "big", v, len);
    free(v);
}

static void test_binary_keys(void **state) {
    struct fsc_test_ctx *t = *state;
    static const struct {
        const char *key;
        size_t len;
        const char *value;
    } keys[] = {
        {"a\0b", 3, "value a-nul-b"}, {"a\0c", 3, "value a-nul-c"}, {"a", 1, "value a"},
        {"a\0", 2, "value a-nul"},    {"\0", 1, "value nul"},      {"\0\0", 2, "value nul-nul"},
    };
    const size_t n = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < n; i++)
        assert_fsc_ok(fsc_set(t->cache, keys[i].key, keys[i].len, keys[i].value, strlen(keys[i].value)));
    for (size_t i = 0; i < n; i++)
        core_assert_value(t->cache, keys[i].key, keys[i].len, keys[i].value, strlen(keys[i].value));
    core_assert_miss(t->cache, "a\0d", 3);
    core_assert_miss(t->cache, "b", 1);

    /* Deleting one of them leaves its neighbours alone. */
    assert_fsc_ok(fsc_delete(t->cache, "a\0b", 3));
    core_assert_miss(t->cache, "a\0b", 3);
    core_assert_value(t->cache, "a\0c", 3, "value a-nul-c", 13);
    core_assert_value(t->cache, "a", 1, "value a", 7);
}

static void test_longest_key(void **state) {
    struct fsc_test_ctx *t = *state;
    unsigned char *key = malloc(FSC_MAX_KEY);
    tb_fill(key, FSC_MAX_KEY, 3);
    key[100] = 0;
    assert_fsc_ok(fsc_set(t->cache, key, FSC_MAX_KEY, "long", 4));
    core_assert_value(t->cache, key, FSC_MAX_KEY, "long", 4);
    /* The same bytes one shorter are another key. */
    core_assert_miss(t->cache, key, FSC_MAX_KEY - 1);
    free(key);
}

/* An entry is a snapshot: overwriting or deleting the key later must not
 * change what it reads. */
static void check_snapshot(fsc_cache *c, size_t len) {
    unsigned char *v1 = malloc(len), *v2 = malloc(len + 5);
    tb_fill(v1, len, 10);
    tb_fill(v2, len + 5, 11);
    assert_fsc_ok(fsc_set(c, "snap", 4, v1, len));
    fsc_entry *old = NULL, *mid = NULL;
    assert_fsc_ok(fsc_get(c, "snap", 4, &old));
    assert_fsc_ok(fsc_set(c, "snap", 4, v2, len + 5));
    core_assert_value(c, "snap", 4, v2, len + 5);
    assert_fsc_ok(fsc_get(c, "snap", 4, &mid));

    assert_int_equal(fsc_entry_size(old), len);
    const void *data = fsc_entry_data(old);
    assert_non_null(data);
    assert_memory_equal(data, v1, len);

    assert_fsc_ok(fsc_delete(c, "snap", 4));
    core_assert_miss(c, "snap", 4);
    unsigned char *buf = malloc(len + 5);
    size_t have = 0, got = 0;
    do {
        assert_fsc_ok(fsc_entry_read(mid, buf + have, 65536, &got));
        have += got;
    } while (got > 0);
    assert_int_equal(have, len + 5);
    assert_memory_equal(buf, v2, len + 5);
    int fd = fsc_entry_fd(old);
    assert_true(fd >= 0);
    assert_int_equal(tb_read_all(fd, buf, len), (ssize_t)len);
    assert_memory_equal(buf, v1, len);
    fsc_entry_free(old);
    fsc_entry_free(mid);
    free(buf);
    free(v1);
    free(v2);
}

static void test_overwrite_small(void **state) {
    struct fsc_test_ctx *t = *state;
    check_snapshot(t->cache, 100);
}

static void test_overwrite_large(void **state) {
    struct fsc_test_ctx *t = *state;
    check_snapshot(t->cache, 2 * MIB);
}

static void test_delete(void **state) {
    struct fsc_test_ctx *t = *state;
    assert_fsc_status(fsc_delete(t->cache, "gone", 4), FSC_MISS);
    assert_fsc_ok(fsc_set(t->cache, "gone", 4, "v", 1));
    assert_fsc_ok(fsc_set(t->cache, "kept", 4, "w", 1));
    assert_fsc_ok(fsc_delete(t->cache, "gone", 4));
    core_assert_miss(t->cache, "gone", 4);
    assert_fsc_status(fsc_delete(t->cache, "gone", 4), FSC_MISS);
    core_assert_value(t->cache, "kept", 4, "w", 1);
    /* A deleted key can be set again. */
    assert_fsc_ok(fsc_set(t->cache, "gone", 4, "back", 4));
    core_assert_value(t->cache, "gone", 4, "back", 4);
}

static void test_clear(void **state) {
    struct fsc_test_ctx *t = *state;
    char key[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "key%d", i);
        assert_fsc_ok(fsc_set(t->cache, key, strlen(key), key, strlen(key)));
    }
    assert_fsc_ok(fsc_clear(t->cache));
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "key%d", i);
        core_assert_miss(t->cache, key, strlen(key));
    }
    uint64_t visited = 0;
    assert_fsc_ok(fsc_foreach(t->cache, tb_count_visit, &visited));
    assert_int_equal(visited, 0);
    /* Clearing an empty cache is fine, and the cache works afterwards. */
    assert_fsc_ok(fsc_clear(t->cache));
    assert_fsc_ok(fsc_set(t->cache, "after", 5, "x", 1));
    core_assert_value(t->cache, "after", 5, "x", 1);
}

static void test_expiration(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_options o = fsc_test_options();
    o.expiration_ms = 50;
    fsc_cache *short_lived = fsc_test_open(t->dir, &o);
    assert_fsc_ok(fsc_set(short_lived, "exp", 3, "v", 1));
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(t->cache, "exp", 3, &e));
    int64_t created = fsc_entry_created_ms(e);
    fsc_entry_free(e);

    /* Time itself is under test here, so waiting is the point. */
    while (tb_now_ms() <= created + 60) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    core_assert_miss(short_lived, "exp", 3);
    /* The value is still there for a handle whose values never expire:
     * the miss above comes from its age alone. */
    core_assert_value(t->cache, "exp", 3, "v", 1);
    fsc_close(short_lived);
}

static void test_reopen(void **state) {
    struct fsc_test_ctx *t = *state;
    unsigned char v[5000];
    tb_fill(v, sizeof v, 5);
    assert_fsc_ok(fsc_set(t->cache, "p1", 2, v, sizeof v));
    assert_fsc_ok(fsc_set(t->cache, "p\0 2", 4, "two", 3));
    assert_fsc_ok(fsc_set(t->cache, "p3", 2, NULL, 0));
    assert_fsc_ok(fsc_close(t->cache));
    t->cache = NULL;

    assert_fsc_ok(fsc_open(t->dir, NULL, &t->cache));
    core_assert_value(t->cache, "p1", 2, v, sizeof v);
    core_assert_value(t->cache, "p\0 2", 4, "two", 3);
    core_assert_value(t->cache, "p3", 2, "", 0);

    /* Another process sees the same values, and its sets reach us. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fsc_cache *c = NULL;
        child_check(fsc_open(t->dir, NULL, &c) == FSC_OK, 2);
        fsc_entry *e = NULL;
        child_check(fsc_get(c, "p1", 2, &e) == FSC_OK, 3);
        child_check(fsc_entry_size(e) == sizeof v, 4);
        child_check(memcmp(fsc_entry_data(e), v, sizeof v) == 0, 5);
        fsc_entry_free(e);
        child_check(fsc_set(c, "from child", 10, "hi", 2) == FSC_OK, 6);
        fsc_close(c);
        _exit(0);
    }
    assert_int_equal(tb_wait(pid), 0);
    core_assert_value(t->cache, "from child", 10, "hi", 2);
}

struct seen {
    int count;
    int visits[64];
    uint64_t sizes[64];
    int64_t min_created;
};

static int record_visit(void *ctx, const void *key, size_t key_len, uint64_t size, int64_t created_ms) {
    struct seen *s = ctx;
    int i = -1;
    /* Keys are "k" NUL <index byte>. */
    if (key_len == 3 && memcmp(key, "k\0", 2) == 0)
        i = ((const unsigned char *)key)[2];
    if (i < 0 || i >= 64)
        return -100; /* an unknown key: stop and say so */
    s->visits[i]++;
    s->sizes[i] = size;
    if (created_ms < s->min_created)
        s->min_created = created_ms;
    s->count++;
    return 0;
}

static int stop_at_first(void *ctx, const void *key, size_t key_len, uint64_t size, int64_t created_ms) {
    (void)key;
    (void)key_len;
    (void)size;
    (void)created_ms;
    (*(int *)ctx)++;
    return FSC_MISS; /* any non-zero stops; the walk's status is FSC_STOPPED, never this */
}

static void test_foreach(void **state) {
    struct fsc_test_ctx *t = *state;
    int64_t before = tb_now_ms();
    unsigned char v[64 * 3];
    tb_fill(v, sizeof v, 6);
    for (int i = 0; i < 40; i++) {
        unsigned char key[3] = {'k', 0, (unsigned char)i};
        assert_fsc_ok(fsc_set(t->cache, key, 3, v, (size_t)i * 3));
    }
    /* Deleted and overwritten keys are seen as they are now. */
    for (int i = 30; i < 40; i++) {
        unsigned char key[3] = {'k', 0, (unsigned char)i};
        assert_fsc_ok(fsc_delete(t->cache, key, 3));
    }
    unsigned char key5[3] = {'k', 0, 5};
    assert_fsc_ok(fsc_set(t->cache, key5, 3, v, 100));

    struct seen s;
    memset(&s, 0, sizeof s);
    s.min_created = INT64_MAX;
    assert_fsc_ok(fsc_foreach(t->cache, record_visit, &s));
    assert_int_equal(s.count, 30);
    for (int i = 0; i < 40; i++)
        assert_int_equal(s.visits[i], i < 30 ? 1 : 0);
    for (int i = 0; i < 30; i++)
        assert_int_equal(s.sizes[i], i == 5 ? 100 : (uint64_t)i * 3);
    assert_true(s.min_created >= before);
    assert_true(s.min_created <= tb_now_ms());

    int calls = 0;
    assert_int_equal(fsc_foreach(t->cache, stop_at_first, &calls), FSC_STOPPED);
    assert_int_equal(calls, 1);
}

/* The result structs as a program built against an older, smaller header
 * passes them: what fits is filled, nothing past out->size is written. */
struct old_statistics {
    size_t size;
    uint64_t entries, bytes;
    uint64_t canary[8];
};
struct old_verify_report {
    size_t size;
    uint64_t checked;
    uint64_t canary[4];
};

/* Words the call must have left as memset(0xab) made them. */
static void assert_untouched(const uint64_t *words, size_t n) {
    for (size_t i = 0; i < n; i++)
        assert_int_equal(words[i], 0xababababababababull);
}

static void test_older_result_structs(void **state) {
    struct fsc_test_ctx *t = *state;
    assert_fsc_ok(fsc_set(t->cache, "a", 1, "12345", 5));

    struct old_statistics st;
    memset(&st, 0xab, sizeof st);
    st.size = offsetof(struct old_statistics, canary);
    assert_fsc_ok(fsc_stats(t->cache, (fsc_statistics *)&st));
    assert_int_equal(st.entries, 1);
    assert_true(st.bytes >= 5);
    assert_untouched(st.canary, 8);

    struct old_verify_report vr;
    memset(&vr, 0xab, sizeof vr);
    vr.size = offsetof(struct old_verify_report, canary);
    assert_fsc_ok(fsc_verify(t->cache, 0, (fsc_verify_report *)&vr));
    assert_true(vr.checked >= 1);
    assert_untouched(vr.canary, 4);

    /* A newer, larger struct is filled as far as this version knows. */
    struct {
        fsc_statistics known;
        uint64_t future[2];
    } newer;
    memset(&newer, 0xab, sizeof newer);
    newer.known.size = sizeof newer;
    assert_fsc_ok(fsc_stats(t->cache, &newer.known));
    assert_int_equal(newer.known.entries, 1);
    assert_untouched(newer.future, 2);
    struct {
        fsc_verify_report known;
        uint64_t future[2];
    } newer_vr;
    memset(&newer_vr, 0xab, sizeof newer_vr);
    newer_vr.known.size = sizeof newer_vr;
    assert_fsc_ok(fsc_verify(t->cache, 0, &newer_vr.known));
    assert_true(newer_vr.known.checked >= 1);
    assert_untouched(newer_vr.future, 2);

    /* A size that covers no field is a mistake, not an old version. */
    st.size = 0;
    assert_int_equal(fsc_stats(t->cache, (fsc_statistics *)&st), FSC_EINVAL);
    vr.size = sizeof(size_t);
    assert_int_equal(fsc_verify(t->cache, 0, (fsc_verify_report *)&vr), FSC_EINVAL);
}

/* A cache on a local filesystem (the tests' tmpfs or disk) is not reported
 * as network; the struct of the version before network_fs keeps its bytes
 * past out->size. */
static void test_network_fs_local(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_statistics st;
    memset(&st, 0xab, sizeof st);
    st.size = sizeof st;
    assert_fsc_ok(fsc_stats(t->cache, &st));
    assert_int_equal(st.network_fs, 0);

    memset(&st, 0xab, sizeof st);
    st.size = offsetof(fsc_statistics, network_fs);
    assert_fsc_ok(fsc_stats(t->cache, &st));
    assert_int_equal(st.expirations, 0);
    assert_int_equal(st.network_fs, 0xababababu);

    /* Nor does it run in network mode by default (FSC_NETWORK_AUTO); the
     * struct of the version before network_mode keeps that word. */
    memset(&st, 0xab, sizeof st);
    st.size = sizeof st;
    assert_fsc_ok(fsc_stats(t->cache, &st));
    assert_int_equal(st.network_mode, 0);
    memset(&st, 0xab, sizeof st);
    st.size = offsetof(fsc_statistics, network_mode);
    assert_fsc_ok(fsc_stats(t->cache, &st));
    assert_int_equal(st.network_fs, 0);
    assert_int_equal(st.network_mode, 0xababababu);
}

static int make_value(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    (void)ctx;
    return fsc_set(c, key, key_len, "made", 4);
}

/* A handle opened with network_mode on the local test directory. */
static fsc_cache *open_network_mode(const char *dir, int mode) {
    fsc_options o = fsc_test_options();
    o.network_mode = mode;
    return fsc_test_open(dir, &o);
}

static uint32_t network_mode_of(fsc_cache *c) {
    fsc_statistics st;
    memset(&st, 0xab, sizeof st);
    st.size = sizeof st;
    assert_fsc_ok(fsc_stats(c, &st));
    assert_int_equal(st.network_fs, 0);
    return st.network_mode;
}

/* FSC_NETWORK_ON on a local directory: the handle runs in network mode and
 * works as any other; FSC_NETWORK_OFF is off. Values cross between them. */
static void test_network_mode_forced(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_cache *on = open_network_mode(t->dir, FSC_NETWORK_ON);
    fsc_cache *off = open_network_mode(t->dir, FSC_NETWORK_OFF);
    assert_int_equal(network_mode_of(on), 1);
    assert_int_equal(network_mode_of(off), 0);

    assert_fsc_ok(fsc_set(on, "k", 1, "network", 7));
    core_assert_value(on, "k", 1, "network", 7);
    core_assert_value(t->cache, "k", 1, "network", 7);
    assert_fsc_ok(fsc_set(off, "k2", 2, "local", 5));
    core_assert_value(on, "k2", 2, "local", 5);

    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get_or_create(on, "g", 1, -1, make_value, NULL, &e));
    assert_int_equal(fsc_entry_size(e), 4);
    assert_memory_equal(fsc_entry_data(e), "made", 4);
    fsc_entry_free(e);
    core_assert_value(t->cache, "g", 1, "made", 4);
    assert_fsc_ok(fsc_delete(on, "g", 1));
    core_assert_miss(t->cache, "g", 1);

    fsc_close(off);
    fsc_close(on);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        FSC_TEST(test_empty_value),
        FSC_TEST(test_one_byte),
        FSC_TEST(test_one_mib),
        FSC_TEST(test_three_mib),
        FSC_TEST(test_binary_keys),
        FSC_TEST(test_longest_key),
        FSC_TEST(test_overwrite_small),
        FSC_TEST(test_overwrite_large),
        FSC_TEST(test_delete),
        FSC_TEST(test_clear),
        FSC_TEST(test_expiration),
        FSC_TEST(test_reopen),
        FSC_TEST(test_foreach),
        FSC_TEST(test_older_result_structs),
        FSC_TEST(test_network_fs_local),
        FSC_TEST(test_network_mode_forced),
    };
    return cmocka_run_group_tests_name("core_roundtrip", tests, NULL, NULL);
}
