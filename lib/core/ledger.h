// The cache-wide totals and statistics, shared by every process, kept in the
// lock file: a checksummed record of counters changed under the record lock,
// and a table of each shard's bytes and entries (each line checksummed), set
// (never incremented) by the shard's writer under the shard's lock, so that
// redoing it after a crash, or after damage, is harmless.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "error.h"
#include "lock_file_layout.h"
#include "lock_table.h"

namespace fsc {

// The record's counters (reserved_*: charged by sets in flight), and:
struct Totals : lock_file::Counters {
    // Sums of the shard table: read-only here, changed through set_shard().
    uint64_t bytes = 0;   // charged bytes: entries (header, key, value) and the shards' meta files
    uint64_t entries = 0;
};

// Adds a signed change to a counter, never below zero.
inline void add_clamped(uint64_t &total, int64_t delta) {
    total = delta < 0 && uint64_t(-delta) > total ? 0 : uint64_t(int64_t(total) + delta);
}

class Ledger {
public:
    Ledger(std::shared_ptr<LockTable> locks, std::string shown);

    // Called with a shard whose line fails its checksum (damage): it must set
    // the line again from the shard itself (under the shard's lock). Until it
    // is given, such a line makes reads fail with Error(corrupt).
    void on_damaged_line(std::function<void(unsigned shard)> rebuild) { rebuild_line_ = std::move(rebuild); }

    // Reads the counters and sums the shard table (no lock; a torn record or
    // line is read again, a damaged line rebuilt). Error(corrupt) when the
    // counters' record stays damaged.
    Totals read() const;
    // Reads, lets change(t) modify the counters, writes them back, all under
    // the record lock. A damaged record starts again from zero.
    template <typename F> Totals update(F &&change) {
        LockTable::ShardGuard g(*locks_, lock_file::record_lock);
        return apply(change);
    }
    // As update, if the record lock is free now; false (nothing done) if not.
    template <typename F> bool try_update(F &&change) {
        LockTable::ShardGuard g(*locks_, lock_file::record_lock, false);
        if (g.held())
            apply(change);
        return g.held();
    }
    // Sets one shard's line of the table (its writer holds the shard's lock).
    void set_shard(unsigned shard, uint64_t bytes, uint64_t entries);
    // One shard's line, as last set; false when it fails its checksum.
    bool get_shard(unsigned shard, uint64_t *bytes, uint64_t *entries) const;
    // Every shard's line, in one read (a line that fails says so, not read again).
    struct Line {
        uint64_t bytes = 0, entries = 0;
        bool ok = false;
    };
    std::array<Line, 256> lines() const;

private:
    template <typename F> Totals apply(F &change) {
        bool record_ok;
        Totals t = read_all(&record_ok);
        change(t);
        write(t);
        return t;
    }
    // The record's counters (zeros when *record_ok comes back false) and the
    // table's sums.
    Totals read_all(bool *record_ok) const;
    // Reads the record and the table into b; the shards whose lines fail,
    // after reading again while anything looks torn.
    std::vector<unsigned> load(unsigned char *b, bool *record_ok) const;
    void write(const Totals &t);

    std::shared_ptr<LockTable> locks_;
    std::string shown_;
    LockFileRecords records_;
    std::function<void(unsigned)> rebuild_line_;
};

} // namespace fsc
