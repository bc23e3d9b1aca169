// ShardTxn: one change to a shard under its write lock.
#pragma once

#include <memory>
#include <vector>

#include "lock_table.h"
#include "pack.h"
#include "shard_host.h"
#include "shard_meta.h"
#include "store.h"

namespace fsc {

// A ShardTxn that was only to try the shard lock found it held.
struct ShardBusy {};

// One change to a shard under its write lock, with its metadata marked dirty
// from begin to finish. A table left dirty (its writer died inside its change)
// or unreadable is rebuilt from the shard's files first. finish() tidies the
// pack, sets the shard's line in the ledger, then clears the dirty mark: a
// crash between the two only makes the next writer rebuild and set the line
// again. A change that throws leaves the shard dirty, for the same reason,
// unless it had not touched the shard yet (untouched()); a change its caller
// did not finish is finished by the destructor.
class ShardTxn {
public:
    // wait = false: throws ShardBusy rather than wait for the shard lock.
    ShardTxn(ShardHost &s, unsigned shard, int dir, bool wait = true);
    ShardTxn(const ShardTxn &) = delete;
    ShardTxn &operator=(const ShardTxn &) = delete;
    ~ShardTxn();

    // Until changing(), the shard is as the txn found it: an exception ends
    // the txn as one that changed nothing. Before untouched() and after
    // changing(), an exception leaves the shard dirty.
    void untouched() noexcept { changing_ = false; }
    void changing() noexcept { changing_ = true; }

    void rebuild_from_files();
    void reconcile();

    // The pack to append to: a table whose pack end lies past the pack's
    // real end (damage) is rebuilt first, as an append there would leave a hole.
    std::shared_ptr<PackFile> pack_to_append();

    // The shard's pack, as its header names it; with create, a new one when
    // the shard has none. nullptr: none (and not create).
    std::shared_ptr<PackFile> pack(bool create);

    // What the change did to the shard's bytes (its meta and pack files
    // included) and entries. Called once; the destructor does nothing after it.
    Change finish();

    unsigned shard() const noexcept { return shard_; }

    ShardMeta &meta;
    MetaHeader head;
    bool needs_reconcile = false; // the change met a slot the pack contradicts

private:
    std::string shown(uint64_t gen) const;
    void adopt(const std::vector<Slot> &slots, const PackState &p);
    // A pack with no live record goes; one an eighth dead is compacted.
    void tidy();

    ShardHost &store_;
    unsigned shard_;
    int dir_;
    LockTable::ShardGuard guard_;
    Change before_;
    int uncaught_at_start_;
    bool changing_ = true;
    bool finished_ = false;
};

} // namespace fsc
