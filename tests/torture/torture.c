/* Crash torture: writer processes (fsc_set, fsc_set_file copy and move,
 * fsc_delete, evicting sets in a bounded cache) are SIGKILLed at random
 * moments over and over while reader processes check every value they get.
 *
 * Each writer owns a set of keys and reports through a pipe, for each
 * operation, BEGIN before calling fsc and DONE only after fsc returned OK.
 * After a kill the supervisor therefore knows, for every key of that writer,
 * the committed state and at most one operation in flight; what the cache
 * holds must be one of the two (or, in the bounded cache only, a miss).
 *
 * Two phases: an unbounded cache (a miss where a value was committed is a
 * lost value) and a bounded one (evictions allowed; the byte budget must
 * hold). Each ends with every process gone, a fresh fsc_open (which recovers
 * what the crashes left) and exact checks of the files on disk.
 *
 * --repair: the unbounded phase alone, with writers that only set, while one
 * more process runs fsc_verify(repair=1) over and over. After each repair
 * every key whose last completed operation was a set must read back that
 * value or a later one of its writer (never a miss, never an older value).
 * --seconds (or FSC_TORTURE_REPAIR_SECONDS in repair mode) kills for that
 * long instead of counting kills.
 *
 * Usage: torture [--kills N] [--seconds T] [--repair] [--writers W]
 *                [--readers R] [--seed S] [--max-delay-us U] [--dir DIR]
 */
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "fsc.h"
#include "torture_common.h"

#define MAX_WRITERS 16
#define MAX_READERS 16
#define KEYS_PER_WRITER 48
#define MAX_PAYLOAD (48 * 1024)
#define MAX_FILE_PAYLOAD (160 * 1024)
#define BOUNDED_SIZE (1024 * 1024)

enum { REC_SET = 1, REC_DEL = 2, REC_DONE = 3, REC_FAIL = 4 };

struct rec {
    uint32_t type;
    uint32_t key;
    uint64_t seq; /* REC_FAIL: the status (negated) */
};

static long opt_kills = 200;
static int opt_writers = 3, opt_readers = 2;
static uint64_t opt_seed = 0;
static long opt_max_delay_us = 4000;
static const char *opt_dir = NULL;
static long opt_seconds = 0;
static int opt_repair = 0;

