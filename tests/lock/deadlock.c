/* Two processes taking two keys in opposite order: the kernel refuses one
 * of them with FSC_EDEADLK, which then holds nothing; nobody hangs. */
#include "lock_test.h"

/* Takes first, says so, waits for "go", then waits forever for second.
 * Exit 0: got both; 1: FSC_EDEADLK (and released first); else a failure. */
static void take_in_order(fsc_cache *c, const char *dir, const char *first, const char *second, int held_fd,
                          int go_fd) {
    fsc_cache *own = NULL;
    if (dir) {
        child_check(fsc_open(dir, NULL, &own) == FSC_OK, 10);
        c = own;
    }
    fsc_lock_handle *a = NULL, *b = NULL;
    child_check(fsc_lock(c, LT_KEY(first), -1, &a) == FSC_OK, 11);
    child_check(lt_send(held_fd), 12);
    lt_recv(go_fd); /* returns at EOF: the parent closed the barrier */
    int st = fsc_lock(c, LT_KEY(second), -1, &b);
    if (st == FSC_EDEADLK) {
        child_check(fsc_unlock(a) == FSC_OK, 13);
        _exit(1);
    }
    child_check(st == FSC_OK, 14);
    child_check(fsc_unlock(b) == FSC_OK, 15);
    child_check(fsc_unlock(a) == FSC_OK, 16);
    _exit(0);
}

/* Forks a child that runs take_in_order(first, second) with the ends of held
 * and go that are its own. */
static pid_t fork_taker(struct fsc_test_ctx *t, const char *dir, const char *first, const char *second, lt_pipe *held,
                        lt_pipe *go) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        lt_close(&held->r);
        lt_close(&go->w);
        take_in_order(t->cache, dir, first, second, held->w, go->r);
    }
    return pid;
}

static void opposite_order(struct fsc_test_ctx *t, int own_handles) {
    lt_pipe held = lt_pipe_new(), go = lt_pipe_new();
    const char *dir = own_handles ? t->dir : NULL;

    pid_t p1 = fork_taker(t, dir, "key-one", "key-two", &held, &go);
    pid_t p2 = fork_taker(t, dir, "key-two", "key-one", &held, &go);
    lt_close(&held.w);
    lt_close(&go.r);
    /* Both hold their first key before either asks for its second. */
    assert_true(lt_recv(held.r));
    assert_true(lt_recv(held.r));
    lt_close(&go.w);

    int c1 = tb_wait(p1), c2 = tb_wait(p2);
    if (!((c1 == 0 && c2 == 1) || (c1 == 1 && c2 == 0)))
        fail_msg("exit codes %d and %d; want one 0 (got both keys) and one 1 (FSC_EDEADLK)%s", c1, c2,
                 c1 == 128 + SIGALRM || c2 == 128 + SIGALRM ? ": a process hung" : "");
    lt_pipe_close(&held);
    lt_pipe_close(&go);

    /* Nothing is left locked. */
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("key-one"), 0));
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("key-two"), 0));
}

static void test_opposite_order_inherited_handle(void **state) { opposite_order(*state, 0); }

static void test_opposite_order_own_handles(void **state) { opposite_order(*state, 1); }

/* The parent itself is one of the two processes. */
static void test_opposite_order_with_parent(void **state) {
    struct fsc_test_ctx *t = *state;
    lt_pipe held = lt_pipe_new(), go = lt_pipe_new();

    fsc_lock_handle *a = NULL, *b = NULL;
    assert_fsc_ok(fsc_lock(t->cache, LT_KEY("key-one"), -1, &a));
    pid_t p = fork_taker(t, NULL, "key-two", "key-one", &held, &go);
    lt_close(&held.w);
    lt_close(&go.r);
    assert_true(lt_recv(held.r));
    lt_close(&go.w);
    /* Whichever asks second closes the cycle; the kernel's answer says which. */
    int st = fsc_lock(t->cache, LT_KEY("key-two"), -1, &b);
    if (st == FSC_OK) {
        /* The child was refused, released key-two and left. */
        assert_child_exit(p, 1);
        assert_fsc_ok(fsc_unlock(b));
        assert_fsc_ok(fsc_unlock(a));
    } else {
        assert_fsc_status(st, FSC_EDEADLK);
        assert_fsc_ok(fsc_unlock(a));
        assert_child_exit(p, 0);
    }
    lt_pipe_close(&held);
    lt_pipe_close(&go);
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("key-one"), 0));
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("key-two"), 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_opposite_order_inherited_handle),
        LT_TEST(test_opposite_order_own_handles),
        LT_TEST(test_opposite_order_with_parent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
