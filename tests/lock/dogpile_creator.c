/* A creator that fails, stores nothing or dies: FSC_ECREATOR, nothing
 * stored, the lock released, and a waiting caller becomes the creator. */
#include "dogpile_test.h"

static void expect_failure_leaves_nothing(struct fsc_test_ctx *t, int result, const char *value) {
    struct lt_creator cr;
    fsc_entry *e = NULL;

    lt_creator_init(&cr, value);
    cr.result = result;
    assert_fsc_status(fsc_get_or_create(t->cache, LT_KEY("k"), -1, lt_create, &cr, &e), FSC_ECREATOR);
    assert_int_equal(atomic_load(&cr.calls), 1);
    assert_get_is(t->cache, "k", NULL);
    /* The lock is released for other processes and other threads. */
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("k"), 0));
    assert_fsc_ok(lt_thread_lock(t->cache, LT_KEY("k"), 0));

    /* The next caller creates it. */
    lt_creator_init(&cr, "second try");
    assert_fsc_ok(fsc_get_or_create(t->cache, LT_KEY("k"), -1, lt_create, &cr, &e));
    assert_true(lt_entry_is(e, "second try"));
    fsc_entry_free(e);
}

static void test_creator_returns_failure(void **state) { expect_failure_leaves_nothing(*state, 1, NULL); }

static void test_creator_returns_negative(void **state) { expect_failure_leaves_nothing(*state, -1, NULL); }

static void test_creator_stores_nothing(void **state) {
    expect_failure_leaves_nothing(*state, 0, NULL);
    /* The message says what happened: nothing stored, nothing deleted. */
    struct fsc_test_ctx *t = *state;
    struct lt_creator cr;
    fsc_entry *e = NULL;
    lt_creator_init(&cr, NULL);
    assert_fsc_status(fsc_get_or_create(t->cache, LT_KEY("nothing"), -1, lt_create, &cr, &e), FSC_ECREATOR);
    if (!strstr(fsc_errmsg(), "stored no value") || strstr(fsc_errmsg(), "deleted"))
        fail_msg("FSC_ECREATOR's message for a creator that stored nothing: %s", fsc_errmsg());
}

/* A creator whose value is gone when it returns (stored, then deleted at
 * once, as another caller's fsc_delete may): FSC_ECREATOR with a message
 * that says so instead of blaming the creator alone. */
static int create_then_lose(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    (void)ctx;
    return fsc_set(c, key, key_len, "v", 1) != FSC_OK || fsc_delete(c, key, key_len) != FSC_OK;
}

static void test_value_deleted_after_create(void **state) {
    struct fsc_test_ctx *t = *state;
    fsc_entry *e = NULL;
    assert_fsc_status(fsc_get_or_create(t->cache, LT_KEY("k"), -1, create_then_lose, NULL, &e), FSC_ECREATOR);
    if (!strstr(fsc_errmsg(), "stored a value") || !strstr(fsc_errmsg(), "deleted"))
        fail_msg("FSC_ECREATOR's message does not tell of a deletion: %s", fsc_errmsg());
}

/* Forks a first caller whose creator announces itself, waits for "go" and
 * then fails (die = 0) or SIGKILLs its own process (die = 1). */
static pid_t spawn_doomed_creator(struct fsc_test_ctx *t, int die, lt_pipe *entered, lt_pipe *go) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        lt_close(&entered->r);
        lt_close(&go->w);
        struct lt_creator cr;
        lt_creator_init(&cr, NULL);
        cr.result = 1;
        cr.die = die;
        cr.entered_fd = entered->w;
        cr.proceed_fd = go->r;
        fsc_entry *e = NULL;
        child_check(fsc_get_or_create(t->cache, LT_KEY("k"), -1, lt_create, &cr, &e) == FSC_ECREATOR, 2);
        _exit(0);
    }
    lt_close(&entered->w);
    lt_close(&go->r);
    return pid;
}

