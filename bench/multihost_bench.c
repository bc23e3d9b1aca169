/*
 * multihost_bench: fsc on one cache directory shared by two hosts over a
 * network filesystem (two mounts of one GlusterFS volume, bench/multihost.sh),
 * in network mode and with it forced off, beside the same operations on a
 * local directory measured in the same run. Three places, each a cache of
 * its own:
 *   local    PARENT/.../cache, opened twice (no network filesystem);
 *   net-on   the volume, host A through --mnt-a, host B through --mnt-b,
 *            network_mode FSC_NETWORK_AUTO (checked to be on);
 *   net-off  the same with network_mode FSC_NETWORK_OFF.
 * Each place has a worker process per host, with its own handle, driven
 * through pipes; the places take turns block by block.
 *  1. set latency on A and get latency (hit) on B of A's values, 100 B
 *     (packed) and 1 MiB, median and p99 of --ops operations;
 *  2. visibility: B reads the key (the old value), A overwrites it; once A's
 *     set has returned B polls until it gets the new value: the time from
 *     A's return to that get's return. A first get that still returns the
 *     old value is a stale read;
 *  3. stampede: --procs processes per host call fsc_get_or_create on one
 *     missing key at once (pipe barrier); the creator sleeps --sleep-ms:
 *     wall time to the last return, and creator runs (must be 1).
 * Every value read is checked (size, and the version written at its head
 * and its tail); a failed or wrong read is counted, never ignored.
 *
 * Usage: multihost_bench --mnt-a DIR --mnt-b DIR [--local PARENT] [--ops N]
 *                        [--vis-rounds N] [--procs N] [--rounds R]
 *                        [--sleep-ms MS] [--keep]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "fsc.h"

#define SMALL 100
#define BIG (1 << 20)
#define BLOCK 20
#define POLL_LIMIT_S 2.0
#define NPLACES 3

enum { OP_SET, OP_GET, OP_POLL, OP_QUIT };

typedef struct {
    int op, size, first, count;
    int64_t version;
    char prefix[16];
} mh_cmd;

/* What went wrong in a worker's operations: gets that missed, failed or
 * read a wrong value (size, or head and tail disagreeing), sets that failed,
 * and the last failure's status and message. */
typedef struct {
    int miss, err, wrong, set_err, rc;
    char msg[200];
} tally;

/* A worker's answer; SET and GET follow it with count latencies (seconds). */
typedef struct {
    tally bad;
    int stale;      /* POLL: its first get returned an older value */
    int polls;      /* GET, POLL: gets that returned an older value */
    int seen;       /* POLL: the new value was read within POLL_LIMIT_S */
    double t;       /* SET: when the last set returned; POLL: when the new value's get returned */
    int network[2]; /* at start: fsc_statistics network_fs, network_mode */
} mh_reply;

typedef struct {
    const char *name;
    int mode;
    char dir[2][4300]; /* host A's and host B's path to the cache */
    pid_t pid[2];
    int cmd[2], rep[2];     /* the parent's ends of each worker's pipes */
    int network[2][2];      /* per host: fsc_statistics network_fs, network_mode */
} place;

static place places[NPLACES];

static void die(const char *what) {
    fprintf(stderr, "multihost_bench: %s: %s (%s)\n", what, strerror(errno), fsc_errmsg());
    exit(1);
}

static void write_all(int fd, const void *p, size_t n) {
    if (write(fd, p, n) != (ssize_t)n) die("pipe write");
}

