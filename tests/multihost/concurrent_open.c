/* Opens of one cache from both hosts at once: 4 processes per host, released
 * together, each keeping its handle open until every one has opened. All
 * succeed, in network mode, and none waits for another opener's close (a
 * server that grants waiting read locks only on a full unlock would hold
 * the later openers until the first closes: here nobody closes first, so
 * they would wait until the reply bound fails the test). */
#include "mh_test.h"

#define OPENERS_PER_HOST 4
#define OPENERS (2 * OPENERS_PER_HOST)

/* Releases OPENERS agents' opens at once and asserts that every open
 * returns FSC_OK (never FSC_EFORMAT from a half-created cache) in network
 * mode within MH_REPLY_MS, while every handle stays open. */
static void open_all_at_once(struct mh_dirs *d) {
    struct mh_agent a[OPENERS];
    for (int i = 0; i < OPENERS; i++)
        a[i] = mh_agent_fork(d->dir[i % 2], NULL, mh_test_seconds);
    for (int i = 0; i < OPENERS; i++)
        mh_agent_send(&a[i], (struct mh_cmd){.op = MH_OPEN});
    for (int i = 0; i < OPENERS; i++) {
        struct mh_reply r = mh_agent_reply(&a[i]);
        assert_fsc_ok(r.status);
        assert_int_equal(r.network_mode, 1);
    }
    for (int i = 0; i < OPENERS; i++)
        mh_agent_end(&a[i]);
}

/* The first opens: the cache directory does not exist yet, and the openers
 * race to create it. */
static void test_first_opens_at_once(void **state) { open_all_at_once(*state); }

/* Opens of an existing cache that a process on A keeps open throughout. */
static void test_opens_at_once_while_open_on_a(void **state) {
    struct mh_dirs *d = *state;
    struct mh_agent keeper = mh_agent_spawn(d->dir[MH_A], NULL);
    open_all_at_once(d);
    mh_agent_end(&keeper);
}

int main(int argc, char **argv) {
    if (mh_args(argc, argv, 0, NULL) != 0)
        return 2;
    const struct CMUnitTest tests[] = {
        MH_TEST(test_first_opens_at_once),
        MH_TEST(test_opens_at_once_while_open_on_a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
