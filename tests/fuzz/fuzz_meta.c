/* Shard metadata: the fuzz input replaces shards/<xx>/meta of a shard holding
 * values stored through the API. The keys all hash to one shard (0xb5), so
 * that the table holds them all; their small values are records in the
 * shard's pack file, through which the shard is found. Byte 0 chooses:
 *  bit 0  recompute the header and slot checksums;
 *  bit 1  reopen before reading (else the handle that stored the values
 *         reads on: the image is written over the table in place, so its
 *         descriptor reads the image);
 *  bit 2  adopt: stamp the image's header with the live pack's generation
 *         (bytes 32..39), and each of its used slots that holds a stored key's
 *         digest with the creation time of that key's live slot, fixing the
 *         checksums of what it stamps, so that a table taken from another
 *         cache (seed images are) can name this cache's pack and records.
 * Reads give the stored bytes or a miss; sets into the shard work;
 * foreach/stats/verify do not crash; after fsc_verify(repair=1) the cache
 * verifies clean and the values still read back exactly or miss. The input
 * is capped so that a table stays small. */
#include "fuzz_common.h"

#define NKEYS 6
static const char *keys[NKEYS] = {"alpha", "beta-10", "gamma-208", "delta-41", "epsilon-360", "zeta-127"};

/* The values the harness stores (each key's own bytes): also what the seed
 * images were taken from. */
static void fill(fsc_cache *c) {
    for (int i = 0; i < NKEYS; i++)
        FZ_ASSERT(fsc_set(c, keys[i], strlen(keys[i]), keys[i], strlen(keys[i])) == FSC_OK, "set");
}

/* Bit 2: the live table (live, live_len bytes) lends the image its pack
 * generation and its slots' creation times. */
static void adopt(unsigned char *img, size_t len, const unsigned char *live, size_t live_len) {
    if (live_len < 64)
        return;
    if (len >= 40) {
        memcpy(img + 32, live + 32, 8);
        if (len >= 64)
            fmt_store_le(img + 56, fmt_checksum64(img, 56, 0), 8);
    }
    for (size_t at = 64; at + 64 <= len; at += 64) {
        if (fmt_load_le(img + at + 32, 4) != 1)
            continue;
        for (size_t l = 64; l + 64 <= live_len; l += 64) {
            if (fmt_load_le(live + l + 32, 4) == 1 && memcmp(img + at, live + l, 16) == 0) {
                memcpy(img + at + 24, live + l + 24, 8);
                fmt_store_le(img + at + 48, fmt_checksum64(img + at, 48, 0), 8);
                break;
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 64 * 1024)
        return 0;
    char base[600], pack[1000], meta[1100];
    fz_fresh_base(base, sizeof base);
    const unsigned mode = fz_take_mode(&data, &size);
    fsc_cache *c = fz_open_packed(base, fill, pack, sizeof pack);
    snprintf(meta, sizeof meta, "%.*s/meta", (int)(strrchr(pack, '/') - pack), pack);
    unsigned char *img = fz_image(data, size, (mode & 4) ? meta : NULL, adopt);
    if (mode & 1)
        fmt_fix_meta_sums(img, size);
    fz_overwrite(meta, img, size);
    free(img);
    if (mode & 2) {
        fsc_close(c);
        FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "reopen: %s", fsc_errmsg());
    }
    for (int i = 0; i < NKEYS; i++)
        fz_get_exact_or_miss(c, keys[i], strlen(keys[i]), keys[i], strlen(keys[i]), 1);
    tb_read_everything(c);
    int rc = fsc_set(c, keys[0], strlen(keys[0]), "ALPHA", 5);
    FZ_ASSERT(rc == FSC_OK || rc < 0, "set gave %d", rc);
    if (rc == FSC_OK)
        fz_get_exact_or_miss(c, keys[0], strlen(keys[0]), "ALPHA", 5, 0);
    (void)fsc_delete(c, keys[1], strlen(keys[1]));
    fz_get_exact_or_miss(c, keys[1], strlen(keys[1]), "", 0, 1);
    (void)fsc_prune(c);
    fz_repair_clean(c);
    for (int i = 2; i < NKEYS; i++)
        fz_get_exact_or_miss(c, keys[i], strlen(keys[i]), keys[i], strlen(keys[i]), 0);
    fsc_close(c);
    return 0;
}
