/* Four processes share a 1 MiB cache: each sets values of random size
 * (1 B - 64 KiB, as bytes and as files), reads and deletes. After every set
 * the files under shards/ stay within the budget plus what other processes
 * have in flight; at the end the statistics match the disk exactly and
 * fsc_verify finds nothing wrong. A child forked with an open handle gives
 * back none of the budget its parent reserved. */
#include "store_test.h"

#define PROCS 4
#define CACHE_SIZE (1u << 20)
#define SLACK (64u << 10)
#define META_SLACK 4096
#define SETS 250
#define KEYS 64

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct child_report {
    int64_t max_over;   /* most bytes on disk above cache_size seen after a set */
    int64_t max_over2;  /* the same, the smaller of two walks in a row */
    int64_t max_ledger; /* most of fsc_stats().bytes above cache_size after a set */
    uint64_t sets, gets, hits, deletes;
};

static void run_child(const char *dir, int id, int out) {
    fsc_cache *c = st_open(dir, CACHE_SIZE, 0, -1);
    child_check(c != NULL, 2);
    uint64_t rnd = 0x1234567ull * (uint64_t)(id + 1) + (uint64_t)getpid();
    struct child_report r = {.max_over = INT64_MIN, .max_over2 = INT64_MIN, .max_ledger = INT64_MIN};
    char key[32], path[TB_PATH_MAX];
    snprintf(path, sizeof path, "%s.src-%d", dir, id);
    unsigned char *buf = malloc(64 << 10);
    child_check(buf != NULL, 3);
    for (int i = 0; i < SETS; i++) {
        snprintf(key, sizeof key, "key-%d", (int)(next_rand(&rnd) % KEYS));
        size_t len = 1 + (size_t)(next_rand(&rnd) % (64 << 10));
        if (next_rand(&rnd) % 4 == 0) {
            child_check(st_write_value_file(path, key, len) == 0, 4);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            child_check(fd >= 0, 5);
            int rc = fsc_set_file(c, key, strlen(key), fd, NULL, 0);
            close(fd);
            child_check(rc == FSC_OK, 6);
        } else {
            tb_fill(buf, len, st_value_seed(key, len));
            child_check(fsc_set(c, key, strlen(key), buf, len) == FSC_OK, 7);
        }
        r.sets++;
        int64_t over = (int64_t)st_disk_bytes(dir) - (int64_t)CACHE_SIZE;
        if (over > r.max_over)
            r.max_over = over;
        int64_t again = (int64_t)st_disk_bytes(dir) - (int64_t)CACHE_SIZE;
        if (again < over)
            over = again;
        if (over > r.max_over2)
            r.max_over2 = over;
        int64_t ledger = (int64_t)st_stats(c).bytes - (int64_t)CACHE_SIZE;
        if (ledger > r.max_ledger)
            r.max_ledger = ledger;
        /* Reads of whatever is there now: whole values only. */
        for (int g = 0; g < 2; g++) {
            snprintf(key, sizeof key, "key-%d", (int)(next_rand(&rnd) % KEYS));
            int got = st_check(c, key, NULL);
            child_check(got != -1, 8);
            r.gets++;
            r.hits += got == 1;
        }
        if (next_rand(&rnd) % 8 == 0) {
            snprintf(key, sizeof key, "key-%d", (int)(next_rand(&rnd) % KEYS));
            int rc = fsc_delete(c, key, strlen(key));
            child_check(rc == FSC_OK || rc == FSC_MISS, 9);
            r.deletes++;
        }
    }
    unlink(path);
    free(buf);
    fsc_close(c);
    child_check(tb_write_full(out, &r, sizeof r) == 0, 10);
    _exit(0);
}

