/* Packed values (FSC_PACKING): values stored with fsc_set of at most
 * pack_limit bytes are records in their shard's pack file, not entry files
 * of their own. This program proves that they read back exactly; that a key
 * moves between its shard's pack and files of its own as its value is
 * replaced; that handles of different pack_limit share one cache; that
 * compaction keeps dead records under an eighth of each pack; that a packed
 * value hands out a descriptor like any other; that readers in another
 * process never see wrong bytes while the packs are compacted under them;
 * that a damaged record is reported and removed, never served; that
 * fsc_verify repairs garbage after a pack's end and a pack deleted by hand;
 * that a writer SIGKILLed among packed sets and compactions leaves a cache
 * that verifies clean, within its budget, holding only correct values; and
 * that packed and file values together keep cache_size; that a handle whose
 * pack descriptors another handle's compactions made stale still finds
 * every value; and that damage inside a pack costs only the damaged record. */
#include <poll.h>

#include "store_test.h"

/* ------------------------------------------------------------------ */
/* What the shards hold, by kind of file                               */
/* ------------------------------------------------------------------ */

struct census {
    int entries;   /* <32 hex>: values with a file of their own */
    int payloads;  /* <32 hex>.<16 hex>: the payloads of set_file values */
    int packs;     /* pack.<16 hex> */
    int metas;     /* meta */
    int other;     /* anything else */
    int most_packs_in_a_shard;
    uint64_t pack_bytes;
};

struct census_walk_ {
    struct census n;
    char shard[TB_PATH_MAX + 256]; /* the shard being counted */
    int packs_here;
};

static int census_one_(const char *shard_dir, const char *name, int kind, void *ctx) {
    struct census_walk_ *w = ctx;
    if (strcmp(w->shard, shard_dir) != 0) {
        snprintf(w->shard, sizeof w->shard, "%s", shard_dir);
        w->packs_here = 0;
    }
    struct census *n = &w->n;
    if (kind == FMT_META) {
        n->metas++;
    } else if (kind == FMT_ENTRY) {
        n->entries++;
    } else if (kind == FMT_PAYLOAD) {
        n->payloads++;
    } else if (kind == FMT_PACK) {
        char file[TB_PATH_MAX + 1024];
        snprintf(file, sizeof file, "%s/%s", shard_dir, name);
        struct stat st;
        if (stat(file, &st) == 0)
            n->pack_bytes += (uint64_t)st.st_size;
        n->packs++;
        if (++w->packs_here > n->most_packs_in_a_shard)
            n->most_packs_in_a_shard = w->packs_here;
    } else {
        n->other++;
    }
    return 0;
}

static struct census take_census(const char *dir) {
    struct census_walk_ w;
    memset(&w, 0, sizeof w);
    fmt_each_file(dir, census_one_, &w);
    return w.n;
}

/* ------------------------------------------------------------------ */
/* Records in pack files, parsed as docs/FORMAT.md lays them out       */
/* ------------------------------------------------------------------ */

#define PACK_HEADER 64
#define RECORD_HEADER 64

struct record {
    char path[TB_PATH_MAX]; /* the pack file */
    uint64_t offset;        /* of the record's header */
    uint32_t key_len;
    uint64_t value_size;
    int live; /* magic FSCE (FSCX: dead) */
    char key[64];
};

struct each_record_ {
    void (*fn)(const struct record *r, void *ctx);
    void *ctx;
};

/* Calls fn for each whole record of one pack file, in file order; stops at
 * the first thing that is not a record. */
static int records_of_(const char *shard_dir, const char *name, int kind, void *ctx) {
    struct each_record_ *e = ctx;
    if (kind != FMT_PACK)
        return 0;
    struct record r;
    memset(&r, 0, sizeof r);
    snprintf(r.path, sizeof r.path, "%s/%s", shard_dir, name);
    size_t len = 0;
    unsigned char *buf = tb_read_file(r.path, &len);
    if (!buf)
        return 0;
    uint64_t at = PACK_HEADER, rec;
    while ((rec = fmt_pack_record_len(buf, len, (size_t)at)) != 0 && rec <= len - at) {
        const unsigned char *h = buf + at;
        r.offset = at;
        r.key_len = (uint32_t)fmt_load_le(h + 8, 4);
        r.value_size = fmt_load_le(h + 16, 8);
        r.live = memcmp(h, "FSCE", 4) == 0;
        snprintf(r.key, sizeof r.key, "%.*s", (int)(r.key_len < 63 ? r.key_len : 63), (const char *)h + 64);
        e->fn(&r, e->ctx);
        at += rec;
    }
    free(buf);
    return 0;
}

/* Visits every whole record of every pack file under dir/shards. */
static void each_record(const char *dir, void (*fn)(const struct record *r, void *ctx), void *ctx) {
    struct each_record_ e = {fn, ctx};
    fmt_each_file(dir, records_of_, &e);
}

struct record_list {
    struct record *v;
    int n, cap;
};

static void collect_live(const struct record *r, void *ctx) {
    struct record_list *l = ctx;
    if (!r->live)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, sizeof *l->v * (size_t)l->cap);
    }
    l->v[l->n++] = *r;
}

static const struct record *live_record_of(const struct record_list *l, const char *key) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i].key_len == strlen(key) && strcmp(l->v[i].key, key) == 0)
            return &l->v[i];
    return NULL;
}

static int live_records_in(const struct record_list *l, const char *path) {
    int n = 0;
    for (int i = 0; i < l->n; i++)
        n += strcmp(l->v[i].path, path) == 0;
    return n;
}

static void flip_byte(const char *path, uint64_t at) { fsc_test_flip_byte(path, (off_t)at, 0x5a); }

static void append_bytes(const char *path, const void *buf, size_t n) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    close(fd);
}

static uint64_t file_size(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* ------------------------------------------------------------------ */
/* Checks shared by the tests                                          */
/* ------------------------------------------------------------------ */

/* The key holds its self-checking value of exactly len bytes. */
static void expect_stored(fsc_cache *c, const char *key, size_t len, const char *what) {
    uint64_t size = 0;
    int r = st_check(c, key, &size);
    if (r != 1)
        fail_msg("%s: '%s' is %s, want its %zu-byte value", what, key, r == 0 ? "missing" : "wrong", len);
    if (size != len)
        fail_msg("%s: '%s' holds %llu bytes, want the %zu stored last", what, key, (unsigned long long)size, len);
}

typedef size_t (*len_fn)(int i);

/* Sets n keys named by fmt ("p-%03d") and i, i's value len_of(i) bytes. */
static void set_keys(fsc_cache *c, const char *fmt, int n, len_fn len_of) {
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, fmt, i);
        assert_fsc_ok(st_set(c, key, len_of(i)));
    }
}

/* Every key set_keys stored reads back exactly. */
static void expect_keys(fsc_cache *c, const char *fmt, int n, len_fn len_of, const char *what) {
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, fmt, i);
        expect_stored(c, key, len_of(i), what);
    }
}

/* ------------------------------------------------------------------ */
/* Values that say which round wrote them                              */
/* ------------------------------------------------------------------ */

/* The first 8 bytes are the round; the rest depend on (key index, round,
 * length), so a reader can check a value of any round. */
static void rv_make(unsigned char *buf, size_t len, int k, uint64_t round) {
    memcpy(buf, &round, 8);
    tb_fill(buf + 8, len - 8, tb_mix(((uint64_t)k << 40) ^ round) ^ tb_mix(len));
}

typedef size_t (*rv_len_fn)(int k, uint64_t round);

