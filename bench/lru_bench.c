/*
 * lru_bench: how near fsc's eviction is to exact LRU, as hit rates on one
 * deterministic access trace.
 *
 * The trace draws keys from Zipf(S) over a universe of N keys; each operation
 * gets its key and, on a miss, sets it (cache-aside). The same trace runs
 * against:
 *   fsc      fsc_open with a cache_size meant to hold about F x N values;
 *   LRU      an in-memory exact LRU with the same byte budget and fsc's
 *            accounting (see below);
 *   random   the same, evicting a uniformly random value;
 *   LRU@n    an exact LRU holding at most n values, n = fsc's observed mean
 *            number of values (no byte model at all).
 * Hit rates count after a warm-up (the first 10% of operations).
 *
 * Matching the budget: fsc charges each value 64 + key length + value bytes,
 * and each non-empty shard (256 of them, by key hash) its metadata table of
 * 64 x (capacity + 1) bytes, plus a 64-byte header for a shard's pack file
 * when values are packed. A table holds about twice its values (rebuilt at
 * 2 x count + 2 slots, at least 4). The simulators charge the same: values
 * hashed into 256 shards by their own hash, each shard's table modelled as
 * 64 x (max(4, 2c + 2) + 1) bytes for c values. cache_size is F x N values'
 * charges plus the expected table bytes for F x N values spread over 256
 * shards (Poisson), so that the model LRU holds about F x N values. fsc's own
 * tables also grow ahead and keep tombstones: LRU@n removes that modelling
 * from the comparison.
 *
 * Every fsc hit is checked against the bytes that were set (values are
 * derived from their key); fsc's own hit/miss counters, its byte budget and
 * fsc_verify are checked at the end. Any failure: exit status 1.
 *
 * Usage: lru_bench [--dir PARENT] [--values N] [--ops M] [--size BYTES]
 *                  [--cache-frac F] [--zipf S] [--seed X] [--keep]
 * Without --values and --size it runs universes 2000 and 20000 (about 400
 * values: fsc's exact-LRU regime; about 4000: its sampled regime) with
 * 1024-byte (packed) and 8192-byte (entry file) values.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "fsc.h"

#define SHARDS 256
#define SAMPLE_EVERY 1000 /* ops between samples of the number of values held */
#define KEY_LEN 12        /* "key-%08u" */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return (double)(splitmix64(s) >> 11) * 0x1.0p-53; }

/* ------------------------------------------------------------------ */
/* Trace and values                                                    */
/* ------------------------------------------------------------------ */

/* m keys drawn from Zipf(s) over n keys: a CDF and a binary search. Rank r
 * is key r; fsc shards by key hash, so popular keys still spread. */
static uint32_t *make_trace(uint32_t n, long m, double s, uint64_t seed) {
    double *cdf = malloc(sizeof(double) * n);
    uint32_t *t = malloc(sizeof(uint32_t) * (size_t)m);
    if (!cdf || !t) exit(1);
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) cdf[i] = sum += pow((double)i + 1, -s);
    for (uint32_t i = 0; i < n; i++) cdf[i] /= sum;
    uint64_t st = seed;
    for (long i = 0; i < m; i++) {
        double u = uniform01(&st);
        uint32_t lo = 0, hi = n - 1;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        t[i] = lo;
    }
    free(cdf);
    return t;
}

static int key_of(char *k, uint32_t id) { return snprintf(k, 16, "key-%08u", id); }

/* The key, ':' and then bytes of a stream seeded by the key: a hit that
 * returns another key's value, or a torn one, does not match. */
static void make_value(uint32_t id, unsigned char *v, size_t size) {
    uint64_t st = 0x5eed0000ULL ^ ((uint64_t)id << 20);
    for (size_t i = 0; i < size; i += 8) {
        uint64_t x = splitmix64(&st);
        memcpy(v + i, &x, size - i < 8 ? size - i : 8);
    }
    char k[16];
    int kl = key_of(k, id);
    memcpy(v, k, (size_t)kl < size ? (size_t)kl : size);
    if ((size_t)kl < size) v[kl] = ':';
}

/* ------------------------------------------------------------------ */
/* fsc's accounting, as the simulators charge it                       */
/* ------------------------------------------------------------------ */

