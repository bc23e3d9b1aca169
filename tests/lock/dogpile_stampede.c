/* The dogpile promise: N concurrent callers of fsc_get_or_create on one
 * missing key cause exactly one creator call and all get the value. The
 * wall time is printed, not asserted: bench/lock_bench measures it.
 * FSC_STAMPEDE_REPEAT=n runs the process stampede n times (default 1). */
#include "dogpile_test.h"

#define CALLERS 16
#define WORK_MS 300

static int repeat_count(void) {
    const char *s = getenv("FSC_STAMPEDE_REPEAT");
    int n = s ? atoi(s) : 1;
    return n > 0 ? n : 1;
}

/* One round: CALLERS processes released at once by closing a pipe; returns
 * the number of creator calls and the wall time from release to the end. */
static long process_round(struct fsc_test_ctx *t, const char *scratch, int round, int64_t *wall_ms) {
    char key[64], value[64], name[64];
    snprintf(key, sizeof key, "stampede-%d", round);
    snprintf(value, sizeof value, "value of round %d", round);
    snprintf(name, sizeof name, "calls-%d", round);
    char *counter = lt_path(scratch, name);
    lt_pipe barrier = lt_pipe_new();
    pid_t pids[CALLERS];

    for (int i = 0; i < CALLERS; i++) {
        pids[i] = fsc_test_fork();
        if (pids[i] == 0) {
            lt_close(&barrier.w);
            fsc_cache *c = t->cache;
            /* Half of them bring a handle of their own. */
            if (i % 2)
                child_check(fsc_open(t->dir, NULL, &c) == FSC_OK, 2);
            struct lt_creator cr;
            lt_creator_init(&cr, value);
            cr.counter = counter;
            cr.work_ms = WORK_MS;
            child_check(!lt_recv(barrier.r), 3); /* EOF: everybody goes */
            fsc_entry *e = NULL;
            int st = fsc_get_or_create(c, LT_KEY(key), -1, lt_create, &cr, &e);
            if (st != FSC_OK) {
                fprintf(stderr, "child %d: %s (%s)\n", i, fsc_strerror(st), fsc_errmsg());
                _exit(4);
            }
            child_check(lt_entry_is(e, value), 5);
            _exit(0);
        }
    }
    lt_close(&barrier.r);
    int64_t t0 = tb_mono_ms();
    lt_close(&barrier.w);
    int bad = 0;
    for (int i = 0; i < CALLERS; i++)
        if (tb_wait(pids[i]) != 0)
            bad++;
    *wall_ms = tb_mono_ms() - t0;
    if (bad)
        fail_msg("round %d: %d of %d callers failed", round, bad, CALLERS);

    long calls = lt_file_size(counter);
    assert_get_is(t->cache, key, value);
    free(counter);
    return calls;
}

static void test_process_stampede(void **state) {
    struct fsc_test_ctx *t = *state;
    const int rounds = repeat_count();
    char *scratch = fsc_test_tempdir();
    int single = 0;
    int64_t worst = 0;
    long worst_calls = 1;

    alarm(LT_TEST_SECONDS + 3 * rounds);
    for (int r = 0; r < rounds; r++) {
        int64_t wall = 0;
        long calls = process_round(t, scratch, r, &wall);
        if (calls == 1)
            single++;
        else if (worst_calls == 1)
            worst_calls = calls;
        if (wall > worst)
            worst = wall;
    }
    printf("process stampede: %d of %d rounds with exactly one creator call; %d callers, creator %d ms, "
           "slowest round %lld ms\n",
           single, rounds, CALLERS, WORK_MS, (long long)worst);
    tb_rmtree(scratch);
    free(scratch);
    if (single != rounds)
        fail_msg("%d rounds had more (or fewer) than one creator call, e.g. %ld", rounds - single, worst_calls);
}

struct thread_caller {
    struct fsc_test_ctx *t;
    struct lt_creator *cr;
    pthread_barrier_t *start;
    int status;
    int right_value;
};

static void *call_in_thread(void *arg) {
    struct thread_caller *tc = arg;
    fsc_entry *e = NULL;
    pthread_barrier_wait(tc->start);
    tc->status = fsc_get_or_create(tc->t->cache, LT_KEY("thread-stampede"), -1, lt_create, tc->cr, &e);
    tc->right_value = tc->status == FSC_OK && lt_entry_is(e, "from one thread");
    fsc_entry_free(e);
    return NULL;
}

static void test_thread_stampede(void **state) {
    struct fsc_test_ctx *t = *state;
    struct lt_creator cr;
    pthread_barrier_t start;
    pthread_t th[CALLERS];
    struct thread_caller tc[CALLERS];

    lt_creator_init(&cr, "from one thread");
    cr.work_ms = WORK_MS;
    assert_int_equal(pthread_barrier_init(&start, NULL, CALLERS + 1), 0);
    for (int i = 0; i < CALLERS; i++) {
        tc[i] = (struct thread_caller){t, &cr, &start, FSC_EIO, 0};
        assert_int_equal(pthread_create(&th[i], NULL, call_in_thread, &tc[i]), 0);
    }
    pthread_barrier_wait(&start);
    int64_t t0 = tb_mono_ms();
    for (int i = 0; i < CALLERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    int64_t wall = tb_mono_ms() - t0;
    pthread_barrier_destroy(&start);

    for (int i = 0; i < CALLERS; i++) {
        assert_fsc_ok(tc[i].status);
        assert_true(tc[i].right_value);
    }
    assert_int_equal(atomic_load(&cr.calls), 1);
    printf("thread stampede: %d threads, %d creator call(s), %lld ms\n", CALLERS, atomic_load(&cr.calls),
           (long long)wall);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_process_stampede),
        LT_TEST(test_thread_stampede),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
