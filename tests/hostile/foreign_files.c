/* Things that are not the cache's regular files, planted where the cache
 * opens one: FIFOs (an open or a read of one would wait for a writer for
 * ever), symbolic links and hard links to files outside base_dir. Every call
 * that meets one must return (each runs in a child whose alarm turns a hang
 * into a failure), say what it found, and write nothing outside base_dir. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "fsc_test.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

struct ff {
    char *dir;
    char base[4200], outside[4200];
};

static int ff_setup(void **state) {
    struct ff *f = calloc(1, sizeof *f);
    f->dir = fsc_test_tempdir();
    if (!f->dir)
        return -1;
    snprintf(f->base, sizeof f->base, "%s/cache", f->dir);
    snprintf(f->outside, sizeof f->outside, "%s/outside", f->dir);
    *state = f;
    return 0;
}

static int ff_teardown(void **state) {
    struct ff *f = *state;
    tb_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static fsc_cache *ff_open(const char *base) {
    fsc_options o;
    fsc_options_init(&o);
    o.pack_limit = 0; /* values in files of their own, except where a test packs */
    fsc_cache *c = NULL;
    int rc = fsc_open(base, &o, &c);
    if (rc != FSC_OK)
        fail_msg("fsc_open('%s'): %s (%s)", base, fsc_strerror(rc), fsc_errmsg());
    return c;
}

static fsc_cache *ff_open_packed(const char *base) {
    fsc_cache *c = NULL;
    assert_fsc_ok(fsc_open(base, NULL, &c));
    return c;
}

/* A new cache in base (whatever was there goes) holding "k" packed, closed. */
static void fresh_cache_with_k(const char *base) {
    tb_rmtree(base);
    fsc_cache *c = ff_open_packed(base);
    assert_fsc_ok(fsc_set(c, "k", 1, "value", 5));
    fsc_close(c);
}

/* The path of the single file under base/shards/xx whose name passes want. */
static void ff_find(const char *base, int (*want)(const char *), char *out, size_t cap) {
    char shards[4300];
    snprintf(shards, sizeof shards, "%s/shards", base);
    DIR *d = opendir(shards);
    assert_non_null(d);
    struct dirent *de;
    int found = 0;
    while (!found && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%s", shards, de->d_name);
        DIR *s = opendir(sub);
        struct dirent *e;
        while (s && !found && (e = readdir(s)) != NULL)
            if (e->d_name[0] != '.' && want(e->d_name)) {
                snprintf(out, cap, "%s/%s", sub, e->d_name);
                found = 1;
            }
        if (s)
            closedir(s);
    }
    closedir(d);
    if (!found)
        fail_msg("no such file under %s", shards);
}

static int is_entry(const char *n) { return strlen(n) == 32; }
static int is_payload(const char *n) { return strlen(n) > 32 && n[32] == '.'; }
static int is_meta(const char *n) { return !strcmp(n, "meta"); }
static int is_pack(const char *n) { return !strncmp(n, "pack.", 5); }

/* Replaces path by a FIFO. */
static void plant_fifo(const char *path) {
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
}

static int is_fifo(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISFIFO(st.st_mode);
}

static int verify_problems(fsc_cache *c, int repair) {
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    return fsc_verify(c, repair, &r) == FSC_OK ? (int)r.problems : -1;
}

/* Stores "k": as bytes, or (as_file) as a file value moved in. */
static void store_k(fsc_cache *c, const char *base, int as_file) {
    if (!as_file) {
        assert_fsc_ok(fsc_set(c, "k", 1, "value", 5));
        return;
    }
    char src[4300];
    snprintf(src, sizeof src, "%s.src", base);
    FILE *fp = fopen(src, "w");
    assert_non_null(fp);
    fputs("file value", fp);
    fclose(fp);
    assert_fsc_ok(fsc_set_file(c, "k", 1, -1, src, FSC_MOVE));
}

/* A FIFO where an entry file or a payload file is: get reports it damaged
 * and removes it, foreach and verify walk past it, repair removes it. */
static void fifo_in_a_shard(const char *base, int (*which)(const char *), int as_file) {
    fsc_cache *c = ff_open(base);
    for (int step = 0; step < 3; step++) {
        store_k(c, base, as_file);
        char path[4500];
        ff_find(base, which, path, sizeof path);
        plant_fifo(path);
        pid_t pid = fsc_test_fork();
        if (pid == 0) {
            fsc_cache *own = NULL;
            child_check(fsc_open(base, NULL, &own) == FSC_OK, 2);
            if (step == 0) {
                fsc_entry *e = NULL;
                child_check(fsc_get(own, "k", 1, &e) == FSC_ECORRUPT, 3);
                child_check(strstr(fsc_errmsg(), "regular file") != NULL, 4);
                child_check(!is_fifo(path), 5);
            } else if (step == 1) {
                uint64_t n = 0;
                child_check(fsc_foreach(own, tb_count_visit, &n) == FSC_OK, 6);
                child_check(verify_problems(own, 0) > 0, 7);
            } else {
                child_check(verify_problems(own, 1) > 0, 8);
                child_check(!is_fifo(path), 9);
                child_check(verify_problems(own, 0) == 0, 10);
            }
            fsc_close(own);
            _exit(0);
        }
        assert_child_exit(pid, 0);
        if (is_fifo(path))
            unlink(path);
    }
    fsc_close(c);
}

