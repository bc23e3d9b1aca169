/* No torn reads: one process keeps replacing a key's value while another
 * reads it, and every value read must be one whole value that was written. */
#include <poll.h>

#include "core_test.h"

#define WRITES 1000
#define MIN_READS 3000
#define MAX_VALUE (256 * 1024)

/* Sizes from 1 byte to 256 KiB, spread evenly over the powers of two. */
static size_t value_size(unsigned i) {
    uint64_t r = i * 0x9E3779B97F4A7C15ull;
    r ^= r >> 29;
    unsigned bits = (unsigned)(r % 19);
    if (bits == 18)
        return MAX_VALUE;
    return ((size_t)1 << bits) + (size_t)((r >> 8) % ((uint64_t)1 << bits));
}

/* A value that carries its own checksum: the first 8 bytes are the sum of
 * the rest (and of the length). Short values are a pattern of the length. */
static void make_value(unsigned char *v, size_t len, unsigned seed) {
    if (len < 16) {
        for (size_t j = 0; j < len; j++)
            v[j] = (unsigned char)(len * 37 + j * 11);
        return;
    }
    tb_fill(v + 8, len - 8, seed);
    uint64_t s = tb_fnv(tb_fnv(TB_FNV_INIT, &len, sizeof len), v + 8, len - 8);
    memcpy(v, &s, 8);
}

static int value_ok(const unsigned char *v, size_t len) {
    if (len == 0 || len > MAX_VALUE)
        return 0;
    if (len < 16) {
        for (size_t j = 0; j < len; j++)
            if (v[j] != (unsigned char)(len * 37 + j * 11))
                return 0;
        return 1;
    }
    uint64_t s = tb_fnv(tb_fnv(TB_FNV_INIT, &len, sizeof len), v + 8, len - 8);
    return memcmp(v, &s, 8) == 0;
}

static void write_bytes_values(fsc_cache *c, const char *scratch) {
    (void)scratch;
    unsigned char *v = malloc(MAX_VALUE);
    child_check(v != NULL, 2);
    for (unsigned i = 0; i < WRITES; i++) {
        size_t len = value_size(i);
        make_value(v, len, i);
        child_check(fsc_set(c, "torn", 4, v, len) == FSC_OK, 3);
    }
    free(v);
}

/* Alternates copies and moves; the descriptor sits at the value's middle. */
static void write_file_values(fsc_cache *c, const char *scratch) {
    unsigned char *v = malloc(MAX_VALUE);
    child_check(v != NULL, 2);
    char path[TB_PATH_MAX];
    for (unsigned i = 0; i < WRITES; i++) {
        size_t len = value_size(i);
        make_value(v, len, i);
        if (snprintf(path, sizeof path, "%s/v%u", scratch, i) >= (int)sizeof path)
            _exit(2);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        child_check(fd >= 0, 3);
        child_check(write(fd, v, len) == (ssize_t)len, 3);
        child_check(lseek(fd, (off_t)(len / 2), SEEK_SET) == (off_t)(len / 2), 3);
        unsigned flags = i % 2 ? FSC_MOVE : 0;
        child_check(fsc_set_file(c, "torn", 4, fd, path, flags) == FSC_OK, 4);
        close(fd);
        if (!flags)
            unlink(path);
    }
    free(v);
}

