/* The lock file's records, all of them: the fuzz input (up to FMT_LOCK_LEN
 * bytes: invalidation record at 0, LRU horizon at 32, totals at 64, the
 * shards' lines from 256) overwrites the start of base_dir/lock of a closed
 * cache. Byte 0 of the input is a mode: bit 0 recomputes every record's
 * checksum (forged values then pass them), bit 1 writes the whole region
 * (zeros past the input), bit 2 truncates the file to the input's length.
 * Then fsc_open, alone with the cache, must count it exactly as its shards
 * hold it (whatever the lines said); reads give the exact value or a miss (a
 * forged invalidation time may hide values); stats, sets, prune and verify
 * must not crash, and a value set afterwards must read back exactly. */
#include "fuzz_common.h"

static fsc_statistics fz_stats(fsc_cache *c) {
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    FZ_ASSERT(fsc_stats(c, &st) == FSC_OK, "stats: %s", fsc_errmsg());
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > FMT_LOCK_LEN + 1)
        return 0;
    char base[600], lock[700];
    fz_fresh_base(base, sizeof base);
    snprintf(lock, sizeof lock, "%s/lock", base);
    const unsigned mode = fz_take_mode(&data, &size);
    fsc_cache *c;
    FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "open");
    FZ_ASSERT(fsc_set(c, "k", 1, "value", 5) == FSC_OK, "set");
    FZ_ASSERT(fsc_invalidate(c, 0) == FSC_OK, "invalidate");
    FZ_ASSERT(fsc_set(c, "k", 1, "value", 5) == FSC_OK, "set");
    FZ_ASSERT(fsc_set(c, "other", 5, "other value", 11) == FSC_OK, "set");
    const fsc_statistics held = fz_stats(c);
    fsc_close(c);
    static unsigned char img[FMT_LOCK_LEN];
    memset(img, 0, sizeof img);
    memcpy(img, data, size);
    if (mode & 1)
        fmt_fix_lock_sums(img, sizeof img);
    int fd = open(lock, O_WRONLY | O_CLOEXEC);
    FZ_ASSERT(fd >= 0, "open lock");
    FZ_ASSERT(pwrite(fd, img, (mode & 2) ? sizeof img : size, 0) >= 0, "write lock");
    if (mode & 4)
        FZ_ASSERT(ftruncate(fd, (off_t)size) == 0, "truncate lock");
    close(fd);
    c = NULL;
    int rc = fsc_open(base, NULL, &c);
    if (rc != FSC_OK) {
        FZ_ASSERT(rc < 0, "open gave %d", rc);
        return 0;
    }
    /* Alone at open: every line was set again from its shard. */
    const fsc_statistics now = fz_stats(c);
    FZ_ASSERT(now.bytes == held.bytes && now.entries == held.entries,
              "counted %llu bytes in %llu entries, the shards hold %llu in %llu", (unsigned long long)now.bytes,
              (unsigned long long)now.entries, (unsigned long long)held.bytes, (unsigned long long)held.entries);
    fz_get_exact_or_miss(c, "k", 1, "value", 5, 1);
    tb_read_everything(c);
    rc = fsc_set(c, "n", 1, "new", 3);
    FZ_ASSERT(rc == FSC_OK, "set gave %d (%s)", rc, fsc_errmsg());
    fz_get_exact_or_miss(c, "n", 1, "new", 3, 0);
    (void)fsc_invalidate(c, 0);
    (void)fsc_prune(c);
    fz_repair_clean(c);
    fz_stats(c);
    fsc_close(c);
    return 0;
}
