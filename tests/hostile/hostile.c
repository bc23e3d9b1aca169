/* Hostile or damaged cache directories: symbolic links planted where the
 * cache's files and directories should be, entries claiming absurd sizes,
 * files replaced by directories, the base directory removed under a running
 * process, permissions changed mid-run (as an unprivileged user) and the
 * modes of what fsc creates. Each case must give a clear status, never a
 * crash, and never touch anything outside base_dir: a sentinel file and an
 * empty directory live next to base_dir and are checked after every case. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fsc_format.h"
#include "fsc_test.h"

#define SENTINEL_TEXT "sentinel: fsc must never write, truncate or remove this file\n"

struct world {
    char root[4096], base[4200], outside[4200], sentinel[4300], odir[4300];
    struct stat sst;
};

#pragma GCC diagnostic ignored "-Wformat-truncation"

static void path_join(char *out, size_t cap, const char *a, const char *b) { snprintf(out, cap, "%s/%s", a, b); }

static struct world *world_new(void) {
    struct world *w = calloc(1, sizeof *w);
    char *t = fsc_test_tempdir();
    assert_non_null(t);
    snprintf(w->root, sizeof w->root, "%s", t);
    free(t);
    path_join(w->base, sizeof w->base, w->root, "cache");
    path_join(w->outside, sizeof w->outside, w->root, "outside");
    path_join(w->sentinel, sizeof w->sentinel, w->outside, "sentinel");
    path_join(w->odir, sizeof w->odir, w->outside, "dir");
    assert_int_equal(mkdir(w->outside, 0755), 0);
    assert_int_equal(mkdir(w->odir, 0755), 0);
    int fd = open(w->sentinel, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, SENTINEL_TEXT, strlen(SENTINEL_TEXT)), (ssize_t)strlen(SENTINEL_TEXT));
    close(fd);
    assert_int_equal(lstat(w->sentinel, &w->sst), 0);
    return w;
}

/* Nothing outside base_dir changed: the sentinel is the same file with the
 * same bytes, and outside/ holds only the sentinel and an empty dir/. */
static void world_check(struct world *w) {
    struct stat st;
    if (lstat(w->sentinel, &st) != 0)
        fail_msg("the sentinel %s was removed", w->sentinel);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_ino, w->sst.st_ino);
    assert_int_equal(st.st_size, w->sst.st_size);
    assert_int_equal(st.st_mode, w->sst.st_mode);
    assert_int_equal(st.st_mtim.tv_sec, w->sst.st_mtim.tv_sec);
    assert_int_equal(st.st_mtim.tv_nsec, w->sst.st_mtim.tv_nsec);
    char buf[256] = {0};
    int fd = open(w->sentinel, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    assert_int_equal(n, (ssize_t)strlen(SENTINEL_TEXT));
    assert_string_equal(buf, SENTINEL_TEXT);
    DIR *d = opendir(w->outside);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "sentinel") &&
            strcmp(de->d_name, "dir"))
            fail_msg("a file '%s' appeared outside base_dir, in %s", de->d_name, w->outside);
    closedir(d);
    d = opendir(w->odir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            fail_msg("a file '%s' appeared outside base_dir, in %s", de->d_name, w->odir);
    closedir(d);
}

static void world_free(struct world *w) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", w->root, w->root);
    if (system(cmd) != 0) {
    }
    free(w);
}

/* The cases below plant things where entry files are, so every value gets
 * a file of its own (pack_limit 0); symlink_as_pack covers pack files. */
static fsc_options unpacked;
static const fsc_options *hostile_opts = &unpacked;

static fsc_cache *open_ok(const char *dir) {
    fsc_cache *c = NULL;
    assert_fsc_ok(fsc_open(dir, hostile_opts, &c));
    return c;
}

static void set_str(fsc_cache *c, const char *k, const char *v) {
    assert_fsc_ok(fsc_set(c, k, strlen(k), v, strlen(v)));
}

/* FSC_OK with exactly v, or a miss. */
static void get_is(fsc_cache *c, const char *k, const char *v) {
    fsc_entry *e;
    int rc = fsc_get(c, k, strlen(k), &e);
    if (v == NULL) {
        assert_fsc_status(rc, FSC_MISS);
        return;
    }
    assert_fsc_ok(rc);
    assert_int_equal(fsc_entry_size(e), strlen(v));
    assert_memory_equal(fsc_entry_data(e), v, strlen(v));
    fsc_entry_free(e);
}

