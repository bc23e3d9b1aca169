/* The on-disk format of docs/FORMAT.md, written from the format description
 * and shared by the core, store, hostile, torture and fuzz tests: finding a
 * cache's files by kind, and forging what a damaged or hostile disk could
 * hold (entry headers with valid checksums but absurd fields, meta tables,
 * pack files, lock records). It must not share code with lib/core/: it is the
 * independent reading of the document the library is checked against. */
#ifndef FSC_FORMAT_TEST_H
#define FSC_FORMAT_TEST_H

#include "test_base.h"

/* Integers are little-endian, on any host. */
/* The n-byte little-endian integer at p, and its store. */
static inline uint64_t fmt_load_le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static inline void fmt_store_le(unsigned char *p, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint64_t fmt_load64(const unsigned char *p) { return fmt_load_le(p, 8); }
static inline uint64_t fmt_rotl(uint64_t v, int r) { return (v << r) | (v >> (64 - r)); }

/* The 64-bit multiply-rotate checksum of FORMAT.md ("checksum64"). It repeats
 * lib/core/hash.cc on purpose: a test oracle written from the document, so
 * that a change to the library's checksum fails the format tests instead of
 * changing both sides at once. */
static inline uint64_t fmt_checksum64(const void *data, size_t len, uint64_t seed) {
    const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL, P3 = 0x165667B19E3779F9ULL;
    const unsigned char *p = (const unsigned char *)data;
    uint64_t a = seed ^ P1, b = seed + P2, c = fmt_rotl(seed, 17) ^ P3, d = seed - P1;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        a = fmt_rotl(a + fmt_load64(p + i) * P2, 31) * P1;
        b = fmt_rotl(b + fmt_load64(p + i + 8) * P2, 31) * P1;
        c = fmt_rotl(c + fmt_load64(p + i + 16) * P2, 31) * P1;
        d = fmt_rotl(d + fmt_load64(p + i + 24) * P2, 31) * P1;
    }
    uint64_t h = fmt_rotl(a, 1) + fmt_rotl(b, 7) + fmt_rotl(c, 12) + fmt_rotl(d, 18) + len;
    for (; i + 8 <= len; i += 8)
        h = fmt_rotl(h ^ (fmt_rotl(fmt_load64(p + i) * P2, 31) * P1), 27) * P1 + P3;
    for (; i < len; i++)
        h = fmt_rotl(h ^ (p[i] * P3), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

/* The block-chained value checksum: 64 KiB blocks, each seeding the next. */
static inline uint64_t fmt_value_sum(const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t s = 0;
    while (len >= 65536) {
        s = fmt_checksum64(p, 65536, s);
        p += 65536;
        len -= 65536;
    }
    return fmt_checksum64(p, len, s);
}

/* Recomputes the header checksum (bytes 56..63) of an entry file image whose
 * header says key_len bytes of key follow it (clamped to what buf holds). */
static inline void fmt_fix_entry_sum(unsigned char *buf, size_t len) {
    if (len < 64)
        return;
    size_t k = (size_t)fmt_load_le(buf + 8, 4);
    if (k > len - 64)
        k = len - 64;
    fmt_store_le(buf + 56, fmt_checksum64(buf + 64, k, fmt_checksum64(buf, 56, 0)), 8);
}

/* Writes a 64-byte entry header for key into out. */
static inline void fmt_entry_header(unsigned char *out, uint16_t flags, const void *key, uint32_t key_len,
                                    uint64_t value_size, uint64_t offset, int64_t created_us, uint64_t payload_gen,
                                    uint64_t value_sum) {
    memset(out, 0, 64);
    memcpy(out, "FSCE", 4);
    fmt_store_le(out + 4, 1, 2);
    fmt_store_le(out + 6, flags, 2);
    fmt_store_le(out + 8, key_len, 4);
    fmt_store_le(out + 16, value_size, 8);
    fmt_store_le(out + 24, offset, 8);
    fmt_store_le(out + 32, (uint64_t)created_us, 8);
    fmt_store_le(out + 40, payload_gen, 8);
    fmt_store_le(out + 48, value_sum, 8);
    fmt_store_le(out + 56, fmt_checksum64(key, key_len, fmt_checksum64(out, 56, 0)), 8);
}

/* Fixes every checksum of a meta file image (version 2): the header's (0..55,
 * stored at 56; pack gen, end and dead bytes at 32..55 included) and each
 * 64-byte slot's (0..47, stored at 48; the slot's "where" at 36 and payload
 * generation or pack offset at 40 included). */
static inline void fmt_fix_meta_sums(unsigned char *buf, size_t len) {
    if (len >= 64)
        fmt_store_le(buf + 56, fmt_checksum64(buf, 56, 0), 8);
    for (size_t at = 64; at + 64 <= len; at += 64)
        fmt_store_le(buf + at + 48, fmt_checksum64(buf + at, 48, 0), 8);
}

/* Pack file `shards/<xx>/pack.<16 hex>`: a 64-byte header ("FSCP", u16
 * version 1 at 4, u64 seq at 8, u64 gen at 16 equal to the name's hex, zeros,
 * checksum64 of bytes 0..55 at 56), then records back to back from offset 64,
 * each laid out like an entry file (header, key, value); a dead record has
 * the magic "FSCX" and keeps the header checksum it had as "FSCE". */
#define FMT_PACK_HEADER 64

/* The length (64 + key length + value size) of the record at buf[at..len)
 * when its 64-byte header fits there with magic FSCE or FSCX and a key
 * length of 1..65536; 0 when there is none. The length may run past len. */
static inline uint64_t fmt_pack_record_len(const unsigned char *buf, size_t len, size_t at) {
    if (at > len || len - at < 64 || (memcmp(buf + at, "FSCE", 4) != 0 && memcmp(buf + at, "FSCX", 4) != 0))
        return 0;
    const uint64_t key_len = fmt_load_le(buf + at + 8, 4), value_size = fmt_load_le(buf + at + 16, 8);
    if (key_len == 0 || key_len > 65536 || value_size > UINT64_MAX - 64 - key_len)
        return 0;
    return 64 + key_len + value_size;
}

/* Recomputes the header checksum (56..63) of the pack record at buf + at,
 * over its header and as much of its key as buf holds, as for a live record
 * (a dead record keeps the checksum it had before its magic changed). */
static inline void fmt_fix_record_sum(unsigned char *buf, size_t len, size_t at) {
    if (at > len || len - at < 64)
        return;
    unsigned char magic[4];
    memcpy(magic, buf + at, 4);
    memcpy(buf + at, "FSCE", 4);
    fmt_fix_entry_sum(buf + at, len - at);
    memcpy(buf + at, magic, 4);
}

/* Fixes every checksum of a pack file image: the header's (0..55 at 56),
 * then, walking the records from offset 64 for as long as one is there,
 * each record's value checksum (at 48, when its value fits in buf) and header
 * checksum. Stops at the first place that holds no record or a record that
 * runs past len (whose header checksum is still fixed when its key fits). */
static inline void fmt_fix_pack_sums(unsigned char *buf, size_t len) {
    if (len < FMT_PACK_HEADER)
        return;
    fmt_store_le(buf + 56, fmt_checksum64(buf, 56, 0), 8);
    size_t at = FMT_PACK_HEADER;
    for (;;) {
        uint64_t rec = fmt_pack_record_len(buf, len, at);
        if (rec == 0)
            return;
        const size_t key_len = (size_t)fmt_load_le(buf + at + 8, 4);
        if (rec > len - at) {
            fmt_fix_record_sum(buf, len, at);
            return;
        }
        fmt_store_le(buf + at + 48, fmt_value_sum(buf + at + 64 + key_len, (size_t)(rec - 64 - key_len)), 8);
        fmt_fix_record_sum(buf, len, at);
        at += (size_t)rec;
    }
}

/* The lock file's records (FORMAT.md, "Shared records in the lock file"):
 * their whole length, and where each shard's 24-byte line is. */
#define FMT_LOCK_LEN (256 + 256 * 24)
#define FMT_LOCK_LINE_AT(shard) (256 + 24 * (size_t)(shard))

/* Fixes the checksums of the lock file's records: invalidation (0..23 at
 * 24), LRU horizon (32..39 at 40), totals (64..127 at 128) and each shard's
 * line (its 16 bytes, at 16 into the line, seeded with 0x4653434c + shard). */
static inline void fmt_fix_lock_sums(unsigned char *buf, size_t len) {
    if (len >= 32)
        fmt_store_le(buf + 24, fmt_checksum64(buf, 24, 0), 8);
    if (len >= 48)
        fmt_store_le(buf + 40, fmt_checksum64(buf + 32, 8, 0x46534348), 8);
    if (len >= 64 + 72)
        fmt_store_le(buf + 128, fmt_checksum64(buf + 64, 64, 0), 8);
    for (unsigned shard = 0; shard < 256 && FMT_LOCK_LINE_AT(shard) + 24 <= len; shard++) {
        unsigned char *line = buf + FMT_LOCK_LINE_AT(shard);
        fmt_store_le(line + 16, fmt_checksum64(line, 16, 0x4653434cull + shard), 8);
    }
}

/* ------------------------------------------------------------------ */
/* A cache directory's files under shards/<xx>/, by kind               */
/* ------------------------------------------------------------------ */

/* Entry file <32 hex>, payload file <32 hex>.<16 hex>, pack file
 * pack.<16 hex>, the shard's meta file, anything else. */
enum { FMT_ENTRY = 0, FMT_PAYLOAD = 1, FMT_PACK = 2, FMT_META = 3, FMT_OTHER = 4 };

static inline int fmt_kind_of(const char *name) {
    const size_t n = strlen(name);
    if (n == 32 && tb_is_hex(name, 32))
        return FMT_ENTRY;
    if (n == 49 && name[32] == '.' && tb_is_hex(name, 32) && tb_is_hex(name + 33, 16))
        return FMT_PAYLOAD;
    if (n == 21 && strncmp(name, "pack.", 5) == 0 && tb_is_hex(name + 5, 16))
        return FMT_PACK;
    return strcmp(name, "meta") == 0 ? FMT_META : FMT_OTHER;
}

/* fn(shard_dir, name, kind, ctx) for one file; non-zero stops the walk. */
typedef int (*fmt_file_fn)(const char *shard_dir, const char *name, int kind, void *ctx);

/* Visits every file of every shard directory under base/shards, one shard
 * after the other (names that start with '.' are passed over). */
static inline void fmt_each_file(const char *base, fmt_file_fn fn, void *ctx) {
    char shards[TB_PATH_MAX + 16];
    snprintf(shards, sizeof shards, "%s/shards", base);
    DIR *d = opendir(shards);
    if (!d)
        return;
    struct dirent *de;
    int stop = 0;
    while (!stop && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[TB_PATH_MAX + 300];
        snprintf(sub, sizeof sub, "%s/%s", shards, de->d_name);
        DIR *s = opendir(sub);
        if (!s)
            continue;
        struct dirent *fe;
        while (!stop && (fe = readdir(s)) != NULL)
            if (fe->d_name[0] != '.')
                stop = fn(sub, fe->d_name, fmt_kind_of(fe->d_name), ctx);
        closedir(s);
    }
    closedir(d);
}

struct fmt_find_ {
    int kind, count;
    char *out;
    size_t cap;
};

static inline int fmt_find_one_(const char *shard_dir, const char *name, int kind, void *ctx) {
    struct fmt_find_ *f = (struct fmt_find_ *)ctx;
    if (kind == f->kind && f->count++ == 0 && f->out) {
        const int n = snprintf(f->out, f->cap, "%s/%s", shard_dir, name);
        if (n < 0 || (size_t)n >= f->cap)
            abort(); /* a cut path would name another file */
    }
    return 0;
}

/* How many files of that kind the cache at base holds; the path of the first
 * one found goes to out (when out is not NULL). */
static inline int fmt_find(const char *base, int kind, char *out, size_t cap) {
    struct fmt_find_ f = {kind, 0, out, cap};
    fmt_each_file(base, fmt_find_one_, &f);
    return f.count;
}

#endif
