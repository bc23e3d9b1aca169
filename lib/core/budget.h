// The budget of one cache handle: the limits (cache_size, max_entries), what
// sets in flight reserve against them in the ledger, this handle's credit and
// pending ledger updates, eviction in LRU order down to the limits, and which
// reservations are alive (docs/ARCHITECTURE.md, "The budget").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "ledger.h"
#include "lock_file_layout.h"
#include "lock_table.h"
#include "store.h"

namespace fsc {

struct Limits {
    uint64_t cache_size = 0;   // bytes, 0: none
    uint64_t max_entries = 0;  // 0: none
    int64_t expiration_ms = -1; // expired values are evicted first
};

class Budget {
public:
    // records: the lock file's, where evictions note the LRU horizon.
    Budget(const Limits &limits, std::shared_ptr<LockTable> locks, Ledger &ledger, Store &store,
           const LockFileRecords &records);
    Budget(const Budget &) = delete;
    Budget &operator=(const Budget &) = delete;

    struct Reservation {
        uint64_t bytes, entries;
    };
    // Charges a set before it writes anything, evicting first when it would not fit.
    Reservation reserve(uint64_t charge);
    // Replaces the reservation by what the set really changed; evicts if over.
    void settle(const Reservation &r, const Change &c);
    void settle_failed(const Reservation &r);

    // Evicts least recently used entries until the totals, with extra on
    // top, fit the limits.
    void evict_until(uint64_t extra_bytes, uint64_t extra_entries);
    // Evicts if the totals are over the limits now.
    void evict_if_over();
    // Drops every value created at or before hard_us or expired, counted as
    // expirations.
    void drop_expired(int64_t hard_us);

    void count_lookup(bool hit);
    // Writes what this handle has not yet written to the ledger. wait =
    // false: only if the record lock is free now (a get never waits for a
    // writer, which may be stopped holding it); else it all stays pending,
    // and false says when that includes reservations to give back.
    bool flush_pending(bool wait = true);
    // At close: lookup counts wait for the record lock about 100 ms at
    // most, reservations as long as it takes.
    void close();

    // Only while no other process can have a set in flight: drops every
    // reservation the ledger holds.
    void forget_reservations();
    // fsc_verify's part, with no other process here (alone): no reservation
    // may be left, and the counters' record must be readable.
    void verify(bool repair, bool alone, VerifyCounts *n);
    // Forgets the LRU horizon: readers stamp by their values' age.
    void clear_horizon();

    // Around fork() (the owner's ForkLocks), in this order before the store's.
    void lock_for_fork();
    void unlock_after_fork();

private:
    bool over(const Totals &t, uint64_t extra_bytes, uint64_t extra_entries) const;
    // Candidates oldest first: every entry (exhaustive; the rest of the last
    // full scan while any is left, then *saved) or a sample.
    std::vector<Candidate> eviction_order(bool exhaustive, bool *saved);
    // Records the last use of a value just evicted: readers stamp their
    // values' last use with a resolution that follows how long values now
    // stay in the cache (ShardMeta::touch).
    void note_evicted(int64_t last_use_us);
    // Drops reservations left in the ledger by processes that died.
    void reclaim_dead_reservations();

    // A reservation is alive from begin to end: while any is open in this
    // process, the process read-locks lock_file::reserve_range, so that a
    // dead process's reservations can be told from live ones.
    void begin_reservation() { locks_->hold_shared(lock_file::reserve_range); }
    void end_reservation() { locks_->release_shared(lock_file::reserve_range); }
    // Calls f() when no process (this one included) has a reservation open,
    // keeping everyone from opening one until f returns. Returns whether it did.
    template <typename F> bool when_no_reservations(F &&f) {
        return locks_->when_unheld(lock_file::reserve_range, std::forward<F>(f));
    }

    // What this handle has done and not yet written to the ledger. Giving a
    // reservation back late only makes the budget look fuller to others; the
    // reservation stays open in the lock table until it is written, so a
    // crash leaves it for the dead-reservation reclaim.
    struct Pending {
        uint64_t sets = 0, release_bytes = 0, release_entries = 0;
        unsigned open = 0; // reservations settled here, still open in the lock table
    };
    // Budget reserved in the ledger ahead of this handle's next sets, so
    // that a stream of sets below the budget costs no record-lock round trip
    // each: at most a 64th of each limit. It is one reservation open in the
    // lock table per grant, and goes back with every flush_pending (before
    // any eviction, at fsc_stats and at close).
    struct Credit {
        uint64_t bytes = 0, entries = 0;
        unsigned open = 0; // grants, each a reservation open in the lock table
    };
    // One ledger update: what this handle has pending (lookup counts, sets,
    // reservations given back), then change(t); then the reservations that
    // update closed end. wait = false: only if the record lock is free now;
    // false (all kept pending) if not.
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
                ledger_.update(write);
            else
                written = ledger_.try_update(write);
        } catch (...) {
            keep_pending(p, hits, misses); // nothing was written: for the next update
            throw;
        }
        if (!written) {
            keep_pending(p, hits, misses);
            return false;
        }
        for (unsigned i = 0; i < p.open; i++)
            end_reservation();
        return true;
    }
    // Puts back what a failed ledger update took out.
    void keep_pending(const Pending &p, uint64_t hits, uint64_t misses);
    // A set's reservation out of the handle's credit; false when the credit
    // is short (then the set reserves in the ledger).
    bool take_credit(const Reservation &r);
    // What a reservation of r takes on top, as credit for the next sets.
    Reservation credit_to_add(const Reservation &r);
    void add_credit(const Reservation &extra);
    // In a forked child, pending_ and credit_ are the parent's to settle.
    // Called under pending_mu_.
    void drop_parents_pending();

    Limits limits_;
    std::shared_ptr<LockTable> locks_;
    Ledger &ledger_;
    Store &store_;
    const LockFileRecords &records_;
    std::mutex pending_mu_;
    Pending pending_;
    Credit credit_;                                              // guarded by pending_mu_
    uint64_t pending_generation_ = LockTable::fork_generation(); // guarded by pending_mu_
    std::atomic<uint64_t> pending_hits_{0}, pending_misses_{0};
    std::mutex rng_mu_;
    std::minstd_rand rng_;
    // The untried rest of the last full scan, oldest first (guarded by
    // rng_mu_). Still exact LRU later: an entry set since is newer than all
    // of it, and Store::evict skips one replaced, removed or read since.
    std::vector<Candidate> lru_order_;
};

} // namespace fsc