/* 1 when data is key k's value of some round (written to *round). */
static int rv_good(const void *data, size_t len, int k, rv_len_fn len_of, uint64_t *round) {
    if (len < 8)
        return 0;
    uint64_t r;
    memcpy(&r, data, 8);
    if (len != len_of(k, r))
        return 0;
    unsigned char *want = malloc(len);
    rv_make(want, len, k, r);
    int ok = memcmp(want, data, len) == 0;
    free(want);
    if (ok && round)
        *round = r;
    return ok;
}

static int rv_set(fsc_cache *c, const char *key, int k, uint64_t round, rv_len_fn len_of) {
    size_t len = len_of(k, round);
    unsigned char *buf = malloc(len);
    rv_make(buf, len, k, round);
    int rc = fsc_set(c, key, strlen(key), buf, len);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ */
/* 1. Small values are packed                                          */
/* ------------------------------------------------------------------ */

#define SMALL_KEYS 200

static size_t small_len(int i) { return 1 + (size_t)i * 2999 / (SMALL_KEYS - 1); }

static void test_small_values_are_packed(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(c);
    char key[32];
    uint64_t record_bytes = 0;
    for (int i = 0; i < SMALL_KEYS; i++) {
        snprintf(key, sizeof key, "small-%03d", i);
        assert_fsc_ok(st_set(c, key, small_len(i)));
        record_bytes += RECORD_HEADER + strlen(key) + small_len(i);
    }
    struct census n = take_census(t->dir);
    fprintf(stderr, "%d values of 1..3000 bytes: %d entry files, %d pack files of %llu bytes, %d meta files\n",
            SMALL_KEYS, n.entries, n.packs, (unsigned long long)n.pack_bytes, n.metas);
    assert_int_equal(n.entries, 0);
    assert_int_equal(n.payloads, 0);
    assert_int_equal(n.other, 0);
    assert_true(n.packs > 0);
    assert_int_equal(n.most_packs_in_a_shard, 1);
    /* Nothing was replaced: the packs hold their headers and the records, no more. */
    assert_int_equal(n.pack_bytes, record_bytes + PACK_HEADER * (uint64_t)n.packs);
    expect_keys(c, "small-%03d", SMALL_KEYS, small_len, "packed");
    fsc_statistics s = st_stats(c);
    assert_int_equal(s.entries, SMALL_KEYS);
    st_expect_clean(c, t->dir, "after packing");

    /* Another handle reads them from the files. */
    fsc_cache *other = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(other);
    expect_keys(other, "small-%03d", SMALL_KEYS, small_len, "read by a fresh handle");
    fsc_close(other);

    /* "At most pack_limit bytes": the limit itself is packed, one more is not. */
    assert_fsc_ok(st_set(c, "edge-at-limit", FSC_PACK_LIMIT_DEFAULT));
    assert_int_equal(take_census(t->dir).entries, 0);
    assert_fsc_ok(st_set(c, "edge-over-limit", FSC_PACK_LIMIT_DEFAULT + 1));
    assert_int_equal(take_census(t->dir).entries, 1);
    expect_stored(c, "edge-at-limit", FSC_PACK_LIMIT_DEFAULT, "at the limit");
    expect_stored(c, "edge-over-limit", FSC_PACK_LIMIT_DEFAULT + 1, "over the limit");
    st_expect_clean(c, t->dir, "after the edge values");
    fsc_close(c);
}

/* ------------------------------------------------------------------ */
/* 2. A key moving between the pack and files of its own               */
/* ------------------------------------------------------------------ */

#define NEIGHBOURS 24

static void check_neighbours(fsc_cache *c, const char *what) {
    char key[32];
    for (int i = 0; i < NEIGHBOURS; i++) {
        snprintf(key, sizeof key, "nb-%02d", i);
        expect_stored(c, key, 400 + (size_t)i, what);
    }
}

static void test_key_moves_between_pack_and_file(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(c);
    char key[32];
    for (int i = 0; i < NEIGHBOURS; i++) {
        snprintf(key, sizeof key, "nb-%02d", i);
        assert_fsc_ok(st_set(c, key, 400 + (size_t)i));
    }
    enum { SET, SET_FILE, DELETE };
    static const struct {
        int op;
        size_t len;
        int entries, payloads; /* files of its own the key has afterwards */
        const char *what;
    } steps[] = {
        {SET, 100, 0, 0, "set 100 bytes (packed)"},
        {SET, 10000, 1, 0, "set 10000 bytes (entry file)"},
        {SET, 200, 0, 0, "set 200 bytes (packed again)"},
        {SET_FILE, 3000, 1, 1, "set_file 3000 bytes (entry and payload)"},
        {SET, 300, 0, 0, "set 300 bytes (packed again)"},
        {DELETE, 0, 0, 0, "delete"},
    };
    char src[TB_PATH_MAX];
    snprintf(src, sizeof src, "%s.src", t->dir);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const char *what = steps[i].what;
        if (steps[i].op == SET) {
            assert_fsc_ok(st_set(c, "mover", steps[i].len));
        } else if (steps[i].op == SET_FILE) {
            assert_int_equal(st_write_value_file(src, "mover", steps[i].len), 0);
            assert_fsc_ok(fsc_set_file(c, "mover", 5, -1, src, 0));
            unlink(src);
        } else {
            assert_fsc_ok(fsc_delete(c, "mover", 5));
            assert_fsc_status(fsc_delete(c, "mover", 5), FSC_MISS);
        }
        /* The value is the last one stored, through this handle and a fresh one. */
        fsc_cache *fresh = st_open(t->dir, 64 << 20, 0, -1);
        assert_non_null(fresh);
        if (steps[i].op == DELETE) {
            assert_int_equal(st_check(c, "mover", NULL), 0);
            assert_int_equal(st_check(fresh, "mover", NULL), 0);
        } else {
            expect_stored(c, "mover", steps[i].len, what);
            expect_stored(fresh, "mover", steps[i].len, what);
        }
        fsc_close(fresh);
        /* The neighbours are all packed: every file of its own is the mover's. */
        struct census n = take_census(t->dir);
        if (n.entries != steps[i].entries || n.payloads != steps[i].payloads)
            fail_msg("after %s: %d entry files and %d payloads, want %d and %d", what, n.entries, n.payloads,
                     steps[i].entries, steps[i].payloads);
        assert_int_equal(n.other, 0);
        assert_int_equal(n.most_packs_in_a_shard, 1);
        check_neighbours(c, what);
        assert_int_equal(st_stats(c).entries, NEIGHBOURS + (steps[i].op != DELETE));
        st_expect_clean(c, t->dir, what);
    }
    fsc_close(c);
}

/* ------------------------------------------------------------------ */
/* 3. Handles with pack_limit 0 and the default share one cache        */
/* ------------------------------------------------------------------ */

#define SHARED_KEYS 60

static size_t shared_len(int i, int round) { return 100 + 50 * (size_t)i + 7 * (size_t)round; }

/* fsc_verify through one handle while another handle of this process still
 * holds back the release of its reservations reports a problem (see
 * test_verify_with_two_handles_in_one_process): fsc_stats makes each handle
 * write what it holds back first. */
static void both_clean(fsc_cache *h[2], const char *dir, const char *what) {
    st_stats(h[0]);
    st_stats(h[1]);
    st_expect_clean(h[0], dir, what);
    st_expect_clean(h[1], dir, what);
}

