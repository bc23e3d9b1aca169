/* The files a cache writes, byte for byte, against images written by hand
 * from docs/FORMAT.md: an entry file, a pack file, a shard's table and the
 * lock file's records. Every integer is little-endian and every checksum is
 * over the bytes as stored, so a cache reads the same on hosts of either
 * byte order. Times vary: each is checked to lie within the test's run and
 * then taken into the image; everything else is fixed by the keys and
 * values. */
#include <sodium.h>
#include <time.h>

#include "fsc_test.h"
#include "core_test.h"
#include "fsc_format.h"

#define IMAGE_MAX 8192

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Fills value with the bytes of seed and stores it under key; returns the
 * time just before the set (a lower bound of the times it records). */
static int64_t set_filled(fsc_cache *c, const char *key, unsigned char *value, size_t len, uint64_t seed) {
    tb_fill(value, len, seed);
    const int64_t from = now_us();
    assert_fsc_ok(fsc_set(c, key, strlen(key), value, len));
    return from;
}

/* The 16-byte BLAKE2b digest that names a key's files. */
static void digest_of(const char *key, unsigned char out[16]) {
    assert_true(sodium_init() >= 0);
    crypto_generichash(out, 16, (const unsigned char *)key, strlen(key), NULL, 0);
}

/* base/shards/<first byte of the digest>/name */
static void shard_path(char *out, const char *base, const unsigned char digest[16], const char *name) {
    int n = snprintf(out, TB_PATH_MAX, "%s/shards/%02x/%s", base, digest[0], name);
    assert_true(n > 0 && n < TB_PATH_MAX);
}