static void set_file_str(fsc_cache *c, const char *k, const char *v, const char *scratch) {
    int fd = open(scratch, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, v, strlen(v), 0), (ssize_t)strlen(v));
    assert_fsc_ok(fsc_set_file(c, k, strlen(k), fd, NULL, 0));
    close(fd);
    unlink(scratch);
}

/* Every operation on a damaged cache: any status but no crash. */
static void exercise(fsc_cache *c, const char *k) {
    fsc_entry *e = NULL;
    if (fsc_get(c, k, strlen(k), &e) == FSC_OK) {
        (void)fsc_entry_data(e);
        fsc_entry_free(e);
    }
    tb_read_everything(c);
    (void)fsc_prune(c);
}

/* exercise(), then a delete, a repair and a clear: any status but no
 * crash; the handle is closed. */
static void exercise_and_close(fsc_cache *c) {
    exercise(c, "key");
    (void)fsc_delete(c, "key", 3);
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    (void)fsc_verify(c, 1, &r);
    (void)fsc_clear(c);
    fsc_close(c);
}

/* A set of "key" (stored or refused with a status), then exercise_and_close. */
static void set_exercise_and_close(fsc_cache *c, const char *value) {
    int rc = fsc_set(c, "key", 3, value, strlen(value));
    assert_true(rc == FSC_OK || rc < 0);
    exercise_and_close(c);
}

static void clear_and_verify(fsc_cache *c) {
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    (void)fsc_verify(c, 1, &r);
    r.problems = 0;
    assert_fsc_ok(fsc_verify(c, 0, &r));
    if (r.problems != 0)
        fail_msg("fsc_verify after repair still finds %" PRIu64 " problems", r.problems);
}

/* ------------------------------------------------------------------ */
/* Symbolic links                                                      */
/* ------------------------------------------------------------------ */

static void symlink_as_entry(void **state) {
    const char *targets[2];
    for (int t = 0; t < 2; t++) {
        struct world *w = world_new();
        targets[0] = w->sentinel;
        targets[1] = w->odir;
        fsc_cache *c = open_ok(w->base);
        set_str(c, "key", "old value");
        char entry[4400];
        assert_int_not_equal(fmt_find(w->base, 0, entry, sizeof entry), 0);
        assert_int_equal(unlink(entry), 0);
        assert_int_equal(symlink(targets[t], entry), 0);
        fsc_entry *e;
        int rc = fsc_get(c, "key", 3, &e);
        if (rc != FSC_ECORRUPT && rc != FSC_MISS)
            fail_msg("get through a symlinked entry gave %s (%s)", fsc_strerror(rc), fsc_errmsg());
        world_check(w);
        /* Plant it again, then write, delete and verify over it. */
        unlink(entry);
        assert_int_equal(symlink(targets[t], entry), 0);
        exercise(c, "key");
        world_check(w);
        set_str(c, "key", "new value");
        get_is(c, "key", "new value");
        unlink(entry);
        assert_int_equal(symlink(targets[t], entry), 0);
        rc = fsc_delete(c, "key", 3);
        assert_true(rc == FSC_OK || rc == FSC_MISS || rc == FSC_ECORRUPT);
        world_check(w);
        unlink(entry);
        assert_int_equal(symlink(targets[t], entry), 0);
        clear_and_verify(c);
        assert_fsc_ok(fsc_clear(c));
        fsc_close(c);
        world_check(w);
        world_free(w);
    }
    (void)state;
}

/* A symlink planted where a shard's pack file is: never read or written
 * through, with the handle open (the pack already open) and after a reopen. */
