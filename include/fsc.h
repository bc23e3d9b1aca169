/*
 * fsc.h - a persistent, size-bounded, cross-process filesystem cache with
 * dogpile (stampede) protection.
 *
 * This header is the whole public interface and its manual.
 *
 * ABI in five sentences:
 *  1. Every object is an opaque handle (fsc_cache, fsc_entry, fsc_lock_handle)
 *     created by one function and released by its own free/close function.
 *  2. Every fallible function returns an int status: FSC_OK (0), a positive
 *     non-error outcome (FSC_MISS, FSC_STALE) or a negative FSC_E* error.
 *  3. Results come back through out-parameters named `out`, written only on
 *     success; what comes back through `**out` is the caller's to release.
 *  4. fsc_errmsg() gives a human-readable detail of the calling thread's last
 *     error; it is for people, never for detecting errors.
 *  5. Option and result structs start with a `size` field so that they can
 *     grow: call the matching _init() or set size = sizeof(struct) first.
 *
 * Threads and processes (the traps, and what fsc does about each):
 *  - An fsc_cache is safe to share between threads. An fsc_entry is used by
 *    one thread at a time. An fsc_lock_handle may be released by a thread
 *    other than the one that took it.
 *  - POSIX record locks are dropped when a process closes ANY descriptor of
 *    the locked file. fsc therefore keeps exactly one descriptor per lock file
 *    per process, shared by every fsc_cache on the same base_dir, and never
 *    opens the lock file elsewhere. Do not open base_dir/lock yourself.
 *  - Record locks do not exclude threads of one process: fsc adds a per-key
 *    in-process lock with an owner thread and a recursion count on top.
 *  - After fork() the child holds none of its parent's locks; fsc resets its
 *    lock table in the child, which may use handles it inherited at once,
 *    even while other threads of the parent were using them at the fork.
 *  - A process that dies (even by SIGKILL) releases its locks; a half-done
 *    set leaves only a temp file, swept by a later fsc_open.
 *  - Reads take no lock: fsc_get never waits for a writer, even one stopped
 *    (SIGSTOP, a debugger) inside its change; it returns the value as it was
 *    before that change, or the new one.
 *  - Descriptors: a handle keeps the descriptors of the shard directories and
 *    shard metadata files it has used open, up to 2 x 256 plus a few, so
 *    that a get needs no path walk. Several handles on large caches may need
 *    a higher RLIMIT_NOFILE than the common soft limit of 1024.
 *  - On a network filesystem (NFSv4, CephFS, GlusterFS) fsc uses no shared
 *    memory maps and takes every lock with fcntl; see docs/ARCHITECTURE.md
 *    for what such filesystems do to locks and renames.
 */
#ifndef FSC_H
#define FSC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FSC_API __attribute__((visibility("default")))
#else
#define FSC_API
#endif

/* ------------------------------------------------------------------ */
/* Version                                                             */
/* ------------------------------------------------------------------ */

#define FSC_VERSION_MAJOR 0
#define FSC_VERSION_MINOR 1
#define FSC_VERSION_PATCH 0

/* The library's own version as "MAJOR.MINOR.PATCH": compare it with the
 * macros above to detect a header/library mismatch. Never NULL. */
FSC_API const char *fsc_version(void);

/* ------------------------------------------------------------------ */
/* Status codes (values are fixed)                                     */
/* ------------------------------------------------------------------ */

