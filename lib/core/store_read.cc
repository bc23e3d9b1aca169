// Reads: a get's lookup, lock-free (find, try_find, read_packed, and
// find_unlocked while a writer holds the shard), else under the shard lock
// (find_locked); damaged entry files found lock-free are reported, and go
// when the caller has them repaired (repair); foreach walks every entry.
#include "store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "clock.h"
#include "error.h"
#include "file_ops.h"
#include "fs_kind.h"
#include "shard_txn.h"
#include "store_shared.h"

namespace fsc {

namespace {

// A get reads the header, the key and this much of the value in one pread.
constexpr size_t first_read = 8192;
// Inline values up to this size are loaded and verified by the get itself.
constexpr uint64_t preload_limit = 1 << 20;

} // namespace

Store::Lookup Store::damaged(const Key &key, int dir, const std::string &name, const std::string &payload, Fd fd,
                             const std::string &why) {
    Lookup l = Lookup{Lookup::State::damaged, nullptr, nullptr};
    l.damage.reset(new Damage{key.hash.shard(), dir, name, payload, std::move(fd), why});
    return l;
}

void Store::repair(const Damage &d) {
    // Only remove what we judged: a writer may have replaced it meanwhile.
    bool removed = false;
    {
        ShardTxn txn(*this, d.shard, d.dir);
        if (!d.fd || same_file(d.fd.get(), d.dir, d.name)) {
            removed = unlinkat(d.dir, d.name.c_str(), 0) == 0 ||
                      (errno == EISDIR && unlinkat(d.dir, d.name.c_str(), AT_REMOVEDIR) == 0);
            if (!d.payload.empty())
                unlinkat(d.dir, d.payload.c_str(), 0);
            KeyHash h;
            if (removed && is_entry_name(d.name.c_str()) && h.parse_hex(d.name)) {
                auto s = txn.meta.find(txn.head, h);
                if (s && !s->packed)
                    txn.meta.erase(txn.head, h);
            }
        }
        txn.finish();
    }
    fail(Status::corrupt,
         "cache entry '" + shown(d.shard, d.name) + "' is damaged (" + d.why + ")" + (removed ? "; removed" : ""));
}

Store::Found Store::find(const Key &key) {
    const unsigned shard = key.hash.shard();
    const int dir = shard_dir(shard, false);
    if (dir < 0)
        return Found{};
    ShardMeta &m = meta(shard, dir);
    // The table says where the value is; a writer may move or replace it
    // between reading the slot and reading the value: then look again.
    for (int attempt = 0; attempt < 4; attempt++) {
        Slot s;
        uint32_t index;
        switch (m.lookup(key.hash, &s, &index)) {
        case ShardMeta::Lookup::absent:
            return Found{};
        case ShardMeta::Lookup::unsure:
            return find_locked(key, dir);
        case ShardMeta::Lookup::found:
            break;
        }
        auto found = s.packed ? read_packed(key, dir, s, attempt > 0) : try_find(key, dir, &s);
        if (found.settled()) {
            Found f = std::move(found).report();
            if (f.entry)
                f.use = Use{&m, index, s};
            return f;
        }
    }
    return find_locked(key, dir);
}

void Store::stamp_use(const Use &use, int64_t lru_horizon_us) {
    if (use.meta)
        use.meta->touch(use.index, use.slot, now_us(), lru_horizon_us);
}

Store::Lookup Store::read_packed(const Key &key, int dir, const Slot &s, bool refresh) {
    auto pack = reader_pack(key.hash.shard(), dir, refresh);
    if (!pack)
        return Lookup::retry();
    thread_local std::string buf;
    bool other;
    std::string why;
    if (auto h = pack->read_record(s.pack_offset, s.bytes, key.data, key.len, s.created_us, &buf, &other, &why))
        return Lookup::found(entry_of_record(*h, buf, key.len));
    return Lookup::retry(); // another key's record too: a stale descriptor reads old offsets; the lock decides
}

std::unique_ptr<Entry> Store::entry_of_record(const EntryHeader &h, const std::string &record, size_t key_len) {
    EntryInfo info;
    info.size = h.value_size;
    info.created_us = h.created_us;
    const size_t head = EntryHeader::size + key_len;
    return std::make_unique<Entry>(Fd(), info, record.substr(head));
}

Store::Lookup Store::try_find(const Key &key, int dir, const Slot *slot) {
    const std::string hex = key.hash.hex();
    struct stat entry_st;
    Fd fd(open_owned_read(dir, hex.c_str(), &entry_st));
    if (!fd) {
        if (errno == ENOENT && slot && coherent_)
            throw StaleFileError(Status::io, "'" + shown(key.hash.shard(), hex) + "', which the shard's table names, "
                                             "is not there: this client does not see another host's file yet");
        if (errno == ENOENT)
            return Lookup::retry(); // its slot named it: replaced or removed meanwhile
        if (foreign_file(errno))
            return damaged(key, dir, hex, "", Fd(), not_an_entry);
        throw_errno(errno, "open '" + shown(key.hash.shard(), hex) + "'");
    }
    const size_t want = EntryHeader::size + key.len + first_read;
    thread_local std::string buf;
    if (buf.size() < want)
        buf.resize(want);
    // One read: a regular file reads short only at its end.
    ssize_t got;
    while ((got = pread(fd.get(), &buf[0], want, 0)) < 0 && errno == EINTR) {
    }
    if (got < 0)
        throw_errno(errno, "read '" + shown(key.hash.shard(), hex) + "'");
    const size_t n = size_t(got);
    std::string why;
    auto h = EntryHeader::decode(buf.data(), n, &why);
    if (!h)
        return damaged(key, dir, hex, "", std::move(fd), why);
    if (h->key_len != key.len || std::memcmp(buf.data() + EntryHeader::size, key.data, key.len) != 0)
        return Lookup::absent(); // another key with the same hash
    // Network mode: not the value the table names, but (most likely) the
    // file another host replaced, which this client still names.
    if (coherent_ && slot && h->created_us != slot->created_us)
        throw StaleFileError(Status::io, "'" + shown(key.hash.shard(), hex) + "' is not the value the shard's "
                                         "table names: this client still sees the file another host replaced");
    const uint64_t head = EntryHeader::size + key.len;

    EntryInfo info;
    info.size = h->value_size;
    info.offset = h->offset;
    info.created_us = h->created_us;

    if (!h->external()) {
        const uint64_t total = head + h->value_size;
        if (uint64_t(entry_st.st_size) != total)
            return damaged(key, dir, hex, "", std::move(fd), "file size does not match its header");
        info.data_start = head;
        info.value_sum = h->value_sum;
        std::optional<std::string> loaded;
        if (h->value_size <= preload_limit) {
            std::string value(buf.data() + head, size_t(std::min<uint64_t>(n - head, h->value_size)));
            if (value.size() < h->value_size) {
                size_t have = value.size();
                value.resize(size_t(h->value_size));
                if (pread_full(fd.get(), &value[have], value.size() - have, head + have, "cached value") !=
                    value.size() - have)
                    return damaged(key, dir, hex, "", std::move(fd), "value is truncated");
            }
            StreamChecksum sum;
            sum.update(value.data(), value.size());
            if (sum.final() != h->value_sum)
                return damaged(key, dir, hex, "", std::move(fd), "value checksum mismatch");
            loaded = std::move(value);
        }
        return Lookup::found(std::make_unique<Entry>(std::move(fd), info, std::move(loaded)));
    }

    if (n != head)
        return damaged(key, dir, hex, "", std::move(fd), "file size does not match its header");
    const std::string payload = payload_name(hex, h->payload_gen);
    struct stat st;
    Fd pfd(open_owned_read(dir, payload.c_str(), &st));
    if (!pfd || uint64_t(st.st_size) != h->value_size) {
        const int err = errno;
        if (!same_file(fd.get(), dir, hex))
            return Lookup::retry(); // replaced meanwhile: read the new entry
        if (!pfd && err != ENOENT && !foreign_file(err))
            throw_errno(err, "open '" + shown(key.hash.shard(), payload) + "'");
        return damaged(key, dir, hex, payload, std::move(fd),
                       pfd ? "payload size does not match"
                           : err == ENOENT ? "its payload file is missing" : "its payload is not a regular file");
    }
    info.data_start = 0;
    info.value_sum = h->value_sum;
    if (verify_payloads_ && checksum_file(pfd.get(), h->value_size, "'" + shown(key.hash.shard(), payload) + "'") !=
                                std::optional<uint64_t>(h->value_sum))
        return damaged(key, dir, hex, payload, std::move(fd), "payload checksum mismatch");
    return Lookup::found(std::make_unique<Entry>(std::move(pfd), info, std::nullopt));
}

Store::Found Store::find_locked(const Key &key, int dir, bool wait) {
    const unsigned shard = key.hash.shard();
    std::optional<Slot> s;
    std::unique_ptr<Entry> entry;
    std::string why, where = shown(shard, "pack");
    {
        // Readers never wait for a writer (it may be stopped inside its change).
        std::unique_ptr<ShardTxn> holder;
        try {
            holder = std::make_unique<ShardTxn>(static_cast<ShardHost &>(*this), shard, dir, wait); // a private base: the cast is made here, where it is reachable
        } catch (const ShardBusy &) {
            return find_unlocked(key, dir);
        }
        ShardTxn &txn = *holder;
        s = txn.meta.find(txn.head, key.hash);
        if (s && s->packed) {
            auto pack = txn.pack(false); // the table was settled by the txn
            if (pack)
                where = shown(shard, PackFile::name(pack->gen));
            std::string buf;
            bool other = false;
            std::optional<EntryHeader> h;
            if (!pack)
                why = "its pack file is missing";
            else
                h = pack->read_record(s->pack_offset, s->bytes, key.data, key.len, s->created_us, &buf, &other, &why);
            if (h) {
                entry = entry_of_record(*h, buf, key.len);
                why.clear();
            } else if (other) {
                why.clear(); // another key with the same digest: a miss
            } else {
                // Damaged: the record goes (killed before its slot, see
                // drop_value), its bytes count as dead. Where no record
                // starts, the table is what is damaged: nothing is written
                // there, and the shard's accounts are taken again.
                if (pack && PackFile::is_live_record(buf.data()))
                    drop_value(txn, dir, *s);
                else
                    txn.needs_reconcile = true;
                txn.meta.erase(txn.head, key.hash);
                // Copied away from, the damage leaves no trace a scan would trip on.
                if (pack)
                    compact(txn, dir);
            }
        }
        txn.finish();
    }
    if (!why.empty())
        fail(Status::corrupt, "a record in '" + where + "' is damaged (" + why + "); removed");
    if (!s || s->packed)
        return Found{std::move(entry), Use{}, nullptr};
    return try_find(key, dir, s ? &*s : nullptr).report();
}

Store::Found Store::find_unlocked(const Key &key, int dir) {
    ShardMeta &m = meta(key.hash.shard(), dir);
    std::optional<Slot> gone; // a slot whose value was looked for where it must be, and was not there
    for (int attempt = 0; attempt < 64; attempt++) {
        const std::optional<MetaHeader> head = m.header();
        if (head && head->dirty == dirty_rewrite) {
            if (Lookup e = find_in_files(key, dir, *head); e.settled())
                return std::move(e).report();
            continue; // the shard changed meanwhile
        }
        Slot s;
        uint32_t index;
        const ShardMeta::Lookup found = m.lookup(key.hash, &s, &index);
        if (found == ShardMeta::Lookup::absent)
            return Found{};
        if (found == ShardMeta::Lookup::unsure)
            continue; // a slot read while written, or a header: look again
        bool missing = true; // an entry file that is not there (or was replaced)
        Lookup e = s.packed ? read_slot_unlocked(key, dir, s, &missing) : try_find(key, dir, &s);
        if (e.settled())
            return std::move(e).report();
        // The same slot twice, its value missing both times: the writer is
        // removing the value (were it dead, recovery would drop the slot). A
        // slot that changed is a writer replacing the value: look again.
        if (missing && gone && gone->created_us == s.created_us && gone->packed == s.packed &&
            gone->pack_offset == s.pack_offset && gone->payload_gen == s.payload_gen)
            return Found{};
        gone = missing ? std::optional<Slot>(s) : std::nullopt;
    }
    // Slots that keep failing their checks (damage): only the lock can tell.
    return find_locked(key, dir, true);
}

Store::Lookup Store::read_slot_unlocked(const Key &key, int dir, const Slot &s, bool *missing) {
    const unsigned shard = key.hash.shard();
    std::string buf, why;
    bool other;
    *missing = false;
    const uint64_t gen = meta(shard, dir).header().value_or(MetaHeader{}).pack_gen;
    if (auto p = gen ? pack_of(shard, dir, gen) : nullptr) {
        if (auto h = p->read_record(s.pack_offset, s.bytes, key.data, key.len, s.created_us, &buf, &other, &why))
            return Lookup::found(entry_of_record(*h, buf, key.len));
        *missing = true;
    }
    auto p = newest_pack(shard, dir);
    if (auto h = p ? p->read_record(s.pack_offset, s.bytes, key.data, key.len, s.created_us, &buf, &other, &why)
                   : std::nullopt)
        return Lookup::found(entry_of_record(*h, buf, key.len));
    return Lookup::retry();
}

Store::Lookup Store::find_in_files(const Key &key, int dir, const MetaHeader &head) {
    // The key's entry file; else its newest live record in the pack the
    // header names, up to the end it gives (past it, appends nobody
    // committed). While a table is rewritten, its shard's files hold its
    // values: a value's file or record goes before its slot does, and a
    // set's is there before its slot is.
    if (Lookup e = try_find(key, dir); e.state == Lookup::State::found || e.state == Lookup::State::damaged)
        return e;
    const unsigned shard = key.hash.shard();
    // Nothing found is a miss only if the table is still in the rewrite
    // that header tells of: else the pack may have been replaced meanwhile.
    auto absent = [&]() -> Lookup {
        const auto now = meta(shard, dir).header();
        if (now && now->dirty == head.dirty && now->rewrites == head.rewrites && now->pack_gen == head.pack_gen)
            return Lookup::absent();
        return Lookup::retry();
    };
    auto pack = head.pack_gen ? pack_of(shard, dir, head.pack_gen) : nullptr;
    if (!pack)
        return absent();
    const std::string where = shown(shard, PackFile::name(pack->gen));
    std::optional<PackFile::Record> newest;
    pack->scan(
        [&](const PackFile::Record &r) {
            if (r.live && !r.damaged && r.offset < head.pack_end && r.key.size() == key.len &&
                std::memcmp(r.key.data(), key.data, key.len) == 0 &&
                (!newest || r.header.created_us >= newest->header.created_us))
                newest = r;
        },
        where);
    if (!newest)
        return absent();
    std::string buf, why;
    bool other;
    const uint64_t len = EntryHeader::size + key.len + newest->header.value_size;
    if (auto h = pack->read_record(newest->offset, len, key.data, key.len, newest->header.created_us, &buf, &other, &why))
        return Lookup::found(entry_of_record(*h, buf, key.len));
    return absent();
}

void Store::foreach(const Visitor &visit) {
    for (unsigned shard = 0; shard < 256; shard++) {
        const int dir = shard_dir(shard, false);
        if (dir < 0)
            continue;
        MetaHeader head;
        std::vector<Slot> slots;
        meta(shard, dir).read_all(&head, &slots);
        for (const Slot &s : slots) {
            std::string key, why;
            std::optional<EntryHeader> h;
            if (!s.packed) {
                h = peek(dir, s.hash.hex(), &key, &why);
            } else {
                // A descriptor older than the slot's pack reads another
                // record there: then once more through the current pack.
                for (int attempt = 0; attempt < 2 && !h; attempt++) {
                    auto pack = reader_pack(shard, dir, attempt > 0);
                    std::optional<PackFile::Record> r;
                    if (pack)
                        r = pack->read_at(s.pack_offset, s.bytes, shown(shard, PackFile::name(pack->gen)));
                    if (r && r->live && r->header.created_us == s.created_us &&
                        KeyHash::of(r->key.data(), r->key.size()).bytes == s.hash.bytes) {
                        h = r->header;
                        key = r->key;
                    }
                }
            }
            if (h && !visit(key, *h))
                return;
        }
    }
}

} // namespace fsc