static void test_handles_of_both_pack_limits_share(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *h[2];
    h[0] = st_open_with(t->dir, 64 << 20, 0, -1, 0); /* every value in a file of its own */
    h[1] = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(h[0]);
    assert_non_null(h[1]);
    char key[32];
    /* Round 0: even keys through the unpacked handle, odd through the packing one. */
    for (int i = 0; i < SHARED_KEYS; i++) {
        snprintf(key, sizeof key, "x-%02d", i);
        assert_true(shared_len(i, 1) <= FSC_PACK_LIMIT_DEFAULT);
        assert_fsc_ok(st_set(h[i % 2], key, shared_len(i, 0)));
    }
    struct census n = take_census(t->dir);
    assert_int_equal(n.entries, SHARED_KEYS / 2);
    assert_true(n.packs > 0);
    for (int i = 0; i < SHARED_KEYS; i++) {
        snprintf(key, sizeof key, "x-%02d", i);
        expect_stored(h[0], key, shared_len(i, 0), "round 0, read by the unpacked handle");
        expect_stored(h[1], key, shared_len(i, 0), "round 0, read by the packing handle");
    }
    both_clean(h, t->dir, "round 0");
    /* Round 1: each key is replaced through the other handle, so packed
     * values become files and files become packed records. */
    for (int i = 0; i < SHARED_KEYS; i++) {
        snprintf(key, sizeof key, "x-%02d", i);
        assert_fsc_ok(st_set(h[(i + 1) % 2], key, shared_len(i, 1)));
    }
    n = take_census(t->dir);
    assert_int_equal(n.entries, SHARED_KEYS / 2);
    assert_int_equal(n.payloads, 0);
    assert_int_equal(n.most_packs_in_a_shard, 1);
    for (int i = 0; i < SHARED_KEYS; i++) {
        snprintf(key, sizeof key, "x-%02d", i);
        expect_stored(h[0], key, shared_len(i, 1), "round 1, read by the unpacked handle");
        expect_stored(h[1], key, shared_len(i, 1), "round 1, read by the packing handle");
    }
    assert_int_equal(st_stats(h[1]).entries, SHARED_KEYS);
    both_clean(h, t->dir, "round 1");
    /* Deletes through either handle remove either kind. */
    for (int i = 0; i < SHARED_KEYS; i += 3) {
        snprintf(key, sizeof key, "x-%02d", i);
        assert_fsc_ok(fsc_delete(h[(i / 3) % 2], key, strlen(key)));
        assert_int_equal(st_check(h[0], key, NULL), 0);
        assert_int_equal(st_check(h[1], key, NULL), 0);
    }
    assert_int_equal(st_stats(h[0]).entries, SHARED_KEYS - SHARED_KEYS / 3);
    both_clean(h, t->dir, "after the deletes");
    fsc_close(h[0]);
    fsc_close(h[1]);
}

/* ------------------------------------------------------------------ */
/* 4. Compaction reclaims the space of replaced records                */
/* ------------------------------------------------------------------ */

#define COMPACT_KEYS 64
#define COMPACT_ROUNDS 50
#define COMPACT_LEN 1000

static void test_compaction_reclaims_space(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 0, 0, -1); /* unbounded: no eviction */
    assert_non_null(c);
    char key[32];
    uint64_t live = 0;
    for (int round = 0; round < COMPACT_ROUNDS; round++)
        for (int i = 0; i < COMPACT_KEYS; i++) {
            snprintf(key, sizeof key, "c-%02d", i);
            assert_fsc_ok(st_set(c, key, COMPACT_LEN));
            if (round == 0)
                live += RECORD_HEADER + strlen(key) + COMPACT_LEN;
        }
    struct census n = take_census(t->dir);
    /* After every set a pack is less than an eighth dead (or was just
     * compacted): per pack, dead * 8 < size and size = 64 + live + dead, so
     * 7 * size < 8 * (64 + live); summed over the packs: */
    const uint64_t floor = live + PACK_HEADER * (uint64_t)n.packs;
    const uint64_t bound = 8 * floor / 7;
    const uint64_t uncompacted = PACK_HEADER * (uint64_t)n.packs + live * COMPACT_ROUNDS;
    fprintf(stderr,
            "%d keys x %d rounds: %d pack files of %llu bytes; live records %llu, bound %llu, "
            "without compaction %llu\n",
            COMPACT_KEYS, COMPACT_ROUNDS, n.packs, (unsigned long long)n.pack_bytes, (unsigned long long)live,
            (unsigned long long)bound, (unsigned long long)uncompacted);
    assert_int_equal(n.entries, 0);
    assert_int_equal(n.most_packs_in_a_shard, 1); /* replaced packs were removed */
    assert_int_equal(n.other, 0);
    assert_true(n.pack_bytes >= floor);
    if (7 * n.pack_bytes > 8 * floor)
        fail_msg("the packs hold %llu bytes, over 8/7 of their %llu bytes of headers and live records",
                 (unsigned long long)n.pack_bytes, (unsigned long long)floor);
    for (int i = 0; i < COMPACT_KEYS; i++) {
        snprintf(key, sizeof key, "c-%02d", i);
        expect_stored(c, key, COMPACT_LEN, "after the compactions");
    }
    fsc_statistics s = st_stats(c);
    assert_int_equal(s.entries, COMPACT_KEYS);
    assert_int_equal(s.evictions, 0);
    st_expect_clean(c, t->dir, "after the compactions");
    fsc_close(c);
}

/* ------------------------------------------------------------------ */
/* 5. A packed value through fsc_entry_fd, _read and _data             */
/* ------------------------------------------------------------------ */

/* e holds the self-checking value of key, len bytes, by all three ways in. */
static void expect_entry_reads(fsc_entry *e, const char *key, size_t len) {
    unsigned char *want = malloc(len + 1), *got = malloc(len + 64);
    tb_fill(want, len, st_value_seed(key, len));
    assert_int_equal(fsc_entry_size(e), len);
    assert_int_equal(fsc_entry_offset(e), 0);
    /* fsc_entry_read, in pieces, then 0 at the end. */
    size_t have = 0, n = 0;
    do {
        assert_fsc_ok(fsc_entry_read(e, got + have, 700, &n));
        have += n;
        assert_true(have <= len);
    } while (n > 0);
    assert_int_equal(have, len);
    assert_memory_equal(got, want, len);
    /* The descriptor: at position 0, a file of exactly the value. */
    int fd = fsc_entry_fd(e);
    assert_true(fd >= 0);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, (off_t)len);
    have = 0;
    ssize_t r;
    while ((r = read(fd, got + have, len + 64 - have)) > 0)
        have += (size_t)r;
    assert_int_equal(r, 0);
    assert_int_equal(have, len);
    assert_memory_equal(got, want, len);
    /* fsc_entry_data */
    const void *data = fsc_entry_data(e);
    assert_non_null(data);
    assert_memory_equal(data, want, len);
    free(want);
    free(got);
}

static void test_entry_api_on_packed_value(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(c);
    static const size_t lens[] = {0, 1, 3000, FSC_PACK_LIMIT_DEFAULT};
    char key[32];
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        snprintf(key, sizeof key, "fd-%zu", lens[i]);
        assert_fsc_ok(st_set(c, key, lens[i]));
    }
    assert_int_equal(take_census(t->dir).entries, 0);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        snprintf(key, sizeof key, "fd-%zu", lens[i]);
        fsc_entry *e = NULL;
        assert_fsc_ok(fsc_get(c, key, strlen(key), &e));
        expect_entry_reads(e, key, lens[i]);
        fsc_entry_free(e);
    }
    /* An entry stays readable after its value is replaced and its pack
     * compacted many times over (and the old pack file removed). */
    fsc_entry *e = NULL;
    assert_fsc_ok(fsc_get(c, "fd-3000", 7, &e));
    for (int round = 0; round < 20; round++)
        assert_fsc_ok(st_set(c, "fd-3000", 2000 + (size_t)round));
    expect_entry_reads(e, "fd-3000", 3000);
    fsc_entry_free(e);
    expect_stored(c, "fd-3000", 2019, "after the replacements");
    st_expect_clean(c, t->dir, "after the entry reads");
    fsc_close(c);
}

