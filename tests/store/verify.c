/* fsc_verify finds what a crash or a hand edit left behind (orphan payloads,
 * entries missing from the metadata, metadata without data, damaged entry
 * files, wrong totals): verify(0) reports and changes nothing, verify(1)
 * repairs, and then the cache verifies clean with totals equal to the disk.
 * A shard whose meta file is destroyed keeps working and is rebuilt. */
#include "store_test.h"

#define KEYS 48

/* Where each key's entry file is: shards/<shard>/<hex>. */
struct located {
    char key[32];
    char shard[8];
    char hex[40];
    int is_file; /* stored with fsc_set_file: it has a payload file */
};

struct names {
    char (*v)[48];
    int n, cap;
};

static int add_name(const char *shard_dir, const char *name, int kind, void *ctx) {
    struct names *ns = ctx;
    if (kind != FMT_ENTRY)
        return 0;
    const char *shard = strrchr(shard_dir, '/') + 1;
    if (ns->n == ns->cap) {
        ns->cap = ns->cap ? 2 * ns->cap : 64;
        ns->v = realloc(ns->v, sizeof *ns->v * (size_t)ns->cap);
    }
    snprintf(ns->v[ns->n++], sizeof ns->v[0], "%s/%s", shard, name);
    return 0;
}

static int has_name(const struct names *ns, const char *s) {
    for (int i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i], s) == 0)
            return 1;
    return 0;
}

/* Sets a new key and finds the entry file that appeared for it. */
static void set_and_locate(fsc_cache *c, const char *dir, const char *key, size_t len, int as_file,
                           struct located *out) {
    struct names before = {0}, after = {0};
    fmt_each_file(dir, add_name, &before);
    if (as_file) {
        char path[TB_PATH_MAX];
        snprintf(path, sizeof path, "%s.src", dir);
        assert_int_equal(st_write_value_file(path, key, len), 0);
        assert_fsc_ok(fsc_set_file(c, key, strlen(key), -1, path, FSC_MOVE));
    } else {
        assert_fsc_ok(st_set(c, key, len));
    }
    fmt_each_file(dir, add_name, &after);
    int found = 0;
    for (int i = 0; i < after.n; i++) {
        if (has_name(&before, after.v[i]))
            continue;
        found++;
        const char *slash = strchr(after.v[i], '/');
        snprintf(out->shard, sizeof out->shard, "%.*s", (int)(slash - after.v[i]), after.v[i]);
        snprintf(out->hex, sizeof out->hex, "%s", slash + 1);
    }
    assert_int_equal(found, 1);
    snprintf(out->key, sizeof out->key, "%s", key);
    out->is_file = as_file;
    free(before.v);
    free(after.v);
}

struct vctx {
    char *dir;
    fsc_cache *c;
    struct located keys[KEYS];
};

static int verify_setup(void **state) {
    struct vctx *t = calloc(1, sizeof *t);
    t->dir = fsc_test_tempdir();
    if (!t->dir)
        return -1;
    /* These cases damage entry files; tests/store/pack.c damages packs. */
    t->c = st_open_with(t->dir, 64 << 20, 0, -1, 0);
    if (!t->c)
        return -1;
    for (int i = 0; i < KEYS; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        set_and_locate(t->c, t->dir, key, 500 + 97 * (size_t)i, i % 3 == 2, &t->keys[i]);
    }
    *state = t;
    return 0;
}

static int verify_teardown(void **state) {
    struct vctx *t = *state;
    fsc_close(t->c);
    tb_rmtree(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

static void path_of(char *out, const struct vctx *t, const char *shard, const char *name) {
    snprintf(out, TB_PATH_MAX, "%s/shards/%s/%s", t->dir, shard, name);
}

/* Overwrites n bytes at the start of path with seeded garbage (n 0: the
 * file's own size), keeping the file (the same inode). */
static void garble(const char *path, size_t n, uint64_t seed) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if (n == 0)
        n = (size_t)st.st_size;
    unsigned char *buf = malloc(n);
    tb_fill(buf, n, seed);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, n, 0), (ssize_t)n);
    close(fd);
    free(buf);
}

/* The index of a key whose shard holds at least `at_least` of our keys. */
static int busy_shard_key(const struct vctx *t, int at_least, int want_file) {
    for (int i = 0; i < KEYS; i++) {
        if (want_file >= 0 && t->keys[i].is_file != want_file)
            continue;
        int n = 0;
        for (int j = 0; j < KEYS; j++)
            n += strcmp(t->keys[i].shard, t->keys[j].shard) == 0;
        if (n >= at_least)
            return i;
    }
    return -1;
}

