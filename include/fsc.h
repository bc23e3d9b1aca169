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
 *  - Files: fsc opens the files of base_dir without following symbolic links
 *    and without blocking (O_NOFOLLOW | O_NONBLOCK), and reads only regular
 *    ones: a FIFO planted in the cache never makes a call wait. A file it
 *    writes in place (a shard's meta and pack files, the lock file) must have
 *    no other link, so that no write goes through to a file elsewhere.
 *  - One cache directory is for the processes of ONE host, unless it is on
 *    a network filesystem in network mode (FSC_NETWORK): docs/MULTIHOST.md
 *    says what is tested across hosts (GlusterFS) and what is not.
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

/* The version as one number, MAJOR * 10000 + MINOR * 100 + PATCH. */
#define FSC_VERSION_NUMBER (FSC_VERSION_MAJOR * 10000 + FSC_VERSION_MINOR * 100 + FSC_VERSION_PATCH)

/* The library's own version as "MAJOR.MINOR.PATCH": compare it with the
 * macros above to detect a header/library mismatch. Never NULL. */
FSC_API const char *fsc_version(void);

/* The library's own version as a number, as FSC_VERSION_NUMBER computes it:
 * fsc_version_number() >= 100 means "0.1.0 or later". */
FSC_API int fsc_version_number(void);

/* ------------------------------------------------------------------ */
/* Status codes (values are fixed)                                     */
/* ------------------------------------------------------------------ */

enum fsc_status {
    FSC_OK = 0,         /* success */
    FSC_MISS = 1,       /* no fresh value for the key (absent, expired, invalidated, deleted) */
    FSC_STALE = 2,      /* fsc_get_or_create returned an expired value while another caller regenerates */
    FSC_STOPPED = 3,    /* fsc_foreach: the visitor returned non-zero and the walk stopped */
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
    FSC_ECREATOR = -13, /* the creator callback of fsc_get_or_create failed, or its value was gone at once */
    FSC_ENOTSUP = -14,  /* the operation is not implemented by this build of the library, or (fsc_open in
                           network mode) the filesystem's client cannot serve it: see FSC_NETWORK */
    FSC_ELOST = -15     /* the connection to a network filesystem, or a key's lock held through it,
                           was lost (see FSC_NETWORK): a set made under that lock did not commit */
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
    int64_t expiration_ms; /* default -1 = never; older values are misses and get pruned;
                              above INT64_MAX / 1000 (292,000 years): never */
    int distributed_lock; /* default 1: fsc_lock excludes other processes; 0: threads of this process only */
    int file_movable;     /* default 0: fsc_set_file copies; 1: it renames the caller's file in */
    int durable;          /* default 0; 1: data and directory are fsynced before a set returns */
    uint64_t pack_limit;  /* default FSC_PACK_LIMIT_DEFAULT; see FSC_PACKING; at most FSC_PACK_LIMIT_MAX */
    int64_t shared_group; /* default -1: the cache is its owner's alone; a gid: shared by that group, see FSC_OWNERSHIP */
    int verify_payloads;  /* default 0; 1: fsc_get reads a file value whole and checks it (FSC_CHECKS) */
    int network_mode;     /* default FSC_NETWORK_AUTO; FSC_NETWORK_ON / FSC_NETWORK_OFF: see FSC_NETWORK */
} fsc_options;

/* network_mode values (FSC_NETWORK) */
#define FSC_NETWORK_AUTO 0 /* on when fsc_open finds base_dir on a network or FUSE filesystem */
#define FSC_NETWORK_ON 1
#define FSC_NETWORK_OFF 2

/* FSC_OWNERSHIP: whom fsc_open trusts with base_dir. A cache directory that
 * another user could have planted or may change could serve that user's
 * values, hide or freeze ours; so fsc_open refuses (FSC_EACCES, the message
 * naming the path, its owner or mode) a base_dir, or its FSC-FORMAT, lock,
 * tmp or shards, that:
 *  - belongs to a user other than the caller (effective uid) and root, or
 *  - is writable by others, or by its group (a directory made by hand under
 *    umask 002 is: chmod g-w it, or let fsc_open create it).
 * Root is no exception: root opening another user's cache is refused too
 * (run as that user, or share the cache with a group). Parent directories
 * of base_dir are not checked.
 * shared_group = a gid (the caller must be a member, or root) shares the
 * cache with that group: entries may also belong to other users when their
 * group is that gid, group write is allowed for that group only, and what
 * the caller owns among the entries above is given that group and mode
 * 02770 (directories) or 0660 (files). Everything the handle creates then
 * gets those modes whatever the umask (directories setgid, so the group is
 * inherited), files moved in with FSC_MOVE included. Every handle on a
 * shared cache, in every process, must pass the same shared_group; share a
 * cache from its first open (fsc does not convert the inner files of a
 * cache first used privately). */

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
 * (6,400 bytes), the directories themselves, and for a moment the temp
 * files of sets in flight (each already charged to the budget). A value whose
 * cost (value + 64 + key length + 320 bytes for the smallest shard table)
 * exceeds cache_size alone is refused with FSC_ETOOBIG rather than stored and
 * evicted at once (a length whose cost would wrap 64 bits too, before any
 * byte of the data is read). Least recently used values (a get is a use) are evicted
 * first: exactly for caches of up to 1,024 values, by sampling above.
 * A handle that sets reserves budget for its next few sets ahead of them
 * (only where that evicts nothing) and gives back its settled reservations
 * in batches: to other handles the cache looks fuller by at most a 32nd of
 * cache_size (and of max_entries) per handle writing, until that handle
 * next evicts, or calls fsc_stats, fsc_verify or fsc_close, or has made 256
 * gets. */
#define FSC_BUDGET_ENTRY_OVERHEAD 64
#define FSC_BUDGET_MIN_TABLE 320

/* FSC_CHECKS: what is checked where. Every value carries a checksum of its
 * bytes (64-bit, docs/FORMAT.md), computed as it is stored; a value stored
 * from a file is read once for it (a copy piece by piece as it is made, a
 * file moved in before it is).
 *  - Values stored with fsc_set: fsc_get checks values up to 1 MiB (packed
 *    or not) itself; a failure gives FSC_ECORRUPT and removes the value.
 *    Larger ones are checked by fsc_entry_data and by fsc_entry_read when it
 *    reaches the end (FSC_ECORRUPT; the value stays until fsc_verify repairs
 *    or a set replaces it).
 *  - Values stored with fsc_set_file: fsc_get checks the payload file's size.
 *    With verify_payloads it also reads the file whole and checks it
 *    (FSC_ECORRUPT, the value removed), at the cost of one read of the value
 *    per get. Without it, fsc_get returns the entry, and fsc_entry_data, and
 *    fsc_entry_read reaching the end from a remembered offset of 0, give
 *    FSC_ECORRUPT instead of bytes changed since the set (the value stays).
 *  - fsc_entry_fd is never checked: its reader gets the file as it is.
 *  - fsc_verify reads every value whole, payload files included, and checks
 *    every record of the lock file (see fsc_verify).
 * A shard's line of the cache's byte and entry counts in the lock file that
 * fails its checksum is never trusted: it is set again from the shard. */

/* FSC_NETWORK: network mode, for a base_dir that several hosts share over a
 * network filesystem (docs/MULTIHOST.md says which ones are tested, with
 * which options, and what holds). On by default when fsc_open finds
 * base_dir on one (fsc_statistics.network_fs); network_mode forces it on or
 * off. Every handle on one cache, on every host, should use the same mode.
 * In network mode:
 *  - the files fsc updates in place (shard tables, packs, the lock file) are
 *    read past the client's caches (a second, read-only descriptor opened
 *    with O_DIRECT, read in whole 4 KiB blocks; where the filesystem
 *    refuses O_DIRECT, through the usual one), and what a writer changed in
 *    them is flushed to the server (fdatasync) before it releases the lock
 *    that orders the change, so whoever takes that lock next, on any host,
 *    reads it;
 *  - fsc_open never converts its lock on the lock file from write to read
 *    (a server may grant waiting read locks only on a full unlock);
 *  - a lookup that finds a file other than the one the table names (a
 *    client names the file another host replaced, or misses one it created,
 *    until its metadata cache expires: ESTALE, the old value, ENOENT) is
 *    made again from the table, waiting 1 ms, then twice as long each time
 *    up to 250 ms, 14 tries (about 2 s), then fails with FSC_EIO: a get
 *    never returns the old value, but may wait that long for the new one;
 *    a read through an fsc_entry already returned is not retried;
 *  - a set by a thread that holds the key's lock (fsc_lock, or the creator
 *    of fsc_get_or_create) first asks the server whether the lock is still
 *    this process's, and checks that no other value was stored for the key
 *    since the lock was taken: if either fails, nothing is stored and the
 *    set returns FSC_ELOST (the lock was lost, e.g. this host was cut off
 *    long enough for the server to give it to another host);
 *  - a lost connection (ENOTCONN, EBADFD, ESHUTDOWN, ...) is FSC_ELOST,
 *    in any mode;
 *  - fsc_open fails with FSC_ENOTSUP on a GlusterFS mount whose client has
 *    the quick-read translator (volume option performance.quick-read, on by
 *    default): it serves reads of small files from a copy up to a second
 *    old, O_DIRECT ones included, so no read there sees another host's
 *    latest write. Turn the option off, or open with FSC_NETWORK_OFF when
 *    one host alone uses the cache. fsc looks for it in the graph the client
 *    shows under the mount's root (.meta/graphs/active).
 * It costs a round trip to the server for each read of a table or pack and
 * a flush for each change. Off, a cache shared by hosts may serve stale
 * values, run a creator twice and overrun cache_size. */

/* Fills *opts with the defaults above (and opts->size). NULL is a no-op. */
FSC_API void fsc_options_init(fsc_options *opts);

/* Opens (creating it, mode 0700 or, shared, 02770, when missing) the cache
 * in base_dir, after the checks of FSC_OWNERSHIP.
 * opts NULL means defaults. Several handles, in one process or many, may
 * open the same base_dir at once; they share one lock table per process.
 * When no other process has the cache open, temp files left by crashed
 * processes are removed.
 * Returns FSC_OK and *out, or:
 *   FSC_EINVAL  NULL base_dir/out, empty base_dir, base_dir not a directory,
 *               opts->size too small, negative expiration_ms other than -1,
 *               pack_limit above FSC_PACK_LIMIT_MAX, shared_group below -1;
 *   FSC_EFORMAT base_dir is a non-empty directory that is not an fsc cache,
 *               or a cache of a format version this library does not read,
 *               or its FSC-FORMAT or lock is not a regular file (or the lock
 *               file has another link);
 *   FSC_EACCES  base_dir cannot be created, read or written, or fails the
 *               checks of FSC_OWNERSHIP, or the caller is not in shared_group;
 *   FSC_EIO / FSC_ENOSPC / FSC_ENOMEM.
 * A symbolic link or other non-directory planted as a shard directory, or
 * anything but a regular file of one link planted as a shard's meta or pack
 * file, is removed and the shard rebuilt from its files, not an error. */
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
 *    byte 0 to EOF, at explicit offsets, so fd's offset is not changed: a
 *    reflink where the filesystem shares blocks, else copy_file_range, else
 *    pread and write). fd's current
 *    offset is remembered: the descriptor a later fsc_get hands out starts
 *    there. path may be NULL.
 *  - FSC_MOVE in flags (or file_movable in the options) and path != NULL:
 *    renames path into the cache; fd, if >= 0, only supplies the offset.
 *    path on another filesystem: FSC_EXDEV, and the file stays where it was.
 *    With file_movable set and path NULL, the file is copied from fd.
 *  - fd < 0 and no move: copies from path (offset 0).
 *  - Only regular files are stored: a FIFO, socket, device or directory (and,
 *    with a move, a symbolic link, which is never moved in) is FSC_EINVAL at
 *    once, with fsc_errmsg() saying what it is; a FIFO is never waited on.
 *    A copy from path follows a symbolic link to its target.
 * Returns FSC_OK, FSC_EINVAL (no usable fd or path, bad flags, not a regular file), FSC_EXDEV,
 * FSC_ETOOBIG, FSC_ENOSPC, FSC_EACCES, FSC_EIO. */
