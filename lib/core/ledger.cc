#include "ledger.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "codec.h"
#include "hash.h"

namespace fsc {

namespace {

// Where the record and the shard table live in the lock file (after the
// invalidation record); both are read with one pread.
constexpr off_t record_at = 64;
constexpr size_t fields = 7;
constexpr size_t record_size = 8 + 8 * fields + 8;
constexpr off_t table_at = 256;
constexpr size_t line_size = 24; // bytes, entries, checksum
constexpr size_t table_size = 256 * line_size;
constexpr size_t span = size_t(table_at - record_at) + table_size;
static_assert(table_at + off_t(table_size) == LockTable::records_size, "the shard table ends the lock file's records");
const char magic[4] = {'F', 'S', 'C', 'T'};
constexpr uint32_t version = 2;

// Over the line's first 16 bytes, seeded with the shard number: a line copied
// to another shard's place fails.
uint64_t line_sum(const unsigned char *line, unsigned shard) { return checksum64(line, 16, 0x4653434cull + shard); }

// A line's bytes and entries when its checksum holds.
bool parse_line(const unsigned char *line, unsigned shard, uint64_t v[2]) {
    v[0] = load_le64(line);
    v[1] = load_le64(line + 8);
    return load_le64(line + 16) == line_sum(line, shard);
}

bool all_zero(const unsigned char *p, size_t n) {
    return std::all_of(p, p + n, [](unsigned char c) { return c == 0; });
}

} // namespace

Ledger::Ledger(std::shared_ptr<LockTable> locks, std::string shown) : locks_(std::move(locks)), shown_(std::move(shown)) {
    // The records' region exists whole from the start (zeros: nothing counted
    // yet; the lines, invalid, are set by the first lone opener's recovery).
    struct stat st;
    if (fstat(locks_->fd(), &st) != 0)
        throw_errno(errno, "fstat '" + shown_ + "'");
    if (st.st_size < LockTable::records_size && ftruncate(locks_->fd(), LockTable::records_size) != 0)
        throw_errno(errno, "extend '" + shown_ + "'");
}

std::vector<unsigned> Ledger::load(unsigned char *b, bool *record_ok) const {
    std::vector<unsigned> bad;
    for (int attempt = 0; attempt < 4; attempt++) {
        ssize_t n = pread(locks_->fd(), b, span, record_at);
        if (n < 0)
            throw_errno(errno, "read '" + shown_ + "'");
        if (size_t(n) < span)
            std::memset(b + n, 0, span - size_t(n)); // never written: zeros
        bad.clear();
        for (unsigned shard = 0; shard < 256; shard++) {
            uint64_t v[2];
            if (!parse_line(b + (table_at - record_at) + line_size * shard, shard, v))
                bad.push_back(shard);
        }
        // All zeros: a new cache, no counters yet.
        *record_ok = all_zero(b, record_size) || (std::memcmp(b, magic, 4) == 0 &&
                                                  load_le64(b + record_size - 8) == checksum64(b, record_size - 8));
        if (bad.empty() && *record_ok)
            break; // else read while a writer was writing, or damaged: read again
    }
    return bad;
}

Totals Ledger::read_all(bool *record_ok) const {
    unsigned char b[span];
    std::vector<unsigned> bad = load(b, record_ok);
    if (!bad.empty() && rebuild_line_) {
        for (unsigned shard : bad)
            rebuild_line_(shard);
        bad = load(b, record_ok);
    }
    if (!bad.empty())
        fail(Status::corrupt, "the line of shard " + std::to_string(bad[0]) + " in '" + shown_ + "' is damaged");
    Totals t;
    for (unsigned shard = 0; shard < 256; shard++) {
        uint64_t v[2];
        parse_line(b + (table_at - record_at) + line_size * shard, shard, v);
        t.bytes += v[0];
        t.entries += v[1];
    }
    if (*record_ok && !all_zero(b, record_size)) {
        uint64_t v[fields];
        for (size_t i = 0; i < fields; i++)
            v[i] = load_le64(b + 8 + 8 * i);
        t.hits = v[0];
        t.misses = v[1];
        t.sets = v[2];
        t.evictions = v[3];
        t.expirations = v[4];
        t.reserved_bytes = v[5];
        t.reserved_entries = v[6];
    }
    return t;
}

Totals Ledger::read() const {
    bool record_ok;
    Totals t = read_all(&record_ok);
    if (!record_ok)
        fail(Status::corrupt, "the statistics record in '" + shown_ + "' is damaged");
    return t;
}

void Ledger::write(const Totals &t) {
    unsigned char b[record_size] = {};
    std::memcpy(b, magic, 4);
    store_le32(b + 4, version);
    const uint64_t v[fields] = {t.hits, t.misses, t.sets, t.evictions, t.expirations, t.reserved_bytes,
                                t.reserved_entries};
    for (size_t i = 0; i < fields; i++)
        store_le64(b + 8 + 8 * i, v[i]);
    store_le64(b + record_size - 8, checksum64(b, record_size - 8));
    if (pwrite(locks_->fd(), b, record_size, record_at) != ssize_t(record_size))
        throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
}

void Ledger::set_shard(unsigned shard, uint64_t bytes, uint64_t entries) {
    unsigned char line[line_size];
    store_le64(line, bytes);
    store_le64(line + 8, entries);
    store_le64(line + 16, line_sum(line, shard));
    if (pwrite(locks_->fd(), line, sizeof line, table_at + off_t(line_size * shard)) != ssize_t(sizeof line))
        throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
}

bool Ledger::get_shard(unsigned shard, uint64_t *bytes, uint64_t *entries) const {
    unsigned char line[line_size] = {};
    uint64_t v[2] = {0, 0};
    bool ok = false;
    // A torn read is read again; all zeros were never written.
    for (int attempt = 0; attempt < 4 && !ok && (attempt == 0 || !all_zero(line, sizeof line)); attempt++) {
        if (pread(locks_->fd(), line, sizeof line, table_at + off_t(line_size * shard)) < 0)
            throw_errno(errno, "read '" + shown_ + "'");
        ok = parse_line(line, shard, v);
    }
    *bytes = v[0];
    *entries = v[1];
    return ok;
}

std::array<Ledger::Line, 256> Ledger::lines() const {
    unsigned char table[table_size] = {};
    if (pread(locks_->fd(), table, table_size, table_at) < 0)
        throw_errno(errno, "read '" + shown_ + "'");
    std::array<Line, 256> out;
    for (unsigned shard = 0; shard < 256; shard++) {
        uint64_t v[2];
        out[shard].ok = parse_line(table + line_size * shard, shard, v);
        out[shard].bytes = v[0];
        out[shard].entries = v[1];
    }
    return out;
}

} // namespace fsc
