/* The states a SIGKILL can leave between the steps of a set, a delete or an
 * eviction, made by hand so that each is checked every time (the torture
 * reaches them only by chance). After a fresh fsc_open the cache must verify
 * clean and its byte count must equal the files under shards/. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "fsc_test.h"
#include "torture_common.h"

static void find_payload(const char *dir, char *out, size_t cap) {
    /* The one payload file (name "<32 hex>.<16 hex>") under shards/. */
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "find '%s/shards' -type f -name '*.*' | head -1", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, (int)cap, p));
    out[strcspn(out, "\n")] = 0;
    pclose(p);
}

/* A crash inside a shard's critical section leaves its metadata marked
 * dirty. Here: the dirty word of the meta header set without fixing the
 * header's checksum, which recovery must treat the same way (the shard's
 * table is rebuilt from its files). */
static void mark_shard_dirty(const char *payload) {
    char meta[4300];
    snprintf(meta, sizeof meta, "%.*s/meta", (int)(strrchr(payload, '/') - payload), payload);
    int fd = open(meta, O_WRONLY);
    assert_true(fd >= 0);
    const uint32_t dirty = 1;
    assert_int_equal(pwrite(fd, &dirty, sizeof dirty, 20), (ssize_t)sizeof dirty);
    close(fd);
}

static void assert_clean_after_reopen(const char *dir) {
    fsc_cache *c;
    assert_fsc_ok(fsc_open(dir, NULL, &c));
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    assert_fsc_ok(fsc_verify(c, 0, &r));
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_fsc_ok(fsc_stats(c, &st));
    char shards[4200];
    snprintf(shards, sizeof shards, "%s/shards", dir);
    uint64_t disk = tree_bytes(shards, NULL);
    fsc_close(c);
    if (r.problems != 0 || st.bytes != disk)
        fail_msg("after reopen: %" PRIu64 " problems, stats bytes %" PRIu64 ", files under shards/ %" PRIu64,
                 r.problems, st.bytes, disk);
}

/* fsc_set_file over a value that had a payload: the new entry is committed,
 * then the old payload is unlinked while the shard is still marked dirty. A
 * kill just before that unlink leaves the old payload in a dirty shard. */
static void old_payload_left_by_replace(void **state) {
    char *dir = fsc_test_tempdir();
    fsc_cache *c;
    assert_fsc_ok(fsc_open(dir, NULL, &c));
    char src[4200];
    snprintf(src, sizeof src, "%s.src", dir);
    int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "payload bytes", 13, 0), 13);
    assert_fsc_ok(fsc_set_file(c, "k", 1, fd, NULL, 0));
    close(fd);
    unlink(src);
    fsc_close(c);

    char payload[4200], old[4300];
    find_payload(dir, payload, sizeof payload);
    /* The same entry's previous generation, as the replace left it. */
    snprintf(old, sizeof old, "%.*s0123456789abcdef", (int)(strlen(payload) - 16), payload);
    assert_int_equal(link(payload, old), 0);
    mark_shard_dirty(payload);

    assert_clean_after_reopen(dir);
    fsc_test_rmtree(dir);
    free(dir);
    (void)state;
}

/* fsc_delete (or an eviction) of a value with a payload: the entry and then
 * the payload are unlinked while the shard is marked dirty. */
static void payload_left_by_delete(void **state) {
    char *dir = fsc_test_tempdir();
    fsc_cache *c;
    assert_fsc_ok(fsc_open(dir, NULL, &c));
    char src[4200];
    snprintf(src, sizeof src, "%s.src", dir);
    int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "payload bytes", 13, 0), 13);
    assert_fsc_ok(fsc_set_file(c, "k", 1, fd, NULL, 0));
    close(fd);
    unlink(src);
    char payload[4200], keep[4300];
    find_payload(dir, payload, sizeof payload);
    snprintf(keep, sizeof keep, "%s.keep", dir);
    assert_int_equal(link(payload, keep), 0);
    assert_fsc_ok(fsc_delete(c, "k", 1));
    fsc_close(c);
    /* Put the payload back as the kill would have left it. */
    assert_int_equal(rename(keep, payload), 0);
    mark_shard_dirty(payload);

    assert_clean_after_reopen(dir);
    fsc_test_rmtree(dir);
    free(dir);
    (void)state;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(old_payload_left_by_replace),
        cmocka_unit_test(payload_left_by_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