static void symlink_as_pack(void **state) {
    const char *targets[2];
    for (int t = 0; t < 2; t++) {
        struct world *w = world_new();
        targets[0] = w->sentinel;
        targets[1] = w->odir;
        fsc_cache *c = NULL;
        assert_fsc_ok(fsc_open(w->base, NULL, &c));
        set_str(c, "key", "old value");
        char pack[4400];
        assert_int_not_equal(fmt_find(w->base, FMT_PACK, pack, sizeof pack), 0);
        assert_int_equal(unlink(pack), 0);
        assert_int_equal(symlink(targets[t], pack), 0);
        fsc_entry *e;
        for (int round = 0; round < 2; round++) {
            /* The handle that stored it may still read the pack it has open. */
            int rc = fsc_get(c, "key", 3, &e);
            if (rc == FSC_OK && round == 0) {
                assert_int_equal(fsc_entry_size(e), 9);
                assert_memory_equal(fsc_entry_data(e), "old value", 9);
                fsc_entry_free(e);
            } else if (rc != FSC_ECORRUPT && rc != FSC_MISS) {
                fail_msg("get through a symlinked pack gave %s (%s)", fsc_strerror(rc), fsc_errmsg());
            }
            world_check(w);
            fsc_close(c);
            assert_fsc_ok(fsc_open(w->base, NULL, &c));
        }
        exercise(c, "key");
        world_check(w);
        set_str(c, "key", "new value");
        get_is(c, "key", "new value");
        clear_and_verify(c);
        fsc_close(c);
        world_check(w);
        world_free(w);
    }
    (void)state;
}

static void symlink_as_payload(void **state) {
    struct world *w = world_new();
    char scratch[4300];
    path_join(scratch, sizeof scratch, w->root, "src");
    fsc_cache *c = open_ok(w->base);
    set_file_str(c, "key", "file value", scratch);
    char payload[4400];
    assert_int_not_equal(fmt_find(w->base, 1, payload, sizeof payload), 0);
    assert_int_equal(unlink(payload), 0);
    assert_int_equal(symlink(w->sentinel, payload), 0);
    fsc_entry *e;
    int rc = fsc_get(c, "key", 3, &e);
    if (rc != FSC_ECORRUPT && rc != FSC_MISS)
        fail_msg("get through a symlinked payload gave %s (%s)", fsc_strerror(rc), fsc_errmsg());
    world_check(w);
    /* Again, and let a replacing set, a delete and a repair meet it. */
    set_file_str(c, "key", "file value 2", scratch);
    assert_int_not_equal(fmt_find(w->base, 1, payload, sizeof payload), 0);
    unlink(payload);
    assert_int_equal(symlink(w->sentinel, payload), 0);
    set_file_str(c, "key", "file value 3", scratch); /* unlinks the old payload: the link, not its target */
    get_is(c, "key", "file value 3");
    world_check(w);
    assert_int_not_equal(fmt_find(w->base, 1, payload, sizeof payload), 0);
    unlink(payload);
    assert_int_equal(symlink(w->sentinel, payload), 0);
    exercise(c, "key");
    rc = fsc_delete(c, "key", 3);
    assert_true(rc == FSC_OK || rc == FSC_MISS || rc == FSC_ECORRUPT);
    world_check(w);
    set_file_str(c, "key2", "x", scratch);
    assert_int_not_equal(fmt_find(w->base, 1, payload, sizeof payload), 0);
    unlink(payload);
    assert_int_equal(symlink(w->sentinel, payload), 0);
    clear_and_verify(c);
    set_file_str(c, "key3", "y", scratch);
    assert_int_not_equal(fmt_find(w->base, 1, payload, sizeof payload), 0);
    unlink(payload);
    assert_int_equal(symlink(w->sentinel, payload), 0);
    assert_fsc_ok(fsc_clear(c));
    fsc_close(c);
    world_check(w);
    world_free(w);
    (void)state;
}

/* base_dir/<name> replaced by a symlink to outside/dir (or the sentinel for
 * files), while closed (then fsc_open) and while a handle is open. */
