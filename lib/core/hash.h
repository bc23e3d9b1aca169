// Key hashing (BLAKE2b, names files and lock offsets) and the record checksum.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace fsc {

// The BLAKE2b-128 digest of a key: the key's identity on disk.
struct KeyHash {
    std::array<uint8_t, 16> bytes{};

    static KeyHash of(const void *key, size_t len);

    // Shard number: the first byte.
    unsigned shard() const noexcept { return bytes[0]; }
    // 32 lowercase hex digits: the entry file's name.
    std::string hex() const;
    // Reads 32 lowercase hex digits; false for anything else.
    bool parse_hex(const std::string &hex);
    // 64 bits of the digest, for lock offsets.
    uint64_t word() const noexcept;
};

// A fast 64-bit checksum of bytes, chainable through `seed`. Detects damage,
// not tampering: the key's identity is guarded by BLAKE2b and the stored key.
uint64_t checksum64(const void *data, size_t len, uint64_t seed = 0) noexcept;

// checksum64 over a stream, fed in any pieces: the value is cut into
// fixed blocks, each block's checksum seeds the next, so a reader can verify
// while it streams.
class StreamChecksum {
public:
    static constexpr size_t block = 64 * 1024;
    void update(const void *data, size_t len);
    uint64_t final() const noexcept;

private:
    uint64_t state_ = 0;
    std::string pending_;
};

// Initialises libsodium (once per process) before any use of it.
void sodium_ready();

// Two hex digits of a byte.
std::string hex_byte(unsigned b);
// 16 hex digits of a 64-bit number.
std::string hex64(uint64_t v);

} // namespace fsc
