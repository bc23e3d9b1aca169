#include "ledger.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"
#include "hash.h"

namespace fsc {

namespace {

// Where the record lives in the lock file (after the invalidation record).
constexpr off_t record_at = 64;
constexpr size_t fields = 7;
constexpr size_t record_size = 8 + 8 * fields + 8;
const char magic[4] = {'F', 'S', 'C', 'T'};
constexpr uint32_t version = 1;

} // namespace

Ledger::Ledger(std::shared_ptr<LockTable> locks, std::string shown) : locks_(std::move(locks)), shown_(std::move(shown)) {}

Totals Ledger::read() const {
    unsigned char b[record_size];
    for (int attempt = 0; attempt < 4; attempt++) {
        if (pread(locks_->fd(), b, record_size, record_at) != ssize_t(record_size) || std::memcmp(b, magic, 4) != 0)
            return {}; // never written: a new cache
        uint64_t sum;
        std::memcpy(&sum, b + record_size - 8, 8);
        if (sum != checksum64(b, record_size - 8))
            continue; // read while a writer was writing
        uint64_t v[fields];
        std::memcpy(v, b + 8, sizeof v);
        Totals t;
        t.bytes = v[0];
        t.entries = v[1];
        t.hits = v[2];
        t.misses = v[3];
        t.sets = v[4];
        t.evictions = v[5];
        t.expirations = v[6];
        return t;
    }
    fail(Status::corrupt, "the statistics record in '" + shown_ + "' is damaged");
}

void Ledger::write(const Totals &t) {
    unsigned char b[record_size] = {};
    std::memcpy(b, magic, 4);
    std::memcpy(b + 4, &version, 4);
    const uint64_t v[fields] = {t.bytes, t.entries, t.hits, t.misses, t.sets, t.evictions, t.expirations};
    std::memcpy(b + 8, v, sizeof v);
    uint64_t sum = checksum64(b, record_size - 8);
    std::memcpy(b + record_size - 8, &sum, 8);
    if (pwrite(locks_->fd(), b, record_size, record_at) != ssize_t(record_size))
        throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
}

} // namespace fsc