static long checks_passed, checks_failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            checks_passed++;                                                                       \
        } else {                                                                                   \
            checks_failed++;                                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static uint64_t rng_state;
static uint64_t rnd(void) {
    rng_state = tv_mix(rng_state);
    return rng_state;
}

static void key_name(uint32_t key, char *buf, size_t cap, size_t *len) {
    int n = snprintf(buf, cap, "w%u/key-%u", key / KEYS_PER_WRITER, key % KEYS_PER_WRITER);
    *len = (size_t)n;
}

/* fsc_get of key, whose name is left in kb. */
static int get_key(fsc_cache *c, uint32_t key, char kb[64], fsc_entry **e) {
    size_t kl;
    key_name(key, kb, 64, &kl);
    return fsc_get(c, kb, kl, e);
}

static void open_opts(fsc_options *o, int bounded) {
    fsc_options_init(o);
    o->cache_size = bounded ? BOUNDED_SIZE : 0;
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

static void put_rec(int fd, uint32_t type, uint32_t key, uint64_t seq) {
    struct rec r = {type, key, seq};
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(3);
}

/* In a writer or reader process: a handle of its own, or exit code 2. */
static fsc_cache *child_open(const char *dir, int bounded, const char *who) {
    fsc_options o;
    open_opts(&o, bounded);
    fsc_cache *c;
    if (fsc_open(dir, &o, &c) != FSC_OK) {
        fprintf(stderr, "%s: fsc_open: %s\n", who, fsc_errmsg());
        _exit(2);
    }
    return c;
}

static void writer_main(const char *dir, const char *scratch, int bounded, int w, uint64_t seq_base, int out) {
    fsc_cache *c = child_open(dir, bounded, "writer");
    rng_state = tv_mix(seq_base);
    unsigned char *buf = malloc(TV_HEAD + MAX_FILE_PAYLOAD);
    char path[4096];
    for (uint64_t n = 1;; n++) {
        uint64_t seq = seq_base + n;
        uint32_t key = (uint32_t)(w * KEYS_PER_WRITER + rnd() % KEYS_PER_WRITER);
        char kb[64];
        size_t kl;
        key_name(key, kb, sizeof kb, &kl);
        unsigned op = (unsigned)(rnd() % 100);
        int rc;
        if (op < 20 && !opt_repair) {
            put_rec(out, REC_DEL, key, 0);
            rc = fsc_delete(c, kb, kl);
            if (rc == FSC_MISS)
                rc = FSC_OK;
        } else if (op < 65) {
            size_t len = tv_len(seq, MAX_PAYLOAD);
            tv_fill(buf, key, seq, len);
            put_rec(out, REC_SET, key, seq);
            rc = fsc_set(c, kb, kl, buf, TV_HEAD + len);
        } else {
            size_t len = tv_len(seq, MAX_FILE_PAYLOAD);
            tv_fill(buf, key, seq, len);
            snprintf(path, sizeof path, "%s/src-%d-%" PRIu64, scratch, (int)getpid(), n);
            int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0 || pwrite(fd, buf, TV_HEAD + len, 0) != (ssize_t)(TV_HEAD + len))
                _exit(4);
            put_rec(out, REC_SET, key, seq);
            if (op < 85)
                rc = fsc_set_file(c, kb, kl, fd, NULL, 0);
            else
                rc = fsc_set_file(c, kb, kl, -1, path, FSC_MOVE);
            close(fd);
            unlink(path);
        }
        if (rc == FSC_OK) {
            put_rec(out, REC_DONE, key, seq);
        } else {
            fprintf(stderr, "writer %d: key %u: %s (%s)\n", w, key, fsc_strerror(rc), fsc_errmsg());
            put_rec(out, REC_FAIL, key, (uint64_t)(-rc));
        }
    }
}

/* ------------------------------------------------------------------ */
/* Reader                                                              */
/* ------------------------------------------------------------------ */

struct reader_counts {
    uint64_t reads, verified, misses, bad, errors;
};

static void reader_main(const char *dir, int bounded, int nkeys, int stop_fd, int out, uint64_t seed) {
    fsc_cache *c = child_open(dir, bounded, "reader");
    rng_state = tv_mix(seed);
    struct reader_counts n = {0};
    unsigned char *buf = malloc(TV_HEAD + MAX_FILE_PAYLOAD + 1);
    for (;;) {
        struct pollfd p = {stop_fd, POLLIN, 0};
        if ((n.reads & 15) == 0 && poll(&p, 1, 0) > 0)
            break;
        uint32_t key = (uint32_t)(rnd() % (uint64_t)nkeys);
        char kb[64];
        fsc_entry *e;
        int rc = get_key(c, key, kb, &e);
        n.reads++;
        if (rc == FSC_MISS) {
            n.misses++;
            continue;
        }
        if (rc != FSC_OK) {
            fprintf(stderr, "reader: get %s: %s (%s)\n", kb, fsc_strerror(rc), fsc_errmsg());
            n.errors++;
            continue;
        }
        uint64_t size = fsc_entry_size(e);
        const unsigned char *data = NULL;
        if (size > TV_HEAD + MAX_FILE_PAYLOAD) {
            n.bad++;
        } else if (n.reads & 1) {
            data = fsc_entry_data(e);
        } else {
            /* Through the descriptor: the value is the file's last `size` bytes. */
            int fd = fsc_entry_fd(e);
            struct stat st;
            if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size >= size &&
                pread(fd, buf, size, st.st_size - (off_t)size) == (ssize_t)size)
                data = buf;
        }
        uint32_t k;
        uint64_t seq;
        if (!data || tv_check(data, size, &k, &seq) != 0 || k != key) {
            fprintf(stderr, "reader: key %s: torn or foreign value of %" PRIu64 " bytes\n", kb, size);
            n.bad++;
        } else {
            n.verified++;
        }
        fsc_entry_free(e);
    }
    fsc_close(c);
    if (write(out, &n, sizeof n) != (ssize_t)sizeof n)
        _exit(3);
    _exit(0);
}

