#include "entry_format.h"

#include <cstring>

#include "hash.h"

namespace fsc {

namespace {

const unsigned char magic[4] = {'F', 'S', 'C', 'E'};
constexpr size_t sum_at = 56;

template <typename T> void put(unsigned char *p, T v) {
    for (size_t i = 0; i < sizeof(T); i++)
        p[i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> (8 * i));
}

template <typename T> T get(const unsigned char *p) {
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); i++)
        v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return static_cast<T>(v);
}

uint64_t header_sum(const unsigned char *head, const void *key, size_t key_len) {
    return checksum64(key, key_len, checksum64(head, sum_at));
}

} // namespace

std::array<unsigned char, EntryHeader::size> EntryHeader::encode(const void *key) const {
    std::array<unsigned char, size> b{};
    unsigned char *p = b.data();
    std::memcpy(p, magic, 4);
    put<uint16_t>(p + 4, version);
    put<uint16_t>(p + 6, flags);
    put<uint32_t>(p + 8, key_len);
    put<uint64_t>(p + 16, value_size);
    put<uint64_t>(p + 24, offset);
    put<int64_t>(p + 32, created_us);
    put<uint64_t>(p + 40, payload_gen);
    put<uint64_t>(p + 48, value_sum);
    put<uint64_t>(p + sum_at, header_sum(p, key, key_len));
    return b;
}

std::optional<EntryHeader> EntryHeader::decode(const void *buf, size_t len, std::string *why) {
    const auto *p = static_cast<const unsigned char *>(buf);
    auto bad = [why](const char *reason) {
        *why = reason;
        return std::nullopt;
    };
    if (len < size)
        return bad("shorter than its header");
    if (std::memcmp(p, magic, 4) != 0)
        return bad("bad magic");
    if (get<uint16_t>(p + 4) != version)
        return bad("unknown entry version");
    EntryHeader h;
    h.flags = get<uint16_t>(p + 6);
    h.key_len = get<uint32_t>(p + 8);
    h.value_size = get<uint64_t>(p + 16);
    h.offset = get<uint64_t>(p + 24);
    h.created_us = get<int64_t>(p + 32);
    h.payload_gen = get<uint64_t>(p + 40);
    h.value_sum = get<uint64_t>(p + 48);
    if (h.flags & ~flag_external)
        return bad("unknown flags");
    if (h.key_len == 0 || h.key_len > max_key_len)
        return bad("key length out of range");
    if (get<uint32_t>(p + 12) != 0)
        return bad("reserved field not zero");
    if (len < size + h.key_len)
        return bad("truncated key");
    if (get<uint64_t>(p + sum_at) != header_sum(p, p + size, h.key_len))
        return bad("header checksum mismatch");
    // Sizes are checked against the file by the reader; here only what the
    // header alone can contradict.
    if (h.value_size > (uint64_t(1) << 62) || h.offset > h.value_size)
        return bad("value size or offset out of range");
    if (!h.external() && h.payload_gen != 0)
        return bad("inline entry names a payload");
    return h;
}

} // namespace fsc
