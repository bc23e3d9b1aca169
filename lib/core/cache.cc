#include "cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "clock.h"
#include "error.h"
#include "file_ops.h"

namespace fsc {

namespace {

const char format_name[] = "FSC-FORMAT";
const char format_text[] = "fsc-cache-format 1\n";
const char marker_prefix[] = ".FSC-FORMAT."; // a marker being written by an opener

// Creates dir and its missing parents with mode 0700.
void make_dirs(const std::string &dir) {
    for (size_t pos = 1; pos <= dir.size(); pos++) {
        if (pos != dir.size() && dir[pos] != '/')
            continue;
        std::string prefix = dir.substr(0, pos);
        if (mkdir(prefix.c_str(), 0700) == 0 || errno == EEXIST)
            continue;
        if (errno == ENOTDIR)
            fail(Status::inval, "cannot create '" + dir + "': '" + prefix + "' is not a directory");
        throw_errno(errno, "mkdir '" + prefix + "'");
    }
}

// Checks the format marker, writing it into an empty directory.
void init_format(int base, const std::string &path) {
    for (int attempt = 0; attempt < 3; attempt++) {
        Fd marker(openat(base, format_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (marker) {
            char buf[64] = {};
            size_t n = pread_full(marker.get(), buf, sizeof buf - 1, 0, "'" + path + "/" + format_name + "'");
            if (n == sizeof format_text - 1 && std::memcmp(buf, format_text, n) == 0)
                return;
            if (std::strncmp(buf, "fsc-cache-format ", 17) == 0)
                fail(Status::format, "'" + path + "' is an fsc cache of format " +
                                         std::string(buf + 17, std::strcspn(buf + 17, "\n")) +
                                         "; this library reads format 1");
            fail(Status::format, "'" + path + "/" + format_name + "' is not an fsc format marker");
        }
        if (errno != ENOENT)
            throw_errno(errno, "open '" + path + "/" + format_name + "'");

        std::string foreign;
        for_each_name(base, path, [&](const char *name) {
            if (std::strncmp(name, marker_prefix, sizeof marker_prefix - 1) != 0 && foreign.empty())
                foreign = name;
        });
        if (!foreign.empty()) {
            // Another opener may have made the cache since we looked for the marker.
            if (faccessat(base, format_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                continue;
            fail(Status::format, "'" + path + "' is not empty (it holds '" + foreign + "') and is not an fsc cache");
        }

        // Write the marker under a private name, then link it into place:
        // of several openers racing here exactly one link wins.
        std::string temp = marker_prefix + std::to_string(getpid()) + "." + hex64(random64());
        Fd fd(openat(base, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd)
            throw_errno(errno, "create '" + path + "/" + temp + "'");
        struct iovec iov = {const_cast<char *>(format_text), sizeof format_text - 1};
        try {
            write_all(fd.get(), &iov, 1, "'" + path + "/" + temp + "'");
        } catch (...) {
            unlinkat(base, temp.c_str(), 0);
            throw;
        }
        int rc = linkat(base, temp.c_str(), base, format_name, 0);
        int err = errno;
        unlinkat(base, temp.c_str(), 0);
        if (rc != 0 && err != EEXIST)
            throw_errno(err, "link '" + path + "/" + format_name + "'");
    }
    fail(Status::format, "'" + path + "' has no readable format marker");
}

void make_subdir(int base, const std::string &path, const char *name) {
    if (mkdirat(base, name, 0700) != 0 && errno != EEXIST)
        throw_errno(errno, "mkdir '" + path + "/" + name + "'");
}

// The shared record at the start of the lock file: the invalidation times.
constexpr size_t record_size = 32;
const char record_magic[4] = {'F', 'S', 'C', 'I'};

} // namespace

std::unique_ptr<Cache> Cache::open(const std::string &base_dir, const Options &opts) {
    if (base_dir.empty())
        fail(Status::inval, "base_dir is empty");
    if (opts.expiration_ms < -1)
        fail(Status::inval, "expiration_ms must be -1 (never) or >= 0");
    std::string path = base_dir;
    while (path.size() > 1 && path.back() == '/')
        path.pop_back();

    make_dirs(path);
    Fd base(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!base) {
        if (errno == ENOTDIR)
            fail(Status::inval, "base_dir '" + path + "' is not a directory");
        throw_errno(errno, "open '" + path + "'");
    }
    if (faccessat(base.get(), ".", R_OK | W_OK | X_OK, AT_EACCESS) != 0)
        throw_errno(errno, "base_dir '" + path + "' is not readable and writable");
    init_format(base.get(), path);
    make_subdir(base.get(), path, "tmp");
    make_subdir(base.get(), path, "shards");
    auto locks = LockTable::acquire(base.get(), "lock", path + "/lock");
    return std::unique_ptr<Cache>(new Cache(std::move(base), path, opts, std::move(locks)));
}

Cache::Cache(Fd base, std::string base_path, const Options &opts, std::shared_ptr<LockTable> locks)
    : base_(std::move(base)), base_path_(std::move(base_path)), opts_(opts), locks_(std::move(locks)) {
    ledger_ = std::make_unique<Ledger>(locks_, base_path_ + "/lock");
    store_ = std::make_unique<Store>(base_.get(), base_path_, locks_, *ledger_, opts_.durable);
    rng_.seed(std::minstd_rand::result_type(random64()));
    // Alone with the cache: finish what crashed processes left half-done and
    // drop their reservations (nobody else can have a set in flight).
    locks_->register_open([this] {
        store_->recover();
        ledger_->update([](Totals &t) { t.reserved_bytes = t.reserved_entries = 0; });
    });
}

Cache::~Cache() {
    try {
        flush_pending();
    } catch (...) {
        // Lost counts of one handle are not worth failing a close.
    }
    locks_->unregister_open();
}

bool Cache::over_budget(const Totals &t, uint64_t extra_bytes, uint64_t extra_entries) const {
    return (opts_.cache_size != 0 && t.bytes + t.reserved_bytes + extra_bytes > opts_.cache_size) ||
           (opts_.max_entries != 0 && t.entries + t.reserved_entries + extra_entries > opts_.max_entries);
}

Cache::Reservation Cache::reserve(uint64_t charge) {
    // Only what a limit applies to is reserved: bytes under cache_size, one
    // entry under max_entries (a replaced key gives its entry back in settle).
    const Reservation r{opts_.cache_size ? charge : 0, opts_.max_entries ? 1u : 0u};
    if (r.bytes == 0 && r.entries == 0)
        return r;
    for (int attempt = 0;; attempt++) {
        if (attempt > 0) {
            reclaim_dead_reservations();
            evict_until(r.bytes, r.entries);
        }
        locks_->begin_reservation();
        bool ok = false;
        try {
            update_ledger([&](Totals &t) {
                // After a few rounds, what is left is other processes' sets in
                // flight: charge it anyway rather than wait for them.
                if (attempt >= 16 || !over_budget(t, r.bytes, r.entries)) {
                    t.reserved_bytes += r.bytes;
                    t.reserved_entries += r.entries;
                    ok = true;
                }
            });
        } catch (...) {
            locks_->end_reservation();
            throw;
        }
        if (ok)
            return r;
        locks_->end_reservation();
    }
}

void Cache::reclaim_dead_reservations() {
    // With nobody's reservation open, any left in the ledger belong to
    // processes that died between reserving and settling.
    const Totals now = ledger_->read();
    if (now.reserved_bytes == 0 && now.reserved_entries == 0)
        return;
    locks_->when_no_reservations([&] {
        ledger_->update([](Totals &t) { t.reserved_bytes = t.reserved_entries = 0; });
    });
}

void Cache::settle(const Reservation &r, const Change &c) {
    // Written at once, never deferred: a process killed with changes not yet
    // written would leave the shared totals wrong for every other process.
    const Totals now = update_ledger([&](Totals &t) {
        add_clamped(t.reserved_bytes, -int64_t(r.bytes));
        add_clamped(t.reserved_entries, -int64_t(r.entries));
        t.sets++;
    });
    if (r.bytes || r.entries)
        locks_->end_reservation();
    if (over_budget(now, 0, 0))
        evict_until(0, 0);
}

void Cache::evict_until(uint64_t extra_bytes, uint64_t extra_entries) {
    // Small caches are scanned whole (exact LRU); large ones sampled (near LRU).
    constexpr uint64_t exhaustive_limit = 1024;
    for (int round = 0; round < 64; round++) {
        Totals t = ledger_->read();
        if (!over_budget(t, extra_bytes, extra_entries))
            return;
        const bool exhaustive = t.entries <= exhaustive_limit;
        std::vector<Candidate> cands;
        {
            std::lock_guard<std::mutex> g(rng_mu_);
            store_->candidates(exhaustive, rng_, &cands);
        }
        if (cands.empty())
            return;
        const int64_t now = now_us();
        auto age_key = [&](const Candidate &c) {
            bool expired = opts_.expiration_ms >= 0 && now - c.slot.created_us >= opts_.expiration_ms * 1000;
            return expired ? INT64_MIN : c.slot.last_use_us;
        };
        std::sort(cands.begin(), cands.end(),
                  [&](const Candidate &a, const Candidate &b) { return age_key(a) < age_key(b); });
        const uint64_t want_bytes = t.bytes + t.reserved_bytes + extra_bytes;
        const uint64_t want_entries = t.entries + t.reserved_entries + extra_entries;
        uint64_t need_bytes = opts_.cache_size ? want_bytes - std::min(want_bytes, opts_.cache_size) : 0;
        uint64_t need_entries = opts_.max_entries ? want_entries - std::min(want_entries, opts_.max_entries) : 0;
        Change freed;
        uint64_t evicted = 0;
        for (const Candidate &c : cands) {
            bool removed;
            Change d = store_->evict(c, &removed);
            if (!removed)
                continue;
            freed += d;
            evicted++;
            need_bytes -= std::min<uint64_t>(need_bytes, uint64_t(-d.bytes));
            need_entries -= std::min<uint64_t>(need_entries, 1);
            if ((need_bytes == 0 && need_entries == 0) || !exhaustive)
                break;
        }
        update_ledger([&](Totals &tt) {
            tt.evictions += evicted;
        });
        if (evicted == 0 && exhaustive)
            return; // nothing removable now: never loop on it
    }
}

void Cache::count_lookup(bool hit) {
    (hit ? pending_hits_ : pending_misses_)++;
    if (pending_hits_.load(std::memory_order_relaxed) + pending_misses_.load(std::memory_order_relaxed) >= 256)
        flush_pending();
}

void Cache::flush_pending() {
    if (pending_hits_.load() || pending_misses_.load())
        update_ledger([](Totals &) {});
}

void Cache::prune() {
    const Invalidation inv = read_invalidation();
    const int64_t now = now_us();
    std::vector<Candidate> all;
    {
        std::lock_guard<std::mutex> g(rng_mu_);
        store_->candidates(true, rng_, &all);
    }
    Change freed;
    uint64_t expired = 0;
    for (const Candidate &c : all) {
        bool old = c.slot.created_us <= inv.hard_us ||
                   (opts_.expiration_ms >= 0 && now - c.slot.created_us >= opts_.expiration_ms * 1000);
        if (!old)
            continue;
        bool removed;
        Change d = store_->evict(c, &removed);
        if (removed) {
            freed += d;
            expired++;
        }
    }
    update_ledger([&](Totals &t) {
        t.expirations += expired;
    });
    evict_until(0, 0);
}

Totals Cache::stats() {
    flush_pending();
    return ledger_->read();
}

VerifyCounts Cache::verify(bool repair) {
    const bool alone = locks_->alone();
    VerifyCounts n = store_->verify(repair, alone);
    if (alone) {
        // With nobody else here, no set is in flight: no reservation may be
        // left, and the counters' record must be readable.
        bool damaged = false;
        Totals t;
        try {
            t = ledger_->read();
        } catch (const Error &) {
            damaged = true; // rewritten whole below (update starts a damaged record from zero)
        }
        if (damaged || t.reserved_bytes != 0 || t.reserved_entries != 0) {
            n.problems++;
            if (repair) {
                ledger_->update([](Totals &tt) { tt.reserved_bytes = tt.reserved_entries = 0; });
                n.repaired++;
            }
        }
    }
    return n;
}

Key Cache::make_key(const void *key, size_t key_len) const { return Key{key, key_len, KeyHash::of(key, key_len)}; }

void Cache::check_size(size_t key_len, uint64_t size) const {
    // The value, its entry header and key, and its shard's smallest table must fit.
    const uint64_t need = Store::charge(key_len, size) + ShardMeta::file_bytes(ShardMeta::min_capacity);
    if (opts_.cache_size != 0 && need > opts_.cache_size)
        fail(Status::toobig, "a value of " + std::to_string(size) + " bytes needs " + std::to_string(need) +
                                 " bytes on disk, more than cache_size (" + std::to_string(opts_.cache_size) +
                                 " bytes)");
}

void Cache::set(const void *key, size_t key_len, const void *data, size_t len) {
    check_size(key_len, len);
    const Reservation r = reserve(Store::charge(key_len, len));
    Change c;
    try {
        c = store_->put_bytes(make_key(key, key_len), data, len, now_us());
    } catch (...) {
        settle_failed(r);
        throw;
    }
    settle(r, c);
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
        if (stat(path, &st) != 0)
            throw_errno(errno, std::string("stat '") + path + "'");
    } else {
        if (src < 0) {
            opened.reset(::open(path, O_RDONLY | O_CLOEXEC));
            if (!opened)
                throw_errno(errno, std::string("open '") + path + "'");
            src = opened.get();
        }
        if (fstat(src, &st) != 0)
            throw_errno(errno, "fstat of the file given to fsc_set_file");
    }
    if (!S_ISREG(st.st_mode))
        fail(Status::inval, "fsc_set_file stores regular files only");
    check_size(key_len, uint64_t(st.st_size));
    const Reservation r = reserve(Store::charge(key_len, uint64_t(st.st_size)));
    Change c;
    try {
        c = store_->put_file(make_key(key, key_len), src, path, move, uint64_t(st.st_size), offset, now_us());
    } catch (...) {
        settle_failed(r);
        throw;
    }
    settle(r, c);
}

Cache::Invalidation Cache::read_invalidation() const {
    unsigned char buf[record_size];
    for (int attempt = 0; attempt < 4; attempt++) {
        ssize_t n = pread(locks_->fd(), buf, record_size, 0);
        if (n != ssize_t(record_size) || std::memcmp(buf, record_magic, 4) != 0)
            return {};
        uint64_t sum;
        std::memcpy(&sum, buf + 24, 8);
        if (sum != checksum64(buf, 24))
            continue; // read while a writer was writing: read again
        Invalidation inv;
        std::memcpy(&inv.hard_us, buf + 8, 8);
        std::memcpy(&inv.soft_us, buf + 16, 8);
        return inv;
    }
    fail(Status::corrupt, "the invalidation record in '" + base_path_ + "/lock' is damaged");
}

void Cache::invalidate(bool hard) {
    LockTable::ShardGuard g(*locks_, LockTable::record_lock);
    Invalidation inv;
    try {
        inv = read_invalidation();
    } catch (const Error &) {
        // A damaged record is rewritten whole below.
    }
    int64_t now = now_us();
    (hard ? inv.hard_us : inv.soft_us) = now;
    unsigned char buf[record_size] = {};
    std::memcpy(buf, record_magic, 4);
    std::memcpy(buf + 8, &inv.hard_us, 8);
    std::memcpy(buf + 16, &inv.soft_us, 8);
    uint64_t sum = checksum64(buf, 24);
    std::memcpy(buf + 24, &sum, 8);
    if (pwrite(locks_->fd(), buf, record_size, 0) != ssize_t(record_size))
        throw_errno(errno, "write '" + base_path_ + "/lock'");
    if (opts_.durable)
        sync_fd(locks_->fd(), "'" + base_path_ + "/lock'");
}

std::unique_ptr<Entry> Cache::lookup(const Key &key, int64_t expiration_ms, bool *fresh) {
    auto e = store_->find(key);
    if (!e)
        return nullptr;
    Invalidation inv = read_invalidation();
    if (e->created_us() <= inv.hard_us)
        return nullptr;
    *fresh = !e->expired(expiration_ms, now_us()) && e->created_us() > inv.soft_us;
    return e;
}

std::unique_ptr<Entry> Cache::get(const void *key, size_t key_len) {
    bool fresh = false;
    auto e = lookup(make_key(key, key_len), opts_.expiration_ms, &fresh);
    count_lookup(e && fresh);
    return fresh ? std::move(e) : nullptr;
}

void Cache::settle_failed(const Reservation &r) {
    if (r.bytes == 0 && r.entries == 0)
        return;
    update_ledger([&](Totals &t) {
        add_clamped(t.reserved_bytes, -int64_t(r.bytes));
        add_clamped(t.reserved_entries, -int64_t(r.entries));
    });
    locks_->end_reservation();
}

bool Cache::remove(const void *key, size_t key_len) {
    bool removed;
    store_->remove(make_key(key, key_len), &removed);
    return removed;
}

void Cache::clear() { store_->clear(); }

std::unique_ptr<KeyHold> Cache::lock(const void *key, size_t key_len, int64_t timeout_ms) {
    return LockTable::lock_key(locks_, make_key(key, key_len).hash.word(), timeout_ms, opts_.distributed_lock);
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
    count_lookup(e && fresh);
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
    // Someone may have regenerated it while we waited for the lock.
    e = lookup(k, expiration_ms, &fresh);
    if (e && fresh) {
        *out = std::move(e);
        return Status::ok;
    }
    if (!create())
        fail(Status::creator, "the creator callback failed; nothing was stored");
    e = lookup(k, -1, &fresh);
    if (!e)
        fail(Status::creator, "the creator callback succeeded but stored no value for the key");
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

} // namespace fsc