static void entry_name(char out[33], const unsigned char digest[16]) {
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* The whole file; fails the test if it is missing or larger than IMAGE_MAX. */
static size_t read_image(const char *path, unsigned char *out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    ssize_t n = tb_read_all(fd, out, IMAGE_MAX);
    close(fd);
    assert_true(n >= 0 && n < IMAGE_MAX);
    return (size_t)n;
}

static void assert_image(const unsigned char *got, size_t got_len, const unsigned char *want, size_t want_len,
                         const char *what) {
    if (got_len != want_len)
        fail_msg("%s: %zu bytes, want %zu", what, got_len, want_len);
    for (size_t i = 0; i < want_len; i++)
        if (got[i] != want[i])
            fail_msg("%s: byte %zu is 0x%02x, want 0x%02x", what, i, got[i], want[i]);
}

/* The time (µs, 8 bytes) at got + at, checked to lie in [from, to]. */
static int64_t time_at(const unsigned char *got, size_t at, int64_t from, int64_t to) {
    const int64_t t = (int64_t)fmt_load_le(got + at, 8);
    if (t < from || t > to)
        fail_msg("the time at byte %zu, %lld, is not within [%lld, %lld]", at, (long long)t, (long long)from,
                 (long long)to);
    return t;
}

/* Places a 64-byte entry header, the key and the value at out; returns the
 * record's length. created: taken from got, the file's bytes at the same place. */
static size_t put_record(unsigned char *out, const unsigned char *got, const char *key, const unsigned char *value,
                         size_t len, int64_t from, int64_t to) {
    const size_t key_len = strlen(key);
    fmt_entry_header(out, 0, key, (uint32_t)key_len, len, 0, time_at(got, 32, from, to), 0,
                     fmt_value_sum(value, len));
    memcpy(out + 64, key, key_len);
    memcpy(out + 64 + key_len, value, len);
    return 64 + key_len + len;
}

/* A shard's table holding one value: a header and four slots, the value's in
 * the slot its digest's word picks (FORMAT.md, "Shard metadata"). */
static void check_meta(const char *base, const unsigned char digest[16], uint64_t charge, int packed,
                       uint64_t where, uint64_t pack_gen, uint64_t pack_end, int64_t from, int64_t to) {
    char path[TB_PATH_MAX];
    unsigned char got[IMAGE_MAX], want[64 + 4 * 64] = {0};
    shard_path(path, base, digest, "meta");
    const size_t n = read_image(path, got);
    memcpy(want, "FSCM", 4);
    fmt_store_le(want + 4, 2, 2);  /* version */
    fmt_store_le(want + 6, 0, 2);  /* rewrites */
    fmt_store_le(want + 8, 4, 4);  /* capacity */
    fmt_store_le(want + 12, 1, 4); /* used; no tombstones, not dirty */
    fmt_store_le(want + 24, charge, 8);
    fmt_store_le(want + 32, pack_gen, 8);
    fmt_store_le(want + 40, pack_end, 8);
    /* The other slots: empty, all zeros in a new table. */
    unsigned char *slot = want + 64 + 64 * (fmt_load_le(digest + 8, 8) % 4);
    memcpy(slot, digest, 16);
    fmt_store_le(slot + 16, charge, 8);
    const size_t at = (size_t)(slot - want);
    fmt_store_le(slot + 24, (uint64_t)time_at(got, at + 24, from, to), 8);
    fmt_store_le(slot + 32, 1, 4); /* used */
    fmt_store_le(slot + 36, (uint64_t)packed, 4);
    fmt_store_le(slot + 40, where, 8);
    fmt_store_le(slot + 48, fmt_checksum64(slot, 48, 0), 8);
    fmt_store_le(slot + 56, (uint64_t)time_at(got, at + 56, from, to), 8);
    fmt_store_le(want + 56, fmt_checksum64(want, 56, 0), 8);
    assert_image(got, n, want, sizeof want, "meta");
}

/* An fsc_set value in an entry file of its own (pack_limit 0). */
static void test_entry_file(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *key = "codec image: entry";
    unsigned char value[300], digest[16], got[IMAGE_MAX], want[IMAGE_MAX];
    const int64_t from = set_filled(t->cache, key, value, sizeof value, 1);
    const int64_t to = now_us();

    digest_of(key, digest);
    char name[33], path[TB_PATH_MAX];
    entry_name(name, digest);
    shard_path(path, t->dir, digest, name);
    const size_t n = read_image(path, got);
    const size_t len = put_record(want, got, key, value, sizeof value, from, to);
    assert_image(got, n, want, len, "entry file");
    check_meta(t->dir, digest, len, 0, 0, 0, 0, from, to);
}

/* The one pack file in the shard; its gen is the name's hex. */
static uint64_t find_pack(const char *base, const unsigned char digest[16], char *path) {
    char dir[TB_PATH_MAX];
    shard_path(dir, base, digest, "");
    DIR *d = opendir(dir);
    assert_non_null(d);
    uint64_t gen = 0;
    int found = 0;
    struct dirent *f;
    while ((f = readdir(d))) {
        if (strncmp(f->d_name, "pack.", 5) == 0 && strlen(f->d_name) == 21 && tb_is_hex(f->d_name + 5, 16)) {
            gen = strtoull(f->d_name + 5, NULL, 16);
            core_join(path, dir, f->d_name);
            found++;
        }
    }
    closedir(d);
    assert_int_equal(found, 1);
    return gen;
}

/* An fsc_set value packed: the pack file's header and its one record. */
static void test_pack_file(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *key = "codec image: packed";
    unsigned char value[100], digest[16], got[IMAGE_MAX], want[IMAGE_MAX] = {0};
    const int64_t from = set_filled(t->cache, key, value, sizeof value, 2);
    const int64_t to = now_us();

    digest_of(key, digest);
    char path[TB_PATH_MAX];
    const uint64_t gen = find_pack(t->dir, digest, path);
    const size_t n = read_image(path, got);
    memcpy(want, "FSCP", 4);
    fmt_store_le(want + 4, 1, 2); /* version */
    fmt_store_le(want + 8, (uint64_t)time_at(got, 8, from, to), 8); /* a new pack's sequence number */
    fmt_store_le(want + 16, gen, 8);
    fmt_store_le(want + 56, fmt_checksum64(want, 56, 0), 8);
    const size_t len = put_record(want + FMT_PACK_HEADER, got + FMT_PACK_HEADER, key, value, sizeof value, from, to);
    assert_image(got, n, want, FMT_PACK_HEADER + len, "pack file");
    check_meta(t->dir, digest, len, 1, FMT_PACK_HEADER, gen, FMT_PACK_HEADER + len, from, to);
}

/* The lock file: invalidation times, no horizon, the counters, and every
 * shard's line (FORMAT.md, "Shared records in the lock file"). */
static void test_lock_file(void **state) {
    struct fsc_test_ctx *t = *state;
    const char *key = "codec image: lock";
    unsigned char value[200], digest[16], got[IMAGE_MAX], want[FMT_LOCK_LEN] = {0};
    const int64_t from = set_filled(t->cache, key, value, sizeof value, 3);
    core_assert_value(t->cache, key, strlen(key), value, sizeof value);
    core_assert_miss(t->cache, "absent", 6);
    assert_fsc_ok(fsc_invalidate(t->cache, 0));
    assert_fsc_ok(fsc_invalidate(t->cache, 1));
    assert_fsc_ok(fsc_close(t->cache)); /* writes the counters */
    t->cache = NULL;
    const int64_t to = now_us();

    char path[TB_PATH_MAX];
    core_join(path, t->dir, "lock");
    const size_t n = read_image(path, got);
    memcpy(want, "FSCI", 4);
    fmt_store_le(want + 8, (uint64_t)time_at(got, 8, from, to), 8);   /* hard */
    fmt_store_le(want + 16, (uint64_t)time_at(got, 16, from, to), 8); /* soft */
    assert_true(fmt_load_le(got + 8, 8) >= fmt_load_le(got + 16, 8)); /* hard came last */
    memcpy(want + 64, "FSCT", 4);
    fmt_store_le(want + 68, 2, 4); /* version */
    const uint64_t counters[7] = {1, 1, 1, 0, 0, 0, 0}; /* hits, misses, sets, the rest none */
    for (size_t i = 0; i < 7; i++)
        fmt_store_le(want + 72 + 8 * i, counters[i], 8);
    /* The shard's charge: the packed record, the pack header and the table. */
    digest_of(key, digest);
    shard_path(path, t->dir, digest, "meta");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    unsigned char *line = want + FMT_LOCK_LINE_AT(digest[0]);
    fmt_store_le(line, 64 + strlen(key) + sizeof value + FMT_PACK_HEADER + (uint64_t)st.st_size, 8);
    fmt_store_le(line + 8, 1, 8);
    fmt_fix_lock_sums(want, sizeof want);
    fmt_store_le(want + 40, 0, 8); /* no horizon: 16 zero bytes */
    assert_image(got, n, want, sizeof want, "lock file");
}

/* An eviction's LRU horizon: the evicted value's last use, then the checksum
 * of those 8 bytes as stored. */
static void test_lru_horizon(void **state) {
    (void)state;
    char *dir = fsc_test_tempdir();
    assert_non_null(dir);
    fsc_options o = fsc_test_options();
    o.cache_size = 2000;
    o.pack_limit = 0;
    fsc_cache *c = fsc_test_open(dir, &o);
    unsigned char value[1000];
    tb_fill(value, sizeof value, 4);
    const int64_t from = now_us();
    assert_fsc_ok(fsc_set(c, "codec image: first", 18, value, sizeof value));
    assert_fsc_ok(fsc_set(c, "codec image: second", 19, value, sizeof value));
    const int64_t to = now_us();
    core_assert_miss(c, "codec image: first", 18);
    assert_fsc_ok(fsc_close(c));

    char path[TB_PATH_MAX];
    unsigned char got[IMAGE_MAX], want[48] = {0};
    core_join(path, dir, "lock");
    assert_int_equal(read_image(path, got), FMT_LOCK_LEN);
    fmt_store_le(want + 32, (uint64_t)time_at(got, 32, from, to), 8);
    fmt_fix_lock_sums(want, sizeof want);
    assert_image(got + 32, 16, want + 32, 16, "LRU horizon");
    tb_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        FSC_TEST_UNPACKED(test_entry_file),
        FSC_TEST(test_pack_file),
        FSC_TEST(test_lock_file),
        cmocka_unit_test(test_lru_horizon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
