/* Differential: the fuzz input is a sequence of operations (set, get,
 * delete, clear, set_file by copy or by move, reopen) on a few keys, run
 * against fsc and against a plain in-memory table; every answer must agree
 * (status, bytes, size, remembered offset), and at the end foreach, stats
 * and verify must agree with the table too. */
#include "fuzz_common.h"

#define NKEYS 8
#define MAXLEN 3000

static const struct {
    const char *k;
    size_t len;
} keys[NKEYS] = {{"a", 1}, {"b", 1}, {"key with spaces", 15}, {"\0nul\0", 5}, {"\xff\xfe", 2},
                 {"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", 81},
                 {"d/e/../f", 8}, {"x", 1}};

struct slot {
    int present;
    size_t len;
    uint64_t offset;
    unsigned char data[MAXLEN];
};
static struct slot model[NKEYS];

struct in {
    const uint8_t *p;
    size_t n;
};
static unsigned take(struct in *in) {
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static int count_visit(void *ctx, const void *key, size_t key_len, uint64_t size, int64_t created) {
    (void)created;
    int found = 0;
    for (int i = 0; i < NKEYS; i++)
        if (keys[i].len == key_len && memcmp(keys[i].k, key, key_len) == 0) {
            FZ_ASSERT(model[i].present, "foreach visits a key the model does not hold");
            FZ_ASSERT(model[i].len == size, "foreach reports %llu bytes, the model %zu", (unsigned long long)size,
                      model[i].len);
            found = 1;
        }
    FZ_ASSERT(found, "foreach visits a key that was never set");
    (*(int *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *root = fz_dir();
    char base[600], src[700];
    snprintf(src, sizeof src, "%s/src", root);
    fz_fresh_base(base, sizeof base);
    memset(model, 0, sizeof model);
    fsc_cache *c;
    FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "open");
    struct in in = {data, size};
    unsigned char buf[MAXLEN];
    unsigned counter = 0;
    while (in.n > 0) {
        unsigned op = take(&in) % 13;
        unsigned ki = take(&in) % NKEYS;
        const char *k = keys[ki].k;
        size_t kl = keys[ki].len;
        struct slot *m = &model[ki];
        if (op <= 3 || op == 9 || op == 10) { /* set (more often) */
            size_t len = (take(&in) * 11u + take(&in)) % MAXLEN;
            if (op == 9)
                len = 0;
            unsigned seed = take(&in) + (++counter << 8);
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 3));
            FZ_ASSERT(fsc_set(c, k, kl, buf, len) == FSC_OK, "set");
            m->present = 1;
            m->len = len;
            m->offset = 0;
            memcpy(m->data, buf, len);
        } else if (op == 4 || op == 11) { /* get */
            fsc_entry *e;
            int rc = fsc_get(c, k, kl, &e);
            if (!m->present) {
                FZ_ASSERT(rc == FSC_MISS, "get of an absent key gave %s", fsc_strerror(rc));
                continue;
            }
            FZ_ASSERT(rc == FSC_OK, "get of a present key gave %s", fsc_strerror(rc));
            FZ_ASSERT(fsc_entry_size(e) == m->len, "size %llu, model %zu", (unsigned long long)fsc_entry_size(e),
                      m->len);
            FZ_ASSERT(fsc_entry_offset(e) == m->offset, "offset %llu, model %llu",
                      (unsigned long long)fsc_entry_offset(e), (unsigned long long)m->offset);
            const void *d = fsc_entry_data(e);
            FZ_ASSERT(d && memcmp(d, m->data, m->len) == 0, "bytes differ from the model");
            size_t got, total = 0;
            int r;
            while ((r = fsc_entry_read(e, buf, 700, &got)) == FSC_OK && got > 0) {
                FZ_ASSERT(m->offset + total + got <= m->len, "read past the end");
                FZ_ASSERT(memcmp(buf, m->data + m->offset + total, got) == 0, "fsc_entry_read differs");
                total += got;
            }
            FZ_ASSERT(r == FSC_OK && total == m->len - m->offset, "fsc_entry_read: %s, %zu bytes", fsc_strerror(r),
                      total);
            fsc_entry_free(e);
        } else if (op == 5) { /* delete */
            int rc = fsc_delete(c, k, kl);
            FZ_ASSERT(rc == (m->present ? FSC_OK : FSC_MISS), "delete gave %s", fsc_strerror(rc));
            m->present = 0;
        } else if (op == 6) { /* clear */
            if (take(&in) % 4 == 0) {
                FZ_ASSERT(fsc_clear(c) == FSC_OK, "clear");
                memset(model, 0, sizeof model);
            }
        } else if (op == 7 || op == 12) { /* set_file: copy (7) or move (12), with an offset */
            size_t len = (take(&in) * 13u + take(&in)) % MAXLEN;
            unsigned seed = take(&in) + (++counter << 8);
            uint64_t off = take(&in) * 13u;
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)(seed * 17 + i * 3);
            fz_write(src, buf, len);
            int fd = open(src, O_RDONLY | O_CLOEXEC);
            FZ_ASSERT(fd >= 0, "open src");
            FZ_ASSERT(lseek(fd, (off_t)off, SEEK_SET) == (off_t)off, "lseek");
            int rc = op == 7 ? fsc_set_file(c, k, kl, fd, NULL, 0) : fsc_set_file(c, k, kl, fd, src, FSC_MOVE);
            close(fd);
            FZ_ASSERT(rc == FSC_OK, "set_file gave %s", fsc_strerror(rc));
            if (op == 12)
                FZ_ASSERT(access(src, F_OK) != 0, "the moved file is still there");
            unlink(src);
            m->present = 1;
            m->len = len;
            m->offset = off < len ? off : len;
            memcpy(m->data, buf, len);
        } else if (op == 8) { /* reopen */
            fsc_close(c);
            FZ_ASSERT(fsc_open(base, NULL, &c) == FSC_OK, "reopen");
        }
    }
    int present = 0, visited = 0;
    for (int i = 0; i < NKEYS; i++)
        present += model[i].present;
    FZ_ASSERT(fsc_foreach(c, count_visit, &visited) == FSC_OK, "foreach");
    FZ_ASSERT(visited == present, "foreach visited %d values, the model holds %d", visited, present);
    fsc_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    FZ_ASSERT(fsc_stats(c, &st) == FSC_OK, "stats");
    FZ_ASSERT(st.entries == (uint64_t)present, "stats entries %llu, model %d", (unsigned long long)st.entries,
              present);
    fsc_verify_report r = {sizeof r, 0, 0, 0};
    FZ_ASSERT(fsc_verify(c, 0, &r) == FSC_OK && r.problems == 0, "verify: %llu problems",
              (unsigned long long)r.problems);
    fsc_close(c);
    return 0;
}