/* ------------------------------------------------------------------ */
/* 6. Readers in another process while the packs are compacted         */
/* ------------------------------------------------------------------ */

#define READER_KEYS 32
#define READER_ROUNDS 300
#define READER_SYNC_EVERY 50
#define READER_PER_SHARD 8

/* Four lengths, shifting with the round: records of equal length abound. */
static size_t reader_len(int k, uint64_t round) { return 256 + 64 * (size_t)(((uint64_t)k + round) % 4); }

static char reader_keys[READER_KEYS][32];

static void shard_of_record(const char *path, char out[3]) {
    const char *slash = strrchr(path, '/');
    snprintf(out, 3, "%.2s", slash - 2);
}

/* Chooses keys that crowd few shards (up to READER_PER_SHARD each), so that
 * their packs hold several records and a compaction moves them. The shard is
 * a hash of the key: it is found by storing candidates and looking at which
 * pack each landed in. Leaves the cache empty. */
static void choose_crowded_keys(fsc_cache *c, const char *dir) {
    char key[32];
    for (int i = 0; i < 1024; i++) {
        snprintf(key, sizeof key, "r-%04d", i);
        assert_fsc_ok(st_set(c, key, 10));
    }
    struct record_list recs = {0};
    each_record(dir, collect_live, &recs);
    assert_int_equal(recs.n, 1024);
    int count[256] = {0};
    for (int i = 0; i < recs.n; i++) {
        char shard[3];
        shard_of_record(recs.v[i].path, shard);
        count[strtol(shard, NULL, 16)]++;
    }
    int chosen = 0, shards = 0;
    while (chosen < READER_KEYS) {
        int best = 0;
        for (int s = 1; s < 256; s++)
            if (count[s] > count[best])
                best = s;
        assert_true(count[best] >= 2);
        int taken = 0;
        for (int i = 0; i < recs.n && taken < READER_PER_SHARD && chosen < READER_KEYS; i++) {
            char shard[3];
            shard_of_record(recs.v[i].path, shard);
            if (strtol(shard, NULL, 16) == best) {
                /* The keys are short: a cut one would name another value. */
                if (snprintf(reader_keys[chosen++], sizeof reader_keys[0], "%s", recs.v[i].key) >=
                    (int)sizeof reader_keys[0])
                    fail_msg("key '%s' is too long", recs.v[i].key);
                taken++;
            }
        }
        count[best] = 0;
        shards++;
    }
    fprintf(stderr, "%d keys in %d shards\n", READER_KEYS, shards);
    free(recs.v);
    assert_fsc_ok(fsc_clear(c));
}

struct reader_result {
    uint64_t hits, wrong, misses, errors, passes, rounds_seen;
};

static void reader_child(const char *dir, int stop_fd, int progress_fd, int result_fd) {
    fsc_cache *c = st_open(dir, 64 << 20, 0, -1);
    child_check(c != NULL, 2);
    child_check(write(progress_fd, "r", 1) == 1, 3);
    child_check(fcntl(progress_fd, F_SETFL, O_NONBLOCK) == 0, 4);
    struct reader_result res;
    memset(&res, 0, sizeof res);
    static unsigned char seen[READER_ROUNDS + 1];
    for (;;) {
        for (int k = 0; k < READER_KEYS; k++) {
            const char *key = reader_keys[k];
            fsc_entry *e = NULL;
            int rc = fsc_get(c, key, strlen(key), &e);
            if (rc == FSC_MISS) {
                res.misses++;
                continue;
            }
            if (rc != FSC_OK) {
                fprintf(stderr, "reader: get '%s': %s (%s)\n", key, fsc_strerror(rc), fsc_errmsg());
                res.errors++;
                continue;
            }
            const void *data = fsc_entry_data(e);
            uint64_t round = 0;
            if (data && rv_good(data, (size_t)fsc_entry_size(e), k, reader_len, &round) && round <= READER_ROUNDS) {
                res.hits++;
                if (!seen[round]) {
                    seen[round] = 1;
                    res.rounds_seen++;
                }
            } else {
                fprintf(stderr, "reader: '%s' (%llu bytes) is not a value ever stored\n", key,
                        (unsigned long long)fsc_entry_size(e));
                res.wrong++;
            }
            fsc_entry_free(e);
        }
        res.passes++;
        (void)!write(progress_fd, "p", 1); /* a full pipe only drops the note */
        struct pollfd p = {stop_fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0 && p.revents)
            break;
    }
    fsc_close(c);
    child_check(tb_write_full(result_fd, &res, sizeof res) == 0, 5);
    _exit(0);
}

/* Waits for the reader to finish a pass that ends after this call. */
static void wait_for_a_pass(int progress_fd) {
    char buf[256];
    while (read(progress_fd, buf, sizeof buf) > 0) {
    }
    struct pollfd p = {progress_fd, POLLIN, 0};
    for (;;) {
        int n = poll(&p, 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        assert_int_equal(n, 1);
        ssize_t r = read(progress_fd, buf, 1);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r != 1)
            fail_msg("the reader process stopped early");
        return;
    }
}

static void test_readers_in_another_process_during_compactions(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(c);
    choose_crowded_keys(c, t->dir);
    for (int k = 0; k < READER_KEYS; k++)
        assert_fsc_ok(rv_set(c, reader_keys[k], k, 0, reader_len));
    int stop[2], progress[2], result[2];
    assert_int_equal(pipe(stop), 0);
    assert_int_equal(pipe(progress), 0);
    assert_int_equal(pipe(result), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(stop[1]);
        close(progress[0]);
        close(result[0]);
        reader_child(t->dir, stop[0], progress[1], result[1]);
    }
    close(stop[0]);
    close(progress[1]);
    close(result[1]);
    char b;
    assert_int_equal(tb_read_full(progress[0], &b, 1), 1); /* the reader has its handle */
    assert_int_equal(fcntl(progress[0], F_SETFL, O_NONBLOCK), 0);
    for (uint64_t round = 1; round <= READER_ROUNDS; round++) {
        for (int k = 0; k < READER_KEYS; k++)
            assert_fsc_ok(rv_set(c, reader_keys[k], k, round, reader_len));
        if (round % READER_SYNC_EVERY == 0)
            wait_for_a_pass(progress[0]);
    }
    close(stop[1]); /* stop */
    struct reader_result res;
    assert_int_equal(tb_read_full(result[0], &res, sizeof res), 1);
    assert_int_equal(tb_wait(pid), 0);
    close(result[0]);
    close(progress[0]);
    fprintf(stderr,
            "reader: %llu passes, %llu verified hits of %llu rounds, %llu wrong, %llu misses, %llu errors\n",
            (unsigned long long)res.passes, (unsigned long long)res.hits, (unsigned long long)res.rounds_seen,
            (unsigned long long)res.wrong, (unsigned long long)res.misses, (unsigned long long)res.errors);
    if (res.wrong != 0)
        fail_msg("a reader got %llu values that were never stored", (unsigned long long)res.wrong);
    if (res.errors != 0)
        fail_msg("a reader's gets failed %llu times", (unsigned long long)res.errors);
    assert_true(res.hits > 0);
    /* The reads overlapped the writes: values of several rounds were seen. */
    assert_true(res.rounds_seen >= 2);
    /* The keys are always present: a miss would be a stale descriptor
     * taken at its word (test_stale_pack_descriptors). */
    if (res.misses != 0)
        fail_msg("a reader missed always-present keys %llu times", (unsigned long long)res.misses);
    for (int k = 0; k < READER_KEYS; k++) {
        const char *key = reader_keys[k];
        fsc_entry *e = NULL;
        assert_fsc_ok(fsc_get(c, key, strlen(key), &e));
        uint64_t round = 0;
        assert_true(rv_good(fsc_entry_data(e), (size_t)fsc_entry_size(e), k, reader_len, &round));
        assert_int_equal(round, READER_ROUNDS);
        fsc_entry_free(e);
    }
    st_expect_clean(c, t->dir, "after the reader");
    fsc_close(c);
}

