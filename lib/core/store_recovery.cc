// Recovery and verification: rebuilding a shard's table from its files
// (scan_files) or against them (reconcile), setting ledger lines again,
// sweeping temp files, and fsc_verify's checks and repairs.
#include "store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "file_ops.h"
#include "fs_kind.h"
#include "shard_txn.h"
#include "store_shared.h"

namespace fsc {

std::shared_ptr<PackFile> Store::newest_pack(unsigned shard, int dir) {
    std::vector<std::string> names;
    for_each_name(dir, base_path_ + "/shards/" + hex_byte(shard), [&](const char *name) {
        if (std::strncmp(name, "pack.", 5) == 0)
            names.push_back(name);
    });
    VerifyCounts ignored;
    return pick_pack(shard, dir, names, false, ignored);
}

std::shared_ptr<PackFile> Store::pick_pack(unsigned shard, int dir, const std::vector<std::string> &names,
                                           bool repair, VerifyCounts &n) {
    std::shared_ptr<PackFile> best;
    std::vector<std::string> others;
    for (const std::string &name : names) {
        uint64_t gen;
        auto p = PackFile::parse_name(name.c_str(), &gen) ? PackFile::open(dir, gen, shown(shard, name), coherent_) : nullptr;
        if (p && (!best || p->seq > best->seq)) {
            if (best)
                others.push_back(PackFile::name(best->gen));
            best = p;
        } else {
            others.push_back(name);
        }
    }
    for (const std::string &name : others) {
        n.problems++;
        if (repair && unlinkat(dir, name.c_str(), 0) == 0)
            n.repaired++;
    }
    return best;
}

std::vector<Slot> Store::reconcile(unsigned shard, int dir, const MetaHeader &head, PackState *pack) {
    MetaHeader ignored;
    std::vector<Slot> table, kept;
    meta(shard, dir).read_all(&ignored, &table);
    std::shared_ptr<PackFile> p;
    if (head.pack_gen) {
        p = PackFile::open(dir, head.pack_gen, shown(shard, PackFile::name(head.pack_gen)), coherent_);
        if (!p) // the pack the table names is gone: only the files can tell
            return scan_files(shard, dir, true, nullptr, pack);
    } else {
        // A writer that died in the change that created the shard's pack
        // wrote slots into it before the header could name it: the newest.
        p = newest_pack(shard, dir);
    }
    const std::string where = p ? shown(shard, PackFile::name(p->gen)) : std::string();
    for (Slot s : table) {
        if (s.packed) {
            auto r = p ? p->read_at(s.pack_offset, s.bytes, where) : std::nullopt;
            if (!r || !r->live || r->header.created_us != s.created_us ||
                KeyHash::of(r->key.data(), r->key.size()).bytes != s.hash.bytes)
                continue;
        } else {
            // The entry file is the value (a rename replaced it whole): its
            // header says what the slot should.
            const std::string hex = s.hash.hex();
            std::string key, why;
            auto h = peek(dir, hex, &key, &why);
            if (!h || KeyHash::of(key.data(), key.size()).bytes != s.hash.bytes || !payload_fits(dir, hex, *h))
                continue;
            s.bytes = charge(key.size(), h->value_size);
            s.created_us = h->created_us;
            s.payload_gen = h->external() ? h->payload_gen : 0;
        }
        kept.push_back(s);
    }
    // A damaged table may name a key twice: its newest value stays.
    std::sort(kept.begin(), kept.end(), [](const Slot &a, const Slot &b) {
        return a.hash.bytes != b.hash.bytes ? a.hash.bytes < b.hash.bytes : a.created_us > b.created_us;
    });
    kept.erase(std::unique(kept.begin(), kept.end(),
                           [](const Slot &a, const Slot &b) { return a.hash.bytes == b.hash.bytes; }),
               kept.end());
    std::vector<std::string> wanted; // entry and payload files the kept slots name
    uint64_t live = 0, end = PackFile::header_size;
    for (const Slot &s : kept) {
        if (s.packed) {
            live += s.bytes;
            end = std::max(end, s.pack_offset + s.bytes);
        } else {
            wanted.push_back(s.hash.hex());
            if (s.payload_gen)
                wanted.push_back(payload_name(s.hash.hex(), s.payload_gen));
        }
    }
    // Files no kept slot names were in flight when the writer died.
    for_each_name(dir, base_path_ + "/shards/" + hex_byte(shard), [&](const char *name) {
        if (std::strcmp(name, "meta") == 0 || (p && PackFile::name(p->gen) == name))
            return;
        if (std::find(wanted.begin(), wanted.end(), name) == wanted.end())
            unlinkat(dir, name, 0);
    });
    *pack = PackState{};
    if (p && live) {
        // Live records no slot names (an append or a copy in flight) die, so
        // that no later scan of the pack brings them back; bytes past the
        // last named record go.
        p->scan(
            [&](const PackFile::Record &r) {
                if (!r.live || r.offset >= end)
                    return;
                const bool named = std::any_of(kept.begin(), kept.end(), [&](const Slot &k) {
                    return k.packed && k.pack_offset == r.offset;
                });
                if (!named)
                    p->kill(r.offset, where);
            },
            where);
        if (ftruncate(p->fd.get(), off_t(end)) != 0)
            throw_errno(errno, "truncate '" + where + "'");
        *pack = PackState{p->gen, end, end - PackFile::header_size - live};
    } else if (p) {
        unlinkat(dir, PackFile::name(p->gen).c_str(), 0);
    }
    return kept;
}

bool Store::payload_intact(int dir, const std::string &hex, const EntryHeader &h, bool read_whole) {
    const std::string name = payload_name(hex, h.payload_gen);
    Fd fd(open_owned(dir, name.c_str(), O_RDONLY));
    struct stat st;
    if (!fd || fstat(fd.get(), &st) != 0 || uint64_t(st.st_size) != h.value_size)
        return false;
    return !read_whole || checksum_file(fd.get(), h.value_size, "'" + name + "'") == std::optional<uint64_t>(h.value_sum);
}

std::vector<Slot> Store::scan_files(unsigned shard, int dir, bool repair, VerifyCounts *counts, PackState *pack) {
    // The slots the valid entry files and pack records call for, keeping known last-use times.
    MetaHeader head;
    std::vector<Slot> known;
    meta(shard, dir).read_all(&head, &known);
    std::vector<Slot> slots;
    std::vector<std::string> payloads_wanted, payloads_seen, damaged, packs;
    VerifyCounts local;
    VerifyCounts &n = counts ? *counts : local;
    for_each_name(dir, base_path_ + "/shards/" + hex_byte(shard), [&](const char *name) {
        if (std::strcmp(name, "meta") == 0)
            return;
        n.checked++;
        if (std::strncmp(name, "pack.", 5) == 0) {
            packs.push_back(name);
            return;
        }
        if (!is_entry_name(name)) {
            payloads_seen.push_back(name);
            return;
        }
        std::string key, why;
        auto h = peek(dir, name, &key, &why);
        if (!h || KeyHash::of(key.data(), key.size()).hex() != name) {
            damaged.push_back(name);
            return;
        }
        if (h->external())
            payloads_wanted.push_back(payload_name(name, h->payload_gen));
        slots.push_back(Slot{KeyHash::of(key.data(), key.size()), charge(key.size(), h->value_size), h->created_us,
                             h->external() ? h->payload_gen : 0, h->created_us});
    });
    auto drop = [&](const std::string &name) {
        n.problems++;
        if (repair && unlinkat(dir, name.c_str(), 0) == 0)
            n.repaired++;
    };
    for (const std::string &name : damaged)
        drop(name);
    for (const std::string &name : payloads_seen)
        if (std::find(payloads_wanted.begin(), payloads_wanted.end(), name) == payloads_wanted.end())
            drop(name); // an orphan: no entry names it
    // An external entry whose payload is missing or the wrong size is
    // damaged; for fsc_verify (counts given) also one whose payload fails
    // its checksum (read whole).
    for (auto it = slots.begin(); it != slots.end();) {
        const std::string hex = it->hash.hex();
        std::string key, why;
        auto h = peek(dir, hex, &key, &why);
        bool ok = h && (!h->external() || payload_intact(dir, hex, *h, counts != nullptr));
        if (!ok) {
            drop(hex);
            if (repair && h && h->external())
                unlinkat(dir, payload_name(hex, h->payload_gen).c_str(), 0);
            it = slots.erase(it);
        } else {
            ++it;
        }
    }

    // The newest pack's live records; for a key found twice the later set
    // wins (a crash between a set's two steps leaves both).
    *pack = PackState{};
    if (auto p = pick_pack(shard, dir, packs, repair, n)) {
        const std::string where = shown(shard, PackFile::name(p->gen));
        std::vector<PackFile::Record> live;
        // Past the end a readable table gives its pack, records are appends
        // no slot committed (their writer died, or a repair runs before the
        // shard is reconciled): never values, and cut off as a torn tail.
        const uint64_t limit = head.pack_gen == p->gen ? head.pack_end : UINT64_MAX;
        uint64_t end = std::min(p->scan(
            [&](const PackFile::Record &r) {
                if (r.damaged) {
                    n.problems++; // its value fails its checksum: dead from now on
                    if (repair) {
                        p->kill(r.offset, where);
                        n.repaired++;
                    }
                } else if (r.live && r.offset < limit && KeyHash::of(r.key.data(), r.key.size()).shard() == shard) {
                    live.push_back(r);
                }
            },
            where), limit);
        // A damaged header stops the walk; records the table still names
        // past it are read one by one (their offsets and lengths are known).
        const uint64_t walked = end;
        for (const Slot &k : known) {
            if (!k.packed || k.pack_offset < walked || head.pack_gen != p->gen)
                continue;
            auto r = p->read_at(k.pack_offset, k.bytes, where);
            if (r && r->live && KeyHash::of(r->key.data(), r->key.size()).bytes == k.hash.bytes) {
                live.push_back(*r);
                end = std::max(end, k.pack_offset + k.bytes);
            }
        }
        struct stat st;
        if (p->direct)
            learn_size(p->fd.get());
        if (fstat(p->fd.get(), &st) == 0 && uint64_t(st.st_size) != end) {
            n.problems++; // a torn or damaged tail
            if (repair && ftruncate(p->fd.get(), off_t(end)) == 0)
                n.repaired++;
        }
        const bool torn_inside = end != walked;
        if (torn_inside)
            n.problems++; // a damaged record header inside the pack
        uint64_t live_bytes = 0;
        for (size_t i = 0; i < live.size(); i++) {
            const PackFile::Record &r = live[i];
            Slot s{KeyHash::of(r.key.data(), r.key.size()), charge(r.key.size(), r.header.value_size),
                   r.header.created_us, 0, r.header.created_us, true, r.offset};
            auto same = std::find_if(slots.begin(), slots.end(),
                                     [&](const Slot &o) { return o.hash.bytes == s.hash.bytes; });
            bool keep = true;
            if (same != slots.end()) {
                n.problems++;
                if (same->packed || same->created_us <= s.created_us) {
                    // The earlier one goes.
                    if (repair) {
                        if (same->packed)
                            p->kill(same->pack_offset, where);
                        else if (unlinkat(dir, same->hash.hex().c_str(), 0) == 0 && same->payload_gen)
                            unlinkat(dir, payload_name(same->hash.hex(), same->payload_gen).c_str(), 0);
                        n.repaired++;
                    }
                    if (same->packed)
                        live_bytes -= same->bytes;
                    slots.erase(same);
                } else {
                    keep = false;
                    if (repair) {
                        p->kill(r.offset, where);
                        n.repaired++;
                    }
                }
            }
            if (keep) {
                slots.push_back(s);
                live_bytes += s.bytes;
            }
        }
        if (live_bytes == 0) {
            // Nothing live: the pack goes (as a writer's tidy would drop it).
            if (repair)
                unlinkat(dir, PackFile::name(p->gen).c_str(), 0);
        } else {
            *pack = PackState{p->gen, end, end - PackFile::header_size - live_bytes, torn_inside};
        }
    }
    for (Slot &s : slots)
        for (const Slot &k : known)
            if (k.hash.bytes == s.hash.bytes && k.created_us == s.created_us)
                s.last_use_us = k.last_use_us;
    return slots;
}

void Store::recover() {
    sweep_temp();
    rebuild_dirty_shards();
}

void Store::rebuild_dirty_shards() {
    // A clean shard's ledger line was set before its dirty mark was cleared:
    // only dirty shards need their table rebuilt and their line set again;
    // a clean one's meta file may have grown past its table (ShardMeta::trim).
    // A line that disagrees with its clean shard (damaged, or forged with a
    // valid checksum) is set again from the shard, under its lock.
    const auto lines = ledger_.lines();
    for (unsigned shard = 0; shard < 256; shard++) {
        const int dir = shard_dir(shard, false);
        std::optional<MetaHeader> head;
        if (dir >= 0 && !meta(shard, dir).clean(&head)) {
            ShardTxn(*this, shard, dir).finish();
            continue;
        }
        if (head) {
            // Under the shard lock, on the header read again: a writer may
            // have grown the table since the look above.
            LockTable::ShardGuard g(*locks_, shard);
            ShardMeta &m = meta(shard, dir);
            if (const std::optional<MetaHeader> now = m.header(); now && now->dirty == 0)
                m.trim(*now);
        }
        // Read before the shard's header: a writer since sets both, and a
        // mismatch only costs setting the line again.
        const Change want = head ? line_of(*head) : Change{};
        const Ledger::Line &line = lines[shard];
        if (!line.ok || line.bytes != uint64_t(want.bytes) || line.entries != uint64_t(want.entries))
            rebuild_line(shard);
    }
}

void Store::rebuild_line(unsigned shard) {
    {
        LockTable::ShardGuard g(*locks_, shard);
        if (shard_dir(shard, false) < 0) {
            ledger_.set_shard(shard, 0, 0); // no directory, no entries: nothing to charge
            return;
        }
    }
    ShardTxn(*this, shard, shard_dir(shard, false)).finish();
}

VerifyCounts Store::verify(bool repair, bool exclusive) {
    VerifyCounts n;
    for (unsigned shard = 0; shard < 256; shard++) {
        const int dir = shard_dir(shard, false);
        if (dir < 0) {
            // A shard never written to holds nothing: its line must say so.
            uint64_t bytes, entries;
            if (!ledger_.get_shard(shard, &bytes, &entries) || bytes != 0 || entries != 0) {
                n.problems++;
                if (repair) {
                    rebuild_line(shard);
                    n.repaired++;
                }
            }
            continue;
        }
        bool same = false, copy_pack = false;
        // Network mode: this client may see another host's newest files
        // late (fs_kind.h), so a shard that does not check out is looked at
        // again, without repairing, before it counts.
        retry_for_names(coherent_, [&](bool last) {
            VerifyCounts tried;
            same = verify_shard(shard, dir, repair && last, last ? n : tried, &copy_pack);
            if (!same || tried.problems != 0)
                return false;
            n.checked += tried.checked; // a last try counted into n itself
            return true;
        });
        if (!same)
            n.problems++;
        if (repair && (!same || copy_pack)) {
            ShardTxn txn(*this, shard, dir);
            txn.rebuild_from_files();
            if (copy_pack && txn.head.pack_gen)
                compact(txn, dir);
            txn.finish();
            n.repaired += !same;
        }
    }
    if (exclusive) {
        for_each_name(temp_dir_.get(), base_path_ + "/tmp", [&](const char *name) {
            n.checked++;
            n.problems++;
            if (repair && unlinkat(temp_dir_.get(), name, 0) == 0)
                n.repaired++;
        });
    }
    return n;
}

bool Store::verify_shard(unsigned shard, int dir, bool repair, VerifyCounts &n, bool *copy_pack) {
    ShardMeta &m = meta(shard, dir);
    bool same;
    {
        LockTable::ShardGuard g(*locks_, shard);
        MetaHeader head;
        std::vector<Slot> slots;
        // An empty meta file is an empty shard's table.
        const bool meta_ok = m.read_all(&head, &slots) ? head.dirty == 0 : m.clean();
        // A table left dirty by a writer killed inside its change is only
        // counted here: the files may hold what that writer had in flight
        // (a record appended past the table's end, an entry renamed in),
        // and judging it against the committed value could remove the
        // latter. The repair below first reconciles the shard with its
        // table, as its next writer would.
        PackState pack;
        std::vector<Slot> want = scan_files(shard, dir, repair && meta_ok, &n, &pack);
        // A record header inside a pack that fails stays there until the
        // pack is copied: a repair compacts it.
        *copy_pack = repair && pack.torn_inside;
        // The metadata must list exactly the valid entries, with their
        // charges and totals, in a file of the table's size.
        same = meta_ok && slots.size() == want.size() && head.count == want.size() &&
               m.file_size() == ShardMeta::size_after(head);
        uint64_t bytes = 0;
        for (const Slot &w : want) {
            bytes += w.bytes;
            bool found = false;
            for (const Slot &s : slots)
                found = found || (s.hash.bytes == w.hash.bytes && s.bytes == w.bytes &&
                                  s.created_us == w.created_us && s.payload_gen == w.payload_gen &&
                                  s.packed == w.packed && s.pack_offset == w.pack_offset);
            same = same && found;
        }
        same = same && head.bytes == bytes && head.pack_gen == pack.gen && head.pack_end == pack.end &&
               head.pack_dead == pack.dead;
        // The ledger's line for the shard must match its table.
        uint64_t line_bytes, line_entries;
        same = same && ledger_.get_shard(shard, &line_bytes, &line_entries) && line_bytes == bytes + ShardMeta::size_after(head) + head.pack_overhead() &&
               line_entries == want.size();
    }
    return same;
}

void Store::sweep_temp() {
    for_each_name(temp_dir_.get(), base_path_ + "/tmp", [&](const char *name) { unlinkat(temp_dir_.get(), name, 0); });
}

} // namespace fsc
