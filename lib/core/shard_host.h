// What a ShardTxn needs of the store whose shard it changes: a small
// interface the store implements privately, so that neither reaches into the
// other's internals.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lock_table.h"
#include "pack.h"
#include "shard_meta.h"

namespace fsc {

class ShardTxn;

// A shard's pack as a rebuild found it.
struct PackState {
    uint64_t gen = 0, end = 0, dead = 0;
    bool torn_inside = false; // a record header inside fails: only a copy of the pack gets rid of it
};

class ShardHost {
public:
    virtual ShardMeta &meta(unsigned shard, int dir) = 0;
    virtual LockTable &shard_locks() = 0;
    // The mode of the files it creates.
    virtual mode_t file_mode() const = 0;
    // A file of the shard's, as messages show it.
    virtual std::string shown(unsigned shard, const std::string &name) const = 0;
    // Shard lock held: the slots the shard's valid files call for (damaged
    // files removed), and its newest valid pack.
    virtual std::vector<Slot> slots_from_files(unsigned shard, int dir, PackState *pack) = 0;
    // Shard lock held, after a writer died inside a change: the table's
    // slots that still hold, the files made to follow them.
    virtual std::vector<Slot> reconcile(unsigned shard, int dir, const MetaHeader &head, PackState *pack) = 0;
    // The shard's pack of generation gen, nullptr when absent or not that pack.
    virtual std::shared_ptr<PackFile> pack_of(unsigned shard, int dir, uint64_t gen) = 0;
    // The pack lock-free readers of the shard use (nullptr: none known).
    virtual void set_pack(unsigned shard, std::shared_ptr<PackFile> p) = 0;
    // Shard lock held: copies the live records into a new pack; false when
    // it could not and nothing changed.
    virtual bool compact(ShardTxn &txn, int dir) = 0;
    // Sets the shard's line in the ledger.
    virtual void set_line(unsigned shard, uint64_t bytes, uint64_t entries) = 0;
    // Network mode: sends what the change wrote to the shard's table and
    // pack through to the server, before its lock goes; else nothing.
    virtual void flush(unsigned shard) = 0;

protected:
    ~ShardHost() = default;
};

} // namespace fsc