FSC_API int fsc_set_file(fsc_cache *c, const void *key, size_t key_len, int fd, const char *path,
                         unsigned flags);

typedef struct fsc_entry fsc_entry;

/* Looks the key up. FSC_OK with *out (free it with fsc_entry_free), or
 * FSC_MISS (absent, expired, invalidated) with *out untouched. An entry stays
 * readable after its value is overwritten, deleted or evicted. Never waits
 * for a writer (see "Threads and processes" above).
 * FSC_ECORRUPT: the stored entry failed validation and was removed (a later
 * get is a miss); so is a symbolic link, FIFO or other non-regular file
 * found where the entry or its payload should be; what a get validates:
 * FSC_CHECKS. Also FSC_EINVAL, FSC_EIO, FSC_ENOMEM. Counts as a use for
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
 * remembered offset. Reads through it are not checked (FSC_CHECKS). For a value stored with fsc_set_file the descriptor's
 * file is exactly the value (seek to 0 for its start); for a value stored
 * with fsc_set the value is the last fsc_entry_size() bytes of the file.
 * -1 for NULL. */
FSC_API int fsc_entry_fd(fsc_entry *e);

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
 * tries (FSC_EBUSY), > 0 waits at most that long (FSC_ETIMEDOUT); above
 * 2^40 ms (about 34 years) it waits as long as it takes.
 * One lock per key, shared by every thread of every process that opened the
 * same base_dir (distributed_lock = 0: every thread of this process).
 * Re-entrant for the thread that holds it: each fsc_lock gives one hold that
 * needs its own fsc_unlock, from any thread; the key stays locked until every
 * hold is released. FSC_EDEADLK when the kernel detects a deadlock between
 * processes (this call then holds nothing). */
