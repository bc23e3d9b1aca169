#include "cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "clock.h"
#include "directory.h"
#include "error.h"
#include "file_ops.h"
#include "ownership.h"

namespace fsc {

namespace {

// Lock waits longer than about 34 years wait as long as it takes.
constexpr int64_t max_timeout_ms = int64_t(1) << 40;

// The key this thread's get_or_create is creating, and whether a set of it
// succeeded meanwhile (tells a creator that stored nothing from a value that
// another caller removed at once) or found the key's lock lost.
struct Creating {
    const KeyHash *hash = nullptr;
    bool stored = false;
    bool lost = false;
};
thread_local Creating creating;

void note_stored(const KeyHash &h) {
    if (creating.hash && creating.hash->bytes == h.bytes)
        creating.stored = true;
}

void note_lost(const KeyHash &h) {
    if (creating.hash && creating.hash->bytes == h.bytes)
        creating.lost = true;
}

// Watches the sets of one key while its creator runs; a creator's own
// get_or_create of another key watches that one meanwhile.
class CreatingScope {
public:
    explicit CreatingScope(const KeyHash &h) : outer_(creating) { creating = Creating{&h, false}; }
    ~CreatingScope() {
        const Creating inner = creating;
        creating = outer_;
        if (inner.stored)
            note_stored(*inner.hash);
    }
    CreatingScope(const CreatingScope &) = delete;
    CreatingScope &operator=(const CreatingScope &) = delete;
    bool stored() const noexcept { return creating.stored; }
    bool lost() const noexcept { return creating.lost; }

private:
    Creating outer_;
};

const char *file_kind(mode_t mode) {
    return S_ISLNK(mode) ? "a symbolic link" : S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO"
         : S_ISSOCK(mode) ? "a socket" : "a device";
}

} // namespace

std::unique_ptr<Cache> Cache::open(const std::string &base_dir, const Options &opts) {
    if (base_dir.empty())
        fail(Status::inval, "base_dir is empty");
    if (opts.expiration_ms < -1)
        fail(Status::inval, "expiration_ms must be -1 (never) or >= 0");
    if (opts.pack_limit > pack_limit_max)
        fail(Status::inval, "pack_limit must be at most " + std::to_string(pack_limit_max) + " bytes");
    std::string path = base_dir;
    while (path.size() > 1 && path.back() == '/')
        path.pop_back();

    check_membership(opts.sharing);
    make_dirs(path, opts.sharing);
    Fd base(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!base) {
        if (errno == ENOTDIR)
            fail(Status::inval, "base_dir '" + path + "' is not a directory");
        throw_errno(errno, "open '" + path + "'");
    }
    secure(base.get(), nullptr, opts.sharing, path);
    if (faccessat(base.get(), ".", R_OK | W_OK | X_OK, AT_EACCESS) != 0)
        throw_errno(errno, "base_dir '" + path + "' is not readable and writable");
    const bool network_fs = is_network_fs(base.get());
    const bool network = opts.network == NetworkMode::on || (opts.network == NetworkMode::automatic && network_fs);
    if (network && network_fs) {
        const std::string caching = content_caching_translator(base.get());
        if (!caching.empty())
            fail(Status::notsup,
                 "base_dir '" + path + "' is on a GlusterFS mount whose client serves file contents from its own cache (" +
                     caching + "), so reads there miss other hosts' writes for up to a second: network mode cannot " +
                     "work on it. Turn it off on the volume (gluster volume set VOLUME performance.quick-read off), " +
                     "or open with network_mode off if only this host uses the cache (docs/MULTIHOST.md)");
    }
    init_format(base.get(), path);
    make_subdir(base.get(), path, "tmp");
    make_subdir(base.get(), path, "shards");
    // base_dir is trusted now: nobody else can change what it holds after
    // these checks. The lock file is checked before it is opened (a foreign
    // one could be held to freeze every set) and again once open.
    for (const char *name : {"FSC-FORMAT", "tmp", "shards", "lock"})
        secure(base.get(), name, opts.sharing, path + "/" + name);
    auto locks = LockTable::acquire(base.get(), "lock", path + "/lock", network);
    secure(locks->fd(), nullptr, opts.sharing, path + "/lock");
    return std::unique_ptr<Cache>(new Cache(std::move(base), path, opts, std::move(locks), network_fs, network));
}

Cache::Cache(Fd base, std::string base_path, const Options &opts, std::shared_ptr<LockTable> locks, bool network_fs,
             bool network_mode)
    : base_(std::move(base)), base_path_(std::move(base_path)), opts_(opts), network_fs_(network_fs),
      network_mode_(network_mode), locks_(std::move(locks)),
      records_(locks_->fd(), base_path_ + "/lock", locks_->direct_fd()) {
    ledger_ = std::make_unique<Ledger>(locks_, base_path_ + "/lock");
    store_ = std::make_unique<Store>(base_.get(), base_path_, locks_, *ledger_, opts_.durable, opts_.pack_limit,
                                     opts_.verify_payloads, opts_.sharing, network_mode_ && network_fs_);
    budget_ = std::make_unique<Budget>(Limits{opts_.cache_size, opts_.max_entries, opts_.expiration_ms}, locks_,
                                       *ledger_, *store_, records_);
    ledger_->on_damaged_line([this](unsigned shard) { store_->rebuild_line(shard); });
    // Alone with the cache: finish what crashed processes left half-done and
    // drop their reservations (nobody else can have a set in flight).
    locks_->register_open([this] {
        store_->recover();
        budget_->forget_reservations();
    });
    // A set that died between its commit and the eviction that follows it
    // (its shard's table or pack grew past what it reserved) left the cache
    // over budget: finish that eviction.
    // Best effort: the next set evicts too.
    try {
        budget_->evict_if_over();
    } catch (const Error &) {
    }
    fork_locks_ = std::make_unique<ForkLocks>(
        [this] {
            // In this order: the store is called under the budget's mutexes.
            budget_->lock_for_fork();
            store_->lock_for_fork();
        },
        [this] {
            store_->unlock_after_fork();
            budget_->unlock_after_fork();
        });
}

Cache::~Cache() {
    fork_locks_.reset();
    try {
        // A writer may be stopped holding the record lock.
        budget_->close();
    } catch (...) {
        // Lost counts of one handle are not worth failing a close.
    }
    locks_->unregister_open();
}

template <typename F> void Cache::charged(const Key &k, uint64_t charge, F &&write) {
    const Budget::Reservation r = budget_->reserve(charge);
    // A set under the key's lock in network mode checks its lease.
    std::optional<uint64_t> mark = network_mode_ ? locks_->lease_mark(k.hash.word()) : std::nullopt;
    std::optional<Lease> lease;
    if (mark)
        lease.emplace(Lease{*locks_, *mark});
    Change c;
    try {
        c = write(lease ? &*lease : nullptr);
    } catch (const Error &err) {
        budget_->settle_failed(r);
        if (err.status() == Status::lost)
            note_lost(k.hash);
        throw;
    } catch (...) {
        budget_->settle_failed(r);
        throw;
    }
    budget_->settle(r, c);
    if (lease)
        locks_->set_lease_mark(k.hash.word(), lease->mark);
    note_stored(k.hash);
}

void Cache::note_lease(const Key &k) {
    if (network_mode_ && opts_.distributed_lock && !locks_->lease_mark(k.hash.word()))
        locks_->set_lease_mark(k.hash.word(), store_->value_mark(k));
}

void Cache::set(const void *key, size_t key_len, const void *data, size_t len) {
    check_size(key_len, len, false);
    const Key k = make_key(key, key_len);
    charged(k, Store::charge(key_len, len), [&](Lease *lease) { return store_->put_bytes(k, data, len, now_us(), lease); });
}

void Cache::set_file(const void *key, size_t key_len, int fd, const char *path, bool move) {
    move = (move || opts_.file_movable) && path != nullptr;
    if (!move && fd < 0 && path == nullptr)
        fail(Status::inval, "fsc_set_file needs a descriptor or a path");
    uint64_t offset = 0;
    if (fd >= 0) {
        off_t pos = lseek(fd, 0, SEEK_CUR);
        if (pos < 0)
            fail(Status::inval, "the descriptor given to fsc_set_file is not a seekable file");
        offset = uint64_t(pos);
    }
    Fd opened;
    int src = fd;
    struct stat st;
    if (move) {
        // lstat: a symbolic link moved in would be the value in its target's place.
        if (lstat(path, &st) != 0)
            throw_errno(errno, std::string("stat '") + path + "'");
        if (opts_.sharing.shared()) {
            // Moved in, it must be the group's to read like what the cache writes.
            Fd moved(::open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
            if (!moved)
                throw_errno(errno, std::string("open '") + path + "'");
            secure(moved.get(), nullptr, opts_.sharing, path);
        }
    } else {
        if (src < 0) {
            // O_NONBLOCK: opening a FIFO for reading would wait for a writer;
            // O_NOCTTY: a terminal must not become the controlling one.
            opened.reset(::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
            if (!opened)
                throw_errno(errno, std::string("open '") + path + "'");
            src = opened.get();
        }
        if (fstat(src, &st) != 0)
            throw_errno(errno, "fstat of the file given to fsc_set_file");
    }
    if (!S_ISREG(st.st_mode))
        fail(Status::inval, std::string("fsc_set_file stores regular files only; ") +
                                (move || fd < 0 ? "'" + std::string(path) + "'" : std::string("the descriptor")) + " is " +
                                file_kind(st.st_mode));
    check_size(key_len, uint64_t(st.st_size), true);
    const Key k = make_key(key, key_len);
    charged(k, Store::charge(key_len, uint64_t(st.st_size)), [&](Lease *lease) {
        return store_->put_file(k, src, path, move, uint64_t(st.st_size), offset, now_us(), lease);
    });
}

bool Cache::load_shared(Invalidation *inv, bool *horizon_ok) const {
    unsigned char b[lock_file::invalidation_size + lock_file::horizon_size];
    lock_file::Invalidation times;
    bool record_ok = false, hint_ok = false;
    records_.read(lock_file::invalidation_at, b, sizeof b, [&](const unsigned char *read) {
        record_ok = lock_file::decode_invalidation(read, &times);
        hint_ok = lock_file::decode_horizon(read + (lock_file::horizon_at - lock_file::invalidation_at),
                                            &inv->lru_horizon_us);
        // A damaged horizon reads as 0 (a hint): read again for it only when asked.
        return record_ok && (hint_ok || !horizon_ok);
    });
    inv->hard_us = times.hard_us;
    inv->soft_us = times.soft_us;
    if (horizon_ok)
        *horizon_ok = hint_ok;
    return record_ok;
}

Cache::Invalidation Cache::read_invalidation() const {
    Invalidation inv;
    return load_shared(&inv) ? inv : reset_invalidation();
}

Cache::Invalidation Cache::reset_invalidation() const {
    LockTable::ShardGuard g(*locks_, lock_file::record_lock);
    Invalidation inv;
    if (load_shared(&inv))
        return inv; // rewritten meanwhile
    // What was invalidated when is lost: everything stored so far counts as
    // hard-invalidated, so that no value invalidated before comes back.
    inv.hard_us = inv.soft_us = now_us();
    write_invalidation(inv);
    return inv;
}

void Cache::write_invalidation(const Invalidation &inv) const {
    unsigned char b[lock_file::invalidation_size];
    lock_file::encode_invalidation(lock_file::Invalidation{inv.hard_us, inv.soft_us}, b);
    records_.write(lock_file::invalidation_at, b, sizeof b);
    if (opts_.durable)
        records_.sync();
}

void Cache::invalidate(bool hard) {
    LockTable::ShardGuard g(*locks_, lock_file::record_lock);
    Invalidation inv;
    const int64_t now = now_us();
    if (!load_shared(&inv))
        inv.hard_us = inv.soft_us = now; // damaged: as reset_invalidation() would
    int64_t &at = hard ? inv.hard_us : inv.soft_us;
    at = std::max(at, now);
    write_invalidation(inv);
}

std::unique_ptr<Entry> Cache::lookup(const Key &key, int64_t expiration_ms, bool *fresh) {
    Store::Found found;
    // Only network mode finds a file another host replaced or created (fs_kind.h).
    retry_for_names(true, [&](bool last) {
        try {
            found = store_->find(key);
            return true;
        } catch (const StaleFileError &) {
            if (last)
                throw;
            return false;
        }
    });
    if (found.damage)
        store_->repair(*found.damage); // removed; reported as Error(corrupt)
    std::unique_ptr<Entry> e = std::move(found.entry);
    if (!e)
        return nullptr;
    // The invalidation record, and the LRU horizon with it, matter only to a
    // value found: a miss skips their read. Read after the value, it still
    // orders the two as any concurrent get and invalidate may be ordered.
    const Invalidation inv = read_invalidation();
    store_->stamp_use(found.use, inv.lru_horizon_us);
    if (e->created_us() <= inv.hard_us)
        return nullptr;
    *fresh = !e->expired(expiration_ms, now_us()) && e->created_us() > inv.soft_us;
    return e;
}

std::unique_ptr<Entry> Cache::get(const void *key, size_t key_len) {
    bool fresh = false;
    auto e = lookup(make_key(key, key_len), opts_.expiration_ms, &fresh);
    budget_->count_lookup(e && fresh);
    return fresh ? std::move(e) : nullptr;
}

bool Cache::remove(const void *key, size_t key_len) {
    bool removed;
    store_->remove(make_key(key, key_len), &removed);
    return removed;
}

void Cache::clear() {
    store_->clear();
    // A time from a clock far ahead would otherwise hide every value stored
    // from now on until that clock's time comes (docs/MULTIHOST.md, "Clocks").
    LockTable::ShardGuard g(*locks_, lock_file::record_lock);
    write_invalidation(Invalidation{});
}

std::unique_ptr<KeyHold> Cache::lock(const void *key, size_t key_len, int64_t timeout_ms) {
    // Longer than any process lives, and past it deadlines on the clocks wrap: forever.
    if (timeout_ms > max_timeout_ms)
        timeout_ms = -1;
    const Key k = make_key(key, key_len);
    auto hold = LockTable::lock_key(locks_, k.hash.word(), timeout_ms, opts_.distributed_lock);
    note_lease(k);
    return hold;
}

pid_t Cache::lock_holder(const void *key, size_t key_len) {
    return locks_->key_holder(make_key(key, key_len).hash.word());
}

Status Cache::get_or_create(const void *key, size_t key_len, int64_t expiration_ms,
                            const std::function<bool()> &create, std::unique_ptr<Entry> *out) {
    if (expiration_ms < -1)
        fail(Status::inval, "expiration_ms must be -1 (the cache's) or >= 0");
    if (expiration_ms == -1)
        expiration_ms = opts_.expiration_ms;
    const Key k = make_key(key, key_len);
    bool fresh = false;
    auto e = lookup(k, expiration_ms, &fresh);
    budget_->count_lookup(e && fresh);
    if (e && fresh) {
        *out = std::move(e);
        return Status::ok;
    }
    std::unique_ptr<KeyHold> hold;
    if (e) {
        // Stale: regenerate only if nobody else is; else serve the old value.
        try {
            hold = LockTable::lock_key(locks_, k.hash.word(), 0, opts_.distributed_lock);
        } catch (const Error &err) {
            if (err.status() != Status::busy)
                throw;
            *out = std::move(e);
            return Status::stale;
        }
    } else {
        hold = LockTable::lock_key(locks_, k.hash.word(), -1, opts_.distributed_lock);
    }
    note_lease(k);
    // Someone may have regenerated it while we waited for the lock.
    e = lookup(k, expiration_ms, &fresh);
    if (e && fresh) {
        *out = std::move(e);
        return Status::ok;
    }
    CreatingScope scope(k.hash);
    const bool created = create();
    if (scope.lost())
        fail(Status::lost, "the creator's set found the key's lock lost (another host was given it); "
                           "the creator's value was not stored");
    if (!created)
        fail(Status::creator, "the creator callback failed; nothing was stored");
    e = lookup(k, -1, &fresh);
    if (!e && scope.stored())
        fail(Status::creator, "the creator stored a value for the key, but it was gone when read back: another "
                              "caller deleted, invalidated or evicted it at once");
    if (!e)
        fail(Status::creator, "the creator callback returned success but stored no value for the key");
    *out = std::move(e);
    return Status::ok;
}

void Cache::foreach(const Visitor &visit) {
    const Invalidation inv = read_invalidation();
    store_->foreach([&](const std::string &key, const EntryHeader &h) {
        if (h.created_us <= inv.hard_us)
            return true;
        return visit(key, h.value_size, h.created_us);
    });
}

void Cache::prune() {
    budget_->drop_expired(read_invalidation().hard_us);
    budget_->evict_until(0, 0);
}

Totals Cache::stats() {
    budget_->flush_pending();
    return ledger_->read();
}

VerifyCounts Cache::verify(bool repair) {
    budget_->flush_pending(); // this handle's own reservations are not leftovers
    const bool alone = locks_->alone();
    VerifyCounts n = store_->verify(repair, alone);
    // The invalidation record and the LRU horizon carry checksums of their own.
    Invalidation inv;
    bool horizon_ok;
    if (!load_shared(&inv, &horizon_ok)) {
        n.problems++;
        if (repair) {
            reset_invalidation();
            n.repaired++;
        }
    }
    if (!horizon_ok) {
        n.problems++;
        if (repair) {
            budget_->clear_horizon(); // no horizon: readers stamp by their values' age
            n.repaired++;
        }
    }
    budget_->verify(repair, alone, &n);
    return n;
}

Key Cache::make_key(const void *key, size_t key_len) const { return Key{key, key_len, KeyHash::of(key, key_len)}; }

void Cache::check_size(size_t key_len, uint64_t size, bool from_file) const {
    // The value and what it needs on disk beside it must fit.
    // Compared without the sum, which a size near 2^64 would wrap.
    const uint64_t overhead = store_->overhead(key_len, size, from_file);
    const uint64_t cap = opts_.cache_size;
    if (cap != 0 && (overhead > cap || size > cap - overhead))
        fail(Status::toobig, "a value of " + std::to_string(size) + " bytes needs " + std::to_string(overhead) +
                                 " bytes on disk beside it, and the two are more than cache_size (" +
                                 std::to_string(cap) + " bytes)");
}

} // namespace fsc
