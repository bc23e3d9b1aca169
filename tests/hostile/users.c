/* Caches among several local users (FSC_OWNERSHIP in fsc.h): a cache
 * directory that another user planted, owns a part of, or may write is
 * refused with FSC_EACCES; a cache shared with fsc_options.shared_group
 * works between two members of the group, whatever their umask, and keeps
 * out a user who is not one. Real users are created for the run (useradd)
 * and removed after it; each step runs in a child that has become one of
 * them. Needs root: skipped (exit 77) otherwise. */
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fsc_test.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

/* mallory plants caches; alice and bob share one through group `group`. */
static struct user {
    char name[32];
    uid_t uid;
    gid_t gid;
} mallory, alice, bob;
static char group[32];
static gid_t group_gid;
static char work[4096]; /* root-owned, 01777 like /tmp: where anyone may plant a directory */

static int run(const char *cmd) {
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "'%s' failed (%d)\n", cmd, rc);
    return rc;
}

static int add_user(struct user *u, const char *suffix, int in_group) {
    char cmd[256];
    snprintf(u->name, sizeof u->name, "fscu%d%s", (int)getpid(), suffix);
    snprintf(cmd, sizeof cmd, "useradd -M -N -s /usr/sbin/nologin %s%s %s", in_group ? "-G " : "",
             in_group ? group : "", u->name);
    if (run(cmd) != 0)
        return -1;
    struct passwd *pw = getpwnam(u->name);
    if (!pw)
        return -1;
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    return 0;
}

static void del_user(const struct user *u) {
    char cmd[128];
    if (u->name[0]) {
        snprintf(cmd, sizeof cmd, "userdel %s", u->name);
        run(cmd);
    }
}

static int setup(void **state) {
    (void)state;
    char cmd[128];
    snprintf(group, sizeof group, "fscg%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "groupadd %s", group);
    if (run(cmd) != 0)
        return -1;
    struct group *gr = getgrnam(group);
    if (!gr)
        return -1;
    group_gid = gr->gr_gid;
    char *t = fsc_test_tempdir();
    if (!t)
        return -1;
    snprintf(work, sizeof work, "%s", t);
    free(t);
    if (chmod(work, 01777) != 0)
        return -1;
    return add_user(&mallory, "m", 0) || add_user(&alice, "a", 1) || add_user(&bob, "b", 1) ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    del_user(&mallory);
    del_user(&alice);
    del_user(&bob);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "groupdel %s", group);
    run(cmd);
    tb_rmtree(work);
    return 0;
}

/* Runs fn(dir) in a child that has become u (with its groups) under umask
 * 077, and returns the child's exit code. */
static int as_user(const struct user *u, void (*fn)(const char *), const char *dir) {
    pid_t pid = fork();
    if (pid == 0) {
        umask(077);
        if (initgroups(u->name, u->gid) != 0 || setgid(u->gid) != 0 || setuid(u->uid) != 0)
            _exit(99);
        fn(dir);
        _exit(0);
    }
    return tb_wait(pid);
}

static void path_in(char *out, const char *name) { snprintf(out, 4200, "%s/%s", work, name); }

static fsc_options shared_opts(void) {
    fsc_options o;
    fsc_options_init(&o);
    o.shared_group = group_gid;
    return o;
}

/* In a child: the cache in dir opened with shared_opts; else _exit(code). */
static fsc_cache *open_shared(const char *dir, int code) {
    fsc_options o = shared_opts();
    fsc_cache *c = NULL;
    child_check(fsc_open(dir, &o, &c) == FSC_OK, code);
    return c;
}

/* In a child: fsc_open(dir) with opts must give FSC_EACCES naming dir. */
static void expect_refused(const char *dir, const fsc_options *opts) {
    fsc_cache *c = NULL;
    int rc = fsc_open(dir, opts, &c);
    if (rc != FSC_EACCES) {
        fprintf(stderr, "uid %d: fsc_open('%s') gave %s (%s), want FSC_EACCES\n", (int)geteuid(), dir,
                fsc_strerror(rc), fsc_errmsg());
        _exit(10);
    }
    if (!strstr(fsc_errmsg(), dir)) {
        fprintf(stderr, "message '%s' does not name '%s'\n", fsc_errmsg(), dir);
        _exit(11);
    }
    child_check(c == NULL, 12);
}

static void child_value_is(fsc_cache *c, const char *key, const char *want, int code) {
    fsc_entry *e = NULL;
    child_check(fsc_get(c, key, strlen(key), &e) == FSC_OK, code);
    child_check(fsc_entry_size(e) == strlen(want) && memcmp(fsc_entry_data(e), want, strlen(want)) == 0, code);
    fsc_entry_free(e);
}

static int chmod_all(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)flag;
    (void)ftw;
    return chmod(path, S_ISDIR(st->st_mode) ? 0777 : 0666);
}