FSC_API int fsc_lock(fsc_cache *c, const void *key, size_t key_len, int64_t timeout_ms,
                     fsc_lock_handle **out);

/* Releases one hold and frees l. FSC_EINVAL for NULL, and for a handle
 * already released (l is never read then; but once a later fsc_lock has
 * been given the same address, a stale l names that new hold). */
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
 *  - fresh value (younger than expiration_ms; -1 = the cache's option;
 *    above INT64_MAX / 1000: never expires):
 *    FSC_OK at once, no lock taken;
 *  - no value: the key's lock is taken, the cache checked again, create
 *    called once, FSC_OK with the new value; concurrent callers wait and get
 *    that same value;
 *  - expired value while another caller regenerates: FSC_STALE with the old
 *    value at once; expired and nobody regenerating: this caller regenerates;
 *  - create fails: FSC_ECREATOR, nothing stored, the lock released (a waiting
 *    caller then becomes the creator). Also FSC_ECREATOR when create returned
 *    0 but the key had no value after it; fsc_errmsg() tells whether create
 *    stored none, or stored one that another caller deleted, invalidated or
 *    evicted at once.
 * *out is set for FSC_OK and FSC_STALE. */
FSC_API int fsc_get_or_create(fsc_cache *c, const void *key, size_t key_len, int64_t expiration_ms,
                              fsc_creator create, void *ctx, fsc_entry **out);

