// A shard's LRU metadata: an open-addressed table of 64-byte slots in
// shards/<xx>/meta, read and written with pread/pwrite (docs/FORMAT.md).
// Writers hold the shard lock; readers only stamp last-use times, lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fd.h"
#include "hash.h"

namespace fsc {

struct Slot {
    KeyHash hash;
    uint64_t bytes = 0;      // what the entry is charged against cache_size
    int64_t created_us = 0;
    uint64_t payload_gen = 0; // names the entry's payload file; 0 for inline values
    int64_t last_use_us = 0;  // stamped by readers; outside the slot checksum
    bool packed = false;      // the value is a record in the shard's pack file...
    uint64_t pack_offset = 0; // ...at this offset, `bytes` long
};

struct MetaHeader {
    uint32_t capacity = 0;
    uint32_t count = 0;
    uint32_t tombstones = 0;
    uint16_t rewrites = 0; // counts whole-table rewrites: a reader's probe that raced one can tell
    uint32_t dirty = 0; // set while a writer changes the shard: a crash leaves it set
    uint64_t bytes = 0; // sum of the slots' bytes
    uint64_t pack_gen = 0;  // the shard's pack file; 0: none
    uint64_t pack_end = 0;  // where the next record goes (the pack's length)
    uint64_t pack_dead = 0; // bytes of dead records in the pack

    // What the pack costs beyond its live records: its header and dead records.
    uint64_t pack_overhead() const noexcept { return pack_gen ? 64 + pack_dead : 0; }
};

// Dirty marks: a writer's change, and a table being rewritten whole (readers
// must not trust a lock-free probe while it is set).
constexpr uint32_t dirty_change = 1, dirty_rewrite = 2;

class ShardMeta {
public:
    static constexpr size_t slot_size = 64;
    static constexpr uint32_t min_capacity = 4;
    // A read stamps a slot the first time after its set, then only when the
    // stamp lags the read by more than a sixteenth of how long values stay
    // unread before eviction takes them (now minus the LRU horizon: the last
    // use of a recently evicted value), or of the value's age if less, within
    // [touch_min_us, touch_max_us]: hot keys cost no write per read, yet
    // their stamps stay far younger than any eviction victim's.
static constexpr int64_t touch_min_us = 100, touch_max_us = 1000000;

    // Opens (creating, with mode) the shard's meta file in dir; direct:
    // with O_DIRECT where the filesystem takes it (network mode).
    ShardMeta(int dir, std::string shown, mode_t mode = 0600, bool direct = false);

    // Readers (no lock). found: *slot is the key's slot, at *index. absent:
    // the key has no slot. unsure: the table is being rewritten, was resized
    // under the probe, or is damaged; look again under the shard lock.
    enum class Lookup { found, absent, unsure };
    Lookup lookup(const KeyHash &h, Slot *slot, uint32_t *index);
    // Best-effort last-use stamp of the slot lookup found.
    void touch(uint32_t index, const Slot &s, int64_t now_us, int64_t lru_horizon_us);
    // The header as read now; nullopt when it is missing or damaged.
    std::optional<MetaHeader> header() { return read_header(); }
    // The header and every used slot, as read now (no lock; for sampling and checks).
    bool read_all(MetaHeader *head, std::vector<Slot> *slots);
    // Up to `window` used slots from a random place in the table.
    void sample(std::minstd_rand &rng, size_t window, std::vector<Slot> *out);

    // Writers (shard lock held). begin() marks the shard dirty; finish() clears
    // it. *damaged: a writer died inside its change (the header is still
    // marked dirty) or the header is unreadable (an empty table replaced it).
    // *slots_valid (with *damaged): the writer died inside a change that
    // writes one slot at a time, so every slot is one a reader may have seen.
    MetaHeader begin(bool *damaged, bool *slots_valid);
    // The meta file's size when begin() was called (for the cache-wide byte count).
    uint64_t size_before_begin() const noexcept { return size_before_begin_; }
    std::optional<Slot> find(const MetaHeader &head, const KeyHash &h);
    // Inserts or replaces; true (and *replaced) when a slot was replaced. May grow or shrink the
    // table: compare head.capacity before and after to see the file's size change.
    bool upsert(MetaHeader &head, const Slot &s, Slot *replaced);
    std::optional<Slot> erase(MetaHeader &head, const KeyHash &h);
    // Rewrites the whole table from slots (growing, shrinking, repairing).
    void rebuild(MetaHeader &head, const std::vector<Slot> &slots);
    void finish(MetaHeader &head);
    // Whether upsert, erase or rebuild met a key named twice (a forged
    // table) and dropped a slot since the last call: the dropped slot's
    // record is then unaccounted, and the caller reconciles the shard.
    bool take_duplicates_dropped() noexcept { return std::exchange(duplicates_dropped_, false); }
    // Whether the header is valid and clean (a crash left no change half done).
    // *read (if given): the header read, when it was valid.
    bool clean(std::optional<MetaHeader> *read = nullptr);
    // A reader's stamp that lands after the table shrank under it grows the
    // file past the table: cuts the file back to its table (shard lock held,
    // or alone with the cache); head is its header as just read. True when
    // it did.
    bool trim(const MetaHeader &head);
    // The meta file's size now.
    uint64_t file_size();
    // Writes the table through to the disk (durable sets: the table is where
    // readers find a value), or to the server (network mode).
    void sync();

    // The meta file's size for a table of `capacity` slots.
    static uint64_t file_bytes(uint32_t capacity) { return slot_size * (uint64_t(capacity) + 1); }
    // The meta file's size once finish(head) has run: an empty shard's file is empty.
    static uint64_t size_after(const MetaHeader &head) { return head.count ? file_bytes(head.capacity) : 0; }

private:
    std::optional<MetaHeader> read_header();
    // The header in b (slot_size bytes); nullopt when it is not a valid
    // one, with *torn when only its checksum fails (a writer rewriting it).
    static std::optional<MetaHeader> parse_header(const unsigned char *b, bool *torn);
    bool empty(); // the file has no table (a shard never written, or emptied)
    // ftruncate to size, after flushing what the client holds back (network mode).
    int cut(uint64_t size);
    void write_header(const MetaHeader &head);
    void write_slot(uint32_t index, const Slot *s, uint32_t state);
    // Further slots of a key along its probe chain: index and charge.
    using Duplicates = std::vector<std::pair<uint32_t, uint64_t>>;
    // Index of the slot holding h, or of the first free place when absent.
    // *tombstone: the free place returned is a tombstone (not a never-used slot).
    // With dups, the chain is followed to its end, collecting any further
    // slots of h (a valid table has none; readers would find them once the
    // first is erased).
    uint32_t probe(const MetaHeader &head, const KeyHash &h, bool *found, Slot *slot, bool *tombstone,
                   Duplicates *dups);
    void drop_duplicates(MetaHeader &head, const Duplicates &dups);

    std::string shown_;
    Fd fd_;
    Fd direct_; // network mode: fd_'s file for pread_coherent
    std::atomic<uint32_t> known_capacity_{0};
    std::atomic<uint32_t> known_rewrites_{0}; // with known_capacity_: the header as readers last saw it
    uint64_t size_before_begin_ = 0; // writers only, under the shard lock
    bool duplicates_dropped_ = false; // writers only, under the shard lock
};

} // namespace fsc