/* mallory: a cache with her value for the key, then open to everyone. */
static void plant_world_writable(const char *dir) {
    fsc_cache *c;
    child_check(fsc_open(dir, NULL, &c) == FSC_OK, 20);
    child_check(fsc_set(c, "build-id", 8, "forged", 6) == FSC_OK, 21);
    fsc_close(c);
    child_check(nftw(dir, chmod_all, 16, FTW_PHYS) == 0, 22);
}

static void refused_private(const char *dir) { expect_refused(dir, NULL); }

static void world_writable_cache_of_another_user(void **state) {
    (void)state;
    char dir[4200];
    path_in(dir, "planted");
    assert_int_equal(as_user(&mallory, plant_world_writable, dir), 0);
    assert_int_equal(as_user(&alice, refused_private, dir), 0);
    /* Not even a group member sharing by group trusts a world-writable cache. */
    assert_int_equal(as_user(&bob, refused_private, dir), 0);
}

/* An empty world-writable directory (sticky or not), made by another user
 * or by the caller, is refused before anything is written into it. */
static void mkdir_mode(const char *dir, mode_t mode) {
    child_check(mkdir(dir, 0700) == 0, 30);
    child_check(chmod(dir, mode) == 0, 31);
}
static void plant_empty_1777(const char *dir) { mkdir_mode(dir, 01777); }
static void plant_empty_0777(const char *dir) { mkdir_mode(dir, 0777); }
static void empty_0777_refused(const char *dir) {
    mkdir_mode(dir, 0777);
    expect_refused(dir, NULL);
}

static void world_writable_empty_dir(void **state) {
    (void)state;
    char dir[4200], marker[4300];
    path_in(dir, "sticky");
    assert_int_equal(as_user(&mallory, plant_empty_1777, dir), 0);
    assert_int_equal(as_user(&alice, refused_private, dir), 0);
    snprintf(marker, sizeof marker, "%s/FSC-FORMAT", dir);
    assert_int_equal(access(marker, F_OK), -1);
    path_in(dir, "open");
    assert_int_equal(as_user(&mallory, plant_empty_0777, dir), 0);
    assert_int_equal(as_user(&alice, refused_private, dir), 0);
    path_in(dir, "own-0777");
    assert_int_equal(as_user(&alice, empty_0777_refused, dir), 0);
}

/* alice's cache (0700, hers), with one part belonging to mallory: a shard
 * directory renamed in, or a lock file mallory keeps open to hold locks. */
static void make_cache(const char *dir) {
    fsc_cache *c;
    child_check(fsc_open(dir, NULL, &c) == FSC_OK, 40);
    child_check(fsc_set(c, "key", 3, "alice's", 7) == FSC_OK, 41);
    fsc_close(c);
}

static void part_owned_by_another_user(void **state) {
    (void)state;
    const char *parts[] = {"shards", "lock", "tmp", "FSC-FORMAT"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char dir[4200], part[4300];
        snprintf(part, sizeof part, "part-%s", parts[i]);
        path_in(dir, part);
        assert_int_equal(as_user(&alice, make_cache, dir), 0);
        snprintf(part, sizeof part, "%s/%s", dir, parts[i]);
        struct stat st;
        assert_int_equal(lstat(part, &st), 0);
        /* Readable by alice, so only the owner tells it from her own. */
        assert_int_equal(chown(part, mallory.uid, mallory.gid), 0);
        assert_int_equal(chmod(part, S_ISDIR(st.st_mode) ? 0755 : 0644), 0);
        assert_int_equal(as_user(&alice, refused_private, dir), 0);
        /* Handed back, it opens again. */
        assert_int_equal(chown(part, alice.uid, alice.gid), 0);
        assert_int_equal(chmod(part, S_ISDIR(st.st_mode) ? 0700 : 0600), 0);
        assert_int_equal(as_user(&alice, make_cache, dir), 0);
    }
}

/* The caller's own directory, 0700 or 0755, made before fsc_open: accepted. */
static void own_dir_accepted(const char *dir) {
    char sub[4300];
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s-%o", dir, i ? 0755 : 0700);
        mkdir_mode(sub, i ? 0755 : 0700);
        make_cache(sub);
        make_cache(sub); /* and reopened */
    }
}

static void own_directory_accepted(void **state) {
    (void)state;
    char dir[4200];
    path_in(dir, "own");
    assert_int_equal(as_user(&alice, own_dir_accepted, dir), 0);
}

/* Root is no exception: alice's cache is hers. */
static void root_refuses_a_users_cache(void **state) {
    (void)state;
    char dir[4200];
    path_in(dir, "alice-for-root");
    assert_int_equal(as_user(&alice, make_cache, dir), 0);
    fsc_cache *c = NULL;
    assert_fsc_status(fsc_open(dir, NULL, &c), FSC_EACCES);
    assert_non_null(strstr(fsc_errmsg(), "owned by uid"));
}

