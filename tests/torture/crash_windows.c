/* The states a SIGKILL can leave between the steps of a set, a delete or an
 * eviction, made by hand so that each is checked every time (the torture
 * reaches them only by chance). After a fresh fsc_open the cache must verify
 * clean and its byte count must equal the files under shards/. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "fsc_format.h"
#include "fsc_test.h"
#include "torture_common.h"

/* Writes buf over the file's first len bytes, in place (open descriptors
 * keep reading the same file); truncates it to len when `cut`. */
static void overwrite(const char *path, const unsigned char *buf, size_t len, int cut) {
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
    if (cut)
        assert_int_equal(ftruncate(fd, (off_t)len), 0);
    close(fd);
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

/* A cache in dir whose key "k" holds a value with a payload file (set from
 * a descriptor). */
static fsc_cache *open_with_payload(const char *dir) {
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
    return c;
}

/* fsc_set_file over a value that had a payload: the new entry is committed,
 * then the old payload is unlinked while the shard is still marked dirty. A
 * kill just before that unlink leaves the old payload in a dirty shard. */
static void old_payload_left_by_replace(void **state) {
    char *dir = fsc_test_tempdir();
    fsc_cache *c = open_with_payload(dir);
    fsc_close(c);

    char payload[4200], old[4300];
    assert_int_not_equal(fmt_find(dir, FMT_PAYLOAD, payload, sizeof payload), 0);
    /* The same entry's previous generation, as the replace left it. */
    snprintf(old, sizeof old, "%.*s0123456789abcdef", (int)(strlen(payload) - 16), payload);
    assert_int_equal(link(payload, old), 0);
    mark_shard_dirty(payload);

    assert_clean_after_reopen(dir);
    tb_rmtree(dir);
    free(dir);
    (void)state;
}

/* fsc_delete (or an eviction) of a value with a payload: the entry and then
 * the payload are unlinked while the shard is marked dirty. */
static void payload_left_by_delete(void **state) {
    char *dir = fsc_test_tempdir();
    fsc_cache *c = open_with_payload(dir);
    char payload[4200], keep[4300];
    assert_int_not_equal(fmt_find(dir, FMT_PAYLOAD, payload, sizeof payload), 0);
    snprintf(keep, sizeof keep, "%s.keep", dir);
    assert_int_equal(link(payload, keep), 0);
    assert_fsc_ok(fsc_delete(c, "k", 1));
    fsc_close(c);
    /* Put the payload back as the kill would have left it. */
    assert_int_equal(rename(keep, payload), 0);
    mark_shard_dirty(payload);

    assert_clean_after_reopen(dir);
    tb_rmtree(dir);
    free(dir);
    (void)state;
}

/* A packed set appends its record past the end the table knows, then writes
 * the slot that names it: the commit. A kill in between leaves a dirty shard
 * whose pack holds the committed record and, after the table's end, the
 * newer one nobody committed. A repair that runs (from a process that keeps
 * the cache open) before the shard's next writer must keep the committed
 * value: the uncommitted record is not a later set that wins. */
static void record_in_flight_survives_repair(void **state) {
    char *dir = fsc_test_tempdir();
    fsc_cache *c;
    assert_fsc_ok(fsc_open(dir, NULL, &c));
    assert_fsc_ok(fsc_set(c, "k", 1, "committed", 9));
    char pack[4200], meta[4300];
    assert_int_not_equal(fmt_find(dir, FMT_PACK, pack, sizeof pack), 0);
    snprintf(meta, sizeof meta, "%.*s/meta", (int)(strrchr(pack, '/') - pack), pack);
    size_t old_len, new_len, meta_len;
    unsigned char *old_pack = fsc_test_read_file(pack, &old_len), *old_meta = fsc_test_read_file(meta, &meta_len);
    /* The old record dies and its pack is compacted into a new one. */
    assert_fsc_ok(fsc_set(c, "k", 1, "in flight", 9));
    assert_int_not_equal(fmt_find(dir, FMT_PACK, pack, sizeof pack), 0);
    unsigned char *new_pack = fsc_test_read_file(pack, &new_len);
    assert_int_equal(new_len, old_len); /* both records are as long */

    /* The new pack holds the committed record, then the new one; the table
     * is the old one naming that pack, marked dirty by the change the kill
     * interrupted. */
    unsigned char *image = malloc(old_len + new_len);
    memcpy(image, new_pack, FMT_PACK_HEADER);
    memcpy(image + FMT_PACK_HEADER, old_pack + FMT_PACK_HEADER, old_len - FMT_PACK_HEADER);
    memcpy(image + old_len, new_pack + FMT_PACK_HEADER, old_len - FMT_PACK_HEADER); /* new_len == old_len */
    overwrite(pack, image, old_len + new_len - FMT_PACK_HEADER, 0);
    const uint32_t dirty = 1;
    memcpy(old_meta + 20, &dirty, sizeof dirty);
    memcpy(old_meta + 32, new_pack + 16, 8); /* the pack's generation */
    fmt_fix_meta_sums(old_meta, meta_len);
    overwrite(meta, old_meta, meta_len, 1);
    free(image);
    free(new_pack);

    fsc_verify_report r = {sizeof r, 0, 0, 0};
    assert_fsc_ok(fsc_verify(c, 1, &r));
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(c, "k", 1, &e));
    assert_int_equal(fsc_entry_size(e), 9);
    assert_memory_equal(fsc_entry_data(e), "committed", 9);
    fsc_entry_free(e);
    fsc_close(c);

    assert_clean_after_reopen(dir);
    free(old_pack);
    free(old_meta);
    tb_rmtree(dir);
    free(dir);
    (void)state;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(old_payload_left_by_replace),
        cmocka_unit_test(payload_left_by_delete),
        cmocka_unit_test(record_in_flight_survives_repair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
