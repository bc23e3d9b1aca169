// Where values live: each shard's metadata table (shards/<xx>/meta) says
// where each of its keys is. Small values stored with fsc_set are records in
// the shard's pack file; larger ones have an entry file of their own, named
// by the key's hash; a value stored from a file also has a payload file.
// Readers take no lock; writers serialise per shard (docs/ARCHITECTURE.md).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "entry.h"
#include "entry_format.h"
#include "fd.h"
#include "file_ops.h"
#include "hash.h"
#include "ledger.h"
#include "lock_table.h"
#include "ownership.h"
#include "pack.h"
#include "shard_host.h"
#include "shard_meta.h"

namespace fsc {

struct Key {
    const void *data;
    size_t len;
    KeyHash hash;
};

// What an operation did to the cache-wide totals.
struct Change {
    int64_t bytes = 0;
    int64_t entries = 0;
    Change &operator+=(const Change &o) {
        bytes += o.bytes;
        entries += o.entries;
        return *this;
    }
};

// A set under a key's lock in network mode (LockTable leases): the key's
// lock must still be this process's at the server, and the key may hold no
// other value than the one it held when the lock was taken (mark: its
// Store::mark_of, 0 for none; a value removed or evicted since is no
// conflict). After the set, mark is the value it stored.
struct Lease {
    LockTable &locks;
    uint64_t mark;
};

// An entry that eviction or pruning may remove: its shard and its slot.
struct Candidate {
    unsigned shard;
    Slot slot;
};

struct VerifyCounts {
    uint64_t checked = 0, problems = 0, repaired = 0;
};

class Store final : private ShardHost {
public:
    // base is base_dir's descriptor; shards/ and tmp/ must exist in it.
    // Every change to a shard sets the shard's line in the ledger.
    // Values stored with put_bytes of up to pack_limit bytes are packed.
    // verify_payloads: a get reads a payload file whole and checks its checksum.
    // What it creates gets the sharing's modes.
    // coherent (network mode on a network filesystem): the files updated in
    // place are read with O_DIRECT, and each change to a shard is flushed
    // to the server before its lock goes.
    Store(int base, std::string base_path, std::shared_ptr<LockTable> locks, Ledger &ledger, bool durable,
          uint64_t pack_limit, bool verify_payloads, const Sharing &sharing = Sharing(), bool coherent = false);
    ~Store();

    // What an entry is charged against cache_size.
    static uint64_t charge(size_t key_len, uint64_t value_size) {
        return EntryHeader::size + key_len + value_size;
    }
    // What a value of value_size bytes needs on disk beside its own bytes:
    // its entry header and key, its shard's smallest table, and, when it is
    // packed, the pack's header. from_file: stored with put_file.
    uint64_t overhead(size_t key_len, uint64_t value_size, bool from_file) const noexcept {
        return charge(key_len, 0) + ShardMeta::file_bytes(ShardMeta::min_capacity) +
               (!from_file && packs(value_size) ? PackFile::header_size : 0);
    }

    // Where a value found lock-free sits in its shard's table, for stamp_use.
    struct Use {
        ShardMeta *meta = nullptr; // nullptr: nothing to stamp
        uint32_t index = 0;
        Slot slot;
    };
    // An entry file a lock-free read found damaged (or not one of ours),
    // reported rather than removed there: repair() removes it.
    struct Damage {
        unsigned shard;
        int dir;
        std::string name, payload; // the entry file, and its payload file (empty: none)
        Fd fd;                     // the entry file as read (none: not opened): only that file goes
        std::string why;
    };
    // What find() found: the key's entry, or nullptr when absent (or another
    // key's), or damage to repair.
    struct Found {
        std::unique_ptr<Entry> entry;
        Use use; // where to stamp the entry's last use
        std::unique_ptr<Damage> damage;
    };
    Found find(const Key &key);
    // Under the shard lock, removes the damaged entry unless a writer
    // replaced it meanwhile; then reports it as Error(corrupt).
    [[noreturn]] void repair(const Damage &d);
    // Stamps the last use of a value find() found. lru_horizon_us, the last
    // use of a recently evicted value (0: none), sets how often reads stamp
    // (ShardMeta::touch): the caller reads it only for a value found.
    void stamp_use(const Use &use, int64_t lru_horizon_us);
    // lease: a set under the key's lock in network mode (else nullptr);
    // Error(lost), with nothing stored, when it no longer holds.
    Change put_bytes(const Key &key, const void *data, size_t len, int64_t created_us, Lease *lease = nullptr);
    // Copies src (move = false) or renames path in (move = true); size is
    // src's length, measured by the caller (a moved file's is re-read).
    Change put_file(const Key &key, int src, const char *path, bool move, uint64_t size, uint64_t offset,
                    int64_t created_us, Lease *lease = nullptr);
    // The mark (see Lease) of the key's value now, read under its shard lock.
    uint64_t value_mark(const Key &key);
    Change remove(const Key &key, bool *removed);
    Change clear();

