// Writes: sets (put_bytes, put_packed, put_file, through commit), removals
// (remove, clear, evict and the sampling that picks its candidates), and
// the compaction of a shard's pack.
#include "store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "error.h"
#include "file_ops.h"
#include "shard_txn.h"
#include "store_shared.h"

namespace fsc {

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

Change Store::commit(const Key &key, TempFile &temp, const Payload *payload, const Slot &slot, Lease *lease) {
    const unsigned shard = key.hash.shard();
    const int dir = shard_dir(shard, true);
    const std::string hex = key.hash.hex();
    Change change;
    {
        ShardTxn txn(*this, shard, dir);
        txn.untouched();
        check_lease(lease, key, txn);
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
        if (lease)
            lease->mark = mark_of(slot);
        if (durable_)
            txn.meta.sync();
    }
    if (durable_)
        sync_fd(dir, "'" + base_path_ + "/shards/" + hex_byte(shard) + "'");
    return change;
}

Change Store::put_bytes(const Key &key, const void *data, size_t len, int64_t created_us, Lease *lease) {
    if (packs(len))
        return put_packed(key, data, len, created_us, lease);
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
    return commit(key, temp, nullptr, Slot{key.hash, charge(key.len, len), created_us, 0, created_us}, lease);
}

Change Store::put_packed(const Key &key, const void *data, size_t len, int64_t created_us, Lease *lease) {
    const std::string record = pack_record(key.data, key.len, data, len, created_us);
    const unsigned shard = key.hash.shard();
    const int dir = shard_dir(shard, true);
    ShardTxn txn(*this, shard, dir);
    txn.untouched();
    check_lease(lease, key, txn);
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
    if (lease)
        lease->mark = mark_of(slot);
    return change;
}

Change Store::put_file(const Key &key, int src, const char *path, bool move, uint64_t size, uint64_t offset,
                       int64_t created_us, Lease *lease) {
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
    Change c = commit(key, temp, &payload, Slot{key.hash, charge(key.len, size), created_us, gen, created_us}, lease);
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
        fresh = PackFile::create_in(temp.release_fd(), gen, old->seq + 1, "tmp/" + temp.name());
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
        for (Slot *s : packed) {
            if (s->pack_offset < window_at || s->pack_offset + s->bytes > window_at + window.size()) {
                // Up to 1 MiB, no more than the pack holds from here: a small
                // pack is read whole without zeroing a large buffer first.
                const uint64_t left = txn.head.pack_end > s->pack_offset ? txn.head.pack_end - s->pack_offset : 0;
                window.resize(size_t(std::max<uint64_t>(s->bytes, std::min<uint64_t>(1u << 20, left))));
                window_at = s->pack_offset;
                window.resize(old->read(&window[0], window.size(), window_at, "'" + old_shown + "'"));
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

} // namespace fsc
