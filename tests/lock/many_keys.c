/* Thousands of keys held at once, over one or several cache directories
 * (one lock file each), all seen busy by another process. */
#include "lock_test.h"

#define KEYS 1000
#define MAX_DIRS 10

static void key_name(char *buf, size_t cap, int i) { snprintf(buf, cap, "many-%d", i); }

static void hold_many(int ndirs) {
    char *dirs[MAX_DIRS];
    fsc_cache *caches[MAX_DIRS];
    static fsc_lock_handle *holds[MAX_DIRS][KEYS];
    char k[32];

    for (int d = 0; d < ndirs; d++) {
        dirs[d] = fsc_test_tempdir();
        assert_non_null(dirs[d]);
        assert_fsc_ok(fsc_open(dirs[d], NULL, &caches[d]));
    }
    for (int d = 0; d < ndirs; d++)
        for (int i = 0; i < KEYS; i++) {
            key_name(k, sizeof k, i);
            assert_fsc_ok(fsc_lock(caches[d], LT_KEY(k), 0, &holds[d][i]));
        }

    /* Every key of every directory is busy for a process with handles of
     * its own; a key nobody holds is free. */
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        for (int d = 0; d < ndirs; d++) {
            fsc_cache *own = NULL;
            child_check(fsc_open(dirs[d], NULL, &own) == FSC_OK, 2);
            for (int i = 0; i < KEYS; i++) {
                fsc_lock_handle *l = NULL;
                key_name(k, sizeof k, i);
                int st = fsc_lock(own, LT_KEY(k), 0, &l);
                if (st != FSC_EBUSY) {
                    fprintf(stderr, "child: dir %d key %d gave %s\n", d, i, fsc_strerror(st));
                    _exit(3);
                }
            }
            fsc_lock_handle *l = NULL;
            child_check(fsc_lock(own, LT_KEY("nobody-holds-this"), 0, &l) == FSC_OK, 4);
            child_check(fsc_unlock(l) == FSC_OK, 5);
            fsc_close(own);
        }
        _exit(0);
    }
    assert_child_exit(pid, 0);

    /* Released one directory at a time: the others stay held. */
    for (int d = 0; d < ndirs; d++) {
        for (int i = 0; i < KEYS; i++)
            assert_fsc_ok(fsc_unlock(holds[d][i]));
        key_name(k, sizeof k, KEYS - 1);
        assert_fsc_ok(lt_child_lock(NULL, dirs[d], LT_KEY(k), 0));
        if (d + 1 < ndirs)
            assert_fsc_status(lt_child_lock(NULL, dirs[d + 1], LT_KEY(k), 0), FSC_EBUSY);
    }

    /* Everything is free again, through the inherited handles too. */
    pid = fsc_test_fork();
    if (pid == 0) {
        for (int d = 0; d < ndirs; d++)
            for (int i = 0; i < KEYS; i++) {
                fsc_lock_handle *l = NULL;
                key_name(k, sizeof k, i);
                child_check(fsc_lock(caches[d], LT_KEY(k), 0, &l) == FSC_OK, 2);
                child_check(fsc_unlock(l) == FSC_OK, 3);
            }
        _exit(0);
    }
    assert_child_exit(pid, 0);

    for (int d = 0; d < ndirs; d++) {
        fsc_close(caches[d]);
        tb_rmtree(dirs[d]);
        free(dirs[d]);
    }
}

static void test_one_dir(void **state) {
    (void)state;
    hold_many(1);
}

static void test_two_dirs(void **state) {
    (void)state;
    hold_many(2);
}

static void test_ten_dirs(void **state) {
    (void)state;
    hold_many(10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_one_dir),
        LT_TEST(test_two_dirs),
        LT_TEST(test_ten_dirs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
