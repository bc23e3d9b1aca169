#include "entry_format.h"

#include <cstring>

#include "codec.h"
#include "hash.h"

namespace fsc {

namespace {

const unsigned char magic[4] = {'F', 'S', 'C', 'E'};
constexpr size_t sum_at = 56;

uint64_t header_sum(const unsigned char *head, const void *key, size_t key_len) {
    return checksum64(key, key_len, checksum64(head, sum_at));
}

} // namespace

std::array<unsigned char, EntryHeader::size> EntryHeader::encode(const void *key) const {
    std::array<unsigned char, size> b{};
    unsigned char *p = b.data();
    std::memcpy(p, magic, 4);
    store_le16(p + 4, version);
    store_le16(p + 6, flags);
    store_le32(p + 8, key_len);
    store_le64(p + 16, value_size);
    store_le64(p + 24, offset);
    store_le64s(p + 32, created_us);
    store_le64(p + 40, payload_gen);
    store_le64(p + 48, value_sum);
    store_le64(p + sum_at, header_sum(p, key, key_len));
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
    if (load_le16(p + 4) != version)
        return bad("unknown entry version");
    EntryHeader h;
    h.flags = load_le16(p + 6);
    h.key_len = load_le32(p + 8);
    h.value_size = load_le64(p + 16);
    h.offset = load_le64(p + 24);
    h.created_us = load_le64s(p + 32);
    h.payload_gen = load_le64(p + 40);
    h.value_sum = load_le64(p + 48);
    if (h.flags & ~flag_external)
        return bad("unknown flags");
    if (h.key_len == 0 || h.key_len > max_key_len)
        return bad("key length out of range");
    if (load_le32(p + 12) != 0)
        return bad("reserved field not zero");
    if (len < size + h.key_len)
        return bad("truncated key");
    if (load_le64(p + sum_at) != header_sum(p, p + size, h.key_len))
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
