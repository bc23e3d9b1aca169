/* A full filesystem and a read-only one: a 4 MiB tmpfs, mounted in a private
 * mount namespace (exit 77, skipped, where mounting is not allowed).
 *  - filled up, sets fail with FSC_ENOSPC; a failed set leaves the old value
 *    or a miss, never a partial one; earlier values stay readable; nothing is
 *    left in tmp/; the cache verifies clean and its byte count matches disk;
 *  - once space is freed, sets work again;
 *  - remounted read-only, fsc_open gives FSC_EACCES naming the path (or opens
 *    and serves reads), and a remount under an open cache is refused by the
 *    kernel (the lock file is open for writing), never half-applied. */

#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsc.h"
#include "../torture/torture_common.h"

static long passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " [%s]\n", fsc_errmsg());                                              \
        }                                                                                          \
    } while (0)

static char mnt[4096], base[4200], tmpdir[4300], shards[4300];

/* A value for (key number, version): self-checking, of the given length. */
static unsigned char *value(uint32_t k, uint64_t version, size_t len) {
    unsigned char *b = malloc(TV_HEAD + len);
    tv_fill(b, k, version, len);
    return b;
}

/* The key holds exactly (k, version, len), or misses when version == 0. */
static int holds(fsc_cache *c, const char *key, uint32_t k, uint64_t version, size_t len) {
    fsc_entry *e;
    int rc = fsc_get(c, key, strlen(key), &e);
    if (version == 0)
        return rc == FSC_MISS;
    if (rc != FSC_OK)
        return 0;
    unsigned char *want = value(k, version, len);
    int same = fsc_entry_size(e) == TV_HEAD + len && memcmp(fsc_entry_data(e), want, TV_HEAD + len) == 0;
    free(want);
    fsc_entry_free(e);
    return same;
}

/* Whole old, whole new, or a miss: never anything else. */
static void old_new_or_miss(fsc_cache *c, const char *key, uint32_t k, uint64_t oldv, size_t oldlen, uint64_t newv,
                            size_t newlen, int rc_of_set) {
    fsc_entry *e;
    int rc = fsc_get(c, key, strlen(key), &e);
    if (rc == FSC_MISS) {
        CHECK(1, " ");
        return;
    }
    CHECK(rc == FSC_OK, "get %s after a failed set: %s", key, fsc_strerror(rc));
    if (rc != FSC_OK)
        return;
    uint32_t vk;
    uint64_t seq;
    const unsigned char *d = fsc_entry_data(e);
    int whole = d && tv_check(d, fsc_entry_size(e), &vk, &seq) == 0 && vk == k;
    CHECK(whole, "get %s after a failed set: a partial or foreign value of %" PRIu64 " bytes", key, fsc_entry_size(e));
    if (whole) {
        CHECK(seq == oldv || seq == newv, "get %s: version %" PRIu64 " was never stored", key, seq);
        CHECK(seq != newv || rc_of_set == FSC_OK,
              "get %s: the new value is visible although its set returned %s", key, fsc_strerror(rc_of_set));
        (void)oldlen;
        (void)newlen;
    }
    fsc_entry_free(e);
}

static void check_consistent(fsc_cache *c, const char *when) {
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    int rc = fsc_verify(c, 0, &r);
    CHECK(rc == FSC_OK && r.problems == 0, "%s: fsc_verify: %s, %" PRIu64 " problems", when, fsc_strerror(rc),
          r.problems);
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK(fsc_stats(c, &st) == FSC_OK, "stats");
    uint64_t disk = tree_bytes(shards, NULL);
    CHECK(st.bytes == disk, "%s: stats bytes %" PRIu64 ", files under shards/ %" PRIu64, when, st.bytes, disk);
    CHECK(tb_dir_count(tmpdir) == 0, "%s: %d files left in tmp/", when, tb_dir_count(tmpdir));
}

#define KEEP 8
#define KEEP_LEN 3000