/* ------------------------------------------------------------------ */
/* Repairer                                                            */
/* ------------------------------------------------------------------ */

struct repair_counts {
    uint64_t problems, repaired;
};

/* Repairs, reports the counts on `out`, waits for the supervisor's go on
 * `go` (EOF: stop), and again. */
static void repairer_main(const char *dir, int out, int go) {
    fsc_options o;
    open_opts(&o, 0);
    fsc_cache *c;
    if (fsc_open(dir, &o, &c) != FSC_OK) {
        fprintf(stderr, "repairer: fsc_open: %s\n", fsc_errmsg());
        _exit(2);
    }
    char b;
    do {
        fsc_verify_report r = {sizeof r, 0, 0, 0};
        int rc = fsc_verify(c, 1, &r);
        if (rc != FSC_OK) {
            fprintf(stderr, "repairer: fsc_verify(repair=1): %s (%s)\n", fsc_strerror(rc), fsc_errmsg());
            _exit(4);
        }
        struct repair_counts n = {r.problems, r.repaired};
        if (write(out, &n, sizeof n) != (ssize_t)sizeof n)
            _exit(3);
    } while (read(go, &b, 1) == 1);
    fsc_close(c);
    _exit(0);
}

/* ------------------------------------------------------------------ */
/* Supervisor                                                          */
/* ------------------------------------------------------------------ */

struct keystate {
    uint64_t committed; /* seq of the committed value, 0 = absent */
    int inflight;       /* 0 none, REC_SET or REC_DEL */
    uint64_t inflight_seq;
};

struct writer {
    pid_t pid;
    int fd;
    unsigned char part[sizeof(struct rec)];
    size_t have;
};

struct phase {
    int bounded;
    char dir[4096], scratch[4096];
    struct keystate *keys;
    int nkeys;
    struct writer w[MAX_WRITERS];
    uint64_t next_base;
    long kills, checked, wrong, lost, evicted_or_gone, failed_ops;
    /* Repair mode: the repairer's pid, its report pipe and its go pipe. */
    pid_t repairer;
    int repair_fd, go_fd;
    long repairs;
    uint64_t repair_problems, repaired;
};

static void apply_rec(struct phase *ph, const struct rec *r) {
    if (r->key >= (uint32_t)ph->nkeys) {
        CHECK(0, "writer reported key %u out of range", r->key);
        return;
    }
    struct keystate *k = &ph->keys[r->key];
    switch (r->type) {
    case REC_SET:
    case REC_DEL:
        k->inflight = (int)r->type;
        k->inflight_seq = r->seq;
        break;
    case REC_DONE:
        if (k->inflight == REC_SET)
            k->committed = k->inflight_seq;
        else if (k->inflight == REC_DEL)
            k->committed = 0;
        k->inflight = 0;
        break;
    case REC_FAIL:
        ph->failed_ops++;
        CHECK(0, "a writer's operation on key %u failed: %s", r->key, fsc_strerror(-(int)r->seq));
        /* A failed set or delete leaves the old value, or (delete) none. */
        if (k->inflight == REC_DEL)
            k->inflight = REC_DEL;
        else
            k->inflight = 0;
        break;
    default:
        CHECK(0, "bad record type %u", r->type);
    }
}

/* Reads what is in the writer's pipe; until EOF when `to_eof`. */
static void drain(struct phase *ph, struct writer *w, int to_eof) {
    for (;;) {
        if (!to_eof) {
            struct pollfd p = {w->fd, POLLIN, 0};
            if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP)))
                return;
        }
        unsigned char buf[4096];
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        for (ssize_t i = 0; i < n; i++) {
            w->part[w->have++] = buf[i];
            if (w->have == sizeof(struct rec)) {
                struct rec r;
                memcpy(&r, w->part, sizeof r);
                apply_rec(ph, &r);
                w->have = 0;
            }
        }
        if (!to_eof && n < (ssize_t)sizeof buf)
            return;
    }
}

