// The process-wide lock table: one descriptor per lock file, shared by every
// cache handle on the same base_dir, with per-key thread exclusion on top of
// fcntl record locks (docs/ARCHITECTURE.md, "The lock table").
#pragma once

#include <sys/types.h>

#include <fcntl.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "clock.h"
#include "lock_file_layout.h"

namespace fsc {

class LockTable;

// One hold of one key's lock. Releasing it from any thread is allowed.
class KeyHold {
public:
    KeyHold(std::shared_ptr<LockTable> table, uint64_t offset, uint64_t generation)
        : table_(std::move(table)), offset_(offset), generation_(generation) {}
    KeyHold(const KeyHold &) = delete;
    KeyHold &operator=(const KeyHold &) = delete;
    ~KeyHold();
    // Releases the hold; throws Error(inval) for a hold taken before a fork.
    void release();

private:
    std::shared_ptr<LockTable> table_;
    uint64_t offset_;
    uint64_t generation_;
    bool released_ = false;
};

class LockTable {
public:
    // The table of the lock file `name` in directory dirfd, creating the file
    // when missing. Opening the same file twice in one process gives the same
    // table (keyed by device and inode), so no descriptor of it is ever closed
    // while another user may hold locks through it. network: network mode
    // (FSC_NETWORK), decided by the first user in the process: the file is
    // read past the client's caches (direct_fd) when it is on a network
    // filesystem, and the open lock is never converted from write to read.
    static std::shared_ptr<LockTable> acquire(int dirfd, const std::string &name, const std::string &shown_path,
                                              bool network = false);

    int fd() const noexcept { return fd_; }
    // Network mode on a network filesystem: the lock file opened again for
    // pread_coherent (-1: none; its reads go through fd()). What is written
    // in it is then flushed to the server before the lock ordering it goes.
    int direct_fd() const noexcept { return direct_fd_; }

    // Takes the key's lock (re-entrant per thread). timeout_ms: -1 forever,
    // 0 try, > 0 at most that long. distributed = false: no fcntl.
    static std::unique_ptr<KeyHold> lock_key(const std::shared_ptr<LockTable> &table, uint64_t hash_word,
                                             int64_t timeout_ms, bool distributed);
    // Pid of another process holding the key's lock, 0 if none.
    pid_t key_holder(uint64_t hash_word);

    // Leases (network mode): a key's lock held through a network filesystem
    // can be lost without notice (the server gave it to another host while
    // this one was cut off). What the key held when the lock was taken is
    // noted (a mark); a set under the lock checks it is still so.
    // The mark noted for the key's lock this thread holds (taken with
    // distributed = true); nullopt when it holds none or none was noted.
    std::optional<uint64_t> lease_mark(uint64_t hash_word);
    // Notes the mark of the key's lock this thread holds (no-op otherwise).
    void set_lease_mark(uint64_t hash_word, uint64_t mark);
    // Asks the server again for the key's lock this process holds: 0 while
    // it is still this process's, else the errno (EAGAIN: another host has
    // it; EBADFD, ENOTCONN: the connection that held it is gone).
    int reassert_key(uint64_t hash_word);

    // A shard's write lock (or lock_file::record_lock), held by one thread
    // of one process at a time; not re-entrant. wait = false only tries:
    // held() says whether it got the lock.
    class ShardGuard {
    public:
        ShardGuard(LockTable &t, unsigned shard, bool wait = true);
        ~ShardGuard();
        ShardGuard(const ShardGuard &) = delete;
        ShardGuard &operator=(const ShardGuard &) = delete;
        bool held() const noexcept { return held_; }

    private:
        LockTable &table_;
        unsigned shard_;
        bool held_ = false;
    };

    // Registers one more open cache in this process. When it is the first in
    // this process and no other process has the cache open, calls sweep()
    // first, while every other opener waits (so sweep may remove what crashed
    // processes left behind without touching live work).
    template <typename F> void register_open(F &&sweep) {
        std::lock_guard<std::mutex> g(state_->mu);
        if (state_->opens++ == 0 && try_exclusive_open())
            sweep();
        hold_shared_open();
    }
    void unregister_open();

    // A read lock on one byte of the lock file, held by this process while
    // any of its users holds the byte: the first takes it, the last drops it
    // (a forked child holds none). Whoever takes the byte's write lock in
    // when_unheld can tell that nobody holds it.
    void hold_shared(off_t byte);
    void release_shared(off_t byte);
    // Grows in a forked child: what a handle noted under another value
    // belongs to the parent process.
    static uint64_t fork_generation();
    // Calls f() when no process (this one included) holds the byte, keeping
    // everyone from taking it until f returns. Returns whether it did.
    template <typename F> bool when_unheld(off_t byte, F &&f) {
        std::lock_guard<std::mutex> g(state_->mu);
        if (state_->shared_holds.count(byte) || fcntl_lock(byte, F_WRLCK, 0, true) != 0)
            return false;
        try {
            f();
        } catch (...) {
            fcntl_unlock(byte, true);
            throw;
        }
        fcntl_unlock(byte, true);
        return true;
    }
    // True when no other process has the cache open now.
    bool alone();

private:
    friend class KeyHold;
    struct Slot {
        std::thread::id owner;
        unsigned holds = 0;
        unsigned waiters = 0;
        bool acquiring = false;
        bool distributed = false; // the fcntl lock is taken
        bool marked = false;      // lease_mark was noted
        uint64_t lease_mark = 0;
        std::condition_variable cv;
    };
    // In-process state, replaced wholesale in a forked child (the old one may
    // hold mutexes locked by threads that do not exist there).
    struct State {
        std::mutex mu;
        std::unordered_map<uint64_t, std::unique_ptr<Slot>> slots;
        std::mutex shard_mu[257]; // the shards', then the shared record's
        unsigned opens = 0;
        std::unordered_map<off_t, unsigned> shared_holds; // hold_shared() calls not yet released, by byte
    };

    LockTable(int fd, dev_t dev, ino_t ino, std::string shown_path, bool network, int direct_fd);
    // The slot of the key's lock this thread holds through fcntl; state_->mu held.
    Slot *own_slot(uint64_t hash_word);
    bool try_exclusive_open();
    void hold_shared_open();
    static void release_table(LockTable *t);
    void release_key(uint64_t offset, uint64_t generation);
    // Whether the thread holds a key lock in any table of this process.
    static bool holds_any_key(std::thread::id self);
    // fcntl lock of one byte; returns 0 or an errno (EAGAIN when busy/timed
    // out). internal: an open-file-description lock (see fcntl_lock).
    int fcntl_lock(off_t start, short type, int64_t timeout_ms, bool internal);
    void fcntl_unlock(off_t start, bool internal);
    static void after_fork_in_child();

    int fd_;
    dev_t dev_;
    ino_t ino_;
    std::string shown_path_;
    State *state_;
    uint64_t generation_; // fork generation this state belongs to
    unsigned users_ = 0;  // acquire() calls not yet released; guarded by the registry mutex
    bool network_;        // network mode: see acquire()
    int direct_fd_;       // see direct_fd()
};

} // namespace fsc