/* ------------------------------------------------------------------ */
/* 7. A damaged record is reported, never served                       */
/* ------------------------------------------------------------------ */

#define DAMAGE_KEYS 600

static size_t damage_len(int i) { return 300 + (size_t)(i * 53) % 500; }

static void test_damaged_record_value(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(c);
    char key[32];
    set_keys(c, "d-%03d", DAMAGE_KEYS, damage_len);
    struct record_list recs = {0};
    each_record(t->dir, collect_live, &recs);
    assert_int_equal(recs.n, DAMAGE_KEYS);
    /* A key whose pack holds at least two other records. */
    int target = -1;
    const struct record *tr = NULL;
    for (int i = 0; i < DAMAGE_KEYS && target < 0; i++) {
        snprintf(key, sizeof key, "d-%03d", i);
        const struct record *r = live_record_of(&recs, key);
        assert_non_null(r);
        assert_int_equal(r->value_size, damage_len(i));
        if (live_records_in(&recs, r->path) >= 3) {
            target = i;
            tr = r;
        }
    }
    assert_true(target >= 0);
    char tkey[32];
    snprintf(tkey, sizeof tkey, "d-%03d", target);
    fprintf(stderr, "damaging '%s' at %llu of %s (%d records)\n", tkey, (unsigned long long)tr->offset, tr->path,
            live_records_in(&recs, tr->path));
    flip_byte(tr->path, tr->offset + RECORD_HEADER + tr->key_len + tr->value_size / 2);

    fsc_entry *e = NULL;
    int rc = fsc_get(c, tkey, strlen(tkey), &e);
    if (rc == FSC_OK) {
        fsc_entry_free(e);
        fail_msg("the get of a damaged record gave FSC_OK, want FSC_ECORRUPT or FSC_MISS");
    }
    fprintf(stderr, "first get of the damaged record: %s (%s)\n", fsc_strerror(rc), fsc_errmsg());
    if (rc != FSC_ECORRUPT && rc != FSC_MISS)
        fail_msg("the get of a damaged record gave %s, want FSC_ECORRUPT or FSC_MISS", fsc_strerror(rc));
    assert_fsc_status(fsc_get(c, tkey, strlen(tkey), &e), FSC_MISS);
    /* Its pack's other records, and every other key, are intact. */
    for (int i = 0; i < recs.n; i++)
        if (strcmp(recs.v[i].path, tr->path) == 0 && strcmp(recs.v[i].key, tkey) != 0)
            expect_stored(c, recs.v[i].key, (size_t)recs.v[i].value_size, "a neighbour of the damaged record");
    for (int i = 0; i < DAMAGE_KEYS; i++) {
        if (i == target)
            continue;
        snprintf(key, sizeof key, "d-%03d", i);
        expect_stored(c, key, damage_len(i), "after the damage");
    }
    assert_int_equal(st_stats(c).entries, DAMAGE_KEYS - 1);
    st_expect_clean(c, t->dir, "after the damaged record was removed");
    /* The key can be stored again. */
    assert_fsc_ok(st_set(c, tkey, 777));
    expect_stored(c, tkey, 777, "stored again");
    fsc_cache *fresh = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(fresh);
    expect_stored(fresh, tkey, 777, "stored again, read by a fresh handle");
    fsc_close(fresh);
    assert_int_equal(st_stats(c).entries, DAMAGE_KEYS);
    st_expect_clean(c, t->dir, "after the key was stored again");
    free(recs.v);
    fsc_close(c);
}

/* ------------------------------------------------------------------ */
/* 8. fsc_verify repairs garbage after a pack and a pack deleted       */
/* ------------------------------------------------------------------ */

#define REPAIR_KEYS 300

static size_t repair_len(int i) { return 200 + (size_t)(i * 7) % 1500; }

/* verify(0) finds problems and changes nothing; verify(1) repairs; then
 * verify(0) is clean and the totals equal the disk. */
static void repair_cycle(fsc_cache *c, const char *dir, const char *what) {
    int rc;
    uint64_t print = st_fingerprint(dir);
    fsc_verify_report v0 = st_verify(c, 0, &rc);
    assert_fsc_ok(rc);
    fprintf(stderr, "%s: verify(0) checked %llu, problems %llu\n", what, (unsigned long long)v0.checked,
            (unsigned long long)v0.problems);
    if (v0.problems == 0)
        fail_msg("%s: verify(0) found no problem", what);
    assert_int_equal(v0.repaired, 0);
    if (st_fingerprint(dir) != print)
        fail_msg("%s: verify(0) changed files of the cache", what);
    fsc_verify_report v1 = st_verify(c, 1, &rc);
    assert_fsc_ok(rc);
    fprintf(stderr, "%s: verify(1) problems %llu, repaired %llu\n", what, (unsigned long long)v1.problems,
            (unsigned long long)v1.repaired);
    assert_true(v1.repaired > 0);
    st_expect_clean(c, dir, what);
}

/* The pack with the most live records, other than `not`. */
static const struct record *busiest_pack(const struct record_list *recs, const char *not) {
    const struct record *best = NULL;
    int most = 0;
    for (int i = 0; i < recs->n; i++) {
        if (not && strcmp(recs->v[i].path, not) == 0)
            continue;
        int n = live_records_in(recs, recs->v[i].path);
        if (n > most) {
            most = n;
            best = &recs->v[i];
        }
    }
    return best;
}

static int key_index(const char *key) { return atoi(strchr(key, '-') + 1); }

/* After the loss of packs (lost_b may be NULL): each of their keys misses
 * (FSC_ECORRUPT at most once first), never gives bytes; every other key is
 * whole. */
static void expect_packs_lost(fsc_cache *c, const struct record_list *recs, const char *lost_a, const char *lost_b,
                              const char *what) {
    for (int i = 0; i < recs->n; i++) {
        const char *key = recs->v[i].key;
        if (strcmp(recs->v[i].path, lost_a) != 0 && (!lost_b || strcmp(recs->v[i].path, lost_b) != 0)) {
            expect_stored(c, key, repair_len(key_index(key)), what);
            continue;
        }
        fsc_entry *e = NULL;
        int rc = fsc_get(c, key, strlen(key), &e);
        if (rc == FSC_OK) {
            fsc_entry_free(e);
            fail_msg("%s: '%s', whose pack is gone, gave FSC_OK", what, key);
        }
        if (rc == FSC_ECORRUPT)
            rc = fsc_get(c, key, strlen(key), &e);
        if (rc != FSC_MISS)
            fail_msg("%s: '%s', whose pack is gone, gave %s, want FSC_MISS", what, key, fsc_strerror(rc));
    }
}

