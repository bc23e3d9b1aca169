/* A shard table forged with valid checksums that names one key twice: once
 * where probes find it first, pointing at another key's record, and once
 * more, pointing at the key's real record. Whatever the handle did before
 * the table was forged, a set of the key is then what every get returns, a
 * delete makes it a miss, and no get ever returns bytes that were not the
 * key's latest value. The keys all live in shard b5. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fsc_format.h"
#include "fsc_test.h"

#define NKEYS 6
static const char *keys[NKEYS] = {"alpha", "beta-10", "gamma-208", "delta-41", "epsilon-360", "zeta-127"};
#define SLOT 64

static void spill(const char *path, const unsigned char *buf, size_t len) {
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static uint32_t u32_at(const unsigned char *p) { return (uint32_t)fmt_load_le(p, 4); }

/* The shard's pack file (its one "pack.*" file) and meta file. */
static void shard_files(const char *dir, char *pack, char *meta, size_t cap) {
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/shards/b5", dir);
    snprintf(meta, cap, "%s/meta", sub);
    DIR *d = opendir(sub);
    assert_non_null(d);
    struct dirent *de;
    pack[0] = 0;
    while ((de = readdir(d)) != NULL)
        if (!strncmp(de->d_name, "pack.", 5))
            snprintf(pack, cap, "%s/%s", sub, de->d_name);
    closedir(d);
    assert_true(pack[0] != 0);
}

/* Offset and length of key's live record in the pack image. */
static void record_of(const unsigned char *pack, size_t len, const char *key, uint64_t *off, uint64_t *rec_len) {
    for (size_t at = FMT_PACK_HEADER;;) {
        uint64_t n = fmt_pack_record_len(pack, len, at);
        assert_true(n > 0 && n <= len - at);
        uint32_t key_len = u32_at(pack + at + 8);
        if (!memcmp(pack + at, "FSCE", 4) && key_len == strlen(key) && !memcmp(pack + at + 64, key, key_len)) {
            *off = at;
            *rec_len = n;
            return;
        }
        at += (size_t)n;
    }
}

/* The index of the used slot naming the record at off. */
static uint32_t slot_naming(const unsigned char *meta, uint32_t cap, uint64_t off) {
    for (uint32_t i = 0; i < cap; i++) {
        const unsigned char *s = meta + SLOT * (i + 1);
        if (u32_at(s + 32) == 1 && u32_at(s + 36) == 1 && fmt_load64(s + 40) == off)
            return i;
    }
    fail_msg("no slot names the record at %llu", (unsigned long long)off);
    return 0;
}

static uint64_t home_word(const unsigned char *slot) { return fmt_load64(slot + 8); }

static void put_value(fsc_cache *c, const char *key, const char *value) {
    assert_fsc_ok(fsc_set(c, key, strlen(key), value, strlen(value)));
}

#define MAY_MISS 1
#define MAY_FAIL 2 /* FSC_ECORRUPT: the key's record was damaged */

/* The key reads exactly as want, or (want NULL, or MAY_MISS) is a miss. */
static void expect(fsc_cache *c, const char *key, const char *want, int may) {
    fsc_entry *e = NULL;
    int rc = fsc_get(c, key, strlen(key), &e);
    if (rc == FSC_MISS && (want == NULL || (may & MAY_MISS)))
        return;
    if (rc == FSC_ECORRUPT && (may & MAY_FAIL))
        return;
    assert_non_null(want);
    assert_int_equal(rc, FSC_OK);
    assert_int_equal(fsc_entry_size(e), strlen(want));
    assert_memory_equal(fsc_entry_data(e), want, strlen(want));
    fsc_entry_free(e);
}

static void fill(fsc_cache *c) {
    char v[64];
    for (int i = 0; i < NKEYS; i++) {
        snprintf(v, sizeof v, "v1-%s", keys[i]);
        put_value(c, keys[i], v);
    }
    for (int i = 0; i < NKEYS; i++) {
        snprintf(v, sizeof v, "v1-%s", keys[i]);
        expect(c, keys[i], v, 0); /* the handle has read the table */
    }
}

/* The shard after fill(): its files and their images (free() p and m). */
struct shard_image {
    char pack[4600], meta[4600];
    unsigned char *p, *m;
    size_t pack_len, meta_len;
};

static void load_shard(struct fsc_test_ctx *t, struct shard_image *sh) {
    fill(t->cache);
    shard_files(t->dir, sh->pack, sh->meta, sizeof sh->pack);
    sh->p = fsc_test_read_file(sh->pack, &sh->pack_len);
    sh->m = fsc_test_read_file(sh->meta, &sh->meta_len);
}

/* After the forgery: keys[k] gets a new value, loses it, and the other keys
 * (beta's record, keys[1], was named by the forged slot) read exactly or miss. */