static int read_all(int fd, void *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static fsc_cache *open_place(const char *dir, int mode) {
    fsc_options o;
    fsc_options_init(&o);
    o.network_mode = mode;
    fsc_cache *c = NULL;
    int rc = fsc_open(dir, &o, &c);
    if (rc != FSC_OK) {
        fprintf(stderr, "multihost_bench: fsc_open %s: %s %s\n", dir, fsc_strerror(rc), fsc_errmsg());
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* Values: the version at the head and the tail, a filler between     */
/* ------------------------------------------------------------------ */

static void stamp(char *buf, int size, int64_t version) {
    memcpy(buf, &version, sizeof version);
    memcpy(buf + size - sizeof version, &version, sizeof version);
}

/* The version a value read back carries, -1 when its size or its two ends are wrong. */
static int64_t version_of(fsc_entry *e, int size) {
    const char *d = fsc_entry_size(e) == (uint64_t)size ? fsc_entry_data(e) : NULL;
    if (!d) return -1;
    int64_t head, tail;
    memcpy(&head, d, sizeof head);
    memcpy(&tail, d + size - sizeof tail, sizeof tail);
    return head == tail ? head : -1;
}

static void key_of(char *out, size_t cap, const mh_cmd *c, int i) { snprintf(out, cap, "%s-%d", c->prefix, i); }

static void note_failure(tally *t, int rc) {
    t->rc = rc;
    snprintf(t->msg, sizeof t->msg, "%s", fsc_errmsg());
}

/* One get of the key: its version (> 0), or 0 for a miss, -1 for a failure,
 * -2 for a wrong value, each counted in t. */
static int64_t get_version(fsc_cache *c, const char *key, int size, tally *t) {
    fsc_entry *e = NULL;
    int rc = fsc_get(c, key, strlen(key), &e);
    if (rc == FSC_MISS) {
        t->miss++;
        return 0;
    }
    if (rc != FSC_OK) {
        t->err++;
        note_failure(t, rc);
        return -1;
    }
    int64_t v = version_of(e, size);
    fsc_entry_free(e);
    if (v < 0) {
        t->wrong++;
        return -2;
    }
    return v;
}

static int failures(const tally *t) { return t->miss + t->err + t->wrong + t->set_err; }

static void tally_add(tally *to, const tally *from) {
    to->miss += from->miss;
    to->err += from->err;
    to->wrong += from->wrong;
    to->set_err += from->set_err;
    if (from->rc) {
        to->rc = from->rc;
        memcpy(to->msg, from->msg, sizeof to->msg);
    }
}

/* A line under a table for each place whose operations went wrong. */
static void tally_print(const char *what, const char *where, const tally *t) {
    if (!failures(t)) return;
    printf("\n%s, %s: %d gets missed, %d failed, %d read a wrong value; %d sets failed", what, where, t->miss, t->err,
           t->wrong, t->set_err);
    if (t->rc) printf(" (last: %s %s)", fsc_strerror(t->rc), t->msg);
    printf("\n");
}

/* ------------------------------------------------------------------ */
/* Workers: one process per place and host                             */
/* ------------------------------------------------------------------ */

static void worker_set(fsc_cache *c, const mh_cmd *m, char *buf, mh_reply *r, double *lat) {
    char key[64];
    for (int i = 0; i < m->count; i++) {
        key_of(key, sizeof key, m, m->first + i);
        stamp(buf, m->size, m->version);
        double t0 = bu_now();
        int rc = fsc_set(c, key, strlen(key), buf, (size_t)m->size);
        if (rc != FSC_OK) {
            r->bad.set_err++;
            note_failure(&r->bad, rc);
        }
        r->t = bu_now();
        lat[i] = r->t - t0;
    }
}

static void worker_get(fsc_cache *c, const mh_cmd *m, mh_reply *r, double *lat) {
    char key[64];
    for (int i = 0; i < m->count; i++) {
        key_of(key, sizeof key, m, m->first + i);
        double t0 = bu_now();
        int64_t v = get_version(c, key, m->size, &r->bad);
        if (v > 0 && v < m->version)
            r->polls++; /* an older value: a stale read */
        else if (v > m->version)
            r->bad.wrong++;
        lat[i] = bu_now() - t0;
    }
}

/* Gets the key until it has m->version (or POLL_LIMIT_S has passed),
 * pausing 100 µs after each other outcome (not to starve the filesystem's
 * client processes of CPU). */
static void worker_poll(fsc_cache *c, const mh_cmd *m, mh_reply *r) {
    char key[64];
    key_of(key, sizeof key, m, m->first);
    double start = bu_now();
    for (int n = 0; bu_now() - start < POLL_LIMIT_S; n++) {
        int64_t v = get_version(c, key, m->size, &r->bad);
        r->t = bu_now();
        if (v == m->version) {
            r->seen = 1;
            return;
        }
        if (v > 0 && v < m->version) {
            r->polls++;
            if (n == 0) r->stale = 1;
        } else if (v > 0) {
            r->bad.wrong++;
        }
        usleep(100);
    }
}

static void worker(const char *dir, int mode, int cmd_fd, int rep_fd) {
    fsc_cache *c = open_place(dir, mode);
    if (!c) _exit(3);
    mh_reply r;
    memset(&r, 0, sizeof r);
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (fsc_stats(c, &st) != FSC_OK) _exit(3);
    r.network[0] = (int)st.network_fs;
    r.network[1] = (int)st.network_mode;
    write_all(rep_fd, &r, sizeof r);
    char *buf = malloc(BIG);
    double *lat = malloc(BLOCK * sizeof *lat);
    if (!buf || !lat) _exit(3);
    memset(buf, 'v', BIG);
    mh_cmd m;
    while (read_all(cmd_fd, &m, sizeof m) == 0 && m.op != OP_QUIT) {
        memset(&r, 0, sizeof r);
        if (m.count > BLOCK) _exit(4);
        if (m.op == OP_SET)
            worker_set(c, &m, buf, &r, lat);
        else if (m.op == OP_GET)
            worker_get(c, &m, &r, lat);
        else
            worker_poll(c, &m, &r);
        write_all(rep_fd, &r, sizeof r);
        if (m.op != OP_POLL) write_all(rep_fd, lat, (size_t)m.count * sizeof *lat);
    }
    fsc_close(c);
    _exit(0);
}

/* Closes, in a new child, the parent's ends of the workers started before it. */
static void close_worker_pipes(void) {
    for (int p = 0; p < NPLACES; p++)
        for (int h = 0; h < 2; h++)
            if (places[p].pid[h] > 0) {
                close(places[p].cmd[h]);
                close(places[p].rep[h]);
            }
}

static void start_worker(place *pl, int host) {
    int cmd[2], rep[2];
    if (pipe(cmd) || pipe(rep)) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close_worker_pipes();
        close(cmd[1]);
        close(rep[0]);
        worker(pl->dir[host], pl->mode, cmd[0], rep[1]);
    }
    close(cmd[0]);
    close(rep[1]);
    pl->pid[host] = pid;
    pl->cmd[host] = cmd[1];
    pl->rep[host] = rep[0];
    mh_reply r;
    if (read_all(pl->rep[host], &r, sizeof r) != 0) {
        fprintf(stderr, "multihost_bench: the %s worker of host %c failed to open %s\n", pl->name, "AB"[host],
                pl->dir[host]);
        exit(1);
    }
    pl->network[host][0] = r.network[0];
    pl->network[host][1] = r.network[1];
}

/* Runs one command on a worker: its reply, and the latencies into lat (may be NULL). */
static mh_reply call(place *pl, int host, int op, const char *prefix, int size, int first, int count,
                     int64_t version, double *lat) {
    mh_cmd m;
    memset(&m, 0, sizeof m);
    m.op = op;
    m.size = size;
    m.first = first;
    m.count = count;
    m.version = version;
    snprintf(m.prefix, sizeof m.prefix, "%s", prefix);
    write_all(pl->cmd[host], &m, sizeof m);
    mh_reply r;
    double scratch[BLOCK];
    if (read_all(pl->rep[host], &r, sizeof r) != 0 ||
        (op != OP_POLL && read_all(pl->rep[host], lat ? lat : scratch, (size_t)count * sizeof *lat) != 0)) {
        fprintf(stderr, "multihost_bench: the %s worker of host %c died\n", pl->name, "AB"[host]);
        exit(1);
    }
    return r;
}

/* ------------------------------------------------------------------ */
/* Report rows                                                         */
/* ------------------------------------------------------------------ */

typedef struct {
    double *v;
    int n;
    tally bad;
} samples;

static void add(samples *s, double x) { s->v[s->n++] = x; }

static samples new_samples(int cap) {
    samples s;
    memset(&s, 0, sizeof s);
    if (!(s.v = calloc((size_t)cap, sizeof(double)))) die("calloc");
    return s;
}

/* One row per place: median and p99 in µs, and the ratios to local's. */
static void latency_rows(const char *op, samples *s) {
    double med[NPLACES], p99[NPLACES];
    for (int p = 0; p < NPLACES; p++) {
        med[p] = bu_median(s[p].v, s[p].n) * 1e6;
        p99[p] = bu_quantile(s[p].v, s[p].n, 0.99) * 1e6;
    }
    for (int p = 0; p < NPLACES; p++)
        printf("| %s | %s | %.1f | %.1f | %.2fx | %.2fx | %d/%d |\n", op, places[p].name, med[p], p99[p],
               med[p] / med[0], p99[p] / p99[0], failures(&s[p].bad), s[p].n);
}

static void notes(const char *what, samples *s) {
    for (int p = 0; p < NPLACES; p++) tally_print(what, places[p].name, &s[p].bad);
}

static const struct {
    const char *name;
    int size;
} sizes[] = {{"100 B", SMALL}, {"1 MiB", BIG}};

/* ------------------------------------------------------------------ */
/* 1. set and get latency                                              */
/* ------------------------------------------------------------------ */

static void latency(int ops) {
    printf("\n## Latency: set on host A, get (hit) on host B of A's values\n\n"
           "%d operations per place and size (new keys); the places take turns every %d. "
           "median and p99 in µs; ratios to local's same statistic; failed = failed sets, and gets that "
           "missed, failed or read a wrong value (lines below the table).\n\n"
           "| op | where | median µs | p99 µs | median / local | p99 / local | failed |\n"
           "|---|---|---|---|---|---|---|\n",
           ops, BLOCK);
    samples all[2][2][NPLACES]; /* [size][set, get][place] */
    for (int z = 0; z < 2; z++) {
        char prefix[8];
        snprintf(prefix, sizeof prefix, "l%d", z);
        for (int phase = 0; phase < 2; phase++) {
            samples *s = all[z][phase];
            for (int p = 0; p < NPLACES; p++) s[p] = new_samples(ops);
            for (int first = 0, blk = 0; first < ops; first += BLOCK, blk++)
                for (int k = 0; k < NPLACES; k++) {
                    int p = (k + blk) % NPLACES;
                    int n = ops - first < BLOCK ? ops - first : BLOCK;
                    double lat[BLOCK];
                    mh_reply r = call(&places[p], phase, phase == 0 ? OP_SET : OP_GET, prefix, sizes[z].size,
                                      first, n, 1, lat);
                    for (int i = 0; i < n; i++) add(&s[p], lat[i]);
                    tally_add(&s[p].bad, &r.bad);
                }
            char op[64];
            snprintf(op, sizeof op, "%s %s (%s)", phase ? "get" : "set", sizes[z].name, phase ? "B" : "A");
            latency_rows(op, s);
            fflush(stdout);
        }
    }
    for (int z = 0; z < 2; z++)
        for (int phase = 0; phase < 2; phase++) {
            char op[64];
            snprintf(op, sizeof op, "%s %s", phase ? "get" : "set", sizes[z].name);
            notes(op, all[z][phase]);
            for (int p = 0; p < NPLACES; p++) free(all[z][phase][p].v);
        }
}

/* ------------------------------------------------------------------ */
/* 2. cross-host visibility                                            */
/* ------------------------------------------------------------------ */

static void visibility(int rounds) {
    printf("\n## Visibility: A overwrites a key B has just read; B gets it from when A's set returned\n\n"
           "%d overwrites per place and size. Time from A's set returning to B's first get of the new "
           "value returning (the order passes through pipes, so local's figure is that hop and one get; "
           "B pauses 100 µs after each get that does not return the new value). stale = overwrites whose "
           "first get on B, made after A's set had returned, still returned an older value; stale gets = "
           "all gets of an older value than the last set's (B's reads before an overwrite included); unseen = new value not read within %.0f s; failed = failed sets, and gets that "
           "missed, failed or read a wrong value (lines below the table).\n\n"
           "| overwrite | where | median µs | p99 µs | median / local | stale | stale gets | unseen | failed |\n"
           "|---|---|---|---|---|---|---|---|---|\n",
           rounds, POLL_LIMIT_S);
    samples all[2][NPLACES];
    for (int z = 0; z < 2; z++) {
        samples *s = all[z];
        char prefix[8];
        snprintf(prefix, sizeof prefix, "v%d", z);
        int stale[NPLACES] = {0}, polls[NPLACES] = {0}, unseen[NPLACES] = {0};
        for (int p = 0; p < NPLACES; p++) {
            s[p] = new_samples(rounds);
            mh_reply r = call(&places[p], 0, OP_SET, prefix, sizes[z].size, 0, 1, 1, NULL);
            tally_add(&s[p].bad, &r.bad);
        }
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < NPLACES; k++) {
                int p = (k + r) % NPLACES;
                int64_t v = r + 1;
                /* B reads the old value first: what its client may keep */
                mh_reply old = call(&places[p], 1, OP_GET, prefix, sizes[z].size, 0, 1, v, NULL);
                mh_reply a = call(&places[p], 0, OP_SET, prefix, sizes[z].size, 0, 1, v + 1, NULL);
                mh_reply b = call(&places[p], 1, OP_POLL, prefix, sizes[z].size, 0, 1, v + 1, NULL);
                tally_add(&s[p].bad, &old.bad);
                tally_add(&s[p].bad, &a.bad);
                tally_add(&s[p].bad, &b.bad);
                stale[p] += b.stale;
                polls[p] += old.polls + b.polls;
                if (b.seen)
                    add(&s[p], b.t - a.t);
                else
                    unseen[p]++;
            }
        double med0 = bu_median(s[0].v, s[0].n) * 1e6;
        for (int p = 0; p < NPLACES; p++) {
            double med = bu_median(s[p].v, s[p].n) * 1e6, p99 = bu_quantile(s[p].v, s[p].n, 0.99) * 1e6;
            printf("| %s | %s | %.1f | %.1f | %.2fx | %d/%d | %d | %d | %d |\n", sizes[z].name, places[p].name, med,
                   p99, med / med0, stale[p], rounds, polls[p], unseen[p], failures(&s[p].bad));
        }
        fflush(stdout);
    }
    for (int z = 0; z < 2; z++) {
        char op[64];
        snprintf(op, sizeof op, "overwrite %s", sizes[z].name);
        notes(op, all[z]);
        for (int p = 0; p < NPLACES; p++) free(all[z][p].v);
    }
}

/* ------------------------------------------------------------------ */
/* 3. stampede                                                         */
/* ------------------------------------------------------------------ */

static int sleep_ms = 200;
static const char STAMPEDE_VALUE[] = "stampede-value";

/* What a caller tells the parent: when it returned, its status, whether it
 * got the creator's value, and whether it ran the creator (and the status
 * of the creator's fsc_set). */
typedef struct {
    double end;
    int host, ok, rc, created, set_rc;
    char msg[200];
} stampede_msg;

static int slow_creator(void *msg, fsc_cache *c, const void *key, size_t kl) {
    stampede_msg *m = msg;
    m->created = 1;
    usleep((useconds_t)sleep_ms * 1000);
    m->set_rc = fsc_set(c, key, kl, STAMPEDE_VALUE, sizeof STAMPEDE_VALUE - 1);
    return m->set_rc == FSC_OK ? 0 : 1;
}

static void stampede_caller(const place *pl, int host, const char *key, int ready, int go, int res) {
    fsc_cache *c = open_place(pl->dir[host], pl->mode);
    if (!c) _exit(3);
    char b = 1, x;
    if (write(ready, &b, 1) != 1) _exit(3);
    if (read(go, &x, 1) < 0) _exit(3); /* EOF when the parent closes its end */
    stampede_msg m;
    memset(&m, 0, sizeof m);
    m.host = host;
    fsc_entry *e = NULL;
    m.rc = fsc_get_or_create(c, key, strlen(key), -1, slow_creator, &m, &e);
    m.end = bu_now();
    snprintf(m.msg, sizeof m.msg, "%s", m.rc == FSC_OK ? "" : fsc_errmsg());
    m.ok = m.rc == FSC_OK && fsc_entry_size(e) == sizeof STAMPEDE_VALUE - 1 &&
           memcmp(fsc_entry_data(e), STAMPEDE_VALUE, sizeof STAMPEDE_VALUE - 1) == 0;
    fsc_entry_free(e);
    write_all(res, &m, sizeof m);
    fsc_close(c);
    _exit(0);
}

typedef struct {
    double wall;    /* seconds from the barrier's release to the last return */
    int created;    /* creator runs */
    char hosts[32]; /* their hosts, '*' after one whose set failed */
    int failed;     /* callers without the creator's value */
} stampede_result;

/* procs callers per host on a missing key; a line into notes for each
 * failed caller or failed creator's set. */
static stampede_result stampede(const place *pl, int procs, const char *key, char *notes, size_t cap) {
    int ready[2], go[2], res[2];
    if (pipe(ready) || pipe(go) || pipe(res)) die("pipe");
    for (int i = 0; i < 2 * procs; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            close_worker_pipes();
            close(ready[0]);
            close(go[1]);
            close(res[0]);
            stampede_caller(pl, i % 2, key, ready[1], go[0], res[1]);
        }
    }
    close(ready[1]);
    close(go[0]);
    close(res[1]);
    for (int got = 0; got < 2 * procs;) {
        char b[64];
        ssize_t r = read(ready[0], b, sizeof b);
        if (r <= 0) {
            fprintf(stderr, "multihost_bench: a stampede caller (%s) failed to start\n", pl->name);
            exit(1);
        }
        got += (int)r;
    }
    double t0 = bu_now(), last = t0;
    close(go[1]);
    stampede_result out;
    memset(&out, 0, sizeof out);
    for (int i = 0; i < 2 * procs; i++) {
        stampede_msg m;
        if (read_all(res[0], &m, sizeof m) != 0) {
            out.failed++;
            continue;
        }
        if (m.end > last) last = m.end;
        if (m.created) {
            size_t h = strlen(out.hosts);
            snprintf(out.hosts + h, sizeof out.hosts - h, "%s%c%s", out.created ? " " : "", "AB"[m.host],
                     m.set_rc == FSC_OK ? "" : "*");
            out.created++;
        }
        if (!m.ok) out.failed++;
        size_t l = strlen(notes);
        if (!m.ok)
            l += (size_t)snprintf(notes + l, cap - l, "\n%s, %s: a caller on host %c got %s %s", pl->name, key,
                                  "AB"[m.host], fsc_strerror(m.rc), m.msg);
        if (m.created && m.set_rc != FSC_OK && l < cap)
            snprintf(notes + l, cap - l, "\n%s, %s: a creator on host %c: its fsc_set returned %s", pl->name,
                     key, "AB"[m.host], fsc_strerror(m.set_rc));
    }
    for (int i = 0; i < 2 * procs; i++) wait(NULL);
    close(ready[0]);
    close(res[0]);
    out.wall = last - t0;
    return out;
}

