/* Cross-language peer in C: one operation per run on a cache directory,
 * keys and values given and printed in hex. See README.md for the commands. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsc.h"

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    exit(1);
}

static unsigned char *unhex(const char *s, size_t *len)
{
    size_t n = strlen(s);
    if (n % 2)
        die("bad hex %s", s);
    unsigned char *b = malloc(n / 2 + 1);
    if (!b)
        die("out of memory");
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            die("bad hex %s", s);
        b[i] = (unsigned char)v;
    }
    *len = n / 2;
    return b;
}

static void print_hex(const char *prefix, const unsigned char *b, size_t n)
{
    fputs(prefix, stdout);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    fputc('\n', stdout);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Polls for path every millisecond, for at most 30 s. */
static void wait_for(const char *path)
{
    double deadline = now() + 30;
    struct stat st;
    while (stat(path, &st) != 0) {
        if (now() > deadline)
            die("timed out waiting for %s", path);
        sleep_ms(1);
    }
}

struct create_ctx {
    const char *counter;
    const unsigned char *value;
    size_t len;
};

static int create(void *ctx, fsc_cache *c, const void *key, size_t key_len)
{
    struct create_ctx *cc = ctx;
    int fd = open(cc->counter, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0)
        return 1;
    char line[64];
    int n = snprintf(line, sizeof line, "c %ld\n", (long)getpid());
    ssize_t w = write(fd, line, (size_t)n);
    close(fd);
    if (w != n)
        return 1;
    sleep_ms(300);
    return fsc_set(c, key, key_len, cc->value, cc->len) == FSC_OK ? 0 : 1;
}

/* Reads an entry's whole value (fsc_entry_data) and prints it. */
static void print_entry(const char *prefix, fsc_entry *e)
{
    const void *data = fsc_entry_data(e);
    if (!data)
        die("entry_data: %s", fsc_errmsg());
    print_hex(prefix, data, (size_t)fsc_entry_size(e));
}

int main(int argc, char **argv)
{
    if (argc < 4)
        die("usage: peer CMD DIR KEYHEX [ARGS...]");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "openrace") && argc == 6) { /* READYFILE GOFILE: open at the start signal, then get */
        int rfd = open(argv[4], O_WRONLY | O_CREAT, 0644);
        if (rfd < 0)
            die("ready: %s", strerror(errno));
        close(rfd);
        wait_for(argv[5]);
        cmd = "get";
    }
    size_t klen;
    unsigned char *key = unhex(argv[3], &klen);
    fsc_cache *c;
    int rc = fsc_open(argv[2], NULL, &c);
    if (rc != FSC_OK)
        die("open: %s %s", fsc_strerror(rc), fsc_errmsg());

    if (!strcmp(cmd, "set") && argc == 5) {
        size_t vlen;
        unsigned char *v = unhex(argv[4], &vlen);
        rc = fsc_set(c, key, klen, v, vlen);
        if (rc != FSC_OK)
            die("set: %s %s", fsc_strerror(rc), fsc_errmsg());
        puts("stored");
        free(v);
    } else if (!strcmp(cmd, "get")) {
        fsc_entry *e;
        rc = fsc_get(c, key, klen, &e);
        if (rc == FSC_MISS) {
            puts("miss");
        } else if (rc != FSC_OK) {
            die("get: %s %s", fsc_strerror(rc), fsc_errmsg());
        } else {
            print_entry("hit ", e);
            fsc_entry_free(e);
        }
    } else if (!strcmp(cmd, "trylock")) {
        fsc_lock_handle *l;
        rc = fsc_lock(c, key, klen, 0, &l);
        if (rc == FSC_EBUSY) {
            int64_t pid;
            rc = fsc_lock_holder(c, key, klen, &pid);
            if (rc != FSC_OK)
                die("lock_holder: %s %s", fsc_strerror(rc), fsc_errmsg());
            printf("busy %lld\n", (long long)pid);
        } else if (rc != FSC_OK) {
            die("trylock: %s %s", fsc_strerror(rc), fsc_errmsg());
        } else {
            rc = fsc_unlock(l);
            if (rc != FSC_OK)
                die("unlock: %s %s", fsc_strerror(rc), fsc_errmsg());
            puts("acquired");
        }
    } else if (!strcmp(cmd, "stampede") && argc == 8) {
        int fd = open(argv[4], O_WRONLY | O_CREAT, 0644);
        if (fd < 0)
            die("ready: %s", strerror(errno));
        close(fd);
        wait_for(argv[5]);
        struct create_ctx cc = {argv[6], NULL, 0};
        unsigned char *mine = unhex(argv[7], &cc.len);
        cc.value = mine;
        fsc_entry *e;
        rc = fsc_get_or_create(c, key, klen, -1, create, &cc, &e);
        if (rc != FSC_OK)
            die("get_or_create: %s %s", fsc_strerror(rc), fsc_errmsg());
        print_entry("value ", e);
        fsc_entry_free(e);
        free(mine);
    } else {
        die("unknown command or wrong arguments: %s", cmd);
    }
    fsc_close(c);
    free(key);
    return 0;
}
