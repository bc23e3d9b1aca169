#include "lock_table.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cerrno>
#include <chrono>
#include <limits>
#include <map>
#include <random>

#include "error.h"
#include "file_ops.h"
#include "fs_kind.h"

namespace fsc {

namespace {

// Every lock file this process has open, by device and inode. Never freed, so
// that it outlives every static destructor that might still release a table.
struct Registry {
    std::mutex mu;
    std::map<std::pair<dev_t, ino_t>, LockTable *> tables;
};

Registry &registry() {
    static Registry *r = new Registry;
    return *r;
}

std::atomic<uint64_t> forks_seen{0};

// A request about the one byte at start (every lock fsc takes is one byte).
struct flock one_byte(short type, off_t start) {
    struct flock fl = {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = 1;
    return fl;
}

off_t key_offset(uint64_t hash_word) {
    const uint64_t span = uint64_t(std::numeric_limits<off_t>::max()) - uint64_t(lock_file::key_range);
    return lock_file::key_range + off_t(hash_word % span);
}

} // namespace

LockTable::LockTable(int fd, dev_t dev, ino_t ino, std::string shown_path, bool network, int direct_fd)
    : fd_(fd), dev_(dev), ino_(ino), shown_path_(std::move(shown_path)), state_(new State),
      generation_(forks_seen.load()), network_(network), direct_fd_(direct_fd) {}

std::shared_ptr<LockTable> LockTable::acquire(int dirfd, const std::string &name, const std::string &shown_path,
                                              bool network) {
    static std::once_flag atfork_once;
    std::call_once(atfork_once, [] {
        pthread_atfork([] { registry().mu.lock(); }, [] { registry().mu.unlock(); }, after_fork_in_child);
    });

    Registry &reg = registry();
    std::lock_guard<std::mutex> g(reg.mu);
    LockTable *table = nullptr;
    struct stat st;
    // Look up before opening: opening and then closing a second descriptor
    // of a lock file would drop every lock this process holds on it.
    if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        auto it = reg.tables.find({st.st_dev, st.st_ino});
        if (it != reg.tables.end())
            table = it->second;
    }
    if (!table) {
        int fd = open_noatime(dirfd, name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
        if (fd < 0)
            throw_errno(errno, "open lock file '" + shown_path + "'");
        if (fstat(fd, &st) != 0) {
            int err = errno;
            ::close(fd);
            throw_errno(err, "fstat lock file '" + shown_path + "'");
        }
        // A hard link would let the cache's writes through to a file elsewhere.
        if (!S_ISREG(st.st_mode) || st.st_nlink > 1) {
            ::close(fd);
            fail(Status::format, "lock file '" + shown_path + "' is not a regular file of the cache's own" +
                                     (S_ISREG(st.st_mode) ? " (another name links to it)" : ""));
        }
        auto it = reg.tables.find({st.st_dev, st.st_ino});
        if (it != reg.tables.end()) {
            // Replaced under us between stat and open: keep the descriptor
            // open (closing it would drop the existing table's locks).
            table = it->second;
        } else {
            int direct = -1;
            try {
                if (network && is_network_fs(fd))
                    direct = reopen_direct(fd, "lock file '" + shown_path + "'");
            } catch (...) {
                ::close(fd); // no table holds locks through it yet
                throw;
            }
            table = new LockTable(fd, st.st_dev, st.st_ino, shown_path, network, direct);
            reg.tables[{st.st_dev, st.st_ino}] = table;
        }
    }
    table->users_++;
    return std::shared_ptr<LockTable>(table, release_table);
}

void LockTable::release_table(LockTable *t) {
    Registry &reg = registry();
    std::lock_guard<std::mutex> g(reg.mu);
    if (--t->users_ > 0)
        return;
    // Last user in this process: closing the descriptor drops whatever the
    // process still holds on the file, and nothing can hold anything now.
    reg.tables.erase({t->dev_, t->ino_});
    ::close(t->fd_);
    if (t->direct_fd_ >= 0)
        ::close(t->direct_fd_);
    delete t->state_;
    delete t;
}

void LockTable::after_fork_in_child() {
    Registry &reg = registry();
    forks_seen++;
    for (auto &kv : reg.tables) {
        LockTable *t = kv.second;
        unsigned opens = t->state_->opens;
        // The parent's state may hold mutexes locked by threads that do not
        // exist here: leave it behind and start afresh.
        t->state_ = new State;
        t->state_->opens = opens;
        t->generation_ = forks_seen.load();
        // The inherited descriptor shares the parent's open file description,
        // and with it the parent's internal (OFD) locks: take a description
        // of our own. The child holds no record locks, so closing drops none.
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", t->fd_);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            dup3(fd, t->fd_, O_CLOEXEC);
            ::close(fd);
        }
        if (opens > 0)
            t->fcntl_lock(lock_file::open_range, F_RDLCK, 0, true); // never waits here
    }
    reg.mu.unlock();
}

int LockTable::fcntl_lock(off_t start, short type, int64_t timeout_ms, bool internal) {
    // Internal locks (shards, records, the open range) are open-file-description
    // locks: they stay out of the kernel's per-process deadlock detection, which
    // would otherwise see a false cycle between a key waiter in one thread and a
    // shard waiter in another. Threads are excluded by the in-process mutexes.
    const int set = internal ? F_OFD_SETLK : F_SETLK, set_wait = internal ? F_OFD_SETLKW : F_SETLKW;
    struct flock fl = one_byte(type, start);
    if (timeout_ms < 0) {
        while (fcntl(fd_, set_wait, &fl) == -1) {
            if (errno != EINTR)
                return errno;
        }
        return 0;
    }
    // No timeout in the kernel call: poll with capped, jittered back-off.
    const int64_t deadline = steady_ms() + timeout_ms;
    thread_local std::minstd_rand jitter(std::random_device{}());
    int64_t backoff_us = 100;
    for (;;) {
        if (fcntl(fd_, set, &fl) == 0)
            return 0;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR)
            return errno;
        int64_t left_ms = deadline - steady_ms();
        if (timeout_ms == 0 || left_ms <= 0)
            return EAGAIN;
        int64_t nap = backoff_us / 2 + int64_t(jitter() % uint64_t(backoff_us));
        sleep_us(std::min(nap, left_ms * 1000));
        backoff_us = std::min<int64_t>(backoff_us * 2, 20000);
    }
}