/* Forks a second caller that waits for the key and must become its creator. */
static pid_t spawn_successor(struct fsc_test_ctx *t, const char *counter) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        struct lt_creator cr;
        lt_creator_init(&cr, "successor");
        cr.counter = counter;
        fsc_entry *e = NULL;
        int st = fsc_get_or_create(t->cache, LT_KEY("k"), -1, lt_create, &cr, &e);
        if (st != FSC_OK) {
            fprintf(stderr, "successor: %s (%s)\n", fsc_strerror(st), fsc_errmsg());
            _exit(2);
        }
        child_check(lt_entry_is(e, "successor"), 3);
        _exit(0);
    }
    return pid;
}

static void waiter_takes_over(struct fsc_test_ctx *t, int die) {
    lt_pipe entered = lt_pipe_new(), go = lt_pipe_new();
    char *scratch = fsc_test_tempdir();
    char *counter = lt_path(scratch, "calls");

    pid_t first = spawn_doomed_creator(t, die, &entered, &go);
    assert_true(lt_recv(entered.r));
    pid_t second = spawn_successor(t, counter);
    /* The successor is really waiting in get_or_create before the failure. */
    assert_true(lt_wait_blocked(second));
    assert_true(lt_send(go.w));

    assert_child_exit(first, die ? 128 + SIGKILL : 0);
    assert_child_exit(second, 0);
    assert_int_equal(lt_file_size(counter), 1);
    assert_get_is(t->cache, "k", "successor");
    assert_fsc_ok(lt_child_lock(t->cache, NULL, LT_KEY("k"), 0));

    lt_pipe_close(&entered);
    lt_pipe_close(&go);
    tb_rmtree(scratch);
    free(scratch);
    free(counter);
}

static void test_waiter_takes_over_after_failure(void **state) { waiter_takes_over(*state, 0); }

static void test_waiter_takes_over_after_creator_dies(void **state) { waiter_takes_over(*state, 1); }

struct doomed_thread {
    fsc_cache *c;
    struct lt_creator cr;
    int status;
};

static void *fail_in_thread(void *arg) {
    struct doomed_thread *d = arg;
    fsc_entry *e = NULL;
    d->status = fsc_get_or_create(d->c, LT_KEY("k"), -1, lt_create, &d->cr, &e);
    return NULL;
}

/* The same between two threads of one process. */
static void test_thread_takes_over_after_failure(void **state) {
    struct fsc_test_ctx *t = *state;
    lt_pipe entered = lt_pipe_new(), go = lt_pipe_new();
    struct doomed_thread d = {.c = t->cache, .status = FSC_EIO};
    struct lt_goc_thread s = {.c = t->cache, .key = "k", .status = FSC_EIO};
    pthread_t td, ts;

    lt_creator_init(&d.cr, NULL);
    d.cr.result = 1;
    d.cr.entered_fd = entered.w;
    d.cr.proceed_fd = go.r;
    lt_creator_init(&s.cr, "successor");
    assert_int_equal(pthread_create(&td, NULL, fail_in_thread, &d), 0);
    assert_true(lt_recv(entered.r));
    assert_int_equal(pthread_create(&ts, NULL, lt_goc_thread_body, &s), 0);
    assert_true(lt_send(go.w));
    assert_int_equal(pthread_join(td, NULL), 0);
    assert_int_equal(pthread_join(ts, NULL), 0);

    assert_fsc_status(d.status, FSC_ECREATOR);
    assert_fsc_ok(s.status);
    assert_true(s.right_value);
    assert_int_equal(atomic_load(&s.cr.calls), 1);
    assert_get_is(t->cache, "k", "successor");
    lt_pipe_close(&entered);
    lt_pipe_close(&go);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_creator_returns_failure),
        LT_TEST(test_creator_returns_negative),
        LT_TEST(test_creator_stores_nothing),
        LT_TEST(test_value_deleted_after_create),
        LT_TEST(test_waiter_takes_over_after_failure),
        LT_TEST(test_waiter_takes_over_after_creator_dies),
        LT_TEST(test_thread_takes_over_after_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
