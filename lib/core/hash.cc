#include "hash.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "codec.h"
#include "error.h"

namespace fsc {

namespace {

const char hex_digits[] = "0123456789abcdef";

uint64_t rotl(uint64_t v, int r) noexcept { return (v << r) | (v >> (64 - r)); }

constexpr uint64_t P1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t P2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t P3 = 0x165667B19E3779F9ULL;

} // namespace

void sodium_ready() {
    static const bool ready = sodium_init() >= 0;
    if (!ready)
        fail(Status::io, "libsodium failed to initialise");
}

KeyHash KeyHash::of(const void *key, size_t len) {
    sodium_ready();
    KeyHash h;
    crypto_generichash(h.bytes.data(), h.bytes.size(), static_cast<const unsigned char *>(key), len,
                       nullptr, 0);
    return h;
}

std::string KeyHash::hex() const {
    std::string s(32, '0');
    for (size_t i = 0; i < bytes.size(); i++) {
        s[2 * i] = hex_digits[bytes[i] >> 4];
        s[2 * i + 1] = hex_digits[bytes[i] & 15];
    }
    return s;
}

uint64_t KeyHash::word() const noexcept { return load_le64(bytes.data() + 8); }

uint64_t checksum64(const void *data, size_t len, uint64_t seed) noexcept {
    const auto *p = static_cast<const unsigned char *>(data);
    uint64_t a = seed ^ P1, b = seed + P2, c = rotl(seed, 17) ^ P3, d = seed - P1;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        a = rotl(a + load_le64(p + i) * P2, 31) * P1;
        b = rotl(b + load_le64(p + i + 8) * P2, 31) * P1;
        c = rotl(c + load_le64(p + i + 16) * P2, 31) * P1;
        d = rotl(d + load_le64(p + i + 24) * P2, 31) * P1;
    }
    uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + len;
    for (; i + 8 <= len; i += 8)
        h = rotl(h ^ (rotl(load_le64(p + i) * P2, 31) * P1), 27) * P1 + P3;
    for (; i < len; i++)
        h = rotl(h ^ (p[i] * P3), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

void StreamChecksum::update(const void *data, size_t len) {
    const auto *p = static_cast<const char *>(data);
    while (len > 0) {
        size_t take = std::min(len, block - pending_.size());
        if (pending_.empty() && take == block) {
            state_ = checksum64(p, block, state_);
        } else {
            pending_.append(p, take);
            if (pending_.size() == block) {
                state_ = checksum64(pending_.data(), block, state_);
                pending_.clear();
            }
        }
        p += take;
        len -= take;
    }
}

uint64_t StreamChecksum::final() const noexcept { return checksum64(pending_.data(), pending_.size(), state_); }

bool KeyHash::parse_hex(const std::string &hex) {
    if (hex.size() != 32)
        return false;
    for (size_t i = 0; i < 32; i++) {
        const char *d = std::strchr(hex_digits, hex[i]);
        if (!d || !*d)
            return false;
        const unsigned v = unsigned(d - hex_digits);
        bytes[i / 2] = uint8_t(i % 2 ? (bytes[i / 2] & 0xf0) | v : v << 4);
    }
    return true;
}

std::string hex_byte(unsigned b) { return {hex_digits[(b >> 4) & 15], hex_digits[b & 15]}; }

std::string hex64(uint64_t v) {
    std::string s(16, '0');
    for (int i = 15; i >= 0; i--, v >>= 4)
        s[i] = hex_digits[v & 15];
    return s;
}

} // namespace fsc