/* verify(0): problems, nothing changed; verify(1): repaired; verify(0): clean,
 * totals equal to the disk. Returns the problems first found. */
static uint64_t verify_cycle(struct vctx *t, const char *what) {
    int rc;
    uint64_t print = st_fingerprint(t->dir);
    fsc_statistics s0 = st_stats(t->c);
    fsc_verify_report v0 = st_verify(t->c, 0, &rc);
    assert_fsc_ok(rc);
    fprintf(stderr, "%s: verify(0) checked %llu, problems %llu, repaired %llu\n", what,
            (unsigned long long)v0.checked, (unsigned long long)v0.problems, (unsigned long long)v0.repaired);
    if (v0.problems == 0)
        fail_msg("%s: verify(0) found no problem", what);
    assert_int_equal(v0.repaired, 0);
    if (st_fingerprint(t->dir) != print)
        fail_msg("%s: verify(0) changed files of the cache", what);
    fsc_statistics s1 = st_stats(t->c);
    assert_int_equal(s1.bytes, s0.bytes);
    assert_int_equal(s1.entries, s0.entries);

    fsc_verify_report v1 = st_verify(t->c, 1, &rc);
    assert_fsc_ok(rc);
    fprintf(stderr, "%s: verify(1) problems %llu, repaired %llu\n", what, (unsigned long long)v1.problems,
            (unsigned long long)v1.repaired);
    assert_true(v1.problems > 0);
    assert_true(v1.repaired > 0);

    fsc_verify_report v2 = st_verify(t->c, 0, &rc);
    assert_fsc_ok(rc);
    if (v2.problems != 0)
        fail_msg("%s: verify(0) after the repair still finds %llu problems", what, (unsigned long long)v2.problems);
    fsc_statistics s = st_stats(t->c);
    uint64_t disk = st_disk_bytes(t->dir);
    if (s.bytes != disk)
        fail_msg("%s: after the repair fsc_stats().bytes is %llu, the disk holds %llu", what,
                 (unsigned long long)s.bytes, (unsigned long long)disk);
    assert_int_equal(s.entries, st_foreach_count(t->c));
    return v0.problems;
}

/* Every key except those in skip[] (NULL-terminated indexes) is whole. */
static void expect_keys(struct vctx *t, int skip_a, int skip_b) {
    for (int i = 0; i < KEYS; i++) {
        if (i == skip_a || i == skip_b)
            continue;
        if (st_check(t->c, t->keys[i].key, NULL) != 1)
            fail_msg("'%s' (untouched) is not whole after the repair", t->keys[i].key);
    }
}

static void test_orphan_payload(void **state) {
    struct vctx *t = *state;
    char path[TB_PATH_MAX];
    /* One named by no entry at all, one next to an entry of another generation. */
    path_of(path, t, t->keys[0].shard, "00112233445566778899aabbccddeeff.0123456789abcdef");
    assert_int_equal(st_write_value_file(path, "orphan", 3000), 0);
    int f = busy_shard_key(t, 1, 1);
    assert_true(f >= 0);
    char name[64], second[TB_PATH_MAX];
    snprintf(name, sizeof name, "%s.0123456789abcdef", t->keys[f].hex);
    path_of(second, t, t->keys[f].shard, name);
    assert_int_equal(st_write_value_file(second, "orphan", 5000), 0);
    assert_true(verify_cycle(t, "orphan payloads") >= 2);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
    assert_int_not_equal(stat(second, &st), 0);
    expect_keys(t, -1, -1);
}

static void test_entry_missing_from_meta(void **state) {
    struct vctx *t = *state;
    int i = busy_shard_key(t, 2, -1);
    assert_true(i >= 0);
    char meta[TB_PATH_MAX];
    path_of(meta, t, t->keys[i].shard, "meta");
    garble(meta, 0, 7);
    verify_cycle(t, "meta overwritten with garbage");
    /* The entries were kept and the metadata rebuilt from them. */
    expect_keys(t, -1, -1);
    assert_int_equal(st_stats(t->c).entries, KEYS);
}

static void test_meta_truncated(void **state) {
    struct vctx *t = *state;
    int i = busy_shard_key(t, 2, -1);
    assert_true(i >= 0);
    char meta[TB_PATH_MAX];
    path_of(meta, t, t->keys[i].shard, "meta");
    assert_int_equal(truncate(meta, 100), 0);
    verify_cycle(t, "meta truncated");
    expect_keys(t, -1, -1);
    assert_int_equal(st_stats(t->c).entries, KEYS);
}

