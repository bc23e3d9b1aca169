/* fsc_set_file of one large file, copied and moved in, beside what any store
 * must do (the floor: copy_file_range of the file into the directory, or a
 * rename); and fsc_get of it with and without verify_payloads. Every file
 * stays in the page cache: the figures are copy, read and checksum costs.
 *
 *   setfile_bench [--dir PARENT] [--mib 256] [--reps 5] [--keep]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "fsc.h"

static void die(const char *what) {
    fprintf(stderr, "setfile_bench: %s: %s (%s)\n", what, strerror(errno), fsc_errmsg());
    exit(1);
}

/* dst becomes a copy of src (copy_file_range: what cp does). */
static void copy_file(const char *src, const char *dst, size_t len) {
    int in = open(src, O_RDONLY | O_CLOEXEC), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0)
        die("open");
    for (size_t done = 0; done < len;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, len - done, 0);
        if (n <= 0)
            die("copy_file_range");
        done += (size_t)n;
    }
    close(in);
    close(out);
}

static void print_row(const char *what, double *ms, int reps, size_t mib) {
    const double med = bu_median(ms, reps);
    printf("%-34s %9.1f ms  (min %.1f, max %.1f)  %7.0f MiB/s\n", what, med, bu_min(ms, reps), bu_max(ms, reps),
           (double)mib / (med / 1000.0));
}

int main(int argc, char **argv) {
    const char *parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    size_t mib = 256;
    int reps = 5, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            parent = argv[++i];
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc)
            mib = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr, "usage: %s [--dir PARENT] [--mib 256] [--reps 5] [--keep]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 64 || mib < 1)
        return 2;
    const size_t len = mib << 20;
    char run[4096], src[4200], tmp[4200], cache[4200], floor_copy[4200];
    if (bu_fresh_dir(parent, "fsc-setfile", run, sizeof run) != 0)
        die("run directory");
    snprintf(src, sizeof src, "%s/src", run);
    snprintf(tmp, sizeof tmp, "%s/tmp-src", run);
    snprintf(cache, sizeof cache, "%s/cache", run);
    snprintf(floor_copy, sizeof floor_copy, "%s/floor", run);
    printf("setfile_bench: %zu MiB, %d reps, %s (%s)\n", mib, reps, run, bu_fs_name(run));

    int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char *block = malloc(1 << 20);
    for (size_t i = 0; i < (1u << 20); i++)
        block[i] = (char)(i * 2654435761u >> 13);
    for (size_t i = 0; i < mib; i++)
        if (write(fd, block, 1 << 20) != 1 << 20)
            die("write source");
    free(block);
    close(fd);

    fsc_options o;
    fsc_options_init(&o);
    o.cache_size = 0;
    fsc_cache *c;
    if (fsc_open(cache, &o, &c) != FSC_OK)
        die("fsc_open");
    double floor_cp[64], fsc_cp[64], floor_mv[64], fsc_mv[64];
    for (int r = 0; r < reps; r++) {
        unlink(floor_copy);
        double t = bu_now();
        copy_file(src, floor_copy, len);
        floor_cp[r] = (bu_now() - t) * 1e3;

        fsc_delete(c, "k", 1);
        t = bu_now();
        if (fsc_set_file(c, "k", 1, -1, src, 0) != FSC_OK)
            die("fsc_set_file (copy)");
        fsc_cp[r] = (bu_now() - t) * 1e3;

        /* A file just written by its producer, renamed in. */
        copy_file(src, tmp, len);
        unlink(floor_copy);
        t = bu_now();
        if (rename(tmp, floor_copy) != 0)
            die("rename");
        floor_mv[r] = (bu_now() - t) * 1e3;

        copy_file(src, tmp, len);
        fsc_delete(c, "m", 1);
        t = bu_now();
        if (fsc_set_file(c, "m", 1, -1, tmp, FSC_MOVE) != FSC_OK)
            die("fsc_set_file (move)");
        fsc_mv[r] = (bu_now() - t) * 1e3;
    }
    print_row("floor: copy_file_range", floor_cp, reps, mib);
    print_row("fsc_set_file (copy)", fsc_cp, reps, mib);
    print_row("floor: rename", floor_mv, reps, mib);
    print_row("fsc_set_file (FSC_MOVE)", fsc_mv, reps, mib);
    fsc_close(c);

    /* fsc_get of the value, with and without verify_payloads (built against
     * an fsc.h older than the option: -DSETFILE_BENCH_NO_VERIFY_PAYLOADS). */
    for (int verifying = 0; verifying < 2; verifying++) {
        fsc_options_init(&o);
        o.cache_size = 0;
#ifndef SETFILE_BENCH_NO_VERIFY_PAYLOADS
        o.verify_payloads = verifying;
#else
        if (verifying)
            break;
#endif
        if (fsc_open(cache, &o, &c) != FSC_OK)
            die("fsc_open");
        double get[64];
        for (int r = 0; r < reps; r++) {
            fsc_entry *e = NULL;
            double t = bu_now();
            if (fsc_get(c, "k", 1, &e) != FSC_OK)
                die("fsc_get");
            get[r] = (bu_now() - t) * 1e3;
            fsc_entry_free(e);
        }
        print_row(verifying ? "fsc_get, verify_payloads = 1" : "fsc_get, verify_payloads = 0", get, reps, mib);
        fsc_close(c);
    }
    if (!keep)
        bu_rm_rf(run);
    return 0;
}
