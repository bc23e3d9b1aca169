/* Loads the shared library at run time, as plugins and language runtimes
 * do, and uses it through dlsym only. Usage: dlopen_test PATH/libfsc.so.N */
#include <dlfcn.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsc.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #cond);                     \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The function types of fsc.h, for the pointers dlsym gives. */
typedef const char *(*version_fn)(void);
typedef int (*open_fn)(const char *, const fsc_options *, fsc_cache **);
typedef int (*close_fn)(fsc_cache *);
typedef int (*set_fn)(fsc_cache *, const void *, size_t, const void *, size_t);
typedef int (*get_fn)(fsc_cache *, const void *, size_t, fsc_entry **);
typedef const void *(*data_fn)(fsc_entry *);
typedef uint64_t (*size_fn)(const fsc_entry *);
typedef void (*free_fn)(fsc_entry *);

/* Object pointer to function pointer, the way POSIX allows. */
#define SYM(type, name) ((type)(uintptr_t)dlsym(lib, name))

static int run(void *lib, const char *dir) {
    version_fn version = SYM(version_fn, "fsc_version");
    open_fn open_cache = SYM(open_fn, "fsc_open");
    close_fn close_cache = SYM(close_fn, "fsc_close");
    set_fn set = SYM(set_fn, "fsc_set");
    get_fn get = SYM(get_fn, "fsc_get");
    data_fn data = SYM(data_fn, "fsc_entry_data");
    size_fn size = SYM(size_fn, "fsc_entry_size");
    free_fn free_entry = SYM(free_fn, "fsc_entry_free");
    CHECK(version && open_cache && close_cache && set && get && data && size && free_entry);
    /* The symbols carry the version node of the first release. */
    CHECK(dlvsym(lib, "fsc_open", "FSC_0") != NULL);
    /* Internals stay hidden. */
    CHECK(dlsym(lib, "_ZN3fsc5Cache4openERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEERKNS_7OptionsE") == NULL);

    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", FSC_VERSION_MAJOR, FSC_VERSION_MINOR, FSC_VERSION_PATCH);
    CHECK(strcmp(version(), want) == 0);

    fsc_cache *c = NULL;
    fsc_entry *e = NULL;
    CHECK(open_cache(dir, NULL, &c) == FSC_OK);
    CHECK(set(c, "k\0ey", 4, "dlopened", 8) == FSC_OK);
    CHECK(get(c, "k\0ey", 4, &e) == FSC_OK);
    CHECK(size(e) == 8);
    CHECK(memcmp(data(e), "dlopened", 8) == 0);
    free_entry(e);
    CHECK(get(c, "k", 1, &e) == FSC_MISS);
    CHECK(close_cache(c) == FSC_OK);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIBRARY\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    const char *base = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fsc-dlopen-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    int rc = run(lib, dir);
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    /* Unloading must not crash (no destructor left pointing into it). */
    CHECK(dlclose(lib) == 0);
    if (rc == 0)
        printf("dlopen: %s works through dlsym\n", argv[1]);
    return rc;
}
