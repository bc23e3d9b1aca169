/* fsc_set_file copying a file (no move) of a few MiB: kernel copy
 * (copy_file_range) where the source and the cache share a filesystem,
 * read/write where they do not.
 *  - A sparse source (holes between written pieces), copied from a
 *    descriptor whose offset is not 0: the value reads back exactly from
 *    byte 0, the offset is remembered, the descriptor's offset is left as it
 *    was, and the value verifies clean (verify_payloads, fsc_verify).
 *  - On a small tmpfs (a private mount namespace; skipped where mounting is
 *    not allowed), a copy that fills it: FSC_ENOSPC from copy_file_range,
 *    nothing left in tmp/, no value stored, the cache verifies clean.
 *  - On a small btrfs (a loop-mounted image; skipped without mkfs.btrfs or
 *    where loop mounts are not allowed), the sparse copy is a reflink: the
 *    payload's extents are shared with the source, and it verifies clean. */
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sched.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>

#include "core_test.h"

#define SPARSE_LEN ((3u << 20) + 4321) /* many copy pieces, and a part of one */
#define SPARSE_OFFSET 12345

extern char **environ;

static char mount_dir[TB_PATH_MAX], btrfs_dir[TB_PATH_MAX];

/* The sparse source, dir/sparse: pieces written at the start, across a copy
 * piece boundary and at the end, holes between them; its bytes go to want.
 * Returns it open, at SPARSE_OFFSET. */
static int make_sparse(const char *dir, unsigned char *want) {
    static const size_t at[] = {0, (1u << 20) - 100, SPARSE_LEN - 5000};
    static const size_t len[] = {70000, 300, 5000};
    char path[TB_PATH_MAX];
    core_join(path, dir, "sparse");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, SPARSE_LEN), 0);
    memset(want, 0, SPARSE_LEN);
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        tb_fill(want + at[i], len[i], i + 1);
        assert_int_equal(pwrite(fd, want + at[i], len[i], (off_t)at[i]), (ssize_t)len[i]);
    }
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_true((uint64_t)st.st_blocks * 512 < SPARSE_LEN); /* it has holes */
    assert_int_equal(lseek(fd, SPARSE_OFFSET, SEEK_SET), SPARSE_OFFSET);
    return fd;
}

/* A sparse source in src_dir copied into a cache at cache_dir (verifying
 * payloads) reads back exactly and verifies clean. */
static void copy_sparse(const char *src_dir, const char *cache_dir) {
    unsigned char *want = malloc(SPARSE_LEN), *got = malloc(SPARSE_LEN);
    const int src = make_sparse(src_dir, want);
    fsc_options o = fsc_test_options();
    o.verify_payloads = 1;
    fsc_cache *c = fsc_test_open(cache_dir, &o);
    assert_fsc_ok(fsc_set_file(c, "sparse", 6, src, NULL, 0));
    assert_int_equal(lseek(src, 0, SEEK_CUR), SPARSE_OFFSET);

    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(c, "sparse", 6, &e));
    assert_int_equal(fsc_entry_size(e), SPARSE_LEN);
    assert_int_equal(fsc_entry_offset(e), SPARSE_OFFSET);
    assert_int_equal(tb_read_all(fsc_entry_fd(e), got, SPARSE_LEN), SPARSE_LEN - SPARSE_OFFSET);
    assert_memory_equal(got, want + SPARSE_OFFSET, SPARSE_LEN - SPARSE_OFFSET);
    const unsigned char *whole = fsc_entry_data(e);
    assert_non_null(whole);
    assert_memory_equal(whole, want, SPARSE_LEN);
    fsc_entry_free(e);

    fsc_verify_report r = {sizeof r, 0, 0, 0};
    assert_fsc_ok(fsc_verify(c, 0, &r));
    assert_true(r.checked > 0);
    assert_int_equal(r.problems, 0);
    fsc_close(c);
    close(src);
    free(want);
    free(got);
}

static void test_sparse_same_filesystem(void **state) {
    struct fsc_test_ctx *t = *state;
    copy_sparse(t->dir, t->dir);
}

static void test_sparse_on_tmpfs(void **state) {
    (void)state;
    char cache_dir[TB_PATH_MAX];
    core_join(cache_dir, mount_dir, "cache");
    copy_sparse(mount_dir, cache_dir);
    tb_rmtree(cache_dir);
}

/* From the tmpfs into a cache on another filesystem: read and write. */
static void test_sparse_across_filesystems(void **state) {
    struct fsc_test_ctx *t = *state;
    copy_sparse(mount_dir, t->dir);
}