static int fill_phase(void) {
    fsc_cache *c;
    if (fsc_open(base, NULL, &c) != FSC_OK) {
        fprintf(stderr, "fsc_open: %s\n", fsc_errmsg());
        return 1;
    }
    char key[64];
    for (uint32_t k = 0; k < KEEP; k++) {
        snprintf(key, sizeof key, "keep-%u", k);
        unsigned char *v = value(k, 1, KEEP_LEN);
        CHECK(fsc_set(c, key, strlen(key), v, TV_HEAD + KEEP_LEN) == FSC_OK, "set %s", key);
        free(v);
    }
    /* Fill: big values, then smaller, then tiny, until ENOSPC at each size. */
    uint32_t fills = 0;
    int last_rc = FSC_OK;
    const size_t sizes[] = {256 * 1024, 16 * 1024, 1024, 0};
    uint64_t fill_len[4096];
    for (size_t s = 0; s < 4; s++) {
        for (;;) {
            if (fills >= 4000)
                break;
            snprintf(key, sizeof key, "fill-%u", fills);
            unsigned char *v = value(1000 + fills, 1, sizes[s]);
            int rc = fsc_set(c, key, strlen(key), v, TV_HEAD + sizes[s]);
            free(v);
            if (rc != FSC_OK) {
                last_rc = rc;
                CHECK(rc == FSC_ENOSPC, "set %s on a full filesystem gave %s, want FSC_ENOSPC", key,
                      fsc_strerror(rc));
                CHECK(strlen(fsc_errmsg()) > 0, "FSC_ENOSPC without a message");
                old_new_or_miss(c, key, 1000 + fills, 0, 0, 1, sizes[s], rc);
                /* A failed new key must not linger as a value. */
                fsc_entry *e;
                int g = fsc_get(c, key, strlen(key), &e);
                if (g == FSC_OK)
                    fsc_entry_free(e);
                else
                    CHECK(g == FSC_MISS, "get of a key whose set failed: %s", fsc_strerror(g));
                break;
            }
            fill_len[fills++] = sizes[s];
        }
    }
    printf("filled with %u values; the last set gave %s\n", fills, fsc_strerror(last_rc));
    CHECK(last_rc == FSC_ENOSPC, "the filesystem never filled up");

    /* Full: replacing a value fails and leaves the old one. */
    for (uint32_t k = 0; k < KEEP; k++) {
        snprintf(key, sizeof key, "keep-%u", k);
        unsigned char *v = value(k, 2, 200 * 1024);
        int rc = fsc_set(c, key, strlen(key), v, TV_HEAD + 200 * 1024);
        free(v);
        CHECK(rc == FSC_ENOSPC, "replacing %s on a full filesystem gave %s", key, fsc_strerror(rc));
        old_new_or_miss(c, key, k, 1, KEEP_LEN, 2, 200 * 1024, rc);
    }
    /* fsc_set_file from a file outside the full filesystem. */
    char src[] = "/tmp/fsc-fulldisk-src-XXXXXX";
    int fd = mkstemp(src);
    unsigned char *big = value(77, 1, 300 * 1024);
    CHECK(fd >= 0 && pwrite(fd, big, TV_HEAD + 300 * 1024, 0) == TV_HEAD + 300 * 1024, "write source");
    int rc = fsc_set_file(c, "file", 4, fd, NULL, 0);
    CHECK(rc == FSC_ENOSPC, "set_file on a full filesystem gave %s", fsc_strerror(rc));
    old_new_or_miss(c, "file", 77, 0, 0, 1, 300 * 1024, rc);
    /* Earlier values are all still there. */
    for (uint32_t k = 0; k < KEEP; k++) {
        snprintf(key, sizeof key, "keep-%u", k);
        CHECK(holds(c, key, k, 1, KEEP_LEN), "%s lost or changed on a full filesystem", key);
    }
    for (uint32_t f = 0; f < fills; f++) {
        snprintf(key, sizeof key, "fill-%u", f);
        CHECK(holds(c, key, 1000 + f, 1, fill_len[f]), "%s lost or changed", key);
    }
    check_consistent(c, "full");

    /* Free space: delete the big fills; sets work again. */
    for (uint32_t f = 0; f < fills; f++)
        if (fill_len[f] >= 16 * 1024) {
            snprintf(key, sizeof key, "fill-%u", f);
            CHECK(fsc_delete(c, key, strlen(key)) == FSC_OK, "delete %s", key);
        }
    for (uint32_t k = 0; k < KEEP; k++) {
        snprintf(key, sizeof key, "keep-%u", k);
        unsigned char *v = value(k, 3, 20 * 1024);
        CHECK(fsc_set(c, key, strlen(key), v, TV_HEAD + 20 * 1024) == FSC_OK, "set %s after freeing space", key);
        free(v);
        CHECK(holds(c, key, k, 3, 20 * 1024), "%s after freeing space", key);
    }
    rc = fsc_set_file(c, "file", 4, fd, NULL, 0);
    CHECK(rc == FSC_OK, "set_file after freeing space: %s", fsc_strerror(rc));
    CHECK(holds(c, "file", 77, 1, 300 * 1024), "file value after freeing space");
    close(fd);
    unlink(src);
    free(big);
    check_consistent(c, "after freeing space");
    fsc_close(c);
    return 0;
}

