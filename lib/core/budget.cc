// The budget: reservations, credit, pending ledger updates, eviction.
#include "budget.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <thread>

#include "clock.h"
#include "hash.h"

namespace fsc {

Budget::Budget(const Limits &limits, std::shared_ptr<LockTable> locks, Ledger &ledger, Store &store,
               const LockFileRecords &records)
    : limits_(limits), locks_(std::move(locks)), ledger_(ledger), store_(store), records_(records) {
    rng_.seed(std::minstd_rand::result_type(random64()));
}

bool Budget::over(const Totals &t, uint64_t extra_bytes, uint64_t extra_entries) const {
    return (limits_.cache_size != 0 && t.bytes + t.reserved_bytes + extra_bytes > limits_.cache_size) ||
           (limits_.max_entries != 0 && t.entries + t.reserved_entries + extra_entries > limits_.max_entries);
}

Budget::Reservation Budget::reserve(uint64_t charge) {
    // Only what a limit applies to is reserved: bytes under cache_size, one
    // entry under max_entries (a replaced key gives its entry back in settle).
    const Reservation r{limits_.cache_size ? charge : 0, limits_.max_entries ? 1u : 0u};
    if (r.bytes == 0 && r.entries == 0)
        return r;
    if (take_credit(r))
        return r;
    for (int attempt = 0;; attempt++) {
        if (attempt > 0) {
            reclaim_dead_reservations();
            evict_until(r.bytes, r.entries);
        }
        const Reservation extra = credit_to_add(r);
        begin_reservation();
        bool ok = false, credited = false;
        try {
            update_ledger([&](Totals &t) {
                // Credit only where it fits as it is: it never makes a set evict.
                credited = (extra.bytes || extra.entries) &&
                           !over(t, r.bytes + extra.bytes, r.entries + extra.entries);
                // After a few rounds, what is left is other processes' sets in
                // flight: charge it anyway rather than wait for them.
                if (credited || attempt >= 16 || !over(t, r.bytes, r.entries)) {
                    t.reserved_bytes += r.bytes + (credited ? extra.bytes : 0);
                    t.reserved_entries += r.entries + (credited ? extra.entries : 0);
                    ok = true;
                }
            });
        } catch (...) {
            end_reservation();
            throw;
        }
        if (ok) {
            if (credited)
                add_credit(extra);
            return r;
        }
        end_reservation();
    }
}

bool Budget::take_credit(const Reservation &r) {
    {
        std::lock_guard<std::mutex> g(pending_mu_);
        drop_parents_pending();
        if (credit_.bytes < r.bytes || credit_.entries < r.entries)
            return false;
        credit_.bytes -= r.bytes;
        credit_.entries -= r.entries;
    }
    // Already open in the lock table (the credit's own reservation is), so
    // this takes no lock; settle() closes it as for any set.
    begin_reservation();
    return true;
}

Budget::Reservation Budget::credit_to_add(const Reservation &r) {
    // Up to 15 more sets like this one, within a 64th of each limit.
    std::lock_guard<std::mutex> g(pending_mu_);
    auto more = [](uint64_t want, uint64_t limit, uint64_t held) {
        const uint64_t cap = std::min(want * 15, limit / 64);
        return held < cap ? cap - held : 0;
    };
    Reservation extra{r.bytes ? more(r.bytes, limits_.cache_size, credit_.bytes) : 0,
                      r.entries ? more(r.entries, limits_.max_entries, credit_.entries) : 0};
    // Credit short in one limit would send every set to the ledger anyway.
    if ((r.bytes && credit_.bytes + extra.bytes < r.bytes) || (r.entries && credit_.entries + extra.entries < r.entries))
        return Reservation{0, 0};
    return extra;
}

void Budget::add_credit(const Reservation &extra) {
    // One more reservation open in the lock table, held by the credit.
    begin_reservation();
    std::lock_guard<std::mutex> g(pending_mu_);
    credit_.bytes += extra.bytes;
    credit_.entries += extra.entries;
    credit_.open++;
}

void Budget::drop_parents_pending() {
    const uint64_t now = LockTable::fork_generation();
    if (pending_generation_ == now)
        return;
    // The ledger counts them for the parent, which gives them back itself.
    pending_ = Pending{};
    credit_ = Credit{};
    pending_generation_ = now;
}

void Budget::keep_pending(const Pending &p, uint64_t hits, uint64_t misses) {
    std::lock_guard<std::mutex> g(pending_mu_);
    pending_.sets += p.sets;
    pending_.release_bytes += p.release_bytes;
    pending_.release_entries += p.release_entries;
    pending_.open += p.open;
    pending_hits_ += hits;
    pending_misses_ += misses;
}

void Budget::reclaim_dead_reservations() {
    // With nobody's reservation open, any left in the ledger belong to
    // processes that died between reserving and settling. Ours go first.
    flush_pending();
    const Totals now = ledger_.read();
    if (now.reserved_bytes == 0 && now.reserved_entries == 0)
        return;
    when_no_reservations([&] {
        // A writer that died holding a reservation may also have left its
        // shard half-changed, with a stale line: set those lines right first.
        store_.rebuild_dirty_shards();
        forget_reservations();
    });
}

void Budget::settle(const Reservation &r, const Change &c) {
    const bool reserved = r.bytes || r.entries;
    bool deferred = false;
    {
        // The reservation may go back with this handle's next ledger update
        // (within a few sets): until then the budget only looks fuller.
        std::lock_guard<std::mutex> g(pending_mu_);
        if (pending_.sets < 16 && pending_.release_bytes + r.bytes <= limits_.cache_size / 64) {
            pending_.sets++;
            pending_.release_bytes += r.bytes;
            pending_.release_entries += r.entries;
            pending_.open += reserved;
            deferred = true;
        }
    }
    if (!deferred) {
        update_ledger([&](Totals &t) {
            add_clamped(t.reserved_bytes, -int64_t(r.bytes));
            add_clamped(t.reserved_entries, -int64_t(r.entries));
            t.sets++;
        });
        if (reserved)
            end_reservation();
    }
    // The shard's line already counts the value; a set that took more than it
    // reserved (its shard's table grew) may have pushed the totals over.
    const bool more = (limits_.cache_size && c.bytes > int64_t(r.bytes)) ||
                      (limits_.max_entries && c.entries > int64_t(r.entries));
    if (more)
        evict_if_over();
}

void Budget::evict_until(uint64_t extra_bytes, uint64_t extra_entries) {
    flush_pending(); // reservations this handle gave back must not count as used
    // Small caches are scanned whole (exact LRU); large ones sampled (near LRU).
    constexpr uint64_t exhaustive_limit = 1024;
    for (int round = 0; round < 64; round++) {
        Totals t = ledger_.read();
        if (!over(t, extra_bytes, extra_entries))
            return;
        const bool exhaustive = t.entries <= exhaustive_limit;
        bool saved = false;
        std::vector<Candidate> cands = eviction_order(exhaustive, &saved);
        if (cands.empty())
            return;
        const uint64_t want_bytes = t.bytes + t.reserved_bytes + extra_bytes;
        const uint64_t want_entries = t.entries + t.reserved_entries + extra_entries;
        uint64_t need_bytes = limits_.cache_size ? want_bytes - std::min(want_bytes, limits_.cache_size) : 0;
        uint64_t need_entries = limits_.max_entries ? want_entries - std::min(want_entries, limits_.max_entries) : 0;
        if (exhaustive) {
            // Free a 32nd of the budget more than needed (least recently
            // used first, as the order stays exact), so that the next sets
            // find room without this round's lock and ledger traffic.
            if (need_bytes)
                need_bytes += limits_.cache_size / 32;
            if (need_entries)
                need_entries += limits_.max_entries / 32;
        } else {
            // A set that must evict frees room for as many more sets as its
            // handle's credit then takes (credit_to_add), each victim the
            // oldest of a sample of its own: the next sets skip this round.
            if (need_bytes)
                need_bytes += std::min(extra_bytes * 15, limits_.cache_size / 64);
            if (need_entries)
                need_entries += std::min(extra_entries * 15, limits_.max_entries / 64);
        }
        uint64_t evicted = 0;
        int64_t horizon = 0;
        size_t tried = 0;
        // Sampled: one victim per sample, up to 32 samples a round.
        for (int sample = 0; sample < 32; sample++) {
            if (sample > 0) {
                cands = eviction_order(false, &saved);
                tried = 0;
            }
            bool took = false;
            for (const Candidate &c : cands) {
                tried++;
                bool removed;
                Change d = store_.evict(c, need_bytes > 0, &removed);
                if (!removed)
                    continue;
                took = true;
                horizon = std::max(horizon, c.slot.last_use_us);
                const uint64_t gone = uint64_t(std::max<int64_t>(1, -d.entries));
                evicted += gone;
                need_bytes -= std::min<uint64_t>(need_bytes, uint64_t(std::max<int64_t>(0, -d.bytes)));
                need_entries -= std::min<uint64_t>(need_entries, gone);
                if ((need_bytes == 0 && need_entries == 0) || !exhaustive)
                    break;
            }
            if (exhaustive || !took || (need_bytes == 0 && need_entries == 0))
                break;
        }
        if (exhaustive) {
            // The rest of a full scan's order serves the next evictions.
            std::lock_guard<std::mutex> g(rng_mu_);
            lru_order_.assign(cands.begin() + ptrdiff_t(tried), cands.end());
        }
        update_ledger([&](Totals &tt) {
            tt.evictions += evicted;
        });
        if (horizon)
            note_evicted(horizon);
        // Nothing removable now: never loop on it. (A saved order may only
        // be stale: the next round scans again.)
        if (evicted == 0 && exhaustive && !saved)
            return;
    }
}

std::vector<Candidate> Budget::eviction_order(bool exhaustive, bool *saved) {
    std::vector<Candidate> cands;
    std::lock_guard<std::mutex> g(rng_mu_);
    *saved = exhaustive && !lru_order_.empty();
    if (*saved)
        return std::exchange(lru_order_, {});
    store_.candidates(exhaustive, rng_, &cands);
    const int64_t now = now_us();
    auto age_key = [&](const Candidate &c) {
        bool expired = older_than(now - c.slot.created_us, limits_.expiration_ms);
        return expired ? INT64_MIN : c.slot.last_use_us;
    };
    std::sort(cands.begin(), cands.end(),
              [&](const Candidate &a, const Candidate &b) { return age_key(a) < age_key(b); });
    return cands;
}

void Budget::count_lookup(bool hit) {
    (hit ? pending_hits_ : pending_misses_)++;
    if (pending_hits_.load(std::memory_order_relaxed) + pending_misses_.load(std::memory_order_relaxed) >= 256)
        flush_pending(false);
}

bool Budget::flush_pending(bool wait) {
    bool any;
    {
        // The credit goes back too: no eviction may make room for it.
        std::lock_guard<std::mutex> g(pending_mu_);
        drop_parents_pending();
        pending_.release_bytes += credit_.bytes;
        pending_.release_entries += credit_.entries;
        pending_.open += credit_.open;
        credit_ = Credit{};
        any = pending_.sets || pending_.open;
    }
    if (!any && !pending_hits_.load() && !pending_misses_.load())
        return true;
    return update_ledger([](Totals &) {}, wait) || !any;
}

void Budget::drop_expired(int64_t hard_us) {
    const int64_t now = now_us();
    std::vector<Candidate> all;
    {
        std::lock_guard<std::mutex> g(rng_mu_);
        store_.candidates(true, rng_, &all);
    }
    uint64_t expired = 0;
    for (const Candidate &c : all) {
        bool old = c.slot.created_us <= hard_us || older_than(now - c.slot.created_us, limits_.expiration_ms);
        if (!old)
            continue;
        bool removed;
        store_.evict(c, false, &removed);
        if (removed)
            expired++;
    }
    update_ledger([&](Totals &t) {
        t.expirations += expired;
    });
}

void Budget::verify(bool repair, bool alone, VerifyCounts *n) {
    if (!alone)
        return;
    // With nobody else here, no set is in flight: no reservation may be
    // left, and the counters' record must be readable. Reservations that
    // other handles of this process still hold open (their sets give them
    // back in batches) are not leftovers: then only readability is checked.
    auto check = [&](bool reservations_too) {
        bool damaged = false;
        Totals t;
        try {
            t = ledger_.read();
        } catch (const Error &) {
            damaged = true; // rewritten whole below (update starts a damaged record from zero)
        }
        if (damaged || (reservations_too && (t.reserved_bytes != 0 || t.reserved_entries != 0))) {
            n->problems++;
            if (repair) {
                ledger_.update([&](Totals &tt) {
                    if (damaged || reservations_too)
                        tt.reserved_bytes = tt.reserved_entries = 0;
                });
                n->repaired++;
            }
        }
    };
    if (!when_no_reservations([&] { check(true); }))
        check(false);
}

void Budget::forget_reservations() {
    ledger_.update([](Totals &t) { t.reserved_bytes = t.reserved_entries = 0; });
}

void Budget::note_evicted(int64_t last_use_us) {
    unsigned char b[lock_file::horizon_size];
    lock_file::encode_horizon(last_use_us, b);
    records_.write_hint(lock_file::horizon_at, b, sizeof b);
}

void Budget::clear_horizon() { note_evicted(0); }

void Budget::evict_if_over() {
    if (over(ledger_.read(), 0, 0))
        evict_until(0, 0);
}

void Budget::close() {
    bool done = flush_pending(false);
    for (int tries = 0; tries < 100 && (pending_hits_.load() || pending_misses_.load()); tries++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        done = flush_pending(false);
    }
    if (!done)
        flush_pending();
}

void Budget::lock_for_fork() {
    pending_mu_.lock();
    rng_mu_.lock();
}

void Budget::unlock_after_fork() {
    rng_mu_.unlock();
    pending_mu_.unlock();
}

void Budget::settle_failed(const Reservation &r) {
    if (r.bytes == 0 && r.entries == 0)
        return;
    update_ledger([&](Totals &t) {
        add_clamped(t.reserved_bytes, -int64_t(r.bytes));
        add_clamped(t.reserved_entries, -int64_t(r.entries));
    });
    end_reservation();
}

} // namespace fsc
