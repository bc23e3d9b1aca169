/* Shared by the fuzz targets: a private cache directory in /dev/shm (or
 * $TMPDIR when /dev/shm is missing), removed at exit, and small helpers. */
#ifndef FSC_FUZZ_COMMON_H
#define FSC_FUZZ_COMMON_H

#include "fsc.h"
#include "fsc_format.h"
#include "test_base.h"

static char fz_root[512];

static inline void fz_cleanup(void) {
    if (fz_root[0])
        tb_rmtree(fz_root);
}

/* The work directory, created once per process. */
static inline const char *fz_dir(void) {
    if (!fz_root[0]) {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(fz_root, sizeof fz_root, "%s/fsc-fuzz-%d", base, (int)getpid());
        tb_rmtree(fz_root);
        mkdir(fz_root, 0700);
        atexit(fz_cleanup);
    }
    return fz_root;
}

/* Writes data as the file at path: create adds O_CREAT. */
static inline void fz_put(const char *path, const void *data, size_t len, int create) {
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | create, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    if (len && write(fd, data, len) != (ssize_t)len) {
        perror(path);
        abort();
    }
    close(fd);
}

/* A new file at path (a new inode: descriptors open on the old one still
 * read the old bytes). */
static inline void fz_write(const char *path, const void *data, size_t len) {
    unlink(path);
    fz_put(path, data, len, O_CREAT);
}

/* Writes over path in place: same name and inode, so the descriptors the
 * cache keeps open read the new bytes too. */
static inline void fz_overwrite(const char *path, const void *data, size_t len) { fz_put(path, data, len, 0); }

/* A finding: print and abort, so libFuzzer saves the input. */
#define FZ_ASSERT(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz check failed: %s: ", #cond);                                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " [%s]\n", fsc_errmsg());                                              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Exactly want[0..len) or a miss (or, when allow_err, a negative status). */
static inline void fz_get_exact_or_miss(fsc_cache *c, const void *key, size_t key_len, const void *want, size_t len,
                                 int allow_err) {
    fsc_entry *e = NULL;
    int rc = fsc_get(c, key, key_len, &e);
    if (rc == FSC_OK) {
        FZ_ASSERT(fsc_entry_size(e) == len, "FSC_OK with %llu bytes, %zu were stored",
                  (unsigned long long)fsc_entry_size(e), len);
        const void *d = fsc_entry_data(e);
        FZ_ASSERT(d != NULL, "fsc_entry_data failed after FSC_OK");
        FZ_ASSERT(memcmp(d, want, len) == 0, "FSC_OK with bytes that differ from what was set");
        /* The sequential reader must agree too. */
        unsigned char buf[4096];
        size_t got, total = 0;
        uint64_t off = fsc_entry_offset(e);
        int r;
        while ((r = fsc_entry_read(e, buf, sizeof buf, &got)) == FSC_OK && got > 0) {
            FZ_ASSERT(off + total + got <= len, "fsc_entry_read past the value");
            FZ_ASSERT(memcmp(buf, (const char *)want + off + total, got) == 0, "fsc_entry_read gave other bytes");
            total += got;
        }
        FZ_ASSERT(r == FSC_OK || r == FSC_ECORRUPT || r == FSC_EIO, "fsc_entry_read gave %d", r);
        fsc_entry_free(e);
        return;
    }
    FZ_ASSERT(rc == FSC_MISS || (allow_err && rc < 0), "fsc_get gave %s", fsc_strerror(rc));
}

/* A repair (fsc_verify(1), whatever it reports) leaves a cache that
 * fsc_verify(0) finds clean. */
static inline void fz_repair_clean(fsc_cache *c) {
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    (void)fsc_verify(c, 1, &r);
    r.problems = 0;
    FZ_ASSERT(fsc_verify(c, 0, &r) == FSC_OK && r.problems == 0, "%llu problems after a repair",
              (unsigned long long)r.problems);
}

/* base becomes <work dir>/cache, with nothing there yet. */
static inline void fz_fresh_base(char *base, size_t cap) {
    snprintf(base, cap, "%s/cache", fz_dir());
    tb_rmtree(base);
}

/* The input's first byte picks the variant (bits of a mode); the rest is
 * the file image. size must be at least 1. */
static inline unsigned fz_take_mode(const uint8_t **data, size_t *size) {
    const unsigned mode = (*data)[0];
    (*data)++;
    (*size)--;
    return mode;
}

/* A cache opened at base and filled by fill with keys all chosen for one
 * shard, and the path of that shard's pack file. */
static inline fsc_cache *fz_open_packed(const char *base, void (*fill)(fsc_cache *c), char *pack, size_t cap) {
    fsc_cache *c;
    FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "open");
    fill(c);
    char shards[600];
    snprintf(shards, sizeof shards, "%s/shards", base);
    const int n = tb_dir_count(shards);
    FZ_ASSERT(n == 1, "the keys are not in one shard");
    FZ_ASSERT(fmt_find(base, FMT_PACK, pack, cap) > 0, "no pack file");
    return c;
}

/* The fuzz input as a file image to write (free() it). With live_path, adopt
 * stamps it first from the live file there (its bytes, len). */
typedef void (*fz_adopt_fn)(unsigned char *img, size_t len, const unsigned char *live, size_t live_len);
static inline unsigned char *fz_image(const uint8_t *data, size_t size, const char *live_path, fz_adopt_fn adopt) {
    unsigned char *img = malloc(size + 1);
    memcpy(img, data, size);
    if (live_path) {
        size_t live_len = 0;
        unsigned char *live = tb_read_file(live_path, &live_len);
        FZ_ASSERT(live != NULL, "read the live file '%s'", live_path);
        adopt(img, size, live, live_len);
        free(live);
    }
    return img;
}

#endif