static void spawn_writer(struct phase *ph, int i) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        perror("pipe");
        exit(1);
    }
    uint64_t base = ph->next_base;
    ph->next_base += (uint64_t)1 << 32;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        close(p[0]);
        /* The repairer must see EOF on its go pipe when the supervisor closes it. */
        if (ph->go_fd >= 0)
            close(ph->go_fd);
        writer_main(ph->dir, ph->scratch, ph->bounded, i, base, p[1]);
    }
    close(p[1]);
    ph->w[i].pid = pid;
    ph->w[i].fd = p[0];
    ph->w[i].have = 0;
}

/* Checks one key whose writer is dead; the observed state becomes committed. */
static void check_key(struct phase *ph, fsc_cache *c, uint32_t key, int final) {
    struct keystate *k = &ph->keys[key];
    char kb[64];
    fsc_entry *e;
    int rc = get_key(c, key, kb, &e);
    ph->checked++;
    if (rc == FSC_MISS) {
        int absent_ok = k->committed == 0 || k->inflight == REC_DEL;
        if (!absent_ok && !ph->bounded) {
            ph->lost++;
            CHECK(0, "key %s: committed value seq %" PRIx64 " lost%s", kb, k->committed,
                  final ? " (after reopen)" : "");
        } else {
            if (!absent_ok)
                ph->evicted_or_gone++;
            checks_passed++;
        }
        k->committed = 0;
        k->inflight = 0;
        return;
    }
    if (rc != FSC_OK) {
        CHECK(0, "key %s: fsc_get gave %s (%s)", kb, fsc_strerror(rc), fsc_errmsg());
        k->committed = 0;
        k->inflight = 0;
        return;
    }
    uint64_t size = fsc_entry_size(e);
    const unsigned char *data = fsc_entry_data(e);
    uint32_t vk;
    uint64_t seq;
    if (!data || tv_check(data, size, &vk, &seq) != 0 || vk != key) {
        ph->wrong++;
        CHECK(0, "key %s: torn or foreign value (%" PRIu64 " bytes)", kb, size);
        fsc_entry_free(e);
        k->committed = 0;
        k->inflight = 0;
        return;
    }
    int expected = (k->committed != 0 && seq == k->committed) || (k->inflight == REC_SET && seq == k->inflight_seq);
    if (!expected) {
        ph->wrong++;
        CHECK(0, "key %s: value seq %" PRIx64 " is neither the committed %" PRIx64 " nor the one in flight", kb, seq,
              k->committed);
    } else {
        /* Rebuild the exact bytes from the seq. */
        size_t len = (size_t)(size - TV_HEAD);
        unsigned char *want = malloc(TV_HEAD + len + 1);
        tv_fill(want, key, seq, len);
        int same = memcmp(want, data, TV_HEAD + len) == 0;
        free(want);
        if (!same)
            ph->wrong++;
        CHECK(same, "key %s: bytes differ from the value stored", kb);
    }
    fsc_entry_free(e);
    k->committed = seq;
    k->inflight = 0;
}

/* Right after a repair, with writers running: every key with a completed set
 * reads back that value or a later one of its writer (seqs grow). */
static void check_after_repair(struct phase *ph, fsc_cache *c) {
    for (int i = 0; i < opt_writers; i++)
        if (ph->w[i].pid > 0)
            drain(ph, &ph->w[i], 0);
    for (uint32_t key = 0; key < (uint32_t)ph->nkeys; key++) {
        const uint64_t committed = ph->keys[key].committed;
        if (committed == 0)
            continue;
        char kb[64];
        fsc_entry *e;
        int rc = get_key(c, key, kb, &e);
        ph->checked++;
        if (rc == FSC_MISS) {
            ph->lost++;
            CHECK(0, "key %s: committed value seq %" PRIx64 " lost after repair %ld", kb, committed, ph->repairs);
            continue;
        }
        if (rc != FSC_OK) {
            CHECK(0, "key %s: fsc_get after a repair gave %s (%s)", kb, fsc_strerror(rc), fsc_errmsg());
            continue;
        }
        uint32_t vk;
        uint64_t seq;
        const unsigned char *data = fsc_entry_data(e);
        int ok = data && tv_check(data, fsc_entry_size(e), &vk, &seq) == 0 && vk == key && seq >= committed;
        if (!ok)
            ph->wrong++;
        CHECK(ok, "key %s: after repair %ld, not the committed value seq %" PRIx64 " or a later one", kb, ph->repairs,
              committed);
        fsc_entry_free(e);
    }
}

