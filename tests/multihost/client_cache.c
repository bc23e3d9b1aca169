/* A GlusterFS client that serves file contents from its own cache (the
 * quick-read translator, on by default in a volume) cannot give network mode
 * coherent reads: O_DIRECT does not bypass it, and another host's writes do
 * not drop it. meson runs this program on a volume whose clients have
 * quick-read (FSC_MULTIHOST_XLATORS); fsc_open refuses network mode there
 * with FSC_ENOTSUP and says which volume option to change, and opens with
 * network mode off. */
#include "mh_test.h"

static int open_with_mode(const char *dir, int mode, fsc_cache **c) {
    fsc_options o;
    fsc_options_init(&o);
    o.network_mode = mode;
    return fsc_open(dir, &o, c);
}

/* The number of entries in dir, "." and ".." left out. */
static int entries_in(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("opendir %s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* (a) Network mode, chosen by default or forced on: refused, from either
 * host, with the option to change in the message; nothing but base_dir
 * itself was created. */
static void test_network_mode_refused(void **state) {
    struct mh_dirs *d = *state;
    const int modes[] = {FSC_NETWORK_AUTO, FSC_NETWORK_ON};
    for (int h = MH_A; h <= MH_B; h++)
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
            fsc_cache *c = NULL;
            assert_int_equal(open_with_mode(d->dir[h], modes[m], &c), FSC_ENOTSUP);
            assert_null(c);
            assert_non_null(strstr(fsc_errmsg(), "performance.quick-read off"));
            assert_non_null(strstr(fsc_errmsg(), "performance/quick-read"));
            assert_int_equal(entries_in(d->dir[h]), 0);
        }
}

/* (b) Network mode off (one host's cache): opens, reports it, and works. */
static void test_network_mode_off_opens(void **state) {
    struct mh_dirs *d = *state;
    fsc_cache *c = NULL;
    assert_fsc_ok(open_with_mode(d->dir[MH_A], FSC_NETWORK_OFF, &c));
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_fsc_ok(fsc_stats(c, &st));
    assert_int_equal(st.network_fs, 1);
    assert_int_equal(st.network_mode, 0);
    assert_fsc_ok(fsc_set(c, LT_KEY("k"), "v", 1));
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(c, LT_KEY("k"), &e));
    assert_int_equal(fsc_entry_size(e), 1);
    fsc_entry_free(e);
    assert_fsc_ok(fsc_close(c));
}

int main(int argc, char **argv) {
    if (mh_args(argc, argv, 0, NULL) != 0)
        return 2;
    const struct CMUnitTest tests[] = {
        MH_TEST(test_network_mode_refused),
        MH_TEST(test_network_mode_off_opens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
