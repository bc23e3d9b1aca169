#include "shard_meta.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cerrno>
#include <cstring>

#include "codec.h"
#include "entry_format.h"
#include "error.h"
#include "file_ops.h"
#include "fs_kind.h"
#include "ownership.h"
#include "shard_meta_slot.h"

namespace fsc {

using namespace meta_slot;

namespace {

const unsigned char meta_magic[4] = {'F', 'S', 'C', 'M'};
constexpr uint16_t meta_version = 2;
constexpr size_t head_sum_at = 56;
// The largest table a shard may have: 2^26 slots (4 GiB of metadata).
constexpr uint32_t max_capacity = 1u << 26;

uint32_t capacity_for(uint32_t count) { return std::max(ShardMeta::min_capacity, 2 * count + 2); }

} // namespace

ShardMeta::ShardMeta(int dir, std::string shown, mode_t mode, bool direct) : shown_(std::move(shown)) {
    // Something foreign in its place goes: the table is rebuilt from the
    // shard's files, as for an empty one.
    // Network mode: "meta" made by another host may not be seen yet.
    for (int attempt = 0; !fd_ && attempt < (direct ? name_tries : 3); attempt++) {
        fd_.reset(open_owned(dir, "meta", O_RDWR | O_CREAT | O_EXCL, mode, true));
        if (fd_) {
            enforce_mode(fd_.get(), mode, shown_);
            break;
        }
        if (errno == EEXIST)
            fd_.reset(open_owned(dir, "meta", O_RDWR, 0, true));
        if (!fd_ && errno == ENOENT && direct) {
            wait_for_name(attempt);
            continue;
        }
        if (!fd_ && foreign_file(errno))
            remove_foreign(dir, "meta");
        else if (!fd_)
            throw_errno(errno, "open '" + shown_ + "'");
    }
    if (!fd_)
        fail(Status::io, "'" + shown_ + "' is not a regular file of the cache and cannot be removed");
    if (direct)
        direct_.reset(reopen_direct(fd_.get(), "'" + shown_ + "'"));
}

std::optional<MetaHeader> ShardMeta::parse_header(const unsigned char *b, bool *torn) {
    *torn = false;
    if (std::memcmp(b, meta_magic, 4) != 0 || load_le16(b + 4) != meta_version)
        return std::nullopt;
    if (load_le64(b + head_sum_at) != checksum64(b, head_sum_at)) {
        *torn = true; // a writer was rewriting it
        return std::nullopt;
    }
    MetaHeader h;
    h.rewrites = load_le16(b + 6);
    h.capacity = load_le32(b + 8);
    h.count = load_le32(b + 12);
    h.tombstones = load_le32(b + 16);
    h.dirty = load_le32(b + 20);
    h.bytes = load_le64(b + 24);
    h.pack_gen = load_le64(b + 32);
    h.pack_end = load_le64(b + 40);
    h.pack_dead = load_le64(b + 48);
    if (h.pack_gen ? h.pack_end < 64 + h.pack_dead || h.pack_end > max_pack_len : h.pack_end || h.pack_dead)
        return std::nullopt;
    if (h.capacity < min_capacity || h.capacity > max_capacity || h.count + h.tombstones > h.capacity)
        return std::nullopt;
    return h;
}

std::optional<MetaHeader> ShardMeta::read_header() {
    unsigned char b[slot_size];
    for (int attempt = 0; attempt < 3; attempt++) {
        if (pread_coherent(fd_.get(), direct_.get(), b, sizeof b, 0, "'" + shown_ + "'") != sizeof b)
            return std::nullopt;
        bool torn;
        auto h = parse_header(b, &torn);
        if (!torn)
            return h;
    }
    return std::nullopt;
}

void ShardMeta::write_header(const MetaHeader &h) {
    unsigned char b[slot_size] = {};
    std::memcpy(b, meta_magic, 4);
    store_le16(b + 4, meta_version);
    store_le16(b + 6, h.rewrites);
    store_le32(b + 8, h.capacity);
    store_le32(b + 12, h.count);
    store_le32(b + 16, h.tombstones);
    store_le32(b + 20, h.dirty);
    store_le64(b + 24, h.bytes);
    store_le64(b + 32, h.pack_gen);
    store_le64(b + 40, h.pack_end);
    store_le64(b + 48, h.pack_dead);
    store_le64(b + head_sum_at, checksum64(b, head_sum_at));
    if (pwrite(fd_.get(), b, sizeof b, 0) != ssize_t(sizeof b))
        throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
}

void ShardMeta::write_slot(uint32_t index, const Slot *s, uint32_t state) {
    unsigned char b[slot_size];
    encode_slot(b, s, state);
    if (pwrite(fd_.get(), b, sizeof b, off_t(slot_size) * (index + 1)) != ssize_t(sizeof b))
        throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
}

MetaHeader ShardMeta::begin(bool *damaged, bool *slots_valid) {
    auto h = read_header();
    MetaHeader head;
    *damaged = false;
    *slots_valid = h && h->dirty == dirty_change;
    if (h) {
        head = *h;
        // Under the lock the header is the truth: readers of this handle
        // probe the table as the writers do from now on.
        known_rewrites_.store(head.rewrites, std::memory_order_release);
        known_capacity_.store(head.capacity, std::memory_order_release);
        size_before_begin_ = head.count ? file_bytes(head.capacity) : 0;
        // We hold the shard lock: a dirty mark is a writer that died inside its change.
        *damaged = head.dirty != 0;
    } else {
        // New (empty file), or damaged beyond use: an empty table, which the
        // caller rebuilds from the files when it was damaged.
        size_before_begin_ = file_size();
        *damaged = size_before_begin_ != 0;
        head.capacity = min_capacity;
        std::vector<unsigned char> zero(slot_size * head.capacity);
        if (cut(0) != 0 ||
            pwrite(fd_.get(), zero.data(), zero.size(), slot_size) != ssize_t(zero.size()))
            throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
    }
    // A table replaced by an empty one stays unreadable to lock-free
    // readers until its rebuild is done.
    head.dirty = *damaged && (!h || h->dirty == dirty_rewrite) ? dirty_rewrite : dirty_change;
    if (head.dirty == dirty_rewrite)
        head.rewrites++;
    write_header(head);
    return head;
}

void ShardMeta::finish(MetaHeader &head) {
    head.dirty = 0;
    if (head.count == 0) {
        // An empty shard keeps no table: its bytes go back to the budget.
        if (cut(0) != 0)
            throw_errno(errno, "truncate '" + shown_ + "'");
        known_capacity_.store(0, std::memory_order_relaxed);
        return;
    }
    write_header(head);
}

int ShardMeta::cut(uint64_t size) {
    // Network mode: writes the client still holds back must not reach the
    // server after the cut (they would bring back part of an old table).
    if (direct_ && fdatasync(fd_.get()) != 0)
        return -1;
    return ftruncate(fd_.get(), off_t(size));
}

void ShardMeta::sync() {
    if (fdatasync(fd_.get()) != 0)
        throw_errno(errno, "fsync '" + shown_ + "'");
}

uint64_t ShardMeta::file_size() {
    if (direct_)
        learn_size(fd_.get());
    struct stat st;
    if (fstat(fd_.get(), &st) != 0)
        throw_errno(errno, "fstat '" + shown_ + "'");
    return uint64_t(st.st_size);
}

bool ShardMeta::trim(const MetaHeader &head) {
    if (file_size() <= file_bytes(head.capacity))
        return false;
    if (cut(file_bytes(head.capacity)) != 0)
        throw_errno(errno, "truncate '" + shown_ + "'");
    return true;
}

bool ShardMeta::clean(std::optional<MetaHeader> *read) {
    auto h = read_header();
    if (read)
        *read = h;
    if (h)
        return h->dirty == 0;
    return empty(); // never written: nothing to recover
}

uint32_t ShardMeta::probe(const MetaHeader &head, const KeyHash &h, bool *found, Slot *slot, bool *tombstone,
                          Duplicates *dups) {
    const uint32_t cap = head.capacity;
    uint32_t first_free = UINT32_MAX, at = UINT32_MAX;
    *found = false;
    *tombstone = false;
    constexpr uint32_t chunk = 64;
    unsigned char b[slot_size * chunk];
    uint32_t i = uint32_t(h.word() % cap);
    for (uint32_t seen = 0; seen < cap;) {
        uint32_t n = std::min(chunk, std::min(cap - i, cap - seen));
        size_t got = pread_coherent(fd_.get(), direct_.get(), b, slot_size * n, slot_size * (uint64_t(i) + 1), "'" + shown_ + "'");
        for (uint32_t k = 0; k < n; k++, seen++) {
            uint32_t state = state_empty;
            Slot s;
            if (k * slot_size + slot_size <= got && decode_slot(b + k * slot_size, &s, &state)) {
                if (s.hash.bytes != h.bytes)
                    continue;
                if (!*found) {
                    *found = true;
                    *slot = s;
                    at = i + k;
                    if (!dups) // a writer's read: the first one is the key's slot
                        return at;
                } else {
                    dups->push_back({i + k, s.bytes});
                }
                continue;
            }
            if (!*found && first_free == UINT32_MAX) {
                first_free = i + k;
                *tombstone = state != state_empty;
            }
            if (state == state_empty)
                return *found ? at : first_free;
        }
        i = (i + n) % cap;
    }
    return *found ? at : first_free;
}

std::optional<Slot> ShardMeta::find(const MetaHeader &head, const KeyHash &h) {
    bool found, tombstone;
    Slot s;
    probe(head, h, &found, &s, &tombstone, nullptr);
    if (!found)
        return std::nullopt;
    return s;
}

bool ShardMeta::upsert(MetaHeader &head, const Slot &s, Slot *replaced) {
    bool found, reuse;
    Duplicates dups;
    uint32_t index = probe(head, s.hash, &found, replaced, &reuse, &dups);
    if (found) {
        write_slot(index, &s, state_used);
        head.bytes = head.bytes - replaced->bytes + s.bytes;
        drop_duplicates(head, dups);
        return true;
    }
    if (index == UINT32_MAX || (head.count + head.tombstones + 1) * 4 > head.capacity * 3) {
        std::vector<Slot> slots;
        MetaHeader ignored;
        read_all(&ignored, &slots);
        slots.push_back(s);
        rebuild(head, slots);
        return false;
    }
    // Reusing a tombstone keeps the count of holes right.
    write_slot(index, &s, state_used);
    head.count++;
    if (reuse && head.tombstones > 0)
        head.tombstones--;
    head.bytes += s.bytes;
    return false;
}

std::optional<Slot> ShardMeta::erase(MetaHeader &head, const KeyHash &h) {
    bool found, tombstone;
    Slot old;
    Duplicates dups;
    uint32_t index = probe(head, h, &found, &old, &tombstone, &dups);
    if (!found)
        return std::nullopt;
    write_slot(index, nullptr, state_tombstone);
    head.count--;
    head.tombstones++;
    head.bytes -= std::min(head.bytes, old.bytes);
    drop_duplicates(head, dups);
    if (head.capacity > min_capacity && head.count * 4 < head.capacity) {
        std::vector<Slot> slots;
        MetaHeader ignored;
        read_all(&ignored, &slots);
        rebuild(head, slots);
    }
    return old;
}

void ShardMeta::drop_duplicates(MetaHeader &head, const Duplicates &dups) {
    for (const auto &[index, bytes] : dups) {
        write_slot(index, nullptr, state_tombstone);
        head.count -= std::min(head.count, 1u);
        head.tombstones++;
        head.bytes -= std::min(head.bytes, bytes);
        duplicates_dropped_ = true;
    }
}

void ShardMeta::rebuild(MetaHeader &head, const std::vector<Slot> &slots) {
    const uint32_t cap = capacity_for(uint32_t(slots.size()));
    std::vector<unsigned char> table(slot_size * cap);
    for (uint32_t i = 0; i < cap; i++)
        encode_slot(table.data() + slot_size * i, nullptr, state_empty);
    head.capacity = cap;
    head.count = 0;
    head.tombstones = 0;
    head.bytes = 0;
    for (const Slot &s : slots) {
        uint32_t i = uint32_t(s.hash.word() % cap);
        bool dup = false;
        unsigned char *at;
        while (load_le32((at = table.data() + slot_size * i) + 32) == state_used) {
            if (std::memcmp(at, s.hash.bytes.data(), 16) == 0) {
                dup = true;
                break;
            }
            i = (i + 1) % cap;
        }
        if (dup) {
            // A damaged table named the key twice: the newest value stays.
            duplicates_dropped_ = true;
            if (load_le64s(at + 24) >= s.created_us)
                continue;
            head.bytes -= load_le64(at + 16);
            head.count--;
        }
        encode_slot(at, &s, state_used);
        head.count++;
        head.bytes += s.bytes;
    }
    // Readers of this handle stamp no slot past the smaller table meanwhile;
    // readers probing meanwhile see the mark and ask again under the lock.
    known_capacity_.store(std::min(cap, known_capacity_.load(std::memory_order_relaxed)), std::memory_order_release);
    const uint32_t dirty = head.dirty;
    head.dirty = dirty_rewrite;
    head.rewrites++;
    write_header(head);
    head.dirty = dirty;
    if (cut(file_bytes(cap)) != 0 ||
        pwrite(fd_.get(), table.data(), table.size(), slot_size) != ssize_t(table.size()))
        throw_errno(errno ? errno : EIO, "write '" + shown_ + "'");
    write_header(head);
    // Only now: a reader of this handle that probed the table while it was
    // rewritten finds its header changed and looks again.
    known_rewrites_.store(head.rewrites, std::memory_order_release);
    known_capacity_.store(cap, std::memory_order_release);
}

} // namespace fsc