/* ------------------------------------------------------------------ */
/* Housekeeping                                                        */
/* ------------------------------------------------------------------ */

/* Every value stored before now becomes a miss (hard != 0) or stale (hard ==
 * 0: fsc_get misses, fsc_get_or_create serves it as FSC_STALE while one
 * caller regenerates), for every process, from the moment this returns.
 * Values stored afterwards are fresh. The cache keeps the latest time each
 * kind was asked for: a call from a clock behind an earlier call's changes
 * nothing (docs/MULTIHOST.md, "Clocks"). Returns FSC_OK, FSC_EINVAL, FSC_EIO. */
FSC_API int fsc_invalidate(fsc_cache *c, int hard);

/* Drops expired (and hard-invalidated) values, counted as expirations, then
 * evicts least recently used ones down to cache_size and max_entries. A value
 * that cannot be removed (permissions) is skipped, never retried in a loop.
 * Sets already keep the budget; prune is for expiry, which reads do not
 * enforce on disk. Its cost grows with the number of values.
 * Returns FSC_OK, FSC_EINVAL, FSC_EIO. */
FSC_API int fsc_prune(fsc_cache *c);

/* Removes every value, and then the invalidation times, which nothing left
 * is older than (so a time set by a clock far ahead stops hiding new values).
 * Locks and statistics are kept. Returns FSC_OK, FSC_EINVAL, FSC_EACCES, FSC_EIO. */