static void test_verify_repairs_packs(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(c);
    set_keys(c, "v-%03d", REPAIR_KEYS, repair_len);
    struct record_list recs = {0};
    each_record(t->dir, collect_live, &recs);
    assert_int_equal(recs.n, REPAIR_KEYS);

    /* Garbage after a pack's last record. */
    const struct record *a = busiest_pack(&recs, NULL);
    assert_non_null(a);
    const uint64_t size_a = file_size(a->path);
    unsigned char junk[300];
    tb_fill(junk, sizeof junk, 42);
    append_bytes(a->path, junk, sizeof junk);
    repair_cycle(c, t->dir, "garbage after a pack's end");
    assert_int_equal(file_size(a->path), size_a);
    expect_keys(c, "v-%03d", REPAIR_KEYS, repair_len, "after the garbage was cut");
    assert_int_equal(st_stats(c).entries, REPAIR_KEYS);

    /* A torn record (a set killed mid-append): a whole header and key,
     * part of the value. */
    size_t len = 0;
    unsigned char *whole = tb_read_file(a->path, &len);
    assert_non_null(whole);
    append_bytes(a->path, whole + a->offset, RECORD_HEADER + a->key_len + a->value_size / 2);
    free(whole);
    repair_cycle(c, t->dir, "a torn record after a pack's end");
    assert_int_equal(file_size(a->path), size_a);
    expect_keys(c, "v-%03d", REPAIR_KEYS, repair_len, "after the torn record was cut");

    /* A pack deleted, repaired before any get. */
    const struct record *b = busiest_pack(&recs, a->path);
    assert_non_null(b);
    int lost_b = live_records_in(&recs, b->path);
    assert_int_equal(unlink(b->path), 0);
    repair_cycle(c, t->dir, "a pack deleted");
    expect_packs_lost(c, &recs, b->path, NULL, "a pack deleted, repaired, same handle");
    fsc_cache *fresh = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(fresh);
    expect_packs_lost(fresh, &recs, b->path, NULL, "a pack deleted, repaired, fresh handle");
    fsc_close(fresh);
    assert_int_equal(st_stats(c).entries, REPAIR_KEYS - lost_b);
    st_expect_clean(c, t->dir, "after the gets of a deleted pack's keys");

    /* Another pack deleted, read through a fresh handle before any repair. */
    const struct record *d = NULL;
    for (int i = 0; i < recs.n && !d; i++)
        if (strcmp(recs.v[i].path, a->path) != 0 && strcmp(recs.v[i].path, b->path) != 0 &&
            live_records_in(&recs, recs.v[i].path) >= 2)
            d = &recs.v[i];
    assert_non_null(d);
    int lost_d = live_records_in(&recs, d->path);
    assert_int_equal(unlink(d->path), 0);
    fresh = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(fresh);
    expect_packs_lost(fresh, &recs, b->path, d->path, "a pack deleted, not repaired, fresh handle");
    fsc_close(fresh);
    int rc;
    st_verify(c, 1, &rc);
    assert_fsc_ok(rc);
    st_expect_clean(c, t->dir, "a pack deleted, read, then repaired");
    expect_packs_lost(c, &recs, b->path, d->path, "after both deletions");
    assert_int_equal(st_stats(c).entries, REPAIR_KEYS - lost_b - lost_d);
    free(recs.v);
    fsc_close(c);
}

/* ------------------------------------------------------------------ */
/* 9. SIGKILL among packed sets, evictions and compactions             */
/* ------------------------------------------------------------------ */

#define KILL_KEYS 100
#define KILL_CACHE (128u << 10)
#define KILL_ROUNDS 20

static size_t kill_len(int k, uint64_t round) { return 200 + (size_t)(tb_mix(((uint64_t)k << 32) + round) % 2801); }

static void setter_child(const char *dir, uint64_t first_round, int wfd) {
    fsc_cache *c = st_open(dir, KILL_CACHE, 0, -1);
    child_check(c != NULL, 2);
    char key[32];
    for (uint64_t round = first_round;; round++)
        for (int k = 0; k < KILL_KEYS; k++) {
            snprintf(key, sizeof key, "k-%02d", k);
            child_check(rv_set(c, key, k, round, kill_len) == FSC_OK, 3);
            child_check(write(wfd, "s", 1) == 1, 4);
        }
}

static void test_sigkill_during_packed_sets(void **state) {
    struct st_ctx *t = *state;
    char key[32];
    uint64_t evictions = 0;
    for (int rep = 0; rep < KILL_ROUNDS; rep++) {
        const int sets = 7 + (rep * 389) % 500; /* where the kill lands */
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            setter_child(t->dir, (uint64_t)rep * 100000, fds[1]);
        }
        close(fds[1]);
        char buf[4096];
        for (int got = 0; got < sets;) {
            size_t want = (size_t)(sets - got) < sizeof buf ? (size_t)(sets - got) : sizeof buf;
            ssize_t r = read(fds[0], buf, want);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                fail_msg("the setter stopped after %d sets", got);
            got += (int)r;
        }
        kill(pid, SIGKILL);
        assert_int_equal(tb_wait(pid), 128 + SIGKILL);
        close(fds[0]);

        /* Alone with the cache: the open recovers what the kill left. */
        fsc_cache *c = st_open(t->dir, KILL_CACHE, 0, -1);
        assert_non_null(c);
        int rc;
        fsc_verify_report v0 = st_verify(c, 0, &rc);
        assert_fsc_ok(rc);
        fsc_verify_report v1 = st_verify(c, 1, &rc);
        assert_fsc_ok(rc);
        fsc_verify_report v2 = st_verify(c, 0, &rc);
        assert_fsc_ok(rc);
        uint64_t disk = st_disk_bytes(t->dir);
        fsc_statistics s = st_stats(c);
        int present = 0;
        for (int k = 0; k < KILL_KEYS; k++) {
            snprintf(key, sizeof key, "k-%02d", k);
            fsc_entry *e = NULL;
            rc = fsc_get(c, key, strlen(key), &e);
            if (rc == FSC_MISS)
                continue;
            if (rc != FSC_OK)
                fail_msg("kill %d: get '%s': %s (%s)", rep, key, fsc_strerror(rc), fsc_errmsg());
            int good = rv_good(fsc_entry_data(e), (size_t)fsc_entry_size(e), k, kill_len, NULL);
            fsc_entry_free(e);
            if (!good)
                fail_msg("kill %d: '%s' holds a value that was never stored", rep, key);
            present++;
        }
        fprintf(stderr,
                "kill %2d after %4d sets: verify(0) %llu problems, verify(1) %llu/%llu repaired, then %llu; "
                "%d keys present, %llu bytes on disk\n",
                rep, sets, (unsigned long long)v0.problems, (unsigned long long)v1.repaired,
                (unsigned long long)v1.problems, (unsigned long long)v2.problems, present,
                (unsigned long long)disk);
        if (v2.problems != 0)
            fail_msg("kill %d: after verify(1), verify(0) still finds %llu problems", rep,
                     (unsigned long long)v2.problems);
        if (s.bytes != disk)
            fail_msg("kill %d: fsc_stats().bytes %llu, the disk holds %llu", rep, (unsigned long long)s.bytes,
                     (unsigned long long)disk);
        if (disk > KILL_CACHE)
            fail_msg("kill %d: %llu bytes on disk, over cache_size %u", rep, (unsigned long long)disk, KILL_CACHE);
        assert_int_equal(s.entries, (uint64_t)present);
        assert_true(present > 0);
        /* The killed set's temp files were swept by the open. */
        assert_int_equal(st_tmp_files(t->dir), 0);
        /* As for values in files (crash.c): the open alone already recovered. */
        if (v0.problems != 0)
            fail_msg("kill %d: right after the recovering open, verify(0) found %llu problems", rep,
                     (unsigned long long)v0.problems);
        evictions = s.evictions;
        fsc_close(c);
    }
    fprintf(stderr, "%llu evictions in all\n", (unsigned long long)evictions);
    assert_true(evictions > 0); /* the budget was at work */
}