static void test_full_tmpfs(void **state) {
    (void)state;
    char cache_dir[TB_PATH_MAX], tmp_dir[TB_PATH_MAX], path[TB_PATH_MAX];
    core_join(cache_dir, mount_dir, "cache");
    core_join(tmp_dir, cache_dir, "tmp");
    core_join(path, mount_dir, "big");
    /* 5 MiB on an 8 MiB tmpfs: the source fits, a copy beside it does not. */
    const size_t len = 5u << 20;
    unsigned char *data = malloc(len);
    tb_fill(data, len, 7);
    assert_int_equal(tb_write_file(path, data, len), 0);
    free(data);
    fsc_cache *c = NULL;
    assert_fsc_ok(fsc_open(cache_dir, NULL, &c));
    assert_fsc_status(fsc_set_file(c, "big", 3, -1, path, 0), FSC_ENOSPC);
    /* The kernel copy hit the full filesystem, not a write of the fallback. */
    assert_non_null(strstr(fsc_errmsg(), "copy into 'tmp/"));
    core_assert_miss(c, "big", 3);

    DIR *d = opendir(tmp_dir);
    assert_non_null(d);
    int left = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        left += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(left, 0);
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    assert_fsc_ok(fsc_verify(c, 0, &r));
    assert_int_equal(r.problems, 0);
    fsc_close(c);
    tb_rmtree(cache_dir);
    unlink(path);
}

/* Every extent of the file at path is shared with another file (FIEMAP):
 * 1; no extents or an unshared one: 0. */
static int all_extents_shared(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    const unsigned max = 64;
    struct fiemap *m = calloc(1, sizeof *m + max * sizeof m->fm_extents[0]);
    m->fm_length = FIEMAP_MAX_OFFSET;
    m->fm_flags = FIEMAP_FLAG_SYNC;
    m->fm_extent_count = max;
    assert_int_equal(ioctl(fd, FS_IOC_FIEMAP, m), 0);
    close(fd);
    int shared = m->fm_mapped_extents > 0 && m->fm_mapped_extents < max;
    for (unsigned i = 0; i < m->fm_mapped_extents; i++)
        shared &= (m->fm_extents[i].fe_flags & FIEMAP_EXTENT_SHARED) != 0;
    free(m);
    return shared;
}

static void test_reflink_on_btrfs(void **state) {
    (void)state;
    char cache_dir[TB_PATH_MAX], entry[TB_PATH_MAX], payload[TB_PATH_MAX];
    core_join(cache_dir, btrfs_dir, "cache");
    copy_sparse(btrfs_dir, cache_dir);
    assert_int_equal(fmt_find(cache_dir, FMT_ENTRY, entry, TB_PATH_MAX), 1);
    assert_int_equal(core_find_payloads(entry, payload), 1);
    assert_true(all_extents_shared(payload));
    tb_rmtree(cache_dir);
}

/* Runs argv (searched in PATH) with its output discarded: 0 if it exits 0. */
static int run_quietly(char *const argv[]) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int status = -1;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A 160 MiB btrfs (a sparse image beside it) mounted on btrfs_dir. */
static int mount_btrfs(const char *top) {
    char image[TB_PATH_MAX];
    core_join(image, top, "btrfs.img");
    core_join(btrfs_dir, top, "btrfs");
    int fd = open(image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 160 << 20) != 0 || close(fd) != 0 || mkdir(btrfs_dir, 0700) != 0)
        return -1;
    char *mkfs[] = {"mkfs.btrfs", "-q", "-f", image, NULL};
    char *mount_loop[] = {"mount", "-o", "loop", image, btrfs_dir, NULL};
    return run_quietly(mkfs) == 0 && run_quietly(mount_loop) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest anywhere[] = {
        FSC_TEST(test_sparse_same_filesystem),
    };
    int rc = cmocka_run_group_tests_name("core_copy", anywhere, NULL, NULL);

    char *top;
    int m = core_mount_tmpfs(mount_dir, "size=8m,mode=0700", "the tmpfs tests", &top);
    if (m != 0)
        return m > 0 ? 1 : rc;
    const struct CMUnitTest on_tmpfs[] = {
        cmocka_unit_test(test_sparse_on_tmpfs),
        FSC_TEST(test_sparse_across_filesystems),
        cmocka_unit_test(test_full_tmpfs),
    };
    rc |= cmocka_run_group_tests_name("core_copy_tmpfs", on_tmpfs, NULL, NULL);
    if (umount(mount_dir) != 0) {
        fprintf(stderr, "umount %s: %s\n", mount_dir, strerror(errno));
        rc = rc ? rc : 1;
    }
    if (mount_btrfs(top) == 0) {
        const struct CMUnitTest on_btrfs[] = {cmocka_unit_test(test_reflink_on_btrfs)};
        rc |= cmocka_run_group_tests_name("core_copy_btrfs", on_btrfs, NULL, NULL);
        if (umount(btrfs_dir) != 0) {
            fprintf(stderr, "umount %s: %s\n", btrfs_dir, strerror(errno));
            rc = rc ? rc : 1;
        }
    } else {
        printf("the btrfs test skipped: no mkfs.btrfs, or no loop mount allowed here\n");
    }
    tb_rmtree(top);
    free(top);
    return rc;
}