static void test_four_writers_one_budget(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, CACHE_SIZE, 0, -1);
    assert_non_null(c);
    int fd;
    pid_t pids[PROCS];
    const int child = st_fork_children(PROCS, pids, &fd);
    if (child >= 0)
        run_child(t->dir, child, fd);
    int64_t max_over = INT64_MIN, max_over2 = INT64_MIN, max_ledger = INT64_MIN;
    uint64_t sets = 0, gets = 0, hits = 0;
    for (int p = 0; p < PROCS; p++) {
        struct child_report r;
        if (tb_read_full(fd, &r, sizeof r) != 1)
            break;
        if (r.max_over > max_over)
            max_over = r.max_over;
        if (r.max_over2 > max_over2)
            max_over2 = r.max_over2;
        if (r.max_ledger > max_ledger)
            max_ledger = r.max_ledger;
        sets += r.sets;
        gets += r.gets;
        hits += r.hits;
    }
    close(fd);
    for (int p = 0; p < PROCS; p++)
        assert_int_equal(tb_wait(pids[p]), 0);
    fprintf(stderr,
            "%d processes, %llu sets, %llu gets (%llu hits): the most bytes on disk after a set were "
            "cache_size %+lld (%+lld in the smaller of two walks in a row); fsc_stats().bytes at most "
            "cache_size %+lld\n",
            PROCS, (unsigned long long)sets, (unsigned long long)gets, (unsigned long long)hits,
            (long long)max_over, (long long)max_over2, (long long)max_ledger);
    assert_int_equal(sets, PROCS * SETS);
    /* What is charged stays within the budget, in-flight sets included, but
     * for the growth of shard tables that other processes' sets have made
     * and not yet evicted for. */
    assert_true(max_ledger <= (int64_t)META_SLACK);
    /* One walk of 256 directories while three other processes write is no
     * snapshot: it can count a value evicted from a shard already walked and
     * one stored in a shard still to come. A real excess lasts through two
     * walks in a row; a walk's own double counts do not. */
    assert_true(max_over2 <= (int64_t)SLACK);

    /* Quiet now: the totals are the disk's, to the byte. */
    uint64_t disk = st_disk_bytes(t->dir);
    fsc_statistics s = st_stats(c);
    st_print_stats("after the writers", &s);
    assert_int_equal(s.bytes, disk);
    assert_true(disk <= CACHE_SIZE);
    assert_int_equal(s.sets, sets);
    assert_int_equal(s.hits, hits);
    assert_int_equal(s.hits + s.misses, gets);
    assert_int_equal(s.entries, st_foreach_count(c));
    int rc;
    fsc_verify_report v = st_verify(c, 0, &rc);
    assert_fsc_ok(rc);
    fprintf(stderr, "verify: checked %llu, problems %llu\n", (unsigned long long)v.checked,
            (unsigned long long)v.problems);
    assert_int_equal(v.problems, 0);
    assert_true(v.checked >= s.entries);
    fsc_close(c);
}

/* A handle reserves budget ahead of its next sets. A child forked with the
 * handle open must not give that reservation back (closing its copy): the
 * parent still spends it, and another handle would take the same room. */
static void test_forked_child_leaves_the_parents_reservations(void **state) {
    struct st_ctx *t = *state;
    /* Small values: more than 1,024 of them fill the cache, so eviction
     * samples and frees no more than each set needs. */
    char value[200], key[32];
    memset(value, 'v', sizeof value);
    fsc_cache *spender = st_open(t->dir, CACHE_SIZE, 0, -1);
    fsc_cache *filler = st_open(t->dir, CACHE_SIZE, 0, -1);
    assert_non_null(spender);
    assert_non_null(filler);
    assert_fsc_ok(fsc_set(spender, "first", 5, value, sizeof value));
    /* Fill until sets evict: the cache is full but for what spender holds. */
    int n = 0;
    while (st_stats(filler).evictions == 0) {
        snprintf(key, sizeof key, "fill-%d", n++);
        assert_fsc_ok(fsc_set(filler, key, strlen(key), value, sizeof value));
        assert_true(n < 16384);
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fsc_close(spender);
        _exit(0);
    }
    assert_int_equal(tb_wait(pid), 0);
    /* Each handle's sets now, in turn: filler's must make room for
     * spender's, which spender reserved before the fork. */
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof key, "more-%d", i);
        assert_fsc_ok(fsc_set(filler, key, strlen(key), value, sizeof value));
    }
    uint64_t most = 0;
    for (int i = 0; i < 14; i++) {
        snprintf(key, sizeof key, "spent-%d", i);
        assert_fsc_ok(fsc_set(spender, key, strlen(key), value, sizeof value));
        const uint64_t disk = st_disk_bytes(t->dir);
        most = disk > most ? disk : most;
    }
    fprintf(stderr, "after the fork: at most %llu bytes on disk after a set, cache_size %u\n",
            (unsigned long long)most, CACHE_SIZE);
    assert_true(most <= CACHE_SIZE);
    assert_true(st_stats(filler).bytes <= CACHE_SIZE);
    fsc_close(spender);
    fsc_close(filler);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        ST_TEST(test_four_writers_one_budget),
        ST_TEST(test_forked_child_leaves_the_parents_reservations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
