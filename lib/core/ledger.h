// The cache-wide totals and statistics, shared by every process: a
// checksummed record in the lock file, changed under the record lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "error.h"
#include "lock_table.h"

namespace fsc {

struct Totals {
    uint64_t bytes = 0;   // charged bytes: entries (header, key, value) and the shards' meta files
    uint64_t entries = 0;
    uint64_t hits = 0, misses = 0, sets = 0, evictions = 0, expirations = 0;
};

class Ledger {
public:
    Ledger(std::shared_ptr<LockTable> locks, std::string shown);

    // Reads the record (no lock; a torn read is retried).
    Totals read() const;
    // Reads, lets change(t) modify, writes back, all under the record lock.
    template <typename F> Totals update(F &&change) {
        LockTable::ShardGuard g(*locks_, LockTable::record_lock);
        Totals t;
        try {
            t = read();
        } catch (const Error &) {
            // A damaged record starts again from zero; fsc_verify recounts it.
        }
        change(t);
        write(t);
        return t;
    }

private:
    void write(const Totals &t);

    std::shared_ptr<LockTable> locks_;
    std::string shown_;
};

} // namespace fsc
