// Where values live: one entry file per key under shards/<xx>/, named by the
// key's hash; a value stored from a file keeps a payload file of its own.
// Readers take no lock; writers serialise per shard (docs/ARCHITECTURE.md).
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "entry.h"
#include "entry_format.h"
#include "fd.h"
#include "file_ops.h"
#include "hash.h"
#include "lock_table.h"

namespace fsc {

struct Key {
    const void *data;
    size_t len;
    KeyHash hash;
};

class Store {
public:
    // base is base_dir's descriptor; shards/ and tmp/ must exist in it.
    Store(int base, std::string base_path, std::shared_ptr<LockTable> locks, bool durable);
    ~Store();

    // The key's entry, or nullopt when absent (or another key's). A damaged
    // entry is removed and reported as Error(corrupt).
    std::unique_ptr<Entry> find(const Key &key);
    void put_bytes(const Key &key, const void *data, size_t len, int64_t created_us);
    // Copies src (move = false) or renames path in (move = true).
    // size is src's length (measured by the caller); a moved file's is re-read.
    void put_file(const Key &key, int src, const char *path, bool move, uint64_t size, uint64_t offset,
                  int64_t created_us);
    bool remove(const Key &key);
    void clear();
    // Every valid entry: key bytes, header. Return false to stop.
    using Visitor = std::function<bool(const std::string &key, const EntryHeader &h)>;
    void foreach(const Visitor &visit);
    // Removes every temp file; only while no other process has the cache open.
    void sweep_temp();

private:
    int shard_dir(unsigned shard, bool create);
    std::optional<std::unique_ptr<Entry>> try_find(const Key &key, int dir);
    // Reads the header and key of the entry `name` in dir; nullopt if absent.
    std::optional<EntryHeader> peek(int dir, const std::string &name, std::string *key, std::string *why);
    // Renames the temp entry into place under the shard lock, then drops the
    // payload of the entry it replaced.
    void commit(const Key &key, TempFile &temp);
    [[noreturn]] void discard(unsigned shard, int dir, const std::string &name, const std::string &payload, int fd, const std::string &why);
    static std::string payload_name(const std::string &hex, uint64_t gen);
    std::string shown(unsigned shard, const std::string &name) const;

    int base_;
    std::string base_path_;
    std::shared_ptr<LockTable> locks_;
    bool durable_;
    Fd temp_dir_;
    Fd shards_dir_;
    std::array<std::atomic<int>, 256> shard_fds_;
};

} // namespace fsc