/* ------------------------------------------------------------------ */
/* 10. Packed and file values under one budget                         */
/* ------------------------------------------------------------------ */

/* Least recently used values go first, exactly for caches of up to 1,024
 * values (FSC_BUDGET). About 16 values fit: 600 sets turn the cache over
 * some 35 times, and the key read after every set must outlive them all. */
#define BUDGET_CACHE (64u << 10)
#define BUDGET_SETS 600

static size_t budget_len(int i) { return i % 2 == 0 ? 200 + (size_t)(i * 37) % 1300 : 6000; }

static void test_budget_with_packed_and_file_values(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *c = st_open(t->dir, BUDGET_CACHE, 0, -1);
    assert_non_null(c);
    assert_fsc_ok(st_set(c, "hot", 1000));
    char key[32];
    uint64_t most = 0;
    for (int i = 0; i < BUDGET_SETS; i++) {
        snprintf(key, sizeof key, "m-%03d", i);
        assert_fsc_ok(st_set(c, key, budget_len(i)));
        uint64_t disk = st_disk_within(t->dir, BUDGET_CACHE, i, &most);
        fsc_statistics s = st_stats(c);
        if (s.bytes != disk)
            fail_msg("after set #%d fsc_stats().bytes is %llu, the disk holds %llu", i, (unsigned long long)s.bytes,
                     (unsigned long long)disk);
        uint64_t size = 0;
        int r = st_check(c, "hot", &size);
        if (r != 1 || size != 1000)
            fail_msg("the key read after every set is %s after set #%d", r == 0 ? "gone" : "wrong", i);
    }
    int old_left = 0, kept[2] = {0, 0};
    for (int i = 0; i < BUDGET_SETS; i++) {
        snprintf(key, sizeof key, "m-%03d", i);
        int r = st_check(c, key, NULL);
        assert_int_not_equal(r, -1);
        if (i < 2 * BUDGET_SETS / 3)
            old_left += r;
        kept[i % 2] += r;
    }
    struct census n = take_census(t->dir);
    fsc_statistics s = st_stats(c);
    fprintf(stderr,
            "kept %d packed and %d file values (%d of the oldest %d), %llu evictions, most on disk %llu\n",
            kept[0], kept[1], old_left, 2 * BUDGET_SETS / 3, (unsigned long long)s.evictions,
            (unsigned long long)most);
    assert_true(old_left <= 2 * BUDGET_SETS / 3 / 10); /* most of the old, unread ones are gone */
    assert_true(kept[0] > 0 && kept[1] > 0);           /* both kinds are kept */
    assert_int_equal(n.entries, kept[1]);              /* the file values, and only they, have files */
    assert_int_equal(s.entries, (uint64_t)(kept[0] + kept[1] + 1));
    /* The newest of each kind survive. */
    snprintf(key, sizeof key, "m-%03d", BUDGET_SETS - 1);
    expect_stored(c, key, budget_len(BUDGET_SETS - 1), "the newest file value");
    snprintf(key, sizeof key, "m-%03d", BUDGET_SETS - 2);
    expect_stored(c, key, budget_len(BUDGET_SETS - 2), "the newest packed value");
    st_expect_clean(c, t->dir, "after the budget test");
    fsc_close(c);
}

/* ------------------------------------------------------------------ */
/* Stale descriptors, other handles, damage inside a pack              */
/* ------------------------------------------------------------------ */

/* A handle keeps each shard's pack descriptor open. When another handle (of
 * this or another process) compacts the pack, the kept descriptor still
 * reads the old, unlinked file, where the slot's new offset may hold a live
 * record of another key of the same length: that must send the handle to
 * the current pack, not be taken for a digest collision (a miss), and
 * fsc_foreach must not skip the value either. */
#define STALE_KEYS 256

static void test_stale_pack_descriptors(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *reader = st_open(t->dir, 64 << 20, 0, -1);
    fsc_cache *writer = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(reader);
    assert_non_null(writer);
    char key[32];
    for (int i = 0; i < STALE_KEYS; i++) {
        snprintf(key, sizeof key, "s-%03d", i);
        assert_fsc_ok(st_set(writer, key, 1000));
    }
    for (int i = 0; i < STALE_KEYS; i++) {
        snprintf(key, sizeof key, "s-%03d", i);
        expect_stored(reader, key, 1000, "before the compactions");
    }
    /* Every other key replaced (same length): shards holding two or more
     * records are compacted, moving their records. */
    for (int i = 0; i < STALE_KEYS; i += 2) {
        snprintf(key, sizeof key, "s-%03d", i);
        assert_fsc_ok(st_set(writer, key, 1000));
    }
    uint64_t visited = st_foreach_count(reader);
    int misses = 0, wrong = 0;
    for (int i = 0; i < STALE_KEYS; i++) {
        snprintf(key, sizeof key, "s-%03d", i);
        int r = st_check(reader, key, NULL);
        misses += r == 0;
        wrong += r == -1;
    }
    fprintf(stderr, "after another handle's compactions: %d of %d present keys missed, %d wrong; "
                    "fsc_foreach visited %llu\n",
            misses, STALE_KEYS, wrong, (unsigned long long)visited);
    assert_int_equal(wrong, 0);
    if (misses != 0)
        fail_msg("%d of %d keys, all present, were misses through a handle whose pack descriptors another "
                 "handle's compactions made stale",
                 misses, STALE_KEYS);
    assert_int_equal(visited, STALE_KEYS);
    fsc_close(writer);
    fsc_close(reader);
}

/* fsc_verify's check that no reservation is left when no other process
 * has the cache open must not count the reservations whose release another
 * handle of this very process still holds back (settle gives them back in
 * batches): the cache is consistent. */
static void test_verify_with_two_handles_in_one_process(void **state) {
    struct st_ctx *t = *state;
    fsc_cache *a = st_open(t->dir, 64 << 20, 0, -1);
    fsc_cache *b = st_open(t->dir, 64 << 20, 0, -1);
    assert_non_null(a);
    assert_non_null(b);
    assert_fsc_ok(st_set(b, "one", 150));
    int rc;
    fsc_verify_report v = st_verify(a, 0, &rc);
    assert_fsc_ok(rc);
    fprintf(stderr, "verify(0) through the other handle: %llu problems\n", (unsigned long long)v.problems);
    if (v.problems != 0)
        fail_msg("a set through another handle of this process left fsc_verify(0) finding %llu problems",
                 (unsigned long long)v.problems);
    fsc_close(b);
    fsc_close(a);
}

/* Shards with many records, and the pack holding the most. */
#define DENSE_KEYS 3000
#define DENSE_LEN 100