/* A repair's report: counted, the keys checked, then the repairer goes on. */
static void repair_reported(struct phase *ph, fsc_cache *c) {
    struct repair_counts n;
    if (read(ph->repair_fd, &n, sizeof n) != (ssize_t)sizeof n) {
        CHECK(0, "the repairer stopped reporting");
        close(ph->repair_fd);
        ph->repair_fd = -1;
        return;
    }
    ph->repairs++;
    ph->repair_problems += n.problems;
    ph->repaired += n.repaired;
    check_after_repair(ph, c);
    char b = 'g';
    if (write(ph->go_fd, &b, 1) != 1)
        CHECK(0, "the repairer is gone");
}

static void spawn_repairer(struct phase *ph) {
    int rep[2], go[2];
    if (pipe2(rep, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) {
        perror("pipe");
        exit(1);
    }
    ph->repairer = fork();
    if (ph->repairer < 0) {
        perror("fork");
        exit(1);
    }
    if (ph->repairer == 0) {
        close(rep[0]);
        close(go[1]);
        repairer_main(ph->dir, rep[1], go[0]);
    }
    close(rep[1]);
    close(go[0]);
    ph->repair_fd = rep[0];
    ph->go_fd = go[1];
}

/* Tells the repairer to stop after its current repair, takes its last report
 * and its exit status. */
static void stop_repairer(struct phase *ph) {
    close(ph->go_fd);
    struct repair_counts n;
    while (ph->repair_fd >= 0 && read(ph->repair_fd, &n, sizeof n) == (ssize_t)sizeof n) {
        ph->repairs++;
        ph->repair_problems += n.problems;
        ph->repaired += n.repaired;
    }
    if (ph->repair_fd >= 0)
        close(ph->repair_fd);
    const int code = tb_wait(ph->repairer);
    CHECK(code == 0, "the repairer ended with exit code %d", code);
}

static void sleep_draining(struct phase *ph, fsc_cache *c, long us) {
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_nsec += (us % 1000000) * 1000;
    end.tv_sec += us / 1000000 + end.tv_nsec / 1000000000;
    end.tv_nsec %= 1000000000;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = (end.tv_sec - now.tv_sec) * 1000000 + (end.tv_nsec - now.tv_nsec) / 1000;
        if (left <= 0)
            return;
        struct pollfd p[MAX_WRITERS + 1];
        for (int i = 0; i < opt_writers; i++)
            p[i] = (struct pollfd){ph->w[i].fd, POLLIN, 0};
        p[opt_writers] = (struct pollfd){ph->repairer > 0 ? ph->repair_fd : -1, POLLIN, 0};
        struct timespec ts = {left / 1000000, (left % 1000000) * 1000};
        if (ppoll(p, (nfds_t)opt_writers + 1, &ts, NULL) > 0) {
            for (int i = 0; i < opt_writers; i++)
                if (p[i].revents)
                    drain(ph, &ph->w[i], 0);
            if (p[opt_writers].revents)
                repair_reported(ph, c);
        }
    }
}

static void kill_writer(struct phase *ph, fsc_cache *c, int i) {
    if (ph->w[i].pid <= 0)
        return;
    const int code = tb_kill(ph->w[i].pid);
    ph->w[i].pid = 0;
    CHECK(code == 128 + SIGKILL, "writer %d ended by itself (exit code %d) before the kill", i, code);
    ph->kills++;
    drain(ph, &ph->w[i], 1);
    close(ph->w[i].fd);
    for (int k = 0; k < KEYS_PER_WRITER; k++)
        check_key(ph, c, (uint32_t)(i * KEYS_PER_WRITER + k), 0);
}

struct totals {
    long kills, checked, wrong, lost, evicted, failed_ops;
    uint64_t reads, verified, bad_reads, reader_errors;
};

