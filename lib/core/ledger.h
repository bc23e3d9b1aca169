// The cache-wide totals and statistics, shared by every process, kept in the
// lock file: a checksummed record of counters changed under the record lock,
// and a table of each shard's bytes and entries, set (never incremented) by
// the shard's writer under the shard's lock, so that redoing it after a crash
// is harmless.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "error.h"
#include "lock_table.h"

namespace fsc {

struct Totals {
    // Sums of the shard table: read-only here, changed through set_shard().
    uint64_t bytes = 0;   // charged bytes: entries (header, key, value) and the shards' meta files
    uint64_t entries = 0;
    // The record's counters.
    uint64_t reserved_bytes = 0, reserved_entries = 0; // charged by sets in flight
    uint64_t hits = 0, misses = 0, sets = 0, evictions = 0, expirations = 0;
};

// Adds a signed change to a counter, never below zero.
inline void add_clamped(uint64_t &total, int64_t delta) {
    total = delta < 0 && uint64_t(-delta) > total ? 0 : uint64_t(int64_t(total) + delta);
}

class Ledger {
public:
    Ledger(std::shared_ptr<LockTable> locks, std::string shown);

    // Reads the counters and sums the shard table (no lock; a torn record is
    // read again). Error(corrupt) when the record stays damaged.
    Totals read() const;
    // Reads, lets change(t) modify the counters, writes them back, all under
    // the record lock. A damaged record starts again from zero.
    template <typename F> Totals update(F &&change) {
        LockTable::ShardGuard g(*locks_, LockTable::record_lock);
        return apply(change);
    }
    // As update, if the record lock is free now; false (nothing done) if not.
    template <typename F> bool try_update(F &&change) {
        LockTable::ShardGuard g(*locks_, LockTable::record_lock, false);
        if (g.held())
            apply(change);
        return g.held();
    }
    // Sets one shard's line of the table (its writer holds the shard's lock).
    void set_shard(unsigned shard, uint64_t bytes, uint64_t entries);
    // One shard's line, as last set.
    void get_shard(unsigned shard, uint64_t *bytes, uint64_t *entries) const;

private:
    template <typename F> Totals apply(F &change) {
        Totals t;
        try {
            t = read();
        } catch (const Error &) {
            t = read_shards_only();
        }
        change(t);
        write(t);
        return t;
    }
    Totals read_shards_only() const;
    void write(const Totals &t);

    std::shared_ptr<LockTable> locks_;
    std::string shown_;
};

} // namespace fsc