static void symlink_as_subdir(const char *name, int target_file) {
    struct world *w = world_new();
    char scratch[4300], p[4300], moved[4300];
    path_join(scratch, sizeof scratch, w->root, "src");
    const char *target = target_file ? w->sentinel : w->odir;
    fsc_cache *c = open_ok(w->base);
    set_str(c, "key", "value");
    set_file_str(c, "fkey", "file value", scratch);
    fsc_close(c);
    path_join(p, sizeof p, w->base, name);
    snprintf(moved, sizeof moved, "%s.moved", p);
    assert_int_equal(rename(p, moved), 0);
    assert_int_equal(symlink(target, p), 0);

    c = NULL;
    int rc = fsc_open(w->base, hostile_opts, &c);
    if (rc == FSC_OK) {
        /* Opened anyway: every write must stay inside base_dir. */
        for (int i = 0; i < 20; i++) {
            char k[16];
            snprintf(k, sizeof k, "k%d", i);
            (void)fsc_set(c, k, strlen(k), "v", 1);
        }
        set_file_str(c, "f", "v", scratch);
        exercise_and_close(c);
    } else {
        assert_true(rc < 0);
        if (strstr(fsc_errmsg(), w->base) == NULL)
            fail_msg("fsc_open over a symlinked '%s' gave %s with a message not naming base_dir: '%s'", name,
                     fsc_strerror(rc), fsc_errmsg());
    }
    world_check(w);

    /* The same link planted under a running handle. */
    unlink(p);
    assert_int_equal(rename(moved, p), 0);
    c = open_ok(w->base);
    assert_int_equal(rename(p, moved), 0);
    assert_int_equal(symlink(target, p), 0);
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "r%d", i);
        (void)fsc_set(c, k, strlen(k), "v", 1);
    }
    (void)fsc_set_file(c, "g", 1, -1, w->sentinel, 0); /* copies from the sentinel: reading it is allowed */
    exercise_and_close(c);
    /* A second process-wide open while the link is there. */
    c = NULL;
    if (fsc_open(w->base, hostile_opts, &c) == FSC_OK) {
        (void)fsc_set(c, "z", 1, "v", 1);
        fsc_close(c);
    }
    world_check(w);
    world_free(w);
}

static void symlink_as_tmp(void **state) {
    symlink_as_subdir("tmp", 0);
    (void)state;
}
static void symlink_as_shards(void **state) {
    symlink_as_subdir("shards", 0);
    (void)state;
}
static void symlink_as_lock(void **state) {
    symlink_as_subdir("lock", 1);
    (void)state;
}
static void symlink_as_marker(void **state) {
    symlink_as_subdir("FSC-FORMAT", 1);
    (void)state;
}

static void symlink_as_shard_dir_and_meta(void **state) {
    struct world *w = world_new();
    fsc_cache *c = open_ok(w->base);
    set_str(c, "key", "value");
    char entry[4400], shard[4400], meta[4500], moved[4500];
    assert_int_not_equal(fmt_find(w->base, 0, entry, sizeof entry), 0);
    snprintf(shard, sizeof shard, "%.*s", (int)(strrchr(entry, '/') - entry), entry);
    fsc_close(c);

    /* The shard's meta file. */
    path_join(meta, sizeof meta, shard, "meta");
    assert_int_equal(unlink(meta), 0);
    assert_int_equal(symlink(w->sentinel, meta), 0);
    c = NULL;
    int rc = fsc_open(w->base, hostile_opts, &c);
    if (rc != FSC_OK) {
        /* Refusing is fine, with a message naming the file. */
        assert_true(rc < 0);
        if (strstr(fsc_errmsg(), meta) == NULL)
            fail_msg("open with a symlinked meta: %s '%s' does not name %s", fsc_strerror(rc), fsc_errmsg(), meta);
    } else {
        set_exercise_and_close(c, "value 2");
    }
    world_check(w);
    /* Planted under a running handle that has not opened that shard yet. */
    unlink(meta);
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", shard);
    assert_int_equal(system(cmd), 0);
    c = open_ok(w->base);
    assert_int_equal(mkdir(shard, 0700), 0);
    assert_int_equal(symlink(w->sentinel, meta), 0);
    set_exercise_and_close(c, "value 2");
    world_check(w);

    /* The shard directory itself. */
    unlink(meta);
    mkdir(shard, 0700);
    snprintf(moved, sizeof moved, "%s.moved", shard);
    assert_int_equal(rename(shard, moved), 0);
    assert_int_equal(symlink(w->odir, shard), 0);
    for (int running = 0; running < 2; running++) {
        c = NULL;
        if (running) {
            /* Planted under a handle that has not opened that shard yet
             * (the open before replaced the link by a directory of its own). */
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", shard);
            assert_int_equal(system(cmd), 0);
            c = open_ok(w->base);
            assert_int_equal(symlink(w->odir, shard), 0);
        } else {
            rc = fsc_open(w->base, hostile_opts, &c);
            if (rc != FSC_OK) {
                assert_true(rc < 0);
                if (strstr(fsc_errmsg(), shard) == NULL)
                    fail_msg("open with a symlinked shard: %s '%s' does not name %s", fsc_strerror(rc),
                             fsc_errmsg(), shard);
                continue;
            }
        }
        set_exercise_and_close(c, "value 3");
        world_check(w);
    }
    world_free(w);
    (void)state;
}

