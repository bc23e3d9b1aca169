// The entry file header (docs/FORMAT.md): encoding and bounds-checked decoding.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace fsc {

constexpr size_t max_key_len = 65536;
// The largest value a pack holds (FSC_PACK_LIMIT_MAX) and so its largest
// record: lengths read from disk beyond it are damage, never allocated.
constexpr uint64_t max_packed_value = 1024 * 1024;
constexpr uint64_t max_record_len = 64 + max_key_len + max_packed_value;
// No pack grows past this (1 TiB): offsets and ends read from disk beyond it are damage.
constexpr uint64_t max_pack_len = uint64_t(1) << 40;

struct EntryHeader {
    static constexpr size_t size = 64;
    static constexpr uint16_t version = 1;
    static constexpr uint16_t flag_external = 1; // the value lives in a payload file of its own

    uint16_t flags = 0;
    uint32_t key_len = 0;
    uint64_t value_size = 0;
    uint64_t offset = 0;       // remembered read offset within the value
    int64_t created_us = 0;    // wall clock, microseconds since the epoch
    uint64_t payload_gen = 0;  // external only: names the payload file
    uint64_t value_sum = 0;    // inline only: StreamChecksum of the value

    bool external() const noexcept { return flags & flag_external; }

    // 64 bytes; the header checksum covers them and the key.
    std::array<unsigned char, size> encode(const void *key) const;

    // Parses buf[0, len), which must hold the header and the key that follows
    // it. Every field is bounds-checked; on failure returns nullopt and says
    // why in *why.
    static std::optional<EntryHeader> decode(const void *buf, size_t len, std::string *why);
};

} // namespace fsc
