/* Readers take no lock: a writer process stopped (SIGSTOP) anywhere inside
 * its change, even while it rewrites a shard's table, never keeps a get of
 * another process from returning, and the get finds the key's value. */
#include "lock_test.h"

#define SW_ROUNDS 3000
/* A reader child does one get per key: if it is still there after this
 * many seconds it is blocked, and its alarm fails the round. */
#define SW_READER_SECONDS 10
#define SW_KEYS 4

static const char *sw_key(int i) {
    static const char *keys[SW_KEYS] = {"hot-0", "hot-1", "hot-2", "hot-3"};
    return keys[i];
}

/* Replaces the same few values for ever: every set kills the record it
 * replaces, so nearly every set compacts its shard's pack and rewrites the
 * shard's table; new keys now and then grow the tables too. */
static void writer(const char *dir) {
    fsc_cache *c = NULL;
    child_check(fsc_open(dir, NULL, &c) == FSC_OK, 2);
    char value[256], extra[32];
    for (unsigned n = 0;; n++) {
        int len = snprintf(value, sizeof value, "value %u of the writer", n);
        child_check(fsc_set(c, LT_KEY(sw_key((int)(n % SW_KEYS))), value, (size_t)len) == FSC_OK, 3);
        if (n % 16 == 0) {
            int kl = snprintf(extra, sizeof extra, "extra-%u", n / 16 % 512);
            child_check(fsc_set(c, extra, (size_t)kl, value, (size_t)len) == FSC_OK, 4);
        }
    }
}

/* Gets every hot key through a handle of its own: each has a value. */
static void reader(const char *dir) {
    alarm(SW_READER_SECONDS);
    fsc_cache *c = NULL;
    child_check(fsc_open(dir, NULL, &c) == FSC_OK, 2);
    for (int i = 0; i < SW_KEYS; i++) {
        fsc_entry *e = NULL;
        child_check(fsc_get(c, LT_KEY(sw_key(i)), &e) == FSC_OK, 3);
        child_check(fsc_entry_size(e) > 6 && memcmp(fsc_entry_data(e), "value ", 6) == 0, 4);
        fsc_entry_free(e);
    }
    fsc_close(c);
    _exit(0);
}

static void test_stopped_writer_blocks_no_reader(void **state) {
    struct fsc_test_ctx *t = *state;
    alarm(0); /* each round is bounded by its reader's alarm */
    for (int i = 0; i < SW_KEYS; i++)
        assert_fsc_ok(fsc_set(t->cache, LT_KEY(sw_key(i)), "value first", 11));
    pid_t w = fsc_test_fork();
    if (w == 0) {
        alarm(0);
        writer(t->dir);
    }
    unsigned seed = (unsigned)getpid();
    int failed_round = -1, code = 0;
    for (int round = 0; round < SW_ROUNDS && failed_round < 0; round++) {
        /* Let it run a random while (this only picks where it stops). */
        volatile unsigned spin = 0;
        for (unsigned n = rand_r(&seed) % 2000000; n > 0; n--)
            spin += n;
        assert_int_equal(kill(w, SIGSTOP), 0);
        int st;
        assert_int_equal(waitpid(w, &st, WUNTRACED), w);
        if (!WIFSTOPPED(st))
            fail_msg("the writer ended (status %d)", st);
        pid_t r = fsc_test_fork();
        if (r == 0)
            reader(t->dir);
        code = tb_wait(r);
        if (code != 0)
            failed_round = round;
        assert_int_equal(kill(w, SIGCONT), 0);
    }
    kill(w, SIGKILL);
    tb_wait(w);
    if (failed_round >= 0)
        fail_msg("round %d: the reader exited with %d%s", failed_round, code,
                 code == 128 + SIGALRM ? " (its get blocked on the stopped writer)" : "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_stopped_writer_blocks_no_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
