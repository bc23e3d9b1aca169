/* A program built from installed files only (pkg-config): one set/get round
 * trip, run against the installed library. Usage: consumer DIR LIBDIR */
#include <fsc.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    fsc_cache *c = NULL;
    fsc_entry *e = NULL;
    int rc = fsc_open(argv[1], NULL, &c);
    if (rc == FSC_OK)
        rc = fsc_set(c, "key", 3, "installed", 9);
    if (rc == FSC_OK)
        rc = fsc_get(c, "key", 3, &e);
    if (rc != FSC_OK) {
        fprintf(stderr, "consumer: %s (%s)\n", fsc_strerror(rc), fsc_errmsg());
        return 1;
    }
    const char *data = fsc_entry_data(e);
    int same = fsc_entry_size(e) == 9 && data && memcmp(data, "installed", 9) == 0;
    fsc_entry_free(e);
    fsc_close(c);
    if (!same) {
        fprintf(stderr, "consumer: wrong value read back\n");
        return 1;
    }
    /* The library in use must be the installed one, not the build tree's. */
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    int installed = 0;
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, "libfsc.so") && strstr(line, argv[2]))
            installed = 1;
    if (maps)
        fclose(maps);
    if (!installed) {
        fprintf(stderr, "consumer: libfsc was not loaded from %s\n", argv[2]);
        return 1;
    }
    printf("consumer: round trip through the installed libfsc %s\n", fsc_version());
    return 0;
}