    // Every entry's slot (exhaustive) or a random sample of them.
    void candidates(bool exhaustive, std::minstd_rand &rng, std::vector<Candidate> *out);
    // Removes the candidate if it is still the same entry, not used since it
    // was read (*removed says).
    // free_bytes: the caller needs bytes back now, so a packed victim's pack
    // is compacted at once (evicting its shard's oldest records first when
    // the pack is large, so that the copy pays off); the change may then
    // count several entries.
    Change evict(const Candidate &c, bool free_bytes, bool *removed);

    // Every valid entry: key bytes, header. Return false to stop.
    using Visitor = std::function<bool(const std::string &key, const EntryHeader &h)>;
    void foreach(const Visitor &visit);

    // Only while no other process has the cache open: removes temp files and
    // rebuilds the metadata (and ledger line) of shards a crash left half-changed.
    void recover();
    // Rebuilds the tables (and ledger lines) of shards whose writer died
    // inside a change, and sets again the ledger lines that disagree with
    // their shards; safe while other processes use the cache.
    void rebuild_dirty_shards();
    // Sets the shard's ledger line again from its table, under its lock (for
    // a line that failed its checksum).
    void rebuild_line(unsigned shard);
    // Around fork() (the owner's ForkLocks): takes the mutex that guards
    // the cached descriptors, so that none is published half-way through a
    // fork. Taken after any mutex under which the store is called.
    void lock_for_fork();
    void unlock_after_fork();

    // Checks every file against the metadata and the ledger's shard lines;
    // repair makes them agree. exclusive: no other process has the cache
    // open, so temp files are leftovers too.
    VerifyCounts verify(bool repair, bool exclusive);

private:
    // The one decision whether a value goes into the shard's pack: put_file
    // never packs, put_bytes does up to pack_limit bytes.
    bool packs(uint64_t value_size) const noexcept { return value_size <= pack_limit_; }
    // What one look for a key's value found: its entry; that the key is
    // absent (a miss, or another key with the same digest); that its entry
    // file is damaged; or that the value was moved or replaced meanwhile, so
    // the lookup is to be made again.
    struct Lookup {
        enum class State { found, absent, damaged, retry };
        State state;
        std::unique_ptr<Entry> entry;   // set when found
        std::unique_ptr<Damage> damage; // set when damaged