enum fsc_status {
    FSC_OK = 0,         /* success */
    FSC_MISS = 1,       /* no fresh value for the key (absent, expired, invalidated, deleted) */
    FSC_STALE = 2,      /* fsc_get_or_create returned an expired value while another caller regenerates */
    FSC_EINVAL = -1,    /* bad argument: NULL pointer, empty or oversized key, bad option, lock released twice */
    FSC_ENOMEM = -2,    /* out of memory */
    FSC_EIO = -3,       /* an operating-system call failed; fsc_errmsg() names call, path and errno */
    FSC_ENOSPC = -4,    /* the filesystem is full (or over quota); nothing was half-written */
    FSC_EACCES = -5,    /* permission denied on base_dir or one of its files (also: read-only filesystem) */
    FSC_EBUSY = -6,     /* the lock is held elsewhere and the call was not allowed to wait */
    FSC_ETIMEDOUT = -7, /* the lock was not acquired within the timeout */
    FSC_EDEADLK = -8,   /* the kernel refused a lock that would deadlock between processes */
    FSC_ECORRUPT = -9,  /* an on-disk file failed validation; it was removed, other entries are intact */
    FSC_ETOOBIG = -10,  /* the value alone (with its overhead, see FSC_BUDGET) is larger than cache_size */
    FSC_EXDEV = -11,    /* a move was asked across filesystems; the file stays where it was */
    FSC_EFORMAT = -12,  /* base_dir holds something that is not an fsc cache this library reads */
    FSC_ECREATOR = -13, /* the creator callback of fsc_get_or_create failed; nothing was stored */
    FSC_ENOTSUP = -14   /* the operation is not implemented by this build of the library */
};

/* The status's name, e.g. "FSC_MISS"; "FSC_E?" for an unknown value. Never NULL. */
FSC_API const char *fsc_strerror(int status);

/* A human-readable detail of the last error returned to the calling thread,
 * e.g. "rename 'tmp/x' -> 'shards/ab/...': No space left on device".
 * Never NULL ("" when there is none). Valid until the thread's next fsc call. */
FSC_API const char *fsc_errmsg(void);

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */

/* Keys are 1 byte to FSC_MAX_KEY bytes, any bytes, NUL included. */
#define FSC_MAX_KEY 65536

typedef struct fsc_cache fsc_cache;

typedef struct fsc_options {
    size_t size;          /* sizeof(fsc_options): set by fsc_options_init */
    uint64_t cache_size;  /* bytes on disk; default 1 GiB; 0 = unbounded (see FSC_BUDGET) */
    uint64_t max_entries; /* default 0 = unbounded; else at most this many values */
    int64_t expiration_ms; /* default -1 = never; older values are misses and get pruned */
    int distributed_lock; /* default 1: fsc_lock excludes other processes; 0: threads of this process only */
    int file_movable;     /* default 0: fsc_set_file copies; 1: it renames the caller's file in */
    int durable;          /* default 0; 1: data and directory are fsynced before a set returns */
    uint64_t pack_limit;  /* default FSC_PACK_LIMIT_DEFAULT; see FSC_PACKING; at most FSC_PACK_LIMIT_MAX */
} fsc_options;

/* FSC_PACKING: a value stored with fsc_set of at most pack_limit bytes is
 * appended as a record to its shard's pack file (base_dir/shards/xx/pack.*)
 * instead of getting a file of its own: a get reads it with one pread through
 * a descriptor the handle keeps open, a set appends it without creating a
 * file. pack_limit 0 gives every value its own file. Handles with different
 * pack_limit values may share a cache; each reads what the others stored.
 * Values stored with fsc_set_file always get their own file. Space of
 * replaced, deleted and evicted records is reclaimed by compacting the pack
 * when an eighth of it is dead (or at once when eviction needs the bytes);
 * until then it counts against cache_size. */
#define FSC_PACK_LIMIT_DEFAULT 4096
#define FSC_PACK_LIMIT_MAX (1024 * 1024)

/* FSC_BUDGET: what cache_size bounds. After every set, the cache's files
 * under base_dir/shards - each value with its 64-byte entry header and key,
 * and each shard's metadata table - hold at most cache_size bytes (sizes as
 * st_size reports them), with any number of processes writing at once. On
 * top of that the directory holds its format marker (19 bytes), its lock file
 * (at most 4 KiB), the directories themselves, and for a moment the temp
 * files of sets in flight (each already charged to the budget). A value whose
 * cost (value + 64 + key length + 320 bytes for the smallest shard table)
 * exceeds cache_size alone is refused with FSC_ETOOBIG rather than stored and
 * evicted at once. Least recently used values (a get is a use) are evicted
 * first: exactly for caches of up to 1,024 values, by sampling above.
 * A handle that sets reserves budget for its next few sets ahead of them
 * (only where that evicts nothing) and gives back its settled reservations
 * in batches: to other handles the cache looks fuller by at most a 32nd of
 * cache_size (and of max_entries) per handle writing, until that handle
 * next evicts, or calls fsc_stats, fsc_verify or fsc_close, or has made 256
 * gets. */