/* In a child: opens the cache (read-only filesystem) and reports. */
static int readonly_phase(void) {
    fsc_cache *c = NULL;
    int rc = fsc_open(base, NULL, &c);
    if (rc == FSC_OK) {
        printf("read-only: fsc_open succeeded; reads must work, writes fail with FSC_EACCES\n");
        char key[64];
        for (uint32_t k = 0; k < KEEP; k++) {
            snprintf(key, sizeof key, "keep-%u", k);
            CHECK(holds(c, key, k, 3, 20 * 1024), "read %s on a read-only filesystem", key);
        }
        unsigned char *v = value(0, 4, 10);
        rc = fsc_set(c, "keep-0", 6, v, TV_HEAD + 10);
        free(v);
        CHECK(rc == FSC_EACCES, "set on a read-only filesystem gave %s", fsc_strerror(rc));
        CHECK(strstr(fsc_errmsg(), base) != NULL, "the message '%s' does not name the cache", fsc_errmsg());
        CHECK(holds(c, "keep-0", 0, 3, 20 * 1024), "keep-0 after a refused set");
        fsc_close(c);
    } else {
        printf("read-only: fsc_open gave %s: %s\n", fsc_strerror(rc), fsc_errmsg());
        CHECK(rc == FSC_EACCES, "fsc_open on a read-only filesystem gave %s, want FSC_EACCES", fsc_strerror(rc));
        CHECK(strstr(fsc_errmsg(), base) != NULL, "the message '%s' does not name the cache", fsc_errmsg());
    }
    printf("%ld passed, %ld failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(mnt, sizeof mnt, "%s/fsc-fulldisk-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(mnt)) {
        perror("mkdtemp");
        return 1;
    }
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700") != 0) {
        printf("SKIP: cannot mount a tmpfs here (%s): needs root or CAP_SYS_ADMIN\n", strerror(errno));
        rmdir(mnt);
        return 77;
    }
    snprintf(base, sizeof base, "%s/cache", mnt);
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", base);
    snprintf(shards, sizeof shards, "%s/shards", base);

    /* Each phase in a child: the lock file's descriptor (open for writing)
     * must be gone before a read-only remount can succeed. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int r = fill_phase();
        printf("full disk: %ld passed, %ld failed\n", passed, failed);
        fflush(stdout);
        _exit(r ? 1 : failed ? 1 : 0);
    }
    int code = tb_wait(pid);
    CHECK(code == 0, "the full-disk phase failed (exit code %d)", code);

    /* A remount under an open cache: the kernel refuses (busy). */
    int go[2], ready[2];
    if (pipe(go) != 0 || pipe(ready) != 0)
        return 1;
    pid = fork();
    if (pid == 0) {
        close(go[1]);
        close(ready[0]);
        fsc_cache *c;
        int ok = fsc_open(base, NULL, &c) == FSC_OK;
        char b = ok ? 'y' : 'n';
        if (write(ready[1], &b, 1) != 1)
            _exit(2);
        if (read(go[0], &b, 1) < 0)
            _exit(2);
        int held = ok && holds(c, "keep-1", 1, 3, 20 * 1024);
        fsc_close(c);
        _exit(held ? 0 : 1);
    }
    close(go[0]);
    close(ready[1]);
    char b = 0;
    CHECK(read(ready[0], &b, 1) == 1 && b == 'y', "the cache did not open");
    int r = mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL);
    printf("remount read-only with the cache open: %s\n", r == 0 ? "done" : strerror(errno));
    if (r == 0)
        CHECK(1, " ");
    else
        CHECK(errno == EBUSY, "remount: %s", strerror(errno));
    CHECK(write(go[1], "g", 1) == 1, "go");
    CHECK(tb_wait(pid) == 0, "reads after the remount attempt failed");
    if (r == 0)
        mount(NULL, mnt, NULL, MS_REMOUNT, NULL);

    /* Read-only with no process holding it open. */
    CHECK(mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0, "remount ro: %s", strerror(errno));
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        _exit(readonly_phase());
    code = tb_wait(pid);
    CHECK(code == 0, "the read-only phase failed (exit code %d)", code);

    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed ? 1 : 0;
}
