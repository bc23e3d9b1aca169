#include "ledger.h"

namespace fsc {

Ledger::Ledger(std::shared_ptr<LockTable> locks, std::string shown)
    : locks_(std::move(locks)), shown_(std::move(shown)), records_(locks_->fd(), shown_, locks_->direct_fd()) {
    // The records' region exists whole from the start (zeros: nothing counted
    // yet; the lines, invalid, are set by the first lone opener's recovery).
    records_.make_whole();
}

namespace {

// The counters and the shard table, read with one pread.
constexpr size_t span = size_t(lock_file::shard_table_at - lock_file::counters_at) + lock_file::shard_table_size;
const unsigned char *line_in(const unsigned char *b, unsigned shard) {
    return b + (lock_file::line_at(shard) - lock_file::counters_at);
}

} // namespace

std::vector<unsigned> Ledger::load(unsigned char *b, bool *record_ok) const {
    std::vector<unsigned> bad;
    records_.read(lock_file::counters_at, b, span, [&](const unsigned char *read) {
        bad.clear();
        for (unsigned shard = 0; shard < lock_file::shard_lines; shard++) {
            lock_file::ShardLine line;
            if (!lock_file::decode_line(shard, line_in(read, shard), &line))
                bad.push_back(shard);
        }
        lock_file::Counters c;
        *record_ok = lock_file::decode_counters(read, &c);
        return bad.empty() && *record_ok;
    });
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
    for (unsigned shard = 0; shard < lock_file::shard_lines; shard++) {
        lock_file::ShardLine line;
        lock_file::decode_line(shard, line_in(b, shard), &line);
        t.bytes += line.bytes;
        t.entries += line.entries;
    }
    lock_file::Counters c;
    if (lock_file::decode_counters(b, &c))
        static_cast<lock_file::Counters &>(t) = c;
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
    unsigned char b[lock_file::counters_size];
    lock_file::encode_counters(t, b);
    records_.write(lock_file::counters_at, b, sizeof b);
}

void Ledger::set_shard(unsigned shard, uint64_t bytes, uint64_t entries) {
    unsigned char b[lock_file::line_size];
    lock_file::encode_line(shard, lock_file::ShardLine{bytes, entries}, b);
    records_.write(lock_file::line_at(shard), b, sizeof b);
}

bool Ledger::get_shard(unsigned shard, uint64_t *bytes, uint64_t *entries) const {
    unsigned char b[lock_file::line_size];
    lock_file::ShardLine line;
    bool ok = false;
    // A torn read is read again; all zeros were never written.
    records_.read(lock_file::line_at(shard), b, sizeof b, [&](const unsigned char *read) {
        ok = lock_file::decode_line(shard, read, &line);
        return ok || lock_file::all_zero(read, sizeof b);
    });
    *bytes = line.bytes;
    *entries = line.entries;
    return ok;
}

std::array<Ledger::Line, 256> Ledger::lines() const {
    unsigned char table[lock_file::shard_table_size];
    records_.read_once(lock_file::shard_table_at, table, sizeof table);
    std::array<Line, 256> out;
    for (unsigned shard = 0; shard < lock_file::shard_lines; shard++) {
        lock_file::ShardLine line;
        out[shard].ok = lock_file::decode_line(shard, table + lock_file::line_size * shard, &line);
        out[shard].bytes = line.bytes;
        out[shard].entries = line.entries;
    }
    return out;
}

} // namespace fsc