#define FSC_BUDGET_ENTRY_OVERHEAD 64
#define FSC_BUDGET_MIN_TABLE 320

/* Fills *opts with the defaults above (and opts->size). NULL is a no-op. */
FSC_API void fsc_options_init(fsc_options *opts);

/* Opens (creating it, mode 0700, when missing) the cache in base_dir.
 * opts NULL means defaults. Several handles, in one process or many, may
 * open the same base_dir at once; they share one lock table per process.
 * When no other process has the cache open, temp files left by crashed
 * processes are removed.
 * Returns FSC_OK and *out, or:
 *   FSC_EINVAL  NULL base_dir/out, empty base_dir, base_dir not a directory,
 *               opts->size too small, negative expiration_ms other than -1,
 *               pack_limit above FSC_PACK_LIMIT_MAX;
 *   FSC_EFORMAT base_dir is a non-empty directory that is not an fsc cache,
 *               or a cache of a format version this library does not read;
 *   FSC_EACCES  base_dir cannot be created, read or written;
 *   FSC_EIO / FSC_ENOSPC / FSC_ENOMEM. */
FSC_API int fsc_open(const char *base_dir, const fsc_options *opts, fsc_cache **out);

/* Closes the handle. Locks still held through it stay valid until released.
 * NULL is a no-op. Returns FSC_OK. */
FSC_API int fsc_close(fsc_cache *cache);

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

/* fsc_set_file flag: rename the caller's file into the cache instead of copying. */
#define FSC_MOVE 1u

/* Stores a copy of data[0..len) under the key (replacing any value). data may
 * be NULL when len is 0. A reader sees the whole old or the whole new value,
 * never a mix, even if this process is killed midway. The value is visible to
 * every process when the call returns.
 * Returns FSC_OK, FSC_EINVAL, FSC_ETOOBIG (the value cannot fit in
 * cache_size with its overhead, see FSC_BUDGET), FSC_ENOSPC, FSC_EACCES,
 * FSC_EIO, FSC_ENOMEM. */
FSC_API int fsc_set(fsc_cache *c, const void *key, size_t key_len, const void *data, size_t len);

/* Stores a file as the value, never reading it whole into memory.
 *  - fd >= 0 and no move: copies the file's whole content from fd (from
 *    byte 0 to EOF, by pread, so fd's offset is not changed). fd's current
 *    offset is remembered: the descriptor a later fsc_get hands out starts
 *    there. path may be NULL.
 *  - FSC_MOVE in flags (or file_movable in the options) and path != NULL:
 *    renames path into the cache; fd, if >= 0, only supplies the offset.
 *    path on another filesystem: FSC_EXDEV, and the file stays where it was.
 *    With file_movable set and path NULL, the file is copied from fd.
 *  - fd < 0 and no move: copies from path (offset 0).
 * Returns FSC_OK, FSC_EINVAL (no usable fd or path, bad flags), FSC_EXDEV,
 * FSC_ETOOBIG, FSC_ENOSPC, FSC_EACCES, FSC_EIO. */
FSC_API int fsc_set_file(fsc_cache *c, const void *key, size_t key_len, int fd, const char *path,
                         unsigned flags);

typedef struct fsc_entry fsc_entry;

/* Looks the key up. FSC_OK with *out (free it with fsc_entry_free), or
 * FSC_MISS (absent, expired, invalidated) with *out untouched. An entry stays
 * readable after its value is overwritten, deleted or evicted. Never waits
 * for a writer (see "Threads and processes" above).
 * FSC_ECORRUPT: the stored entry failed validation and was removed (a later
 * get is a miss). Also FSC_EINVAL, FSC_EIO, FSC_ENOMEM. Counts as a use for
 * the LRU order. */
FSC_API int fsc_get(fsc_cache *c, const void *key, size_t key_len, fsc_entry **out);

