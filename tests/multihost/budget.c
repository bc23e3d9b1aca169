/* cache_size across hosts: two writers per host store values of mixed sizes
 * into a 4 MiB cache, far more than it holds. Between phases of sets (every
 * writer's handle still open, its reservations held), and at the end, the
 * files under shards/ (what FSC_BUDGET counts) hold at most cache_size
 * bytes; afterwards fsc_verify without repair, from either host, finds no
 * problem (no accounting damaged by writers on two hosts). */
#include "mh_test.h"

#include <libgen.h>

#define CACHE_SIZE (4u << 20)
#define WRITERS (2 * 2)
#define PHASES 4
#define SETS_PER_PHASE 6
#define KEYS_PER_WRITER 8

/* Packed values and files of their own; the largest is a sixth of the cache. */
static const uint64_t value_lens[] = {200, 2000, 3900, 30000, 200000, 700000};
#define LENS (sizeof value_lens / sizeof value_lens[0])

/* The sum of st_size of the regular files under path; with show, each file
 * is printed too. */
static uint64_t bytes_under(const char *path, int show) {
    DIR *dir = opendir(path);
    if (!dir)
        fail_msg("opendir %s: %s", path, strerror(errno));
    uint64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *sub = lt_path(path, de->d_name);
        struct stat st;
        if (lstat(sub, &st) != 0)
            fail_msg("lstat %s: %s", sub, strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            sum += bytes_under(sub, show);
        } else if (S_ISREG(st.st_mode)) {
            sum += (uint64_t)st.st_size;
            if (show)
                print_error("  %10lld %s\n", (long long)st.st_size, sub);
        }
        free(sub);
    }
    closedir(dir);
    return sum;
}

/* The bytes under the cache's shards/ as the server stores them: read on
 * the brick (gluster_up.sh keeps it at STATE_DIR/brick, beside the mounts
 * STATE_DIR/mnt-a and mnt-b), which no client's attribute cache can make
 * look older. Taken while no set is in flight: a walk of a directory that
 * changes under it adds up sizes of different moments. */
static uint64_t shards_bytes(const struct mh_dirs *d, int show) {
    char *mount = strdup(mh_mount[MH_A]);
    char path[TB_PATH_MAX];
    snprintf(path, sizeof path, "%s/brick/%s/shards", dirname(mount), d->name);
    free(mount);
    return bytes_under(path, show);
}

static void test_writers_on_both_hosts_keep_cache_size(void **state) {
    struct mh_dirs *d = *state;
    fsc_options o = fsc_test_options();
    o.cache_size = CACHE_SIZE;
    struct mh_agent w[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        w[i] = mh_agent_spawn(d->dir[i % 2], &o);
    uint64_t most = 0, stored = 0;
    for (int phase = 0; phase < PHASES; phase++) {
        for (int s = 0; s < SETS_PER_PHASE; s++) {
            int n = phase * SETS_PER_PHASE + s;
            for (int i = 0; i < WRITERS; i++) {
                char key[32];
                snprintf(key, sizeof key, "w%d-%d", i, n % KEYS_PER_WRITER);
                uint64_t len = value_lens[(size_t)(n + i) % LENS];
                mh_agent_send(&w[i], mh_cmd_key(MH_SET, key, (uint64_t)n, len));
                stored += len;
            }
            for (int i = 0; i < WRITERS; i++)
                assert_fsc_ok(mh_agent_reply(&w[i]).status);
        }
        uint64_t bytes = shards_bytes(d, 0);
        if (bytes > CACHE_SIZE && shards_bytes(d, 1) > 0)
            fail_msg("after phase %d: %llu bytes under shards/, cache_size %u", phase, (unsigned long long)bytes,
                     CACHE_SIZE);
        most = bytes > most ? bytes : most;
    }
    for (int i = 0; i < WRITERS; i++)
        mh_agent_end(&w[i]);
    assert_true(shards_bytes(d, 0) <= CACHE_SIZE);
    print_message("%llu bytes stored, at most %llu under shards/ (cache_size %u)\n", (unsigned long long)stored,
                  (unsigned long long)most, CACHE_SIZE);
    /* No accounting was damaged by writers on two hosts: a verify without
     * repair, from either host, finds no problem, and both hosts' fsc_stats
     * give the same entries and the bytes the files under shards/ hold. */
    const uint64_t on_disk = shards_bytes(d, 0);
    struct mh_reply stats[2];
    for (int h = MH_A; h <= MH_B; h++) {
        struct mh_agent v = mh_agent_spawn(d->dir[h], &o);
        struct mh_reply r = mh_agent_call(&v, (struct mh_cmd){.op = MH_VERIFY});
        assert_fsc_ok(r.status);
        if (r.problems != 0)
            fail_msg("fsc_verify from host %c: %llu problems", "AB"[h], (unsigned long long)r.problems);
        stats[h] = mh_agent_call(&v, (struct mh_cmd){.op = MH_STATS});
        assert_fsc_ok(stats[h].status);
        if (stats[h].bytes != on_disk)
            fail_msg("fsc_stats from host %c: %llu bytes, the files under shards/ hold %llu", "AB"[h],
                     (unsigned long long)stats[h].bytes, (unsigned long long)on_disk);
        mh_agent_end(&v);
    }
    assert_int_equal(stats[MH_A].entries, stats[MH_B].entries);
    assert_true(stats[MH_A].entries > 0);
}

int main(int argc, char **argv) {
    if (mh_args(argc, argv, 0, NULL) != 0)
        return 2;
    const struct CMUnitTest tests[] = {
        MH_TEST(test_writers_on_both_hosts_keep_cache_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
