/* Self-checking values and small filesystem helpers shared by the crash
 * torture and the full-disk tests. A value carries its own checksum, so any
 * reader can tell a whole value from a torn or foreign one. */
#ifndef FSC_TORTURE_COMMON_H
#define FSC_TORTURE_COMMON_H

#include "test_base.h"

/* Value layout: "FSCV", key index (u32), seq (u64), payload length (u64),
 * FNV-1a 64 of the payload (u64), then the payload. */
#define TV_HEAD 32

static inline uint64_t tv_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The payload length a (key, seq) pair gets: deterministic, so that a checker
 * can rebuild the exact bytes from the seq alone. */
static inline size_t tv_len(uint64_t seq, size_t max_payload) {
    uint64_t r = tv_mix(seq * 7 + 3);
    if (r % 8 == 0)
        return 0;
    return (size_t)(tv_mix(r) % (max_payload + 1));
}

/* Fills buf (TV_HEAD + len bytes) with the value of (key, seq). */
static inline void tv_fill(unsigned char *buf, uint32_t key, uint64_t seq, size_t len) {
    uint64_t s = tv_mix(seq ^ ((uint64_t)key << 40));
    for (size_t i = 0; i < len; i += 8) {
        s = tv_mix(s);
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(buf + TV_HEAD + i, &s, n);
    }
    uint64_t l = len, sum = tb_fnv(TB_FNV_INIT, buf + TV_HEAD, len);
    memcpy(buf, "FSCV", 4);
    memcpy(buf + 4, &key, 4);
    memcpy(buf + 8, &seq, 8);
    memcpy(buf + 16, &l, 8);
    memcpy(buf + 24, &sum, 8);
}

/* Checks a value read back: 0 if whole and self-consistent, else -1.
 * *key and *seq receive what the value says about itself. */
static inline int tv_check(const unsigned char *p, size_t n, uint32_t *key, uint64_t *seq) {
    uint64_t l, sum;
    if (n < TV_HEAD || memcmp(p, "FSCV", 4) != 0)
        return -1;
    memcpy(key, p + 4, 4);
    memcpy(seq, p + 8, 8);
    memcpy(&l, p + 16, 8);
    memcpy(&sum, p + 24, 8);
    if (l != n - TV_HEAD || sum != tb_fnv(TB_FNV_INIT, p + TV_HEAD, (size_t)l))
        return -1;
    return 0;
}

/* Sum of st_size of the regular files under path, recursively (no symlinks
 * followed). Counts non-regular, non-directory entries in *others. */
static inline uint64_t tree_bytes(const char *path, int *others) {
    uint64_t total = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[8192];
        snprintf(sub, sizeof sub, "%.4000s/%.1000s", path, de->d_name);
        struct stat st;
        if (lstat(sub, &st) != 0)
            continue;
        if (S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
        else if (S_ISDIR(st.st_mode))
            total += tree_bytes(sub, others);
        else if (others)
            (*others)++;
    }
    closedir(d);
    return total;
}

#endif