/* Removes the key's value. FSC_OK if one was there, FSC_MISS if not. */
FSC_API int fsc_delete(fsc_cache *c, const void *key, size_t key_len);

/* The value's size in bytes (the whole stored content). 0 for NULL. */
FSC_API uint64_t fsc_entry_size(const fsc_entry *e);

/* The remembered offset (see fsc_set_file): where fsc_entry_fd and
 * fsc_entry_read start, counted from the start of the value. 0 for values
 * stored with fsc_set. */
FSC_API uint64_t fsc_entry_offset(const fsc_entry *e);

/* A read-only descriptor owned by e (do not close it), positioned at the
 * remembered offset. For a value stored with fsc_set_file the descriptor's
 * file is exactly the value (seek to 0 for its start); for a value stored
 * with fsc_set the value is the last fsc_entry_size() bytes of the file.
 * -1 for NULL. */
FSC_API int fsc_entry_fd(const fsc_entry *e);

/* Reads the value sequentially from the remembered offset, with a cursor of
 * the entry's own (independent of the descriptor's offset). *got is the
 * number of bytes read, 0 at the end. FSC_OK, FSC_EINVAL, FSC_EIO, or
 * FSC_ECORRUPT when the value's checksum fails at its end. */
FSC_API int fsc_entry_read(fsc_entry *e, void *buf, size_t cap, size_t *got);

/* The whole value in memory (loaded on the first call, owned by e, valid
 * until fsc_entry_free). A 0-byte value gives a valid non-NULL pointer.
 * NULL on failure, with fsc_errmsg() saying why. */
FSC_API const void *fsc_entry_data(fsc_entry *e);

/* Unix time in milliseconds when the value was stored. 0 for NULL. */
FSC_API int64_t fsc_entry_created_ms(const fsc_entry *e);

/* Releases the entry and its descriptor. NULL is a no-op. */
FSC_API void fsc_entry_free(fsc_entry *e);

/* ------------------------------------------------------------------ */
/* Locks (the dogpile lock)                                            */
/* ------------------------------------------------------------------ */

typedef struct fsc_lock_handle fsc_lock_handle; /* one hold of one key's lock */

/* Takes the key's lock. timeout_ms: -1 waits as long as it takes, 0 only
 * tries (FSC_EBUSY), > 0 waits at most that long (FSC_ETIMEDOUT).
 * One lock per key, shared by every thread of every process that opened the
 * same base_dir (distributed_lock = 0: every thread of this process).
 * Re-entrant for the thread that holds it: each fsc_lock gives one hold that
 * needs its own fsc_unlock, from any thread; the key stays locked until every
 * hold is released. FSC_EDEADLK when the kernel detects a deadlock between
 * processes (this call then holds nothing). */
FSC_API int fsc_lock(fsc_cache *c, const void *key, size_t key_len, int64_t timeout_ms,
                     fsc_lock_handle **out);

/* Releases one hold and frees l. FSC_EINVAL for NULL. */
FSC_API int fsc_unlock(fsc_lock_handle *l);

/* The process id holding the key's lock in another process, as F_GETLK
 * reports it: FSC_OK with *pid (0 when nobody else holds it). */
FSC_API int fsc_lock_holder(fsc_cache *c, const void *key, size_t key_len, int64_t *pid);

/* ------------------------------------------------------------------ */
/* Dogpile: get or create                                              */
/* ------------------------------------------------------------------ */

/* Stores the key's new value with fsc_set or fsc_set_file (the key's lock is
 * held and re-entrant, so it may) and returns 0; non-zero means failure. */
typedef int (*fsc_creator)(void *ctx, fsc_cache *c, const void *key, size_t key_len);

/* Returns the key's value, calling create at most once across every process
 * when it is missing or expired:
 *  - fresh value (younger than expiration_ms; -1 = the cache's option):
 *    FSC_OK at once, no lock taken;
 *  - no value: the key's lock is taken, the cache checked again, create
 *    called once, FSC_OK with the new value; concurrent callers wait and get
 *    that same value;
 *  - expired value while another caller regenerates: FSC_STALE with the old
 *    value at once; expired and nobody regenerating: this caller regenerates;
 *  - create fails: FSC_ECREATOR, nothing stored, the lock released (a waiting
 *    caller then becomes the creator).
 * *out is set for FSC_OK and FSC_STALE. */