/* ------------------------------------------------------------------ */
/* Damaged entries                                                     */
/* ------------------------------------------------------------------ */

static void write_file(const char *path, const void *data, size_t len) {
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void huge_size_or_offset(void **state) {
    struct {
        uint16_t flags;
        uint64_t size, offset, gen;
    } cases[] = {
        {0, (uint64_t)1 << 62, 0, 0},
        {0, (uint64_t)1 << 62, (uint64_t)1 << 62, 0},
        {0, UINT64_MAX, 0, 0},
        {0, 5, UINT64_MAX, 0},
        {0, 0, 1, 0},
        {0, 4, 0, 0}, /* shorter than the file */
        {1, (uint64_t)1 << 62, 0, 1},
        {1, (uint64_t)1 << 40, (uint64_t)1 << 39, 7},
        {1, 10, 10, UINT64_MAX}, /* the payload's real size is 10: names another generation */
        {1, 10, 11, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct world *w = world_new();
        char scratch[4300];
        path_join(scratch, sizeof scratch, w->root, "src");
        fsc_cache *c = open_ok(w->base);
        if (cases[i].flags)
            set_file_str(c, "key", "0123456789", scratch);
        else
            set_str(c, "key", "01234567");
        char entry[4400];
        assert_int_not_equal(fmt_find(w->base, 0, entry, sizeof entry), 0);
        unsigned char buf[64 + 3 + 8];
        fmt_entry_header(buf, cases[i].flags, "key", 3, cases[i].size, cases[i].offset, 1000, cases[i].gen,
                         cases[i].flags ? 0 : fmt_value_sum("01234567", 8));
        memcpy(buf + 64, "key", 3);
        memcpy(buf + 67, "01234567", 8);
        write_file(entry, buf, cases[i].flags ? 67 : sizeof buf);
        fsc_entry *e;
        int rc = fsc_get(c, "key", 3, &e);
        if (rc == FSC_OK) {
            /* Only acceptable if it is the value that was stored. */
            const char *want = cases[i].flags ? "0123456789" : "01234567";
            if (fsc_entry_size(e) != strlen(want) || memcmp(fsc_entry_data(e), want, strlen(want)) != 0)
                fail_msg("case %zu: FSC_OK with a value of %" PRIu64 " bytes that was never stored", i,
                         fsc_entry_size(e));
            fsc_entry_free(e);
        } else if (rc != FSC_ECORRUPT && rc != FSC_MISS) {
            fail_msg("case %zu: get gave %s (%s)", i, fsc_strerror(rc), fsc_errmsg());
        }
        write_file(entry, buf, cases[i].flags ? 67 : sizeof buf);
        exercise(c, "key");
        write_file(entry, buf, cases[i].flags ? 67 : sizeof buf);
        fsc_verify_report r = {sizeof r, 0, 0, 0};
        assert_fsc_ok(fsc_verify(c, 0, &r));
        if (r.problems == 0 && !(cases[i].offset <= cases[i].size && cases[i].flags == 0 && cases[i].size == 8))
            fail_msg("case %zu: fsc_verify found no problem in a forged entry", i);
        clear_and_verify(c);
        set_str(c, "key", "fresh");
        get_is(c, "key", "fresh");
        fsc_close(c);
        world_check(w);
        world_free(w);
    }
    (void)state;
}

static void directory_for_file(void **state) {
    /* 0: entry, 1: payload, 2: meta, 3: lock (closed), 4: tmp as a file, 5: shards as a file. */
    for (int which = 0; which < 6; which++) {
        struct world *w = world_new();
        char scratch[4300], p[4500];
        path_join(scratch, sizeof scratch, w->root, "src");
        fsc_cache *c = open_ok(w->base);
        set_file_str(c, "key", "file value", scratch);
        set_str(c, "other", "other value");
        if (which == 0 || which == 1) {
            assert_int_not_equal(fmt_find(w->base, which, p, sizeof p), 0);
        } else if (which == 2) {
            char e[4400];
            assert_int_not_equal(fmt_find(w->base, 0, e, sizeof e), 0);
            snprintf(p, sizeof p, "%.*s/meta", (int)(strrchr(e, '/') - e), e);
        } else {
            path_join(p, sizeof p, w->base, which == 3 ? "lock" : which == 4 ? "tmp" : "shards");
        }
        if (which >= 3)
            fsc_close(c);
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
        assert_int_equal(system(cmd), 0);
        if (which >= 4) {
            write_file(p, "not a dir", 9);
        } else {
            assert_int_equal(mkdir(p, 0700), 0);
            char inner[4600];
            path_join(inner, sizeof inner, p, "inner");
            write_file(inner, "x", 1);
        }
        if (which >= 3) {
            c = NULL;
            int rc = fsc_open(w->base, hostile_opts, &c);
            if (rc == FSC_OK) {
                exercise(c, "key");
                fsc_close(c);
            } else if (strlen(fsc_errmsg()) == 0) {
                fail_msg("fsc_open over a damaged cache gave %s without a message", fsc_strerror(rc));
            }
        } else {
            fsc_entry *e;
            int rc = fsc_get(c, "key", 3, &e);
            if (rc == FSC_OK) {
                assert_int_equal(fsc_entry_size(e), 10);
                assert_memory_equal(fsc_entry_data(e), "file value", 10);
                fsc_entry_free(e);
            } else {
                assert_true(rc == FSC_ECORRUPT || rc == FSC_MISS || rc == FSC_EIO);
                assert_true(strlen(fsc_errmsg()) > 0 || rc == FSC_MISS);
            }
            rc = fsc_set(c, "key", 3, "new", 3);
            assert_true(rc == FSC_OK || rc < 0);
            if (rc == FSC_OK)
                get_is(c, "key", "new");
            else
                assert_true(strlen(fsc_errmsg()) > 0);
            exercise(c, "key");
            (void)fsc_delete(c, "key", 3);
            fsc_verify_report r = {sizeof r, 0, 0, 0};
            (void)fsc_verify(c, 1, &r);
            fsc_close(c);
        }
        world_check(w);
        world_free(w);
    }
    (void)state;
}

/* base_dir removed (and replaced by a symlink to outside/) while a handle is open. */
static void base_removed_while_open(void **state) {
    for (int relink = 0; relink < 2; relink++) {
        struct world *w = world_new();
        char scratch[4300];
        path_join(scratch, sizeof scratch, w->root, "src");
        fsc_cache *c = open_ok(w->base);
        set_str(c, "key", "value");
        set_file_str(c, "fkey", "file value", scratch);
        char cmd[4300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->base);
        assert_int_equal(system(cmd), 0);
        if (relink)
            assert_int_equal(symlink(w->odir, w->base), 0);
        for (int i = 0; i < 10; i++) {
            char k[16];
            snprintf(k, sizeof k, "k%d", i);
            int rc = fsc_set(c, k, strlen(k), "v", 1);
            assert_true(rc < 0 || rc == FSC_OK);
            if (rc < 0)
                assert_true(strlen(fsc_errmsg()) > 0);
        }
        int fd = open(scratch, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_int_equal(pwrite(fd, "abc", 3, 0), 3);
        (void)fsc_set_file(c, "f", 1, fd, NULL, 0);
        (void)fsc_set_file(c, "g", 1, -1, scratch, FSC_MOVE);
        close(fd);
        unlink(scratch);
        exercise(c, "key");
        exercise(c, "fkey");
        (void)fsc_delete(c, "key", 3);
        (void)fsc_invalidate(c, 1);
        fsc_verify_report r = {sizeof r, 0, 0, 0};
        (void)fsc_verify(c, 1, &r);
        (void)fsc_clear(c);
        assert_fsc_ok(fsc_close(c));
        world_check(w);
        world_free(w);
    }
    (void)state;
}

/* ------------------------------------------------------------------ */
/* Permissions, as an unprivileged user                                */
/* ------------------------------------------------------------------ */

#define NOBODY 65534

/* Runs fn(dir) in a child that has become uid/gid 65534 and owns dir.
 * Returns the child's exit code. */
static int as_nobody(const char *dir, void (*fn)(const char *)) {
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(77);
        fn(dir);
        _exit(0);
    }
    return tb_wait(pid);
}

static void expect_eacces(int rc, const char *what, const char *path) {
    if (rc != FSC_EACCES) {
        fprintf(stderr, "child: %s gave %s (%s), want FSC_EACCES\n", what, fsc_strerror(rc), fsc_errmsg());
        _exit(10);
    }
    if (strstr(fsc_errmsg(), path) == NULL) {
        fprintf(stderr, "child: %s: message '%s' does not name '%s'\n", what, fsc_errmsg(), path);
        _exit(11);
    }
}

static void perm_child(const char *dir) {
    fsc_cache *c;
    child_check(fsc_open(dir, hostile_opts, &c) == FSC_OK, 20);
    child_check(fsc_set(c, "key", 3, "value", 5) == FSC_OK, 21);
    char tmp[4300], entry[4400], shard[4400];
    path_join(tmp, sizeof tmp, dir, "tmp");
    child_check(fmt_find(dir, FMT_ENTRY, entry, sizeof entry) > 0, 22);
    snprintf(shard, sizeof shard, "%.*s", (int)(strrchr(entry, '/') - entry), entry);

    /* tmp/ not writable: sets fail, naming it; reads still work. */
    child_check(chmod(tmp, 0500) == 0, 23);
    expect_eacces(fsc_set(c, "key", 3, "other", 5), "set with tmp/ read-only", tmp);
    fsc_entry *e;
    child_check(fsc_get(c, "key", 3, &e) == FSC_OK, 24);
    child_check(fsc_entry_size(e) == 5 && memcmp(fsc_entry_data(e), "value", 5) == 0, 25);
    fsc_entry_free(e);
    child_check(chmod(tmp, 0700) == 0, 26);

    /* The shard directory not writable: a set into it fails, naming it. */
    child_check(chmod(shard, 0500) == 0, 27);
    expect_eacces(fsc_set(c, "key", 3, "other", 5), "set with the shard read-only", shard);
    child_check(fsc_get(c, "key", 3, &e) == FSC_OK, 28);
    child_check(fsc_entry_size(e) == 5 && memcmp(fsc_entry_data(e), "value", 5) == 0, 29);
    fsc_entry_free(e);
    int rc = fsc_delete(c, "key", 3);
    child_check(rc == FSC_EACCES, 30);
    child_check(chmod(shard, 0700) == 0, 31);

    /* The entry unreadable. */
    child_check(chmod(entry, 0000) == 0, 32);
    expect_eacces(fsc_get(c, "key", 3, &e), "get of an unreadable entry", entry);
    child_check(chmod(entry, 0600) == 0, 33);
    child_check(fsc_get(c, "key", 3, &e) == FSC_OK, 34);
    fsc_entry_free(e);
    fsc_close(c);

    /* base_dir not writable or not readable: fsc_open refuses, naming it. */
    child_check(chmod(dir, 0500) == 0, 35);
    expect_eacces(fsc_open(dir, hostile_opts, &c), "open of a read-only base_dir", dir);
    child_check(chmod(dir, 0000) == 0, 36);
    expect_eacces(fsc_open(dir, hostile_opts, &c), "open of an inaccessible base_dir", dir);
    child_check(chmod(dir, 0700) == 0, 37);
    child_check(fsc_open(dir, hostile_opts, &c) == FSC_OK, 38);
    child_check(fsc_get(c, "key", 3, &e) == FSC_OK, 39);
    fsc_entry_free(e);
    fsc_close(c);
    /* A base_dir that cannot be created. */
    char sub[4400];
    path_join(sub, sizeof sub, tmp, "nested");
    child_check(chmod(tmp, 0500) == 0, 40);
    expect_eacces(fsc_open(sub, hostile_opts, &c), "open of a base_dir that cannot be created", sub);
    child_check(chmod(tmp, 0700) == 0, 41);
}

static void permissions_changed_midrun(void **state) {
    struct world *w = world_new();
    assert_int_equal(chmod(w->root, 0755), 0);
    assert_int_equal(mkdir(w->base, 0700), 0);
    assert_int_equal(chown(w->base, NOBODY, NOBODY), 0);
    int code = as_nobody(w->base, perm_child);
    if (code == 77)
        skip();
    assert_int_equal(code, 0);
    world_check(w);
    world_free(w);
    (void)state;
}

/* ------------------------------------------------------------------ */
/* Modes                                                               */
/* ------------------------------------------------------------------ */

static void check_modes(const char *path, int *bad) {
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[4400];
        path_join(sub, sizeof sub, path, de->d_name);
        struct stat st;
        assert_int_equal(lstat(sub, &st), 0);
        mode_t want = S_ISDIR(st.st_mode) ? 0700 : 0600;
        if ((st.st_mode & 07777) != want) {
            fprintf(stderr, "%s has mode %04o, want %04o\n", sub, st.st_mode & 07777, want);
            (*bad)++;
        }
        if (S_ISDIR(st.st_mode))
            check_modes(sub, bad);
    }
    closedir(d);
}

static void modes_under_umask(void **state) {
    const mode_t masks[] = {0, 022};
    for (int m = 0; m < 2; m++) {
        mode_t old = umask(masks[m]);
        struct world *w = world_new();
        char base[4400], scratch[4300];
        /* Missing parents are created too. */
        path_join(base, sizeof base, w->base, "a/b");
        path_join(scratch, sizeof scratch, w->root, "src");
        fsc_cache *c = open_ok(base);
        set_str(c, "key", "value");
        set_file_str(c, "fkey", "file value", scratch);
        for (int i = 0; i < 40; i++) {
            char k[16];
            snprintf(k, sizeof k, "k%d", i);
            set_str(c, k, "v");
        }
        fsc_close(c);
        struct stat st;
        assert_int_equal(stat(w->base, &st), 0);
        int bad = (st.st_mode & 07777) != 0700;
        if (bad)
            fprintf(stderr, "%s has mode %04o under umask %03o\n", w->base, st.st_mode & 07777, masks[m]);
        check_modes(w->base, &bad);
        umask(old);
        if (bad)
            fail_msg("%d files or directories under umask %03o have other modes than 0700/0600", bad, masks[m]);
        world_free(w);
    }
    (void)state;
}

/* fsc_verify(repair=1) drops an entry whose payload has the wrong size; the
 * payload must go with it, so that one repair leaves a clean cache. */
static void repair_of_bad_payload_is_complete(void **state) {
    struct world *w = world_new();
    char scratch[4300], payload[4400];
    path_join(scratch, sizeof scratch, w->root, "src");
    fsc_cache *c = open_ok(w->base);
    set_file_str(c, "key", "file value", scratch);
    assert_int_not_equal(fmt_find(w->base, 1, payload, sizeof payload), 0);
    assert_int_equal(truncate(payload, 3), 0);
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    assert_fsc_ok(fsc_verify(c, 1, &r));
    assert_true(r.problems >= 1);
    r.problems = 0;
    assert_fsc_ok(fsc_verify(c, 0, &r));
    if (r.problems != 0)
        fail_msg("one fsc_verify(repair=1) left %" PRIu64 " problems (payload %s still there: %s)", r.problems,
                 payload, access(payload, F_OK) == 0 ? "yes" : "no");
    get_is(c, "key", NULL);
    fsc_close(c);
    world_free(w);
    (void)state;
}

int main(void) {
    fsc_options_init(&unpacked);
    unpacked.pack_limit = 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(symlink_as_entry),
        cmocka_unit_test(symlink_as_pack),
        cmocka_unit_test(symlink_as_payload),
        cmocka_unit_test(symlink_as_tmp),
        cmocka_unit_test(symlink_as_shards),
        cmocka_unit_test(symlink_as_lock),
        cmocka_unit_test(symlink_as_marker),
        cmocka_unit_test(symlink_as_shard_dir_and_meta),
        cmocka_unit_test(huge_size_or_offset),
        cmocka_unit_test(repair_of_bad_payload_is_complete),
        cmocka_unit_test(directory_for_file),
        cmocka_unit_test(base_removed_while_open),
        cmocka_unit_test(permissions_changed_midrun),
        cmocka_unit_test(modes_under_umask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