static void stampedes(int procs, int rounds) {
    printf("\n## Stampede: %d processes per host, fsc_get_or_create on one missing key at once\n\n"
           "The creator sleeps %d ms, then sets the value; %d rounds (a fresh key each). wall = the barrier's "
           "release to the last caller's return, median; creator runs per round (must be 1), "
           "with the host of each (* = its set failed); failed = callers without the creator's "
           "value (lines below the table).\n\n"
           "| where | wall ms | wall / sleep | wall / local | creator runs per round | failed callers |\n"
           "|---|---|---|---|---|---|\n",
           procs, sleep_ms, rounds);
    double *w[NPLACES];
    char runs[NPLACES][1024] = {{0}};
    static char notes[NPLACES][4096];
    int failed[NPLACES] = {0};
    for (int p = 0; p < NPLACES; p++)
        if (!(w[p] = calloc((size_t)rounds, sizeof(double)))) die("calloc");
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < NPLACES; k++) {
            int p = (k + r) % NPLACES;
            char key[32];
            snprintf(key, sizeof key, "stampede-%d", r);
            stampede_result sr = stampede(&places[p], procs, key, notes[p], sizeof notes[p]);
            w[p][r] = sr.wall * 1e3;
            size_t l = strlen(runs[p]);
            snprintf(runs[p] + l, sizeof runs[p] - l, "%s%d (%s)", r ? ", " : "", sr.created, sr.hosts);
            failed[p] += sr.failed;
        }
    double med0 = bu_median(w[0], rounds);
    for (int p = 0; p < NPLACES; p++) {
        double med = bu_median(w[p], rounds);
        printf("| %s | %.1f | %.2fx | %.2fx | %s | %d/%d |\n", places[p].name, med, med / sleep_ms, med / med0, runs[p],
               failed[p], 2 * procs * rounds);
        free(w[p]);
    }
    for (int p = 0; p < NPLACES; p++) printf("%s", notes[p]);
    printf("\n");
}

