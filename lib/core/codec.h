// Little-endian loads and stores: every integer on disk (docs/FORMAT.md) goes
// through these, so a cache written by a host of one byte order reads the
// same on a host of the other. A memcpy is one plain load or store (GCC does
// not make one of a byte-by-byte loop); big-endian hosts swap the bytes.
#pragma once

#include <cstdint>
#include <cstring>

#if !defined(__BYTE_ORDER__) || (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__ && __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__)
#error "fsc needs a little- or big-endian host"
#endif

namespace fsc {

namespace codec_detail {

constexpr bool big_endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;

inline uint16_t swap(uint16_t v) noexcept { return __builtin_bswap16(v); }
inline uint32_t swap(uint32_t v) noexcept { return __builtin_bswap32(v); }
inline uint64_t swap(uint64_t v) noexcept { return __builtin_bswap64(v); }

// Host order to little-endian and back: the same swap, or none.
template <typename T> inline T le(T v) noexcept {
    if constexpr (big_endian)
        return swap(v);
    else
        return v;
}

template <typename T> inline T load_le(const unsigned char *p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return le(v);
}

template <typename T> inline void store_le(unsigned char *p, T v) noexcept {
    v = le(v);
    std::memcpy(p, &v, sizeof v);
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