void LockTable::fcntl_unlock(off_t start, bool internal) {
    struct flock fl = one_byte(F_UNLCK, start);
    fcntl(fd_, internal ? F_OFD_SETLK : F_SETLK, &fl);
}

std::unique_ptr<KeyHold> LockTable::lock_key(const std::shared_ptr<LockTable> &table, uint64_t hash_word,
                                             int64_t timeout_ms, bool distributed) {
    LockTable &t = *table;
    State &s = *t.state_;
    const off_t off = key_offset(hash_word);
    const auto self = std::this_thread::get_id();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0));

    std::unique_lock<std::mutex> g(s.mu);
    auto &owned = s.slots[off];
    if (!owned)
        owned = std::make_unique<Slot>();
    Slot *slot = owned.get();
    auto forget_if_unused = [&] {
        if (slot->holds == 0 && !slot->acquiring && slot->waiters == 0)
            s.slots.erase(off);
    };
    for (;;) {
        if (slot->holds > 0 && slot->owner == self) {
            slot->holds++;
            return std::make_unique<KeyHold>(table, off, t.generation_);
        }
        if (slot->holds == 0 && !slot->acquiring)
            break;
        if (timeout_ms == 0) {
            forget_if_unused();
            fail(Status::busy, "lock is held by another thread of this process");
        }
        slot->waiters++;
        bool timed_out = false;
        if (timeout_ms < 0)
            slot->cv.wait(g);
        else
            timed_out = slot->cv.wait_until(g, deadline) == std::cv_status::timeout;
        slot->waiters--;
        if (timed_out && (slot->holds > 0 || slot->acquiring)) {
            forget_if_unused();
            fail(Status::timedout, "lock not acquired within " + std::to_string(timeout_ms) + " ms");
        }
    }

    slot->acquiring = true;
    slot->owner = self;
    int err = 0;
    if (distributed) {
        int64_t left = timeout_ms;
        if (timeout_ms > 0) {
            auto rest = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            left = std::max<int64_t>(rest.count(), 0);
        }
        g.unlock();
        err = t.fcntl_lock(off, F_WRLCK, left, false);
        // The kernel detects deadlocks per process, so two multi-threaded
        // processes can look deadlocked while no thread is: a thread that
        // holds no key lock itself is in no cycle, and only has to wait.
        for (int64_t nap = 500; err == EDEADLK && !holds_any_key(self); nap = std::min<int64_t>(nap * 2, 50000)) {
            sleep_us(nap);
            err = t.fcntl_lock(off, F_WRLCK, left, false);
        }
        g.lock();
    }
    slot->acquiring = false;
    if (err != 0) {
        slot->owner = std::thread::id();
        slot->cv.notify_all();
        forget_if_unused();
        if (err == EAGAIN)
            fail(timeout_ms == 0 ? Status::busy : Status::timedout,
                 timeout_ms == 0 ? "lock is held by another process"
                                 : "lock not acquired within " + std::to_string(timeout_ms) + " ms");
        if (err == EDEADLK)
            fail(Status::deadlk, "lock on '" + t.shown_path_ + "' would deadlock with another process");
        throw_errno(err, "fcntl(F_SETLKW) on '" + t.shown_path_ + "'");
    }
    slot->holds = 1;
    slot->distributed = distributed;
    slot->marked = false; // a mark noted by the previous holder is not this hold's
    return std::make_unique<KeyHold>(table, off, t.generation_);
}

