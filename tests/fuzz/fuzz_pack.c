/* Pack files: the fuzz input replaces the pack file of a shard holding values
 * stored through the API. The keys all hash to one shard (0xc8): six small
 * values are records in the shard's pack (one key was set twice, so the pack
 * also holds a dead record, and one value is empty), and a large one has an
 * entry file of its own. Byte 0 chooses:
 *  bit 0  recompute the checksums of the pack header and of every record
 *         (fmt_fix_pack_sums), so that the parser gets past them;
 *  bit 1  reopen the cache before reading;
 *  bit 2  the image goes in under its own name, pack.<the generation at bytes
 *         16..23>, and the pack file goes: the table names a pack that is
 *         gone, so the shard is rebuilt from its files. Clear: the image is
 *         written over the pack file in place (same name and inode, so the
 *         descriptors the cache keeps open read it too);
 *  bit 3  adopt (before bit 0's fix): stamp the image with the live pack's
 *         generation and, in each record of a stored key, the creation time
 *         of that key's live record, fixing the checksums of what it stamps,
 *         so that the table's slots name the image's records (seed images are
 *         taken from another cache) and gets parse them.
 * Then: each key's get gives the bytes stored, a miss or FSC_ECORRUPT;
 * foreach, stats, verify and prune do not crash; a set into the shard works
 * and reads back; after fsc_verify(repair=1), fsc_verify(0) finds nothing and
 * every key reads back exactly or misses. "The bytes stored" also admits the
 * value of a record of that key that the image itself holds ("FSCE", the
 * key, the value): with bit 0 the input can forge any record, and a record
 * with valid checksums is a value like any other (a rebuild adopts it). */
#include "fuzz_common.h"

#define NKEYS 7
static const char *keys[NKEYS] = {"red", "green-88", "blue-29", "cyan-911", "magenta-203", "yellow-23", "black-36"};
static const size_t lens[NKEYS] = {1, 0, 17, 100, 300, 1000, 5000}; /* black-36's is not packed */
static unsigned char values[NKEYS][5000];

static const char *after_value = "red, set again after the damage";

/* The values the harness stores: also what the seed images were taken from. */
static void fill(fsc_cache *c) {
    for (int i = 0; i < NKEYS; i++)
        for (size_t j = 0; j < lens[i]; j++)
            values[i][j] = (unsigned char)('a' + (i * 7 + j) % 26);
    FZ_ASSERT(fsc_set(c, keys[5], strlen(keys[5]), "old", 3) == FSC_OK, "set");
    for (int i = 0; i < NKEYS; i++)
        FZ_ASSERT(fsc_set(c, keys[i], strlen(keys[i]), values[i], lens[i]) == FSC_OK, "set");
}

/* Whether img holds a record of key whose value is want[0..len). */
static int image_has(const unsigned char *img, size_t img_len, const char *key, const void *want, size_t len) {
    const size_t klen = strlen(key);
    if (img_len < 64 + klen + len)
        return 0;
    for (size_t at = 0; at + 64 + klen + len <= img_len; at++) {
        if (memcmp(img + at, "FSCE", 4) != 0)
            continue;
        const uint64_t key_len = fmt_load_le(img + at + 8, 4), value_size = fmt_load_le(img + at + 16, 8);
        if (key_len == klen && value_size == len && memcmp(img + at + 64, key, klen) == 0 &&
            memcmp(img + at + 64 + klen, want, len) == 0)
            return 1;
    }
    return 0;
}

/* The key's get: a miss, FSC_ECORRUPT when allow_corrupt, or FSC_OK with
 * want[0..len) or with the value of a record of the key in img. must_hit:
 * only FSC_OK with want will do. */
static void check_get(fsc_cache *c, const char *key, const void *want, size_t len, const unsigned char *img,
                      size_t img_len, int allow_corrupt, int must_hit) {
    fsc_entry *e = NULL;
    int rc = fsc_get(c, key, strlen(key), &e);
    if (rc != FSC_OK) {
        FZ_ASSERT(!must_hit, "get '%s' after its set gave %s", key, fsc_strerror(rc));
        FZ_ASSERT(rc == FSC_MISS || (allow_corrupt && rc == FSC_ECORRUPT), "get '%s' gave %s", key,
                  fsc_strerror(rc));
        return;
    }
    const uint64_t size = fsc_entry_size(e);
    const unsigned char *d = fsc_entry_data(e);
    FZ_ASSERT(d != NULL, "fsc_entry_data failed after FSC_OK");
    const int stored = size == len && memcmp(d, want, len) == 0;
    FZ_ASSERT(stored || (!must_hit && size <= img_len && image_has(img, img_len, key, d, (size_t)size)),
              "get '%s' gave %llu bytes that were neither stored nor a record of the key in the image", key,
              (unsigned long long)size);
    /* The sequential reader must agree. */
    unsigned char buf[4096];
    size_t got, total = 0;
    int r;
    while ((r = fsc_entry_read(e, buf, sizeof buf, &got)) == FSC_OK && got > 0) {
        FZ_ASSERT(total + got <= size, "fsc_entry_read past the value");
        FZ_ASSERT(memcmp(buf, d + total, got) == 0, "fsc_entry_read gave other bytes than fsc_entry_data");
        total += got;
    }
    FZ_ASSERT(r == FSC_OK && total == size, "fsc_entry_read gave %d after %zu of %llu bytes", r, total,
              (unsigned long long)size);
    fsc_entry_free(e);
}

