/* What a set on host A makes visible on host B, in network mode (the default
 * on the mount). A process on A stores; a process on B, whose handle was
 * open before and which has read the key's earlier state, reads. Values are
 * self-describing (version, length and checksum inside: mh_test.h), small
 * ones packed, large ones (4 MiB) in files of their own. */
#include "mh_test.h"

#include <fcntl.h>

#define SMALL_LEN 1000u      /* packed: below FSC_PACK_LIMIT_DEFAULT */
#define LARGE_LEN (4u << 20) /* a file of its own */
#define NEW_KEYS 3
#define OVERWRITES 6

/* Each version's length differs a little, so that a reader given another
 * version's length or bytes notices. */
static uint64_t len_of(uint64_t base, uint64_t version) { return base - 8 * version; }

/* ------------------------------------------------------------------ */
/* (b) Visible at once                                                 */
/* ------------------------------------------------------------------ */

/* The bound checked: none. B reads the new value immediately after A's set
 * returned (B is asked only once A has replied), with no wait or retry.
 * New keys: B misses, A sets, B reads it. Overwrites: B reads version 1,
 * then after each of OVERWRITES sets on A, B reads that version. */
static void check_visible_at_once(struct mh_dirs *d, uint64_t base_len) {
    struct mh_agent a = mh_agent_spawn(d->dir[MH_A], NULL);
    struct mh_agent b = mh_agent_spawn(d->dir[MH_B], NULL);
    char key[32];
    for (int k = 0; k < NEW_KEYS; k++) {
        snprintf(key, sizeof key, "new-%d", k);
        assert_int_equal(mh_agent_get(&b, key).status, FSC_MISS);
        assert_fsc_ok(mh_agent_set(&a, key, 1, len_of(base_len, 1)));
        mh_assert_reads(&b, key, 1);
    }
    assert_fsc_ok(mh_agent_set(&a, "overwritten", 1, len_of(base_len, 1)));
    mh_assert_reads(&b, "overwritten", 1);
    for (uint64_t v = 2; v <= 1 + OVERWRITES; v++) {
        assert_fsc_ok(mh_agent_set(&a, "overwritten", v, len_of(base_len, v)));
        mh_assert_reads(&b, "overwritten", v);
    }
    mh_agent_end(&a);
    mh_agent_end(&b);
}

static void test_small_values_visible_at_once(void **state) { check_visible_at_once(*state, SMALL_LEN); }

static void test_large_values_visible_at_once(void **state) { check_visible_at_once(*state, LARGE_LEN); }

/* ------------------------------------------------------------------ */
/* (c) Overwrites read while they are written                          */
/* ------------------------------------------------------------------ */

#define SMALL_VERSIONS 100
#define LARGE_VERSIONS 12

/* What a reader reports when it is done. */
struct read_report {
    uint64_t reads, versions_seen;
};

/* Reads every version number the writer's side has announced so far (the
 * pipe is non-blocking): the highest, and whether the pipe has closed. */
static uint64_t drain_floor(int fd, uint64_t floor, int *closed) {
    uint64_t v;
    ssize_t n;
    while ((n = read(fd, &v, sizeof v)) == (ssize_t)sizeof v)
        if (v > floor)
            floor = v;
    if (n == 0)
        *closed = 1;
    return floor;
}

/* The reader on B: reads the key in a loop while A overwrites it. Each read
 * must be FSC_OK (never FSC_ECORRUPT, a torn or mixed value, or a miss) and
 * whole, its version no lower than the last one read (never backwards) and
 * no lower than every version whose set had returned before the read began
 * (`floor`, announced through floor_r once A's set returned). Once the pipe
 * closes, one more read must give the last version. */