static uint64_t entry_charge(size_t size) { return FSC_BUDGET_ENTRY_OVERHEAD + KEY_LEN + size; }

/* A shard's table (and pack header) for c values; an empty shard costs nothing. */
static uint64_t shard_overhead(uint64_t c, int packed) {
    if (c == 0) return 0;
    uint64_t cap = 2 * c + 2 < 4 ? 4 : 2 * c + 2;
    return 64 * (cap + 1) + (packed ? 64 : 0);
}

/* Expected bytes of all shards' tables for k values hashed over 256 shards. */
static double expected_overhead(double k, int packed) {
    double lambda = k / SHARDS, p = exp(-lambda), e = 0;
    for (uint64_t j = 0; j < (uint64_t)(lambda + 12 * sqrt(lambda) + 40); j++) {
        e += p * (double)shard_overhead(j, packed);
        p *= lambda / (double)(j + 1);
    }
    return e * SHARDS;
}

static unsigned sim_shard(uint32_t id) {
    uint64_t s = id * 0x2545f4914f6cdd1dULL;
    return (unsigned)(splitmix64(&s) >> 56);
}

/* ------------------------------------------------------------------ */
/* Simulators                                                          */
/* ------------------------------------------------------------------ */

enum policy { LRU, RANDOM };

typedef struct {
    long hits, misses;   /* after the warm-up */
    double mean_entries; /* sampled after the warm-up */
} sim_result;

/* budget > 0: bytes under fsc's accounting; else at most max_entries values. */
static sim_result simulate(enum policy pol, const uint32_t *trace, long m, long warm, uint32_t n, size_t size,
                           int packed, uint64_t budget, uint64_t max_entries, uint64_t seed) {
    int32_t *prev = malloc(sizeof(int32_t) * n), *next = malloc(sizeof(int32_t) * n);
    uint32_t *pos = malloc(sizeof(uint32_t) * n), *res = malloc(sizeof(uint32_t) * n);
    unsigned char *in = calloc(n, 1), *shard = malloc(n);
    if (!prev || !next || !pos || !res || !in || !shard) exit(1);
    for (uint32_t i = 0; i < n; i++) shard[i] = (unsigned char)sim_shard(i);
    uint64_t count[SHARDS] = {0}, bytes = 0, entries = 0, rng = seed ^ 0xabcdefULL;
    int32_t head = -1, tail = -1; /* LRU list, most recent at head */
    const uint64_t charge = entry_charge(size);
    sim_result r = {0, 0, 0};
    double sum_entries = 0;
    long samples = 0;

    for (long i = 0; i < m; i++) {
        uint32_t k = trace[i];
        int hit = in[k];
        if (i >= warm) {
            if (hit)
                r.hits++;
            else
                r.misses++;
            if ((i - warm) % SAMPLE_EVERY == 0) {
                sum_entries += (double)entries;
                samples++;
            }
        }
        if (hit) {
            if (pol == LRU && head != (int32_t)k) { /* move to front */
                next[prev[k]] = next[k];
                if (next[k] >= 0)
                    prev[next[k]] = prev[k];
                else
                    tail = prev[k];
                prev[k] = -1;
                next[k] = head;
                prev[head] = (int32_t)k;
                head = (int32_t)k;
            }
            continue;
        }
        /* miss: set it */
        in[k] = 1;
        entries++;
        unsigned s = shard[k];
        bytes += charge + shard_overhead(count[s] + 1, packed) - shard_overhead(count[s], packed);
        count[s]++;
        prev[k] = -1;
        next[k] = head;
        if (head >= 0) prev[head] = (int32_t)k;
        head = (int32_t)k;
        if (tail < 0) tail = (int32_t)k;
        pos[k] = (uint32_t)(entries - 1);
        res[entries - 1] = k;
        /* evict (never the value just set) until within the budget */
        while (entries > 1 && (budget ? bytes > budget : entries > max_entries)) {
            uint32_t v;
            if (pol == LRU) {
                v = (uint32_t)tail;
                tail = prev[v];
                next[tail] = -1;
            } else {
                do v = res[splitmix64(&rng) % entries];
                while (v == k);
            }
            /* both structures are kept for both policies: cheap, and one eviction path */
            if (pol == RANDOM) {
                if (prev[v] >= 0)
                    next[prev[v]] = next[v];
                else
                    head = next[v];
                if (next[v] >= 0)
                    prev[next[v]] = prev[v];
                else
                    tail = prev[v];
            }
            uint32_t last = res[entries - 1];
            res[pos[v]] = last;
            pos[last] = pos[v];
            in[v] = 0;
            entries--;
            unsigned vs = shard[v];
            bytes -= charge + shard_overhead(count[vs], packed) - shard_overhead(count[vs] - 1, packed);
            count[vs]--;
        }
    }
    r.mean_entries = samples ? sum_entries / (double)samples : 0;
    free(prev);
    free(next);
    free(pos);
    free(res);
    free(in);
    free(shard);
    return r;
}

