// The byte layout of one slot of a shard's table (docs/FORMAT.md, "Shard
// metadata"): shared by the table's lock-free reads and its writer's edits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "codec.h"
#include "entry_format.h"
#include "hash.h"
#include "shard_meta.h"

namespace fsc {
namespace meta_slot {

constexpr uint32_t where_file = 0, where_pack = 1;
constexpr uint32_t state_empty = 0, state_used = 1, state_tombstone = 2;
// Never written: what decode_slot reports for a slot that fails its checks.
constexpr uint32_t state_damaged = 3;
constexpr size_t slot_sum_at = 48, slot_use_at = 56;

// Decodes a used slot; false for empty, tombstone or damaged slots. Inline:
// a lookup decodes a window of slots per get.
inline bool decode_slot(const unsigned char *p, Slot *s, uint32_t *state) {
    *state = load_le32(p + 32);
    if (*state != state_used)
        return false;
    if (load_le64(p + slot_sum_at) != checksum64(p, slot_sum_at)) {
        *state = state_damaged; // a hole that keeps probing going (or a slot read while written)
        return false;
    }
    std::memcpy(s->hash.bytes.data(), p, 16);
    s->bytes = load_le64(p + 16);
    s->created_us = load_le64s(p + 24);
    const uint32_t where = load_le32(p + 36);
    if (where != where_file && where != where_pack) {
        *state = state_damaged;
        return false;
    }
    s->packed = where == where_pack;
    s->payload_gen = s->packed ? 0 : load_le64(p + 40);
    s->pack_offset = s->packed ? load_le64(p + 40) : 0;
    // A packed slot's charge is its record's length: bounded, so that no
    // reader allocates what a damaged table claims.
    if (s->packed && (s->bytes <= EntryHeader::size || s->bytes > max_record_len || s->pack_offset < 64 ||
                      s->pack_offset > max_pack_len)) {
        *state = state_damaged;
        return false;
    }
    s->last_use_us = load_le64s(p + slot_use_at);
    return true;
}

// Encodes s (nullptr: no slot) in the given state.
inline void encode_slot(unsigned char *p, const Slot *s, uint32_t state) {
    std::memset(p, 0, ShardMeta::slot_size);
    if (s) {
        std::memcpy(p, s->hash.bytes.data(), 16);
        store_le64(p + 16, s->bytes);
        store_le64s(p + 24, s->created_us);
        store_le32(p + 36, s->packed ? where_pack : where_file);
        store_le64(p + 40, s->packed ? s->pack_offset : s->payload_gen);
        store_le64s(p + slot_use_at, s->last_use_us);
    }
    store_le32(p + 32, state);
    store_le64(p + slot_sum_at, checksum64(p, slot_sum_at));
}

} // namespace meta_slot
} // namespace fsc