static void reader(const char *dir, const char *key, int floor_r, int report_w) {
    fsc_cache *c = NULL;
    child_check(fsc_open(dir, NULL, &c) == FSC_OK, 2);
    child_check(fcntl(floor_r, F_SETFL, O_NONBLOCK) == 0, 3);
    struct read_report rep = {0, 0};
    uint64_t last = 0, floor = 0;
    int closed = 0, done = 0;
    while (!done) {
        done = closed;
        floor = drain_floor(floor_r, floor, &closed);
        fsc_entry *e = NULL;
        uint64_t v = 0;
        int intact = 0;
        int st = fsc_get(c, LT_KEY(key), &e);
        if (st == FSC_OK)
            st = mh_entry_version(e, &v, &intact);
        fsc_entry_free(e);
        if (st != FSC_OK || !intact || v < last || v < floor || (done && v != floor)) {
            fprintf(stderr, "reader: read %llu: %s (%s), intact %d, version %llu after %llu, floor %llu%s\n",
                    (unsigned long long)rep.reads, fsc_strerror(st), fsc_errmsg(), intact, (unsigned long long)v,
                    (unsigned long long)last, (unsigned long long)floor, done ? " (the last read)" : "");
            _exit(4);
        }
        rep.versions_seen += v != last;
        rep.reads++;
        last = v;
    }
    fsc_close(c);
    child_check(tb_write_full(report_w, &rep, sizeof rep) == 0, 5);
    _exit(0);
}

/* A on A stores versions 1..versions of the key, each set followed by the
 * announcement of its version to the reader on B, which reads throughout
 * (the bound checked: each announced version at once, as in (b)). */
static void check_overwrites_read_while_written(struct mh_dirs *d, uint64_t base_len, uint64_t versions) {
    struct mh_agent a = mh_agent_spawn(d->dir[MH_A], NULL);
    assert_fsc_ok(mh_agent_set(&a, "rewritten", 1, len_of(base_len, 1)));
    int floor_fds[2], report_fds[2];
    assert_int_equal(pipe(floor_fds), 0);
    assert_int_equal(pipe(report_fds), 0);
    pid_t r = mh_fork(LT_TEST_SECONDS);
    if (r == 0) {
        close(floor_fds[1]);
        close(report_fds[0]);
        reader(d->dir[MH_B], "rewritten", floor_fds[0], report_fds[1]);
    }
    close(floor_fds[0]);
    close(report_fds[1]);
    mh_keep_fd(floor_fds[1]); /* closed by mh_teardown if the test fails: the reader then ends */
    mh_keep_fd(report_fds[0]);
    for (uint64_t v = 1; v <= versions; v++) {
        if (v > 1)
            assert_fsc_ok(mh_agent_set(&a, "rewritten", v, len_of(base_len, v)));
        if (write(floor_fds[1], &v, sizeof v) != (ssize_t)sizeof v)
            break; /* the reader has failed */
    }
    mh_drop_fd(floor_fds[1]);
    struct read_report rep = {0, 0};
    int got = tb_read_full(report_fds[0], &rep, sizeof rep);
    mh_drop_fd(report_fds[0]);
    int code = tb_wait(r);
    if (code != 0 || got != 1)
        fail_msg("the reader on B failed (exit code %d; its message is above)", code);
    print_message("reader on B: %llu reads, %llu versions seen of %llu\n", (unsigned long long)rep.reads,
                  (unsigned long long)rep.versions_seen, (unsigned long long)versions);
    mh_agent_end(&a);
}

static void test_small_overwrites_read_while_written(void **state) {
    check_overwrites_read_while_written(*state, SMALL_LEN, SMALL_VERSIONS);
}

static void test_large_overwrites_read_while_written(void **state) {
    check_overwrites_read_while_written(*state, LARGE_LEN, LARGE_VERSIONS);
}

int main(int argc, char **argv) {
    if (mh_args(argc, argv, 0, NULL) != 0)
        return 2;
    const struct CMUnitTest tests[] = {
        MH_TEST(test_small_values_visible_at_once),
        MH_TEST(test_large_values_visible_at_once),
        MH_TEST(test_small_overwrites_read_while_written),
        MH_TEST(test_large_overwrites_read_while_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