static void fifo_as_entry(void **state) { fifo_in_a_shard(((struct ff *)*state)->base, is_entry, 0); }

static void fifo_as_payload(void **state) { fifo_in_a_shard(((struct ff *)*state)->base, is_payload, 1); }

/* A FIFO as the format marker: fsc_open says it is no cache, at once. */
static void fifo_as_marker(void **state) {
    struct ff *f = *state;
    fsc_close(ff_open(f->base));
    char marker[4300];
    snprintf(marker, sizeof marker, "%s/FSC-FORMAT", f->base);
    plant_fifo(marker);
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        fsc_cache *c = NULL;
        child_check(fsc_open(f->base, NULL, &c) == FSC_EFORMAT, 2);
        child_check(strstr(fsc_errmsg(), "not a regular file") != NULL, 3);
        _exit(0);
    }
    assert_child_exit(pid, 0);
}

/* A FIFO as the meta or pack file of a shard: replaced by a table rebuilt
 * from the shard's files (meta), or taken as a missing pack. */
static void fifo_as_meta_or_pack(void **state) {
    struct ff *f = *state;
    int (*which[2])(const char *) = {is_meta, is_pack};
    for (int i = 0; i < 2; i++) {
        fresh_cache_with_k(f->base);
        char path[4500];
        ff_find(f->base, which[i], path, sizeof path);
        plant_fifo(path);
        pid_t pid = fsc_test_fork();
        if (pid == 0) {
            fsc_cache *own = NULL;
            child_check(fsc_open(f->base, NULL, &own) == FSC_OK, 2);
            fsc_entry *e = NULL;
            int rc = fsc_get(own, "k", 1, &e);
            child_check(rc == FSC_MISS || rc == FSC_ECORRUPT || rc == FSC_OK, 3);
            fsc_entry_free(e);
            child_check(fsc_set(own, "k2", 2, "value 2", 7) == FSC_OK, 4);
            child_check(fsc_get(own, "k2", 2, &e) == FSC_OK, 5);
            fsc_entry_free(e);
            verify_problems(own, 1);
            child_check(!is_fifo(path), 6);
            child_check(verify_problems(own, 0) == 0, 7);
            fsc_close(own);
            _exit(0);
        }
        assert_child_exit(pid, 0);
    }
}

/* fsc_set_file of a FIFO (copied or moved) or of a symbolic link (moved):
 * FSC_EINVAL naming what it is, at once, and nothing moved or stored. */
static void set_file_refuses_non_regular(void **state) {
    struct ff *f = *state;
    fsc_cache *c = ff_open(f->base);
    char fifo[4300], target[4300], link[4300];
    snprintf(fifo, sizeof fifo, "%s/fifo", f->dir);
    snprintf(target, sizeof target, "%s/target", f->dir);
    snprintf(link, sizeof link, "%s/link", f->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    FILE *fp = fopen(target, "w");
    fputs("the link's target", fp);
    fclose(fp);
    assert_int_equal(symlink(target, link), 0);

    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        child_check(fsc_set_file(c, "k", 1, -1, fifo, 0) == FSC_EINVAL, 2);
        child_check(strstr(fsc_errmsg(), "FIFO") != NULL, 3);
        child_check(fsc_set_file(c, "k", 1, -1, fifo, FSC_MOVE) == FSC_EINVAL, 4);
        child_check(is_fifo(fifo), 5);
        _exit(0);
    }
    assert_child_exit(pid, 0);

    assert_fsc_status(fsc_set_file(c, "k", 1, -1, link, FSC_MOVE), FSC_EINVAL);
    assert_non_null(strstr(fsc_errmsg(), "symbolic link"));
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* the link stays where it was */
    fsc_entry *e = NULL;
    assert_fsc_status(fsc_get(c, "k", 1, &e), FSC_MISS);
    /* Copying through the link stores its target's content. */
    assert_fsc_ok(fsc_set_file(c, "k", 1, -1, link, 0));
    assert_fsc_ok(fsc_get(c, "k", 1, &e));
    assert_int_equal(fsc_entry_size(e), strlen("the link's target"));
    fsc_entry_free(e);
    fsc_close(c);
}

/* The whole content of path, for comparisons. */
static size_t slurp(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap);
    close(fd);
    assert_true(n >= 0);
    return (size_t)n;
}

/* Copies path to outside, then makes path a hard link to that copy (so that
 * it still reads as valid). Returns the copy's size, its bytes in buf. */
