// The cache: options, the directory's format, and the operations of the C API
// expressed over the store and the lock table.
#pragma once

#include <atomic>
#include <cstdint>
#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "entry.h"
#include "error.h"
#include "fd.h"
#include "fork_locks.h"
#include "ledger.h"
#include "lock_file_layout.h"
#include "lock_table.h"
#include "ownership.h"
#include "store.h"

namespace fsc {

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
    void clear();

    std::unique_ptr<KeyHold> lock(const void *key, size_t key_len, int64_t timeout_ms);
    pid_t lock_holder(const void *key, size_t key_len);

    // Status::ok or Status::stale with *out set; throws Error(creator) when
    // create returns false.
    Status get_or_create(const void *key, size_t key_len, int64_t expiration_ms,
                         const std::function<bool()> &create, std::unique_ptr<Entry> *out);

    void invalidate(bool hard);

    using Visitor = std::function<bool(const std::string &key, uint64_t size, int64_t created_us)>;
    void foreach(const Visitor &visit);

    // Drops expired (and hard-invalidated) values, then evicts down to the budget.
    void prune();
    Totals stats();
    VerifyCounts verify(bool repair);

    const Options &options() const noexcept { return opts_; }

private:
    struct Invalidation {
        int64_t hard_us = 0, soft_us = 0;
        int64_t lru_horizon_us = 0; // read along with it: see note_evicted()
    };
    Cache(Fd base, std::string base_path, const Options &opts, std::shared_ptr<LockTable> locks);
    Key make_key(const void *key, size_t key_len) const;
    // The key's value unless absent or hard-invalidated; *fresh says whether it
    // is younger than expiration_ms and not soft-invalidated.
    std::unique_ptr<Entry> lookup(const Key &key, int64_t expiration_ms, bool *fresh);
    // The invalidation record; a damaged one is reset (reset_invalidation).
    Invalidation read_invalidation() const;
    // Reads the invalidation record and the LRU horizon (again while torn):
    // false when the record fails its checks; *horizon_ok likewise for the
    // horizon (a failing one reads as 0: none).
    bool load_shared(Invalidation *inv, bool *horizon_ok) const;
    // Under the record lock: a record still damaged is written again with
    // every value stored so far hard-invalidated.
    Invalidation reset_invalidation() const;
    void write_invalidation(const Invalidation &inv) const;
    // Records the last use of a value just evicted: readers stamp their
    // values' last use with a resolution that follows how long values now
    // stay in the cache (ShardMeta::touch).
    void note_evicted(int64_t last_use_us);
    void check_size(size_t key_len, uint64_t size, bool packed) const;
    bool over_budget(const Totals &t, uint64_t extra_bytes, uint64_t extra_entries) const;
    struct Reservation {
        uint64_t bytes, entries;
    };
    // Charges a set before it writes anything, evicting first when it would not fit.
    Reservation reserve(uint64_t charge);
    // Replaces the reservation by what the set really changed; evicts if over.
    void settle(const Reservation &r, const Change &c);
    // Evicts least recently used entries until `fits` says the totals fit.
    void evict_until(uint64_t extra_bytes, uint64_t extra_entries);
    // Candidates oldest first: every entry (exhaustive; the rest of the last
    // full scan while any is left, then *saved) or a sample.
    std::vector<Candidate> eviction_order(bool exhaustive, bool *saved);
    void settle_failed(const Reservation &r);
    void count_lookup(bool hit);
    // Writes what this handle has not yet written to the ledger. wait =
    // false: only if the record lock is free now (a get never waits for a
    // writer, which may be stopped holding it); else it all stays pending,
    // and false says when that includes reservations to give back.
    bool flush_pending(bool wait = true);
    // One ledger update: what this handle has pending (lookup counts, sets,
    // reservations given back), then change(t); then the lock table hears of
    // the reservations that update closed. wait = false: only if the record
    // lock is free now; false (all kept pending) if not.
    template <typename F> bool update_ledger(F &&change, bool wait = true) {
        // Taken out under pending_mu_, written without it: the record lock
        // may wait for another process, and a fork() waits for pending_mu_.
        Pending p;
        {
            std::lock_guard<std::mutex> g(pending_mu_);
            drop_parents_pending();
            p = std::exchange(pending_, Pending{});
        }
        const uint64_t hits = pending_hits_.exchange(0), misses = pending_misses_.exchange(0);
        auto write = [&](Totals &t) {
            t.hits += hits;
            t.misses += misses;
            t.sets += p.sets;
            add_clamped(t.reserved_bytes, -int64_t(p.release_bytes));
            add_clamped(t.reserved_entries, -int64_t(p.release_entries));
            change(t);
        };
        bool written = true;
        try {
            if (wait)
                ledger_->update(write);
            else
                written = ledger_->try_update(write);
        } catch (...) {
            keep_pending(p, hits, misses); // nothing was written: for the next update
            throw;
        }
        if (!written) {
            keep_pending(p, hits, misses);
            return false;
        }
        for (unsigned i = 0; i < p.open; i++)
            locks_->end_reservation();
        return true;
    }
    // Drops reservations left in the ledger by processes that died.
    void reclaim_dead_reservations();
    // A set's reservation out of the handle's credit; false when the credit
    // is short (then the set reserves in the ledger).
    bool take_credit(const Reservation &r);
    // What a reservation of r takes on top, as credit for the next sets.
    Reservation credit_to_add(const Reservation &r);
    void add_credit(const Reservation &extra);
    // In a forked child, pending_ and credit_ are the parent's to settle.
    // Called under pending_mu_.
    void drop_parents_pending();

    Fd base_;
    std::string base_path_;
    Options opts_;
    std::shared_ptr<LockTable> locks_;
    LockFileRecords records_; // the invalidation record and the LRU horizon
    std::unique_ptr<Ledger> ledger_;
    std::unique_ptr<Store> store_; // refers to *ledger_
    // What this handle has done and not yet written to the ledger. Giving a
    // reservation back late only makes the budget look fuller to others; the
    // reservation stays open in the lock table until it is written, so a
    // crash leaves it for the dead-reservation reclaim.
    struct Pending {
        uint64_t sets = 0, release_bytes = 0, release_entries = 0;
        unsigned open = 0; // reservations settled here, still open in the lock table
    };
    // Puts back what a failed ledger update took out.
    void keep_pending(const Pending &p, uint64_t hits, uint64_t misses);
    // Budget reserved in the ledger ahead of this handle's next sets, so
    // that a stream of sets below the budget costs no record-lock round trip
    // each: at most a 64th of each limit. It is one reservation open in the
    // lock table per grant, and goes back with every flush_pending (before
    // any eviction, at fsc_stats and at close).
    struct Credit {
        uint64_t bytes = 0, entries = 0;
        unsigned open = 0; // grants, each a reservation open in the lock table
    };
    std::mutex pending_mu_;
    Pending pending_;
    Credit credit_;                                                // guarded by pending_mu_
    uint64_t pending_generation_ = LockTable::fork_generation(); // guarded by pending_mu_
    std::atomic<uint64_t> pending_hits_{0}, pending_misses_{0};
    std::mutex rng_mu_;
    std::minstd_rand rng_;
    // The untried rest of the last full scan, oldest first (guarded by
    // rng_mu_). Still exact LRU later: an entry set since is newer than all
    // of it, and Store::evict skips one replaced, removed or read since.
    std::vector<Candidate> lru_order_;
    std::unique_ptr<ForkLocks> fork_locks_; // pending_mu_, rng_mu_, the store's; registered last, dropped first
};

} // namespace fsc
