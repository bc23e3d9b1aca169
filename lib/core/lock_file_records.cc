// The lock file's record encodings and their reads and writes (layout in
// lock_file_layout.h, docs/FORMAT.md).
#include "lock_file_layout.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "codec.h"
#include "error.h"
#include "file_ops.h"
#include "hash.h"

namespace fsc {
namespace lock_file {

namespace {

const char invalidation_magic[4] = {'F', 'S', 'C', 'I'};
const char counters_magic[4] = {'F', 'S', 'C', 'T'};
constexpr uint32_t counters_version = 2;

// Over the horizon's 8 bytes as stored.
uint64_t horizon_sum(const unsigned char *horizon) { return checksum64(horizon, 8, 0x46534348); }
// Over the line's first 16 bytes, seeded with the shard number: a line copied
// to another shard's place fails.
uint64_t line_sum(const unsigned char *line, unsigned shard) { return checksum64(line, 16, 0x4653434cull + shard); }

// A record that starts with its magic and ends with the checksum of the rest.
void seal(unsigned char *b, size_t n, const char magic[4]) {
    std::memcpy(b, magic, 4);
    store_le64(b + n - 8, checksum64(b, n - 8));
}
bool sealed(const unsigned char *b, size_t n, const char magic[4]) {
    return std::memcmp(b, magic, 4) == 0 && load_le64(b + n - 8) == checksum64(b, n - 8);
}

} // namespace

bool all_zero(const unsigned char *p, size_t n) {
    return std::all_of(p, p + n, [](unsigned char c) { return c == 0; });
}

void encode_invalidation(const Invalidation &inv, unsigned char *b) {
    std::memset(b, 0, invalidation_size);
    store_le64s(b + 8, inv.hard_us);
    store_le64s(b + 16, inv.soft_us);
    seal(b, invalidation_size, invalidation_magic);
}

bool decode_invalidation(const unsigned char *b, Invalidation *inv) {
    *inv = Invalidation{};
    if (all_zero(b, invalidation_size))
        return true;
    if (!sealed(b, invalidation_size, invalidation_magic))
        return false;
    inv->hard_us = load_le64s(b + 8);
    inv->soft_us = load_le64s(b + 16);
    return true;
}

void encode_horizon(int64_t last_use_us, unsigned char *b) {
    store_le64s(b, last_use_us);
    store_le64(b + 8, horizon_sum(b));
}

bool decode_horizon(const unsigned char *b, int64_t *last_use_us) {
    const int64_t horizon = load_le64s(b);
    const uint64_t sum = load_le64(b + 8);
    const bool ok = (horizon == 0 && sum == 0) || sum == horizon_sum(b);
    *last_use_us = ok ? horizon : 0;
    return ok;
}

void encode_counters(const Counters &c, unsigned char *b) {
    std::memset(b, 0, counters_size);
    store_le32(b + 4, counters_version);
    const uint64_t v[counter_fields] = {c.hits,        c.misses,         c.sets,           c.evictions,
                                        c.expirations, c.reserved_bytes, c.reserved_entries};
    for (size_t i = 0; i < counter_fields; i++)
        store_le64(b + 8 + 8 * i, v[i]);
    seal(b, counters_size, counters_magic);
}

bool decode_counters(const unsigned char *b, Counters *c) {
    *c = Counters{};
    if (all_zero(b, counters_size))
        return true;
    if (!sealed(b, counters_size, counters_magic))
        return false;
    uint64_t *const v[counter_fields] = {&c->hits,        &c->misses,         &c->sets,           &c->evictions,
                                         &c->expirations, &c->reserved_bytes, &c->reserved_entries};
    for (size_t i = 0; i < counter_fields; i++)
        *v[i] = load_le64(b + 8 + 8 * i);
    return true;
}

void encode_line(unsigned shard, const ShardLine &line, unsigned char *b) {
    store_le64(b, line.bytes);
    store_le64(b + 8, line.entries);
    store_le64(b + 16, line_sum(b, shard));
}

bool decode_line(unsigned shard, const unsigned char *b, ShardLine *line) {
    line->bytes = load_le64(b);
    line->entries = load_le64(b + 8);
    return load_le64(b + 16) == line_sum(b, shard);
}

} // namespace lock_file

void LockFileRecords::make_whole() const {
    struct stat st;
    if (fstat(fd_, &st) != 0)
        throw_errno(errno, "fstat '" + shown_ + "'");
    if (st.st_size < lock_file::records_size && ftruncate(fd_, lock_file::records_size) != 0)
        throw_errno(errno, "extend '" + shown_ + "'");
}

void LockFileRecords::read_once(off_t at, unsigned char *b, size_t n) const {
    const size_t got = pread_coherent(fd_, direct_, b, n, uint64_t(at), "'" + shown_ + "'");
    std::memset(b + got, 0, n - got); // never written: zeros
}

void LockFileRecords::write(off_t at, const unsigned char *b, size_t n) const {
    if (pwrite(fd_, b, n, at) != ssize_t(n))
        throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
    if (direct_ >= 0)
        sync();
}

void LockFileRecords::write_hint(off_t at, const unsigned char *b, size_t n) const noexcept {
    (void)!pwrite(fd_, b, n, at);
}

void LockFileRecords::sync() const { sync_fd(fd_, "'" + shown_ + "'"); }

} // namespace fsc
