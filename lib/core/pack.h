// A shard's pack file: small values stored with fsc_set, appended one record
// after another (docs/FORMAT.md). A record is laid out like an entry file
// (header, key, value); a dead record has its magic overwritten. The shard's
// writer appends and kills records under the shard lock; readers pread a
// record through a descriptor kept open and verify it against its slot.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "entry_format.h"
#include "fd.h"
#include "file_ops.h"

namespace fsc {

struct PackFile {
    static constexpr size_t header_size = 64;

    uint64_t gen = 0; // names the file: pack.<16 hex>
    uint64_t seq = 0; // grows with every compaction: the newest pack wins
    Fd fd;            // read-write
    Fd direct;        // network mode: fd's file for pread_coherent (none: reads go through fd)

    // pread_full of the pack, coherent across hosts in network mode.
    size_t read(void *buf, size_t len, uint64_t off, const std::string &what) const {
        return pread_coherent(fd.get(), direct.get(), buf, len, off, what);
    }

    static std::string name(uint64_t gen);
    // Parses "pack.<16 hex>"; false for any other name.
    static bool parse_name(const char *name, uint64_t *gen);
    // Creates pack.<gen> in dir (it must not exist) with its header.
    static std::shared_ptr<PackFile> create(int dir, uint64_t gen, uint64_t seq, const std::string &shown,
                                            mode_t mode = 0600);
    // Starts a pack in fd, a new empty file to be renamed in as name(gen),
    // open for reading and writing; records then follow at fd's offset.
    static std::shared_ptr<PackFile> create_in(Fd fd, uint64_t gen, uint64_t seq, const std::string &shown);
    // Opens pack.<gen> in dir; nullptr when it is absent or its header is
    // not a pack header naming gen. direct: network mode (see `direct`).
    static std::shared_ptr<PackFile> open(int dir, uint64_t gen, const std::string &shown, bool direct = false);

    // Whether bytes (at least 4) begin a live record.
    static bool is_live_record(const char *bytes);
    // Marks the record at offset dead (its length stays readable for scans).
    void kill(uint64_t offset, const std::string &shown) const;

    // A record as a scan finds it.
    struct Record {
        uint64_t offset;
        EntryHeader header;
        std::string key;
        bool live;
        bool damaged; // live, but its value fails its checksum
    };
    // Walks the records from the first one; stops at the first whose header
    // is not whole and well-formed (a record with a damaged value has a
    // known length: it is visited as damaged and the walk goes on).
    // Returns where it stopped: the end of the last record visited.
    uint64_t scan(const std::function<void(const Record &)> &visit, const std::string &shown) const;
    // The record a slot names (len bytes at offset) into *buf: its header
    // when it is live, whole, of this key and of the slot's creation time;
    // else nullopt with *why, and *other_key for a whole record of another
    // key with the same digest.
    std::optional<EntryHeader> read_record(uint64_t offset, uint64_t len, const void *key, size_t key_len,
                                           int64_t created_us, std::string *buf, bool *other_key,
                                           std::string *why) const;
    // The record at offset, read alone: nullopt unless its header is whole
    // and well-formed and, when live, its value checksum matches.
    std::optional<Record> read_at(uint64_t offset, uint64_t len, const std::string &shown) const;
};

// A packed record's bytes: header, key, value. Its length is its charge.
std::string pack_record(const void *key, size_t key_len, const void *data, size_t len, int64_t created_us);

} // namespace fsc