static const struct record *dense_setup(fsc_cache *c, const char *dir, struct record_list *recs) {
    char key[32];
    for (int i = 0; i < DENSE_KEYS; i++) {
        snprintf(key, sizeof key, "w-%04d", i);
        assert_fsc_ok(st_set(c, key, DENSE_LEN));
    }
    each_record(dir, collect_live, recs);
    assert_int_equal(recs->n, DENSE_KEYS);
    const struct record *busiest = busiest_pack(recs, NULL);
    assert_non_null(busiest);
    const int most = live_records_in(recs, busiest->path);
    const struct record *first = busiest;
    for (int i = 0; i < recs->n; i++)
        if (strcmp(recs->v[i].path, busiest->path) == 0 && recs->v[i].offset < first->offset)
            first = &recs->v[i];
    /* Its first record: every other record of the pack comes after it.
     * Killing one of this many does not make the pack an eighth dead. */
    assert_true(most >= 10);
    return first;
}

/* A cache of dense packs (opened in dir) and the first record of its
 * busiest pack, whose damage the tests below make. */
struct dense {
    fsc_cache *c;
    struct record_list recs;
    const struct record *first;
    int in_pack; /* live records in first's pack */
};

static void dense_open(const char *dir, struct dense *d) {
    memset(d, 0, sizeof *d);
    d->c = st_open(dir, 64 << 20, 0, -1);
    assert_non_null(d->c);
    d->first = dense_setup(d->c, dir, &d->recs);
    d->in_pack = live_records_in(&d->recs, d->first->path);
}

static int dense_lost(fsc_cache *c, const struct record_list *recs, const struct record *damaged) {
    int lost = 0;
    for (int i = 0; i < recs->n; i++) {
        if (strcmp(recs->v[i].key, damaged->key) == 0)
            continue;
        int r = st_check(c, recs->v[i].key, NULL);
        assert_int_not_equal(r, -1);
        lost += r == 0;
    }
    return lost;
}

/* A record whose header is damaged is removed by the get that finds it.
 * A pack scan (fsc_verify, and the rebuild of a shard's table) cannot step
 * over a header that fails its checksum, so the removal must leave no such
 * header behind: afterwards the cache verifies clean and no intact record
 * after it is lost. */
static void test_damaged_header_inside_a_pack(void **state) {
    struct st_ctx *t = *state;
    struct dense d;
    dense_open(t->dir, &d);
    flip_byte(d.first->path, d.first->offset + 33); /* its creation time */
    fsc_entry *e = NULL;
    int rc = fsc_get(d.c, d.first->key, d.first->key_len, &e);
    if (rc == FSC_OK)
        fsc_entry_free(e);
    assert_true(rc == FSC_ECORRUPT || rc == FSC_MISS);
    assert_fsc_status(fsc_get(d.c, d.first->key, d.first->key_len, &e), FSC_MISS);
    int lost_before = dense_lost(d.c, &d.recs, d.first);
    int rc0;
    fsc_verify_report v0 = st_verify(d.c, 0, &rc0);
    assert_fsc_ok(rc0);
    fsc_verify_report v1 = st_verify(d.c, 1, &rc0);
    assert_fsc_ok(rc0);
    int lost_after = dense_lost(d.c, &d.recs, d.first);
    fprintf(stderr,
            "header of the first of %d records damaged: get %s; %d others lost before verify; verify(0) "
            "then found %llu problems; verify(1) repaired %llu and %d others were lost\n",
            d.in_pack, fsc_strerror(rc), lost_before, (unsigned long long)v0.problems,
            (unsigned long long)v1.repaired, lost_after);
    assert_int_equal(lost_before, 0);
    if (lost_after != 0)
        fail_msg("fsc_verify(1) dropped %d intact records that followed a record removed as damaged", lost_after);
    if (v0.problems != 0)
        fail_msg("after the get removed the damaged record, fsc_verify(0) found %llu problems",
                 (unsigned long long)v0.problems);
    st_expect_clean(d.c, t->dir, "after the repair");
    free(d.recs.v);
    fsc_close(d.c);
}

/* A live record whose value fails its checksum has a known length: a scan
 * (fsc_verify(1) run before any get found the damage) steps over it and
 * keeps every intact record after it. */
static void test_verify_keeps_records_after_a_damaged_one(void **state) {
    struct st_ctx *t = *state;
    struct dense d;
    dense_open(t->dir, &d);
    flip_byte(d.first->path, d.first->offset + RECORD_HEADER + d.first->key_len + d.first->value_size / 2);
    int rc;
    fsc_verify_report v0 = st_verify(d.c, 0, &rc);
    assert_fsc_ok(rc);
    assert_true(v0.problems > 0);
    fsc_verify_report v1 = st_verify(d.c, 1, &rc);
    assert_fsc_ok(rc);
    st_expect_clean(d.c, t->dir, "after the repair");
    assert_int_equal(st_check(d.c, d.first->key, NULL), 0);
    int lost = dense_lost(d.c, &d.recs, d.first);
    fprintf(stderr, "value of the first of %d records damaged: verify(0) %llu problems, verify(1) repaired %llu; "
                    "%d intact records lost\n",
            d.in_pack, (unsigned long long)v0.problems, (unsigned long long)v1.repaired, lost);
    if (lost != 0)
        fail_msg("fsc_verify(1) dropped %d intact records that followed one damaged record", lost);
    free(d.recs.v);
    fsc_close(d.c);
}

/* durable = 1: packed values, values with files of their own and values
 * stored from files go through the synced paths (record, table, entry,
 * directory) and read back, through this handle and a fresh one. A power
 * cut cannot be tested here; the ordering is described in RELIABILITY.md. */
static void test_durable_sets(void **state) {
    struct st_ctx *t = *state;
    fsc_options o = fsc_test_options();
    o.durable = 1;
    fsc_cache *c = fsc_test_open(t->dir, &o);
    char key[32];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "dur-%02d", i);
        assert_fsc_ok(st_set(c, key, i % 4 == 3 ? 9000 : 100 + 150 * (size_t)i));
    }
    char path[TB_PATH_MAX];
    snprintf(path, sizeof path, "%s.src", t->dir);
    assert_int_equal(st_write_value_file(path, "dur-file", 5000), 0);
    assert_fsc_ok(fsc_set_file(c, "dur-file", 8, -1, path, 0));
    unlink(path);
    assert_fsc_ok(st_set(c, "dur-00", 4000)); /* replaced in its pack */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 20; i++) {
            snprintf(key, sizeof key, "dur-%02d", i);
            expect_stored(c, key, i == 0 ? 4000 : i % 4 == 3 ? 9000 : 100 + 150 * (size_t)i, "durable");
        }
        expect_stored(c, "dur-file", 5000, "durable, from a file");
        st_expect_clean(c, t->dir, "after durable sets");
        fsc_close(c);
        c = st_open(t->dir, 64 << 20, 0, -1);
        assert_non_null(c);
    }
    fsc_close(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        ST_TEST(test_small_values_are_packed),
        ST_TEST(test_key_moves_between_pack_and_file),
        ST_TEST(test_handles_of_both_pack_limits_share),
        ST_TEST(test_compaction_reclaims_space),
        ST_TEST(test_entry_api_on_packed_value),
        ST_TEST(test_readers_in_another_process_during_compactions),
        ST_TEST(test_damaged_record_value),
        ST_TEST(test_verify_repairs_packs),
        ST_TEST(test_sigkill_during_packed_sets),
        ST_TEST(test_budget_with_packed_and_file_values),
        ST_TEST(test_stale_pack_descriptors),
        ST_TEST(test_verify_with_two_handles_in_one_process),
        ST_TEST(test_damaged_header_inside_a_pack),
        ST_TEST(test_verify_keeps_records_after_a_damaged_one),
        ST_TEST(test_durable_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
