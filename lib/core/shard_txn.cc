#include "shard_txn.h"

#include <sys/stat.h>
#include <unistd.h>

#include <exception>

#include "clock.h"
#include "error.h"
#include "file_ops.h"
#include "store_shared.h"

namespace fsc {

ShardTxn::ShardTxn(ShardHost &s, unsigned shard, int dir, bool wait)
    : meta(s.meta(shard, dir)), store_(s), shard_(shard), dir_(dir), guard_(s.shard_locks(), shard, wait),
      uncaught_at_start_(std::uncaught_exceptions()) {
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

ShardTxn::~ShardTxn() {
    if (!finished_ && changing_ && std::uncaught_exceptions() > uncaught_at_start_) {
        // A change that failed half-way leaves the shard dirty, and in
        // network mode the next writer on any host must see that.
        try {
            store_.flush(shard_);
        } catch (...) {
        }
        return;
    }
    if (finished_)
        return;
    try {
        finish();
    } catch (...) {
        // The shard stays dirty, as after a crash; the error already on
        // its way out (or none) is the one to report.
    }
}

void ShardTxn::rebuild_from_files() {
    PackState p;
    std::vector<Slot> slots = store_.slots_from_files(shard_, dir_, &p);
    adopt(slots, p);
}

void ShardTxn::reconcile() {
    PackState p;
    std::vector<Slot> slots = store_.reconcile(shard_, dir_, head, &p);
    adopt(slots, p);
}

std::shared_ptr<PackFile> ShardTxn::pack_to_append() {
    auto p = pack(true);
    if (p->direct)
        learn_size(p->fd.get()); // another host may have appended since this client looked
    struct stat st;
    if (fstat(p->fd.get(), &st) != 0 || uint64_t(st.st_size) < head.pack_end) {
        rebuild_from_files();
        p = pack(true);
    }
    return p;
}

std::shared_ptr<PackFile> ShardTxn::pack(bool create) {
    if (head.pack_gen == 0) {
        if (!create)
            return nullptr;
        const uint64_t gen = random64();
        auto p = PackFile::create(dir_, gen, uint64_t(now_us()), shown(gen), store_.file_mode());
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

Change ShardTxn::finish() {
    // Once only: a finish that throws leaves the shard dirty, and the
    // destructor then leaves it so.
    finished_ = true;
    // Slots dropped as duplicates named records nobody accounts for.
    if (meta.take_duplicates_dropped() || needs_reconcile)
        reconcile();
    tidy();
    const Change after = line_of(head);
    store_.set_line(shard_, uint64_t(after.bytes), uint64_t(after.entries));
    meta.finish(head);
    store_.flush(shard_);
    return Change{after.bytes - before_.bytes, after.entries - before_.entries};
}

std::string ShardTxn::shown(uint64_t gen) const { return store_.shown(shard_, PackFile::name(gen)); }

void ShardTxn::adopt(const std::vector<Slot> &slots, const PackState &p) {
    head.pack_gen = p.gen;
    head.pack_end = p.end;
    head.pack_dead = p.dead;
    meta.rebuild(head, slots);
    store_.set_pack(shard_, nullptr);
}

void ShardTxn::tidy() {
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

} // namespace fsc