LockTable::Slot *LockTable::own_slot(uint64_t hash_word) {
    auto it = state_->slots.find(key_offset(hash_word));
    if (it == state_->slots.end())
        return nullptr;
    Slot *slot = it->second.get();
    return slot->holds > 0 && slot->owner == std::this_thread::get_id() && slot->distributed ? slot : nullptr;
}

std::optional<uint64_t> LockTable::lease_mark(uint64_t hash_word) {
    std::lock_guard<std::mutex> g(state_->mu);
    Slot *slot = own_slot(hash_word);
    if (!slot || !slot->marked)
        return std::nullopt;
    return slot->lease_mark;
}

void LockTable::set_lease_mark(uint64_t hash_word, uint64_t mark) {
    std::lock_guard<std::mutex> g(state_->mu);
    if (Slot *slot = own_slot(hash_word)) {
        slot->marked = true;
        slot->lease_mark = mark;
    }
}

int LockTable::reassert_key(uint64_t hash_word) {
    // Taking again a lock this process holds changes nothing locally; a
    // network filesystem asks its server, which knows whether it still is.
    struct flock fl = one_byte(F_WRLCK, key_offset(hash_word));
    return fcntl(fd_, F_SETLK, &fl) == 0 ? 0 : errno;
}

bool LockTable::holds_any_key(std::thread::id self) {
    Registry &reg = registry();
    std::lock_guard<std::mutex> rg(reg.mu);
    for (auto &kv : reg.tables) {
        State &s = *kv.second->state_;
        std::lock_guard<std::mutex> g(s.mu);
        for (auto &slot : s.slots)
            if (slot.second->holds > 0 && slot.second->owner == self)
                return true;
    }
    return false;
}

void LockTable::release_key(uint64_t offset, uint64_t generation) {
    if (generation != generation_)
        fail(Status::inval, "lock was taken by the parent process before fork()");
    State &s = *state_;
    std::lock_guard<std::mutex> g(s.mu);
    auto it = s.slots.find(offset);
    if (it == s.slots.end() || it->second->holds == 0)
        fail(Status::inval, "lock released twice");
    Slot &slot = *it->second;
    if (--slot.holds > 0)
        return;
    if (slot.distributed)
        fcntl_unlock(off_t(offset), false);
    slot.owner = std::thread::id();
    slot.cv.notify_all();
    if (slot.waiters == 0)
        s.slots.erase(it);
}

