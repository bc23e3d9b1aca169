// A value handed to a reader: an open descriptor that stays readable after the
// value is replaced or deleted, plus what the entry header said about it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "fd.h"
#include "hash.h"

namespace fsc {

struct EntryInfo {
    uint64_t data_start = 0; // where the value's byte 0 is in the descriptor's file
    uint64_t size = 0;
    uint64_t offset = 0;     // remembered read offset within the value
    int64_t created_us = 0;
    std::optional<uint64_t> value_sum; // checked when the whole value is read
};

class Entry {
public:
    // `loaded` is the whole value when the reader already has it in memory.
    Entry(Fd fd, const EntryInfo &info, std::optional<std::string> loaded);

    uint64_t size() const noexcept { return info_.size; }
    uint64_t offset() const noexcept { return info_.offset; }
    int64_t created_us() const noexcept { return info_.created_us; }
    bool expired(int64_t expiration_ms, int64_t now) const noexcept;

    // The descriptor, positioned at the remembered offset on first use.
    int fd();
    // Sequential read from the remembered offset with the entry's own cursor;
    // 0 at the end. Throws Error(corrupt) when the checksum fails at the end.
    size_t read(void *buf, size_t cap);
    // The whole value, loaded and verified on first use.
    const std::string &data();

private:
    void verify(uint64_t sum) const;
    // len bytes at off of the descriptor's file; Error(corrupt) if it ends first.
    size_t read_exactly(void *buf, size_t len, uint64_t off) const;

    Fd fd_;
    EntryInfo info_;
    std::optional<std::string> data_;
    bool positioned_ = false;
    uint64_t cursor_ = 0;    // bytes of the value past the offset already read
    StreamChecksum running_; // over what read() delivered, when it started at 0
};

} // namespace fsc