/* ------------------------------------------------------------------ */

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s --mnt-a DIR --mnt-b DIR [--local PARENT] [--ops N] [--vis-rounds N] [--procs N] "
            "[--rounds R] [--sleep-ms MS] [--keep]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv) {
    const char *mnt_a = NULL, *mnt_b = NULL, *local = "/dev/shm";
    int ops = 200, vis_rounds = 20, procs = 4, rounds = 5, keep = 0;
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (!strcmp(argv[i], "--mnt-a") && more)
            mnt_a = argv[++i];
        else if (!strcmp(argv[i], "--mnt-b") && more)
            mnt_b = argv[++i];
        else if (!strcmp(argv[i], "--local") && more)
            local = argv[++i];
        else if (!strcmp(argv[i], "--ops") && more)
            ops = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vis-rounds") && more)
            vis_rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--procs") && more)
            procs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && more)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sleep-ms") && more)
            sleep_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else
            usage(argv[0]);
    }
    if (!mnt_a || !mnt_b || ops < 1 || vis_rounds < 1 || procs < 1 || rounds < 1 || sleep_ms < 0) usage(argv[0]);

    /* the run's directory on the volume, created through A, reached through B by the same name */
    char local_root[4096], net_a[4096], net_b[4160];
    if (bu_fresh_dir(local, "fsc-mh-bench", local_root, sizeof local_root) != 0) return 1;
    if (bu_fresh_dir(mnt_a, "fsc-mh-bench", net_a, sizeof net_a) != 0) return 1;
    snprintf(net_b, sizeof net_b, "%s/%s", mnt_b, strrchr(net_a, '/') + 1);
    static const struct {
        const char *name;
        int mode;
    } kinds[NPLACES] = {{"local", FSC_NETWORK_AUTO}, {"net-on", FSC_NETWORK_AUTO}, {"net-off", FSC_NETWORK_OFF}};
    for (int p = 0; p < NPLACES; p++) {
        place *pl = &places[p];
        pl->name = kinds[p].name;
        pl->mode = kinds[p].mode;
        for (int h = 0; h < 2; h++)
            snprintf(pl->dir[h], sizeof pl->dir[h], "%s/%s", p == 0 ? local_root : h == 0 ? net_a : net_b,
                     p == 0 ? "cache" : pl->name);
    }

    char date[64], load[64];
    bu_today(date, sizeof date);
    bu_loadavg(load, sizeof load);
    printf("# multihost_bench: fsc %s\n\ndate: %s; load average: %s; %ld CPUs\n", fsc_version(), date, load,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("local: %s (%s, create probe %.1f µs/file); host A: %s; host B: %s (%s)\n", local_root,
           bu_fs_name(local_root), bu_create_probe_us(local_root, 200), net_a, net_b, bu_fs_name(net_a));

    for (int p = 0; p < NPLACES; p++) {
        start_worker(&places[p], 0); /* A first: it creates the cache */
        start_worker(&places[p], 1);
    }
    for (int p = 0; p < NPLACES; p++)
        printf("%s: network_fs %d/%d, network_mode %d/%d (host A/B)\n", places[p].name, places[p].network[0][0],
               places[p].network[1][0], places[p].network[0][1], places[p].network[1][1]);
    for (int h = 0; h < 2; h++)
        if (places[0].network[h][1] || !places[1].network[h][1] || places[2].network[h][1]) {
            fprintf(stderr, "multihost_bench: network mode is not on the volume only: are --mnt-a and --mnt-b "
                            "network mounts?\n");
            return 1;
        }

    double t0 = bu_now();
    latency(ops);
    visibility(vis_rounds);
    stampedes(procs, rounds);

    for (int p = 0; p < NPLACES; p++)
        for (int h = 0; h < 2; h++) {
            mh_cmd quit = {.op = OP_QUIT};
            write_all(places[p].cmd[h], &quit, sizeof quit);
            waitpid(places[p].pid[h], NULL, 0);
        }
    printf("\n%.0f s of measurements\n", bu_now() - t0);
    if (keep) {
        printf("kept: %s and %s\n", local_root, net_a);
    } else {
        bu_rm_rf(local_root);
        bu_rm_rf(net_a);
    }
    return 0;
}