/* Reads the value the ways a reader can; 0 when it is whole. */
static int read_and_check(fsc_cache *c, unsigned char *buf, unsigned round, int files) {
    fsc_entry *e = NULL;
    int rc = fsc_get(c, "torn", 4, &e);
    if (rc != FSC_OK) {
        /* The key always has a value: a miss would be a torn replacement. */
        fprintf(stderr, "reader: get gave %s (%s)\n", fsc_strerror(rc), fsc_errmsg());
        return 1;
    }
    size_t len = (size_t)fsc_entry_size(e);
    int bad = 0;
    if (len == 0 || len > MAX_VALUE) {
        bad = 1;
    } else if (round % 3 == 0) {
        const void *data = fsc_entry_data(e);
        bad = !data || !value_ok(data, len);
    } else if (round % 3 == 1 || !files) {
        /* fsc_entry_read starts at the remembered offset. */
        size_t start = files ? len / 2 : 0;
        size_t have = start, got = 0;
        if (fsc_entry_offset(e) != start)
            bad = 1;
        memset(buf, 0, MAX_VALUE);
        if (files)
            bad |= pread(fsc_entry_fd(e), buf, start, 0) != (ssize_t)start;
        do {
            if (fsc_entry_read(e, buf + have, 4096, &got) != FSC_OK || have + got > len) {
                bad = 1;
                break;
            }
            have += got;
        } while (got > 0);
        bad |= have != len || !value_ok(buf, len);
    } else {
        /* A raw value's descriptor reads exactly the value to EOF. */
        int fd = fsc_entry_fd(e);
        bad = fd < 0 || lseek(fd, 0, SEEK_SET) != 0 || tb_read_all(fd, buf, MAX_VALUE) != (ssize_t)len ||
              !value_ok(buf, len);
    }
    if (bad)
        fprintf(stderr, "reader: round %u: a bad value of %zu bytes (offset %llu)\n", round, len,
                (unsigned long long)fsc_entry_offset(e));
    fsc_entry_free(e);
    return bad;
}

static int writer_done(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

static void run_torn(struct fsc_test_ctx *t, int files) {
    char scratch[TB_PATH_MAX];
    core_join(scratch, t->dir, "scratch");
    assert_int_equal(mkdir(scratch, 0700), 0);
    /* The key has a value of the same kind from the start. */
    unsigned char first[64];
    make_value(first, sizeof first, 0);
    if (files) {
        char path[TB_PATH_MAX];
        core_join(path, scratch, "first");
        assert_int_equal(tb_write_file(path, first, sizeof first), 0);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_int_equal(lseek(fd, sizeof first / 2, SEEK_SET), sizeof first / 2);
        assert_fsc_ok(fsc_set_file(t->cache, "torn", 4, fd, path, FSC_MOVE));
        close(fd);
    } else {
        assert_fsc_ok(fsc_set(t->cache, "torn", 4, first, sizeof first));
    }

    /* The writer holds the pipe's write end: its exit is the reader's EOF. */
    int done[2];
    assert_int_equal(pipe(done), 0);
    pid_t writer = fork();
    assert_true(writer >= 0);
    if (writer == 0) {
        close(done[0]);
        fsc_cache *c = NULL;
        child_check(fsc_open(t->dir, NULL, &c) == FSC_OK, 2);
        if (files)
            write_file_values(c, scratch);
        else
            write_bytes_values(c, scratch);
        fsc_close(c);
        _exit(0);
    }
    close(done[1]);
    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) {
        fsc_cache *c = NULL;
        child_check(fsc_open(t->dir, NULL, &c) == FSC_OK, 2);
        unsigned char *buf = malloc(MAX_VALUE + 1);
        child_check(buf != NULL, 2);
        unsigned reads = 0, torn = 0, during = 0;
        while (reads < MIN_READS || !writer_done(done[0])) {
            if (!writer_done(done[0]))
                during++;
            torn += (unsigned)read_and_check(c, buf, reads, files);
            reads++;
        }
        fprintf(stderr, "reader: %u reads (%u while writing), %u torn\n", reads, during, torn);
        free(buf);
        fsc_close(c);
        _exit(torn ? 1 : 0);
    }
    close(done[0]);
    assert_int_equal(tb_wait(writer), 0);
    assert_int_equal(tb_wait(reader), 0);
    /* The last write won. */
    size_t len = value_size(WRITES - 1);
    unsigned char *v = malloc(len);
    make_value(v, len, WRITES - 1);
    core_assert_value(t->cache, "torn", 4, v, len);
    free(v);
}

static void test_torn_bytes(void **state) { run_torn(*state, 0); }

static void test_torn_files(void **state) { run_torn(*state, 1); }

int main(void) {
    const struct CMUnitTest tests[] = {
        FSC_TEST(test_torn_bytes),
        FSC_TEST(test_torn_files),
    };
    return cmocka_run_group_tests_name("core_torn", tests, NULL, NULL);
}