static void check_after_forgery(fsc_cache *c, const char *dir, int k) {
    const char *key = keys[k];
    char v[64];
    snprintf(v, sizeof v, "v1-%s", key);
    expect(c, key, v, MAY_MISS);
    snprintf(v, sizeof v, "v2-%s", key);
    put_value(c, key, v);
    expect(c, key, v, 0);
    expect(c, keys[1], "v1-beta-10", MAY_MISS | MAY_FAIL);
    expect(c, keys[1], "v1-beta-10", MAY_MISS);
    fsc_cache *other;
    assert_fsc_ok(fsc_open(dir, NULL, &other));
    expect(other, key, v, 0);
    assert_fsc_ok(fsc_delete(c, key, strlen(key)));
    expect(c, key, NULL, 0);
    expect(other, key, NULL, 0);
    for (int i = 0; i < NKEYS; i++) {
        if (i == 1 || i == k)
            continue;
        snprintf(v, sizeof v, "v1-%s", keys[i]);
        expect(c, keys[i], v, 0);
        expect(other, keys[i], v, 0);
    }
    fsc_close(other);
}

/* The copy sits right after the first in the key's probe chain: when the
 * first is erased, a probe would go on to it. */
static void second_slot_further_along_the_chain(void **state) {
    struct fsc_test_ctx *t = *state;
    struct shard_image sh;
    load_shard(t, &sh);
    uint64_t alpha_off, alpha_len, beta_off, beta_len;
    record_of(sh.p, sh.pack_len, "alpha", &alpha_off, &alpha_len);
    record_of(sh.p, sh.pack_len, "beta-10", &beta_off, &beta_len);
    const uint32_t cap = u32_at(sh.m + 8);
    const uint32_t first = slot_naming(sh.m, cap, alpha_off);
    uint32_t next = (first + 1) % cap;
    while (u32_at(sh.m + SLOT * (next + 1) + 32) != 0)
        next = (next + 1) % cap;
    unsigned char *a = sh.m + SLOT * (first + 1), *b = sh.m + SLOT * (next + 1);
    memcpy(b, a, SLOT);                   /* the real one, second */
    fmt_store_le(a + 16, beta_len, 8);    /* the first names beta's record */
    fmt_store_le(a + 40, beta_off, 8);
    fmt_store_le(sh.m + 12, u32_at(sh.m + 12) + 1, 4);
    fmt_fix_meta_sums(sh.m, sh.meta_len);
    spill(sh.meta, sh.m, sh.meta_len);
    free(sh.p);
    free(sh.m);
    check_after_forgery(t->cache, t->dir, 0);
}

/* The table is forged twice as large: probes with the table size the handle
 * read before find the real slot at the key's old home, probes with the new
 * size find the one naming beta's record. */
static void second_slot_where_the_old_table_size_leads(void **state) {
    struct fsc_test_ctx *t = *state;
    struct shard_image sh;
    load_shard(t, &sh);
    uint64_t beta_off, beta_len, off, rec_len;
    record_of(sh.p, sh.pack_len, "beta-10", &beta_off, &beta_len);
    const uint32_t cap = u32_at(sh.m + 8), big = 2 * cap;
    /* The subject: a key whose home differs between the two table sizes. */
    int k = -1;
    uint32_t alpha = 0, old_home = 0;
    for (int i = 0; i < NKEYS && k < 0; i++) {
        if (i == 1)
            continue;
        record_of(sh.p, sh.pack_len, keys[i], &off, &rec_len);
        alpha = slot_naming(sh.m, cap, off);
        const uint64_t word = home_word(sh.m + SLOT * (alpha + 1));
        old_home = (uint32_t)(word % cap);
        if (old_home != (uint32_t)(word % big))
            k = i;
    }
    assert_true(k >= 0); /* holds for these keys' digests at this table size */

    size_t len = SLOT * ((size_t)big + 1);
    unsigned char *f = calloc(1, len);
    memcpy(f, sh.m, SLOT);
    fmt_store_le(f + 8, big, 4);
    uint32_t count = 0;
    /* The subject's real slot at its old home, the others at their new
     * homes, then its forged slot where a probe of the new size meets it. */
    memcpy(f + SLOT * (old_home + 1), sh.m + SLOT * (alpha + 1), SLOT);
    count++;
    for (uint32_t i = 0; i <= cap; i++) {
        const unsigned char *s = i < cap ? sh.m + SLOT * (i + 1) : sh.m + SLOT * (alpha + 1);
        if (i < cap && (u32_at(s + 32) != 1 || i == alpha))
            continue;
        uint32_t at = (uint32_t)(home_word(s) % big);
        while (u32_at(f + SLOT * (at + 1) + 32) != 0)
            at = (at + 1) % big;
        unsigned char *d = f + SLOT * (at + 1);
        memcpy(d, s, SLOT);
        if (i == cap) {
            fmt_store_le(d + 16, beta_len, 8);
            fmt_store_le(d + 40, beta_off, 8);
        }
        count++;
    }
    fmt_store_le(f + 12, count, 4);
    fmt_fix_meta_sums(f, len);
    int fd = open(sh.meta, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, f, len, 0), (ssize_t)len);
    close(fd);
    free(f);
    free(sh.p);
    free(sh.m);
    /* The handle still probes with the size it read: it finds the real slot. */
    char v[64];
    snprintf(v, sizeof v, "v1-%s", keys[k]);
    expect(t->cache, keys[k], v, 0);
    check_after_forgery(t->cache, t->dir, k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        FSC_TEST(second_slot_further_along_the_chain),
        FSC_TEST(second_slot_where_the_old_table_size_leads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
