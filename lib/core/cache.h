// The cache: options, the directory's format, and the operations of the C API
// expressed over the store, the budget and the lock table.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "budget.h"
#include "entry.h"
#include "error.h"
#include "fd.h"
#include "fork_locks.h"
#include "fs_kind.h"
#include "ledger.h"
#include "lock_file_layout.h"
#include "lock_table.h"
#include "ownership.h"
#include "store.h"

namespace fsc {

// FSC_NETWORK: whether the cache runs in network mode (fs_kind.h).
enum class NetworkMode { automatic, on, off };

struct Options {
    uint64_t cache_size = uint64_t(1) << 30;
    uint64_t max_entries = 0;
    int64_t expiration_ms = -1;
    bool distributed_lock = true;
    bool file_movable = false;
    bool durable = false;
    uint64_t pack_limit = 4096; // FSC_PACK_LIMIT_DEFAULT
    Sharing sharing;            // shared_group
    bool verify_payloads = false;
    NetworkMode network = NetworkMode::automatic;
};

constexpr uint64_t pack_limit_max = max_packed_value; // FSC_PACK_LIMIT_MAX

class Cache {
public:
    static std::unique_ptr<Cache> open(const std::string &base_dir, const Options &opts);
    ~Cache();

    void set(const void *key, size_t key_len, const void *data, size_t len);
    // fd >= 0: copy from it (its offset is remembered); move: rename path in.
    void set_file(const void *key, size_t key_len, int fd, const char *path, bool move);
    // nullptr on a miss (absent, expired, invalidated).
    std::unique_ptr<Entry> get(const void *key, size_t key_len);
    bool remove(const void *key, size_t key_len);
    // Removes every value, then sets the invalidation times back to none:
    // nothing they could apply to is left.
    void clear();

    std::unique_ptr<KeyHold> lock(const void *key, size_t key_len, int64_t timeout_ms);
    pid_t lock_holder(const void *key, size_t key_len);

    // Status::ok or Status::stale with *out set; throws Error(creator) when
    // create returns false.
    Status get_or_create(const void *key, size_t key_len, int64_t expiration_ms,
                         const std::function<bool()> &create, std::unique_ptr<Entry> *out);

    // Moves the invalidation time to now, never back: an invalidation from
    // a clock behind an earlier one's must not bring back what it dropped.
    void invalidate(bool hard);

    using Visitor = std::function<bool(const std::string &key, uint64_t size, int64_t created_us)>;
    void foreach(const Visitor &visit);

    // Drops expired (and hard-invalidated) values, then evicts down to the budget.
    void prune();
    Totals stats();
    VerifyCounts verify(bool repair);

    const Options &options() const noexcept { return opts_; }
    // Whether fsc_open found base_dir on a network or FUSE filesystem.
    bool network_fs() const noexcept { return network_fs_; }
    // Whether the handle runs in network mode (FSC_NETWORK).
    bool network_mode() const noexcept { return network_mode_; }

private:
    struct Invalidation {
        int64_t hard_us = 0, soft_us = 0;
        int64_t lru_horizon_us = 0; // read along with it: see Budget::note_evicted()
    };
    Cache(Fd base, std::string base_path, const Options &opts, std::shared_ptr<LockTable> locks, bool network_fs,
          bool network_mode);
    // Network mode: notes the lease mark of the key's lock this thread just took.
    void note_lease(const Key &k);
    Key make_key(const void *key, size_t key_len) const;
    // The key's value unless absent or hard-invalidated; *fresh says whether it
    // is younger than expiration_ms and not soft-invalidated.
    std::unique_ptr<Entry> lookup(const Key &key, int64_t expiration_ms, bool *fresh);
    // The invalidation record; a damaged one is reset (reset_invalidation).
    Invalidation read_invalidation() const;
    // Reads the invalidation record and the LRU horizon (again while the
    // record, or the horizon when horizon_ok is asked for, reads torn): false
    // when the record fails its checks; *horizon_ok likewise for the horizon
    // (a failing one reads as 0: none).
    bool load_shared(Invalidation *inv, bool *horizon_ok = nullptr) const;
    // Under the record lock: a record still damaged is written again with
    // every value stored so far hard-invalidated.
    Invalidation reset_invalidation() const;
    void write_invalidation(const Invalidation &inv) const;
    // Error(toobig) when the value could never fit cache_size. from_file:
    // stored with set_file.
    void check_size(size_t key_len, uint64_t size, bool from_file) const;
    // A set's write between its reservation and its settling.
    template <typename F> void charged(const Key &k, uint64_t charge, F &&write);

    Fd base_;
    std::string base_path_;
    Options opts_;
    bool network_fs_;
    bool network_mode_;
    std::shared_ptr<LockTable> locks_;
    LockFileRecords records_; // the invalidation record and the LRU horizon
    std::unique_ptr<Ledger> ledger_;
    std::unique_ptr<Store> store_;   // refers to *ledger_
    std::unique_ptr<Budget> budget_; // refers to *ledger_, *store_ and records_
    std::unique_ptr<ForkLocks> fork_locks_; // the budget's, the store's; registered last, dropped first
};

} // namespace fsc
