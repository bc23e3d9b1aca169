/* Shard metadata: the fuzz input replaces shards/<xx>/meta of a shard holding
 * values stored through the API (byte 0 bit 0: recompute the header and slot
 * checksums; bit 1: reopen before reading). Reads give the stored bytes or a
 * miss; sets into the shard work; foreach/stats/verify do not crash; after
 * fsc_verify(repair=1) the cache verifies clean and the values still read
 * back exactly or miss. The input is capped so that a table stays small. */
#include "fuzz_common.h"

#define NKEYS 6
static const char *keys[NKEYS] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 64 * 1024)
        return 0;
    const char *root = fz_dir();
    char base[600], entry[1000], meta[1100];
    snprintf(base, sizeof base, "%s/cache", root);
    fz_rmtree(base);
    unsigned mode = data[0];
    data++;
    size--;
    fsc_cache *c;
    FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "open");
    /* Every key in one shard would be ideal; any shard with an entry will do. */
    for (int i = 0; i < NKEYS; i++)
        FZ_ASSERT(fsc_set(c, keys[i], strlen(keys[i]), keys[i], strlen(keys[i])) == FSC_OK, "set");
    FZ_ASSERT(fz_find(base, 0, entry, sizeof entry) == 0, "no entry");
    snprintf(meta, sizeof meta, "%.*s/meta", (int)(strrchr(entry, '/') - entry), entry);
    unsigned char *img = malloc(size + 1);
    memcpy(img, data, size);
    if (mode & 1)
        fmt_fix_meta_sums(img, size);
    fz_write(meta, img, size);
    free(img);
    if (mode & 2) {
        fsc_close(c);
        FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "reopen: %s", fsc_errmsg());
    }
    for (int i = 0; i < NKEYS; i++)
        fz_get_exact_or_miss(c, keys[i], strlen(keys[i]), keys[i], strlen(keys[i]), 1);
    fz_exercise(c);
    int rc = fsc_set(c, "alpha", 5, "ALPHA", 5);
    FZ_ASSERT(rc == FSC_OK || rc < 0, "set gave %d", rc);
    if (rc == FSC_OK)
        fz_get_exact_or_miss(c, "alpha", 5, "ALPHA", 5, 0);
    (void)fsc_delete(c, "beta", 4);
    fz_get_exact_or_miss(c, "beta", 4, "", 0, 1);
    (void)fsc_prune(c);
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    (void)fsc_verify(c, 1, &r);
    r.problems = 0;
    FZ_ASSERT(fsc_verify(c, 0, &r) == FSC_OK && r.problems == 0, "%llu problems after a repair",
              (unsigned long long)r.problems);
    for (int i = 2; i < NKEYS; i++)
        fz_get_exact_or_miss(c, keys[i], strlen(keys[i]), keys[i], strlen(keys[i]), 0);
    fsc_close(c);
    return 0;
}