        static Lookup found(std::unique_ptr<Entry> e) { return Lookup{State::found, std::move(e), nullptr}; }
        static Lookup absent() { return Lookup{State::absent, nullptr, nullptr}; }
        static Lookup retry() { return Lookup{State::retry, nullptr, nullptr}; }
        bool settled() const noexcept { return state != State::retry; }
        // What a find() reports of it (nothing for a retry).
        Found report() && { return Found{std::move(entry), Use{}, std::move(damage)}; }
    };
    // The entry file `name` of the key's shard is damaged (why).
    static Lookup damaged(const Key &key, int dir, const std::string &name, const std::string &payload, Fd fd,
                          const std::string &why);
    void sweep_temp();
    int shard_dir(unsigned shard, bool create);
    // ShardHost, for ShardTxn.
    ShardMeta &meta(unsigned shard, int dir) override;
    LockTable &shard_locks() override { return *locks_; }
    mode_t file_mode() const override { return sharing_.file_mode(); }
    std::vector<Slot> slots_from_files(unsigned shard, int dir, PackState *pack) override {
        return scan_files(shard, dir, true, nullptr, pack);
    }
    void set_line(unsigned shard, uint64_t bytes, uint64_t entries) override {
        ledger_.set_shard(shard, bytes, entries);
    }
    // The key's entry file; slot: the table's slot for it, when read (its
    // value must be the slot's).
    Lookup try_find(const Key &key, int dir, const Slot *slot = nullptr);
    // The key's packed record at slot s, read lock-free; retry when it is
    // not the record the slot names (moved by a compaction, or damaged).
    Lookup read_packed(const Key &key, int dir, const Slot &s, bool refresh);
    // The lookup again under the shard lock: for tables being rewritten,
    // records that kept failing, damage. When a writer holds the lock, the
    // lookup is made without it (find_unlocked): readers never wait.
    Found find_locked(const Key &key, int dir, bool wait = false);
    // Without the shard lock, which a writer holds: a table being rewritten
    // is passed over for the shard's files (find_in_files); else the table
    // is read again, and a slot whose value stays gone is a miss. Only
    // slots that keep failing their checks (damage) wait for the lock.
    Found find_unlocked(const Key &key, int dir);
    // retry: the table left the rewrite `head` tells of meanwhile.
    Lookup find_in_files(const Key &key, int dir, const MetaHeader &head);
    // Without the shard lock: the packed slot's record in the pack the
    // table's header names now (*missing: that pack was read and the record
    // is not there), else in the shard's newest pack (a writer creating a
    // pack writes slots naming it before the header does).
    Lookup read_slot_unlocked(const Key &key, int dir, const Slot &s, bool *missing);
    // The shard's pack for lock-free readers, opened once and kept.
    std::shared_ptr<PackFile> reader_pack(unsigned shard, int dir, bool refresh);
    // The shard's pack of generation gen: the one kept, else opened (and
    // kept); nullptr when it is absent or not that pack.
    std::shared_ptr<PackFile> pack_of(unsigned shard, int dir, uint64_t gen) override;
    static std::unique_ptr<Entry> entry_of_record(const EntryHeader &h, const std::string &record, size_t key_len);
    void set_pack(unsigned shard, std::shared_ptr<PackFile> p) override;
    Change put_packed(const Key &key, const void *data, size_t len, int64_t created_us, Lease *lease);
    static uint64_t mark_of(const Slot &s);
    // Shard lock held, before a set changes anything: Error(lost) unless
    // the lease (if any) still holds.
    static void check_lease(const Lease *lease, const Key &key, ShardTxn &txn);
    // ShardHost: network mode's flush of a shard's table and pack.
    void flush(unsigned shard) override;
    // Shard lock held: the value a slot stood for goes (replaced or removed);
    // when the slot goes too, this comes first. A packed record must end by
    // records_end (and the table's pack end) to be killed.
    void drop_value(ShardTxn &txn, int dir, const Slot &old, uint64_t records_end = UINT64_MAX);
    // Shard lock held: copies the live records into a new pack and drops the
    // old one. false: it could not (no space, say) and nothing changed.
    bool compact(ShardTxn &txn, int dir) override;
    // Reads the header and key of the entry `name` in dir; nullopt if absent
    // (why empty) or damaged (why says how).
    std::optional<EntryHeader> peek(int dir, const std::string &name, std::string *key, std::string *why);
    // Under the shard lock: renames the payload (if any) and the entry into
    // place, drops the payload of the entry replaced, updates the metadata.
    struct Payload {
        int from_dir;
        std::string from_name;
        std::string name; // in the shard
    };
    Change commit(const Key &key, TempFile &temp, const Payload *payload, const Slot &slot, Lease *lease);
    // The value checksum of a payload about to be renamed in, read whole.
    static uint64_t payload_checksum(const Payload &payload, uint64_t size);
    // Shard lock held: the slots the shard's valid entry files call for;
    // counts (and with repair removes) damaged entries and orphan payloads.
    // With counts (fsc_verify) every payload file is read whole and checked.
    std::vector<Slot> scan_files(unsigned shard, int dir, bool repair, VerifyCounts *counts, PackState *pack);
    // Shard lock held, after a writer died inside a change that writes one
    // slot at a time: the table's slots are what readers saw, so they stay
    // (each checked against its record or file, dropped if that is gone) and
    // the files follow them: entry files and pack records no slot names were
    // in flight and go, so that no later rebuild brings them back.
    std::vector<Slot> reconcile(unsigned shard, int dir, const MetaHeader &head, PackState *pack) override;
    // Whether the payload file of external entry h is there, regular, of its
    // size, and (read_whole) passes the entry's checksum.
    static bool payload_intact(int dir, const std::string &hex, const EntryHeader &h, bool read_whole);
    // fsc_verify of one shard: counts (and with repair removes) its damaged
    // files into n; true when its table and ledger line agree with its files.
    bool verify_shard(unsigned shard, int dir, bool repair, VerifyCounts &n, bool *copy_pack);
    // The shard's newest valid pack, whatever its table's header names.
    std::shared_ptr<PackFile> newest_pack(unsigned shard, int dir);
    // The newest valid pack among `names`; counts (and with repair removes) the others.
    std::shared_ptr<PackFile> pick_pack(unsigned shard, int dir, const std::vector<std::string> &names, bool repair,
                                        VerifyCounts &n);
    static std::string payload_name(const std::string &hex, uint64_t gen);
    // Whether an entry naming a payload file has it, regular and of its size (or names none).
    static bool payload_fits(int dir, const std::string &hex, const EntryHeader &h);
    std::string shown(unsigned shard, const std::string &name) const override;

    int base_;
    std::string base_path_;
    std::shared_ptr<LockTable> locks_;
    Ledger &ledger_;
    bool durable_;
    Sharing sharing_;
    uint64_t pack_limit_;
    bool verify_payloads_;
    bool coherent_;
    Fd temp_dir_;
    Fd shards_dir_;
    std::array<std::atomic<int>, 256> shard_fds_;
    std::array<std::atomic<ShardMeta *>, 256> metas_;
    // Guards packs_, and the publication of the shards' descriptors and
    // tables (shard_fds_, metas_): held around fork() (lock_for_fork). One
    // for all shards: a thread may hold only so many locks at once (64
    // under ThreadSanitizer), and each is held for a pointer copy.
    std::mutex packs_mu_;
    std::array<std::shared_ptr<PackFile>, 256> packs_;
};

} // namespace fsc
