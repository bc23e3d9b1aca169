/* The format marker: the fuzz input is base_dir/FSC-FORMAT of an otherwise
 * valid cache. fsc_open must refuse it (FSC_EFORMAT, or another error) or
 * open a cache that stores and returns values exactly. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096)
        return 0;
    char base[600], marker[700];
    fz_fresh_base(base, sizeof base);
    snprintf(marker, sizeof marker, "%s/FSC-FORMAT", base);
    fsc_cache *c;
    FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "open");
    FZ_ASSERT(fsc_set(c, "k", 1, "v1", 2) == FSC_OK, "set");
    fsc_close(c);
    fz_write(marker, data, size);
    c = NULL;
    int rc = fsc_open(base, NULL, &c);
    if (rc != FSC_OK) {
        FZ_ASSERT(rc < 0 && c == NULL, "fsc_open gave %d and wrote *out", rc);
        FZ_ASSERT(fsc_errmsg()[0] != 0, "an error without a message");
        return 0;
    }
    FZ_ASSERT(size == 19 && memcmp(data, "fsc-cache-format 3\n", 19) == 0, "opened with a foreign marker");
    fz_get_exact_or_miss(c, "k", 1, "v1", 2, 0);
    FZ_ASSERT(fsc_set(c, "k", 1, "v2", 2) == FSC_OK, "set");
    fz_get_exact_or_miss(c, "k", 1, "v2", 2, 0);
    fsc_close(c);
    return 0;
}
