// The lock file's layout, owned here alone: where each shared record lies at
// its start and how it is encoded (docs/FORMAT.md, "Shared records in the
// lock file"), the bytes that are only ever locked (docs/ARCHITECTURE.md, "The
// lock table"), and the one way its records are read and written.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace fsc {
namespace lock_file {

// The shared records: offset and size of each.
constexpr off_t invalidation_at = 0;
constexpr size_t invalidation_size = 32;
constexpr off_t horizon_at = 32; // read in the same pread as the invalidation record
constexpr size_t horizon_size = 16;
constexpr off_t counters_at = 64;
constexpr size_t counter_fields = 7;
constexpr size_t counters_size = 8 + 8 * counter_fields + 8;
constexpr off_t shard_table_at = 256; // read in the same pread as the counters
constexpr unsigned shard_lines = 256;
constexpr size_t line_size = 24;
constexpr size_t shard_table_size = shard_lines * line_size;
// The content: the shard table ends it.
constexpr off_t records_size = shard_table_at + off_t(shard_table_size);

static_assert(records_size == 6400, "include/fsc.h and docs/FORMAT.md give the lock file as 6,400 bytes");
static_assert(horizon_at == invalidation_at + off_t(invalidation_size), "the horizon follows the invalidation record");
static_assert(counters_at >= horizon_at + off_t(horizon_size) && shard_table_at >= counters_at + off_t(counters_size),
              "the records do not overlap");

// Byte ranges locked one byte each. A lock on a byte never touches content.
constexpr off_t open_range = 4096;          // read-locked by every process that has the cache open
constexpr off_t shard_range = 8192;         // + shard number: a shard's write lock
constexpr unsigned record_lock = 256;       // shard_range number guarding the invalidation and counters records
constexpr off_t reserve_range = 8192 + 257; // read-locked by every process with a budget reservation open
constexpr off_t key_range = off_t(1) << 20; // + 63-bit hash: the dogpile locks

static_assert(shard_range + off_t(record_lock) < reserve_range && reserve_range < key_range,
              "the lock ranges do not overlap");

// The invalidation record. decode: false when it fails its checks (all
// zeros: never invalidated, both times 0).
struct Invalidation {
    int64_t hard_us = 0, soft_us = 0;
};
void encode_invalidation(const Invalidation &inv, unsigned char *b);
bool decode_invalidation(const unsigned char *b, Invalidation *inv);

// The LRU horizon. decode: false when it fails its checksum (16 zero bytes:
// none, 0).
void encode_horizon(int64_t last_use_us, unsigned char *b);
bool decode_horizon(const unsigned char *b, int64_t *last_use_us);

// The counters record. decode: false when it fails its checks (all zeros:
// nothing counted yet, every counter 0).
struct Counters {
    uint64_t hits = 0, misses = 0, sets = 0, evictions = 0, expirations = 0;
    uint64_t reserved_bytes = 0, reserved_entries = 0;
};
void encode_counters(const Counters &c, unsigned char *b);
bool decode_counters(const unsigned char *b, Counters *c);

// A shard's line of the shard table, at line_at(shard). decode: false when
// it fails its checksum (all zeros included); *line is what it says anyway.
struct ShardLine {
    uint64_t bytes = 0, entries = 0;
};
constexpr off_t line_at(unsigned shard) { return shard_table_at + off_t(line_size * shard); }
void encode_line(unsigned shard, const ShardLine &line, unsigned char *b);
bool decode_line(unsigned shard, const unsigned char *b, ShardLine *line);

bool all_zero(const unsigned char *p, size_t n);

} // namespace lock_file

// Reads and writes of the lock file's records through its descriptor: one
// pread or pwrite each, never under a lock of their own (a writer holds the
// record's lock; a reader retries what it read torn).
class LockFileRecords {
public:
    // shown: the file's name in messages. In network mode every write is
    // sent through to the server before it returns, so that the next holder
    // of the lock ordering it reads it on any host.
    // direct: the file for pread_coherent (network mode; -1: none), and then
    // writes are flushed.
    LockFileRecords(int fd, std::string shown, int direct = -1)
        : fd_(fd), direct_(direct), shown_(std::move(shown)) {}

    // Makes the file records_size long (zeros: nothing written yet) when shorter.
    void make_whole() const;
    // Reads n bytes at `at` into b (past the file's end: zeros) and, while
    // whole(b) says no (read while a writer was writing, or damaged), reads
    // them again, at most torn_reads times in all. Returns the last whole(b).
    template <typename Whole> bool read(off_t at, unsigned char *b, size_t n, Whole &&whole) const {
        for (int attempt = 0; attempt < torn_reads; attempt++) {
            read_once(at, b, n);
            if (whole(b))
                return true;
        }
        return false;
    }
    // One read, not checked.
    void read_once(off_t at, unsigned char *b, size_t n) const;
    void write(off_t at, const unsigned char *b, size_t n) const;
    // A hint nobody relies on (the LRU horizon): a failed write is ignored.
    void write_hint(off_t at, const unsigned char *b, size_t n) const noexcept;
    void sync() const;

private:
    static constexpr int torn_reads = 4;
    int fd_;
    int direct_;
    std::string shown_;
};

} // namespace fsc
