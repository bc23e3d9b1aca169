/* One operation on a cache, as one "host" does it: clock_skew.sh runs this
 * program under libfaketime to give the host a wall clock ahead of or behind
 * the others' (docs/MULTIHOST.md ("Clocks")).
 *   skew_host DIR [-s CACHE_SIZE] [-e EXPIRATION_MS] OP ARGS...
 * OP:
 *   set KEY VALUE          stores VALUE
 *   fill KEY BYTES         stores BYTES bytes (for a cache that must evict)
 *   get KEY                prints the value; a miss prints "miss", exit 1
 *   created KEY            prints the value's creation time (Unix ms)
 *   goc KEY EXP VALUE      fsc_get_or_create(EXP), the creator storing VALUE;
 *                          prints "created VALUE", "hit VALUE" or "stale VALUE"
 *   invalidate hard|soft   fsc_invalidate
 *   prune                  fsc_prune
 *   clear                  fsc_clear
 *   verify                 fsc_verify (no repair); prints "N problems"
 * Exit: 0 done (or a hit), 1 a miss, 2 bad usage, 3 an fsc error (printed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsc.h"

static int failed(const char *what, int rc) {
    printf("%s: %s: %s\n", what, fsc_strerror(rc), fsc_errmsg());
    return 3;
}

static int usage(void) {
    fprintf(stderr, "usage: skew_host DIR [-s CACHE_SIZE] [-e EXPIRATION_MS] "
                    "set|fill|get|created|goc|invalidate|prune|clear|verify ARGS...\n");
    return 2;
}

/* Prints the entry's value after label ("" for none), and frees it. */
static int print_value(const char *label, fsc_entry *e) {
    const char *data = fsc_entry_data(e);
    if (!data) {
        fsc_entry_free(e);
        return failed("read", FSC_EIO);
    }
    printf("%s%.*s\n", label, (int)fsc_entry_size(e), data);
    fsc_entry_free(e);
    return 0;
}

struct creator {
    const char *value;
    int called;
};

static int create(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    struct creator *cr = ctx;
    cr->called = 1;
    return fsc_set(c, key, key_len, cr->value, strlen(cr->value)) == FSC_OK ? 0 : 1;
}

static int run(fsc_cache *c, const char *op, int argc, char **argv) {
    if (strcmp(op, "set") == 0 && argc == 2) {
        int rc = fsc_set(c, argv[0], strlen(argv[0]), argv[1], strlen(argv[1]));
        return rc == FSC_OK ? 0 : failed("set", rc);
    }
    if (strcmp(op, "fill") == 0 && argc == 2) {
        size_t n = strtoul(argv[1], NULL, 10);
        char *data = malloc(n ? n : 1);
        if (!data)
            return failed("fill", FSC_ENOMEM);
        memset(data, 'x', n);
        int rc = fsc_set(c, argv[0], strlen(argv[0]), data, n);
        free(data);
        return rc == FSC_OK ? 0 : failed("fill", rc);
    }
    if (strcmp(op, "get") == 0 && argc == 1) {
        fsc_entry *e = NULL;
        int rc = fsc_get(c, argv[0], strlen(argv[0]), &e);
        if (rc == FSC_MISS) {
            printf("miss\n");
            return 1;
        }
        return rc == FSC_OK ? print_value("", e) : failed("get", rc);
    }
    if (strcmp(op, "created") == 0 && argc == 1) {
        fsc_entry *e = NULL;
        int rc = fsc_get(c, argv[0], strlen(argv[0]), &e);
        if (rc != FSC_OK)
            return failed("get", rc);
        printf("%lld\n", (long long)fsc_entry_created_ms(e));
        fsc_entry_free(e);
        return 0;
    }
    if (strcmp(op, "goc") == 0 && argc == 3) {
        struct creator cr = {argv[2], 0};
        fsc_entry *e = NULL;
        int rc = fsc_get_or_create(c, argv[0], strlen(argv[0]), strtoll(argv[1], NULL, 10), create, &cr, &e);
        if (rc == FSC_STALE)
            return print_value("stale ", e);
        if (rc != FSC_OK)
            return failed("get_or_create", rc);
        return print_value(cr.called ? "created " : "hit ", e);
    }
    if (strcmp(op, "invalidate") == 0 && argc == 1 && (!strcmp(argv[0], "hard") || !strcmp(argv[0], "soft"))) {
        int rc = fsc_invalidate(c, strcmp(argv[0], "hard") == 0);
        return rc == FSC_OK ? 0 : failed("invalidate", rc);
    }
    if (strcmp(op, "prune") == 0 && argc == 0) {
        int rc = fsc_prune(c);
        return rc == FSC_OK ? 0 : failed("prune", rc);
    }
    if (strcmp(op, "clear") == 0 && argc == 0) {
        int rc = fsc_clear(c);
        return rc == FSC_OK ? 0 : failed("clear", rc);
    }
    if (strcmp(op, "verify") == 0 && argc == 0) {
        fsc_verify_report r = {sizeof r, 0, 0, 0};
        int rc = fsc_verify(c, 0, &r);
        if (rc != FSC_OK)
            return failed("verify", rc);
        printf("%llu problems\n", (unsigned long long)r.problems);
        return 0;
    }
    return usage();
}

int main(int argc, char **argv) {
    if (argc < 3)
        return usage();
    fsc_options opts;
    fsc_options_init(&opts);
    int i = 2;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-s") == 0)
            opts.cache_size = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "-e") == 0)
            opts.expiration_ms = strtoll(argv[i + 1], NULL, 10);
        else
            return usage();
    }
    if (i >= argc)
        return usage();
    fsc_cache *c = NULL;
    int rc = fsc_open(argv[1], &opts, &c);
    if (rc != FSC_OK)
        return failed("open", rc);
    rc = run(c, argv[i], argc - i - 1, argv + i + 1);
    int closed = fsc_close(c);
    return closed != FSC_OK && rc == 0 ? failed("close", closed) : rc;
}
