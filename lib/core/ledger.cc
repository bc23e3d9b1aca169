#include "ledger.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "hash.h"

namespace fsc {

namespace {

// Where the record and the shard table live in the lock file (after the
// invalidation record); both are read with one pread.
constexpr off_t record_at = 64;
constexpr size_t fields = 7;
constexpr size_t record_size = 8 + 8 * fields + 8;
constexpr off_t table_at = 256;
constexpr size_t table_size = 256 * 16;
constexpr size_t span = size_t(table_at - record_at) + table_size;
const char magic[4] = {'F', 'S', 'C', 'T'};
constexpr uint32_t version = 2;

void sum_table(const unsigned char *table, Totals *t) {
    for (size_t i = 0; i < 256; i++) {
        uint64_t v[2];
        std::memcpy(v, table + 16 * i, 16);
        t->bytes += v[0];
        t->entries += v[1];
    }
}

} // namespace

Ledger::Ledger(std::shared_ptr<LockTable> locks, std::string shown) : locks_(std::move(locks)), shown_(std::move(shown)) {
    // The records' region exists whole from the start (zeros: nothing counted yet).
    struct stat st;
    if (fstat(locks_->fd(), &st) != 0)
        throw_errno(errno, "fstat '" + shown_ + "'");
    if (uint64_t(st.st_size) < uint64_t(table_at) + table_size &&
        ftruncate(locks_->fd(), table_at + off_t(table_size)) != 0)
        throw_errno(errno, "extend '" + shown_ + "'");
}

Totals Ledger::read() const {
    unsigned char b[span];
    for (int attempt = 0; attempt < 4; attempt++) {
        ssize_t n = pread(locks_->fd(), b, span, record_at);
        if (n < 0)
            throw_errno(errno, "read '" + shown_ + "'");
        if (size_t(n) < span)
            std::memset(b + n, 0, span - size_t(n)); // never written: zeros
        Totals t;
        sum_table(b + (table_at - record_at), &t);
        if (std::memcmp(b, magic, 4) != 0)
            return t; // a new cache: no counters yet
        uint64_t sum;
        std::memcpy(&sum, b + record_size - 8, 8);
        if (sum != checksum64(b, record_size - 8))
            continue; // read while a writer was writing
        uint64_t v[fields];
        std::memcpy(v, b + 8, sizeof v);
        t.hits = v[0];
        t.misses = v[1];
        t.sets = v[2];
        t.evictions = v[3];
        t.expirations = v[4];
        t.reserved_bytes = v[5];
        t.reserved_entries = v[6];
        return t;
    }
    fail(Status::corrupt, "the statistics record in '" + shown_ + "' is damaged");
}

Totals Ledger::read_shards_only() const {
    unsigned char table[table_size] = {};
    if (pread(locks_->fd(), table, table_size, table_at) < 0)
        throw_errno(errno, "read '" + shown_ + "'");
    Totals t;
    sum_table(table, &t);
    return t;
}

void Ledger::write(const Totals &t) {
    unsigned char b[record_size] = {};
    std::memcpy(b, magic, 4);
    std::memcpy(b + 4, &version, 4);
    const uint64_t v[fields] = {t.hits, t.misses, t.sets, t.evictions, t.expirations, t.reserved_bytes,
                                t.reserved_entries};
    std::memcpy(b + 8, v, sizeof v);
    uint64_t sum = checksum64(b, record_size - 8);
    std::memcpy(b + record_size - 8, &sum, 8);
    if (pwrite(locks_->fd(), b, record_size, record_at) != ssize_t(record_size))
        throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
}

void Ledger::set_shard(unsigned shard, uint64_t bytes, uint64_t entries) {
    const uint64_t v[2] = {bytes, entries};
    if (pwrite(locks_->fd(), v, sizeof v, table_at + off_t(16 * shard)) != ssize_t(sizeof v))
        throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
}

void Ledger::get_shard(unsigned shard, uint64_t *bytes, uint64_t *entries) const {
    uint64_t v[2] = {0, 0};
    if (pread(locks_->fd(), v, sizeof v, table_at + off_t(16 * shard)) < 0)
        throw_errno(errno, "read '" + shown_ + "'");
    *bytes = v[0];
    *entries = v[1];
}

} // namespace fsc
