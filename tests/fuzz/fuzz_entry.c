/* Entry files: the fuzz input replaces the entry file of a key stored through
 * the API (byte 0 chooses: bit 0 recompute the header checksum so the fields
 * behind it are reached; bit 1 the key was stored with fsc_set_file, so a
 * payload file exists; bit 2 reopen the cache before reading). Then fsc_get
 * must give the stored bytes or a miss/error, and foreach, stats and verify
 * must not crash; after fsc_verify(repair=1) the cache must verify clean.
 * The cache is opened with pack_limit = 0, so that a value stored with
 * fsc_set gets an entry file of its own instead of a record in its shard's
 * pack file (packs are fuzz_pack's). */
#include "fuzz_common.h"

static const char value[] = "the value stored through the API, 48 bytes long.";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    fsc_options opts;
    fsc_options_init(&opts);
    opts.pack_limit = 0;
    const char *root = fz_dir();
    char base[600], entry[1000], src[700];
    snprintf(src, sizeof src, "%s/src", root);
    fz_fresh_base(base, sizeof base);
    const unsigned mode = fz_take_mode(&data, &size);
    fsc_cache *c;
    FZ_ASSERT(fsc_open(base, &opts, &c) == FSC_OK, "open");
    if (mode & 2) {
        fz_write(src, value, sizeof value - 1);
        FZ_ASSERT(fsc_set_file(c, "key", 3, -1, src, 0) == FSC_OK, "set_file");
    } else {
        FZ_ASSERT(fsc_set(c, "key", 3, value, sizeof value - 1) == FSC_OK, "set");
    }
    FZ_ASSERT(fmt_find(base, FMT_ENTRY, entry, sizeof entry) > 0, "no entry file");
    unsigned char *img = malloc(size + 1);
    memcpy(img, data, size);
    if (mode & 1)
        fmt_fix_entry_sum(img, size);
    fz_write(entry, img, size);
    free(img);
    if (mode & 4) {
        fsc_close(c);
        FZ_ASSERT(fsc_open(base, &opts, &c) == FSC_OK, "reopen");
    }
    fz_get_exact_or_miss(c, "key", 3, value, sizeof value - 1, 1);
    tb_read_everything(c);
    fz_repair_clean(c);
    fz_get_exact_or_miss(c, "key", 3, value, sizeof value - 1, 1);
    FZ_ASSERT(fsc_set(c, "key", 3, "new", 3) == FSC_OK, "set over the damaged entry");
    fz_get_exact_or_miss(c, "key", 3, "new", 3, 0);
    fsc_close(c);
    return 0;
}