FSC_API int fsc_get_or_create(fsc_cache *c, const void *key, size_t key_len, int64_t expiration_ms,
                              fsc_creator create, void *ctx, fsc_entry **out);

/* ------------------------------------------------------------------ */
/* Housekeeping                                                        */
/* ------------------------------------------------------------------ */

/* Every value stored before now becomes a miss (hard != 0) or stale (hard ==
 * 0: fsc_get misses, fsc_get_or_create serves it as FSC_STALE while one
 * caller regenerates), for every process, from the moment this returns.
 * Values stored afterwards are fresh. Returns FSC_OK, FSC_EINVAL, FSC_EIO. */
FSC_API int fsc_invalidate(fsc_cache *c, int hard);

/* Drops expired (and hard-invalidated) values, counted as expirations, then
 * evicts least recently used ones down to cache_size and max_entries. A value
 * that cannot be removed (permissions) is skipped, never retried in a loop.
 * Sets already keep the budget; prune is for expiry, which reads do not
 * enforce on disk. Its cost grows with the number of values.
 * Returns FSC_OK, FSC_EINVAL, FSC_EIO. */
FSC_API int fsc_prune(fsc_cache *c);

/* Removes every value (locks, statistics and the invalidation times are kept).
 * Returns FSC_OK, FSC_EINVAL, FSC_EACCES, FSC_EIO. */
FSC_API int fsc_clear(fsc_cache *c);

typedef struct fsc_statistics {
    size_t size; /* sizeof(fsc_statistics), set by the caller */
    uint64_t entries, bytes, cache_size;
    uint64_t hits, misses, sets, evictions, expirations; /* since creation, all processes */
} fsc_statistics;

/* Fills *out (out->size must be set to sizeof(fsc_statistics) first).
 * entries and bytes are what the cache holds now (bytes as FSC_BUDGET counts
 * them); cache_size is this handle's option; hits, misses, sets, evictions
 * and expirations count since the cache was created, by every process. Each
 * handle writes its lookups' counts in batches (and at fsc_stats and
 * fsc_close), so another live process's latest lookups may not show yet.
 * Returns FSC_OK, FSC_EINVAL, FSC_ECORRUPT (the counters' record is damaged:
 * fsc_verify with repair rewrites it), FSC_EIO. */
FSC_API int fsc_stats(fsc_cache *c, fsc_statistics *out);

typedef struct fsc_verify_report {
    size_t size; /* sizeof(fsc_verify_report), set by the caller */
    uint64_t checked, problems, repaired;
} fsc_verify_report;

/* Checks every file of the cache against its metadata: damaged entries,
 * payload files no entry names, entries without metadata and metadata without
 * entries, wrong per-shard totals, and (when no other process has the cache
 * open) leftover temp files and reservations. With repair != 0 it removes
 * what is damaged or orphaned and rebuilds the metadata from the files, so
 * that the accounting is exact; while other processes write (or are killed
 * midway), it keeps every value a set committed. checked counts the files looked at, problems
 * what was wrong, repaired what was fixed. out may be NULL; else out->size
 * must be set first. Its cost grows with the number of values.
 * Returns FSC_OK (whatever it found), FSC_EINVAL, FSC_EIO. */
FSC_API int fsc_verify(fsc_cache *c, int repair, fsc_verify_report *out);

/* Called once per stored value by fsc_foreach; return non-zero to stop. */
typedef int (*fsc_visitor)(void *ctx, const void *key, size_t key_len, uint64_t size,
                           int64_t created_ms);

/* Visits every stored value (order unspecified; values set or removed during
 * the walk may or may not be seen). FSC_OK, or the visitor's non-zero return
 * value stops the walk and is returned. */
FSC_API int fsc_foreach(fsc_cache *c, fsc_visitor visit, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* FSC_H */
