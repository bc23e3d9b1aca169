/* One cache directory on a GlusterFS volume, opened through two FUSE mounts
 * whose clients stand for two hosts (tests/multihost/run.sh brings them up
 * and passes their mount points). What holds across hosts today: fsc_open
 * reports the network filesystem, a key's lock excludes the other host, and
 * a holder killed on one host frees the key for the other. Each "host" is a
 * process of its own with a handle on its own mount. */
#include "mh_test.h"

/* How long host B waits for a key whose holder on host A was killed: the
 * FUSE client releases the lock as the holder dies (milliseconds), so a
 * bound this loose fails only when the release is lost. */
#define MH_KILLED_HOLDER_WAIT_MS 5000

static uint32_t network_fs_of(const char *dir) {
    fsc_cache *c = NULL;
    assert_fsc_ok(fsc_open(dir, NULL, &c));
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_fsc_ok(fsc_stats(c, &st));
    assert_fsc_ok(fsc_close(c));
    return st.network_fs;
}

/* (a) The cache on the GlusterFS mount is reported as network, from either
 * host. */
static void test_open_reports_network_fs(void **state) {
    struct mh_dirs *d = *state;
    assert_int_equal(network_fs_of(d->dir[MH_A]), 1);
    assert_int_equal(network_fs_of(d->dir[MH_B]), 1);
}

/* A holder on host A: a process with its own handle on A's mount that takes
 * the key's lock, says so on `held`, releases it when `release` says so (or
 * never, if nothing is sent: it waits to be killed) and says so on `held`
 * again. */
static pid_t spawn_holder_on_a(const char *dir_a, const char *key, lt_pipe *held, lt_pipe *release) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        lt_close(&held->r);
        lt_close(&release->w);
        fsc_cache *c = NULL;
        child_check(fsc_open(dir_a, NULL, &c) == FSC_OK, 2);
        fsc_lock_handle *l = NULL;
        child_check(fsc_lock(c, LT_KEY(key), -1, &l) == FSC_OK, 3);
        child_check(lt_send(held->w), 4);
        child_check(lt_recv(release->r), 5);
        child_check(fsc_unlock(l) == FSC_OK, 6);
        child_check(lt_send(held->w), 7);
        child_check(lt_recv(release->r) == 0, 8); /* until the parent closes */
        fsc_close(c);
        _exit(0);
    }
    lt_close(&held->w);
    lt_close(&release->r);
    assert_true(lt_recv(held->r));
    return pid;
}

/* (b) While A holds the key, B's try (timeout 0) is FSC_EBUSY; once A has
 * unlocked, B gets it. Another key stays free on B throughout. */
static void test_lock_excludes_other_host(void **state) {
    struct mh_dirs *d = *state;
    lt_pipe held = lt_pipe_new(), release = lt_pipe_new();
    pid_t a = spawn_holder_on_a(d->dir[MH_A], "shared-key", &held, &release);

    assert_int_equal(lt_child_lock(NULL, d->dir[MH_B], LT_KEY("shared-key"), 0), FSC_EBUSY);
    assert_int_equal(lt_child_lock(NULL, d->dir[MH_B], LT_KEY("other-key"), 0), FSC_OK);

    assert_true(lt_send(release.w));
    assert_true(lt_recv(held.r)); /* A has unlocked */
    assert_int_equal(lt_child_lock(NULL, d->dir[MH_B], LT_KEY("shared-key"), 0), FSC_OK);

    lt_pipe_close(&release); /* A closes its cache and exits */
    assert_child_exit(a, 0);
    lt_pipe_close(&held);
}

/* (c) A holder on A killed with SIGKILL: B, which got FSC_EBUSY before,
 * gets the key within MH_KILLED_HOLDER_WAIT_MS. */
static void test_killed_holder_frees_key_for_other_host(void **state) {
    struct mh_dirs *d = *state;
    lt_pipe held = lt_pipe_new(), release = lt_pipe_new();
    pid_t a = spawn_holder_on_a(d->dir[MH_A], "victim", &held, &release);

    assert_int_equal(lt_child_lock(NULL, d->dir[MH_B], LT_KEY("victim"), 0), FSC_EBUSY);
    assert_int_equal(tb_kill(a), 128 + SIGKILL);
    assert_int_equal(lt_child_lock(NULL, d->dir[MH_B], LT_KEY("victim"), MH_KILLED_HOLDER_WAIT_MS), FSC_OK);

    lt_pipe_close(&release);
    lt_pipe_close(&held);
}

int main(int argc, char **argv) {
    if (mh_args(argc, argv, 0, NULL) != 0)
        return 2;
    const struct CMUnitTest tests[] = {
        MH_TEST(test_open_reports_network_fs),
        MH_TEST(test_lock_excludes_other_host),
        MH_TEST(test_killed_holder_frees_key_for_other_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