/* ------------------------------------------------------------------ */
/* fsc                                                                 */
/* ------------------------------------------------------------------ */

typedef struct {
    long hits, misses, all_hits, all_misses, errors, over_budget;
    double mean_entries, mean_bytes, seconds;
    uint64_t max_bytes;
    fsc_statistics end;
} fsc_result;

static int stats_of(fsc_cache *c, fsc_statistics *st) {
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    return fsc_stats(c, st);
}

static void run_fsc(const char *dir, const uint32_t *trace, long m, long warm, size_t size, uint64_t budget,
                    fsc_result *r) {
    memset(r, 0, sizeof *r);
    fsc_options o;
    fsc_options_init(&o);
    o.cache_size = budget;
    fsc_cache *c = NULL;
    int rc = fsc_open(dir, &o, &c);
    if (rc != FSC_OK) {
        fprintf(stderr, "fsc_open %s: %s %s\n", dir, fsc_strerror(rc), fsc_errmsg());
        exit(1);
    }
    unsigned char *want = malloc(size);
    if (!want) exit(1);
    double sum_entries = 0, sum_bytes = 0;
    long samples = 0;
    fsc_statistics st;
    double t0 = bu_now();
    for (long i = 0; i < m; i++) {
        uint32_t k = trace[i];
        char key[16];
        int kl = key_of(key, k);
        if (i >= warm && (i - warm) % SAMPLE_EVERY == 0) {
            if (stats_of(c, &st) != FSC_OK) {
                r->errors++;
            } else {
                sum_entries += (double)st.entries;
                sum_bytes += (double)st.bytes;
                samples++;
                if (st.bytes > r->max_bytes) r->max_bytes = st.bytes;
                r->over_budget += st.bytes > budget;
            }
        }
        fsc_entry *e = NULL;
        rc = fsc_get(c, key, (size_t)kl, &e);
        if (rc == FSC_OK) {
            r->all_hits++;
            if (i >= warm) r->hits++;
            make_value(k, want, size);
            const void *d = fsc_entry_data(e);
            if (!d || fsc_entry_size(e) != size || memcmp(d, want, size) != 0) {
                if (r->errors < 5) fprintf(stderr, "lru_bench: op %ld: %s: wrong value\n", i, key);
                r->errors++;
            }
            fsc_entry_free(e);
            continue;
        }
        if (rc != FSC_MISS) {
            if (r->errors < 5)
                fprintf(stderr, "lru_bench: op %ld: get %s: %s %s\n", i, key, fsc_strerror(rc), fsc_errmsg());
            r->errors++;
        }
        r->all_misses++;
        if (i >= warm) r->misses++;
        make_value(k, want, size);
        rc = fsc_set(c, key, (size_t)kl, want, size);
        if (rc != FSC_OK) {
            if (r->errors < 5)
                fprintf(stderr, "lru_bench: op %ld: set %s: %s %s\n", i, key, fsc_strerror(rc), fsc_errmsg());
            r->errors++;
        }
    }
    r->seconds = bu_now() - t0;
    r->mean_entries = samples ? sum_entries / (double)samples : 0;
    r->mean_bytes = samples ? sum_bytes / (double)samples : 0;

    /* fsc's own view must agree with what the trace saw */
    if (stats_of(c, &r->end) != FSC_OK) {
        fprintf(stderr, "lru_bench: fsc_stats: %s\n", fsc_errmsg());
        r->errors++;
    } else {
        if (r->end.bytes > r->max_bytes) r->max_bytes = r->end.bytes;
        if (r->end.bytes > budget) {
            fprintf(stderr, "lru_bench: %s: %llu bytes held, over cache_size %llu\n", dir,
                    (unsigned long long)r->end.bytes, (unsigned long long)budget);
            r->over_budget++;
        }
        if (r->end.hits != (uint64_t)r->all_hits || r->end.misses != (uint64_t)r->all_misses) {
            fprintf(stderr, "lru_bench: %s: fsc counts %llu hits %llu misses, the trace saw %ld and %ld\n", dir,
                    (unsigned long long)r->end.hits, (unsigned long long)r->end.misses, r->all_hits, r->all_misses);
            r->errors++;
        }
    }
    if (r->over_budget) {
        fprintf(stderr, "lru_bench: %s: over cache_size in %ld samples (max %llu > %llu)\n", dir, r->over_budget,
                (unsigned long long)r->max_bytes, (unsigned long long)budget);
        r->errors++;
    }
    fsc_verify_report vr;
    memset(&vr, 0, sizeof vr);
    vr.size = sizeof vr;
    if (fsc_verify(c, 0, &vr) != FSC_OK || vr.problems) {
        fprintf(stderr, "lru_bench: %s: fsc_verify found %llu problems (%s)\n", dir, (unsigned long long)vr.problems,
                fsc_errmsg());
        r->errors++;
    }
    free(want);
    fsc_close(c);
}