static void run_phase(const char *work, int bounded, long kills, struct totals *tot) {
    struct phase ph;
    memset(&ph, 0, sizeof ph);
    ph.bounded = bounded;
    snprintf(ph.dir, sizeof ph.dir, "%s/%s", work, bounded ? "bounded" : "unbounded");
    snprintf(ph.scratch, sizeof ph.scratch, "%s/scratch-%d", work, bounded);
    mkdir(ph.scratch, 0700);
    ph.nkeys = opt_writers * KEYS_PER_WRITER;
    ph.keys = calloc((size_t)ph.nkeys, sizeof *ph.keys);
    ph.next_base = (opt_seed + 1) << 48;
    ph.repair_fd = ph.go_fd = -1;

    fsc_options o;
    open_opts(&o, bounded);
    fsc_cache *c;
    int rc = fsc_open(ph.dir, &o, &c);
    if (rc != FSC_OK) {
        fprintf(stderr, "fsc_open %s: %s\n", ph.dir, fsc_errmsg());
        exit(1);
    }

    /* Readers run for the whole phase; closing stop[1] tells them to finish. */
    int stop[2], res[2];
    if (pipe(stop) != 0 || pipe(res) != 0)
        exit(1);
    pid_t readers[MAX_READERS];
    for (int i = 0; i < opt_readers; i++) {
        readers[i] = fork();
        if (readers[i] == 0) {
            close(stop[1]);
            close(res[0]);
            reader_main(ph.dir, bounded, ph.nkeys, stop[0], res[1], opt_seed * 1000 + (uint64_t)i + 17);
        }
    }
    close(stop[0]);
    close(res[1]);

    for (int i = 0; i < opt_writers; i++)
        spawn_writer(&ph, i);
    if (opt_repair)
        spawn_repairer(&ph);
    /* Kills counted, or (with --seconds) for that long. */
    const time_t until = opt_seconds > 0 ? time(NULL) + opt_seconds : 0;
    for (long n = 0; until ? time(NULL) < until : n < kills; n++) {
        int i = (int)(rnd() % (uint64_t)opt_writers);
        sleep_draining(&ph, c, (long)(rnd() % (uint64_t)(opt_max_delay_us + 1)));
        kill_writer(&ph, c, i);
        spawn_writer(&ph, i);
    }
    /* The last kills: every writer still running (also SIGKILL, also counted). */
    for (int i = 0; i < opt_writers; i++)
        if (ph.w[i].pid > 0)
            kill_writer(&ph, c, i);
    if (opt_repair) {
        stop_repairer(&ph);
        check_after_repair(&ph, c);
        printf("repairs: %ld, with %" PRIu64 " problems found and %" PRIu64 " repaired while writers ran\n", ph.repairs,
               ph.repair_problems, ph.repaired);
        CHECK(ph.repairs > 0, "no repair ran");
    }

    /* Every writer is dead but readers still hold the cache open. A shard
     * whose writer was killed inside its change keeps a stale line until its
     * next writer (or a lone open) rebuilds it, so the live count is printed
     * here, and checked exactly after the reopen below. */
    {
        fsc_statistics live;
        memset(&live, 0, sizeof live);
        live.size = sizeof live;
        char sh[4200];
        snprintf(sh, sizeof sh, "%s/shards", ph.dir);
        CHECK(fsc_stats(c, &live) == FSC_OK, "fsc_stats");
        uint64_t on_disk = tree_bytes(sh, NULL);
        printf("%s: shared byte count %" PRIu64 " while the files under shards/ hold %" PRIu64 " (readers still open)\n",
               bounded ? "bounded" : "unbounded", live.bytes, on_disk);

    }

    close(stop[1]);
    for (int i = 0; i < opt_readers; i++) {
        struct reader_counts rcn;
        ssize_t got = read(res[0], &rcn, sizeof rcn);
        CHECK(got == (ssize_t)sizeof rcn, "a reader gave no counts");
        if (got == (ssize_t)sizeof rcn) {
            tot->reads += rcn.reads;
            tot->verified += rcn.verified;
            tot->bad_reads += rcn.bad;
            tot->reader_errors += rcn.errors;
            checks_passed += (long)rcn.verified;
            checks_failed += (long)(rcn.bad + rcn.errors);
        }
    }
    for (int i = 0; i < opt_readers; i++) {
        const int code = tb_wait(readers[i]);
        CHECK(code == 0, "reader %d ended with exit code %d", i, code);
    }
    close(res[0]);
    fsc_close(c);

    /* Alone with the cache: open recovers, then everything must agree. */
    rc = fsc_open(ph.dir, &o, &c);
    CHECK(rc == FSC_OK, "reopen: %s", fsc_errmsg());
    if (rc != FSC_OK)
        exit(1);
    char tmp[4200], shards[4200];
    snprintf(tmp, sizeof tmp, "%s/tmp", ph.dir);
    snprintf(shards, sizeof shards, "%s/shards", ph.dir);
    CHECK(tb_dir_count(tmp) == 0, "%s: %d temp files survived fsc_open", tmp, tb_dir_count(tmp));
    fsc_verify_report vr = {sizeof vr, 0, 0, 0};
    rc = fsc_verify(c, 0, &vr);
    CHECK(rc == FSC_OK && vr.problems == 0, "%s: fsc_verify(repair=0): %s, %" PRIu64 " problems of %" PRIu64 " checked",
          bounded ? "bounded" : "unbounded", fsc_strerror(rc), vr.problems, vr.checked);
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK(fsc_stats(c, &st) == FSC_OK, "fsc_stats: %s", fsc_errmsg());
    int others = 0;
    uint64_t disk = tree_bytes(shards, &others);
    CHECK(st.bytes == disk, "%s: fsc_stats bytes %" PRIu64 " but the files under shards/ hold %" PRIu64,
          bounded ? "bounded" : "unbounded", st.bytes, disk);
    CHECK(others == 0, "%d files under shards/ are neither regular files nor directories", others);
    /* Counted by asking the cache: a key whose delete was in flight at a
     * kill may or may not still hold its value. */
    uint64_t present = 0;
    for (uint32_t k = 0; k < (uint32_t)ph.nkeys; k++) {
        char kb[64];
        size_t kl;
        key_name(k, kb, sizeof kb, &kl);
        fsc_entry *e;
        if (fsc_get(c, kb, kl, &e) == FSC_OK) {
            present++;
            fsc_entry_free(e);
        }
    }
    CHECK(st.entries == present, "fsc_stats entries %" PRIu64 " but %" PRIu64 " keys hold a value", st.entries, present);
    for (uint32_t k = 0; k < (uint32_t)ph.nkeys; k++)
        check_key(&ph, c, k, 1);
    if (bounded) {
        CHECK(fsc_prune(c) == FSC_OK, "fsc_prune: %s", fsc_errmsg());
        CHECK(fsc_stats(c, &st) == FSC_OK, "fsc_stats");
        CHECK(st.bytes <= BOUNDED_SIZE, "bounded cache holds %" PRIu64 " bytes, budget %d", st.bytes, BOUNDED_SIZE);
        disk = tree_bytes(shards, NULL);
        CHECK(st.bytes == disk, "after prune: stats bytes %" PRIu64 ", on disk %" PRIu64, st.bytes, disk);
        CHECK(st.evictions > 0, "the bounded cache never evicted");
        printf("bounded: %" PRIu64 " evictions, %" PRIu64 " bytes of %d after prune\n", st.evictions, st.bytes,
               BOUNDED_SIZE);
    }
    rc = fsc_verify(c, 0, &vr);
    CHECK(rc == FSC_OK && vr.problems == 0, "fsc_verify after the checks: %" PRIu64 " problems", vr.problems);
    fsc_close(c);

    printf("%s: %ld kills, %ld key checks, %ld wrong, %ld lost, %ld evicted meanwhile, %ld failed operations\n",
           bounded ? "bounded" : "unbounded", ph.kills, ph.checked, ph.wrong, ph.lost, ph.evicted_or_gone,
           ph.failed_ops);
    tot->kills += ph.kills;
    tot->checked += ph.checked;
    tot->wrong += ph.wrong;
    tot->lost += ph.lost;
    tot->evicted += ph.evicted_or_gone;
    tot->failed_ops += ph.failed_ops;
    free(ph.keys);
}