/* ---- a cache shared by alice and bob through their group ---- */

static void alice_shares(const char *dir) {
    fsc_options o = shared_opts();
    o.pack_limit = 8; /* both packed values and values in files of their own */
    fsc_cache *c;
    child_check(fsc_open(dir, &o, &c) == FSC_OK, 50);
    child_check(fsc_set(c, "small", 5, "s", 1) == FSC_OK, 51);
    child_check(fsc_set(c, "big", 3, "from alice, unpacked", 20) == FSC_OK, 52);
    char moved[4400];
    snprintf(moved, sizeof moved, "%s.moved", dir);
    int fd = open(moved, O_WRONLY | O_CREAT | O_EXCL, 0600);
    child_check(fd >= 0 && write(fd, "moved in", 8) == 8, 53);
    close(fd);
    child_check(fsc_set_file(c, "moved", 5, -1, moved, FSC_MOVE) == FSC_OK, 54);
    fsc_close(c);
}

static void bob_uses_shared(const char *dir) {
    fsc_cache *c = open_shared(dir, 60);
    child_value_is(c, "small", "s", 61);
    child_value_is(c, "big", "from alice, unpacked", 62);
    child_value_is(c, "moved", "moved in", 63);
    child_check(fsc_set(c, "big", 3, "from bob", 8) == FSC_OK, 64);
    child_check(fsc_set(c, "small", 5, "b", 1) == FSC_OK, 65);
    for (int i = 0; i < 64; i++) { /* new shard directories, packs and tables, made by bob */
        char k[16];
        snprintf(k, sizeof k, "bob%d", i);
        child_check(fsc_set(c, k, strlen(k), "0123456789abcdef", i % 2 ? 16 : 1) == FSC_OK, 66);
    }
    fsc_close(c);
}

static void alice_reads_bobs(const char *dir) {
    fsc_cache *c = open_shared(dir, 70);
    child_value_is(c, "big", "from bob", 71);
    child_value_is(c, "small", "b", 72);
    child_value_is(c, "bob7", "0123456789abcdef", 73);
    child_check(fsc_verify(c, 0, NULL) == FSC_OK, 74);
    fsc_close(c);
}

static void mallory_not_in_group(const char *dir) {
    fsc_options o = shared_opts();
    fsc_cache *c = NULL;
    child_check(fsc_open(dir, &o, &c) == FSC_EACCES, 80);
    child_check(strstr(fsc_errmsg(), "not a member") != NULL, 81);
}

static int bad_modes;
static int check_shared_mode(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)flag;
    (void)ftw;
    mode_t want = S_ISDIR(st->st_mode) ? 02770 : 0660;
    if ((st->st_mode & 07777) != want || st->st_gid != group_gid) {
        fprintf(stderr, "%s has mode %04o group %d, want %04o group %d\n", path, (unsigned)(st->st_mode & 07777),
                (int)st->st_gid, (unsigned)want, (int)group_gid);
        bad_modes++;
    }
    return 0;
}

static void shared_group_between_two_users(void **state) {
    (void)state;
    char dir[4200];
    /* Missing parents are made for the group too. */
    path_in(dir, "team/cache");
    assert_int_equal(as_user(&alice, alice_shares, dir), 0);
    assert_int_equal(as_user(&bob, bob_uses_shared, dir), 0);
    assert_int_equal(as_user(&alice, alice_reads_bobs, dir), 0);
    /* Both worked under umask 077, yet everything is the group's. */
    bad_modes = 0;
    char team[4200];
    path_in(team, "team");
    assert_int_equal(nftw(team, check_shared_mode, 16, FTW_PHYS), 0);
    assert_int_equal(bad_modes, 0);
    /* Not a member: refused; a member without shared_group: refused too
     * (the directory is group-writable). */
    assert_int_equal(as_user(&mallory, mallory_not_in_group, dir), 0);
    assert_int_equal(as_user(&bob, refused_private, dir), 0);
}

/* A member's directory writable by a group other than the sharing one. */
static void other_group_writable(const char *dir) {
    mkdir_mode(dir, 0770);
    fsc_options o = shared_opts();
    expect_refused(dir, &o);
}

static void shared_refuses_another_groups_dir(void **state) {
    (void)state;
    char dir[4200];
    path_in(dir, "alices-group");
    assert_int_equal(as_user(&alice, other_group_writable, dir), 0);
}

int main(void) {
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: creating users needs root\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(world_writable_cache_of_another_user),
        cmocka_unit_test(world_writable_empty_dir),
        cmocka_unit_test(part_owned_by_another_user),
        cmocka_unit_test(own_directory_accepted),
        cmocka_unit_test(root_refuses_a_users_cache),
        cmocka_unit_test(shared_group_between_two_users),
        cmocka_unit_test(shared_refuses_another_groups_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