pid_t LockTable::key_holder(uint64_t hash_word) {
    struct flock fl = one_byte(F_WRLCK, key_offset(hash_word));
    if (fcntl(fd_, F_GETLK, &fl) == -1)
        throw_errno(errno, "fcntl(F_GETLK) on '" + shown_path_ + "'");
    return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

LockTable::ShardGuard::ShardGuard(LockTable &t, unsigned shard, bool wait) : table_(t), shard_(shard) {
    std::mutex &mu = table_.state_->shard_mu[shard_];
    if (!wait && !mu.try_lock())
        return;
    if (wait)
        mu.lock();
    int err = table_.fcntl_lock(lock_file::shard_range + shard_, F_WRLCK, wait ? -1 : 0, true);
    if (err != 0) {
        mu.unlock();
        if (!wait && err == EAGAIN)
            return;
        throw_errno(err, "fcntl(F_OFD_SETLKW) on '" + table_.shown_path_ + "'");
    }
    held_ = true;
}

LockTable::ShardGuard::~ShardGuard() {
    if (!held_)
        return;
    table_.fcntl_unlock(lock_file::shard_range + shard_, true);
    table_.state_->shard_mu[shard_].unlock();
}

bool LockTable::try_exclusive_open() { return fcntl_lock(lock_file::open_range, F_WRLCK, 0, true) == 0; }

void LockTable::hold_shared_open() {
    // Converting our own write lock to a read lock is atomic; otherwise this
    // waits only while another process sweeps. A network filesystem's server
    // may grant waiting read locks only on a full unlock, so there the write
    // lock (held only by the first opener in this process, which has no work
    // in flight yet) is dropped first.
    if (network_)
        fcntl_unlock(lock_file::open_range, true);
    fcntl_lock(lock_file::open_range, F_RDLCK, -1, true);
}

bool LockTable::alone() {
    std::lock_guard<std::mutex> g(state_->mu);
    if (network_) {
        // Asked, not taken: the read lock this process holds stays (see
        // hold_shared_open).
        struct flock fl = one_byte(F_WRLCK, lock_file::open_range);
        if (fcntl(fd_, F_OFD_GETLK, &fl) == -1)
            throw_errno(errno, "fcntl(F_OFD_GETLK) on '" + shown_path_ + "'");
        return fl.l_type == F_UNLCK;
    }
    if (!try_exclusive_open())
        return false;
    hold_shared_open();
    return true;
}

void LockTable::hold_shared(off_t byte) {
    std::lock_guard<std::mutex> g(state_->mu);
    unsigned &holds = state_->shared_holds[byte];
    if (holds++ == 0) {
        int err = fcntl_lock(byte, F_RDLCK, -1, true);
        if (err != 0) {
            state_->shared_holds.erase(byte);
            throw_errno(err, "fcntl(F_OFD_SETLKW) on '" + shown_path_ + "'");
        }
    }
}

uint64_t LockTable::fork_generation() { return forks_seen.load(); }

void LockTable::release_shared(off_t byte) {
    std::lock_guard<std::mutex> g(state_->mu);
    auto it = state_->shared_holds.find(byte);
    if (it != state_->shared_holds.end() && --it->second == 0) {
        state_->shared_holds.erase(it);
        fcntl_unlock(byte, true);
    }
}

void LockTable::unregister_open() {
    std::lock_guard<std::mutex> g(state_->mu);
    if (--state_->opens == 0)
        fcntl_unlock(lock_file::open_range, true);
}

KeyHold::~KeyHold() {
    if (!released_) {
        try {
            table_->release_key(offset_, generation_);
        } catch (...) {
        }
    }
}

void KeyHold::release() {
    released_ = true;
    table_->release_key(offset_, generation_);
}

} // namespace fsc
