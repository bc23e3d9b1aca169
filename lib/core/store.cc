// The store itself: construction, the shards' cached descriptors, tables
// and packs, and the helpers its units (store_read.cc, store_write.cc,
// store_recovery.cc, shard_txn.cc) share.
#include "store.h"
#include "shard_txn.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "codec.h"
#include "error.h"
#include "file_ops.h"
#include "fs_kind.h"
#include "store_shared.h"

namespace fsc {

const char not_an_entry[] = "a symbolic link or something not a regular file stands where an entry should be";

bool same_file(int fd, int dir, const std::string &name) {
    struct stat a, b;
    return fstat(fd, &a) == 0 && fstatat(dir, name.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

Change line_of(const MetaHeader &head) {
    return Change{int64_t(head.bytes + ShardMeta::size_after(head) + head.pack_overhead()), int64_t(head.count)};
}

bool is_entry_name(const char *name) {
    size_t n = 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return n == 32;
}

Store::Store(int base, std::string base_path, std::shared_ptr<LockTable> locks, Ledger &ledger, bool durable,
             uint64_t pack_limit, bool verify_payloads, const Sharing &sharing, bool coherent)
    : base_(base), base_path_(std::move(base_path)), locks_(std::move(locks)), ledger_(ledger), durable_(durable),
      sharing_(sharing), pack_limit_(pack_limit), verify_payloads_(verify_payloads), coherent_(coherent) {
    for (auto &fd : shard_fds_)
        fd.store(-1);
    for (auto &m : metas_)
        m.store(nullptr);
    temp_dir_.reset(openat(base_, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!temp_dir_)
        throw_errno(errno, "open '" + base_path_ + "/tmp'");
    shards_dir_.reset(openat(base_, "shards", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!shards_dir_)
        throw_errno(errno, "open '" + base_path_ + "/shards'");
    // Network mode: every shard directory made and opened now, so that no
    // lookup ever takes a directory another host just made for missing.
    if (coherent_)
        for (unsigned shard = 0; shard < 256; shard++)
            shard_dir(shard, true);
}

void Store::lock_for_fork() {
    packs_mu_.lock();
}

void Store::unlock_after_fork() {
    packs_mu_.unlock();
}

Store::~Store() {
    for (auto &m : metas_)
        delete m.load();
    for (auto &fd : shard_fds_)
        if (fd.load() >= 0)
            ::close(fd.load());
}

ShardMeta &Store::meta(unsigned shard, int dir) {
    ShardMeta *m = metas_[shard].load(std::memory_order_acquire);
    if (m)
        return *m;
    auto fresh = std::make_unique<ShardMeta>(dir, shown(shard, "meta"), sharing_.file_mode(), coherent_);
    ShardMeta *expected = nullptr;
    std::lock_guard<std::mutex> g(packs_mu_); // not across a fork (lock_for_fork)
    if (metas_[shard].compare_exchange_strong(expected, fresh.get()))
        return *fresh.release();
    return *expected;
}

std::string Store::payload_name(const std::string &hex, uint64_t gen) { return hex + "." + hex64(gen); }

bool Store::payload_fits(int dir, const std::string &hex, const EntryHeader &h) {
    struct stat st;
    return !h.external() || (fstatat(dir, payload_name(hex, h.payload_gen).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                             S_ISREG(st.st_mode) && uint64_t(st.st_size) == h.value_size);
}

std::string Store::shown(unsigned shard, const std::string &name) const {
    return base_path_ + "/shards/" + hex_byte(shard) + "/" + name;
}

int Store::shard_dir(unsigned shard, bool create) {
    int fd = shard_fds_[shard].load(std::memory_order_acquire);
    if (fd >= 0)
        return fd;
    const std::string name = hex_byte(shard);
    bool made = false;
    for (int attempt = 0;; attempt++) {
        fd = openat(shards_dir_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0)
            break;
        if ((errno == ENOTDIR || errno == ELOOP) && attempt < 3) {
            // Not a directory of the cache's: it goes, and the shard starts empty.
            remove_foreign(shards_dir_.get(), name.c_str());
            continue;
        }
        if (errno == ESTALE && coherent_ && attempt + 1 < name_tries) {
            wait_for_name(attempt); // made again by another host meanwhile
            continue;
        }
        if (errno != ENOENT)
            throw_errno(errno, "open '" + base_path_ + "/shards/" + name + "'");
        if (!create)
            return -1;
        made = mkdirat(shards_dir_.get(), name.c_str(), sharing_.dir_mode() & 0777) == 0;
        if (!made && errno != EEXIST)
            throw_errno(errno, "mkdir '" + base_path_ + "/shards/" + name + "'");
        if (!made && coherent_) {
            // Made by another host, which this client does not see yet.
            if (attempt + 1 >= name_tries)
                throw_errno(ENOENT, "open '" + base_path_ + "/shards/" + name + "'");
            wait_for_name(attempt);
        }
    }
    if (made) {
        try {
            enforce_mode(fd, sharing_.dir_mode(), base_path_ + "/shards/" + name);
        } catch (...) {
            ::close(fd);
            throw;
        }
    }
    int expected = -1;
    {
        std::lock_guard<std::mutex> g(packs_mu_); // not across a fork (lock_for_fork)
        if (shard_fds_[shard].compare_exchange_strong(expected, fd))
            return fd;
    }
    ::close(fd);
    return expected;
}

std::optional<EntryHeader> Store::peek(int dir, const std::string &name, std::string *key, std::string *why) {
    why->clear();
    Fd fd(open_owned(dir, name.c_str(), O_RDONLY));
    if (!fd) {
        if (errno == ENOENT)
            return std::nullopt;
        if (foreign_file(errno)) {
            *why = not_an_entry;
            return std::nullopt;
        }
        throw_errno(errno, "open '" + name + "'");
    }
    std::string buf(EntryHeader::size + 4096, '\0');
    size_t n = pread_full(fd.get(), &buf[0], buf.size(), 0, "entry '" + name + "'");
    if (n >= EntryHeader::size) {
        const uint32_t key_len = load_le32(reinterpret_cast<const unsigned char *>(&buf[8]));
        if (key_len > 4096 && key_len <= max_key_len) {
            buf.resize(EntryHeader::size + key_len);
            n = pread_full(fd.get(), &buf[0], buf.size(), 0, "entry '" + name + "'");
        }
    }
    auto h = EntryHeader::decode(buf.data(), n, why);
    if (h)
        key->assign(buf.data() + EntryHeader::size, h->key_len);
    return h;
}

std::shared_ptr<PackFile> Store::pack_of(unsigned shard, int dir, uint64_t gen) {
    {
        std::lock_guard<std::mutex> g(packs_mu_);
        if (packs_[shard] && packs_[shard]->gen == gen)
            return packs_[shard];
    }
    // Network mode: a pack another host just made may not be seen yet, or
    // seen empty: it is looked for again before it counts as gone.
    std::shared_ptr<PackFile> p;
    retry_for_names(coherent_, [&](bool last) {
        try {
            p = PackFile::open(dir, gen, shown(shard, PackFile::name(gen)), coherent_);
        } catch (const StaleFileError &) {
            if (last)
                throw;
        }
        return bool(p);
    });
    if (p)
        set_pack(shard, p);
    return p;
}

std::shared_ptr<PackFile> Store::reader_pack(unsigned shard, int dir, bool refresh) {
    if (!refresh) {
        std::lock_guard<std::mutex> g(packs_mu_);
        if (packs_[shard])
            return packs_[shard];
    }
    // value_or: no read of a missing header's bytes, even speculatively.
    const uint64_t gen = meta(shard, dir).header().value_or(MetaHeader{}).pack_gen;
    return gen ? pack_of(shard, dir, gen) : nullptr;
}

void Store::set_pack(unsigned shard, std::shared_ptr<PackFile> p) {
    if (p && coherent_ && !p->direct) // published only now: nobody else reads through it yet
        p->direct.reset(reopen_direct(p->fd.get(), "'" + shown(shard, PackFile::name(p->gen)) + "'"));
    std::lock_guard<std::mutex> g(packs_mu_);
    packs_[shard] = std::move(p);
}

void Store::flush(unsigned shard) {
    if (!coherent_)
        return;
    const int dir = shard_fds_[shard].load(std::memory_order_acquire);
    if (dir < 0)
        return;
    meta(shard, dir).sync();
    std::shared_ptr<PackFile> p;
    {
        std::lock_guard<std::mutex> g(packs_mu_);
        p = packs_[shard];
    }
    // A pack another host replaced meanwhile (ESTALE) holds nothing anyone
    // reads: only the current one, which this change wrote if it wrote any.
    if (p && fdatasync(p->fd.get()) != 0 && errno != ESTALE)
        throw_errno(errno, "fsync '" + shown(shard, PackFile::name(p->gen)) + "'");
}

uint64_t Store::mark_of(const Slot &s) {
    const uint64_t words[5] = {uint64_t(s.created_us), s.bytes, s.payload_gen, uint64_t(s.packed), s.pack_offset};
    const uint64_t m = checksum64(words, sizeof words);
    return m ? m : 1; // 0 stands for no value
}

void Store::check_lease(const Lease *lease, const Key &key, ShardTxn &txn) {
    if (!lease)
        return;
    if (const int err = lease->locks.reassert_key(key.hash.word()))
        fail(Status::lost, "the key's lock was lost (" + std::string(std::strerror(err)) +
                               "): another host may hold it; nothing was stored");
    const std::optional<Slot> now = txn.meta.find(txn.head, key.hash);
    if (now && mark_of(*now) != lease->mark)
        fail(Status::lost, "the key's lock was lost: another value was stored for the key while this one held "
                           "it (another host was given the lock); nothing was stored");
}

uint64_t Store::value_mark(const Key &key) {
    const unsigned shard = key.hash.shard();
    const int dir = shard_dir(shard, false);
    if (dir < 0)
        return 0;
    LockTable::ShardGuard g(*locks_, shard);
    ShardMeta &m = meta(shard, dir);
    const std::optional<MetaHeader> head = m.header();
    if (!head)
        return 0;
    const std::optional<Slot> s = m.find(*head, key.hash);
    return s ? mark_of(*s) : 0;
}

} // namespace fsc