/* ------------------------------------------------------------------ */

typedef struct {
    uint32_t n;
    size_t size;
    uint64_t target, budget;
    fsc_result f;
    sim_result lru, rnd, lru_n;
} row;

static double pct(long h, long m) { return h + m ? 100.0 * (double)h / (double)(h + m) : 0; }

int main(int argc, char **argv) {
    const char *parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    uint32_t universes[2] = {2000, 20000};
    size_t sizes[2] = {1024, 8192};
    int nu = 2, ns = 2, keep = 0;
    long ops = 400000;
    double frac = 0.2, zipf = 0.99;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            parent = argv[++i];
        else if (!strcmp(argv[i], "--values") && i + 1 < argc) {
            universes[0] = (uint32_t)atol(argv[++i]);
            nu = 1;
        } else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            ops = atol(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            sizes[0] = (size_t)atol(argv[++i]);
            ns = 1;
        } else if (!strcmp(argv[i], "--cache-frac") && i + 1 < argc)
            frac = atof(argv[++i]);
        else if (!strcmp(argv[i], "--zipf") && i + 1 < argc)
            zipf = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--dir PARENT] [--values N] [--ops M] [--size BYTES] [--cache-frac F] [--zipf S] "
                    "[--seed X] [--keep]\n",
                    argv[0]);
            return 2;
        }
    }
    if (universes[0] < 2 || ops < 10 || frac <= 0 || frac >= 1 || zipf < 0 || sizes[0] < 16) {
        fprintf(stderr,
                "lru_bench: need --values >= 2, --ops >= 10, 0 < --cache-frac < 1, --zipf >= 0, --size >= 16\n");
        return 2;
    }
    char root[4200], date[64], load[64], cmd[2048] = "";
    if (bu_fresh_dir(parent, "fsc-lru-bench", root, sizeof root) != 0) return 1;
    for (int i = 0; i < argc; i++) {
        strncat(cmd, i ? " " : "", sizeof cmd - strlen(cmd) - 1);
        strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 1);
    }
    bu_today(date, sizeof date);
    bu_loadavg(load, sizeof load);
    const long warm = ops / 10;
    printf("# lru_bench: fsc %s eviction vs exact LRU, Zipf(%.2f) cache-aside trace\n\n", fsc_version(), zipf);
    printf("date: %s; dir: %s (%s); load average: %s; command: %s\n", date, root, bu_fs_name(root), load, cmd);
    printf("%ld ops per run (first %ld not counted), cache about %.2f of the universe, seed %llu\n\n", ops, warm, frac,
           (unsigned long long)seed);

    row rows[4];
    int nr = 0;
    long errors = 0;
    for (int ui = 0; ui < nu; ui++) {
        uint32_t n = universes[ui];
        uint32_t *trace = make_trace(n, ops, zipf, seed);
        for (int si = 0; si < ns; si++) {
            row *r = &rows[nr++];
            r->n = n;
            r->size = sizes[si];
            int packed = r->size <= FSC_PACK_LIMIT_DEFAULT;
            r->target = (uint64_t)(frac * n + 0.5);
            if (r->target < 1) r->target = 1;
            /* at least one shard's table: a single value must fit (else FSC_ETOOBIG) */
            double over = expected_overhead((double)r->target, packed);
            if (over < (double)shard_overhead(1, packed)) over = (double)shard_overhead(1, packed);
            r->budget = r->target * entry_charge(r->size) + (uint64_t)over;
            char dir[4400];
            snprintf(dir, sizeof dir, "%s/fsc-%u-%zu", root, n, r->size);
            fprintf(stderr, "[lru_bench] universe %u, %zu-byte values, cache_size %llu\n", n, r->size,
                    (unsigned long long)r->budget);
            run_fsc(dir, trace, ops, warm, r->size, r->budget, &r->f);
            errors += r->f.errors;
            r->lru = simulate(LRU, trace, ops, warm, n, r->size, packed, r->budget, 0, seed);
            r->rnd = simulate(RANDOM, trace, ops, warm, n, r->size, packed, r->budget, 0, seed);
            uint64_t cap = (uint64_t)(r->f.mean_entries + 0.5);
            r->lru_n = simulate(LRU, trace, ops, warm, n, r->size, packed, 0, cap ? cap : 1, seed);
            if (!keep && !strcmp(bu_fs_name(root), "tmpfs")) bu_rm_rf(dir); /* tmpfs: give the memory back now */
        }
        free(trace);
    }

    printf("| values | size | cache values | fsc hit %% | exact LRU hit %% | random hit %% | "
           "fsc/LRU hits | fsc/LRU misses |\n");
    printf("|-------:|-----:|-------------:|----------:|----------------:|-------------:|"
           "-------------:|---------------:|\n");
    for (int i = 0; i < nr; i++) {
        row *r = &rows[i];
        double f = pct(r->f.hits, r->f.misses), l = pct(r->lru.hits, r->lru.misses),
               x = pct(r->rnd.hits, r->rnd.misses);
        printf("| %u | %zu | %llu | %.2f | %.2f | %.2f | %.3f | %.3f |\n", r->n, r->size, (unsigned long long)r->target,
               f, l, x, l > 0 ? f / l : 0, l < 100 ? (100 - f) / (100 - l) : 0);
    }
    printf("\ncache values = F x universe, what cache_size was sized for; hit rates after the warm-up.\n\n");

    printf("| values | size | regime | cache_size | mean values fsc / LRU / random | fsc bytes/value | "
           "LRU@n hit %% | fsc/LRU@n misses | fsc max bytes / cache_size | evictions | fsc s |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nr; i++) {
        row *r = &rows[i];
        double f = pct(r->f.hits, r->f.misses), ln = pct(r->lru_n.hits, r->lru_n.misses);
        printf("| %u | %zu%s | %s | %llu | %.0f / %.0f / %.0f | %.0f | %.2f | %.3f | %.4f | %llu | %.1f |\n", r->n,
               r->size, r->size <= FSC_PACK_LIMIT_DEFAULT ? " packed" : " files",
               r->f.mean_entries <= 1024 ? "exact" : "sampled", (unsigned long long)r->budget, r->f.mean_entries,
               r->lru.mean_entries, r->rnd.mean_entries, r->f.mean_entries ? r->f.mean_bytes / r->f.mean_entries : 0,
               ln, ln < 100 ? (100 - f) / (100 - ln) : 0, (double)r->f.max_bytes / (double)r->budget,
               (unsigned long long)r->f.end.evictions, r->f.seconds);
    }
    printf("\nregime: fsc evicts by exact LRU at <= 1024 values, by sampling above. mean values: sampled every %d ops\n"
           "after the warm-up (fsc from fsc_stats). fsc bytes/value: mean bytes / mean values (charge %u + tables).\n"
           "LRU@n: exact LRU holding at most n = fsc's mean values. fsc max bytes: largest fsc_stats bytes seen.\n",
           SAMPLE_EVERY, (unsigned)entry_charge(0));

    if (errors) printf("\nINVALID: %ld errors (see stderr)\n", errors);
    if (keep)
        printf("\nkept: %s\n", root);
    else
        bu_rm_rf(root);
    return errors ? 1 : 0;
}
