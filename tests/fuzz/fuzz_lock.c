/* The lock file's records: the fuzz input (up to 256 bytes) overwrites the
 * start of base_dir/lock (invalidation record at 0, totals at 64) of a closed
 * cache (byte 0 bit 0: recompute the records' checksums). Then fsc_open,
 * reads (exact or miss: a forged invalidation time may hide values), stats,
 * sets and verify must not crash, and a value set afterwards must read back
 * exactly unless the forged record invalidated it. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 257)
        return 0;
    const char *root = fz_dir();
    char base[600], lock[700];
    snprintf(base, sizeof base, "%s/cache", root);
    snprintf(lock, sizeof lock, "%s/lock", base);
    fz_rmtree(base);
    unsigned mode = data[0];
    data++;
    size--;
    fsc_cache *c;
    FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "open");
    FZ_ASSERT(fsc_set(c, "k", 1, "value", 5) == FSC_OK, "set");
    FZ_ASSERT(fsc_invalidate(c, 0) == FSC_OK, "invalidate");
    FZ_ASSERT(fsc_set(c, "k", 1, "value", 5) == FSC_OK, "set");
    fsc_close(c);
    unsigned char img[256];
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
    fz_get_exact_or_miss(c, "k", 1, "value", 5, 1);
    fz_exercise(c);
    rc = fsc_set(c, "n", 1, "new", 3);
    FZ_ASSERT(rc == FSC_OK || rc < 0, "set gave %d", rc);
    fz_get_exact_or_miss(c, "n", 1, "new", 3, 1);
    (void)fsc_invalidate(c, 0);
    (void)fsc_prune(c);
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    (void)fsc_verify(c, 1, &r);
    r.problems = 0;
    FZ_ASSERT(fsc_verify(c, 0, &r) == FSC_OK && r.problems == 0, "%llu problems after a repair",
              (unsigned long long)r.problems);
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    FZ_ASSERT(fsc_stats(c, &st) == FSC_OK, "stats");
    fsc_close(c);
    return 0;
}