static size_t link_from_outside(const char *path, const char *outside, char *buf, size_t cap) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, outside);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(link(outside, path), 0);
    return slurp(outside, buf, cap);
}

/* A meta or pack file hard-linked to a file outside base_dir (a copy of the
 * real one, so that it reads as valid): the cache writes none of its bytes
 * in place through the link; the file outside keeps its content. */
static void hard_link_as_meta_or_pack(void **state) {
    struct ff *f = *state;
    int (*which[2])(const char *) = {is_meta, is_pack};
    static char before[1 << 16], after[1 << 16];
    for (int i = 0; i < 2; i++) {
        fresh_cache_with_k(f->base);
        unlink(f->outside);
        char path[4500];
        ff_find(f->base, which[i], path, sizeof path);
        size_t n = link_from_outside(path, f->outside, before, sizeof before);

        fsc_cache *c = ff_open_packed(f->base);
        char key[16];
        /* Enough keys that some land in the linked file's shard (each of
         * 256 shards is missed with odds of about 1 in 100,000). */
        for (int k = 0; k < 3000; k++) {
            snprintf(key, sizeof key, "key-%d", k);
            assert_fsc_ok(fsc_set(c, key, strlen(key), "some value", 10));
        }
        assert_fsc_ok(fsc_delete(c, "key-3", 5));
        fsc_entry *e = NULL;
        assert_fsc_ok(fsc_get(c, "key-7", 5, &e));
        fsc_entry_free(e);
        verify_problems(c, 1);
        assert_int_equal(verify_problems(c, 0), 0);
        fsc_close(c);

        assert_int_equal(slurp(f->outside, after, sizeof after), n);
        assert_memory_equal(before, after, n);
    }
}

/* The lock file hard-linked to a file outside base_dir: fsc_open refuses
 * with FSC_EFORMAT (the lock file cannot be replaced under processes that may hold locks on
 * it) and the file outside keeps its bytes. */
static void hard_link_as_lock(void **state) {
    struct ff *f = *state;
    static char before[1 << 16], after[1 << 16];
    fsc_close(ff_open(f->base));
    char lock[4300];
    snprintf(lock, sizeof lock, "%s/lock", f->base);
    size_t n = link_from_outside(lock, f->outside, before, sizeof before);
    fsc_cache *c = NULL;
    int rc = fsc_open(f->base, NULL, &c);
    if (rc == FSC_OK) {
        fsc_set(c, "k", 1, "value", 5);
        fsc_invalidate(c, 1);
        fsc_close(c);
        fail_msg("fsc_open took a lock file with another link");
    }
    assert_int_equal(rc, FSC_EFORMAT);
    assert_non_null(strstr(fsc_errmsg(), lock));
    assert_int_equal(slurp(f->outside, after, sizeof after), n);
    assert_memory_equal(before, after, n);
}

/* A symbolic link planted as a shard directory or as its meta file: the
 * cache still opens, works, and verify repairs the shard. */
static void symlink_in_one_shard(void **state) {
    struct ff *f = *state;
    for (int i = 0; i < 2; i++) {
        fresh_cache_with_k(f->base);
        mkdir(f->outside, 0700);
        char path[4500], shard[4500];
        ff_find(f->base, is_meta, path, sizeof path);
        snprintf(shard, sizeof shard, "%.*s", (int)(strrchr(path, '/') - path), path);
        if (i == 0) {
            assert_int_equal(unlink(path), 0);
            assert_int_equal(symlink(f->outside, path), 0);
        } else {
            char cmd[4600];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", shard);
            assert_int_equal(system(cmd), 0);
            assert_int_equal(symlink(f->outside, shard), 0);
        }
        fsc_cache *c = NULL;
        assert_fsc_ok(fsc_open(f->base, NULL, &c));
        fsc_verify_report r = {sizeof r, 0, 0, 0};
        assert_fsc_ok(fsc_verify(c, 1, &r));
        assert_int_equal(verify_problems(c, 0), 0);
        struct stat st;
        assert_int_equal(lstat(i == 0 ? path : shard, &st) == 0 && S_ISLNK(st.st_mode), 0);
        assert_fsc_ok(fsc_set(c, "k", 1, "again", 5));
        fsc_entry *e = NULL;
        assert_fsc_ok(fsc_get(c, "k", 1, &e));
        fsc_entry_free(e);
        fsc_close(c);
        rmdir(f->outside);
    }
}

int main(void) {
#define FF_TEST(t) cmocka_unit_test_setup_teardown(t, ff_setup, ff_teardown)
    const struct CMUnitTest tests[] = {
        FF_TEST(fifo_as_entry),
        FF_TEST(fifo_as_payload),
        FF_TEST(fifo_as_marker),
        FF_TEST(fifo_as_meta_or_pack),
        FF_TEST(set_file_refuses_non_regular),
        FF_TEST(hard_link_as_meta_or_pack),
        FF_TEST(hard_link_as_lock),
        FF_TEST(symlink_in_one_shard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
