// Store::ShardTxn: one change to a shard under its write lock.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "file_ops.h"
#include "store.h"
#include "store_shared.h"

namespace fsc {

// A ShardTxn that was only to try the shard lock found it held.
struct ShardBusy {};

// One change to a shard under its write lock, with its metadata marked dirty
// from begin to finish. A table left dirty (its writer died inside its change)
// or unreadable is rebuilt from the shard's files first. finish() tidies the
// pack, sets the shard's line in the ledger, then clears the dirty mark: a
// crash between the two only makes the next writer rebuild and set the line
// again. A change that throws leaves the shard dirty, for the same reason.
class Store::ShardTxn {
public:
    // wait = false: throws ShardBusy rather than wait for the shard lock.
    ShardTxn(Store &s, unsigned shard, int dir, bool wait = true)
        : meta(s.meta(shard, dir)), store_(s), shard_(shard), dir_(dir), guard_(*s.locks_, shard, wait) {
        if (!guard_.held())
            throw ShardBusy{};
        bool damaged, slots_valid;
        head = meta.begin(&damaged, &slots_valid);
        before_ = Change{int64_t(head.bytes + meta.size_before_begin() + head.pack_overhead()), int64_t(head.count)};
        if (damaged && slots_valid)
            reconcile();
        else if (damaged)
            rebuild_from_files();
        // A table naming a pack that is gone is rebuilt now, before any slot
        // of it is read: slots read before a rebuild would be stale.
        if (head.pack_gen)
            pack(false);
    }
    ShardTxn(const ShardTxn &) = delete;
    ShardTxn &operator=(const ShardTxn &) = delete;

    void rebuild_from_files() {
        PackState p;
        std::vector<Slot> slots = store_.scan_files(shard_, dir_, true, nullptr, &p);
        adopt(slots, p);
    }
    void reconcile() {
        PackState p;
        std::vector<Slot> slots = store_.reconcile(shard_, dir_, head, &p);
        adopt(slots, p);
    }

    // The pack to append to: a table whose pack end lies past the pack's
    // real end (damage) is rebuilt first, as an append there would leave a hole.
    std::shared_ptr<PackFile> pack_to_append() {
        auto p = pack(true);
        struct stat st;
        if (fstat(p->fd.get(), &st) != 0 || uint64_t(st.st_size) < head.pack_end) {
            rebuild_from_files();
            p = pack(true);
        }
        return p;
    }

    // The shard's pack, as its header names it; with create, a new one when
    // the shard has none. nullptr: none (and not create).
    std::shared_ptr<PackFile> pack(bool create) {
        if (head.pack_gen == 0) {
            if (!create)
                return nullptr;
            const uint64_t gen = random64();
            auto p = PackFile::create(dir_, gen, uint64_t(now_us()), shown(gen), store_.sharing_.file_mode());
            head.pack_gen = gen;
            head.pack_end = PackFile::header_size;
            head.pack_dead = 0;
            store_.set_pack(shard_, p);
            return p;
        }
        if (auto p = store_.pack_of(shard_, dir_, head.pack_gen))
            return p;
        // The table names a pack that is gone or damaged: believe the files.
        rebuild_from_files();
        if (head.pack_gen == 0)
            return pack(create);
        if (auto p = store_.pack_of(shard_, dir_, head.pack_gen))
            return p;
        fail(Status::corrupt, "pack file '" + shown(head.pack_gen) + "' cannot be read back");
    }

    // What the change did to the shard's bytes (its meta and pack files
    // included) and entries.
    Change finish() {
        // Slots dropped as duplicates named records nobody accounts for.
        if (meta.take_duplicates_dropped() || needs_reconcile)
            reconcile();
        tidy();
        const Change after = line_of(head);
        store_.ledger_.set_shard(shard_, uint64_t(after.bytes), uint64_t(after.entries));
        meta.finish(head);
        return Change{after.bytes - before_.bytes, after.entries - before_.entries};
    }

    unsigned shard() const noexcept { return shard_; }

    ShardMeta &meta;
    MetaHeader head;
    bool needs_reconcile = false; // the change met a slot the pack contradicts

private:
    std::string shown(uint64_t gen) const { return store_.shown(shard_, PackFile::name(gen)); }
    void adopt(const std::vector<Slot> &slots, const PackState &p) {
        head.pack_gen = p.gen;
        head.pack_end = p.end;
        head.pack_dead = p.dead;
        meta.rebuild(head, slots);
        store_.set_pack(shard_, nullptr);
    }
    // A pack with no live record goes; one an eighth dead is compacted.
    void tidy() {
        if (head.pack_gen == 0)
            return;
        if (head.pack_end == PackFile::header_size + head.pack_dead) {
            unlinkat(dir_, PackFile::name(head.pack_gen).c_str(), 0);
            head.pack_gen = head.pack_end = head.pack_dead = 0;
            store_.set_pack(shard_, nullptr);
        } else if (head.pack_dead * 8 >= head.pack_end) {
            store_.compact(*this, dir_);
        }
    }

    Store &store_;
    unsigned shard_;
    int dir_;
    LockTable::ShardGuard guard_;
    Change before_;
};

} // namespace fsc