/* A reader's last-use stamp that lands after the table shrank under it:
 * 8 bytes written past the table grow the meta file. */
static void stamp_past_the_table(const struct vctx *t, int i) {
    char meta[TB_PATH_MAX];
    path_of(meta, t, t->keys[i].shard, "meta");
    struct stat st;
    assert_int_equal(stat(meta, &st), 0);
    int64_t stamp = 1;
    int fd = open(meta, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &stamp, 8, st.st_size + 2 * 64 + 56), 8);
    close(fd);
}

static void test_meta_grown_past_its_table(void **state) {
    struct vctx *t = *state;
    stamp_past_the_table(t, 0);
    verify_cycle(t, "meta grown past its table");
    expect_keys(t, -1, -1);
}

/* An open alone with the cache cuts the file back: stats match the disk. */
static void test_lone_open_trims_meta(void **state) {
    struct vctx *t = *state;
    fsc_close(t->c);
    stamp_past_the_table(t, 0);
    stamp_past_the_table(t, KEYS - 1);
    t->c = st_open_with(t->dir, 64 << 20, 0, -1, 0);
    assert_non_null(t->c);
    int rc;
    fsc_verify_report v = st_verify(t->c, 0, &rc);
    assert_fsc_ok(rc);
    assert_int_equal(v.problems, 0);
    assert_int_equal(st_stats(t->c).bytes, st_disk_bytes(t->dir));
    expect_keys(t, -1, -1);
}

static void test_metadata_without_data(void **state) {
    struct vctx *t = *state;
    /* An entry file removed by hand, and the payload of a file value. */
    int a = busy_shard_key(t, 1, 0), b = busy_shard_key(t, 1, 1);
    assert_true(a >= 0 && b >= 0);
    char path[TB_PATH_MAX];
    path_of(path, t, t->keys[a].shard, t->keys[a].hex);
    assert_int_equal(unlink(path), 0);
    /* The payload is the file next to the entry named <hex>.<generation>. */
    char dirpath[TB_PATH_MAX];
    snprintf(dirpath, sizeof dirpath, "%s/shards/%s", t->dir, t->keys[b].shard);
    DIR *d = opendir(dirpath);
    assert_non_null(d);
    struct dirent *de;
    int removed = 0;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, t->keys[b].hex, 32) == 0 && de->d_name[32] == '.') {
            path_of(path, t, t->keys[b].shard, de->d_name);
            assert_int_equal(unlink(path), 0);
            removed++;
        }
    }
    closedir(d);
    assert_int_equal(removed, 1);
    verify_cycle(t, "entry file and payload removed by hand");
    assert_int_equal(st_check(t->c, t->keys[a].key, NULL), 0);
    assert_int_equal(st_check(t->c, t->keys[b].key, NULL), 0);
    expect_keys(t, a, b);
    assert_int_equal(st_stats(t->c).entries, KEYS - 2);
}

static void test_damaged_entry_file(void **state) {
    struct vctx *t = *state;
    int a = busy_shard_key(t, 1, 0), b = busy_shard_key(t, 1, 1);
    assert_true(a >= 0 && b >= 0);
    char path[TB_PATH_MAX];
    path_of(path, t, t->keys[a].shard, t->keys[a].hex);
    garble(path, 0, 11);
    path_of(path, t, t->keys[b].shard, t->keys[b].hex);
    garble(path, 40, 12); /* the header only */
    verify_cycle(t, "entry files garbled");
    assert_int_equal(st_check(t->c, t->keys[a].key, NULL), 0);
    assert_int_equal(st_check(t->c, t->keys[b].key, NULL), 0);
    expect_keys(t, a, b);
    assert_int_equal(st_stats(t->c).entries, KEYS - 2);
    /* Both keys can be stored again. */
    assert_fsc_ok(st_set(t->c, t->keys[a].key, 10));
    assert_fsc_ok(st_set(t->c, t->keys[b].key, 20));
    assert_int_equal(st_check(t->c, t->keys[a].key, NULL), 1);
    assert_int_equal(st_check(t->c, t->keys[b].key, NULL), 1);
}

/* Regions of the lock file (docs/FORMAT.md): the counters record (72 bytes
 * at offset 64) and the shards' byte and entry table (256 lines of 24 bytes at offset 256),
 * read and written by child processes that do not have the cache open:
 * closing a descriptor of the lock file would drop this process's record
 * locks. */
#define COUNTERS_AT 64
#define COUNTERS_LEN 72
#define TABLE_AT 256
#define TABLE_LEN (256 * 24)