FSC_API int fsc_clear(fsc_cache *c);

typedef struct fsc_statistics {
    size_t size; /* sizeof(fsc_statistics), set by the caller */
    uint64_t entries, bytes, cache_size;
    uint64_t hits, misses, sets, evictions, expirations; /* since creation, all processes */
    /* 1 when fsc_open found base_dir on a network or FUSE filesystem (NFS,
     * CIFS/SMB, FUSE (GlusterFS, ceph-fuse, sshfs, ...), CephFS, Lustre,
     * GPFS, AFS, 9p: by statfs(2) f_type), which other hosts may share; 0
     * otherwise. */
    uint32_t network_fs;
    /* 1 when this handle runs in network mode (FSC_NETWORK): network_fs
     * with network_mode FSC_NETWORK_AUTO, or FSC_NETWORK_ON. */
    uint32_t network_mode;
} fsc_statistics;

/* Fills *out (out->size must be set to sizeof(fsc_statistics) first; a
 * struct of an older, smaller version is filled as far as its size reaches,
 * and one of a newer, larger version as far as this version knows).
 * entries and bytes are what the cache holds now (bytes as FSC_BUDGET counts
 * them); cache_size is this handle's option; hits, misses, sets, evictions
 * and expirations count since the cache was created, by every process. Each
 * handle writes its lookups' counts in batches (and at fsc_stats and
 * fsc_close), so another live process's latest lookups may not show yet;
 * a close waits about 100 ms at most for another process holding the
 * counters' lock (a stopped writer, say), then drops its handle's lookup
 * counts; budget room its handle's sets reserved ahead is given back even
 * then, so a close after sets waits for that lock as long as it is held.
 * Returns FSC_OK, FSC_EINVAL, FSC_ECORRUPT (the counters' record is damaged:
 * fsc_verify with repair rewrites it), FSC_EIO. */
FSC_API int fsc_stats(fsc_cache *c, fsc_statistics *out);

typedef struct fsc_verify_report {
    size_t size; /* sizeof(fsc_verify_report), set by the caller */
    uint64_t checked, problems, repaired;
} fsc_verify_report;

/* Checks every file of the cache against its metadata: damaged entries,
 * payload files that no entry names or that fail their value's checksum (each
 * read whole), entries without metadata and metadata without entries, wrong or
 * damaged per-shard totals in the lock file (of every shard, used or not), a
 * damaged invalidation record or LRU horizon, and (when no other process has
 * the cache open) a damaged counters record, leftover temp files and
 * reservations. A damaged invalidation record is repaired by invalidating
 * (hard) every value stored before; a damaged per-shard total is set again
 * from its shard (any reader of the totals does that too, so a later call may
 * no longer find it). With repair != 0 it removes
 * what is damaged or orphaned and rebuilds the metadata from the files, so
 * that the accounting is exact; while other processes write (or are killed
 * midway), it keeps every value a set committed. checked counts the files looked at, problems
 * what was wrong, repaired what was fixed. out may be NULL; else out->size
 * must be set first (a smaller or larger struct is filled as fsc_stats fills
 * one). Its cost grows with the number of values.
 * Returns FSC_OK (whatever it found), FSC_EINVAL, FSC_EIO. */
FSC_API int fsc_verify(fsc_cache *c, int repair, fsc_verify_report *out);

/* Called once per stored value by fsc_foreach; return non-zero to stop. */
typedef int (*fsc_visitor)(void *ctx, const void *key, size_t key_len, uint64_t size,
                           int64_t created_ms);

/* Visits every stored value (order unspecified; values set or removed during
 * the walk may or may not be seen). Returns FSC_OK when every value was
 * visited, FSC_STOPPED when the visitor returned non-zero (whatever value it
 * returned), FSC_EINVAL, FSC_EIO. */
FSC_API int fsc_foreach(fsc_cache *c, fsc_visitor visit, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* FSC_H */
