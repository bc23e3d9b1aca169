/* How a host reads a small file that another host updates in place, on a
 * network filesystem: which way of reading sees the other host's latest
 * write at once, and what each read costs. The ways network mode could
 * choose between (docs/ARCHITECTURE.md, "Network filesystems"):
 *   cached    pread through a descriptor kept open (what fsc does locally)
 *   fadvise   posix_fadvise(POSIX_FADV_DONTNEED), then pread, same descriptor
 *   reopen    open by name, pread, close
 *   direct    pread through a descriptor kept open with O_DIRECT, whole
 *             aligned 4 KiB blocks (what network mode does)
 * Host A writes version v of the file (one 4 KiB block, each 8-byte word v)
 * in place with pwrite, fdatasyncs it, and tells host B through a pipe; B
 * reads it once the way under test and answers whether it read v, and how
 * long the read took. The baseline in the same run is `cached`.
 *
 *   bash tests/multihost/run.sh build-bench/bench/coherent_reads [--versions N]
 *
 * (run.sh brings a GlusterFS volume up for two "hosts", appends its two
 * mounts to the arguments, and always takes it down again.) */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define WAYS 4

static const char *const way_names[WAYS] = {"cached", "fadvise", "reopen", "direct"};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "coherent_reads: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void full_write(int fd, const void *b, size_t n) {
    if (write(fd, b, n) != (ssize_t)n)
        die("write to a pipe");
}

static int full_read(int fd, void *b, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)b + got, n - got);
        if (r <= 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

/* What B answers for each version. */
struct answer {
    uint64_t seen; /* the version read */
    int64_t ns;    /* the read's time */
};

/* Host B: reads `path` the way `way` each time a version arrives on `in`,
 * answering on `out`, until `in` closes. */
static void reader(const char *path, int way, int in, int out) {
    int fd = open(path, O_RDONLY);
    int direct = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0 || direct < 0)
        die("open on host B");
    void *buf;
    if (posix_memalign(&buf, BLOCK, BLOCK) != 0)
        die("posix_memalign");
    uint64_t v;
    while (full_read(in, &v, sizeof v)) {
        int64_t t0 = now_ns();
        ssize_t n;
        switch (way) {
        case 0:
            n = pread(fd, buf, BLOCK, 0);
            break;
        case 1:
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            n = pread(fd, buf, BLOCK, 0);
            break;
        case 2: {
            int f = open(path, O_RDONLY);
            if (f < 0)
                die("reopen on host B");
            n = pread(f, buf, BLOCK, 0);
            close(f);
            break;
        }
        default:
            n = pread(direct, buf, BLOCK, 0);
            break;
        }
        struct answer a = {0, now_ns() - t0};
        if (n == BLOCK)
            memcpy(&a.seen, buf, sizeof a.seen);
        full_write(out, &a, sizeof a);
    }
    _exit(0);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int versions = 200;
    if (argc == 5 && !strcmp(argv[1], "--versions"))
        versions = atoi(argv[2]);
    else if (argc != 3) {
        fprintf(stderr, "usage: %s [--versions N] MOUNT_A MOUNT_B (tests/multihost/run.sh passes the mounts)\n",
                argv[0]);
        return 2;
    }
    if (versions < 1)
        versions = 1;
    const char *mnt_a = argv[argc - 2], *mnt_b = argv[argc - 1];
    char path_a[4096], path_b[4096];
    snprintf(path_a, sizeof path_a, "%s/coherent-reads-%d", mnt_a, (int)getpid());
    snprintf(path_b, sizeof path_b, "%s/coherent-reads-%d", mnt_b, (int)getpid());
    int w = open(path_a, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (w < 0)
        die("create on host A");
    static uint64_t block[BLOCK / 8];
    if (pwrite(w, block, BLOCK, 0) != BLOCK || fdatasync(w) != 0)
        die("write on host A");

    printf("## Reading a 4 KiB block that another host rewrites in place\n\n");
    printf("%d versions per way; host A writes each (pwrite, fdatasync), then host B reads it once. "
           "fresh = reads that returned that version; median and p99 of B's read.\n\n",
           versions);
    printf("| way | fresh | median µs | p99 µs | median / cached |\n|---|---|---|---|---|\n");
    int64_t *ns = calloc((size_t)versions, sizeof *ns);
    double base_median = 0;
    uint64_t next = 1;
    for (int way = 0; way < WAYS; way++) {
        int to_b[2], from_b[2];
        if (pipe(to_b) != 0 || pipe(from_b) != 0)
            die("pipe");
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            close(to_b[1]);
            close(from_b[0]);
            reader(path_b, way, to_b[0], from_b[1]);
        }
        close(to_b[0]);
        close(from_b[1]);
        int fresh = 0;
        for (int i = 0; i < versions; i++, next++) {
            for (size_t k = 0; k < BLOCK / 8; k++)
                block[k] = next;
            if (pwrite(w, block, BLOCK, 0) != BLOCK || fdatasync(w) != 0)
                die("write on host A");
            full_write(to_b[1], &next, sizeof next);
            struct answer a;
            if (!full_read(from_b[0], &a, sizeof a)) {
                fprintf(stderr, "coherent_reads: the reader on host B stopped\n");
                return 1;
            }
            fresh += a.seen == next;
            ns[i] = a.ns;
        }
        close(to_b[1]);
        close(from_b[0]);
        waitpid(pid, NULL, 0);
        qsort(ns, (size_t)versions, sizeof *ns, cmp_i64);
        double median = ns[versions / 2] / 1000.0, p99 = ns[(versions * 99) / 100] / 1000.0;
        if (way == 0)
            base_median = median;
        printf("| %s | %d/%d | %.1f | %.1f | %.2fx |\n", way_names[way], fresh, versions, median, p99,
               base_median > 0 ? median / base_median : 0);
        fflush(stdout);
    }
    free(ns);
    close(w);
    unlink(path_a);
    return 0;
}