static void lock_file_io(const char *dir, unsigned char *rec, size_t len, off_t at, int write_it) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char path[TB_PATH_MAX];
        snprintf(path, sizeof path, "%s/lock", dir);
        int fd = open(path, write_it ? O_WRONLY : O_RDONLY);
        child_check(fd >= 0, 2);
        unsigned char buf[TABLE_LEN];
        if (write_it) {
            close(fds[1]);
            child_check(tb_read_full(fds[0], buf, len) == 1, 3);
            child_check(pwrite(fd, buf, len, at) == (ssize_t)len, 4);
        } else {
            close(fds[0]);
            child_check(pread(fd, buf, len, at) == (ssize_t)len, 5);
            child_check(tb_write_full(fds[1], buf, len) == 0, 6);
        }
        _exit(0);
    }
    if (write_it) {
        close(fds[0]);
        assert_int_equal(tb_write_full(fds[1], rec, len), 0);
        close(fds[1]);
    } else {
        close(fds[1]);
        assert_int_equal(tb_read_full(fds[0], rec, len), 1);
        close(fds[0]);
    }
    assert_int_equal(tb_wait(pid), 0);
}

static void test_wrong_totals(void **state) {
    struct vctx *t = *state;
    unsigned char old[TABLE_LEN];
    assert_int_equal(st_stats(t->c).entries, KEYS);
    lock_file_io(t->dir, old, TABLE_LEN, TABLE_AT, 0);
    for (int i = 0; i < 10; i++) {
        char key[32];
        snprintf(key, sizeof key, "later-%d", i);
        assert_fsc_ok(st_set(t->c, key, 4000));
    }
    /* Put the earlier table back: valid lines that are wrong now. */
    lock_file_io(t->dir, old, TABLE_LEN, TABLE_AT, 1);
    fsc_statistics s = st_stats(t->c);
    assert_int_equal(s.entries, KEYS);
    assert_true(s.bytes < st_disk_bytes(t->dir));
    verify_cycle(t, "totals from an earlier state");
    assert_int_equal(st_stats(t->c).entries, KEYS + 10);
    expect_keys(t, -1, -1);
}

static void test_garbage_totals(void **state) {
    struct vctx *t = *state;
    unsigned char junk[COUNTERS_LEN];
    tb_fill(junk, sizeof junk, 99);
    memcpy(junk, "FSCT", 4);
    lock_file_io(t->dir, junk, COUNTERS_LEN, COUNTERS_AT, 1);
    fsc_statistics probe;
    memset(&probe, 0, sizeof probe);
    probe.size = sizeof probe;
    int src = fsc_stats(t->c, &probe);
    fprintf(stderr, "fsc_stats on a damaged counters record: %s\n", fsc_strerror(src));
    int rc;
    fsc_verify_report v = st_verify(t->c, 1, &rc);
    if (rc != FSC_OK)
        fail_msg("fsc_verify(1) on a damaged counters record gave %s (%s), want it repaired", fsc_strerror(rc),
                 fsc_errmsg());
    /* Either fsc_stats reported the damage and verify repairs it, or the
     * handle's own update (its pending counts) already rewrote the record. */
    if (src == FSC_ECORRUPT)
        assert_true(v.repaired > 0);
    else
        assert_fsc_ok(src);
    v = st_verify(t->c, 0, &rc);
    assert_fsc_ok(rc);
    assert_int_equal(v.problems, 0);
    fsc_statistics s = st_stats(t->c);
    assert_int_equal(s.bytes, st_disk_bytes(t->dir));
    assert_int_equal(s.entries, KEYS);
}

static void test_everything_at_once(void **state) {
    struct vctx *t = *state;
    char path[TB_PATH_MAX];
    path_of(path, t, t->keys[5].shard, "ffeeddccbbaa99887766554433221100.0123456789abcdef");
    assert_int_equal(st_write_value_file(path, "orphan", 100), 0);
    int a = busy_shard_key(t, 1, 0);
    path_of(path, t, t->keys[a].shard, t->keys[a].hex);
    assert_int_equal(unlink(path), 0);
    int b = -1;
    for (int i = 0; i < KEYS; i++)
        if (!t->keys[i].is_file && i != a && strcmp(t->keys[i].shard, t->keys[a].shard) != 0)
            b = i;
    assert_true(b >= 0);
    path_of(path, t, t->keys[b].shard, t->keys[b].hex);
    garble(path, 0, 5);
    int m = -1;
    for (int i = 0; i < KEYS; i++)
        if (i != a && i != b && strcmp(t->keys[i].shard, t->keys[a].shard) != 0 &&
            strcmp(t->keys[i].shard, t->keys[b].shard) != 0)
            m = i;
    assert_true(m >= 0);
    path_of(path, t, t->keys[m].shard, "meta");
    garble(path, 0, 6);
    assert_true(verify_cycle(t, "several kinds of damage") >= 4);
    expect_keys(t, a, b);
    assert_int_equal(st_stats(t->c).entries, KEYS - 2);
}

