/* Several processes with several threads each, all calling
 * fsc_get_or_create on many keys at once: a caller only ever waits for one
 * key, so every call must give the value (no FSC_EDEADLK: whatever the
 * kernel's per-process deadlock detection thinks of threads waiting on
 * different record locks, there is no deadlock here). */
#include "dogpile_test.h"

#define PROCESSES 6
#define THREADS 6
#define KEYS 300

struct worker {
    fsc_cache *c;
    int id;
    int failures;
    int first_status;
    char first_message[256];
};

static int store_key_name(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    (void)ctx;
    return fsc_set(c, key, key_len, key, key_len) != FSC_OK;
}

static void *work(void *arg) {
    struct worker *w = arg;
    char k[32];
    for (int i = 0; i < KEYS; i++) {
        /* Every thread walks the keys from a different place. */
        snprintf(k, sizeof k, "mixed-%d", (i * 7 + w->id) % KEYS);
        fsc_entry *e = NULL;
        int st = fsc_get_or_create(w->c, LT_KEY(k), -1, store_key_name, NULL, &e);
        if (st != FSC_OK || !lt_entry_is(e, k)) {
            if (w->failures++ == 0) {
                w->first_status = st;
                snprintf(w->first_message, sizeof w->first_message, "%s", fsc_errmsg());
            }
        }
        fsc_entry_free(e);
    }
    return NULL;
}

static void test_processes_of_threads(void **state) {
    struct fsc_test_ctx *t = *state;
    pid_t pids[PROCESSES];

    for (int p = 0; p < PROCESSES; p++) {
        pids[p] = fsc_test_fork();
        if (pids[p] == 0) {
            fsc_cache *own = NULL;
            child_check(fsc_open(t->dir, NULL, &own) == FSC_OK, 2);
            struct worker w[THREADS];
            pthread_t th[THREADS];
            for (int i = 0; i < THREADS; i++) {
                w[i] = (struct worker){own, p * THREADS + i, 0, FSC_OK, ""};
                child_check(pthread_create(&th[i], NULL, work, &w[i]) == 0, 3);
            }
            int failures = 0;
            for (int i = 0; i < THREADS; i++) {
                pthread_join(th[i], NULL);
                if (w[i].failures && !failures)
                    fprintf(stderr, "process %d thread %d: %d failed calls, first %s (%s)\n", p, i, w[i].failures,
                            fsc_strerror(w[i].first_status), w[i].first_message);
                failures += w[i].failures;
            }
            _exit(failures ? 1 : 0);
        }
    }
    int failed = 0;
    for (int p = 0; p < PROCESSES; p++)
        failed += tb_wait(pids[p]) != 0;
    if (failed)
        fail_msg("%d of %d processes had failed fsc_get_or_create calls", failed, PROCESSES);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        LT_TEST(test_processes_of_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