static int rm_tree(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

int main(int argc, char **argv) {
    static const struct option lo[] = {{"kills", 1, 0, 'k'},   {"writers", 1, 0, 'w'}, {"readers", 1, 0, 'r'},
                                       {"seed", 1, 0, 's'},    {"dir", 1, 0, 'd'},     {"max-delay-us", 1, 0, 'u'},
                                       {"seconds", 1, 0, 't'}, {"repair", 0, 0, 'R'},  {0, 0, 0, 0}};
    int ch;
    opt_seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    while ((ch = getopt_long(argc, argv, "k:w:r:s:d:u:t:R", lo, NULL)) != -1) {
        switch (ch) {
        case 'k': opt_kills = atol(optarg); break;
        case 'w': opt_writers = atoi(optarg); break;
        case 'r': opt_readers = atoi(optarg); break;
        case 's': opt_seed = strtoull(optarg, NULL, 0); break;
        case 'd': opt_dir = optarg; break;
        case 'u': opt_max_delay_us = atol(optarg); break;
        case 't': opt_seconds = atol(optarg); break;
        case 'R': opt_repair = 1; break;
        default:
            fprintf(stderr,
                    "usage: %s [--kills N] [--seconds T] [--repair] [--writers W] [--readers R] [--seed S]\n"
                    "          [--max-delay-us U] [--dir D]\n",
                    argv[0]);
            return 2;
        }
    }
    if (opt_writers < 1 || opt_writers > MAX_WRITERS || opt_readers < 0 || opt_readers > MAX_READERS) {
        fprintf(stderr, "writers 1..%d, readers 0..%d\n", MAX_WRITERS, MAX_READERS);
        return 2;
    }
    /* How long the repair torture runs is the CI's to choose. */
    const char *repair_seconds = getenv("FSC_TORTURE_REPAIR_SECONDS");
    if (opt_repair && repair_seconds && *repair_seconds)
        opt_seconds = atol(repair_seconds);
    signal(SIGPIPE, SIG_IGN);
    rng_state = tv_mix(opt_seed);
    char work[4096];
    const char *base = opt_dir ? opt_dir : getenv("TMPDIR");
    snprintf(work, sizeof work, "%s/fsc-torture-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 1;
    }
    if (opt_seconds > 0)
        printf("torture: seed %" PRIu64 ", kills for %ld s, %d writers, %d readers%s, in %s\n", opt_seed, opt_seconds,
               opt_writers, opt_readers, opt_repair ? ", a repair loop" : "", work);
    else
        printf("torture: seed %" PRIu64 ", %ld kills, %d writers, %d readers%s, in %s\n", opt_seed, opt_kills,
               opt_writers, opt_readers, opt_repair ? ", a repair loop" : "", work);
    fflush(stdout);

    struct totals tot;
    memset(&tot, 0, sizeof tot);
    /* A time limit is shared by the phases; the repair mode has one phase. */
    long half = opt_repair ? 0 : opt_kills / 2;
    const long seconds = opt_seconds;
    if (!opt_repair)
        opt_seconds = seconds - seconds / 2;
    run_phase(work, 0, opt_kills - half, &tot);
    if (!opt_repair) {
        opt_seconds = seconds / 2;
        run_phase(work, 1, half, &tot);
    }

    printf("kills: %ld\n", tot.kills);
    printf("reads verified: %" PRIu64 " (of %" PRIu64 " reads by readers; %" PRIu64 " reader errors)\n", tot.verified,
           tot.reads, tot.reader_errors);
    printf("key checks after kills: %ld\n", tot.checked);
    printf("torn or wrong reads: %" PRIu64 "\n", tot.bad_reads + (uint64_t)tot.wrong);
    printf("lost committed values: %ld\n", tot.lost);
    printf("failed operations: %ld\n", tot.failed_ops);
    if (checks_failed == 0)
        rm_tree(work);
    else
        printf("cache directories kept in %s (seed %" PRIu64 ")\n", work, opt_seed);
    printf("checks made after kills and by readers: %ld good, %ld bad\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