static int shard_entries(const struct vctx *t, const char *shard) {
    char path[TB_PATH_MAX];
    snprintf(path, sizeof path, "%s/shards/%s", t->dir, shard);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += tb_is_entry_name(de->d_name);
    closedir(d);
    return n;
}

/* A destroyed meta file: the shard keeps working, and verify(1) makes the
 * accounting exact. */
static void destroyed_meta(struct vctx *t, size_t garbage_len) {
    int i = busy_shard_key(t, 3, -1);
    if (i < 0)
        i = busy_shard_key(t, 2, -1);
    assert_true(i >= 0);
    const char *shard = t->keys[i].shard;
    char meta[TB_PATH_MAX];
    path_of(meta, t, shard, "meta");
    if (garbage_len) {
        assert_int_equal(truncate(meta, 0), 0);
        int fd = open(meta, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        close(fd);
    }
    garble(meta, garbage_len, 1234 + garbage_len);

    int same[KEYS], n = 0;
    for (int j = 0; j < KEYS; j++)
        if (strcmp(t->keys[j].shard, shard) == 0)
            same[n++] = j;
    /* Reads of that shard. */
    for (int j = 0; j < n; j++)
        assert_int_equal(st_check(t->c, t->keys[same[j]].key, NULL), 1);
    /* An overwrite, a delete, and a new key stored in that shard. */
    assert_fsc_ok(st_set(t->c, t->keys[same[0]].key, 7777));
    assert_int_equal(st_check(t->c, t->keys[same[0]].key, NULL), 1);
    assert_fsc_ok(fsc_delete(t->c, t->keys[same[1]].key, strlen(t->keys[same[1]].key)));
    assert_int_equal(st_check(t->c, t->keys[same[1]].key, NULL), 0);
    /* New keys until one lands in that shard (its entry count grows). */
    struct located extra;
    int placed = 0;
    for (int k = 0; k < 4000 && !placed; k++) {
        snprintf(extra.key, sizeof extra.key, "extra-%d", k);
        int before = shard_entries(t, shard);
        assert_fsc_ok(st_set(t->c, extra.key, 300 + (size_t)k));
        placed = shard_entries(t, shard) > before;
    }
    assert_true(placed);
    assert_int_equal(st_check(t->c, extra.key, NULL), 1);
    for (int j = 2; j < n; j++)
        assert_int_equal(st_check(t->c, t->keys[same[j]].key, NULL), 1);

    fsc_statistics s = st_stats(t->c);
    uint64_t disk = st_disk_bytes(t->dir);
    fprintf(stderr, "garbage meta of %zu bytes: before verify, fsc_stats().bytes %llu, disk %llu\n",
            garbage_len, (unsigned long long)s.bytes, (unsigned long long)disk);
    int rc;
    fsc_verify_report v = st_verify(t->c, 1, &rc);
    assert_fsc_ok(rc);
    v = st_verify(t->c, 0, &rc);
    assert_fsc_ok(rc);
    assert_int_equal(v.problems, 0);
    s = st_stats(t->c);
    assert_int_equal(s.bytes, st_disk_bytes(t->dir));
    assert_int_equal(s.entries, st_foreach_count(t->c));
    for (int j = 0; j < n; j++)
        assert_int_equal(st_check(t->c, t->keys[same[j]].key, NULL), j == 1 ? 0 : 1);
    assert_int_equal(st_check(t->c, extra.key, NULL), 1);
}

static void test_meta_destroyed_same_size(void **state) { destroyed_meta(*state, 0); }
static void test_meta_destroyed_other_size(void **state) { destroyed_meta(*state, 5000); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_orphan_payload, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_entry_missing_from_meta, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_meta_truncated, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_metadata_without_data, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_meta_grown_past_its_table, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_lone_open_trims_meta, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_entry_file, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_totals, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_totals, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_everything_at_once, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_meta_destroyed_same_size, verify_setup, verify_teardown),
        cmocka_unit_test_setup_teardown(test_meta_destroyed_other_size, verify_setup, verify_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
