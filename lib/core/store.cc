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
#include "shard_txn.h"
#include "store_shared.h"

namespace fsc {

namespace {

// A get reads the header, the key and this much of the value in one pread.
constexpr size_t first_read = 8192;
// Inline values up to this size are loaded and verified by the get itself.
constexpr uint64_t preload_limit = 1 << 20;

} // namespace

const char not_an_entry[] = "a symbolic link or something not a regular file stands where an entry should be";

bool same_file(int fd, int dir, const std::string &name) {
    struct stat a, b;
    return fstat(fd, &a) == 0 && fstatat(dir, name.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

Change line_of(const MetaHeader &head) {
    return Change{int64_t(head.bytes + ShardMeta::size_after(head) + head.pack_overhead()), int64_t(head.count)};
}

bool is_entry_name(const char *name) {
    size_t n = 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return n == 32;
}

Store::Store(int base, std::string base_path, std::shared_ptr<LockTable> locks, Ledger &ledger, bool durable,
             uint64_t pack_limit, bool verify_payloads, const Sharing &sharing)
    : base_(base), base_path_(std::move(base_path)), locks_(std::move(locks)), ledger_(ledger), durable_(durable),
      sharing_(sharing), pack_limit_(pack_limit), verify_payloads_(verify_payloads) {
    for (auto &fd : shard_fds_)
        fd.store(-1);
    for (auto &m : metas_)
        m.store(nullptr);
    temp_dir_.reset(openat(base_, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!temp_dir_)
        throw_errno(errno, "open '" + base_path_ + "/tmp'");
    shards_dir_.reset(openat(base_, "shards", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!shards_dir_)
        throw_errno(errno, "open '" + base_path_ + "/shards'");
}

void Store::lock_for_fork() {
    packs_mu_.lock();
}

void Store::unlock_after_fork() {
    packs_mu_.unlock();
}

Store::~Store() {
    for (auto &m : metas_)
        delete m.load();
    for (auto &fd : shard_fds_)
        if (fd.load() >= 0)
            ::close(fd.load());
}

ShardMeta &Store::meta(unsigned shard, int dir) {
    ShardMeta *m = metas_[shard].load(std::memory_order_acquire);
    if (m)
        return *m;
    auto fresh = std::make_unique<ShardMeta>(dir, shown(shard, "meta"), sharing_.file_mode());
    ShardMeta *expected = nullptr;
    std::lock_guard<std::mutex> g(packs_mu_); // not across a fork (lock_for_fork)
    if (metas_[shard].compare_exchange_strong(expected, fresh.get()))
        return *fresh.release();
    return *expected;
}

std::string Store::payload_name(const std::string &hex, uint64_t gen) { return hex + "." + hex64(gen); }

bool Store::payload_fits(int dir, const std::string &hex, const EntryHeader &h) {
    struct stat st;
    return !h.external() || (fstatat(dir, payload_name(hex, h.payload_gen).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                             S_ISREG(st.st_mode) && uint64_t(st.st_size) == h.value_size);
}

std::string Store::shown(unsigned shard, const std::string &name) const {
    return base_path_ + "/shards/" + hex_byte(shard) + "/" + name;
}

int Store::shard_dir(unsigned shard, bool create) {
    int fd = shard_fds_[shard].load(std::memory_order_acquire);
    if (fd >= 0)
        return fd;
    const std::string name = hex_byte(shard);
    bool made = false;
    for (int attempt = 0;; attempt++) {
        fd = openat(shards_dir_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0)
            break;
        if ((errno == ENOTDIR || errno == ELOOP) && attempt < 3) {
            // Not a directory of the cache's: it goes, and the shard starts empty.
            remove_foreign(shards_dir_.get(), name.c_str());
            continue;
        }
        if (errno != ENOENT)
            throw_errno(errno, "open '" + base_path_ + "/shards/" + name + "'");
        if (!create)
            return -1;
        made = mkdirat(shards_dir_.get(), name.c_str(), sharing_.dir_mode() & 0777) == 0;
        if (!made && errno != EEXIST)
            throw_errno(errno, "mkdir '" + base_path_ + "/shards/" + name + "'");
    }
    if (made) {
        try {
            enforce_mode(fd, sharing_.dir_mode(), base_path_ + "/shards/" + name);
        } catch (...) {
            ::close(fd);
            throw;
        }
    }
    int expected = -1;
    {
        std::lock_guard<std::mutex> g(packs_mu_); // not across a fork (lock_for_fork)
        if (shard_fds_[shard].compare_exchange_strong(expected, fd))
            return fd;
    }
    ::close(fd);
    return expected;
}

std::optional<EntryHeader> Store::peek(int dir, const std::string &name, std::string *key, std::string *why) {
    why->clear();
    Fd fd(open_owned(dir, name.c_str(), O_RDONLY));
    if (!fd) {
        if (errno == ENOENT)
            return std::nullopt;
        if (foreign_file(errno)) {
            *why = not_an_entry;
            return std::nullopt;
        }
        throw_errno(errno, "open '" + name + "'");
    }
    std::string buf(EntryHeader::size + 4096, '\0');
    size_t n = pread_full(fd.get(), &buf[0], buf.size(), 0, "entry '" + name + "'");
    if (n >= EntryHeader::size) {
        uint32_t key_len;
        std::memcpy(&key_len, &buf[8], 4); // little-endian, as the format says
        if (key_len > 4096 && key_len <= max_key_len) {
            buf.resize(EntryHeader::size + key_len);
            n = pread_full(fd.get(), &buf[0], buf.size(), 0, "entry '" + name + "'");
        }
    }
    auto h = EntryHeader::decode(buf.data(), n, why);
    if (h)
        key->assign(buf.data() + EntryHeader::size, h->key_len);
    return h;
}

void Store::discard(unsigned shard, int dir, const std::string &name, const std::string &payload, int fd,
                    const std::string &why) {
    // Only remove what we judged: a writer may have replaced it meanwhile.
    bool removed = false;
    {
        ShardTxn txn(*this, shard, dir);
        if (fd < 0 || same_file(fd, dir, name)) {
            removed = unlinkat(dir, name.c_str(), 0) == 0 ||
                      (errno == EISDIR && unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0);
            if (!payload.empty())
                unlinkat(dir, payload.c_str(), 0);
            KeyHash h;
            if (removed && is_entry_name(name.c_str()) && h.parse_hex(name)) {
                auto s = txn.meta.find(txn.head, h);
                if (s && !s->packed)
                    txn.meta.erase(txn.head, h);
            }
        }
        txn.finish();
    }
    fail(Status::corrupt, "cache entry '" + shown(shard, name) + "' is damaged (" + why + ")" + (removed ? "; removed" : ""));
}

std::unique_ptr<Entry> Store::find(const Key &key, const std::function<int64_t()> &lru_horizon) {
    const unsigned shard = key.hash.shard();
    const int dir = shard_dir(shard, false);
    if (dir < 0)
        return nullptr;
    ShardMeta &m = meta(shard, dir);
    // The table says where the value is; a writer may move or replace it
    // between reading the slot and reading the value: then look again.
    for (int attempt = 0; attempt < 4; attempt++) {
        Slot s;
        uint32_t index;
        switch (m.lookup(key.hash, &s, &index)) {
        case ShardMeta::Lookup::absent:
            return nullptr;
        case ShardMeta::Lookup::unsure:
            return find_locked(key, dir);
        case ShardMeta::Lookup::found:
            break;
        }
        auto found = s.packed ? read_packed(key, dir, s, attempt > 0) : try_find(key, dir);
        if (found) {
            if (*found)
                m.touch(index, s, now_us(), lru_horizon());
            return std::move(*found);
        }
    }
    return find_locked(key, dir);
}

std::shared_ptr<PackFile> Store::pack_of(unsigned shard, int dir, uint64_t gen) {
    {
        std::lock_guard<std::mutex> g(packs_mu_);
        if (packs_[shard] && packs_[shard]->gen == gen)
            return packs_[shard];
    }
    auto p = PackFile::open(dir, gen, shown(shard, PackFile::name(gen)));
    if (p)
        set_pack(shard, p);
    return p;
}

std::shared_ptr<PackFile> Store::reader_pack(unsigned shard, int dir, bool refresh) {
    if (!refresh) {
        std::lock_guard<std::mutex> g(packs_mu_);
        if (packs_[shard])
            return packs_[shard];
    }
    // value_or: no read of a missing header's bytes, even speculatively.
    const uint64_t gen = meta(shard, dir).header().value_or(MetaHeader{}).pack_gen;
    return gen ? pack_of(shard, dir, gen) : nullptr;
}

void Store::set_pack(unsigned shard, std::shared_ptr<PackFile> p) {
    std::lock_guard<std::mutex> g(packs_mu_);
    packs_[shard] = std::move(p);
}

std::optional<std::unique_ptr<Entry>> Store::read_packed(const Key &key, int dir, const Slot &s, bool refresh) {
    auto pack = reader_pack(key.hash.shard(), dir, refresh);
    if (!pack)
        return std::nullopt;
    thread_local std::string buf;
    bool other;
    std::string why;
    if (auto h = pack->read_record(s.pack_offset, s.bytes, key.data, key.len, s.created_us, &buf, &other, &why))
        return entry_of_record(*h, buf, key.len);
    return std::nullopt; // another key's record too: a stale descriptor reads old offsets; the lock decides
}

std::unique_ptr<Entry> Store::entry_of_record(const EntryHeader &h, const std::string &record, size_t key_len) {
    EntryInfo info;
    info.size = h.value_size;
    info.created_us = h.created_us;
    const size_t head = EntryHeader::size + key_len;
    return std::make_unique<Entry>(Fd(), info, record.substr(head));
}

std::optional<std::unique_ptr<Entry>> Store::try_find(const Key &key, int dir) {
    const std::string hex = key.hash.hex();
    Fd fd(open_owned(dir, hex.c_str(), O_RDONLY));
    if (!fd) {
        if (errno == ENOENT)
            return std::nullopt; // its slot named it: replaced or removed meanwhile
        if (foreign_file(errno))
            discard(key.hash.shard(), dir, hex, "", -1, not_an_entry);
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
        discard(key.hash.shard(), dir, hex, "", fd.get(), why);
    if (h->key_len != key.len || std::memcmp(buf.data() + EntryHeader::size, key.data, key.len) != 0)
        return std::unique_ptr<Entry>(); // another key with the same hash
    const uint64_t head = EntryHeader::size + key.len;

    EntryInfo info;
    info.size = h->value_size;
    info.offset = h->offset;
    info.created_us = h->created_us;

    if (!h->external()) {
        const uint64_t total = head + h->value_size;
        if (n < want ? n != total : [&] {
                struct stat st;
                return fstat(fd.get(), &st) != 0 || uint64_t(st.st_size) != total;
            }())
            discard(key.hash.shard(), dir, hex, "", fd.get(), "file size does not match its header");
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
                    discard(key.hash.shard(), dir, hex, "", fd.get(), "value is truncated");
            }
            StreamChecksum sum;
            sum.update(value.data(), value.size());
            if (sum.final() != h->value_sum)
                discard(key.hash.shard(), dir, hex, "", fd.get(), "value checksum mismatch");
            loaded = std::move(value);
        }
        return std::make_unique<Entry>(std::move(fd), info, std::move(loaded));
    }

    if (n != head)
        discard(key.hash.shard(), dir, hex, "", fd.get(), "file size does not match its header");
    const std::string payload = payload_name(hex, h->payload_gen);
    Fd pfd(open_owned(dir, payload.c_str(), O_RDONLY));
    struct stat st;
    if (!pfd || fstat(pfd.get(), &st) != 0 || uint64_t(st.st_size) != h->value_size) {
        const int err = errno;
        if (!same_file(fd.get(), dir, hex))
            return std::nullopt; // replaced meanwhile: read the new entry
        if (!pfd && err != ENOENT && !foreign_file(err))
            throw_errno(err, "open '" + shown(key.hash.shard(), payload) + "'");
        discard(key.hash.shard(), dir, hex, payload, fd.get(),
                pfd ? "payload size does not match"
                    : err == ENOENT ? "its payload file is missing" : "its payload is not a regular file");
    }
    info.data_start = 0;
    info.value_sum = h->value_sum;
    if (verify_payloads_ && checksum_file(pfd.get(), h->value_size, "'" + shown(key.hash.shard(), payload) + "'") !=
                                std::optional<uint64_t>(h->value_sum))
        discard(key.hash.shard(), dir, hex, payload, fd.get(), "payload checksum mismatch");
    return std::make_unique<Entry>(std::move(pfd), info, std::nullopt);
}

std::unique_ptr<Entry> Store::find_locked(const Key &key, int dir, bool wait) {
    const unsigned shard = key.hash.shard();
    std::optional<Slot> s;
    std::unique_ptr<Entry> entry;
    std::string why, where = shown(shard, "pack");
    {
        // Readers never wait for a writer (it may be stopped inside its change).
        std::unique_ptr<ShardTxn> holder;
        try {
            holder = std::make_unique<ShardTxn>(*this, shard, dir, wait);
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
        return entry;
    auto found = try_find(key, dir);
    return found ? std::move(*found) : nullptr;
}

std::unique_ptr<Entry> Store::find_unlocked(const Key &key, int dir) {
    ShardMeta &m = meta(key.hash.shard(), dir);
    std::optional<Slot> gone; // a slot whose value was looked for where it must be, and was not there
    for (int attempt = 0; attempt < 64; attempt++) {
        const std::optional<MetaHeader> head = m.header();
        if (head && head->dirty == dirty_rewrite) {
            if (auto e = find_in_files(key, dir, *head))
                return std::move(*e);
            continue; // the shard changed meanwhile
        }
        Slot s;
        uint32_t index;
        const ShardMeta::Lookup found = m.lookup(key.hash, &s, &index);
        if (found == ShardMeta::Lookup::absent)
            return nullptr;
        if (found == ShardMeta::Lookup::unsure)
            continue; // a slot read while written, or a header: look again
        bool missing = true; // an entry file that is not there (or was replaced)
        auto e = s.packed ? read_slot_unlocked(key, dir, s, &missing) : try_find(key, dir);
        if (e)
            return std::move(*e);
        // The same slot twice, its value missing both times: the writer is
        // removing the value (were it dead, recovery would drop the slot). A
        // slot that changed is a writer replacing the value: look again.
        if (missing && gone && gone->created_us == s.created_us && gone->packed == s.packed &&
            gone->pack_offset == s.pack_offset && gone->payload_gen == s.payload_gen)
            return nullptr;
        gone = missing ? std::optional<Slot>(s) : std::nullopt;
    }
    // Slots that keep failing their checks (damage): only the lock can tell.
    return find_locked(key, dir, true);
}

std::optional<std::unique_ptr<Entry>> Store::read_slot_unlocked(const Key &key, int dir, const Slot &s,
                                                                 bool *missing) {
    const unsigned shard = key.hash.shard();
    std::string buf, why;
    bool other;
    *missing = false;
    const uint64_t gen = meta(shard, dir).header().value_or(MetaHeader{}).pack_gen;
    if (auto p = gen ? pack_of(shard, dir, gen) : nullptr) {
        if (auto h = p->read_record(s.pack_offset, s.bytes, key.data, key.len, s.created_us, &buf, &other, &why))
            return entry_of_record(*h, buf, key.len);
        *missing = true;
    }
    auto p = newest_pack(shard, dir);
    if (auto h = p ? p->read_record(s.pack_offset, s.bytes, key.data, key.len, s.created_us, &buf, &other, &why)
                   : std::nullopt)
        return entry_of_record(*h, buf, key.len);
    return std::nullopt;
}

std::optional<std::unique_ptr<Entry>> Store::find_in_files(const Key &key, int dir, const MetaHeader &head) {
    // The key's entry file; else its newest live record in the pack the
    // header names, up to the end it gives (past it, appends nobody
    // committed). While a table is rewritten, its shard's files hold its
    // values: a value's file or record goes before its slot does, and a
    // set's is there before its slot is.
    if (auto e = try_find(key, dir); e && *e)
        return std::move(*e);
    const unsigned shard = key.hash.shard();
    // Nothing found is a miss only if the table is still in the rewrite
    // that header tells of: else the pack may have been replaced meanwhile.
    auto absent = [&]() -> std::optional<std::unique_ptr<Entry>> {
        const auto now = meta(shard, dir).header();
        if (now && now->dirty == head.dirty && now->rewrites == head.rewrites && now->pack_gen == head.pack_gen)
            return std::unique_ptr<Entry>();
        return std::nullopt;
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
        return entry_of_record(*h, buf, key.len);
    return absent();
}

// A record is killed before the slot naming it is erased: a writer killed
// in between leaves a dirty shard whose rebuild does not bring it back.
void Store::drop_value(ShardTxn &txn, int dir, const Slot &old, uint64_t records_end) {
    if (old.packed) {
        if (old.pack_offset + old.bytes > std::min(records_end, txn.head.pack_end)) {
            // A damaged table's slot: nothing of it is written to, the
            // shard's accounts are taken again from its records.
            txn.needs_reconcile = true;
            return;
        }
        txn.head.pack_dead += old.bytes;
        if (auto pack = txn.pack(false))
            pack->kill(old.pack_offset, shown(old.hash.shard(), PackFile::name(pack->gen)));
        return;
    }
    const std::string hex = old.hash.hex();
    if (old.payload_gen != 0)
        unlinkat(dir, payload_name(hex, old.payload_gen).c_str(), 0);
}

Change Store::commit(const Key &key, TempFile &temp, const Payload *payload, const Slot &slot) {
    const unsigned shard = key.hash.shard();
    const int dir = shard_dir(shard, true);
    const std::string hex = key.hash.hex();
    Change change;
    {
        ShardTxn txn(*this, shard, dir);
        txn.untouched();
        // The payload goes in first, under a name no entry uses yet; the
        // entry's rename is the commit. Both happen under the shard lock, so
        // fsc_verify never sees a payload that is about to be named.
        if (payload && renameat(payload->from_dir, payload->from_name.c_str(), dir, payload->name.c_str()) != 0) {
            if (errno == EXDEV)
                fail(Status::xdev, "cannot move '" + payload->from_name + "' into '" + base_path_ +
                                       "': it is on another filesystem");
            throw_errno(errno, "rename '" + payload->from_name + "' -> '" + shown(shard, payload->name) + "'");
        }
        // A moved file checked by the caller may have been swapped for a
        // link or a FIFO since: what came in must be a regular file.
        struct stat st;
        if (payload && payload->from_dir == AT_FDCWD &&
            (fstatat(dir, payload->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))) {
            if (renameat(dir, payload->name.c_str(), payload->from_dir, payload->from_name.c_str()) != 0)
                unlinkat(dir, payload->name.c_str(), 0);
            fail(Status::inval, "'" + payload->from_name + "' was replaced by something not a regular file while it was moved");
        }
        if (renameat(temp_dir_.get(), temp.name().c_str(), dir, hex.c_str()) != 0) {
            int err = errno;
            if (payload && renameat(dir, payload->name.c_str(), payload->from_dir, payload->from_name.c_str()) != 0)
                unlinkat(dir, payload->name.c_str(), 0);
            throw_errno(err, "rename 'tmp/" + temp.name() + "' -> '" + shown(shard, hex) + "'");
        }
        txn.changing();
        temp.commit();
        Slot replaced;
        // Dropped while the shard is still marked dirty: a crash here leaves
        // nothing that recovery would not find.
        if (txn.meta.upsert(txn.head, slot, &replaced))
            drop_value(txn, dir, replaced);
        change = txn.finish();
        if (durable_)
            txn.meta.sync();
    }
    if (durable_)
        sync_fd(dir, "'" + base_path_ + "/shards/" + hex_byte(shard) + "'");
    return change;
}

Change Store::put_bytes(const Key &key, const void *data, size_t len, int64_t created_us) {
    if (packs(len))
        return put_packed(key, data, len, created_us);
    EntryHeader h;
    h.key_len = uint32_t(key.len);
    h.value_size = len;
    h.created_us = created_us;
    StreamChecksum sum;
    sum.update(data, len);
    h.value_sum = sum.final();
    auto head = h.encode(key.data);

    TempFile temp(temp_dir_.get(), base_path_ + "/tmp", sharing_.file_mode());
    struct iovec iov[3] = {{head.data(), head.size()},
                           {const_cast<void *>(key.data), key.len},
                           {const_cast<void *>(data), len}};
    write_all(temp.fd(), iov, len ? 3 : 2, "'tmp/" + temp.name() + "'");
    if (durable_)
        sync_fd(temp.fd(), "'tmp/" + temp.name() + "'");
    temp.close_fd();
    return commit(key, temp, nullptr, Slot{key.hash, charge(key.len, len), created_us, 0, created_us});
}

Change Store::put_packed(const Key &key, const void *data, size_t len, int64_t created_us) {
    const std::string record = pack_record(key.data, key.len, data, len, created_us);
    const unsigned shard = key.hash.shard();
    const int dir = shard_dir(shard, true);
    ShardTxn txn(*this, shard, dir);
    txn.untouched();
    const std::shared_ptr<PackFile> pack = txn.pack_to_append();
    const std::string where = shown(shard, PackFile::name(pack->gen));
    // Appended past the end the table knows: until the slot names it, the
    // record is nobody's, and a crash leaves only bytes the next append reuses.
    struct iovec iov = {const_cast<char *>(record.data()), record.size()};
    if (pwritev(pack->fd.get(), &iov, 1, off_t(txn.head.pack_end)) != ssize_t(record.size())) {
        const int err = errno ? errno : ENOSPC;
        (void)!ftruncate(pack->fd.get(), off_t(txn.head.pack_end));
        throw_errno(err, "write '" + where + "'");
    }
    txn.changing();
    if (durable_ && fdatasync(pack->fd.get()) != 0)
        throw_errno(errno, "fsync '" + where + "'");
    Slot slot{key.hash, record.size(), created_us, 0, created_us, true, txn.head.pack_end};
    txn.head.pack_end += record.size();
    Slot replaced;
    bool was_there;
    try {
        was_there = txn.meta.upsert(txn.head, slot, &replaced);
    } catch (...) {
        // The set fails: its record must not come back when the shard,
        // left dirty, is rebuilt from its files.
        try {
            pack->kill(slot.pack_offset, where);
        } catch (...) {
        }
        throw;
    }
    if (was_there) {
        // The key's entry file (the table no longer names it) goes before
        // its payload: a reader that opened it then finds it gone, never an
        // entry whose payload is missing.
        if (!replaced.packed)
            unlinkat(dir, key.hash.hex().c_str(), 0);
        drop_value(txn, dir, replaced, slot.pack_offset);
    }
    const Change change = txn.finish();
    if (durable_)
        txn.meta.sync(); // the record is on the disk already; now the slot that names it
    return change;
}

Change Store::put_file(const Key &key, int src, const char *path, bool move, uint64_t size, uint64_t offset,
                       int64_t created_us) {
    const uint64_t gen = random64();
    Payload payload;
    payload.name = payload_name(key.hash.hex(), gen);
    std::unique_ptr<TempFile> copy;
    EntryHeader h;
    if (move) {
        payload.from_dir = AT_FDCWD;
        payload.from_name = path;
        h.value_sum = payload_checksum(payload, size);
    } else {
        copy = std::make_unique<TempFile>(temp_dir_.get(), base_path_ + "/tmp", sharing_.file_mode());
        h.value_sum = copy_contents(src, copy->fd(), size, "into 'tmp/" + copy->name() + "'");
        if (durable_)
            sync_fd(copy->fd(), "'tmp/" + copy->name() + "'");
        copy->close_fd();
        payload.from_dir = temp_dir_.get();
        payload.from_name = copy->name();
    }
    h.flags = EntryHeader::flag_external;
    h.key_len = uint32_t(key.len);
    h.value_size = size;
    h.offset = std::min(offset, size);
    h.created_us = created_us;
    h.payload_gen = gen;
    auto head = h.encode(key.data);
    TempFile temp(temp_dir_.get(), base_path_ + "/tmp", sharing_.file_mode());
    struct iovec iov[2] = {{head.data(), head.size()}, {const_cast<void *>(key.data), key.len}};
    write_all(temp.fd(), iov, 2, "'tmp/" + temp.name() + "'");
    if (durable_)
        sync_fd(temp.fd(), "'tmp/" + temp.name() + "'");
    temp.close_fd();
    Change c = commit(key, temp, &payload, Slot{key.hash, charge(key.len, size), created_us, gen, created_us});
    if (copy)
        copy->commit();
    return c;
}

uint64_t Store::payload_checksum(const Payload &payload, uint64_t size) {
    // The file to be renamed in is read back whole, so the checksum is of
    // the bytes stored (a copy is checksummed as it is made: copy_contents).
    const std::string shown_name = payload.from_dir == AT_FDCWD ? payload.from_name : "tmp/" + payload.from_name;
    // O_NONBLOCK: a FIFO put in the file's place since it was checked must not hang the set.
    Fd fd(openat(payload.from_dir, payload.from_name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd)
        throw_errno(errno, "open '" + shown_name + "'");
    struct stat st;
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        fail(Status::inval, "'" + shown_name + "' is not a regular file");
    auto sum = checksum_file(fd.get(), size, "'" + shown_name + "'");
    if (!sum)
        fail(Status::io, "'" + shown_name + "' shrank while it was stored");
    return *sum;
}

Change Store::remove(const Key &key, bool *removed) {
    *removed = false;
    const unsigned shard = key.hash.shard();
    const int dir = shard_dir(shard, false);
    if (dir < 0)
        return {};
    const std::string hex = key.hash.hex();
    ShardTxn txn(*this, shard, dir);
    auto slot = txn.meta.find(txn.head, key.hash);
    if (!slot)
        return txn.finish();
    if (slot->packed) {
        // Only this key's record: another key may share the digest.
        auto pack = txn.pack(false);
        std::string buf, why;
        bool other = false;
        if (pack)
            pack->read_record(slot->pack_offset, slot->bytes, key.data, key.len, slot->created_us, &buf, &other, &why);
        if (other)
            return txn.finish();
        drop_value(txn, dir, *slot);
        txn.meta.erase(txn.head, key.hash);
        *removed = true;
        return txn.finish();
    }
    std::string old_key, why;
    auto h = peek(dir, hex, &old_key, &why);
    if (h && (old_key.size() != key.len || std::memcmp(old_key.data(), key.data, key.len) != 0))
        return txn.finish(); // another key with the same digest
    if (unlinkat(dir, hex.c_str(), 0) != 0 && errno != ENOENT)
        throw_errno(errno, "unlink '" + shown(shard, hex) + "'");
    if (h && h->external())
        unlinkat(dir, payload_name(hex, h->payload_gen).c_str(), 0);
    txn.meta.erase(txn.head, key.hash);
    *removed = h.has_value();
    return txn.finish();
}

Change Store::clear() {
    Change change;
    for (unsigned shard = 0; shard < 256; shard++) {
        const int dir = shard_dir(shard, false);
        if (dir < 0)
            continue;
        ShardTxn txn(*this, shard, dir);
        for_each_name(dir, base_path_ + "/shards/" + hex_byte(shard), [&](const char *name) {
            if (std::strcmp(name, "meta") != 0 && unlinkat(dir, name, 0) != 0 && errno != ENOENT)
                throw_errno(errno, "unlink '" + shown(shard, name) + "'");
        });
        txn.head.pack_gen = txn.head.pack_end = txn.head.pack_dead = 0;
        set_pack(shard, nullptr);
        txn.meta.rebuild(txn.head, {});
        change += txn.finish();
    }
    return change;
}

void Store::candidates(bool exhaustive, std::minstd_rand &rng, std::vector<Candidate> *out) {
    std::vector<Slot> slots;
    auto take = [&](unsigned shard) {
        slots.clear();
        const int dir = shard_dir(shard, false);
        if (dir < 0)
            return;
        MetaHeader head;
        if (exhaustive)
            meta(shard, dir).read_all(&head, &slots);
        else
            meta(shard, dir).sample(rng, 32, &slots);
        for (const Slot &s : slots)
            out->push_back(Candidate{shard, s});
    };
    if (exhaustive) {
        for (unsigned shard = 0; shard < 256; shard++)
            take(shard);
        return;
    }
    // A few random shards' windows: near-LRU at a cost that does not grow with the cache.
    for (int tries = 0, found = 0; tries < 64 && found < 8; tries++) {
        size_t before = out->size();
        take(unsigned(rng() % 256));
        found += out->size() > before;
    }
}

Change Store::evict(const Candidate &c, bool free_bytes, bool *removed) {
    *removed = false;
    const int dir = shard_dir(c.shard, false);
    if (dir < 0)
        return {};
    const std::string hex = c.slot.hash.hex();
    ShardTxn txn(*this, c.shard, dir);
    auto now = txn.meta.find(txn.head, c.slot.hash);
    if (!now || now->created_us != c.slot.created_us || now->last_use_us != c.slot.last_use_us)
        return txn.finish(); // replaced, gone or read meanwhile: not the entry that was chosen
    if (!now->packed && unlinkat(dir, hex.c_str(), 0) != 0 && errno != ENOENT)
        return txn.finish(); // cannot be removed (permissions): leave it, never loop on it
    drop_value(txn, dir, *now);
    txn.meta.erase(txn.head, c.slot.hash);
    *removed = true;
    if (now->packed && free_bytes && txn.head.pack_dead * 8 < txn.head.pack_end) {
        // A dead record frees nothing until its pack is compacted. A large
        // pack first loses its oldest eighth, so that the copy pays off.
        constexpr uint64_t small_pack = 16384;
        if (txn.head.pack_end > small_pack) {
            MetaHeader ignored;
            std::vector<Slot> slots;
            txn.meta.read_all(&ignored, &slots);
            std::sort(slots.begin(), slots.end(),
                      [](const Slot &a, const Slot &b) { return a.last_use_us < b.last_use_us; });
            for (const Slot &s : slots) {
                if (txn.head.pack_dead * 8 >= txn.head.pack_end)
                    break;
                if (!s.packed)
                    continue;
                drop_value(txn, dir, s);
                txn.meta.erase(txn.head, s.hash);
            }
        }
        if (txn.head.pack_gen && txn.head.pack_end > PackFile::header_size + txn.head.pack_dead)
            compact(txn, dir);
    }
    return txn.finish();
}

bool Store::compact(ShardTxn &txn, int dir) {
    const unsigned shard = txn.shard();
    auto old = txn.pack(false);
    if (!old)
        return false;
    MetaHeader ignored;
    std::vector<Slot> slots;
    txn.meta.read_all(&ignored, &slots);
    std::vector<Slot *> packed;
    for (Slot &s : slots)
        if (s.packed)
            packed.push_back(&s);
    std::sort(packed.begin(), packed.end(), [](const Slot *a, const Slot *b) { return a->pack_offset < b->pack_offset; });

    const uint64_t gen = random64();
    std::unique_ptr<TempFile> temp_owner;
    std::shared_ptr<PackFile> fresh;
    std::vector<KeyHash> lost;
    uint64_t at = PackFile::header_size;
    try {
        temp_owner = std::make_unique<TempFile>(temp_dir_.get(), base_path_ + "/tmp", sharing_.file_mode());
        TempFile &temp = *temp_owner;
        fresh = PackFile::create_at(temp_dir_.get(), temp.name(), gen, old->seq + 1, "tmp/" + temp.name());
        const std::string old_shown = shown(shard, PackFile::name(old->gen));
        // Records are copied as they are: each is checked again by its readers.
        // The old pack is read in large windows (records in offset order),
        // not one pread per record.
        std::string out, window;
        uint64_t window_at = 0;
        auto flush = [&] {
            if (out.empty())
                return;
            struct iovec iov = {&out[0], out.size()};
            write_all(fresh->fd.get(), &iov, 1, "'tmp/" + temp.name() + "'");
            out.clear();
        };
        if (lseek(fresh->fd.get(), off_t(at), SEEK_SET) < 0)
            throw_errno(errno, "seek 'tmp/" + temp.name() + "'");
        for (Slot *s : packed) {
            if (s->pack_offset < window_at || s->pack_offset + s->bytes > window_at + window.size()) {
                // Up to 1 MiB, no more than the pack holds from here: a small
                // pack is read whole without zeroing a large buffer first.
                const uint64_t left = txn.head.pack_end > s->pack_offset ? txn.head.pack_end - s->pack_offset : 0;
                window.resize(size_t(std::max<uint64_t>(s->bytes, std::min<uint64_t>(1u << 20, left))));
                window_at = s->pack_offset;
                window.resize(pread_full(old->fd.get(), &window[0], window.size(), window_at, "'" + old_shown + "'"));
            }
            const char *record = window.data() + (s->pack_offset - window_at);
            if (s->pack_offset + s->bytes > window_at + window.size() || !PackFile::is_live_record(record)) {
                lost.push_back(s->hash); // damaged: dropped rather than copied
                continue;
            }
            out.append(record, size_t(s->bytes));
            s->pack_offset = at;
            at += s->bytes;
            if (out.size() >= (1u << 20))
                flush();
        }
        flush();
        if (durable_)
            sync_fd(fresh->fd.get(), "'tmp/" + temp.name() + "'");
        if (renameat(temp_dir_.get(), temp.name().c_str(), dir, PackFile::name(gen).c_str()) != 0)
            throw_errno(errno, "rename 'tmp/" + temp.name() + "' -> '" + shown(shard, PackFile::name(gen)) + "'");
        temp.commit();
    } catch (const Error &) {
        // Nothing in the shard changed (a full disk, say): the pack stays
        // as it is, its dead records counted, until a later compaction.
        return false;
    }
    if (!lost.empty())
        slots.erase(std::remove_if(slots.begin(), slots.end(),
                                   [&](const Slot &s) {
                                       return std::find_if(lost.begin(), lost.end(), [&](const KeyHash &h) {
                                                  return h.bytes == s.hash.bytes;
                                              }) != lost.end();
                                   }),
                    slots.end());
    // From here the new pack is the newest: a crash before the table names
    // it leaves a dirty shard, whose rebuild picks the newest pack.
    txn.head.pack_gen = gen;
    txn.head.pack_end = at;
    txn.head.pack_dead = 0;
    txn.meta.rebuild(txn.head, slots);
    unlinkat(dir, PackFile::name(old->gen).c_str(), 0);
    set_pack(shard, fresh);
    if (durable_)
        sync_fd(dir, "'" + base_path_ + "/shards/" + hex_byte(shard) + "'");
    return true;
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
