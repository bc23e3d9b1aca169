// Little-endian loads and stores: every integer on disk (docs/FORMAT.md) goes
// through these, so a cache written by a host of one byte order reads the
// same on a host of the other. Byte by byte: compilers turn each loop into
// one plain load or store (plus a byte swap on big-endian hosts).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fsc {

namespace codec_detail {

template <typename T> inline T load_le(const unsigned char *p) noexcept {
    T v = 0;
    for (size_t i = 0; i < sizeof(T); i++)
        v = T(v | T(p[i]) << (8 * i));
    return v;
}

template <typename T> inline void store_le(unsigned char *p, T v) noexcept {
    for (size_t i = 0; i < sizeof(T); i++)
        p[i] = static_cast<unsigned char>(v >> (8 * i));
}

} // namespace codec_detail

inline uint16_t load_le16(const unsigned char *p) noexcept { return codec_detail::load_le<uint16_t>(p); }
inline uint32_t load_le32(const unsigned char *p) noexcept { return codec_detail::load_le<uint32_t>(p); }
inline uint64_t load_le64(const unsigned char *p) noexcept { return codec_detail::load_le<uint64_t>(p); }

inline void store_le16(unsigned char *p, uint16_t v) noexcept { codec_detail::store_le(p, v); }
inline void store_le32(unsigned char *p, uint32_t v) noexcept { codec_detail::store_le(p, v); }
inline void store_le64(unsigned char *p, uint64_t v) noexcept { codec_detail::store_le(p, v); }

// Signed fields (times in µs) are stored as their two's-complement bits.
inline int64_t load_le64s(const unsigned char *p) noexcept { return int64_t(load_le64(p)); }
inline void store_le64s(unsigned char *p, int64_t v) noexcept { store_le64(p, uint64_t(v)); }

} // namespace fsc
