// ShardMeta's reads made without the shard lock, by gets and by eviction's
// sampling: lookups, last-use stamps, and reads of the whole table or a
// window of it. A writer may be changing the table meanwhile: what is read
// torn is read again or skipped (docs/ARCHITECTURE.md, "A get").
#include "shard_meta.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "codec.h"
#include "error.h"
#include "file_ops.h"
#include "shard_meta_slot.h"

namespace fsc {

using namespace meta_slot;

ShardMeta::Lookup ShardMeta::lookup(const KeyHash &h, Slot *slot, uint32_t *index) {
    for (int attempt = 0; attempt < 2; attempt++) {
        uint32_t cap = known_capacity_.load(std::memory_order_acquire);
        uint32_t rewrites = known_rewrites_.load(std::memory_order_acquire);
        if (cap == 0) {
            auto head = read_header();
            if (!head)
                return empty() ? Lookup::absent : Lookup::unsure;
            if (head->dirty == dirty_rewrite)
                return Lookup::unsure;
            cap = head->capacity;
            rewrites = head->rewrites;
            known_rewrites_.store(rewrites, std::memory_order_release);
            known_capacity_.store(cap, std::memory_order_release);
        }
        // The slot is almost always at its home index or just after it.
        constexpr uint32_t window = 8;
        unsigned char b[slot_size * window];
        uint32_t i = uint32_t(h.word() % cap);
        bool ended = false, damaged = false;
        for (uint32_t seen = 0; seen < cap && !ended;) {
            const uint32_t n = std::min(window, std::min(cap - i, cap - seen));
            const size_t got = pread_coherent(fd_.get(), direct_.get(), b, slot_size * n,
                                              slot_size * (uint64_t(i) + 1), "'" + shown_ + "'");
            for (uint32_t k = 0; k < n; k++, seen++) {
                uint32_t state = state_empty;
                Slot s;
                if ((k + 1) * slot_size <= size_t(got) && decode_slot(b + k * slot_size, &s, &state)) {
                    if (s.hash.bytes == h.bytes) {
                        *slot = s;
                        *index = i + k;
                        return Lookup::found;
                    }
                    continue;
                }
                damaged = damaged || state == state_damaged;
                if (state == state_empty) {
                    ended = true;
                    break;
                }
            }
            i = (i + n) % cap;
        }
        // A slot failing its checksum may be one a writer was writing as it
        // was read (no rewrite marks that): only the lock can tell.
        if (damaged)
            return Lookup::unsure;
        // Not in the table as this reader knows it: trust that only if no
        // rewrite of the table began since the reader last saw its header
        // (the probe may have raced one), and it is still that size.
        auto head = read_header();
        if (!head)
            return empty() ? Lookup::absent : Lookup::unsure;
        if (head->dirty == dirty_rewrite)
            return Lookup::unsure;
        if (head->capacity == cap && head->rewrites == rewrites)
            return Lookup::absent;
        known_rewrites_.store(head->rewrites, std::memory_order_release);
        known_capacity_.store(head->capacity, std::memory_order_release);
    }
    return Lookup::unsure;
}

void ShardMeta::touch(uint32_t index, const Slot &s, int64_t now_us, int64_t lru_horizon_us) {
    // How long values stay unread before eviction takes them, known from
    // the horizon once something was evicted; the value's own age bounds it
    // (before the first eviction, and when the horizon is old news).
    int64_t idle = now_us - s.created_us;
    if (lru_horizon_us > 0 && lru_horizon_us < now_us)
        idle = std::min(idle, now_us - lru_horizon_us);
    const int64_t lag = std::clamp(idle / 16, touch_min_us, touch_max_us);
    // A table rewritten since the lookup may be smaller now: never stamp
    // past the table this reader knows (a write there would grow the file).
    if (index >= known_capacity_.load(std::memory_order_relaxed))
        return;
    if (s.last_use_us == s.created_us || now_us - s.last_use_us >= lag) {
        unsigned char stamp[8];
        store_le64s(stamp, now_us);
        (void)!pwrite(fd_.get(), stamp, 8, off_t(slot_size) * (index + 1) + slot_use_at);
        // Network mode: sent now, not whenever the client flushes it (after
        // a writer on another host may have rewritten or shrunk the table).
        if (direct_)
            (void)!fdatasync(fd_.get());
    }
}

bool ShardMeta::empty() {
    if (direct_)
        learn_size(fd_.get());
    struct stat st;
    return fstat(fd_.get(), &st) == 0 && st.st_size == 0;
}

bool ShardMeta::read_all(MetaHeader *head, std::vector<Slot> *slots) {
    auto h = read_header();
    if (!h)
        return false;
    *head = *h;
    // In pieces: a damaged header may claim a table far larger than the file.
    constexpr uint32_t piece = 4096;
    std::vector<unsigned char> b(slot_size * std::min(piece, h->capacity));
    for (uint32_t at = 0; at < h->capacity; at += piece) {
        const uint32_t n = std::min(piece, h->capacity - at);
        size_t got = pread_coherent(fd_.get(), direct_.get(), b.data(), slot_size * n, slot_size * (uint64_t(at) + 1), "'" + shown_ + "'");
        for (size_t i = 0; i + slot_size <= got; i += slot_size) {
            Slot s;
            uint32_t state;
            if (decode_slot(b.data() + i, &s, &state))
                slots->push_back(s);
        }
        if (got < slot_size * n)
            break; // the file ends here
    }
    return true;
}

void ShardMeta::sample(std::minstd_rand &rng, size_t window, std::vector<Slot> *out) {
    // A table no larger than the window (every table of a small cache) is
    // read with its header in one pread; a larger one known to this handle
    // costs no more than its header first.
    const uint32_t known = known_capacity_.load(std::memory_order_relaxed);
    std::vector<unsigned char> b(slot_size * (1 + (known > window ? 0 : window)));
    size_t got = pread_coherent(fd_.get(), direct_.get(), b.data(), b.size(), 0, "'" + shown_ + "'");
    bool torn = false;
    auto h = got >= slot_size ? parse_header(b.data(), &torn) : std::nullopt;
    if (torn)
        h = read_header();
    if (!h || h->count == 0)
        return;
    uint32_t n = uint32_t(std::min<size_t>(window, h->capacity));
    uint32_t start = uint32_t(rng() % (h->capacity - n + 1));
    const unsigned char *slots = b.data() + slot_size;
    if (torn || start != 0 || got < slot_size * (1 + uint64_t(n))) {
        b.resize(slot_size * n);
        got = pread_coherent(fd_.get(), direct_.get(), b.data(), b.size(), slot_size * (uint64_t(start) + 1), "'" + shown_ + "'");
        slots = b.data();
    } else {
        got = slot_size * n;
    }
    for (size_t i = 0; i + slot_size <= got; i += slot_size) {
        Slot s;
        uint32_t state;
        if (decode_slot(slots + i, &s, &state))
            out->push_back(s);
    }
}

} // namespace fsc