/* The creation time of the key's live record in the pack image p (0: none). */
static int64_t live_created(const unsigned char *p, size_t len, const char *key) {
    const size_t klen = strlen(key);
    for (size_t at = FMT_PACK_HEADER;;) {
        uint64_t rec = fmt_pack_record_len(p, len, at);
        if (rec == 0 || rec > len - at)
            return 0;
        const uint64_t key_len = fmt_load_le(p + at + 8, 4);
        if (memcmp(p + at, "FSCE", 4) == 0 && key_len == klen && memcmp(p + at + 64, key, klen) == 0)
            return (int64_t)fmt_load_le(p + at + 32, 8);
        at += (size_t)rec;
    }
}

/* Bit 3: the live pack (live, live_len bytes) lends the image its generation
 * and its records' creation times. */
static void adopt(unsigned char *img, size_t len, const unsigned char *live, size_t live_len) {
    if (live_len < FMT_PACK_HEADER)
        return;
    if (len >= 24) {
        memcpy(img + 16, live + 16, 8);
        if (len >= 64)
            fmt_store_le(img + 56, fmt_checksum64(img, 56, 0), 8);
    }
    for (size_t at = FMT_PACK_HEADER;;) {
        uint64_t rec = fmt_pack_record_len(img, len, at);
        if (rec == 0)
            return;
        const uint64_t key_len = fmt_load_le(img + at + 8, 4);
        for (int i = 0; i < NKEYS; i++) {
            const size_t klen = strlen(keys[i]);
            if (key_len == klen && len - at >= 64 + klen && memcmp(img + at + 64, keys[i], klen) == 0) {
                int64_t created = live_created(live, live_len, keys[i]);
                if (created) {
                    fmt_store_le(img + at + 32, (uint64_t)created, 8);
                    fmt_fix_record_sum(img, len, at);
                }
                break;
            }
        }
        if (rec > len - at)
            return;
        at += (size_t)rec;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 64 * 1024)
        return 0;
    char base[600], pack[1000];
    fz_fresh_base(base, sizeof base);
    const unsigned mode = fz_take_mode(&data, &size);
    fsc_cache *c = fz_open_packed(base, fill, pack, sizeof pack);

    unsigned char *img = fz_image(data, size, (mode & 8) ? pack : NULL, adopt);
    if (mode & 1)
        fmt_fix_pack_sums(img, size);
    if (mode & 4) {
        const uint64_t gen = size >= 24 ? fmt_load_le(img + 16, 8) : 0;
        char named[1100];
        snprintf(named, sizeof named, "%.*s/pack.%016llx", (int)(strrchr(pack, '/') - pack), pack,
                 (unsigned long long)gen);
        unlink(pack);
        fz_write(named, img, size);
    } else {
        fz_overwrite(pack, img, size);
    }
    if (mode & 2) {
        fsc_close(c);
        FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "reopen: %s", fsc_errmsg());
    }

    for (int i = 0; i < NKEYS; i++)
        check_get(c, keys[i], values[i], lens[i], img, size, 1, 0);
    tb_read_everything(c);
    (void)fsc_prune(c);
    for (int i = 0; i < NKEYS; i++)
        check_get(c, keys[i], values[i], lens[i], img, size, 1, 0);

    /* A set into the damaged shard works and reads back. */
    FZ_ASSERT(fsc_set(c, keys[0], strlen(keys[0]), after_value, strlen(after_value)) == FSC_OK, "set '%s'",
              keys[0]);
    check_get(c, keys[0], after_value, strlen(after_value), img, size, 0, 1);

    fz_repair_clean(c);
    check_get(c, keys[0], after_value, strlen(after_value), img, size, 0, 0);
    for (int i = 1; i < NKEYS; i++)
        check_get(c, keys[i], values[i], lens[i], img, size, 0, 0);
    tb_read_everything(c);
    fsc_close(c);
    free(img);
    return 0;
}
